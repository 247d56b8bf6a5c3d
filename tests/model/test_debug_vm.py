"""`check` (kernel_py/mm/debug/debug_vm.py) cross-checks page-table frames and swap
accounting: on a consistent kernel (processes, fork, vmalloc, pfdemo) it
says ok, and a table frame nobody links, a wrong nr_pgtables or swapents,
or a swap slot nobody refers to each become a violation naming the count."""

from kernel_py.mm.debug import debug_vm
from kernel_py.mm.types import KIND_PAGETABLE
from kernel_py.shell.shell import Shell
from mmsupport import boot
import swapsupport
import kernel_py.shell.all  # noqa: F401


def busy_kernel():
    k = boot(mem=64 << 20)
    sh = Shell(k)
    pid = sh.execute("spawn a")
    a = sh.execute("mmap %s 3M" % pid)
    sh.execute("touch %s %s 3M w" % (pid, a))
    sh.execute("fork %s" % pid)
    sh.execute("vmalloc 300000")
    sh.execute("pfdemo")
    return k, sh, int(pid)


def test_consistent_kernel_passes_and_counts_every_table():
    k, sh, pid = busy_kernel()
    c, bad = debug_vm.check(k)
    assert bad == []
    assert sh.execute("check").endswith("check: ok")
    mms = [t.mm for t in k.procs.tasks.values() if t.mm is not None]
    assert c.kinds[KIND_PAGETABLE] > sum(1 + mm.nr_pgtables for mm in mms)


def test_unlinked_table_frame_is_a_violation():
    k, sh, pid = busy_kernel()
    lost = k.alloc_table()
    bad = debug_vm.check(k)[1]
    assert any(b.startswith("pagetable: ") for b in bad), bad
    k.free_table(lost)
    assert debug_vm.check(k)[1] == []


def test_wrong_mm_counters_are_violations():
    k, sh, pid = busy_kernel()
    mm = k.procs.tasks[pid].mm
    mm.nr_pgtables += 1
    mm.swapents += 2
    bad = debug_vm.check(k)[1]
    assert "pid %d: %d page tables walked, nr_pgtables %d" % (pid, mm.nr_pgtables - 1, mm.nr_pgtables) in bad
    assert "pid %d: 0 swap PTEs walked, swapents 2" % pid in bad
    assert sh.execute("check").startswith("error: EUCLEAN: 2 violations")


def test_swap_accounting_with_swapped_and_forked_pages():
    k, sh = swapsupport.boot(mem=24 << 20, swap=24 << 20)
    p = int(sh.execute("spawn parent"))
    a = sh.execute("mmap %d 28M" % p)
    sh.execute("pattern %d %s 28M 3" % (p, a))
    c = int(sh.execute("fork %d" % p))
    mms = [k.procs.tasks[p].mm, k.procs.tasks[c].mm]
    assert mms[0].swapents > 0 and mms[1].swapents == mms[0].swapents
    assert debug_vm.check(k)[1] == []
    si = k.swap.active()[0]
    slot = next(i for i, n in enumerate(si.map) if 0 < n < 0x3e)      # a count, no cache bit
    si.map[slot] += 1                   # a use no PTE holds
    si.inuse += 1
    bad = debug_vm.check(k)[1]
    assert any(b.startswith("swap: ") and "uses in the swap maps" in b for b in bad), bad
    assert "swap: %s: %d slots with a count, inuse %d" % (si.path, si.inuse - 1, si.inuse) in bad
    si.map[slot] -= 1
    si.inuse -= 1
    sh.execute("kill %d" % p)
    assert debug_vm.check(k)[1] == []


def test_swap_cache_against_its_frames():
    k, sh = swapsupport.boot(mem=24 << 20, swap=48 << 20)
    p = int(sh.execute("spawn p"))
    a = sh.execute("mmap %d 28M" % p)
    sh.execute("pattern %d %s 28M 3" % (p, a))
    sh.execute("memsum %d %s 4M" % (p, a))          # swap-ins that stay in the swap cache
    assert k.swapcache.nr > 0
    assert debug_vm.check(k)[1] == []
    k.swapcache.nr += 1
    bad = debug_vm.check(k)[1]
    assert any(b.startswith("swap cache: ") for b in bad), bad
