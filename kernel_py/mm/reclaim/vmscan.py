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
# the SharedAnon object's index (shmem_writepage); shmem_swapin reads it back.

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.page.mem_map import NIL, OFF_COUNT, PG_active, RECORD_SHIFT
from kernel_py.mm.reclaim.rmap import RID_SHIFT, SHM_KEY
from kernel_py.mm.reclaim.swapfile import PROTNONE_BIT, SWAP_COUNT_MASK, is_swap_pte, swp_entry
from kernel_py.mm.vm.vma import SHM_SWAPPED
from kernel_py.mm.page.zone import int_sqrt
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_SWAPPINESS = 200
DEFAULT_SWAPPINESS = 60
PAGE_ALLOC_COSTLY_ORDER = 3

LRU_INACTIVE_ANON = 0
LRU_ACTIVE_ANON = 1
LRU_INACTIVE_FILE = 2
LRU_ACTIVE_FILE = 3

SCAN_EQUAL = 0
SCAN_FRACT = 1
SCAN_ANON = 2
SCAN_FILE = 3
SCAN_NAMES = ("equal", "fract", "anon", "file")

F_IO = G.__GFP_IO
F_FS = G.__GFP_FS
F_DIRECT = G.__GFP_DIRECT_RECLAIM
F_NORETRY = G.__GFP_NORETRY
F_RETRY_MAYFAIL = G.__GFP_RETRY_MAYFAIL
F_NOFAIL = G.__GFP_NOFAIL
ADDR = PTE_ADDR_MASK


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

    def try_to_free_pages(self, gfp=G.GFP_KERNEL, order=0, nr=SWAP_CLUSTER_MAX):
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
        t0 = self.hw.rdtsc()
        pcp = self.k.pcp
        drained = pcp.drain() if pcp is not None else 0
        got = self.try_to_free_pages(gfp, order)
        if got or drained:
            return got + drained
        if order > PAGE_ALLOC_COSTLY_ORDER or gfp & (F_NORETRY | F_RETRY_MAYFAIL) or not gfp & F_FS:
            return 0
        oom = self.k.oom
        if oom is None:
            return 0
        return oom.out_of_memory(gfp, order, t0)

    # -- kswapd
    def zone_balanced(self):
        z = self.user_zone()
        return z is None or z.free_pages >= z.high_wmark()

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

    # -- swapoff
    def try_to_unuse(self, si):
        """Read every page of swap area si back in: each swap PTE of every
        process becomes a present private page (ENOMEM if memory runs out)."""
        k = self.k
        procs = k.procs
        self.shmem_unuse(si)
        for pid in procs.pids():
            t = procs.tasks.get(pid)
            if t is None:
                continue
            procs.busy.append(t)
            try:
                self.unuse_mm(t.mm, si)
            finally:
                procs.busy.remove(t)
                procs.reap()
            if not si.inuse:
                break
        if si.inuse:
            raise KernelError("EBUSY", "swapoff: %d pages of %s still in use" % (si.inuse, si.path))

    def shmem_unuse(self, si):
        """swapoff: every shared anonymous page on area si back into its
        object (unmapped: the next touch is a minor fault)."""
        for shm in list(self.anon.shm.values()):
            for off, v in list(shm.pages.items()):
                if v & SHM_SWAPPED and (v & ~SHM_SWAPPED) >> 59 == si.type:
                    if shmem_swapin(self.k, shm, off, v) is None:
                        raise KernelError("ENOMEM", "swapoff: out of memory")

    def unuse_mm(self, mm, si):
        r64 = self.hw.read64
        for vma in list(mm.vmas.vmas):
            if vma.shm is not None:
                continue
            for pt, base, i0, i1 in list(mm.pt_tables(vma.start, vma.end)):
                for i in range(i0, i1):
                    epa = pt + (i << 3)
                    e = r64(epa)
                    if is_swap_pte(e) and e >> 59 == si.type:
                        if not k_swapin(self.k, mm, vma, base + (i << 12), epa, e):
                            raise KernelError("ENOMEM", "swapoff: out of memory")
                if mm.pgd is None:
                    return


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
    if not vma.flags & 7:                           # PROT_NONE (swapoff): keep it inaccessible
        return pa | PROTNONE_BIT | _PAGE_USER
    return pa | (vma.rw_bits if writable and vma.flags & 2 else vma.prot_bits)


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


__all__ = ["Vmscan", "get_scan_count", "scan_balance", "inactive_is_low", "k_swapin",
           "SCAN_EQUAL", "SCAN_FRACT", "SCAN_ANON", "SCAN_FILE", "PG_active", "_PAGE_PRESENT",
           "_PAGE_RW"]
