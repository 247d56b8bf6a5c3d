"""kmemleak and the VFS's objects (issue 16 item 4): the root "vfs holders"
walks what Linux's scan would read (fd tables, a File's f_inode and
private_data, i_pipe, each super block's dentry tree, the VMAs' files, a
sleeping open's File), nothing is registered at allocation. A state with
every kind of holder reports nothing; Files dropped from their fd table
without fput (the console's fdforget) are reported, exactly with what only
they held, each with its allocating function in the trace."""

import struct

from kernel_py.fs.file import O_CREAT, O_RDONLY, O_RDWR
from kernel_py.kernel import fork as kfork
from kernel_py.kernel import signal as sig
from kernel_py.kernel.sched import BLOCKED
from kernel_py.mm.debug import kmemleak as KL
from tests.model.test_kmemleak import FILE, reported, run, scan
from tests.model.usersupport import UserBox

AT_FDCWD = -100
S_IFIFO = 0o010000
PROT_READ = 1
MAP_SHARED = 1
VFS_CACHES = ("filp", "inode_cache", "dentry")


def kbox():
    b = UserBox(cmdline="kmemleak=on")
    run(b.sh, "echo min_age=0 > " + FILE)
    run(b.sh, "echo scan=off > " + FILE)
    return b


def opn(b, t, path, flags=O_RDONLY):
    fd = b.sys(t, "openat", AT_FDCWD, path, flags, 0o644)
    assert fd >= 0, (path, fd)
    return fd


def pipe(b, t):
    fds = b.ubuf(t, 8)
    assert b.call(t, "pipe2", fds, 0) == 0
    return struct.unpack("<ii", b.get(t, fds, 8))


def mapped_then_closed(b, t, fd):
    """A shared mapping of fd's first page, fd closed: the VMA holds the file."""
    assert b.call(t, "ftruncate", fd, 4096) == 0
    addr = b.call(t, "mmap", 0, 4096, PROT_READ, MAP_SHARED, fd, 0)
    assert addr > 0
    assert b.call(t, "close", fd) == 0


def fdforget(b, t, fd):
    f = t.files.file(fd)
    va = int(run(b.sh, "fdforget %d %d" % (t.pid, fd)), 16)
    assert va == f.va > 0 and t.files.file(fd) is None
    return f


def test_root_is_the_walk_not_a_registration():
    names = [n for n, _ in KL.ROOTS]
    assert "vfs holders" in names and "vfs objects" not in names


def test_every_holder_walked_no_false_positive():
    """Names in a tmpfs tree (a directory, a symlink, a device node, an open
    FIFO), a file unlinked while open, a file and a memfd held only by a
    mapping, a memfd, a pipe with data, an eventfd, a fork child sharing
    the Files, and a reader asleep in a FIFO's open whose File has no
    descriptor yet: two scans report nothing."""
    b = kbox()
    k = b.k
    t = b.new_task("holder")
    assert b.sys(t, "mkdir", "/tmp/d", 0o755) == 0
    assert b.sys(t, "mkdir", "/tmp/d/e", 0o755) == 0
    b.call(t, "close", opn(b, t, "/tmp/d/e/f", O_CREAT | O_RDWR))
    assert b.sys(t, "symlink", "/tmp/d/e/f", "/tmp/d/link") == 0
    assert b.sys(t, "mknod", "/tmp/d/null", 0o020000 | 0o666, (1 << 8) | 3) == 0
    assert b.sys(t, "mknod", "/tmp/fifo", S_IFIFO | 0o600, 0) == 0
    opn(b, t, "/tmp/fifo", O_RDWR)                              # i_pipe and the File
    u = opn(b, t, "/tmp/unlinked", O_CREAT | O_RDWR)
    assert b.write_all(t, u, b"still open") == 10
    assert b.sys(t, "unlink", "/tmp/unlinked") == 0
    only_inode = t.files.file(u).inode
    mapped_then_closed(b, t, opn(b, t, "/tmp/mapped", O_CREAT | O_RDWR))
    assert b.sys(t, "unlink", "/tmp/mapped") == 0
    mapped_then_closed(b, t, b.sys(t, "memfd_create", "mapped", 0))
    assert b.sys(t, "memfd_create", "open", 0) >= 0
    r, w = pipe(b, t)
    assert b.write_all(t, w, b"in the pipe") == 11
    assert b.call(t, "eventfd2", 3, 0) >= 0
    kfork.copy_process(k, t, sig.SIGCHLD, 0, 0, 0, 0)
    reader = b.new_task("reader")
    assert b.sys(reader, "mknod", "/tmp/q", S_IFIFO | 0o600, 0) == 0
    assert b.sys(reader, "openat", AT_FDCWD, "/tmp/q", O_RDONLY, 0) is BLOCKED
    assert reader.open_file is not None and reader.open_file.va > 0
    assert k.kmemleak.index.get(only_inode.va - KL.DMB) is not None       # tracked
    assert all(b.slab_active(c) > 0 for c in VFS_CACHES)
    scan(b.sh)
    assert reported(b.sh) == {}


def test_planted_leaks_reported_exactly_with_their_traces():
    """fdforget of a tmpfs file (its filp alone: the tree holds the inode),
    an unlinked file (filp and inode), both ends of a pipe (two filps, the
    pipe_inode_info, its pipe_buffer array, pipefs's inode and dentry), an
    eventfd (filp, eventfd_ctx), a memfd (filp, inode), one end of a
    second pipe (its filp: the other end still holds the pipe) and the only
    File of a FIFO (its filp: the FIFO's inode still holds the pipe,
    i_pipe)."""
    b = kbox()
    t = b.new_task("leaker")
    planted = {}

    def plant(fd, *objs):
        f = fdforget(b, t, fd)
        planted[f.va] = (232, ["kmem_cache_alloc", "alloc_empty_file"])
        for va, size, frames in objs:
            planted[va] = (size, frames)
        return f

    inode = (600, ["kmem_cache_alloc", "alloc_inode"])
    plant(opn(b, t, "/tmp/reg", O_CREAT | O_RDWR))
    fd = opn(b, t, "/tmp/gone", O_CREAT | O_RDWR)
    assert b.sys(t, "unlink", "/tmp/gone") == 0
    plant(fd, (t.files.file(fd).inode.va,) + inode)
    r, w = pipe(b, t)
    p = t.files.file(r).private
    plant(r)
    plant(w, (p.info, 192, ["kmalloc", "alloc_pipe_info"]),
          (p.bufs_va, 1024, ["kmalloc", "alloc_pipe_info"]),
          (p.inode.va,) + inode,
          (p.dentry, 192, ["kmem_cache_alloc", "d_alloc_pseudo"]))
    e = b.call(t, "eventfd2", 0, 0)
    plant(e, (t.files.file(e).private.va, 64, ["kmalloc", "do_eventfd"]))
    m = b.sys(t, "memfd_create", "leaked", 0)
    plant(m, (t.files.file(m).inode.va,) + inode)
    r2, w2 = pipe(b, t)
    plant(r2)
    assert b.sys(t, "mknod", "/tmp/fifo", S_IFIFO | 0o600, 0) == 0
    plant(opn(b, t, "/tmp/fifo", O_RDWR))
    scan(b.sh)
    rep = reported(b.sh)
    assert set(rep) == set(planted) and len(planted) == 15, (sorted(rep), sorted(planted))
    for va, (size, frames) in planted.items():
        assert (rep[va][0], rep[va][1], rep[va][2], rep[va][4]) == (size, "leaker", t.pid, frames)
    assert t.files.file(w2).private.readers == 1                # the forgotten end was never released


def test_killed_asleep_in_a_fifo_open_frees_its_file():
    """The File of an open asleep for its partner is on the task's stack
    only: a task torn down there (the OOM killer's kill_user) drops it, and
    nothing is left to report."""
    b = kbox()
    t = b.new_task("opener")
    assert b.sys(t, "mknod", "/tmp/f", S_IFIFO | 0o600, 0) == 0
    base = b.slab_active("filp")
    assert b.sys(t, "openat", AT_FDCWD, "/tmp/f", O_RDONLY, 0) is BLOCKED
    assert b.slab_active("filp") == base + 1
    b.k.procs.unuse_task()                      # the kernel is done with it: torn down at once
    b.k.procs.kill_user(t)
    assert t.state in ("Z", "X")                 # exited (reaped at once: init is its parent)
    assert t.open_file is None and b.slab_active("filp") == base
    scan(b.sh)
    assert reported(b.sh) == {}


def test_fdforget_bad_input():
    b = kbox()
    t = b.new_task()
    assert b.sh.execute("fdforget 9999 0").startswith("error: ESRCH")
    assert b.sh.execute("fdforget %d 77" % t.pid).startswith("error: EBADF")
    assert b.sh.execute("fdforget %d -1" % t.pid).startswith("error: EBADF")
    assert b.sh.execute("fdforget %d" % t.pid).startswith("error:")
    assert b.sh.execute("fdforget x 0").startswith("error: EINVAL")
