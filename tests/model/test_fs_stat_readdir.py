"""stat, fstat, lstat, newfstatat, statx (x86-64 layouts, every file type)
and getdents64 (records, continuation, small buffers, each file system)."""

import struct

import pytest

from kernel_py.fs.file import O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, O_WRONLY
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL, ENOENT, ENOTDIR
from tests.model.fssupport import make_fat, needs_mkfs
from tests.model.usersupport import UserBox

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
DT_DIR, DT_REG, DT_LNK, DT_CHR = 4, 8, 10, 2


@pytest.fixture
def box():
    return UserBox()


def opn(b, t, path, flags=O_RDONLY, mode=0o644):
    return b.sys(t, "openat", AT_FDCWD, path, flags, mode)


def stat(b, t, path, flags=0):
    a = b.ubuf(t, 144)
    r = b.sys(t, "newfstatat", AT_FDCWD, path, a, flags)
    assert r == 0, (path, r)
    v = struct.unpack("<QQQIIIiQ" + "q" * 12, b.get(t, a, 144))
    return dict(dev=v[0], ino=v[1], nlink=v[2], mode=v[3], uid=v[4], gid=v[5], rdev=v[7],
                size=v[8], blksize=v[9], blocks=v[10], atime=v[11], mtime=v[13], ctime=v[15],
                mtime_ns=v[14])


def fstat(b, t, fd):
    a = b.ubuf(t, 144)
    assert b.call(t, "fstat", fd, a) == 0
    v = struct.unpack("<QQQIIIiQ" + "q" * 12, b.get(t, a, 144))
    return dict(dev=v[0], ino=v[1], mode=v[3], rdev=v[7], size=v[8])


def test_stat_every_type(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/r", O_CREAT | O_RDWR, 0o640)
    box.write_all(t, fd, b"x" * 5000)
    st = stat(box, t, "/tmp/r")
    assert st["mode"] == 0o100640 and st["size"] == 5000 and st["nlink"] == 1
    assert st["blocks"] == 16 and st["blksize"] == 4096          # two pages
    assert st["uid"] == st["gid"] == 0
    boot = box.k.time.realtime_base // 1000000000
    assert st["mtime"] >= boot and st["ctime"] >= boot
    d = stat(box, t, "/tmp")
    assert d["mode"] == 0o41777 and d["nlink"] == 2
    null = stat(box, t, "/dev/null")
    assert null["mode"] == 0o20666 and null["rdev"] == 0x103
    assert stat(box, t, "/dev/console")["rdev"] == 0x501
    assert stat(box, t, "/dev/tty")["rdev"] == 0x500
    assert stat(box, t, "/dev/kmsg")["rdev"] == 0x10b
    box.sys(t, "symlink", "/tmp/r", "/tmp/l")
    assert stat(box, t, "/tmp/l")["ino"] == st["ino"]
    ln = stat(box, t, "/tmp/l", AT_SYMLINK_NOFOLLOW)
    assert ln["mode"] == 0o120777 and ln["size"] == 6
    assert stat(box, t, "/proc/meminfo")["mode"] == 0o100444
    assert stat(box, t, "/proc/sys/vm/swappiness")["mode"] == 0o100644
    assert stat(box, t, "/proc/sys/vm/drop_caches")["mode"] == 0o100200
    assert stat(box, t, "/proc/self", AT_SYMLINK_NOFOLLOW)["mode"] == 0o120777
    assert stat(box, t, "/proc")["mode"] == 0o40555
    # devices differ: st_dev tells the file systems apart
    devs = set(stat(box, t, p)["dev"] for p in ("/", "/dev", "/proc", "/sys"))
    assert len(devs) == 4


def test_fstat_pipe_eventfd_tty(box):
    t = box.new_task()
    p = box.ubuf(t, 8)
    assert box.call(t, "pipe", p) == 0
    r, w = struct.unpack("<ii", box.get(t, p, 8))
    pr, pw = fstat(box, t, r), fstat(box, t, w)
    assert pr["mode"] == 0o10600 and pr["ino"] == pw["ino"]
    e = box.call(t, "eventfd2", 0, 0)
    assert fstat(box, t, e)["mode"] == 0o600                     # anon inode: no type bits
    c = opn(box, t, "/dev/console", O_RDWR)
    assert fstat(box, t, c)["mode"] == 0o20600 and fstat(box, t, c)["rdev"] == 0x501
    # newfstatat(fd, "", AT_EMPTY_PATH) is fstat (glibc's fstat)
    a = box.ubuf(t, 144)
    assert box.sys(t, "newfstatat", r, "", a, AT_EMPTY_PATH) == 0
    assert struct.unpack_from("<I", box.get(t, a, 144), 24)[0] == 0o10600


def test_stat_errors(box):
    t = box.new_task()
    a = box.ubuf(t, 144)
    assert box.sys(t, "stat", "/nope", a) == -ENOENT
    assert box.sys(t, "stat", "", a) == -ENOENT
    assert box.sys(t, "stat", "/dev/null/x", a) == -ENOTDIR
    assert box.sys(t, "stat", "/dev/null", 0) == -EFAULT
    assert box.sys(t, "stat", "/dev/null", box.unmapped(t)) == -EFAULT
    assert box.sys(t, "lstat", "/dev/null", 1 << 47) == -EFAULT
    assert box.call(t, "stat", 0, a) == -EFAULT
    assert box.call(t, "fstat", 99, a) == -EBADF
    assert box.call(t, "fstat", -1, a) == -EBADF
    assert box.call(t, "fstat", 0 if opn(box, t, "/dev/null") == 0 else 0, 0) == -EFAULT
    assert box.sys(t, "newfstatat", AT_FDCWD, "/", a, 0x1) == -EINVAL
    assert box.sys(t, "newfstatat", 77, "x", a, 0) == -EBADF
    assert box.sys(t, "newfstatat", 77, "", a, AT_EMPTY_PATH) == -EBADF


def test_statx(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/sx", O_CREAT | O_RDWR, 0o600)
    box.write_all(t, fd, b"y" * 100)
    b = box.ubuf(t, 256)
    assert box.sys(t, "statx", AT_FDCWD, "/tmp/sx", 0, 0x7FF, b) == 0
    raw = box.get(t, b, 256)
    mask, blksize, attrs, nlink, uid, gid, mode = struct.unpack_from("<IIQIIIH", raw, 0)
    ino, size, blocks = struct.unpack_from("<QQQ", raw, 32)
    assert mask == 0x7FF and blksize == 4096 and nlink == 1 and mode == 0o100600
    assert size == 100 and blocks == 8
    st = stat(box, t, "/tmp/sx")
    assert ino == st["ino"]
    mtime_sec, mtime_nsec = struct.unpack_from("<qI", raw, 112)
    assert mtime_sec == st["mtime"] and mtime_nsec == st["mtime_ns"]
    assert box.sys(t, "statx", AT_FDCWD, "/dev/zero", 0, 0x7FF, b) == 0
    raw = box.get(t, b, 256)
    assert struct.unpack_from("<II", raw, 128) == (1, 5)
    assert box.sys(t, "statx", fd, "", AT_EMPTY_PATH, 0x7FF, b) == 0
    assert box.sys(t, "statx", AT_FDCWD, "/tmp/sx", 0x6000, 0x7FF, b) == -EINVAL
    assert box.sys(t, "statx", AT_FDCWD, "/tmp/sx", 0x1, 0x7FF, b) == -EINVAL
    assert box.sys(t, "statx", AT_FDCWD, "/tmp/sx", 0, 0x80000000, b) == -EINVAL
    assert box.sys(t, "statx", AT_FDCWD, "/tmp/sx", 0, 0x7FF, 0) == -EFAULT
    assert box.sys(t, "statx", AT_FDCWD, "/none", 0, 0x7FF, b) == -ENOENT


def dents(b, t, fd, size=4096):
    """[(ino, off, type, name)] of one getdents64 call, or the -errno."""
    a = b.ubuf(t, size)
    n = b.call(t, "getdents64", fd, a, size)
    if n < 0:
        return n
    raw = b.get(t, a, n) if n else b""
    out = []
    i = 0
    while i < n:
        ino, off, reclen, ty = struct.unpack_from("<QqHB", raw, i)
        assert reclen % 8 == 0 and reclen >= 24
        name = raw[i + 19:i + reclen].split(b"\0")[0].decode()
        out.append((ino, off, ty, name))
        i += reclen
    assert i == n
    return out


def all_dents(b, t, path, size=4096):
    fd = opn(b, t, path, O_RDONLY | O_DIRECTORY)
    assert fd >= 0, (path, fd)
    out = []
    while True:
        d = dents(b, t, fd, size)
        assert type(d) is list, d
        if not d:
            break
        out += d
    b.call(t, "close", fd)
    return out


def test_getdents64_records_and_continuation(box):
    t = box.new_task()
    box.sys(t, "mkdir", "/tmp/ls", 0o755)
    names = ["file%03d-%s" % (i, "x" * (i % 40)) for i in range(150)]
    for n in names:
        assert opn(box, t, "/tmp/ls/" + n, O_CREAT | O_WRONLY) >= 0
    box.sys(t, "mkdir", "/tmp/ls/subdir", 0o755)
    box.sys(t, "symlink", "file000-", "/tmp/ls/link")
    whole = all_dents(box, t, "/tmp/ls", 32768)
    small = all_dents(box, t, "/tmp/ls", 72)            # one record at a time (names <= 47)
    assert [d[3] for d in whole] == [d[3] for d in small]
    got = dict((d[3], d) for d in whole)
    assert set(got) == set(names) | {".", "..", "subdir", "link"}
    assert got["."][2] == DT_DIR and got[".."][2] == DT_DIR
    assert got["subdir"][2] == DT_DIR and got["link"][2] == DT_LNK
    assert got[names[7]][2] == DT_REG
    assert got[names[7]][0] == stat(box, t, "/tmp/ls/" + names[7])["ino"]
    assert got["."][0] == stat(box, t, "/tmp/ls")["ino"]
    assert got[".."][0] == stat(box, t, "/tmp")["ino"]
    # d_off continues where the last call stopped; lseek(0) lists again
    fd = opn(box, t, "/tmp/ls", O_DIRECTORY)
    first = dents(box, t, fd, 200)
    second = dents(box, t, fd, 200)
    assert first[-1][1] == len(first) and second[0][3] == whole[len(first)][3]
    assert box.call(t, "lseek", fd, first[1][1], 0) == first[1][1]    # seekdir to a d_off
    assert dents(box, t, fd, 200)[0][3] == whole[2][3]
    assert box.call(t, "lseek", fd, 0, 0) == 0
    assert dents(box, t, fd, 200)[0][3] == "."


def test_getdents64_errors(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp", O_DIRECTORY)
    a = box.ubuf(t, 64)
    assert box.call(t, "getdents64", fd, a, 10) == -EINVAL      # not even one record
    assert box.call(t, "getdents64", fd, a, 0) == -EINVAL
    assert dents(box, t, fd, 24)[0][3] == "."                   # "." fits 24 bytes exactly
    assert box.call(t, "getdents64", fd, 0, 4096) == -EFAULT
    assert box.call(t, "getdents64", fd, box.unmapped(t), 4096) == -EFAULT
    assert box.call(t, "getdents64", fd, a, -1) == -EFAULT      # 4 GiB of buffer: not user space
    f = opn(box, t, "/dev/null")
    assert box.call(t, "getdents64", f, a, 64) == -ENOTDIR
    assert box.call(t, "getdents64", 99, a, 64) == -EBADF
    # a failed copy moves nothing
    fd2 = opn(box, t, "/", O_DIRECTORY)
    assert box.call(t, "getdents64", fd2, box.unmapped(t), 4096) == -EFAULT
    assert dents(box, t, fd2)[0][3] == "."


def test_listing_each_file_system(box):
    t = box.new_task()
    root = set(d[3] for d in all_dents(box, t, "/"))
    assert {"bin", "dev", "mnt", "proc", "sys", "tmp"} <= root
    dev = dict((d[3], d[2]) for d in all_dents(box, t, "/dev"))
    for n in ("console", "tty", "null", "zero", "full", "random", "urandom", "kmsg"):
        assert dev[n] == DT_CHR, n
    assert dev["fd"] == DT_LNK
    proc = dict((d[3], d[2]) for d in all_dents(box, t, "/proc"))
    assert proc["self"] == DT_LNK and proc["meminfo"] == DT_REG and proc["sys"] == DT_DIR
    assert proc[str(t.pid)] == DT_DIR and proc["1"] == DT_DIR
    mine = dict((d[3], d[2]) for d in all_dents(box, t, "/proc/%d" % t.pid))
    for n in ("maps", "status", "stat", "statm", "cmdline", "environ", "oom_score_adj"):
        assert mine[n] == DT_REG, n
    assert mine["fd"] == DT_DIR and mine["exe"] == DT_LNK and mine["fail-nth"] == DT_REG
    sysd = set(d[3] for d in all_dents(box, t, "/sys/kernel/debug"))
    assert {"page_tables", "extfrag", "kmemleak", "alloc_sites"} <= sysd
    vm = set(d[3] for d in all_dents(box, t, "/proc/sys/vm"))
    assert {"drop_caches", "swappiness", "dirty_ratio"} <= vm


@needs_mkfs
def test_listing_fat(tmp_path):
    img = make_fat(tmp_path / "l.img", 32, 16)
    b = UserBox([str(img)])
    t = b.new_task()
    b.sys(t, "mkdir", "/mnt/Sub", 0o755)
    for i in range(40):
        opn(b, t, "/mnt/Sub/Long File Name %d.dat" % i, O_CREAT | O_WRONLY)
    got = all_dents(b, t, "/mnt/Sub", 128)
    names = [d[3] for d in got]
    assert names[:2] == [".", ".."]
    assert sorted(names[2:]) == sorted("Long File Name %d.dat" % i for i in range(40))
    assert all(d[2] == DT_REG for d in got[2:])
    root = dict((d[3], d[2]) for d in all_dents(b, t, "/mnt"))
    assert root["Sub"] == DT_DIR
    st = stat(b, t, "/mnt/Sub/Long File Name 3.dat")
    assert st["mode"] == 0o100755 and st["blksize"] == b.fs.clus_size
    assert stat(b, t, "/mnt")["mode"] == 0o40755
    # a mount point's ".." is the parent file system's directory
    assert stat(b, t, "/mnt/..")["ino"] == stat(b, t, "/")["ino"]
    b.close()
