# Process address spaces (Linux's struct mm_struct and mm/mmap.c,
# mm/mprotect.c, mm/memory.c's zap and copy): a PML4 of its own that shares
# the kernel half with init_mm, the VMAs, RSS counters and the page-table
# pages it owns. mmap/brk only reserve address space; frames arrive on the
# first touch (mm/vm/fault.py) and leave on munmap/exit.
#
# User PTEs (4 KiB only):
#   present      pa | P | US | [RW] | [NX] (+ A/D set by the MMU)
#   PROT_NONE    pa | _PAGE_PROTNONE | US   (P clear: the frame stays owned)
#   empty        0
#   swapped out  swap entry (mm/reclaim/swapfile.py: P clear, bit 8 clear, type/offset)
# Frame references: every PTE holding an anonymous or shared frame holds one
# reference (mem_map count); a SharedAnon object holds one more on each of
# its frames. File VMAs (mmap of a file, vma.file) map page-cache frames
# (kind pagecache: the cache holds one reference, each PTE one more, counted
# in rss_file) and, in private mappings, the anonymous copies written pages
# became; the frame's kind in mem_map tells the two apart. The zero page is never counted and never in RSS. Private
# anonymous frames are also in the reverse map (mm/reclaim/rmap.py: the key of the
# first PTE; fork keeps the address) and on the anon LRU; a swap entry holds
# one count of its slot in the swap map, and counts in mm.swapents
# (MM_SWAPENTS) instead of rss_anon.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import KERNEL_HALF, USER_END, USER_START
from kernel_py.mm.types import (
    KIND_PAGECACHE, KIND_SHIFT, MAX_FILE_PAGES, RECORD_SHIFT, SHM_SWAPPED, VM_ACCESS, VM_GROWSDOWN,
    VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE, _PAGE_PROTNONE,
)
from kernel_py.mm.vm.vma import (
    MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MS_ASYNC, MS_INVALIDATE, MS_SYNC, NO_VMA, PROT_WRITE, VMA,
    SharedAnon, VmaList, prot_to_vm,
)
from kernel_py.arch.x86.pgtable import USER_TABLE, ZERO_TABLE, pt_tables, pte_slot, tables
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PGDIR_SHIFT, PTE_ADDR_MASK, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER,
)

STACK_SIZE = 132 << 10               # the initial [stack] VMA, as Linux sets up
STACK_TOP = USER_END
STACK_GAP = 128 << 20                # mmap_base sits this far below the stack
MMAP_BASE = STACK_TOP - STACK_GAP    # top-down mmap searches below here
TASK_UNMAPPED_BASE = (USER_END // 3) & ~(PAGE_SIZE - 1)   # bottom-up start
START_BRK = 0x0000000001000000       # the heap's start (no ELF image: fixed)
TLB_FLUSH_CEILING = 33               # more pages than this: reload CR3
ADDR = PTE_ADDR_MASK


def page_align(n):
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class MmStruct:
    """One process address space. `k` gives hw, the buddy, mem_map, init_mm,
    the zero page (k.zero_page) and the system-wide fault counters."""

    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        pgd = k.alloc_table()
        if pgd is None:
            raise KernelError("ENOMEM", "no frame for a PML4")
        k.hw.copy(pgd + KERNEL_HALF * 8, k.init_mm.pgd + KERNEL_HALF * 8, KERNEL_HALF * 8)
        self.pgd = pgd
        self.vmas = VmaList()
        self.vma_cache = NO_VMA
        self.rss_file = 0
        self.rss_anon = 0
        self.rss_shmem = 0
        self.swapents = 0            # swap entries in the PTEs (MM_SWAPENTS)
        self.nr_pgtables = 0         # PT, PD and PDPT pages (not the PML4)
        self.hiwater_rss = 0
        self.hiwater_vm = 0
        self.start_brk = START_BRK
        self.brk = START_BRK
        self.start_stack = STACK_TOP
        self.mmap_base = MMAP_BASE
        self.legacy_va_layout = False
        self.rid = 0
        self.rkey = 0                # rmap key base: rid << 36 (mm/reclaim/rmap.py)
        anon = getattr(k, "anon", None)
        if anon is not None:
            anon.register(self)

    # -- counters
    def rss(self):
        return self.rss_file + self.rss_anon + self.rss_shmem

    def total_vm(self):
        return self.vmas.total_pages()

    def update_hiwater(self):
        r = self.rss()
        if r > self.hiwater_rss:
            self.hiwater_rss = r
        v = self.total_vm()
        if v > self.hiwater_vm:
            self.hiwater_vm = v

    def live(self):
        return self.hw.read_cr3() & ADDR == self.pgd

    # -- page tables
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
            if hw.readbytes(t, PAGE_SIZE) == ZERO_TABLE:
                hw.write64(epa, 0)
                self.k.free_table(t)
                self.nr_pgtables -= 1
                freed += 1
        if freed and self.live():
            hw.write_cr3(self.pgd)          # drop paging-structure caches
        return freed

    # -- frames
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
        r64, w64 = hw.read64, hw.write64
        zero = self.k.zero_page
        shared = vma.shm is not None
        cache = self.k.pagecache if vma.file is not None else None
        live = self.live()
        flushed = []
        self.update_hiwater()
        for pt, base, i0, i1 in list(self.pt_tables(start, end)):
            for i in range(i0, i1):
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
        if flushed:
            if len(flushed) > TLB_FLUSH_CEILING:
                hw.write_cr3(self.pgd)
            else:
                for va in flushed:
                    hw.invlpg(va)

    def release_vma(self, vma):
        """The VMA is gone: drop its hold on a shared backing or a file."""
        vma.unlink_file()
        shm = vma.shm
        if shm is None:
            return
        if shm.detach(vma):
            pages = shm.pages
            shm.pages = {}
            self.k.anon.shm.pop(shm.ino, None)
            for v in pages.values():
                if v & SHM_SWAPPED:
                    self.k.swap.free_entry(v & ~SHM_SWAPPED)
                else:
                    self.put_page(v)

    # -- VMA list edits
    def split(self, vma, addr):
        """Split vma at addr; returns the upper part (now in the list)."""
        upper = vma.copy(addr, vma.end)
        vma.end = addr
        self.vmas.insert(upper)
        self.vma_cache = NO_VMA
        return upper

    def merge_around(self, vma):
        """Merge vma with its neighbours where they are compatible."""
        vmas = self.vmas
        i = vmas.index(vma)
        if i + 1 < len(vmas.vmas) and vma.can_merge(vmas.vmas[i + 1]):
            nxt = vmas.vmas[i + 1]
            vma.end = nxt.end
            vmas.remove(nxt)
            self.release_vma(nxt)
        if i > 0 and vmas.vmas[i - 1].can_merge(vma):
            prev = vmas.vmas[i - 1]
            prev.end = vma.end
            vmas.remove(vma)
            self.release_vma(vma)
            vma = prev
        self.vma_cache = NO_VMA
        return vma

    # -- address-space search
    def get_unmapped_area(self, length):
        if not self.legacy_va_layout:
            addr = self._topdown(length)
            if addr is not None:
                return addr
        addr = self._bottomup(length)
        if addr is None:
            raise KernelError("ENOMEM", "no free range of 0x%x bytes" % length)
        return addr

    def _topdown(self, length):
        hi = self.mmap_base
        vmas = self.vmas.vmas
        i = len(vmas) - 1
        while i >= 0:
            v = vmas[i]
            i -= 1
            if v.start >= hi:
                continue
            lo = max(v.end, USER_START)
            if hi >= lo + length:
                return hi - length
            hi = v.start
        if hi >= USER_START + length:
            return hi - length
        return None

    def _bottomup(self, length):
        lo = TASK_UNMAPPED_BASE
        for v in self.vmas.vmas:
            if v.end <= lo:
                continue
            if v.start >= lo + length:
                return lo
            lo = max(lo, v.end)
        if lo + length <= USER_END:
            return lo
        return None

    # -- system calls
    def mmap(self, addr, length, prot, flags, name="", file=None, pgoff=0):
        """mmap(2), anonymous or of `file` (a MappedFile) from page pgoff;
        returns the address. MAP_FIXED here does not replace existing
        mappings (MAP_FIXED_NOREPLACE): EEXIST. A file mapping takes its
        own reference on the file (the caller still fputs its own)."""
        if type(length) is not int or length <= 0:
            raise KernelError("EINVAL", "length must be positive")
        length = page_align(length)
        if length > USER_END - USER_START:
            raise KernelError("ENOMEM", "length 0x%x larger than user space" % length)
        share = flags & (MAP_SHARED | MAP_PRIVATE)
        if share not in (MAP_SHARED, MAP_PRIVATE):
            raise KernelError("EINVAL", "exactly one of shared and private")
        if file is not None:
            check_file_mapping(file, length, prot, share, pgoff)
        if flags & MAP_FIXED:
            check_range(addr, length)
            if self.vmas.overlapping(addr, addr + length):
                raise KernelError("EEXIST", "0x%x-0x%x overlaps a mapping" % (addr, addr + length))
        else:
            addr = self.get_unmapped_area(length)
        vmflags = prot_to_vm(prot)
        shm = None
        if share == MAP_SHARED:
            vmflags |= VM_SHARED | VM_MAYSHARE
            if file is None:
                shm = SharedAnon()
            elif file.read_only:
                vmflags &= ~VM_MAYWRITE     # mprotect cannot make it writable later
        vma = VMA(addr, addr + length, vmflags, name, shm, pgoff if file is not None else 0,
                  file, self)
        self.vmas.insert(vma)
        vma.link_file()
        if shm is not None:
            shm.attach(vma)
            self.k.anon.shm[shm.ino] = shm       # reclaim's way from a frame to its object
        if shm is None and file is None:
            self.merge_around(vma)
        self.update_hiwater()
        return addr

    def munmap(self, addr, length):
        check_range(addr, length)
        self.unmap_range(addr, addr + page_align(length))

    def unmap_range(self, start, end):
        hit = self.vmas.overlapping(start, end)
        if not hit:
            return
        for vma in hit:
            if vma.start < start:
                vma = self.split(vma, start)
            if vma.end > end:
                self.split(vma, end)
            self.zap(vma, vma.start, vma.end)
            self.vmas.remove(vma)
            self.release_vma(vma)
        self.vma_cache = NO_VMA
        self.free_pgtables(start, end)

    def mapped_cover(self, addr, length):
        """(end, [VMA]) of a page-aligned range that must be mapped all
        through (mprotect, msync: ENOMEM otherwise)."""
        check_range(addr, length)
        end = addr + page_align(length)
        hit = self.vmas.overlapping(addr, end)
        pos = addr
        for v in hit:
            if v.start > pos:
                break
            pos = v.end
        if pos < end:
            raise KernelError("ENOMEM", "0x%x-0x%x is not all mapped" % (addr, end))
        return end, hit

    def mprotect(self, addr, length, prot):
        end, hit = self.mapped_cover(addr, length)
        for v in hit:
            if prot & PROT_WRITE and not v.flags & VM_MAYWRITE:
                raise KernelError("EACCES", "0x%x-0x%x maps %s shared from a read-only file system" % (
                    v.start, v.end, v.file.path if v.file is not None else "?"))
        access = prot_to_vm(prot) & VM_ACCESS
        done = []
        for vma in hit:
            if vma.start < addr:
                vma = self.split(vma, addr)
            if vma.end > end:
                self.split(vma, end)
            vma.set_flags((vma.flags & ~VM_ACCESS) | access)
            self.change_protection(vma, vma.start, vma.end)
            done.append(vma)
        for vma in done:
            if vma in self.vmas.vmas:
                self.merge_around(vma)
        self.vma_cache = NO_VMA

    def change_protection(self, vma, start, end):
        """Rewrite the PTEs of [start, end) for vma's (new) flags. Private
        pages stay read-only when they were (a write faults: COW or reuse)."""
        hw = self.hw
        r64, w64 = hw.read64, hw.write64
        zero = self.k.zero_page
        fl = vma.flags
        prot_none = not fl & VM_READ
        shared = vma.shm is not None
        live = self.live()
        n = 0
        for pt, base, i0, i1 in list(self.pt_tables(start, end)):
            for i in range(i0, i1):
                epa = pt + (i << 3)
                e = r64(epa)
                if not e or not e & (_PAGE_PRESENT | _PAGE_PROTNONE):    # empty, swap entry
                    continue
                pa = e & ADDR
                if prot_none:                   # (D kept: a swap-cache page's copy may be stale)
                    new = pa | _PAGE_PROTNONE | _PAGE_USER | (e & _PAGE_DIRTY)
                else:
                    new = pa | vma.prot_bits | (e & 0x60)       # keep A/D
                    if fl & VM_WRITE and pa != zero and (
                            shared or (e & _PAGE_PRESENT and e & _PAGE_RW)):
                        new |= _PAGE_RW
                if new != e:
                    w64(epa, new)
                    if live and e & _PAGE_PRESENT:
                        n += 1
                        if n <= TLB_FLUSH_CEILING:
                            hw.invlpg(base + (i << 12))
        if n > TLB_FLUSH_CEILING:
            hw.write_cr3(self.pgd)

    def msync(self, addr, length, flags=MS_SYNC):
        """msync(2) (mm/msync.c): with MS_SYNC the dirty file pages the
        shared mappings of the range hold are written to the disk (and the
        disk's cache flushed); returns pages written. Private and anonymous
        mappings have nothing to write. MS_ASYNC does nothing, as on Linux
        since 2.6.19: dirty shared pages are already tracked, and writeback
        takes them. MS_INVALIDATE has nothing to do either: there is one
        page cache and no mlock (Linux's only use of it is EBUSY on locked
        VMAs)."""
        if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) or (flags & MS_ASYNC and flags & MS_SYNC):
            raise KernelError("EINVAL", "msync flags 0x%x: MS_ASYNC, MS_INVALIDATE, MS_SYNC, not both ASYNC and SYNC" % flags)
        end, hit = self.mapped_cover(addr, length)
        if not flags & MS_SYNC:
            return 0
        cache = self.k.pagecache
        written = 0
        flush = []
        for v in hit:
            f = v.file
            if f is None or not v.flags & VM_SHARED:
                continue
            lo = v.offset_of(max(addr, v.start))
            hi = v.offset_of(min(end, v.end))
            written += cache.writeback_mapping(f.mapping, lo=lo, hi=hi)
            if f.fs.dev not in flush:
                flush.append(f.fs.dev)
        for dev in flush:
            dev.flush()
        return written

    def set_brk(self, addr):
        """brk(2): move the end of the heap; returns the new break."""
        if addr < self.start_brk or addr >= self.mmap_base:
            raise KernelError("ENOMEM", "break 0x%x outside 0x%x-0x%x" % (addr, self.start_brk, self.mmap_base))
        old_end = page_align(self.brk)
        new_end = page_align(addr)
        if new_end < old_end:
            self.unmap_range(new_end, old_end)
        elif new_end > old_end:
            if self.vmas.overlapping(old_end, new_end):
                raise KernelError("ENOMEM", "heap growth to 0x%x hits a mapping" % addr)
            heap = self.vmas.find(old_end - 1) if old_end > self.start_brk else None
            if heap is not None and heap.name == "[heap]" and heap.end == old_end:
                heap.end = new_end
            else:
                heap = VMA(old_end, new_end, prot_to_vm(3), "[heap]")
                self.vmas.insert(heap)
            self.vma_cache = NO_VMA
        self.brk = addr
        self.update_hiwater()
        return addr

    def setup_stack(self):
        vma = VMA(STACK_TOP - STACK_SIZE, STACK_TOP, prot_to_vm(3) | VM_GROWSDOWN, "[stack]")
        self.vmas.insert(vma)
        self.start_stack = STACK_TOP - 8

    # -- fork and exit
    def dup(self):
        """fork: a copy of this address space, private pages copy-on-write."""
        child = MmStruct(self.k)
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
            child.vmas.insert(vma.copy(mm=child))
            shared = vma.shm is not None
            filemap = vma.file is not None
            for pt, base, i0, i1 in list(self.pt_tables(vma.start, vma.end)):
                cslot = child.pte_slot(base + (i0 << 12), True)
                if cslot is None:
                    raise KernelError("ENOMEM", "fork: page tables")
                cpt = cslot & ~(PAGE_SIZE - 1)
                for i in range(i0, i1):
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

    def destroy(self):
        """exit_mmap: unmap everything, free every frame and table, the PML4."""
        if self.pgd is None:
            return
        if self.live():
            self.hw.write_cr3(self.k.init_mm.pgd)
        for vma in list(self.vmas.vmas):
            self.zap(vma, vma.start, vma.end)
            self.vmas.remove(vma)
            self.release_vma(vma)
        self.free_pgtables(0, USER_END)
        self.k.free_table(self.pgd)
        self.pgd = None
        self.vma_cache = NO_VMA
        self.k.anon.unregister(self)


def check_file_mapping(file, length, prot, share, pgoff):
    """What do_mmap refuses for a file before anything is reserved."""
    if type(pgoff) is not int or pgoff < 0:
        raise KernelError("EINVAL", "file offset must be a non-negative page number")
    if pgoff + (length >> 12) > MAX_FILE_PAGES:
        raise KernelError("EOVERFLOW", "%s: offset + length past the largest file page" % file.path)
    if share == MAP_SHARED and prot & PROT_WRITE and file.read_only:
        raise KernelError("EACCES", "%s: shared writable mapping on a read-only file system" % file.path)


def check_range(addr, length):
    """A page-aligned, non-empty range inside user space."""
    if type(addr) is not int or type(length) is not int:
        raise KernelError("EINVAL", "address and length must be integers")
    if addr & (PAGE_SIZE - 1):
        raise KernelError("EINVAL", "address 0x%x is not page aligned" % addr)
    if length <= 0:
        raise KernelError("EINVAL", "length must be positive")
    if addr < USER_START or addr + page_align(length) > USER_END:
        raise KernelError("EINVAL", "0x%x-0x%x is outside user space 0x%x-0x%x" % (
            addr, addr + length, USER_START, USER_END))
