# Process exit and wait (Linux's kernel/exit.c): do_exit releases what a
# task holds — its files, its address space (frames, swap slots, page-cache
# references: the existing teardown, MmStruct.destroy), its children (to
# init) — and leaves a zombie whose status the parent collects with wait4;
# then the pid is free again.
#
# Wait status (include/uapi/linux/wait.h, what WIFEXITED & co. decode):
#   exited with code c   (c & 0xff) << 8
#   killed by signal s   s, | 0x80 when it dumped core
#   stopped by signal s  (s << 8) | 0x7f
#   continued            0xffff

import struct

from kernel_py.kernel import signal as sig
from kernel_py.kernel.sched import BLOCKED
from kernel_py.kernel.task import EXIT_DEAD, EXIT_ZOMBIE, TASK_STOPPED
from kernel_py.lib.errno import ECHILD, EFAULT, EINVAL, ERESTARTSYS, ESRCH

WNOHANG = 0x00000001
WUNTRACED = 0x00000002
WCONTINUED = 0x00000008
W_CONTINUED = 0xFFFF                    # the status word of a continued child
WNOWAIT = 0x01000000
__WALL = 0x40000000
__WCLONE = 0x80000000
RUSAGE_SIZE = 144


def do_exit(k, t, status):
    """The task ends with wait status `status`; never returns to it."""
    if t.state == EXIT_ZOMBIE or t.state == EXIT_DEAD:
        return BLOCKED
    procs = k.procs
    caller = procs.current      # a kill from another task's context: the OOM killer in its fault
    k.sched.remove(t)
    t.pending = 0
    if t.alarm is not None:
        k.sched.del_timer(t.alarm)
        t.alarm = None
    if t.clear_child_tid and t.mm is not None and t.mm.pgd is not None:
        # CLONE_CHILD_CLEARTID: zero the tid word and wake a futex waiter there
        procs.use_task(t)
        k.hw.copy_to_user(t.clear_child_tid, b"\0\0\0\0")
        k.futex.wake(t, t.clear_child_tid, 1)
    if t.open_file is not None:             # killed asleep in an open: its File goes
        t.open_file.fput(k)
        t.open_file = None
    if t.files is not None:
        t.files.close_all(k)
        t.files = None
    release_vfork(k, t)
    if k.uprobes is not None:
        k.uprobes.task_exit(t)              # tracers report (memleak), probes go
    release_mm(k, t)
    t.oom_pending = False       # an OOM victim's memory is back: the killer may choose again
    t.exit_code = status
    t.state = EXIT_ZOMBIE
    reparent_children(k, t)
    notify_parent(k, t)
    procs.exits += 1
    if caller is not None and caller is not t and caller.mm is not None:
        procs.use_task(caller)  # the tid word and release_mm switched away: its tables back
    return BLOCKED


def release_mm(k, t):
    mm = t.mm
    if mm is None:
        return
    t.mm = None
    t.maxrss_kb = max(t.maxrss_kb, mm.hiwater_rss * 4)
    procs = k.procs
    if procs.current is t or procs.cur_mm is mm:
        procs.unuse_task()
    mm.users -= 1
    if mm.users <= 0:
        mm.destroy()


def release_vfork(k, t):
    """A vfork child that execs or exits lets its parent run again."""
    parent = t.vfork_parent
    if parent is not None:
        t.vfork_parent = None
        k.sched.wake_up(parent.wait_vfork)


def reparent_children(k, t):
    """Orphans go to init (pid 1); zombies among them are reaped there."""
    procs = k.procs
    init = procs.tasks.get(1)
    for pid in list(t.children):
        c = procs.tasks.get(pid)
        if c is None:
            continue
        c.ppid = 1
        if c.pdeath_signal and c.state != EXIT_ZOMBIE:      # forget_original_parent's pdeath_signal
            sig.send_signal(k, c, c.pdeath_signal)
        if init is not None and init is not t:
            init.children.append(pid)
            if c.state == EXIT_ZOMBIE and not init.is_user():
                release_task(k, c)
    t.children = []


def notify_parent(k, t):
    """SIGCHLD and a wake-up for a parent in wait4; a parent that ignores
    SIGCHLD (or init that is the kernel's) never sees the zombie."""
    procs = k.procs
    parent = procs.tasks.get(t.ppid)
    if parent is None:
        release_task(k, t)
        return
    if not parent.is_user():
        release_task(k, t)                      # the console's processes: nobody waits
        return
    act = parent.sighand.action[sig.SIGCHLD]
    autoreap = act[0] == sig.SIG_IGN or act[1] & sig.SA_NOCLDWAIT
    if t.exit_signal:
        status = t.exit_code
        code, val = (sig.CLD_EXITED, status >> 8) if not status & 0x7F else (
            sig.CLD_DUMPED if status & 0x80 else sig.CLD_KILLED, status & 0x7F)
        sig.send_signal(k, parent, t.exit_signal, code, 0, t.pid, val)
    if autoreap:
        release_task(k, t)
    k.sched.wake_up(parent.wait_chldexit)


def release_task(k, t):
    """The zombie is gone: its pid is free again."""
    procs = k.procs
    t.state = EXIT_DEAD
    if procs.tasks.get(t.pid) is t:
        del procs.tasks[t.pid]
        k.cpustat.release(t)                    # /proc/stat's user and nice keep it
    parent = procs.tasks.get(t.ppid)
    if parent is not None and t.pid in parent.children:
        parent.children.remove(t.pid)
        parent.cutime += t.utime + t.cutime
        parent.cstime += t.stime + t.cstime
        parent.cmin_flt += t.min_flt + t.cmin_flt
        parent.cmaj_flt += t.maj_flt + t.cmaj_flt


def child_matches(c, pid, t):
    if pid > 0:
        return c.pid == pid
    if pid == 0:
        return c.pgid == t.pgid
    if pid < -1:
        return c.pgid == -pid
    return True


def sys_wait4(t, upid, ustatus, options, urusage):
    k = t.k
    pid = sig.s32(upid)
    options &= 0xFFFFFFFF
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE):
        return -EINVAL
    if pid == -2147483648:
        return -ESRCH                           # kernel/exit.c: -INT_MIN does not exist

    def attempt():
        found = False
        for cpid in list(t.children):
            c = k.procs.tasks.get(cpid)
            if c is None or not child_matches(c, pid, t):
                continue
            found = True
            if c.state == EXIT_ZOMBIE:
                return reap(k, t, c, ustatus, urusage)
            if c.state == TASK_STOPPED and options & WUNTRACED and not c.stop_reported:
                c.stop_reported = True
                return report(k, c, c.exit_code, ustatus, urusage)
            if c.continued and options & WCONTINUED:
                c.continued = False                 # wait_task_continued
                return report(k, c, W_CONTINUED, ustatus, urusage)
        if not found:
            return -ECHILD
        if options & WNOHANG:
            return 0
        if sig.signal_pending(t):
            return -ERESTARTSYS
        return k.sched.sleep(t, t.wait_chldexit, attempt)
    return attempt()


def reap(k, t, c, ustatus, urusage):
    status = c.exit_code
    r = report(k, c, status, ustatus, urusage)
    if r > 0:
        release_task(k, c)
    return r


def report(k, c, status, ustatus, urusage):
    hw = k.hw
    if ustatus and not hw.copy_to_user(ustatus, struct.pack("<i", status)):
        return -EFAULT
    if urusage and not hw.copy_to_user(urusage, rusage_bytes(k, c)):
        return -EFAULT
    return c.pid


def rusage_bytes(k, c):
    """struct rusage: ru_utime, ru_stime (timevals), then maxrss, ..., minflt, majflt."""
    b = bytearray(RUSAGE_SIZE)
    u = k.clock.us(c.utime + c.cutime)
    s = k.clock.us(c.stime + c.cstime)
    struct.pack_into("<qqqq", b, 0, u // 1000000, u % 1000000, s // 1000000, s % 1000000)
    maxrss = c.maxrss_kb
    struct.pack_into("<q", b, 32, maxrss)
    struct.pack_into("<qq", b, 64, c.min_flt + c.cmin_flt, c.maj_flt + c.cmaj_flt)
    return b


def sys_exit(t, code):
    return do_exit(t.k, t, (code & 0xFF) << 8)


def sys_exit_group(t, code):
    return do_exit(t.k, t, (code & 0xFF) << 8)
