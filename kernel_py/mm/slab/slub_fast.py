# The SLUB fast paths (kmalloc, kfree, kmem_cache_alloc/free on a cpu slab)
# in MicroPython's viper code, for the guest. Policy stays in slub.py: these
# functions only pop and push the cpu freelist that slub.py maintains, and
# hand every other case back to it.
#
# Why viper. In bytecode (or the native emitter) a kmalloc+kfree pair cost
# ~16 us under TCG: a direct-mapped address (DIRECT_MAP_BASE + pa, above
# 2**62) is a heap-allocated long in MicroPython, so every conversion
# between va and pa allocated; each freelist word went through a hw call
# (~1 us); and every self.attribute was a dictionary lookup.
#
# The trick. In viper, ints are machine words, so a kernel address is just a
# (negative) 64-bit int: DIRECT_MAP_BASE is -0x778000000000 as a signed
# word, and ptr32(_DMB + pa) reaches physical memory through the direct map
# with plain loads and stores, no hw call, nothing allocated. MicroPython
# 1.25's viper has no 64-bit pointer type, so a 64-bit word is read and
# written as two 32-bit halves (lo | hi << 32).
#
# The state. Each cache's hot fields live in one array('q') shared by a slab
# layer (SlabState.area), NF words per cache id, so a viper function reaches
# the state of any cache from its id - the aux byte of the object's mem_map
# record - with arithmetic alone. Slot 255 (never a cache id; SLOB's pages
# carry it) holds the layer's globals. slub.py reads and writes the same
# words (its cpu_freelist / cpu_slab are these words), so both paths share
# one freelist. The words never exceed 2**63 (physical addresses, pfns, the
# free-pointer key), so the array is the same on CPython.
#
# Guarding. The functions return 0 (alloc) or 1 (free) whenever anything is
# unusual - no cpu freelist, the object is not on the cpu slab, a debug
# cache, a bad or doubly freed pointer - having changed nothing; the Python
# path then runs and does what it always did (including the error lines).
# On CPython (the host) `micropython` does not exist: VIPER is False and
# slub.py/kmalloc.py keep their Python fast paths, which the model tests
# cover. These functions are plain Python there too, and
# tests/model/test_slub_fast.py runs them over the simulated machine with
# host_ptr32() standing in for viper's pointer casts (install_host()).
#
# kfree's address arrives as a viper int, i.e. truncated to 64 bits: only
# ever pass real 64-bit addresses (the console checks what it is typed).

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.native import MASK64, const, host_ptr32, micropython, ptr8, ptr32, signed64, uint
from kernel_py.mm.types import KIND_SHIFT, KIND_SLAB, RECORD_SHIFT
from kernel_py.arch.x86.cpu import PAGE_SHIFT

# words of a cache's state (array('q') index id * NF + W_*)
NF = const(16)
W_FREELIST = const(0)      # pa of the first free object of the cpu slab, 0: none
W_SLAB = const(1)          # pfn of the cpu slab, NIL: none
W_RANDOM = const(2)        # the free-pointer key (slub.py: s.random)
W_OFFSET = const(3)        # free pointer offset in the object
W_SIZE = const(4)          # slot stride
W_SPAN = const(5)          # objects * size
W_PAD = const(6)           # red_left_pad
W_PFN_MASK = const(7)      # ~(pages per slab - 1)
W_FAST = const(8)          # 1: this cache's objects may take these paths
GLOBAL_ID = const(255)     # the slot of the layer's globals:
G_MAX_PA = const(0)        #   end of RAM (physical)
G_REC_BASE = const(1)      #   pa of mem_map
G_NOFAST_ALLOC = const(2)  #   1: allocations take the Python path (failslab armed)
AREA_WORDS = 256 * NF

_DMB = const(-0x778000000000)       # DIRECT_MAP_BASE as a signed 64-bit word
_DMB_HI = const(-0x7780)            # _DMB >> 32: mpy-cross stores literals of 2**30
_32 = const(32)                     # and more as long objects, so viper code
                                    # builds _DMB at run time: _DMB_HI << sh, sh = 32
_HALVES = const(5)                  # log2(NF * 2): 32-bit halves per cache
_G = const(255 * 32)                # GLOBAL_ID << _HALVES
_G_NOFAST = const(255 * 32 + 4)     # the low half of G_NOFAST_ALLOC
_KIND_SLAB = const(3)
_KIND_SHIFT = const(12)
_NOFAST_GFP = const(0x111)          # __GFP_ZERO | __GFP_DMA | __GFP_RECLAIMABLE
_MAX_SIZE = const(8192)             # KMALLOC_MAX_CACHE_SIZE

if (_DMB + (1 << 64) != DIRECT_MAP_BASE or _DMB_HI << 32 != _DMB or NF * 2 != 1 << _HALVES or _G != GLOBAL_ID << _HALVES
        or _KIND_SLAB != KIND_SLAB or _KIND_SHIFT != KIND_SHIFT or RECORD_SHIFT != 4
        or PAGE_SHIFT != 12 or _G_NOFAST != _G + 2 * G_NOFAST_ALLOC):
    raise ImportError("slub_fast: constants out of step with arch/x86/layout.py/page.py")


def new_area():
    from array import array
    return array("q", bytes(8 * AREA_WORDS))      # zeroed (MicroPython has no array * n)


@micropython.viper
def cache_pop(area, cid: int, gfp: int) -> uint:
    """kmem_cache_alloc's fast path: the direct-mapped address of the first
    object on cache cid's cpu freelist, unlinked; 0: take the Python path."""
    sh = _32
    dmb = _DMB_HI << sh
    a = ptr32(area)
    i = cid << _HALVES
    if gfp & _NOFAST_GFP or a[i + 2 * W_FAST] == 0 or a[_G_NOFAST]:
        return uint(0)
    obj = a[i] | (a[i + 1] << 32)
    if obj == 0:
        return uint(0)
    p = ptr32(dmb + obj + a[i + 2 * W_OFFSET])
    nxt = (p[0] | (p[1] << 32)) ^ (a[i + 2 * W_RANDOM] | (a[i + 2 * W_RANDOM + 1] << 32)) ^ obj
    a[i] = nxt
    a[i + 1] = nxt >> 32
    p[0] = 0                    # a live object's free pointer reads as 0
    p[1] = 0
    return uint(dmb + obj)


@micropython.viper
def kmalloc_pop(area, index, size: int, gfp: int) -> uint:
    """kmalloc's fast path: cache_pop on the kmalloc-N cache for size
    (index: bytearray, (size + 7) >> 3 -> cache id). 0: the Python path."""
    if size <= 0 or size > _MAX_SIZE or gfp & _NOFAST_GFP:
        return uint(0)
    sh = _32
    dmb = _DMB_HI << sh
    a = ptr32(area)
    i = int(ptr8(index)[(size + 7) >> 3]) << _HALVES
    if a[i + 2 * W_FAST] == 0 or a[_G_NOFAST]:
        return uint(0)
    # the body of cache_pop (a call between viper functions is a full
    # Python call, the cost this module exists to avoid)
    obj = a[i] | (a[i + 1] << 32)
    if obj == 0:
        return uint(0)
    p = ptr32(dmb + obj + a[i + 2 * W_OFFSET])
    nxt = (p[0] | (p[1] << 32)) ^ (a[i + 2 * W_RANDOM] | (a[i + 2 * W_RANDOM + 1] << 32)) ^ obj
    a[i] = nxt
    a[i + 1] = nxt >> 32
    p[0] = 0
    p[1] = 0
    return uint(dmb + obj)


@micropython.viper
def slab_push(area, va: int, want: int) -> int:
    """kfree's / kmem_cache_free's fast path: push the object at va on its
    cache's cpu freelist, if it is a live object of a cpu slab (of cache
    `want`, unless want < 0). 0: done; 1: nothing changed, take the Python
    path (which also reports bad pointers and double frees)."""
    sh = _32
    dmb = _DMB_HI << sh
    a = ptr32(area)
    pa = va - dmb
    if pa < 0 or pa >= (a[_G + 2 * G_MAX_PA] | (a[_G + 2 * G_MAX_PA + 1] << 32)):
        return 1
    rec = ptr32(dmb + (a[_G + 2 * G_REC_BASE] | (a[_G + 2 * G_REC_BASE + 1] << 32))
                + ((pa >> 12) << 4))
    v = rec[0]                                  # flags | kind << 12 | order << 16 | aux << 24
    if (v >> _KIND_SHIFT) & 15 != _KIND_SLAB:
        return 1
    cid = v >> 24
    if want >= 0 and cid != want:
        return 1
    i = cid << _HALVES
    if a[i + 2 * W_FAST] == 0:
        return 1
    head = (pa >> 12) & (a[i + 2 * W_PFN_MASK] | (a[i + 2 * W_PFN_MASK + 1] << 32))
    if head != (a[i + 2 * W_SLAB] | (a[i + 2 * W_SLAB + 1] << 32)):
        return 1                                # not the cpu slab: slub.py's free_slow
    base = (head << 12) + a[i + 2 * W_PAD]
    off = pa - base
    size = a[i + 2 * W_SIZE]
    span = a[i + 2 * W_SPAN]
    if off < 0 or off >= span or off % size != 0:
        return 1                                # into the middle of an object
    p = ptr32(dmb + pa + a[i + 2 * W_OFFSET])
    rnd = a[i + 2 * W_RANDOM] | (a[i + 2 * W_RANDOM + 1] << 32)
    d = (p[0] | (p[1] << 32)) ^ rnd ^ pa        # decodes to a successor only if free
    if d == 0:
        return 1                                # double free (the freelist's last object)
    d -= base
    if d >= 0 and d < span and d % size == 0:
        return 1                                # double free
    w = (a[i] | (a[i + 1] << 32)) ^ rnd ^ pa
    p[0] = w
    p[1] = w >> 32
    a[i] = pa
    a[i + 1] = pa >> 32
    return 0


# --- host: the same functions over the simulated machine ---------------------
# (ptr8 and ptr32 are None on CPython until this runs; see arch/x86/native.py)

def install_host():
    """Host tests: make the viper functions runnable on CPython. Returns
    (cache_pop, kmalloc_pop, slab_push) wrappers that take and return
    addresses as the guest's Python sees them (unsigned 64-bit), converting
    at the edge as a call into viper code does."""
    g = globals()
    g["ptr32"] = host_ptr32
    g["ptr8"] = lambda buf: buf

    def pop(area, cid, gfp):
        return cache_pop(area, cid, gfp) & MASK64

    def kpop(area, index, size, gfp):
        return kmalloc_pop(area, index, signed64(size), signed64(gfp)) & MASK64

    def push(area, va, want):
        return slab_push(area, signed64(va), want)

    return pop, kpop, push
