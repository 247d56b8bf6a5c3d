# Page reclaim (Linux mm/vmscan.c): the four LRU lists (anon and file,
# active and inactive), scanned in proportions set by vm.swappiness, from
# two places:
#   - direct reclaim: buddy.reclaim (the allocation slow path) calls
#     direct_reclaim(gfp, order): try_to_free_pages, then, when nothing
#     could be freed, the OOM killer (mm/reclaim/oom_kill.py);
#   - kswapd: kswapd() runs between console commands (Shell.execute) when
#     the zone user pages come from is below its low watermark, or when an
#     allocation needed direct reclaim since (wake_all_kswapds), and
#     reclaims until it is above its high watermark (balance_pgdat).
#
# Scan balance (get_scan_count): no swap (or no free slot) -> file only;
# priority 0 with swappiness > 0 -> equal; the file LRU plus free pages
# under the high watermarks ("file is tiny") -> anon only; otherwise the
# lists are scanned in the ratio anon_prio : file_prio = swappiness :
# 200 - swappiness (Linux's fraction[] with equal recent costs). Each list
# contributes size >> priority pages, priority going from DEF_PRIORITY (12)
# to 0 until enough was reclaimed.
#
# Anon pages: shrink_active_anon deactivates from the active tail (clearing
# the PTE accessed bits, as folio_referenced does); shrink_inactive_anon
# looks at the inactive tail: a page whose PTEs were accessed since goes
# back to the active list, a busy page (extra references, a PROT_NONE or
# stale mapping) rotates, the rest is written to swap in batches of up to
# SWAP_CLUSTER_MAX pages (one disk request per run of slots), its PTEs
# replaced by the swap entry and the frame freed to the buddy. A page still
# in the swap cache (mm/reclaim/swap_state.py) goes back to its own slot, written
# only when one of its PTEs is dirty (the D bit the MMU sets on a store).
# Shared anonymous frames are on the anon lists too (rmap SHM_KEY words):
# written out the same way, their PTEs cleared and the swap entry left in
# the SharedAnon object's index (shmem_writepage); vm/memory.py's shmem_swapin
# reads it back.
#
# File pages: FileLru (below) is the page cache's half of the lists, a part
# of the page cache object (mm/filemap/filemap.py): Vmscan's shrink_file
# calls its shrink_active / shrink_inactive.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.gfp import F_FS, F_IO, F_NORETRY, F_RETRY_MAYFAIL, GFP_KERNEL
from kernel_py.mm.types import (
    INDEX_MASK, MAPPING_SHIFT, NIL, PG_active, PG_dirty, PG_locked, PG_lru, PG_referenced,
    PG_writeback, RECORD_SHIFT, SHM_KEY, SHM_SWAPPED, VM_EXEC, swp_entry,
)
from kernel_py.mm.page.zone import ALLOC_WMARK_MIN, PAGE_ALLOC_COSTLY_ORDER, int_sqrt, zone_watermark_ok
from kernel_py.mm.reclaim.lru import LruLists
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PTE_ADDR_MASK, _PAGE_DIRTY

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_SWAPPINESS = 200
DEFAULT_SWAPPINESS = 60

LRU_INACTIVE_ANON = 0
LRU_ACTIVE_ANON = 1
LRU_INACTIVE_FILE = 2
LRU_ACTIVE_FILE = 3

SCAN_EQUAL = 0
SCAN_FRACT = 1
SCAN_ANON = 2
SCAN_FILE = 3
SCAN_NAMES = ("equal", "fract", "anon", "file")

ADDR = PTE_ADDR_MASK

# folio_check_references' verdicts on a mapped file page
PAGEREF_RECLAIM = 0
PAGEREF_KEEP = 1
PAGEREF_ACTIVATE = 2


def is_exec(ptes):
    """Some PTE of [(mm, va, slot, pte, vma)] is in a VM_EXEC mapping."""
    for p in ptes:
        if p[4].flags & VM_EXEC:
            return True
    return False


def scan_balance(swappiness, can_swap, priority, file_is_tiny):
    """Which of SCAN_* get_scan_count picks."""
    if not can_swap:
        return SCAN_FILE
    if priority == 0 and swappiness:
        return SCAN_EQUAL
    if file_is_tiny:
        return SCAN_ANON
    return SCAN_FRACT


def get_scan_count(swappiness, sizes, priority, can_swap=True, file_is_tiny=False,
                   anon_cost=0, file_cost=0):
    """Pages to scan on each list [inactive_anon, active_anon, inactive_file,
    active_file] for lists of `sizes` at `priority`, as Linux's
    get_scan_count: fraction anon = swappiness * (total_cost + 1) /
    (anon_cost + 1), file = (200 - swappiness) * (total_cost + 1) /
    (file_cost + 1) with anon_cost = total + recent anon cost (and the same
    for file); equal recent costs leave swappiness : 200 - swappiness."""
    balance = scan_balance(swappiness, can_swap, priority, file_is_tiny)
    total_cost = anon_cost + file_cost
    acost = total_cost + anon_cost
    fcost = total_cost + file_cost
    total_cost = acost + fcost
    ap = swappiness * (total_cost + 1) // (acost + 1)
    fp = (MAX_SWAPPINESS - swappiness) * (total_cost + 1) // (fcost + 1)
    denominator = ap + fp
    out = [0, 0, 0, 0]
    for lru in range(4):
        is_file = lru >= LRU_INACTIVE_FILE
        scan = sizes[lru] >> priority
        if balance == SCAN_FRACT:
            frac = fp if is_file else ap
            scan = scan * frac // denominator if denominator else 0
        elif balance == SCAN_FILE:
            if not is_file:
                scan = 0
        elif balance == SCAN_ANON:
            if is_file:
                scan = 0
        out[lru] = scan
    return out


def inactive_is_low(inactive, active):
    """Linux's inactive_is_low: inactive * int_sqrt(10 * GiB) < active."""
    gb = (inactive + active) >> 18
    ratio = int_sqrt(10 * gb) if gb else 1
    return inactive * ratio < active


class ScanControl:
    def __init__(self, nr_to_reclaim, may_swap, kswapd):
        self.nr_to_reclaim = nr_to_reclaim
        self.may_swap = may_swap
        self.kswapd = kswapd
        self.reclaimed = 0
        self.scanned = 0


class Vmscan:
    """k.vmscan."""

    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        self.anon = k.anon
        self.swap = k.swap
        self.swappiness = DEFAULT_SWAPPINESS
        self.in_reclaim = False
        # /proc/vmstat
        self.pgscan_anon = 0
        self.pgsteal_anon = 0
        self.pgscan_kswapd = 0
        self.pgscan_direct = 0
        self.pgsteal_kswapd = 0
        self.pgsteal_direct = 0
        self.pageoutrun = 0         # kswapd runs
        self.kswapd_wakeups = 0
        self.direct_calls = 0
        self.swapout_errors = 0
        self.pgswapout_shmem = 0    # shared anonymous pages written to swap
        self.last_balance = SCAN_FRACT
        self.kswapd_woken = False   # an allocation needed direct reclaim: balance to high
        self.kswapd_task = None     # kswapd0, the kernel thread running kswapd() (kernel/kthread.py)

    # -- sizes
    def pagecache(self):
        return self.k.pagecache

    def lru_sizes(self):
        pc = self.pagecache()
        fi = pc.inactive.n if pc is not None else 0
        fa = pc.active.n if pc is not None else 0
        return [self.anon.inactive.n, self.anon.active.n, fi, fa]

    def user_zone(self):
        """The zone user pages come from first (the highest populated)."""
        best = None
        for z in self.k.zones:
            if z.managed_pages:
                best = z
        return best

    def file_is_tiny(self, sizes):
        free = self.k.buddy.nr_free_pages()
        high = 0
        for z in self.k.zones:
            if z.managed_pages:
                high += z.high_wmark()
        return sizes[2] + sizes[3] + free <= high

    # -- the lists
    def shrink_active_anon(self, nr):
        """Deactivate up to nr pages from the active anon tail, clearing
        their PTEs' accessed bits (folio_referenced) on the way."""
        anon = self.anon
        lst = anon.active
        moved = 0
        for _ in range(nr):
            pfn = lst.last
            if pfn == NIL:
                break
            ptes = anon.ptes(pfn)
            if ptes:
                anon.referenced(ptes)
            anon.deactivate(pfn)
            moved += 1
        return moved

    def shrink_inactive_anon(self, sc, nr_to_scan):
        """Scan nr_to_scan pages from the inactive anon tail; swap out the
        unreferenced ones. Returns pages freed."""
        anon = self.anon
        swapcache = self.k.swapcache
        lst = anon.inactive
        batch = []
        freed = 0
        for _ in range(nr_to_scan):
            if freed + len(batch) >= sc.nr_to_reclaim - sc.reclaimed:
                break
            pfn = lst.last
            if pfn == NIL:
                break
            self.pgscan_anon += 1
            sc.scanned += 1
            ptes = anon.ptes(pfn)
            if not ptes and (ptes is None or not anon.key(pfn) & SHM_KEY):
                anon.rotate(pfn)                # busy: pinned, PROT_NONE
                continue                        # (a shmem page may have no PTE)
            if anon.referenced(ptes):
                anon.activate(pfn)
                continue
            cached = swapcache.entry_of(pfn)
            if cached is not None:
                anon.isolate(pfn)
                freed += self.pageout_cached(pfn, ptes, cached[0], cached[1])
                continue
            if not self.swap.can_swap_out():
                anon.rotate(pfn)
                break
            anon.isolate(pfn)
            batch.append((pfn, ptes))
            if len(batch) >= SWAP_CLUSTER_MAX:
                freed += self.pageout(batch)
                batch = []
        if batch:
            freed += self.pageout(batch)
        self.pgsteal_anon += freed
        return freed

    def pageout(self, batch):
        """Write the isolated pages of batch [(pfn, ptes)] to swap and
        unmap them; pages that find no slot (or whose write fails) go back
        to the active list. Returns pages freed."""
        swap = self.swap
        anon = self.anon
        hw = self.hw
        w64 = hw.write64
        cr3 = hw.read_cr3() & ADDR
        free = self.k.buddy.free_pages
        freed = 0
        i = 0
        n = len(batch)
        while i < n:
            si, first, got = swap.get_swap_pages(n - i)
            if not got:
                break
            part = batch[i:i + got]
            pas = [pfn << 12 for pfn, ptes in part]
            try:
                swap.write_pages(si, first, pas)
            except KernelError as exc:
                self.swapout_errors += 1
                self.k.printk("Write-error on swap-device (%s): %s" % (si.path, exc.line()))
                break
            keys = [anon.key(pfn) for pfn, ptes in part]
            # a private page's slot counts its PTEs; a shmem page's, the
            # object's index entry (shmem_writepage: the PTEs are cleared)
            swap.claim(si, first, got, [1 if keys[j] & SHM_KEY else len(part[j][1])
                                        for j in range(got)])
            for j in range(got):
                pfn, ptes = part[j]
                e = swp_entry(si.type, first + j)
                if keys[j] & SHM_KEY:
                    self.shmem_unmap(keys[j], ptes, e, cr3)
                    self.pgswapout_shmem += 1
                else:
                    for mm, va, slot, old in ptes:
                        w64(slot, e)
                        if mm.pgd == cr3:
                            hw.invlpg(va)
                        mm.rss_anon -= 1
                        mm.swapents += 1
                anon.release(pfn << 12)
                free(pfn << 12, 0)
                freed += 1
            i += got
        for pfn, ptes in batch[i:]:             # not written: keep them, active
            anon.putback_active(pfn)
        return freed

    def shmem_unmap(self, key, ptes, e, cr3):
        """A shared anonymous page is on swap: its PTEs are cleared (the
        next touch finds the swap entry in the object's index, as Linux's
        shmem_fault does) and the entry takes the frame's place there."""
        hw = self.hw
        for mm, va, slot, old in ptes:
            hw.write64(slot, 0)
            if mm.pgd == cr3:
                hw.invlpg(va)
            mm.rss_shmem -= 1
        shm, off = self.anon.shm_object(key)
        shm.pages[off] = e | SHM_SWAPPED

    def pageout_cached(self, pfn, ptes, si, off):
        """Unmap a page that kept its swap slot: written there again only
        if a PTE dirtied it since it was read. Returns pages freed."""
        swap = self.swap
        hw = self.hw
        pa = pfn << 12
        dirty = False
        for mm, va, slot, e in ptes:
            if e & _PAGE_DIRTY:
                dirty = True
        if dirty:
            try:
                swap.write_pages(si, off, [pa])
            except KernelError as exc:
                self.swapout_errors += 1
                self.k.printk("Write-error on swap-device (%s): %s" % (si.path, exc.line()))
                self.anon.putback_active(pfn)
                return 0
        else:
            self.k.swapcache.reuse_total += 1
        e = swp_entry(si.type, off)
        swap.dup(e, len(ptes))
        cr3 = hw.read_cr3() & ADDR
        for mm, va, slot, old in ptes:
            hw.write64(slot, e)
            if mm.pgd == cr3:
                hw.invlpg(va)
            mm.rss_anon -= 1
            mm.swapents += 1
        self.k.swapcache.delete(pfn)
        self.anon.release(pa)
        self.k.buddy.free_pages(pa, 0)
        return 1

    def shrink_file(self, lru, nr, sc):
        pc = self.pagecache()
        if pc is None:
            return 0
        if lru == LRU_ACTIVE_FILE:
            if inactive_is_low(pc.inactive.n, pc.active.n):
                pc.shrink_active(nr)
            return 0
        s0 = pc.pgscan
        got = pc.shrink_inactive(max(0, sc.nr_to_reclaim - sc.reclaimed), nr)
        sc.scanned += pc.pgscan - s0
        return got

    def shrink_lruvec(self, nr, sc):
        """Linux's shrink_lruvec: the lists in SWAP_CLUSTER_MAX steps until
        the counts run out or enough was reclaimed."""
        anon = self.anon
        while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE]:
            for lru in range(4):
                if not nr[lru]:
                    continue
                n = min(nr[lru], SWAP_CLUSTER_MAX)
                nr[lru] -= n
                if lru == LRU_INACTIVE_ANON:
                    sc.reclaimed += self.shrink_inactive_anon(sc, n)
                elif lru == LRU_ACTIVE_ANON:
                    if inactive_is_low(anon.inactive.n, anon.active.n):
                        self.shrink_active_anon(n)
                else:
                    sc.reclaimed += self.shrink_file(lru, n, sc)
            if sc.reclaimed >= sc.nr_to_reclaim:
                break
        if sc.may_swap and inactive_is_low(anon.inactive.n, anon.active.n):
            self.shrink_active_anon(SWAP_CLUSTER_MAX)

    def shrink_node(self, sc, priority):
        self.anon.drain()
        sizes = self.lru_sizes()
        can_swap = sc.may_swap and self.swap.can_swap_out()
        tiny = self.file_is_tiny(sizes)
        self.last_balance = scan_balance(self.swappiness, can_swap, priority, tiny)
        nr = get_scan_count(self.swappiness, sizes, priority, can_swap, tiny)
        self.shrink_lruvec(nr, sc)

    def do_try_to_free_pages(self, sc):
        """Priorities DEF_PRIORITY..0 until nr_to_reclaim pages are freed."""
        if self.in_reclaim:
            return 0
        self.in_reclaim = True
        try:
            for priority in range(DEF_PRIORITY, -1, -1):
                self.shrink_node(sc, priority)
                if sc.reclaimed >= sc.nr_to_reclaim:
                    break
                if sc.kswapd and self.zone_balanced():
                    break
        finally:
            self.in_reclaim = False
        if sc.kswapd:
            self.pgscan_kswapd += sc.scanned
            self.pgsteal_kswapd += sc.reclaimed
        else:
            self.pgscan_direct += sc.scanned
            self.pgsteal_direct += sc.reclaimed
        return sc.reclaimed

    def try_to_free_pages(self, gfp=GFP_KERNEL, order=0, nr=SWAP_CLUSTER_MAX):
        sc = ScanControl(max(nr, 1 << order), gfp & F_IO != 0, False)
        return self.do_try_to_free_pages(sc)

    # -- direct reclaim: the buddy's hook
    def direct_reclaim(self, gfp, order):
        """buddy.reclaim: free some pages for a failed allocation; with no
        progress, the OOM killer (for the allocations Linux lets kill:
        __GFP_FS, not costly, not NORETRY/RETRY_MAYFAIL)."""
        if self.in_reclaim:
            return 0                        # PF_MEMALLOC: no recursion
        self.direct_calls += 1
        self.kswapd_woken = True            # wake_all_kswapds
        if self.kswapd_task is not None:
            self.k.kthreads.wake(self.kswapd_task)
        t0 = self.hw.rdtsc()
        pcp = self.k.pcp
        drained = pcp.drain() if pcp is not None else 0
        got = self.try_to_free_pages(gfp, order)
        if got:
            return got
        if drained and self.allocation_fits(order):
            return drained
        if order > PAGE_ALLOC_COSTLY_ORDER or gfp & (F_NORETRY | F_RETRY_MAYFAIL) or not gfp & F_FS:
            return 0
        oom = self.k.oom
        if oom is None:
            return 0
        return oom.out_of_memory(gfp, order, t0)

    def allocation_fits(self, order):
        """The pages drained from the per-CPU lists let the allocation
        through (the zone keeps its min watermark). Linux's
        __alloc_pages_direct_reclaim drains and retries once, but a drain
        is not reclaim progress: when it does not suffice, the OOM killer
        runs (else a drain of a page or two each round, the pages a
        refault just freed, would stand for progress forever)."""
        zones = self.k.zones
        high = len(zones) - 1
        for z in zones:
            if z.managed_pages and zone_watermark_ok(z, order, z.min_wmark(), high, ALLOC_WMARK_MIN):
                return True
        return False

    # -- kswapd
    def zone_balanced(self):
        z = self.user_zone()
        return z is None or z.free_pages >= z.high_wmark()

    def kswapd_thread(self):
        """kswapd0's work when woken: balance the zones, then sleep."""
        self.kswapd()
        return False

    def wants_kswapd(self):
        """A zone under its low watermark, or direct reclaim asked (no side effect)."""
        z = self.user_zone()
        return z is not None and (self.kswapd_woken or z.free_pages < z.low_wmark())

    def kswapd_needed(self):
        z = self.user_zone()
        if z is None:
            return False
        if self.kswapd_woken:
            self.kswapd_woken = False
            return z.free_pages < z.high_wmark()
        return z.free_pages < z.low_wmark()

    def kswapd(self):
        """balance_pgdat: below the low watermark, reclaim until the high
        one is met (or nothing more can be freed). Returns pages freed."""
        if self.in_reclaim or not self.kswapd_needed():
            return 0
        self.kswapd_wakeups += 1
        self.pageoutrun += 1
        total = 0
        for _ in range(64):
            z = self.user_zone()
            want = max(z.high_wmark() - z.free_pages, SWAP_CLUSTER_MAX)
            sc = ScanControl(want, True, True)
            got = self.do_try_to_free_pages(sc)
            total += got
            if not got or self.zone_balanced():
                break
        return total



class FileLru(LruLists):
    """The file half of the LRU (part of the page cache object,
    mm/filemap/filemap.py's PageCache): its two lists, the two-touch
    promotion of mark_page_accessed, and the reclaim of file pages that
    shrink_file above and shrink_page_cache drive: second-chance scans from
    the inactive tail; a mapped page is aged by its PTEs' accessed bits and
    unmapped through the file rmap (reclaim/rmap.py's FileRmap), a dirty one
    written back first."""

    def init_file_lru(self, mem_map):
        self.init_lru_lists(mem_map, "file")
        self.pgscan = 0             # /proc/vmstat
        self.pgsteal = 0
        self.in_pageout = False     # reclaim is writing a mapped page back

    def _lru_add(self, pa):
        pfn = pa >> PAGE_SHIFT
        self.inactive.push(pfn)
        self._set(pa, PG_lru)

    def _lru_del(self, pa, flags):
        if flags & PG_lru:
            pfn = pa >> PAGE_SHIFT
            self.lru_del(pfn, self.base + (pfn << RECORD_SHIFT), flags)

    def mark_page_accessed(self, pfn):
        """Two-touch: an inactive page touched twice becomes active."""
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if not f & PG_referenced:
            self._w16(a, f | PG_referenced)
        elif not f & PG_active and f & PG_lru:
            self.activate_page(pfn, a, f)

    def _activate(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT)
        self.activate_page(pfn, a, self._r16(a))

    def reclaimable(self, pa, flags):
        return (not flags & (PG_dirty | PG_writeback | PG_locked)
                and self.page_count(pa) == 1)

    def shrink_active(self, nr):
        """Move up to nr pages from the active tail to the inactive list;
        referenced ones (PG_referenced, or program text whose PTEs were
        used) get another round on the active list."""
        moved = 0
        lst, base = self.active, self.base
        for _ in range(nr):
            pfn = lst.last
            if pfn == NIL:
                break
            a = base + (pfn << RECORD_SHIFT)
            f = self._r16(a)
            lst.remove(pfn)
            if f & PG_referenced:
                lst.push(pfn)
                self._w16(a, f & ~PG_referenced)
                continue
            if self.exec_referenced(pfn):
                lst.push(pfn)
                continue
            self.inactive.push(pfn)
            self._w16(a, f & ~PG_active)
            self.pgdeactivate += 1
            moved += 1
        return moved

    def exec_referenced(self, pfn):
        """shrink_active_list's rule: test-and-clear the accessed bits of a
        mapped page (folio_referenced); True when one was set and the page
        is program text (a VM_EXEC file mapping), which Linux gives
        "another trip around the active list" so that a running program's
        code is not deactivated and evicted under memory pressure."""
        ptes = self.mapped_ptes_of(pfn)
        return bool(ptes) and self.page_referenced(ptes) > 0 and is_exec(ptes)

    def mapped_ptes_of(self, pfn):
        """The PTEs of a page that reclaim may unmap (see reclaim_mapped),
        or None."""
        key = self.rmap.get(pfn)
        if key is None:
            return None
        mapping = self.mappings.get(key >> MAPPING_SHIFT)
        if mapping is None or not mapping.i_mmap or mapping.unevictable:
            return None                     # ramfs keeps its pages
        return self.mapped_ptes(mapping, key & INDEX_MASK, pfn << PAGE_SHIFT)

    def page_check_references(self, pfn, ptes):
        """Linux's folio_check_references for a mapped page on the inactive
        list, one of PAGEREF_*: its PTEs used since the last scan (the
        accessed bits, cleared here) and used before (PG_referenced), or
        through more than one PTE, or program text (VM_EXEC, activated on
        the first referenced scan) -> ACTIVATE; used once -> KEEP
        (PG_referenced set: one more round on the inactive list); not used
        -> RECLAIM."""
        young = self.page_referenced(ptes)
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if f & PG_referenced:
            self._w16(a, f & ~PG_referenced)
        if not young:
            return PAGEREF_RECLAIM
        if f & PG_referenced or young > 1 or is_exec(ptes):
            return PAGEREF_ACTIVATE
        self._w16(a, f | PG_referenced)
        return PAGEREF_KEEP

    def shrink_inactive(self, nr_to_reclaim, nr_to_scan):
        """Scan the inactive tail: referenced pages get a second chance,
        busy ones (dirty, writeback, pinned) rotate, clean ones are freed;
        a mapped page is aged by its PTEs' accessed bits and, when none was
        set, unmapped from every PTE (try_to_unmap), written back if it was
        dirty, and freed."""
        reclaimed = 0
        lst, base = self.inactive, self.base
        for _ in range(nr_to_scan):
            if reclaimed >= nr_to_reclaim:
                break
            pfn = lst.last
            if pfn == NIL:
                break
            self.pgscan += 1
            a = base + (pfn << RECORD_SHIFT)
            f = self._r16(a)
            pa = pfn << PAGE_SHIFT
            if self.page_count(pa) > 1:
                got = self.reclaim_mapped(pfn, f)
                if got is not None:
                    reclaimed += got
                    continue
                f = self._r16(a)
            if f & PG_referenced or not self.reclaimable(pa, f):
                if not f & PG_referenced and self.shmem_writeout(pfn, pa, f):
                    reclaimed += 1
                    continue
                self._rotate(pfn, a, f)
                continue
            m, idx = self.owner(pfn)
            self._delete(m, idx, pa)
            self.pgsteal += 1
            reclaimed += 1
        return reclaimed

    def shmem_writeout(self, pfn, pa, f):
        """shrink_folio_list's pageout of a tmpfs page (shmem_writeout):
        an unmapped one (the cache's and tmpfs's references only) goes to
        swap, its file keeping the swap entry. True when it was freed."""
        key = self.rmap.get(pfn)
        if key is None or f & (PG_dirty | PG_writeback | PG_locked) or self.page_count(pa) != 2:
            return False
        mapping = self.mappings.get(key >> MAPPING_SHIFT)
        if mapping is None or not mapping.swapbacked:
            return False
        if not mapping.host.sb.shmem_writeout(mapping, key & INDEX_MASK, pa):
            return False
        self.pgsteal += 1
        return True

    def _rotate_keep(self, pfn):
        """Back to the inactive head, PG_referenced kept (PAGEREF_KEEP)."""
        self.inactive.remove(pfn)
        self.inactive.push(pfn)
        self.pgrotated += 1

    def _rotate(self, pfn, a, f):
        self.inactive.remove(pfn)
        self.inactive.push(pfn)
        self._w16(a, f & ~PG_referenced)
        self.pgrotated += 1

    def reclaim_mapped(self, pfn, f):
        """shrink_folio_list for a mapped page: 1 when it was unmapped and
        freed, 0 when it stays (activated, or its writeback failed), None
        when it is left to the unmapped-page rules (pinned, under I/O)."""
        if f & (PG_writeback | PG_locked):
            return None
        ptes = self.mapped_ptes_of(pfn)
        if not ptes:
            return None
        key = self.rmap.get(pfn)
        mapping = self.mappings.get(key >> MAPPING_SHIFT)
        index = key & INDEX_MASK
        pa = pfn << PAGE_SHIFT
        ref = self.page_check_references(pfn, ptes)
        if ref == PAGEREF_ACTIVATE:
            self._activate(pfn)
            return 0
        if ref == PAGEREF_KEEP:
            self._rotate_keep(pfn)
            return 0
        if mapping.swapbacked:
            return self.pageout_shmem(mapping, index, pa, ptes)
        dirty = self._r16(self._rec(pa)) & PG_dirty
        if self.in_pageout and (dirty or any(e & _PAGE_DIRTY for m, v, s, e, vma in ptes)):
            return None                     # an allocation of our own pageout: no nested write
        self.try_to_unmap(mapping, pa, ptes)
        if self._r16(self._rec(pa)) & PG_dirty:
            self.in_pageout = True
            try:
                self.writeback_mapping(mapping, lo=index, hi=index + 1)     # pageout
            except KernelError:
                self._rotate(pfn, self._rec(pa), self._r16(self._rec(pa)))
                return 0
            finally:
                self.in_pageout = False
        self._delete(mapping, index, pa)
        self.pgsteal += 1
        return 1

    def pageout_shmem(self, mapping, index, pa, ptes):
        """A mapped tmpfs page (shrink_folio_list: try_to_unmap, then
        pageout's folio_clear_dirty_for_io and shmem_writeout): unmapped
        from every PTE only when swap can take it, then written to a slot
        and freed (1). No swap: None, the unmapped-page rules keep it
        (mapped). A write error: it stays in the cache, unmapped (0)."""
        sb = mapping.host.sb
        if not sb.can_writeout():
            return None
        self.try_to_unmap(mapping, pa, ptes)
        a = self._rec(pa)
        if self._r16(a) & PG_dirty:
            self.clear_page_dirty(mapping, pa)     # its data goes to the slot
        if not sb.shmem_writeout(mapping, index, pa):
            self._rotate(pa >> PAGE_SHIFT, a, self._r16(a))
            return 0
        self.pgsteal += 1
        return 1

    def shrink_page_cache(self, nr):
        """Free up to nr clean page-cache pages, least recently used first
        (keeps the inactive list at least as long as the active one).
        Returns pages freed. The reclaim hook (buddy.reclaim) calls this."""
        reclaimed = 0
        for _ in range(4):
            if self.active.n > self.inactive.n:
                self.shrink_active(max(nr, self.active.n - self.inactive.n))
            got = self.shrink_inactive(nr - reclaimed, 2 * self.inactive.n + 1)
            reclaimed += got
            if reclaimed >= nr:
                break
            if not got and not self.active.n:
                break
            if not got:
                self.shrink_active(self.active.n)
        return reclaimed
