# kmemleak (Linux: mm/kmemleak.c, Documentation/dev-tools/kmemleak.rst):
# the kernel's allocation tracking layer and the leak scanner built on it.
#
# Tracking. With `kmemleak=on` on the kernel command line every kmalloc,
# kmem_cache_alloc and vmalloc allocation is recorded - address, size, the
# allocation's trace (allocator, calling site, comm), pid, jiffies - and
# forgotten on free. The layer wraps the allocators' entry points with
# instance attributes at boot (install()), so with kmemleak off nothing on
# the allocation paths changes: the SLUB viper fast paths run as before.
# With it on, kmalloc takes the Python path through the cache's (wrapped)
# alloc, since the viper pop would bypass the record. Slab objects are
# recorded with the cache's object_size, as slab_post_alloc_hook does;
# kmalloc_large, SLOB's kmalloc blocks and vmalloc areas with the size
# asked for (vmalloc's page-rounded).
#
# Why boot only (as Linux, which has no runtime "on"): objects allocated
# before tracking starts would be unknown to the scanner, so their contents
# would not be scanned and whatever they point to would be reported as a
# leak. `echo off` stops tracking for good and puts the allocators back.
#
# The same records give the per-site view (slab_debugfs' alloc_traces):
# live objects and bytes by allocation site, per cache and across caches.
# `slub_debug=U` (SLAB_STORE_USER) turns the records on for that view alone,
# without the scanner, as Linux needs it for alloc_traces.
#
# Scanning (kmemleak_scan). Every object starts white (count 0 < min_count
# 1). The roots are scanned first; each value that points into a tracked
# object [start, start + size) - into the middle counts, as in Linux -
# raises its count, and an object whose count reaches min_count turns gray
# and joins the gray list. Gray objects' contents are scanned in turn, word
# by word (8-byte aligned 64-bit values, read from physical memory: the
# direct map's frames, or a vmalloc area's pages), until the list is empty.
# A white object whose contents changed since the previous scan is made
# gray for this round (its checksum, initially 0, is the crc the report
# prints), so a new object is reported on the second scan at the earliest,
# and only once it is older than min_age (Linux: 5 s). What is still white
# is reported once (OBJECT_REPORTED); `echo clear` paints the reported
# objects gray for good (min_count 0), as kmemleak_clear does.
#
# What the roots are here. Linux scans the kernel's data and bss sections,
# the per-cpu areas and the task stacks for raw words. kernel_py's data is
# Python objects in the MicroPython heap, where an address is a tagged or
# multi-digit int, never a raw 64-bit word: scanning that heap would find
# nothing. So the roots are the Python-side references the kernel keeps to
# objects it owns, each holder registered with register_root(): the
# console's handle table (addresses it handed out and still holds, see
# shell/handles.py), the kmemleak-test module's list head, FAT's inode and
# dentry caches (fs/fat/super.py: Linux's inode_hashtable and
# dentry_hashtable, scanned memory there) and the VFS's holders
# (fs/file_table.py: a walk of the fd tables, each File's f_inode and
# private_data, i_pipe, the super blocks' dentry trees and the VMAs'
# files, where Linux's scan reads that memory; nothing is registered at
# allocation, so what no holder reaches is reported). A reference from
# one tracked object to another is left to the scan (a FAT dentry's
# d_inode). The allocators' own bookkeeping (vmalloc's area table, slab freelists) is not
# a root, as in Linux, where kmemleak discounts the vm_struct's reference
# (min_count 2 for vmalloc). The stacks: a scan runs as a console command,
# between commands, when no kernel function holds an address in a local.
# A Python holder that does not register (a mempool's reserve today) makes
# its objects look leaked: see docs/kmemleak.md.

from kernel_py.lib.bisect import bisect_right
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, VMALLOC_START
from kernel_py.arch.x86.native import VIPER, micropython      # CPython: the plain loops at the end
from kernel_py.mm import gfp as G
from kernel_py.mm.slab.kmalloc import KMALLOC_MAX_CACHE_SIZE, ZERO_SIZE_PTR
from kernel_py.mm.slab.common import SLAB_STORE_USER
from kernel_py.arch.x86.tsc import HZ
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE, small

GFP_KERNEL = G.GFP_KERNEL
DMB = DIRECT_MAP_BASE
DMB_HI = small(DIRECT_MAP_BASE >> 32)           # keys are address - DMB
VMALLOC_KEY = small(VMALLOC_START - DIRECT_MAP_BASE)

MIN_AGE_MS = 5000               # Linux's jiffies_min_age
SCAN_SECS = 600                 # Linux's jiffies_scan_wait: the scan thread's period
FIRST_SCAN_SECS = 60            # Linux's SECS_FIRST_SCAN
HEX_MAX_LINES = 2
HEX_ROW_SIZE = 16
HEX_ASCII_COLUMN = HEX_ROW_SIZE * 3 + 1     # hex_dump_to_buffer, groupsize 1
CSUM_MASK = 0x3FFFFFFF

# an object's record: NW words of self.obj per slot
F_KEY = 0          # address - DIRECT_MAP_BASE (vmalloc keys are above VMALLOC_KEY)
F_SIZE = 1
F_TRACE = 2        # index into self.traces: (allocator, site, comm, cache)
F_JIFFIES = 3
F_PID = 4
F_FLAGS = 5
F_COUNT = 6        # references found by the current scan
F_CSUM = 7         # checksum of the contents at the last check (0: new)
F_MIN = 8          # min_count: 1 normal, 0 gray for good, -1 black (ignored)
F_SEQ = 9          # allocation order (reports list objects in it)
NW = 10

OBJECT_ALLOCATED = 1
OBJECT_REPORTED = 2
OBJECT_NO_SCAN = 4
KMEMLEAK_BLACK = -1

ROOTS = []         # (name, fn(kernel) -> iterable of addresses)


def register_root(name, fn):
    """A Python-side holder of kernel addresses: fn(kernel) lists them."""
    ROOTS.append((name, fn))


class Kmemleak:
    def __init__(self, k, scanning=True):
        self.k = k
        self.scanning = scanning    # False: slub_debug=U's records only
        self.r8, self.r32 = k.hw.read8, k.hw.read32
        self.jiffies = k.clock.jiffies
        self.enabled = True
        self.index = {}             # key -> slot
        self.obj = []               # NW words per slot
        self.free_slots = []
        self.traces = []            # trace id -> (allocator, site, comm, cache)
        self.trace_ids = {}
        self.via = None             # allocator name while kmalloc runs
        self.caller = None          # the calling function an allocation names (the VFS's
                                    # alloc_empty_file...): the trace's second frame
        self.min_age = MIN_AGE_MS * HZ // 1000
        self.last_scan = 0
        # the scan thread (kmemleak_scan_thread), run between console
        # commands as kswapd is: the first scan a minute after boot, then
        # one every scan_period jiffies; None: stopped
        self.scan_period = SCAN_SECS * HZ
        self.next_scan = self.jiffies() + FIRST_SCAN_SECS * HZ if scanning else None
        self.seq = 0
        self.patched = []           # (object, attribute, previous value)
        self.keys = self.slots = self.ends = ()

    # --- the tracking layer ---------------------------------------------------
    def context(self):
        """(comm, pid, site) of the allocation being made. The console runs
        each command for init (pid 1) and names it as comm; a process in
        CR3 (a fault, a system call) names itself; the rest is the kernel
        (swapper). The site is the caller the allocating code named
        (self.caller: the VFS's alloc_empty_file...), else the console
        command's handler."""
        k = self.k
        cmd = k.command
        procs = k.procs
        cur = procs.current if procs is not None else None
        site = self.caller or (cmd[1] if cmd else "kernel")
        if cur is not None:
            return cur.comm, cur.pid, site
        if cmd:
            return cmd[0], 1, site
        return "swapper/0", 0, site

    def trace_id(self, allocator, site, comm, cache):
        t = (allocator, site, comm, cache)
        tid = self.trace_ids.get(t)
        if tid is None:
            tid = len(self.traces)
            self.traces.append(t)
            self.trace_ids[t] = tid
        return tid

    def record(self, key, size, allocator, cache, site=None):
        """create_object: a new white object (count 0, min_count 1)."""
        comm, pid, here = self.context()
        self.seq += 1
        rec = [key, size, self.trace_id(allocator, site or here, comm, cache),
               self.jiffies(), pid, OBJECT_ALLOCATED, 0, 0, 1, self.seq]
        o = self.obj
        old = self.index.get(key)
        if old is not None:             # freed behind our back: the new one wins
            self.release(old)
        if self.free_slots:
            slot = self.free_slots.pop()
            for i in range(NW):
                o[slot * NW + i] = rec[i]
        else:
            slot = len(o) // NW
            o.extend(rec)
        self.index[key] = slot

    def release(self, slot):
        self.obj[slot * NW + F_FLAGS] = 0
        self.free_slots.append(slot)

    def forget(self, va):
        """delete_object on free."""
        if va is None:
            return
        slot = self.index.pop(va - DMB, None)
        if slot is not None:
            self.release(slot)

    def slot_of(self, va):
        slot = self.index.get(va - DMB)
        if slot is None:
            raise KernelError("EINVAL", "Unknown object at 0x%x" % va)
        return slot

    def not_leak(self, va):
        """kmemleak_not_leak: gray for good, scanned, never reported."""
        self.obj[self.slot_of(va) * NW + F_MIN] = 0

    def ignore(self, va):
        """kmemleak_ignore: black, neither scanned nor reported."""
        self.obj[self.slot_of(va) * NW + F_MIN] = KMEMLEAK_BLACK

    def no_scan(self, va):
        """kmemleak_no_scan: reported if unreferenced, contents not scanned."""
        self.obj[self.slot_of(va) * NW + F_FLAGS] |= OBJECT_NO_SCAN

    def patch(self, obj, name, fn):
        self.patched.append((obj, name, getattr(obj, name)))
        setattr(obj, name, fn)

    def install(self):
        """Wrap the allocators of k.slab, k.kmalloc, k.vmalloc."""
        k = self.k
        for s in k.slab.all_caches():
            self.track_cache(s)
        k.slab.on_create = self.track_cache
        self.track_kmalloc(k.kmalloc)
        self.track_vmalloc(k.vmalloc)

    def track_cache(self, s):
        alloc, free = s.alloc, s.free
        me = self

        def kmem_cache_alloc(gfp=0):
            va = alloc(gfp)
            if va is not None and me.enabled:
                me.record(va - DMB, s.object_size, me.via or "kmem_cache_alloc", s.name)
            return va

        self.patch(s, "alloc", kmem_cache_alloc)
        self.patch(s, "free", self.untracking(free))

    def untracking(self, free):
        """free, then forget the object (a free that raises keeps it)."""
        me = self

        def tracked_free(va):
            free(va)
            me.forget(va)
        return tracked_free

    def track_kmalloc(self, km):
        """Slab-backed kmalloc objects are recorded by their cache's wrapper
        (inner is the Python path, which goes through it); what bypasses the
        caches - kmalloc_large, SLOB's blocks - is recorded here."""
        inner = km.kmalloc_slob if km.slob is not None else km.kmalloc_py
        limit = PAGE_SIZE - km.slob.KMALLOC_HDR if km.slob is not None else KMALLOC_MAX_CACHE_SIZE
        me = self

        def kmalloc(size, gfp=GFP_KERNEL):
            me.via = "kmalloc"
            try:
                va = inner(size, gfp)
            finally:
                me.via = None
            if va is not None and va > ZERO_SIZE_PTR and me.enabled and va - DMB not in me.index:
                me.record(va - DMB, size, "kmalloc", "slob" if size <= limit else "kmalloc-large")
            return va

        self.patch(km, "kmalloc", kmalloc)
        self.patch(km, "kfree", self.untracking(km.kfree))

    def track_vmalloc(self, vm):
        inner = vm.vmalloc
        me = self

        def vmalloc(size, gfp=GFP_KERNEL, caller="vmalloc"):
            va = inner(size, gfp, caller)
            if va is not None and me.enabled:
                me.record(va - DMB, (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), "vmalloc",
                          "vmalloc", None if caller == "vmalloc" else caller)
            return va

        self.patch(vm, "vmalloc", vmalloc)
        self.patch(vm, "vfree", self.untracking(vm.vfree))

    def disable(self):
        """echo off: stop for good, give the allocators back their paths."""
        self.enabled = False
        while self.patched:
            obj, name, old = self.patched.pop()
            setattr(obj, name, old)
        self.k.slab.on_create = None
        self.index = {}
        self.obj = []
        self.free_slots = []

    # --- reading objects --------------------------------------------------------
    def chunks(self, key, size):
        """The object's bytes as physical (pa, n) ranges."""
        if key < VMALLOC_KEY:
            return ((key, size),)
        vm = self.k.vmalloc
        area = vm.areas.get(key + DMB)
        if area is None:
            return ()
        out = []
        for pa in area.pages[:(size + PAGE_SIZE - 1) >> PAGE_SHIFT]:
            n = min(PAGE_SIZE, size)
            out.append((pa, n))
            size -= n
        return out

    def checksum(self, slot):
        """Of the contents; all zeroes sum to 0, like crc32(0, ...)."""
        o, r32, r8 = self.obj, self.r32, self.r8
        b = slot * NW
        c = 0
        for pa, n in self.chunks(o[b + F_KEY], o[b + F_SIZE]):
            end = pa + (n & ~3)
            c = words_csum(r32, c, pa, end)
            pa = end
            while pa < end + (n & 3):
                c = (c * 31 + r8(pa)) & CSUM_MASK
                pa += 1
        return c

    def head_bytes(self, slot, n):
        o, r8 = self.obj, self.r8
        out = bytearray()
        for pa, m in self.chunks(o[slot * NW + F_KEY], o[slot * NW + F_SIZE]):
            for i in range(min(m, n - len(out))):
                out.append(r8(pa + i))
        return out

    # --- scanning ------------------------------------------------------------------
    def lookup(self, key):
        """The slot of the object containing key, or -1."""
        i = bisect_right(self.keys, key)
        if i and key < self.ends[i - 1]:
            return self.slots[i - 1]
        return -1

    def update_refs(self, slot, gray):
        """A reference to slot: only white objects count it (Linux)."""
        o = self.obj
        b = slot * NW
        m = o[b + F_MIN]
        if m == KMEMLEAK_BLACK or o[b + F_COUNT] >= m:
            return
        o[b + F_COUNT] += 1
        if o[b + F_COUNT] >= m:
            gray.append(slot)

    def scan_block(self, pa, n, scanned, gray):
        """Each 8-byte aligned word of [pa, pa + n): a pointer into an
        object other than the one being scanned is a reference to it."""
        r32 = self.r32
        lo, hi = self.hi_range
        p = (pa + 7) & ~7
        end = pa + n - 7
        while True:
            p = next_pointer(r32, p, end, lo, hi)
            if p < 0:
                return
            s = self.lookup(((r32(p + 4) - DMB_HI) << 32) | r32(p))
            if s >= 0 and s != scanned:
                self.update_refs(s, gray)
            p += 8

    def scan_object(self, slot, gray):
        o = self.obj
        b = slot * NW
        if o[b + F_FLAGS] & OBJECT_NO_SCAN:
            return
        for pa, n in self.chunks(o[b + F_KEY], o[b + F_SIZE]):
            self.scan_block(pa, n, slot, gray)

    def scan_gray_list(self, gray):
        i = 0
        while i < len(gray):            # grows while it is scanned
            self.scan_object(gray[i], gray)
            i += 1

    def prepare(self):
        """Sorted object table for lookup(), and the range of the high words
        of addresses that can point into an object (a cheap first filter)."""
        index = self.index
        keys = sorted(index)
        slots = [index[x] for x in keys]
        o = self.obj
        self.keys, self.slots = keys, slots
        self.ends = [keys[i] + o[slots[i] * NW + F_SIZE] for i in range(len(keys))]
        if keys:
            self.hi_range = (keys[0] >> 32, (max(self.ends) - 1) >> 32)
        else:
            self.hi_range = (1, 0)
        return slots

    def white(self, b):
        o = self.obj
        return o[b + F_MIN] != KMEMLEAK_BLACK and o[b + F_COUNT] < o[b + F_MIN]

    def unreferenced(self, slot):
        b = slot * NW
        o = self.obj
        return (self.white(b) and o[b + F_FLAGS] & OBJECT_ALLOCATED
                and o[b + F_JIFFIES] + self.min_age <= self.last_scan)

    def scan(self):
        """kmemleak_scan; returns the number of new suspected leaks."""
        o = self.obj
        self.last_scan = self.jiffies()
        slots = self.prepare()
        gray = []
        for slot in slots:
            b = slot * NW
            o[b + F_COUNT] = 0
            if o[b + F_MIN] == 0:
                gray.append(slot)
        for _name, fn in ROOTS:
            for va in fn(self.k):
                s = self.lookup(va - DMB)
                if s >= 0:
                    self.update_refs(s, gray)
        self.scan_gray_list(gray)
        # white objects modified since the previous scan: gray this round
        gray = []
        for slot in slots:
            b = slot * NW
            if self.white(b):
                c = self.checksum(slot)
                if c != o[b + F_CSUM]:
                    o[b + F_CSUM] = c
                    o[b + F_COUNT] = o[b + F_MIN]
                    gray.append(slot)
        self.scan_gray_list(gray)
        new = 0
        for slot in slots:
            b = slot * NW
            if self.unreferenced(slot) and not o[b + F_FLAGS] & OBJECT_REPORTED:
                o[b + F_FLAGS] |= OBJECT_REPORTED
                new += 1
        self.keys = self.slots = self.ends = ()
        if new:
            self.k.printk("kmemleak: %d new suspected memory leaks (see /sys/kernel/debug/kmemleak)"
                          % new)
        return new

    def scan_period_ms(self):
        """How often the kmemleak thread looks at the clock."""
        return 1000

    def scan_due(self):
        return self.next_scan is not None and self.enabled and self.jiffies() >= self.next_scan

    def scan_thread(self):
        """The kmemleak thread's work: a scan when its time has come."""
        if not self.scan_due():
            return
        self.scan()
        self.next_scan = self.jiffies() + self.scan_period

    def set_scan_thread(self, secs):
        """`scan=on` (None: the current period), `scan=off` / `scan=0`,
        `scan=SECS`; a (re)started thread scans at the next chance."""
        if secs == 0:
            self.next_scan = None
            return
        if secs is not None:
            self.scan_period = secs * HZ
        self.next_scan = self.jiffies()

    def leaks(self):
        """Slots reported and still unreferenced, in allocation order."""
        o = self.obj
        out = []
        for slot in self.index.values():
            if o[slot * NW + F_FLAGS] & OBJECT_REPORTED and self.unreferenced(slot):
                out.append((o[slot * NW + F_SEQ], slot))
        out.sort()
        return [t[1] for t in out]

    def clear(self):
        """kmemleak_clear: reported leaks become gray for good."""
        for slot in self.leaks():
            self.obj[slot * NW + F_MIN] = 0

    # --- reports -----------------------------------------------------------------
    def frames(self, slot):
        allocator, site, comm, cache = self.traces[self.obj[slot * NW + F_TRACE]]
        return (allocator, site) if site != allocator else (allocator,)

    def describe(self, slot):
        """print_unreferenced: Linux's report of one object."""
        o = self.obj
        b = slot * NW
        size = o[b + F_SIZE]
        comm = self.traces[o[b + F_TRACE]][2]
        lines = ["unreferenced object 0x%x (size %d):" % (o[b + F_KEY] + DMB, size),
                 '  comm "%s", pid %d, jiffies %d' % (comm, o[b + F_PID], o[b + F_JIFFIES])]
        n = min(size, HEX_MAX_LINES * HEX_ROW_SIZE)
        lines.append("  hex dump (first %d bytes):" % n)
        lines += hex_dump(self.head_bytes(slot, n))
        lines.append("  backtrace (crc %x):" % o[b + F_CSUM])
        for f in self.frames(slot):
            lines.append("    [<%016x>] %s" % (frame_id(f), f))
        return lines

    def report(self):
        out = []
        for slot in self.leaks():
            out += self.describe(slot)
        return "\n".join(out)

    def dump(self, va):
        """echo dump=ADDR: dump_object_info to the kernel log."""
        slot = self.slot_of(va)
        o = self.obj
        b = slot * NW
        pr = self.k.printk
        pr("kmemleak: Object 0x%x (size %d):" % (va, o[b + F_SIZE]))
        pr('kmemleak:   comm "%s", pid %d, jiffies %d' % (
            self.traces[o[b + F_TRACE]][2], o[b + F_PID], o[b + F_JIFFIES]))
        pr("kmemleak:   min_count = %d" % o[b + F_MIN])
        pr("kmemleak:   count = %d" % o[b + F_COUNT])
        pr("kmemleak:   flags = 0x%x" % o[b + F_FLAGS])
        pr("kmemleak:   checksum = %d" % o[b + F_CSUM])
        pr("kmemleak:   backtrace:")
        for f in self.frames(slot):
            pr("     %s" % f)

    # --- per-site allocation tracking (alloc_traces) ------------------------------
    def sites(self, cache=None, by_allocator=True):
        """{(allocator, site): [count, bytes, min age, sum age, max age,
        min pid, max pid, {caches}]} of the live objects (of one cache);
        by_allocator False: keyed by ("", site)."""
        now = self.jiffies()
        o, traces = self.obj, self.traces
        out = {}
        for slot in self.index.values():
            b = slot * NW
            t = traces[o[b + F_TRACE]]
            if cache is not None and t[3] != cache:
                continue
            age = now - o[b + F_JIFFIES]
            pid = o[b + F_PID]
            where = (t[0] if by_allocator else "", t[1])
            g = out.get(where)
            if g is None:
                out[where] = [1, o[b + F_SIZE], age, age, age, pid, pid, {t[3]: 1}]
                continue
            g[0] += 1
            g[1] += o[b + F_SIZE]
            g[2] = min(g[2], age)
            g[3] += age
            g[4] = max(g[4], age)
            g[5] = min(g[5], pid)
            g[6] = max(g[6], pid)
            g[7][t[3]] = 1
        return out

    def alloc_traces(self, cache):
        """/sys/kernel/debug/slab/<cache>/alloc_traces, as slab_debugfs_show
        prints it: count, site, age min/avg/max (jiffies), pid, the trace;
        most frequent site first."""
        rows = sorted(self.sites(cache).items(), key=lambda kv: (-kv[1][0], kv[0]))
        lines = []
        for (allocator, site), g in rows:
            lines.append("%7d %s %s %s" % (g[0], site, age_text(g), pid_text(g)))
            for f in (allocator, site) if site != allocator else (allocator,):
                lines.append("        %s" % f)
            lines.append("")
        return "\n".join(lines)

    def summary(self):
        """Across caches, vmalloc and kmalloc_large: live bytes and objects
        by site, the largest first, so a growing site stands out."""
        rows = sorted(self.sites(None, False).items(), key=lambda kv: (-kv[1][1], kv[0]))
        lines = ["%10s %7s %-24s %s" % ("bytes", "objects", "site", "caches")]
        for (_, site), g in rows:
            lines.append("%10d %7d %-24s %s %s %s" % (
                g[1], g[0], site, ",".join(sorted(g[7])), age_text(g), pid_text(g)))
        return "\n".join(lines)


# The two loops over every word of an object: viper in the guest, where a
# hw call per word would cost ~1 us (reads through the direct map, as
# slub_fast.py does); plain Python over hw on the host.
if VIPER:
    @micropython.viper
    def next_pointer(r32, p: int, end: int, lo: int, hi: int) -> int:
        """Physical address of the first 8-byte word in [p, end) whose high
        half less DIRECT_MAP_BASE's is in [lo, hi]; -1 if none."""
        sh = 32
        w = ptr32((-0x7780 << sh) + p)
        base = (1 << sh) - 0x7780               # DIRECT_MAP_BASE >> 32
        n = (end - p + 7) >> 3
        i = 0
        while i < n:
            rel = int(w[2 * i + 1]) - base
            if lo <= rel and rel <= hi:
                return p + (i << 3)
            i += 1
        return -1

    @micropython.viper
    def words_csum(r32, c: int, p: int, end: int) -> int:
        """c folded with the 32-bit words of [p, end)."""
        sh = 32
        w = ptr32((-0x7780 << sh) + p)
        n = (end - p) >> 2
        i = 0
        while i < n:
            c = (c * 31 + int(w[i])) & 0x3FFFFFFF
            i += 1
        return c
else:
    def next_pointer(r32, p, end, lo, hi):
        while p < end:
            if lo <= r32(p + 4) - DMB_HI <= hi:
                return p
            p += 8
        return -1

    def words_csum(r32, c, p, end):
        while p < end:
            c = (c * 31 + r32(p)) & CSUM_MASK
            p += 4
        return c


def age_text(g):
    if g[2] == g[4]:
        return "age=%d" % g[2]
    return "age=%d/%d/%d" % (g[2], g[3] // g[0], g[4])


def pid_text(g):
    return "pid=%d" % g[5] if g[5] == g[6] else "pid=%d-%d" % (g[5], g[6])


def frame_id(name):
    """A stable stand-in for a return address: the frame name hashed
    (kernel_py has no code addresses to print)."""
    h = 0x811C9DC5
    for ch in name:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return h


def hex_dump(data):
    """seq_hex_dump(prefix "    ", rowsize 16, groupsize 1, ascii)."""
    lines = []
    for i in range(0, len(data), HEX_ROW_SIZE):
        row = data[i:i + HEX_ROW_SIZE]
        hx = " ".join("%02x" % c for c in row)
        asc = "".join(chr(c) if 32 <= c < 127 else "." for c in row)
        lines.append("    " + hx + " " * (HEX_ASCII_COLUMN - len(hx)) + asc)
    return lines


def parse_cmdline(k):
    """kmemleak=on|off (default off, CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF)."""
    v = k.params.get("kmemleak")
    if v is None or v == "off":
        return False
    if v != "on":
        k.printk("kmemleak: unknown boot parameter kmemleak=%s, staying off" % v)
        return False
    return True


def kmemleak_init(k):
    """Boot, after the slab layer and vmalloc: k.kmemleak or None."""
    scanning = parse_cmdline(k)
    if not scanning and not k.slab.debug_flags & SLAB_STORE_USER:
        return None
    t = Kmemleak(k, scanning)
    t.install()
    if scanning:
        k.printk("kmemleak: Kernel memory leak detector initialized (min age %d ms)" % MIN_AGE_MS)
        k.printk("kmemleak: Automatic memory scanning thread started (between console commands: "
                 "the first scan in %d s, then every %d s)" % (FIRST_SCAN_SECS, SCAN_SECS))
    else:
        k.printk("slub: slub_debug=U: recording allocation sites (alloc_traces)")
    return t
