"""vmalloc through the simulated MMU: contiguous virtual, scattered frames,
guard pages that fault, vfree that unmaps (and flushes the TLB)."""

import pytest

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import VMALLOC_START
from kernel_py.kernel.kernel import Kernel
from kernel_py.mm import vmstat
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401
from kernel_py.sim.machine import Machine
from kernel_py.arch.x86.cpu import PAGE_SIZE


def kernel():
    hw = Machine(64 << 20, "", console=lambda text: None)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    return k


def test_vmalloc_maps_contiguously_and_guard_faults():
    k = kernel()
    hw, vm = k.hw, k.vmalloc
    free0 = k.buddy.nr_free_pages()
    va = vm.vmalloc(5 * PAGE_SIZE + 100)
    assert va is not None and va >= VMALLOC_START
    frames = [vm.vmalloc_to_page(va + i * PAGE_SIZE) for i in range(6)]
    assert len(set(frames)) == 6
    for i in range(6):
        hw.vwrite64(va + i * PAGE_SIZE + 8, 0x1000 + i)
    for i in range(6):
        assert hw.read64(frames[i] + 8) == 0x1000 + i        # same frame, seen physically
        assert hw.vread64(va + i * PAGE_SIZE + 8) == 0x1000 + i
    hw.vwritebytes(va + PAGE_SIZE - 4, b"abcdefgh")             # crosses a page boundary
    assert hw.vreadbytes(va + PAGE_SIZE - 4, 8) == b"abcdefgh"
    guard = va + 6 * PAGE_SIZE
    with pytest.raises(hw.Fault):
        hw.vread8(guard)
    assert vm.describe(guard) == "vmalloc area 0x%x-0x%x (6 pages) guard page" % (va, guard)
    assert "offset 4096" in vm.describe(va + PAGE_SIZE)
    line = vm.vmallocinfo().splitlines()[0]
    assert line.startswith("0x%016x-0x%016x   28672 vmalloc pages=6 vmalloc" % (va, va + 7 * PAGE_SIZE))
    assert dict(vmstat.meminfo_pairs(k))["VmallocUsed"] == 24
    vm.vfree(va)
    with pytest.raises(hw.Fault):
        hw.vread8(va)                                            # unmapped and flushed
    assert k.buddy.nr_free_pages() == free0 - 2                  # the PD and PT stay
    assert vm.vmallocinfo() == ""


def test_areas_do_not_overlap_and_ranges_merge():
    k = kernel()
    vm = k.vmalloc
    a = vm.vmalloc(PAGE_SIZE)
    b = vm.vmalloc(3 * PAGE_SIZE)
    c = vm.vmalloc(PAGE_SIZE)
    assert b == a + 2 * PAGE_SIZE and c == b + 4 * PAGE_SIZE   # each with its guard page
    vm.vfree(b)
    d = vm.vmalloc(2 * PAGE_SIZE)                               # first fit reuses the hole
    assert d == b
    vm.vfree(a)
    vm.vfree(c)
    vm.vfree(d)
    assert vm.free == [(vm.start, vm.end)]


def test_vfree_bad_input():
    k = kernel()
    vm = k.vmalloc
    va = vm.vmalloc(PAGE_SIZE)
    for bad in (va + 8, va + PAGE_SIZE, 0x1234):
        with pytest.raises(KernelError):
            vm.vfree(bad)
    vm.vfree(va)
    with pytest.raises(KernelError):
        vm.vfree(va)


def test_vmalloc_enomem_rolls_back():
    k = kernel()
    vm = k.vmalloc
    free0 = k.buddy.nr_free_pages()
    assert vm.vmalloc(1 << 30) is None
    assert vm.areas == {} and vm.free == [(vm.start, vm.end)]
    assert k.buddy.nr_free_pages() >= free0 - 40               # page tables stay, as in Linux


def test_vmalloc_console():
    k = kernel()
    sh = Shell(k)
    a = sh.execute("vmalloc 10000")
    assert a.startswith("0xffffc9")
    assert sh.execute("cat /proc/vmallocinfo").startswith(a if len(a) == 18 else "0x")
    assert sh.execute("vfree %s" % a) == ""
    assert sh.execute("vfree %s" % a).startswith("error: EINVAL")
