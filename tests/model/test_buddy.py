"""The buddy allocator on the simulated machine: property tests of alloc and
free across orders and zones, watermarks, GFP flags and bad input."""

import weakref

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.page import mem_map
from kernel_py.mm import types as page
from kernel_py.mm.page.zone import MAX_ORDER, NR_ORDERS, ZONE_DMA, ZONE_DMA32, int_sqrt
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

from mmsupport import boot as boot_machine, state


BOOT_ALLOCATED = weakref.WeakKeyDictionary()     # kernel -> allocated_at_boot(kernel)


def boot(mem, cmdline=""):
    k = boot_machine(mem, cmdline)
    BOOT_ALLOCATED[k] = allocated_at_boot(k)
    return k

ZERO = G.__GFP_ZERO       # (no __name inside a class body: name mangling)
ZONE_GFP = {None: G.GFP_KERNEL, ZONE_DMA: G.GFP_KERNEL | G.__GFP_DMA,
            ZONE_DMA32: G.GFP_KERNEL | G.__GFP_DMA32}


def allocated_at_boot(k):
    """{pa: order} of blocks allocated before the test (the kernel's own
    page tables), found by scanning every mem_map record."""
    mm = k.mem_map
    out = {}
    for z in k.zones:
        for pfn in range(z.zone_start_pfn, z.zone_end_pfn):
            f = mm.flags(pfn)
            if f and not f & (page.PG_buddy | page.PG_tail):
                out[pfn << PAGE_SHIFT] = mm.order(pfn)
    return out


def check_buddy(k, allocated):
    """The allocator invariants, from the mem_map records and the lists."""
    b, mm = k.buddy, k.mem_map
    allocated = dict(allocated)
    allocated.update(BOOT_ALLOCATED[k])
    blocks = []
    free_total = 0
    for z in b.zones:
        zone_free = 0
        for o in range(NR_ORDERS):
            pfns = z.free_area[o].pfns()
            assert len(pfns) == z.free_area[o].n
            assert len(set(pfns)) == len(pfns)
            for pfn in pfns:
                assert pfn % (1 << o) == 0, "free block not aligned to its order"
                assert z.contains(pfn) and z.contains(pfn + (1 << o) - 1)
                assert mm.flags(pfn) == page.FREE_HEAD_FLAGS and mm.order(pfn) == o
                blocks.append((pfn, pfn + (1 << o), "free"))
                zone_free += 1 << o
            free_set = set(pfns)
            if o < MAX_ORDER:
                for pfn in pfns:
                    assert pfn ^ (1 << o) not in free_set, "buddies both free at order %d" % o
        assert zone_free == z.free_pages
        free_total += zone_free
    alloc_total = 0
    for pa, o in allocated.items():
        pfn = pa >> PAGE_SHIFT
        blocks.append((pfn, pfn + (1 << o), "alloc"))
        alloc_total += 1 << o
        assert mm.order(pfn) == o and mm.kind(pfn) not in (page.KIND_NONE, page.KIND_FREE)
        assert not mm.flags(pfn) & page.PG_buddy
    blocks.sort()
    for (s1, e1, _a), (s2, e2, _b) in zip(blocks, blocks[1:]):
        assert e1 <= s2, "frame in two blocks"
    assert free_total + alloc_total == b.managed_pages()


class BuddyMachine(RuleBasedStateMachine):
    """Random alloc/free sequences across orders, zones and GFP masks on a
    small machine (24 MiB: DMA + a little DMA32) so that zones run dry."""

    def __init__(self):
        super().__init__()
        self.k = boot(24 << 20)
        self.b = self.k.buddy
        self.boot_lists = self.b.free_lists()
        self.allocated = {}

    @rule(order=st.integers(0, MAX_ORDER), zone=st.sampled_from([None, ZONE_DMA, ZONE_DMA32]),
          atomic=st.booleans(), zero=st.booleans())
    def alloc(self, order, zone, atomic, zero):
        gfp = ZONE_GFP[zone]
        if atomic:
            gfp = (gfp & ~G.GFP_KERNEL) | G.GFP_ATOMIC
        if zero:
            gfp |= ZERO
        before = [(z.free_pages, z.nr_free()) for z in self.b.zones]
        pa = self.b.alloc_pages(gfp, order)
        high = {None: 2, ZONE_DMA: 0, ZONE_DMA32: 1}[zone]
        if pa is None:
            # Fails only if no allowed zone passes the min watermark (lowered
            # for GFP_ATOMIC) or has a block of that order.
            for z in self.b.zones[:high + 1]:
                if not z.managed_pages:
                    continue
                free, nr = before[z.idx]
                m = z.min_wmark()
                if atomic:
                    m -= m // 2
                    m -= m // 4
                ok = free - ((1 << order) - 1) > m + z.lowmem_reserve[high]
                assert not (ok and any(nr[order:])), "allocation failed with room in %s" % z.name
            return
        pfn = pa >> PAGE_SHIFT
        assert pa % (PAGE_SIZE << order) == 0
        z = self.b.zone_of(pfn)
        assert z.idx <= high
        m = z.min_wmark()
        if atomic:
            m -= m // 2
            m -= m // 4
        assert before[z.idx][0] - ((1 << order) - 1) > m + z.lowmem_reserve[high], \
            "allocation went below the watermark"
        if zero:
            assert self.k.hw.readbytes(pa, PAGE_SIZE << order) == bytes(PAGE_SIZE << order)
        self.k.hw.fill(pa, 0xA5, PAGE_SIZE << order)    # dirty it for the next __GFP_ZERO
        self.allocated[pa] = order

    @precondition(lambda self: self.allocated)
    @rule(data=st.data())
    def free(self, data):
        pa = data.draw(st.sampled_from(sorted(self.allocated)))
        self.b.free_pages(pa, self.allocated.pop(pa))

    @precondition(lambda self: self.allocated)
    @rule(data=st.data(), delta=st.sampled_from([-1, 1]))
    def free_wrong_order(self, data, delta):
        pa = data.draw(st.sampled_from(sorted(self.allocated)))
        order = self.allocated[pa] + delta
        before = state(self.k)
        with pytest.raises(KernelError) as e:
            self.b.free_pages(pa, order)
        assert e.value.errname == "EINVAL"
        assert state(self.k) == before

    @invariant()
    def invariants(self):
        check_buddy(self.k, self.allocated)

    def teardown(self):
        for pa, order in list(self.allocated.items()):
            self.b.free_pages(pa, order)
        assert self.b.free_lists() == self.boot_lists


TestBuddyMachine = BuddyMachine.TestCase
TestBuddyMachine.settings = settings(max_examples=40, stateful_step_count=60, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])


def test_boot_free_lists_are_max_order_blocks():
    k = boot(128 << 20)
    check_buddy(k, {})
    # seeding writes only block heads: far fewer blocks than frames
    blocks = sum(len(v) for v in k.buddy.free_lists().values())
    assert blocks < 64
    assert k.buddy.zones[1].free_area[MAX_ORDER].n >= 25


def test_mem_map_is_16_bytes_per_frame():
    k = boot(128 << 20)
    nr = k.memmap.max_pfn()
    assert page.RECORD_SIZE == 16
    assert k.mem_map.nr_pfns == nr
    assert k.mem_map.size <= 16 * nr
    # it lives in physical memory outside the buddy's frames
    first = k.mem_map.base >> PAGE_SHIFT
    last = (k.mem_map.base + k.mem_map.size - 1) >> PAGE_SHIFT
    for pfn in (first, last):
        assert k.mem_map.flags(pfn) == 0
        with pytest.raises(KernelError):
            k.buddy.free_pages(pfn << PAGE_SHIFT, 0)


def test_merge_restores_boot_state_after_everything_is_allocated():
    k = boot(32 << 20)
    b = k.buddy
    boot_lists = b.free_lists()
    got = []
    for order in (0, 3, 1, 0, 2):
        while True:
            pa = b.alloc_pages(G.GFP_ATOMIC | G.__GFP_HIGH | G.__GFP_MEMALLOC, order)
            if pa is None:
                break
            got.append((pa, order))
    assert b.nr_free_pages() < 8
    for pa, order in reversed(got[::2]):
        b.free_pages(pa, order)
    for pa, order in got[1::2]:
        b.free_pages(pa, order)
    assert b.free_lists() == boot_lists


def test_watermarks_kernel_fails_at_min_atomic_dips_below():
    k = boot(128 << 20)
    b = k.buddy
    dma = b.zones[ZONE_DMA]
    m = dma.min_wmark()
    assert m > 0
    n = 0
    while b.alloc_pages(G.GFP_KERNEL | G.__GFP_DMA, 0) is not None:
        n += 1
    assert dma.free_pages == m              # stops exactly at min
    assert b.alloc_pages(G.GFP_NOWAIT | G.__GFP_DMA, 0) is None   # no reserves
    while b.alloc_pages(G.GFP_ATOMIC | G.__GFP_DMA, 0) is not None:
        n += 1
    half = m - m // 2
    assert dma.free_pages == half - half // 4    # atomic: min/2 - min/8
    assert b.alloc_pages(G.GFP_KERNEL | G.__GFP_DMA, 0) is None
    assert b.alloc_fail >= 3


def test_min_free_kbytes_like_linux():
    k = boot(128 << 20)
    managed_kb = k.buddy.managed_pages() * 4
    assert k.buddy.min_free_kbytes == int_sqrt(managed_kb * 16)
    total_min = sum(z.min_wmark() for z in k.zones)
    assert abs(total_min - k.buddy.min_free_kbytes // 4) <= len(k.zones)
    for z in k.zones:
        if z.managed_pages:
            assert z.min_wmark() < z.low_wmark() < z.high_wmark()
    assert int_sqrt(10 ** 12) == 10 ** 6 and int_sqrt(99) == 9


def test_lowmem_reserve_protects_dma_from_fallback():
    k = boot(128 << 20)
    dma = k.zones[ZONE_DMA]
    assert dma.lowmem_reserve[ZONE_DMA32] == k.zones[ZONE_DMA32].managed_pages // 256
    # GFP_KERNEL exhausts DMA32 first, then falls back to DMA only down to min + reserve
    b = k.buddy
    while b.alloc_pages(G.GFP_KERNEL, 0) is not None:
        pass
    assert dma.free_pages <= dma.min_wmark() + dma.lowmem_reserve[2] + 1
    assert dma.free_pages > dma.min_wmark()


def test_fallback_order_normal_dma32_dma():
    k = boot_machine(4 << 30)
    b = k.buddy
    base = list(b.pgalloc)
    pa = b.alloc_pages(G.GFP_KERNEL, 0)
    assert pa >= 4 << 30                              # Normal first
    assert b.alloc_pages(G.GFP_DMA32, 0) < 4 << 30
    assert b.alloc_pages(G.GFP_DMA, 0) < 16 << 20
    assert [x - y for x, y in zip(b.pgalloc, base)] == [1, 1, 1]


def test_zero_and_compound():
    k = boot(64 << 20)
    b, hw, mm = k.buddy, k.hw, k.mem_map
    pa = b.alloc_pages(G.GFP_KERNEL, 2)
    hw.fill(pa, 0xFF, 4 * PAGE_SIZE)
    b.free_pages(pa, 2)
    pa2 = b.alloc_pages(G.GFP_KERNEL | G.__GFP_ZERO | G.__GFP_COMP, 2)
    assert pa2 == pa
    assert hw.readbytes(pa2, 4 * PAGE_SIZE) == bytes(4 * PAGE_SIZE)
    head = pa2 >> PAGE_SHIFT
    assert mm.test_flag(head, page.PG_head)
    for t in range(head + 1, head + 4):
        assert mm.test_flag(t, page.PG_tail) and mm.compound_head(t) == head
    with pytest.raises(KernelError):
        b.free_pages(pa2 + PAGE_SIZE, 0)          # a tail is not a block
    b.free_pages(pa2, 2)
    for t in range(head, head + 4):
        assert mm.flags(t) in (0, page.FREE_HEAD_FLAGS)


def test_reclaim_hook_called_only_when_gfp_allows():
    k = boot(24 << 20)
    b = k.buddy
    calls = []
    got = []

    def reclaim(gfp, order):
        calls.append((gfp, order))
        if got:
            b.free_pages(*got.pop())
            return 1
        return 0

    b.reclaim = reclaim
    while True:
        pa = b.alloc_pages(G.GFP_NOWAIT, 0)
        if pa is None:
            break
        got.append((pa, 0))
    assert calls == []
    assert b.alloc_pages(G.GFP_KERNEL, 0) is not None    # reclaim freed one
    assert calls == [(G.GFP_KERNEL, 0)]
    assert b.allocstall == 1


BAD_ORDERS = (-1, MAX_ORDER + 1, 100, "3", None, 1.0)


@pytest.mark.parametrize("order", BAD_ORDERS)
def test_alloc_bad_order(order):
    k = boot(32 << 20)
    before = state(k)
    with pytest.raises(KernelError) as e:
        k.buddy.alloc_pages(G.GFP_KERNEL, order)
    assert e.value.errname == "EINVAL"
    assert state(k) == before


def bad_frees(k):
    b = k.buddy
    a0 = b.alloc_pages(G.GFP_KERNEL, 0)
    a3 = b.alloc_pages(G.GFP_KERNEL, 3)
    freed = b.alloc_pages(G.GFP_KERNEL, 1)
    b.free_pages(freed, 1)
    free_head = b.zones[1].free_area[MAX_ORDER].first << PAGE_SHIFT
    return [
        (a0 + 8, 0),                        # unaligned
        (a3 + PAGE_SIZE, 0),                # inside an allocated block
        (a3, 2), (a3, 4), (a0, 1),          # wrong order
        (freed, 1),                         # double free
        (free_head, MAX_ORDER),             # never allocated (a free block)
        (free_head + PAGE_SIZE, 0),         # never allocated (inside a free block)
        (0, 0),                             # reserved low memory
        (0x100000, 0),                      # the kernel image
        (k.mem_map.base, 0),                # memblock: mem_map
        (k.init_mm.pgd, 0) if False else (0x9F000, 0),   # firmware hole
        (1 << 40, 0),                       # beyond RAM
        (-PAGE_SIZE, 0),                    # negative
        (a0, -1), (a0, MAX_ORDER + 1),      # order out of range
        ("0x1000", 0), (a0, "0"),           # wrong types
    ]


def test_bad_frees_leave_state_unchanged():
    k = boot(32 << 20)
    for pa, order in bad_frees(k):
        before = state(k)
        with pytest.raises(KernelError) as e:
            k.buddy.free_pages(pa, order)
        assert e.value.errname == "EINVAL", (pa, order)
        assert state(k) == before, (pa, order)


def test_enomem_returns_none_and_state_unchanged():
    k = boot(24 << 20)
    b = k.buddy
    while b.alloc_pages(G.GFP_KERNEL, MAX_ORDER) is not None:
        pass
    before = state(k)
    assert b.alloc_pages(G.GFP_KERNEL, MAX_ORDER) is None
    after = state(k)
    assert after == before


def test_pfn_list_ops():
    k = boot(24 << 20)
    mm = k.mem_map
    pages = [k.buddy.alloc_pages(G.GFP_KERNEL, 0) >> PAGE_SHIFT for _ in range(5)]
    lst = mem_map.PfnList(mm)
    for p in pages:
        lst.push(p)
    assert lst.pfns() == pages[::-1] and len(lst) == 5
    assert lst.last == pages[0]
    lst.remove(pages[2])
    lst.remove(pages[4])
    assert lst.pfns() == [pages[3], pages[1], pages[0]]
    lst.remove(pages[0])                                # the tail moves back
    assert lst.last == pages[1]
    lst.push(pages[0])
    assert lst.pop() == pages[0]
    assert lst.pop() == pages[3]
    assert lst.pop() == pages[1]
    assert lst.pop() == page.NIL and lst.first == page.NIL and lst.last == page.NIL
    lst.push(pages[2])
    assert lst.first == lst.last == pages[2]
    p = pages[0]
    mm.set_aux(p, 7)
    mm.set_inuse(p, 300)
    mm.set_freeidx(p, 12)
    assert (mm.aux(p), mm.inuse(p), mm.freeidx(p), mm.order(p)) == (7, 300, 12, 0)
    mm.set_kind(p, page.KIND_SLAB)
    assert mm.kind(p) == page.KIND_SLAB and "slab" in mm.describe(p)


def test_free_area_tails_follow_splits_and_merges():
    """The buddy's inlined push (_link_free) keeps PfnList.last right."""
    k = boot(24 << 20)
    b = k.buddy
    held = [b.alloc_pages(G.GFP_KERNEL, o % 4) for o in range(200)]
    for pa in held[::2]:
        b.free_pages(pa, (held.index(pa)) % 4)
    for z in b.zones:
        for lst in z.free_area:
            pfns = lst.pfns()
            assert lst.last == (pfns[-1] if pfns else page.NIL)
