"""Path lookup and the name calls: relative paths and the cwd, . and ..,
repeated slashes, mounts, symlinks and ELOOP, the *at calls and their
flags, mkdir/rmdir/unlink/rename/link/symlink/readlink, access,
chdir/fchdir/getcwd; error paths and bad pointers."""

import struct

import pytest

from kernel_py.fs.file import O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, O_WRONLY
from kernel_py.lib.errno import (
    EACCES, EBADF, EBUSY, EEXIST, EFAULT, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENOENT,
    ENOTDIR, ENOTEMPTY, EPERM, ERANGE, EXDEV,
)
from tests.model.fssupport import make_fat, needs_mkfs
from tests.model.usersupport import UserBox

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_EACCESS = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000


@pytest.fixture
def box():
    return UserBox()


def opn(b, t, path, flags=O_RDONLY, mode=0o644, dfd=AT_FDCWD):
    return b.sys(t, "openat", dfd, path, flags, mode)


def ino_of(b, t, path, flags=0):
    st = b.ubuf(t, 144)
    r = b.sys(t, "newfstatat", AT_FDCWD, path, st, flags)
    if r < 0:
        return r
    return struct.unpack_from("<QQ", b.get(t, st, 16))[1]


def cwd(b, t):
    a = b.ubuf(t, 4096)
    n = b.call(t, "getcwd", a, 4096)
    assert n > 0, n
    return b.get(t, a, n - 1).decode()


def test_dots_slashes_and_relative_paths(box):
    t = box.new_task()
    assert box.sys(t, "mkdir", "/tmp/a", 0o755) == 0
    assert box.sys(t, "mkdir", "/tmp/a/b", 0o755) == 0
    assert opn(box, t, "/tmp/a/b/f", O_CREAT | O_WRONLY) >= 0
    i = ino_of(box, t, "/tmp/a/b/f")
    for p in ("//tmp///a//b/f", "/tmp/./a/./b/./f", "/tmp/a/b/../b/f", "/../../tmp/a/b/f",
              "/tmp/a/b/../../a/b/f", "/./tmp/a/b/f"):
        assert ino_of(box, t, p) == i, p
    assert box.sys(t, "chdir", "/tmp/a") == 0
    assert cwd(box, t) == "/tmp/a"
    assert ino_of(box, t, "b/f") == i
    assert ino_of(box, t, "./b/../b/f") == i
    assert ino_of(box, t, "../a/b/f") == i
    assert box.sys(t, "chdir", "b/..//b") == 0
    assert cwd(box, t) == "/tmp/a/b"
    assert box.sys(t, "chdir", "../../../../..") == 0
    assert cwd(box, t) == "/"
    assert ino_of(box, t, "tmp/a/b/f") == i
    assert box.sys(t, "chdir", "/tmp/a/b/f") == -ENOTDIR
    assert box.sys(t, "chdir", "/tmp/none") == -ENOENT
    assert box.sys(t, "chdir", "") == -ENOENT
    assert ino_of(box, t, "/tmp/a/b/f/.") == -ENOTDIR
    assert ino_of(box, t, "/tmp/a/b/f/..") == -ENOTDIR


def test_getcwd_errors(box):
    t = box.new_task()
    box.sys(t, "mkdir", "/tmp/dir", 0o755)
    box.sys(t, "chdir", "/tmp/dir")
    a = box.ubuf(t, 64)
    assert box.call(t, "getcwd", a, 9) == 9                 # "/tmp/dir\0"
    assert box.call(t, "getcwd", a, 8) == -ERANGE
    assert box.call(t, "getcwd", a, 0) == -ERANGE
    assert box.call(t, "getcwd", 0, 100) == -EFAULT
    assert box.call(t, "getcwd", box.unmapped(t), 100) == -EFAULT
    # the cwd removed: ENOENT
    assert box.sys(t, "rmdir", "/tmp/dir") == 0
    assert box.call(t, "getcwd", a, 64) == -ENOENT


def test_fchdir_and_dirfd(box):
    t = box.new_task()
    box.sys(t, "mkdir", "/tmp/d", 0o755)
    d = opn(box, t, "/tmp/d", O_RDONLY | O_DIRECTORY)
    assert opn(box, t, "x", O_CREAT | O_WRONLY, dfd=d) >= 0
    assert ino_of(box, t, "/tmp/d/x") > 0
    assert opn(box, t, "../d/x", dfd=d) >= 0
    f = opn(box, t, "/tmp/d/x")
    assert opn(box, t, "y", dfd=f) == -ENOTDIR
    assert opn(box, t, "y", dfd=99) == -EBADF
    assert opn(box, t, "y", dfd=-1) == -EBADF
    assert opn(box, t, "/tmp/d/x", dfd=99) >= 0             # absolute: dirfd unused
    assert box.sys(t, "mkdirat", d, "sub", 0o700) == 0
    assert box.sys(t, "unlinkat", d, "sub", 0) == -EISDIR
    assert box.sys(t, "unlinkat", d, "sub", AT_REMOVEDIR) == 0
    assert box.sys(t, "unlinkat", d, "x", 0x1) == -EINVAL
    assert box.call(t, "fchdir", d) == 0
    assert cwd(box, t) == "/tmp/d"
    assert box.call(t, "fchdir", f) == -ENOTDIR
    assert box.call(t, "fchdir", 1234) == -EBADF
    # newfstatat with AT_EMPTY_PATH: the fd itself
    st = box.ubuf(t, 144)
    assert box.sys(t, "newfstatat", f, "", st, AT_EMPTY_PATH) == 0
    assert box.sys(t, "newfstatat", f, "", st, 0) == -ENOENT
    assert box.sys(t, "newfstatat", AT_FDCWD, "x", st, 0x8000) == -EINVAL


def test_name_limits_and_deep_paths(box):
    t = box.new_task()
    assert box.sys(t, "mkdir", "/tmp/" + "n" * 256, 0o755) == -ENAMETOOLONG
    assert box.sys(t, "mkdir", "/tmp/" + "n" * 255, 0o755) == 0
    assert ino_of(box, t, "/tmp/" + "n" * 256) == -ENAMETOOLONG
    # 200 levels deep, made relative to the cwd one by one
    assert box.sys(t, "chdir", "/tmp") == 0
    for i in range(200):
        assert box.sys(t, "mkdir", "d", 0o755) == 0
        assert box.sys(t, "chdir", "d") == 0
    assert cwd(box, t) == "/tmp" + "/d" * 200
    deep = "/tmp" + "/d" * 200
    assert ino_of(box, t, deep) > 0
    assert ino_of(box, t, deep + "/.." * 200) == ino_of(box, t, "/tmp")
    assert ino_of(box, t, deep + "/.." * 300 + "/tmp") == ino_of(box, t, "/tmp")
    assert box.sys(t, "mkdir", "/" + "x/" * 2047 + "y", 0o755) == -ENAMETOOLONG


def test_symlinks(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/real", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"target data")
    i = ino_of(box, t, "/tmp/real")
    assert box.sys(t, "symlink", "real", "/tmp/rel") == 0
    assert box.sys(t, "symlink", "/tmp/real", "/tmp/abs") == 0
    assert box.sys(t, "symlink", "rel", "/tmp/chain") == 0
    assert box.sys(t, "symlink", "/tmp", "/tmp/dirlink") == 0
    assert box.sys(t, "symlink", "nowhere", "/tmp/dangling") == 0
    for p in ("/tmp/rel", "/tmp/abs", "/tmp/chain", "/tmp/dirlink/real",
              "/tmp/dirlink/dirlink/dirlink/rel"):
        assert ino_of(box, t, p) == i, p
    assert ino_of(box, t, "/tmp/rel", AT_SYMLINK_NOFOLLOW) != i
    st = box.ubuf(t, 144)
    assert box.sys(t, "lstat", "/tmp/rel", st) == 0
    mode, = struct.unpack_from("<I", box.get(t, st, 144), 24)
    size, = struct.unpack_from("<q", box.get(t, st, 144), 48)
    assert mode == 0o120777 and size == 4
    assert box.sys(t, "stat", "/tmp/dangling", st) == -ENOENT
    assert box.sys(t, "lstat", "/tmp/dangling", st) == 0
    # readlink
    a = box.ubuf(t, 64)
    assert box.sys(t, "readlink", "/tmp/abs", a, 64) == 9
    assert box.get(t, a, 9) == b"/tmp/real"
    assert box.sys(t, "readlink", "/tmp/abs", a, 4) == 4
    assert box.sys(t, "readlink", "/tmp/abs", a, 0) == -EINVAL
    assert box.sys(t, "readlink", "/tmp/abs", a, -1) == -EINVAL
    assert box.sys(t, "readlink", "/tmp/real", a, 64) == -EINVAL
    assert box.sys(t, "readlink", "/tmp/none", a, 64) == -ENOENT
    assert box.sys(t, "readlink", "/tmp/abs", 0, 64) == -EFAULT
    assert box.sys(t, "readlinkat", AT_FDCWD, "/tmp/rel", a, 64) == 4
    # O_CREAT through a dangling link creates its target
    assert opn(box, t, "/tmp/dangling", O_CREAT | O_WRONLY) >= 0
    assert ino_of(box, t, "/tmp/nowhere") > 0
    # symlink errors
    assert box.sys(t, "symlink", "x", "/tmp/rel") == -EEXIST
    assert box.sys(t, "symlink", "", "/tmp/empty") == -ENOENT
    assert box.sys(t, "symlink", "x", "/tmp/no/such") == -ENOENT
    assert box.sys(t, "symlink", "x", "/proc/newlink") == -EPERM
    assert box.sys(t, "symlinkat", "real", opn(box, t, "/tmp", O_DIRECTORY), "rel2") == 0
    assert ino_of(box, t, "/tmp/rel2") == i


def test_eloop(box):
    t = box.new_task()
    assert box.sys(t, "symlink", "/tmp/loop_b", "/tmp/loop_a") == 0
    assert box.sys(t, "symlink", "/tmp/loop_a", "/tmp/loop_b") == 0
    assert ino_of(box, t, "/tmp/loop_a") == -ELOOP
    assert opn(box, t, "/tmp/loop_a") == -ELOOP
    assert opn(box, t, "/tmp/loop_a", O_CREAT | O_WRONLY) == -ELOOP
    assert box.sys(t, "chdir", "/tmp/loop_a") == -ELOOP
    # a chain of 40 links resolves, 41 does not (MAXSYMLINKS)
    opn(box, t, "/tmp/end", O_CREAT | O_WRONLY)
    box.sys(t, "symlink", "end", "/tmp/l0")
    for i in range(1, 41):
        assert box.sys(t, "symlink", "l%d" % (i - 1), "/tmp/l%d" % i) == 0
    assert ino_of(box, t, "/tmp/l39") == ino_of(box, t, "/tmp/end")
    assert ino_of(box, t, "/tmp/l40") == -ELOOP


def test_mkdir_rmdir_unlink(box):
    t = box.new_task()
    assert box.sys(t, "mkdir", "/tmp/m", 0o777) == 0
    st = box.ubuf(t, 144)
    box.sys(t, "stat", "/tmp/m", st)
    nlink, mode = struct.unpack_from("<QI", box.get(t, st, 144), 16)
    assert mode == 0o40755 and nlink == 2                       # umask 022
    assert box.sys(t, "mkdir", "/tmp/m", 0o755) == -EEXIST
    assert box.sys(t, "mkdir", "/tmp/m/", 0o755) == -EEXIST
    assert box.sys(t, "mkdir", "/", 0o755) == -EEXIST
    assert box.sys(t, "mkdir", "/tmp/m/.", 0o755) == -EEXIST
    assert box.sys(t, "mkdir", "/tmp/m/..", 0o755) == -EEXIST
    assert box.sys(t, "mkdir", "/tmp/x/y", 0o755) == -ENOENT
    opn(box, t, "/tmp/file", O_CREAT | O_WRONLY)
    assert box.sys(t, "mkdir", "/tmp/file/y", 0o755) == -ENOTDIR
    assert box.sys(t, "mkdir", "/proc/mine", 0o755) == -EPERM
    assert box.sys(t, "mkdir", "/tmp/m/sub", 0o755) == 0
    box.sys(t, "stat", "/tmp/m", st)
    assert struct.unpack_from("<Q", box.get(t, st, 144), 16)[0] == 3
    assert box.sys(t, "rmdir", "/tmp/m") == -ENOTEMPTY
    assert box.sys(t, "rmdir", "/tmp/file") == -ENOTDIR
    assert box.sys(t, "rmdir", "/tmp/m/sub/.") == -EINVAL
    assert box.sys(t, "rmdir", "/tmp/m/sub/..") == -ENOTEMPTY
    assert box.sys(t, "rmdir", "/") == -EBUSY
    assert box.sys(t, "rmdir", "/proc") == -EBUSY
    assert box.sys(t, "rmdir", "/mnt") == -EBUSY or not box.k.vfs.mounts
    assert box.sys(t, "rmdir", "/tmp/none") == -ENOENT
    assert box.sys(t, "rmdir", "/tmp/m/sub") == 0
    assert box.sys(t, "rmdir", "/tmp/m") == 0
    assert box.sys(t, "unlink", "/tmp") == -EISDIR
    assert box.sys(t, "unlink", "/tmp/file/") == -ENOTDIR
    assert box.sys(t, "unlink", "/tmp/.") == -EISDIR
    assert box.sys(t, "unlink", "/tmp/none") == -ENOENT
    assert box.sys(t, "unlink", "/proc/meminfo") == -EPERM
    assert box.sys(t, "unlink", "/tmp/file") == 0
    assert ino_of(box, t, "/tmp/file") == -ENOENT
    for name in ("mkdir", "rmdir", "unlink", "chdir"):
        args = (0, 0o755) if name == "mkdir" else (0,)
        assert box.call(t, name, *args) == -EFAULT
        assert box.call(t, name, *((box.unmapped(t),) + args[1:])) == -EFAULT


def test_rename(box):
    t = box.new_task()
    assert opn(box, t, "/tmp/r1", O_CREAT | O_RDWR) >= 0
    i = ino_of(box, t, "/tmp/r1")
    assert box.sys(t, "rename", "/tmp/r1", "/tmp/r2") == 0
    assert ino_of(box, t, "/tmp/r1") == -ENOENT
    assert ino_of(box, t, "/tmp/r2") == i
    assert box.sys(t, "rename", "/tmp/r2", "/tmp/r2") == 0
    opn(box, t, "/tmp/other", O_CREAT | O_WRONLY)
    assert box.sys(t, "rename", "/tmp/other", "/tmp/r2") == 0      # replaces
    assert ino_of(box, t, "/tmp/r2") != i
    box.sys(t, "mkdir", "/tmp/d1", 0o755)
    box.sys(t, "mkdir", "/tmp/d1/in", 0o755)
    box.sys(t, "mkdir", "/tmp/d2", 0o755)
    box.sys(t, "mkdir", "/tmp/full", 0o755)
    opn(box, t, "/tmp/full/f", O_CREAT | O_WRONLY)
    assert box.sys(t, "rename", "/tmp/d1", "/tmp/d1/in/x") == -EINVAL
    assert box.sys(t, "rename", "/tmp/d1", "/tmp/r2") == -ENOTDIR
    assert box.sys(t, "rename", "/tmp/r2", "/tmp/d2") == -EISDIR
    assert box.sys(t, "rename", "/tmp/d1", "/tmp/full") == -ENOTEMPTY
    assert box.sys(t, "rename", "/tmp/r2", "/tmp/r2x/") == -ENOTDIR
    assert box.sys(t, "rename", "/tmp/none", "/tmp/x") == -ENOENT
    assert box.sys(t, "rename", "/tmp/.", "/tmp/x") == -EBUSY
    assert box.sys(t, "rename", "/proc", "/tmp/p") == -EBUSY
    assert box.sys(t, "rename", "/tmp/r2", "/dev/r2") == -EXDEV
    assert box.sys(t, "rename", "/tmp/d1", "/tmp/d2") == 0       # over an empty directory
    assert ino_of(box, t, "/tmp/d2/in") > 0
    box.sys(t, "stat", "/tmp", box.ubuf(t, 144))
    assert box.sys(t, "renameat2", AT_FDCWD, "/tmp/r2", AT_FDCWD, "/tmp/full/f", 1) == -EEXIST
    assert box.sys(t, "renameat2", AT_FDCWD, "/tmp/r2", AT_FDCWD, "/tmp/q", 2) == -EINVAL
    assert box.sys(t, "renameat2", AT_FDCWD, "/tmp/r2", AT_FDCWD, "/tmp/q", 1) == 0
    d = opn(box, t, "/tmp", O_DIRECTORY)
    assert box.sys(t, "renameat", d, "q", d, "q2") == 0
    assert box.call(t, "rename", 0, box.ubuf(t, 8, b"/tmp/z\0")) == -EFAULT
    assert box.call(t, "rename", box.ubuf(t, 8, b"/tmp/q2\0"), 0) == -EFAULT
    assert ino_of(box, t, "/tmp/q2") > 0


def test_hard_links(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/h", O_CREAT | O_RDWR)
    box.write_all(t, fd, b"shared")
    assert box.sys(t, "link", "/tmp/h", "/tmp/h2") == 0
    st = box.ubuf(t, 144)
    box.sys(t, "stat", "/tmp/h2", st)
    assert struct.unpack_from("<Q", box.get(t, st, 144), 16)[0] == 2
    assert ino_of(box, t, "/tmp/h2") == ino_of(box, t, "/tmp/h")
    assert box.sys(t, "unlink", "/tmp/h") == 0
    fd2 = opn(box, t, "/tmp/h2")
    assert box.read_all(t, fd2) == b"shared"
    assert box.sys(t, "link", "/tmp/h2", "/tmp/h2") == -EEXIST
    assert box.sys(t, "link", "/tmp", "/tmp/dirlink") == -EPERM
    assert box.sys(t, "link", "/tmp/h2", "/dev/h") == -EXDEV
    assert box.sys(t, "link", "/tmp/none", "/tmp/x") == -ENOENT
    box.sys(t, "symlink", "h2", "/tmp/sl")
    assert box.sys(t, "linkat", AT_FDCWD, "/tmp/sl", AT_FDCWD, "/tmp/sl2", 0) == 0
    assert ino_of(box, t, "/tmp/sl2", AT_SYMLINK_NOFOLLOW) == ino_of(box, t, "/tmp/sl", AT_SYMLINK_NOFOLLOW)
    assert box.sys(t, "linkat", AT_FDCWD, "/tmp/sl", AT_FDCWD, "/tmp/sl3", AT_SYMLINK_FOLLOW) == 0
    assert ino_of(box, t, "/tmp/sl3", AT_SYMLINK_NOFOLLOW) == ino_of(box, t, "/tmp/h2")
    assert box.sys(t, "linkat", AT_FDCWD, "/tmp/sl", AT_FDCWD, "/tmp/sl4", 0x1) == -EINVAL


def test_access(box):
    t = box.new_task()
    opn(box, t, "/tmp/plain", O_CREAT | O_WRONLY, 0o644)
    opn(box, t, "/tmp/tool", O_CREAT | O_WRONLY, 0o755)
    assert box.sys(t, "access", "/tmp/plain", 0) == 0
    assert box.sys(t, "access", "/tmp/plain", 4 | 2) == 0
    assert box.sys(t, "access", "/tmp/plain", 1) == -EACCES     # root needs an x bit
    assert box.sys(t, "access", "/tmp/tool", 1) == 0
    assert box.sys(t, "access", "/tmp", 7) == 0
    assert box.sys(t, "access", "/tmp/none", 0) == -ENOENT
    assert box.sys(t, "access", "/tmp/plain", 8) == -EINVAL
    assert box.sys(t, "faccessat", AT_FDCWD, "/tmp/tool", 1) == 0
    assert box.sys(t, "faccessat2", AT_FDCWD, "/tmp/tool", 1, AT_EACCESS) == 0
    assert box.sys(t, "faccessat2", AT_FDCWD, "/tmp/tool", 1, 0x4) == -EINVAL
    box.sys(t, "symlink", "nowhere", "/tmp/dl")
    assert box.sys(t, "faccessat2", AT_FDCWD, "/tmp/dl", 0, 0) == -ENOENT
    assert box.sys(t, "faccessat2", AT_FDCWD, "/tmp/dl", 0, AT_SYMLINK_NOFOLLOW) == 0
    assert box.sys(t, "access", "/proc/sys/vm/drop_caches", 2) == 0
    assert box.sys(t, "access", "/proc/sys/vm/legacy_va_layout", 2) == 0
    assert box.sys(t, "access", "/sys/kernel/debug/alloc_sites", 2) == -EACCES
    assert box.call(t, "access", 0, 0) == -EFAULT


def test_fd_dir_and_cwd_as_paths_through_renames(box):
    """A directory fd keeps working after its directory is renamed (its
    inode is pinned; the lookup falls back to it)."""
    t = box.new_task()
    box.sys(t, "mkdir", "/tmp/old", 0o755)
    d = opn(box, t, "/tmp/old", O_DIRECTORY)
    box.sys(t, "rename", "/tmp/old", "/tmp/new")
    assert opn(box, t, "made", O_CREAT | O_WRONLY, dfd=d) >= 0
    assert ino_of(box, t, "/tmp/new/made") > 0


@needs_mkfs
def test_fat_names_and_rename_on_disk(tmp_path):
    from tests.model.fssupport import fsck, host_get
    img = make_fat(tmp_path / "n.img", 64, 32, spc=1)
    b = UserBox([str(img)])
    t = b.new_task()
    assert b.sys(t, "mkdir", "/mnt/A", 0o755) == 0
    assert b.sys(t, "mkdir", "/mnt/A/deep", 0o755) == 0
    fd = opn(b, t, "/mnt/A/deep/file with a long name.txt", O_CREAT | O_RDWR)
    b.write_all(t, fd, b"moved around")
    assert b.sys(t, "mkdir", "/mnt/B", 0o755) == 0
    # a directory moves with its children; its ".." follows
    assert b.sys(t, "rename", "/mnt/A/deep", "/mnt/B/deeper") == 0
    assert opn(b, t, "/mnt/B/deeper/file with a long name.txt") >= 0
    assert opn(b, t, "/mnt/A/deep/file with a long name.txt") == -ENOENT
    assert ino_of(b, t, "/mnt/B/deeper/..") == ino_of(b, t, "/mnt/B")
    # case change of the same name
    assert b.sys(t, "rename", "/mnt/B/deeper/file with a long name.txt",
                 "/mnt/B/deeper/FILE WITH A LONG NAME.TXT") == 0
    # over an existing file, and names FAT refuses
    assert opn(b, t, "/mnt/B/victim", O_CREAT | O_WRONLY) >= 0
    assert b.sys(t, "rename", "/mnt/B/deeper/FILE WITH A LONG NAME.TXT", "/mnt/B/victim") == 0
    assert b.sys(t, "rename", "/mnt/B/victim", "/mnt/B/bad*name") == -EINVAL
    assert b.sys(t, "rename", "/mnt/B/victim", "/tmp/victim") == -EXDEV
    assert b.sys(t, "rmdir", "/mnt/A") == 0
    b.call(t, "sync")
    assert host_get(img, "/B/victim") == b"moved around"
    assert host_get(img, "/B/deeper/file with a long name.txt") is None
    b.close()
    ok, out = fsck(img)
    assert ok, out


def stat_of(b, t, path, flags=0):
    """(mode, atime ns, mtime ns, ctime ns) from newfstatat."""
    st = b.ubuf(t, 144)
    assert b.sys(t, "newfstatat", AT_FDCWD, path, st, flags) == 0
    raw = b.get(t, st, 144)
    mode = struct.unpack_from("<I", raw, 24)[0]
    a, an, m, mn, c, cn = struct.unpack_from("<qqqqqq", raw, 72)
    return mode, a * 10**9 + an, m * 10**9 + mn, c * 10**9 + cn


def test_chmod_fchmod_fchmodat(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/m", O_CREAT | O_WRONLY, 0o644)
    assert box.sys(t, "chmod", "/tmp/m", 0o4600) == 0
    assert stat_of(box, t, "/tmp/m")[0] == 0o104600
    assert box.sys(t, "fchmod", fd, 0o755) == 0
    assert stat_of(box, t, "/tmp/m")[0] == 0o100755
    box.sys(t, "symlink", "m", "/tmp/ml")
    assert box.sys(t, "fchmodat", AT_FDCWD, "/tmp/ml", 0o600) == 0     # follows the link
    assert stat_of(box, t, "/tmp/m")[0] == 0o100600
    assert stat_of(box, t, "/tmp/ml", AT_SYMLINK_NOFOLLOW)[0] & 0o170000 == 0o120000
    assert box.sys(t, "chmod", "/tmp", 0o1777) == 0
    assert box.sys(t, "chmod", "/tmp/none", 0o600) == -ENOENT
    assert box.sys(t, "fchmod", 99, 0o600) == -EBADF
    assert box.call(t, "chmod", 0, 0o600) == -EFAULT
    assert box.sys(t, "chmod", "/proc/meminfo", 0o600) == -EPERM
    assert box.sys(t, "access", "/tmp/m", 1) == -EACCES       # no x bit left for root either


@needs_mkfs
def test_chmod_on_vfat_keeps_only_its_own_mode(tmp_path):
    img = make_fat(tmp_path / "v.img", 64, 32, spc=1)
    b = UserBox([str(img)])
    t = b.new_task()
    opn(b, t, "/mnt/f", O_CREAT | O_WRONLY)
    assert b.sys(t, "chmod", "/mnt/f", 0o755) == 0            # what it shows: accepted
    assert b.sys(t, "chmod", "/mnt/f", 0o600) == -EPERM       # fat_sanitize_mode_change
    assert stat_of(b, t, "/mnt/f")[0] == 0o100755
    assert b.sys(t, "chown", "/mnt/f", 0, 0) == 0 and b.sys(t, "chown", "/mnt/f", 1, 0) == -EPERM


def test_utimensat(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/u", O_CREAT | O_WRONLY)
    c0 = stat_of(box, t, "/tmp/u")[3]
    times = box.ubuf(t, 32, struct.pack("<qqqq", 1000, 5, 2000, 7))
    assert box.sys(t, "utimensat", AT_FDCWD, "/tmp/u", times, 0) == 0
    _, a, m, c = stat_of(box, t, "/tmp/u")
    assert (a, m) == (1000 * 10**9 + 5, 2000 * 10**9 + 7) and c > c0
    UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
    times = box.ubuf(t, 32, struct.pack("<qqqq", 0, UTIME_OMIT, 0, UTIME_NOW))
    assert box.sys(t, "utimensat", AT_FDCWD, "/tmp/u", times, 0) == 0
    _, a2, m2, _ = stat_of(box, t, "/tmp/u")
    assert a2 == a and m2 > c0 and m2 != m
    assert box.sys(t, "utimensat", fd, 0, 0, 0) == 0          # futimens(fd, NULL): both now
    _, a3, m3, _ = stat_of(box, t, "/tmp/u")
    assert a3 > c0 and a3 != a and m3 >= m2
    times = box.ubuf(t, 32, struct.pack("<qqqq", 0, 10**9, 0, 0))
    assert box.sys(t, "utimensat", AT_FDCWD, "/tmp/u", times, 0) == -EINVAL
    assert box.sys(t, "utimensat", AT_FDCWD, "/tmp/u", 0, 0x4) == -EINVAL
    assert box.sys(t, "utimensat", AT_FDCWD, "/tmp/none", 0, 0) == -ENOENT
    assert box.sys(t, "utimensat", 99, 0, 0, 0) == -EBADF
    assert box.call(t, "utimensat", AT_FDCWD, "/tmp/u", 8, 0) == -EFAULT


def owner_of(b, t, path, flags=0):
    st = b.ubuf(t, 144)
    assert b.sys(t, "newfstatat", AT_FDCWD, path, st, flags) == 0
    return struct.unpack_from("<II", b.get(t, st, 144), 28)


def test_chown_family(box):
    t = box.new_task()
    fd = opn(box, t, "/tmp/o", O_CREAT | O_WRONLY, 0o6755)
    assert box.sys(t, "chmod", "/tmp/o", 0o6755) == 0
    assert box.sys(t, "chown", "/tmp/o", 1000, 100) == 0
    assert owner_of(box, t, "/tmp/o") == (1000, 100)
    assert stat_of(box, t, "/tmp/o")[0] == 0o100755            # set-id bits cleared
    assert box.sys(t, "fchown", fd, 0xFFFFFFFF, 7) == 0       # -1 keeps the uid
    assert owner_of(box, t, "/tmp/o") == (1000, 7)
    box.sys(t, "symlink", "o", "/tmp/ol")
    assert box.sys(t, "lchown", "/tmp/ol", 5, 5) == 0
    assert owner_of(box, t, "/tmp/ol", AT_SYMLINK_NOFOLLOW) == (5, 5)
    assert owner_of(box, t, "/tmp/o") == (1000, 7)
    assert box.sys(t, "fchownat", AT_FDCWD, "/tmp/ol", 0, 0, 0) == 0     # follows
    assert owner_of(box, t, "/tmp/o") == (0, 0)
    assert box.sys(t, "fchownat", AT_FDCWD, "/tmp/o", 0, 0, 0x8) == -EINVAL
    assert box.sys(t, "chown", "/tmp/none", 0, 0) == -ENOENT
    assert box.sys(t, "fchown", 99, 0, 0) == -EBADF
    assert box.call(t, "chown", 0, 0, 0) == -EFAULT
