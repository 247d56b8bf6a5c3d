# Programs on the console: `run PATH ARGS...` starts a static Linux
# program in ring 3 with fds 0-2 on the console, in the foreground (the
# console waits for it, and the terminal's keys go to it: Ctrl-C is
# SIGINT) or, with a last word `&`, in the background (its pid is printed).
# `sh` hands the terminal to BusyBox's shell from the root file system
# until it exits.

from kernel_py.kernel.fork import ENVP_INIT, spawn_user
from kernel_py.lib.errno import NAMES as ERRNO_NAMES
from kernel_py.lib.errors import KernelError
from kernel_py.shell.registry import command


def start_program(k, args, background):
    path = args[0]
    t, err = spawn_user(k, path, args, ENVP_INIT)
    if t is None:
        raise KernelError(ERRNO_NAMES.get(-err, "EIO"), "cannot run %s" % path)
    if not background:
        k.console.foreground(t)
    return t


@command("run", "run PATH [ARGS...] [&]",
         "run a static Linux program; the console waits for it unless the last word is &")
def cmd_run(k, args):
    background = bool(args) and args[-1] == "&"
    if background:
        args = args[:-1]
    if not args:
        raise KernelError("EINVAL", "usage: run PATH [ARGS...] [&]")
    t = start_program(k, args, background)
    return "[%d]" % t.pid if background else ""


SHELL = "/bin/sh"


@command("sh", "sh [ARGS...]",
         "run /bin/sh (BusyBox, from the initramfs) on the console until it exits")
def cmd_sh(k, args):
    start_program(k, [SHELL] + args, False)
    return ""
