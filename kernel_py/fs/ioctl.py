# ioctl (Linux's fs/ioctl.c): the commands every file answers
# (do_vfs_ioctl: FIOCLEX, FIONCLEX, FIONBIO, FIOASYNC, FIOQSIZE, and
# FIONREAD for regular files), then the file's own (f_op->unlocked_ioctl:
# the terminal's TCGETS, TCSETS, TIOCGWINSZ, TIOCGPGRP, TIOCSPGRP...,
# a pipe's FIONREAD); ENOTTY from a file without them.

import struct

from kernel_py.fs.file import FASYNC, O_NONBLOCK, fdget
from kernel_py.fs.mode import S_ISREG
from kernel_py.lib.errno import EBADF, EFAULT

FIONCLEX, FIOCLEX, FIOASYNC, FIOQSIZE = 0x5450, 0x5451, 0x5452, 0x5460
FIONBIO, FIONREAD = 0x5421, 0x541B


def get_int(t, arg):
    b = t.k.hw.copy_from_user(arg, 4)
    return None if b is None else struct.unpack("<i", b)[0]


def sys_ioctl(t, fd, cmd, arg):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    cmd &= 0xFFFFFFFF
    fdn = fd & 0xFFFFFFFF
    if cmd == FIOCLEX:
        t.files.cloexec.add(fdn)
        return 0
    if cmd == FIONCLEX:
        t.files.cloexec.discard(fdn)
        return 0
    if cmd == FIONBIO or cmd == FIOASYNC:
        v = get_int(t, arg)
        if v is None:
            return -EFAULT
        bit = O_NONBLOCK if cmd == FIONBIO else FASYNC
        if v:
            f.flags |= bit
        else:
            f.flags &= ~bit
        return 0
    regular = f.inode is not None and f.sb is not None and not f.inode.is_dir and \
        S_ISREG(f.sb.mode(f.inode))
    if cmd == FIOQSIZE and f.inode is not None and (regular or f.inode.is_dir):
        size = f.sb.getattr(f.inode).size
        return 0 if t.k.hw.copy_to_user(arg, struct.pack("<q", size)) else -EFAULT
    if cmd == FIONREAD and regular:
        left = max(0, f.sb.size(f.inode) - f.pos)
        return 0 if t.k.hw.copy_to_user(arg, struct.pack("<i", min(left, 0x7FFFFFFF))) else -EFAULT
    return f.f_op.ioctl(f, t, cmd, arg)
