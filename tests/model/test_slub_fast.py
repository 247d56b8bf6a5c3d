"""The guest's viper fast paths (kernel_py/mm/slab/slub_fast.py) run on the host:
the same functions, as plain Python, over the simulated machine, with
viper's pointer casts stood in for by native.host_ptr32. The fixture
switches SlubCache and Kmalloc to the methods the guest uses
(alloc_viper, free_viper, kmalloc_viper, kfree_viper), then the slab state
machine and the kmalloc tests run again through them."""

import pytest

import test_kmalloc
import test_slab
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm.slab import kmalloc as kmalloc_mod
from kernel_py.mm.slab import slub as slub_mod
from kernel_py.mm.slab import slub_fast
from kernel_py.mm.slab.kmalloc import Kmalloc
from kernel_py.mm.slab.slub import SlubCache
from kernel_py.lib.errors import KernelError

from slabsupport import boot_slab


@pytest.fixture
def viper_paths(monkeypatch):
    pop, kpop, push = slub_fast.install_host()
    calls = {"pop": 0, "kpop": 0, "push": 0, "push_done": 0}

    def counted(name, fn, done=None):
        def f(*args):
            r = fn(*args)
            calls[name] += 1
            if done is not None and r == done:
                calls[name + "_done"] += 1
            return r
        return f

    monkeypatch.setattr(slub_mod, "cache_pop", counted("pop", pop))
    monkeypatch.setattr(slub_mod, "slab_push", counted("push", push, 0))
    monkeypatch.setattr(kmalloc_mod, "kmalloc_pop", counted("kpop", kpop))
    monkeypatch.setattr(kmalloc_mod, "slab_push", counted("push", push, 0))
    monkeypatch.setattr(SlubCache, "alloc", SlubCache.alloc_viper)
    monkeypatch.setattr(SlubCache, "free", SlubCache.free_viper)
    monkeypatch.setattr(Kmalloc, "kmalloc", Kmalloc.kmalloc_viper)
    monkeypatch.setattr(Kmalloc, "kfree", Kmalloc.kfree_viper)
    return calls


def test_pairs_take_the_fast_path(viper_paths):
    st, km = boot_slab(32 << 20, "slub")
    km.kfree(km.kmalloc(32))                 # primes the cpu slab
    before = dict(viper_paths)
    vas = set()
    for _ in range(50):
        va = km.kmalloc(32)
        vas.add(va)
        km.kfree(va)
    assert viper_paths["kpop"] - before["kpop"] == 50
    assert viper_paths["push_done"] - before["push_done"] == 50
    assert len(vas) == 1                     # LIFO: the same object each time
    s = km.cache_for(32)
    assert s.counts()[0] == 0


def test_fast_and_python_paths_share_one_freelist(viper_paths):
    st, km = boot_slab(32 << 20, "slub")
    s = km.cache_for(64)
    a = [km.kmalloc(64) for _ in range(10)]          # viper pops (after the refill)
    for va in a[:5]:
        s.slab_free(va - DIRECT_MAP_BASE)            # Python pushes
    b = [s.alloc_py() for _ in range(3)]             # Python pops
    assert set(b) <= set(a[:5])
    for va in a[5:] + b:
        km.kfree(va)                                 # viper pushes
    assert s.counts()[0] == 0
    s.shrink()
    assert s.counts()[1] == 0


def test_bad_pointers_fall_back_and_change_nothing(viper_paths):
    st, km = boot_slab(32 << 20, "slub")
    va = km.kmalloc(96)
    s = km.cache_for(96)
    words = (s.cpu_freelist, s.cpu_slab, s.counts())
    for bad in (va + 8, va + 1, DIRECT_MAP_BASE + (1 << 40)):
        with pytest.raises(KernelError):
            km.kfree(bad)
        assert (s.cpu_freelist, s.cpu_slab, s.counts()) == words
    km.kfree(va)
    words = (s.cpu_freelist, s.cpu_slab, s.counts())
    with pytest.raises(KernelError, match="double free"):
        km.kfree(va)
    assert (s.cpu_freelist, s.cpu_slab, s.counts()) == words
    km.kfree(None)


def test_debug_caches_never_take_the_fast_path(viper_paths):
    st, km = boot_slab(32 << 20, "slub", debug="")
    va = km.kmalloc(32)
    km.kfree(va)
    assert viper_paths["push_done"] == 0


@pytest.mark.parametrize("debug", [None, ""])
def test_slub_state_machine_through_viper_paths(viper_paths, debug):
    test_slab.test_state_machine("slub", debug)


@pytest.mark.parametrize("name", [
    "test_kzalloc_krealloc", "test_gfp_dma_and_reclaimable", "test_enomem_returns_none",
    "test_bad_input_leaves_state_unchanged", "test_double_free_after_other_frees",
    "test_every_size_class_round_trip"])
def test_kmalloc_suite_through_viper_paths(viper_paths, name):
    getattr(test_kmalloc, name)("slub")
    assert viper_paths["push"] > 0


def test_kmem_cache_free_wrong_cache_through_viper_paths(viper_paths):
    test_kmalloc.test_kmem_cache_free_wrong_cache("slub")
