# getdents64 (Linux's fs/readdir.c): struct linux_dirent64 records
# (d_ino, d_off, d_reclen, d_type, the NUL-terminated name, padded to 8)
# for as many entries as fit. The listing — ".", "..", then the file
# system's readdir — is taken when a read starts at position 0 and kept
# with the open directory; the position counts entries, each record's
# d_off is the position after it (what telldir/seekdir use), and the next
# call goes on from there. A buffer too small for even one record is
# EINVAL, as filldir64 answers; nothing read, nothing moves.

import struct

from kernel_py.fs.file import fdget
from kernel_py.fs.inode import DT_DIR
from kernel_py.fs.namei import file_stack
from kernel_py.fs.read_write import access_ok
from kernel_py.lib.errno import EBADF, EFAULT, EINVAL, ENOTDIR
from kernel_py.lib.errors import KernelError
from kernel_py.fs.libfs import kerr

DIRENT_HEAD = 19                # d_ino 8, d_off 8, d_reclen 2, d_type 1


def listing(t, f):
    """[(name bytes, ino, d_type)] of the open directory f."""
    ino = f.inode
    parent = ino
    try:
        stack = file_stack(t.k, t, f)
        if len(stack) > 1:
            parent = stack[-2][2]
    except KernelError:
        pass
    out = [(b".", ino.i_ino, DT_DIR), (b"..", parent.i_ino, DT_DIR)]
    for name, i, ty in f.sb.readdir(ino):
        out.append((name.encode(), i, ty))
    return out


def sys_getdents64(t, fd, dirent, count):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    if f.inode is None or not f.inode.is_dir:
        return -ENOTDIR
    count &= 0xFFFFFFFF
    if not access_ok(dirent, count):
        return -EFAULT
    ents = f.private
    if ents is None or f.pos == 0:
        try:
            ents = listing(t, f)
        except KernelError as e:
            return kerr(e)
        f.private = ents
    pos = f.pos
    buf = bytearray()
    while pos < len(ents):
        name, ino, ty = ents[pos]
        reclen = (DIRENT_HEAD + len(name) + 1 + 7) & ~7
        if len(buf) + reclen > count:
            break
        rec = bytearray(reclen)
        struct.pack_into("<QqHB", rec, 0, ino, pos + 1, reclen, ty)
        rec[DIRENT_HEAD:DIRENT_HEAD + len(name)] = name
        buf += rec
        pos += 1
    if not buf and pos < len(ents):
        return -EINVAL
    if buf and not t.k.hw.copy_to_user(dirent, bytes(buf)):
        return -EFAULT
    f.pos = pos
    return len(buf)
