"""pipe, pipe2 and eventfd: data, EOF, EPIPE and SIGPIPE, blocking and
waking across tasks, O_NONBLOCK, PIPE_BUF atomicity, the 64 KiB ring in
page-allocator frames, the slab objects, bad pointers, flags."""

import struct

import pytest

from kernel_py.fs.file import O_CLOEXEC, O_NONBLOCK, O_RDONLY
from kernel_py.kernel import signal as sig
from kernel_py.kernel.sched import BLOCKED
from kernel_py.lib.errno import (
    EAGAIN, EBADF, EEXIST, EFAULT, EINVAL, EMFILE, ENOENT, ENXIO, EPERM, EPIPE, ERESTARTSYS,
)
from tests.model.usersupport import UserBox

EFD_SEMAPHORE = 1


@pytest.fixture
def box():
    return UserBox()


def mkpipe(b, t, flags=0):
    p = b.ubuf(t, 8)
    r = b.call(t, "pipe2", p, flags)
    assert r == 0, r
    return struct.unpack("<ii", b.get(t, p, 8))


def test_pipe_data_and_eof(box):
    t = box.new_task()
    r, w = mkpipe(box, t)
    assert (r, w) == (0, 1)
    data = bytes(range(256)) * 100
    assert box.write_all(t, w, data) == len(data)
    a = box.ubuf(t, 70000)
    assert box.call(t, "read", r, a, 10) == 10
    assert box.get(t, a, 10) == data[:10]
    assert box.call(t, "read", r, a, 70000) == len(data) - 10       # what is there
    assert box.get(t, a, len(data) - 10) == data[10:]
    assert box.call(t, "close", w) == 0
    assert box.call(t, "read", r, a, 100) == 0                      # no writer: EOF
    assert box.call(t, "read", w, a, 1) == -EBADF
    assert box.call(t, "write", r, a, 1) == -EBADF


def test_epipe_and_sigpipe(box):
    t = box.new_task()
    r, w = mkpipe(box, t)
    box.call(t, "close", r)
    a = box.ubuf(t, 16, b"x" * 16)
    assert box.call(t, "write", w, a, 16) == -EPIPE
    assert t.pending & sig.sigbit(sig.SIGPIPE)


def test_blocked_reader_woken_by_another_process(box):
    reader = box.new_task("reader")
    writer = box.new_task("writer")
    r, w = mkpipe(box, reader)
    # the writer gets the write end (as after fork): share the File
    f = reader.files.file(w)
    wfd = writer.files.alloc_fd(f.get())
    box.call(reader, "close", w)
    a = box.ubuf(reader, 64)
    assert box.call(reader, "read", r, a, 64) is BLOCKED
    assert reader.state == "S"
    assert box.write_all(writer, wfd, b"wake up") == 7
    assert reader.state == "R"
    assert box.resume(reader) == 7
    assert box.get(reader, a, 7) == b"wake up"
    # blocked again; the last writer closing wakes it with EOF
    assert box.call(reader, "read", r, a, 64) is BLOCKED
    box.call(writer, "close", wfd)
    assert box.resume(reader) == 0
    # a signal ends a blocked read
    r2, w2 = mkpipe(box, reader)
    assert box.call(reader, "read", r2, a, 64) is BLOCKED
    sig.send_signal(box.k, reader, sig.SIGUSR1)
    assert box.resume(reader) == -ERESTARTSYS


def test_nonblocking_and_capacity(box):
    t = box.new_task()
    r, w = mkpipe(box, t, O_NONBLOCK)
    a = box.ubuf(t, 70000, b"y" * 70000)
    assert box.call(t, "read", r, a, 10) == -EAGAIN
    assert box.call(t, "write", w, a, 70000) == 65536                # the ring holds 64 KiB
    assert box.call(t, "write", w, a, 1) == -EAGAIN
    assert box.call(t, "fcntl", r, 1032, 0) == 65536                 # F_GETPIPE_SZ
    n = box.ubuf(t, 4)
    assert box.call(t, "ioctl", r, 0x541B, n) == 0                   # FIONREAD
    assert struct.unpack("<i", box.get(t, n, 4))[0] == 65536
    # the ring's room is whole buffers: a partly read page frees nothing
    assert box.call(t, "read", r, a, 100) == 100
    assert box.call(t, "write", w, a, 50) == -EAGAIN
    assert box.call(t, "read", r, a, 3996) == 3996                  # the first page is free
    # PIPE_BUF: a write of <= 4096 bytes goes in whole or not at all
    assert box.call(t, "write", w, a, 4097) == 4096                 # > PIPE_BUF: what fits
    assert box.call(t, "read", r, a, 4096) == 4096
    assert box.call(t, "write", w, a, 2000) == 2000
    assert box.call(t, "write", w, a, 3000) == -EAGAIN              # 2096 left: not split
    assert box.call(t, "write", w, a, 2096) == 2096
    # F_SETFL clears O_NONBLOCK: a full pipe then blocks the writer
    assert box.call(t, "fcntl", w, 4, 0) == 0
    assert box.call(t, "write", w, a, 4096) is BLOCKED


def test_blocking_writer_waits_for_room(box):
    t = box.new_task()
    u = box.new_task("reader")
    r, w = mkpipe(box, t)
    ufd = u.files.alloc_fd(t.files.file(r).get())
    a = box.ubuf(t, 100000, bytes(range(256)) * 390 + b"z" * 160)
    assert box.call(t, "write", w, a, 100000) is BLOCKED            # 64 KiB in, then waits
    b = box.ubuf(u, 100000)
    got = b""
    while len(got) < 100000:
        n = box.call(u, "read", ufd, b, 100000)
        assert n > 0
        got += box.get(u, b, n)
        if t.restart is not None and t.state == "R":
            r2 = box.resume(t)
            if r2 is not BLOCKED:
                assert r2 == 100000
    assert got == box.get(t, a, 100000)


def test_read_fault_leaves_data_in_the_pipe(box):
    t = box.new_task()
    r, w = mkpipe(box, t)
    box.write_all(t, w, b"precious")
    assert box.call(t, "read", r, 0, 8) == -EFAULT
    assert box.call(t, "read", r, box.unmapped(t), 8) == -EFAULT
    a = box.ubuf(t, 8)
    assert box.call(t, "read", r, a, 8) == 8 and box.get(t, a, 8) == b"precious"


def test_pipe2_flags_and_bad_pointers(box):
    t = box.new_task()
    k = box.k
    r, w = mkpipe(box, t)                       # the caches' first slabs (kept when empty)
    box.call(t, "close", r)
    box.call(t, "close", w)
    base_filp = box.slab_active("filp")
    free = k.buddy.nr_free_pages()
    assert box.call(t, "pipe2", box.ubuf(t, 8), 0o40000) == -EINVAL      # O_DIRECT
    assert box.call(t, "pipe2", box.ubuf(t, 8), 0x1) == -EINVAL
    for bad in (0, box.unmapped(t), 1 << 47, -8):
        assert box.call(t, "pipe2", bad, 0) == -EFAULT
        assert box.call(t, "pipe", bad) == -EFAULT
    assert t.files.open_count() == 0                                  # no fd left behind
    assert box.slab_active("filp") == base_filp
    assert k.buddy.nr_free_pages() == free
    r, w = mkpipe(box, t, O_CLOEXEC | O_NONBLOCK)
    assert box.call(t, "fcntl", r, 1, 0) == 1 and box.call(t, "fcntl", w, 1, 0) == 1
    assert box.call(t, "fcntl", r, 3, 0) == O_RDONLY | O_NONBLOCK
    t.rlim[7] = [3, 3]
    assert box.call(t, "pipe2", box.ubuf(t, 8), 0) == -EMFILE
    assert t.files.open_count() == 2


def test_pipe_pages_and_objects_come_back(box):
    """The ring is in frames from the page allocator; every object goes
    with the last close (pipe + close + close, as mmbench's pipe)."""
    t = box.new_task()
    k = box.k
    cache_names = ("filp", "inode_cache", "dentry", "kmalloc-192", "kmalloc-1k")
    src = box.ubuf(t, 40000, b"q" * 40000)          # user memory touched before counting
    fds = box.ubuf(t, 8)
    box.call(t, "pipe2", fds, 0)                    # the caches' first slabs (kept when empty)
    for fd in struct.unpack("<ii", box.get(t, fds, 8)):
        box.call(t, "close", fd)
    base = dict((n, box.slab_active(n)) for n in cache_names)
    free = k.buddy.nr_free_pages()
    assert box.call(t, "pipe2", fds, 0) == 0
    r, w = struct.unpack("<ii", box.get(t, fds, 8))
    after = dict((n, box.slab_active(n)) for n in cache_names)
    assert after["filp"] == base["filp"] + 2
    assert after["inode_cache"] == base["inode_cache"] + 1
    assert after["dentry"] == base["dentry"] + 1
    assert after["kmalloc-192"] == base["kmalloc-192"] + 1           # pipe_inode_info
    assert after["kmalloc-1k"] == base["kmalloc-1k"] + 1             # 16 pipe_buffers
    f1 = k.buddy.nr_free_pages()
    assert box.call(t, "write", w, src, 40000) == 40000
    assert k.buddy.nr_free_pages() == f1 - 10                         # 10 pages of data
    box.call(t, "close", r)
    box.call(t, "close", w)
    assert dict((n, box.slab_active(n)) for n in cache_names) == base
    assert k.buddy.nr_free_pages() == free
    for i in range(200):
        assert box.call(t, "pipe2", fds, 0) == 0
        for fd in struct.unpack("<ii", box.get(t, fds, 8)):
            box.call(t, "close", fd)
    assert dict((n, box.slab_active(n)) for n in cache_names) == base
    assert k.buddy.nr_free_pages() == free


def test_eventfd_counter(box):
    t = box.new_task()
    e = box.call(t, "eventfd2", 5, 0)
    assert e >= 0
    a = box.ubuf(t, 8)
    assert box.call(t, "read", e, a, 8) == 8
    assert struct.unpack("<Q", box.get(t, a, 8))[0] == 5
    ctx = t.files.file(e).private
    assert box.k.hw.read64(ctx.va - 0xFFFF888000000000 + 32) == 0   # the counter lives in the object
    v = box.ubuf(t, 8, struct.pack("<Q", 3))
    assert box.call(t, "write", e, v, 8) == 8
    assert box.call(t, "write", e, v, 8) == 8
    assert box.k.hw.read64(ctx.va - 0xFFFF888000000000 + 32) == 6
    assert box.call(t, "read", e, a, 8) == 8 and struct.unpack("<Q", box.get(t, a, 8))[0] == 6
    assert box.call(t, "read", e, a, 7) == -EINVAL
    assert box.call(t, "write", e, v, 7) == -EINVAL
    bad = box.ubuf(t, 8, struct.pack("<Q", (1 << 64) - 1))
    assert box.call(t, "write", e, bad, 8) == -EINVAL
    assert box.call(t, "read", e, a, 8) is BLOCKED                      # 0: the reader waits
    assert box.call(t, "write", e, 0, 8) == -EFAULT
    # semaphore mode
    s = box.call(t, "eventfd2", 2, EFD_SEMAPHORE | O_NONBLOCK)
    assert box.call(t, "read", s, a, 8) == 8 and struct.unpack("<Q", box.get(t, a, 8))[0] == 1
    assert box.call(t, "read", s, a, 8) == 8 and struct.unpack("<Q", box.get(t, a, 8))[0] == 1
    assert box.call(t, "read", s, a, 8) == -EAGAIN
    # overflow: the writer waits (EAGAIN when nonblocking)
    big = box.ubuf(t, 8, struct.pack("<Q", (1 << 64) - 2))
    assert box.call(t, "write", s, big, 8) == 8
    assert box.call(t, "write", s, v, 8) == -EAGAIN
    assert box.call(t, "eventfd2", 0, 0x4) == -EINVAL
    c = box.call(t, "eventfd2", 0, O_CLOEXEC)
    assert box.call(t, "fcntl", c, 1, 0) == 1
    assert box.call(t, "eventfd", 7) >= 0


def test_eventfd_wakes_a_reader_in_another_task(box):
    t = box.new_task()
    u = box.new_task("waiter")
    e = box.call(t, "eventfd2", 0, 0)
    ue = u.files.alloc_fd(t.files.file(e).get())
    a = box.ubuf(u, 8)
    assert box.call(u, "read", ue, a, 8) is BLOCKED
    box.call(t, "write", e, box.ubuf(t, 8, struct.pack("<Q", 42)), 8)
    assert box.resume(u) == 8
    assert struct.unpack("<Q", box.get(u, a, 8))[0] == 42


def test_eventfd_objects(box):
    """slab_eventfd / slab_hold: a filp object and a kmalloc'd eventfd_ctx
    per eventfd, both freed by the close."""
    t = box.new_task()
    base = (box.slab_active("filp"), box.slab_active("kmalloc-64"))
    fds = [box.call(t, "eventfd2", 0, 0) for _ in range(300)]
    assert box.slab_active("filp") == base[0] + 300
    assert box.slab_active("kmalloc-64") == base[1] + 300
    for fd in fds:
        assert box.call(t, "close", fd) == 0
    assert (box.slab_active("filp"), box.slab_active("kmalloc-64")) == base


# -- FIFOs (mknod S_IFIFO) ----------------------------------------------------------

S_IFIFO = 0o010000
O_WRONLY, O_RDWR = 1, 2


def test_fifo_opens_wait_for_their_partner(box):
    """mkfifo's FIFO on tmpfs: a blocking read-only open waits for a
    writer, which does not wait since a reader is there; data flows; the
    pipe goes with the last close; O_NONBLOCK opens never wait (a
    write-only one answers ENXIO with no reader)."""
    reader, writer = box.new_task("r"), box.new_task("w")
    assert box.sys(reader, "mknod", "/tmp/fifo", S_IFIFO | 0o644, 0) == 0
    assert box.sys(reader, "mknod", "/tmp/fifo", S_IFIFO | 0o644, 0) == -EEXIST
    assert box.sys(reader, "openat", -100, "/tmp/fifo", O_RDONLY, 0) is BLOCKED
    w = box.sys(writer, "openat", -100, "/tmp/fifo", O_WRONLY, 0)
    assert w >= 0
    r = box.resume(reader)
    assert r >= 0
    assert box.write_all(writer, w, b"through the fifo") == 16
    a = box.ubuf(reader, 64)
    assert box.call(reader, "read", r, a, 64) == 16 and box.get(reader, a, 16) == b"through the fifo"
    ino = box.k.vfs.ns["/"].lookup(box.k.vfs.ns["/"].lookup(box.k.vfs.ns["/"].root, "tmp"), "fifo")
    assert ino.pipe is not None
    box.call(writer, "close", w)
    assert box.call(reader, "read", r, a, 64) == 0                      # EOF: no writer
    box.call(reader, "close", r)
    assert ino.pipe is None                                             # freed with the last end
    assert box.sys(writer, "openat", -100, "/tmp/fifo", O_WRONLY | O_NONBLOCK, 0) == -ENXIO
    assert ino.pipe is None
    r = box.sys(reader, "openat", -100, "/tmp/fifo", O_RDONLY | O_NONBLOCK, 0)
    assert r >= 0 and box.call(reader, "read", r, a, 64) == 0
    box.call(reader, "close", r)
    rw = box.sys(reader, "openat", -100, "/tmp/fifo", O_RDWR, 0)          # never waits
    assert rw >= 0
    box.call(reader, "close", rw)


def test_fifo_open_interrupted_by_a_signal(box):
    t = box.new_task()
    assert box.sys(t, "mknod", "/tmp/f2", S_IFIFO | 0o600, 0) == 0
    assert box.sys(t, "openat", -100, "/tmp/f2", O_WRONLY, 0) is BLOCKED
    sig.send_signal(box.k, t, sig.SIGUSR1)
    assert box.resume(t) == -ERESTARTSYS
    root = box.k.vfs.ns["/"]
    assert root.lookup(root.lookup(root.root, "tmp"), "f2").pipe is None     # the end is undone


def test_mknod_kinds_and_errors(box):
    t = box.new_task()
    assert box.sys(t, "mknod", "/tmp/plain", 0o644, 0) == 0               # type 0: a regular file
    assert box.sys(t, "mknodat", -100, "/tmp/null2", 0o020000 | 0o666, (1 << 8) | 3) == 0
    fd = box.sys(t, "openat", -100, "/tmp/null2", O_WRONLY, 0)
    assert fd >= 0 and box.write_all(t, fd, b"gone") == 4                 # /dev/null's driver
    assert box.sys(t, "mknod", "/tmp/d", 0o040755, 0) == -EPERM
    assert box.sys(t, "mknod", "/tmp/x", 0o170000, 0) == -EINVAL
    assert box.sys(t, "mknod", "/nodir/x", S_IFIFO, 0) == -ENOENT
    assert box.call(t, "mknod", 0, S_IFIFO, 0) == -EFAULT
