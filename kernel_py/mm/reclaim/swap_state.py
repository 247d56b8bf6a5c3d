# The swap cache (Linux mm/swap_state.c): a page read back from swap keeps
# its slot, so that
#   - reclaim can put it out again without writing it when no PTE has
#     dirtied it since (the copy on the disk is still the page): the PTEs
#     get the old swap entry back and the frame is freed (vmscan.pageout_cached);
#     a dirtied one is written to the same slot;
#   - a swap entry that fork left in several processes brings back one
#     shared page: the second fault finds it here (a minor fault) and maps
#     it copy-on-write, as the first process mapped it (read-only while the
#     slot has other users).
#
# State: PG_swapcache in the page's mem_map flags; the page's swap entry in
# a page_ext array (one word per frame, like the anon rmap's: dicts keyed
# by consecutive pfns degrade in MicroPython); the slot's page in the area's
# `cache` array (pfn + 1); SWAP_HAS_CACHE in the slot's map byte keeps the
# slot allocated while its PTE count is 0. The cache holds no reference on
# the page: the page stays in it while mapped, and leaves it when it is
# freed (AnonLru.release), written to by a reused COW fault (its copy is
# going stale and the slot may have other users: wp_fault), or swapped off.
# A page swapped in while swap is over half full (vm_swap_full) or during
# swapoff does not stay. meminfo SwapCached counts the pages here.

from kernel_py.mm.types import (
    PG_swapcache, RECORD_SHIFT, SWAP_HAS_CACHE, swp_entry, swp_offset, swp_type,
)
from kernel_py.mm.page.page_ext import EXT_MASK, EXT_SHIFT, WORD_SHIFT, alloc_page_ext


class SwapCache:
    """k.swapcache."""

    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        self.base = k.mem_map.base
        self.swap = k.swap
        self.ext = alloc_page_ext(k.buddy, k.mem_map.nr_pfns, WORD_SHIFT, "the swap cache")  # pfn -> swap entry
        self.nr = 0                 # pages in the cache (meminfo SwapCached)
        self.add_total = 0          # /proc/vmstat: pages kept at swap-in
        self.find_total = 0         # swap-ins served from the cache
        self.reuse_total = 0        # pageouts that found the disk copy still good

    def _ext(self, pfn):
        return self.ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3)

    def add(self, pa, si, off):
        """The page just read from slot off of area si stays with it."""
        pfn = pa >> 12
        hw = self.hw
        hw.write64(self._ext(pfn), swp_entry(si.type, off))
        a = self.base + (pfn << RECORD_SHIFT)
        hw.write16(a, hw.read16(a) | PG_swapcache)
        si.cache[off] = pfn + 1
        si.map[off] |= SWAP_HAS_CACHE
        self.nr += 1
        self.add_total += 1

    def lookup(self, si, off):
        """pa of the slot's page in the cache, or None."""
        v = si.cache[off]
        return (v - 1) << 12 if v else None

    def entry_of(self, pfn):
        """(SwapInfo, slot) of a page in the cache, or None."""
        e = self.hw.read64(self._ext(pfn))
        if not e:
            return None
        return self.swap.areas[swp_type(e)], swp_offset(e)

    def delete(self, pfn):
        """The page leaves the cache; the slot goes when nothing else holds it."""
        hw = self.hw
        ea = self._ext(pfn)
        e = hw.read64(ea)
        if not e:
            return
        hw.write64(ea, 0)
        a = self.base + (pfn << RECORD_SHIFT)
        hw.write16(a, hw.read16(a) & ~PG_swapcache)
        si, off = self.swap.areas[swp_type(e)], swp_offset(e)
        si.cache[off] = 0
        self.swap.put_cache_slot(si, off)
        self.nr -= 1

    def drop_area(self, si):
        """swapoff: every page of area si leaves the cache."""
        cache = si.cache
        for off in range(si.max):
            if cache[off]:
                self.delete(cache[off] - 1)
