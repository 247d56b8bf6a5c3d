# Character devices (Linux's fs/char_dev.c): a device node's (major,
# minor) names the driver whose file operations an open gets (chrdev_open).
# Drivers register at import (drivers/mem.py, drivers/tty.py's users).

from kernel_py.lib.errors import KernelError

CHRDEVS = {}        # (major, minor) -> fn(k, file) -> FileOperations (may set file.private)


def register_chrdev(major, minor, make_fops):
    CHRDEVS[(major, minor)] = make_fops


def chrdev_open(k, rdev, f):
    make = CHRDEVS.get(rdev)
    if make is None:
        raise KernelError("ENXIO", "no driver for character device %d:%d" % rdev)
    return make(k, f)
