"""The simulated MMU's page walk (SDM Vol. 3A 4.5), access rights (4.6),
#PF error codes (4.7) and accessed/dirty flags (4.8)."""

import pytest
from hypothesis import given, settings, strategies as st

from kernel_py.sim import Machine, Fault
from kernel_py.sim.pagetable import Builder
from kernel_py.arch.x86.cpu import (
    CR0_WP, EFER_NXE, PF_INSTR, PF_PROT, PF_RSVD, PF_USER, PF_WRITE, VEC_GP,
    VEC_PF, PMD_SIZE, PUD_SIZE, PAGE_SIZE,
    _PAGE_PRESENT as P, _PAGE_RW as RW, _PAGE_USER as US,
    _PAGE_ACCESSED as A, _PAGE_DIRTY as D, _PAGE_NX as NX, _PAGE_PSE as PS,
)

MiB = 1 << 20
GiB = 1 << 30
VA = 0x0000_1234_5678_9000          # a user-half address, all levels distinct
FRAME = 0x4000000                   # data frames live from 64 MiB up
ALL = P | RW | US


class Space:
    """A machine running on a fresh set of tables built by the test."""

    def __init__(self, mem=256 * MiB, **kw):
        self.m = Machine(mem, console=lambda s: None, **kw)
        self.b = Builder(self.m, 0x2000000, 0x3000000)
        self.m.write_cr3(self.b.pml4)

    def map(self, va=VA, pa=FRAME, size=PAGE_SIZE, flags=ALL, tables=ALL):
        return self.b.map(va, pa, size, flags, tables)

    def entry(self, va, level):
        return self.b.entry(va, level)

    def set(self, va, level, bits):
        epa = self.entry(va, level)
        self.m.write64(epa, self.m.read64(epa) | bits)

    def clear(self, va, level, bits):
        epa = self.entry(va, level)
        self.m.write64(epa, self.m.read64(epa) & ~bits)

    def fault(self, va=VA, **access):
        """The #PF error code of an access, None if it succeeds."""
        try:
            self.m.access(va, **access)
        except Fault as f:
            assert f.vector == VEC_PF and f.address == va
            assert self.m.read_cr2() == va
            return f.error_code
        return None


@pytest.fixture
def s():
    return Space()


ACCESSES = [
    dict(), dict(write=True), dict(user=True), dict(user=True, write=True),
    dict(fetch=True), dict(fetch=True, user=True),
]


def access_bits(a):
    return ((PF_WRITE if a.get("write") else 0) | (PF_USER if a.get("user") else 0)
            | (PF_INSTR if a.get("fetch") else 0))


# -- present bit ---------------------------------------------------------------

@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize("acc", ACCESSES, ids=str)
def test_not_present_at_each_level(s, level, acc):
    s.map()
    assert s.fault(**acc) is None
    s.m.write_cr3(s.b.pml4)                  # drop the TLB entry
    s.clear(VA, level, P)
    assert s.fault(**acc) == access_bits(acc)   # P = 0 in the error code


def test_unmapped_address_faults_with_zero_code(s):
    assert s.fault(0x1000) == 0
    assert s.fault(0x1000, write=True) == PF_WRITE


def test_not_present_entry_other_bits_ignored(s):
    """With P = 0 the rest of the entry is ignored, even reserved bits."""
    epa = s.map()
    s.m.write64(epa, 0xFFFF_FFFF_FFFF_FFFE)
    assert s.fault() == 0


# -- R/W, U/S, WP ------------------------------------------------------------------

@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_rw_is_anded_across_levels(s, level):
    s.map()
    s.clear(VA, level, RW)
    assert s.fault() is None
    assert s.fault(write=True) == PF_PROT | PF_WRITE
    assert s.fault(user=True) is None
    assert s.fault(user=True, write=True) == PF_PROT | PF_WRITE | PF_USER


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_wp0_lets_supervisor_write_read_only(s, level):
    s.map()
    s.clear(VA, level, RW)
    s.m.write_cr0(s.m.read_cr0() & ~CR0_WP)
    assert s.fault(write=True) is None
    s.m.vwrite32(VA, 0xABCD)
    assert s.m.read32(FRAME) == 0xABCD
    # user writes still honour R/W (4.6.1)
    assert s.fault(user=True, write=True) == PF_PROT | PF_WRITE | PF_USER


def test_wp1_supervisor_write_to_read_only_faults_via_hw_accessor(s):
    s.map(flags=P | US)
    with pytest.raises(Fault) as ei:
        s.m.vwrite64(VA, 1)
    assert ei.value.args[:3] == (VEC_PF, PF_PROT | PF_WRITE, VA)
    assert s.m.read64(FRAME) == 0


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_us_is_anded_across_levels(s, level):
    s.map()
    s.clear(VA, level, US)
    assert s.fault(user=True) == PF_PROT | PF_USER
    assert s.fault(user=True, write=True) == PF_PROT | PF_USER | PF_WRITE
    assert s.fault(user=True, fetch=True) == PF_PROT | PF_USER | PF_INSTR
    # supervisor keeps full access: no SMAP, no SMEP
    assert s.fault() is None
    assert s.fault(write=True) is None
    assert s.fault(fetch=True) is None


def test_supervisor_reaches_user_pages(s):
    s.map(flags=ALL)
    s.m.vwrite64(VA, 0x55)
    assert s.m.vread64(VA) == 0x55
    assert s.fault(fetch=True) is None          # no SMEP


def test_user_fetch_of_supervisor_page_faults(s):
    s.map(flags=P | RW)
    assert s.fault(user=True, fetch=True) == PF_PROT | PF_USER | PF_INSTR


# -- NX ------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_nx_at_any_level_forbids_fetch(s, level):
    s.map()
    s.set(VA, level, NX)
    assert s.fault(fetch=True) == PF_PROT | PF_INSTR
    assert s.fault(fetch=True, user=True) == PF_PROT | PF_INSTR | PF_USER
    assert s.fault() is None
    assert s.fault(write=True) is None
    assert s.fault(user=True, write=True) is None


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_nx_is_reserved_without_nxe(s, level):
    s.map()
    s.set(VA, level, NX)
    s.m.write_efer(s.m.read_efer() & ~EFER_NXE)
    assert s.fault() == PF_RSVD | PF_PROT
    # without NXE the I flag is not reported (4.7)
    s.clear(VA, level, NX)
    assert s.fault(fetch=True) is None
    s.clear(VA, 3, P)
    s.m.invlpg(VA)
    assert s.fault(fetch=True) == 0


# -- reserved bits -----------------------------------------------------------------

@pytest.mark.parametrize("acc", ACCESSES, ids=str)
def test_ps_in_pml4e_is_reserved(s, acc):
    s.map()
    s.set(VA, 0, PS)
    assert s.fault(**acc) == PF_RSVD | PF_PROT | access_bits(acc)


@pytest.mark.parametrize("bit", [13, 16, 20])
def test_2m_page_reserved_address_bits(s, bit):
    va = 0x40000000
    epa = s.map(va, 0x8000000, PMD_SIZE)
    assert s.fault(va) is None
    s.m.write_cr3(s.b.pml4)
    s.m.write64(epa, s.m.read64(epa) | 1 << bit)
    assert s.fault(va) == PF_RSVD | PF_PROT
    assert s.fault(va, write=True) == PF_RSVD | PF_PROT | PF_WRITE


@pytest.mark.parametrize("bit", [13, 21, 29])
def test_1g_page_reserved_address_bits(s, bit):
    va = 0x0000_4000_0000_0000
    epa = s.map(va, GiB, PUD_SIZE)
    assert s.fault(va) is None
    s.m.write_cr3(s.b.pml4)
    s.m.write64(epa, s.m.read64(epa) | 1 << bit)
    assert s.fault(va) == PF_RSVD | PF_PROT


def test_pat_bit_12_of_huge_page_is_not_reserved_nor_address(s):
    va = 0x40000000
    s.map(va, 0x8000000 | 1 << 12, PMD_SIZE)
    assert s.m.access(va + 0x123) == 0x8000000 + 0x123


def test_bit_above_maxphyaddr_is_reserved():
    s = Space(maxphyaddr=40)
    s.map()
    assert s.fault() is None
    s.m.write_cr3(s.b.pml4)
    s.set(VA, 2, 1 << 45)
    assert s.fault(user=True) == PF_RSVD | PF_PROT | PF_USER


def test_reserved_beats_not_present_below(s):
    """The walk stops at the first bad entry: RSVD at the PDE hides a
    missing PTE."""
    va = 0x40000000
    epa = s.map(va, 0x8000000, PMD_SIZE)
    s.m.write64(epa, s.m.read64(epa) | 1 << 14)
    assert s.fault(va) == PF_RSVD | PF_PROT


# -- huge pages ----------------------------------------------------------------------

@pytest.mark.parametrize("off", [0, 0x1234, PMD_SIZE - 8])
def test_2m_page_translation(s, off):
    va = 0x0000_0000_4020_0000
    s.map(va, 0x8000000, PMD_SIZE)
    assert s.m.access(va + off) == 0x8000000 + off
    s.m.write64(0x8000000 + off, off ^ 0x77)
    assert s.m.vread64(va + off) == off ^ 0x77
    assert s.m.probe(va + off).size == PMD_SIZE


@pytest.mark.parametrize("off", [0, 0x1234, 77 * MiB, 256 * MiB - 8])
def test_1g_page_translation(s, off):
    va = 0x0000_7F80_0000_0000
    s.map(va, 0, PUD_SIZE)
    assert s.m.access(va + off) == off
    s.m.vwrite64(va + off, 0xBEEF)
    assert s.m.read64(off) == 0xBEEF
    assert s.m.probe(va + off).size == PUD_SIZE


def test_huge_page_rights_and_upper_levels(s):
    va = 0x40000000
    s.map(va, 0x8000000, PMD_SIZE, flags=P | US)     # read-only 2 MiB page
    assert s.fault(va + 0x5000, write=True) == PF_PROT | PF_WRITE
    s.clear(va, 1, US)
    assert s.fault(va + 0x5000, user=True) == PF_PROT | PF_USER


# -- accessed and dirty ---------------------------------------------------------------

def entries(s, va):
    return [s.m.read64(s.entry(va, lv)) for lv in range(4)]


def test_accessed_set_on_every_level_dirty_only_on_leaf_write(s):
    s.map()
    assert all(not e & (A | D) for e in entries(s, VA))
    s.m.vread8(VA)
    es = entries(s, VA)
    assert all(e & A for e in es)
    assert all(not e & D for e in es)
    s.m.vwrite8(VA, 1)
    es = entries(s, VA)
    assert es[3] & D
    assert all(not e & D for e in es[:3])


def test_dirty_set_on_write_after_read_filled_the_tlb(s):
    """A TLB entry made by a read carries D = 0, so the first write walks
    again and sets D (4.8)."""
    epa = s.map()
    s.m.vread64(VA)
    assert not s.m.read64(epa) & D
    s.m.vwrite64(VA, 5)
    assert s.m.read64(epa) & D
    s.m.write64(epa, s.m.read64(epa) & ~D)     # software clears D ...
    s.m.vwrite64(VA, 6)                         # ... without invlpg: the TLB
    assert not s.m.read64(epa) & D              # still says dirty (stale)
    s.m.invlpg(VA)
    s.m.vwrite64(VA, 7)
    assert s.m.read64(epa) & D


def test_dirty_on_2m_and_1g_leaf(s):
    va2, va1 = 0x40000000, 0x0000_0080_0000_0000
    e2 = s.map(va2, 0x8000000, PMD_SIZE)
    e1 = s.map(va1, 0, PUD_SIZE)
    s.m.vwrite8(va2 + 5, 1)
    s.m.vwrite8(va1 + 5, 1)
    assert s.m.read64(e2) & (A | D) == A | D
    assert s.m.read64(e1) & (A | D) == A | D


def test_faulting_access_sets_no_flags(s):
    epa = s.map(flags=P | US)
    assert s.fault(write=True) == PF_PROT | PF_WRITE
    assert not s.m.read64(epa) & (A | D)


# -- multi-byte accesses, canonical addresses, unbacked memory -------------------------

def test_read_crossing_into_unmapped_page_faults_at_second_page(s):
    s.map()
    with pytest.raises(Fault) as ei:
        s.m.vread64(VA + PAGE_SIZE - 4)
    assert ei.value.address == VA + PAGE_SIZE
    assert s.m.read_cr2() == VA + PAGE_SIZE


@pytest.mark.parametrize("width", [16, 32, 64])
def test_single_store_crossing_pages_is_all_or_nothing(s, width):
    s.map()
    s.map(VA + PAGE_SIZE, FRAME + PAGE_SIZE, flags=P | US)   # read-only
    with pytest.raises(Fault) as ei:
        getattr(s.m, "vwrite%d" % width)(VA + PAGE_SIZE - 1, (1 << width) - 1)
    assert ei.value.error_code == PF_PROT | PF_WRITE
    assert s.m.read8(FRAME + PAGE_SIZE - 1) == 0


@pytest.mark.parametrize("width", [16, 32, 64])
def test_access_crossing_pages_maps_to_two_frames(s, width):
    s.map()
    s.map(VA + PAGE_SIZE, FRAME + 5 * PAGE_SIZE)
    v = 0x0102030405060708 & ((1 << width) - 1)
    getattr(s.m, "vwrite%d" % width)(VA + PAGE_SIZE - 1, v)
    assert s.m.read8(FRAME + PAGE_SIZE - 1) == v & 0xFF
    assert s.m.read8(FRAME + 5 * PAGE_SIZE) == (v >> 8) & 0xFF
    assert getattr(s.m, "vread%d" % width)(VA + PAGE_SIZE - 1) == v


def test_vwritebytes_faults_part_way(s):
    s.map()
    with pytest.raises(Fault) as ei:
        s.m.vwritebytes(VA + PAGE_SIZE - 3, b"abcdef")
    assert ei.value.address == VA + PAGE_SIZE
    assert s.m.readbytes(FRAME + PAGE_SIZE - 3, 3) == b"abc"   # stays written


def test_vfill_and_vreadbytes_across_pages(s):
    for i in range(3):
        s.map(VA + i * PAGE_SIZE, FRAME + (2 - i) * PAGE_SIZE)
    s.m.vfill(VA + 100, 0x5A, 2 * PAGE_SIZE)
    data = s.m.vreadbytes(VA, 3 * PAGE_SIZE)
    assert data[:100] == bytes(100)
    assert data[100:100 + 2 * PAGE_SIZE] == b"\x5a" * (2 * PAGE_SIZE)
    assert s.m.read8(FRAME + 2 * PAGE_SIZE + 100) == 0x5A    # first page
    assert s.m.read8(FRAME + 99) == 0x5A                    # last page
    assert s.m.read8(FRAME + 100) == 0


def test_access_checks_every_page_of_size(s):
    s.map()
    assert s.m.access(VA, size=PAGE_SIZE) == FRAME
    with pytest.raises(Fault) as ei:
        s.m.access(VA, size=PAGE_SIZE + 1)
    assert ei.value.address == VA + PAGE_SIZE


@pytest.mark.parametrize("va", [0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_F000, 1 << 64, -8])
def test_non_canonical_address_is_gp(s, va):
    with pytest.raises(Fault) as ei:
        s.m.vread64(va)
    assert ei.value.vector == VEC_GP


def test_mapping_beyond_memory_reads_all_ones(s):
    s.map(pa=s.m.phys_size + PAGE_SIZE)
    assert s.m.vread64(VA) == (1 << 64) - 1
    assert s.m.vread8(VA) == 0xFF
    s.m.vwrite64(VA, 0)                   # dropped, no fault
    assert s.m.vreadbytes(VA, 2) == b"\xff\xff"


def test_hw_accessors_are_supervisor_accesses(s):
    s.map(flags=P | RW)                   # supervisor-only page
    s.m.vwrite16(VA, 0x1234)
    assert s.m.vread16(VA) == 0x1234
    assert s.fault(user=True) == PF_PROT | PF_USER


# -- the rules as one property ----------------------------------------------------------

def reference(levels, write, user, fetch, wp, nxe=True):
    """SDM 4.6 written plainly: the error code the access must raise, or
    None. `levels` are the flags of PML4E, PDPTE, PDE, PTE."""
    acc = (PF_WRITE if write and not fetch else 0) | (PF_USER if user else 0) \
        | (PF_INSTR if fetch else 0)
    for e in levels:
        if not e & P:
            return acc
    writable = all(e & RW for e in levels)
    user_page = all(e & US for e in levels)
    executable = not any(e & NX for e in levels)
    ok = True
    if user and not user_page:
        ok = False
    if write and not fetch and not writable and (user or wp):
        ok = False
    if fetch and not executable:
        ok = False
    return None if ok else acc | PF_PROT


flag_sets = st.sets(st.sampled_from([P, RW, US, NX])).map(lambda s: sum(s))


@settings(max_examples=400, deadline=None)
@given(levels=st.lists(flag_sets, min_size=4, max_size=4),
       write=st.booleans(), user=st.booleans(), fetch=st.booleans(),
       wp=st.booleans())
def test_rights_match_the_sdm_rules(levels, write, user, fetch, wp):
    s = Space(64 * MiB)
    s.map()
    for epa, flags in zip([s.entry(VA, lv) for lv in range(4)], levels):
        e = s.m.read64(epa) & ~(P | RW | US | NX)
        s.m.write64(epa, e | flags)
    if not wp:
        s.m.write_cr0(s.m.read_cr0() & ~CR0_WP)
    got = s.fault(write=write, user=user, fetch=fetch)
    assert got == reference(levels, write, user, fetch, wp)


@settings(max_examples=300, deadline=None)
@given(off=st.integers(0, 96 * MiB - 8), v=st.integers(0, (1 << 64) - 1))
def test_direct_map_matches_physical(off, v):
    m = _shared()
    from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
    m.vwrite64(DIRECT_MAP_BASE + off, v)
    assert m.read64(off) == v
    m.write32(off, 0xA5A5A5A5)
    assert m.vread32(DIRECT_MAP_BASE + off) == 0xA5A5A5A5


_SHARED = []


def _shared():
    if not _SHARED:
        _SHARED.append(Machine(128 * MiB, console=lambda s: None))
    return _SHARED[0]
