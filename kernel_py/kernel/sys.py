# Small system calls about the process and the system (Linux's
# kernel/sys.c, kernel/resource limits, kernel/sched/core.c's sched_yield,
# drivers/char/random.c's getrandom): ids, process groups and sessions,
# uname, resource limits, sysinfo, getrandom, prctl, arch_prctl,
# set_tid_address, set_robust_list and rseq; the supplementary groups.

import struct

from kernel_py.arch.x86.layout import USER_END
from kernel_py.arch.x86.ptrace import FS_BASE, GS_BASE
from kernel_py.kernel.cputime import set_user_nice
from kernel_py.kernel.sched import MAX_NICE, MIN_NICE
from kernel_py.kernel.signal import s32
from kernel_py.fs.file import NR_OPEN
from kernel_py.lib.errno import EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from kernel_py.mm import vmstat

UTS_SYSNAME = "Linux"
UTS_NODENAME = "kernel-py"
UTS_RELEASE = "6.1.0-kernel_py"        # glibc checks the kernel is new enough
UTS_VERSION = "#1 SMP PREEMPT_DYNAMIC"
UTS_MACHINE = "x86_64"
UTS_DOMAIN = "(none)"
UTS_FIELD = 65

# resource limits (include/uapi/asm-generic/resource.h), Linux's defaults
RLIM_INFINITY = (1 << 64) - 1
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE = 0, 1, 2, 3, 4
RLIMIT_RSS, RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS = 5, 6, 7, 8, 9
RLIM_NLIMITS = 16
INR_OPEN_CUR, INR_OPEN_MAX = 1024, 4096  # RLIMIT_NOFILE at boot, soft and hard (Linux's include/uapi/linux/fs.h)


def default_rlimits(max_tasks):
    r = [[RLIM_INFINITY, RLIM_INFINITY] for _ in range(RLIM_NLIMITS)]
    r[RLIMIT_STACK] = [8 << 20, RLIM_INFINITY]
    r[RLIMIT_CORE] = [0, RLIM_INFINITY]
    r[RLIMIT_NPROC] = [max_tasks, max_tasks]
    r[RLIMIT_NOFILE] = [INR_OPEN_CUR, INR_OPEN_MAX]
    r[RLIMIT_MEMLOCK] = [8 << 20, 8 << 20]
    r[10] = [RLIM_INFINITY, RLIM_INFINITY]      # RLIMIT_LOCKS
    r[11] = [max_tasks, max_tasks]              # RLIMIT_SIGPENDING
    r[12] = [819200, 819200]                    # RLIMIT_MSGQUEUE
    r[13] = [0, 0]                              # RLIMIT_NICE
    r[14] = [0, 0]                              # RLIMIT_RTPRIO
    return r


# -- ids (no users here: everything runs as root, uid 0) ------------------------

def sys_getpid(t):
    return t.tgid


def sys_gettid(t):
    return t.pid


def sys_getppid(t):
    return t.ppid


def sys_getuid(t):
    return 0


sys_geteuid = sys_getgid = sys_getegid = sys_getuid


def sys_getpgid(t, pid):
    p = find(t, pid)
    return p.pgid if p is not None else -ESRCH


def sys_getpgrp(t):
    return t.pgid


def sys_getsid(t, pid):
    p = find(t, pid)
    return p.sid if p is not None else -ESRCH


def sys_setpgid(t, pid, pgid):
    pid, pgid = s32(pid), s32(pgid)
    if pgid < 0:
        return -EINVAL
    p = find(t, pid)
    if p is None or (p is not t and p.ppid != t.pid):
        return -ESRCH
    if p.sid != t.sid:
        return -EPERM
    if p.pid == p.sid:
        return -EPERM                           # a session leader keeps its group
    if pgid == 0:
        pgid = p.pid
    if pgid != p.pid and not any(q.pgid == pgid and q.sid == t.sid
                                 for q in t.k.procs.tasks.values()):
        return -EPERM
    p.pgid = pgid
    return 0


def sys_setsid(t):
    if t.pgid == t.pid or any(q.pgid == t.pid for q in t.k.procs.tasks.values()):
        return -EPERM                           # a group leader cannot (ksys_setsid)
    t.sid = t.pgid = t.pid
    return t.pid


def find(t, pid):
    pid = s32(pid)
    if pid == 0:
        return t
    return t.k.procs.tasks.get(pid)         # a zombie too, as find_task_by_vpid


# -- the system ---------------------------------------------------------------

def sys_uname(t, buf):
    b = bytearray(UTS_FIELD * 6)
    for i, s in enumerate((UTS_SYSNAME, UTS_NODENAME, UTS_RELEASE, UTS_VERSION,
                           UTS_MACHINE, UTS_DOMAIN)):
        e = s.encode()[:UTS_FIELD - 1]
        b[i * UTS_FIELD:i * UTS_FIELD + len(e)] = e
    return 0 if t.k.hw.copy_to_user(buf, b) else -EFAULT


def sys_sysinfo(t, buf):
    """struct sysinfo: uptime, loads (x 65536), RAM and swap in mem_unit
    bytes (1 here), procs."""
    k = t.k
    b = bytearray(112)
    uptime = k.clock.uptime_s()
    loads = k.loadavg.sysinfo_loads()
    total = k.buddy.managed_pages() * 4096
    free = k.buddy.nr_free_pages() * 4096
    stotal, sfree = k.swap.totals()
    bufferram = k.pagecache.nr_bdev if k.pagecache is not None else 0
    struct.pack_into("<qQQQQQQQQQH", b, 0, uptime, loads[0], loads[1], loads[2],
                     total, free, vmstat.counter(k, "nr_shmem") * 4096, bufferram * 4096,
                     stotal * 4096, sfree * 4096, len(k.procs.tasks))
    struct.pack_into("<QQI", b, 88, 0, 0, 1)     # totalhigh, freehigh, mem_unit
    return 0 if k.hw.copy_to_user(buf, b) else -EFAULT


def sys_getrandom(t, buf, count, flags):
    if flags & ~0x7:                            # GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE
        return -EINVAL
    if count < 0:
        return -EINVAL
    count = min(count, 1 << 25)
    data = t.k.random.get_bytes(count)
    return count if t.k.hw.copy_to_user(buf, data) else -EFAULT


# -- priority (kernel/sys.c) ----------------------------------------------------------

PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2


def prio_tasks(t, which, who):
    """The tasks setpriority/getpriority address; None for a bad `which`.
    Every task is root's (uid 0): PRIO_USER 0 is all of them."""
    tasks = t.k.procs.tasks
    who = s32(who)
    if which == PRIO_PROCESS:
        p = t if who == 0 else tasks.get(who)
        return [p] if p is not None and p.state not in ("Z", "X") else []
    if which == PRIO_PGRP:
        pgid = t.pgid if who == 0 else who
        return [p for p in tasks.values() if p.pgid == pgid and p.state not in ("Z", "X")]
    if which == PRIO_USER:
        return [p for p in tasks.values() if p.state not in ("Z", "X")] if who == 0 else []
    return None


def sys_setpriority(t, which, who, niceval):
    ps = prio_tasks(t, which, who)
    if ps is None:
        return -EINVAL
    if not ps:
        return -ESRCH
    nice = max(MIN_NICE, min(MAX_NICE, s32(niceval)))   # root may lower it (CAP_SYS_NICE)
    for p in ps:
        set_user_nice(p, nice)
    return 0


def sys_getpriority(t, which, who):
    """20 - nice of the most favoured task (the syscall's 1..40, which
    glibc turns back into a nice value)."""
    ps = prio_tasks(t, which, who)
    if ps is None:
        return -EINVAL
    if not ps:
        return -ESRCH
    return max(20 - p.nice for p in ps)


# -- CPU affinity (kernel/sched/core.c): one CPU ---------------------------------------

CPUMASK_BYTES = 8                       # the one unsigned long of a one-CPU machine's mask


def sys_sched_getaffinity(t, pid, length, umask):
    if find(t, pid) is None:
        return -ESRCH
    length &= 0xFFFFFFFF
    if length * 8 < 1 or length & 7:    # fewer bits than CPUs, or not whole longs
        return -EINVAL
    if not t.k.hw.copy_to_user(umask, struct.pack("<Q", 1)):
        return -EFAULT
    return CPUMASK_BYTES


def sys_sched_setaffinity(t, pid, length, umask):
    if find(t, pid) is None:
        return -ESRCH
    length &= 0xFFFFFFFF
    b = t.k.hw.copy_from_user(umask, min(length, CPUMASK_BYTES)) if length else b""
    if b is None:
        return -EFAULT
    if not b or not b[0] & 1:
        return -EINVAL                  # no CPU of this machine in the mask
    return 0


# -- resource limits ------------------------------------------------------------

def sys_prlimit64(t, pid, resource, new, old):
    k = t.k
    p = find(t, pid)
    if p is None:
        return -ESRCH
    if resource < 0 or resource >= RLIM_NLIMITS:
        return -EINVAL
    lim = p.rlim[resource]
    if new:
        b = k.hw.copy_from_user(new, 16)
        if b is None:
            return -EFAULT
        cur, mx = struct.unpack("<QQ", b)
        if cur > mx:
            return -EINVAL
        if resource == RLIMIT_NOFILE and mx > NR_OPEN:
            return -EPERM                       # do_prlimit; every task is root (CAP_SYS_RESOURCE)
    if old and not k.hw.copy_to_user(old, struct.pack("<QQ", lim[0], lim[1])):
        return -EFAULT
    if new:
        lim[0], lim[1] = cur, mx
    return 0


def sys_getrlimit(t, resource, rlim):
    return sys_prlimit64(t, 0, resource, 0, rlim)


def sys_setrlimit(t, resource, rlim):
    return sys_prlimit64(t, 0, resource, rlim, 0)


# -- thread-area and libc start-up calls -----------------------------------------

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004

# prctl options (include/uapi/linux/prctl.h)
PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
PR_SET_NAME, PR_GET_NAME = 15, 16
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39
TASK_COMM_LEN = 16
NSIG = 64


def put_int(t, addr, v):
    return 0 if t.k.hw.copy_to_user(addr, struct.pack("<i", v)) else -EFAULT


def sys_prctl(t, option, a2, a3, a4, a5):
    """kernel/sys.c's prctl, the options programs use: the parent-death
    signal, dumpable, the name (comm), the child subreaper and
    no_new_privs flags; any other option is EINVAL, as Linux answers an
    unknown one."""
    option = s32(option)
    if option == PR_SET_PDEATHSIG:
        if a2 < 0 or a2 > NSIG:
            return -EINVAL
        t.pdeath_signal = a2
        return 0
    if option == PR_GET_PDEATHSIG:
        return put_int(t, a2, t.pdeath_signal)
    if option == PR_GET_DUMPABLE:
        return t.dumpable
    if option == PR_SET_DUMPABLE:
        if a2 not in (0, 1):
            return -EINVAL
        t.dumpable = a2
        return 0
    if option == PR_SET_NAME:
        name = t.k.hw.strncpy_from_user(a2, TASK_COMM_LEN)
        if name is None:
            return -EFAULT
        t.comm = name[:TASK_COMM_LEN - 1].split(b"\0")[0].decode("utf-8", "replace")
        return 0
    if option == PR_GET_NAME:
        b = t.comm.encode()[:TASK_COMM_LEN - 1]
        return 0 if t.k.hw.copy_to_user(a2, b + bytes(TASK_COMM_LEN - len(b))) else -EFAULT
    if option == PR_SET_CHILD_SUBREAPER:
        t.child_subreaper = bool(a2)
        return 0
    if option == PR_GET_CHILD_SUBREAPER:
        return put_int(t, a2, int(t.child_subreaper))
    if option == PR_SET_NO_NEW_PRIVS:
        if a2 != 1 or a3 or a4 or a5:
            return -EINVAL
        t.no_new_privs = True
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        return int(t.no_new_privs)
    return -EINVAL


# -- supplementary groups (kernel/groups.c): root with none

NGROUPS_MAX = 65536


def sys_getgroups(t, size, ulist):
    """No supplementary groups: 0 whatever the size (a negative one is EINVAL)."""
    return -EINVAL if s32(size) < 0 else 0


def sys_setgroups(t, size, ulist):
    """Root may set them; this kernel keeps none (the list is read, to fault as Linux does)."""
    size = s32(size)
    if size < 0 or size > NGROUPS_MAX:
        return -EINVAL
    if size and t.k.hw.copy_from_user(ulist, 4 * size) is None:
        return -EFAULT
    return 0


def sys_arch_prctl(t, code, addr):
    regs = t.regs
    if code == ARCH_SET_FS or code == ARCH_SET_GS:
        if addr < 0 or addr >= USER_END:
            return -EPERM                       # Linux: a non-canonical or kernel base
        regs[FS_BASE if code == ARCH_SET_FS else GS_BASE] = addr
        return 0
    if code == ARCH_GET_FS or code == ARCH_GET_GS:
        v = regs[FS_BASE if code == ARCH_GET_FS else GS_BASE]
        return 0 if t.k.hw.copy_to_user(addr, struct.pack("<q", v)) else -EFAULT
    return -EINVAL


def sys_set_tid_address(t, tidptr):
    t.clear_child_tid = tidptr
    return t.pid


def sys_set_robust_list(t, head, size):
    if size != 24:                              # sizeof(struct robust_list_head)
        return -EINVAL
    t.robust_list = head
    return 0


def sys_rseq(t, rseq, rseq_len, flags, sig):
    return -ENOSYS                              # glibc then does without


def sys_sched_yield(t):
    k = t.k
    k.sched.need_resched = True
    return 0


# -- the file-creation mask -------------------------------------------------------

def sys_umask(t, mask):
    """umask: the new mask (its 0777 bits) in the task's fs_struct; the old one back."""
    fs = t.fs
    old = fs.umask
    fs.umask = mask & 0o777
    return old
