"""mempool: the reserve backs allocations when the allocator fails."""

import pytest

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.page.mempool import mempool_create, mempool_create_kmalloc_pool, mempool_create_slab_pool

from slabsupport import boot_slab


class Flaky:
    def __init__(self):
        self.fail = False
        self.n = 0
        self.freed = []

    def alloc(self, gfp):
        if self.fail:
            return None
        self.n += 1
        return self.n

    def free(self, e):
        self.freed.append(e)


def test_reserve_fallback_and_refill():
    a = Flaky()
    pool = mempool_create(3, a.alloc, a.free)
    assert pool.curr_nr == 3
    assert pool.alloc() == 4              # the allocator first
    a.fail = True
    got = [pool.alloc() for _ in range(3)]
    assert sorted(got) == [1, 2, 3]       # then the reserve
    assert pool.alloc() is None
    pool.free(got[0])                     # refills the reserve first
    assert pool.curr_nr == 1 and a.freed == []
    pool.free(got[1])
    pool.free(got[2])
    pool.free(4)                          # reserve full: back to the allocator
    assert a.freed == [4] and pool.curr_nr == 3
    pool.destroy()
    assert sorted(a.freed) == [1, 2, 3, 4]


def test_create_fails_cleanly():
    a = Flaky()
    a.fail = True
    with pytest.raises(KernelError):
        mempool_create(2, a.alloc, a.free)


def test_kmalloc_pool_survives_exhaustion():
    st, km = boot_slab(16 << 20)
    pool = mempool_create_kmalloc_pool(4, km, 2048)
    held = []
    while True:
        va = km.kmalloc(2048, G.GFP_ATOMIC)
        if va is None:
            break
        held.append(va)
    got = [pool.alloc(G.GFP_ATOMIC) for _ in range(4)]
    assert None not in got and len(set(got)) == 4
    for va in got:
        pool.free(va)
    assert pool.curr_nr == 4
    for va in held:
        km.kfree(va)
    pool.destroy()


def test_slab_pool():
    st, km = boot_slab()
    c = st.kmem_cache_create("io", 200)
    pool = mempool_create_slab_pool(2, c)
    va = pool.alloc()
    pool.free(va)
    pool.destroy()
    st.kmem_cache_destroy(c)
