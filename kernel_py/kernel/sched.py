# The scheduler (Linux's kernel/sched/core.c and kernel/sched/wait.c, in
# miniature): one CPU, a round-robin run queue, wait queues, timed sleeps,
# per-task CPU time, and the idle loop the kernel ends in after boot.
#
# Run to completion. The kernel runs each event (a syscall, a fault, an
# interrupt) to its end on the one kernel stack (kernel/task.py says why).
# A syscall that must wait calls sleep(), which parks the task with a
# continuation and returns BLOCKED; the entry code then leaves the task and
# the idle loop picks another. wake_up() makes the task runnable again; when
# it is next picked, the entry code calls the continuation, which tries the
# call again (and may sleep again) or returns its result. A signal wakes an
# interruptible sleeper; the continuation then sees it pending and returns
# -ERESTARTSYS, which signal delivery turns into EINTR or a restart, as on
# Linux.
#
# Preemption: the timer interrupt (HZ ticks a second, arch/x86/time.py)
# reaches the kernel only from ring 3 or the idle hlt; a task whose slice is
# used up when another is runnable goes to the back of the queue.
#
# CPU time is measured, not sampled: the entry code reads the TSC around
# every stretch in ring 3 (utime) and charges the rest of the task's events
# to stime (Linux's CONFIG_VIRT_CPU_ACCOUNTING_GEN does the same on entry
# and exit).

from kernel_py.arch.x86 import pit
from kernel_py.arch.x86.tsc import HZ
from kernel_py.kernel.task import (
    EXIT_DEAD, EXIT_ZOMBIE, TASK_INTERRUPTIBLE, TASK_RUNNING, TASK_STOPPED,
    TASK_UNINTERRUPTIBLE,
)

SLICE_TICKS = 2              # a nice-0 task runs this many timer ticks before yielding
MAX_SLICE_TICKS = 250        # one second: nice -20's slice would be 173 ticks
MIN_NICE, MAX_NICE = -20, 19

# kernel/sched/core.c's sched_prio_to_weight: the CPU share of nice -20..19,
# each step about 10% of CPU time against a nice-0 task (1024)
NICE_WEIGHT = (
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
)


def slice_ticks(t):
    """A task's round-robin slice: SLICE_TICKS scaled by its nice weight.
    Coarser than CFS (one tick at least: nice 19 against 0 runs 1:2, not
    15:1024), but a niced task gives way and a favoured one keeps the CPU."""
    return max(1, min(MAX_SLICE_TICKS, SLICE_TICKS * NICE_WEIGHT[t.nice - MIN_NICE] // 1024))


class _Blocked:
    def __repr__(self):
        return "BLOCKED"


BLOCKED = _Blocked()         # a syscall's answer when the task sleeps or is gone


class Scheduler:
    def __init__(self, k, run_task):
        self.k = k
        self.run_task = run_task        # arch/x86/entry.py: ring 3 until the task yields
        self.rq = []                    # runnable tasks, FIFO
        self.current = None             # the task whose events run now
        self.need_resched = False       # set by the tick: leave the current task
        self.sleepers = []              # tasks with a wake_at deadline
        self.timers = []                # [deadline TSC, callback]: alarm(2) and the like
        self.nr_switches = 0            # context switches (/proc/stat ctxt)
        self.slice_left = SLICE_TICKS
        self.last = None                # the task that ran last (a switch when it changes)
        self.ticks = 0                  # timer interrupts taken
        self.tick_running = False       # IRQ 0 unmasked (tick_control)

    # -- the run queue
    def enqueue(self, t):
        if not t.on_rq:
            t.on_rq = True
            self.rq.append(t)

    def dequeue(self, t):
        if t.on_rq:
            t.on_rq = False
            self.rq.remove(t)

    def wake_up_process(self, t):
        """try_to_wake_up: a sleeping (or stopped, by SIGCONT) task runs again."""
        if t.state in (TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, TASK_STOPPED):
            t.state = TASK_RUNNING
            if t.wake_at:
                t.wake_at = 0
                if t in self.sleepers:
                    self.sleepers.remove(t)
            self.enqueue(t)

    def wake_up(self, wq):
        """wake_up_all: every sleeper on wq; each rechecks its condition."""
        tasks = wq.tasks
        if not tasks:
            return
        wq.tasks = []
        for t in tasks:
            self.wake_up_process(t)

    def sleep(self, t, wq, restart, wake_at=0, state=TASK_INTERRUPTIBLE):
        """Park t on wq (and/or until the TSC reaches wake_at) with the
        continuation restart(); returns BLOCKED for the syscall to return."""
        t.state = state
        t.restart = restart
        if wq is not None:
            wq.add(t)
        if wake_at:
            t.wake_at = wake_at
            self.sleepers.append(t)
        self.dequeue(t)
        t.nvcsw += 1
        return BLOCKED

    def stop(self, t):
        """A stop signal (SIGSTOP, SIGTSTP): off the run queue until SIGCONT."""
        t.state = TASK_STOPPED
        self.dequeue(t)

    def remove(self, t):
        """t exits: never scheduled again."""
        self.dequeue(t)
        if t in self.sleepers:
            self.sleepers.remove(t)
        if self.current is t:
            self.current = None

    def pick_next(self):
        """The first runnable task (round robin: it goes to the back when
        its slice ends)."""
        rq = self.rq
        while rq:
            t = rq[0]
            if t.state == TASK_RUNNING:
                return t
            rq.pop(0)
            t.on_rq = False
        return None

    def preempt(self, t):
        """The slice of t is over: to the back of the queue."""
        self.need_resched = False
        self.slice_left = slice_ticks(t)
        if t.on_rq and len(self.rq) > 1:
            self.rq.remove(t)
            self.rq.append(t)
            t.nivcsw += 1

    def tick(self):
        """The timer interrupt: time slices, timed sleeps, the load average."""
        self.ticks += 1
        self.wake_sleepers()
        self.k.loadavg.update(self.nr_active())
        self.slice_left -= 1
        if self.slice_left <= 0 and len(self.rq) > 1:
            self.need_resched = True

    def add_timer(self, deadline, fn):
        """fn() once the TSC passes deadline; returns the timer (for del_timer)."""
        timer = [deadline, fn]
        self.timers.append(timer)
        return timer

    def del_timer(self, timer):
        if timer in self.timers:
            self.timers.remove(timer)

    def run_timers(self, now):
        due = [tm for tm in self.timers if tm[0] <= now]
        for tm in due:
            self.timers.remove(tm)
            tm[1]()

    def wake_sleepers(self):
        sl = self.sleepers
        if not sl and not self.timers:
            return
        now = self.k.hw.rdtsc()
        if self.timers:
            self.run_timers(now)
        for t in list(sl):
            if t.wake_at and t.wake_at <= now:
                self.wake_up_process(t)

    def nr_active(self):
        """calc_load's count: runnable plus uninterruptible tasks."""
        n = len(self.rq)
        for t in self.k.procs.tasks.values():
            if t.state == TASK_UNINTERRUPTIBLE:
                n += 1
        return n

    def next_deadline(self):
        """The earliest wake_at of a timed sleeper, 0 when none."""
        best = 0
        for t in self.sleepers:
            if t.wake_at and (not best or t.wake_at < best):
                best = t.wake_at
        return best

    # -- running tasks
    def switch_to(self, t):
        """Make t current: its address space in CR3 (the kernel half is
        shared, so the kernel keeps running), its counters charged."""
        if self.last is not t:
            self.nr_switches += 1
            self.last = t
            self.slice_left = slice_ticks(t)
        self.current = t
        self.k.procs.use_task(t)

    def switch_idle(self):
        """The idle loop has the CPU (pid 0, swapper: the console, hlt): a
        context switch away from the task that ran last, as __schedule
        counts one when it picks the idle task."""
        if self.last is not None:
            self.nr_switches += 1
            self.last = None

    def switch_kthread(self, t):
        """A kernel thread runs in whatever address space is loaded (it
        touches only kernel memory, as Linux's lazy TLB mode)."""
        if self.last is not t:
            self.nr_switches += 1
            self.last = t
        self.current = t

    def run_one(self):
        """Run the next runnable task until it yields; False if none."""
        t = self.pick_next()
        if t is None:
            return False
        if t.kthread is not None:
            self.run_one_kthread(t)
            if t.on_rq and len(self.rq) > 1:    # another batch later: the others first
                self.rq.remove(t)
                self.rq.append(t)
            return True
        self.switch_to(t)
        try:
            self.run_task(self.k, t)
        finally:
            self.current = None
        if t.state == TASK_RUNNING and self.need_resched:
            self.preempt(t)
        return True

    def run_kthreads(self):
        """Run every runnable kernel thread once (the console's commands
        give them their turn this way where no idle loop runs: host tests)."""
        for t in [t for t in self.rq if t.kthread is not None]:
            if t.state == TASK_RUNNING:
                self.run_one_kthread(t)

    def run_one_kthread(self, t):
        self.switch_kthread(t)
        self.k.kthreads.run(t)
        self.current = None

    def has_work(self):
        return bool(self.rq)

    def tick_control(self):
        """The periodic tick (PIT channel 0 at HZ, arch/x86/pit.py) runs
        only while a task may need preempting or a timed sleep ending, so an
        idle machine sleeps in hlt until a key arrives (Linux's NO_HZ idle)."""
        want = bool(self.rq or self.sleepers or self.timers)
        if want != self.tick_running:
            hw = self.k.hw
            if want:
                pit.start_tick(hw, HZ)
            else:
                pit.stop_tick(hw)
            self.tick_running = want


def is_gone(t):
    return t.state == EXIT_ZOMBIE or t.state == EXIT_DEAD
