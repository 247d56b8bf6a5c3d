"""The takeover: the kernel runs on page tables it built itself."""

import time

import pytest

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, KERNEL_BASE, USER_END
from kernel_py.mm import types as page
from kernel_py.arch.x86 import ptdump
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PF_PROT, PF_WRITE, PMD_SIZE, PUD_SIZE, PTE_ADDR_MASK,
    _PAGE_GLOBAL, _PAGE_NX, _PAGE_RW, _PAGE_USER,
)

from mmsupport import boot


@pytest.fixture(scope="module")
def k():
    return boot(256 << 20)


def test_cr3_is_init_mm_in_kernel_allocated_frame(k):
    root = k.hw.read_cr3() & PTE_ADDR_MASK
    assert root == k.init_mm.pgd
    assert k.mem_map.kind(root >> 12) == page.KIND_PAGETABLE   # from the buddy


def test_no_wx_no_user_no_identity(k):
    entries = ptdump.walk(k.hw, k.init_mm.pgd)
    assert entries
    assert ptdump.wx_violations(entries) == []
    assert ptdump.user_kernel_violations(entries) == []
    assert all(va >= ptdump.KERNEL_SPACE for va, _s, _f, _l in entries)
    assert all(f & _PAGE_GLOBAL for _v, _s, f, _l in entries)


def test_null_and_identity_fault(k):
    hw = k.hw
    for va in (0, 8, 0x100000, 0x200000):
        with pytest.raises(hw.Fault) as e:
            hw.vread64(va)
        assert e.value.args[0] == 14 and e.value.args[1] & PF_PROT == 0


def test_direct_map_covers_ram_exactly(k):
    hw = k.hw
    for s, e in k.memmap.ram:
        for pa in (s, e - 8, (s + e) // 2 & ~7):
            hw.write64(pa, pa ^ 0x5A5A)
            assert hw.vread64(DIRECT_MAP_BASE + pa) == pa ^ 0x5A5A
            assert hw.probe(DIRECT_MAP_BASE + pa).pa == pa
    hole = k.memmap.ram[0][1]                       # EBDA/BIOS, not RAM
    with pytest.raises(hw.Fault):
        hw.vread64(DIRECT_MAP_BASE + hole)
    top = k.memmap.ram[-1][1]
    with pytest.raises(hw.Fault):
        hw.vread64(DIRECT_MAP_BASE + top)


def test_kernel_image_permissions(k):
    hw = k.hw
    secs = {name: (vs, ve) for name, vs, ve, ps in hw.kernel_sections()}
    text, rodata, data = secs["text"][0], secs["rodata"][0], secs["data"][0]
    assert hw.vread64(text) == hw.read64(text - KERNEL_BASE)
    hw.access(text, fetch=True)                     # executable
    for va in (text, rodata):
        with pytest.raises(hw.Fault) as e:
            hw.vwrite64(va, 0)
        assert e.value.args[1] & (PF_PROT | PF_WRITE) == PF_PROT | PF_WRITE
    for va in (rodata, data, secs["stack"][0]):
        with pytest.raises(hw.Fault):
            hw.access(va, fetch=True)
    hw.vwrite64(data, 7)
    hw.vwrite64(secs["stack"][1] - 8, 9)
    guard = secs["stack"][0] - PAGE_SIZE
    with pytest.raises(hw.Fault) as e:
        hw.vwrite64(guard, 1)
    assert e.value.args[1] & PF_PROT == 0


def test_1g_pages_when_enabled():
    k = boot(4 << 30, "gbpages")
    entries = ptdump.walk(k.hw, k.init_mm.pgd)
    gig = [va for va, size, f, level in entries if size == PUD_SIZE]
    assert DIRECT_MAP_BASE + (1 << 30) in gig and DIRECT_MAP_BASE + (4 << 30) in gig
    assert k.hw.vread64(DIRECT_MAP_BASE + (4 << 30) + 0x123458) == 0
    k2 = boot(4 << 30)
    assert all(size <= PMD_SIZE for va, size, f, l in ptdump.walk(k2.hw, k2.init_mm.pgd))


def test_boot_128m_and_4g_in_reasonable_time():
    for mem in (128 << 20, 4 << 30):
        t = time.perf_counter()
        k = boot(mem)
        dt = time.perf_counter() - t
        assert dt < 2.0, "boot at %d MiB took %.2fs" % (mem >> 20, dt)
        assert k.buddy.managed_pages() * PAGE_SIZE > k.memmap.total_usable() * 0.98
        assert k.mem_map.size <= 16 * k.memmap.max_pfn()


def test_host_walker_agrees_with_guest_ptdump(k):
    walker = pytest.importorskip("kpyqemu.walker")
    hw = k.hw
    w = walker.PageWalker(k.init_mm.pgd, hw.readbytes)
    host = [(m.va, m.size, m.flags, m.level) for m in w.mappings()]
    guest = ptdump.walk(hw, k.init_mm.pgd)
    assert ptdump.format_ptdump(host) == ptdump.format_ptdump(guest)
