"""The guest's viper table scan (kernel_py/arch/x86/pgtable_fast.py) runs on the
host over the simulated machine: used_slots must find the non-zero entries
the view-based scan finds (which also returns the zero entries sharing a
group of 8 with one), over several ranges of tables empty, full, and with
entries at the edges or only in an entry's high half."""

import pytest

from kernel_py.arch.x86 import native, pgtable, pgtable_fast

from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_READ, PROT_WRITE

from swapsupport import MiB, boot

PATTERNS = {
    "empty": [],
    "first": [0],
    "last": [511],
    "high half only": [300],            # an entry whose low 32 bits are zero
    "scattered": [1, 7, 8, 63, 64, 200, 201, 510],
    "full": list(range(512)),
}


def scans(k, t, fast):
    pgtable.FAST_SCAN[0] = fast
    try:
        out = []
        for i0, i1 in ((0, 512), (0, 1), (5, 70), (200, 512), (511, 512), (9, 9)):
            out.append([i for i in pgtable.used_slots(k.hw, t, i0, i1) if k.hw.read64(t + 8 * i)])
        return out
    finally:
        pgtable.FAST_SCAN[0] = False


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_viper_scans_match_the_view_scans(name):
    k, _ = boot(mem=16 * MiB, swap=0)
    pgtable_fast.install_host()
    native.register_area(pgtable.SLOTS_OUT, k.hw)
    t = k.alloc_table()
    for i in PATTERNS[name]:
        k.hw.write64(t + 8 * i, (1 << 40) if i == 300 else 0x1000 * i + 0x67)
    want = scans(k, t, False)
    got = scans(k, t, True)
    assert got == want
    assert got[0] == PATTERNS[name]


def test_viper_walk_reaches_the_slot_walk_reaches():
    """pte_lookup (the fault handler's walk in the guest) names the PTE slot
    pte_slot names, with its entry, for mapped pages (NX set: an entry
    above 2**63), a PTE slot still empty, and addresses under a missing
    PML4, PDPT or PD entry (0, out left alone)."""
    k, _ = boot(mem=16 * MiB, swap=0)
    hw = k.hw
    pgtable_fast.install_host()
    out = pgtable_fast.new_pte_out()
    native.register_area(out, hw)
    task = k.procs.spawn("walk")
    mm = task.mm
    a = mm.mmap(0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE)
    old = k.procs.use_mm(task)
    try:
        for i in (0, 3, 7):
            hw.vwrite8(a + i * 4096, 1)
    finally:
        k.procs.unuse_mm(old)
    probes = [a + i * 4096 + 5 for i in range(8)] + [a + (1 << 21), a + (1 << 30), a ^ (1 << 46), 0x1000]
    found = 0
    for va in probes:
        out[0] = 12345
        t = pgtable_fast.pte_lookup(out, mm.pgd, va)
        want = pgtable.pte_slot(hw, mm.pgd, va)
        if want is None:
            assert (t, out[0]) == (0, 12345), hex(va)
        else:
            assert (t, out[0]) == (want, hw.read64(want)), hex(va)
            found += bool(out[0] >> 63)
    assert found == 3
