"""Booted simulated machines for the physical-memory tests."""

from kernel_py.kernel.kernel import Kernel
from kernel_py.sim.machine import Machine


def boot(mem=128 << 20, cmdline=""):
    hw = Machine(mem, cmdline, console=lambda text: None)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    return k


def state(k):
    """Everything a failed call must leave unchanged: free lists, counters,
    and the raw mem_map bytes."""
    b = k.buddy
    mm = k.mem_map
    return (b.free_lists(), [z.free_pages for z in b.zones],
            [z.managed_pages for z in b.zones], b.pgfree, list(b.pgalloc),
            bytes(k.hw.readbytes(mm.base, mm.size)))
