# futex (Linux's kernel/futex/): FUTEX_WAIT and FUTEX_WAKE (and their
# BITSET forms, which glibc uses for timed waits), enough for a
# single-threaded libc and for processes that share memory.
#
# A waiter is keyed by what the word is: a private futex by (mm, address);
# a shared one by the frame and offset it lives in (get_futex_key), so two
# processes that map the same page wake each other.

import struct

from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_PRESENT

from kernel_py.kernel.signal import signal_pending
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EAGAIN, EFAULT, EINVAL, ENOSYS, ERESTARTSYS, ETIMEDOUT

FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_BITSET = 10
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
NSEC = 1000000000


class Futexes:
    """k.futex: the wait queues by key."""

    def __init__(self, k):
        self.k = k
        self.queues = {}

    def key(self, t, uaddr, private):
        if private:
            return (id(t.mm), uaddr)
        e = t.mm.pte(uaddr)                 # the frame, after the caller's read brought it in
        if e & _PAGE_PRESENT:
            return ("pa", (e & PTE_ADDR_MASK) | (uaddr & 0xFFF))
        return (id(t.mm), uaddr)

    def wake(self, t, uaddr, n, private=False):
        """Wake up to n waiters on the word; the number woken."""
        q = self.queues.get(self.key(t, uaddr, private))
        if q is None:
            return 0
        woken = 0
        while q.tasks and woken < n:
            w = q.tasks.pop(0)
            w.futex_woken = True
            self.k.sched.wake_up_process(w)
            woken += 1
        return woken

    def wait(self, t, uaddr, val, timeout_ns, private):
        k = self.k
        b = k.hw.copy_from_user(uaddr, 4)
        if b is None:
            return -EFAULT
        if struct.unpack("<i", b)[0] != val:
            return -EAGAIN
        key = self.key(t, uaddr, private)
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = WaitQueue()
        wake_at = k.clock.deadline(timeout_ns) if timeout_ns is not None else 0
        t.futex_woken = False

        def check():
            if t.futex_woken:
                return 0
            if wake_at and k.clock.rdtsc() >= wake_at:
                q.remove(t)
                return -ETIMEDOUT
            if signal_pending(t):
                q.remove(t)
                return -ERESTARTSYS
            return k.sched.sleep(t, q, check, wake_at)
        return check()


def sys_futex(t, uaddr, op, val, utime, uaddr2, val3):
    k = t.k
    private = bool(op & FUTEX_PRIVATE_FLAG)
    cmd = op & FUTEX_CMD_MASK & 0xFFFFFFFF
    val = val & 0xFFFFFFFF
    if uaddr & 3:
        return -EINVAL
    if cmd == FUTEX_WAKE or cmd == FUTEX_WAKE_BITSET:
        return k.futex.wake(t, uaddr, val, private)
    if cmd == FUTEX_WAIT or cmd == FUTEX_WAIT_BITSET:
        timeout = None
        if utime:
            b = k.hw.copy_from_user(utime, 16)
            if b is None:
                return -EFAULT
            sec, nsec = struct.unpack("<qq", b)
            if sec < 0 or nsec < 0 or nsec >= NSEC:
                return -EINVAL
            timeout = sec * NSEC + nsec
            if cmd == FUTEX_WAIT_BITSET:        # an absolute time on the chosen clock
                clock = 0 if op & FUTEX_CLOCK_REALTIME else 1
                timeout = max(0, timeout - k.time.clock_ns(t, clock))
        sval = val - (1 << 32) if val & 0x80000000 else val
        return k.futex.wait(t, uaddr, sval, timeout, private)
    return -ENOSYS
