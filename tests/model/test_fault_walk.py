"""The one page-table walk (arch/x86/pgtable.py's walk()) and the one place
that inlines it, the fault handler's hot path (mm/vm/fault.py):

- walk() ends where the MMU's walk ends (the simulated machine's, SDM 4.5)
  on the kernel's own tables (1 GiB and 2 MiB pages of the direct map, 4 KiB
  pages of the image and of vmalloc, not-present entries at every level);
- pt_tables() and tables() report the tables walk() reaches;
- the fault handler reaches the PTE slot walk() reaches, whether the tables
  above it were all there, or one to three levels had to be allocated (it
  then allocates exactly the missing ones), for a fresh page, a present
  read-only PTE (the wp path) and a mapping with vm_ops (the rare path: a
  shared anonymous mapping). User tables hold 4 KiB pages only (mmap never maps huge
  pages), so the handler's inline walk has no PS case to agree on.
"""

import random

import pytest

from kernel_py.arch.x86.cpu import PAGE_SIZE, PMD_SIZE, PUD_SIZE, _PAGE_PRESENT, _PAGE_RW
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, KERNEL_BASE, USER_START, VMALLOC_START
from kernel_py.arch.x86.pgtable import pt_tables, pte_slot, tables, walk
from kernel_py.mm.gfp import GFP_KERNEL
from kernel_py.mm.vm import fault as fault_mod
from kernel_py.mm.vm.vma import MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE
from kernel_py.sim.walk import walk as mmu_walk

from mmsupport import boot

GiB = 1 << 30


def agrees_with_mmu(hw, root, va):
    lvl, epa, e = walk(hw, root, va)
    m = mmu_walk(hw.read64, root, va)
    assert m.entries[-1] == (epa, e), hex(va)
    assert len(m.entries) == 5 - lvl, hex(va)
    assert (m.pa is not None) == bool(e & _PAGE_PRESENT)
    return lvl


def test_walk_ends_where_the_mmu_walk_ends():
    k = boot(4 << 30, "gbpages")                        # 1 GiB and 2 MiB pages in the direct map
    hw, root = k.hw, k.init_mm.pgd
    va = k.vmalloc.vmalloc(3 * PAGE_SIZE)
    rnd = random.Random(1)
    addrs = [DIRECT_MAP_BASE, DIRECT_MAP_BASE + GiB + 5, DIRECT_MAP_BASE + PMD_SIZE + 0x123,
             DIRECT_MAP_BASE + (1 << 39),                  # past RAM: a not-present PDPTE
             KERNEL_BASE + 0x100000, KERNEL_BASE + (64 << 20),
             va, va + PAGE_SIZE + 8, va + 3 * PAGE_SIZE,   # the guard page: a not-present PTE
             VMALLOC_START + (1 << 38),                    # an empty PD slot
             USER_START, 0x7F0000000000]                   # nothing in the user half of init_mm
    addrs += [DIRECT_MAP_BASE + rnd.randrange(0, 2 * GiB) for _ in range(50)]
    levels = {agrees_with_mmu(hw, root, a) for a in addrs}
    assert levels >= {1, 2, 3, 4}, levels


def test_walk_with_alloc_makes_exactly_the_missing_tables():
    k = boot()
    hw, root = k.hw, k.init_mm.pgd
    made = []

    def alloc(epa):
        t = k.pgtable.link_kernel_table(epa)
        made.append(t)
        return t

    va = 0x5000000000                                    # an empty PML4 slot of the user half
    lvl, epa, e = walk(hw, root, va, 1, alloc)
    assert lvl == 1 and not e and len(made) == 3
    assert pte_slot(hw, root, va) == epa
    assert walk(hw, root, va + PMD_SIZE, 1, alloc)[0] == 1 and len(made) == 4     # a new PT only
    assert walk(hw, root, va + PUD_SIZE, 2, alloc)[0] == 2 and len(made) == 5     # a new PD only
    assert pte_slot(hw, root, va + 2 * PUD_SIZE) is None                         # no alloc: stops
    assert walk(hw, root, DIRECT_MAP_BASE + 4 * PMD_SIZE)[0] == 2                  # a 2 MiB page
    assert pte_slot(hw, root, DIRECT_MAP_BASE + 4 * PMD_SIZE) is None


def test_pt_tables_and_tables_report_what_walk_reaches():
    k = boot()
    hw, pgt, root = k.hw, k.pgtable, k.init_mm.pgd
    base = 0x5000000000
    pages = [base, base + 5 * PAGE_SIZE, base + PMD_SIZE + PAGE_SIZE, base + PUD_SIZE, base + (1 << 39)]
    for va in pages:
        pgt.map(root, va, k.buddy.alloc_pages(GFP_KERNEL, 0), _PAGE_RW)
    start, end = base + PAGE_SIZE, base + (1 << 39) + PMD_SIZE
    seen = []
    for pt, vbase, i0, i1 in pt_tables(hw, root, start, end):
        assert pte_slot(hw, root, vbase + (i0 << 12)) == pt + (i0 << 3)
        assert vbase + (i1 << 12) <= end and vbase + (i0 << 12) >= start
        seen.append(vbase)
    assert seen == [base, base + PMD_SIZE, base + PUD_SIZE, base + (1 << 39)]
    below = [(lvl, t) for lvl, t, epa in tables(hw, root, base, base + (2 << 39))]
    for va in pages:
        for lvl in (3, 2, 1):
            w = walk(hw, root, va, lvl)
            assert w[0] == lvl
            assert (lvl, w[1] & ~(PAGE_SIZE - 1)) in below
    assert len(below) == 2 + 3 + 4             # PDPTs, PDs, PTs under the two PML4 slots


@pytest.fixture
def spied(monkeypatch):
    """A machine whose fault handler reports the PTE slot it hands to the
    wp and rare paths."""
    seen = []
    for name in ("wp_fault", "rare_fault"):
        orig = getattr(fault_mod.FaultHandler, name)

        def spy(self, mm, vma, va, err, rip, t, e, orig=orig, name=name):
            seen.append((name, va, t))
            return orig(self, mm, vma, va, err, rip, t, e)
        monkeypatch.setattr(fault_mod.FaultHandler, name, spy)
    k = boot()
    return k, seen


def touch(k, task, va, write):
    old = k.procs.use_mm(task)
    try:
        if write:
            k.hw.vwrite8(va, 1)
        else:
            k.hw.vread8(va)
    finally:
        k.procs.unuse_mm(old)


def test_the_fault_handler_reaches_the_slot_walk_reaches(spied):
    """Dense tables (every PML4, PDPT and PD entry of the probed ranges
    present) so that a wrong index anywhere in the inline walk lands on a
    present entry (and the access faults again until the machine gives up,
    or the wp path gets a slot walk() does not name), and sparse ones so
    that it must allocate."""
    k, seen = spied
    hw = k.hw
    task = k.procs.spawn("walk")
    mm = task.mm
    B = 1 << 39                                         # PML4 slots 1..32: an index off by
    slots = 32                                          # a bit or a shift is still present
    a = mm.mmap(B, slots << 39, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED)
    assert a == B
    for i in range(slots):                              # every PML4 entry of the range
        touch(k, task, B + (i << 39), False)
    for i in range(512):                                # every PDPT entry of slot 0
        touch(k, task, B + i * GiB + PAGE_SIZE, False)
    for i in range(512):                                # every PD entry of its first GiB
        touch(k, task, B + i * PMD_SIZE + 2 * PAGE_SIZE, False)
    rnd = random.Random(7)
    probes = [B + (rnd.randrange(0, GiB >> 12) << 12) for _ in range(30)]           # PD level
    probes += [B + (rnd.randrange(0, 512 * GiB >> 12) << 12) for _ in range(20)]    # PDPT level
    probes += [B + (rnd.randrange(0, slots << 39 >> 12) << 12) for _ in range(20)]  # PML4 level
    probes += [B + 3 * GiB + 7 * PMD_SIZE + 5 * PAGE_SIZE, B + (5 << 39) + 9 * GiB,
               B + (2 << 39) + 5 * PAGE_SIZE, B + (15 << 39) + PAGE_SIZE]
    c = mm.mmap(B + (slots + 1 << 39), 4 * GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED)
    probes += [c, c + PAGE_SIZE, c + PMD_SIZE, c + GiB + PMD_SIZE]     # a PML4 slot with nothing yet
    allocated = set()
    for va in dict.fromkeys(probes):
        write = rnd.random() < 0.6
        lvl0, epa0, e0 = walk(hw, mm.pgd, va)
        n = mm.nr_pgtables
        touch(k, task, va, write)
        missing = lvl0 - 1 if not e0 & _PAGE_PRESENT else 0
        assert mm.nr_pgtables - n == missing, hex(va)
        allocated.add(missing)
        lvl, epa, e = walk(hw, mm.pgd, va)
        assert lvl == 1 and e & _PAGE_PRESENT and epa == pte_slot(hw, mm.pgd, va), hex(va)
        assert bool(e & _PAGE_RW) == (write or (e0 & _PAGE_RW != 0))
    assert {0, 1, 2, 3} <= allocated                    # tables missing at every level, and none
    # present read-only PTEs (the zero page): the wp path gets walk's slot
    del seen[:]
    ro = [va for va in dict.fromkeys(probes) if not walk(hw, mm.pgd, va)[2] & _PAGE_RW]
    assert len(ro) > 10
    for va in ro:
        touch(k, task, va, True)
    assert [(n, v) for n, v, t in seen] == [("wp_fault", v) for v in ro]
    for name, va, t in seen:
        assert t == pte_slot(hw, mm.pgd, va)
    # a shared anonymous mapping (vm_ops set): every fault takes the rare path
    s = mm.mmap(0, 8 * PMD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED)
    del seen[:]
    shared = [s, s + PAGE_SIZE, s + 3 * PMD_SIZE + 5 * PAGE_SIZE, s + 8 * PMD_SIZE - PAGE_SIZE]
    for va in shared:
        touch(k, task, va, False)
    assert [(n, v) for n, v, t in seen] == [("rare_fault", v) for v in shared]
    for name, va, t in seen:
        assert t == pte_slot(hw, mm.pgd, va) and walk(hw, mm.pgd, va)[2] & _PAGE_PRESENT
