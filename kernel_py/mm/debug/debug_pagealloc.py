# DEBUG_PAGEALLOC (Linux `debug_pagealloc=on`, mm/debug_page_alloc.c and
# x86's __kernel_map_pages): a free page is not mapped in the kernel's
# direct map, so a use-after-free through the direct map faults at the
# faulting instruction, and the #PF report names the page's last owner
# (page_owner.py records ownership whenever this is on).
#
# The direct map is then built from 4 KiB pages (init_mm.py; one huge page
# could not lose a single frame), and the page table of each 2 MiB is kept
# in `pts` so a frame's PTE is found with arithmetic. Unmapping clears the
# present bit and keeps the frame's address (as set_memory_np does) and is
# followed by invlpg; mapping needs no flush, the TLB never holds
# not-present entries (SDM 3A 4.10.2.3).
#
# Linux unmaps a page in free_pages_prepare, before it reaches a per-CPU
# list; here the fault path pops the pcp list without a call, so with this
# on pcp.py runs the list with batch 1 and high 0: every user page freed
# goes back to the buddy, out of the direct map. The buddy keeps its free lists in
# mem_map, never in the frames, so it never touches an unmapped page; nor
# does any other kernel code, since physical accessors (hw.read64(pa)...)
# go through the same direct map and would fault too.

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm.debug.page_owner import PageOwner, param_on
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PTE_ADDR_MASK, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW

PAGE_KERNEL_NP = _PAGE_RW | _PAGE_NX | _PAGE_GLOBAL    # PAGE_KERNEL without P
PMD_PAGES_SHIFT = 9


def enabled(params):
    return param_on(params, "debug_pagealloc")


def pte_addr(pts, pfn):
    return pts[pfn >> PMD_PAGES_SHIFT] + ((pfn & 511) << 3)


def unmap_free_blocks(hw, pts, buddy):
    """At takeover, before the new tables are loaded (no flush needed):
    every block on the buddy's free lists leaves the direct map, as Linux's
    memblock_free_all -> __free_pages_core does through free_pages_prepare."""
    w64 = hw.write64
    n = 0
    for z in buddy.zones:
        for o in range(len(z.free_area)):
            for pfn in z.free_area[o].pfns():
                for p in range(pfn, pfn + (1 << o)):
                    w64(pte_addr(pts, p), (p << PAGE_SHIFT) | PAGE_KERNEL_NP)
                n += 1 << o
    return n


class DebugPagealloc:
    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        self.pts = k.init_mm.direct_pts
        self._w64, self._r64 = k.hw.write64, k.hw.read64
        self.maps = 0
        self.unmaps = 0

    def map_pages(self, pfn, order):
        """__kernel_map_pages(page, n, 1): back in the direct map."""
        pts, w64 = self.pts, self._w64
        for p in range(pfn, pfn + (1 << order)):
            w64(pts[p >> 9] + ((p & 511) << 3), (p << PAGE_SHIFT) | PAGE_KERNEL_NP | _PAGE_PRESENT)
        self.maps += 1

    def unmap_pages(self, pfn, order):
        """__kernel_map_pages(page, n, 0): out of the direct map, flushed."""
        pts, w64, invlpg = self.pts, self._w64, self.hw.invlpg
        for p in range(pfn, pfn + (1 << order)):
            w64(pts[p >> 9] + ((p & 511) << 3), (p << PAGE_SHIFT) | PAGE_KERNEL_NP)
            invlpg(DIRECT_MAP_BASE + (p << PAGE_SHIFT))
        self.unmaps += 1

    def unmapped(self, pfn):
        """True if pfn's direct-map PTE is not present."""
        if pfn >> 9 >= len(self.pts) or self.pts[pfn >> 9] is None:
            return False
        e = self._r64(pte_addr(self.pts, pfn))
        return not e & _PAGE_PRESENT and e & PTE_ADDR_MASK == pfn << PAGE_SHIFT


class PageDebug:
    """The buddy's post_alloc / free_prepare hooks for page_owner and
    debug_pagealloc, installed only when one of them is on."""

    def __init__(self, k):
        self.k = k
        self.dp = dp = DebugPagealloc(k) if k.init_mm.direct_pts is not None else None
        if dp is not None:              # page_owner's own table must be mapped too
            k.buddy.post_alloc = lambda pfn, order, gfp, kind: dp.map_pages(pfn, order)
            k.buddy.free_prepare = dp.unmap_pages
        self.owner = owner = PageOwner(k)
        set_owner, reset_owner = owner.set_owner, owner.reset_owner
        if dp is None:
            k.buddy.post_alloc = set_owner
            k.buddy.free_prepare = reset_owner
            return
        map_pages, unmap_pages = dp.map_pages, dp.unmap_pages

        def post_alloc(pfn, order, gfp, kind):
            map_pages(pfn, order)
            set_owner(pfn, order, gfp, kind)

        def free_prepare(pfn, order):
            reset_owner(pfn, order)
            unmap_pages(pfn, order)

        k.buddy.post_alloc = post_alloc
        k.buddy.free_prepare = free_prepare

    def describe_fault(self, va):
        """The fault report's explanation of a direct-map address, or None."""
        if self.dp is None or not DIRECT_MAP_BASE <= va < DIRECT_MAP_BASE + (len(self.dp.pts) << 21):
            return None
        pfn = (va - DIRECT_MAP_BASE) >> PAGE_SHIFT
        if not self.dp.unmapped(pfn):
            return None
        text = self.owner.describe_freed(pfn)
        return "freed page pfn 0x%x, %s" % (pfn, text or "last owner: unknown")


def page_debug_init(k):
    """Boot, right after the takeover: k.page_debug (None when both
    page_owner and debug_pagealloc are off: the allocator pays nothing)."""
    if not (param_on(k.params, "page_owner") or enabled(k.params)):
        k.page_debug = None
        return None
    k.page_debug = PageDebug(k)
    if k.page_debug.dp is not None:
        k.printk("debug_pagealloc: direct map in 4 KiB pages, %d free pages unmapped"
                 % k.init_mm.unmapped_free)
    k.printk("page_owner: %d early allocated blocks" % k.page_debug.owner.early)
    return k.page_debug


__all__ = ["DebugPagealloc", "PageDebug", "page_debug_init", "unmap_free_blocks", "enabled"]
