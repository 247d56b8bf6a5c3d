# The kernel object: owns the machine (hw), boots the subsystems in order and
# holds them, so the console and tests reach everything from one place.

from kernel_py.lib import cmdline
from kernel_py.arch.x86 import tsc
from kernel_py.arch.x86.layout import BOOT_IDENTITY_SIZE
from kernel_py.mm.page import buddy as buddy_mod
from kernel_py.mm.vm import init_mm as init_mm_mod
from kernel_py.mm.page import mem_map as page
from kernel_py.mm.types import KIND_PAGETABLE
from kernel_py.mm.slab import common as slab_common
from kernel_py.mm.gfp import GFP_DMA32, GFP_KERNEL, __GFP_ZERO
from kernel_py.mm.page.memblock import Memblock
from kernel_py.arch.x86.e820 import MemoryMap
from kernel_py.arch.x86.pgtable import PgTable
from kernel_py.mm.page.zone import totalreserve_pages

BOOT_TABLE_GFP = GFP_DMA32 | __GFP_ZERO
TABLE_GFP = GFP_KERNEL | __GFP_ZERO

LOG_LINES = 1000


class Kernel:
    def __init__(self, hw, console=print):
        self.hw = hw
        self.console = console
        self.params = cmdline.parse(hw.cmdline())
        self.log = []
        self.last_exception = None
        self.memmap = None
        self.memblock = None
        self.mem_map = None
        self.buddy = None
        self.zones = []
        self.pgtable = None
        self.init_mm = None
        self.slab = None            # kmem caches (mm/slab/common.py)
        self.kmalloc = None
        self.vmalloc = None
        self.blk = None             # block devices (block/blkdev.py)
        self.pagecache = None       # the page cache (mm/filemap/filemap.py)
        self.vfs = None             # mounts (fs/vfs.py)
        self.comm = "swapper"       # the running console command (page_owner's site)
        self.page_debug = None      # page_owner / debug_pagealloc (mm/debug/debug_pagealloc.py)
        self.fault_inject = None    # failslab / fail_page_alloc (mm/debug/fault_inject.py)
        self.kmemleak = None        # allocation tracking, kmemleak=on (mm/debug/kmemleak.py)
        self.command = None         # (name, handler name) of the console command running
        self.console_handles = {}   # addresses the console handed out (shell/handles.py)

    def printk(self, msg):
        self.log.append(msg)
        if len(self.log) > LOG_LINES:
            del self.log[0]
        self.console(msg)

    def note_exception(self, exc):
        self.last_exception = exc

    def pids(self):
        procs = getattr(self, "procs", None)
        return procs.pids() if procs is not None else []

    def boot(self):
        hw = self.hw
        self.memmap = MemoryMap(hw.memory_map(), hw.reserved())
        self.clock = tsc.Clock(hw)
        self.mm_init()
        self.slab_init()
        self.vmalloc_init()
        self.kmemleak_init()
        self.proc_init()
        self.printk(self.summary())
        self.printk(self.mm_summary())
        self.block_init()
        self.reclaim_init()
        from kernel_py.mm.debug.debug_anchor import DebugAnchor
        self.debug_anchor = DebugAnchor(self)     # for host tools over QMP alone
        self.debug_anchor.publish()

    def mm_init(self):
        """memblock -> mem_map -> zones and buddy -> the kernel's page tables.
        Boot-time metadata stays below BOOT_IDENTITY_SIZE, which every boot
        table maps; so do the takeover tables (GFP_DMA32)."""
        hw, m = self.hw, self.memmap
        self.memblock = Memblock(m.usable)
        self.mem_map = page.alloc_mem_map(hw, self.memblock, m.max_pfn(), BOOT_IDENTITY_SIZE)
        self.memblock.retired = True
        self.buddy = buddy_mod.init_zones(hw, self.mem_map, m.ram, self.memblock.free_ranges())
        self.zones = self.buddy.zones
        self.pgtable = PgTable(hw, self.alloc_table, self.free_table)
        self.table_gfp = BOOT_TABLE_GFP
        self.init_mm = init_mm_mod.takeover(hw, self.pgtable, m.ram, self.params, self.buddy)
        self.table_gfp = TABLE_GFP
        from kernel_py.mm.debug.debug_pagealloc import page_debug_init
        page_debug_init(self)

    def slab_init(self):
        """kmem_cache_init after the buddy: k.slab (caches), k.kmalloc."""
        from kernel_py.mm.slab import kmem_cache_init
        from kernel_py.mm.debug.fault_inject import FaultInjection
        self.slab, self.kmalloc = kmem_cache_init(self)
        self.fault_inject = FaultInjection(self)

    def vmalloc_init(self):
        """The vmalloc area allocator over init_mm's tables: k.vmalloc."""
        from kernel_py.mm.vm.vmalloc import vmalloc_init
        self.vmalloc = vmalloc_init(self)

    def kmemleak_init(self):
        """kmemleak=on: track every slab/kmalloc/vmalloc allocation from
        here on (k.kmemleak); off, nothing on those paths changes."""
        from kernel_py.mm.debug.kmemleak import kmemleak_init
        self.kmemleak = kmemleak_init(self)

    def proc_init(self):
        """The process table with init (pid 1), the zero page and the #PF
        handler: k.procs, k.fault, k.fault_handler."""
        from kernel_py.kernel.proc import proc_init
        proc_init(self)

    def block_init(self):
        """Disks (k.blk), the page cache (k.pagecache), /mnt (k.vfs)."""
        from kernel_py.block import blkdev
        from kernel_py.fs import vfs
        blkdev.init(self)
        vfs.init(self)

    def reclaim_init(self):
        """Reclaim and the OOM killer: k.vmscan (buddy.reclaim is its
        direct reclaim; kswapd runs between console commands), k.oom.
        Swap areas (k.swap) exist from proc_init; swapon adds one."""
        from kernel_py.mm.reclaim.oom_kill import OomKiller
        from kernel_py.mm.reclaim.vmscan import Vmscan
        self.vmscan = Vmscan(self)
        self.oom = OomKiller(self)
        self.buddy.reclaim = self.vmscan.direct_reclaim

    def background(self):
        """Between console commands: the lru_add batch, kswapd, kmemleak's
        scan thread."""
        procs = getattr(self, "procs", None)
        if procs is not None:
            procs.reap()                # OOM victims that were busy when chosen
        anon = getattr(self, "anon", None)
        if anon is not None and anon.pending:
            anon.drain()
        vmscan = getattr(self, "vmscan", None)
        if vmscan is not None:
            vmscan.kswapd()
        kml = getattr(self, "kmemleak", None)
        if kml is not None:
            kml.scan_thread()
        anchor = getattr(self, "debug_anchor", None)
        if anchor is not None:
            anchor.refresh()

    def alloc_table(self):
        return self.buddy.alloc_pages(self.table_gfp, 0, KIND_PAGETABLE)

    def free_table(self, pa):
        self.buddy.free_pages(pa, 0)

    def meminfo(self):
        """/proc/meminfo; each subsystem adds its lines as it lands."""
        if self.buddy is None:
            total = self.memmap.total_usable() >> 10
            return meminfo_lines((("MemTotal", total), ("MemFree", total), ("MemAvailable", total)))
        b = self.buddy
        free = b.nr_free_pages()
        available = max(0, free - totalreserve_pages(self.zones))
        pc = self.pagecache
        extra = []
        swap = getattr(self, "swap", None)
        stotal, sfree = swap.totals() if swap is not None else (0, 0)
        if pc is not None:
            # si_mem_available: the file LRU counts, less what the low watermarks keep
            file = pc.active.n + pc.inactive.n
            low = sum(z.low_wmark() for z in self.zones if z.managed_pages)
            available += file - min(file // 2, low)
            swapcache = getattr(self, "swapcache", None)
            pairs = list(pc.meminfo_pairs(stotal, sfree, swapcache.nr if swapcache is not None else 0))
            anon = getattr(self, "anon", None)
            if anon is not None:
                anon.drain()
                for i in range(len(pairs)):     # Linux's order: anon before file
                    if pairs[i][0] == "Active(file)":
                        pairs[i:i] = [("Active(anon)", anon.active.n * 4),
                                      ("Inactive(anon)", anon.inactive.n * 4)]
                        break
                pairs.append(("AnonPages", anon.nr_anon_pages() * 4))
            pairs.append(("Mapped", pc.nr_mapped() * 4))
            if anon is not None:
                pairs.append(("Shmem", anon.nr_shmem() * 4))
            extra += pairs
        if self.slab is not None:
            extra += slab_common.meminfo_pairs(self.slab)
        if self.vmalloc is not None:
            extra += self.vmalloc.meminfo_pairs()
        return meminfo_lines((("MemTotal", b.managed_pages() * 4), ("MemFree", free * 4),
                              ("MemAvailable", available * 4)) + tuple(extra))

    def summary(self):
        m = self.memmap
        return "kernel_py: %d MiB RAM in %d ranges, %d KiB usable, accel=%s, cmdline=%r" % (
            m.total_ram() >> 20, len(m.ram), m.total_usable() >> 10,
            self.hw.accel(), self.hw.cmdline())


    def mm_summary(self):
        zones = " ".join("%s=%d" % (z.name, z.managed_pages) for z in self.zones if z.present_pages)
        return "mm: mem_map %d KiB at 0x%x, managed pages %s, cr3=0x%x%s" % (
            self.mem_map.size >> 10, self.mem_map.base, zones, self.init_mm.pgd,
            " gbpages" if self.init_mm.gbpages else "")


def meminfo_lines(pairs):
    """Linux's layout: the name and colon padded to 16 columns, kB right-aligned in 8."""
    return "\n".join("%-16s%8d kB" % (name + ":", kb) for name, kb in pairs)
