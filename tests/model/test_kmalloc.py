"""kmalloc over each backend: size classes, large allocations, GFP flags,
kzalloc/krealloc/ksize, bad input (state unchanged) and slub_debug."""

import pytest

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, DMA_LIMIT
from kernel_py.mm import gfp as G
from kernel_py.mm.slab.kmalloc import KMALLOC_SIZES, ZERO_SIZE_PTR
from kernel_py.mm.slab.common import slabinfo

from slabsupport import boot_slab

BACKENDS = ["slab", "slub", "slob"]


def pa(va):
    return va - DIRECT_MAP_BASE


def state(st):
    return slabinfo(st), st.buddy.nr_free_pages(), st.slab_pages()


@pytest.mark.parametrize("size", [1, 7, 8, 9, 16, 33, 64, 65, 96, 97, 128, 150, 192, 193,
                                  256, 300, 512, 513, 1000, 1024, 2000, 2048, 4000, 4096, 4097, 8192])
def test_size_classes(size):
    st, km = boot_slab()
    va = km.kmalloc(size)
    want = min(c for c in KMALLOC_SIZES if c >= size)
    assert km.ksize(va) == want
    assert st.caches[st.page_info(pa(va))[1]].name == km.cache_for(size).name
    name = "kmalloc-%s" % (("%dk" % (want >> 10)) if want >= 1024 else want)
    assert km.cache_for(size).name == name
    assert va % min(want, 4096) == 0 or want in (96, 192)
    km.kfree(va)


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_goes_to_buddy_as_compound(backend):
    st, km = boot_slab(backend=backend)
    free0 = st.buddy.nr_free_pages()
    va = km.kmalloc(40000)
    assert va % 4096 == 0
    assert km.ksize(va) == 4096 * 16
    assert st.buddy.nr_free_pages() == free0 - 16
    assert st.slab_pages()[1] >= 16
    with pytest.raises(KernelError):
        km.kfree(va + 4096 * 3)          # a tail page
    km.kfree(va)
    assert st.buddy.nr_free_pages() == free0


@pytest.mark.parametrize("backend", BACKENDS)
def test_kzalloc_krealloc(backend):
    st, km = boot_slab(backend=backend)
    hw = st.hw
    for size in (24, 200, 3000, 9000):
        va = km.kmalloc(size)
        hw.fill(pa(va), 0xEE, size)
        km.kfree(va)
        z = km.kzalloc(size)
        assert hw.readbytes(pa(z), size) == bytes(size)
        km.kfree(z)
    va = km.kmalloc(20)
    hw.writebytes(pa(va), b"0123456789abcdefghij")
    va2 = km.krealloc(va, 5000)
    assert hw.readbytes(pa(va2), 20) == b"0123456789abcdefghij"
    va3 = km.krealloc(va2, 10)
    assert va3 == va2
    assert km.krealloc(va3, 0) == ZERO_SIZE_PTR
    assert km.kmalloc(0) == ZERO_SIZE_PTR
    km.kfree(ZERO_SIZE_PTR)
    km.kfree(0)


@pytest.mark.parametrize("backend", ["slab", "slub"])
def test_gfp_dma_and_reclaimable(backend):
    st, km = boot_slab(backend=backend)
    va = km.kmalloc(100, G.GFP_KERNEL | G.__GFP_DMA)
    assert pa(va) < DMA_LIMIT
    assert st.caches[st.page_info(pa(va))[1]].name == "dma-kmalloc-128"
    r = km.kmalloc(100, G.GFP_KERNEL | G.__GFP_RECLAIMABLE)
    assert st.caches[st.page_info(pa(r))[1]].name == "kmalloc-rcl-128"
    assert st.slab_pages()[0] >= 1
    km.kfree(va)
    km.kfree(r)


@pytest.mark.parametrize("backend", BACKENDS)
def test_enomem_returns_none(backend):
    st, km = boot_slab(16 << 20, backend=backend)
    held = []
    while True:
        va = km.kmalloc(3000, G.GFP_ATOMIC)
        if va is None:
            break
        held.append(va)
    assert len(held) > 100
    for va in held:
        km.kfree(va)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_leaves_state_unchanged(backend):
    st, km = boot_slab(backend=backend)
    keep = [km.kmalloc(64) for _ in range(5)]
    va = km.kmalloc(64)
    victim = km.kmalloc(64)
    km.kfree(victim)                       # a free slot: never returned now
    before = state(st)
    buddy_page = st.buddy.alloc_pages(0, 0)
    before = state(st)
    bad = [
        va + 8,                            # middle of an object
        va + 1,
        victim,                            # double free / never returned
        DIRECT_MAP_BASE + buddy_page,      # not a kmalloc page
        DIRECT_MAP_BASE + buddy_page + 24,
        DIRECT_MAP_BASE + (1 << 40),       # outside RAM
        0x1234,                            # not direct-mapped
    ]
    for b in bad:
        with pytest.raises(KernelError) as e:
            km.kfree(b)
        assert e.value.errname == "EINVAL"
        assert e.value.line().startswith("error: EINVAL: ")
        assert "\n" not in e.value.line()
        assert state(st) == before, hex(b)
    km.kfree(va)
    with pytest.raises(KernelError) as e:
        km.kfree(va)
    assert "free" in e.value.detail
    for k in keep:
        km.kfree(k)


@pytest.mark.parametrize("backend", ["slab", "slub"])
def test_double_free_after_other_frees(backend):
    st, km = boot_slab(backend=backend)
    a, b, c = km.kmalloc(32), km.kmalloc(32), km.kmalloc(32)
    km.kfree(a)
    km.kfree(b)
    before = state(st)
    with pytest.raises(KernelError):
        km.kfree(a)
    assert state(st) == before
    km.kfree(c)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmem_cache_free_wrong_cache(backend):
    st, km = boot_slab(backend=backend)
    c1 = st.kmem_cache_create("one", 64)
    c2 = st.kmem_cache_create("two", 64)
    va = c1.alloc()
    kva = km.kmalloc(64)
    before = (c1.counts(), c2.counts(), st.slab_pages())
    for bad in (va, kva, va + 8):
        with pytest.raises(KernelError):
            c2.free(bad)                # SLOB: shared pages, no headers on cache objects
        assert (c1.counts(), c2.counts(), st.slab_pages()) == before
    c1.free(va)
    with pytest.raises(KernelError):
        c1.free(va)                     # double free
    km.kfree(kva)


# --- slub_debug -------------------------------------------------------------

@pytest.mark.parametrize("backend", ["slub", "slab"])
def test_debug_poison_detects_use_after_free(backend):
    st, km = boot_slab(backend=backend, debug="")
    hw = st.hw
    va = km.kmalloc(64)
    km.kfree(va)
    assert hw.read8(pa(va)) == 0x6B and hw.read8(pa(va) + 63) == 0xA5
    hw.write8(pa(va) + 10, 0x42)           # write after free
    va2 = km.kmalloc(64)
    assert va2 == va                      # LIFO: the same object comes back
    log = st.log.text()
    assert "BUG kmalloc-64: Poison overwritten" in log
    assert "@offset=10" in log
    assert "First byte 0x42 instead of 0x6b" in log
    km.kfree(va2)


@pytest.mark.parametrize("backend", ["slub", "slab"])
def test_debug_redzone_detects_overflow(backend):
    st, km = boot_slab(backend=backend, debug="")
    hw = st.hw
    va = km.kmalloc(64)
    assert hw.read8(pa(va) + 64) == 0xCC and hw.read8(pa(va) - 1) == 0xCC
    hw.write8(pa(va) + 64, 0)               # one byte past the end
    before = state(st)
    with pytest.raises(KernelError) as e:
        km.kfree(va)
    assert "BUG kmalloc-64: Redzone overwritten" in e.value.detail
    assert "offset 64" in e.value.detail
    assert "BUG kmalloc-64: Redzone overwritten" in st.log.text()
    assert state(st) == before
    km.kfree(va)                           # the red zone was restored
    assert hw.read8(pa(va) + 64) == 0xBB


@pytest.mark.parametrize("backend", ["slub", "slab"])
def test_debug_left_redzone(backend):
    st, km = boot_slab(backend=backend, debug="")
    va = km.kmalloc(100)
    st.hw.write8(pa(va) - 3, 0x11)          # underflow
    with pytest.raises(KernelError) as e:
        km.kfree(va)
    assert "Left Redzone overwritten" in e.value.detail
    assert "offset -3" in e.value.detail


def test_debug_per_cache_flag():
    from kernel_py.mm.slab.common import SLAB_POISON, SLAB_RED_ZONE
    st, km = boot_slab()
    c = st.kmem_cache_create("dbg", 40, 0, SLAB_POISON | SLAB_RED_ZONE)
    va = c.alloc()
    c.free(va)
    st.hw.write8(pa(va), 0)
    va = c.alloc()
    assert "BUG dbg: Poison overwritten" in st.log.text()
    c.free(va)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_size_class_round_trip(backend):
    st, km = boot_slab(backend=backend)
    free0 = st.buddy.nr_free_pages()
    for size in KMALLOC_SIZES + (4090, 4100, 8200, 70000):
        va = km.kmalloc(size)
        assert km.ksize(va) >= size
        km.kfree(va)
    for s in st.all_caches():
        s.shrink()
    if st.slob is None:
        assert st.buddy.nr_free_pages() == free0
