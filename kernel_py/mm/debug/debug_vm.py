# Kernel-side consistency checks of physical memory (in the spirit of
# Linux's CONFIG_DEBUG_VM and the page-types/kpageflags walk): one pass over
# mem_map, block by block, counts every frame by owner, and each count is
# checked against the counter its subsystem keeps:
#
#   free blocks per zone and order   == the buddy's free lists (and free_pages)
#   free + every allocated block     == managed pages (frame conservation)
#   slab pages per cache (aux = id)  == the cache's slabs * pages per slab
#   SLOB pages + kmalloc_large pages == SLOB's and kmalloc's page counts
#   vmalloc frames                   == VmallocUsed
#   page-cache frames                == nr_file_pages
#   anon frames                      == LRU (shmem frames are on it too) +
#                                       lru_add batch + pcp list
#   page-table frames                == the tables reachable from init_mm's
#                                       PML4, every process's PML4 and the
#                                       pfdemo root (walked here), and each
#                                       mm's own count (nr_pgtables, VmPTE)
#                                       agrees with its walk
#   swap entries in user PTEs        == each mm's swapents (MM_SWAPENTS), and
#                                       their sum + the swap entries in
#                                       shmem objects == the swap maps' use
#                                       counts; slots with a count or
#                                       SWAP_HAS_CACHE == inuse
#   swap cache                       == slots with SWAP_HAS_CACHE, each
#                                       naming a frame with PG_swapcache,
#                                       == PG_swapcache frames in mem_map
#                                       == SwapCached (swapcache.nr)
#   each process's PTEs              == its RSS counters (file, anon, shmem),
#                                       and each anonymous frame they map has
#                                       the rmap word naming that PTE
#
# The walk skips a block's other frames by its order, so a wrong order in a
# record shows as a conservation error. It reads mem_map through one hw.mem
# view, a byte at a time: no Python object per frame.

from kernel_py.mm.types import (
    KIND_ANON, KIND_FREE, KIND_KERNEL, KIND_NAMES, KIND_NONE, KIND_PAGECACHE, KIND_PAGETABLE,
    KIND_SHIFT, KIND_SLAB, KIND_VMALLOC, PG_buddy, PG_swapcache, PG_tail, RECORD_SHIFT, RID_SHIFT,
    SHM_KEY, SHM_SWAPPED, SWAP_COUNT_MASK, SWAP_HAS_CACHE, SWAP_MAP_BAD, VPN_MASK, _PAGE_PROTNONE,
    is_swap_pte,
)
from kernel_py.mm.page.zone import NR_ORDERS
from kernel_py.mm.slab.common import SLOB_AUX
from kernel_py.mm.slab.kmalloc import LARGE_AUX
from kernel_py.mm.slab.slob import BIG_AUX
from kernel_py.arch.x86.cpu import PGDIR_SHIFT, PTE_ADDR_MASK, _PAGE_PRESENT
from kernel_py.arch.x86.layout import KERNEL_HALF
from kernel_py.arch.x86.pgtable import VA_END, tables

KERNEL_SPACE = KERNEL_HALF << PGDIR_SHIFT       # the kernel half's first address, before sign extension


NR_KINDS = 16


class FrameCensus:
    """Frames by owner kind, free blocks by (zone, order), slab pages by
    cache id and by the kmalloc_large / SLOB aux bytes."""

    def __init__(self, nr_zones):
        self.kinds = [0] * NR_KINDS
        self.free_blocks = [[0] * NR_ORDERS for _ in range(nr_zones)]
        self.slab_by_id = [0] * 256
        self.kernel_by_aux = [0] * 256
        self.none = 0                   # reserved or unmanaged frames, holes
        self.swapcache = 0              # block heads with PG_swapcache
        self.bad = []                   # (pfn, what) found during the walk


def census(k):
    """Walk mem_map once; a FrameCensus."""
    mm = k.mem_map
    n = mm.nr_pfns
    view = k.hw.mem(mm.base, n << RECORD_SHIFT)
    zones = k.zones
    c = FrameCensus(len(zones))
    kinds = c.kinds
    pfn = 0
    while pfn < n:
        i = pfn << RECORD_SHIFT
        flags = view[i] | (view[i + 1] << 8)
        kind = flags >> KIND_SHIFT
        if kind == KIND_NONE:
            if flags:
                c.bad.append((pfn, "flags 0x%x without an owner" % flags))
            c.none += 1
            pfn += 1
            continue
        order = view[i + 2]
        if flags & PG_tail or order >= NR_ORDERS:
            c.bad.append((pfn, "a block starts at a tail or has order %d" % order))
            pfn += 1
            continue
        if kind == KIND_FREE:
            if not flags & PG_buddy:
                c.bad.append((pfn, "free without PG_buddy"))
            z = zone_index(zones, pfn)
            if z < 0:
                c.bad.append((pfn, "free block outside every zone"))
            else:
                c.free_blocks[z][order] += 1
        elif flags & PG_buddy:
            c.bad.append((pfn, "PG_buddy on an allocated block"))
        if flags & PG_swapcache:
            c.swapcache += 1
        elif kind == KIND_SLAB:
            c.slab_by_id[view[i + 3]] += 1 << order
        elif kind == KIND_KERNEL:
            c.kernel_by_aux[view[i + 3]] += 1 << order
        kinds[kind] += 1 << order
        pfn += 1 << order
    return c


def zone_index(zones, pfn):
    for z in zones:
        if z.managed_pages and z.zone_start_pfn <= pfn < z.zone_end_pfn:
            return z.idx
    return -1


def expected_anon(k):
    """Anon frames the kernel knows of: the anon LRU lists (shared
    anonymous frames included: they are swap-backed, mm/reclaim/rmap.py), the
    lru_add batch, the pcp list (allocated, KIND_ANON, not mapped) and the
    pfdemo page."""
    total = 0
    anon = k.anon
    if anon is not None:
        total += anon.active.n + anon.inactive.n + anon.pending_frames()
    pcp = k.pcp
    if pcp is not None:
        total += len(pcp)
    demo = k.pfdemo          # pfdemo's one page (KIND_ANON, no mm)
    if demo is not None and demo.pa is not None:
        total += 1
    return total


def shm_swap_entries(k):
    """Swap entries held in shared anonymous objects' indices and by tmpfs
    files (mm/filemap/shmem.py), one use each."""
    anon = k.anon
    n = 0
    for shm in (anon.shm.values() if anon is not None else ()):
        for v in shm.pages.values():
            if v & SHM_SWAPPED:
                n += 1
    if k.vfs is not None:
        for sb in k.vfs.superblocks():
            n += sb.nr_swap_entries()
    return n


def check(k):
    """(census, [violation text]) for the whole of physical memory."""
    c = census(k)
    out = ["pfn 0x%x: %s" % bad for bad in c.bad]
    b = k.buddy
    free = 0
    for z in k.zones:
        if not z.managed_pages:
            continue
        zfree = 0
        for o in range(NR_ORDERS):
            got, want = c.free_blocks[z.idx][o], z.free_area[o].n
            if got != want:
                out.append("zone %s order %d: %d free blocks in mem_map, %d on the free list"
                           % (z.name, o, got, want))
            zfree += got << o
        if zfree != z.free_pages:
            out.append("zone %s: %d free frames in mem_map, free_pages %d" % (z.name, zfree, z.free_pages))
        free += zfree
    used = sum(c.kinds) - c.kinds[KIND_FREE]
    if free + used != b.managed_pages():
        out.append("conservation: free %d + allocated %d != managed %d"
                   % (free, used, b.managed_pages()))
    out += check_slab(k, c)
    out += check_counters(k, c)
    out += check_tables_and_swap(k, c)
    out += check_mm_pages(k)
    return c, out


def check_slab(k, c):
    st = k.slab
    if st is None:
        return []
    out = []
    for s in st.all_caches():
        if s.backend == "slob":
            continue                    # SLOB caches share SLOB_AUX pages
        want = s.counts()[3] * s.pages_per_slab()
        if c.slab_by_id[s.id] != want:
            out.append("cache %s: %d slab frames in mem_map, %d by its counters"
                       % (s.name, c.slab_by_id[s.id], want))
    slob = st.slob.nr_pages if st.slob is not None else 0
    got = c.slab_by_id[SLOB_AUX] + c.kernel_by_aux[BIG_AUX]
    if got != slob:
        out.append("slob: %d frames in mem_map, nr_pages %d" % (got, slob))
    if c.kernel_by_aux[LARGE_AUX] != st.large_pages:
        out.append("kmalloc_large: %d frames in mem_map, large_pages %d"
                   % (c.kernel_by_aux[LARGE_AUX], st.large_pages))
    return out


def check_counters(k, c):
    out = []
    pairs = [(KIND_ANON, expected_anon(k))]
    if k.vmalloc is not None:
        pairs.append((KIND_VMALLOC, k.vmalloc.nr_pages))
    if k.pagecache is not None:
        pairs.append((KIND_PAGECACHE, k.pagecache.nr_file))
    for kind, want in pairs:
        if c.kinds[kind] != want:
            out.append("%s: %d frames in mem_map, %d by the counters"
                       % (KIND_NAMES[kind], c.kinds[kind], want))
    return out


class TableWalk:
    """Tables and swap PTEs found below one root (the root not counted)."""

    def __init__(self, hw):
        self.hw = hw
        self.tables = 0
        self.swap_ptes = 0

    def walk(self, root, start, end):
        """Count the tables below the PML4 at root that map part of
        [start, end) (pgtable.tables); in each page table count the swap
        entries (mm/types.py's is_swap_pte)."""
        r64 = self.hw.read64
        for level, t, _epa in tables(self.hw, root, start, end):
            self.tables += 1
            if level == 1:
                for i in range(512):
                    if is_swap_pte(r64(t + 8 * i)):
                        self.swap_ptes += 1


def check_tables_and_swap(k, c):
    """KIND_PAGETABLE frames against the tables walked from every root;
    each mm's nr_pgtables and swapents against its own walk; the swap
    maps against the swap PTEs."""
    out = []
    hw = k.hw
    kern = TableWalk(hw)
    kern.walk(k.init_mm.pgd, KERNEL_SPACE, VA_END)     # shared by every process PML4
    walked = 1 + kern.tables
    demo = k.pfdemo
    if demo is not None:
        w = TableWalk(hw)
        w.walk(demo.root, 0, KERNEL_SPACE)
        walked += 1 + w.tables
    swap_ptes = 0
    procs = k.procs
    seen = []
    for t in (procs.tasks.values() if procs is not None else ()):
        mm = t.mm
        if mm is None or mm in seen:        # zombies, kernel threads; vfork shares an mm
            continue
        seen.append(mm)
        w = TableWalk(hw)
        w.walk(mm.pgd, 0, KERNEL_SPACE)
        walked += 1 + w.tables
        swap_ptes += w.swap_ptes
        if w.tables != mm.nr_pgtables:
            out.append("pid %d: %d page tables walked, nr_pgtables %d" % (t.pid, w.tables, mm.nr_pgtables))
        if w.swap_ptes != mm.swapents:
            out.append("pid %d: %d swap PTEs walked, swapents %d" % (t.pid, w.swap_ptes, mm.swapents))
    if c.kinds[KIND_PAGETABLE] != walked:
        out.append("pagetable: %d frames in mem_map, %d tables reachable (kernel %d)"
                   % (c.kinds[KIND_PAGETABLE], walked, 1 + kern.tables))
    swap = k.swap
    if swap is not None:
        out += check_swap_maps(k, c, swap, swap_ptes + shm_swap_entries(k))
    return out


def check_mm_pages(k):
    """Each process's RSS counters against its PTEs, and every mapped
    anonymous frame's rmap word against the PTE that maps it: a private
    page's word names the address it is mapped at (mm/reclaim/rmap.py: a
    page shared after fork is at that address in every process; mremap
    keeps it so), a shared anonymous page's names its object and offset."""
    out = []
    procs = k.procs
    anon = k.anon
    if procs is None or anon is None:
        return out
    hw = k.hw
    r64, r16 = hw.read64, hw.read16
    base = k.mem_map.base
    zero = k.zero_page
    seen = []
    for pid in sorted(procs.tasks):
        mm = procs.tasks[pid].mm
        if mm is None or mm.pgd is None or mm in seen:
            continue
        seen.append(mm)
        rss = [0, 0, 0]                     # file, anon, shmem
        bad = 0
        for vma in mm.vmas:
            shm = vma.shm
            for pt, vbase, i0, i1 in mm.pt_tables(vma.start, vma.end):
                for i in range(i0, i1):
                    e = r64(pt + (i << 3))
                    if not e & (_PAGE_PRESENT | _PAGE_PROTNONE):
                        continue
                    pa = e & PTE_ADDR_MASK
                    if pa == zero:
                        continue
                    va = vbase + (i << 12)
                    pfn = pa >> 12
                    if shm is not None:
                        rss[2] += 1
                        want = SHM_KEY | (shm.ino << RID_SHIFT) | vma.offset_of(va)
                    elif vma.file is not None and r16(base + (pfn << RECORD_SHIFT)) >> KIND_SHIFT == KIND_PAGECACHE:
                        rss[0] += 1
                        continue
                    else:
                        rss[1] += 1
                        want = None
                    key = anon.key(pfn)
                    ok = key == want if want is not None else (
                        key and not key & SHM_KEY and key & VPN_MASK == va >> 12)
                    if not ok and bad < 4:
                        out.append("pid %d: the %s page at 0x%x (pfn 0x%x) has rmap word 0x%x" % (
                            pid, "shared" if shm is not None else "private", va, pfn, key))
                    if not ok:
                        bad += 1
        got = (mm.rss_file, mm.rss_anon, mm.rss_shmem)
        if tuple(rss) != got:
            out.append("pid %d: file/anon/shmem pages mapped %d/%d/%d, RSS counters %d/%d/%d" % (
                pid, rss[0], rss[1], rss[2], got[0], got[1], got[2]))
    return out


def check_swap_maps(k, c, swap, swap_ptes):
    """Use counts against the swap PTEs, slots in use against inuse, the
    swap cache's slots against its frames (mm/reclaim/swap_state.py)."""
    out = []
    mm = k.mem_map
    uses = cached = 0
    for si in swap.active():
        counted = 0
        for off in range(si.max):
            n = si.map[off]
            if not n or n == SWAP_MAP_BAD:
                continue
            counted += 1
            uses += n & SWAP_COUNT_MASK
            if n & SWAP_HAS_CACHE:
                cached += 1
                pfn = si.cache[off] - 1
                if pfn < 0 or not mm.flags(pfn) & PG_swapcache:
                    out.append("swap: slot %d of %s has SWAP_HAS_CACHE, its frame %d no PG_swapcache"
                               % (off, si.path, pfn))
        if counted != si.inuse:
            out.append("swap: %s: %d slots with a count, inuse %d" % (si.path, counted, si.inuse))
    if uses != swap_ptes:
        out.append("swap: %d uses in the swap maps, %d swap PTEs and shmem entries" % (uses, swap_ptes))
    sc = k.swapcache
    if sc is not None and not cached == c.swapcache == sc.nr:
        out.append("swap cache: %d slots with SWAP_HAS_CACHE, %d PG_swapcache frames, SwapCached %d"
                   % (cached, c.swapcache, sc.nr))
    return out


def format_census(k, c):
    """The frame census as `check` prints it: frames by owner, free blocks."""
    lines = ["%-10s %8d" % ("total", k.mem_map.nr_pfns),
             "%-10s %8d" % ("managed", k.buddy.managed_pages()),
             "%-10s %8d" % ("reserved", c.none)]
    for kind in range(1, NR_KINDS):
        if c.kinds[kind]:
            lines.append("%-10s %8d" % (KIND_NAMES[kind], c.kinds[kind]))
    return "\n".join(lines)
