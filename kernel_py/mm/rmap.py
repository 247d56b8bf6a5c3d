# Anonymous pages for reclaim (Linux mm/rmap.c, mm/swap.c's LRU add, the
# anon half of mm/vmscan.c's lists): the reverse map from a frame to the
# PTEs that map it, and the active/inactive anon LRU lists.
#
# Reverse map: k.anon.rmap, pfn -> key, or a list of keys when the frame is
# shared copy-on-write after fork. A key names one PTE:
#     key = (mm.rid << 36) | (va >> 12)
# (a small int in the guest VM: rid < 2**25, va >> 12 < 2**35); k.anon.mms
# maps rid -> MmStruct. Only private anonymous frames are in the rmap
# (SharedAnon frames and the zero page are not, and are never reclaimed).
# The page's mem_map count equals its number of keys unless someone holds
# an extra reference (the COW fault pins the page it copies): reclaim skips
# such pages as busy.
#
# LRU: two LruLists (filemap.LruList, threaded through mem_map next/prev),
# PG_lru / PG_active in the record's flags. New pages do not go on a list in
# the fault path: the handler appends their pa to `pending` (Linux's
# per-CPU lru_add batch) and drain() moves them to the inactive head before
# any scan; a pending pa whose frame was freed meanwhile is skipped. A
# freed anon frame leaves its list and the rmap in release().

from kernel_py.mm.filemap import LruList
from kernel_py.mm.page import (
    KIND_ANON, KIND_SHIFT, NIL, OFF_COUNT, PG_active, PG_lru, PG_referenced, RECORD_SHIFT,
)
from kernel_py.x86 import PTE_ADDR_MASK, _PAGE_ACCESSED, _PAGE_PRESENT

RID_SHIFT = 36
VPN_MASK = (1 << RID_SHIFT) - 1
ANON_FLAGS = KIND_ANON << KIND_SHIFT
PENDING_MAX = 512               # drain the lru_add batch beyond this
ADDR = PTE_ADDR_MASK


class AnonLru:
    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        mem_map = k.mem_map
        self.base = mem_map.base
        self._r16, self._w16 = k.hw.read16, k.hw.write16
        self._r32 = k.hw.read32
        self.active = LruList(mem_map, "active_anon")
        self.inactive = LruList(mem_map, "inactive_anon")
        self.rmap = {}
        self.pending = []
        self.mms = {}
        self.next_rid = 1
        # /proc/vmstat
        self.pgactivate = 0
        self.pgdeactivate = 0
        self.pgrotated = 0

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
    def add(self, pfn, key):
        """One more PTE (key) maps the anon frame pfn."""
        rmap = self.rmap
        v = rmap.get(pfn)
        if v is None:
            rmap[pfn] = key
        elif type(v) is int:
            rmap[pfn] = [v, key]
        else:
            v.append(key)

    def add_new(self, pa, key):
        """A fresh anon frame mapped by one PTE: rmap, and the lru_add batch."""
        self.rmap[pa >> 12] = key
        self.pending.append(pa)
        if len(self.pending) > PENDING_MAX:
            self.drain()

    def remove(self, pfn, key):
        """The PTE (key) no longer maps pfn."""
        rmap = self.rmap
        v = rmap.get(pfn)
        if v is None:
            return
        if type(v) is int:
            if v == key:
                del rmap[pfn]
            return
        if key in v:
            v.remove(key)
        if len(v) == 1:
            rmap[pfn] = v[0]
        elif not v:
            del rmap[pfn]

    def keys(self, pfn):
        v = self.rmap.get(pfn)
        if v is None:
            return []
        if type(v) is int:
            return [v]
        return list(v)

    def nr_mapped(self, pfn):
        v = self.rmap.get(pfn)
        if v is None:
            return 0
        return 1 if type(v) is int else len(v)

    # -- LRU
    def drain(self):
        """The lru_add batch onto the inactive list (pages still anon and
        mapped, not already on a list)."""
        pend = self.pending
        if not pend:
            return
        rmap, base, r16, w16 = self.rmap, self.base, self._r16, self._w16
        add = self.inactive.add_head
        for pa in pend:
            pfn = pa >> 12
            if pfn not in rmap:
                continue
            a = base + (pfn << RECORD_SHIFT)
            f = r16(a)
            if f & PG_lru or f >> KIND_SHIFT != KIND_ANON:
                continue
            add(pfn)
            w16(a, (f | PG_lru) & ~PG_active)
        del pend[:]

    def release(self, pa):
        """An anon frame lost its last reference: off its list and out of
        the rmap, flags reset (the frame goes back to pcp or the buddy)."""
        pfn = pa >> 12
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru:
            if f & PG_active:
                self.active.remove(pfn)
            else:
                self.inactive.remove(pfn)
        self.rmap.pop(pfn, None)
        self._w16(a, ANON_FLAGS)

    def isolate(self, pfn):
        """Take pfn off its list (it stays in the rmap)."""
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru:
            if f & PG_active:
                self.active.remove(pfn)
            else:
                self.inactive.remove(pfn)
            self._w16(a, f & ~(PG_lru | PG_active))

    def putback_active(self, pfn):
        """An isolated page back, on the active list."""
        a = self.base + (pfn << RECORD_SHIFT)
        self.active.add_head(pfn)
        self._w16(a, self._r16(a) | PG_lru | PG_active)

    def activate(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru and not f & PG_active:
            self.inactive.remove(pfn)
            self.active.add_head(pfn)
            self._w16(a, (f | PG_active) & ~PG_referenced)
            self.pgactivate += 1

    def rotate(self, pfn):
        """Back to the head of its list (busy: look again later)."""
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        lst = self.active if f & PG_active else self.inactive
        lst.remove(pfn)
        lst.add_head(pfn)
        self.pgrotated += 1

    def deactivate(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_lru and f & PG_active:
            self.active.remove(pfn)
            self.inactive.add_head(pfn)
            self._w16(a, f & ~(PG_active | PG_referenced))
            self.pgdeactivate += 1

    def page_count(self, pfn):
        return self._r32(self.base + (pfn << RECORD_SHIFT) + OFF_COUNT)

    # -- PTEs of a page
    def ptes(self, pfn):
        """[(mm, va, pte_pa, pte)] for every PTE the rmap lists for pfn;
        None if one of them does not map the frame present (PROT_NONE, or
        an rmap/PTE mismatch): such a page is not reclaimed."""
        r64 = self.hw.read64
        pa = pfn << 12
        out = []
        for key in self.keys(pfn):
            mm = self.mms.get(key >> RID_SHIFT)
            if mm is None or mm.pgd is None:
                return None
            va = (key & VPN_MASK) << 12
            slot = mm.pte_slot(va)
            if slot is None:
                return None
            e = r64(slot)
            if not e & _PAGE_PRESENT or e & ADDR != pa:
                return None
            out.append((mm, va, slot, e))
        return out

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

    def nr_anon_pages(self):
        return len(self.rmap)

    def vmstat_pairs(self):
        return [("nr_inactive_anon", self.inactive.n), ("nr_active_anon", self.active.n),
                ("nr_anon_pages", len(self.rmap)),
                ("pgactivate_anon", self.pgactivate), ("pgdeactivate_anon", self.pgdeactivate),
                ("pgrotated_anon", self.pgrotated)]


__all__ = ["AnonLru", "RID_SHIFT", "VPN_MASK", "NIL"]
