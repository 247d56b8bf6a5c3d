# The buddy allocator (Linux mm/page_alloc.c): per-zone free lists of blocks
# of 2^order frames, order 0..MAX_ORDER. A block splits in halves to serve a
# smaller request; on free it merges with its buddy (pfn ^ (1 << order))
# while the buddy is a free block of the same order. The free lists are
# threaded through mem_map records (mem_map.PfnList), so they cost no heap.

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.gfp import F_COMP, F_DIRECT_RECLAIM, F_NOFAIL, F_NORETRY, F_ZERO     # (in a class: gfp.py)
from kernel_py.mm.page import zone as Z
from kernel_py.mm.types import (
    FREE_HEAD_FLAGS, KIND_FREE, KIND_KERNEL, KIND_NONE, KIND_SHIFT, NIL, OFF_NEXT, OFF_PREV,
    PG_buddy, PG_head, PG_tail, RECORD_SHIFT, RECORD_SIZE,
)
from kernel_py.mm.page.zone import MAX_ORDER, NR_ORDERS, PAGE_ALLOC_COSTLY_ORDER, zone_watermark_ok
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE, small

COUNT_ONE = small(1 << 32)  # refcount 1 in a record's second word, for 64-bit stores
MAX_RECLAIM_RETRIES = 16    # reclaim rounds with progress but no page before giving up


def gfp_zone(gfp):
    """Highest zone index a GFP mask allows."""
    if gfp & G.__GFP_DMA:
        return Z.ZONE_DMA
    if gfp & G.__GFP_DMA32:
        return Z.ZONE_DMA32
    return Z.ZONE_NORMAL


def reclaim_rounds(gfp, order):
    """Rounds of direct reclaim an allocation may try while each makes
    progress yet leaves no page for it (pages freed by reclaim can go to
    others first): Linux's should_reclaim_retry gives up after
    MAX_RECLAIM_RETRIES; __GFP_NORETRY and costly orders try once."""
    if gfp & F_NOFAIL or not (gfp & F_NORETRY or order > PAGE_ALLOC_COSTLY_ORDER):
        return MAX_RECLAIM_RETRIES
    return 1


def gfp_to_alloc_flags(gfp):
    """Slow-path flags: the min watermark, lowered for __GFP_HIGH callers
    that cannot reclaim (GFP_ATOMIC), as Linux's gfp_to_alloc_flags does."""
    flags = Z.ALLOC_WMARK_MIN
    if gfp & G.__GFP_HIGH:
        flags |= Z.ALLOC_MIN_RESERVE
    if not gfp & G.__GFP_DIRECT_RECLAIM:
        flags |= Z.ALLOC_NON_BLOCK
    if gfp & G.__GFP_MEMALLOC and not gfp & G.__GFP_NOMEMALLOC:
        flags |= Z.ALLOC_NO_WATERMARKS
    return flags


def lowest_set_order(pfn):
    """Largest order to which pfn is aligned (MAX_ORDER for pfn 0)."""
    o = 0
    while o < MAX_ORDER and not pfn & (1 << o):
        o += 1
    return o


class Buddy:
    def __init__(self, hw, mem_map, zones):
        self.hw = hw
        self.mem_map = mem_map
        self.zones = zones
        self.reclaim = None         # fn(gfp, order) -> pages reclaimed; called before failing
        self.wakeup_kswapd = None   # fn(): an allocation fell below a zone's low watermark
        self.pgalloc = [0] * len(zones)
        self.pgfree = 0
        self.allocstall = 0
        self.alloc_fail = 0
        self.hit_zone = 0           # zone index of the last get_page_from_freelist hit
        # debugging hooks, None when off (mm/debug/fault_inject.py, mm/debug/page_owner.py,
        # mm/debug/debug_pagealloc.py): should_fail(gfp, order) -> True fails the
        # allocation; post_alloc(pfn, order, gfp, kind) before the block is
        # used; free_prepare(pfn, order) once a free is known to be valid
        self.should_fail = None
        self.post_alloc = None
        self.free_prepare = None
        self._base = mem_map.base
        self._nr_pfns = mem_map.nr_pfns
        self._r8, self._r16, self._r32 = hw.read8, hw.read16, hw.read32
        self._w32, self._w64, self._fill = hw.write32, hw.write64, hw.fill

    # -- boot
    def free_range(self, start_pfn, end_pfn):
        """Hand [start_pfn, end_pfn) to the buddy in maximal aligned blocks
        (memblock_free_all): a few records per 4 MiB, not per frame."""
        pfn = start_pfn
        while pfn < end_pfn:
            z = self.zones[Z.zone_for_pfn(pfn)]
            end = min(end_pfn, z.zone_end_pfn)
            order = lowest_set_order(pfn)
            while pfn + (1 << order) > end:
                order -= 1
            self._link_free(z, pfn, order)
            z.managed_pages += 1 << order
            z.free_pages += 1 << order
            pfn += 1 << order

    def _link_free(self, z, pfn, order):
        """Make pfn the head of a free block of `order` on z's free list
        (PfnList.push inlined: this runs on every split and every free)."""
        base, w32 = self._base, self._w32
        a = base + (pfn << RECORD_SHIFT)
        self._w64(a, FREE_HEAD_FLAGS | (order << 16))     # flags, order; count 0
        lst = z.free_area[order]
        first = lst.first
        w32(a + OFF_NEXT, first)
        w32(a + OFF_PREV, NIL)
        if first != NIL:
            w32(base + (first << RECORD_SHIFT) + OFF_PREV, pfn)
        else:
            lst.last = pfn
        lst.first = pfn
        lst.n += 1

    # -- allocation
    def alloc_pages(self, gfp, order, kind=KIND_KERNEL):
        """Physical address of 2^order free frames, or None (ENOMEM)."""
        if type(order) is not int or not 0 <= order <= MAX_ORDER:
            raise KernelError("EINVAL", "order %r out of range 0..%d" % (order, MAX_ORDER))
        if self.should_fail is not None and self.should_fail(gfp, order):
            self.alloc_fail += 1        # prepare_alloc_pages: no reclaim, no OOM kill
            return None
        high = gfp_zone(gfp)
        pfn = self.get_page_from_freelist(order, Z.ALLOC_WMARK_LOW, high)
        if pfn == NIL:
            pfn = self._slowpath(gfp, order, high)
            if pfn == NIL:
                self.alloc_fail += 1
                return None
        self.pgalloc[self.hit_zone] += 1 << order
        flags = kind << KIND_SHIFT
        if gfp & F_COMP and order:
            flags |= PG_head
            self._mark_tails(pfn, order)
        # flags, order and a refcount of 1, in one 64-bit store
        self._w64(self._base + (pfn << RECORD_SHIFT), flags | (order << 16) | COUNT_ONE)
        if self.post_alloc is not None:
            self.post_alloc(pfn, order, gfp, kind)
        pa = pfn << PAGE_SHIFT
        if gfp & F_ZERO:
            self._fill(pa, 0, PAGE_SIZE << order)
        return pa

    def alloc_page(self, gfp, kind=KIND_KERNEL):
        return self.alloc_pages(gfp, 0, kind)

    def get_page_from_freelist(self, order, alloc_flags, high):
        """The pfn of a block taken from the first zone (high down to DMA)
        that passes the watermark, or NIL; the zone's index is left in
        self.hit_zone (no tuple: this is the hot path, and the guest VM
        would allocate one per call)."""
        mark_idx = alloc_flags & Z.ALLOC_WMARK_MASK
        check = not alloc_flags & Z.ALLOC_NO_WATERMARKS
        zones = self.zones
        plain = not alloc_flags & Z.ALLOC_MIN_RESERVE
        i = high
        while i >= 0:
            z = zones[i]
            if z.managed_pages:
                if check:
                    if plain:
                        # zone_watermark_ok inlined; its free-block test is rmqueue's
                        if z.free_pages - (1 << order) + 1 <= z.watermark[mark_idx] + z.lowmem_reserve[high]:
                            i -= 1
                            continue
                    elif not zone_watermark_ok(z, order, z.watermark[mark_idx], high, alloc_flags):
                        i -= 1
                        continue
                pfn = self.rmqueue(z, order)
                if pfn != NIL:
                    self.hit_zone = i
                    return pfn
            i -= 1
        return NIL

    def _slowpath(self, gfp, order, high):
        if self.wakeup_kswapd is not None:
            self.wakeup_kswapd()            # below the low watermark: wake_all_kswapds
        alloc_flags = gfp_to_alloc_flags(gfp)
        pfn = self.get_page_from_freelist(order, alloc_flags, high)
        if pfn != NIL or not gfp & F_DIRECT_RECLAIM or self.reclaim is None:
            return pfn
        for _ in range(reclaim_rounds(gfp, order)):
            self.allocstall += 1
            progress = self.reclaim(gfp, order)
            pfn = self.get_page_from_freelist(order, alloc_flags, high)
            if pfn != NIL or not progress:
                return pfn
        return pfn

    def rmqueue(self, z, order):
        """Take a block of `order` from zone z, splitting a larger one (expand)."""
        area = z.free_area
        o = order
        while o <= MAX_ORDER and not area[o].n:
            o += 1
        if o > MAX_ORDER:
            return NIL
        pfn = area[o].pop()
        while o > order:
            o -= 1
            self._link_free(z, pfn + (1 << o), o)
        z.free_pages -= 1 << order
        return pfn

    def _mark_tails(self, pfn, order):
        w32, base = self._w32, self._base
        for t in range(pfn + 1, pfn + (1 << order)):
            a = base + (t << RECORD_SHIFT)
            w32(a, PG_tail)
            w32(a + OFF_NEXT, pfn)

    # -- free
    def zone_of(self, pfn):
        for z in self.zones:
            if z.zone_start_pfn <= pfn < z.zone_end_pfn and z.managed_pages:
                return z
        return None

    def check_free(self, pa, order):
        """The zone a free of (pa, order) returns to; KernelError on bad input."""
        z = self.zone_of(pa >> PAGE_SHIFT) if type(pa) is int else None
        self._check(pa, order, z, self._r32(self._base + ((pa >> PAGE_SHIFT) << RECORD_SHIFT))
                    if z is not None and 0 <= pa >> PAGE_SHIFT < self._nr_pfns else 0)
        return z

    def _check(self, pa, order, z, rec):
        """Raise the KernelError a free of (pa, order) deserves; `rec` is the
        first word of the frame's record (flags | order << 16)."""
        if type(order) is not int or not 0 <= order <= MAX_ORDER:
            raise KernelError("EINVAL", "order %r out of range 0..%d" % (order, MAX_ORDER))
        if type(pa) is not int or pa < 0 or pa & ((PAGE_SIZE << order) - 1):
            raise KernelError("EINVAL", "address %s not aligned to order %d" % (hexs(pa), order))
        if z is None or pa >> PAGE_SHIFT >= self._nr_pfns:
            raise KernelError("EINVAL", "0x%x is not managed memory" % pa)
        f = rec & 0xFFFF
        if f & PG_buddy:
            raise KernelError("EINVAL", "double free of 0x%x" % pa)
        if f & PG_tail or (f >> KIND_SHIFT) in (KIND_NONE, KIND_FREE):
            raise KernelError("EINVAL", "0x%x was not allocated" % pa)
        got = (rec >> 16) & 0xFF
        if got != order:
            raise KernelError("EINVAL", "0x%x has order %d, freed as order %d" % (pa, got, order))

    def free_pages(self, pa, order):
        """Return the block at pa; bad input raises KernelError and changes
        nothing. The checks of _check run inline first (this is the hot
        path); any doubt goes to _check for the precise error."""
        z = None
        rec = 0
        if type(pa) is int and type(order) is int and 0 <= order <= MAX_ORDER \
                and pa >= 0 and not pa & ((PAGE_SIZE << order) - 1):
            pfn = pa >> PAGE_SHIFT
            if pfn < self._nr_pfns:
                for zz in self.zones:
                    if zz.zone_start_pfn <= pfn < zz.zone_end_pfn and zz.managed_pages:
                        z = zz
                        break
                if z is not None:
                    rec = self._r32(self._base + (pfn << RECORD_SHIFT))
                    k = (rec >> KIND_SHIFT) & 0xF
                    if rec & (PG_buddy | PG_tail) or k == KIND_NONE or k == KIND_FREE \
                            or (rec >> 16) & 0xFF != order:
                        z = None
        if z is None:
            self._check(pa, order, self.zone_of(pa >> PAGE_SHIFT) if type(pa) is int and pa >= 0
                        else None, rec)
            raise KernelError("EINVAL", "bad free of %s order %s" % (hexs(pa), order))
        if self.free_prepare is not None:
            self.free_prepare(pfn, order)
        base = self._base
        if rec & PG_head:
            self._fill(base + (pfn << RECORD_SHIFT), 0, RECORD_SIZE << order)
        else:
            self._fill(base + (pfn << RECORD_SHIFT), 0, RECORD_SIZE)
        self.pgfree += 1 << order
        z.free_pages += 1 << order
        self._merge(z, pfn, order)

    def free_page(self, pa):
        self.free_pages(pa, 0)

    def _merge(self, z, pfn, order):
        base, r32, fill = self._base, self._r32, self._fill
        area = z.free_area
        lo, hi = z.zone_start_pfn, z.zone_end_pfn
        while order < MAX_ORDER:
            b = pfn ^ (1 << order)
            if b < lo or b >= hi:
                break
            a = base + (b << RECORD_SHIFT)
            v = r32(a)
            if not v & PG_buddy or (v >> 16) & 0xFF != order:
                break
            area[order].remove(b)
            fill(a, 0, RECORD_SIZE)
            pfn &= ~(1 << order)
            order += 1
        self._link_free(z, pfn, order)

    # -- reporting
    def nr_free_pages(self):
        return sum(z.free_pages for z in self.zones)

    def managed_pages(self):
        return sum(z.managed_pages for z in self.zones)

    def free_lists(self):
        """{(zone, order): sorted pfns}: the whole free state, for tests."""
        out = {}
        for z in self.zones:
            for o in range(NR_ORDERS):
                out[(z.idx, o)] = sorted(z.free_area[o].pfns())
        return out


def hexs(v):
    return "0x%x" % v if type(v) is int else repr(v)


def init_zones(hw, mem_map, ram_ranges, free_ranges):
    """Zones spanning the RAM, the buddy over them, seeded with the free
    ranges (bytes) memblock left; watermarks computed from the result."""
    zones = [Z.Zone(i, mem_map) for i in range(len(Z.ZONE_NAMES))]
    Z.span_zones(zones, ram_ranges)
    buddy = Buddy(hw, mem_map, zones)
    for s, e in free_ranges:
        buddy.free_range(s >> PAGE_SHIFT, e >> PAGE_SHIFT)
    buddy.min_free_kbytes = Z.calculate_min_free_kbytes(zones)
    Z.setup_per_zone_wmarks(zones, buddy.min_free_kbytes)
    Z.setup_per_zone_lowmem_reserve(zones)
    return buddy
