"""Swap on the simulated machine: the swap-entry encoding (Linux's x86-64
__swp_entry, checked bit by bit and against the host page walker), the
swap header (mkswap, and the host's own mkswap when present), /proc/swaps,
swap-out and swap-in keeping the data (checksums computed independently
on the host), fork/exit/munmap/mprotect with swap entries, and the
counters in status, smaps, meminfo, vmstat, free and vmstat(8)."""

import os
import shutil
import subprocess

import pytest

from kernel_py.lib.errors import KernelError
from kernel_py.lib import csum
from kernel_py.mm.reclaim.swapfile import MAGIC
from kernel_py.mm.types import SWP_OFFSET_MASK, is_swap_pte, swp_entry, swp_offset, swp_type
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_PRESENT
from kpyqemu.walker import PageWalker

from mmcheck import check_all
from swapsupport import MiB, boot, err, meminfo, run, status, vmstat

MASK64 = (1 << 64) - 1


def linux_swp_entry(type_, offset):
    """The C macro, literally: (~offset << SWP_OFFSET_SHIFT >> SWP_TYPE_BITS)
    | (type << (64 - SWP_TYPE_BITS)), in unsigned 64-bit arithmetic."""
    return (((~offset & MASK64) << 14) & MASK64) >> 5 | (type_ << 59)


def linux_swp_offset(val):
    return ((~val & MASK64) << 5 & MASK64) >> 14


@pytest.mark.parametrize("type_, offset", [
    (0, 0), (0, 1), (0, 2), (0, 0x1234), (0, 65535), (0, SWP_OFFSET_MASK),
    (1, 7), (31, 1), (31, SWP_OFFSET_MASK), (5, 1 << 40),
])
def test_swap_entry_encoding_is_linux_x86_64(type_, offset):
    e = swp_entry(type_, offset)
    assert e == linux_swp_entry(type_, offset)
    assert swp_type(e) == type_ and swp_offset(e) == offset
    assert linux_swp_offset(e) == offset
    assert not e & _PAGE_PRESENT                    # never present
    assert not e & 0x1FE                            # bits 1..8: 0 (A, D, PS, PROTNONE)
    if (type_, offset) == (0, SWP_OFFSET_MASK):
        assert e == 0           # pte_none, as in Linux: swapon never hands out this offset
    else:
        assert is_swap_pte(e)
    if type_ == 0:
        assert e < 1 << 59                          # a small int in the guest
    assert (e >> 9) & SWP_OFFSET_MASK == ~offset & SWP_OFFSET_MASK   # inverted offset


def test_round_trip_over_many_offsets():
    for off in list(range(1, 5000, 7)) + [SWP_OFFSET_MASK - i for i in range(50)]:
        for t in (0, 3, 31):
            e = swp_entry(t, off)
            assert (swp_type(e), swp_offset(e)) == (t, off)
            assert e >> 64 == 0


def fill(sh, pid, size, seed=5):
    a = int(run(sh, "mmap %d %s" % (pid, size)), 16)
    n = int(size[:-1]) << 20 if size.endswith("M") else int(size[:-1]) << 10
    run(sh, "pattern %d 0x%x %d %d" % (pid, a, n, seed))
    return a, n


expected = csum.pattern_memsum


def memsum(sh, pid, a, n):
    out = run(sh, "memsum %d 0x%x %d" % (pid, a, n)).split()
    return out[1], dict(w.split("=") for w in out[2:])


def swapped_va(k, pid):
    mm = k.procs.tasks[pid].mm
    for vma in mm.vmas:
        for pt, base, i0, i1 in mm.pt_tables(vma.start, vma.end):
            for i in range(i0, i1):
                e = k.hw.read64(pt + i * 8)
                if is_swap_pte(e):
                    return base + (i << 12), e
    return None, None


@pytest.fixture
def box():
    k, sh = boot(mem=24 * MiB, swap=24 * MiB)
    return k, sh


def test_pages_swapped_out_and_in_keep_their_contents(box):
    k, sh = box
    base = check_all(k)
    pid = int(run(sh, "spawn big"))
    a, n = fill(sh, pid, "32M", seed=11)            # more than RAM: swap-out on the way
    v = vmstat(sh)
    assert v["pswpout"] > 2000
    st = status(sh, pid)
    assert st["VmSwap"] > 8 * 1024 and st["VmRSS"] + st["VmSwap"] == 32 * 1024 + st["VmPTE"] * 0
    check_all(k, base)
    h, info = memsum(sh, pid, a, n)
    assert h == expected(a, n, 11)
    assert int(info["majfaults"]) > 2000
    v2 = vmstat(sh)
    assert v2["pswpin"] >= int(info["majfaults"])
    assert v2["pgmajfault"] - v["pgmajfault"] == int(info["majfaults"])
    check_all(k, base)
    h2, _ = memsum(sh, pid, a, n)                   # and again: out and in once more
    assert h2 == h
    run(sh, "kill %d" % pid)
    check_all(k, base)
    assert meminfo(sh)["SwapFree"] == meminfo(sh)["SwapTotal"]


def test_swap_entry_in_pte_seen_by_the_host_walker(box):
    k, sh = box
    pid = int(run(sh, "spawn w"))
    a, n = fill(sh, pid, "28M")
    va, e = swapped_va(k, pid)
    assert va is not None
    walker = PageWalker(k.procs.tasks[pid].mm.pgd, k.hw.readbytes)
    assert walker.translate(va) is None                    # not mapped for the MMU
    step = walker.walk(va)[-1]
    assert step.level == 1 and step.entry == e and not step.entry & _PAGE_PRESENT
    si, off = k.swap.lookup(e)
    assert si.map[off] == 1
    # the data is on the swap disk at slot off
    disk = k.hw.ide.drives[1].back.buf
    assert bytes(disk[off * 4096:off * 4096 + 8]) == csum.pattern_stamp(5, va).to_bytes(8, "little")
    got = run(sh, "read %d 0x%x 8" % (pid, va))            # a major fault brings it back
    assert got == " ".join("%02x" % b for b in csum.pattern_stamp(5, va).to_bytes(8, "little"))
    t = PageWalker(k.procs.tasks[pid].mm.pgd, k.hw.readbytes).translate(va)
    assert t is not None and t.pa == k.procs.tasks[pid].mm.pte(va) & PTE_ADDR_MASK


def test_fork_shares_swap_entries_and_exit_frees_slots(box):
    k, sh = box
    base = check_all(k)
    p = int(run(sh, "spawn parent"))
    a, n = fill(sh, p, "28M", seed=3)
    used = meminfo(sh)["SwapTotal"] - meminfo(sh)["SwapFree"]
    assert used > 0
    c = int(run(sh, "fork %d" % p))
    assert status(sh, c)["VmSwap"] == status(sh, p)["VmSwap"]
    va, e = swapped_va(k, c)
    assert k.swap.count(e) == 2                             # both PTEs hold the slot
    check_all(k, base)
    run(sh, "write %d 0x%x 6b7079" % (c, va))               # the child's copy only
    assert run(sh, "read %d 0x%x 3" % (c, va)) == "6b 70 79"
    assert run(sh, "read %d 0x%x 3" % (p, va)) != "6b 70 79"
    check_all(k, base)
    run(sh, "kill %d" % p)
    check_all(k, base)
    h, _ = memsum(sh, c, a, n)
    exp = expected(a, n, 3)
    assert h != exp                                          # the child wrote 3 bytes
    run(sh, "write %d 0x%x %s" % (c, va, csum.pattern_stamp(3, va).to_bytes(8, "little")[:3].hex()))
    assert memsum(sh, c, a, n)[0] == exp
    run(sh, "kill %d" % c)
    check_all(k, base)
    mi = meminfo(sh)
    assert mi["SwapFree"] == mi["SwapTotal"]


def test_munmap_and_mprotect_with_swapped_pages(box):
    k, sh = box
    base = check_all(k)
    pid = int(run(sh, "spawn m"))
    a, n = fill(sh, pid, "28M", seed=7)
    swap0 = status(sh, pid)["VmSwap"]
    run(sh, "munmap %d 0x%x %d" % (pid, a, 8 * MiB))
    assert status(sh, pid)["VmSwap"] <= swap0
    check_all(k, base)
    run(sh, "mprotect %d 0x%x %d none" % (pid, a + 8 * MiB, 20 * MiB))
    check_all(k, base)
    assert err(sh, "read %d 0x%x 4" % (pid, a + 8 * MiB)).startswith("error: SIGSEGV")
    run(sh, "mprotect %d 0x%x %d r" % (pid, a + 8 * MiB, 20 * MiB))
    assert memsum(sh, pid, a + 8 * MiB, 20 * MiB)[0] == expected(a + 8 * MiB, 20 * MiB, 7)
    check_all(k, base)
    assert err(sh, "write %d 0x%x 00" % (pid, a + 8 * MiB)).startswith("error: SIGSEGV")
    run(sh, "kill %d" % pid)
    check_all(k, base)


def test_status_smaps_meminfo_free_vmstat_show_swap(box):
    k, sh = box
    pid = int(run(sh, "spawn s"))
    a, n = fill(sh, pid, "28M")
    st = status(sh, pid)
    smaps = run(sh, "cat /proc/%d/smaps" % pid)
    swap_kb = sum(int(l.split()[1]) for l in smaps.split("\n") if l.startswith("Swap:"))
    assert swap_kb == st["VmSwap"] > 0
    mi = meminfo(sh)
    assert mi["SwapTotal"] == (24 * MiB // 4096 - 1) * 4
    assert mi["SwapTotal"] - mi["SwapFree"] == st["VmSwap"]
    assert mi["SwapCached"] == 0
    assert mi["AnonPages"] == st["RssAnon"]
    assert mi["Active(anon)"] + mi["Inactive(anon)"] == st["RssAnon"]
    free = run(sh, "free").split("\n")
    assert free[2].split() == ["Swap:", str(mi["SwapTotal"]), str(st["VmSwap"]), str(mi["SwapFree"])]
    vm = run(sh, "vmstat").split("\n")
    assert vm[1].split()[6:8] == ["si", "so"]
    row = vm[2].split()
    assert int(row[2]) == st["VmSwap"]                      # swpd
    assert int(row[7]) > 0                                  # so: KiB/s since boot
    top = run(sh, "top -b -n 1 -E k").split("\n")
    assert top[3].startswith("KiB Mem :") and top[4].startswith("KiB Swap:")
    assert top[4].split()[2] == str(mi["SwapTotal"])
    assert top[7].split()[0] == str(pid)                    # largest RES first


def test_proc_swaps_format_and_errors():
    k, sh = boot(mem=24 * MiB, swap=8 * MiB, swapon=False)
    assert run(sh, "cat /proc/swaps") == "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"
    assert err(sh, "swapon /dev/sdb").startswith("error: EINVAL")     # no signature
    assert err(sh, "swapon /dev/sdz").startswith("error: ENODEV")
    out = run(sh, "mkswap -L kpyswap /dev/sdb")
    assert out.startswith("Setting up swapspace version 1, size = 8188 KiB (8384512 bytes)")
    assert "LABEL=kpyswap, UUID=" in out
    run(sh, "swapon /dev/sdb")
    assert err(sh, "swapon /dev/sdb").startswith("error: EBUSY")
    assert err(sh, "mkswap /dev/sdb").startswith("error: EBUSY")
    lines = run(sh, "cat /proc/swaps").split("\n")
    assert lines[1] == "/dev/sdb" + " " * 32 + "partition\t8188\t\t0\t\t-2"
    assert run(sh, "swapon -s") == "\n".join(lines)
    run(sh, "swapoff /dev/sdb")
    assert err(sh, "swapoff /dev/sdb").startswith("error: EINVAL")
    run(sh, "swapon -p 5 /dev/sdb")
    assert run(sh, "cat /proc/swaps").split("\n")[1].endswith("\t5")
    mi = meminfo(sh)
    assert mi["SwapTotal"] == mi["SwapFree"] == 8188


MKSWAP = shutil.which("mkswap") or ("/usr/sbin/mkswap" if os.path.exists("/usr/sbin/mkswap") else
                                    ("/sbin/mkswap" if os.path.exists("/sbin/mkswap") else None))


@pytest.mark.skipif(MKSWAP is None, reason="needs util-linux mkswap")
def test_swap_area_made_by_linux_mkswap(tmp_path):
    img = tmp_path / "swap.img"
    with open(img, "wb") as f:
        f.truncate(8 * MiB)
    subprocess.run([MKSWAP, "-L", "hostswap", str(img)], check=True, capture_output=True)
    data = bytearray(img.read_bytes())
    from kernel_py.sim.ata import attach_ide
    from kernel_py.kernel.kernel import Kernel
    from kernel_py.shell.shell import Shell
    from kernel_py.sim.machine import Machine
    hw = Machine(24 * MiB, "nomount", console=lambda t: None)
    hw.ide = attach_ide(hw, [bytearray(64 << 10), data])
    k = Kernel(hw, console=lambda m: None)
    k.boot()
    sh = Shell(k)
    assert "/dev/sdb" in run(sh, "cat /proc/swaps")     # swapped on at boot: it has the signature
    assert "partition\t8188\t" in run(sh, "cat /proc/swaps")


def test_guest_mkswap_header_is_what_linux_reads(box):
    k, sh = box
    disk = k.hw.ide.drives[1].back.buf
    assert bytes(disk[4096 - 10:4096]) == MAGIC
    assert int.from_bytes(disk[1024:1028], "little") == 1
    assert int.from_bytes(disk[1028:1032], "little") == 24 * MiB // 4096 - 1
    if MKSWAP is not None:                  # util-linux's own reader (swaplabel/blkid) is not needed:
        pass                                # the format is checked field by field above


def test_swapoff_brings_everything_back(box):
    k, sh = box
    base = check_all(k)
    pid = int(run(sh, "spawn off"))
    a, n = fill(sh, pid, "16M", seed=2)
    run(sh, "echo 8M > /sys/fs/cgroup/memory.reclaim; echo 8M > /sys/fs/cgroup/memory.reclaim")
    assert status(sh, pid)["VmSwap"] > 0
    run(sh, "swapoff /dev/sdb")
    assert status(sh, pid)["VmSwap"] == 0
    assert run(sh, "cat /proc/swaps").count("\n") == 0
    check_all(k, base)
    assert memsum(sh, pid, a, n)[0] == expected(a, n, 2)
    assert vmstat(sh)["pgmajfault"] >= 0
    run(sh, "swapon /dev/sdb")


def test_no_swap_area_means_anon_is_never_scanned():
    k, sh = boot(mem=24 * MiB, swap=8 * MiB, swapon=False)
    pid = int(run(sh, "spawn n"))
    a = int(run(sh, "mmap %d 8M" % pid), 16)
    run(sh, "touch %d 0x%x 8M w" % (pid, a))
    out = sh.execute("echo 4M > /sys/fs/cgroup/memory.reclaim")
    assert out.startswith("error: EAGAIN")
    assert vmstat(sh)["pgscan_anon"] == 0 and vmstat(sh)["pswpout"] == 0


def test_shared_anonymous_memory_goes_to_swap_and_back_for_every_mapper(box):
    """MAP_SHARED|MAP_ANONYMOUS pages (the SharedAnon object) are on the
    anon LRU and reclaim writes them to swap: the PTEs are cleared, the
    object's index keeps the swap entry, and a touch from any mapper reads
    the page back (a major fault) into the one frame they all map."""
    k, sh = box
    base = check_all(k)
    pid = int(run(sh, "spawn shm"))
    n = 8 * MiB
    a = int(run(sh, "mmap %d %d shared" % (pid, n)), 16)
    child = int(run(sh, "fork %d" % pid))
    run(sh, "pattern %d 0x%x %d 9" % (pid, a, n))
    run(sh, "touch %d 0x%x %d r" % (child, a, n))       # both map every page
    v0 = vmstat(sh)
    run(sh, "echo 6M > /sys/fs/cgroup/memory.reclaim")
    assert vmstat(sh)["pswpout"] - v0["pswpout"] > 1000
    assert k.vmscan.pgswapout_shmem > 1000
    shm = k.procs.get(pid).mm.vmas.find(a).shm
    assert sum(1 for v in shm.pages.values() if v & 1) > 1000
    assert status(sh, pid)["RssShmem"] < 4 * 1024 and status(sh, child)["RssShmem"] < 4 * 1024
    smaps = run(sh, "cat /proc/%d/smaps" % child)
    swapped = sum(1 for v in shm.pages.values() if v & 1)
    assert "\n%-16s%8d kB" % ("Swap:", swapped * 4) in smaps        # shmem_swap_usage
    check_all(k, base)
    h, info = memsum(sh, child, a, n)                   # the other mapper sees every store
    assert h == expected(a, n, 9)
    assert int(info["majfaults"]) > 1000
    check_all(k, base)
    got, info = memsum(sh, pid, a, n)                   # the frames the child brought back
    assert got == h and int(info["majfaults"]) == 0
    run(sh, "echo 6M > /sys/fs/cgroup/memory.reclaim")
    assert any(v & 1 for v in shm.pages.values())
    run(sh, "swapoff /dev/sdb")                         # what is out comes back into the object
    assert not any(v & 1 for v in shm.pages.values())
    check_all(k, base)
    assert memsum(sh, pid, a, n)[0] == h
    run(sh, "swapon /dev/sdb")
    run(sh, "kill %d" % child)
    run(sh, "kill %d" % pid)
    check_all(k, base)
    assert meminfo(sh)["SwapFree"] == meminfo(sh)["SwapTotal"]
