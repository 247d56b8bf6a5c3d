# The memory counters, defined once (Linux's include/linux/vm_event_item.h,
# mmzone.h's node_stat_item and mm/vmstat.c's vmstat_text[]), and the two
# files made from them: /proc/vmstat (vmstat_show) and /proc/meminfo
# (fs/proc/meminfo.c's meminfo_proc_show).
#
# A counter lives in the subsystem that updates it (the buddy's pgfree, the
# page cache's nr_dirty...): this table says, for each name, which Kernel
# member keeps it and how its value is read: the name of the owner's
# attribute that holds it, or a function of the owner that computes it. A
# row whose owner is None (the subsystem is switched off, or boot stopped
# before it) reads 0 and is left out of /proc/vmstat.
#
# Order: /proc/vmstat prints the VMSTAT rows in the table's order, which is
# the order this kernel has always printed them in (grouped by subsystem:
# the buddy, the page cache, the anon LRU, swap, the swap cache, reclaim,
# the OOM killer, the fault path). Linux prints the node counters (nr_*)
# first, then the dirty thresholds, then the events (pgpgin...); moving the
# rows to that order is a change of /proc/vmstat's format, left for an issue
# that allows one. Names are Linux's where Linux has the counter; the
# others are marked "own" below.
#
# MEMINFO rows are counters Linux also prints in /proc/vmstat but this
# kernel has so far only shown in /proc/meminfo; they feed meminfo_pairs.

from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.mm.page.zone import ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, totalreserve_pages

KB_PER_PAGE = PAGE_SIZE >> 10

VMSTAT = 1          # a line of /proc/vmstat
MEMINFO = 0         # read by /proc/meminfo only


# The owners: the Kernel member each counter is read from (kernel/kernel.py
# declares them; None while off or not booted), by index into owners(k).
BUDDY = 0           # k.buddy: mm/page/buddy.py
PAGECACHE = 1       # k.pagecache: mm/filemap/filemap.py
BLK = 2             # k.blk: block/blkdev.py
ANON = 3            # k.anon: mm/reclaim/rmap.py (the anon LRU)
SWAP = 4            # k.swap: mm/reclaim/swapfile.py
SWAPCACHE = 5       # k.swapcache: mm/reclaim/swap_state.py
VMSCAN = 6          # k.vmscan: mm/reclaim/vmscan.py
OOM = 7             # k.oom: mm/reclaim/oom_kill.py
FAULT = 8           # k.fault.stats: mm/vm/fault.py
SLAB = 9            # k.slab: mm/slab/common.py


def owners(k):
    fault = k.fault
    return (k.buddy, k.pagecache, k.blk, k.anon, k.swap, k.swapcache, k.vmscan, k.oom,
            fault.stats if fault is not None else None, k.slab)


VM_STAT_ITEMS = (
    # name                          owner      shown in value: owner's attribute, or fn(owner)
    ("nr_free_pages",               BUDDY,     VMSTAT,  lambda b: b.nr_free_pages()),
    ("pgalloc_dma",                 BUDDY,     VMSTAT,  lambda b: b.pgalloc[ZONE_DMA]),
    ("pgalloc_dma32",               BUDDY,     VMSTAT,  lambda b: b.pgalloc[ZONE_DMA32]),
    ("pgalloc_normal",              BUDDY,     VMSTAT,  lambda b: b.pgalloc[ZONE_NORMAL]),
    ("pgfree",                      BUDDY,     VMSTAT,  "pgfree"),
    ("allocstall_normal",           BUDDY,     VMSTAT,  "allocstall"),
    ("nr_inactive_file",            PAGECACHE, VMSTAT,  lambda pc: pc.inactive.n),
    ("nr_active_file",              PAGECACHE, VMSTAT,  lambda pc: pc.active.n),
    ("nr_file_pages",               PAGECACHE, VMSTAT,  "nr_file"),
    ("nr_dirty",                    PAGECACHE, VMSTAT,  "nr_dirty"),
    ("nr_writeback",                PAGECACHE, VMSTAT,  "nr_writeback"),
    ("nr_dirtied",                  PAGECACHE, VMSTAT,  "nr_dirtied"),
    ("nr_written",                  PAGECACHE, VMSTAT,  "nr_written"),
    ("nr_dirty_threshold",          PAGECACHE, VMSTAT,  lambda pc: pc.dirty_thresholds()[1]),
    ("nr_dirty_background_threshold", PAGECACHE, VMSTAT, lambda pc: pc.dirty_thresholds()[0]),
    ("pgpgin",                      BLK,       VMSTAT,  lambda blk: blk.pgpgin()),
    ("pgpgout",                     BLK,       VMSTAT,  lambda blk: blk.pgpgout()),
    ("pgactivate",                  PAGECACHE, VMSTAT,  "pgactivate"),
    ("pgdeactivate",                PAGECACHE, VMSTAT,  "pgdeactivate"),
    ("pgscan_file",                 PAGECACHE, VMSTAT,  "pgscan"),
    ("pgsteal_file",                PAGECACHE, VMSTAT,  "pgsteal"),
    ("pgrotated",                   PAGECACHE, VMSTAT,  "pgrotated"),
    ("drop_pagecache",              PAGECACHE, VMSTAT,  "drop_pagecache_count"),
    ("drop_slab",                   PAGECACHE, VMSTAT,  "drop_slab_count"),
    ("pagecache_hits",              PAGECACHE, VMSTAT,  "hits"),                # own
    ("pagecache_misses",            PAGECACHE, VMSTAT,  "misses"),              # own
    ("nr_inactive_anon",            ANON,      VMSTAT,  lambda a: a.inactive.n),
    ("nr_active_anon",              ANON,      VMSTAT,  lambda a: a.active.n),
    ("nr_anon_pages",               ANON,      VMSTAT,  lambda a: a.nr_anon_pages()),  # drains the lru_add batch
    ("pgactivate_anon",             ANON,      VMSTAT,  "pgactivate"),          # own
    ("pgdeactivate_anon",           ANON,      VMSTAT,  "pgdeactivate"),        # own
    ("pgrotated_anon",              ANON,      VMSTAT,  "pgrotated"),           # own
    ("pswpin",                      SWAP,      VMSTAT,  "pswpin"),
    ("pswpout",                     SWAP,      VMSTAT,  "pswpout"),
    ("swap_ra",                     SWAP,      VMSTAT,  "swap_ra"),
    ("swapcache_add",               SWAPCACHE, VMSTAT,  "add_total"),           # own
    ("swapcache_find",              SWAPCACHE, VMSTAT,  "find_total"),          # own
    ("swapcache_reuse",             SWAPCACHE, VMSTAT,  "reuse_total"),         # own
    ("pgscan_kswapd",               VMSCAN,    VMSTAT,  "pgscan_kswapd"),
    ("pgscan_direct",               VMSCAN,    VMSTAT,  "pgscan_direct"),
    ("pgsteal_kswapd",              VMSCAN,    VMSTAT,  "pgsteal_kswapd"),
    ("pgsteal_direct",              VMSCAN,    VMSTAT,  "pgsteal_direct"),
    ("pgscan_anon",                 VMSCAN,    VMSTAT,  "pgscan_anon"),
    ("pgsteal_anon",                VMSCAN,    VMSTAT,  "pgsteal_anon"),
    ("pageoutrun",                  VMSCAN,    VMSTAT,  "pageoutrun"),
    ("kswapd_wakeups",              VMSCAN,    VMSTAT,  "kswapd_wakeups"),      # own
    ("oom_kill",                    OOM,       VMSTAT,  "oom_kill"),
    ("pgfault",                     FAULT,     VMSTAT,  "pgfault"),
    ("pgmajfault",                  FAULT,     VMSTAT,  "pgmajfault"),
    ("pgcowfault",                  FAULT,     VMSTAT,  "cow"),                 # own
    ("pgcowreuse",                  FAULT,     VMSTAT,  "reuse"),               # own
    ("pgzeropage",                  FAULT,     VMSTAT,  "zero"),                # own
    ("pganonfault",                 FAULT,     VMSTAT,  "anon"),                # own
    ("pgshmemfault",                FAULT,     VMSTAT,  "shmem"),               # own
    ("pgfilefault",                 FAULT,     VMSTAT,  "file"),                # own
    ("pgspurious",                  FAULT,     VMSTAT,  "spurious"),            # own
    ("pgsegv",                      FAULT,     VMSTAT,  "segv"),                # own
    ("pgfault_oom",                 FAULT,     VMSTAT,  "oom"),                 # own
    ("nr_mapped",                   PAGECACHE, MEMINFO, lambda pc: pc.nr_mapped()),
    ("nr_shmem",                    ANON,      MEMINFO, lambda a: shmem_pages(a)),
    ("nr_swapcached",               SWAPCACHE, MEMINFO, "nr"),
    ("nr_slab_reclaimable",         SLAB,      MEMINFO, lambda st: st.slab_pages()[0]),
    ("nr_slab_unreclaimable",       SLAB,      MEMINFO, lambda st: st.slab_pages()[1]),
)

ITEMS = {}
for _row in VM_STAT_ITEMS:
    ITEMS[_row[0]] = _row


def shmem_pages(anon):
    """NR_SHMEM: shared anonymous pages (on the anon LRU) and tmpfs pages
    (in the page cache), both shmem in Linux."""
    pc = anon.k.pagecache
    return anon.nr_shmem() + (pc.nr_shmem if pc is not None else 0)


def read(o, value):
    return getattr(o, value) if type(value) is str else value(o)


def counter(k, name):
    """The value of one counter (global_node_page_state, sum_vm_event):
    0 while its owner is off."""
    _name, owner, _shown, value = ITEMS[name]
    o = owners(k)[owner]
    return read(o, value) if o is not None else 0


def vmstat_pairs(k):
    """(name, value) of every /proc/vmstat line whose owner is on."""
    out = []
    own = owners(k)
    for name, owner, shown, value in VM_STAT_ITEMS:
        if shown:
            o = own[owner]
            if o is not None:
                out.append((name, read(o, value)))
    return out


def vmstat_show(k):
    """/proc/vmstat."""
    return "\n".join("%s %d" % p for p in vmstat_pairs(k))


def meminfo_pairs(k):
    """(name, kB) of /proc/meminfo's lines, in Linux's order (a subset of
    meminfo_proc_show's), from the counters above; the rest are figures
    Linux reads from their subsystem too (totalram_pages, si_swapinfo,
    nr_blockdev_pages, vmalloc_nr_pages)."""
    if k.buddy is None:
        total = k.memmap.total_usable() >> 10
        return [("MemTotal", total), ("MemFree", total), ("MemAvailable", total)]
    free = counter(k, "nr_free_pages")
    available = max(0, free - totalreserve_pages(k.zones))
    pc, anon, swap = k.pagecache, k.anon, k.swap
    stotal, sfree = swap.totals() if swap is not None else (0, 0)
    pages = []
    if pc is not None:
        # si_mem_available: the file LRU counts, less what the low watermarks keep
        active_file, inactive_file = counter(k, "nr_active_file"), counter(k, "nr_inactive_file")
        file = active_file + inactive_file
        low = sum(z.low_wmark() for z in k.zones if z.managed_pages)
        available += file - min(file // 2, low)
        buffers = pc.nr_bdev                            # nr_blockdev_pages()
        pages += [("Buffers", buffers), ("Cached", counter(k, "nr_file_pages") - buffers),
                  ("SwapCached", counter(k, "nr_swapcached"))]
        if anon is not None:
            anon.drain()
            pages += [("Active(anon)", counter(k, "nr_active_anon")),
                      ("Inactive(anon)", counter(k, "nr_inactive_anon"))]
        pages += [("Active(file)", active_file), ("Inactive(file)", inactive_file),
                  ("SwapTotal", stotal), ("SwapFree", sfree),
                  ("Dirty", counter(k, "nr_dirty")), ("Writeback", counter(k, "nr_writeback"))]
        if anon is not None:
            pages.append(("AnonPages", counter(k, "nr_anon_pages")))
        pages.append(("Mapped", counter(k, "nr_mapped")))
        if anon is not None:
            pages.append(("Shmem", counter(k, "nr_shmem")))
    if k.slab is not None:
        rcl, unrcl = counter(k, "nr_slab_reclaimable"), counter(k, "nr_slab_unreclaimable")
        # si_mem_available: reclaimable slab counts too, less what the low watermarks keep
        low = sum(z.low_wmark() for z in k.zones if z.managed_pages)
        available += rcl - min(rcl // 2, low)
        pages += [("Slab", rcl + unrcl), ("SReclaimable", rcl), ("SUnreclaim", unrcl)]
    pages = [("MemTotal", k.buddy.managed_pages()), ("MemFree", free),
             ("MemAvailable", available)] + pages
    out = [(name, n * KB_PER_PAGE) for name, n in pages]
    vm = k.vmalloc
    if vm is not None:
        out += [("VmallocTotal", (vm.end - vm.start) >> 10),
                ("VmallocUsed", vm.nr_pages * KB_PER_PAGE), ("VmallocChunk", 0)]
    if k.pyheap is not None:
        out += k.pyheap.meminfo_pairs()
    return out


def meminfo_show(k):
    """/proc/meminfo: the name and colon padded to 16 columns, kB right-aligned in 8."""
    return "\n".join("%-16s%8d kB" % (name + ":", kb) for name, kb in meminfo_pairs(k))
