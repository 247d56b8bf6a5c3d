# Slab benchmarks inside the guest, timed with the calibrated TSC (k.clock);
# integers only (the guest VM has no floats). `make bench` (bench/slab.py)
# collects the lines they print.
#
#   bench kmalloc SIZE [N] [BACKEND]   N kmalloc+kfree pairs of SIZE bytes
#                                      (BACKEND slub-python: SLUB without
#                                      its viper fast paths)
#   bench cache BACKEND SIZE [N]       N kmem_cache_alloc+free pairs on a
#                                      temporary cache of that backend
#   bench slabmem BACKEND SIZE [N]     memory per object: N live objects of
#                                      SIZE bytes from kmalloc, frames taken
#                                      from the buddy / N
#   bench vmalloc SIZE                 vmalloc + vfree: times, and the page-
#                                      table pages the mapping needed
#   bench kmemleak [N]                 kmemleak=on: two scans over N linked
#                                      kmalloc-64 objects reachable from a
#                                      console handle (time, leaks: 0)
#
# `bench kmalloc` uses the kernel's own kmalloc when BACKEND is the boot
# backend (or omitted), else a temporary slab layer of that backend over the
# same buddy (as `bench slabmem` always does), so all three backends are
# measured in one boot whatever slab= says. Each pair is warm: the object is
# freed at once, so the SLUB pairs measure the cpu-freelist fast path.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm.slab import BACKEND_CLASSES
from kernel_py.mm.slab.common import BACKENDS, SlabState
from kernel_py.mm.slab.kmalloc import Kmalloc
from kernel_py.arch.x86.cpu import PAGE_SIZE

PAIRS_DEFAULT = 20000
OBJECTS_DEFAULT = 100000
MAX_COUNT = 1 << 30
PYTHON_PATH = "slub-python"
SCAN_OBJECTS_DEFAULT = 10000


def temp_layer(k, backend):
    """A slab layer of `backend` over the kernel's buddy, with its own
    kmalloc caches (its pages are not in the kernel's slabinfo)."""
    st = SlabState(k.hw, k.mem_map, k.buddy, BACKEND_CLASSES, lambda msg: None, {"slab": backend})
    return st, Kmalloc(st)


def shrink_all(st):
    for s in st.all_caches():
        s.shrink()


def layer(k, backend):
    """(slab state, kmalloc, temporary?) for backend (None: the kernel's)."""
    if backend is None or backend == k.slab.default_backend:
        return k.slab, k.kmalloc, False
    st, km = temp_layer(k, backend)
    return st, km, True


def time_pairs(rdtsc, alloc, free, arg, n):
    """TSC ticks for n alloc(arg)+free pairs, after one warm-up pair."""
    free(alloc(arg))
    t0 = rdtsc()
    i = 0
    while i < n:
        free(alloc(arg))
        i += 1
    return rdtsc() - t0


def pairs_line(k, what, n, ticks):
    c = k.clock
    ticks = max(1, ticks)
    return "%s n=%d total_us=%d per_pair_ns=%d pairs_per_s=%d tsc_hz=%d" % (
        what, n, c.us(ticks), c.ns(ticks) // n, n * c.hz // ticks, c.hz)


def kmalloc_pairs(k, size, n, backend=None):
    """backend "slub-python": a temporary SLUB layer held to the Python
    paths (kmalloc_py, kfree_py, SlubCache.alloc_py), the viper paths'
    baseline measured in the same boot."""
    python = backend == PYTHON_PATH
    st, km, temp = layer(k, "slub" if python else backend)
    alloc, free = km.kmalloc, km.kfree
    if python:
        for s in st.all_caches():
            s.alloc = s.alloc_py            # instance attributes: this layer only
        alloc, free = km.kmalloc_py, km.kfree_py
    try:
        ticks = time_pairs(k.clock.rdtsc, alloc, free, size, n)
    finally:
        if temp:
            shrink_all(st)
    return pairs_line(k, "kmalloc size=%d backend=%s" % (
        size, PYTHON_PATH if python else st.default_backend), n, ticks)


def cache_pairs(k, backend, size, n):
    st = k.slab
    name = "bench-%s-%d" % (backend, size)
    s = st.kmem_cache_create(name, size, 0, 0, None, backend)
    try:
        ticks = time_pairs(k.clock.rdtsc, s.alloc, s.free, 0, n)
        line = pairs_line(k, "cache %s backend=%s size=%d slot=%d" % (name, backend, size, s.size),
                          n, ticks)
    finally:
        st.kmem_cache_destroy(s)
    return line


def bytes_per_object(k, backend, size, n):
    """Frames the slab layer took from the buddy for n live objects."""
    st, km = temp_layer(k, backend)
    buddy = k.buddy
    shrink_all(st)
    free0 = buddy.nr_free_pages()
    held = []
    kmalloc, append, dmb = km.kmalloc, held.append, DIRECT_MAP_BASE
    t0 = k.clock.rdtsc()
    try:
        i = 0
        while i < n:
            va = kmalloc(size)
            if va is None:
                break
            append(va - dmb)          # physical: a small int, no heap long per object
            i += 1
        pages = free0 - buddy.nr_free_pages()
    finally:
        kfree = km.kfree
        for pa in held:
            kfree(pa + dmb)
        shrink_all(st)
    ticks = max(1, k.clock.rdtsc() - t0)
    got = len(held)
    if not got:
        raise KernelError("ENOMEM", "slabmem: no object of %d bytes" % size)
    used = pages * PAGE_SIZE
    per100 = used * 100 // got
    return ("slabmem backend=%s size=%d objects=%d asked=%d pages=%d bytes_per_obj_x100=%d "
            "overhead_pct=%d vs_page_x100=%d total_us=%d") % (
        backend, size, got, n, pages, per100, (per100 - size * 100) // size,
        PAGE_SIZE * 10000 // max(1, per100), k.clock.us(ticks))


def vmalloc_time(k, size):
    """vmalloc + vfree of size bytes: time of each, page-table pages added."""
    vm, buddy, rdtsc = k.vmalloc, k.buddy, k.clock.rdtsc
    free0 = buddy.nr_free_pages()
    t0 = rdtsc()
    va = vm.vmalloc(size)
    t1 = rdtsc()
    if va is None:
        raise KernelError("ENOMEM", "vmalloc %d" % size)
    pages = (size + PAGE_SIZE - 1) // PAGE_SIZE
    tables = free0 - buddy.nr_free_pages() - pages
    vm.vfree(va)
    t2 = rdtsc()
    c = k.clock
    return "vmalloc size=%d pages=%d alloc_us=%d vfree_us=%d pt_pages=%d" % (
        size, pages, c.us(t1 - t0), c.us(t2 - t1), tables)


def kmemleak_scan(k, n):
    """Two scans over a chain of n kmalloc-64 objects (each holds the next
    one's address) whose head the console holds; everything freed after."""
    t = k.kmemleak
    if t is None or not t.enabled or not t.scanning:
        raise KernelError("EPERM", "bench kmemleak needs kmemleak=on")
    km, w32 = k.kmalloc, k.hw.write32
    objs = []
    while len(objs) < n:
        va = km.kmalloc(64)
        if va is None:
            break
        if objs:
            pa = objs[-1] - DIRECT_MAP_BASE
            w32(pa, va & 0xFFFFFFFF)
            w32(pa + 4, va >> 32)
        objs.append(va)
    if not objs:
        raise KernelError("ENOMEM", "bench kmemleak")
    k.console_handles[objs[0]] = (64, "bench")
    age, t.min_age = t.min_age, 0
    rdtsc = k.clock.rdtsc
    try:
        t0 = rdtsc()
        new = t.scan()
        new += t.scan()
        ticks = max(1, (rdtsc() - t0) // 2)
    finally:
        t.min_age = age
        del k.console_handles[objs[0]]
        for va in objs:
            km.kfree(va)
    c = k.clock
    return "kmemleak objects=%d tracked=%d scan_us=%d per_obj_ns=%d new_leaks=%d tsc_hz=%d" % (
        len(objs), len(t.index) + len(objs), c.us(ticks), c.ns(ticks) // len(objs), new, c.hz)


def parse(args, i, default, what):
    if len(args) <= i:
        return default
    try:
        v = int(args[i], 0)
    except ValueError:
        raise KernelError("EINVAL", "%s %r is not a number" % (what, args[i]))
    if not 0 < v <= MAX_COUNT:
        raise KernelError("EINVAL", "%s must be 1..%d" % (what, MAX_COUNT))
    return v


def backend_arg(name, python=False):
    if name not in BACKENDS and not (python and name == PYTHON_PATH):
        raise KernelError("EINVAL", "backend %r (slab|slub|slob)" % name)
    return name


USAGE = ("usage: bench kmalloc SIZE [N] [BACKEND|slub-python] | cache BACKEND SIZE [N] | "
         "slabmem BACKEND SIZE [N] | vmalloc SIZE | kmemleak [N]")


def cmd(k, args):
    """`bench kmalloc|cache|slabmem ...`: one line of integers."""
    what, rest = args[0], args[1:]
    if what == "kmalloc" and 1 <= len(rest) <= 3:
        backend = backend_arg(rest[2], True) if len(rest) > 2 else None
        return kmalloc_pairs(k, parse(rest, 0, 0, "size"), parse(rest, 1, PAIRS_DEFAULT, "count"),
                             backend)
    if what == "cache" and 2 <= len(rest) <= 3:
        return cache_pairs(k, backend_arg(rest[0]), parse(rest, 1, 0, "size"),
                           parse(rest, 2, PAIRS_DEFAULT, "count"))
    if what == "slabmem" and 2 <= len(rest) <= 3:
        return bytes_per_object(k, backend_arg(rest[0]), parse(rest, 1, 0, "size"),
                                parse(rest, 2, OBJECTS_DEFAULT, "count"))
    if what == "vmalloc" and len(rest) == 1:
        return vmalloc_time(k, parse(rest, 0, 0, "size"))
    if what == "kmemleak" and len(rest) <= 1:
        return kmemleak_scan(k, parse(rest, 0, SCAN_OBJECTS_DEFAULT, "count"))
    raise KernelError("EINVAL", USAGE)


COMMANDS = ("kmalloc", "cache", "slabmem", "vmalloc", "kmemleak")
