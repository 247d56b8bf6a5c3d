# Guest entry: guest/main.c imports this module and calls start(hw) once the
# MicroPython VM is up. After boot the kernel lives in its idle loop
# (kernel/idle.py): the console, the programs and the background work.

import sys

from kernel_py.kernel.idle import idle_loop
from kernel_py.kernel.kernel import Kernel
from kernel_py.shell.console import Console, run_blocking
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401 - registers every command and file


def start(hw):
    k = Kernel(hw)
    try:
        k.boot()
    except Exception as exc:  # noqa: BLE001 - keep the console for diagnosis
        k.printk("boot: failed, console only: %s: %s" % (type(exc).__name__, exc))
        sys.print_exception(exc)
        run_blocking(Shell(k))
    k.console = Console(k, Shell(k))
    if "init" in k.params:
        k.console.start_init(k.params["init"])
    idle_loop(k)
