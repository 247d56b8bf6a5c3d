"""dup, dup2, dup3, fcntl, ioctl, sync/fsync, and poll, ppoll, select,
pselect6 over pipes, eventfd, regular files and the terminal, with
timeouts through the scheduler's timed sleep."""

import struct
import time

import pytest

from kernel_py.fs.file import (
    O_APPEND, O_CREAT, O_LARGEFILE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY,
)
from kernel_py.kernel import signal as sig
from kernel_py.kernel.sched import BLOCKED
from kernel_py.lib.errno import (
    EBADF, EFAULT, EINVAL, EMFILE, ENOTTY, EPERM, ERESTARTNOHAND,
)
from tests.model.usersupport import UserBox

AT_FDCWD = -100
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_GETLK, F_SETLK = 5, 6
F_DUPFD_CLOEXEC = 1030
POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 1, 4, 8, 16, 32
POLLRDNORM, POLLWRNORM = 0x40, 0x100


@pytest.fixture
def box():
    return UserBox()


def opn(b, t, path, flags=O_RDONLY, mode=0o644):
    return b.sys(t, "openat", AT_FDCWD, path, flags, mode)


def mkpipe(b, t, flags=0):
    p = b.ubuf(t, 8)
    assert b.call(t, "pipe2", p, flags) == 0
    return struct.unpack("<ii", b.get(t, p, 8))


def test_dup_family(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/d", O_CREAT | O_RDWR)
    assert fd == 0
    assert box.call(t, "dup", fd) == 1
    box.write_all(t, 1, b"shared position")
    assert box.call(t, "lseek", 0, 0, 1) == 15                   # one File, one position
    assert box.call(t, "dup2", 0, 10) == 10
    assert box.call(t, "dup2", 0, 0) == 0
    assert box.call(t, "dup2", 5, 5) == -EBADF
    assert box.call(t, "dup2", 99, 3) == -EBADF
    assert box.call(t, "dup2", 0, -1) == -EBADF
    assert box.call(t, "dup2", 0, 1 << 20) == -EBADF
    assert box.call(t, "dup3", 0, 0, 0) == -EINVAL
    assert box.call(t, "dup3", 0, 11, 0x1) == -EINVAL
    assert box.call(t, "dup3", 0, 11, 0o2000000) == 11
    assert box.call(t, "fcntl", 11, F_GETFD, 0) == 1
    assert box.call(t, "fcntl", 10, F_GETFD, 0) == 0
    # dup2 over an open descriptor closes it
    other = opn(box, t, "/dev/null")
    assert box.call(t, "dup2", 0, other) == other
    assert box.call(t, "lseek", other, 0, 1) == 15
    assert box.call(t, "dup", 77) == -EBADF
    t.rlim[7] = [12, 12]
    assert box.call(t, "dup", 0) == 3
    while box.call(t, "dup", 0) >= 0:
        pass
    assert box.call(t, "dup", 0) == -EMFILE


def test_fcntl(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/f", O_CREAT | O_WRONLY)
    assert box.call(t, "fcntl", fd, F_DUPFD, 5) == 5
    assert box.call(t, "fcntl", fd, F_DUPFD, 5) == 6
    assert box.call(t, "fcntl", fd, F_DUPFD_CLOEXEC, 0) == 1    # the lowest free
    assert box.call(t, "fcntl", 1, F_GETFD, 0) == 1
    assert box.call(t, "fcntl", fd, F_DUPFD, 1 << 20) == -EINVAL
    assert box.call(t, "fcntl", fd, F_DUPFD, -1) == -EINVAL
    assert box.call(t, "fcntl", fd, F_SETFD, 1) == 0
    assert box.call(t, "fcntl", fd, F_GETFD, 0) == 1
    assert box.call(t, "fcntl", fd, F_SETFD, 0) == 0
    assert box.call(t, "fcntl", fd, F_GETFL, 0) == O_WRONLY | O_LARGEFILE
    # F_SETFL changes O_APPEND and O_NONBLOCK only
    assert box.call(t, "fcntl", fd, F_SETFL, O_APPEND | O_NONBLOCK | O_RDWR | O_CREAT) == 0
    assert box.call(t, "fcntl", fd, F_GETFL, 0) == O_WRONLY | O_LARGEFILE | O_APPEND | O_NONBLOCK
    box.write_all(t, fd, b"1234")
    box.call(t, "lseek", fd, 0, 0)
    box.write_all(t, fd, b"5")
    assert box.call(t, "lseek", fd, 0, 1) == 5                   # appended
    # record locks: checked, granted
    fl = box.ubuf(t, 32, struct.pack("<hhiqqi", 1, 0, 0, 0, 0, 0) + b"\0" * 4)
    assert box.call(t, "fcntl", fd, F_SETLK, fl) == 0
    assert box.call(t, "fcntl", fd, F_GETLK, fl) == 0
    assert struct.unpack_from("<h", box.get(t, fl, 2))[0] == 2   # F_UNLCK
    bad = box.ubuf(t, 32, struct.pack("<hh", 7, 0) + b"\0" * 28)
    assert box.call(t, "fcntl", fd, F_SETLK, bad) == -EINVAL
    assert box.call(t, "fcntl", fd, F_SETLK, 0) == -EFAULT
    assert box.call(t, "fcntl", fd, 12345, 0) == -EINVAL
    assert box.call(t, "fcntl", 99, F_GETFD, 0) == -EBADF
    assert box.call(t, "fcntl", fd, 1032, 0) == -EBADF           # F_GETPIPE_SZ of a file


def test_ioctl_generic(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/i", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"x" * 100)
    box.call(t, "lseek", fd, 30, 0)
    a = box.ubuf(t, 8)
    assert box.call(t, "ioctl", fd, 0x541B, a) == 0              # FIONREAD: bytes left
    assert struct.unpack("<i", box.get(t, a, 4))[0] == 70
    assert box.call(t, "ioctl", fd, 0x5451, 0) == 0              # FIOCLEX
    assert box.call(t, "fcntl", fd, F_GETFD, 0) == 1
    assert box.call(t, "ioctl", fd, 0x5450, 0) == 0              # FIONCLEX
    assert box.call(t, "fcntl", fd, F_GETFD, 0) == 0
    one = box.ubuf(t, 4, struct.pack("<i", 1))
    assert box.call(t, "ioctl", fd, 0x5421, one) == 0            # FIONBIO
    assert box.call(t, "fcntl", fd, F_GETFL, 0) & O_NONBLOCK
    assert box.call(t, "ioctl", fd, 0x5421, 0) == -EFAULT
    assert box.call(t, "ioctl", fd, 0x5401, a) == -ENOTTY        # TCGETS on a file
    assert box.call(t, "ioctl", 99, 0x5401, a) == -EBADF
    c = opn(box, t, "/dev/tty", O_RDWR)
    assert box.call(t, "ioctl", c, 0x5401, 0) == -EFAULT
    pg = box.ubuf(t, 4)
    assert box.call(t, "ioctl", c, 0x540F, pg) == 0              # TIOCGPGRP
    assert struct.unpack("<i", box.get(t, pg, 4))[0] == t.pgid
    assert box.call(t, "ioctl", c, 0x5410, box.ubuf(t, 4, struct.pack("<i", t.pgid))) == 0


def test_sync_calls(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/s", O_CREAT | O_RDWR)
    assert box.call(t, "fsync", fd) == 0
    assert box.call(t, "fdatasync", fd) == 0
    assert box.call(t, "syncfs", fd) == 0
    assert box.call(t, "sync") == 0
    r, w = mkpipe(box, t)
    assert box.call(t, "fsync", r) == -EINVAL
    assert box.call(t, "fsync", 99) == -EBADF
    assert box.call(t, "syncfs", 99) == -EBADF
    n = opn(box, t, "/proc/meminfo")
    assert box.call(t, "fsync", n) == -EINVAL


def pollfds(b, t, pairs):
    return b.ubuf(t, 8 * len(pairs), b"".join(struct.pack("<ihh", fd, ev, 0) for fd, ev in pairs))


def revents(b, t, addr, n):
    raw = b.get(t, addr, 8 * n)
    return [struct.unpack_from("<ihh", raw, 8 * i)[2] for i in range(n)]


def test_poll_readiness(box):
    t = box.new_task()
    r, w = mkpipe(box, t)
    e = box.call(t, "eventfd2", 0, 0)
    f = opn(box, t, "/tmp/p", O_CREAT | O_RDWR)
    con = opn(box, t, "/dev/console", O_RDWR)
    pf = pollfds(box, t, [(r, POLLIN), (w, POLLOUT), (e, POLLIN | POLLOUT), (f, POLLIN | POLLOUT),
                          (con, POLLIN | POLLOUT), (99, POLLIN), (-1, POLLIN)])
    assert box.call(t, "poll", pf, 7, 0) == 5
    assert revents(box, t, pf, 7) == [0, POLLOUT, POLLOUT, POLLIN | POLLOUT, POLLOUT, POLLNVAL, 0]
    box.write_all(t, w, b"hi")
    box.call(t, "write", e, box.ubuf(t, 8, struct.pack("<Q", 1)), 8)
    box.k.tty.readq += b"typed\n"
    assert box.call(t, "poll", pf, 7, 0) == 6
    assert revents(box, t, pf, 7)[:5] == [POLLIN, POLLOUT, POLLIN | POLLOUT, POLLIN | POLLOUT,
                                         POLLIN | POLLOUT]
    box.call(t, "close", w)
    one = pollfds(box, t, [(r, POLLIN)])
    box.call(t, "read", r, box.ubuf(t, 2), 2)
    assert box.call(t, "poll", one, 1, 0) == 1
    assert revents(box, t, one, 1) == [POLLHUP]                  # no writer
    r2, w2 = mkpipe(box, t)
    box.call(t, "close", r2)
    pw = pollfds(box, t, [(w2, POLLOUT)])
    assert box.call(t, "poll", pw, 1, 0) == 1
    assert revents(box, t, pw, 1) == [POLLOUT | POLLERR]         # no reader


def test_poll_sleeps_and_wakes(box):
    t = box.new_task()
    u = box.new_task("writer")
    r, w = mkpipe(box, t)
    uw = u.files.alloc_fd(t.files.file(w).get())
    pf = pollfds(box, t, [(r, POLLIN)])
    assert box.call(t, "poll", pf, 1, -1) is BLOCKED
    assert t in t.files.file(r).private.wait.tasks
    box.write_all(u, uw, b"data")
    assert box.resume(t) == 1
    assert revents(box, t, pf, 1) == [POLLIN]
    assert t not in t.files.file(r).private.wait.tasks          # the queues were left
    # a timeout: asleep until the deadline passes, then 0
    box.call(t, "read", r, box.ubuf(t, 4), 4)
    assert box.call(t, "poll", pf, 1, 20) is BLOCKED
    assert t.wake_at
    time.sleep(0.03)
    box.k.sched.wake_sleepers()
    assert box.resume(t) == 0
    assert revents(box, t, pf, 1) == [0]
    # a signal ends it
    assert box.call(t, "poll", pf, 1, -1) is BLOCKED
    sig.send_signal(box.k, t, sig.SIGUSR1)
    assert box.resume(t) == -ERESTARTNOHAND


def test_poll_errors(box):
    t = box.new_task()
    assert box.call(t, "poll", 0, 1, 0) == -EFAULT
    assert box.call(t, "poll", box.unmapped(t), 2, 0) == -EFAULT
    assert box.call(t, "poll", 0, 0, 0) == 0
    assert box.call(t, "poll", box.ubuf(t, 8), 5000, 0) == -EINVAL      # > RLIMIT_NOFILE
    ts = box.ubuf(t, 16, struct.pack("<qq", 0, -1))
    pf = pollfds(box, t, [(0, POLLIN)])
    assert box.call(t, "ppoll", pf, 1, ts, 0, 8) == -EINVAL
    assert box.call(t, "ppoll", pf, 1, box.unmapped(t), 0, 8) == -EFAULT
    zero = box.ubuf(t, 16, struct.pack("<qq", 0, 0))
    assert box.call(t, "ppoll", pf, 1, zero, box.ubuf(t, 8), 4) == -EINVAL
    assert box.call(t, "ppoll", pf, 1, zero, box.unmapped(t), 8) == -EFAULT
    assert t.blocked == 0


def test_ppoll_sigmask(box):
    t = box.new_task()
    r, w = mkpipe(box, t)
    pf = pollfds(box, t, [(r, POLLIN)])
    mask = box.ubuf(t, 8, struct.pack("<Q", sig.sigbit(sig.SIGUSR2)))
    zero = box.ubuf(t, 16, struct.pack("<qq", 0, 0))
    assert box.call(t, "ppoll", pf, 1, zero, mask, 8) == 0
    assert t.blocked == 0 and t.saved_sigmask is None           # restored
    assert box.call(t, "ppoll", pf, 1, 0, mask, 8) is BLOCKED
    assert t.blocked == sig.sigbit(sig.SIGUSR2)                  # in force while it waits
    sig.send_signal(box.k, t, sig.SIGUSR2)                        # blocked: no wake-up
    assert t.state == "S"
    sig.send_signal(box.k, t, sig.SIGUSR1)
    assert box.resume(t) == -ERESTARTNOHAND
    assert t.blocked == 0 and t.saved_sigmask is None            # no handler: back at once


def fdset(fds, n=64):
    v = 0
    for fd in fds:
        v |= 1 << fd
    return v.to_bytes(n // 8, "little")


def test_select_and_pselect6(box):
    t = box.new_task()
    r, w = mkpipe(box, t)
    f = opn(box, t, "/tmp/s", O_CREAT | O_RDWR)
    rs = box.ubuf(t, 8, fdset([r, f]))
    ws = box.ubuf(t, 8, fdset([w]))
    es = box.ubuf(t, 8, fdset([r]))
    tv = box.ubuf(t, 16, struct.pack("<qq", 0, 0))
    assert box.call(t, "select", f + 1, rs, ws, es, tv) == 2     # f readable, w writable
    assert box.get(t, rs, 8) == fdset([f]) and box.get(t, ws, 8) == fdset([w])
    assert box.get(t, es, 8) == fdset([])
    box.write_all(t, w, b"x")
    box.put(t, rs - t.buf, fdset([r]))
    assert box.call(t, "select", r + 1, rs, 0, 0, tv) == 1
    assert box.get(t, rs, 8) == fdset([r])
    bad = box.ubuf(t, 8, fdset([40]))
    assert box.call(t, "select", 41, bad, 0, 0, tv) == -EBADF
    assert box.call(t, "select", -1, 0, 0, 0, tv) == -EINVAL
    assert box.call(t, "select", 5, box.unmapped(t), 0, 0, tv) == -EFAULT
    assert box.call(t, "select", 5, 0, 0, 0, box.unmapped(t)) == -EFAULT
    neg = box.ubuf(t, 16, struct.pack("<qq", -1, 0))
    assert box.call(t, "select", 5, 0, 0, 0, neg) == -EINVAL
    # pselect6: a timeout that runs out, the time left written back
    box.call(t, "read", r, box.ubuf(t, 1), 1)
    box.put(t, rs - t.buf, fdset([r]))
    ts = box.ubuf(t, 16, struct.pack("<qq", 0, 10000000))       # 10 ms
    assert box.call(t, "pselect6", r + 1, rs, 0, 0, ts, 0) is BLOCKED
    time.sleep(0.02)
    box.k.sched.wake_sleepers()
    assert box.resume(t) == 0
    assert box.get(t, ts, 16) == struct.pack("<qq", 0, 0)
    assert box.get(t, rs, 8) == fdset([])
    sm = box.ubuf(t, 16, struct.pack("<QQ", box.ubuf(t, 8, bytes(8)), 7))
    assert box.call(t, "pselect6", 1, 0, 0, 0, ts, sm) == -EINVAL
    assert box.call(t, "pselect6", 1, 0, 0, 0, ts, box.unmapped(t)) == -EFAULT


def test_nofile_limit_as_linux_sets_it(box):
    """RLIMIT_NOFILE starts at 1024/4096 (INR_OPEN_CUR/MAX); root may raise
    the hard limit (mmbench's slab_hold does), up to fs.nr_open and no
    further; the raised limit is enforced by fd allocation."""
    t = box.new_task()
    rl = box.ubuf(t, 16)
    assert box.call(t, "prlimit64", 0, 7, 0, rl) == 0
    assert struct.unpack("<QQ", box.get(t, rl, 16)) == (1024, 4096)
    box.put(t, rl - t.buf, struct.pack("<QQ", 5000, 5000))
    assert box.call(t, "prlimit64", 0, 7, rl, 0) == 0
    r, w = mkpipe(box, t)
    assert box.call(t, "fcntl", r, F_DUPFD, 4999) == 4999
    assert box.call(t, "fcntl", r, F_DUPFD, 5000) == -EINVAL
    box.put(t, rl - t.buf, struct.pack("<QQ", 1 << 20, (1 << 20) + 1))
    assert box.call(t, "prlimit64", 0, 7, rl, 0) == -EPERM          # above fs.nr_open
