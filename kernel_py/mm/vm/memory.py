# A process's page tables and the frames they hold (Linux mm/memory.c):
# the tables themselves (made on demand, freed when empty), the references
# PTEs hold on frames, zap_page_range (munmap, exit, truncate), the copy of
# the tables at fork (copy_page_range: private pages copy-on-write), and
# the swap-in fault (do_swap_page) with its shared-memory counterpart.
# The PTE formats are mm/types.py's; the walk is arch/x86/pgtable.py's.
#
# Frame references: every PTE holding an anonymous or shared frame holds one
# reference (mem_map count); a SharedAnon object holds one more on each of
# its frames. File VMAs (mmap of a file, vma.file) map page-cache frames
# (kind pagecache: the cache holds one reference, each PTE one more, counted
# in rss_file) and, in private mappings, the anonymous copies written pages
# became; the frame's kind in mem_map tells the two apart. The zero page is
# never counted and never in RSS. Private anonymous frames are also in the
# reverse map (mm/reclaim/rmap.py: the key of the first PTE; fork keeps the
# address) and on the anon LRU; a swap entry holds one count of its slot in
# the swap map, and counts in mm.swapents (MM_SWAPENTS) instead of rss_anon.
#
# MmMemory is part of the address-space object (mm/vm/mmap.py's MmStruct).

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import KERNEL_HALF
from kernel_py.arch.x86.pgtable import USER_TABLE, ZERO_TABLE, pt_tables, pte_slot, tables, used_slots
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PGDIR_SHIFT, PTE_ADDR_MASK, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER,
)
from kernel_py.mm.reclaim.rmap import PENDING_MAX
from kernel_py.mm.vm.zap_fast import (
    Z_BASE, Z_FLUSH, Z_FREED, Z_I0, Z_I1, Z_NFREED, Z_NPRESENT, Z_PT, Z_RECS, Z_RSS, Z_ZERO, zap_pte_range,
)
from kernel_py.mm.types import (
    KIND_PAGECACHE, KIND_SHIFT, RECORD_SHIFT, RID_SHIFT, SHM_KEY, SHM_SWAPPED, SWAP_COUNT_MASK,
    VM_ACCESS, VM_DONTCOPY, VM_WIPEONFORK, VM_WRITE, _PAGE_PROTNONE,
)

TLB_FLUSH_CEILING = 33               # more pages than this: reload CR3
ADDR = PTE_ADDR_MASK


class MmMemory:
    def new_table(self, epa):
        """Allocate a zeroed table and link it at entry epa; its pa, or None."""
        t = self.k.alloc_table()
        if t is None:
            return None
        self.hw.write64(epa, t | USER_TABLE)
        self.nr_pgtables += 1
        return t

    def pte_slot(self, va, alloc=False):
        """Physical address of va's PTE, allocating the tables above it when
        `alloc`; None if a table is missing (or cannot be allocated)."""
        return pte_slot(self.hw, self.pgd, va, self.new_table if alloc else None)

    def pte(self, va):
        s = self.pte_slot(va)
        return 0 if s is None else self.hw.read64(s)

    def pt_tables(self, start, end):
        """(pt_pa, base_va, i0, i1) for each page table covering part of
        [start, end) (arch/x86/pgtable.py's pt_tables)."""
        return pt_tables(self.hw, self.pgd, start, end)

    def free_pgtables(self, start, end):
        """Free the page tables under [start, end) that hold nothing
        (children first: a table emptied by freeing its children goes too)."""
        hw = self.hw
        freed = 0
        for level, t, epa in tables(hw, self.pgd, start, min(end, KERNEL_HALF << PGDIR_SHIFT)):
            if hw.mem(t, PAGE_SIZE) == ZERO_TABLE:      # a view (no 4 KiB copy), string.c's memcmp
                hw.write64(epa, 0)
                self.k.free_table(t)
                self.nr_pgtables -= 1
                freed += 1
        if freed and self.live():
            # drop paging-structure caches: INVLPG of any address drops
            # them all (SDM Vol. 3A 4.10.4.1), as Linux's flush_tlb_mm_range
            # does for freed tables; the PTEs' own TLB entries went with the
            # zap. A CR3 write would also flush every kernel translation,
            # which QEMU's TCG then refills page by page (mmbench mmap_munmap
            # spent most of its munmap doing that).
            hw.invlpg(start)
        return freed

    def get_page(self, pa):
        k = self.k
        a = k.mem_map.base + ((pa >> 12) << RECORD_SHIFT) + 4
        k.hw.write32(a, k.hw.read32(a) + 1)

    def put_page(self, pa):
        """Drop one reference; free the frame with the last."""
        k = self.k
        a = k.mem_map.base + ((pa >> 12) << RECORD_SHIFT) + 4
        c = k.hw.read32(a) - 1
        if c <= 0:
            k.anon.release(pa)
            k.pcp.free(pa)
        else:
            k.hw.write32(a, c)

    def is_file_page(self, pa):
        """A page-cache frame (in a file VMA: not a private copy)."""
        k = self.k
        return k.hw.read16(k.mem_map.base + ((pa >> 12) << RECORD_SHIFT)) >> KIND_SHIFT == KIND_PAGECACHE

    def page_mkclean_one(self, va, pa):
        """Write-protect (and clean) this mm's PTE of page pa at va."""
        hw = self.hw
        slot = self.pte_slot(va)
        if slot is None:
            return
        e = hw.read64(slot)
        if e & _PAGE_PRESENT and e & ADDR == pa and e & (_PAGE_RW | _PAGE_DIRTY):
            hw.write64(slot, e & ~(_PAGE_RW | _PAGE_DIRTY))
            if self.live():
                hw.invlpg(va)

    def zap(self, vma, start, end):
        """Unmap [start, end) of vma: clear the PTEs, drop the frames."""
        hw = self.hw
        shared = vma.shm is not None
        cache = self.k.pagecache if vma.file is not None else None
        fast = self.k.anon.fast_zap and not shared and cache is None
        live = self.live()
        flushed = []
        self.update_hiwater()
        for pt, base, i0, i1 in list(self.pt_tables(start, end)):
            if fast:
                i0 = self.zap_fast(pt, base, i0, i1, live, flushed)
            if i0 < i1:
                self.zap_slots(pt, base, i0, i1, shared, cache, live, flushed)
        if flushed:
            if len(flushed) > TLB_FLUSH_CEILING:
                hw.write_cr3(self.pgd)
            else:
                for va in flushed:
                    hw.invlpg(va)

    def zap_slots(self, pt, base, i0, i1, shared, cache, live, flushed):
        """zap_pte_range: slots [i0, i1) of page table pt (slot 0 maps
        base); the present PTEs' addresses go to flushed (one more than
        TLB_FLUSH_CEILING at most)."""
        hw = self.hw
        r64, w64 = hw.read64, hw.write64
        zero = self.k.zero_page
        for i in used_slots(hw, pt, i0, i1):
            epa = pt + (i << 3)
            e = r64(epa)
            if not e:
                continue
            w64(epa, 0)
            if not e & (_PAGE_PRESENT | _PAGE_PROTNONE):      # a swap entry
                self.k.swap.free_entry(e)
                self.swapents -= 1
                continue
            if live and e & _PAGE_PRESENT and len(flushed) <= TLB_FLUSH_CEILING:
                flushed.append(base + (i << 12))
            pa = e & ADDR
            if pa == zero:
                continue
            if cache is not None and self.is_file_page(pa):
                self.rss_file -= 1
                cache.put_page(pa)
                continue
            if shared:
                self.rss_shmem -= 1
            else:
                self.rss_anon -= 1
            self.put_page(pa)

    def zap_fast(self, pt, base, i0, i1, live, flushed):
        """zap_slots for a private anonymous VMA in viper (zap_fast.py):
        the frames it freed go to the pcp list in order, as pcp.free puts
        them, and the list is drained as pcp.free drains it. Returns the
        slot it stopped at (i1: done)."""
        k = self.k
        an = k.anon
        st, hd = an.zap_st, an.zap_heads
        act, ina = an.active, an.inactive
        st[Z_ZERO], st[Z_RECS], st[Z_PT], st[Z_BASE], st[Z_I0], st[Z_I1] = \
            k.zero_page, an.base, pt, base, i0, i1
        st[Z_NFREED] = st[Z_NPRESENT] = st[Z_RSS] = 0
        hd[0], hd[1], hd[2], hd[3], hd[4], hd[5] = act.first, act.last, act.n, ina.first, ina.last, ina.n
        i = zap_pte_range(st, an._ext_words, hd)
        act.first, act.last, act.n, ina.first, ina.last, ina.n = hd[0], hd[1], hd[2], hd[3], hd[4], hd[5]
        self.rss_anon -= st[Z_RSS]
        if live:
            n = st[Z_NPRESENT]
            flushed.extend(st[Z_FLUSH:Z_FLUSH + min(n, TLB_FLUSH_CEILING + 1 - len(flushed))])
        n = st[Z_NFREED]
        if n:
            k.pcp.free_batch(st[Z_FREED:Z_FREED + n])
            if len(an.pending) > PENDING_MAX:
                an.drain()
        return i

    def dup(self):
        """fork: a copy of this address space, private pages copy-on-write."""
        child = type(self)(self.k)          # an MmStruct (mm/vm/mmap.py)
        try:
            self._dup_into(child)
        except KernelError:
            child.destroy()
            raise
        return child

    def _dup_into(self, child):
        hw = self.hw
        r64, w64 = hw.read64, hw.write64
        r32, w32 = hw.read32, hw.write32
        mbase = self.k.mem_map.base
        zero = self.k.zero_page
        swap_dup = self.k.swap.dup
        child.start_brk, child.brk = self.start_brk, self.brk
        child.start_stack, child.mmap_base = self.start_stack, self.mmap_base
        child.legacy_va_layout = self.legacy_va_layout
        live = self.live()
        wp = 0
        for vma in self.vmas.vmas:
            if vma.flags & VM_DONTCOPY:             # MADV_DONTFORK: not in the child
                continue
            child.vmas.insert(vma.copy(mm=child))
            if vma.flags & VM_WIPEONFORK:           # MADV_WIPEONFORK: empty in the child
                continue
            shared = vma.shm is not None
            filemap = vma.file is not None
            for pt, base, i0, i1 in list(self.pt_tables(vma.start, vma.end)):
                cslot = child.pte_slot(base + (i0 << 12), True)
                if cslot is None:
                    raise KernelError("ENOMEM", "fork: page tables")
                cpt = cslot & ~(PAGE_SIZE - 1)
                for i in used_slots(hw, pt, i0, i1):
                    e = r64(pt + (i << 3))
                    if not e:
                        continue
                    if not e & (_PAGE_PRESENT | _PAGE_PROTNONE):  # a swap entry: one more user
                        swap_dup(e)
                        child.swapents += 1
                        w64(cpt + (i << 3), e)
                        continue
                    pa = e & ADDR
                    if pa != zero:
                        a = mbase + ((pa >> 12) << RECORD_SHIFT) + 4
                        w32(a, r32(a) + 1)
                        if shared:
                            child.rss_shmem += 1
                        elif filemap and self.is_file_page(pa):
                            child.rss_file += 1     # the same cache page, same protection
                        else:
                            child.rss_anon += 1
                            if e & _PAGE_RW:
                                e &= ~_PAGE_RW
                                w64(pt + (i << 3), e)
                                if live:
                                    wp += 1
                                    if wp <= TLB_FLUSH_CEILING:
                                        hw.invlpg(base + (i << 12))
                    w64(cpt + (i << 3), e)
        if wp > TLB_FLUSH_CEILING:
            hw.write_cr3(self.pgd)
        child.hiwater_rss = child.rss()
        child.hiwater_vm = child.total_vm()


def shmem_swapin(k, shm, off, v):
    """Read the swapped page at index off of a shared anonymous object
    (slot entry v) into a fresh frame held by the object, on the anon LRU;
    its pa, or None when no frame could be had (EIO raised on a read
    error, the entry kept)."""
    swap = k.swap
    si, soff = swap.lookup(v & ~SHM_SWAPPED)
    if si is None:
        raise KernelError("EIO", "bad swap entry 0x%x in shmem %d" % (v, shm.ino))
    pa = k.pcp.alloc()
    if pa is None:
        return None
    if shm.pages.get(off) != v:                 # changed while allocating
        k.pcp.free(pa)
        return shm.pages.get(off)
    try:
        swap.read_page(si, soff, pa)
    except KernelError:
        k.pcp.free(pa)
        raise
    swap.put_slot(si, soff)
    shm.pages[off] = pa
    k.anon.add_new(pa, SHM_KEY | (shm.ino << RID_SHIFT) | off)
    return pa


SWAPIN_MINOR = 1        # k_swapin: the page was still in the swap cache
SWAPIN_MAJOR = 2        # k_swapin: read from the disk


def swapin_pte(vma, pa, writable):
    if not vma.flags & VM_ACCESS:                   # PROT_NONE (swapoff): keep it inaccessible
        return pa | _PAGE_PROTNONE | _PAGE_USER
    return pa | (vma.rw_bits if writable and vma.flags & VM_WRITE else vma.prot_bits)


def k_swapin(k, mm, vma, va, epa, e):
    """Bring the page of swap PTE e (at epa, address va) back and map it,
    the slot's count down by one: SWAPIN_MINOR when it was still in the
    swap cache (shared since fork: mapped read-only, copy-on-write),
    SWAPIN_MAJOR when it was read into a fresh frame (which stays in the
    swap cache unless swap is over half full; writable only when no other
    PTE holds the slot), 0 when no frame could be had."""
    hw = k.hw
    swap = k.swap
    cache = k.swapcache
    si, off = swap.lookup(e)
    if si is None:
        raise KernelError("EIO", "bad swap entry 0x%x at 0x%x" % (e, va))
    pa = cache.lookup(si, off)
    if pa is not None:
        mm.get_page(pa)
        hw.write64(epa, swapin_pte(vma, pa, False))
        swap.put_slot(si, off)
        mm.rss_anon += 1
        mm.swapents -= 1
        cache.find_total += 1
        return SWAPIN_MINOR
    pa = k.pcp.alloc()
    if pa is None:
        return 0
    if hw.read64(epa) != e or mm.pgd is None:     # changed while allocating
        k.pcp.free(pa)
        return SWAPIN_MINOR
    try:
        swap.read_page(si, off, pa)
    except KernelError:
        k.pcp.free(pa)
        raise
    keep = si.writeok and not swap.vm_swap_full()
    if keep:
        cache.add(pa, si, off)
    swap.put_slot(si, off)
    exclusive = not keep or not si.map[off] & SWAP_COUNT_MASK
    hw.write64(epa, swapin_pte(vma, pa, exclusive))     # clean (D clear) until stored to
    mm.rss_anon += 1
    mm.swapents -= 1
    k.anon.add_new(pa, mm.rkey | (va >> 12))
    return SWAPIN_MAJOR
