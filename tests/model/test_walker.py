"""Model tests for the host page-table walker (qemu/kpyqemu/walker.py).

Tables are built by hand, with plain integer arithmetic on the x86 bit
constants, in a bytearray standing for physical memory.
"""

import struct
import time

import pytest

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, KERNEL_BASE, USER_START
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE,
    PMD_SIZE,
    PUD_SIZE,
    PTE_ADDR_MASK,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_USER,
)
from kpyqemu.walker import (
    PTE,
    BufferReader,
    Mapping,
    PageWalker,
    build_pte,
    coalesce,
    decode_pte,
    format_mappings,
)

P, RW, US, NX, PS, G = _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_NX, _PAGE_PSE, _PAGE_GLOBAL
TABLE = P | RW | US       # the usual non-leaf entry: permissive, leaves decide


def idx(va, level):
    return (va >> (12 + 9 * (level - 1))) & 511


class PhysMem:
    """A tiny physical memory with a bump allocator for 4 KiB tables."""

    def __init__(self, size=1 << 20, first=0x1000):
        self.buf = bytearray(size)
        self.next = first
        self.reads = 0

    def alloc(self):
        pa = self.next
        self.next += PAGE_SIZE
        assert self.next <= len(self.buf), "PhysMem too small"
        return pa

    def set(self, table_pa, index, entry):
        struct.pack_into("<Q", self.buf, table_pa + 8 * index, entry)

    def get(self, table_pa, index):
        return struct.unpack_from("<Q", self.buf, table_pa + 8 * index)[0]

    def read(self, pa, n):
        self.reads += 1
        return bytes(self.buf[pa:pa + n])


class Tables:
    """Builds mappings into a 4-level hierarchy rooted at .root."""

    def __init__(self, mem=None):
        self.mem = mem or PhysMem()
        self.root = self.mem.alloc()

    def _next(self, table_pa, index, flags=TABLE):
        e = self.mem.get(table_pa, index)
        if e & P:
            return e & PTE_ADDR_MASK
        child = self.mem.alloc()
        self.mem.set(table_pa, index, child | flags)
        return child

    def map(self, va, pa, size, flags, upper=TABLE):
        """Map one page of `size` (4K, 2M or 1G) with leaf `flags`; `upper`
        are the flags of the intermediate entries created."""
        leaf_level = {PAGE_SIZE: 1, PMD_SIZE: 2, PUD_SIZE: 3}[size]
        t = self.root
        for level in range(4, leaf_level, -1):
            t = self._next(t, idx(va, level), upper)
        e = pa | flags
        if leaf_level > 1:
            e |= PS
        self.mem.set(t, idx(va, leaf_level), e)
        return t, idx(va, leaf_level)

    def walker(self):
        return PageWalker(self.root, self.mem.read)


# ---------------------------------------------------------------------------
# entry format


def test_pte_struct_decodes_every_field():
    raw = (0x1234_5678_9000 | P | RW | US | _PAGE_PCD | _PAGE_ACCESSED
           | _PAGE_DIRTY | G | NX)
    d = decode_pte(raw)
    assert d.present and d.rw and d.user and d.pcd and d.accessed and d.dirty
    assert d.global_ and d.nx
    assert not d.pwt and not d.ps
    assert d.pfn << 12 == 0x1234_5678_9000
    assert PTE.sizeof() == 8


def test_build_pte_roundtrips_with_integer_encoding():
    raw = 0xABCDE000 | P | RW | NX | G
    built = build_pte(0xABCDE000, rw=True, nx=True, global_=True)
    assert int.from_bytes(built, "little") == raw
    assert int.from_bytes(build_pte(0x1000, present=False), "little") == 0x1000


# ---------------------------------------------------------------------------
# translation


def test_translate_4k_user_page():
    t = Tables()
    va = USER_START + 0x3000
    t.map(va, 0x7000, PAGE_SIZE, P | RW | US | NX)
    w = t.walker()
    tr = w.translate(va + 0x123)
    assert tr.pa == 0x7123
    assert tr.size == PAGE_SIZE and tr.level == 1
    assert tr.writable and tr.user and tr.nx
    assert tr.page.va == va and tr.page.pa == 0x7000
    assert w.translate(va + PAGE_SIZE) is None
    assert w.translate(va - PAGE_SIZE) is None
    assert w.anomalies == []


def test_translate_2m_page_in_direct_map():
    t = Tables()
    t.map(DIRECT_MAP_BASE + PMD_SIZE, PMD_SIZE, PMD_SIZE, P | RW | NX | G)
    w = t.walker()
    tr = w.translate(DIRECT_MAP_BASE + PMD_SIZE + 0x1ABCDE)
    assert tr.pa == PMD_SIZE + 0x1ABCDE
    assert tr.size == PMD_SIZE and tr.level == 2
    assert tr.writable and tr.nx and not tr.user
    assert tr.flags & G and tr.flags & PS
    assert w.translate(DIRECT_MAP_BASE) is None


def test_translate_1g_page():
    t = Tables()
    t.map(DIRECT_MAP_BASE + PUD_SIZE, PUD_SIZE, PUD_SIZE, P | RW | NX | G)
    w = t.walker()
    tr = w.translate(DIRECT_MAP_BASE + PUD_SIZE + 0x3FFF_FFFF)
    assert tr.pa == 2 * PUD_SIZE - 1
    assert tr.size == PUD_SIZE and tr.level == 3
    assert w.translate(DIRECT_MAP_BASE + 2 * PUD_SIZE) is None


def test_huge_page_pat_bit_is_not_part_of_the_frame():
    t = Tables()
    table, i = t.map(DIRECT_MAP_BASE, 4 * PMD_SIZE, PMD_SIZE, P | RW)
    t.mem.set(table, i, t.mem.get(table, i) | (1 << 12))   # PAT
    w = t.walker()
    assert w.translate(DIRECT_MAP_BASE + 5).pa == 4 * PMD_SIZE + 5
    assert w.anomalies == []


def test_misaligned_huge_frame_is_an_anomaly():
    t = Tables()
    table, i = t.map(DIRECT_MAP_BASE, 0, PMD_SIZE, P | RW)
    t.mem.set(table, i, (PMD_SIZE + 0x4000) | P | RW | PS)
    w = t.walker()
    w.translate(DIRECT_MAP_BASE)
    assert len(w.anomalies) == 1 and "aligned" in w.anomalies[0].what


def test_not_present_at_each_level():
    t = Tables()
    va = KERNEL_BASE + 0x5000
    pt, i = t.map(va, 0x9000, PAGE_SIZE, P | RW)
    w = t.walker()
    assert w.translate(va).pa == 0x9000
    # clear the PTE: the walk stops at the PT
    t.mem.set(pt, i, 0x9000 | RW)     # frame bits left behind, P clear
    w.flush()
    assert w.translate(va) is None
    steps = w.walk(va)
    assert [s.level for s in steps] == [4, 3, 2, 1]
    assert not steps[-1].entry & P
    # clear the PML4 entry: the walk stops at once
    t.mem.set(t.root, idx(va, 4), 0)
    w.flush()
    assert w.translate(va) is None
    assert len(w.walk(va)) == 1
    assert list(w.mappings()) == []


def test_effective_permissions_combine_levels():
    t = Tables()
    va_ro = USER_START
    va_nx = USER_START + PUD_SIZE           # a different PDPT entry
    va_kern = USER_START + 2 * PUD_SIZE
    # leaf says RW+US, but the PD above it is read-only
    t.map(va_ro, 0x10000, PAGE_SIZE, P | RW | US, upper=P | US)
    # leaf executable, but an upper level sets NX
    t.map(va_nx, 0x11000, PAGE_SIZE, P | RW | US, upper=P | RW | US | NX)
    # leaf user, upper level supervisor only
    t.map(va_kern, 0x12000, PAGE_SIZE, P | RW | US, upper=P | RW)
    w = t.walker()
    # the first map created the PML4 entry with P|US only: every page under
    # this PML4 entry is read-only
    ro = w.translate(va_ro)
    assert not ro.writable and ro.user and not ro.nx
    nx = w.translate(va_nx)
    assert nx.nx and nx.user and not nx.writable
    kern = w.translate(va_kern)
    assert not kern.user


def test_nx_ignored_without_efer_nxe():
    t = Tables()
    t.map(USER_START, 0x5000, PAGE_SIZE, P | NX)
    assert t.walker().translate(USER_START).nx
    w = PageWalker(t.root, t.mem.read, nxe=False)
    assert not w.translate(USER_START).nx


def test_cr3_low_bits_are_ignored():
    t = Tables()
    t.map(USER_START, 0x5000, PAGE_SIZE, P)
    w = PageWalker(t.root | 0x18, t.mem.read)   # PWT|PCD in CR3
    assert w.translate(USER_START).pa == 0x5000


def test_ps_in_pml4_is_reserved():
    t = Tables()
    t.mem.set(t.root, 1, 0x40000000 | P | RW | PS)
    w = t.walker()
    assert w.translate(1 << 39) is None
    assert list(w.mappings()) == []
    assert w.anomalies and "PML4" in w.anomalies[0].what


def test_non_canonical_input_is_sign_extended():
    t = Tables()
    t.map(KERNEL_BASE, 0x5000, PAGE_SIZE, P)
    w = t.walker()
    assert w.translate(KERNEL_BASE & 0xFFFF_FFFF_FFFF).pa == 0x5000


# ---------------------------------------------------------------------------
# enumeration


def sample_tables():
    t = Tables()
    t.map(USER_START, 0x5000, PAGE_SIZE, P | RW | US | NX)
    t.map(USER_START + PAGE_SIZE, 0x6000, PAGE_SIZE, P | US)
    for i in range(3):
        t.map(DIRECT_MAP_BASE + i * PMD_SIZE, i * PMD_SIZE, PMD_SIZE, P | RW | NX | G)
    t.map(DIRECT_MAP_BASE + PUD_SIZE, PUD_SIZE, PUD_SIZE, P | RW | NX | G)
    t.map(KERNEL_BASE + 0x100000, 0x100000, PAGE_SIZE, P | G)
    return t


def test_mappings_enumerates_everything_in_va_order():
    ms = list(sample_tables().walker().mappings())
    assert [(m.va, m.pa, m.size, m.level) for m in ms] == [
        (USER_START, 0x5000, PAGE_SIZE, 1),
        (USER_START + PAGE_SIZE, 0x6000, PAGE_SIZE, 1),
        (DIRECT_MAP_BASE, 0, PMD_SIZE, 2),
        (DIRECT_MAP_BASE + PMD_SIZE, PMD_SIZE, PMD_SIZE, 2),
        (DIRECT_MAP_BASE + 2 * PMD_SIZE, 2 * PMD_SIZE, PMD_SIZE, 2),
        (DIRECT_MAP_BASE + PUD_SIZE, PUD_SIZE, PUD_SIZE, 3),
        (KERNEL_BASE + 0x100000, 0x100000, PAGE_SIZE, 1),
    ]
    assert ms[0].user and ms[0].writable and ms[0].nx
    assert ms[1].user and not ms[1].writable and ms[1].executable
    assert all(m.global_ and m.nx and not m.user for m in ms[2:6])
    assert ms[6].executable and not ms[6].writable
    assert isinstance(ms[0], Mapping)


def test_mappings_range_restricts_and_skips_subtrees():
    t = sample_tables()
    w = t.walker()
    ms = list(w.mappings(DIRECT_MAP_BASE, DIRECT_MAP_BASE + PUD_SIZE))
    assert [m.va for m in ms] == [DIRECT_MAP_BASE + i * PMD_SIZE for i in range(3)]
    # only PML4, one PDPT, one PD were needed
    assert w.tables_read == 3
    # a range starting inside a page includes that page
    ms = list(w.mappings(DIRECT_MAP_BASE + PMD_SIZE + 1, DIRECT_MAP_BASE + PMD_SIZE + 2))
    assert [m.va for m in ms] == [DIRECT_MAP_BASE + PMD_SIZE]


def test_coalesce_and_format():
    ms = coalesce(sample_tables().walker().mappings())
    assert [(m.va, m.size) for m in ms] == [
        (USER_START, PAGE_SIZE),                 # flags differ from the next
        (USER_START + PAGE_SIZE, PAGE_SIZE),
        (DIRECT_MAP_BASE, 3 * PMD_SIZE),
        (DIRECT_MAP_BASE + PUD_SIZE, PUD_SIZE),  # different page size
        (KERNEL_BASE + 0x100000, PAGE_SIZE),
    ]
    text = format_mappings(ms)
    assert "6M" in text and "1G" in text and "USR" in text


def test_aliases_and_table_frames():
    t = sample_tables()
    w = t.walker()
    assert w.aliases(0x100000 + 8) == [DIRECT_MAP_BASE + 0x100008,
                                       KERNEL_BASE + 0x100008]
    frames = w.table_frames()
    assert frames[0] == t.root
    assert sorted(frames) == list(range(0x1000, t.mem.next, PAGE_SIZE))


def test_tables_are_read_once():
    t = sample_tables()
    w = t.walker()
    list(w.mappings())
    reads = t.mem.reads
    list(w.mappings())
    w.translate(USER_START)
    assert t.mem.reads == reads


def test_buffer_reader_bounds():
    r = BufferReader(b"\x01" * 0x2000, base=0x1000)
    assert r(0x1000, 4) == b"\x01" * 4
    with pytest.raises(ValueError):
        r(0x2800, 0x1000)


def test_large_direct_map_enumerates_fast():
    """A 64 GiB direct map: 4 GiB in 2 MiB pages, the rest in 1 GiB pages,
    plus 4096 4 KiB pages - the size the guest tests will see."""
    mem = PhysMem(size=64 << 12)
    t = Tables(mem)
    for i in range(2048):
        t.map(DIRECT_MAP_BASE + i * PMD_SIZE, i * PMD_SIZE, PMD_SIZE, P | RW | NX | G)
    for i in range(4, 64):
        t.map(DIRECT_MAP_BASE + i * PUD_SIZE, i * PUD_SIZE, PUD_SIZE, P | RW | NX | G)
    for i in range(4096):
        t.map(KERNEL_BASE + i * PAGE_SIZE, 0x100000 + i * PAGE_SIZE, PAGE_SIZE,
              P | (RW | NX if i >= 1024 else 0) | G)
    w = t.walker()
    t0 = time.perf_counter()
    ms = list(w.mappings())
    elapsed = time.perf_counter() - t0
    assert len(ms) == 2048 + 60 + 4096
    assert sum(m.size for m in ms if m.va < KERNEL_BASE) == 64 * PUD_SIZE
    runs = coalesce(ms)
    assert len(runs) == 4   # 4G of 2M, 60G of 1G, kernel text, kernel data
    assert elapsed < 5.0, "enumeration took %.2fs" % elapsed


def test_coalesce_ignores_accessed_dirty_by_default():
    t = Tables()
    t.map(KERNEL_BASE, 0x100000, PAGE_SIZE, P | RW | _PAGE_ACCESSED)
    t.map(KERNEL_BASE + PAGE_SIZE, 0x101000, PAGE_SIZE, P | RW | _PAGE_DIRTY)
    ms = list(t.walker().mappings())
    assert len(coalesce(ms)) == 1
    assert len(coalesce(ms, ignore=0)) == 2
