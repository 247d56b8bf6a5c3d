# `bench`: measurements made inside the guest with the calibrated TSC.
# Figures are integers (the guest VM has no floats); make bench collects them.

from kernel_py.lib.errors import KernelError
from kernel_py.shell.registry import command
from kernel_py.bench import platform as bench
from kernel_py.bench import faults as faultbench
from kernel_py.bench import slab as slabbench


def parse_count(args, default):
    if not args:
        return default
    n = int(args[0])
    if not 0 < n <= 10000000:
        raise KernelError("EINVAL", "count must be 1..10000000")
    return n


@command("bench", "bench loop [N] | pf [N] | pages ORDER [N] | faults N [write|read|cow|cycle|file-cold|file-warm|file-cow|file-shared /mnt/FILE] | kmalloc SIZE [N] [BACKEND] | cache BACKEND SIZE [N] | slabmem BACKEND SIZE [N] | vmalloc SIZE | kmemleak [N]",
         "time a Python loop, N page faults handled in Python, N alloc_pages/free_pages pairs, the process fault path, or the slab layer")
def cmd_bench(k, args):
    if args and args[0] == "pages":
        return bench.cmd_pages(k, args[1:])
    if args and args[0] in slabbench.COMMANDS:
        return slabbench.cmd(k, args)
    if args and args[0] == "faults":
        return faultbench.cmd(k, args[1:])
    if not args or args[0] not in bench.BENCHES:
        raise KernelError("EINVAL", "usage: bench loop [N] | pf [N]")
    run, default = bench.BENCHES[args[0]]
    n = parse_count(args[1:], default)
    ticks = run(k, n)
    return "%s n=%d total_us=%d per_op_ns=%d tsc_hz=%d" % (
        args[0], n, k.clock.us(ticks), k.clock.ns(ticks) // n, k.clock.hz)
