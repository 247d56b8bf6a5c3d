# fcntl (Linux's fs/fcntl.c, fs/locks.c's F_GETLK/F_SETLK, fs/pipe.c's
# pipe_fcntl): descriptor flags, file status flags, duplication.
#
# Record locks: there is no lock table here. F_SETLK/F_SETLKW (and the
# OFD forms) check their struct flock and succeed; F_GETLK reports the
# range unlocked. Programs that lock a file to guard it against
# themselves (lockf, busybox) work; two processes contending for one lock
# both get it — a place where this kernel differs from Linux, said here.

import struct

from kernel_py.fs.file import (
    FD_CLOEXEC, O_PATH, SETFL_MASK, fdget_raw, nofile,
)
from kernel_py.fs.pipe import PIPE_DEF_BUFFERS, PIPE_FOPS
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL

F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_GETLK, F_SETLK, F_SETLKW, F_SETOWN, F_GETOWN = 5, 6, 7, 8, 9
F_SETSIG, F_GETSIG = 10, 11
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_DUPFD_CLOEXEC = 1030
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
FLOCK_SIZE = 32                         # struct flock: l_type, l_whence, l_start, l_len, l_pid
PIPE_SIZE = PIPE_DEF_BUFFERS * 4096
# what an O_PATH descriptor allows (check_fcntl_cmd)
PATH_CMDS = (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL)


def sys_fcntl(t, fd, cmd, arg):
    k = t.k
    f = fdget_raw(t, fd)
    if f is None:
        return -EBADF
    fd &= 0xFFFFFFFF
    cmd &= 0xFFFFFFFF
    if f.flags & O_PATH and cmd not in PATH_CMDS:
        return -EBADF
    files = t.files
    if cmd == F_DUPFD or cmd == F_DUPFD_CLOEXEC:
        arg &= 0xFFFFFFFFFFFFFFFF
        if arg >= nofile(t):
            return -EINVAL
        r = files.alloc_fd(f.get(), arg, cmd == F_DUPFD_CLOEXEC, nofile(t))
        if r < 0:
            f.fput(k)
        return r
    if cmd == F_GETFD:
        return FD_CLOEXEC if fd in files.cloexec else 0
    if cmd == F_SETFD:
        if arg & FD_CLOEXEC:
            files.cloexec.add(fd)
        else:
            files.cloexec.discard(fd)
        return 0
    if cmd == F_GETFL:
        return f.flags
    if cmd == F_SETFL:
        f.flags = (f.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        b = k.hw.copy_from_user(arg, FLOCK_SIZE)
        if b is None:
            return -EFAULT
        ltype, whence = struct.unpack_from("<hh", b, 0)
        if ltype not in (F_RDLCK, F_WRLCK, F_UNLCK) or whence not in (0, 1, 2):
            return -EINVAL
        if cmd in (F_GETLK, F_OFD_GETLK):
            b = bytearray(b)
            struct.pack_into("<h", b, 0, F_UNLCK)
            return 0 if k.hw.copy_to_user(arg, bytes(b)) else -EFAULT
        return 0
    if cmd == F_GETOWN or cmd == F_GETSIG:
        return 0
    if cmd == F_SETOWN or cmd == F_SETSIG:
        return 0
    if cmd == F_GETPIPE_SZ or cmd == F_SETPIPE_SZ:
        if f.f_op is not PIPE_FOPS:
            return -EBADF
        if cmd == F_SETPIPE_SZ and arg & 0xFFFFFFFF > PIPE_SIZE:
            return -EINVAL              # the ring stays 16 pages here: larger sizes are refused
        return PIPE_SIZE
    return -EINVAL
