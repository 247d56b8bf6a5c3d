"""Reclaim on the simulated machine: get_scan_count's balance and ratios
(table-driven against Linux's formula), swappiness steering anon vs file
scanning in a real reclaim, LRU ageing through the PTE accessed bit (hot
pages stay resident, cold ones are swapped), direct reclaim in the
allocation slow path, and kswapd between commands from the low to the
high watermark."""

import pytest

from kernel_py.mm.types import is_swap_pte
from kernel_py.mm.reclaim.vmscan import (
    SCAN_ANON, SCAN_EQUAL, SCAN_FILE, SCAN_FRACT, get_scan_count, inactive_is_low, scan_balance,
)
from kernel_py.arch.x86.cpu import _PAGE_ACCESSED, _PAGE_PRESENT

from fssupport import make_fat, needs_mkfs
from mmcheck import check_all
from swapsupport import MiB, boot, run, vmstat


def linux_fraction(swappiness, anon_cost, file_cost):
    """mm/vmscan.c, prepare/get_scan_count (SCAN_FRACT), line by line."""
    total_cost = anon_cost + file_cost
    anon_cost = total_cost + anon_cost
    file_cost = total_cost + file_cost
    total_cost = anon_cost + file_cost
    ap = swappiness * (total_cost + 1)
    ap //= anon_cost + 1
    fp = (200 - swappiness) * (total_cost + 1)
    fp //= file_cost + 1
    return ap, fp


@pytest.mark.parametrize("swappiness", [0, 1, 10, 60, 100, 140, 199, 200])
@pytest.mark.parametrize("priority", [0, 1, 4, 12])
def test_scan_counts_follow_swappiness(swappiness, priority):
    sizes = [8192, 4096, 16384, 2048]
    nr = get_scan_count(swappiness, sizes, priority)
    if priority == 0 and swappiness:
        assert nr == sizes                                   # SCAN_EQUAL
        return
    ap, fp = linux_fraction(swappiness, 0, 0)
    assert (ap, fp) == (swappiness, 200 - swappiness)        # equal costs: anon_prio, file_prio
    want = [(s >> priority) * (fp if i >= 2 else ap) // (ap + fp) for i, s in enumerate(sizes)]
    assert nr == want


@pytest.mark.parametrize("costs", [(0, 0), (10, 0), (0, 10), (100, 37), (5, 500)])
def test_recent_costs_shift_the_fraction_as_linux(costs):
    sizes = [10000, 0, 10000, 0]
    nr = get_scan_count(60, sizes, 0 + 1, anon_cost=costs[0], file_cost=costs[1])
    ap, fp = linux_fraction(60, *costs)
    assert nr[0] == (10000 >> 1) * ap // (ap + fp)
    assert nr[2] == (10000 >> 1) * fp // (ap + fp)


def test_scan_balance_cases():
    assert scan_balance(60, False, 5, False) == SCAN_FILE        # no swap: anon never scanned
    assert get_scan_count(200, [1000, 1000, 1000, 1000], 0, can_swap=False)[:2] == [0, 0]
    assert scan_balance(60, True, 0, False) == SCAN_EQUAL
    assert scan_balance(0, True, 0, False) == SCAN_FRACT         # swappiness 0: no equal pass
    assert get_scan_count(0, [1000, 1000, 1000, 1000], 0)[:2] == [0, 0]
    assert scan_balance(60, True, 3, True) == SCAN_ANON          # file is tiny
    assert get_scan_count(60, [1000, 1000, 1000, 1000], 3, file_is_tiny=True)[2:] == [0, 0]


def test_inactive_is_low():
    assert inactive_is_low(10, 11) and not inactive_is_low(11, 11)
    gb = 1 << 18                                                  # pages in 1 GiB
    assert not inactive_is_low(gb // 3 + 1, gb)                   # ratio int_sqrt(10 * 1) = 3
    assert inactive_is_low(gb // 3 - 1, gb)
    assert not inactive_is_low(gb // 3, gb // 3) and inactive_is_low(gb // 3 - 1, gb // 3)  # < 1 GiB: ratio 1


def ptes_of(k, pid, a, n):
    mm = k.procs.tasks[pid].mm
    return [mm.pte(va) for va in range(a, a + n, 4096)]


def test_lru_ageing_keeps_hot_pages_and_swaps_cold_ones():
    k, sh = boot(mem=24 * MiB, swap=16 * MiB)
    base = check_all(k)
    pid = int(run(sh, "spawn age"))
    a = int(run(sh, "mmap %d 8M" % pid), 16)
    run(sh, "touch %d 0x%x 8M w" % (pid, a))
    hot = (a, 512 * 4096)                                    # the first 2 MiB
    for _ in range(5):                                       # 5 x 256 pages: fewer than the cold ones
        run(sh, "touch %d 0x%x %d r" % (pid, hot[0], hot[1]))   # sets the accessed bits
        run(sh, "echo 1M > /sys/fs/cgroup/memory.reclaim")
    hot_ptes = ptes_of(k, pid, a, hot[1])
    cold_ptes = ptes_of(k, pid, a + hot[1], 8 * MiB - hot[1])
    assert all(e & _PAGE_PRESENT for e in hot_ptes)
    swapped = sum(1 for e in cold_ptes if is_swap_pte(e))
    v = vmstat(sh)
    # the first round sees every page just written (all referenced): what it
    # frees may be hot and comes back at the next touch; after that only
    # cold pages go
    assert swapped >= 4 * 256
    assert v["pswpin"] <= 256 and v["pswpout"] >= 5 * 256
    assert v["pgactivate_anon"] >= 2048 and v["pgdeactivate_anon"] > 0
    check_all(k, base)


def test_accessed_bit_is_cleared_when_a_page_is_deactivated():
    k, sh = boot(mem=24 * MiB, swap=16 * MiB)
    pid = int(run(sh, "spawn a"))
    a = int(run(sh, "mmap %d 1M" % pid), 16)
    run(sh, "touch %d 0x%x 1M w" % (pid, a))
    assert all(e & _PAGE_ACCESSED for e in ptes_of(k, pid, a, MiB))
    vm = k.vmscan
    k.anon.drain()
    from kernel_py.mm.reclaim.vmscan import ScanControl
    vm.shrink_inactive_anon(ScanControl(1000, True, False), 256)     # referenced: activated
    assert k.anon.active.n == 256 and k.anon.inactive.n == 0
    assert all(not e & _PAGE_ACCESSED for e in ptes_of(k, pid, a, MiB))   # test-and-clear
    vm.shrink_active_anon(256)
    assert k.anon.inactive.n == 256
    run(sh, "touch %d 0x%x 4096 r" % (pid, a + 4096 * 10))           # one page used again
    got = vm.shrink_inactive_anon(ScanControl(1000, True, False), 256)
    assert got == 255 and k.anon.active.n == 1
    assert ptes_of(k, pid, a + 4096 * 10, 4096)[0] & _PAGE_PRESENT


def test_direct_reclaim_in_the_allocation_slow_path():
    k, sh = boot(mem=24 * MiB, swap=32 * MiB)
    v0 = vmstat(sh)
    pid = int(run(sh, "spawn d"))
    a = int(run(sh, "mmap %d 32M" % pid), 16)
    run(sh, "touch %d 0x%x 32M w" % (pid, a))                # more than RAM
    v1 = vmstat(sh)
    assert v1["allocstall_normal"] > v0["allocstall_normal"]
    assert v1["pgscan_direct"] > 0 and v1["pgsteal_direct"] > 0
    assert v1["pswpout"] >= v1["pgsteal_anon"] > 0


def test_kswapd_runs_between_commands_from_low_to_high_watermark():
    k, sh = boot(mem=24 * MiB, swap=32 * MiB)
    z = k.vmscan.user_zone()
    pid = int(run(sh, "spawn k"))
    a = int(run(sh, "mmap %d 32M" % pid), 16)
    hw = k.hw
    # the faults alone (no console command in between) leave the zone low
    k.procs.run_in(k.procs.tasks[pid], hw.vfill, a, 1, 32 * MiB)
    assert z.free_pages < z.high_wmark() and k.vmscan.kswapd_woken
    w0 = vmstat(sh)["kswapd_wakeups"]                        # this command ends with kswapd
    assert z.free_pages >= z.high_wmark()
    v = vmstat(sh)
    assert v["kswapd_wakeups"] == w0 + 0 or v["kswapd_wakeups"] >= 1
    assert v["pgscan_kswapd"] > 0 and v["pgsteal_kswapd"] > 0
    run(sh, "echo idle")
    assert vmstat(sh)["kswapd_wakeups"] == v["kswapd_wakeups"]   # balanced: not woken again


@needs_mkfs
@pytest.mark.parametrize("swappiness, more", [(10, "file"), (190, "anon")])
def test_swappiness_steers_anon_vs_file(tmp_path, swappiness, more):
    from kernel_py.kernel.kernel import Kernel
    from kernel_py.shell.shell import Shell
    from kernel_py.sim.ata import attach_ide
    from kernel_py.sim.machine import Machine
    img = make_fat(tmp_path / "data.img", 32, 16, spc=4)
    hw = Machine(32 * MiB, "", console=lambda t: None)
    hw.ide = attach_ide(hw, [str(img), bytearray(32 * MiB)])
    k = Kernel(hw, console=lambda m: None)
    k.boot()
    sh = Shell(k)
    run(sh, "mkswap /dev/sdb; swapon /dev/sdb")
    run(sh, "fill /mnt/f.bin 6M; sync")                      # file pages, clean after sync
    pid = int(run(sh, "spawn s"))
    a = int(run(sh, "mmap %d 6M" % pid), 16)
    run(sh, "touch %d 0x%x 6M w" % (pid, a))
    run(sh, "echo 1 > /sys/fs/cgroup/memory.reclaim")        # age both: first touches
    run(sh, "sysctl vm.swappiness=%d" % swappiness)
    v0 = vmstat(sh)
    run(sh, "echo 2M > /sys/fs/cgroup/memory.reclaim")
    v1 = vmstat(sh)
    anon = v1["pgscan_anon"] - v0["pgscan_anon"]
    file = v1["pgscan_file"] - v0["pgscan_file"]
    if more == "file":
        assert file > 3 * anon, (anon, file)
    else:
        assert anon > 2 * file, (anon, file)
    # one pass at priority 2 scans exactly what get_scan_count says
    from kernel_py.mm.reclaim.vmscan import ScanControl
    run(sh, "touch %d 0x%x 6M w" % (pid, a))
    run(sh, "sha256sum /mnt/f.bin")                          # the file back in the cache
    vm = k.vmscan
    k.anon.drain()
    sizes = vm.lru_sizes()
    assert sizes[0] + sizes[1] > 1000 and sizes[2] + sizes[3] > 1000
    nr = get_scan_count(swappiness, sizes, 2, True, vm.file_is_tiny(sizes))
    s0, f0 = vm.pgscan_anon, k.pagecache.pgscan
    vm.shrink_lruvec(list(nr), ScanControl(1 << 20, True, False))
    assert vm.pgscan_anon - s0 == min(nr[0], sizes[0])
    assert k.pagecache.pgscan - f0 == min(nr[2], sizes[2])
    assert (nr[0] > nr[2]) == (swappiness > 100)
    k.hw.ide.close() if hasattr(k.hw.ide, "close") else None
