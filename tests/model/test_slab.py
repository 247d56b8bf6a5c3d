"""kmem_cache backends (SLAB, SLUB, SLOB) over the simulated machine: one
hypothesis state machine for all three (and the debug variants), plus the
slabinfo format and backend selection."""

import bisect

import pytest
from hypothesis import settings, strategies as st_
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm.slab.common import SLAB_HWCACHE_ALIGN, SLAB_POISON, SLAB_RED_ZONE, slabinfo

from slabsupport import boot_slab

CTOR_BYTE = 0xC7
VARIANTS = [("slab", None), ("slub", None), ("slob", None), ("slub", ""), ("slab", "")]


def live_count(c):
    """Objects the user holds: SLAB counts its array cache as active."""
    return c.counts()[0] - len(getattr(c, "ac", ()))


def make_machine(backend, debug):
    class SlabMachine(RuleBasedStateMachine):
        caches = Bundle("caches")
        objects = Bundle("objects")

        def __init__(self):
            super().__init__()
            self.st, _ = boot_slab(32 << 20, backend, debug, with_kmalloc=False)
            self.hw = self.st.hw
            self.free0 = self.st.buddy.nr_free_pages()
            self.live = {}          # va -> (cache, pattern byte, size)
            self.starts = []        # sorted live starts, for overlap checks
            self.serial = 0
            self.names = 0

        def ctor_for(self):
            hw = self.hw

            def ctor(va):
                hw.fill(va - DIRECT_MAP_BASE, CTOR_BYTE, 8)
            return ctor

        @rule(target=caches, size=st_.integers(1, 5000), align=st_.sampled_from([0, 8, 16, 64, 256]),
              ctor=st_.booleans(), hwalign=st_.booleans())
        def create(self, size, align, ctor, hwalign):
            self.names += 1
            flags = SLAB_HWCACHE_ALIGN if hwalign else 0
            c = self.st.kmem_cache_create("test-%d" % self.names, max(size, 8 if ctor else 1), align,
                                          flags, self.ctor_for() if ctor else None)
            assert c.backend == backend
            c.want_align = max(align, 8)
            return c

        @rule(target=objects, c=caches)
        def alloc(self, c):
            if c.id < 0:
                return None
            va = c.alloc()
            assert va is not None
            pa = va - DIRECT_MAP_BASE
            assert va % c.want_align == 0, "alignment %d broken: 0x%x" % (c.want_align, va)
            assert va % c.align == 0
            if c.ctor:
                assert self.hw.readbytes(pa, 8) == bytes([CTOR_BYTE]) * 8, "constructor not run"
            i = bisect.bisect(self.starts, va)
            if i:
                prev = self.starts[i - 1]
                assert prev + self.live[prev][2] <= va, "overlaps 0x%x" % prev
            if i < len(self.starts):
                assert va + c.object_size <= self.starts[i], "overlaps 0x%x" % self.starts[i]
            self.serial += 1
            pat = 1 + self.serial % 250
            self.hw.fill(pa, pat, c.object_size)
            self.live[va] = (c, pat, c.object_size)
            self.starts.insert(i, va)
            return va

        @rule(va=consumes(objects))
        def free(self, va):
            if va is None or va not in self.live:
                return
            c, pat, size = self.live.pop(va)
            self.starts.remove(va)
            pa = va - DIRECT_MAP_BASE
            assert self.hw.readbytes(pa, size) == bytes([pat]) * size, "object contents changed"
            if c.ctor:
                self.hw.fill(pa, CTOR_BYTE, 8)     # back to the constructed state
            c.free(va)

        @rule(c=caches)
        def shrink(self, c):
            if c.id >= 0:
                c.shrink()

        @rule(c=caches)
        def destroy(self, c):
            if c.id < 0 or self.st.caches[c.id] is not c:
                return
            held = [va for va, v in self.live.items() if v[0] is c]
            if held:
                before = live_count(c)
                with pytest.raises(KernelError) as e:
                    self.st.kmem_cache_destroy(c)
                assert e.value.errname == "EBUSY"
                assert live_count(c) == before
            else:
                self.st.kmem_cache_destroy(c)
                c.id = -1

        @invariant()
        def accounting(self):
            per = {}
            for c, _p, _s in self.live.values():
                per[id(c)] = per.get(id(c), 0) + 1
            for c in self.st.all_caches():
                assert live_count(c) == per.get(id(c), 0), c.name

        def teardown(self):
            for va in list(self.live):
                self.free(va)
            for c in self.st.all_caches():
                self.st.kmem_cache_destroy(c)
            assert self.st.buddy.nr_free_pages() == self.free0, "frames leaked"
            assert self.st.slab_pages() == (0, 0)

    SlabMachine.__name__ = "SlabMachine_%s_%s" % (backend, "debug" if debug is not None else "plain")
    return SlabMachine


@pytest.mark.parametrize("backend,debug", VARIANTS)
def test_state_machine(backend, debug):
    machine = make_machine(backend, debug)
    machine.TestCase.settings = settings(max_examples=25, stateful_step_count=60, deadline=None)
    machine.TestCase().runTest()


@pytest.mark.parametrize("backend", ["slab", "slub", "slob"])
def test_many_objects_and_frames_return(backend):
    st, _ = boot_slab(32 << 20, backend, with_kmalloc=False)
    free0 = st.buddy.nr_free_pages()
    c = st.kmem_cache_create("many", 24, 0, 0, None)
    objs = [c.alloc() for _ in range(5000)]
    assert len(set(objs)) == 5000
    assert live_count(c) == 5000
    assert st.buddy.nr_free_pages() < free0
    for va in objs:
        c.free(va)
    st.kmem_cache_destroy(c)
    assert st.buddy.nr_free_pages() == free0


def test_backend_from_cmdline():
    for backend in ("slab", "slub", "slob"):
        st, _ = boot_slab(backend=backend, with_kmalloc=False)
        assert st.kmem_cache_create("x", 32).backend == backend
    st, _ = boot_slab(backend="", with_kmalloc=False)
    assert st.default_backend == "slub"


def test_per_cache_backend_override():
    st, km = boot_slab(backend="slub")
    caches = [st.kmem_cache_create("o-" + b, 100, 0, 0, None, backend=b) for b in ("slab", "slob")]
    assert [c.backend for c in caches] == ["slab", "slob"]
    for c in caches:
        va = c.alloc()
        c.free(va)
        st.kmem_cache_destroy(c)


def test_slab_colouring_spreads_first_objects():
    st, _ = boot_slab(backend="slab", with_kmalloc=False)
    c = st.kmem_cache_create("colour", 600, 0, 0, None)
    assert c.colour > 1
    seen = set()
    held = []
    for _ in range(c.num * c.colour * 3):
        va = c.alloc()
        held.append(va)
    for va in held:
        pa = va - DIRECT_MAP_BASE
        _pfn, _rec, s_mem = c.slab_of(pa)
        seen.add(s_mem & 0xFFF)
    assert len(seen) == c.colour


def test_slabinfo_format():
    st, km = boot_slab(backend="slub")
    va = km.kmalloc(50)
    text = slabinfo(st)
    lines = text.splitlines()
    assert lines[0] == "slabinfo - version: 2.1"
    assert lines[1].startswith("# name            <active_objs> <num_objs> <objsize> <objperslab>")
    line = [l for l in lines if l.startswith("kmalloc-64 ")][0]
    f = line.split()
    assert f[1:6] == ["1", "64", "64", "64", "1"]
    assert f[6:10] == [":", "tunables", "0", "0"]
    assert f[11:13] == [":", "slabdata"]
    km.kfree(va)
    rcl, unrcl = st.slab_pages()                    # meminfo's SReclaimable, SUnreclaim
    assert rcl >= 0 and rcl + unrcl > 0


def test_slab_tunables_in_slabinfo():
    st, km = boot_slab(backend="slab")
    line = [l for l in slabinfo(st).splitlines() if l.startswith("kmalloc-32 ")][0]
    assert "tunables  120   60    0" in line


def test_destroy_busy_then_ok():
    st, _ = boot_slab(with_kmalloc=False)
    c = st.kmem_cache_create("busy", 64)
    va = c.alloc()
    with pytest.raises(KernelError):
        st.kmem_cache_destroy(c)
    c.free(va)
    st.kmem_cache_destroy(c)
    assert "busy" not in st.by_name


def test_create_rejects_bad_input():
    st, _ = boot_slab(with_kmalloc=False)
    for args in (("a", 0), ("b", -5), ("c", 100, 24)):
        with pytest.raises(KernelError):
            st.kmem_cache_create(*args)
    st.kmem_cache_create("d", 10)
    with pytest.raises(KernelError):
        st.kmem_cache_create("d", 10)
    with pytest.raises(KernelError):
        st.kmem_cache_create("e", 10, backend="slub2")


def test_debug_flags_from_cmdline():
    st, _ = boot_slab(debug="ZP,kmalloc-64")
    assert st.by_name["kmalloc-64"].flags & (SLAB_POISON | SLAB_RED_ZONE) == SLAB_POISON | SLAB_RED_ZONE
    assert not st.by_name["kmalloc-32"].flags & SLAB_POISON
