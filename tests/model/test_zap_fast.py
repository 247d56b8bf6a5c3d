"""The guest's viper zap of a private anonymous range (kernel_py/mm/vm/zap_fast.py,
through MmMemory.zap_fast) runs on the host over the simulated machine and
must leave exactly what the Python loop (MmMemory.zap_slots) leaves, on two
machines driven alike: the page tables, every frame's mem_map record and
rmap word, both anon LRU lists in order, the pcp list and its drains, the
buddy's free count, RSS. The range holds frames freed (on the inactive
list, on the active list, in the lru_add batch), frames shared with a fork
child (their count only drops), zero-page PTEs, and PROT_NONE entries where
the viper function stops and the Python loop takes the rest of the table."""

from kernel_py.arch.x86 import native
from kernel_py.mm.vm import memory, zap_fast
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK
from kernel_py.mm.types import RECORD_SIZE
from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE

from swapsupport import MiB, boot

PAGES = 600          # two page tables' worth and more


def workload(k, fast):
    """Fault PAGES pages (every 7th only read: the zero page), some on the
    LRU lists, fork, and unmap pieces from both processes. Returns the
    processes' RSS and PTEs, and the slots the viper function stopped at."""
    an, ps, hw = k.anon, k.procs, k.hw
    if fast:
        zap_fast.install_host()
        for area in (an.zap_st, an._ext_words, an.zap_heads):
            native.register_area(area, hw)
    an.fast_zap = fast
    stops = []
    real = zap_fast.zap_pte_range

    def counting(st, ext, heads):
        i = real(st, ext, heads)
        if i < st[zap_fast.Z_I1]:
            stops.append(i)
        return i
    memory.zap_pte_range = counting                       # the name memory.py calls
    try:
        return run_workload(k, ps, hw, an), stops
    finally:
        memory.zap_pte_range = real


def run_workload(k, ps, hw, an):
    an.drain()
    task = ps.spawn("zap")
    mm = task.mm
    a = mm.mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE)
    old = ps.use_mm(task)
    try:
        for i in range(PAGES):
            if i % 7 == 3:
                hw.vread8(a + i * 4096)
            else:
                hw.vwrite8(a + i * 4096, i & 0xFF)
            if i == 200:
                an.drain()                                  # 0..200 on the inactive list
    finally:
        ps.unuse_mm(old)
    for i in range(0, 200, 5):                              # some of them active
        pa = mm.pte(a + i * 4096) & PTE_ADDR_MASK
        if i % 7 != 3:
            an.activate(pa >> 12)
    child = ps.fork(task.pid)
    mm.munmap(a, 100 * 4096)                                # shared: counts drop to 1
    child.mm.munmap(a + 50 * 4096, 100 * 4096)              # 50..99 freed, 100..149 drop
    mm.mprotect(a + 300 * 4096, 10 * 4096, PROT_NONE)
    old = ps.use_mm(task)                                   # live: the TLB flush too
    try:
        mm.munmap(a + 100 * 4096, 300 * 4096)               # PROT_NONE: the Python loop's part
    finally:
        ps.unuse_mm(old)
    ptes = [m.pte(a + i * 4096) for m in (mm, child.mm) for i in range(PAGES)]
    return mm.rss_anon, child.mm.rss_anon, ptes


def lst(k, l):
    return l.pfns(), l.first, l.last, l.n


def state(k):
    hw, an = k.hw, k.anon
    n = k.mem_map.nr_pfns
    recs = hw.readbytes(k.mem_map.base, n * RECORD_SIZE)
    rmap = [an.key(p) for p in range(n)]
    return (recs, rmap, lst(k, an.active), lst(k, an.inactive), list(k.pcp.list), k.pcp.drains,
            k.buddy.nr_free_pages())


def test_viper_zap_matches_the_python_zap():
    k_py, _ = boot(mem=16 * MiB, swap=0)
    k_vi, _ = boot(mem=16 * MiB, swap=0)
    got_py, stops_py = workload(k_py, False)
    got_vi, stops_vi = workload(k_vi, True)
    assert stops_py == [] and stops_vi                      # the viper path ran, and stopped
    assert got_vi == got_py                                 # RSS and every PTE
    got, want = state(k_vi), state(k_py)
    for g, w in zip(got, want):
        assert g == w
