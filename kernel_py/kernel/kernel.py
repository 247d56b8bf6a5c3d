# The kernel object: owns the machine (hw), boots the subsystems in order and
# holds them, so the console and tests reach everything from one place.
#
# Every member is declared in __init__, grouped by layer as Linux's struct
# declarations are: what it is and which file owns it. A member is None
# while its subsystem is switched off or not booted yet; boot() fills them
# in one order, and nothing adds a member afterwards (tests/model/
# test_kernel_members.py checks that over a console workload).

from kernel_py.arch.x86.entry import run_task
from kernel_py.drivers import rtc
from kernel_py.drivers.serial import Serial
from kernel_py.drivers.tty import Tty
from kernel_py.kernel.events.uprobes import Uprobes
from kernel_py.kernel.futex import Futexes
from kernel_py.kernel.kthread import KThreads
from kernel_py.kernel.loadavg import LoadAvg
from kernel_py.kernel.cputime import CpuStat
from kernel_py.kernel.printk import LOG_BUF_LEN
from kernel_py.mm.pyheap import PyHeap
from kernel_py.kernel.sched import Scheduler
from kernel_py.kernel.syscalls import SyscallTable
from kernel_py.kernel.time import TimeKeeping
from kernel_py.lib import cmdline
from kernel_py.lib.errors import KernelError
from kernel_py.lib.random import Random
from kernel_py.arch.x86 import tsc
from kernel_py.arch.x86.layout import BOOT_IDENTITY_SIZE
from kernel_py.arch.x86.e820 import MemoryMap
from kernel_py.arch.x86.pgtable import PgTable
from kernel_py.mm.gfp import GFP_DMA32, GFP_KERNEL, __GFP_ZERO
from kernel_py.mm.page import buddy as buddy_mod
from kernel_py.mm.page import mem_map as page
from kernel_py.mm.types import KIND_PAGETABLE
from kernel_py.mm.page.memblock import Memblock
from kernel_py.mm.page.pcp import PerCpuPages
from kernel_py.mm.vm import init_mm as init_mm_mod
from kernel_py.mm.vm.fault import FaultHandler
from kernel_py.mm.vm.vmalloc import vmalloc_init
from kernel_py.mm.slab import kmem_cache_init
from kernel_py.mm.reclaim.rmap import AnonLru
from kernel_py.mm.reclaim.swapfile import SwapSystem
from kernel_py.mm.reclaim.swap_state import SwapCache
from kernel_py.mm.reclaim.vmscan import Vmscan
from kernel_py.mm.reclaim.oom_kill import OomKiller
from kernel_py.mm.debug.debug_pagealloc import page_debug_init
from kernel_py.mm.debug.fault_inject import FaultInjection
from kernel_py.mm.debug.kmemleak import kmemleak_init
from kernel_py.mm.debug.debug_anchor import DebugAnchor
from kernel_py.block import blkdev
from kernel_py.fs import vfs
from kernel_py.kernel.proc import ProcTable

BOOT_TABLE_GFP = GFP_DMA32 | __GFP_ZERO
TABLE_GFP = GFP_KERNEL | __GFP_ZERO


class Kernel:
    def __init__(self, hw, console=print):
        # -- the machine and the kernel's own records (this file)
        self.hw = hw                    # the machine: the guest's `hw` module, or sim/machine.py
        self.log_out = console          # where printk writes (the serial console)
        self.params = cmdline.parse(hw.cmdline())  # the command line, name -> value (lib/cmdline.py)
        self.log = []                   # printk's newest lines, LOG_BUF_LEN bytes of text (kernel/printk.py)
        self.log_times = []             # the TSC at each line of log (/dev/kmsg's timestamps)
        self.log_bytes = 0              # the text the log holds, in bytes
        self.log_next_seq = 0           # the sequence number the next printk line gets (/dev/kmsg)
        self.log_clear_seq = 0          # the first line syslog's READ_ALL returns (after a CLEAR)
        self.log_syslog_seq = 0         # the next line syslog's READ returns
        self.log_wait = None            # WaitQueue of /dev/kmsg readers (drivers/mem.py)
        self.last_exception = None      # the last exception a console command raised
        self.memmap = None              # the firmware memory map (arch/x86/e820.py)
        self.clock = None               # TSC frequency and jiffies (arch/x86/tsc.py)
        self.pyheap = None              # the kernel's Python heap: size, use, live, peak (mm/pyheap.py)

        # -- physical memory (mm/page/)
        self.memblock = None            # the boot allocator, retired once mem_map exists (memblock.py)
        self.mem_map = None             # one 16-byte record per frame, kept in frames (mem_map.py)
        self.buddy = None               # the zones' free lists, watermarks, GFP (buddy.py)
        self.zones = []                 # buddy.zones: DMA, DMA32, Normal (zone.py)
        self.pcp = None                 # the per-cpu list of user frames (pcp.py)
        self.zero_page = None           # pa of the shared zero page (allocated by mm/vm/fault.py)

        # -- the kernel's address space (arch/x86/pgtable.py, mm/vm/)
        self.pgtable = None             # page-table writer over alloc_table/free_table (pgtable.py)
        self.table_gfp = BOOT_TABLE_GFP  # GFP of page-table frames: DMA32 until the takeover
        self.init_mm = None             # the kernel's tables, loaded in CR3 (init_mm.py)
        self.vmalloc = None             # the vmalloc area allocator (vmalloc.py)

        # -- object allocators (mm/slab/)
        self.slab = None                # the kmem caches and their backend (common.py)
        self.kmalloc = None             # kmalloc's size classes (kmalloc.py)

        # -- processes and faults
        self.procs = None               # the process table, init = pid 1 (kernel/proc.py)
        self.fault = None               # the #PF handler's state and counters (mm/vm/fault.py)
        self.fault_handler = None       # fault.handler: the callable hw runs on a #PF
        self.anon = None                # the anon LRU and reverse map (mm/reclaim/rmap.py)
        self.legacy_va_layout = False   # /proc/sys/vm/legacy_va_layout (shell/cmd_proc.py)

        # -- reclaim and swap (mm/reclaim/)
        self.swap = None                # swap areas, swapon/swapoff (swapfile.py)
        self.swapcache = None           # the swap cache (swap_state.py)
        self.vmscan = None              # direct reclaim and kswapd (vmscan.py)
        self.oom = None                 # the OOM killer (oom_kill.py)

        # -- block devices and files
        self.blk = None                 # the block layer and its disks (block/blkdev.py)
        self.pagecache = None           # the page cache and file LRU (mm/filemap/filemap.py)
        self.vfs = None                 # mounts, /mnt (fs/vfs.py)

        # -- debugging (mm/debug/): None when switched off
        self.page_debug = None          # page_owner / debug_pagealloc (debug_pagealloc.py)
        self.fault_inject = None        # failslab / fail_page_alloc (fault_inject.py)
        self.kmemleak = None            # leak detector, kmemleak=on or slub_debug=U (kmemleak.py)
        self.debug_anchor = None        # mem_map's address for host tools over QMP (debug_anchor.py)

        # -- programs (kernel/, arch/x86/entry.py, drivers/)
        self.sched = None               # the run queue, sleeps, the idle loop's scheduler (kernel/sched.py)
        self.syscalls = None            # the system call table (kernel/syscalls.py)
        self.futex = None               # futex wait queues (kernel/futex.py)
        self.time = None                # the wall clock, from the RTC at boot (kernel/time.py)
        self.loadavg = None             # the load average (kernel/loadavg.py)
        self.cpustat = None             # CPU time in ring 3, idle and kernel (kernel/cputime.py)
        self.random = None              # getrandom, AT_RANDOM, /dev/urandom (lib/random.py)
        self.serial = None              # the UART (drivers/serial.py)
        self.tty = None                 # the console terminal (drivers/tty.py)
        self.console = None             # the kpy# monitor (shell/console.py), made by main.start
        self.kthreads = None            # kthreadd, kswapd0, kmemleak... (kernel/kthread.py)
        self.uprobes = None             # breakpoints in programs (kernel/events/uprobes.py)
        self.memleak = {}               # pid -> memleak tracer attached to it (kernel/trace/memleak.py)

        # -- demos (demo/)
        self.pfdemo = None              # pfdemo's table while it is in CR3 (demo/pfdemo.py)

        # -- what the console is running and holds (shell/)
        self.comm = "swapper"           # current->comm: the running command (page_owner, fault_inject)
        self.command = None             # (name, handler name) of that command (kmemleak's site)
        self.console_handles = {}       # address -> (size, kind) handed out (shell/handles.py)
        self.kmemleak_test_lists = []   # list heads kmemleak-test built (shell/cmd_kmemleak.py)

    def printk(self, msg):
        self.log.append(msg)
        self.log_times.append(self.hw.rdtsc())
        self.log_bytes += len(msg)
        self.log_next_seq += 1
        while self.log_bytes > LOG_BUF_LEN and len(self.log) > 1:
            self.log_bytes -= len(self.log[0])
            del self.log[0]
            del self.log_times[0]
        self.log_out(msg)
        wq = self.log_wait
        if wq is not None and wq.tasks and self.sched is not None:
            self.sched.wake_up(wq)

    def note_exception(self, exc):
        self.last_exception = exc

    def pids(self):
        return self.procs.pids() if self.procs is not None else []

    def boot(self):
        hw = self.hw
        self.memmap = MemoryMap(hw.memory_map(), hw.reserved())
        self.clock = tsc.Clock(hw)
        self.pyheap = PyHeap(hw)
        self.mm_init()
        self.slab_init()
        self.vmalloc_init()
        self.kmemleak_init()
        self.proc_init()
        self.sched_init()
        self.printk(self.summary())
        self.printk(self.mm_summary())
        self.block_init()
        self.reclaim_init()
        self.kthread_init()
        self.debug_anchor = DebugAnchor(self)     # for host tools over QMP alone
        self.debug_anchor.publish()

    def mm_init(self):
        """memblock -> mem_map -> zones and buddy -> the kernel's page tables.
        Boot-time metadata stays below BOOT_IDENTITY_SIZE, which every boot
        table maps; so do the takeover tables (GFP_DMA32). Then page_owner
        and debug_pagealloc when asked for (k.page_debug)."""
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
        self.page_debug = page_debug_init(self)

    def slab_init(self):
        """kmem_cache_init after the buddy: k.slab (caches), k.kmalloc; fault
        injection's attributes over both allocators (k.fault_inject)."""
        self.slab, self.kmalloc = kmem_cache_init(self)
        self.fault_inject = FaultInjection(self)

    def vmalloc_init(self):
        """The vmalloc area allocator over init_mm's tables: k.vmalloc."""
        self.vmalloc = vmalloc_init(self)

    def kmemleak_init(self):
        """kmemleak=on: track every slab/kmalloc/vmalloc allocation from
        here on (k.kmemleak); off, nothing on those paths changes."""
        self.kmemleak = kmemleak_init(self)

    def proc_init(self):
        """The anon LRU (k.anon), swap areas (k.swap, empty until swapon)
        and the swap cache; the process table (k.procs); the per-cpu page
        list (k.pcp), the zero page and the #PF handler (k.fault); then
        init, pid 1: the kernel's own, unless init=PATH names a program
        (main.start runs it as pid 1 once the disks are mounted)."""
        self.anon = AnonLru(self)
        self.swap = SwapSystem(self)
        self.swapcache = SwapCache(self)
        self.procs = ProcTable(self)
        self.pcp = PerCpuPages(self)
        self.fault = FaultHandler(self)
        self.zero_page = self.fault.zero_page
        self.fault_handler = self.fault.handler
        self.hw.set_fault_handler(self.fault_handler)
        if "init" not in self.params:
            self.procs.spawn("init", 0)

    def sched_init(self):
        """Programs: the scheduler and the tick, the syscall table, the
        console terminal, time and random numbers."""
        hw = self.hw
        epoch = rtc.read_time(hw)
        self.random = Random(hw.rdtsc() ^ (epoch << 20))
        self.time = TimeKeeping(self.clock, epoch)
        self.loadavg = LoadAvg(self.clock)
        self.cpustat = CpuStat(self.clock, self.procs)
        self.sched = Scheduler(self, run_task)
        self.syscalls = SyscallTable(self)
        self.futex = Futexes(self)
        self.uprobes = Uprobes(self)
        self.serial = Serial(hw)
        self.tty = Tty(self, self.serial.write)

    def block_init(self):
        """Disks (k.blk), the page cache (k.pagecache), /mnt (k.vfs)."""
        self.blk = blkdev.init(self)
        vfs.init(self)

    def reclaim_init(self):
        """Reclaim and the OOM killer: k.vmscan (buddy.reclaim is its
        direct reclaim; kswapd runs between console commands), k.oom."""
        self.vmscan = Vmscan(self)
        self.oom = OomKiller(self)
        self.buddy.reclaim = self.vmscan.direct_reclaim
        self.swap_on_boot()

    def kthread_init(self):
        """The kernel threads: kthreadd (pid 2, after init's 1), kswapd0
        (woken when an allocation falls below a zone's low watermark, or by
        direct reclaim), and kmemleak's scanner when kmemleak is on."""
        kt = self.kthreads = KThreads(self)
        if self.procs.last_pid < 1:
            self.procs.last_pid = 1             # init=PATH: pid 1 waits for the program
        kt.start()
        vmscan = self.vmscan
        kswapd = kt.create("kswapd0", vmscan.kswapd_thread)
        self.buddy.wakeup_kswapd = lambda: kt.wake(kswapd)
        vmscan.kswapd_task = kswapd
        pc = self.pagecache
        if pc is not None:
            flush = kt.create("writeback", lambda: self.flusher_thread(flush))
            clock = self.clock
            pc.now_cs = lambda: (clock.rdtsc() - clock.t0) * 100 // clock.hz
            pc.wake_flusher = lambda: kt.wake_after(flush, pc.dirty_writeback_centisecs * 10)
        kml = self.kmemleak
        if kml is not None:
            kt.create("kmemleak", kml.scan_thread, kml.scan_period_ms())

    def flusher_thread(self, t):
        """The writeback thread: old dirty data to disk; while some stays
        dirty, look again after dirty_writeback_centisecs."""
        pc = self.pagecache
        if pc.flusher():
            self.kthreads.wake_after(t, pc.dirty_writeback_centisecs * 10)
        return False

    def swap_on_boot(self):
        """What `swapon -a` does with an /etc/fstab line for the second disk:
        sdb becomes a swap area when it carries a swap signature (mkswap's
        SWAPSPACE2); `noswap` on the command line leaves it off."""
        blk = self.blk
        if "noswap" in self.params or blk is None or "sdb" not in blk.devices:
            return
        dev = blk.devices["sdb"]
        try:
            self.swap.read_header(dev)
        except KernelError:
            return                          # not a swap disk: nothing to do
        try:
            self.swap.swapon(dev)
        except KernelError as exc:
            self.printk("swapon /dev/sdb: %s" % exc.line())

    def background(self):
        """After each console command, and from the idle loop: OOM victims
        that were busy when chosen, the lru_add batch, the kernel threads
        that are due (kswapd0, kmemleak), the debug anchor."""
        if self.procs is not None:
            self.procs.reap()
        if self.anon is not None and self.anon.pending:
            self.anon.drain()
        if self.vmscan is not None and self.vmscan.wants_kswapd():
            self.kthreads.wake(self.vmscan.kswapd_task)
        if self.kmemleak is not None and self.kmemleak.scan_due():
            self.kthreads.wake_name("kmemleak")
        if self.sched is not None:
            self.sched.wake_sleepers()          # due timers: periodic kernel threads
            self.sched.run_kthreads()           # kswapd0, kmemleak... when woken
        if self.debug_anchor is not None:
            self.debug_anchor.refresh()

    def alloc_table(self):
        return self.buddy.alloc_pages(self.table_gfp, 0, KIND_PAGETABLE)

    def free_table(self, pa):
        self.buddy.free_pages(pa, 0)

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
