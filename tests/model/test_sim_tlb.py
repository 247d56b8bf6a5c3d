"""The simulated TLB (SDM Vol. 3A 4.10): filled by walks, flushed only by
CR3 loads (not global entries with CR4.PGE), CR4.PGE changes and INVLPG, so
a forgotten invlpg shows on the host as it does on hardware."""

import pytest

from kernel_py.sim import Machine, Fault
from kernel_py.sim.pagetable import Builder
from kernel_py.arch.x86.cpu import (
    CR4_PGE, PF_PROT, PF_WRITE, PMD_SIZE, PUD_SIZE, PAGE_SIZE,
    _PAGE_PRESENT as P, _PAGE_RW as RW, _PAGE_USER as US, _PAGE_GLOBAL as G,
)

MiB = 1 << 20
VA = 0x0000_0000_1000_0000
F1, F2 = 0x4000000, 0x4100000
ALL = P | RW | US


def space(mem=128 * MiB, **kw):
    m = Machine(mem, console=lambda s: None, **kw)
    b = Builder(m, 0x2000000, 0x3000000)
    m.write_cr3(b.pml4)
    m.write64(F1, 0x1111)
    m.write64(F2, 0x2222)
    return m, b


@pytest.fixture
def mb():
    return space()


def test_remap_without_invlpg_uses_stale_frame(mb):
    m, b = mb
    pte = b.map(VA, F1, flags=ALL)
    m.vwrite64(VA, 0x1111)                  # cached, dirty
    m.write64(pte, F2 | ALL)                # change the PTE, forget invlpg
    assert m.vread64(VA) == 0x1111          # the TLB still says F1
    m.vwrite64(VA, 0x3333)                  # ... and so does a write
    assert m.read64(F1) == 0x3333 and m.read64(F2) == 0x2222
    m.invlpg(VA)
    assert m.vread64(VA) == 0x2222


def test_unmap_without_invlpg_still_reachable(mb):
    m, b = mb
    pte = b.map(VA, F1, flags=ALL)
    m.vread64(VA)
    m.write64(pte, 0)
    assert m.vread64(VA) == 0x1111          # use-after-unmap goes unnoticed
    m.invlpg(VA)
    with pytest.raises(Fault) as ei:
        m.vread64(VA)
    assert ei.value.error_code == 0


def test_write_protect_without_invlpg_still_writable(mb):
    """The copy-on-write bug: making a page read-only without invlpg."""
    m, b = mb
    pte = b.map(VA, F1, flags=ALL)
    m.vwrite64(VA, 1)
    m.write64(pte, F1 | P | US)
    m.vwrite64(VA, 2)                       # stale RW entry: no fault
    assert m.read64(F1) == 2
    m.invlpg(VA)
    with pytest.raises(Fault) as ei:
        m.vwrite64(VA, 3)
    assert ei.value.error_code == PF_PROT | PF_WRITE


def test_invlpg_is_per_page(mb):
    m, b = mb
    b.map(VA, F1, flags=ALL)
    pte2 = b.map(VA + PAGE_SIZE, F1 + PAGE_SIZE, flags=ALL)
    pte1 = b.entry(VA, 3)
    m.vread8(VA)
    m.vread8(VA + PAGE_SIZE)
    m.write64(pte1, F2 | ALL)
    m.write64(pte2, (F2 + PAGE_SIZE) | ALL)
    m.invlpg(VA)
    assert m.access(VA) == F2                      # flushed
    assert m.access(VA + PAGE_SIZE) == F1 + PAGE_SIZE   # still stale


def test_not_present_is_not_cached(mb):
    m, b = mb
    with pytest.raises(Fault):
        m.vread64(VA)
    b.map(VA, F1, flags=ALL)                # no invlpg needed (4.10.2.3)
    assert m.vread64(VA) == 0x1111


@pytest.mark.parametrize("size,other", [(PMD_SIZE, 0x1F_F000), (PUD_SIZE, 0x3FFF_F000)])
def test_invlpg_anywhere_in_a_huge_page_drops_all_of_it(size, other):
    m, b = space(2 << 30)
    va = 0x0000_0040_0000_0000
    leaf = b.map(va, 0, size, flags=ALL)
    m.vread8(va)
    m.vread8(va + other)
    m.write64(leaf, 0)
    assert m.vread8(va + other) == m.read8(other)     # stale
    m.invlpg(va + 0x5000)                              # another 4 KiB part
    for addr in (va, va + other):
        with pytest.raises(Fault):
            m.vread8(addr)


def test_cr3_load_flushes_non_global(mb):
    m, b = mb
    pte = b.map(VA, F1, flags=ALL)
    m.vread64(VA)
    m.write64(pte, F2 | ALL)
    m.write_cr3(m.read_cr3())
    assert m.vread64(VA) == 0x2222


def test_cr3_load_keeps_global_with_pge(mb):
    m, b = mb
    assert m.read_cr4() & CR4_PGE
    pte = b.map(VA, F1, flags=ALL | G)
    m.vread64(VA)
    m.write64(pte, F2 | ALL | G)
    m.write_cr3(m.read_cr3())
    assert m.vread64(VA) == 0x1111          # global entry survived
    m.invlpg(VA)                            # invlpg drops global entries too
    assert m.vread64(VA) == 0x2222


def test_global_without_pge_is_flushed_by_cr3_load():
    m, b = space()
    m.write_cr4(m.read_cr4() & ~CR4_PGE)
    pte = b.map(VA, F1, flags=ALL | G)
    m.vread64(VA)
    m.write64(pte, F2 | ALL | G)
    m.write_cr3(m.read_cr3())
    assert m.vread64(VA) == 0x2222


def test_toggling_pge_flushes_global_entries(mb):
    m, b = mb
    pte = b.map(VA, F1, flags=ALL | G)
    m.vread64(VA)
    m.write64(pte, F2 | ALL | G)
    m.write_cr4(m.read_cr4() & ~CR4_PGE)
    m.write_cr4(m.read_cr4() | CR4_PGE)
    assert m.vread64(VA) == 0x2222


def test_new_cr3_uses_the_new_tables(mb):
    m, b = mb
    b.map(VA, F1, flags=ALL)
    b2 = Builder(m, 0x3000000, 0x3800000)
    b2.map(VA, F2, flags=ALL)
    assert m.vread64(VA) == 0x1111
    m.write_cr3(b2.pml4)
    assert m.vread64(VA) == 0x2222
    m.write_cr3(b.pml4)
    assert m.vread64(VA) == 0x1111


def test_stale_entry_survives_cr3_switch_only_if_global(mb):
    m, b = mb
    b.map(VA, F1, flags=ALL | G)
    b2 = Builder(m, 0x3000000, 0x3800000)      # VA not mapped at all here
    m.vread64(VA)
    m.write_cr3(b2.pml4)
    assert m.vread64(VA) == 0x1111             # global: kept across switch


def test_permission_upgrade_rewalks_instead_of_faulting(mb):
    """A cached read-only entry and a PTE made writable without invlpg:
    the failing check drops the entry and the walk decides (4.10.4.1)."""
    m, b = mb
    calls = []
    m.set_fault_handler(lambda *a: calls.append(a) or True)
    pte = b.map(VA, F1, flags=P | US)
    m.vread64(VA)
    m.write64(pte, F1 | ALL)
    m.vwrite64(VA, 0x4444)
    assert calls == []
    assert m.read64(F1) == 0x4444


def test_permission_upgrade_spurious_fault_mode():
    """Hardware may instead fault once on the stale entry (4.10.4.3); a
    handler returning True then succeeds on the re-walk."""
    m, b = space(spurious_faults=True)
    calls = []
    m.set_fault_handler(lambda va, err, rip: calls.append((va, err)) or True)
    pte = b.map(VA, F1, flags=P | US)
    m.vread64(VA)
    m.write64(pte, F1 | ALL)
    m.vwrite64(VA, 0x4444)
    assert calls == [(VA, PF_PROT | PF_WRITE)]
    assert m.read64(F1) == 0x4444


def test_a_fault_drops_the_stale_entry(mb):
    m, b = mb
    calls = []

    def handler(va, err, rip):
        calls.append(err)
        return False

    pte = b.map(VA, F1, flags=P | US)
    m.vread64(VA)
    m.write64(pte, F2 | P | US)             # remapped, no invlpg
    m.set_fault_handler(handler)
    with pytest.raises(Fault):
        m.vwrite64(VA, 1)                   # read-only: faults, drops entry
    assert m.vread64(VA) == 0x2222          # the new PTE is now seen


def test_physical_write_to_pte_does_not_touch_tlb(mb):
    m, b = mb
    pte = b.map(VA, F1, flags=ALL)
    m.vread64(VA)
    n = len(m.tlb)
    m.write64(pte, F2 | ALL)
    assert len(m.tlb) == n
    assert m.access(VA) == F1


def test_full_tlb_evicts():
    m, b = space(tlb_capacity=4)
    pte = b.map(VA, F1, flags=ALL)
    m.vread64(VA)
    m.write64(pte, F2 | ALL)
    for i in range(1, 6):
        b.map(VA + i * PAGE_SIZE, F1, flags=ALL)
        m.vread64(VA + i * PAGE_SIZE)
    assert len(m.tlb) <= 4
    assert m.vread64(VA) == 0x2222          # evicted, walked again


def test_write_through_clean_entry_rewalks(mb):
    """A TLB entry filled by a read has D = 0; the first write walks again
    to set D (4.8) and so sees a PTE changed in the meantime."""
    m, b = mb
    pte = b.map(VA, F1, flags=ALL)
    m.vread64(VA)
    m.write64(pte, F2 | ALL)
    assert m.vread64(VA) == 0x1111          # reads: stale
    m.vwrite64(VA, 5)                       # the write walks again
    assert m.read64(F2) == 5 and m.read64(F1) == 0x1111


def test_tlb_hit_skips_the_walk(mb):
    m, b = mb
    b.map(VA, F1, flags=ALL)
    m.vread64(VA)
    fills = m.tlb.fills
    for _ in range(10):
        m.vread64(VA)
        m.vwrite64(VA, 1)
    assert m.tlb.fills == fills + 1         # one re-walk to set D
