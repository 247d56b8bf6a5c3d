"""The fault handler's inlined copy-on-write (FaultHandler.inline_cow: a write
to a private anon page another PTE still shares, with a frame on the pcp
list) must leave exactly what wp_fault -> wp_page_copy leaves, on two
machines driven alike: both processes' PTEs, every frame's record and rmap
word, the lru_add batch, the pcp list, the COW count. The child also writes
pages it no longer shares (reuse) and zero-page mappings (copied from the
zero page), which both machines leave to wp_fault."""

from kernel_py.arch.x86.cpu import PTE_ADDR_MASK
from kernel_py.mm.types import RECORD_SIZE
from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_READ, PROT_WRITE

from swapsupport import MiB, boot

PAGES = 150


def workload(k, inline):
    ps, hw, fh = k.procs, k.hw, k.fault
    fh.inline_cow = inline
    fh.handler = k.fault_handler = fh._build()
    hw.set_fault_handler(fh.handler)
    copies = []
    plain = fh.wp_page_copy
    fh.wp_page_copy = lambda *a: copies.append(a[2]) or plain(*a)
    task = ps.spawn("cow")
    a = task.mm.mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE)
    old = ps.use_mm(task)
    try:
        for i in range(PAGES):
            if i % 5 == 2:
                hw.vread8(a + i * 4096)                 # the zero page
            else:
                hw.vwrite8(a + i * 4096, i & 0xFF)
    finally:
        ps.unuse_mm(old)
    child = ps.fork(task.pid)
    task.mm.munmap(a + 100 * 4096, 10 * 4096)           # 100..109: the child's alone (reuse)
    old = ps.use_mm(child)
    try:
        for i in range(PAGES):
            hw.vwrite8(a + i * 4096, 0xEE)
    finally:
        ps.unuse_mm(old)
    ptes = [m.pte(a + i * 4096) for m in (task.mm, child.mm) for i in range(PAGES)]
    data = [hw.read8(p & PTE_ADDR_MASK) for p in ptes if p & 1]
    return ptes, data, len(copies), fh.stats.cow, fh.stats.reuse


def state(k):
    hw, an = k.hw, k.anon
    n = k.mem_map.nr_pfns
    return (hw.readbytes(k.mem_map.base, n * RECORD_SIZE), [an.key(p) for p in range(n)],
            list(an.pending), list(k.pcp.list))


def test_inlined_cow_matches_wp_page_copy():
    k_py, _ = boot(mem=16 * MiB, swap=0)
    k_in, _ = boot(mem=16 * MiB, swap=0)
    *want, copies_py, cow_py, reuse_py = workload(k_py, False)
    *got, copies_in, cow_in, reuse_in = workload(k_in, True)
    assert got == want
    assert (cow_in, reuse_in) == (cow_py, reuse_py) and reuse_py == 8     # 100..109 but two zero pages
    assert copies_py == cow_py                          # every copy went through wp_page_copy
    assert copies_in < copies_py - 50                   # ... and here most were inlined
    assert state(k_in) == state(k_py)
