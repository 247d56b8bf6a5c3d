# sync, syncfs, fsync, fdatasync (Linux's fs/sync.c). sync writes every
# mounted file system's dirty pages and metadata and flushes the disks
# (Vfs.sync), and like Linux's returns nothing a program could act on
# (0). fsync and fdatasync go to the file's operations (a FAT file syncs
# its file system; a file without fsync — a pipe, the terminal, /proc —
# is EINVAL, as on Linux). fdatasync is fsync here: FAT's metadata
# (size, clusters) is what makes data reachable anyway.

from kernel_py.fs.file import fdget
from kernel_py.lib.errno import EBADF, EIO
from kernel_py.lib.errors import KernelError


def sys_sync(t):
    try:
        t.k.vfs.sync()
    except KernelError:
        pass                            # sync(2) reports no error
    return 0


def sys_syncfs(t, fd):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    if f.sb is None:
        return 0
    try:
        f.sb.sync()
    except KernelError:
        return -EIO
    return 0


def sys_fsync(t, fd):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    return f.f_op.fsync(f)


def sys_fdatasync(t, fd):
    return sys_fsync(t, fd)
