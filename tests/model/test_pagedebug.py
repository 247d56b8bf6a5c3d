"""page_owner, fault injection (failslab, fail_page_alloc) and
debug_pagealloc on the simulated machine (issue 7, items 2-4)."""

import pytest

from kernel_py.kernel.kernel import Kernel
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.mm import gfp as G
from kernel_py.mm.debug.fault_inject import FaultAttr, should_fail_alloc_page, should_failslab
from kernel_py.shell.shell import Shell
from kernel_py.sim.machine import Machine
from kernel_py.arch.x86.cpu import _PAGE_PRESENT
import kernel_py.shell.all  # noqa: F401

from mmsupport import boot
from pagedebugsupport import Workload, accounting, direct_map_checked, errors_in, settle


class Log:
    """A stand-in for the kernel: the members FaultAttr reads (printk, and
    procs and comm for its dump), as kernel/kernel.py declares them."""

    def __init__(self):
        self.lines = []
        self.procs = None
        self.comm = "swapper"

    def printk(self, msg):
        self.lines.append(msg)


def attr(**kw):
    a = FaultAttr(Log(), "fail_page_alloc")
    a.k.comm = "test"
    for name, v in kw.items():
        setattr(a, name, v)
    return a


def fails(a, n, size=1):
    return [a.should_fail(size) for _ in range(n)]


# --- should_fail: Linux's semantics -------------------------------------------

def test_probability_zero_never_fails():
    assert not any(fails(attr(probability=0, times=-1), 1000))


def test_probability_is_a_percentage():
    a = attr(probability=10, times=-1, verbose=0)
    n = sum(fails(a, 10000))
    assert 850 <= n <= 1150
    assert a.injected == n
    assert sum(fails(attr(probability=100, times=-1), 100)) == 100


def test_times_counts_down_and_minus_one_is_unlimited():
    a = attr(probability=100, times=3, verbose=0)
    assert fails(a, 6) == [True] * 3 + [False] * 3
    assert a.times == 0
    a = attr(probability=100, times=-1, verbose=0)
    assert all(fails(a, 50)) and a.times == -1


def test_interval_fails_every_nth_call():
    a = attr(probability=100, interval=3, times=-1, verbose=0)
    assert fails(a, 9) == [False, False, True] * 3


def test_space_spares_calls_until_the_budget_is_used():
    a = attr(probability=100, space=10, times=-1, verbose=0)
    assert fails(a, 4, size=4) == [False, False, True, True]
    assert a.space == 2


def test_verbose_logs_linux_lines():
    a = attr(probability=100, times=2, verbose=1)
    a.should_fail(1)
    assert a.k.lines == ["FAULT_INJECTION: forcing a failure.",
                         "name fail_page_alloc, interval 1, probability 100, space 0, times 2"]
    a = attr(probability=100, times=-1, verbose=0)
    a.should_fail(1)
    assert a.k.lines == []


def test_fail_page_alloc_filters():
    a = attr(probability=100, times=-1, verbose=0)           # Linux defaults otherwise
    assert not should_fail_alloc_page(a, G.GFP_ATOMIC, 0)    # min-order 1
    assert should_fail_alloc_page(a, G.GFP_ATOMIC, 1)
    assert not should_fail_alloc_page(a, G.GFP_KERNEL, 3)   # ignore-gfp-wait
    assert not should_fail_alloc_page(a, G.GFP_ATOMIC | G.__GFP_HIGHMEM, 3)
    assert not should_fail_alloc_page(a, G.GFP_ATOMIC | G.__GFP_NOFAIL, 3)
    a.min_order, a.ignore_gfp_wait, a.ignore_gfp_highmem = 0, False, False
    assert should_fail_alloc_page(a, G.GFP_HIGHUSER_MOVABLE, 0)


def test_failslab_filters():
    a = attr(probability=100, times=-1, verbose=0)

    class Cache:
        name, object_size = "c", 64
    assert not should_failslab(a, Cache, G.GFP_KERNEL)
    assert should_failslab(a, Cache, G.GFP_ATOMIC)
    assert not should_failslab(a, Cache, G.GFP_ATOMIC | G.__GFP_NOFAIL)


# --- the knobs and the hooks on a booted kernel --------------------------------

def shell(mem=64 << 20, cmdline=""):
    k = boot(mem, cmdline)
    return k, Shell(k)


def set_knobs(run, name, **knobs):
    for f, v in knobs.items():
        out = run("echo %s > /sys/kernel/debug/%s/%s" % (v, name, f.replace("_", "-")))
        assert not errors_in(out), out


def test_knobs_read_back_with_linux_defaults_and_reject_bad_values():
    k, sh = shell()
    run = sh.execute
    assert run("cat /sys/kernel/debug/fail_page_alloc/times") == "1"
    assert run("cat /sys/kernel/debug/fail_page_alloc/min-order") == "1"
    assert run("cat /sys/kernel/debug/failslab/ignore-gfp-wait") == "Y"
    assert run("cat /sys/kernel/debug/failslab/verbose") == "2"
    set_knobs(run, "failslab", probability=25, times=-1)
    assert run("cat /sys/kernel/debug/failslab/probability") == "25"
    assert run("cat /sys/kernel/debug/failslab/times") == "-1"
    for bad in ("echo -3 > /sys/kernel/debug/failslab/probability",
                "echo x > /sys/kernel/debug/fail_page_alloc/interval",
                "echo 0 > /sys/kernel/debug/fail_page_alloc/interval",
                "echo maybe > /sys/kernel/debug/failslab/ignore-gfp-wait"):
        assert len(errors_in(run(bad))) == 1
    assert run("cat /sys/kernel/debug/failslab/probability") == "25"


def test_fail_page_alloc_fails_the_buddy_and_changes_nothing():
    k, sh = shell()
    run = sh.execute
    free = k.buddy.nr_free_pages()
    set_knobs(run, "fail_page_alloc", probability=100, times=2, verbose=0, min_order=0,
              ignore_gfp_wait="N")
    assert errors_in(run("alloc_pages 0")) == ["error: ENOMEM"]
    assert k.buddy.alloc_pages(G.GFP_KERNEL | G.__GFP_NOFAIL, 0) is not None   # never failed
    assert k.buddy.nr_free_pages() == free - 1
    assert errors_in(run("alloc_pages 2")) == ["error: ENOMEM"]
    assert run("cat /sys/kernel/debug/fail_page_alloc/times") == "0"
    assert run("alloc_pages 2").startswith("0x")            # times ran out


@pytest.mark.parametrize("backend", ["slub", "slab", "slob"])
def test_failslab_fails_kmalloc_and_kmem_cache_alloc_on_every_backend(backend):
    k, sh = shell(cmdline="slab=%s" % backend)
    run = sh.execute
    assert not errors_in(run("kmem_cache_create fi 100"))
    warm = run("kmalloc 64")                          # a cpu slab with free objects
    set_knobs(run, "failslab", probability=100, times=-1, verbose=1, ignore_gfp_wait="N")
    assert k.slab.area[255 * 16 + 2] == 1                # the viper paths step aside
    assert errors_in(run("kmalloc 64")) == ["error: ENOMEM: kmalloc 64"]
    assert len(errors_in(run("kmem_cache_alloc fi"))) == 1
    assert "FAULT_INJECTION: forcing a failure." in k.log
    set_knobs(run, "failslab", probability=0)
    assert k.slab.area[255 * 16 + 2] == 0
    assert not errors_in(run("kmalloc 64"))
    run("kfree %s" % warm)


# --- page_owner ------------------------------------------------------------------

def test_page_owner_records_order_gfp_site_and_keeps_the_last_owner():
    k, sh = shell(cmdline="page_owner=on")
    run = sh.execute
    pa = int(run("alloc_pages 2 GFP_KERNEL|__GFP_MOVABLE"), 16)
    text = run("cat /sys/kernel/debug/page_owner")
    rec = [r for r in text.split("\n\n") if "PFN 0x%x " % (pa >> 12) in r]
    assert len(rec) == 1, text[-800:]
    lines = rec[0].split("\n")
    assert lines[0].startswith("Page allocated via order 2, mask 0x%x(GFP_KERNEL|__GFP_MOVABLE), pid 0, ts "
                               % (G.GFP_KERNEL | G.__GFP_MOVABLE))
    assert lines[1].startswith("PFN 0x%x type Movable Block %d type Movable Flags " % (pa >> 12, pa >> 21))
    assert lines[2:4] == [" alloc_pages", " alloc_pages (console command)"]
    run("free_pages 0x%x 2" % pa)
    assert "PFN 0x%x " % (pa >> 12) not in run("cat /sys/kernel/debug/page_owner")
    desc = k.page_debug.owner.describe_freed((pa >> 12) + 3)
    assert "last owner: alloc_pages <- alloc_pages" in desc and "freed at" in desc


def test_page_owner_sort_puts_the_growing_site_first():
    k, sh = shell(cmdline="page_owner=on")
    run = sh.execute
    for _ in range(40):
        run("vmalloc 16384")
    top = run("page_owner_sort").split("\n\n")[0]
    assert top.startswith("40 times, 160 pages:") or "vmalloc" in top, top
    assert "__vmalloc_area_node" in top and "vmalloc (console command)" in top


def test_page_owner_is_off_by_default():
    k, sh = shell()
    assert k.buddy.post_alloc is None and k.buddy.free_prepare is None
    assert errors_in(sh.execute("cat /sys/kernel/debug/page_owner"))[0].startswith("error: EINVAL")


# --- debug_pagealloc -------------------------------------------------------------------

def checked_boot(mem=64 << 20, cmdline="debug_pagealloc=on"):
    hw = direct_map_checked(Machine(mem, cmdline, console=lambda text: None))
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    return k, Shell(k)


def dm_pte(k, pa):
    level, _epa, e = k.pgtable.walk(k.init_mm.pgd, DIRECT_MAP_BASE + pa)
    return level, e


def test_debug_pagealloc_maps_4k_and_unmaps_every_free_page():
    k, sh = checked_boot()
    assert k.init_mm.direct_pts is not None and not k.init_mm.gbpages
    free = set()
    for z in k.zones:
        for o in range(len(z.free_area)):
            for pfn in z.free_area[o].pfns():
                free.update(range(pfn, pfn + (1 << o)))
    for pfn in range(0, k.mem_map.nr_pfns, 7):
        level, e = dm_pte(k, pfn << 12)
        if k.memmap.ram[0][0] <= pfn << 12:
            assert level == 1
        if pfn in free:
            assert not e & _PAGE_PRESENT, hex(pfn)
    assert k.hw.checked_faults == []


def test_use_after_free_faults_and_names_the_last_owner():
    k, sh = checked_boot()
    run = sh.execute
    pa = int(run("alloc_pages 0"), 16)
    assert dm_pte(k, pa)[1] & _PAGE_PRESENT
    assert run("peek 0x%x" % (DIRECT_MAP_BASE + pa)).startswith("0x")
    run("free_pages 0x%x 0" % pa)
    assert not dm_pte(k, pa)[1] & _PAGE_PRESENT
    out = run("peek 0x%x" % (DIRECT_MAP_BASE + pa))
    assert errors_in(out) == [out] and out.startswith("error: EFAULT: CPU exception 14")
    bug = [l for l in k.log if l.startswith("BUG: unable to handle page fault")][-1]
    assert "(freed page pfn 0x%x, last owner: alloc_pages <- alloc_pages" % (pa >> 12) in bug
    assert "freed at" in bug
    with pytest.raises(k.hw.Fault):                  # the kernel's own physical access too
        k.hw.read64(pa)
    assert run("echo alive") == "alive"
    pa2 = int(run("alloc_pages 0"), 16)             # allocation maps again
    assert dm_pte(k, pa2)[1] & _PAGE_PRESENT


def test_workload_under_debug_pagealloc_never_touches_a_free_frame():
    k, sh = checked_boot(cmdline="debug_pagealloc=on slab=slab")
    w = Workload(sh.execute, seed=3)
    for _ in range(200):
        w.step()
    w.release_all()
    assert w.bad == [] and w.failed == 0
    assert k.hw.checked_faults == []


# --- injection at 10% on the console: no crash, no leak ----------------------------------

@pytest.mark.parametrize("backend", ["slub", "slab", "slob"])
def test_injection_at_10_percent_no_crash_no_leak(backend):
    k, sh = shell(cmdline="slab=%s" % backend)
    run = sh.execute
    caches = [l.split()[0] for l in run("cat /proc/slabinfo").split("\n")[2:] if l.strip()]
    warm = Workload(run, seed=11)
    for _ in range(150):
        warm.step()
    warm.release_all()
    settle(run, caches)
    base, pcp0 = accounting(run), len(k.pcp)
    for name in ("failslab", "fail_page_alloc"):
        set_knobs(run, name, probability=10, interval=1, times=-1, verbose=0, ignore_gfp_wait="N")
    set_knobs(run, "fail_page_alloc", min_order=0, ignore_gfp_highmem="N")
    w = Workload(run, seed=12)
    for _ in range(600):
        w.step()
    for name in ("failslab", "fail_page_alloc"):
        set_knobs(run, name, probability=0)
    fi = k.fault_inject
    assert fi.failslab.injected + fi.fail_page_alloc.injected >= 20
    assert w.bad == []
    assert w.failed > 0
    w.release_all()
    settle(run, caches)
    mem, buddy, slabs = accounting(run)
    assert mem // 4 + len(k.pcp) == base[0] // 4 + pcp0          # frames: free + pcp
    assert sum(buddy) + len(k.pcp) == sum(base[1]) + pcp0
    assert slabs == base[2]
    assert run("echo alive") == "alive"


def test_injection_under_swap_pressure_no_leak():
    import swapsupport
    k, sh = swapsupport.boot()
    run = sh.execute
    free0 = k.buddy.nr_free_pages() + len(k.pcp)
    pid = int(run("spawn hog"))
    addr = int(run("mmap %d %d" % (pid, 40 << 20)), 16)
    for name in ("failslab", "fail_page_alloc"):
        set_knobs(run, name, probability=10, times=-1, verbose=0, ignore_gfp_wait="N")
    set_knobs(run, "fail_page_alloc", min_order=0, ignore_gfp_highmem="N")
    outs = [run("touch %d 0x%x %d w" % (pid, addr + off, 4 << 20)) for off in range(0, 40 << 20, 4 << 20)]
    outs += [run("memsum %d 0x%x %d" % (pid, addr, 8 << 20)) for _ in range(2)]
    for name in ("failslab", "fail_page_alloc"):
        set_knobs(run, name, probability=0)
    assert all(len(errors_in(o)) <= 1 for o in outs)
    assert any(errors_in(o) for o in outs)               # failures reached the fault path
    assert swapsupport.vmstat(sh)["pswpout"] > 0
    run("kill %d" % pid)
    assert k.buddy.nr_free_pages() + len(k.pcp) == free0
    assert run("cat /proc/swaps").split("\n")[1].split()[3] == "0"   # no swap slot leaked
    assert run("echo alive") == "alive"
