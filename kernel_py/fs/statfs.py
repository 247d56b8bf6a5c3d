# statfs and fstatfs (Linux's fs/statfs.c): what df asks of a mounted file
# system. Each SuperBlock says its block size, blocks and free blocks
# (statfs()), its magic number (f_type, include/uapi/linux/magic.h) and its
# longest name; the rest is made as Linux's vfs_statfs makes it.

import struct

from kernel_py.fs import namei
from kernel_py.fs.file import fdget_raw
from kernel_py.fs.inode import AT_FDCWD
from kernel_py.fs.libfs import kerr
from kernel_py.lib.errno import EBADF, EFAULT
from kernel_py.lib.errors import KernelError

# struct statfs (x86-64): f_type f_bsize f_blocks f_bfree f_bavail f_files
# f_ffree, f_fsid (two ints), f_namelen f_frsize f_flags, f_spare[4]
STATFS = "<qqqqqqqiiqqq32x"
STATFS_SIZE = 120
ST_RELATIME = 0x400             # f_flags: the mount's options (ST_* of statvfs.h)
ST_RDONLY = 0x1


def statfs_bytes(sb):
    bsize, blocks, bfree = sb.statfs()
    dev = sb.dev
    flags = ST_RELATIME | (ST_RDONLY if sb.read_only else 0)
    files, ffree = sb.statfs_files()
    return struct.pack(STATFS, sb.magic, bsize, blocks, bfree, bfree, files, ffree,
                       dev.minor | (dev.major << 8), 0, sb.namelen, bsize, flags)


def sys_statfs(t, upath, buf):
    path = namei.getname(t, upath)
    if type(path) is int:
        return path
    try:
        stack = namei.lookup(t.k, t, AT_FDCWD, path)
        data = statfs_bytes(stack[-1][1])
    except KernelError as e:
        return kerr(e)
    return 0 if t.k.hw.copy_to_user(buf, data) else -EFAULT


def sys_fstatfs(t, fd, buf):
    f = fdget_raw(t, fd)
    if f is None:
        return -EBADF
    sb = f.sb if f.sb is not None else t.k.vfs.anon
    return 0 if t.k.hw.copy_to_user(buf, statfs_bytes(sb)) else -EFAULT
