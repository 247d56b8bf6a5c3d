# Kernel threads (Linux's kernel/kthread.c): tasks with no address space
# and no ring-3 context, scheduled on the run queue like any task. What a
# thread runs is a Python function, called by the scheduler when the thread
# is picked (kernel/sched.py run_one): it does one bounded batch of work and
# returns True to stay runnable (it goes to the back of the queue, so
# programs get the CPU in between) or False to sleep until woken — by a
# waker (wake(), e.g. the page allocator waking kswapd below a zone's low
# watermark) or by its period, a timer on the scheduler.
#
# kthreadd (pid 2) is the parent of them all, as on Linux; `ps` shows them
# in brackets.

from kernel_py.kernel.task import TASK_INTERRUPTIBLE, Task


class KThreads:
    """k.kthreads: the kernel threads by name."""

    def __init__(self, k):
        self.k = k
        self.threads = {}
        self.kthreadd = None

    def start(self):
        """kthreadd: pid 2, the parent of every kernel thread."""
        self.kthreadd = self.new_task("kthreadd", 0)

    def new_task(self, name, ppid):
        procs = self.k.procs
        pid = procs.alloc_pid()
        t = Task(self.k, pid, name, ppid, None)
        t.start_time = self.k.clock.jiffies()
        procs.tasks[pid] = t
        procs.forks += 1
        parent = procs.tasks.get(ppid)
        if parent is not None:
            parent.children.append(pid)
        return t

    def create(self, name, fn, period_ms=0):
        """A sleeping thread running fn() when woken, and every period_ms
        milliseconds when a period is given."""
        t = self.new_task(name, self.kthreadd.pid if self.kthreadd is not None else 0)
        t.kthread = fn
        t.kthread_period = period_ms
        t.state = TASK_INTERRUPTIBLE
        self.threads[name] = t
        if period_ms:
            self.arm(t)
        return t

    def arm(self, t):
        k = self.k
        k.sched.add_timer(k.clock.deadline(t.kthread_period * 1000000), lambda: self.wake(t))

    def wake(self, t):
        """wake_up_process for a kernel thread (wake_up_interruptible on its queue)."""
        self.k.sched.wake_up_process(t)

    def wake_after(self, t, ms):
        """Wake t in ms milliseconds (a one-off timer: wb_wakeup_delayed's)."""
        if not t.kthread_timer:
            k = self.k

            def due():
                t.kthread_timer = False
                self.wake(t)
            t.kthread_timer = True
            k.sched.add_timer(k.clock.deadline(ms * 1000000), due)

    def wake_name(self, name):
        t = self.threads.get(name)
        if t is not None:
            self.wake(t)

    def run(self, t):
        """The scheduler picked t: one batch of its work; then it stays
        runnable or sleeps (and its period re-arms)."""
        k = self.k
        t0 = k.hw.rdtsc()
        try:
            more = t.kthread()
        except Exception as exc:  # noqa: BLE001 - a thread's bug must not end the kernel
            k.printk("BUG: kernel thread %s: %s: %s" % (t.comm, type(exc).__name__, exc))
            k.note_exception(exc)
            more = False
        t.stime += k.hw.rdtsc() - t0
        if not more:
            k.sched.sleep(t, None, None)
            if t.kthread_period:
                self.arm(t)
