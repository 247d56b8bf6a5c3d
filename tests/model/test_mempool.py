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
    """The reserve holds objects of the cache; allocations come from the
    cache while it can give them, then from the reserve; frees refill the
    reserve first; destroy gives the reserve back to the cache."""
    st, km = boot_slab(16 << 20)
    c = st.kmem_cache_create("io", 200)
    pool = mempool_create_slab_pool(2, c)
    reserve = set(pool.elements)
    assert pool.curr_nr == 2 and len(reserve) == 2
    assert c.counts()[0] == 2                       # two live objects of c
    va = pool.alloc()
    assert va is not None and va not in reserve     # the cache first
    assert c.counts()[0] == 3 and pool.curr_nr == 2
    pool.free(va)                                   # reserve full: back to c
    assert c.counts()[0] == 2 and pool.curr_nr == 2

    pages = []                                      # no more slabs for c
    for order in range(10, -1, -1):
        while True:
            pa = st.buddy.alloc_pages(G.GFP_ATOMIC, order)
            if pa is None:
                break
            pages.append((pa, order))
    objs = []                                       # and no free object in c
    while True:
        o = c.alloc(G.GFP_ATOMIC)
        if o is None:
            break
        objs.append(o)
    got = [pool.alloc(G.GFP_ATOMIC) for _ in range(2)]
    assert set(got) == reserve and pool.curr_nr == 0  # the reserve backs them
    assert pool.alloc(G.GFP_ATOMIC) is None
    pool.free(got[0])                               # refills the reserve first
    assert pool.curr_nr == 1
    assert pool.alloc(G.GFP_ATOMIC) == got[0]

    for o in objs + got:
        pool.free(o)                                # two to the reserve, the rest to c
    assert pool.curr_nr == 2 and c.counts()[0] == 2
    for pa, order in pages:
        st.buddy.free_pages(pa, order)
    pool.destroy()
    assert pool.curr_nr == 0 and c.counts()[0] == 0
    st.kmem_cache_destroy(c)                        # EBUSY if an object were left
    assert "io" not in st.by_name
