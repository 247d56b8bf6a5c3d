# utimensat (Linux's fs/utimes.c): a file's access and modification
# times set to given values, to now (UTIME_NOW), or left (UTIME_OMIT);
# NULL times means both now (touch). The ctime becomes now
# (notify_change). With a NULL path it acts on the descriptor dfd itself
# (futimens).

import struct

from kernel_py.fs import namei
from kernel_py.fs.file import fdget
from kernel_py.fs.inode import AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW
from kernel_py.fs.libfs import kerr
from kernel_py.fs.open import setattr_prepare
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL
from kernel_py.lib.errors import KernelError

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
NSEC = 1000000000
OMIT = -1                               # a time left as it is


def read_utimes(hw, utimes):
    """[atime, mtime] as ns, UTIME_NOW or OMIT; None for NULL; -errno."""
    if not utimes:
        return None
    b = hw.copy_from_user(utimes, 32)
    if b is None:
        return -EFAULT
    out = []
    for sec, nsec in (struct.unpack_from("<qq", b, 0), struct.unpack_from("<qq", b, 16)):
        if nsec == UTIME_OMIT:
            out.append(OMIT)
        elif nsec == UTIME_NOW:
            out.append(UTIME_NOW)
        elif 0 <= nsec < NSEC:
            out.append(sec * NSEC + nsec)
        else:
            return -EINVAL
    return out


def utimes_common(sb, ino, times):
    setattr_prepare(sb, ino)
    now = sb.now()
    if times is None:
        times = [UTIME_NOW, UTIME_NOW]
    atime, mtime = [now if v == UTIME_NOW else None if v == OMIT else v for v in times]
    sb.setattr(ino, atime=atime, mtime=mtime)


def sys_utimensat(t, dfd, upath, utimes, flags):
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -EINVAL
    times = read_utimes(t.k.hw, utimes)
    if type(times) is int:
        return times
    if times is not None and times[0] == OMIT and times[1] == OMIT:
        return 0
    try:
        if not upath:                               # futimens: dfd itself
            f = fdget(t, dfd)
            if f is None:
                return -EBADF
            utimes_common(f.sb, f.inode, times)
            return 0
        path = namei.getname(t, upath)
        if type(path) is int:
            return path
        p, sb, ino = namei.lookup(t.k, t, dfd, path, not flags & AT_SYMLINK_NOFOLLOW, False,
                                  bool(flags & AT_EMPTY_PATH))[-1]
        utimes_common(sb, ino, times)
    except KernelError as e:
        return kerr(e)
    return 0
