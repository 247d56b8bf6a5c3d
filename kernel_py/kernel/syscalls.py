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
from kernel_py.fs import (
    d_path, eventfd, fcntl, file, ioctl, namei, open as fs_open, pipe, read_write, readdir,
    select, stat, statfs, sync, utimes,
)
from kernel_py.fs import exec as fexec
from kernel_py.kernel import exit as kexit
from kernel_py.kernel import fork, futex, printk, signal, sys, time
from kernel_py.mm import memfd
from kernel_py.mm.vm import madvise, mincore, mmap, mprotect, mremap, msync
from kernel_py.lib.errno import ENOSYS

# (name, handler, number of arguments)
SYSCALLS = (
    ("rt_sigaction", signal.sys_rt_sigaction, 4),
    ("rt_sigprocmask", signal.sys_rt_sigprocmask, 4),
    ("rt_sigreturn", signal.sys_rt_sigreturn, 0),
    ("rt_sigpending", signal.sys_rt_sigpending, 2),
    ("rt_sigsuspend", signal.sys_rt_sigsuspend, 2),
    ("sigaltstack", signal.sys_sigaltstack, 2),
    ("getpriority", sys.sys_getpriority, 2),
    ("setpriority", sys.sys_setpriority, 3),
    ("sched_getaffinity", sys.sys_sched_getaffinity, 3),
    ("sched_setaffinity", sys.sys_sched_setaffinity, 3),
    ("pause", signal.sys_pause, 0),
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
    # files (fs/)
    ("read", read_write.sys_read, 3),
    ("write", read_write.sys_write, 3),
    ("readv", read_write.sys_readv, 3),
    ("writev", read_write.sys_writev, 3),
    ("pread64", read_write.sys_pread64, 4),
    ("pwrite64", read_write.sys_pwrite64, 4),
    ("preadv", read_write.sys_preadv, 5),
    ("pwritev", read_write.sys_pwritev, 5),
    ("lseek", read_write.sys_lseek, 3),
    ("sendfile", read_write.sys_sendfile, 4),
    ("statfs", statfs.sys_statfs, 2),
    ("fstatfs", statfs.sys_fstatfs, 2),
    ("open", fs_open.sys_open, 3),
    ("openat", fs_open.sys_openat, 4),
    ("creat", fs_open.sys_creat, 2),
    ("close", fs_open.sys_close, 1),
    ("access", fs_open.sys_access, 2),
    ("faccessat", fs_open.sys_faccessat, 3),
    ("faccessat2", fs_open.sys_faccessat2, 4),
    ("mknod", namei.sys_mknod, 3),
    ("mknodat", namei.sys_mknodat, 4),
    ("chmod", fs_open.sys_chmod, 2),
    ("fchmod", fs_open.sys_fchmod, 2),
    ("fchmodat", fs_open.sys_fchmodat, 3),
    ("chown", fs_open.sys_chown, 3),
    ("fchown", fs_open.sys_fchown, 3),
    ("lchown", fs_open.sys_lchown, 3),
    ("fchownat", fs_open.sys_fchownat, 5),
    ("utimensat", utimes.sys_utimensat, 4),
    ("chdir", fs_open.sys_chdir, 1),
    ("fchdir", fs_open.sys_fchdir, 1),
    ("truncate", fs_open.sys_truncate, 2),
    ("ftruncate", fs_open.sys_ftruncate, 2),
    ("stat", stat.sys_stat, 2),
    ("fstat", stat.sys_fstat, 2),
    ("lstat", stat.sys_lstat, 2),
    ("newfstatat", stat.sys_newfstatat, 4),
    ("statx", stat.sys_statx, 5),
    ("readlink", stat.sys_readlink, 3),
    ("readlinkat", stat.sys_readlinkat, 4),
    ("getdents64", readdir.sys_getdents64, 3),
    ("mkdir", namei.sys_mkdir, 2),
    ("mkdirat", namei.sys_mkdirat, 3),
    ("rmdir", namei.sys_rmdir, 1),
    ("unlink", namei.sys_unlink, 1),
    ("unlinkat", namei.sys_unlinkat, 3),
    ("rename", namei.sys_rename, 2),
    ("renameat", namei.sys_renameat, 4),
    ("renameat2", namei.sys_renameat2, 5),
    ("link", namei.sys_link, 2),
    ("linkat", namei.sys_linkat, 5),
    ("symlink", namei.sys_symlink, 2),
    ("symlinkat", namei.sys_symlinkat, 3),
    ("dup", file.sys_dup, 1),
    ("dup2", file.sys_dup2, 2),
    ("dup3", file.sys_dup3, 3),
    ("fcntl", fcntl.sys_fcntl, 3),
    ("ioctl", ioctl.sys_ioctl, 3),
    ("pipe", pipe.sys_pipe, 1),
    ("pipe2", pipe.sys_pipe2, 2),
    ("eventfd", eventfd.sys_eventfd, 1),
    ("eventfd2", eventfd.sys_eventfd2, 2),
    ("sync", sync.sys_sync, 0),
    ("syncfs", sync.sys_syncfs, 1),
    ("fsync", sync.sys_fsync, 1),
    ("fdatasync", sync.sys_fdatasync, 1),
    ("getcwd", d_path.sys_getcwd, 2),
    ("umask", sys.sys_umask, 1),
    ("poll", select.sys_poll, 3),
    ("ppoll", select.sys_ppoll, 5),
    ("select", select.sys_select, 5),
    ("pselect6", select.sys_pselect6, 6),
    # processes, memory, time (kernel/, mm/)
    ("execve", fexec.sys_execve, 3),
    ("brk", mmap.sys_brk, 1),
    ("mmap", mmap.sys_mmap, 6),
    ("munmap", mmap.sys_munmap, 2),
    ("mprotect", mprotect.sys_mprotect, 3),
    ("mremap", mremap.sys_mremap, 5),
    ("madvise", madvise.sys_madvise, 3),
    ("mincore", mincore.sys_mincore, 3),
    ("msync", msync.sys_msync, 3),
    ("memfd_create", memfd.sys_memfd_create, 2),
    ("getpid", sys.sys_getpid, 0),
    ("gettid", sys.sys_gettid, 0),
    ("getppid", sys.sys_getppid, 0),
    ("getuid", sys.sys_getuid, 0),
    ("geteuid", sys.sys_geteuid, 0),
    ("getgid", sys.sys_getgid, 0),
    ("getegid", sys.sys_getegid, 0),
    ("getpgid", sys.sys_getpgid, 1),
    ("getpgrp", sys.sys_getpgrp, 0),
    ("getsid", sys.sys_getsid, 1),
    ("setpgid", sys.sys_setpgid, 2),
    ("setsid", sys.sys_setsid, 0),
    ("uname", sys.sys_uname, 1),
    ("sysinfo", sys.sys_sysinfo, 1),
    ("syslog", printk.sys_syslog, 3),
    ("getrandom", sys.sys_getrandom, 3),
    ("prlimit64", sys.sys_prlimit64, 4),
    ("getrlimit", sys.sys_getrlimit, 2),
    ("setrlimit", sys.sys_setrlimit, 2),
    ("arch_prctl", sys.sys_arch_prctl, 2),
    ("prctl", sys.sys_prctl, 5),
    ("getgroups", sys.sys_getgroups, 2),
    ("setgroups", sys.sys_setgroups, 2),
    ("set_tid_address", sys.sys_set_tid_address, 1),
    ("set_robust_list", sys.sys_set_robust_list, 2),
    ("rseq", sys.sys_rseq, 4),
    ("sched_yield", sys.sys_sched_yield, 0),
    ("clock_gettime", time.sys_clock_gettime, 2),
    ("clock_getres", time.sys_clock_getres, 2),
    ("gettimeofday", time.sys_gettimeofday, 2),
    ("time", time.sys_time, 1),
    ("times", time.sys_times, 1),
    ("nanosleep", time.sys_nanosleep, 2),
    ("alarm", time.sys_alarm, 1),
    ("clock_nanosleep", time.sys_clock_nanosleep, 4),
    ("futex", futex.sys_futex, 6),
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
