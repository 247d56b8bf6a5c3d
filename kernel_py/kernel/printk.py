# The syslog system call (Linux's kernel/printk/printk.c, do_syslog): the
# kernel log (k.log, the lines printk kept; drivers/mem.py serves the same
# records through /dev/kmsg) as text, for dmesg and klogd. Each line is
# "<LEVEL>[SECONDS.MICROSECONDS] MESSAGE", as Linux's syslog_print and
# record_print_text make it with printk.time on.
#
# SYSLOG_ACTION_READ is the one reader's destructive read (k.syslog_seq:
# the next record it has not had; it waits for one); READ_ALL reads the
# newest records that fit the buffer since the last CLEAR
# (k.syslog_clear_seq) without consuming them; SIZE_UNREAD and SIZE_BUFFER
# say how much there is to read and how big the log is.

from kernel_py.drivers.mem import LOGLEVEL_DEFAULT, kmsg_first
from kernel_py.kernel.signal import s32, signal_pending
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EFAULT, EINVAL, ERESTARTSYS

SYSLOG_ACTION_CLOSE, SYSLOG_ACTION_OPEN, SYSLOG_ACTION_READ = 0, 1, 2
SYSLOG_ACTION_READ_ALL, SYSLOG_ACTION_READ_CLEAR, SYSLOG_ACTION_CLEAR = 3, 4, 5
SYSLOG_ACTION_CONSOLE_OFF, SYSLOG_ACTION_CONSOLE_ON, SYSLOG_ACTION_CONSOLE_LEVEL = 6, 7, 8
SYSLOG_ACTION_SIZE_UNREAD, SYSLOG_ACTION_SIZE_BUFFER = 9, 10
LOG_BUF_LEN = 1 << 17                   # CONFIG_LOG_BUF_SHIFT=17: what SIZE_BUFFER answers


def syslog_line(k, seq):
    """The text of record seq (still in k.log)."""
    i = seq - kmsg_first(k)
    clock = k.clock
    us = 0
    if clock is not None and i < len(k.log_times):
        us = max(0, clock.us(k.log_times[i] - clock.t0))
    return ("<%d>[%5d.%06d] %s\n" % (LOGLEVEL_DEFAULT, us // 1000000, us % 1000000,
                                     k.log[i])).encode()


def text_since(k, seq, size, newest):
    """The records from seq on as text, at most size bytes: the newest
    that fit (READ_ALL) or the oldest (READ); (text, next seq)."""
    first = max(seq, kmsg_first(k))
    lines = [syslog_line(k, s) for s in range(first, k.log_next_seq)]
    out = []
    n = 0
    order = reversed(lines) if newest else lines
    for ln in order:
        if n + len(ln) > size:
            break
        out.append(ln)
        n += len(ln)
    if newest:
        out.reverse()
        return b"".join(out), k.log_next_seq
    return b"".join(out), first + len(out)


def syslog_read(t, buf, size):
    k = t.k

    def attempt():
        if k.syslog_seq >= k.log_next_seq:
            if signal_pending(t):
                return -ERESTARTSYS
            if k.log_wait is None:
                k.log_wait = WaitQueue()
            return k.sched.sleep(t, k.log_wait, attempt)
        text, nxt = text_since(k, k.syslog_seq, size, False)
        if not k.hw.copy_to_user(buf, text):
            return -EFAULT
        k.syslog_seq = nxt
        return len(text)
    return attempt()


def sys_syslog(t, action, buf, size):
    k = t.k
    action = s32(action)
    size = s32(size)
    if action in (SYSLOG_ACTION_CLOSE, SYSLOG_ACTION_OPEN,
                  SYSLOG_ACTION_CONSOLE_OFF, SYSLOG_ACTION_CONSOLE_ON):
        return 0
    if action in (SYSLOG_ACTION_READ, SYSLOG_ACTION_READ_ALL, SYSLOG_ACTION_READ_CLEAR):
        if size < 0:
            return -EINVAL
        if not size:
            return 0
        if not buf:
            return -EINVAL
        if action == SYSLOG_ACTION_READ:
            return syslog_read(t, buf, size)
        text, _ = text_since(k, k.syslog_clear_seq, size, True)
        if not k.hw.copy_to_user(buf, text):
            return -EFAULT
        if action == SYSLOG_ACTION_READ_CLEAR:
            k.syslog_clear_seq = k.log_next_seq
        return len(text)
    if action == SYSLOG_ACTION_CLEAR:
        k.syslog_clear_seq = k.log_next_seq
        return 0
    if action == SYSLOG_ACTION_CONSOLE_LEVEL:
        return 0 if 1 <= size <= 8 else -EINVAL
    if action == SYSLOG_ACTION_SIZE_UNREAD:
        return len(text_since(k, k.syslog_seq, LOG_BUF_LEN, False)[0])
    if action == SYSLOG_ACTION_SIZE_BUFFER:
        return LOG_BUF_LEN
    return -EINVAL
