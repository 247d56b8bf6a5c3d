# SLOB (Linux: mm/slob.c, "simple list of blocks"): the smallest-footprint
# allocator. Order-0 pages shared by every SLOB cache sit on three lists by
# request size (small < 256, medium < 1024, large < PAGE_SIZE); an allocation
# walks a list for a page with enough free units and takes the first block
# that fits (first-fit), splitting it. Frees go back into the page's
# address-ordered free list, merging with neighbours; an empty page returns
# to the buddy. kmalloc blocks carry an 8-byte size header; kmem_cache
# objects carry none (the cache knows their size).
#
# Units are 8 bytes. A free block starts with a u32 header:
#     size in units | offset of the next free block (units, 0xFFFF = end) << 16
# The page's record keeps the state in its count field:
#     bits 0-9 free units, bits 12-13 list (0 none, 1-3), bits 16-31 first free.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import KIND_KERNEL, NIL, OFF_AUX, OFF_COUNT
from kernel_py.mm.gfp import F_COMP, F_ZERO
from kernel_py.mm.slab.common import DMB, SLOB_AUX, KmemCache, align_up, get_order
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

SLOB_UNIT = 8
SLOB_UNITS_PER_PAGE = PAGE_SIZE // SLOB_UNIT
SLOB_BREAK1 = 256
SLOB_BREAK2 = 1024
END = 0xFFFF
# A page stays on a list only while it could serve that list's smallest
# request; otherwise every allocation would walk pages that never fit.
LIST_MIN_UNITS = (0, 1, SLOB_BREAK1 // SLOB_UNIT, SLOB_BREAK2 // SLOB_UNIT)
SLOB_MAGIC = 0x510B6B5A       # second word of a live kmalloc header
BIG_AUX = 0x53                # aux of whole pages given to a SLOB cache


def units(size):
    return (size + SLOB_UNIT - 1) // SLOB_UNIT


def get_slob(st):
    """The slab layer's SLOB page lists (st.slob), made on first use."""
    if st.slob is None:
        st.slob = Slob(st)
    return st.slob


class Slob:
    KMALLOC_HDR = 8

    def __init__(self, st):
        self.st = st
        self.hw = st.hw
        self.r32, self.w32 = st.hw.read32, st.hw.write32
        self.rec_base = st.rec_base
        self.lists = (None, st.page_list(), st.page_list(), st.page_list())
        self.nr_pages = 0

    # --- page state ------------------------------------------------------------
    def state(self, pfn):
        v = self.r32(self.rec_base + (pfn << 4) + OFF_COUNT)
        return v & 0x3FF, (v >> 12) & 3, v >> 16

    def set_state(self, pfn, free, lst, first):
        self.w32(self.rec_base + (pfn << 4) + OFF_COUNT, free | (lst << 12) | (first << 16))

    def list_for(self, size):
        if size < SLOB_BREAK1:
            return 1
        if size < SLOB_BREAK2:
            return 2
        return 3

    # --- allocation ------------------------------------------------------------
    def alloc(self, size, align, gfp):
        """slob_alloc: pa of a block of size bytes aligned to align, or None."""
        n = units(size)
        li = self.list_for(size)
        pfn = self.lists[li].first
        while pfn != NIL:
            free, _l, _f = self.state(pfn)
            nxt = self.r32(self.rec_base + (pfn << 4) + 8)
            if free >= n:
                b = self.page_alloc(pfn, n, align)
                if b:
                    return b
            pfn = nxt
        pa = self.st.alloc_slab_pages(gfp, 0, SLOB_AUX)
        if pa is None:
            return None
        pfn = pa >> PAGE_SHIFT
        self.nr_pages += 1
        self.w32(pa, SLOB_UNITS_PER_PAGE | (END << 16))
        self.set_state(pfn, SLOB_UNITS_PER_PAGE, li, 0)
        self.lists[li].push(pfn)
        return self.page_alloc(pfn, n, align)

    def page_alloc(self, pfn, n, align):
        """First fit in one page; 0 if no block fits."""
        r32, w32 = self.r32, self.w32
        page = pfn << PAGE_SHIFT
        free, li, cur = self.state(pfn)
        prev = END
        while cur != END:
            blk = page + cur * SLOB_UNIT
            hdr = r32(blk)
            avail, nxt = hdr & 0xFFFF, hdr >> 16
            delta = (align_up(blk, align) - blk) // SLOB_UNIT if align > SLOB_UNIT else 0
            if avail >= n + delta:
                if delta:
                    # keep the unaligned front as its own free block
                    w32(blk, delta | ((cur + delta) << 16))
                    prev, cur, avail = cur, cur + delta, avail - delta
                    blk = page + cur * SLOB_UNIT
                if avail == n:
                    rest = nxt
                else:
                    rest = cur + n
                    w32(page + rest * SLOB_UNIT, (avail - n) | (nxt << 16))
                if prev == END:
                    first = rest
                else:
                    self.set_next(page, prev, rest)
                    first = self.state(pfn)[2]
                free -= n
                self.set_state(pfn, free, li, first)
                if li and free < LIST_MIN_UNITS[li]:
                    self.lists[li].remove(pfn)
                    self.set_state(pfn, free, 0, first)
                return blk
            prev, cur = cur, nxt
        return 0

    def set_next(self, page, off, nxt):
        a = page + off * SLOB_UNIT
        self.w32(a, (self.r32(a) & 0xFFFF) | (nxt << 16))

    # --- free --------------------------------------------------------------------
    def free(self, b, size):
        """slob_free: return the block [b, b + size) to its page."""
        n = units(size)
        pfn = b >> PAGE_SHIFT
        page = pfn << PAGE_SHIFT
        if self.overlaps_free(pfn, b, n):
            raise KernelError("EINVAL", "double free of SLOB block 0x%x" % (b + DMB))
        free, li, first = self.state(pfn)
        if free + n == SLOB_UNITS_PER_PAGE:
            if li:
                self.lists[li].remove(pfn)
            self.st.free_slab_pages(page, 0)
            self.nr_pages -= 1
            return
        off = (b - page) // SLOB_UNIT
        r32, w32 = self.r32, self.w32
        # find the free blocks around off (the list is address ordered)
        prev, cur = END, first
        while cur != END and cur < off:
            prev, cur = cur, r32(page + cur * SLOB_UNIT) >> 16
        size_u, nxt = n, cur
        if cur != END and off + n == cur:          # merge with the next block
            h = r32(page + cur * SLOB_UNIT)
            size_u, nxt = n + (h & 0xFFFF), h >> 16
        if prev != END:
            ph = r32(page + prev * SLOB_UNIT)
            if prev + (ph & 0xFFFF) == off:         # merge into the previous block
                w32(page + prev * SLOB_UNIT, ((ph & 0xFFFF) + size_u) | (nxt << 16))
            else:
                w32(page + off * SLOB_UNIT, size_u | (nxt << 16))
                w32(page + prev * SLOB_UNIT, (ph & 0xFFFF) | (off << 16))
        else:
            w32(page + off * SLOB_UNIT, size_u | (nxt << 16))
            first = off
        if not li:
            want = self.list_for(size)
            if free + n >= LIST_MIN_UNITS[want]:
                li = want
                self.lists[li].push(pfn)
        self.set_state(pfn, free + n, li, first)

    def overlaps_free(self, pfn, b, n):
        page = pfn << PAGE_SHIFT
        start = (b - page) // SLOB_UNIT
        cur = self.state(pfn)[2]
        while cur != END:
            h = self.r32(page + cur * SLOB_UNIT)
            if cur < start + n and start < cur + (h & 0xFFFF):
                return True
            cur = h >> 16
        return False

    # --- kmalloc with size headers -------------------------------------------
    def kmalloc(self, size, gfp):
        b = self.alloc(size + self.KMALLOC_HDR, SLOB_UNIT, gfp)
        if not b:
            return None
        self.w32(b, size)
        self.w32(b + 4, SLOB_MAGIC)
        if gfp & F_ZERO:
            self.hw.fill(b + self.KMALLOC_HDR, 0, size)
        return b + self.KMALLOC_HDR + DMB

    def header(self, pa):
        """The header of the kmalloc block at pa; KernelError if none."""
        b = pa - self.KMALLOC_HDR
        if pa & (SLOB_UNIT - 1) or (pa & (PAGE_SIZE - 1)) < self.KMALLOC_HDR:
            raise KernelError("EINVAL", "0x%x is not a SLOB kmalloc block" % (pa + DMB))
        if self.overlaps_free(b >> PAGE_SHIFT, b, 1):
            raise KernelError("EINVAL", "double free of SLOB kmalloc block 0x%x" % (pa + DMB))
        if self.r32(b + 4) != SLOB_MAGIC:
            raise KernelError("EINVAL", "0x%x is not the start of a SLOB kmalloc block" % (pa + DMB))
        return b, self.r32(b)

    def kfree(self, pa):
        b, size = self.header(pa)
        self.w32(b + 4, 0)
        self.free(b, size + self.KMALLOC_HDR)

    def ksize(self, pa):
        return align_up(self.header(pa)[1], SLOB_UNIT)


class SlobCache(KmemCache):
    backend = "slob"
    uses_freeptr = False

    def setup(self):
        self.slob = get_slob(self.st)
        self.size = align_up(self.object_size, self.align)
        self.big = self.size >= PAGE_SIZE
        self.active = 0
        self.pages = 0
        # SLOB objects carry no header and share pages with every other SLOB
        # cache and kmalloc: only this set tells this cache's objects from
        # the rest, so that kmem_cache_free of a foreign pointer is refused
        # (physical addresses: small ints)
        self.live = set()

    def alloc(self, gfp=0):
        if self.st.should_failslab is not None and self.st.failslab(self, gfp):
            return None
        if self.big:
            pa = self.alloc_big(gfp)
        else:
            pa = self.slob.alloc(self.size, self.align, gfp)
        if not pa:
            return None
        self.active += 1
        self.live.add(pa)
        if self.ctor:
            self.run_ctor(pa)            # SLOB constructs on every allocation
        if gfp & F_ZERO:
            self.hw.fill(pa, 0, self.object_size)
        return pa + DMB

    def alloc_big(self, gfp):
        order = get_order(self.size)
        pa = self.st.buddy.alloc_pages((gfp & ~F_ZERO) | (F_COMP if order else 0),
                                       order, KIND_KERNEL)
        if pa is None:
            return None
        self.hw.write8(self.st.rec_base + ((pa >> PAGE_SHIFT) << 4) + OFF_AUX, BIG_AUX)
        self.slob.nr_pages += 1 << order
        return pa

    def free(self, va):
        pa = va - DMB
        info = self.st.page_info(pa)
        if info is None or pa not in self.live:
            raise KernelError("EINVAL", "0x%x is not a live object of %s" % (va, self.name))
        if self.big:
            if info != (KIND_KERNEL, BIG_AUX) or pa & (PAGE_SIZE - 1):
                raise KernelError("EINVAL", "0x%x is not an object of %s" % (va, self.name))
            order = get_order(self.size)
            self.st.buddy.free_pages(pa, order)
            self.slob.nr_pages -= 1 << order
        else:
            if info != (self.st.kind_slab, SLOB_AUX) or pa & (self.align - 1):
                raise KernelError("EINVAL", "0x%x is not an object of %s" % (va, self.name))
            self.slob.free(pa, self.size)
        self.live.discard(pa)
        self.active -= 1

    def check_pointer(self, pa):
        pass

    def counts(self):
        return self.active, self.active, 0, 0

    def objs_per_slab(self):
        return max(1, PAGE_SIZE // self.size)

    def pages_per_slab(self):
        return 1 << get_order(self.size) if self.big else 1
