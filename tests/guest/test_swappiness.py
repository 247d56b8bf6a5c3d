"""vm.swappiness steers reclaim between anonymous memory and the page cache
(issue 15), measured in the guest: the same workload (user/pressure.c) in
two fresh 64 MiB guests with swap, one at vm.swappiness=10 and one at 100.
The program reads a 16 MiB file on the FAT disk twice (page cache, its
pages referenced), holds 8 MiB of anonymous memory, then touches more
anonymous memory than is free and prints what reclaim took meanwhile, from
/proc/vmstat: pswpout, pgsteal_anon, pgsteal_file. Linux's get_scan_count
scans anon : file in the ratio swappiness : 200 - swappiness, so at 10 the
page cache pays (1 : 19) and at 100 both lists do (1 : 1)."""

import re

import pytest

from kpyqemu import disks

MiB = 1 << 20
GUEST_MEM = "64M"
CACHE = 16 * MiB
HOLD_MB = 8
PRESS_MB = 20
FIGURES = re.compile(r"^pressure: file=(\d+) (.*)$", re.M)


def reclaim_figures(boot, tmp_path, swappiness):
    d = disks.fresh_disks(tmp_path / str(swappiness), files={"/cache.dat": bytes(CACHE)})
    g = boot(mem=GUEST_MEM, drives=d.drives, cmdline="noswap")
    g.run("swapon /dev/sdb")
    g.run("sysctl -w vm.swappiness=%d" % swappiness)
    assert g.run("cat /proc/sys/vm/swappiness") == str(swappiness)
    out = g.run("run /mnt/bin/pressure /mnt/cache.dat %d %d" % (HOLD_MB, PRESS_MB), timeout=600)
    m = FIGURES.search(out)
    assert m, out
    assert int(m.group(1)) == CACHE
    f = {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
    print("swappiness=%d %s" % (swappiness, f))
    return f


def test_swappiness_10_takes_page_cache_100_takes_anon(boot, tmp_path):
    low = reclaim_figures(boot, tmp_path, 10)
    high = reclaim_figures(boot, tmp_path, 100)
    # both guests reclaimed the page cache; only the one at 100 swapped
    assert low["pgsteal_file"] > 1000 and high["pgsteal_file"] > 1000, (low, high)
    assert high["pswpout"] >= 100 and high["pgsteal_anon"] >= 100, (low, high)
    assert low["pswpout"] * 4 <= high["pswpout"], (low, high)
    # anon : file taken, at least 4x lower at 10 than at 100
    assert low["pgsteal_anon"] * high["pgsteal_file"] * 4 <= \
        high["pgsteal_anon"] * low["pgsteal_file"], (low, high)
    assert low["pgscan_anon"] * 2 <= high["pgscan_anon"], (low, high)
