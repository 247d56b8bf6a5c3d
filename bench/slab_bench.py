"""Slab benchmarks: kmalloc+kfree pairs per second per backend and size
class, and bytes of memory per object for 100,000 objects of 8, 32, 200 and
3000 bytes per backend (against the object bytes, and against a whole page
per object). Prints numbers, asserts nothing.

Host (CPython over the simulated machine):
    python3 bench/slab_bench.py [--quick]
Guest (MicroPython, on the booted kernel `k`, e.g. from the `python` REPL):
    import slab_bench; slab_bench.run(k)
Each backend gets its own SlabState over the kernel's buddy, so all three
are measured in one boot whatever slab= says. Integers only (the guest has
no floats).
"""

import sys
import time

if __name__ == "__main__" and sys.path[0].endswith("bench"):
    sys.path.insert(0, sys.path[0][:-len("bench")] or ".")   # the repository root

try:
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
except AttributeError:          # CPython
    def ticks_us():
        return time.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b

from kernel_py.mm.slab.kmalloc import Kmalloc
from kernel_py.mm.slab import BACKEND_CLASSES
from kernel_py.mm.slab.common import SlabState
from kernel_py.arch.x86.cpu import PAGE_SIZE

BACKENDS = ("slab", "slub", "slob")
SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
EFFICIENCY_SIZES = (8, 32, 200, 3000)
SLOB_BIG = 1024


def slab_layer(k, backend):
    st = SlabState(k.hw, k.mem_map, k.buddy, BACKEND_CLASSES, lambda msg: None, {"slab": backend})
    return st, Kmalloc(st)


def pairs_per_second(km, size, n):
    """n kmalloc+kfree pairs of one size, warm (the cpu slab is primed)."""
    kmalloc, kfree = km.kmalloc, km.kfree
    kfree(kmalloc(size))
    t0 = ticks_us()
    for _ in range(n):
        kfree(kmalloc(size))
    dt = max(1, ticks_diff(ticks_us(), t0))
    return n * 1000000 // dt


def shrink_all(st):
    for s in st.all_caches():
        s.shrink()


def bytes_per_object(k, st, km, size, count):
    """Frames taken from the buddy per object, in bytes (x100 for two decimals)."""
    shrink_all(st)
    free0 = k.buddy.nr_free_pages()
    held = []
    for _ in range(count):
        va = km.kmalloc(size)
        if va is None:
            break
        held.append(va)
    used = (free0 - k.buddy.nr_free_pages()) * PAGE_SIZE
    n = len(held)
    for va in held:
        km.kfree(va)
    shrink_all(st)
    return n, used * 100 // max(1, n)


def fmt100(x):
    return "%d.%02d" % (x // 100, x % 100)


def run(k, pairs=20000, objects=100000, out=print):
    out("kmalloc+kfree pairs/s (accel=%s)" % k.hw.accel())
    out("%-10s" % "size" + "".join("%10s" % b for b in BACKENDS))
    layers = {}
    for b in BACKENDS:
        layers[b] = slab_layer(k, b)
    for size in SIZES:
        row = "%-10d" % size
        for b in BACKENDS:
            row += "%10d" % pairs_per_second(layers[b][1], size, pairs)
        out(row)
    out("")
    out("memory per object, %d objects (bytes; object bytes; x whole page 4096)" % objects)
    out("%-8s %-6s %10s %9s %9s" % ("size", "slab", "bytes/obj", "overhead", "vs page"))
    for size in EFFICIENCY_SIZES:
        for b in BACKENDS:
            count = objects
            if b == "slob" and size > SLOB_BIG:
                count = objects // 10     # first fit walks every page: quadratic
            n, per100 = bytes_per_object(k, layers[b][0], layers[b][1], size, count)
            over = (per100 - size * 100) * 100 // (size * 100)
            ratio = PAGE_SIZE * 100 * 100 // max(1, per100)
            note = "" if n == objects else "  (%d objects)" % n
            out("%-8d %-6s %10s %8d%% %8sx%s" % (size, b, fmt100(per100), over, fmt100(ratio), note))
    for b in BACKENDS:
        shrink_all(layers[b][0])
    out("")
    vmalloc_bench(k, out)


def vmalloc_bench(k, out):
    """vmalloc of 1 MiB and 16 MiB: time, and page-table pages it added."""
    vm = k.vmalloc
    out("vmalloc   size      alloc us    vfree us  pt pages")
    for size in (1 << 20, 16 << 20):
        free0 = k.buddy.nr_free_pages()
        t0 = ticks_us()
        va = vm.vmalloc(size)
        t1 = ticks_us()
        if va is None:
            out("vmalloc %d: ENOMEM" % size)
            continue
        pt = free0 - k.buddy.nr_free_pages() - (size >> 12)
        vm.vfree(va)
        t2 = ticks_us()
        out("%14d %12d %11d %9d" % (size, ticks_diff(t1, t0), ticks_diff(t2, t1), pt))


def main(argv):
    from kernel_py.kernel.kernel import Kernel
    from kernel_py.sim.machine import Machine
    quick = "--quick" in argv
    hw = Machine(1 << 30, "", console=lambda text: None)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    run(k, pairs=2000 if quick else 20000, objects=10000 if quick else 100000)


if __name__ == "__main__":
    main(sys.argv[1:])
