# poll, ppoll, select, pselect6 (Linux's fs/select.c): ask each file's
# poll operation what is ready; if nothing is and time remains, sleep on
# every file's wait queue at once (and the timeout, through the
# scheduler's timed sleep) and ask again when woken. Regular files are
# always ready (DEFAULT_POLLMASK); the terminal, pipes, eventfd and kmsg
# say.
#
# A signal ends the wait: -ERESTARTNOHAND, which signal delivery turns
# into EINTR when a handler runs and into a restart of the call otherwise
# (Linux's poll restarts with the time left, through a restart block;
# here a restarted poll waits its whole timeout again). ppoll and pselect6
# run with the given signal mask and put the old one back on return, or
# after the handler of the signal that ended the wait (saved_sigmask, as
# rt_sigsuspend does). select and pselect6 write the time left back.

import struct

from kernel_py.fs.file import (
    POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM, POLLWRBAND,
    POLLWRNORM, fdget, nofile,
)
from kernel_py.kernel import signal as sig
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL, ERESTARTNOHAND

POLLIN_SET = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR
POLLOUT_SET = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR
POLLEX_SET = POLLPRI
NSEC = 1000000000
M64 = 0xFFFFFFFFFFFFFFFF


class Waiter:
    """The queues one poll sleeps on (poll_wqueues)."""

    def __init__(self, t):
        self.t = t
        self.queues = []

    def add(self, wq):
        if wq is not None and wq not in self.queues:
            wq.add(self.t)
            self.queues.append(wq)

    def done(self):
        for wq in self.queues:
            wq.remove(self.t)
        self.queues = []


def file_mask(t, fd):
    """The file's ready events and its wait queue, or (POLLNVAL, None)."""
    f = fdget(t, fd)
    if f is None:
        return POLLNVAL, None
    return f.f_op.poll(f), f.f_op.wait_queue(f)


def deadline_of(k, ns):
    """A TSC deadline for ns from now: None (for ever) for ns < 0, 0 for now."""
    if ns is None or ns < 0:
        return None
    if ns == 0:
        return 0
    return k.clock.deadline(ns)


def read_timespec(k, addr):
    """ns of a user timespec; None when addr is NULL; -EFAULT / -EINVAL."""
    if not addr:
        return None
    b = k.hw.copy_from_user(addr, 16)
    if b is None:
        return -EFAULT
    sec, nsec = struct.unpack("<qq", b)
    if sec < 0 or nsec < 0 or nsec >= NSEC:
        return -EINVAL
    return sec * NSEC + nsec


class SigmaskScope:
    """ppoll/pselect6's temporary signal mask."""

    def __init__(self, t):
        self.t = t
        self.set = False

    def load(self, k, umask, size):
        """0 or -errno; the mask is in force from here."""
        if not umask:
            return 0
        if size != 8:
            return -EINVAL
        b = k.hw.copy_from_user(umask, 8)
        if b is None:
            return -EFAULT
        t = self.t
        if t.saved_sigmask is None:
            t.saved_sigmask = t.blocked
            self.set = True
        t.blocked = struct.unpack("<Q", b)[0] & ~sig.SIG_KERNEL_ONLY
        return 0

    def end(self, r):
        """Put the old mask back, unless a handler will run for the signal
        that ended the wait (its frame restores it)."""
        t = self.t
        if not self.set:
            return
        if r == -ERESTARTNOHAND:
            signo = sig.next_signal(t)
            if signo and t.sighand.action[signo][0] not in (sig.SIG_DFL, sig.SIG_IGN):
                return
        t.blocked = t.saved_sigmask
        t.saved_sigmask = None
        self.set = False


def wait_loop(t, scan, deadline, finish):
    """Call scan(waiter or None) -> ready count until something is ready,
    the deadline passes or a signal comes; finish(r) makes the result."""
    k = t.k
    w = Waiter(t)

    def attempt():
        n = scan(None)
        if n or deadline == 0 or (deadline is not None and k.clock.rdtsc() >= deadline):
            w.done()
            return finish(n)
        if sig.signal_pending(t):
            w.done()
            return finish(-ERESTARTNOHAND)
        scan(w)
        return k.sched.sleep(t, None, attempt, deadline or 0)
    return attempt()


def do_poll(t, ufds, nfds, deadline, scope):
    k = t.k
    nfds &= 0xFFFFFFFF
    if nfds > nofile(t):
        scope.end(0)
        return -EINVAL
    raw = k.hw.copy_from_user(ufds, 8 * nfds) if nfds else b""
    if raw is None:
        scope.end(0)
        return -EFAULT
    ents = [struct.unpack_from("<ihh", raw, 8 * i) for i in range(nfds)]
    revents = [0] * nfds

    def scan(w):
        n = 0
        for i in range(nfds):
            fd, events, _ = ents[i]
            if fd < 0:
                revents[i] = 0
                continue
            mask, wq = file_mask(t, fd)
            mask &= (events & 0xFFFF) | POLLERR | POLLHUP | POLLNVAL
            revents[i] = mask
            if mask:
                n += 1
            elif w is not None:
                w.add(wq)
        return n

    def finish(r):
        scope.end(r)
        if r < 0:
            return r
        out = bytearray(raw)
        for i in range(nfds):
            struct.pack_into("<h", out, 8 * i + 6, revents[i])
        if nfds and not k.hw.copy_to_user(ufds, bytes(out)):
            return -EFAULT
        return r
    return wait_loop(t, scan, deadline, finish)


def sys_poll(t, ufds, nfds, timeout_ms):
    timeout_ms = sig.s32(timeout_ms)
    ns = None if timeout_ms < 0 else timeout_ms * 1000000
    return do_poll(t, ufds, nfds, deadline_of(t.k, ns), SigmaskScope(t))


def sys_ppoll(t, ufds, nfds, tsp, sigmask, sigsetsize):
    k = t.k
    ns = read_timespec(k, tsp)
    if ns is not None and ns < 0:
        return ns
    scope = SigmaskScope(t)
    r = scope.load(k, sigmask, sigsetsize)
    if r:
        return r
    return do_poll(t, ufds, nfds, deadline_of(k, ns), scope)


def do_select(t, n, inp, outp, exp, deadline, scope, write_time):
    k = t.k
    n = sig.s32(n)
    if n < 0:
        scope.end(0)
        return -EINVAL
    n = min(n, t.files.fdsize())
    nbytes = ((n + 63) // 64) * 8
    sets = []
    for addr in (inp, outp, exp):
        if not addr or not nbytes:
            sets.append(None)
            continue
        b = k.hw.copy_from_user(addr, nbytes)
        if b is None:
            scope.end(0)
            return -EFAULT
        sets.append(int.from_bytes(b, "little"))
    want = (sets[0] or 0) | (sets[1] or 0) | (sets[2] or 0)
    for fd in range(n):
        if want >> fd & 1 and fdget(t, fd) is None:
            scope.end(0)
            return -EBADF
    res = [0, 0, 0]

    def scan(w):
        count = 0
        r = [0, 0, 0]
        for fd in range(n):
            bit = 1 << fd
            if not want & bit:
                continue
            mask, wq = file_mask(t, fd)
            hit = False
            for i, setmask in ((0, POLLIN_SET), (1, POLLOUT_SET), (2, POLLEX_SET)):
                if sets[i] is not None and sets[i] & bit and mask & setmask:
                    r[i] |= bit
                    count += 1
                    hit = True
            if not hit and w is not None:
                w.add(wq)
        res[0], res[1], res[2] = r
        return count

    def finish(r):
        scope.end(r)
        write_time()
        if r < 0:
            return r
        addrs = (inp, outp, exp)
        for i in range(3):
            if sets[i] is not None:
                if not k.hw.copy_to_user(addrs[i], res[i].to_bytes(nbytes, "little")):
                    return -EFAULT
        return r
    return wait_loop(t, scan, deadline, finish)


def time_left_writer(k, addr, deadline, timeval):
    """Writes the time left to *addr at the end (select's timeout update)."""
    def write():
        if not addr or deadline is None:
            return
        left = 0
        if deadline:
            left = max(0, k.clock.ns(deadline - k.clock.rdtsc()))
        if timeval:
            data = struct.pack("<qq", left // NSEC, left % NSEC // 1000)
        else:
            data = struct.pack("<qq", left // NSEC, left % NSEC)
        k.hw.copy_to_user(addr, data)       # Linux ignores a fault here too
    return write


def sys_select(t, n, inp, outp, exp, tvp):
    k = t.k
    ns = None
    if tvp:
        b = k.hw.copy_from_user(tvp, 16)
        if b is None:
            return -EFAULT
        sec, usec = struct.unpack("<qq", b)
        if sec < 0 or usec < 0:
            return -EINVAL
        ns = sec * NSEC + min(usec, 999999) * 1000 + (usec // 1000000) * NSEC
    deadline = deadline_of(k, ns)
    return do_select(t, n, inp, outp, exp, deadline, SigmaskScope(t),
                     time_left_writer(k, tvp, deadline, True))


def sys_pselect6(t, n, inp, outp, exp, tsp, usig):
    k = t.k
    ns = read_timespec(k, tsp)
    if ns is not None and ns < 0:
        return ns
    scope = SigmaskScope(t)
    if usig:
        b = k.hw.copy_from_user(usig, 16)
        if b is None:
            return -EFAULT
        ss, ss_len = struct.unpack("<QQ", b)
        r = scope.load(k, ss, ss_len)
        if r:
            return r
    deadline = deadline_of(k, ns)
    return do_select(t, n, inp, outp, exp, deadline, scope,
                     time_left_writer(k, tsp, deadline, False))
