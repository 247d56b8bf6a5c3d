# Pipes (Linux's fs/pipe.c): pipe and pipe2, and the pipe's file
# operations.
#
# A pipe is a ring of PIPE_DEF_BUFFERS (16) pipe_buffers, each a page
# from the page allocator with an offset and a length: 64 KiB at most, as
# on Linux. Its objects are Linux's: the two Files (filp), a pipefs inode
# (inode_cache) and its dentry, the pipe_inode_info and the pipe_buffer
# array (kmalloc); all are freed when the last end closes, with the pages.
# kmemleak reaches them through the Files' private_data and the inode's
# i_pipe (scan_refs, fs/file_table.py).
# The ring's bookkeeping ([page, offset, len] per buffer) is kept in
# Python beside them.
#
# - write: bytes go into the last buffer's page while it has room (Linux
#   merges only a write's partial-page tail into it; the capacity differs
#   by at most a page per write), then into new buffers. A write of at
#   most PIPE_BUF (4096) bytes is atomic: it waits until all of it fits.
#   A larger one writes what fits and waits for room for the rest. No
#   reader: SIGPIPE to the writer and EPIPE (after what was written).
# - read: what is there, up to the count; nothing and no writer: 0 (EOF);
#   nothing: wait (EAGAIN with O_NONBLOCK). A buffer is consumed only when
#   the copy to user space succeeded (fs/file.py's read_done), as
#   pipe_read does; an emptied buffer's page is kept for the next write
#   (pipe->tmp_page) or freed.
# - Readers and writers, blocked readers and writers, and poll share one
#   wait queue (Linux has rd_wait and wr_wait); every change wakes it and
#   each sleeper looks again.
# - A FIFO (mknod S_IFIFO, mkfifo) is a pipe attached to a file system's
#   inode while it is open (i_pipe; no pipefs inode of its own). fifo_open
#   counts the new end; an open for reading waits for a writer and one for
#   writing waits for a reader (wait_for_partner: until the other side's
#   open counter moves), unless O_NONBLOCK (a write-only open then answers
#   ENXIO with no reader); O_RDWR never waits. The wait is the open
#   syscall's continuation (fs/open.py's do_sys_open, fifo_wait below).

import struct

from kernel_py.fs.file import (
    O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_WRONLY, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM,
    POLLWRNORM, File, FileOperations, nofile,
)
from kernel_py.fs.inode import Inode, Kstat, SuperBlock
from kernel_py.fs.magic import PIPEFS_MAGIC
from kernel_py.fs.mode import S_IFIFO
from kernel_py.kernel import signal as sig
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EAGAIN, EFAULT, EINVAL, EPIPE, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.mm.gfp import GFP_KERNEL

PIPE_DEF_BUFFERS = 16
PIPE_BUF = 4096
PAGE_SIZE = 4096
PIPE_INFO_SIZE = 168            # struct pipe_inode_info
PIPE_BUFFER_SIZE = 40           # struct pipe_buffer
FIONREAD = 0x541B
F_GETPIPE_SZ = 1032


class PipeFs(SuperBlock):
    """pipefs: where pipe inodes live (mounted nowhere)."""

    fstype = "pipefs"
    magic = PIPEFS_MAGIC

    def __init__(self, k):
        SuperBlock.__init__(self, k)
        self.root = Inode(self, 0o040500)

    def getattr(self, ino):
        return Kstat(self.st_dev, ino.i_ino, ino.mode, 1, 0, PAGE_SIZE, 0, 0,
                     ino.atime, ino.mtime, ino.ctime)

    def open(self, ino, f, t):
        """An open of /proc/PID/fd/N of a pipe: another end of the same pipe
        (fifo_open without the waiting)."""
        p = ino.pipe
        if p is None or p.freed:
            raise KernelError("ENXIO", "the pipe is gone")
        if f.readable():
            p.readers += 1
        if f.writable():
            p.writers += 1
        f.private = p
        p.k.sched.wake_up(p.wait)
        return PIPE_FOPS


class Pipe:
    def __init__(self, k, fifo=None):
        self.k = k
        files = k.vfs.files
        self.files = files
        self.freed = False
        self.info = self.bufs_va = self.dentry = 0
        self.inode = None
        self.fifo = fifo                # the FIFO's inode, or None for pipe(2)'s pipefs one
        try:
            self.info = files.kmalloc(PIPE_INFO_SIZE, "alloc_pipe_info")
            self.bufs_va = files.kmalloc(PIPE_DEF_BUFFERS * PIPE_BUFFER_SIZE, "alloc_pipe_info")
            if fifo is None:
                ino = Inode(k.vfs.pipefs, S_IFIFO | 0o600)
                ino.pipe = self
                self.inode = ino
                ino.va = files.obj_alloc(files.inode_cache, "alloc_inode")
                self.dentry = files.obj_alloc(files.dentry, "d_alloc_pseudo")
        except KernelError:
            self.free()
            raise
        self.bufs = []                  # [pa, offset, len], oldest first
        self.nbytes = 0
        self.tmp_page = 0
        self.readers = self.writers = 0 if fifo is not None else 1
        self.r_counter = self.w_counter = 0     # opens of each end, ever (a FIFO's partners)
        self.wait = WaitQueue()

    def free(self):
        files = self.files
        if self.fifo is not None:
            self.fifo.pipe = None
        if self.inode is not None:
            files.obj_free(files.inode_cache, self.inode.va)
            self.inode.va = 0
            self.inode.pipe = None
        files.obj_free(files.dentry, self.dentry)
        files.kfree(self.bufs_va)
        files.kfree(self.info)
        self.dentry = self.bufs_va = self.info = 0
        buddy = self.k.buddy
        for b in getattr(self, "bufs", ()):
            buddy.free_pages(b[0], 0)
        if getattr(self, "tmp_page", 0):
            buddy.free_pages(self.tmp_page, 0)
        self.bufs = []
        self.tmp_page = 0
        self.freed = True

    def scan_refs(self, out):
        """kmemleak's walk (fs/file_table.py): the pipe_inode_info, the
        pipe_buffer array it points to, and pipefs's inode and dentry."""
        for va in (self.info, self.bufs_va, self.dentry):
            if va:
                out.append(va)
        if self.inode is not None and self.inode.va:
            out.append(self.inode.va)

    # -- space
    def room(self):
        """Bytes a write can place now."""
        r = (PIPE_DEF_BUFFERS - len(self.bufs)) * PAGE_SIZE
        if self.bufs:
            b = self.bufs[-1]
            r += PAGE_SIZE - b[1] - b[2]
        return r

    def new_page(self):
        pa = self.tmp_page
        if pa:
            self.tmp_page = 0
            return pa
        return self.k.buddy.alloc_pages(GFP_KERNEL, 0)

    def put_page(self, pa):
        if not self.tmp_page:
            self.tmp_page = pa
        else:
            self.k.buddy.free_pages(pa, 0)

    def write(self, data):
        """Copy what fits of data; the count (0: no page could be had)."""
        hw = self.k.hw
        n = len(data)
        done = 0
        bufs = self.bufs
        if bufs:
            b = bufs[-1]
            end = b[1] + b[2]
            take = min(n, PAGE_SIZE - end)
            if take > 0:
                hw.writebytes(b[0] + end, data[:take])
                b[2] += take
                done = take
        while done < n and len(bufs) < PIPE_DEF_BUFFERS:
            pa = self.new_page()
            if pa is None:
                break
            take = min(n - done, PAGE_SIZE)
            hw.writebytes(pa, data[done:done + take])
            bufs.append([pa, 0, take])
            done += take
        self.nbytes += done
        return done

    def peek(self, n):
        out = []
        hw = self.k.hw
        for pa, off, ln in self.bufs:
            if n <= 0:
                break
            take = min(n, ln)
            out.append(hw.readbytes(pa + off, take))
            n -= take
        return b"".join(out)

    def consume(self, n):
        bufs = self.bufs
        self.nbytes -= n
        while n > 0 and bufs:
            b = bufs[0]
            take = min(n, b[2])
            b[1] += take
            b[2] -= take
            n -= take
            if b[2] == 0:
                bufs.pop(0)
                self.put_page(b[0])


class PipeFile(FileOperations):
    """Both ends (pipefifo_fops): which one a File is, its access mode says."""

    def read(self, f, t, n):
        p = f.private
        if p.nbytes:
            return p.peek(n)
        if not p.writers:
            return b""
        if f.flags & O_NONBLOCK:
            return -EAGAIN
        return None

    def read_done(self, f, n):
        p = f.private
        p.consume(n)
        p.k.sched.wake_up(p.wait)

    def write(self, f, t, data):
        p = f.private
        if not p.readers:
            sig.send_signal(t.k, t, sig.SIGPIPE)
            return -EPIPE
        n = len(data)
        room = p.room()
        if room < n and (n <= PIPE_BUF or not room):
            return -EAGAIN if f.flags & O_NONBLOCK else None
        done = p.write(data)
        if not done:
            return -errno_of("ENOMEM")
        p.k.sched.wake_up(p.wait)
        return done

    write_more = True

    def ioctl(self, f, t, cmd, arg):
        if cmd & 0xFFFFFFFF == FIONREAD:
            ok = t.k.hw.copy_to_user(arg, struct.pack("<i", f.private.nbytes))
            return 0 if ok else -EFAULT
        return FileOperations.ioctl(self, f, t, cmd, arg)

    def poll(self, f):
        p = f.private
        mask = 0
        if f.readable():
            if p.nbytes:
                mask |= POLLIN | POLLRDNORM
            if not p.writers:
                mask |= POLLHUP
        if f.writable():
            if len(p.bufs) < PIPE_DEF_BUFFERS:
                mask |= POLLOUT | POLLWRNORM
            if not p.readers:
                mask |= POLLERR
        return mask

    def wait_queue(self, f):
        return f.private.wait

    def scan_private(self, f, out):
        """private_data: the pipe_inode_info (and what it points to)."""
        f.private.scan_refs(out)

    def release(self, f, k):
        p = f.private
        if f.readable():
            p.readers -= 1
        if f.writable():
            p.writers -= 1
        if p.readers <= 0 and p.writers <= 0:
            p.free()
        else:
            k.sched.wake_up(p.wait)


PIPE_FOPS = PipeFile()


def fifo_open(k, ino, f):
    """fs/pipe.c's fifo_open without the waiting (fifo_wait says whether
    the open must wait for its partner): the pipe made at the first open,
    this end counted."""
    p = ino.pipe
    if p is None:
        p = Pipe(k, ino)
        ino.pipe = p
    if f.writable() and not f.readable() and f.flags & O_NONBLOCK and not p.readers:
        if not p.writers:
            p.free()
        raise KernelError("ENXIO", "no reader on the FIFO")
    if f.readable():
        p.readers += 1
        p.r_counter += 1
    if f.writable():
        p.writers += 1
        p.w_counter += 1
    f.private = p
    k.sched.wake_up(p.wait)
    return PIPE_FOPS


def fifo_wait(f):
    """(pipe, the partner's counter name, its value now) when a blocking
    open of a FIFO must wait for the other end (wait_for_partner); None."""
    p = f.private
    if f.f_op is not PIPE_FOPS or p.fifo is None or f.flags & O_NONBLOCK:
        return None
    if f.readable() and not f.writable() and not p.writers:
        return p, "w_counter", p.w_counter
    if f.writable() and not f.readable() and not p.readers:
        return p, "r_counter", p.r_counter
    return None


def pipe_file(k, p, flags):
    files = k.vfs.files
    f = File(PIPE_FOPS, flags, p, "pipe:[%d]" % p.inode.i_ino)
    f.sb = k.vfs.pipefs
    f.inode = p.inode
    files.alloc_file(f)
    return f


def sys_pipe2(t, fildes, flags):
    """pipe2: the two descriptors, read end first, written to fildes[2]
    only once the pipe is made; on any failure nothing is left."""
    k = t.k
    flags &= 0xFFFFFFFF
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        return -EINVAL                  # O_DIRECT (packet mode) is not supported
    try:
        p = Pipe(k)
    except KernelError as e:
        return -errno_of(e.errname)
    try:
        r = pipe_file(k, p, O_RDONLY | (flags & O_NONBLOCK))
    except KernelError as e:
        p.free()
        return -errno_of(e.errname)
    try:
        w = pipe_file(k, p, O_WRONLY | (flags & O_NONBLOCK))
    except KernelError as e:
        p.writers = 0
        r.fput(k)
        return -errno_of(e.errname)
    files = t.files
    cloexec = bool(flags & O_CLOEXEC)
    limit = nofile(t)
    fd0 = files.alloc_fd(r, 0, cloexec, limit)
    fd1 = files.alloc_fd(w, 0, cloexec, limit) if fd0 >= 0 else -1
    if fd1 < 0:
        if fd0 >= 0:
            files.take(fd0)
        r.fput(k)
        w.fput(k)
        return fd1 if fd0 >= 0 else fd0
    if not k.hw.copy_to_user(fildes, struct.pack("<ii", fd0, fd1)):
        files.take(fd0)
        files.take(fd1)
        r.fput(k)
        w.fput(k)
        return -EFAULT
    return 0


def sys_pipe(t, fildes):
    return sys_pipe2(t, fildes, 0)
