"""The OOM killer on the real machine (issue 6): a process touching more
memory than there is (no swap) is chosen and killed, the report lands in
the log like Linux's, every frame of the victim is free again (meminfo and
buddyinfo), the other processes' data is intact (checksums against the
host's), a process with oom_score_adj -1000 is never chosen although it is
the largest, another process can be the victim while the faulting one goes
on, and oom_score / oom_score_adj behave as typed."""

import re

from kernel_py.lib import csum

MiB = 1 << 20


def expected_memsum(a, n, seed):
    h = csum.FNV_OFFSET
    for va in range(a, a + n, 4096):
        h = csum.fold(h, csum.pattern_page_csum(csum.pattern_stamp(seed, va),
                                                csum.pattern_byte(seed, va)))
    return "0x%016x" % h


def meminfo(g):
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r"^(\S+?):\s+(\d+) kB$", g.run("cat /proc/meminfo"), re.M)}


def buddy_free_kb(g):
    total = 0
    for line in g.run("cat /proc/buddyinfo").split("\n"):
        counts = [int(x) for x in line.split()[4:]]
        total += sum(c << o for o, c in enumerate(counts)) * 4
    return total


def pids(g):
    return [int(l.split()[0]) for l in g.run("ps").split("\n")[1:] if not l.endswith("]")]


def patterned(g, name, size, seed):
    pid = int(g.run("spawn %s" % name))
    a = int(g.run("mmap %d %d" % (pid, size)), 16)
    g.run("pattern %d 0x%x %d %d" % (pid, a, size, seed))
    return pid, a


def test_oom_kills_the_hog_spares_the_protected_largest_and_frees_everything(boot):
    g = boot(mem="64M")
    keeper, ka = patterned(g, "keeper", 2 * MiB, 3)
    prot, pa = patterned(g, "protected", 20 * MiB, 4)
    assert g.run("echo -1000 > /proc/%d/oom_score_adj" % prot) == ""
    assert g.run("cat /proc/%d/oom_score_adj" % prot) == "-1000"
    assert g.run("cat /proc/%d/oom_score" % prot) == "0"
    assert 666 <= int(g.run("cat /proc/%d/oom_score" % keeper)) < 1333
    hog = int(g.run("spawn hog"))
    ha = int(g.run("mmap %d 64M" % hog), 16)
    g.run("touch %d 0x%x 4M w" % (hog, ha))              # the hog stays smaller than `protected`
    g.run("echo warm-up")                                 # (kswapd, lru batch: between commands)
    free0 = meminfo(g)["MemFree"]
    # the refused fault prints the platform's oops block for the accessor, then
    # the one error line of the command
    out = g.run("touch %d 0x%x 60M w" % (hog, ha + 4 * MiB), check=False, allow_oops=True,
                timeout=600)
    lines = out.split("\n")
    errs = [l for l in lines if l.startswith("error:")]
    assert len(errs) == 1 and re.match(r"error: ENOMEM: SIGBUS pid=%d addr=0x[0-9a-f]+ .*\(out of memory\)"
                                       % hog, errs[0]), out
    assert "hog invoked oom-killer: gfp_mask=0xcca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0" in lines
    i = lines.index("Tasks state (memory values in pages):")
    assert lines[i + 1] == "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"
    rows = {int(l[1:8]): l[9:].split() for l in lines[i + 2:] if l.startswith("[")}   # uid tgid total_vm rss ...
    assert set(rows) == {1, keeper, prot, hog}
    assert rows[prot][-2:] == ["-1000", "protected"]
    assert int(rows[prot][3]) > int(rows[hog][3])         # the protected one is the largest...
    killed = [l for l in lines if l.startswith("Out of memory: Killed process")]
    assert len(killed) == 1                               # ... and the hog is the one killed
    assert re.match(r"Out of memory: Killed process %d \(hog\) total-vm:\d+kB, anon-rss:\d+kB, "
                    r"file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:\d+kB oom_score_adj:0$" % hog, killed[0])
    assert "oom_reaper: reaped process %d (hog), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB" % hog in lines
    assert killed[0] in [l.split("] ", 1)[1] for l in g.run("dmesg").split("\n")]
    assert pids(g) == [1, keeper, prot]
    assert re.search(r"^oom_kill 1$", g.run("cat /proc/vmstat"), re.M)
    # every frame of the hog is back: free memory as before it grew (within the
    # per-CPU lists' batch), and the buddy's free lists agree with meminfo
    free1 = meminfo(g)["MemFree"]
    assert free1 >= free0 - 256, (free0, free1)
    assert buddy_free_kb(g) == free1
    # the others' data is intact
    assert g.run("memsum %d 0x%x %d" % (keeper, ka, 2 * MiB)).split()[1] == expected_memsum(ka, 2 * MiB, 3)
    assert g.run("memsum %d 0x%x %d" % (prot, pa, 20 * MiB)).split()[1] == expected_memsum(pa, 20 * MiB, 4)
    g.run("kill %d" % keeper)
    g.run("kill %d" % prot)


def test_the_victim_can_be_another_process_and_the_fault_goes_on(boot):
    g = boot(mem="64M")
    idle, ia = patterned(g, "idle", 24 * MiB, 8)
    keep, ka = patterned(g, "keep", 1 * MiB, 9)
    small = int(g.run("spawn small"))
    sa = int(g.run("mmap %d 16M" % small), 16)
    out = g.run("touch %d 0x%x 16M w" % (small, sa), timeout=600)
    lines = out.split("\n")
    assert lines[-1] == "touched 4096 pages, 4096 faults"
    assert any(re.match(r"Out of memory: Killed process %d \(idle\)" % idle, l) for l in lines)
    assert idle not in pids(g) and small in pids(g)
    assert g.run("memsum %d 0x%x %d" % (keep, ka, MiB)).split()[1] == expected_memsum(ka, MiB, 9)


def test_oom_score_adj_as_typed(guest):
    assert guest.run("echo -1000 > /proc/1/oom_score_adj") == ""
    assert guest.run("cat /proc/1/oom_score_adj") == "-1000"
    pid = int(guest.run("spawn adj"))
    for bad in ("1001", "-1001", "many"):
        assert guest.run_expect_error("echo %s > /proc/%d/oom_score_adj" % (bad, pid)).startswith("error: EINVAL")
    assert guest.run("cat /proc/%d/oom_score_adj" % pid) == "0"
    s0 = int(guest.run("cat /proc/%d/oom_score" % pid))
    assert 666 <= s0 <= 670                                   # Linux: (1000 + ~0) * 2 / 3
    guest.run("echo 1000 > /proc/%d/oom_score_adj" % pid)
    mi = meminfo(guest)
    total = (mi["MemTotal"] + mi["SwapTotal"]) // 4          # totalpages
    badness = 1000 * (total // 1000)                          # adj * (totalpages / 1000), rss 0
    assert int(guest.run("cat /proc/%d/oom_score" % pid)) == (1000 + badness * 1000 // total) * 2 // 3
    guest.run("echo 0 > /proc/1/oom_score_adj")
    guest.run("kill %d" % pid)
