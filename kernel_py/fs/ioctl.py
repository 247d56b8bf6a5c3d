# ioctl (Linux's fs/ioctl.c): to the file's own operations; ENOTTY where
# the file has none. WORK IN PROGRESS (issue 14): the generic FIONBIO,
# FIOCLEX and FIONCLEX come with the file-system change.

from kernel_py.fs.read_write import fdget
from kernel_py.lib.errno import EBADF


def sys_ioctl(t, fd, cmd, arg):
    f = fdget(t, fd)
    if f is None:
        return -EBADF
    return f.f_op.ioctl(f, t, cmd, arg)
