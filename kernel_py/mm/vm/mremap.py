# mremap(2) (Linux's mm/mremap.c): shrink a mapping in place, grow it in
# place when the space after it is free, or move it (MREMAP_MAYMOVE) to a
# free range or to a chosen one (MREMAP_FIXED: what is there goes), the old
# range unmapped or, with MREMAP_DONTUNMAP (Linux 5.7+; 6.1 allows it on
# any mapping but VM_DONTEXPAND ones), left mapped and empty: private
# anonymous memory reads zeros there again, a shared or file mapping shows
# its object again.
#
# A move carries the pages, not their contents: the PTEs go to the new
# addresses (move_ptes) with the frames, swap entries, page-cache pages
# and shared-anonymous pages they hold, and the counters (RSS, swapents)
# stay as they were. The reverse map has to follow:
#   - a file or shared-anonymous page is found through its object's VMAs
#     and their pgoff (mapping.i_mmap, SharedAnon.vmas), which the new VMA
#     keeps: nothing to do;
#   - a private anonymous page's rmap word names one PTE, (mm, va)
#     (mm/reclaim/rmap.py), and a page shared copy-on-write after fork is
#     looked for at that same va in every address space. A page only this
#     PTE maps gets the new address in its word. A page still shared with
#     another process would no longer be at one address in all of them:
#     the moving process gets its own copy (what its first write would
#     have done; Linux keeps such a page shared, its anon_vma chain finding
#     the PTE wherever it went). A swap entry other PTEs share, or whose
#     slot keeps its page in the swap cache, is read in first and then
#     treated the same way; a page of the swap cache that moves leaves the
#     cache (as a reused COW page does: mm/vm/fault.py), so that no other
#     process maps it later at the old address.
# The move goes a chunk (1 MiB) at a time, and in each chunk everything
# that can fail (reading swap, frames for the copies, the destination's
# page tables) is done before its first PTE moves, with its shared pages
# pinned (an extra reference: reclaim leaves them alone). A chunk that
# cannot be had sends the chunks already moved back, as Linux's
# move_vma moves the page tables back on an error: a failed mremap leaves
# the pages where they were (and, as Linux, MREMAP_FIXED's destination
# unmapped). Chunks keep what must be had at once small: copying a large
# COW-shared region needs its size in new pages, which reclaim can make
# room for while the move goes on, not all of it pinned at once.

from kernel_py.lib.errno import EFAULT, EINVAL, ENOMEM, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK, _PAGE_PRESENT
from kernel_py.arch.x86.layout import USER_END
from kernel_py.mm.page.pcp import copy_page
from kernel_py.mm.types import (
    M64, PG_swapcache, RECORD_SHIFT, SWAP_COUNT_MASK, VM_DONTEXPAND, VM_MAYSHARE, VM_SHARED,
    _PAGE_PROTNONE, page_align,
)
from kernel_py.mm.vm.memory import TLB_FLUSH_CEILING, k_swapin
from kernel_py.mm.vm.mmap import MAX_MAP_COUNT, get_unmapped_area, may_expand_vm
from kernel_py.mm.vm.vma import MAP_FIXED, MAP_SHARED, NO_VMA, VMA

MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4
ADDR = PTE_ADDR_MASK
LOCATION_NAMES = ("[heap]", "[stack]")      # names of a place, not of the memory: dropped on a move
MOVE_CHUNK = 256                            # pages prepared and moved at a time (1 MiB)


def sys_mremap(t, addr, old_len, new_len, flags, new_addr):
    addr &= M64
    old_len &= M64
    new_len &= M64
    flags &= M64
    new_addr &= M64
    if flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP):
        return -EINVAL
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE:
        return -EINVAL
    if flags & MREMAP_DONTUNMAP and (not flags & MREMAP_MAYMOVE or old_len != new_len):
        return -EINVAL
    if addr & (PAGE_SIZE - 1):
        return -EINVAL
    old_len = page_align(old_len) & M64
    new_len = page_align(new_len) & M64
    if not new_len:
        return -EINVAL
    mm = t.mm
    if mm.vmas.find(addr) is None:
        return -EFAULT
    try:
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP):
            return mremap_to(t, mm, addr, old_len, new_addr, new_len, flags)
        if old_len >= new_len:                  # shrinking: unmap the tail
            if old_len != new_len:
                mm.unmap_range(addr + new_len, addr + old_len)
            return addr
        vma = vma_to_resize(t, mm, addr, old_len, new_len, flags)
        if old_len == vma.end - addr and vma_expandable(mm, vma, new_len - old_len):
            vma.end = addr + new_len            # in place (vma_merge of the extension)
            mm.vma_cache = NO_VMA
            if vma.shm is None and vma.file is None:
                mm.merge_around(vma)
            mm.update_hiwater()
            return addr
        if not flags & MREMAP_MAYMOVE:
            return -ENOMEM
        new_addr = get_unmapped_area(mm, 0, new_len, MAP_SHARED if vma.flags & VM_MAYSHARE else 0)
        return move_vma(t, mm, vma, addr, old_len, new_len, new_addr, flags)
    except KernelError as e:
        return -errno_of(e.errname)


def vma_to_resize(t, mm, addr, old_len, new_len, flags):
    """The VMA at addr, if [addr, addr + old_len) may become new_len long."""
    vma = mm.vmas.find(addr)
    if vma is None:
        raise KernelError("EFAULT", "nothing mapped at 0x%x" % addr)
    if not old_len and not vma.flags & (VM_SHARED | VM_MAYSHARE):
        raise KernelError("EINVAL", "old_len 0 duplicates only shared mappings")
    if flags & MREMAP_DONTUNMAP and vma.flags & VM_DONTEXPAND:
        raise KernelError("EINVAL", "MREMAP_DONTUNMAP of a VM_DONTEXPAND mapping")
    if old_len > vma.end - addr:
        raise KernelError("EFAULT", "0x%x-0x%x crosses the end of its mapping" % (addr, addr + old_len))
    if new_len == old_len:
        return vma
    if vma.offset_of(addr) + (new_len >> 12) > M64:
        raise KernelError("EINVAL", "the offset overflows")
    if vma.flags & VM_DONTEXPAND:
        raise KernelError("EFAULT", "a VM_DONTEXPAND mapping cannot grow")
    if not may_expand_vm(t, mm, vma.flags, (new_len - old_len) >> 12):
        raise KernelError("ENOMEM", "RLIMIT_AS or RLIMIT_DATA")
    return vma


def vma_expandable(mm, vma, delta):
    end = vma.end + delta
    if end > USER_END:
        return False
    return not mm.vmas.overlapping(vma.end, end)


def mremap_to(t, mm, addr, old_len, new_addr, new_len, flags):
    """MREMAP_FIXED (new_addr is where) or MREMAP_DONTUNMAP (a hint): checked
    all through first, then the destination and a shrunk tail are unmapped
    and the rest moves."""
    if new_addr & (PAGE_SIZE - 1):
        return -EINVAL
    if new_len > USER_END or new_addr > USER_END - new_len:
        return -EINVAL
    if addr + old_len > new_addr and new_addr + new_len > addr:
        return -EINVAL                          # old and new overlap
    if len(mm.vmas) + 2 >= MAX_MAP_COUNT - 3:
        return -ENOMEM
    moved_len = old_len if old_len <= new_len else new_len
    vma = vma_to_resize(t, mm, addr, moved_len, new_len, flags)
    if flags & MREMAP_DONTUNMAP and not may_expand_vm(t, mm, vma.flags, moved_len >> 12):
        return -ENOMEM
    map_flags = MAP_FIXED if flags & MREMAP_FIXED else 0
    if vma.flags & VM_MAYSHARE:
        map_flags |= MAP_SHARED
    clear = []
    if flags & MREMAP_FIXED:
        get_unmapped_area(mm, new_addr, new_len, map_flags)     # EPERM/ENOMEM before anything goes
        clear.append((new_addr, new_addr + new_len))
    else:
        new_addr = get_unmapped_area(mm, new_addr, new_len, map_flags)
    if old_len > new_len:
        clear.append((addr + new_len, addr + old_len))
    return move_vma(t, mm, vma, addr, moved_len, new_len, new_addr, flags, clear)


def move_vma(t, mm, vma, old_addr, old_len, new_len, new_addr, flags, clear=()):
    """A new VMA at new_addr for [old_addr, old_addr + old_len) of vma,
    new_len long; the pages move into it; the old range is unmapped (not
    with MREMAP_DONTUNMAP). `clear`: ranges to unmap first (MREMAP_FIXED's
    destination, a shrunk tail). Returns new_addr, or raises with the pages
    where they were (and, as Linux, `clear` unmapped)."""
    if len(mm.vmas) >= MAX_MAP_COUNT - 3:
        raise KernelError("ENOMEM", "vm.max_map_count")
    k = mm.k
    for s, e in clear:
        mm.unmap_range(s, e)
    if old_len:
        vma = mm.vmas.find(old_addr)
    name = "" if vma.name in LOCATION_NAMES else vma.name
    new_vma = VMA(new_addr, new_addr + new_len, vma.flags, name, vma.shm, vma.offset_of(old_addr),
                  vma.file, mm)
    if new_vma.shm is not None:
        new_vma.shm.attach(new_vma)
    new_vma.link_file()             # (reclaim finds file and shmem PTEs through the VMAs)
    mm.vmas.insert(new_vma)
    mm.vma_cache = NO_VMA
    hiwater_vm = mm.hiwater_vm
    try:
        move_page_tables(k, mm, vma, old_addr, old_addr + old_len, new_addr)
    except KernelError:
        mm.vmas.remove(new_vma)
        mm.release_vma(new_vma)
        mm.vma_cache = NO_VMA
        mm.free_pgtables(new_addr, new_addr + new_len)
        raise
    if not flags & MREMAP_DONTUNMAP and old_len:
        mm.unmap_range(old_addr, old_addr + old_len)
    mm.hiwater_vm = hiwater_vm
    if new_vma.shm is None and new_vma.file is None and new_vma in mm.vmas.vmas:
        mm.merge_around(new_vma)
    mm.update_hiwater()
    return new_addr


def move_page_tables(k, mm, vma, start, end, new_start):
    """The PTEs of [start, end) to new_start, MOVE_CHUNK pages at a time:
    each chunk gets what it needs (MovePrep.run, alloc_tables), then moves.
    When a chunk cannot be had, the chunks already moved go back (all
    their private pages are this process's own by then: nothing to
    allocate) and KernelError is raised."""
    d = new_start - start
    done = start
    while done < end:
        stop = done + MOVE_CHUNK * PAGE_SIZE
        if stop > end:
            stop = end
        prep = MovePrep(k, mm, vma, done, stop, done + d)
        try:
            prep.run()
            prep.alloc_tables()
        except KernelError:
            if done > start:
                MovePrep(k, mm, vma, start + d, done + d, start).move_ptes()
            raise
        prep.move_ptes()
        done = stop


class MovePrep:
    """One move of [start, end) of vma to new_start: run() and
    alloc_tables() get everything the move needs (swap read in, frames for
    the copies, page tables), move_ptes() then moves every PTE and cannot
    fail."""

    def __init__(self, k, mm, vma, start, end, new_start):
        self.k = k
        self.hw = k.hw
        self.mm = mm
        self.vma = vma
        self.start = start
        self.end = end
        self.delta = new_start - start
        self.pins = []              # shared frames pinned until the move is over
        self.frames = []            # fresh frames for their copies
        self.rec = k.mem_map.base

    def count(self, pa):
        return self.hw.read32(self.rec + ((pa >> 12) << RECORD_SHIFT) + 4)

    def private_anon(self, pa):
        """A private anonymous frame of this VMA (an anon copy in a
        private file mapping included): not the zero page, not shared
        anonymous memory, not a page-cache page."""
        vma = self.vma
        if pa == self.k.zero_page or vma.shm is not None:
            return False
        return vma.file is None or not self.mm.is_file_page(pa)

    def entries(self):
        """[(va, slot)] of the non-empty PTEs of the range, now."""
        out = []
        r64 = self.hw.read64
        for pt, base, i0, i1 in list(self.mm.pt_tables(self.start, self.end)):
            for i in range(i0, i1):
                slot = pt + (i << 3)
                if r64(slot):
                    out.append((base + (i << 12), slot))
        return out

    def swap_needs_reading(self, e):
        """A swap entry that cannot move as it is: another PTE holds its
        slot, or the slot's page is in the swap cache (another process may
        map that page at the old address)."""
        k = self.k
        si, off = k.swap.lookup(e)
        if si is None:
            return False
        return si.map[off] & SWAP_COUNT_MASK > 1 or k.swapcache.lookup(si, off) is not None

    def run(self):
        k = self.k
        hw = self.hw
        mm = self.mm
        try:
            # the shared frames, pinned first (reclaim skips a pinned page,
            # so none of them becomes a shared swap entry meanwhile)
            for va, slot in self.entries():
                e = hw.read64(slot)
                if e & (_PAGE_PRESENT | _PAGE_PROTNONE):
                    pa = e & ADDR
                    if self.private_anon(pa) and self.count(pa) > 1:
                        self.pin(pa)
            # shared swap entries read in, pinned as they come
            for va, slot in self.entries():
                e = hw.read64(slot)
                if e & (_PAGE_PRESENT | _PAGE_PROTNONE) or not self.swap_needs_reading(e):
                    continue
                if not k_swapin(k, mm, self.vma, va, slot, e):
                    raise KernelError("ENOMEM", "mremap: no frame to read swap into")
                e = hw.read64(slot)
                if not e & (_PAGE_PRESENT | _PAGE_PROTNONE):
                    raise KernelError("ENOMEM", "mremap: swap-in raced with reclaim")
                pa = e & ADDR
                if self.count(pa) > 1:
                    self.pin(pa)
            # a frame for each copy
            for _ in range(len(self.pins)):
                pa = k.pcp.alloc()
                if pa is None:
                    raise KernelError("ENOMEM", "mremap: no frame for a copy")
                self.frames.append(pa)
        except KernelError:
            self.undo()
            raise

    def alloc_tables(self):
        """The destination's page tables, for every PTE that will move."""
        mm = self.mm
        for va, slot in self.entries():
            if mm.pte_slot(va + self.delta, True) is None:
                self.undo()
                raise KernelError("ENOMEM", "mremap: no page table")

    def pin(self, pa):
        self.mm.get_page(pa)
        self.pins.append(pa)

    def undo(self):
        k = self.k
        for pa in self.frames:
            k.anon.release(pa)
            k.pcp.free(pa)
        self.frames = []
        self.unpin()
        d = self.delta
        self.mm.free_pgtables(self.start + d, self.end + d)

    def unpin(self):
        for pa in self.pins:
            self.mm.put_page(pa)
        self.pins = []

    def move_ptes(self):
        k = self.k
        hw = self.hw
        mm = self.mm
        r64, w64 = hw.read64, hw.write64
        anon = k.anon
        live = mm.live()
        pinned = {}
        for pa in self.pins:
            pinned[pa] = pinned.get(pa, 0) + 1
        d = self.delta
        flushed = 0
        for va, slot in self.entries():
            e = r64(slot)
            new_va = va + d
            nslot = mm.pte_slot(new_va)
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE):
                pa = e & ADDR
                if self.private_anon(pa):
                    if self.count(pa) - pinned.get(pa, 0) > 1 and self.frames:
                        new = self.frames.pop()         # still shared: our own copy
                        copy_page(hw, new, pa)
                        e = new | (e & ~ADDR)
                        mm.put_page(pa)
                        anon.add_new(new, mm.rkey | (new_va >> 12))
                    elif self.count(pa) - pinned.get(pa, 0) == 1:
                        a = self.rec + ((pa >> 12) << RECORD_SHIFT)
                        if hw.read16(a) & PG_swapcache:
                            k.swapcache.delete(pa >> 12)
                        anon.set_key(pa >> 12, mm.rkey | (new_va >> 12))
                    # (else: moving back a page that is shared again: cannot
                    # happen, a move is one system call; its word names the
                    # old address already)
                if live and e & _PAGE_PRESENT:
                    flushed += 1
                    if flushed <= TLB_FLUSH_CEILING:
                        hw.invlpg(va)
            w64(slot, 0)
            w64(nslot, e)
        if flushed > TLB_FLUSH_CEILING:
            hw.write_cr3(mm.pgd)
        for pa in self.frames:                  # a pinned page whose other users left meanwhile
            k.anon.release(pa)
            k.pcp.free(pa)
        self.frames = []
        self.unpin()
