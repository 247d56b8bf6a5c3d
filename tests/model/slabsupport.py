"""Machines with the physical memory layer booted (memblock, mem_map, buddy)
and the slab layer on top, for the slab/kmalloc/mempool/vmalloc tests."""

from kernel_py.mm.page.buddy import init_zones
from kernel_py.mm.page.memblock import Memblock
from kernel_py.arch.x86.e820 import MemoryMap
from kernel_py.mm.page.mem_map import alloc_mem_map
from kernel_py.mm.slab import BACKEND_CLASSES
from kernel_py.mm.slab.common import SlabState
from kernel_py.mm.slab.kmalloc import Kmalloc
from kernel_py.sim.machine import Machine


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, msg):
        self.lines.append(msg)

    def text(self):
        return "\n".join(self.lines)


def boot_mm(mem=64 << 20, cmdline=""):
    """(machine, mem_map, buddy) as kernel boot leaves them."""
    m = Machine(mem, cmdline)
    mmap = MemoryMap(m.memory_map(), m.reserved())
    mb = Memblock(mmap.usable)
    mem_map = alloc_mem_map(m, mb, mmap.max_pfn())
    buddy = init_zones(m, mem_map, mmap.ram, mb.free_ranges())
    mb.retired = True
    return m, mem_map, buddy


def boot_slab(mem=64 << 20, backend="slub", debug=None, with_kmalloc=True):
    """A SlabState (+ Kmalloc) on a fresh machine; st.log collects printk."""
    m, mem_map, buddy = boot_mm(mem)
    params = {"slab": backend}
    if debug is not None:
        params["slub_debug"] = debug
    log = Log()
    st = SlabState(m, mem_map, buddy, BACKEND_CLASSES, log, params)
    st.log = log
    km = Kmalloc(st) if with_kmalloc else None
    return st, km
