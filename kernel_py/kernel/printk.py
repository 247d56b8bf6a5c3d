# The kernel log's reader side (Linux's kernel/printk/printk.c: do_syslog
# and the syslog(2) system call). printk (kernel/kernel.py) appends each
# line to k.log with the TSC it was logged at; the log keeps the newest
# lines whose text fits LOG_BUF_LEN bytes, as Linux's ring buffer of
# CONFIG_LOG_BUF_SHIFT = 17 does, and forgets older ones. syslog(2) reads
# that log as dmesg prints it: "<PRI>[SECONDS.MICROS] MESSAGE\n" per line
# (printk.time=1's prefix), PRI the kernel facility with the default
# message level. /dev/kmsg (drivers/mem.py) reads the same records in its
# own format.

from kernel_py.kernel.sched import BLOCKED  # noqa: F401 - SYSLOG_ACTION_READ may return it
from kernel_py.kernel.signal import signal_pending
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EFAULT, EINVAL, ERESTARTSYS

LOG_BUF_LEN = 1 << 17                   # bytes of message text kept (log_buf_len)
LOGLEVEL_DEFAULT = 4                    # MESSAGE_LOGLEVEL_DEFAULT (KERN_WARNING)

SYSLOG_ACTION_CLOSE = 0
SYSLOG_ACTION_OPEN = 1
SYSLOG_ACTION_READ = 2
SYSLOG_ACTION_READ_ALL = 3
SYSLOG_ACTION_READ_CLEAR = 4
SYSLOG_ACTION_CLEAR = 5
SYSLOG_ACTION_CONSOLE_OFF = 6
SYSLOG_ACTION_CONSOLE_ON = 7
SYSLOG_ACTION_CONSOLE_LEVEL = 8
SYSLOG_ACTION_SIZE_UNREAD = 9
SYSLOG_ACTION_SIZE_BUFFER = 10


def first_seq(k):
    """The sequence number of the oldest line still in the log."""
    return k.log_next_seq - len(k.log)


def log_time_us(k, i):
    """Microseconds since boot when k.log[i] was logged."""
    clock = k.clock
    if clock is None or i >= len(k.log_times):
        return 0
    return max(0, clock.us(k.log_times[i] - clock.t0))


def dmesg_line(k, i):
    """k.log[i] as dmesg prints it: "[    5.123456] text" (print_time)."""
    us = log_time_us(k, i)
    return "[%5d.%06d] %s" % (us // 1000000, us % 1000000, k.log[i])


def syslog_text(k, seq):
    """The lines from sequence number seq on, in syslog's format."""
    first = first_seq(k)
    out = []
    for i in range(max(0, seq - first), len(k.log)):
        out.append("<%d>%s\n" % (LOGLEVEL_DEFAULT, dmesg_line(k, i)))
    return "".join(out).encode()


def sys_syslog(t, action, buf, size):
    """do_syslog: read, clear or size the kernel log. Every task is root
    here, so the capability check always passes."""
    k = t.k
    if action in (SYSLOG_ACTION_CLOSE, SYSLOG_ACTION_OPEN, SYSLOG_ACTION_CONSOLE_OFF,
                  SYSLOG_ACTION_CONSOLE_ON):
        return 0
    if action == SYSLOG_ACTION_CONSOLE_LEVEL:
        return 0 if 1 <= size <= 8 else -EINVAL
    if action == SYSLOG_ACTION_SIZE_BUFFER:
        return LOG_BUF_LEN
    if action == SYSLOG_ACTION_SIZE_UNREAD:
        return len(syslog_text(k, max(k.log_syslog_seq, first_seq(k))))
    if action == SYSLOG_ACTION_CLEAR:
        k.log_clear_seq = k.log_next_seq
        return 0
    if action in (SYSLOG_ACTION_READ, SYSLOG_ACTION_READ_ALL, SYSLOG_ACTION_READ_CLEAR):
        if not buf or size < 0:
            return -EINVAL
        if size == 0:
            return 0
        if action == SYSLOG_ACTION_READ:
            return syslog_read(t, buf, size)
        return syslog_read_all(t, buf, size, action == SYSLOG_ACTION_READ_CLEAR)
    return -EINVAL


def syslog_read_all(t, buf, size, clear):
    """syslog_print_all: the newest whole lines since the last CLEAR that
    fit in size bytes, oldest first."""
    k = t.k
    lines = syslog_text(k, max(k.log_clear_seq, first_seq(k))).split(b"\n")[:-1]
    out, n = [], 0
    for line in reversed(lines):
        if n + len(line) + 1 > size:
            break
        out.append(line + b"\n")
        n += len(line) + 1
    data = b"".join(reversed(out))
    if data and not k.hw.copy_to_user(buf, data):
        return -EFAULT
    if clear:
        k.log_clear_seq = k.log_next_seq
    return len(data)


def syslog_read(t, buf, size):
    """syslog_print: lines not yet read by this action, waiting for one
    when there is none; the lines it returns are consumed."""
    k = t.k

    def check():
        seq = max(k.log_syslog_seq, first_seq(k))
        if seq >= k.log_next_seq:
            if signal_pending(t):
                return -ERESTARTSYS
            if k.log_wait is None:
                k.log_wait = WaitQueue()
            return k.sched.sleep(t, k.log_wait, check)
        data, n = [], 0
        first = first_seq(k)
        while seq < k.log_next_seq:
            line = ("<%d>%s\n" % (LOGLEVEL_DEFAULT, dmesg_line(k, seq - first))).encode()
            if n + len(line) > size:
                if not data:
                    data.append(line[:size])
                    n = size
                    seq += 1
                break
            data.append(line)
            n += len(line)
            seq += 1
        if not k.hw.copy_to_user(buf, b"".join(data)):
            return -EFAULT
        k.log_syslog_seq = seq
        return n
    return check()
