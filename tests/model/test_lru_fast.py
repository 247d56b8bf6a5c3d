"""The guest's viper drain of the lru_add batch (kernel_py/mm/reclaim/lru_fast.py)
runs on the host over the simulated machine and must leave exactly what the
Python drain leaves: the same inactive list in the same order, the same
flags, on two machines driven alike. The batch holds frames still mapped,
frames freed since (skipped), frames already on a list (skipped) and a
frame listed twice."""

from kernel_py.mm.reclaim import lru_fast
from kernel_py.arch.x86 import native
from kernel_py.mm.types import NIL, OFF_FLAGS, OFF_NEXT, PG_active, RECORD_SHIFT
from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_READ, PROT_WRITE

from swapsupport import MiB, boot

PAGES = 300


def fill_batch(k):
    """Fault PAGES pages without a console command in between (the batch
    stays full), free some, and put one on the list already."""
    ps, hw = k.procs, k.hw
    k.anon.drain()
    task = ps.spawn("lru")
    a = task.mm.mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE)
    old = ps.use_mm(task)
    try:
        for i in range(PAGES):
            hw.vwrite8(a + i * 4096, i & 0xFF)
    finally:
        ps.unuse_mm(old)
    task.mm.munmap(a + 100 * 4096, 50 * 4096)        # freed: skipped
    pend = k.anon.pending
    assert len(pend) == PAGES
    pend.append(pend[10])                            # listed twice: pushed once
    rec = k.mem_map.base + ((pend[20] >> 12) << RECORD_SHIFT) + OFF_FLAGS
    k.hw.write16(rec, k.hw.read16(rec) | PG_active)  # goes on the inactive list all the same
    return pend


def drain_in_viper(k):
    lru_fast.install_host()
    an = k.anon
    native.register_area(an._ext_words, k.hw)
    native.register_area(an._head, k.hw)
    an.fast_drain = True
    an.drain()
    assert not an.pending


def state(k):
    lst = k.anon.inactive
    order, pfn = [], lst.first
    while pfn != NIL:
        order.append(pfn)
        pfn = k.hw.read32(k.mem_map.base + (pfn << RECORD_SHIFT) + OFF_NEXT)
    flags = [k.hw.read16(k.mem_map.base + (p << RECORD_SHIFT) + OFF_FLAGS) for p in order]
    return order, flags, lst.first, lst.last, lst.n


def test_viper_drain_matches_the_python_drain():
    k_py, _ = boot(mem=16 * MiB, swap=0)
    k_vi, _ = boot(mem=16 * MiB, swap=0)
    fill_batch(k_py)
    fill_batch(k_vi)
    k_py.anon.drain()
    drain_in_viper(k_vi)
    got, want = state(k_vi), state(k_py)
    assert got == want
    assert got[4] == PAGES - 50 and got[3] != NIL
    assert not any(f & PG_active for f in got[1])


def test_viper_drain_onto_a_list_with_pages():
    k, _ = boot(mem=16 * MiB, swap=0)
    fill_batch(k)
    k.anon.drain()                                  # Python: the list is not empty now
    before = state(k)
    fill_batch(k)
    drain_in_viper(k)
    after = state(k)
    assert after[4] == 2 * (PAGES - 50)
    assert after[0][-len(before[0]):] == before[0]   # the new pages went in front
    assert after[3] == before[3]
