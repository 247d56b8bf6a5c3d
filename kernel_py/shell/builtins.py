# Commands every Linux console has: help, echo, cat, ls, sysctl, dmesg, poweroff.

from kernel_py.kernel.printk import dmesg_line, first_seq
from kernel_py.lib.errors import KernelError
from kernel_py.shell import cmd_fs, registry, repl
from kernel_py.shell.registry import command
from kernel_py.shell.shell import resolve


@command("help", "help [command]", "list commands, or show one command's usage")
def cmd_help(k, args):
    if args:
        entry = registry.help_entry(args[0])
        if entry is None:
            raise KernelError("ENOENT", "no command %r" % args[0])
        return "usage: %s\n  %s" % (entry[0] or args[0], entry[1])
    lines = []
    for name in registry.names():
        lines.append("%-14s %s" % (name, registry.help_entry(name)[1]))
    return "\n".join(lines)


@command("echo", "echo [words...]", "print the words (redirect with > to write a /proc or /sys file)")
def cmd_echo(k, args):
    return " ".join(args)


@command("cat", "cat FILE...", "print pseudo-files such as /proc/meminfo, files under /mnt or in the root file system")
def cmd_cat(k, args):
    if not args:
        raise KernelError("EINVAL", "usage: cat FILE...")
    out = []
    for path in args:
        if k.vfs is not None and (k.vfs.owns(path) or cmd_fs.in_namespace(k, path)):
            out.append(cmd_fs.cat_file(k, path))
        else:
            out.append(resolve(path)[0](k).rstrip("\n"))
    return "\n".join(out)


@command("ls", "ls [-l] [DIR]", "list pseudo-files under a directory, or a directory under /mnt or of the root file system")
def cmd_ls(k, args):
    paths = [a for a in args if not a.startswith("-")]
    target = paths[-1] if paths else "/"
    if k.vfs is not None and (k.vfs.owns(target) or cmd_fs.in_namespace(k, target)):
        return cmd_fs.ls(k, args if paths else args + [target])
    prefix = target.rstrip("/") + "/"
    names = set()
    if k.vfs is not None:
        names = cmd_fs.mount_names(k, prefix)
    for path in registry.FILES:
        if path.startswith(prefix):
            names.add(path[len(prefix):].split("/")[0])
    for pre, suffix, _read, _write, listed in registry.PATTERN_FILES:
        for name in listed(k) if listed else ():
            path = pre + name + suffix
            if path.startswith(prefix):
                names.add(path[len(prefix):].split("/")[0])
    if prefix == "/proc/":
        for pid in k.pids():
            names.add(str(pid))
    if not names:
        raise KernelError("ENOENT", prefix)
    return "  ".join(sorted(names))


def sysctl_path(name):
    return "/proc/sys/" + name.replace(".", "/")


@command("sysctl", "sysctl [-a] [-w] [name[=value]]...",
         "read or set /proc/sys values (vm.swappiness=10; -w as procps: name=value writes)")
def cmd_sysctl(k, args):
    # procps's -w only makes every argument a write; name=value already is one
    args = [a for a in args if a != "-w"]
    if not args or args == ["-a"]:
        args = [p[10:].replace("/", ".") for p in sorted(registry.FILES) if p.startswith("/proc/sys/")]
    out = []
    for arg in args:
        if "=" in arg:
            name, value = arg.split("=", 1)
            write = resolve(sysctl_path(name))[1]
            if write is None:
                raise KernelError("EACCES", name + " is read-only")
            write(k, value)
        else:
            name = arg
        out.append("%s = %s" % (name, resolve(sysctl_path(name))[0](k).strip()))
    return "\n".join(out)


@command("dmesg", "dmesg [-c|-C]", "print the kernel log, each line with its time since boot "
         "(-c: then clear it, -C: clear it)")
def cmd_dmesg(k, args):
    """dmesg as util-linux prints syslog's READ_ALL (kernel/printk.py); the
    clear marks what syslog's READ_ALL and the next dmesg start from."""
    if args not in ([], ["-c"], ["-C"]):
        raise KernelError("EINVAL", "usage: dmesg [-c|-C]")
    oldest = first_seq(k)
    first = max(k.log_clear_seq, oldest) - oldest
    text = "\n".join(dmesg_line(k, i) for i in range(first, len(k.log)))
    if args:
        k.log_clear_seq = k.log_next_seq
    return text if args != ["-C"] else ""


@command("poweroff", "poweroff [status]", "halt the machine; QEMU exits with the status")
def cmd_poweroff(k, args):
    status = int(args[0]) if args else 0
    if not 0 <= status <= 127:
        raise KernelError("EINVAL", "status must be 0..127")
    k.hw.exit(status)


@command("python", "python", "MicroPython REPL with k (the kernel) and hw; exit() or Ctrl-D leaves")
def cmd_python(k, args):
    if args:
        raise KernelError("EINVAL", "usage: python (it takes no arguments)")
    repl.run(k)
    return ""


TRAPS = ("de", "bp", "ud", "gp", "pf", "df")


@command("trap", "trap de|bp|ud|gp|pf|df", "raise a real CPU exception in the kernel: prints an oops, the console goes on")
def cmd_trap(k, args):
    if len(args) != 1 or args[0] not in TRAPS:
        raise KernelError("EINVAL", "usage: trap " + "|".join(TRAPS))
    k.hw.trap(args[0])
