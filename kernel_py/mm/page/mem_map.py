# mem_map: one 16-byte record per page frame, kept in physical memory (as
# Linux's struct page array is), so its cost is RAM, not Python heap.
# (the record's byte table, its invariants and the PG_/KIND_ flags are in
# mm/types.py, with the other layouts the memory manager shares).

from kernel_py.arch.x86.cpu import PAGE_SHIFT
from kernel_py.mm.types import (
    KIND_NAMES, KIND_SHIFT, NIL, OFF_AUX, OFF_COUNT, OFF_FREEIDX, OFF_INUSE, OFF_NEXT, OFF_ORDER,
    OFF_PREV, PG_FLAGS_MASK, PG_NAMES, PG_tail, RECORD_SHIFT, RECORD_SIZE,
)


def pfn_to_pa(pfn):
    return pfn << PAGE_SHIFT


def pa_to_pfn(pa):
    return pa >> PAGE_SHIFT


def kind_of(flags):
    return flags >> KIND_SHIFT


class MemMap:
    """The mem_map array: accessors over the records in physical memory.

    Methods take a pfn. Each is one or two hw calls; hot callers may also
    compute `rec = mm.base + (pfn << 4)` once and use hw.read*/write* with
    the OFF_* offsets directly."""

    def __init__(self, hw, base, nr_pfns):
        self.hw = hw
        self.base = base
        self.nr_pfns = nr_pfns
        self.size = nr_pfns * RECORD_SIZE
        self._r8, self._w8 = hw.read8, hw.write8
        self._r16, self._w16 = hw.read16, hw.write16
        self._r32, self._w32 = hw.read32, hw.write32

    def clear_all(self):
        self.hw.fill(self.base, 0, self.size)

    def clear(self, pfn):
        self.hw.fill(self.base + (pfn << RECORD_SHIFT), 0, RECORD_SIZE)

    def rec(self, pfn):
        """Physical address of the record of `pfn`."""
        return self.base + (pfn << RECORD_SHIFT)

    def valid(self, pfn):
        return 0 <= pfn < self.nr_pfns

    # -- fields
    def flags(self, pfn):
        return self._r16(self.base + (pfn << RECORD_SHIFT))

    def set_flags(self, pfn, v):
        self._w16(self.base + (pfn << RECORD_SHIFT), v)

    def test_flag(self, pfn, bit):
        return self._r16(self.base + (pfn << RECORD_SHIFT)) & bit != 0

    def set_flag(self, pfn, bit):
        a = self.base + (pfn << RECORD_SHIFT)
        self._w16(a, self._r16(a) | bit)

    def clear_flag(self, pfn, bit):
        a = self.base + (pfn << RECORD_SHIFT)
        self._w16(a, self._r16(a) & ~bit)

    def kind(self, pfn):
        return self._r16(self.base + (pfn << RECORD_SHIFT)) >> KIND_SHIFT

    def set_kind(self, pfn, kind):
        a = self.base + (pfn << RECORD_SHIFT)
        self._w16(a, (self._r16(a) & PG_FLAGS_MASK) | (kind << KIND_SHIFT))

    def order(self, pfn):
        return self._r8(self.base + (pfn << RECORD_SHIFT) + OFF_ORDER)

    def set_order(self, pfn, v):
        self._w8(self.base + (pfn << RECORD_SHIFT) + OFF_ORDER, v)

    def aux(self, pfn):
        return self._r8(self.base + (pfn << RECORD_SHIFT) + OFF_AUX)

    def set_aux(self, pfn, v):
        self._w8(self.base + (pfn << RECORD_SHIFT) + OFF_AUX, v)

    def count(self, pfn):
        return self._r32(self.base + (pfn << RECORD_SHIFT) + OFF_COUNT)

    def set_count(self, pfn, v):
        self._w32(self.base + (pfn << RECORD_SHIFT) + OFF_COUNT, v)

    def get_page(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT) + OFF_COUNT
        v = self._r32(a) + 1
        self._w32(a, v)
        return v

    def put_page_testzero(self, pfn):
        """Drop a reference; True when it was the last one."""
        a = self.base + (pfn << RECORD_SHIFT) + OFF_COUNT
        v = self._r32(a) - 1
        self._w32(a, v)
        return v == 0

    def inuse(self, pfn):
        return self._r16(self.base + (pfn << RECORD_SHIFT) + OFF_INUSE)

    def set_inuse(self, pfn, v):
        self._w16(self.base + (pfn << RECORD_SHIFT) + OFF_INUSE, v)

    def freeidx(self, pfn):
        return self._r16(self.base + (pfn << RECORD_SHIFT) + OFF_FREEIDX)

    def set_freeidx(self, pfn, v):
        self._w16(self.base + (pfn << RECORD_SHIFT) + OFF_FREEIDX, v)

    def next(self, pfn):
        return self._r32(self.base + (pfn << RECORD_SHIFT) + OFF_NEXT)

    def set_next(self, pfn, v):
        self._w32(self.base + (pfn << RECORD_SHIFT) + OFF_NEXT, v)

    def prev(self, pfn):
        return self._r32(self.base + (pfn << RECORD_SHIFT) + OFF_PREV)

    def set_prev(self, pfn, v):
        self._w32(self.base + (pfn << RECORD_SHIFT) + OFF_PREV, v)

    def compound_head(self, pfn):
        """Head pfn of the compound block containing `pfn` (pfn itself if none)."""
        a = self.base + (pfn << RECORD_SHIFT)
        if self._r16(a) & PG_tail:
            return self._r32(a + OFF_NEXT)
        return pfn

    def set_record(self, pfn, flags, order, aux, count):
        a = self.base + (pfn << RECORD_SHIFT)
        self._w32(a, flags | (order << 16) | (aux << 24))
        self._w32(a + OFF_COUNT, count)

    def describe(self, pfn):
        f = self.flags(pfn)
        names = [PG_NAMES[i] for i in range(12) if f & (1 << i)]
        return "pfn 0x%x kind=%s order=%d aux=%d count=%d flags=%s" % (
            pfn, KIND_NAMES[f >> KIND_SHIFT], self.order(pfn), self.aux(pfn),
            self.count(pfn), "|".join(names) or "-")


class PfnList:
    """A doubly linked list threaded through the next/prev fields of mem_map
    records; the list head (first and last pfn, length) lives here, in
    Python. `last` is the tail the LRU scans start from (the buddy's
    inlined push in buddy._link_free keeps it too)."""

    def __init__(self, mem_map):
        self.mm = mem_map
        self.first = NIL
        self.last = NIL
        self.n = 0
        self._r32 = mem_map._r32
        self._w32 = mem_map._w32
        self.base = mem_map.base

    def __len__(self):
        return self.n

    def push(self, pfn):
        """Insert at the front."""
        base, w32 = self.base, self._w32
        rec = base + (pfn << RECORD_SHIFT)
        first = self.first
        w32(rec + OFF_NEXT, first)
        w32(rec + OFF_PREV, NIL)
        if first != NIL:
            w32(base + (first << RECORD_SHIFT) + OFF_PREV, pfn)
        else:
            self.last = pfn
        self.first = pfn
        self.n += 1

    def remove(self, pfn):
        base, r32, w32 = self.base, self._r32, self._w32
        rec = base + (pfn << RECORD_SHIFT)
        nxt = r32(rec + OFF_NEXT)
        prv = r32(rec + OFF_PREV)
        if prv == NIL:
            self.first = nxt
        else:
            w32(base + (prv << RECORD_SHIFT) + OFF_NEXT, nxt)
        if nxt == NIL:
            self.last = prv
        else:
            w32(base + (nxt << RECORD_SHIFT) + OFF_PREV, prv)
        w32(rec + OFF_NEXT, NIL)
        w32(rec + OFF_PREV, NIL)
        self.n -= 1

    def pop(self):
        """Remove and return the first pfn, or NIL when empty."""
        pfn = self.first
        if pfn == NIL:
            return NIL
        w32 = self._w32
        rec = self.base + (pfn << RECORD_SHIFT)
        nxt = self._r32(rec + OFF_NEXT)
        self.first = nxt
        if nxt != NIL:
            w32(self.base + (nxt << RECORD_SHIFT) + OFF_PREV, NIL)
        else:
            self.last = NIL
        w32(rec + OFF_NEXT, NIL)
        self.n -= 1
        return pfn

    def pfns(self):
        out = []
        pfn, r32, base = self.first, self._r32, self.base
        while pfn != NIL:
            out.append(pfn)
            pfn = r32(base + (pfn << RECORD_SHIFT) + OFF_NEXT)
        return out


def alloc_mem_map(hw, memblock, max_pfn, limit=None):
    """mem_map for frames [0, max_pfn) from memblock, zero-filled."""
    size = (max_pfn * RECORD_SIZE + (1 << PAGE_SHIFT) - 1) & ~((1 << PAGE_SHIFT) - 1)
    base = memblock.alloc(size, 1 << PAGE_SHIFT, limit, "mem_map")
    mm = MemMap(hw, base, max_pfn)
    mm.clear_all()
    return mm
