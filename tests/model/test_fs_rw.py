"""open, creat, close, read, write, readv, writev, pread64, pwrite64, lseek,
truncate, ftruncate: behaviour and error paths (Linux's as reference),
on the ramfs root and on FAT, including hostile input."""

import struct

import pytest

from kernel_py.fs.file import (
    O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOFOLLOW, O_NONBLOCK,
    O_PATH, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY,
)
from kernel_py.lib.errno import (
    EBADF, EEXIST, EFAULT, EFBIG, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOSPC, ENOTDIR,
    ENXIO, EOPNOTSUPP, EPERM, ESPIPE,
)
from tests.model.fssupport import host_get, make_fat, needs_mkfs
from tests.model.usersupport import UserBox

AT_FDCWD = -100
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4


@pytest.fixture
def box():
    return UserBox()


@pytest.fixture
def fatbox(tmp_path):
    if host_get is None:
        pytest.skip("no mtools")
    img = make_fat(tmp_path / "d.img", 32, 16)
    b = UserBox([str(img)])
    b.img = img
    yield b
    b.close()


def opn(b, t, path, flags=O_RDONLY, mode=0o644):
    return b.sys(t, "openat", AT_FDCWD, path, flags, mode)


def test_create_write_read_back(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/a", O_CREAT | O_RDWR)
    assert fd == 0
    data = bytes(range(256)) * 1000                 # 256000 bytes: several chunks
    assert box.write_all(t, fd, data) == len(data)
    assert box.call(t, "lseek", fd, 0, SEEK_CUR) == len(data)
    assert box.call(t, "lseek", fd, 0, SEEK_SET) == 0
    assert box.read_all(t, fd, 7777) == data         # odd-sized chunks
    assert box.call(t, "close", fd) == 0
    assert box.call(t, "close", fd) == -EBADF


def test_open_flags(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/f", O_CREAT | O_WRONLY)
    box.write_all(t, fd, b"0123456789")
    assert opn(box, t, "/tmp/f", O_CREAT | O_EXCL | O_WRONLY) == -EEXIST
    assert opn(box, t, "/tmp/nope") == -ENOENT
    assert opn(box, t, "/tmp/nope/x", O_CREAT | O_WRONLY) == -ENOENT
    assert opn(box, t, "/tmp/f/x") == -ENOTDIR
    assert opn(box, t, "/tmp/f/") == -ENOTDIR
    assert opn(box, t, "/tmp/new/", O_CREAT | O_WRONLY) == -EISDIR
    assert opn(box, t, "/tmp/f", O_DIRECTORY) == -ENOTDIR
    assert opn(box, t, "/tmp", O_WRONLY) == -EISDIR
    assert opn(box, t, "/tmp", O_RDWR) == -EISDIR
    assert opn(box, t, "/tmp", O_CREAT | O_WRONLY) == -EISDIR
    assert opn(box, t, "/tmp/g", O_CREAT | O_DIRECTORY) == -EINVAL
    assert opn(box, t, "/tmp/h", O_CREAT | 0o20000000 | O_WRONLY) == -EOPNOTSUPP
    assert opn(box, t, "") == -ENOENT
    # O_APPEND writes at the end whatever the position
    fd2 = opn(box, t, "/tmp/f", O_WRONLY | O_APPEND)
    box.call(t, "lseek", fd2, 0, SEEK_SET)
    box.write_all(t, fd2, b"AB")
    # O_TRUNC empties it
    fd3 = opn(box, t, "/tmp/f", O_RDONLY)
    assert box.read_all(t, fd3) == b"0123456789AB"
    fd4 = opn(box, t, "/tmp/f", O_WRONLY | O_TRUNC)
    assert box.call(t, "lseek", fd3, 0, SEEK_END) == 0
    # F_GETFL: O_LARGEFILE added, the creation flags and O_CLOEXEC gone
    fd5 = opn(box, t, "/tmp/f", O_RDWR | O_CLOEXEC | O_NONBLOCK)
    assert box.call(t, "fcntl", fd5, 3, 0) == O_RDWR | O_NONBLOCK | O_LARGEFILE
    assert box.call(t, "fcntl", fd5, 1, 0) == 1     # FD_CLOEXEC
    for fd in (fd, fd2, fd3, fd4, fd5):
        assert box.call(t, "close", fd) == 0


def test_creat_and_umask(box):
    t = box.new_task()
    assert box.sys(t, "umask", 0o077) == 0o022
    fd = box.sys(t, "creat", "/tmp/c", 0o666)
    assert fd >= 0
    st = box.ubuf(t, 144)
    assert box.call(t, "fstat", fd, st) == 0
    mode = struct.unpack_from("<I", box.get(t, st, 144), 24)[0]
    assert mode == 0o100600
    assert box.call(t, "write", fd, box.ubuf(t, 1, b"x"), 1) == 1
    assert box.call(t, "read", fd, box.ubuf(t, 1), 1) == -EBADF     # creat is O_WRONLY
    assert box.sys(t, "umask", 0o7777) == 0o077
    assert box.sys(t, "umask", 0) == 0o777


def test_o_path_and_nofollow(box):
    t = box.new_task()
    opn(box, t, "/tmp/target", O_CREAT | O_WRONLY)
    assert box.sys(t, "symlink", "/tmp/target", "/tmp/ln") == 0
    assert opn(box, t, "/tmp/ln", O_RDONLY | O_NOFOLLOW) == -ELOOP
    fd = opn(box, t, "/tmp/ln", O_PATH | O_NOFOLLOW)
    assert fd >= 0
    a = box.ubuf(t, 16)
    assert box.call(t, "read", fd, a, 1) == -EBADF
    assert box.call(t, "write", fd, a, 1) == -EBADF
    assert box.call(t, "lseek", fd, 0, 0) == -EBADF
    assert box.call(t, "ioctl", fd, 0x5421, a) == -EBADF
    st = box.ubuf(t, 144)
    assert box.call(t, "fstat", fd, st) == 0
    assert struct.unpack_from("<I", box.get(t, st, 144), 24)[0] & 0o170000 == 0o120000
    assert box.call(t, "fcntl", fd, 3, 0) == O_PATH | O_NOFOLLOW
    fd2 = opn(box, t, "/tmp", O_PATH | O_DIRECTORY)
    assert box.call(t, "fchdir", fd2) == 0
    assert box.sys(t, "openat", fd2, "target", O_RDONLY, 0) >= 0


def test_bad_fds_and_modes(box):
    t = box.new_task()
    a = box.ubuf(t, 16)
    for fd in (-1, -100, 1 << 31, (1 << 32) + 3, 9999):
        assert box.call(t, "read", fd, a, 1) == -EBADF
        assert box.call(t, "write", fd, a, 1) == -EBADF
        assert box.call(t, "close", fd) == -EBADF
        assert box.call(t, "lseek", fd, 0, 0) == -EBADF
        assert box.call(t, "pread64", fd, a, 1, 0) == -EBADF
    fd = opn(box, t, "/tmp/w", O_CREAT | O_WRONLY)
    assert box.call(t, "read", fd, a, 1) == -EBADF
    assert box.call(t, "pread64", fd, a, 1, 0) == -EBADF
    r = opn(box, t, "/tmp/w", O_RDONLY)
    assert box.call(t, "write", r, a, 1) == -EBADF
    assert box.call(t, "pwrite64", r, a, 1, 0) == -EBADF
    d = opn(box, t, "/tmp", O_RDONLY)
    assert box.call(t, "read", d, a, 1) == -EISDIR
    assert box.call(t, "pread64", d, a, 1, 0) == -EISDIR


def test_bad_pointers_change_nothing(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/p", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"hello")
    box.call(t, "lseek", fd, 0, SEEK_SET)
    bad = (0, 8, box.unmapped(t), -4096, 0xFFFF888000000000, 1 << 47)
    for p in bad:
        assert box.call(t, "read", fd, p, 5) == -EFAULT
        assert box.call(t, "lseek", fd, 0, SEEK_CUR) == 0        # nothing read
        assert box.call(t, "write", fd, p, 5) == -EFAULT
        assert box.call(t, "pread64", fd, p, 5, 0) == -EFAULT
        assert box.call(t, "pwrite64", fd, p, 5, 0) == -EFAULT
        assert box.call(t, "openat", AT_FDCWD, p, O_RDONLY, 0) == -EFAULT
        assert box.call(t, "open", p, O_CREAT | O_WRONLY, 0o644) == -EFAULT
        assert box.call(t, "creat", p, 0o644) == -EFAULT
        assert box.call(t, "truncate", p, 0) == -EFAULT
    assert box.read_all(t, fd) == b"hello"
    assert box.call(t, "read", fd, 0, 0) == 0                       # count 0: no access
    assert box.call(t, "write", fd, 0, 0) == 0
    # a count running past user space is EFAULT before anything happens
    a = box.ubuf(t, 16)
    assert box.call(t, "read", fd, a, -1) == -EFAULT
    assert box.call(t, "write", fd, a, 1 << 47) == -EFAULT


def test_partial_copy_returns_what_got_through(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/big", O_CREAT | O_RDWR)
    data = b"z" * 300000
    assert box.write_all(t, fd, data) == len(data)
    box.call(t, "lseek", fd, 0, SEEK_SET)
    # a buffer whose tail runs off the mapping: the chunks (64 KiB) that
    # got through before the fault (Linux stops at the faulting byte; a
    # short count either way)
    end = t.buf + t.scratch
    n = box.call(t, "read", fd, end - 100000, 200000)
    assert n == 65536
    assert box.call(t, "lseek", fd, 0, SEEK_CUR) == n
    # a write whose source runs off: what was copied
    fd2 = opn(box, t, "/tmp/big2", O_CREAT | O_RDWR)
    n = box.call(t, "write", fd2, end - 70000, 200000)
    assert n == 65536
    assert box.call(t, "lseek", fd2, 0, SEEK_END) == n


def test_huge_count_reads_the_file(box):
    t = box.new_task(scratch=512 << 10)
    fd = opn(box, t, "/tmp/h", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"q" * 100000)
    box.call(t, "lseek", fd, 0, SEEK_SET)
    a = box.ubuf(t, 100000)
    from kernel_py.arch.x86.layout import USER_END
    huge = USER_END - a                         # the largest count access_ok lets through
    assert huge > 1 << 20
    assert box.call(t, "read", fd, a, huge) == 100000
    assert box.call(t, "read", fd, a, huge) == 0
    assert box.call(t, "read", fd, a, huge + 1) == -EFAULT


def test_pread_pwrite_and_lseek(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/x", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"abcdefghij")
    a = box.ubuf(t, 16)
    assert box.call(t, "pread64", fd, a, 4, 3) == 4
    assert box.get(t, a, 4) == b"defg"
    assert box.call(t, "pwrite64", fd, box.ubuf(t, 2, b"XY"), 2, 20) == 2
    assert box.call(t, "lseek", fd, 0, SEEK_CUR) == 10          # unmoved
    assert box.call(t, "lseek", fd, 0, SEEK_END) == 22          # a hole 10..20
    assert box.call(t, "pread64", fd, a, 16, 8) == 14
    assert box.get(t, a, 14) == b"ij" + bytes(10) + b"XY"
    assert box.call(t, "pread64", fd, a, 1, -1) == -EINVAL
    assert box.call(t, "pwrite64", fd, a, 1, -5) == -EINVAL
    assert box.call(t, "lseek", fd, -30, SEEK_END) == -EINVAL
    assert box.call(t, "lseek", fd, -1, SEEK_SET) == -EINVAL
    assert box.call(t, "lseek", fd, 0, 5) == -EINVAL
    assert box.call(t, "lseek", fd, 0, -1) == -EINVAL
    assert box.call(t, "lseek", fd, 5, SEEK_DATA) == 5
    assert box.call(t, "lseek", fd, 5, SEEK_HOLE) == 22
    assert box.call(t, "lseek", fd, 22, SEEK_DATA) == -ENXIO
    assert box.call(t, "lseek", fd, 3, SEEK_SET) == 3
    assert box.call(t, "lseek", fd, 4, SEEK_CUR) == 7
    assert box.call(t, "lseek", fd, 1 << 40, SEEK_SET) == 1 << 40   # past the end is fine
    assert box.call(t, "read", fd, a, 4) == 0
    p = box.ubuf(t, 8)
    assert box.call(t, "pipe", p) == 0
    r, w = struct.unpack("<ii", box.get(t, p, 8))
    assert box.call(t, "lseek", r, 0, SEEK_SET) == -ESPIPE
    assert box.call(t, "pread64", r, a, 1, 0) == -ESPIPE
    assert box.call(t, "pwrite64", w, a, 1, 0) == -ESPIPE


def test_readv_writev(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/v", O_CREAT | O_RDWR)
    bufs = [box.ubuf(t, n, bytes([65 + i]) * n) for i, n in enumerate((3, 0, 5, 70000))]
    iov = box.ubuf(t, 64, b"".join(struct.pack("<QQ", a, n) for a, n in zip(bufs, (3, 0, 5, 70000))))
    assert box.call(t, "writev", fd, iov, 4) == 70008
    box.call(t, "lseek", fd, 0, SEEK_SET)
    outs = [box.ubuf(t, n) for n in (4, 70004)]
    iov2 = box.ubuf(t, 32, b"".join(struct.pack("<QQ", a, n) for a, n in zip(outs, (4, 70004))))
    assert box.call(t, "readv", fd, iov2, 2) == 70008
    assert box.get(t, outs[0], 4) + box.get(t, outs[1], 70004) == b"AAACCCCC" + b"D" * 70000
    assert box.call(t, "preadv", fd, iov2, 1, 2, 0) == 4
    assert box.get(t, outs[0], 4) == b"ACCC"
    assert box.call(t, "readv", fd, iov2, 0) == 0
    assert box.call(t, "readv", fd, iov2, 1025) == -EINVAL
    assert box.call(t, "readv", fd, iov2, -1) == -EINVAL
    assert box.call(t, "writev", fd, 0, 1) == -EFAULT
    assert box.call(t, "readv", fd, box.unmapped(t), 2) == -EFAULT
    neg = box.ubuf(t, 16, struct.pack("<Qq", outs[0], -1))
    assert box.call(t, "readv", fd, neg, 1) == -EINVAL
    badseg = box.ubuf(t, 16, struct.pack("<QQ", 1 << 47, 10))
    assert box.call(t, "writev", fd, badseg, 1) == -EFAULT
    assert box.call(t, "readv", 77, iov2, 1) == -EBADF


def test_truncate_ftruncate(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/tr", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"x" * 10000)
    assert box.call(t, "ftruncate", fd, 100) == 0
    assert box.call(t, "lseek", fd, 0, SEEK_END) == 100
    assert box.sys(t, "truncate", "/tmp/tr", 9000) == 0
    box.call(t, "lseek", fd, 0, SEEK_SET)
    assert box.read_all(t, fd) == b"x" * 100 + bytes(8900)      # the tail reads as zeros
    assert box.call(t, "ftruncate", fd, -1) == -EINVAL
    assert box.sys(t, "truncate", "/tmp/tr", -1) == -EINVAL
    assert box.sys(t, "truncate", "/tmp", 0) == -EISDIR
    assert box.sys(t, "truncate", "/tmp/none", 0) == -ENOENT
    assert box.sys(t, "truncate", "/dev/null", 0) == -EINVAL
    ro = opn(box, t, "/tmp/tr", O_RDONLY)
    assert box.call(t, "ftruncate", ro, 0) == -EINVAL
    assert box.call(t, "ftruncate", 999, 0) == -EBADF


def test_unlinked_open_file_lives_until_close(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/gone", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"still here" * 1000)
    nr = box.k.pagecache.nr_file
    assert box.sys(t, "unlink", "/tmp/gone") == 0
    assert opn(box, t, "/tmp/gone") == -ENOENT
    box.call(t, "lseek", fd, 0, SEEK_SET)
    assert box.read_all(t, fd) == b"still here" * 1000
    assert box.k.pagecache.nr_file == nr
    box.call(t, "close", fd)
    assert box.k.pagecache.nr_file == nr - 3        # its 3 pages went with the last close


def test_ramfs_pages_survive_drop_caches_and_reclaim(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/keep", O_CREAT | O_RDWR)
    data = bytes(range(256)) * 64
    box.write_all(t, fd, data)
    box.k.pagecache.drop_caches(3)
    box.k.pagecache.shrink_page_cache(1000)
    box.call(t, "lseek", fd, 0, SEEK_SET)
    assert box.read_all(t, fd) == data
    out = box.sh.execute("check")
    assert "error" not in out and "violation" not in out.lower(), out


def test_name_too_long_and_bad_names(box):
    t = box.new_task()
    assert opn(box, t, "/tmp/" + "a" * 256, O_CREAT | O_WRONLY) == -ENAMETOOLONG
    assert opn(box, t, "/tmp/" + "a" * 255, O_CREAT | O_WRONLY) >= 0
    long_path = "/tmp" + "/." * 2046                # 4096 bytes with the NUL: too long
    assert len(long_path) == 4096
    assert opn(box, t, long_path) == -ENAMETOOLONG
    assert opn(box, t, long_path[:-2]) >= 0          # 4094 + NUL fits
    assert opn(box, t, b"/tmp/\xff\xfe", O_CREAT | O_WRONLY) == -EINVAL
    assert opn(box, t, b"/tmp/\xff\xfe") == -ENOENT
    # a NUL ends the name: "/tmp/ab\0cd" is "/tmp/ab"
    fd = opn(box, t, b"/tmp/ab\0cd", O_CREAT | O_WRONLY)
    assert fd >= 0
    assert opn(box, t, "/tmp/ab") >= 0


def test_emfile_at_the_limit(box):
    t = box.new_task()
    t.rlim[7] = [8, 8]                                          # RLIMIT_NOFILE
    fds = [opn(box, t, "/dev/null") for _ in range(8)]
    assert fds == list(range(8))
    assert opn(box, t, "/dev/null") == -24                      # EMFILE
    box.call(t, "close", 3)
    assert opn(box, t, "/dev/null") == 3


@needs_mkfs
def test_fat_files_through_syscalls(fatbox):
    b = fatbox
    t = b.new_task()
    fd = opn(b, t, "/mnt/hello.txt", O_CREAT | O_RDWR)
    assert fd >= 0
    data = b"FAT data " * 5000
    assert b.write_all(t, fd, data) == len(data)
    b.call(t, "lseek", fd, 0, SEEK_SET)
    assert b.read_all(t, fd, 10000) == data
    assert b.call(t, "fsync", fd) == 0
    assert host_get(b.img, "/hello.txt") == data
    assert b.sys(t, "mkdir", "/mnt/dir", 0o755) == 0
    assert b.sys(t, "rename", "/mnt/hello.txt", "/mnt/dir/Moved Name.txt") == 0
    assert opn(b, t, "/mnt/hello.txt") == -ENOENT
    # the open file followed the rename
    b.call(t, "lseek", fd, 0, SEEK_SET)
    assert b.read_all(t, fd, 65536)[:9] == b"FAT data "
    assert b.call(t, "sync") == 0
    assert host_get(b.img, "/dir/Moved Name.txt") == data
    assert host_get(b.img, "/hello.txt") is None
    # FAT has neither symlinks nor hard links
    assert b.sys(t, "symlink", "x", "/mnt/ln") == -EPERM
    assert b.sys(t, "link", "/mnt/dir/Moved Name.txt", "/mnt/hard") == -EPERM
    # FAT files end at 4 GiB - 1
    assert b.call(t, "pwrite64", fd, b.ubuf(t, 1, b"x"), 1, 1 << 32) == -EFBIG
    assert b.call(t, "ftruncate", fd, 1 << 32) == -EFBIG
    b.call(t, "close", fd)


@needs_mkfs
def test_fat_enospc_short_write(tmp_path):
    img = make_fat(tmp_path / "small.img", 5, 16, spc=1)
    b = UserBox([str(img)])
    t = b.new_task(scratch=1 << 20)
    fd = opn(b, t, "/mnt/fill", O_CREAT | O_WRONLY)
    free = b.fs.count_free() * b.fs.clus_size
    chunk = b.ubuf(t, 512 << 10, b"y" * (512 << 10))
    total = 0
    while True:
        n = b.call(t, "write", fd, chunk, 512 << 10)
        if n < 0:
            assert n == -ENOSPC
            break
        total += n
        if n < 512 << 10:
            assert b.call(t, "write", fd, chunk, 10) == -ENOSPC
            break
    assert free - 65536 <= total <= free
    assert b.call(t, "lseek", fd, 0, SEEK_END) == total
    b.close()
