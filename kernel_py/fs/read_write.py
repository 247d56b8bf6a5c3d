# read and write (Linux's fs/read_write.c): through the File's operations,
# with the user buffer copied by copy_to_user / copy_from_user (EFAULT on a
# bad pointer, nothing else harmed). A call that would block sleeps on the
# file's wait queue and is tried again when woken (kernel/sched.py).

from kernel_py.lib.errno import EBADF, EFAULT, EINVAL, ERESTARTSYS
from kernel_py.kernel.signal import signal_pending

MAX_RW_COUNT = 0x7FFFF000               # Linux caps one transfer at INT_MAX & PAGE_MASK
CHUNK = 64 << 10                        # bytes copied from user space at a time


def fdget(t, fd):
    if fd < 0:
        return None
    return t.files.file(fd & 0xFFFFFFFF)


def sys_read(t, fd, buf, count):
    k = t.k
    f = fdget(t, fd)
    if f is None or not f.readable():
        return -EBADF
    if count < 0:
        return -EINVAL
    count = min(count, MAX_RW_COUNT)

    def attempt():
        data = f.f_op.read(f, t, count)
        if data is None:
            if signal_pending(t):
                return -ERESTARTSYS
            return k.sched.sleep(t, f.f_op.wait_queue(f), attempt)
        if type(data) is int:
            return data
        if data and not k.hw.copy_to_user(buf, data):
            return -EFAULT
        return len(data)
    return attempt()


def sys_write(t, fd, buf, count):
    k = t.k
    f = fdget(t, fd)
    if f is None or not f.writable():
        return -EBADF
    if count < 0:
        return -EINVAL
    count = min(count, MAX_RW_COUNT)
    data = k.hw.copy_from_user(buf, count) if count else b""
    if data is None:
        return -EFAULT

    def attempt():
        r = f.f_op.write(f, t, data)
        if r is None:
            if signal_pending(t):
                return -ERESTARTSYS
            return k.sched.sleep(t, f.f_op.wait_queue(f), attempt)
        return r
    return attempt()


def sys_close(t, fd):
    if fd < 0:
        return -EBADF
    return t.files.close(t.k, fd & 0xFFFFFFFF)
