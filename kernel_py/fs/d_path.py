# getcwd (Linux's fs/d_path.c): the working directory's path with its NUL.
# ERANGE when it does not fit; ENOENT when the directory was removed (the
# path no longer leads to it), as Linux answers for an unlinked cwd.

from kernel_py.fs.namei import path_stack
from kernel_py.lib.errno import EFAULT, ENOENT, ERANGE
from kernel_py.lib.errors import KernelError


def sys_getcwd(t, buf, size):
    cwd = t.fs.cwd if t.fs is not None else "/"
    try:
        path_stack(t.k, t, cwd)
    except KernelError:
        return -ENOENT
    data = cwd.encode() + b"\0"
    if len(data) > size & 0xFFFFFFFFFFFFFFFF:
        return -ERANGE
    return len(data) if t.k.hw.copy_to_user(buf, data) else -EFAULT
