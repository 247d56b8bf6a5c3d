# Time (Linux's kernel/time/: posix-timers.c's clock_gettime,
# hrtimer.c's nanosleep, time.c's gettimeofday): the clocks come from the
# calibrated TSC (arch/x86/tsc.py), CLOCK_REALTIME from the RTC read at boot
# plus the TSC since (drivers/rtc.py); clock_settime is not offered (EPERM).
# There is no vDSO here, so each call is a real syscall.

import struct

from kernel_py.kernel.sched import BLOCKED  # noqa: F401 - nanosleep may return it
from kernel_py.kernel.signal import SIGALRM, send_signal, signal_pending
from kernel_py.lib.errno import EFAULT, EINVAL, EOPNOTSUPP, ERESTART_RESTARTBLOCK

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7
TIMER_ABSTIME = 1
NSEC = 1000000000
USER_HZ = 100                           # clock ticks of times() and /proc (sysconf(_SC_CLK_TCK))


class TimeKeeping:
    """k.time: the wall clock's base, read from the RTC at boot."""

    def __init__(self, clock, epoch_s):
        self.clock = clock
        self.realtime_base = epoch_s * NSEC     # CLOCK_REALTIME at uptime 0

    def clock_ns(self, t, which):
        """The value of clock `which` in ns, or None for an unknown clock."""
        c = self.clock
        if which in (CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME):
            return c.uptime_ns()
        if which in (CLOCK_REALTIME, CLOCK_REALTIME_COARSE):
            return self.realtime_base + c.uptime_ns()
        if which in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):
            return c.ns(t.utime + t.stime)
        return None


def timespec(ns):
    return struct.pack("<qq", ns // NSEC, ns % NSEC)


def read_timespec(hw, addr):
    """(ns) from a user struct timespec; None on a bad pointer, -1 when invalid."""
    b = hw.copy_from_user(addr, 16)
    if b is None:
        return None
    sec, nsec = struct.unpack("<qq", b)
    if sec < 0 or nsec < 0 or nsec >= NSEC:
        return -1
    return sec * NSEC + nsec


def sys_clock_gettime(t, which, tp):
    k = t.k
    ns = k.time.clock_ns(t, which)
    if ns is None:
        return -EINVAL
    return 0 if k.hw.copy_to_user(tp, timespec(ns)) else -EFAULT


def sys_clock_getres(t, which, tp):
    k = t.k
    if k.time.clock_ns(t, which) is None:
        return -EINVAL
    if tp and not k.hw.copy_to_user(tp, timespec(1)):
        return -EFAULT
    return 0


def sys_gettimeofday(t, tv, tz):
    k = t.k
    ns = k.time.clock_ns(t, CLOCK_REALTIME)
    if tv and not k.hw.copy_to_user(tv, struct.pack("<qq", ns // NSEC, ns % NSEC // 1000)):
        return -EFAULT
    if tz and not k.hw.copy_to_user(tz, bytes(8)):
        return -EFAULT
    return 0


def sys_time(t, tloc):
    k = t.k
    s = k.time.clock_ns(t, CLOCK_REALTIME) // NSEC
    if tloc and not k.hw.copy_to_user(tloc, struct.pack("<q", s)):
        return -EFAULT
    return s


def sys_times(t, buf):
    """struct tms in clock ticks (USER_HZ)."""
    k = t.k
    c = k.clock
    vals = [c.us(v) * USER_HZ // 1000000 for v in (t.utime, t.stime, t.cutime, t.cstime)]
    if buf and not k.hw.copy_to_user(buf, struct.pack("<qqqq", *vals)):
        return -EFAULT
    return (k.clock.jiffies() * USER_HZ // 250) & 0x7FFFFFFFFFFFFFFF


def sys_nanosleep(t, req, rem):
    return do_nanosleep(t, CLOCK_MONOTONIC, 0, req, rem)


def sys_clock_nanosleep(t, which, flags, req, rem):
    if which == CLOCK_THREAD_CPUTIME_ID:
        return -EOPNOTSUPP                      # hrtimer_nanosleep has no CPU clock (posix-cpu-timers.c)
    if which not in (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID):
        return -EINVAL
    if which == CLOCK_PROCESS_CPUTIME_ID:
        return -EINVAL                          # a process CPU clock sleep: not offered here
    return do_nanosleep(t, which, flags, req, rem)


def do_nanosleep(t, which, flags, req, rem):
    """Sleep on the TSC deadline; a signal ends it early with the time
    left in rem (EINTR after the handler: ERESTART_RESTARTBLOCK's meaning)."""
    k = t.k
    ns = read_timespec(k.hw, req)
    if ns is None:
        return -EFAULT
    if ns < 0:
        return -EINVAL
    tk = k.time
    if flags & TIMER_ABSTIME:
        ns -= tk.clock_ns(t, which)
        if ns <= 0:
            return 0
    clock = k.clock
    wake_at = clock.deadline(ns)

    def check():
        now = clock.rdtsc()
        if now >= wake_at:
            return 0
        if signal_pending(t):
            if rem and not flags & TIMER_ABSTIME:
                k.hw.copy_to_user(rem, timespec(clock.ns(wake_at - now)))
            return -ERESTART_RESTARTBLOCK
        return k.sched.sleep(t, None, check, wake_at)
    return check()


def sys_alarm(t, seconds):
    """SIGALRM after `seconds` (0 cancels); the seconds left of the alarm it
    replaces, rounded as Linux's alarm_setitimer does (at least 1)."""
    k = t.k
    sched = k.sched
    clock = k.clock
    left = 0
    old = t.alarm
    if old is not None:
        sched.del_timer(old)
        t.alarm = None
        rem = old[0] - clock.rdtsc()
        if rem > 0:
            left = max(1, (rem + clock.hz // 2) // clock.hz)
    seconds &= 0xFFFFFFFF
    if seconds:
        def ring():
            t.alarm = None
            if t.state not in ("Z", "X"):
                send_signal(k, t, SIGALRM)
        t.alarm = sched.add_timer(clock.deadline(seconds * NSEC), ring)
    return left
