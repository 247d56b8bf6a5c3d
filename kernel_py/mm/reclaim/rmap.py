# Anonymous pages for reclaim (Linux mm/rmap.c, mm/swap.c's LRU add, the
# anon half of mm/vmscan.c's lists): the reverse map from a frame to the
# PTEs that map it, and the active/inactive anon LRU lists. The file
# reverse map (through mapping.i_mmap) is FileRmap at the end.
#
# Reverse map: one 64-bit word per frame in a page_ext array in physical
# memory (0.2% of RAM, allocated from the buddy at boot in blocks of up to
# 4 MiB, each covering 2**19 frames), like the mapping/index fields of
# Linux's struct page. The word of a private anonymous frame is (the
# layout is mm/types.py's RID_SHIFT, VPN_MASK, SHM_KEY)
#     key = (mm.rid << 36) | (va >> 12)
# naming the PTE that mapped it first (rid < 2**25, va >> 12 < 2**35: a
# small int in the guest VM); 0 for any other frame. k.anon.mms maps
# rid -> MmStruct. A frame shared copy-on-write after fork is mapped at the
# same virtual address in every process that shares it (there is no
# mremap), so its PTEs are found from the key's va: in the key's mm first,
# then, when the frame has more references, in every address space at that
# address (Linux walks the anon_vma chain of the fork family; the process
# table here is small). The frame's mem_map count must equal the PTEs
# found, or someone holds an extra reference (the COW fault pins the page it
# copies): reclaim leaves such pages alone.
#
# (A Python dict keyed by pfn would be simpler, but MicroPython's dicts
# probe linearly with the integer as its own hash and only grow when full:
# with consecutive pfns inserted and deleted, every lookup of a missing key
# ends up walking the whole table.)
#
# Shared anonymous frames (SharedAnon, mm/vm/vma.py) are on the anon LRU too,
# as Linux's shmem pages are (swap-backed): their word is
#     SHM_KEY | (object ino << 36) | page offset
# and their PTEs are found through the object's VMAs (shm_ptes); reclaim
# writes them to swap and leaves the swap entry in the object's index.
#
# LRU: two LruLists (mm/reclaim/lru.py: a PfnList threaded through
# mem_map next/prev), PG_lru / PG_active in the record's flags. New pages
# do not go on a list in the fault path: the handler appends their pa to
# `pending` (Linux's per-CPU lru_add batch) and drain() moves them to the
# inactive head before any scan (in viper on the guest: lru_fast.py); a
# pending pa whose frame was freed meanwhile is skipped. A freed anon frame
# leaves its list and the rmap in release().

from array import array

from kernel_py.mm.reclaim.lru import LruLists
from kernel_py.mm.reclaim.lru_fast import lru_add_drain
from kernel_py.mm.types import (
    ANON_FLAGS, KIND_ANON, KIND_SHIFT, OFF_COUNT, PG_active, PG_lru, PG_referenced, PG_swapcache,
    RECORD_SHIFT, RID_SHIFT, SHM_KEY, SHM_SWAPPED, VM_SHARED, VPN_MASK, _PAGE_PROTNONE,
)
from kernel_py.mm.page.page_ext import EXT_MASK, EXT_SHIFT, WORD_SHIFT, alloc_page_ext
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PTE_ADDR_MASK, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT
from kernel_py.arch.x86.native import VIPER

PENDING_MAX = 32768           # lru_add batch bound (~256 KiB of heap); drained between commands and before reclaim
ADDR = PTE_ADDR_MASK


class AnonLru(LruLists):
    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        mem_map = k.mem_map
        self.base = mem_map.base
        self._r16, self._w16 = k.hw.read16, k.hw.write16
        self._r32 = k.hw.read32
        self.init_lru_lists(mem_map, "anon")
        self.ext = alloc_page_ext(k.buddy, mem_map.nr_pfns, WORD_SHIFT, "the anon rmap")    # pfn -> key
        self.fast_drain = VIPER
        # the same block addresses for lru_fast's viper, which reads an array
        # with plain loads; the fault path keeps the list: indexing an
        # array('q') there cost 0.6-2 us a write fault and ~4 us a COW
        # fault, a list subscript in the viper drain ~0.2 us a page (TCG)
        self._ext_words = array("q", self.ext)
        self._head = array("I", [0, 0, 0])         # a list head's (first, last, n) for lru_fast
        self._r64, self._w64 = k.hw.read64, k.hw.write64
        self.pending = []
        self.mms = {}
        self.shm = {}               # ino -> SharedAnon with users (mm/vm/mmap.py)
        self.next_rid = 1

    # -- address spaces
    def register(self, mm):
        rid = self.next_rid
        while rid in self.mms or rid >= 1 << 25:
            rid = rid + 1 if rid < 1 << 25 else 1
        self.next_rid = rid + 1
        self.mms[rid] = mm
        mm.rid = rid
        mm.rkey = rid << RID_SHIFT

    def unregister(self, mm):
        self.mms.pop(mm.rid, None)

    def key_mm_va(self, key):
        return self.mms.get(key >> RID_SHIFT), (key & VPN_MASK) << 12

    # -- rmap
    def key(self, pfn):
        """The rmap word of pfn: 0, or the key of a PTE that maps it."""
        return self._r64(self.ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3))

    def set_key(self, pfn, key):
        self._w64(self.ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3), key)

    def add_new(self, pa, key):
        """A fresh anon frame mapped by one PTE: rmap, and the lru_add batch."""
        pfn = pa >> 12
        self._w64(self.ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3), key)
        self.pending.append(pa)
        if len(self.pending) > PENDING_MAX:
            self.drain()

    # -- LRU
    def drain(self):
        """The lru_add batch onto the inactive list (pages still anon and
        mapped, not already on a list)."""
        pend = self.pending
        if not pend:
            return
        if self.fast_drain:
            lst, h = self.inactive, self._head
            h[0], h[1], h[2] = lst.first, lst.last, lst.n
            lru_add_drain(pend, self._ext_words, self.base, h)
            lst.first, lst.last, lst.n = h[0], h[1], h[2]
            del pend[:]
            return
        base, r16, w16, r64, ext = self.base, self._r16, self._w16, self._r64, self.ext
        add = self.inactive.push
        for pa in pend:
            pfn = pa >> 12
            if not r64(ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3)):
                continue
            a = base + (pfn << RECORD_SHIFT)
            f = r16(a)
            if f & PG_lru or f >> KIND_SHIFT != KIND_ANON:
                continue
            add(pfn)
            w16(a, (f | PG_lru) & ~PG_active)
        del pend[:]

    def pending_frames(self):
        """The distinct frames drain() would put on a list now: the batch
        keeps the pa of frames freed (or freed and reused) since it was
        filled, which drain skips (debug_vm's count of anon frames)."""
        base, r16, r64, ext = self.base, self._r16, self._r64, self.ext
        live = set()
        for pa in self.pending:
            pfn = pa >> 12
            if not r64(ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3)):
                continue
            f = r16(base + (pfn << RECORD_SHIFT))
            if not f & PG_lru and f >> KIND_SHIFT == KIND_ANON:
                live.add(pfn)
        return len(live)

    def release(self, pa):
        """An anon frame lost its last reference: off its list, out of the
        rmap and the swap cache, flags reset (the frame goes back to pcp or
        the buddy)."""
        pfn = pa >> 12
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_swapcache:
            self.k.swapcache.delete(pfn)
        if f & PG_lru:
            if f & PG_active:
                self.active.remove(pfn)
            else:
                self.inactive.remove(pfn)
        self._w64(self.ext[pfn >> EXT_SHIFT] + ((pfn & EXT_MASK) << 3), 0)
        self._w16(a, ANON_FLAGS)
        if len(self.pending) > PENDING_MAX:
            self.drain()

    def isolate(self, pfn):
        """Take pfn off its list (it stays in the rmap)."""
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru:
            self.lru_del(pfn, a, f)

    def putback_active(self, pfn):
        """An isolated page back, on the active list."""
        a = self.base + (pfn << RECORD_SHIFT)
        self.active.push(pfn)
        self._w16(a, self._r16(a) | PG_lru | PG_active)

    def activate(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru and not f & PG_active:
            self.activate_page(pfn, a, f)

    def rotate(self, pfn):
        """Back to the head of its list (busy: look again later)."""
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        lst = self.active if f & PG_active else self.inactive
        lst.remove(pfn)
        lst.push(pfn)
        self.pgrotated += 1

    def deactivate(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru and f & PG_active:
            self.active.remove(pfn)
            self.inactive.push(pfn)
            self._w16(a, f & ~(PG_active | PG_referenced))
            self.pgdeactivate += 1

    def page_count(self, pfn):
        return self._r32(self.base + (pfn << RECORD_SHIFT) + OFF_COUNT)

    # -- PTEs of a page
    def ptes(self, pfn):
        """[(mm, va, pte_pa, pte)]: the PTEs that map frame pfn, all of
        them present; None when they cannot all be found present (a
        PROT_NONE mapping, or more references than PTEs: a pinned page)."""
        key = self.key(pfn)
        if not key:
            return None
        pa = pfn << 12
        count = self.page_count(pfn)
        if key & SHM_KEY:
            return self.shm_ptes(pa, key, count)
        va = (key & VPN_MASK) << 12
        r64 = self.hw.read64
        first = self.mms.get(key >> RID_SHIFT)
        if count == 1 and first is not None and first.pgd is not None:
            slot = first.pte_slot(va)
            if slot is not None:
                e = r64(slot)
                if e & _PAGE_PRESENT and e & ADDR == pa:
                    return [(first, va, slot, e)]
        out = []
        for mm in self.mms.values():        # shared after fork: same va everywhere
            if not self._add_pte(out, mm, va, pa):
                return None
        if len(out) != count:
            return None
        return out

    def _add_pte(self, out, mm, va, pa):
        """Append mm's PTE at va to out when it maps frame pa; False for a
        PROT_NONE one (such a page is not reclaimed)."""
        if mm.pgd is None:
            return True
        slot = mm.pte_slot(va)
        if slot is None:
            return True
        e = self._r64(slot)
        if e & ADDR != pa or not e & (_PAGE_PRESENT | _PAGE_PROTNONE):
            return True
        if not e & _PAGE_PRESENT:
            return False
        out.append((mm, va, slot, e))
        return True

    def shm_ptes(self, pa, key, count):
        """The PTEs of a shared anonymous frame, through its object's VMAs:
        they and the object's own reference must account for count (an
        empty list: only the object holds it)."""
        shm = self.shm.get((key & ~SHM_KEY) >> RID_SHIFT)
        if shm is None:
            return None
        off = key & VPN_MASK
        out = []
        for vma in shm.vmas:
            va = shm.va_of(vma, off)
            if va is not None and not self._add_pte(out, vma.mm, va, pa):
                return None
        if len(out) + 1 != count:
            return None
        return out

    def shm_object(self, key):
        """(SharedAnon, offset) of a shared anonymous frame's word."""
        return self.shm.get((key & ~SHM_KEY) >> RID_SHIFT), key & VPN_MASK

    def referenced(self, ptes):
        """folio_referenced: how many of the PTEs have the accessed bit;
        clears it (test-and-clear), with invlpg when the tables are live."""
        hw = self.hw
        w64 = hw.write64
        cr3 = hw.read_cr3() & ADDR
        n = 0
        for mm, va, slot, e in ptes:
            if e & _PAGE_ACCESSED:
                w64(slot, e & ~_PAGE_ACCESSED)
                if mm.pgd == cr3:
                    hw.invlpg(va)
                n += 1
        return n

    def sizes(self):
        return self.inactive.n, self.active.n

    def nr_shmem(self):
        """Shared anonymous frames in memory (on the lists too, as Linux's
        shmem pages; meminfo's AnonPages leaves them out)."""
        n = 0
        for shm in self.shm.values():
            for v in shm.pages.values():
                if not v & SHM_SWAPPED:     # on swap
                    n += 1
        return n

    def nr_anon_pages(self):
        """Private anon frames (all on the lists once the batch is drained)."""
        self.drain()
        return self.inactive.n + self.active.n - self.nr_shmem()


class FileRmap:
    """The file reverse map (Linux rmap.c's rmap_walk_file), part of the page
    cache object (mm/filemap/filemap.py's PageCache): the PTEs that map a
    page-cache page are found through its mapping's i_mmap, the file VMAs
    (each knows its mm), at the address its index has in each."""

    def mapped_ptes(self, mapping, index, pa):
        """[(mm, va, slot, pte, vma)]: every PTE of the file VMAs that maps
        page pa (present or PROT_NONE), or None unless they account for
        every reference but the cache's own and the file system's
        (mapping.fs_refs; else someone pins the page: a fault copying it,
        a read in flight)."""
        out = []
        for vma in mapping.i_mmap:
            r = vma.file_index_range(index, index + 1)
            if r is None or vma.mm is None or vma.mm.pgd is None:
                continue
            slot = vma.mm.pte_slot(r[0])
            if slot is None:
                continue
            e = self.hw.read64(slot)
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE) and e & PTE_ADDR_MASK == pa:
                out.append((vma.mm, r[0], slot, e, vma))
        if len(out) != self.page_count(pa) - 1 - mapping.fs_refs:
            return None
        return out

    def page_referenced(self, ptes):
        """Test-and-clear the accessed bit of each PTE (invlpg where the
        tables are live: the TLB caches A, SDM 4.8); how many had it."""
        hw = self.hw
        n = 0
        for mm, va, slot, e, vma in ptes:
            if e & _PAGE_ACCESSED:
                hw.write64(slot, e & ~_PAGE_ACCESSED)
                if mm.live():
                    hw.invlpg(va)
                n += 1
        return n

    def try_to_unmap(self, mapping, pa, ptes):
        """Clear every PTE of the page and drop its references; a shared
        PTE's dirty bit (set in memory by the processor's first store
        through it, SDM 4.8) becomes the page's (set_page_dirty) first, so
        the store is written back, not lost."""
        hw = self.hw
        for mm, va, slot, e, vma in ptes:
            e = hw.read64(slot)
            hw.write64(slot, 0)
            if mm.live():
                hw.invlpg(va)           # the TLB may still hold the translation (SDM 4.10.4)
            if e & _PAGE_DIRTY and vma.flags & VM_SHARED:
                self.set_page_dirty(mapping, pa)
            mm.rss_file -= 1
            self.put_page(pa)

    def nr_mapped(self):
        """meminfo Mapped (NR_FILE_MAPPED): cached pages some PTE maps
        (a reference beyond the cache's and the file system's own), in
        files that are mapped."""
        n = 0
        r32, base = self._r32, self.base
        for m in self.mappings.values():
            if m.i_mmap:
                own = 1 + m.fs_refs
                for pa in m.pages.values():
                    if r32(base + ((pa >> PAGE_SHIFT) << RECORD_SHIFT) + OFF_COUNT) > own:
                        n += 1
        return n
