# kmalloc (Linux: mm/slab_common.c, include/linux/slab.h): general-purpose
# allocations from size-class caches kmalloc-8 .. kmalloc-8k, larger ones
# straight from the buddy as compound pages. kfree needs no size: the page's
# mem_map record names the owner (slab cache id, SLOB page, or a
# kmalloc_large block). Results are physically contiguous, direct-mapped.
#
# GFP: the mask goes down to the buddy for new slabs (zone, reclaim, atomic
# reserves); __GFP_ZERO clears the object; __GFP_DMA and __GFP_RECLAIMABLE
# pick the dma-kmalloc-N / kmalloc-rcl-N caches, created on first use.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.gfp import F_COMP, F_DMA, F_RECLAIMABLE, F_ZERO, GFP_KERNEL
from kernel_py.mm.types import KIND_KERNEL, KIND_SHIFT, KIND_SLAB, OFF_AUX, OFF_ORDER, PG_tail
from kernel_py.mm.slab.common import (
    DMB, SLAB_CACHE_DMA, SLAB_RECLAIM_ACCOUNT, SLOB_AUX, get_order,
)
from kernel_py.mm.slab.slob import get_slob
from kernel_py.mm.slab.slub_fast import kmalloc_pop, slab_push
from kernel_py.arch.x86.native import VIPER
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

KMALLOC_SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
KMALLOC_MIN_SIZE = 8
KMALLOC_MAX_CACHE_SIZE = 8192
ZERO_SIZE_PTR = 16            # kmalloc(0): a non-NULL pointer that faults
LARGE_AUX = 0x4B              # aux byte of a kmalloc_large head page ('K')
KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA = 0, 1, 2
TYPE_PREFIX = ("kmalloc-", "kmalloc-rcl-", "dma-kmalloc-")
TYPE_FLAGS = (0, SLAB_RECLAIM_ACCOUNT, SLAB_CACHE_DMA)
TYPE_GFP = (0, F_RECLAIMABLE, F_DMA)
# the fast path tests these bits as a literal (no global lookup)
KMALLOC_TYPE_BITS = 0x11
if F_DMA | F_RECLAIMABLE != KMALLOC_TYPE_BITS:
    raise ImportError("kmalloc: update KMALLOC_TYPE_BITS for gfp.py")


def kmalloc_name(prefix, size):
    if size >= 1024:
        return "%s%dk" % (prefix, size >> 10)
    return "%s%d" % (prefix, size)


def size_index_table():
    """Index of the smallest class holding n bytes, for n = 8*k (k = 0..1024):
    a list lookup replaces Linux's size_index[] + fls() on the fast path."""
    table = []
    c = 0
    for k in range(KMALLOC_MAX_CACHE_SIZE // 8 + 1):
        n = max(k * 8, 1)
        while KMALLOC_SIZES[c] < n:
            c += 1
        table.append(c)
    return table


class Kmalloc:
    def __init__(self, st):
        self.st = st
        self.hw = st.hw
        self.buddy = st.buddy
        self.r32 = st.hw.read32
        self.rec_base = st.rec_base
        self.max_pa = st.max_pa
        self.caches = st.caches
        self.size_index = size_index_table()
        self.kmalloc_caches = [None, None, None]     # per type: list by class
        self.large = 0                               # live kmalloc_large blocks
        if st.default_backend == "slob":
            # SLOB has no size classes: blocks with a size header
            self.slob = get_slob(st)
            self.kmalloc = self.kmalloc_slob
            self.index = None
        else:
            self.slob = None
            self.create_caches(KMALLOC_NORMAL)
            idx = self.size_index
            caches = self.kmalloc_caches[KMALLOC_NORMAL]
            self.index = [caches[idx[k]] for k in range(len(idx))]
        # the viper fast path (slub_fast.kmalloc_pop): (size + 7) >> 3 -> cache id
        self.area = st.area
        self.cache_ids = bytearray(len(self.size_index))
        for k in range(len(self.cache_ids)):
            self.cache_ids[k] = self.index[k].id if self.index else 255
        if st.default_backend != "slub":
            # only SLUB caches take the viper paths: skip the attempt
            self.kfree = self.kfree_py
            if self.slob is None:
                self.kmalloc = self.kmalloc_py

    def create_caches(self, kind):
        caches = []
        for size in KMALLOC_SIZES:
            caches.append(self.st.kmem_cache_create(
                kmalloc_name(TYPE_PREFIX[kind], size), size, 0, TYPE_FLAGS[kind]))
        self.kmalloc_caches[kind] = caches
        return caches

    # --- allocation ----------------------------------------------------------
    def kmalloc_py(self, size, gfp=GFP_KERNEL):
        """Direct-mapped address of size bytes, or None (ENOMEM)."""
        if 0 < size <= KMALLOC_MAX_CACHE_SIZE and not gfp & 0x11:
            return self.index[(size + 7) >> 3].alloc(gfp)
        return self.kmalloc_slow(size, gfp)

    def kmalloc_viper(self, size, gfp=GFP_KERNEL):
        """kmalloc in the guest: the SLUB cpu-freelist pop in viper."""
        va = kmalloc_pop(self.area, self.cache_ids, size, gfp)
        if va:
            return va
        return self.kmalloc_py(size, gfp)

    kmalloc = kmalloc_viper if VIPER else kmalloc_py

    def kmalloc_slow(self, size, gfp):
        if type(size) is not int or size < 0:
            raise KernelError("EINVAL", "kmalloc size %r" % (size,))
        if size == 0:
            return ZERO_SIZE_PTR
        if size > KMALLOC_MAX_CACHE_SIZE:
            return self.kmalloc_large(size, gfp)
        kind = KMALLOC_DMA if gfp & F_DMA else KMALLOC_RECLAIM
        caches = self.kmalloc_caches[kind] or self.create_caches(kind)
        return caches[self.size_index[(size + 7) >> 3]].alloc(gfp)

    def kmalloc_slob(self, size, gfp=GFP_KERNEL):
        if type(size) is not int or size < 0:
            raise KernelError("EINVAL", "kmalloc size %r" % (size,))
        if size == 0:
            return ZERO_SIZE_PTR
        if size > PAGE_SIZE - self.slob.KMALLOC_HDR:
            return self.kmalloc_large(size, gfp)
        if self.st.should_failslab is not None and self.st.failslab(None, gfp, size):
            return None
        return self.slob.kmalloc(size, gfp)

    def kmalloc_large(self, size, gfp):
        """Whole pages from the buddy, as a compound block (order from size)."""
        order = get_order(size)
        pa = self.buddy.alloc_pages((gfp & ~F_ZERO) | F_COMP, order, KIND_KERNEL)
        if pa is None:
            return None
        self.hw.write8(self.rec_base + ((pa >> PAGE_SHIFT) << 4) + OFF_AUX, LARGE_AUX)
        if gfp & F_ZERO:
            self.hw.fill(pa, 0, size)
        self.st.large_pages += 1 << order
        self.large += 1
        return pa + DMB

    def kzalloc(self, size, gfp=GFP_KERNEL):
        return self.kmalloc(size, gfp | F_ZERO)

    # --- free ----------------------------------------------------------------
    def kfree_viper(self, va):
        """kfree in the guest: the SLUB cpu-freelist push in viper."""
        if va is None or slab_push(self.area, va, -1):
            self.kfree_py(va)

    def kfree_py(self, va):
        """Free what kmalloc returned; NULL and ZERO_SIZE_PTR are no-ops."""
        if va is None:
            return
        pa = va - DMB
        if 0 <= pa < self.max_pa:
            v = self.r32(self.rec_base + ((pa >> PAGE_SHIFT) << 4))
            if (v >> KIND_SHIFT) & 15 == KIND_SLAB:
                s = self.caches[v >> 24]
                if s is not None:
                    s.slab_free(pa)
                    return
        self.kfree_slow(va, pa)

    kfree = kfree_viper if VIPER else kfree_py

    def kfree_slow(self, va, pa):
        if va <= ZERO_SIZE_PTR:
            return
        kind, aux, flags = self.owner(va, pa)
        if kind == KIND_SLAB and aux == SLOB_AUX and self.st.slob is not None:
            self.st.slob.kfree(pa)
            return
        if kind == KIND_KERNEL and aux == LARGE_AUX and not flags & PG_tail:
            order = self.hw.read8(self.rec_base + ((pa >> PAGE_SHIFT) << 4) + OFF_ORDER)
            if pa & (PAGE_SIZE - 1):
                raise KernelError("EINVAL", "0x%x points into a kmalloc_large block at offset %d"
                                  % (va, pa & (PAGE_SIZE - 1)))
            self.buddy.free_pages(pa, order)
            self.st.large_pages -= 1 << order
            self.large -= 1
            return
        if flags & PG_tail:
            head = self.st.mem_map.compound_head(pa >> PAGE_SHIFT)
            if self.st.mem_map.aux(head) == LARGE_AUX:
                raise KernelError("EINVAL", "0x%x points into a kmalloc_large block at offset %d"
                                  % (va, pa - (head << PAGE_SHIFT)))
        raise KernelError("EINVAL", "kfree(0x%x): not allocated by kmalloc" % va)

    def owner(self, va, pa):
        if pa < 0 or pa >= self.max_pa:
            raise KernelError("EINVAL", "kfree(0x%x): not a direct-mapped address" % va)
        v = self.r32(self.rec_base + ((pa >> PAGE_SHIFT) << 4))
        return (v >> KIND_SHIFT) & 15, v >> 24, v & 0xFFF

    # --- size queries ------------------------------------------------------------
    def ksize(self, va):
        """Usable size of the object at va."""
        pa = va - DMB
        kind, aux, flags = self.owner(va, pa)
        if kind == KIND_SLAB and aux == SLOB_AUX and self.st.slob is not None:
            return self.st.slob.ksize(pa)
        if kind == KIND_SLAB and self.caches[aux] is not None:
            s = self.caches[aux]
            s.check_pointer(pa)
            return s.object_size
        if kind == KIND_KERNEL and aux == LARGE_AUX and not flags & PG_tail and not pa & (PAGE_SIZE - 1):
            return PAGE_SIZE << self.hw.read8(self.rec_base + ((pa >> PAGE_SHIFT) << 4) + OFF_ORDER)
        raise KernelError("EINVAL", "ksize(0x%x): not allocated by kmalloc" % va)

    def krealloc(self, va, new_size, gfp=GFP_KERNEL):
        """Grow or shrink; the contents up to the smaller size are kept.
        On failure the old object is untouched and None is returned."""
        if va is None or va <= ZERO_SIZE_PTR:
            return self.kmalloc(new_size, gfp)
        if new_size == 0:
            self.kfree(va)
            return ZERO_SIZE_PTR
        old = self.ksize(va)
        if new_size <= old:
            if gfp & F_ZERO:
                self.hw.fill(va - DMB + new_size, 0, old - new_size)
            return va
        new = self.kmalloc(new_size, gfp)
        if new is None:
            return None
        self.hw.copy(new - DMB, va - DMB, old)
        self.kfree(va)
        return new

    def cache_for(self, size, gfp=GFP_KERNEL):
        """The kmem_cache serving kmalloc(size, gfp), or None."""
        if self.slob is not None or not 0 < size <= KMALLOC_MAX_CACHE_SIZE:
            return None
        kind = KMALLOC_NORMAL
        if gfp & F_DMA:
            kind = KMALLOC_DMA
        elif gfp & F_RECLAIMABLE:
            kind = KMALLOC_RECLAIM
        caches = self.kmalloc_caches[kind] or self.create_caches(kind)
        return caches[self.size_index[(size + 7) >> 3]]
