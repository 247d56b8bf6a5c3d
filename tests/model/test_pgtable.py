"""Page-table primitives against the simulated MMU: what kernel_py maps is
what a virtual access through CR3 reaches."""

import pytest

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.arch.x86.pgtable import PgTable
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PF_PROT, PF_WRITE, PMD_SIZE, PUD_SIZE, PTE_ADDR_MASK,
    _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER,
)

from mmsupport import boot, state

USER_VA = 0x400000
RW_NX = _PAGE_RW | _PAGE_NX


def frame(k, order=0):
    return k.buddy.alloc_pages(G.GFP_KERNEL | G.__GFP_ZERO, order)


def test_map_then_vread_through_the_mmu():
    k = boot()
    hw, pgt, root = k.hw, k.pgtable, k.init_mm.pgd
    pa = frame(k)
    hw.write64(pa + 0x18, 0x1122334455667788)
    pgt.map(root, USER_VA, pa, RW_NX | _PAGE_USER)
    assert hw.vread64(USER_VA + 0x18) == 0x1122334455667788
    hw.vwrite32(USER_VA + 0x100, 0xCAFE)
    assert hw.read32(pa + 0x100) == 0xCAFE
    level, epa, e = pgt.walk(root, USER_VA)
    assert level == 1 and e & PTE_ADDR_MASK == pa and e & _PAGE_USER
    assert pgt.translate(root, USER_VA + 5) == pa + 5
    assert hw.probe(USER_VA).pa == pa


def test_unmap_invalidates_the_tlb():
    k = boot()
    hw, pgt, root = k.hw, k.pgtable, k.init_mm.pgd
    pa = frame(k)
    pgt.map(root, USER_VA, pa, RW_NX)
    hw.vread64(USER_VA)                          # now cached in the TLB
    old = pgt.unmap(root, USER_VA)
    assert old & PTE_ADDR_MASK == pa
    with pytest.raises(hw.Fault) as e:
        hw.vread64(USER_VA)                      # stale TLB would still hit
    assert e.value.args[1] & PF_PROT == 0
    assert pgt.unmap(root, USER_VA) == 0
    assert pgt.translate(root, USER_VA) is None


def test_protect_makes_read_only_and_invalidates():
    k = boot()
    hw, pgt, root = k.hw, k.pgtable, k.init_mm.pgd
    pa = frame(k)
    pgt.map(root, USER_VA, pa, RW_NX)
    hw.vwrite64(USER_VA, 1)
    pgt.protect(root, USER_VA, clear_bits=_PAGE_RW)
    with pytest.raises(hw.Fault) as e:
        hw.vwrite64(USER_VA, 2)
    assert e.value.args[1] & (PF_PROT | PF_WRITE) == PF_PROT | PF_WRITE
    assert hw.vread64(USER_VA) == 1
    with pytest.raises(KernelError):
        pgt.protect(root, 0x800000)


@pytest.mark.parametrize("size,va", [(PMD_SIZE, 0x40000000), (PUD_SIZE, 0x8000000000)])
def test_huge_pages(size, va):
    k = boot(4 << 30)
    hw, pgt, root = k.hw, k.pgtable, k.init_mm.pgd
    pa = 2 << 30 if size == PUD_SIZE else frame(k, 9)
    pgt.map(root, va, pa, RW_NX, size)
    off = size - 8
    hw.write64(pa + off, 0xABCDEF)
    assert hw.vread64(va + off) == 0xABCDEF
    level, _epa, e = pgt.walk(root, va + off)
    assert level == (2 if size == PMD_SIZE else 3) and e & _PAGE_PSE
    with pytest.raises(KernelError) as ex:
        pgt.map(root, va + PAGE_SIZE, pa, RW_NX)        # inside the huge page
    assert ex.value.errname == "EEXIST"
    pgt.unmap(root, va)
    with pytest.raises(hw.Fault):
        hw.vread64(va + off)


def test_bad_map_calls():
    k = boot()
    pgt, root = k.pgtable, k.init_mm.pgd
    pa = frame(k)
    pgt.map(root, USER_VA, pa, RW_NX)
    for args in ((USER_VA, pa, RW_NX),                 # already mapped
                 (USER_VA + 8, pa, RW_NX),             # unaligned va
                 (USER_VA + PAGE_SIZE, pa + 8, RW_NX), # unaligned pa
                 (USER_VA + PAGE_SIZE, pa, RW_NX, 8192)):   # bad size
        with pytest.raises(KernelError):
            pgt.map(root, *args)


def test_unmap_frees_empty_tables():
    k = boot()
    hw, pgt = k.hw, k.pgtable
    root = k.alloc_table()
    free0 = k.buddy.nr_free_pages()
    pa = frame(k)
    pgt.map(root, USER_VA, pa, RW_NX)
    assert k.buddy.nr_free_pages() == free0 - 4          # frame + PDPT, PD, PT
    pgt.unmap(root, USER_VA, free_tables=True)
    assert k.buddy.nr_free_pages() == free0 - 1
    assert hw.readbytes(root, PAGE_SIZE) == bytes(PAGE_SIZE)
    # a table still in use is kept
    pgt.map(root, USER_VA, pa, RW_NX)
    pgt.map(root, USER_VA + PAGE_SIZE, pa, RW_NX)
    pgt.unmap(root, USER_VA, free_tables=True)
    assert pgt.translate(root, USER_VA + PAGE_SIZE) == pa


def test_map_out_of_frames_is_enomem():
    k = boot(24 << 20)
    pgt = PgTable(k.hw, lambda: None)
    with pytest.raises(KernelError) as e:
        pgt.map(k.init_mm.pgd, 0x7F0000000000, 0x200000, RW_NX)
    assert e.value.errname == "ENOMEM"


def test_used_slots_finds_every_non_zero_entry():
    """used_slots (the sparse-table skip) against the plain reference: every
    non-zero entry of [i0, i1) is among its indices, in order, each in
    range, and no index is reported whose group of 8 is all zero."""
    import random
    from kernel_py.arch.x86.pgtable import used_slots
    k = boot()
    hw = k.hw
    t = frame(k)
    rnd = random.Random(14)
    for trial in range(60):
        hw.mem(t, 4096)[:] = bytes(4096)
        for _ in range(rnd.choice((0, 1, 3, 20, 300))):
            hw.write64(t + (rnd.randrange(512) << 3), rnd.choice((1, 1 << 63, 0x8000000000000067)))
        i0 = rnd.randrange(512)
        i1 = rnd.randrange(i0, 513)
        got = used_slots(hw, t, i0, i1)
        want = [i for i in range(i0, i1) if hw.read64(t + (i << 3))]
        assert got == sorted(set(got)) and all(i0 <= i < i1 for i in got)
        assert set(want) <= set(got)
        for i in got:
            g = i & ~7
            assert any(hw.read64(t + (j << 3)) for j in range(max(g, i0), min(g + 8, i1)))
