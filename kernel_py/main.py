# Guest entry: guest/main.c imports this module and calls start(hw) once the
# MicroPython VM is up.

import sys

from kernel_py.kernel.kernel import Kernel
from kernel_py.shell import console
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401 - registers every command and file


def start(hw):
    k = Kernel(hw)
    try:
        k.boot()
    except Exception as exc:  # noqa: BLE001 - keep the console for diagnosis
        k.printk("boot: failed, console only: %s: %s" % (type(exc).__name__, exc))
        sys.print_exception(exc)
    console.run(Shell(k))
