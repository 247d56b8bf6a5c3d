# The kmem_cache interface shared by the three slab backends (Linux:
# mm/slab_common.c): cache creation and the cache registry, the object layout
# (alignment, red zones, where the free pointer lives), the choice of backend
# (kernel command line `slab=slab|slub|slob`, default slub, or per cache for
# tests), /proc/slabinfo accounting and the meminfo slab lines.
#
# Every object lives in a real frame. Backends work on physical addresses
# internally (small ints, cheap in MicroPython) and hand out direct-mapped
# virtual addresses (DIRECT_MAP_BASE + pa), as kmalloc does in Linux.
#
# Slab pages are tagged in their mem_map record (owner kind "slab", aux = the
# cache id), so kfree finds the owning cache from the page alone. Lists of
# slabs (partial, full, free) are linked through the records' next/prev pfn
# fields, like list_head in struct page: no per-slab Python objects.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm.gfp import F_COMP, F_ZERO
from kernel_py.mm.slab import slub_fast
from kernel_py.mm.page.mem_map import PfnList
from kernel_py.mm.types import KIND_SHIFT, KIND_SLAB, OFF_AUX, OFF_COUNT, OFF_FLAGS, PG_tail
from kernel_py.arch.x86.cpu import PAGE_SIZE, PAGE_SHIFT
from kernel_py.arch.x86.native import register_area

# Cache flags (values as in Linux include/linux/slab.h)
SLAB_CONSISTENCY_CHECKS = 0x00000100
SLAB_RED_ZONE = 0x00000400
SLAB_POISON = 0x00000800
SLAB_HWCACHE_ALIGN = 0x00002000
SLAB_CACHE_DMA = 0x00004000
SLAB_STORE_USER = 0x00010000
SLAB_RECLAIM_ACCOUNT = 0x00020000
SLAB_PANIC = 0x00040000
SLAB_DEBUG_FLAGS = SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON

BACKENDS = ("slab", "slub", "slob")
DEFAULT_BACKEND = "slub"

CACHE_LINE = 64
ARCH_SLAB_MINALIGN = 8
SLUB_MAX_ORDER = 3
MAX_CACHES = 255          # aux is a u8; 255 marks SLOB's shared pages
SLOB_AUX = 255
FREE_NONE = 0xFFFF        # "no free object" in a slab page's first-free index

DMB = DIRECT_MAP_BASE


def align_up(n, a):
    return (n + a - 1) // a * a


def fls(n):
    """Index of the highest set bit + 1 (MicroPython has no int.bit_length)."""
    r = 0
    while n:
        n >>= 1
        r += 1
    return r


def get_order(size):
    """Smallest buddy order whose block holds size bytes."""
    order = 0
    while (PAGE_SIZE << order) < size:
        order += 1
    return order


class KmemCache:
    """struct kmem_cache: what every backend shares. A backend subclasses it
    and provides alloc(gfp) -> va, free(va), shrink(), release(), counts()."""

    backend = "?"
    uses_freeptr = True    # SLUB keeps the free pointer in the object

    def __init__(self, st, name, size, align, flags, ctor):
        self.st = st
        self.name = name
        self.object_size = size
        self.flags = flags
        self.ctor = ctor
        self.id = -1
        self.hw = st.hw
        self.calculate_sizes(size, align, flags)

    def calculate_sizes(self, size, align, flags):
        """Object layout in its slot (as SLUB lays it out):
        [left red zone][object][right red zone][free pointer][padding]."""
        a = max(align or ARCH_SLAB_MINALIGN, ARCH_SLAB_MINALIGN)
        if flags & SLAB_HWCACHE_ALIGN:
            ralign = CACHE_LINE
            while size <= ralign // 2 and ralign > a:
                ralign //= 2
            a = max(a, ralign)
        if a & (a - 1):
            raise KernelError("EINVAL", "align %d is not a power of two" % a)
        self.align = a
        inuse = align_up(size, 8)
        self.red_left_pad = 0
        if flags & SLAB_RED_ZONE:
            self.red_left_pad = align_up(8, a)
            if inuse == size:
                inuse += 8       # room for a right red zone
        self.inuse = inuse       # object plus right red zone
        self.offset = 0          # free pointer offset from the object start
        slot = inuse
        if self.uses_freeptr and (self.ctor or flags & (SLAB_POISON | SLAB_RED_ZONE)):
            # the free pointer must not clobber constructed or poisoned bytes
            self.offset = inuse
            slot += 8
        self.size = align_up(self.red_left_pad + slot, a)   # slot stride

    def debug(self):
        return self.flags & (SLAB_POISON | SLAB_RED_ZONE)

    def run_ctor(self, pa):
        if self.ctor:
            self.ctor(DMB + pa)

    def tunables(self):
        return (0, 0, 0)

    def shrink(self):
        pass

    def release(self):
        pass


class SlabState:
    """The slab layer of one machine: the cache registry, the backend choice,
    the page source (buddy + mem_map) and the shared SLOB page lists."""

    def __init__(self, hw, mem_map, buddy, backends, printk=print, params=None):
        params = params or {}
        self.backends = backends              # BACKENDS name -> KmemCache subclass (mm/slab/__init__.py)
        self.hw = hw
        self.mem_map = mem_map
        self.buddy = buddy
        self.printk = printk
        self.rec_base = mem_map.base
        self.max_pa = mem_map.nr_pfns << PAGE_SHIFT
        self.kind_slab = KIND_SLAB
        self.r8, self.w8 = hw.read8, hw.write8
        self.r16, self.w16 = hw.read16, hw.write16
        self.r32, self.w32 = hw.read32, hw.write32
        self.r64, self.w64 = hw.read64, hw.write64
        backend = params.get("slab", DEFAULT_BACKEND) or DEFAULT_BACKEND
        if backend not in BACKENDS:
            printk("slab: unknown backend %r, using %s" % (backend, DEFAULT_BACKEND))
            backend = DEFAULT_BACKEND
        self.default_backend = backend
        self.debug_flags, self.debug_caches = parse_slub_debug(params)
        self.caches = [None] * 256           # id -> cache (mem_map aux); 255 stays None
        # hot per-cache words shared with the viper fast paths (slub_fast.py)
        self.area = slub_fast.new_area()
        g = slub_fast.GLOBAL_ID * slub_fast.NF
        self.area[g + slub_fast.G_MAX_PA] = self.max_pa
        self.area[g + slub_fast.G_REC_BASE] = self.rec_base
        register_area(self.area, hw)
        self.by_name = {}
        self.slob = None                      # SLOB's shared pages, made on first use (slob.get_slob)
        self.large_pages = 0                  # kmalloc_large pages (SUnreclaim)
        self.should_failslab = None           # fn(cache, gfp, size=0) -> True: fail (mm/debug/fault_inject.py)
        self.on_create = None                 # kmemleak's hook for new caches

    def failslab(self, s, gfp, size=0):
        """slab_pre_alloc_hook's should_failslab: True when an allocation
        from cache s (None: SLOB's kmalloc of size bytes) must fail."""
        f = self.should_failslab
        return f is not None and f(s, gfp, size)

    def page_list(self):
        return PfnList(self.mem_map)

    # --- page source -----------------------------------------------------
    def alloc_slab_pages(self, gfp, order, aux):
        """Frames for a new slab: a compound block of kind "slab" whose every
        record carries the owner's id, so any object's page names its cache."""
        gfp &= ~F_ZERO
        if order:
            gfp |= F_COMP
        pa = self.buddy.alloc_pages(gfp, order, KIND_SLAB)
        if pa is None:
            return None
        w16, w8 = self.w16, self.w8
        rec = self.rec_base + ((pa >> PAGE_SHIFT) << 4)
        w8(rec + OFF_AUX, aux)
        tail = PG_tail | (KIND_SLAB << KIND_SHIFT)
        for i in range(1, 1 << order):
            r = rec + (i << 4)
            w16(r + OFF_FLAGS, tail)
            w8(r + OFF_AUX, aux)
        return pa

    def free_slab_pages(self, pa, order):
        self.w32(self.rec_base + ((pa >> PAGE_SHIFT) << 4) + OFF_COUNT, 1)
        self.buddy.free_pages(pa, order)

    def page_info(self, pa):
        """(owner kind, aux) of the frame holding pa, or None outside RAM."""
        if pa < 0 or pa >= self.max_pa:
            return None
        v = self.r32(self.rec_base + ((pa >> PAGE_SHIFT) << 4))
        return (v >> KIND_SHIFT) & 15, v >> 24

    # --- registry --------------------------------------------------------
    def kmem_cache_create(self, name, size, align=0, flags=0, ctor=None, backend=None):
        if name in self.by_name:
            raise KernelError("EEXIST", "cache %s exists" % name)
        if size <= 0 or size > (PAGE_SIZE << SLUB_MAX_ORDER):
            raise KernelError("EINVAL", "object size %d" % size)
        backend = backend or self.default_backend
        if backend not in BACKENDS:
            raise KernelError("EINVAL", "backend %r (slab|slub|slob)" % backend)
        if self.debug_flags and (not self.debug_caches or name in self.debug_caches):
            flags |= self.debug_flags
        cid = self.caches.index(None)
        if cid >= MAX_CACHES:
            raise KernelError("ENOMEM", "too many caches")
        cls = self.backends[backend]
        s = cls(self, name, size, align, flags, ctor)
        s.id = cid
        self.clear_fast_state(cid)
        s.setup()
        self.caches[cid] = s
        self.by_name[name] = s
        if self.on_create is not None:
            self.on_create(s)
        return s

    def kmem_cache_destroy(self, s):
        s.shrink()
        active = s.counts()[0]
        if active:
            raise KernelError("EBUSY", "kmem_cache_destroy %s: Slab cache still has objects (%d)"
                              % (s.name, active))
        s.release()
        self.clear_fast_state(s.id)
        self.caches[s.id] = None
        del self.by_name[s.name]

    def clear_fast_state(self, cid):
        """Zero cache cid's words in the fast-path area (W_FAST = 0: the
        viper paths leave its objects to the backend's Python code)."""
        w = cid * slub_fast.NF
        for i in range(slub_fast.NF):
            self.area[w + i] = 0

    def find(self, name):
        s = self.by_name.get(name)
        if s is None:
            raise KernelError("ENOENT", "no cache %s" % name)
        return s

    def all_caches(self):
        return [s for s in self.caches if s is not None]

    # --- accounting ------------------------------------------------------
    def slab_pages(self):
        """(reclaimable, unreclaimable) pages held by the slab layer."""
        rcl = unrcl = 0
        for s in self.all_caches():
            n = s.counts()[3] * s.pages_per_slab()
            if s.flags & SLAB_RECLAIM_ACCOUNT:
                rcl += n
            else:
                unrcl += n
        if self.slob is not None:
            unrcl += self.slob.nr_pages
        return rcl, unrcl + self.large_pages


def parse_slub_debug(params):
    """slub_debug[=FZPU[,cache,...]]: F consistency, Z red zone, P poison,
    U store user (allocation sites: mm/debug/kmemleak.py records them, for
    alloc_traces). Bare slub_debug enables all of them for every cache."""
    if "slub_debug" not in params:
        return 0, ()
    text = params["slub_debug"]
    letters, _, names = text.partition(",")
    if not letters or letters == "-":
        flags = SLAB_DEBUG_FLAGS | SLAB_STORE_USER if letters != "-" else 0
    else:
        flags = 0
        for ch in letters.upper():
            if ch == "F":
                flags |= SLAB_CONSISTENCY_CHECKS
            elif ch == "Z":
                flags |= SLAB_RED_ZONE
            elif ch == "P":
                flags |= SLAB_POISON
            elif ch == "U":
                flags |= SLAB_STORE_USER
    caches = tuple(n for n in names.split(",") if n)
    return flags, caches


# --- /proc/slabinfo and meminfo --------------------------------------------

SLABINFO_HEADER = ("slabinfo - version: 2.1\n"
                   "# name            <active_objs> <num_objs> <objsize> <objperslab> "
                   "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> "
                   ": slabdata <active_slabs> <num_slabs> <sharedavail>")


def slabinfo_line(s):
    active, num, active_slabs, num_slabs = s.counts()
    limit, batch, shared = s.tunables()
    return "%-17s %6d %6d %6d %4d %4d : tunables %4d %4d %4d : slabdata %6d %6d %6d" % (
        s.name, active, num, s.size, s.objs_per_slab(), s.pages_per_slab(),
        limit, batch, shared, active_slabs, num_slabs, 0)


def slabinfo(st):
    """/proc/slabinfo, newest cache first as Linux lists them."""
    lines = [SLABINFO_HEADER]
    for s in sorted(st.all_caches(), key=lambda c: -c.id):
        lines.append(slabinfo_line(s))
    return "\n".join(lines) + "\n"


def dma_addr(va):
    return va - DMB
