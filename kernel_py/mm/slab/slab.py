# SLAB (Linux: mm/slab.c, the classic Bonwick allocator). Each cache keeps
# its slabs on three lists - full, partial, free - linked through mem_map.
# A slab is laid out as
#     [colour][freelist: u16 index per object][pad to align][objects...]
# The freelist array is the management area: entries [active, num) are the
# indices of the free objects, so alloc takes freelist[active++] and free
# stores freelist[--active]. Successive slabs start their objects at
# different cache-line offsets (colouring) to spread them over cache sets.
# The slab page's record holds `active` (inuse) and the colour offset (in the
# first-free-index field, which SLAB does not need).
#
# In front sits the per-CPU array cache (one CPU): a LIFO of recently freed
# objects. alloc pops it; an empty array is refilled with `batchcount`
# objects from the slabs; a full one flushes its oldest `batchcount` back.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.slab import slub_debug
from kernel_py.mm.types import OFF_FREEIDX, OFF_INUSE
from kernel_py.mm.gfp import F_ZERO
from kernel_py.mm.slab.common import (
    CACHE_LINE, DMB, KmemCache, SLUB_MAX_ORDER, align_up,
)
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

IDX_SIZE = 2              # freelist_idx_t: u16


def cache_estimate(size, align):
    """(order, num, mgmt bytes, left over): the smallest order whose waste is
    at most 1/8 of the slab (Linux's calculate_slab_order)."""
    best = None
    for order in range(SLUB_MAX_ORDER + 1):
        slab = PAGE_SIZE << order
        num = slab // (size + IDX_SIZE)
        while num and num * size + align_up(num * IDX_SIZE, align) > slab:
            num -= 1
        if not num:
            continue
        mgmt = align_up(num * IDX_SIZE, align)
        left = slab - num * size - mgmt
        best = (order, num, mgmt, left)
        if left * 8 <= slab:
            break
    return best


def cpucache_limit(size):
    """Array-cache size by object size (Linux's enable_cpucache)."""
    if size > 131072:
        return 1
    if size > PAGE_SIZE:
        return 8
    if size > 1024:
        return 24
    if size > 256:
        return 54
    return 120


class SlabCache(KmemCache):
    backend = "slab"
    uses_freeptr = False   # free objects are tracked by index, not pointers

    def setup(self):
        est = cache_estimate(self.size, self.align)
        if est is None:
            raise KernelError("EINVAL", "object size %d too large for SLAB" % self.size)
        self.order, self.num, self.mgmt, left = est
        self.pfn_mask = ~((1 << self.order) - 1)
        self.colour_off = max(CACHE_LINE, self.align)
        self.colour = left // self.colour_off
        self.colour_next = 0
        self.slabs_full = self.st.page_list()
        self.slabs_partial = self.st.page_list()
        self.slabs_free = self.st.page_list()
        self.free_objects = 0
        self.nr_slabs = 0
        self.limit = cpucache_limit(self.size)
        self.batchcount = (self.limit + 1) // 2
        self.free_limit = 2 * self.batchcount + self.num
        self.ac = []                  # array cache: pa of free objects, LIFO
        self.span = self.num * self.size
        hw = self.hw
        self.r16, self.w16 = hw.read16, hw.write16
        self.rec_base = self.st.rec_base
        if self.debug():
            self.alloc = self.alloc_slow
            self.slab_free = self.free_debug

    # --- fast paths ------------------------------------------------------------
    def alloc(self, gfp=0):
        ac = self.ac
        if ac and not gfp & F_ZERO and self.st.should_failslab is None:
            return ac.pop() + DMB
        return self.alloc_slow(gfp)

    def slab_free(self, pa):
        self.check_pointer(pa)
        ac = self.ac
        if len(ac) >= self.limit:
            self.flusharray(self.batchcount)
        ac.append(pa)

    def free(self, va):
        pa = va - DMB
        info = self.st.page_info(pa)
        if info is None or info[0] != self.st.kind_slab or info[1] != self.id:
            raise KernelError("EINVAL", "0x%x is not an object of %s" % (va, self.name))
        self.slab_free(pa)

    # --- slab geometry -----------------------------------------------------------
    def slab_of(self, pa):
        """(head pfn, record pa, s_mem) of the slab holding pa."""
        pfn = (pa >> PAGE_SHIFT) & self.pfn_mask
        rec = self.rec_base + (pfn << 4)
        s_mem = (pfn << PAGE_SHIFT) + self.r16(rec + OFF_FREEIDX) + self.mgmt + self.red_left_pad
        return pfn, rec, s_mem

    def freelist_pa(self, pfn, rec):
        return (pfn << PAGE_SHIFT) + self.r16(rec + OFF_FREEIDX)

    def check_pointer(self, pa):
        """KernelError unless pa is the start of an allocated object."""
        pfn, rec, s_mem = self.slab_of(pa)
        off = pa - s_mem
        if off < 0 or off >= self.span:
            raise KernelError("EINVAL", "0x%x is not an object of %s" % (pa + DMB, self.name))
        if off % self.size:
            obj = s_mem + off // self.size * self.size
            raise KernelError("EINVAL", "0x%x points into %s object 0x%x at offset %d"
                              % (pa + DMB, self.name, obj + DMB, pa - obj))
        if pa in self.ac or self.on_freelist(pfn, rec, off // self.size):
            raise KernelError("EINVAL", "double free of %s object 0x%x" % (self.name, pa + DMB))

    def on_freelist(self, pfn, rec, idx):
        active = self.r16(rec + OFF_INUSE)
        if active >= self.num:
            return False
        fl = self.freelist_pa(pfn, rec)
        data = self.hw.readbytes(fl + active * IDX_SIZE, (self.num - active) * IDX_SIZE)
        needle = bytes((idx & 255, idx >> 8))
        i = data.find(needle)
        while i >= 0:
            if not i & 1:
                return True
            i = data.find(needle, i + 1)
        return False

    # --- slow paths -------------------------------------------------------------
    def alloc_slow(self, gfp=0):
        if self.st.should_failslab is not None and self.st.failslab(self, gfp):
            return None
        ac = self.ac
        if not ac:
            self.refill(gfp)
            if not ac:
                return None
        obj = ac.pop()
        if self.debug():
            slub_debug.check_object(self, obj, False)
            slub_debug.init_object(self, obj, True)
        if gfp & F_ZERO:
            self.hw.fill(obj, 0, self.object_size)
        return obj + DMB

    def refill(self, gfp):
        """cache_alloc_refill: up to batchcount objects into the array cache,
        from partial slabs first, then free ones, growing if needed."""
        want = self.batchcount
        while want > 0:
            lst = self.slabs_partial
            pfn = lst.first
            if pfn == 0xFFFFFFFF:
                lst = self.slabs_free
                pfn = lst.first
                if pfn == 0xFFFFFFFF:
                    if not self.grow(gfp):
                        return
                    continue
            want -= self.take(pfn, lst, want)

    def take(self, pfn, lst, want):
        """Move free objects of one slab to the array cache."""
        rec = self.rec_base + (pfn << 4)
        active = self.r16(rec + OFF_INUSE)
        n = min(want, self.num - active)
        data = self.hw.readbytes(self.freelist_pa(pfn, rec) + active * IDX_SIZE, n * IDX_SIZE)
        s_mem = (pfn << PAGE_SHIFT) + self.r16(rec + OFF_FREEIDX) + self.mgmt + self.red_left_pad
        size, ac = self.size, self.ac
        for j in range(n):
            ac.append(s_mem + (data[2 * j] | (data[2 * j + 1] << 8)) * size)
        lst.remove(pfn)
        active += n
        self.w16(rec + OFF_INUSE, active)
        (self.slabs_full if active == self.num else self.slabs_partial).push(pfn)
        self.free_objects -= n
        return n

    def grow(self, gfp):
        """cache_grow: a new slab on the free list, with the next colour."""
        pa = self.st.alloc_slab_pages(gfp, self.order, self.id)
        if pa is None:
            return False
        colouroff = self.colour_next * self.colour_off
        self.colour_next += 1
        if self.colour_next >= self.colour:
            self.colour_next = 0
        idx = bytearray(self.num * IDX_SIZE)
        for i in range(self.num):
            idx[2 * i] = i & 255
            idx[2 * i + 1] = i >> 8
        self.hw.writebytes(pa + colouroff, idx)
        obj = pa + colouroff + self.mgmt + self.red_left_pad
        debug = self.debug()
        for i in range(self.num):
            if self.ctor:
                self.run_ctor(obj)
            if debug:
                slub_debug.init_object(self, obj, False)
            obj += self.size
        rec = self.rec_base + ((pa >> PAGE_SHIFT) << 4)
        self.w16(rec + OFF_INUSE, 0)
        self.w16(rec + OFF_FREEIDX, colouroff)
        self.slabs_free.push(pa >> PAGE_SHIFT)
        self.free_objects += self.num
        self.nr_slabs += 1
        return True

    def flusharray(self, n):
        """Return the n oldest array-cache objects to their slabs."""
        ac = self.ac
        for pa in ac[:n]:
            self.free_block(pa)
        del ac[:n]

    def free_block(self, pa):
        pfn, rec, s_mem = self.slab_of(pa)
        active = self.r16(rec + OFF_INUSE) - 1
        idx = (pa - s_mem) // self.size
        fl = self.freelist_pa(pfn, rec)
        self.w16(fl + active * IDX_SIZE, idx)
        self.w16(rec + OFF_INUSE, active)
        (self.slabs_full if active + 1 == self.num else self.slabs_partial).remove(pfn)
        self.free_objects += 1
        if active:
            self.slabs_partial.push(pfn)
        elif self.free_objects > self.free_limit:
            self.slab_destroy(pfn)
        else:
            self.slabs_free.push(pfn)

    def free_debug(self, pa):
        self.check_pointer(pa)
        bad = slub_debug.check_object(self, pa, True)
        if bad is not None:
            raise KernelError("EFAULT", slub_debug.bug_line(self, pa, bad) + "; object not freed")
        slub_debug.init_object(self, pa, False)
        if len(self.ac) >= self.limit:
            self.flusharray(self.batchcount)
        self.ac.append(pa)

    def slab_destroy(self, pfn):
        if self.debug():
            rec = self.rec_base + (pfn << 4)
            obj = (pfn << PAGE_SHIFT) + self.r16(rec + OFF_FREEIDX) + self.mgmt + self.red_left_pad
            for i in range(self.num):
                slub_debug.check_object(self, obj + i * self.size, False)
        self.st.free_slab_pages(pfn << PAGE_SHIFT, self.order)
        self.free_objects -= self.num
        self.nr_slabs -= 1

    # --- maintenance -------------------------------------------------------------
    def shrink(self):
        """Drain the array cache, then destroy every free slab."""
        self.flusharray(len(self.ac))
        while self.slabs_free.n:
            self.slab_destroy(self.slabs_free.pop())

    def release(self):
        self.shrink()

    def counts(self):
        num = self.nr_slabs * self.num
        return (num - self.free_objects, num, self.nr_slabs - self.slabs_free.n, self.nr_slabs)

    def tunables(self):
        return (self.limit, self.batchcount, 0)

    def objs_per_slab(self):
        return self.num

    def pages_per_slab(self):
        return 1 << self.order
