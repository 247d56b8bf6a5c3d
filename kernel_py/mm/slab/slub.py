# SLUB (Linux: mm/slub.c). A slab is one buddy block of 2^order frames cut
# into equal slots. Free objects are chained through a free pointer stored
# inside each free object, in its frame; the only per-slab metadata is the
# mem_map record (inuse and the first free object's index).
#
# One CPU: its active slab ("cpu slab") owns a private freelist; allocating
# pops it and freeing an object of the cpu slab pushes it - the fast path,
# one function each, with no calls but the two memory accesses. Other slabs
# with free objects sit on the partial list (linked through mem_map); full
# slabs are on no list at all, as in Linux.
#
# Free pointers are hardened (CONFIG_SLAB_FREELIST_HARDENED): stored as
# next ^ s.random ^ object, physical addresses. A live object's pointer word
# is cleared when it is handed out, so "does this word decode to a valid
# successor?" tells a free object from a live one: kfree detects double
# frees without any extra state.
#
# The cpu slab and its freelist are two words of the slab layer's fast-path
# area (slub_fast.py): in the guest, kmalloc/kfree and kmem_cache_alloc/free
# pop and push that freelist in viper code and come here only for the rest;
# on the host the Python fast paths below (alloc_py, free_py) do it.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.slab import slub_debug
from kernel_py.mm.slab.slub_fast import (
    G_NOFAST_ALLOC, GLOBAL_ID, NF, W_FAST, W_FREELIST, W_OFFSET, W_PAD, W_PFN_MASK, W_RANDOM, W_SIZE,
    W_SLAB, W_SPAN, cache_pop, slab_push,
)
from kernel_py.mm.gfp import F_ZERO
from kernel_py.mm.slab.common import DMB, FREE_NONE, SLUB_MAX_ORDER, KmemCache, fls
from kernel_py.mm.types import NIL, OFF_COUNT
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE
from kernel_py.arch.x86.native import VIPER

MIN_PARTIAL = 5
NOFAST_WORD = GLOBAL_ID * NF + G_NOFAST_ALLOC
MAX_PARTIAL = 10
MAX_OBJS_PER_SLAB = 0xFFFE


def calculate_order(size, min_objects=8):
    """Smallest order leaving at most 1/16 of the slab unused, with at least
    min_objects objects (Linux's calc_slab_order heuristic)."""
    while min_objects >= 1:
        for fraction in (16, 8, 4):
            for order in range(SLUB_MAX_ORDER + 1):
                slab = PAGE_SIZE << order
                n = slab // size
                if n < min_objects:
                    continue
                if (slab - n * size) * fraction <= slab:
                    return order, min(n, MAX_OBJS_PER_SLAB)
        min_objects //= 2
    order = 0
    while (PAGE_SIZE << order) < size:
        order += 1
    return order, (PAGE_SIZE << order) // size


class SlubCache(KmemCache):
    backend = "slub"
    uses_freeptr = True

    def setup(self):
        self.order, self.objects = calculate_order(self.size)
        self.pfn_mask = ~((1 << self.order) - 1)
        self.span = self.objects * self.size
        self.random = (0x5A5A << 44) | ((0x9E3779B97F4A7C15 * (self.id + 7)) & ((1 << 44) - 1))
        self.random &= ~7
        self.min_partial = min(MAX_PARTIAL, max(MIN_PARTIAL, fls(self.size) // 2))
        # the hot fields, in the fast-path area: words w .. w + NF - 1
        self.area = area = self.st.area
        self.w = w = self.id * NF
        area[w + W_FREELIST] = 0    # cpu_freelist: pa of the cpu slab's first free object
        area[w + W_SLAB] = NIL      # cpu_slab: its pfn
        area[w + W_RANDOM] = self.random
        area[w + W_OFFSET] = self.offset
        area[w + W_SIZE] = self.size
        area[w + W_SPAN] = self.span
        area[w + W_PAD] = self.red_left_pad
        area[w + W_PFN_MASK] = self.pfn_mask
        area[w + W_FAST] = 0 if self.debug() else 1
        self.partial = self.st.page_list()
        self.nr_slabs = 0
        hw = self.hw
        self.r64, self.w64, self.r32, self.w32 = hw.read64, hw.write64, hw.read32, hw.write32
        self.rec_base = self.st.rec_base
        if self.debug():
            # every debug alloc/free takes the checking path
            self.alloc = self.alloc_slow
            self.slab_free = self.free_debug

    def get_cpu_freelist(self):
        return self.area[self.w + W_FREELIST]

    def set_cpu_freelist(self, pa):
        self.area[self.w + W_FREELIST] = pa

    def get_cpu_slab(self):
        return self.area[self.w + W_SLAB]

    def set_cpu_slab(self, pfn):
        self.area[self.w + W_SLAB] = pfn

    cpu_freelist = property(get_cpu_freelist, set_cpu_freelist)
    cpu_slab = property(get_cpu_slab, set_cpu_slab)

    # --- fast paths --------------------------------------------------------
    def alloc_py(self, gfp=0):
        """kmem_cache_alloc: pop the cpu freelist."""
        area, w = self.area, self.w
        obj = area[w]                               # area[w + W_FREELIST]
        if obj and not gfp & F_ZERO and not area[NOFAST_WORD]:
            p = obj + self.offset
            area[w] = self.r64(p) ^ self.random ^ obj
            self.w64(p, 0)
            return obj + DMB
        return self.alloc_slow(gfp)

    def alloc_viper(self, gfp=0):
        """kmem_cache_alloc in the guest: the pop in viper (slub_fast)."""
        va = cache_pop(self.area, self.id, gfp)
        if va:
            return va
        return self.alloc_slow(gfp)

    def slab_free(self, pa):
        """Free the object at pa (its page is known to be ours): push it on
        the cpu freelist, or hand it to the slow path."""
        head = (pa >> PAGE_SHIFT) & self.pfn_mask
        base = (head << PAGE_SHIFT) + self.red_left_pad
        off = pa - base
        size = self.size
        if off < 0 or off % size or off >= self.span:
            raise self.bad_pointer(pa, base)
        p = pa + self.offset
        rnd = self.random
        d = self.r64(p) ^ rnd ^ pa
        if d == 0 or (0 <= d - base < self.span and not (d - base) % size):
            raise KernelError("EINVAL", "double free of %s object 0x%x" % (self.name, pa + DMB))
        area, w = self.area, self.w
        if head == area[w + W_SLAB]:
            self.w64(p, area[w] ^ rnd ^ pa)         # area[w + W_FREELIST]
            area[w] = pa
            return
        self.free_slow(pa, head)

    def free_py(self, va):
        """kmem_cache_free: check that va's page belongs to this cache."""
        pa = va - DMB
        info = self.st.page_info(pa)
        if info is None or info[0] != self.st.kind_slab or info[1] != self.id:
            raise KernelError("EINVAL", "0x%x is not an object of %s" % (va, self.name))
        self.slab_free(pa)

    def free_viper(self, va):
        """kmem_cache_free in the guest: the push in viper when it can."""
        if va is None or slab_push(self.area, va, self.id):
            self.free_py(va)

    alloc = alloc_viper if VIPER else alloc_py
    free = free_viper if VIPER else free_py

    # --- slow paths --------------------------------------------------------
    def bad_pointer(self, pa, base):
        off = pa - base
        if off < 0 or off >= self.span:
            return KernelError("EINVAL", "0x%x is not an object of %s" % (pa + DMB, self.name))
        obj = base + off // self.size * self.size
        return KernelError("EINVAL", "0x%x points into %s object 0x%x at offset %d"
                           % (pa + DMB, self.name, obj + DMB, pa - obj))

    def check_pointer(self, pa):
        """KernelError unless pa is the start of a live object."""
        head = (pa >> PAGE_SHIFT) & self.pfn_mask
        base = (head << PAGE_SHIFT) + self.red_left_pad
        off = pa - base
        if off < 0 or off % self.size or off >= self.span:
            raise self.bad_pointer(pa, base)
        if self.is_free(pa, base):
            raise KernelError("EINVAL", "%s object 0x%x is free" % (self.name, pa + DMB))

    def obj_pa(self, pfn, idx):
        return (pfn << PAGE_SHIFT) + self.red_left_pad + idx * self.size

    def obj_index(self, pfn, pa):
        return (pa - (pfn << PAGE_SHIFT) - self.red_left_pad) // self.size

    def pop(self, gfp):
        """Take an object from the cpu freelist, refilling it if empty."""
        obj = self.cpu_freelist
        if not obj:
            if not self.refill(gfp):
                return 0
            obj = self.cpu_freelist
        p = obj + self.offset
        self.cpu_freelist = self.r64(p) ^ self.random ^ obj
        self.w64(p, 0)
        return obj

    def alloc_slow(self, gfp=0):
        if self.st.should_failslab is not None and self.st.failslab(self, gfp):
            return None
        obj = self.pop(gfp)
        if not obj:
            return None
        if self.debug():
            # a damaged free object is reported and repaired, then handed out
            slub_debug.check_object(self, obj, False)
            slub_debug.init_object(self, obj, True)
        if gfp & F_ZERO:
            self.hw.fill(obj, 0, self.object_size)
        return obj + DMB

    def refill(self, gfp):
        """The cpu slab is exhausted: retire it (full slabs are on no list)
        and freeze a partial slab, or a new one, as the cpu slab."""
        if self.cpu_slab != NIL:
            self.deactivate()
        pfn = self.partial.pop()
        if pfn == NIL:
            pa = self.new_slab(gfp)
            if pa is None:
                return False
            pfn = pa >> PAGE_SHIFT
        rec = self.rec_base + (pfn << 4) + OFF_COUNT
        fidx = self.r32(rec) >> 16
        self.w32(rec, self.objects | (FREE_NONE << 16))   # frozen: all "in use"
        self.cpu_slab = pfn
        self.cpu_freelist = self.obj_pa(pfn, fidx)
        return True

    def new_slab(self, gfp):
        pa = self.st.alloc_slab_pages(gfp & ~F_ZERO, self.order, self.id)
        if pa is None:
            return None
        w64, rnd, size, off = self.w64, self.random, self.size, self.offset
        obj = pa + self.red_left_pad
        debug = self.debug()
        for i in range(self.objects):
            nxt = obj + size if i < self.objects - 1 else 0
            if self.ctor:
                self.run_ctor(obj)
            if debug:
                slub_debug.init_object(self, obj, False)
            w64(obj + off, nxt ^ rnd ^ obj)
            obj = nxt
        self.w32(self.rec_base + ((pa >> PAGE_SHIFT) << 4) + OFF_COUNT, 0)
        self.nr_slabs += 1
        return pa

    def deactivate(self):
        """Give the cpu slab back: its freelist becomes the page's freelist."""
        pfn = self.cpu_slab
        obj = first = self.cpu_freelist
        n = 0
        while obj:
            n += 1
            obj = self.r64(obj + self.offset) ^ self.random ^ obj
        fidx = self.obj_index(pfn, first) if first else FREE_NONE
        inuse = self.objects - n
        self.w32(self.rec_base + (pfn << 4) + OFF_COUNT, inuse | (fidx << 16))
        self.cpu_slab = NIL
        self.cpu_freelist = 0
        if inuse == 0 and self.partial.n >= self.min_partial:
            self.discard(pfn)
        elif n:
            self.partial.push(pfn)

    def free_slow(self, pa, pfn):
        """Free to a slab that is not the cpu slab (its page freelist)."""
        rec = self.rec_base + (pfn << 4) + OFF_COUNT
        v = self.r32(rec)
        inuse, fidx = v & 0xFFFF, v >> 16
        nxt = 0 if fidx == FREE_NONE else self.obj_pa(pfn, fidx)
        self.w64(pa + self.offset, nxt ^ self.random ^ pa)
        inuse -= 1
        self.w32(rec, inuse | (self.obj_index(pfn, pa) << 16))
        if fidx == FREE_NONE:
            self.partial.push(pfn)          # was full
        if inuse == 0 and self.partial.n > self.min_partial:
            self.partial.remove(pfn)
            self.discard(pfn)

    def free_debug(self, pa):
        head = (pa >> PAGE_SHIFT) & self.pfn_mask
        base = (head << PAGE_SHIFT) + self.red_left_pad
        off = pa - base
        if off < 0 or off % self.size or off >= self.span:
            raise self.bad_pointer(pa, base)
        if self.is_free(pa, base):
            raise KernelError("EINVAL", "double free of %s object 0x%x" % (self.name, pa + DMB))
        bad = slub_debug.check_object(self, pa, True)
        if bad is not None:
            raise KernelError("EFAULT", slub_debug.bug_line(self, pa, bad) + "; object not freed")
        slub_debug.init_object(self, pa, False)
        if head == self.cpu_slab:
            self.w64(pa + self.offset, self.cpu_freelist ^ self.random ^ pa)
            self.cpu_freelist = pa
        else:
            self.free_slow(pa, head)

    def is_free(self, pa, base):
        d = self.r64(pa + self.offset) ^ self.random ^ pa
        return d == 0 or (0 <= d - base < self.span and not (d - base) % self.size)

    def discard(self, pfn):
        if self.debug():
            self.check_slab(pfn)
        self.st.free_slab_pages(pfn << PAGE_SHIFT, self.order)
        self.nr_slabs -= 1

    def check_slab(self, pfn):
        """On freeing a debug slab, every (free) object must be intact."""
        for i in range(self.objects):
            slub_debug.check_object(self, self.obj_pa(pfn, i), False)

    # --- maintenance -------------------------------------------------------
    def shrink(self):
        """kmem_cache_shrink: flush the cpu slab, free every empty slab."""
        if self.cpu_slab != NIL:
            self.deactivate()
        for pfn in self.partial.pfns():
            if self.r32(self.rec_base + (pfn << 4) + OFF_COUNT) & 0xFFFF == 0:
                self.partial.remove(pfn)
                self.discard(pfn)

    def release(self):
        self.shrink()

    def counts(self):
        """(active objects, objects, active slabs, slabs) for slabinfo."""
        free = 0
        for pfn in self.partial.pfns():
            free += self.objects - (self.r32(self.rec_base + (pfn << 4) + OFF_COUNT) & 0xFFFF)
        obj = self.cpu_freelist
        while obj:
            free += 1
            obj = self.r64(obj + self.offset) ^ self.random ^ obj
        num = self.nr_slabs * self.objects
        return num - free, num, self.nr_slabs, self.nr_slabs

    def objs_per_slab(self):
        return self.objects

    def pages_per_slab(self):
        return 1 << self.order
