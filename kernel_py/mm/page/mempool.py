# Memory pools (Linux: mm/mempool.c): a reserve of min_nr preallocated
# elements, so an allocation that must not fail (I/O completion, writeback)
# still gets memory when the underlying allocator cannot. alloc tries the
# allocator first and falls back to the reserve; free refills the reserve
# before giving the element back to the allocator.

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G

GFP_KERNEL = G.GFP_KERNEL


class Mempool:
    def __init__(self, min_nr, alloc_fn, free_fn, gfp=GFP_KERNEL):
        self.min_nr = min_nr
        self.alloc_fn = alloc_fn      # alloc_fn(gfp) -> element or None
        self.free_fn = free_fn        # free_fn(element)
        self.elements = []            # the reserve
        for _ in range(min_nr):
            e = alloc_fn(gfp)
            if e is None:
                self.destroy()
                raise KernelError("ENOMEM", "mempool_create: reserve of %d" % min_nr)
            self.elements.append(e)

    @property
    def curr_nr(self):
        return len(self.elements)

    def alloc(self, gfp=GFP_KERNEL):
        """mempool_alloc: the allocator first, without reclaim or I/O and
        silent (the reserve is the fallback, not a reason to reclaim), then
        the reserve; a caller that may reclaim then tries the allocator with
        its full gfp. Linux then sleeps until mempool_free brings an element
        back; here None (every user frees before its next alloc: see
        block/bio.py)."""
        e = self.alloc_fn((gfp & ~(G.F_DIRECT_RECLAIM | G.F_IO))
                          | G.F_NOMEMALLOC | G.F_NORETRY | G.F_NOWARN)
        if e is not None:
            return e
        if self.elements:
            return self.elements.pop()
        if gfp & G.F_DIRECT_RECLAIM:
            return self.alloc_fn(gfp)
        return None

    def free(self, e):
        if e is None:
            return
        if len(self.elements) < self.min_nr:
            self.elements.append(e)
        else:
            self.free_fn(e)

    def resize(self, new_min_nr, gfp=GFP_KERNEL):
        while len(self.elements) > new_min_nr:
            self.free_fn(self.elements.pop())
        self.min_nr = new_min_nr
        while len(self.elements) < new_min_nr:
            e = self.alloc_fn(gfp)
            if e is None:
                raise KernelError("ENOMEM", "mempool_resize to %d" % new_min_nr)
            self.elements.append(e)

    def destroy(self):
        while self.elements:
            self.free_fn(self.elements.pop())


def mempool_create(min_nr, alloc_fn, free_fn, gfp=GFP_KERNEL):
    return Mempool(min_nr, alloc_fn, free_fn, gfp)


def mempool_create_slab_pool(min_nr, cache):
    return Mempool(min_nr, cache.alloc, cache.free)


def mempool_create_kmalloc_pool(min_nr, km, size):
    return Mempool(min_nr, lambda gfp: km.kmalloc(size, gfp), km.kfree)
