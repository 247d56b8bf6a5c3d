"""Every file syscall that takes a pointer, with each pointer bad in turn
(NULL, the NULL page, unmapped user memory, a kernel address, the first
address past user space, -1): -EFAULT, and nothing done — no descriptor,
no file, no name, no working directory, no data changed, no File object
left behind."""

import struct

import pytest

from kernel_py.fs.file import O_CREAT, O_DIRECTORY, O_NONBLOCK, O_RDWR
from kernel_py.lib.errno import EFAULT
from tests.model.usersupport import UserBox

AT_FDCWD = -100
BAD = "BAD"
OPT = "OPT"         # a pointer that may be NULL (no set, no timeout, no mask): bad ones but NULL

# (name, arguments): str arguments are paths (put in user memory), "BUF"
# a 4 KiB buffer, "FD" an open regular file with data, "DIR" an open
# directory, "TTY" the console, "PIPE" a pipe's read end with data, "EFD"
# an eventfd with a count, "IOV" an iovec of one valid buffer, "PFD" a
# pollfd, "TS" a zero timespec/timeval, "SIG" a pselect6 sigmask pair;
# BAD is where the bad pointer goes (OPT: one NULL is valid for). One row
# per pointer argument.
CALLS = [
    ("read", ("FD", BAD, 16)), ("write", ("FD", BAD, 16)),
    ("pread64", ("FD", BAD, 16, 0)), ("pwrite64", ("FD", BAD, 16, 0)),
    ("readv", ("FD", BAD, 1)), ("writev", ("FD", BAD, 1)),
    ("preadv", ("FD", BAD, 1, 0, 0)), ("pwritev", ("FD", BAD, 1, 0, 0)),
    ("read", ("PIPE", BAD, 16)), ("read", ("EFD", BAD, 8)), ("write", ("EFD", BAD, 8)),
    ("write", ("PIPE_W", BAD, 16)), ("write", ("TTY", BAD, 4)),
    ("open", (BAD, O_RDWR | O_CREAT, 0o644)), ("openat", (AT_FDCWD, BAD, O_RDWR | O_CREAT, 0o644)),
    ("creat", (BAD, 0o644)),
    ("access", (BAD, 0)), ("faccessat", (AT_FDCWD, BAD, 0)), ("faccessat2", (AT_FDCWD, BAD, 0, 0)),
    ("chdir", (BAD,)), ("truncate", (BAD, 0)),
    ("stat", (BAD, "BUF")), ("stat", ("/tmp/f", BAD)),
    ("lstat", (BAD, "BUF")), ("lstat", ("/tmp/f", BAD)), ("fstat", ("FD", BAD)),
    ("newfstatat", (AT_FDCWD, BAD, "BUF", 0)), ("newfstatat", (AT_FDCWD, "/tmp/f", BAD, 0)),
    ("statx", (AT_FDCWD, BAD, 0, 0x7FF, "BUF")), ("statx", (AT_FDCWD, "/tmp/f", 0, 0x7FF, BAD)),
    ("readlink", (BAD, "BUF", 64)), ("readlink", ("/tmp/l", BAD, 64)),
    ("readlinkat", (AT_FDCWD, BAD, "BUF", 64)), ("readlinkat", (AT_FDCWD, "/tmp/l", BAD, 64)),
    ("getdents64", ("DIR", BAD, 4096)),
    ("mkdir", (BAD, 0o755)), ("mkdirat", (AT_FDCWD, BAD, 0o755)), ("rmdir", (BAD,)),
    ("unlink", (BAD,)), ("unlinkat", (AT_FDCWD, BAD, 0)),
    ("rename", (BAD, "/tmp/new")), ("rename", ("/tmp/f", BAD)),
    ("renameat", (AT_FDCWD, BAD, AT_FDCWD, "/tmp/new")), ("renameat", (AT_FDCWD, "/tmp/f", AT_FDCWD, BAD)),
    ("renameat2", (AT_FDCWD, BAD, AT_FDCWD, "/tmp/new", 0)),
    ("renameat2", (AT_FDCWD, "/tmp/f", AT_FDCWD, BAD, 0)),
    ("link", (BAD, "/tmp/new")), ("link", ("/tmp/f", BAD)),
    ("linkat", (AT_FDCWD, BAD, AT_FDCWD, "/tmp/new", 0)), ("linkat", (AT_FDCWD, "/tmp/f", AT_FDCWD, BAD, 0)),
    ("symlink", (BAD, "/tmp/new")), ("symlink", ("/tmp/f", BAD)),
    ("symlinkat", (BAD, AT_FDCWD, "/tmp/new")), ("symlinkat", ("/tmp/f", AT_FDCWD, BAD)),
    ("pipe", (BAD,)), ("pipe2", (BAD, 0)),
    ("getcwd", (BAD, 100)),
    ("poll", (BAD, 1, 0)), ("ppoll", (BAD, 1, "TS", 0, 8)), ("ppoll", ("PFD", 1, OPT, 0, 8)),
    ("ppoll", ("PFD", 1, "TS", OPT, 8)),
    ("select", (8, OPT, 0, 0, "TS")), ("select", (8, 0, OPT, 0, "TS")), ("select", (8, 0, 0, OPT, "TS")),
    ("select", (8, 0, 0, 0, OPT)),
    ("pselect6", (8, OPT, 0, 0, "TS", 0)), ("pselect6", (8, 0, 0, 0, OPT, 0)),
    ("pselect6", (8, 0, 0, 0, "TS", OPT)), ("pselect6", (8, 0, 0, 0, "TS", "SIG")),
    ("ioctl", ("TTY", 0x5401, BAD)), ("ioctl", ("TTY", 0x5402, BAD)), ("ioctl", ("TTY", 0x5413, BAD)),
    ("ioctl", ("TTY", 0x5414, BAD)), ("ioctl", ("TTY", 0x540F, BAD)), ("ioctl", ("TTY", 0x5410, BAD)),
    ("ioctl", ("TTY", 0x541B, BAD)), ("ioctl", ("FD", 0x5421, BAD)), ("ioctl", ("FD", 0x541B, BAD)),
    ("ioctl", ("PIPE", 0x541B, BAD)), ("ioctl", ("FD", 0x5460, BAD)),
    ("fcntl", ("FD", 5, BAD)), ("fcntl", ("FD", 6, BAD)), ("fcntl", ("FD", 7, BAD)),
]


@pytest.fixture(scope="module")
def env():
    b = UserBox()
    t = b.new_task()
    sys = b.sys
    fd = sys(t, "openat", AT_FDCWD, "/tmp/f", O_CREAT | O_RDWR, 0o644)
    b.write_all(t, fd, b"file data " * 10)
    b.call(t, "lseek", fd, 0, 0)                # data to read at the position
    sys(t, "symlink", "/tmp/f", "/tmp/l")
    d = sys(t, "openat", AT_FDCWD, "/tmp", O_DIRECTORY, 0)
    tty = sys(t, "openat", AT_FDCWD, "/dev/console", O_RDWR, 0)
    p = b.ubuf(t, 8)
    b.call(t, "pipe2", p, O_NONBLOCK)
    r, w = struct.unpack("<ii", b.get(t, p, 8))
    b.write_all(t, w, b"pipe data")
    e = b.call(t, "eventfd2", 5, O_NONBLOCK)
    return b, t, dict(FD=fd, DIR=d, TTY=tty, PIPE=r, PIPE_W=w, EFD=e)


def bad_values(b, t):
    return (0, 8, b.unmapped(t), 0xFFFF888000000000, 1 << 47, -1)


def state(b, t, fds):
    k = b.k
    tmp = k.vfs.ns["/"].lookup(k.vfs.ns["/"].root, "tmp")
    f = t.files.file(fds["FD"])
    return (t.files.open_count(), sorted(tmp.children), t.fs.cwd, f.inode.size, f.pos,
            b.slab_active("filp"), t.files.file(fds["PIPE"]).private.nbytes,
            k.kmalloc is not None and b.slab_active("kmalloc-1k"))


@pytest.mark.parametrize("name,args", CALLS, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CALLS)])
def test_bad_pointer_is_efault_and_changes_nothing(env, name, args):
    b, t, fds = env
    for bad in bad_values(b, t):
        if bad == 0 and (OPT in args or "SIG" in args):
            continue
        before = state(b, t, fds)
        conv = []
        off = 0
        for a in args:
            if a is BAD or a is OPT:
                conv.append(bad)
            elif a in fds:
                conv.append(fds[a])
            elif a == "BUF":
                conv.append(b.ubuf(t, 4096))
            elif a == "IOV":
                conv.append(b.ubuf(t, 16, struct.pack("<QQ", b.ubuf(t, 64), 64)))
            elif a == "PFD":
                conv.append(b.ubuf(t, 8, struct.pack("<ihh", fds["PIPE"], 1, 0)))
            elif a == "TS":
                conv.append(b.ubuf(t, 16, bytes(16)))
            elif a == "SIG":
                conv.append(b.ubuf(t, 16, struct.pack("<QQ", bad & 0xFFFFFFFFFFFFFFFF, 8)))
            elif isinstance(a, str):
                conv.append(b.put(t, off, a.encode() + b"\0"))
                off += len(a) + 1
            else:
                conv.append(a)
        r = b.call(t, name, *conv)
        if name == "read" and args[0] == "EFD":
            assert r == -EFAULT, (name, args, hex(bad & (2 ** 64 - 1)), r)
            box_efd_refill(b, t, fds)           # Linux consumes the count before the copy too
            continue
        assert r == -EFAULT, (name, args, hex(bad & (2 ** 64 - 1)), r)
        assert state(b, t, fds) == before, (name, args, hex(bad & (2 ** 64 - 1)))


def box_efd_refill(b, t, fds):
    b.call(t, "write", fds["EFD"], b.ubuf(t, 8, struct.pack("<Q", 5)), 8)


def test_a_bad_iovec_entry_is_efault(env):
    b, t, fds = env
    for bad in bad_values(b, t):
        iov = b.ubuf(t, 32, struct.pack("<QQQQ", b.ubuf(t, 16), 16, bad & (2 ** 64 - 1), 16))
        assert b.call(t, "readv", fds["FD"], iov, 2) == -EFAULT
        assert b.call(t, "writev", fds["FD"], iov, 2) == -EFAULT
