# memleak on the console (kernel/trace/memleak.py): bcc's
#     memleak -p PID [-o OLDER_MS] [INTERVAL]
# attaches to a running program (uprobes on malloc, calloc, realloc, free)
# and prints its outstanding allocations by call stack, then again every
# INTERVAL seconds; run again, it prints the report now; -d detaches;
#     memleak -c PATH [ARGS...]
# runs a program traced from its main (glibc's start-up is not the
# program's), in the foreground, as bcc's -c COMMAND. Either way the program's exit prints heaptrack's
# summary and removes the probes.

from kernel_py.kernel.fork import ENVP_INIT, spawn_user
from kernel_py.kernel.trace.memleak import DEFAULT_OLDER_MS, MemleakTracer
from kernel_py.lib.errno import NAMES as ERRNO_NAMES
from kernel_py.lib.errors import KernelError
from kernel_py.shell.registry import command

USAGE = "memleak -p PID [-o OLDER_MS] [-d] [INTERVAL] | memleak -c PATH [ARGS...]"


def number(word, what):
    if not word.isdigit():
        raise KernelError("EINVAL", "%s %r is not a number" % (what, word))
    return int(word)


def parse(args):
    """(pid, older_ms, detach, interval) of the -p form."""
    pid = None
    older = None                        # -o not given: the tracer's own (DEFAULT_OLDER_MS)
    detach = False
    interval = 0
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-p", "-o") and i + 1 < len(args):
            v = number(args[i + 1], "pid" if a == "-p" else "OLDER_MS")
            if a == "-p":
                pid = v
            else:
                older = v
            i += 2
            continue
        if a == "-d":
            detach = True
        elif a.isdigit() and not interval:
            interval = int(a)
            if not interval:
                raise KernelError("EINVAL", "INTERVAL must be at least 1 second")
        else:
            raise KernelError("EINVAL", "usage: " + USAGE)
        i += 1
    if pid is None:
        raise KernelError("EINVAL", "usage: " + USAGE)
    return pid, older, detach, interval


def tracee(k, pid):
    t = k.procs.tasks.get(pid)
    if t is None or t.state in ("Z", "X"):
        raise KernelError("ESRCH", "no process %d" % pid)
    if t.mm is None or t.regs is None:
        raise KernelError("EINVAL", "pid %d is not a program (a kernel thread or a console "
                          "process)" % pid)
    return t


@command("memleak", USAGE,
         "outstanding allocations of a program by call stack (uprobes on malloc/free), "
         "heaptrack's summary at its exit")
def cmd_memleak(k, args):
    if args[:1] == ["-c"]:
        return run_traced(k, args[1:])
    pid, older, detach, interval = parse(args)
    tr = k.memleak.get(pid)
    if tr is None:
        if detach:
            raise KernelError("ENOENT", "memleak is not attached to pid %d" % pid)
        tr = MemleakTracer(k, tracee(k, pid), DEFAULT_OLDER_MS if older is None else older)
        tr.attach()
        head = "Attaching to pid %d (%s), %d probes.\n" % (pid, tr.comm, len(tr.probes))
    else:
        if older is not None:
            tr.older_ms = older
        head = ""
    if detach:
        out = tr.report()
        tr.detach()
        return out + "\nmemleak: detached from pid %d" % pid
    if interval:
        tr.every(interval)
    return head + tr.report()


def run_traced(k, argv):
    if not argv:
        raise KernelError("EINVAL", "usage: " + USAGE)
    t, err = spawn_user(k, argv[0], argv, ENVP_INIT)
    if t is None:
        raise KernelError(ERRNO_NAMES.get(-err, "EIO"), "cannot run %s" % argv[0])
    tr = MemleakTracer(k, t, 0)
    try:
        tr.attach_at("main")
    except KernelError:
        k.procs.kill_user(t)
        raise
    k.console.foreground(t)
    return ""
