# The process table (Linux's pid allocation in kernel/pid.c and the task
# list of kernel/fork.c and kernel/exit.c): pid -> Task, the pid counter,
# the limit on tasks, and the console's address-space commands' entry points
# (spawn, fork, exit/kill of a process that is only an mm). Programs get
# their tasks here too: kernel/fork.py and fs/exec.py build them, the
# scheduler (kernel/sched.py) runs them. pid 1, init, exists from boot.
#
# use_mm loads a process's PML4 into CR3 so that the kernel's virtual
# accesses go through its tables and fault into mm/vm/fault.py; unuse_mm
# goes back to the previous CR3.

from kernel_py.lib.errors import KernelError
from kernel_py.kernel import signal
from kernel_py.kernel.exit import do_exit
from kernel_py.kernel.task import Task
from kernel_py.mm.vm.mmap import MmStruct
from kernel_py.mm.vm.fault import segv_report
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK

PID_MAX = 32768
MAX_TASKS = 512                 # fork past this many tasks: EAGAIN (Linux: max_threads)


class ProcTable:
    def __init__(self, k):
        self.k = k
        self.tasks = {}
        self.last_pid = 0
        self.current = None         # the Task whose mm is in CR3 (use_mm)
        self.cur_mm = None          # its mm, for the fault handler
        self.forks = 0
        self.max_tasks = MAX_TASKS
        self.exits = 0
        self.busy = []              # tasks kernel code is working on (not torn down by OOM)

    def is_busy(self, t):
        return t is self.current or t in self.busy

    def reap(self):
        """Exit the OOM victims that were busy when chosen."""
        for pid in self.pids():
            t = self.tasks.get(pid)
            if t is not None and t.oom_pending and not self.is_busy(t):
                self.k.oom.reap(t)

    def pids(self):
        return sorted(self.tasks)

    def get(self, pid):
        if type(pid) is not int:
            try:
                pid = int(pid, 10)
            except ValueError:
                raise KernelError("EINVAL", "pid %r is not a number" % (pid,))
        t = self.tasks.get(pid)
        if t is None:
            raise KernelError("ESRCH", "no process %d" % pid)
        return t

    def alloc_pid(self):
        pid = self.last_pid
        for _ in range(PID_MAX):
            pid += 1
            if pid >= PID_MAX:
                pid = 2
            if pid not in self.tasks:
                self.last_pid = pid
                return pid
        raise KernelError("EAGAIN", "no free pid")

    def spawn(self, name, ppid=1):
        """A new process with a fresh address space (a [stack] VMA only)."""
        if not name or len(name) > 15:
            raise KernelError("EINVAL", "name must be 1..15 characters (TASK_COMM_LEN)")
        pid = self.alloc_pid()
        mm = MmStruct(self.k)
        mm.setup_stack()
        if pid == 1:
            ppid = 0
        t = Task(self.k, pid, name, ppid, mm)
        self.tasks[pid] = t
        self.forks += 1                 # every task created counts (total_forks)
        if self.k.clock is not None:
            t.start_time = self.k.clock.jiffies()
        parent = self.tasks.get(ppid)
        if parent is not None:
            parent.children.append(pid)
        return t

    def fork(self, pid):
        parent = self.get(pid)
        child_pid = self.alloc_pid()
        self.busy.append(parent)
        try:
            mm = parent.mm.dup()
        finally:
            self.busy.remove(parent)
            self.reap()
        if parent.pid not in self.tasks:        # the OOM killer took the parent
            mm.destroy()
            raise KernelError("ENOMEM", "fork: the parent was killed (out of memory)")
        t = Task(self.k, child_pid, parent.comm, parent.pid, mm)
        t.oom_score_adj = parent.oom_score_adj
        t.start_time = self.k.clock.jiffies() if self.k.clock is not None else 0
        if parent.heap is not None:
            t.heap = parent.heap.copy()
        self.tasks[child_pid] = t
        parent.children.append(child_pid)
        self.forks += 1
        return t

    def check_task_limit(self, parent):
        """fork's limit on tasks (max_threads, RLIMIT_NPROC): EAGAIN past it."""
        if len(self.tasks) >= self.max_tasks:
            raise KernelError("EAGAIN", "%d tasks: the limit" % len(self.tasks))

    def exit(self, pid):
        """exit/kill: free the address space; children go to init. A
        program (a task that runs in ring 3) is killed as by SIGKILL: the
        same teardown, then a zombie for its parent."""
        t = self.get(pid)
        if t.pid == 1:
            raise KernelError("EPERM", "init cannot exit")
        if t.is_user():
            return self.kill_user(t)
        if t.mm is None:
            raise KernelError("EPERM", "%s is a kernel thread" % t.comm)
        if self.current is t:
            self.unuse_mm(self.k.init_mm.pgd)
        t.mm.destroy()
        t.state = "Z"
        del self.tasks[t.pid]
        parent = self.tasks.get(t.ppid)
        if parent is not None and t.pid in parent.children:
            parent.children.remove(t.pid)
        init = self.tasks.get(1)
        for c in t.children:
            ct = self.tasks.get(c)
            if ct is not None:
                ct.ppid = 1
                if init is not None:
                    init.children.append(c)
        self.exits += 1
        return t

    def kill_user(self, t):
        """SIGKILL for a program: torn down now unless the kernel is working
        on it (then at its next return towards ring 3)."""
        k = self.k
        signal.send_signal(k, t, signal.SIGKILL)
        if not self.is_busy(t) and t.state not in ("Z", "X"):
            do_exit(k, t, signal.SIGKILL)
        return t

    # -- running tasks and their address spaces
    def use_task(self, t):
        """t is the task the kernel works for: its tables in CR3, its mm
        the one the fault handler serves."""
        mm = t.mm
        self.current = t
        self.cur_mm = mm
        if mm is not None and mm.pgd is not None:
            hw = self.k.hw
            if hw.read_cr3() & PTE_ADDR_MASK != mm.pgd:
                hw.write_cr3(mm.pgd)

    def unuse_task(self):
        """Back to init_mm's tables (the task's mm is going away)."""
        self.current = None
        self.cur_mm = None
        self.k.hw.write_cr3(self.k.init_mm.pgd)

    # -- running in a process's address space (the console's commands)
    def use_mm(self, task):
        """Load task's tables; returns the CR3 to go back to."""
        hw = self.k.hw
        old = hw.read_cr3()
        hw.write_cr3(task.mm.pgd)
        self.current = task
        self.cur_mm = task.mm
        if not task.is_user():
            task.state = "R"
        self.k.fault.last_segv = None
        return old

    def unuse_mm(self, old_cr3):
        t = self.current
        if t is not None and not t.is_user():
            t.state = "S"
        self.current = None
        self.cur_mm = None
        self.k.hw.write_cr3(old_cr3 & PTE_ADDR_MASK)

    def run_in(self, task, fn, *args):
        """fn(*args) with task's address space loaded; a fault the handler
        refused becomes one SIGSEGV error (the kernel goes on)."""
        k = self.k
        old = self.use_mm(task)
        try:
            return fn(*args)
        except k.hw.Fault as f:
            raise segv_report(k, k.fault.last_segv, f.args)
        finally:
            self.unuse_mm(old)
            if task.oom_pending:
                self.reap()

