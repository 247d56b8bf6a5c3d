# Platform benchmarks: the VM's loop speed, and the cost of a page fault that
# the CPU raises and Python handles (map a fresh frame, retry), measured in a
# throw-away address space like the pfdemo's.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import KERNEL_HALF
from kernel_py.mm.gfp import GFP_KERNEL
from kernel_py.mm.types import KIND_ANON
from kernel_py.mm.page.zone import MAX_ORDER
from kernel_py.arch.x86.cpu import PAGE_SIZE, _PAGE_NX, _PAGE_RW, _PAGE_USER

BENCH_VA = 0x10000000
USER_DATA = _PAGE_RW | _PAGE_USER | _PAGE_NX


def loop(k, n):
    t0 = k.clock.rdtsc()
    i = 0
    while i < n:
        i += 1
    return k.clock.rdtsc() - t0


def page_faults(k, n):
    hw, pgt, buddy = k.hw, k.pgtable, k.buddy
    root = k.alloc_table()
    if root is None:
        raise KernelError("ENOMEM", "bench: no frame for a PML4")
    hw.copy(root + KERNEL_HALF * 8, k.init_mm.pgd + KERNEL_HALF * 8, KERNEL_HALF * 8)
    frames = []
    alloc, pmap, append = buddy.alloc_pages, pgt.map, frames.append

    def handler(va, err, rip):
        pa = alloc(GFP_KERNEL, 0, KIND_ANON)
        if pa is None:
            return False
        pmap(root, va & ~(PAGE_SIZE - 1), pa, USER_DATA)
        append(pa)
        return True

    old_cr3 = hw.read_cr3()
    hw.set_fault_handler(handler)
    write8, end = hw.vwrite8, BENCH_VA + n * PAGE_SIZE
    try:
        hw.write_cr3(root)
        t0 = hw.rdtsc()
        va = BENCH_VA
        while va < end:
            write8(va, 1)
            va += PAGE_SIZE
        ticks = hw.rdtsc() - t0
    finally:
        hw.write_cr3(old_cr3)
        hw.set_fault_handler(k.fault_handler)
        teardown(k, root, frames)
    if len(frames) != n:
        raise KernelError("EIO", "bench: %d faults for %d pages" % (len(frames), n))
    return ticks


def teardown(k, root, frames):
    va = BENCH_VA
    for pa in frames:
        k.pgtable.unmap(root, va, free_tables=True)
        k.buddy.free_pages(pa, 0)
        va += PAGE_SIZE
    k.buddy.free_pages(root, 0)


def pages(k, n, order=0):
    """n alloc_pages/free_pages pairs of one order, each freed at once.

    The pairs start with a free block of that order on the free list, so
    none splits a larger block or merges back: a block on a free list never
    has a free buddy of its order. Without that the figure measured the
    shape the boot left: with no free order-0 block each pair split an
    order-2 block and merged it back (12.7k pairs/s), with one it did not
    (20k); the 256 KiB PYSTACK array moved the kernel's end and with it that
    shape, which looked like a slowdown of the allocator."""
    buddy = k.buddy
    alloc, free, rdtsc = buddy.alloc_pages, buddy.free_pages, k.clock.rdtsc
    first = alloc(GFP_KERNEL, order)
    held = alloc(GFP_KERNEL, order)     # first's buddy, when it split off: kept
    if first is None or held is None:
        for pa in (first, held):
            if pa is not None:
                free(pa, order)
        raise KernelError("ENOMEM", "bench: no block of order %d" % order)
    free(first, order)                  # on the free list now, its buddy not free
    t0 = rdtsc()
    i = 0
    while i < n:
        pa = alloc(GFP_KERNEL, order)
        if pa is None:
            free(held, order)
            raise KernelError("ENOMEM", "bench: no block of order %d" % order)
        free(pa, order)
        i += 1
    t1 = rdtsc()
    free(held, order)
    return t1 - t0


PAGES_DEFAULT = 100000
PAGES_USAGE = "usage: bench pages ORDER [N]"


def cmd_pages(k, args):
    """`bench pages ORDER [N]`: one line of integers, pairs_per_s the figure."""
    if not 1 <= len(args) <= 2:
        raise KernelError("EINVAL", PAGES_USAGE)
    try:
        order = int(args[0])
        n = int(args[1]) if len(args) > 1 else PAGES_DEFAULT
    except ValueError:
        raise KernelError("EINVAL", PAGES_USAGE)
    if not 0 <= order <= MAX_ORDER:
        raise KernelError("EINVAL", "order %d out of range 0..%d" % (order, MAX_ORDER))
    if not 0 < n <= 10000000:
        raise KernelError("EINVAL", "count must be 1..10000000")
    ticks = max(1, pages(k, n, order))
    c = k.clock
    return "pages order=%d n=%d total_us=%d per_op_ns=%d pairs_per_s=%d tsc_hz=%d" % (
        order, n, c.us(ticks), c.ns(ticks) // n, n * c.hz // ticks, c.hz)


BENCHES = {"loop": (loop, 1000000), "pf": (page_faults, 10000)}
