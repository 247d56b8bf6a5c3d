"""Fault injection at 10% on the real machine (issue 7, item 3), a longer
and more varied workload than test_pagedebug's: processes, the fault
path, fork and copy-on-write, malloc, mprotect/munmap, kmalloc/vmalloc,
files with appends, directories and writeback, swap-out (memory.reclaim)
and swap-in (memsum) - failslab and fail_page_alloc both at 10%, every
filter off. Every command answers with output or exactly one `error:`;
with injection off and everything freed, frames, slab objects and swap
slots are back to the baseline. Prints the issue's figure."""

from kernel_py.lib import csum
from pagedebugsupport import SwapFileWorkload, accounting, inject_everywhere, settle
from test_disk_pagecache import make_disks

TIMES = 100000


def swap_used(g):
    return [int(l.split()[3]) for l in g.run("cat /proc/swaps").split("\n")[1:] if l.strip()]


def test_injection_at_10_percent_with_swap_and_files_no_leak(boot, tmp_path):
    data, swap = make_disks(tmp_path)
    g = boot(mem="64M", drives=[str(data), str(swap)], cmdline="noswap")
    g.run("mkswap /dev/sdb")
    g.run("swapon /dev/sdb")
    run = lambda c: g.run(c, check=False, allow_oops=True)
    caches = [l.split()[0] for l in g.run("cat /proc/slabinfo").split("\n")[2:]]
    pcp = lambda: int(g.python("print(len(k.pcp))"))
    warm = SwapFileWorkload(run, seed=41)
    for _ in range(80):
        warm.step()
    warm.release_all()
    settle(run, caches)
    base, pcp0, swap0 = accounting(run), pcp(), swap_used(g)
    vm0 = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    inject_everywhere(g.run, 10, TIMES)
    w = SwapFileWorkload(run, seed=42)
    for _ in range(450):
        w.step()
    inject_everywhere(g.run, 0)
    injected = sum(TIMES - int(g.run("cat /sys/kernel/debug/%s/times" % n))
                   for n in ("failslab", "fail_page_alloc"))
    vm = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    swapped = (int(vm["pswpout"]) - int(vm0["pswpout"]), int(vm["pswpin"]) - int(vm0["pswpin"]))
    assert w.bad == [], w.bad[:3]
    w.release_all()
    settle(run, caches)
    mem, buddy, slabs = accounting(run)
    leaked = (base[0] // 4 + pcp0) - (mem // 4 + pcp())
    slab_diff = {c: (base[2][c], slabs.get(c)) for c in base[2] if slabs.get(c) != base[2][c]}
    print("Fault injection at 10%%: %d operations, %d failed, %d failures injected, "
          "swap out/in %d/%d pages, leaks found: %d frames, %d slab caches, swap used %s -> %s"
          % (w.ops, w.failed, injected, swapped[0], swapped[1], leaked, len(slab_diff),
             swap0, swap_used(g)))
    assert injected >= 20 and w.failed > 0
    assert swapped[0] > 0 and swapped[1] > 0
    assert leaked == 0
    assert sum(buddy) + pcp() == sum(base[1]) + pcp0
    assert slab_diff == {}
    assert swap_used(g) == swap0
    assert g.run("echo alive") == "alive"


def test_swap_out_with_every_allocation_failing(boot, tmp_path):
    """Issue 15, item 6: swap-out's bios come from fs_bio_set's mempool, so
    reclaim swaps out with failslab and fail_page_alloc failing every
    allocation (probability 100, no limit, every filter off): the reserve
    backs each bio and bio_put refills it. tests/model/test_bio.py shows the
    same request failing with ENOMEM when the pool has no reserve."""
    data, swap = make_disks(tmp_path)
    g = boot(mem="64M", drives=[str(data), str(swap)], cmdline="noswap kmemleak=on")
    g.run("echo min_age=0 > /sys/kernel/debug/kmemleak")
    g.run("echo scan=off > /sys/kernel/debug/kmemleak")
    g.run("mkswap /dev/sdb")
    g.run("swapon /dev/sdb")
    size = 4 << 20
    pid = int(g.run("spawn filler"))
    a = int(g.run("mmap %d %d" % (pid, size)), 16)
    g.run("pattern %d 0x%x %d 9" % (pid, a, size))
    bio = [l for l in g.run("cat /proc/slabinfo").split("\n") if l.startswith("bio-0 ")]
    assert len(bio) == 1 and int(bio[0].split()[1]) >= 2      # the reserve's bios are live
    vm0 = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    inject_everywhere(g.run, 100, TIMES)
    g.run("echo 2M > /sys/fs/cgroup/memory.reclaim", check=False, allow_oops=True)
    inject_everywhere(g.run, 0)
    injected = sum(TIMES - int(g.run("cat /sys/kernel/debug/%s/times" % n))
                   for n in ("failslab", "fail_page_alloc"))
    vm = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    out = int(vm["pswpout"]) - int(vm0["pswpout"])
    print("swap-out with every allocation failing: %d pages out, %d failures injected"
          % (out, injected))
    assert injected > 0
    assert out >= 256                           # 1 MiB of the 2 MiB asked, at least
    got = g.run("memsum %d 0x%x %d" % (pid, a, size), timeout=600)
    assert got.split()[1] == csum.pattern_memsum(a, size, 9)
    g.run("kill %d" % pid)
    for _ in range(2):
        g.run("echo scan > /sys/kernel/debug/kmemleak")
    assert g.run("cat /sys/kernel/debug/kmemleak") == ""      # the reserve's bios too
    assert g.run("echo alive") == "alive"
