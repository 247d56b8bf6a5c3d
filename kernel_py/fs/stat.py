# stat and readlink (Linux's fs/stat.c): stat, fstat, lstat, newfstatat,
# statx, readlink, readlinkat. The attributes come from the file system's
# getattr (fs/inode.py Kstat); the layouts are x86-64's struct stat (144
# bytes, arch/x86/include/uapi/asm/stat.h) and struct statx (256 bytes,
# include/uapi/linux/stat.h). Debian's glibc-static 2.36 calls newfstatat
# for stat, lstat and fstat (strace of a static program on the build
# machine); statx is there for programs that ask for it.

import struct

from kernel_py.fs import namei
from kernel_py.fs.file import fdget_raw
from kernel_py.fs.inode import AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE, AT_SYMLINK_NOFOLLOW, Kstat
from kernel_py.fs.libfs import kerr
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL
from kernel_py.lib.errors import KernelError

STAT_FMT = "<QQQIIIiQ" + "q" * 12
STAT_SIZE = 144
STATX_SIZE = 256
STATX_BASIC_STATS = 0x7FF
STATX__RESERVED = 0x80000000
NSEC = 1000000000


def file_kstat(f):
    """vfs_getattr of an open file."""
    if f.sb is None or f.inode is None:
        return Kstat(0, 0, 0o600, 1, 0, 4096, 0)
    return f.sb.getattr(f.inode)


def stat_bytes(st):
    return struct.pack(STAT_FMT, st.dev, st.ino, st.nlink, st.mode, st.uid, st.gid, 0,
                       st.rdev, st.size, st.blksize, st.blocks,
                       st.atime // NSEC, st.atime % NSEC, st.mtime // NSEC, st.mtime % NSEC,
                       st.ctime // NSEC, st.ctime % NSEC, 0, 0, 0)


def decode_dev(dev):
    """(major, minor) of a dev_t as new_encode_dev made it."""
    return (dev >> 8) & 0xFFF, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


def statx_bytes(st):
    b = bytearray(STATX_SIZE)
    struct.pack_into("<IIQIIIHH", b, 0, STATX_BASIC_STATS, st.blksize, 0, st.nlink,
                     st.uid, st.gid, st.mode & 0xFFFF, 0)
    struct.pack_into("<QQQQ", b, 32, st.ino, st.size, st.blocks, 0)
    for off, ns in ((64, st.atime), (96, st.ctime), (112, st.mtime)):
        struct.pack_into("<qI", b, off, ns // NSEC, ns % NSEC)
    rmaj, rmin = decode_dev(st.rdev)
    dmaj, dmin = decode_dev(st.dev)
    struct.pack_into("<IIII", b, 128, rmaj, rmin, dmaj, dmin)
    return bytes(b)


def vfs_statx(t, dfd, path, flags):
    """The Kstat of what (dfd, path) names (an empty path with
    AT_EMPTY_PATH: dfd itself); raises KernelError."""
    k = t.k
    if not path and flags & AT_EMPTY_PATH and namei.s32(dfd) != AT_FDCWD:
        f = fdget_raw(t, dfd)
        if f is None:
            raise KernelError("EBADF", "fd %d" % namei.s32(dfd))
        return file_kstat(f)
    stack = namei.lookup(k, t, dfd, path, not flags & AT_SYMLINK_NOFOLLOW, False,
                         bool(flags & AT_EMPTY_PATH))
    p, sb, ino = stack[-1]
    if sb is None:
        raise KernelError("ENOENT", p)
    return sb.getattr(ino)


def sys_newfstatat(t, dfd, upath, statbuf, flag):
    flag &= 0xFFFFFFFF
    if flag & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH):
        return -EINVAL
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        st = vfs_statx(t, dfd, path, flag)
    except KernelError as e:
        return kerr(e)
    return 0 if t.k.hw.copy_to_user(statbuf, stat_bytes(st)) else -EFAULT


def sys_stat(t, upath, statbuf):
    return sys_newfstatat(t, AT_FDCWD, upath, statbuf, 0)


def sys_lstat(t, upath, statbuf):
    return sys_newfstatat(t, AT_FDCWD, upath, statbuf, AT_SYMLINK_NOFOLLOW)


def sys_fstat(t, fd, statbuf):
    f = fdget_raw(t, fd)
    if f is None:
        return -EBADF
    return 0 if t.k.hw.copy_to_user(statbuf, stat_bytes(file_kstat(f))) else -EFAULT


def sys_statx(t, dfd, upath, flags, mask, buf):
    flags &= 0xFFFFFFFF
    mask &= 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE):
        return -EINVAL
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or mask & STATX__RESERVED:
        return -EINVAL
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        st = vfs_statx(t, dfd, path, flags)
    except KernelError as e:
        return kerr(e)
    return 0 if t.k.hw.copy_to_user(buf, statx_bytes(st)) else -EFAULT


def sys_readlinkat(t, dfd, upath, buf, bufsiz):
    k = t.k
    bufsiz = namei.s32(bufsiz)
    if bufsiz <= 0:
        return -EINVAL
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        stack = namei.lookup(k, t, dfd, path, False, False, True)
        p, sb, ino = stack[-1]
        if sb is None or not namei.is_link(sb, ino):
            raise KernelError("EINVAL", "%s is not a symbolic link" % p)
        data = sb.readlink(ino, t)
    except KernelError as e:
        return kerr(e)
    data = data[:bufsiz]
    return len(data) if k.hw.copy_to_user(buf, data) else -EFAULT


def sys_readlink(t, upath, buf, bufsiz):
    return sys_readlinkat(t, AT_FDCWD, upath, buf, bufsiz)
