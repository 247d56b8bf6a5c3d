# page_owner (Linux mm/page_owner.c): who allocated each page. With
# `page_owner=on` on the command line (or `debug_pagealloc=on`, whose fault
# reports name the last owner), every buddy allocation records its order,
# gfp mask, site, pid and a timestamp in a page_ext entry of the block's
# head frame; a free records when and where, and keeps the allocation
# fields, so a use-after-free report can still name the last owner.
#
# Entry (32 bytes per frame, page_ext.py):
#   off  0  u64  ts_nsec        allocation time
#   off  8  u64  free_ts_nsec   free time (0: not freed since)
#   off 16  u64  pid | alloc site << 16 | gfp << 32
#   off 24  u64  order | flags << 8 | free site << 16 | free pid << 32
# (each word stays below 2**62: a small int in the guest VM)
#
# The site: there are no stack traces here; a site is the pair (kernel
# function, console command) - the function named from the owner kind the
# allocator was given (allocate_slab, pte_alloc, ...), the command from the
# shell (k.comm; "swapper" at boot, "kernel" between commands). Sites are
# interned in a Python list (a few hundred at most), the entry holds the id.
#
# Only block heads are written (a 1024-page block costs one entry, not
# 1024); the owner of any frame is the newest entry among the 11 aligned
# heads that could cover it (owner_of). split() copies the head's entry to
# every page of a block cut into order-0 pages (pcp refill), as Linux's
# split_page_owner does.

from kernel_py.mm import gfp as G
from kernel_py.mm.types import (
    KIND_FREE, KIND_NAMES, KIND_NONE, KIND_SHIFT, PG_NAMES, PG_buddy, PG_tail, RECORD_SHIFT,
)
from kernel_py.mm.page.page_ext import alloc_page_ext, ext_shift
from kernel_py.mm.page.zone import MAX_ORDER
from kernel_py.arch.x86.cpu import PAGE_SHIFT

ENTRY_SHIFT = 5
OWNER_SHIFT = ext_shift(ENTRY_SHIFT)    # 17: frames per block of 32-byte entries
OWNER_MASK = (1 << OWNER_SHIFT) - 1
OWNER = 1                       # PAGE_EXT_OWNER: the entry was ever written
ALLOCATED = 2                   # PAGE_EXT_OWNER_ALLOCATED: allocated now
PAGEBLOCK_ORDER = 9             # Linux x86-64 pageblock_order (2 MiB)
TRUE_WORDS = ("on", "1", "y", "yes", "true")

# The kernel function a kind of owner stands for (Linux's stack would name it).
KIND_FUNCTIONS = {
    1: "__free_pages",          # KIND_FREE: the site of a free
    2: "alloc_pages",           # KIND_KERNEL: kmalloc_large, mempools, page_ext...
    3: "allocate_slab",
    4: "pte_alloc_one",
    5: "alloc_anon_folio",
    6: "filemap_alloc_folio",
    7: "__vmalloc_area_node",
    9: "zero_page_init",
    10: "swap_cache_alloc",
}


def param_on(params, name):
    """Linux's kstrtobool for `name=on` style parameters."""
    v = params.get(name)
    return v is not None and v.lower() in TRUE_WORDS


def migrate_type(gfp):
    """gfp_migratetype: the free-list type Linux would serve the mask from."""
    if gfp & G.__GFP_MOVABLE:
        return "Movable"
    if gfp & G.__GFP_RECLAIMABLE:
        return "Reclaimable"
    return "Unmovable"


class PageOwner:
    def __init__(self, k):
        self.k = k
        hw = k.hw
        self.hw = hw
        self.nr_pfns = k.mem_map.nr_pfns
        self.ext = alloc_page_ext(k.buddy, self.nr_pfns, ENTRY_SHIFT, "page_owner")
        self._r64, self._w64 = hw.read64, hw.write64
        self.sites = ["early"]          # id -> "function\tcommand"; 0: before page_owner
        self.site_ids = {"early": 0}
        self.rdtsc = hw.rdtsc
        self.clock = k.clock
        self.t0 = hw.rdtsc()            # timestamps count from here (Linux: from boot)
        self.early = self.mark_early()

    def addr(self, pfn):
        return self.ext[pfn >> OWNER_SHIFT] + ((pfn & OWNER_MASK) << ENTRY_SHIFT)

    def now_ns(self):
        c = self.clock
        return c.ns(self.rdtsc() - self.t0) if c is not None else 0

    def site(self, kind):
        """Interned id of (the function for `kind`, the running command)."""
        text = "%s\t%s" % (KIND_FUNCTIONS.get(kind, "alloc_pages"), self.k.comm)
        i = self.site_ids.get(text)
        if i is None:
            i = len(self.sites)
            if i > 0xFFFF:
                return 0
            self.sites.append(text)
            self.site_ids[text] = i
        return i

    def pid(self):
        procs = self.k.procs
        cur = procs.current if procs is not None else None
        return cur.pid if cur is not None else 0

    # -- the allocator's hooks
    def set_owner(self, pfn, order, gfp, kind):
        a = self.ext[pfn >> OWNER_SHIFT] + ((pfn & OWNER_MASK) << ENTRY_SHIFT)
        w64 = self._w64
        w64(a, self.now_ns())
        w64(a + 8, 0)
        w64(a + 16, self.pid() | (self.site(kind) << 16) | (gfp << 32))
        w64(a + 24, order | ((OWNER | ALLOCATED) << 8))

    def reset_owner(self, pfn, order):
        """__reset_page_owner: the page is free; the allocation fields stay."""
        a = self.ext[pfn >> OWNER_SHIFT] + ((pfn & OWNER_MASK) << ENTRY_SHIFT)
        w64 = self._w64
        v = self._r64(a + 24)
        if not v & (OWNER << 8):        # never seen allocated (freed before we started)
            v = order | (OWNER << 8)
        w64(a + 8, self.now_ns())
        w64(a + 24, (v & 0xFF) | (OWNER << 8) | (self.site(KIND_FREE) << 16) | (self.pid() << 32))

    def split(self, pfn, order):
        """split_page_owner: every page of the block gets the head's entry,
        as order 0 (each is freed on its own later)."""
        r64, w64 = self._r64, self._w64
        a = self.addr(pfn)
        ts, fts, info = r64(a), r64(a + 8), r64(a + 16)
        tail = r64(a + 24) & ~0xFF
        for p in range(pfn, pfn + (1 << order)):
            b = self.addr(p)
            w64(b, ts)
            w64(b + 8, fts)
            w64(b + 16, info)
            w64(b + 24, tail)

    def mark_early(self):
        """init_early_allocated_pages: blocks allocated before page_owner
        existed (mem_map heads that are neither free nor tails) get site 0."""
        mm = self.k.mem_map
        r32 = self.hw.read32
        base, n = mm.base, 0
        pfn = 0
        while pfn < self.nr_pfns:
            v = r32(base + (pfn << RECORD_SHIFT))
            kind = (v >> KIND_SHIFT) & 0xF
            step = 1
            if kind != KIND_NONE and kind != KIND_FREE and not v & (PG_buddy | PG_tail):
                order = (v >> 16) & 0xFF
                a = self.addr(pfn)
                self._w64(a + 16, 0)
                self._w64(a + 24, order | ((OWNER | ALLOCATED) << 8))
                n += 1
                step = 1 << order if order <= MAX_ORDER else 1
            elif v & PG_buddy:
                step = 1 << ((v >> 16) & 0xFF)
            pfn += step
        return n

    # -- queries
    def entry(self, pfn):
        """(ts, free_ts, pid, site, gfp, order, flags, free_site, free_pid)."""
        r64 = self._r64
        a = self.addr(pfn)
        info, tail = r64(a + 16), r64(a + 24)
        return (r64(a), r64(a + 8), info & 0xFFFF, (info >> 16) & 0xFFFF, info >> 32,
                tail & 0xFF, (tail >> 8) & 0xFF, (tail >> 16) & 0xFFFF, tail >> 32)

    def owner_of(self, pfn):
        """(head pfn, entry) of the newest allocation covering pfn, or None."""
        best = None
        for o in range(MAX_ORDER + 1):
            h = pfn & ~((1 << o) - 1)
            e = self.entry(h)
            if e[6] & OWNER and e[5] >= o and pfn < h + (1 << e[5]):
                if best is None or e[0] >= best[1][0]:
                    best = (h, e)
        return best

    def site_lines(self, site):
        fn, _, cmd = self.sites[site].partition("\t")
        if not cmd or cmd in ("swapper", "kernel"):
            return " %s" % fn
        return " %s\n %s (console command)" % (fn, cmd)

    def format_entry(self, pfn, e):
        """One record of /sys/kernel/debug/page_owner (print_page_owner)."""
        ts, _fts, pid, site, gfp, order, _fl, _fs, _fp = e
        flags = self.hw.read16(self.k.mem_map.base + (pfn << RECORD_SHIFT))
        names = [PG_NAMES[i] for i in range(12) if flags & (1 << i)]
        names.append("kind=" + KIND_NAMES[flags >> KIND_SHIFT])
        mt = migrate_type(gfp)
        return ("Page allocated via order %d, mask 0x%x(%s), pid %d, ts %d ns\n"
                "PFN 0x%x type %s Block %d type %s Flags 0x%x(%s)\n%s\n" % (
                    order, gfp, G.format_gfp(gfp) if gfp else "0", pid, ts,
                    pfn, mt, pfn >> PAGEBLOCK_ORDER, mt, flags, "|".join(names),
                    self.site_lines(site)))

    def describe_freed(self, pfn):
        """'last owner: ..., freed at ...' for a fault report; None if unknown."""
        got = self.owner_of(pfn)
        if got is None:
            return None
        h, e = got
        ts, fts, pid, site, gfp, order, fl, fsite, fpid = e
        text = "last owner: %s, pid %d, order %d block at pfn 0x%x, allocated at %d ns" % (
            self.sites[site].replace("\t", " <- "), pid, order, h, ts)
        if not fl & ALLOCATED:
            text += ", freed at %d ns by %s" % (fts, self.sites[fsite].replace("\t", " <- "))
        return text

    def allocated(self):
        """[(pfn, entry)] of the blocks allocated now, in pfn order."""
        out = []
        pfn = 0
        mm = self.k.mem_map
        r32 = self.hw.read32
        while pfn < self.nr_pfns:
            tail = self._r64(self.addr(pfn) + 24)
            step = 1
            if tail & (ALLOCATED << 8):
                v = r32(mm.base + (pfn << RECORD_SHIFT))
                # a head the buddy still calls allocated (split pages: order 0)
                if not v & (PG_buddy | PG_tail) and (v >> KIND_SHIFT) & 0xF not in (KIND_NONE, KIND_FREE):
                    e = self.entry(pfn)
                    out.append((pfn, e))
                    step = 1 << e[5]
            pfn += step
        return out

    def read(self):
        return "".join(self.format_entry(pfn, e) + "\n" for pfn, e in self.allocated())

    def summary(self):
        """page_owner_sort: (times, pages, site) per site, most pages first."""
        times, pages = {}, {}
        for _pfn, e in self.allocated():
            s = e[3]
            times[s] = times.get(s, 0) + 1
            pages[s] = pages.get(s, 0) + (1 << e[5])
        rows = [(pages[s], times[s], s) for s in pages]
        rows.sort(reverse=True)
        return rows

    def sort_text(self):
        out = []
        for pg, t, s in self.summary():
            out.append("%d times, %d pages:\n%s\n" % (t, pg, self.site_lines(s)))
        return "\n".join(out)
