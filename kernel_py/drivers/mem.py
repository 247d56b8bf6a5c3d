# The memory devices (Linux's drivers/char/mem.c: null, zero, full,
# random and urandom through drivers/char/random.c, kmsg through
# kernel/printk/printk.c's devkmsg_fops) and the terminal's nodes
# (drivers/tty/tty_io.c: /dev/tty, /dev/console), registered by
# (major, minor) with fs/char_dev.py.
#
# /dev/random and /dev/urandom read k.random (lib/random.py): xoshiro256**,
# good statistics but NOT cryptographic — this kernel has no entropy pool.
# Writes to them are accepted and discarded (Linux mixes them into the
# pool, without crediting entropy).
#
# /dev/kmsg: each read returns one record of the kernel log (k.log) as
# "PRI,SEQ,TIMESTAMP,-;MESSAGE\n": PRI the syslog priority (facility 0,
# kernel; level 4, the default message level), SEQ the record's sequence
# number, TIMESTAMP microseconds since boot, control characters escaped as
# \xNN. A buffer too small for the record: EINVAL. Records that fell out
# of the log (it keeps LOG_BUF_LEN bytes, kernel/printk.py): EPIPE once, then the oldest kept. No
# record yet: wait (EAGAIN with O_NONBLOCK). A write is one record: its
# text (an optional "<N>" level prefix dropped) printk'd.

from kernel_py.drivers.tty import TtyFile
from kernel_py.fs.char_dev import register_chrdev
from kernel_py.fs.file import (
    MMAP_ANON, O_NONBLOCK, POLLERR, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM,
    FileOperations,
)
from kernel_py.kernel.printk import LOGLEVEL_DEFAULT, log_time_us
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EAGAIN, EINVAL, ENOSPC, EPIPE, ESPIPE

CHUNK = 64 << 10
ZEROS = bytes(CHUNK)
LOG_USER = 1 << 3               # facility of records written to /dev/kmsg


class NullFile(FileOperations):
    """/dev/null: EOF to readers, everything accepted."""

    seekable = True

    def read(self, f, t, n):
        return b""

    def pread(self, f, t, n, pos):
        return b""

    def write(self, f, t, data):
        return len(data)

    def pwrite(self, f, t, data, pos):
        return len(data)

    def llseek(self, f, off, whence):
        f.pos = 0                       # null_lseek: always 0
        return 0


class ZeroFile(NullFile):
    """/dev/zero: zeros; writes accepted; mmap gives anonymous memory."""

    read_more = True
    mmap = MMAP_ANON

    def read(self, f, t, n):
        return ZEROS[:n] if n <= CHUNK else bytes(n)

    def pread(self, f, t, n, pos):
        return self.read(f, t, n)


class FullFile(ZeroFile):
    """/dev/full: zeros to readers, ENOSPC to writers; no mmap."""

    mmap = None

    def write(self, f, t, data):
        return -ENOSPC

    def pwrite(self, f, t, data, pos):
        return -ENOSPC


class RandomFile(FileOperations):
    """/dev/random, /dev/urandom (see the header: not cryptographic)."""

    read_more = True
    seekable = True

    def read(self, f, t, n):
        return t.k.random.get_bytes(min(n, CHUNK))

    def pread(self, f, t, n, pos):
        return self.read(f, t, n)

    def write(self, f, t, data):
        return len(data)

    def llseek(self, f, off, whence):
        return 0                        # noop_llseek


class KmsgState:
    """An open /dev/kmsg: the next record's sequence number."""

    def __init__(self, k, seq):
        self.k = k
        self.seq = seq


def kmsg_first(k):
    return k.log_next_seq - len(k.log)


def kmsg_record(k, i):
    """The record of k.log[i] in /dev/kmsg's format."""
    msg = k.log[i]
    seq = k.log_next_seq - len(k.log) + i
    us = log_time_us(k, i)
    out = []
    for ch in msg:
        o = ord(ch)
        if o < 32 or o == 127 or ch == "\\":
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return ("%d,%d,%d,-;%s\n" % (LOGLEVEL_DEFAULT, seq, us, "".join(out))).encode()


class KmsgFile(FileOperations):
    def read(self, f, t, n):
        k = t.k
        st = f.private
        first = kmsg_first(k)
        if st.seq < first:
            st.seq = first
            return -EPIPE                   # records were lost since the last read
        if st.seq >= k.log_next_seq:
            return -EAGAIN if f.flags & O_NONBLOCK else None
        rec = kmsg_record(k, st.seq - first)
        if len(rec) > n:
            return -EINVAL
        st.seq += 1
        return rec

    def write(self, f, t, data):
        try:
            text = bytes(data).decode()
        except (UnicodeError, ValueError):
            text = "".join([chr(c) if c < 128 else "?" for c in data])
        if text.startswith("<"):
            end = text.find(">")
            if 1 < end < 5 and text[1:end].isdigit():
                text = text[end + 1:]
        t.k.printk(text.rstrip("\n"))
        return len(data)

    def llseek(self, f, off, whence):
        if off:
            return -ESPIPE
        k = f.private.k
        if whence in (0, 3):                # SEEK_SET, SEEK_DATA: the oldest record
            f.private.seq = kmsg_first(k)
        elif whence == 2:                   # SEEK_END: after the newest
            f.private.seq = k.log_next_seq
        else:
            return -EINVAL
        return 0

    def poll(self, f):
        k = f.private.k
        st = f.private
        mask = POLLOUT | POLLWRNORM
        if st.seq < k.log_next_seq:
            mask |= POLLIN | POLLRDNORM
        if st.seq < kmsg_first(k):
            mask |= POLLERR | POLLPRI
        return mask

    def wait_queue(self, f):
        k = f.private.k
        if k.log_wait is None:
            k.log_wait = WaitQueue()
        return k.log_wait


NULL = NullFile()
ZERO = ZeroFile()
FULL = FullFile()
RANDOM = RandomFile()
KMSG = KmsgFile()


def kmsg_open(k, f):
    f.private = KmsgState(k, kmsg_first(k))
    return KMSG


register_chrdev(1, 3, lambda k, f: NULL)
register_chrdev(1, 5, lambda k, f: ZERO)
register_chrdev(1, 7, lambda k, f: FULL)
register_chrdev(1, 8, lambda k, f: RANDOM)
register_chrdev(1, 9, lambda k, f: RANDOM)
register_chrdev(1, 11, kmsg_open)
register_chrdev(5, 0, lambda k, f: TtyFile(k.tty))
register_chrdev(5, 1, lambda k, f: TtyFile(k.tty))
