"""The swap cache on the simulated machine: a page read back from swap
keeps its slot (meminfo SwapCached), goes out again without a write while
clean, is written again (to the same slot) once dirtied, is shared by the
processes fork left holding its swap entry (one read, copy-on-write
after), leaves the cache when it is freed, reused for a write, or swapped
off; mmcheck verifies the slot counts, flags and both directions of the
cache after each step."""

from kernel_py.lib import csum

from mmcheck import check_all
from swapsupport import MiB, boot, meminfo, run, vmstat
from test_swap import expected, fill, memsum, swapped_va


def start(size, seed):
    """(k, sh, conservation baseline, pid, addr, length): a machine whose
    swap stays under half full, and a process with `size` of pattern."""
    k, sh = boot(mem=24 * MiB, swap=64 * MiB)
    base = check_all(k)
    pid = int(run(sh, "spawn p"))
    a, n = fill(sh, pid, size, seed=seed)
    return k, sh, base, pid, a, n


def reclaim_all(sh):
    """Proactive reclaim of everything it can (EAGAIN: less than asked, as Linux)."""
    out = sh.execute("echo 64M > /sys/fs/cgroup/memory.reclaim")
    assert out == "" or out.startswith("error: EAGAIN"), out


def test_clean_pages_go_out_again_without_a_write():
    k, sh, base, pid, a, n = start("32M", 11)          # more than RAM
    assert memsum(sh, pid, a, n)[0] == expected(a, n, 11)   # every page read back
    assert meminfo(sh)["SwapCached"] > 0
    check_all(k, base)
    v1 = vmstat(sh)
    h, info = memsum(sh, pid, a, n)                     # again: out and in once more
    v2 = vmstat(sh)
    assert h == expected(a, n, 11)
    swapped_in = v2["pswpin"] - v1["pswpin"]
    assert swapped_in > 2000
    assert v2["swapcache_reuse"] - v1["swapcache_reuse"] > swapped_in // 2
    assert v2["pswpout"] - v1["pswpout"] < swapped_in // 10     # almost nothing rewritten
    check_all(k, base)
    run(sh, "kill %d" % pid)
    mi = meminfo(sh)
    assert mi["SwapCached"] == 0 and mi["SwapFree"] == mi["SwapTotal"]
    check_all(k, base)


def test_dirtied_pages_are_written_again_to_their_slot():
    k, sh, base, pid, a, n = start("32M", 5)
    memsum(sh, pid, a, n)                               # into the swap cache
    run(sh, "pattern %d 0x%x %d 6" % (pid, a, n))       # every page dirtied
    check_all(k, base)
    assert memsum(sh, pid, a, n)[0] == expected(a, n, 6)   # nothing stale came back
    check_all(k, base)
    run(sh, "kill %d" % pid)
    check_all(k, base)


def test_fork_shares_one_page_read_once():
    k, sh, base, p, a, n = start("4M", 3)
    reclaim_all(sh)
    va, e = swapped_va(k, p)
    assert va is not None
    c = int(run(sh, "fork %d" % p))
    assert k.swap.count(e) == 2
    stamp = csum.pattern_stamp(3, va).to_bytes(8, "little")
    v0 = vmstat(sh)
    assert bytes.fromhex(run(sh, "read %d 0x%x 8" % (p, va)).replace(" ", "")) == stamp
    v1 = vmstat(sh)
    assert v1["pswpin"] == v0["pswpin"] + 1 and v1["pgmajfault"] == v0["pgmajfault"] + 1
    pp = k.procs.tasks[p].mm.pte(va)
    assert not pp & 2                                   # the slot has another user: read-only
    assert meminfo(sh)["SwapCached"] == 4
    assert bytes.fromhex(run(sh, "read %d 0x%x 8" % (c, va)).replace(" ", "")) == stamp
    v2 = vmstat(sh)
    assert v2["pswpin"] == v1["pswpin"]                 # from the swap cache: no read
    assert v2["pgmajfault"] == v1["pgmajfault"] and v2["swapcache_find"] == v1["swapcache_find"] + 1
    cp = k.procs.tasks[c].mm.pte(va)
    assert cp & ~0xFFF & ((1 << 52) - 1) == pp & ~0xFFF & ((1 << 52) - 1)   # one frame for both
    check_all(k, base)
    run(sh, "write %d 0x%x 6b7079" % (c, va))           # copy-on-write: the parent keeps its data
    assert bytes.fromhex(run(sh, "read %d 0x%x 8" % (p, va)).replace(" ", "")) == stamp
    run(sh, "write %d 0x%x 706172" % (p, va))           # now exclusive: reused, out of the cache
    assert meminfo(sh)["SwapCached"] == 0
    check_all(k, base)
    reclaim_all(sh)                                      # both written out again, fresh slots
    assert run(sh, "read %d 0x%x 3" % (p, va)) == "70 61 72"
    assert run(sh, "read %d 0x%x 3" % (c, va)) == "6b 70 79"
    check_all(k, base)
    run(sh, "kill %d; kill %d" % (c, p))
    check_all(k, base)
    assert meminfo(sh)["SwapFree"] == meminfo(sh)["SwapTotal"]


def test_swapoff_and_a_full_swap_keep_no_cache():
    k, sh, base, pid, a, n = start("8M", 9)
    reclaim_all(sh)
    memsum(sh, pid, a, n)
    assert meminfo(sh)["SwapCached"] > 1000
    used = meminfo(sh)["SwapTotal"] - meminfo(sh)["SwapFree"]
    assert used >= meminfo(sh)["SwapCached"]             # cached slots are not free (as Linux)
    run(sh, "swapoff /dev/sdb")
    assert meminfo(sh)["SwapCached"] == 0
    check_all(k, base)
    assert memsum(sh, pid, a, n)[0] == expected(a, n, 9)
    run(sh, "kill %d" % pid)
    check_all(k, base)
    k2, sh2 = boot(mem=24 * MiB, swap=16 * MiB)          # 32M through 16M of swap: over half full
    p2 = int(run(sh2, "spawn f"))
    a2, n2 = fill(sh2, p2, "28M", seed=2)
    assert memsum(sh2, p2, a2, n2)[0] == expected(a2, n2, 2)
    assert k2.swapcache.nr < 1024                      # vm_swap_full: swapped-in pages let go
    check_all(k2)


def test_a_store_survives_prot_none_and_reclaim():
    """The dirty bit of a swap-cached page outlives mprotect(PROT_NONE) and
    back, so reclaim writes the page instead of trusting the stale copy."""
    k, sh, base, pid, a, n = start("2M", 4)
    reclaim_all(sh)
    memsum(sh, pid, a, n)                               # back, in the swap cache, clean
    assert k.swapcache.nr >= 400
    run(sh, "write %d 0x%x 4b5059" % (pid, a + 8192))   # dirtied (exclusive: mapped writable)
    run(sh, "mprotect %d 0x%x %d none" % (pid, a, n))
    run(sh, "mprotect %d 0x%x %d rw" % (pid, a, n))
    check_all(k, base)
    v0 = vmstat(sh)
    reclaim_all(sh)
    v1 = vmstat(sh)
    assert v1["pswpout"] - v0["pswpout"] >= 1           # that page, at least, written again
    assert v1["swapcache_reuse"] - v0["swapcache_reuse"] >= 400
    assert run(sh, "read %d 0x%x 3" % (pid, a + 8192)) == "4b 50 59"
    run(sh, "write %d 0x%x %s" % (pid, a + 8192, csum.pattern_stamp(4, a + 8192).to_bytes(8, "little")[:3].hex()))
    assert memsum(sh, pid, a, n)[0] == expected(a, n, 4)
    check_all(k, base)
