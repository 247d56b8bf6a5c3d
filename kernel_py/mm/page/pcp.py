# Per-CPU page lists (Linux's struct per_cpu_pages, mm/page_alloc.c's
# rmqueue_pcplist / free_unref_page) for the order-0 frames of user memory:
# a Python list of frames taken from the buddy `batch` at a time and given
# back `batch` at a time above `high`, so a page fault or a munmap costs a
# list pop/append instead of a trip through the zones and free lists.
#
# Frames on the list are allocated as far as the buddy is concerned (as in
# Linux, they are not in NR_FREE_PAGES); their mem_map records say
# KIND_ANON with count 1, ready to map. They are not zeroed: whoever maps
# one for a fresh page zeroes it (zero_page()), a COW copy overwrites it.

from array import array

from kernel_py.mm.gfp import GFP_HIGHUSER_MOVABLE
from kernel_py.mm.page.pcp_fast import split_records
from kernel_py.mm.types import KIND_ANON, KIND_SHIFT, RECORD_SHIFT, RECORD_SIZE
from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.arch.x86.native import VIPER

PCP_BATCH = 32          # frames per refill (Linux: 31 for a few hundred MiB)
PCP_ORDER = 5           # refill with one 2^5 block, split_page()d
PCP_HIGH = 6 * PCP_BATCH


class PerCpuPages:
    def __init__(self, k, batch=PCP_BATCH, high=PCP_HIGH, gfp=GFP_HIGHUSER_MOVABLE):
        pd = k.page_debug
        if pd is not None and pd.dp is not None:
            # debug_pagealloc: no list to speak of (batch 1, high 0), so a
            # freed page leaves the direct map at once, as Linux unmaps it
            # in free_pages_prepare, before its pcp list
            batch, high = 1, 0
        self.k = k
        self.buddy = k.buddy
        self.hw = k.hw
        self.batch = batch
        self.high = high
        self.gfp = gfp
        self.list = []
        self.refills = 0
        self.drains = 0
        self._count = k.mem_map.base + 4            # + (pfn << RECORD_SHIFT)
        self.fast_split = VIPER                     # split_records (pcp_fast.py) in refill
        self._split = array("q", [0])

    def __len__(self):
        return len(self.list)

    def alloc(self):
        """A frame (not zeroed), or None when the buddy has none."""
        lst = self.list
        if lst:
            return lst.pop()
        return self.refill()

    def refill(self):
        """Take `batch` frames from the buddy, as one block split into
        order-0 pages when it can (Linux's split_page: every frame becomes
        an allocated order-0 head, freed on its own later), else one by one.
        Returns one of them, or None."""
        alloc = self.buddy.alloc_pages
        gfp = self.gfp
        lst = self.list
        if self.batch == 1 << PCP_ORDER:
            pa = alloc(gfp, PCP_ORDER, KIND_ANON)
            if pa is not None:
                rec = self.k.mem_map.base + ((pa >> 12) << RECORD_SHIFT)
                flags = KIND_ANON << KIND_SHIFT     # order 0, aux 0
                if self.fast_split:
                    self._split[0] = rec
                    split_records(self._split, self.batch, flags)
                    lst.extend(range(pa, pa + (self.batch << 12), PAGE_SIZE))
                else:
                    w32 = self.hw.write32
                    for i in range(self.batch):
                        w32(rec, flags)
                        w32(rec + 4, 1)             # count
                        rec += RECORD_SIZE
                        lst.append(pa + (i << 12))
                self.refills += 1
                pd = self.k.page_debug
                if pd is not None:
                    pd.owner.split(pa >> 12, PCP_ORDER)     # split_page_owner
                return lst.pop()
        for _ in range(self.batch):
            pa = alloc(gfp, 0, KIND_ANON)
            if pa is None:
                break
            lst.append(pa)
        self.refills += 1
        if lst:
            return lst.pop()
        return None

    def free(self, pa):
        """A frame whose last reference is gone (count 0 in its record)."""
        self.hw.write32(self._count + ((pa >> 12) << RECORD_SHIFT), 1)
        lst = self.list
        lst.append(pa)
        if len(lst) > self.high:
            self.drain(self.batch)

    def free_batch(self, pas):
        """free() of each frame of pas in turn, their records already
        saying count 1 (zap_fast.py): the same list, drained the same."""
        lst = self.list
        lst.extend(pas)
        while len(lst) > self.high:
            self.drain(self.batch)

    def drain(self, n=None):
        """Give frames back to the buddy (all of them by default)."""
        lst = self.list
        if n is None or n > len(lst):
            n = len(lst)
        free = self.buddy.free_pages
        for _ in range(n):
            free(lst.pop(0), 0)
        if n:
            self.drains += 1
        return n


def zero_page(hw, pa):
    """Clear a frame. hw.fill is rep stosq: ~2.2 us a page under TCG, where
    a view assigned from a zero bytes object took ~3.1 us (the view's
    allocation and the VM's word loop; measured from the python REPL)."""
    hw.fill(pa, 0, PAGE_SIZE)


def copy_page(hw, dst, src):
    """hw.copy is rep movsq: ~2.4 us a page under TCG, against ~4 us
    assigning one view to another (as zero_page measured)."""
    hw.copy(dst, src, PAGE_SIZE)
