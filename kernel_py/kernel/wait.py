# Wait queues (Linux's include/linux/wait.h, kernel/sched/wait.c): the
# tasks sleeping until an event. A waker calls Scheduler.wake_up(wq), which
# empties the queue and makes each task runnable; each then retries the
# call it slept in (kernel/sched.py: run to completion).


class WaitQueue:
    def __init__(self):
        self.tasks = []

    def __len__(self):
        return len(self.tasks)

    def add(self, t):
        if t not in self.tasks:
            self.tasks.append(t)

    def remove(self, t):
        if t in self.tasks:
            self.tasks.remove(t)
