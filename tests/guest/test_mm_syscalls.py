"""The memory system calls with real programs in ring 3 (issue 14, its mm
side): the usertests memory tests, Linux's own mm self-tests
(map_fixed_noreplace, mremap_dontunmap, mremap_test), malloc100's
footprint in /proc/PID/status, and mmstress (user/mmstress.c): hostile
arguments, random sequences checked by content, and mremap of memory that
is shared copy-on-write and on swap. After each program the kernel's own
`check` must pass (frames, page tables, swap maps, RSS counters, the
reverse map of every mapped anonymous page) and /proc/meminfo must show
everything back."""

import re
import time

from kpyqemu import disks

user_disks = disks.pytest_fixture()

MEMORY_TESTS = ("mmap_anon munmap_split mmap_fixed mmap_populate demand_paging mprotect "
                "mremap madvise brk stack_growth cow mmap_shared_anon mmap_file_private "
                "mmap_file_shared exec_bigargs").split()


def check_ok(g):
    """The kernel's check passes; its census of frames by owner."""
    out = g.run("check")
    assert out.split("\n")[-1] == "check: ok", out
    return {l.split()[0]: int(l.split()[1]) for l in out.split("\n")[:-1]}


def meminfo(g):
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r"^(\S+?):\s+(\d+) kB$", g.run("cat /proc/meminfo"), re.M)}


def status(g, pid):
    out = g.run("cat /proc/%d/status" % pid)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+):\s+(\d+) kB$", out, re.M)}


def test_usertests_memory_tests_pass(boot, user_disks):
    g = boot(drives=user_disks.drives)
    out = g.run("run /mnt/bin/usertests -d /mnt %s" % " ".join(MEMORY_TESTS), timeout=1200)
    for name in MEMORY_TESTS:
        assert "test %s: OK" % name in out, out
    assert "ALL TESTS PASSED" in out, out
    assert "usertests: %d passed, 0 failed, 0 skipped" % len(MEMORY_TESTS) in out
    check_ok(g)


def test_linux_mm_selftests(boot, user_disks):
    """All three pass, every check: mremap_test's 2 GiB MAP_SHARED regions
    too (address space only: no overcommit accounting here; Linux's
    heuristic refuses them in a small machine, see docs/user-programs.md);
    its three xfails are its expected failures (overlapping source and
    destination, a 1 KiB-aligned destination, a 1 KiB-aligned source)."""
    g = boot(drives=user_disks.drives)
    out = g.run("run /mnt/bin/map_fixed_noreplace", timeout=600)
    assert out.split("\n")[-1] == "OK", out
    assert "Error" not in out
    out = g.run("run /mnt/bin/mremap_dontunmap", timeout=600)
    assert out.split("\n")[-1] == "OK", out
    out = g.run("run /mnt/bin/mremap_test", timeout=1200)
    assert "# Totals: pass:11 fail:0 xfail:3 xpass:0 skip:0 error:0" in out, out
    for n in range(1, 15):
        assert re.search(r"^ok %d " % n, out, re.M), (n, out)
    assert "not ok" not in out
    for name in ("Source and Destination Regions Overlapping",
                 "Destination Address Misaligned (1KB-aligned)",
                 "Source Address Misaligned (1KB-aligned)"):
        assert "# XFAIL mremap - %s" % name in out
    assert "ok 14 mremap expand merge" in out
    check_ok(g)
    assert g.run("cat /proc/sys/vm/mmap_min_addr") == "65536"


def wait_footprint(g, pid, anon_kb, timeout=120):
    """The status of malloc100 once it has touched its pages (RssAnon
    reached anon_kb and stays)."""
    deadline = time.monotonic() + timeout
    prev = None
    while time.monotonic() < deadline:
        st = status(g, pid)
        if st.get("VmSize", 0) > 100 * 1024 and st.get("RssAnon", 0) >= anon_kb and st == prev:
            return st
        prev = st
        time.sleep(0.3)
    raise AssertionError("malloc100 did not settle: %s" % prev)


def test_malloc100_gets_pages_only_as_it_touches_them(boot, user_disks):
    g = boot(drives=user_disks.drives)
    pid0 = int(g.run("run /mnt/bin/malloc100 100 0 &").strip("[]"))
    idle = wait_footprint(g, pid0, 0)
    pid = int(g.run("run /mnt/bin/malloc100 100 10 &").strip("[]"))
    busy = wait_footprint(g, pid, 10 * 1024)
    for st in (idle, busy):
        assert st["VmSize"] >= 100 * 1024 and st["VmData"] >= 100 * 1024
    grew = busy["VmRSS"] - idle["VmRSS"]
    assert 10 * 1024 - 16 <= grew <= 10 * 1024 + 256, (idle, busy)   # about 10 MiB, not 100
    assert busy["RssAnon"] - idle["RssAnon"] == grew
    assert busy["RssFile"] == idle["RssFile"] > 0                      # the program's own pages
    maps = g.run("cat /proc/%d/maps" % pid).split("\n")
    assert any(l.endswith(" /mnt/bin/malloc100") and " r-xp " in l for l in maps), maps
    assert any(l.endswith(" [heap]") for l in maps) and any(l.endswith(" [stack]") for l in maps)
    text = [l for l in maps if " r-xp " in l][0].split()[0].split("-")
    assert busy["VmExe"] == (int(text[1], 16) - int(text[0], 16)) >> 10
    assert busy["VmLib"] == 0 and busy["VmStk"] >= 132
    statm = [int(x) for x in g.run("cat /proc/%d/statm" % pid).split()]
    assert statm[0] * 4 == busy["VmSize"] and statm[1] * 4 == busy["VmRSS"]
    assert statm[5] * 4 == busy["VmData"] + busy["VmStk"]
    smaps = g.run("cat /proc/%d/smaps" % pid)
    rss = sum(int(m) for m in re.findall(r"^Rss:\s+(\d+) kB$", smaps, re.M))
    assert rss == busy["VmRSS"]
    g.run("kill %d" % pid)
    g.run("kill %d" % pid0)
    check_ok(g)


def test_hostile_and_random_programs_leak_nothing(boot, user_disks):
    g = boot(drives=user_disks.drives)
    assert "mmstress hostile: OK" in g.run("run /mnt/bin/mmstress hostile", timeout=600)
    g.run("echo 3 > /proc/sys/vm/drop_caches")
    c0 = check_ok(g)
    before = meminfo(g)
    out = g.run("run /mnt/bin/mmstress hostile", timeout=600)
    assert re.search(r"^mmstress hostile: OK \(\d+ checks, 0 failed\)$", out, re.M), out
    for seed in (1, 2):
        out = g.run("run /mnt/bin/mmstress random 1500 %d" % seed, timeout=1200)
        assert "mmstress random: OK (1500 operations, seed %d)" % seed in out, out
    g.run("echo 3 > /proc/sys/vm/drop_caches")
    c1 = check_ok(g)
    after = meminfo(g)
    for name in ("AnonPages", "Shmem", "Mapped", "Dirty", "Writeback", "Cached", "SwapCached"):
        assert after[name] == before[name], (name, before[name], after[name])
    # every frame is where it was: free, or on the pcp list (census "anon":
    # MemFree does not count the pcp list's frames, as Linux's does not),
    # or kept by a slab cache (a few empty slabs may stay)
    for kind in ("pagetable", "pagecache", "kernel"):
        assert c1.get(kind, 0) == c0.get(kind, 0), (kind, c0, c1)
    assert c1["free"] + c1["anon"] + c1["slab"] == c0["free"] + c0["anon"] + c0["slab"], (c0, c1)
    assert c1["slab"] - c0["slab"] <= 4, (c0, c1)


def test_mremap_moves_cow_shared_pages_through_swap(boot, user_disks):
    """Two processes share 32 MiB copy-on-write in a 64 MiB machine with
    swap: each moves its copy twice with mremap while reclaim writes pages
    out and reads them back, and checks every page; `check` then finds
    every page's reverse-map word where its PTE is, and every swap slot
    free again."""
    g = boot(mem="64M", drives=user_disks.drives)
    assert "/dev/sdb" in g.run("cat /proc/swaps")                          # on at boot
    out = g.run("run /mnt/bin/mmstress swap 32", timeout=2400)
    assert "mmstress swap: OK (32 MiB, moved twice in two processes)" in out, out
    vm = {l.split()[0]: int(l.split()[1]) for l in g.run("cat /proc/vmstat").split("\n")}
    assert vm["pswpout"] > 1000 and vm["pswpin"] > 1000, vm               # it did swap
    check_ok(g)
    mi = meminfo(g)
    assert mi["SwapFree"] == mi["SwapTotal"] and mi["AnonPages"] == 0
