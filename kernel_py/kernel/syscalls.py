# The system call table (Linux's arch/x86/entry/syscall_64.c, built from
# syscall_64.tbl): each implemented call by its Linux name, bound to the
# handler that lives with its subsystem, with its number of arguments (the
# n of Linux's SYSCALL_DEFINEn). A handler is called as fn(task, args...)
# with the argument registers as signed 64-bit integers, and returns the
# value for RAX: >= 0, or -errno; or sched.BLOCKED when the task slept or
# is gone.
#
# Any other number answers -ENOSYS and logs one line per number per
# program, as the issue asks (Linux logs nothing; strace would show it).

from kernel_py.arch.x86.syscall_64 import NAMES, NR, NR_syscalls
from kernel_py.kernel import exit as kexit
from kernel_py.kernel import fork, signal
from kernel_py.lib.errno import ENOSYS

# (name, handler, number of arguments)
SYSCALLS = (
    ("rt_sigaction", signal.sys_rt_sigaction, 4),
    ("rt_sigprocmask", signal.sys_rt_sigprocmask, 4),
    ("rt_sigreturn", signal.sys_rt_sigreturn, 0),
    ("rt_sigpending", signal.sys_rt_sigpending, 2),
    ("rt_sigsuspend", signal.sys_rt_sigsuspend, 2),
    ("kill", signal.sys_kill, 2),
    ("tkill", signal.sys_tkill, 2),
    ("tgkill", signal.sys_tgkill, 3),
    ("fork", fork.sys_fork, 0),
    ("vfork", fork.sys_vfork, 0),
    ("clone", fork.sys_clone, 5),
    ("clone3", fork.sys_clone3, 2),
    ("exit", kexit.sys_exit, 1),
    ("exit_group", kexit.sys_exit_group, 1),
    ("wait4", kexit.sys_wait4, 4),
)


class SyscallTable:
    """k.syscalls: the table by number, and the unknown numbers seen."""

    def __init__(self, k, calls=SYSCALLS):
        self.k = k
        self.table = [None] * NR_syscalls
        for name, fn, nargs in calls:
            self.table[NR[name]] = (fn, nargs)
        self.logged = {}                # (pid, nr) -> True: ENOSYS already logged

    def unknown(self, t, nr):
        key = (t.pid, nr)
        if key not in self.logged:
            self.logged[key] = True
            self.k.printk("%s[%d]: unimplemented syscall %d (%s): ENOSYS" % (
                t.comm, t.pid, nr, NAMES.get(nr, "?")))
        return -ENOSYS

    def name(self, nr):
        return NAMES.get(nr, "?")
