# Guest entry: guest/main.c imports this module and calls start(hw) once the
# MicroPython VM is up.

from kernel_py.kernel import Kernel
from kernel_py.shell import console
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401 - registers every command and file


def start(hw):
    k = Kernel(hw)
    k.boot()
    console.run(Shell(k))
