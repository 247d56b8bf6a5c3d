# fork, vfork and clone (Linux's kernel/fork.c): copy_process makes the
# child from the parent, sharing or copying each part as clone's flags say;
# the child's first return to ring 3 is at the same instruction as the
# parent's, with RAX = 0.
#
# The address space is copied with the COW path the kernel already had
# (MmStruct.dup: private pages write-protected in both, counted twice) or
# shared (CLONE_VM, which vfork uses: the parent sleeps until the child
# execs or exits). Threads (CLONE_THREAD) are not supported: EINVAL.

import struct

from kernel_py.arch.x86.ptrace import FS_BASE, RAX, RSP
from kernel_py.drivers.tty import TtyFile
from kernel_py.fs.exec import do_execve
from kernel_py.fs.file import O_RDWR, FdTable, File
from kernel_py.fs.open import filp_open
from kernel_py.fs.fs_struct import FsStruct
from kernel_py.kernel import signal as sig
from kernel_py.kernel.sys import default_rlimits
from kernel_py.kernel.task import TASK_RUNNING, Task
from kernel_py.lib.errno import EAGAIN, EINVAL, ENOMEM, ENOSYS
from kernel_py.lib.errors import KernelError

CSIGNAL = 0x000000ff
CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_PIDFD = 0x00001000
CLONE_PTRACE = 0x00002000
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
CLONE_SYSVSEM = 0x00040000
CLONE_SETTLS = 0x00080000
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_CHILD_SETTID = 0x01000000
SUPPORTED = (CSIGNAL | CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_VFORK |
             CLONE_PARENT | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
             CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID)


def copy_process(k, t, flags, newsp, parent_tid, child_tid, tls):
    """The child task, runnable; raises KernelError (EAGAIN, ENOMEM...)."""
    procs = k.procs
    if flags & CLONE_THREAD or (flags & CLONE_SIGHAND and not flags & CLONE_VM):
        raise KernelError("EINVAL", "threads are not supported")
    if flags & ~SUPPORTED:
        raise KernelError("EINVAL", "clone flags 0x%x" % (flags & ~SUPPORTED))
    procs.check_task_limit(t)
    pid = procs.alloc_pid()
    if flags & CLONE_VM:
        mm = t.mm
        mm.users += 1
    else:
        procs.busy.append(t)
        try:
            mm = t.mm.dup()
        finally:
            procs.busy.remove(t)
        if t.pid not in procs.tasks or t.state not in (TASK_RUNNING,):
            mm.destroy()
            raise KernelError("ENOMEM", "fork: the parent was killed (out of memory)")
    ppid = t.ppid if flags & CLONE_PARENT else t.pid
    c = Task(k, pid, t.comm, ppid, mm)
    c.new_user_context()
    c.regs[:] = t.regs
    c.fpu[:] = t.fpu
    c.regs[RAX] = 0
    if newsp:
        c.regs[RSP] = newsp
    if flags & CLONE_SETTLS:
        c.regs[FS_BASE] = tls
    c.exe, c.cmdline, c.environ = t.exe, t.cmdline, t.environ
    c.pgid, c.sid = t.pgid, t.sid
    c.oom_score_adj = t.oom_score_adj
    c.nice = t.nice                             # inherited; the child's time starts at 0
    c.rlim = [list(r) for r in t.rlim]
    c.blocked = t.blocked
    c.sas_ss_sp, c.sas_ss_size, c.sas_ss_flags = t.sas_ss_sp, t.sas_ss_size, t.sas_ss_flags
    c.exit_signal = flags & CSIGNAL
    c.files = t.files.get() if flags & CLONE_FILES else t.files.dup(k)
    c.fs = t.fs.get() if flags & CLONE_FS else t.fs.copy()
    c.sighand = t.sighand if flags & CLONE_SIGHAND else t.sighand.copy()
    c.start_time = k.clock.jiffies()
    if flags & CLONE_CHILD_CLEARTID:
        c.clear_child_tid = child_tid
    procs.tasks[pid] = c
    if not flags & CLONE_VM and k.uprobes is not None:
        k.uprobes.dup_mmap(t, c)                # the child's text without the parent's probes
    parent = procs.tasks.get(ppid)
    if parent is not None:
        parent.children.append(pid)
    procs.forks += 1
    return c


def do_fork(t, flags, newsp, parent_tid, child_tid, tls):
    k = t.k
    hw = k.hw
    try:
        c = copy_process(k, t, flags, newsp, parent_tid, child_tid, tls)
    except KernelError as e:
        return -(EAGAIN if e.errname == "EAGAIN" else ENOMEM if e.errname == "ENOMEM" else EINVAL)
    tid = struct.pack("<i", c.pid)
    if flags & CLONE_PARENT_SETTID and not hw.copy_to_user(parent_tid, tid):
        pass                                    # Linux ignores a bad pointer here too
    if flags & CLONE_CHILD_SETTID:
        # the child's copy of the word: write it through the child's tables
        procs = k.procs
        procs.use_task(c)
        hw.copy_to_user(child_tid, tid)
        procs.use_task(t)
    k.sched.wake_up_process(c)
    if flags & CLONE_VFORK:
        c.vfork_parent = t
        pid = c.pid

        def vfork_wait():
            if c.vfork_parent is None:
                return pid
            return k.sched.sleep(t, t.wait_vfork, vfork_wait, state="D")
        return vfork_wait()
    return c.pid


def sys_fork(t):
    return do_fork(t, sig.SIGCHLD, 0, 0, 0, 0)


def sys_vfork(t):
    return do_fork(t, CLONE_VM | CLONE_VFORK | sig.SIGCHLD, 0, 0, 0, 0)


def sys_clone(t, flags, newsp, parent_tid, child_tid, tls):
    return do_fork(t, flags & 0xFFFFFFFFFFFFFFFF, newsp, parent_tid, child_tid, tls)


def sys_clone3(t, uargs, size):
    return -ENOSYS                              # glibc falls back to clone



def open_console(k, t):
    """/dev/console, opened through the VFS (a filp object, devtmpfs's
    node); the terminal's File directly when there is no VFS."""
    if k.vfs is not None and "/" in k.vfs.ns:
        try:
            return filp_open(k, t, "/dev/console", O_RDWR)
        except KernelError:
            pass
    return File(TtyFile(k.tty), O_RDWR, None, "/dev/console")


# The environment a program the kernel starts gets (init/main.c's envp_init,
# with a PATH that reaches the data disk's programs).
ENVP_INIT = ("HOME=/", "TERM=linux", "PATH=/bin:/sbin:/usr/bin:/usr/sbin:/mnt/bin",
             "SHELL=/bin/sh", "USER=root", "LOGNAME=root")


def spawn_user(k, path, argv, envp, ppid=1, pid=0):
    """A new process running the program at path, its fds 0-2 on the
    console (the console's `run`, and init=, which asks for pid 1): (task,
    0), or (None, -errno) with nothing left behind."""
    procs = k.procs
    try:
        procs.check_task_limit(None)
        if not pid or pid in procs.tasks:
            pid = procs.alloc_pid()
    except KernelError:
        return None, -EAGAIN
    t = Task(k, pid, path.rsplit("/", 1)[-1][:15], ppid, None)
    t.new_user_context()
    t.files = FdTable()
    t.fs = FsStruct("/")
    t.sighand = sig.SigHand()
    t.rlim = default_rlimits(procs.max_tasks)
    t.start_time = k.clock.jiffies()
    procs.tasks[pid] = t
    procs.forks += 1
    r = do_execve(k, t, path, [a.encode() for a in argv], [e.encode() for e in envp])
    if r < 0:
        t.files.close_all(k)
        del procs.tasks[pid]
        return None, r
    # fds 0-2 once the program is loaded (Linux's console_on_rootfs opens
    # them before init's exec; the program sees the same): a failed spawn
    # has taken no file object
    console = open_console(k, t)
    for fd in range(3):
        t.files.alloc_fd(console.get() if fd else console)
    parent = procs.tasks.get(ppid)
    if parent is not None:
        parent.children.append(pid)
    t.state = "S"
    k.sched.wake_up_process(t)
    return t, 0
