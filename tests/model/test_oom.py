"""The OOM killer on the simulated machine: Linux's oom_badness and
proc_oom_score table-driven, victim selection (largest by badness, never
oom_score_adj -1000 nor init, ties to the later task), the kill in the
page-fault path (ENOMEM/SIGBUS for the faulting process when it is the
victim) and outside it (another process is torn down at once and the
allocation succeeds), the report, every frame and swap slot of the victim
back, the other processes' data intact, and oom_score_adj as typed."""

import re

import pytest

from kernel_py.arch.x86 import entry
from kernel_py.kernel import signal as sig
from kernel_py.kernel.exit import do_exit
from kernel_py.mm.reclaim.oom_kill import c_div, oom_badness, oom_score
from kernel_py.mm.vm.fault import SegvInfo

from mmcheck import check_all
from swapsupport import MiB, boot, err, meminfo, run, status, vmstat
from usersupport import UserBox


# (rss, swapents, pgtables, adj, totalpages) -> points, worked out by hand
# from mm/oom_kill.c: points = rss + swapents + pgtables; adj *= totalpages / 1000
BADNESS = [
    ((1000, 0, 3, 0, 100000), 1003),
    ((1000, 500, 3, 0, 100000), 1503),
    ((1000, 0, 3, 500, 100000), 1003 + 500 * 100),
    ((1000, 0, 3, -500, 100000), 1003 - 500 * 100),
    ((0, 0, 0, 1000, 100000), 100000),
    ((5000, 0, 10, -999, 100000), 5010 - 999 * 100),
    ((10, 0, 1, 7, 1999), 11 + 7 * 1),             # totalpages / 1000 truncates: 1
    ((10, 0, 1, 7, 999), 11),                      # ... to 0
    ((123, 45, 6, -1000, 100000), None),           # OOM_SCORE_ADJ_MIN: LONG_MIN
]


@pytest.mark.parametrize("args, points", BADNESS)
def test_oom_badness_table(args, points):
    assert oom_badness(*args) == points


# badness, totalpages -> /proc/<pid>/oom_score: (1000 + b * 1000 / total) * 2 / 3, C division
SCORES = [
    ((0, 10000), 666), ((10000, 10000), 1333), ((20000, 10000), 2000),
    ((5000, 10000), 1000), ((-10000, 10000), 0), ((-9990, 10000), 0),
    ((-9000, 10000), 66), ((1, 3), 888), ((-1, 3), 444), ((None, 10000), 0),
]


@pytest.mark.parametrize("args, score", SCORES)
def test_oom_score_table(args, score):
    assert oom_score(*args) == score


def test_c_division_truncates_towards_zero():
    assert c_div(-7, 2) == -3 and c_div(7, 2) == 3 and c_div(-1, 3) == 0 and c_div(7, -2) == -3


def spawn_with(sh, name, size, seed=None):
    pid = int(run(sh, "spawn %s" % name))
    a = int(run(sh, "mmap %d %s" % (pid, size)), 16)
    n = int(size[:-1]) << 20
    if seed is None:
        run(sh, "touch %d 0x%x %d w" % (pid, a, n))
    else:
        run(sh, "pattern %d 0x%x %d %d" % (pid, a, n, seed))
    return pid, a, n


def test_proc_oom_score_matches_linux_formula():
    k, sh = boot(mem=24 * MiB, swap=8 * MiB)
    pid, a, n = spawn_with(sh, "p", "4M")
    total = k.buddy.managed_pages() + k.swap.total_swap_pages
    st = status(sh, pid)
    b = st["VmRSS"] // 4 + st["VmSwap"] // 4 + st["VmPTE"] // 4
    assert run(sh, "cat /proc/%d/oom_score" % pid) == "%d" % ((1000 + b * 1000 // total) * 2 // 3)
    for adj in (-1000, -500, 0, 300, 1000):
        run(sh, "echo %d > /proc/%d/oom_score_adj" % (adj, pid))
        assert run(sh, "cat /proc/%d/oom_score_adj" % pid) == "%d" % adj
        want = oom_score(oom_badness(b, 0, 0, adj, total), total)
        assert run(sh, "cat /proc/%d/oom_score" % pid) == "%d" % want
    assert run(sh, "cat /proc/1/oom_score") == "0"           # init: unkillable


def test_oom_score_adj_as_typed_and_bad_values():
    k, sh = boot(mem=24 * MiB, swap=0)
    assert run(sh, "echo -1000 > /proc/1/oom_score_adj") == ""
    assert run(sh, "cat /proc/1/oom_score_adj") == "-1000"
    pid = int(run(sh, "spawn p"))
    for bad in ("1001", "-1001", "abc", "", "1.5"):
        line = err(sh, "echo %s > /proc/%d/oom_score_adj" % (bad, pid))
        assert line.startswith("error: EINVAL"), line
    assert run(sh, "cat /proc/%d/oom_score_adj" % pid) == "0"
    run(sh, "echo 500 > /proc/%d/oom_score_adj" % pid)
    c = int(run(sh, "fork %d" % pid))
    assert run(sh, "cat /proc/%d/oom_score_adj" % c) == "500"     # inherited
    assert err(sh, "cat /proc/99/oom_score_adj").startswith("error: ENOENT")


def dmesg_since(k, n0):
    return k.log[n0:]


def test_oom_in_the_fault_path_kills_the_hog_frees_everything_keeps_others():
    k, sh = boot(mem=24 * MiB, swap=0)
    base = check_all(k)
    keeper, ka, kn = spawn_with(sh, "keeper", "3M", seed=9)
    prot, pa_, pn = spawn_with(sh, "protected", "8M", seed=4)
    run(sh, "echo -1000 > /proc/%d/oom_score_adj" % prot)
    ksum = run(sh, "memsum %d 0x%x %d" % (keeper, ka, kn)).split()[1]
    psum = run(sh, "memsum %d 0x%x %d" % (prot, pa_, pn)).split()[1]
    k.pcp.drain()
    free0 = k.buddy.nr_free_pages()
    hog = int(run(sh, "spawn hog"))
    ha = int(run(sh, "mmap %d 64M" % hog), 16)
    n0 = len(k.log)
    out = sh.execute("touch %d 0x%x 64M w" % (hog, ha))
    assert re.match(r"error: ENOMEM: SIGBUS pid=%d addr=0x[0-9a-f]+ .*\(out of memory\)" % hog, out), out
    assert hog not in k.pids() and keeper in k.pids() and prot in k.pids()
    log = dmesg_since(k, n0)
    assert log[0] == "hog invoked oom-killer: gfp_mask=0xcca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0"
    i = log.index("Tasks state (memory values in pages):")
    assert log[i + 1] == "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"
    rows = [l for l in log[i + 2:] if l.startswith("[")]
    assert [int(r[1:8]) for r in rows] == [1, keeper, prot, hog]
    assert rows[2].split()[-2:] == ["-1000", "protected"]
    killed = [l for l in log if l.startswith("Out of memory: Killed process")]
    assert len(killed) == 1
    assert re.match(r"Out of memory: Killed process %d \(hog\) total-vm:\d+kB, anon-rss:\d+kB, "
                    r"file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:\d+kB oom_score_adj:0$" % hog, killed[0])
    assert "oom_reaper: reaped process %d (hog), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB" % hog in log
    assert vmstat(sh)["oom_kill"] == 1
    k.pcp.drain()
    assert k.buddy.nr_free_pages() == free0                  # every frame of the hog is back
    check_all(k, base)
    assert run(sh, "memsum %d 0x%x %d" % (keeper, ka, kn)).split()[1] == ksum
    assert run(sh, "memsum %d 0x%x %d" % (prot, pa_, pn)).split()[1] == psum


def test_protected_process_is_never_chosen_even_when_largest():
    k, sh = boot(mem=24 * MiB, swap=0)
    base = check_all(k)
    big, ba, bn = spawn_with(sh, "big", "12M", seed=1)
    run(sh, "echo -1000 > /proc/%d/oom_score_adj" % big)
    small, sa, sn = spawn_with(sh, "small", "2M", seed=2)
    bsum = run(sh, "memsum %d 0x%x %d" % (big, ba, bn)).split()[1]
    hog = int(run(sh, "spawn hog"))
    ha = int(run(sh, "mmap %d 32M" % hog), 16)
    run(sh, "touch %d 0x%x 1M w" % (hog, ha))              # smaller than big, larger than small
    out = sh.execute("touch %d 0x%x 32M w" % (hog, ha + MiB))
    assert "ENOMEM" in out
    assert big in k.pids()
    assert k.oom.last_victim == (hog, "hog")
    assert run(sh, "memsum %d 0x%x %d" % (big, ba, bn)).split()[1] == bsum
    check_all(k, base)


def test_victim_other_than_the_faulting_process_dies_at_once_and_the_fault_succeeds():
    k, sh = boot(mem=24 * MiB, swap=0)
    base = check_all(k)
    idle, ia, inn = spawn_with(sh, "idle", "14M")
    small = int(run(sh, "spawn small"))
    sa = int(run(sh, "mmap %d 8M" % small), 16)
    out = run(sh, "touch %d 0x%x 8M w" % (small, sa))       # succeeds: idle is killed for it
    assert out == "touched 2048 pages, 2048 faults"
    assert idle not in k.pids() and small in k.pids()
    assert k.oom.last_victim == (idle, "idle")
    check_all(k, base)


def test_ties_go_to_the_later_task_and_adj_1000_is_chosen_first():
    k, sh = boot(mem=24 * MiB, swap=0)
    a = spawn_with(sh, "a", "4M")[0]
    b = spawn_with(sh, "b", "4M")[0]
    victim, points = k.oom.select_bad_process()
    assert victim.pid == b
    c = int(run(sh, "spawn c"))
    run(sh, "echo 1000 > /proc/%d/oom_score_adj" % c)
    assert k.oom.select_bad_process()[0].pid == c
    run(sh, "echo -1000 > /proc/%d/oom_score_adj; echo -1000 > /proc/%d/oom_score_adj; "
            "echo -1000 > /proc/%d/oom_score_adj" % (a, b, c))
    assert k.oom.select_bad_process()[0] is None             # init is never chosen


def test_no_killable_process_fails_the_allocation_and_the_kernel_goes_on():
    k, sh = boot(mem=24 * MiB, swap=0)
    a = int(run(sh, "mmap 1 64M"), 16)
    n0 = len(k.log)
    out = sh.execute("touch 1 0x%x 64M w" % a)
    assert out.startswith("error: ENOMEM: SIGBUS pid=1 ")
    assert "Out of memory and no killable processes..." in k.log[n0:]
    assert 1 in k.pids()
    run(sh, "munmap 1 0x%x 64M" % a)
    assert run(sh, "echo alive") == "alive"


def test_oom_with_swap_full_frees_the_victims_slots():
    k, sh = boot(mem=24 * MiB, swap=8 * MiB)
    base = check_all(k)
    keep, ka, kn = spawn_with(sh, "keep", "4M", seed=5)
    ksum = run(sh, "memsum %d 0x%x %d" % (keep, ka, kn)).split()[1]
    hog = int(run(sh, "spawn hog"))
    ha = int(run(sh, "mmap %d 48M" % hog), 16)
    out = sh.execute("touch %d 0x%x 48M w" % (hog, ha))
    assert "ENOMEM: SIGBUS" in out
    assert hog not in k.pids()
    mi = meminfo(sh)
    assert mi["SwapFree"] == mi["SwapTotal"] - status(sh, keep)["VmSwap"]
    assert vmstat(sh)["pswpout"] > 1000
    check_all(k, base)
    assert run(sh, "memsum %d 0x%x %d" % (keep, ka, kn)).split()[1] == ksum


def test_a_ring3_task_chosen_while_its_own_fault_is_served_gets_sigkill():
    """The victim is the program whose #PF asked for the memory: it cannot
    be torn down under its own fault, so it is marked and sent SIGKILL
    (__oom_kill_process); its fault then fails ("out of memory") and the
    entry code returns to the pending SIGKILL instead of retrying for ever.
    Its exit ends the mark, so the killer may choose again."""
    b = UserBox()
    k = b.k
    t = b.new_task("hog")
    k.fault.last_segv = SegvInfo(t.pid, t.buf, 6, 0x401000, "out of memory")
    entry.user_fault(k, t)                      # someone else was the victim: retry
    assert not t.pending
    t.oom_score_adj = 1000                      # the one the killer chooses
    k.procs.use_task(t)                         # serving t's own fault: t is busy
    assert k.procs.is_busy(t)
    assert k.oom.out_of_memory(0, 0) == 0       # marked, not torn down
    assert t.oom_pending and t.mm is not None
    entry.user_fault(k, t)
    assert t.pending & sig.sigbit(sig.SIGKILL)
    assert sig.do_signal(k, t) == sig.SIGKILL
    do_exit(k, t, sig.SIGKILL)
    assert not t.oom_pending and t.mm is None


def test_a_victim_killed_from_another_tasks_fault_leaves_that_task_loaded():
    """The OOM killer runs inside the faulting task's #PF and tears another
    program down at once; that exit writes the victim's clear_child_tid
    word (set_tid_address, which glibc's start-up calls) in the victim's
    address space. The faulting task's tables and mm must be the loaded
    ones again afterwards, or its retried access faults with no mm and
    becomes a SIGSEGV (seen in the guest: the runaway hog died of a
    segfault on its own text right after the volunteer's OOM kill)."""
    b = UserBox()
    k = b.k
    victim = b.new_task("volunteer")
    victim.clear_child_tid = victim.buf
    victim.oom_score_adj = 1000
    hog = b.new_task("hog")
    k.procs.use_task(hog)                       # serving hog's #PF
    assert k.oom.out_of_memory(0, 0) > 0        # the volunteer, torn down now
    assert victim.mm is None
    assert k.procs.current is hog and k.procs.cur_mm is hog.mm
    assert k.hw.read_cr3() & ~0xFFF == hog.mm.pgd
