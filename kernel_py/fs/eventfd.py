# eventfd (Linux's fs/eventfd.c): an 8-byte counter behind a file.
# read waits while it is 0, then returns it and sets it to 0 (with
# EFD_SEMAPHORE: returns 1 and decrements it); write adds, waiting while
# the sum would pass 0xfffffffffffffffe. The context is a kmalloc'd
# eventfd_ctx (48 bytes, as Linux's) and the counter lives in it (the
# Python attribute is a copy for speed); the File is a filp object, on the
# shared anonymous inode. Both go with the last close.

import struct

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.fs.file import (
    O_CLOEXEC, O_NONBLOCK, O_RDWR, POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, File,
    FileOperations, nofile,
)
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EAGAIN, EINVAL, errno_of
from kernel_py.lib.errors import KernelError

EFD_SEMAPHORE = 1
EFD_CLOEXEC = O_CLOEXEC
EFD_NONBLOCK = O_NONBLOCK
EVENTFD_CTX_SIZE = 48
COUNT_OFF = 32                  # eventfd_ctx.count (after kref and the wait queue head)
ULLONG_MAX = 0xFFFFFFFFFFFFFFFF


class EventFdCtx:
    def __init__(self, k, count, flags):
        self.k = k
        self.va = k.vfs.files.kmalloc(EVENTFD_CTX_SIZE, "do_eventfd")
        self.flags = flags
        self.wait = WaitQueue()
        self.set(count)

    def set(self, v):
        self.count = v
        if self.va:
            self.k.hw.write64(self.va - DIRECT_MAP_BASE + COUNT_OFF, v)


class EventFdFile(FileOperations):
    def read(self, f, t, n):
        ctx = f.private
        if n < 8:
            return -EINVAL
        c = ctx.count
        if not c:
            return -EAGAIN if f.flags & O_NONBLOCK else None
        v = 1 if ctx.flags & EFD_SEMAPHORE else c
        ctx.set(c - v)
        t.k.sched.wake_up(ctx.wait)
        return struct.pack("<Q", v)

    def write(self, f, t, data):
        ctx = f.private
        if len(data) < 8:
            return -EINVAL
        v = struct.unpack_from("<Q", data, 0)[0]
        if v == ULLONG_MAX:
            return -EINVAL
        if ULLONG_MAX - ctx.count <= v:
            return -EAGAIN if f.flags & O_NONBLOCK else None
        if v:
            ctx.set(ctx.count + v)
            t.k.sched.wake_up(ctx.wait)
        return 8

    def poll(self, f):
        c = f.private.count
        mask = 0
        if c > 0:
            mask |= POLLIN | POLLRDNORM
        if c == ULLONG_MAX:
            mask |= POLLERR
        if ULLONG_MAX - 1 > c:
            mask |= POLLOUT | POLLWRNORM
        return mask

    def wait_queue(self, f):
        return f.private.wait

    def scan_private(self, f, out):
        """private_data: the eventfd_ctx (kmemleak's walk)."""
        if f.private.va:
            out.append(f.private.va)

    def release(self, f, k):
        ctx = f.private
        k.vfs.files.kfree(ctx.va)
        ctx.va = 0


EVENTFD_FOPS = EventFdFile()


def sys_eventfd2(t, count, flags):
    k = t.k
    flags &= 0xFFFFFFFF
    if flags & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK):
        return -EINVAL
    try:
        ctx = EventFdCtx(k, count & 0xFFFFFFFF, flags)
    except KernelError as e:
        return -errno_of(e.errname)
    f = File(EVENTFD_FOPS, O_RDWR | (flags & EFD_NONBLOCK), ctx, "anon_inode:[eventfd]")
    f.sb = k.vfs.anon
    f.inode = k.vfs.anon.inode
    try:
        k.vfs.files.alloc_file(f)
    except KernelError as e:
        k.vfs.files.kfree(ctx.va)
        return -errno_of(e.errname)
    fd = t.files.alloc_fd(f, 0, bool(flags & EFD_CLOEXEC), nofile(t))
    if fd < 0:
        f.fput(k)
    return fd


def sys_eventfd(t, count):
    return sys_eventfd2(t, count, 0)
