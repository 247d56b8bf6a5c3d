"""Host tests of syscall handlers: a booted simulated kernel (with or
without a FAT disk), tasks that could run in ring 3 (registers, files, fs,
signal handlers, an address space with a scratch mapping), and the hw
user-copy calls the platform will provide (docs/programs.md): until it
lands on this branch, they are made here over the sim's vreadbytes /
vwritebytes through the task's CR3, returning None / False on a fault or a
range outside user space, as the real ones do."""

import struct

from kernel_py.arch.x86.layout import USER_END
from kernel_py.fs.file import FdTable
from kernel_py.fs.fs_struct import FsStruct
from kernel_py.kernel import signal as sig
from kernel_py.kernel.sched import BLOCKED
from kernel_py.kernel.sys import default_rlimits
from kernel_py.kernel.syscalls import SYSCALLS
from kernel_py.kernel.task import TASK_RUNNING
from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_READ, PROT_WRITE

from tests.model.fssupport import Box

MAP_ANONYMOUS = 0x20
STR_AREA = 16 << 10
M64 = (1 << 64) - 1


def install_uaccess(hw):
    """copy_from_user & co on the sim Machine (the platform's contract)."""
    if getattr(hw, "copy_from_user", None) is not None and getattr(hw, "_uaccess_sim", False):
        return

    def ok(addr, n):
        addr &= M64
        return n >= 0 and n <= USER_END and addr <= USER_END - n

    def copy_from_user(addr, n):
        if not ok(addr, n):
            return None
        if n == 0:
            return b""
        try:
            return bytes(hw.vreadbytes(addr & M64, n))
        except hw.Fault:
            return None

    def copy_to_user(addr, data):
        n = len(data)
        if not ok(addr, n):
            return False
        if n == 0:
            return True
        try:
            hw.vwritebytes(addr & M64, bytes(data))
        except hw.Fault:
            return False
        return True

    def strncpy_from_user(addr, maxn):
        out = bytearray()
        addr &= M64
        while len(out) < maxn:
            take = min(maxn - len(out), 4096 - (addr & 4095))
            b = copy_from_user(addr, take)
            if b is None:
                return None
            i = b.find(b"\0")
            if i >= 0:
                out += b[:i]
                return bytes(out)
            out += b
            addr += take
        return bytes(out)

    def get_user64(addr):
        b = copy_from_user(addr, 8)
        return None if b is None else struct.unpack("<Q", b)[0]

    def put_user64(addr, v):
        return copy_to_user(addr, struct.pack("<Q", v & M64))

    def clear_user(addr, n):
        return copy_to_user(addr, bytes(n))

    hw.copy_from_user = copy_from_user
    hw.copy_to_user = copy_to_user
    hw.strncpy_from_user = strncpy_from_user
    hw.get_user64 = get_user64
    hw.put_user64 = put_user64
    hw.clear_user = clear_user
    hw._uaccess_sim = True


class UserBox(Box):
    """A Box whose tasks make syscalls: new_task() gives a user task with a
    scratch mapping at .buf; call(t, name, *args) runs the handler the
    syscall table binds to name, with t's address space loaded, as the
    entry code would."""

    def __init__(self, disks=(), **kw):
        Box.__init__(self, list(disks), **kw)
        install_uaccess(self.hw)
        self.table = dict((name, fn) for name, fn, n in SYSCALLS)

    def new_task(self, name="prog", scratch=1 << 20, ppid=1):
        k = self.k
        t = k.procs.spawn(name, ppid)
        t.new_user_context()
        t.files = FdTable()
        t.fs = FsStruct("/")
        t.sighand = sig.SigHand()
        t.rlim = default_rlimits(k.procs.max_tasks)
        t.state = TASK_RUNNING
        return self.adopt(t, scratch)

    def adopt(self, t, scratch=1 << 20):
        """A scratch mapping at t.buf in t's (current) address space: a task
        spawn_user or execve made."""
        t.buf = t.mm.mmap(0, scratch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        t.scratch = scratch
        t.next_off = STR_AREA
        return t

    def call(self, t, name, *args):
        k = self.k
        k.procs.use_task(t)
        k.sched.current = t
        try:
            return self.table[name](t, *args)
        finally:
            k.sched.current = None

    def sys(self, t, name, *args):
        """call() with str/bytes arguments placed in t's memory as C strings
        (in the first STR_AREA bytes of t.buf, reused by every call)."""
        off = 0
        conv = []
        for a in args:
            if isinstance(a, (str, bytes)):
                data = a.encode() if isinstance(a, str) else a
                conv.append(self.put(t, off, data + b"\0"))
                off += len(data) + 1
                assert off <= STR_AREA
            else:
                conv.append(a)
        return self.call(t, name, *conv)

    def ubuf(self, t, n, fill=None):
        """n bytes of t's scratch memory past the string area (rolling)."""
        off = getattr(t, "next_off", STR_AREA)
        if off + n > t.scratch:
            off = STR_AREA
        assert off + n <= t.scratch, "scratch too small"
        t.next_off = (off + n + 15) & ~15
        if fill is not None:
            self.put(t, off, fill)
        return t.buf + off

    def read_all(self, t, fd, chunk=4096):
        out = b""
        a = self.ubuf(t, chunk)
        while True:
            n = self.call(t, "read", fd, a, chunk)
            assert n >= 0, n
            if not n:
                return out
            out += self.get(t, a, n)

    def write_all(self, t, fd, data):
        a = self.ubuf(t, len(data), data)
        return self.call(t, "write", fd, a, len(data))

    def unmapped(self, t):
        """An address in t's user space with nothing mapped."""
        a = 0x10000000
        assert t.mm.vmas.find(a) is None
        return a

    def slab_active(self, name):
        c = self.k.slab.by_name.get(name)
        return c.counts()[0] if c is not None else 0

    def resume(self, t):
        """A sleeper that was woken: its continuation's value (as run_task)."""
        assert t.restart is not None and t.state == TASK_RUNNING, (t, t.state)
        self.k.procs.use_task(t)
        r = t.restart()
        if r is not BLOCKED:
            t.restart = None
        return r

    # user memory of a task
    def put(self, t, off, data):
        """data at t.buf + off; its address."""
        self.k.procs.use_task(t)
        assert self.hw.copy_to_user(t.buf + off, data)
        return t.buf + off

    def get(self, t, addr, n):
        self.k.procs.use_task(t)
        b = self.hw.copy_from_user(addr, n)
        assert b is not None
        return b

    def cstr(self, t, off, s):
        if isinstance(s, str):
            s = s.encode()
        return self.put(t, off, s + b"\0")


BLOCKED_ = BLOCKED
