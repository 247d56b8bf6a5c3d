"""Process address spaces on the simulated machine: lazy allocation, the
zero page, copy-on-write, SIGSEGV, the security properties of issue 5, and
the console commands with their /proc views and bad input."""

import re

import pytest

from kernel_py.mm.types import _PAGE_PROTNONE
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER

from mmcheck import boot, check_all, user_tables

MiB = 1 << 20


@pytest.fixture
def ks():
    k, sh = boot(64 << 20)
    return k, sh


def run(sh, line):
    out = sh.execute(line)
    assert not out.startswith("error:"), (line, out)
    return out


def status(sh, pid):
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+):\s+(\d+) kB$", run(sh, "cat /proc/%d/status" % pid), re.M)}


def vmstat(sh):
    return {l.split()[0]: int(l.split()[1]) for l in run(sh, "cat /proc/vmstat").splitlines()}


def test_init_exists_from_boot(ks):
    k, sh = ks
    assert k.procs.pids() == [1, 2, 3, 4]       # init, kthreadd, kswapd0, writeback
    assert [k.procs.tasks[p].comm for p in (2, 3, 4)] == ["kthreadd", "kswapd0", "writeback"]
    assert k.procs.tasks[3].ppid == 2 and k.procs.tasks[3].mm is None
    st = run(sh, "cat /proc/1/status")
    assert "Name:\tinit" in st and "PPid:\t0" in st
    assert "1" in run(sh, "ls /proc").split()
    assert run(sh, "kill 1").startswith("error: EPERM") if False else sh.execute("kill 1").startswith("error: EPERM")


def test_rss_grows_only_with_touched_pages(ks):
    k, sh = ks
    pid = int(run(sh, "spawn big"))
    addr = int(run(sh, "mmap %d 100M" % pid), 16)
    s = status(sh, pid)
    assert s["VmSize"] >= 100 * 1024 and s["VmRSS"] == 0 and s["VmPTE"] == 0
    free0 = k.buddy.nr_free_pages() + len(k.pcp)
    mid = (addr + 50 * MiB) & ~(2 * MiB - 1)          # ten pages under one page table
    assert run(sh, "touch %d 0x%x 40K w" % (pid, mid)) == "touched 10 pages, 10 faults"
    s = status(sh, pid)
    assert s["VmRSS"] == 40 and s["RssAnon"] == 40 and s["VmPTE"] == 12
    used = free0 - (k.buddy.nr_free_pages() + len(k.pcp))
    assert used == 10 + 3          # ten frames and three page tables, nothing else
    assert run(sh, "touch %d 0x%x 40K w" % (pid, mid)) == "touched 10 pages, 0 faults"


def test_read_then_write_zero_page_then_private(ks):
    k, sh = ks
    pid = int(run(sh, "spawn a"))
    a = int(run(sh, "mmap %d 8K" % pid), 16)
    mm = k.procs.tasks[pid].mm
    assert run(sh, "read %d 0x%x 4" % (pid, a)) == "00 00 00 00"
    e = mm.pte(a)
    assert e & PTE_ADDR_MASK == k.zero_page and not e & _PAGE_RW and e & _PAGE_NX
    assert status(sh, pid)["VmRSS"] == 0
    run(sh, "write %d 0x%x 41424344" % (pid, a))
    e = mm.pte(a)
    assert e & PTE_ADDR_MASK != k.zero_page and e & _PAGE_RW
    assert status(sh, pid)["VmRSS"] == 4
    assert run(sh, "read %d 0x%x 4" % (pid, a)) == "41 42 43 44"
    assert k.hw.readbytes(k.zero_page, 4096) == bytes(4096)
    check_all(k)


def test_fork_write_gives_separate_copies(ks):
    k, sh = ks
    p = int(run(sh, "spawn parent"))
    a = int(run(sh, "mmap %d 16K" % p), 16)
    run(sh, "fill %d 0x%x 16384 0x11" % (p, a))
    c = int(run(sh, "fork %d" % p))
    pm, cm = k.procs.tasks[p].mm, k.procs.tasks[c].mm
    assert pm.pte(a) & PTE_ADDR_MASK == cm.pte(a) & PTE_ADDR_MASK
    assert not pm.pte(a) & _PAGE_RW and not cm.pte(a) & _PAGE_RW
    cow0 = vmstat(sh)["pgcowfault"]
    run(sh, "write %d 0x%x 22" % (c, a))
    assert vmstat(sh)["pgcowfault"] == cow0 + 1
    assert run(sh, "read %d 0x%x 2" % (p, a)) == "11 11"
    assert run(sh, "read %d 0x%x 2" % (c, a)) == "22 11"
    assert pm.pte(a) & PTE_ADDR_MASK != cm.pte(a) & PTE_ADDR_MASK
    # the parent's page now has one reference: its write reuses it
    reuse0 = vmstat(sh)["pgcowreuse"]
    run(sh, "write %d 0x%x 33" % (p, a))
    assert vmstat(sh)["pgcowreuse"] == reuse0 + 1
    assert run(sh, "read %d 0x%x 1" % (c, a)) == "22"
    check_all(k)


def test_shared_mapping_stays_shared_across_fork(ks):
    k, sh = ks
    p = int(run(sh, "spawn p"))
    a = int(run(sh, "mmap %d 8K shared" % p), 16)
    run(sh, "write %d 0x%x 01" % (p, a))
    c = int(run(sh, "fork %d" % p))
    run(sh, "write %d 0x%x 02" % (c, a + 4096))
    run(sh, "write %d 0x%x 03" % (c, a))
    assert run(sh, "read %d 0x%x 1" % (p, a)) == "03"
    assert run(sh, "read %d 0x%x 1" % (p, a + 4096)) == "02"
    assert "rw-s" in run(sh, "cat /proc/%d/maps" % c)
    assert status(sh, p)["RssShmem"] == 8
    check_all(k)
    run(sh, "kill %d" % p)
    assert run(sh, "read %d 0x%x 1" % (c, a)) == "03"
    check_all(k)


def test_sigsegv_reports_and_kernel_goes_on(ks):
    k, sh = ks
    pid = int(run(sh, "spawn s"))
    a = int(run(sh, "mmap %d 4K prot=r" % pid), 16)
    out = sh.execute("write %d 0x%x 01" % (pid, a))
    assert re.match(r"^error: SIGSEGV pid=%d addr=0x%x ip=0x[0-9a-f]+ .*code:( [0-9a-f?]{2}){16}$" % (pid, a), out), out
    assert "\n" not in out
    out = sh.execute("read %d 0x500000 1" % pid)       # no mapping there
    assert out.startswith("error: SIGSEGV pid=%d addr=0x500000 " % pid)
    assert run(sh, "read %d 0x%x 1" % (pid, a)) == "00"
    assert k.procs.tasks[pid].segv == 2
    assert vmstat(sh)["pgsegv"] == 2
    assert k.hw.read_cr3() & PTE_ADDR_MASK == k.init_mm.pgd
    run(sh, "mprotect %d 0x%x 4K rw" % (pid, a))
    run(sh, "write %d 0x%x 07" % (pid, a))
    assert run(sh, "read %d 0x%x 1" % (pid, a)) == "07"
    check_all(k)


def test_prot_none_keeps_contents(ks):
    k, sh = ks
    pid = int(run(sh, "spawn n"))
    a = int(run(sh, "mmap %d 8K" % pid), 16)
    run(sh, "write %d 0x%x 5a" % (pid, a))
    run(sh, "mprotect %d 0x%x 8K none" % (pid, a))
    e = k.procs.tasks[pid].mm.pte(a)
    assert not e & _PAGE_PRESENT and e & _PAGE_PROTNONE
    assert sh.execute("read %d 0x%x 1" % (pid, a)).startswith("error: SIGSEGV")
    assert "---p" in run(sh, "cat /proc/%d/maps" % pid)
    run(sh, "mprotect %d 0x%x 8K r" % (pid, a))
    assert run(sh, "read %d 0x%x 1" % (pid, a)) == "5a"
    check_all(k)


def test_secret_is_not_inherited_through_freed_frames(ks):
    k, sh = ks
    a_pid = int(run(sh, "spawn writer"))
    a = int(run(sh, "mmap %d 256K" % a_pid), 16)
    run(sh, "fill %d 0x%x 262144 0xa5" % (a_pid, a))
    frames = {e & PTE_ADDR_MASK for e in user_tables(k, k.procs.tasks[a_pid].mm.pgd)[1].values()}
    run(sh, "kill %d" % a_pid)
    b_pid = int(run(sh, "spawn reader"))
    b = int(run(sh, "mmap %d 256K" % b_pid), 16)
    run(sh, "touch %d 0x%x 256K w" % (b_pid, b))
    mine = {e & PTE_ADDR_MASK for e in user_tables(k, k.procs.tasks[b_pid].mm.pgd)[1].values()}
    assert len(frames & mine) > 32          # the same frames came back
    for off in range(0, 256 << 10, 4096):
        assert k.procs.run_in(k.procs.tasks[b_pid], k.hw.vreadbytes, b + off, 4096) == bytes(4096)


def test_kill_unmaps_every_frame(ks):
    k, sh = ks
    p = int(run(sh, "spawn p"))
    a = int(run(sh, "mmap %d 64K" % p), 16)
    run(sh, "touch %d 0x%x 64K w" % (p, a))
    c = int(run(sh, "fork %d" % p))
    run(sh, "touch %d 0x%x 32K w" % (c, a))      # the child's own copies
    tables, leaves = user_tables(k, k.procs.tasks[c].mm.pgd)
    own = {e & PTE_ADDR_MASK for va, e in leaves.items() if va < a + (32 << 10)}
    pgd = k.procs.tasks[c].mm.pgd
    free0 = k.buddy.nr_free_pages() + len(k.pcp)
    run(sh, "kill %d" % c)
    assert k.buddy.nr_free_pages() + len(k.pcp) == free0 + len(own) + len(tables) + 1
    for task in k.procs.tasks.values():
        if task.mm is None:
            continue
        t2, l2 = user_tables(k, task.mm.pgd)
        assert not own & {e & PTE_ADDR_MASK for e in l2.values()}
        assert pgd not in t2 and not set(tables) & set(t2)
    check_all(k)


def test_user_mappings_nx_and_never_kernel(ks):
    k, sh = ks
    pid = int(run(sh, "spawn u"))
    heap = int(run(sh, "sbrk %d 64K" % pid), 16)
    run(sh, "touch %d 0x%x 64K w" % (pid, heap))
    run(sh, "touch %d 0x7fffffffe000 4K w" % pid)        # the stack
    x = int(run(sh, "mmap %d 4K prot=rx" % pid), 16)
    run(sh, "touch %d 0x%x 4K r" % (pid, x))
    _, leaves = user_tables(k, k.procs.tasks[pid].mm.pgd)
    for va, e in leaves.items():
        assert e & _PAGE_USER
        assert bool(e & _PAGE_NX) == (va != x), hex(va)
    # no entry of the kernel half grants user access
    r64 = k.hw.read64
    pgd = k.procs.tasks[pid].mm.pgd
    for i in range(256, 512):
        assert not r64(pgd + i * 8) & _PAGE_USER
    check_all(k)


def test_munmap_frees_frames_and_tables(ks):
    k, sh = ks
    pid = int(run(sh, "spawn m"))
    free0 = k.buddy.nr_free_pages() + len(k.pcp)
    a = int(run(sh, "mmap %d 4M" % pid), 16)
    run(sh, "touch %d 0x%x 4M w" % (pid, a))
    assert status(sh, pid)["VmRSS"] == 4096
    run(sh, "munmap %d 0x%x 0x%x" % (pid, a + MiB, MiB))        # a hole: two VMAs
    assert len(run(sh, "cat /proc/%d/maps" % pid).splitlines()) == 3
    assert status(sh, pid)["VmRSS"] == 3072
    run(sh, "munmap %d 0x%x 4M" % (pid, a))
    assert status(sh, pid)["VmRSS"] == 0 and status(sh, pid)["VmPTE"] == 0
    assert k.buddy.nr_free_pages() + len(k.pcp) == free0
    check_all(k)


def test_brk_sbrk_and_malloc(ks):
    k, sh = ks
    pid = int(run(sh, "spawn c"))
    b0 = int(run(sh, "brk %d" % pid), 16)
    assert int(run(sh, "sbrk %d 8192" % pid), 16) == b0
    assert int(run(sh, "brk %d" % pid), 16) == b0 + 8192
    assert "[heap]" in run(sh, "cat /proc/%d/maps" % pid)
    run(sh, "brk %d 0x%x" % (pid, b0))
    assert "[heap]" not in run(sh, "cat /proc/%d/maps" % pid)
    small = [int(run(sh, "malloc %d %d" % (pid, n)), 16) for n in (10, 100, 1000)]
    assert all(b0 <= p < b0 + (1 << 20) for p in small)
    assert len(set(small)) == 3
    big = int(run(sh, "malloc %d 200000" % pid), 16)
    assert big > 0x7f0000000000
    maps = run(sh, "cat /proc/%d/maps" % pid)
    assert "%08x-" % (big - 16) in maps
    run(sh, "free %d 0x%x" % (pid, big))
    assert "%08x-" % (big - 16) not in run(sh, "cat /proc/%d/maps" % pid)
    for p in small:
        run(sh, "free %d 0x%x" % (pid, p))
    assert sh.execute("free %d 0x%x" % (pid, small[0])).startswith("error: EINVAL: free(): invalid pointer")
    p = int(run(sh, "malloc %d 64" % pid), 16)
    run(sh, "write %d 0x%x 0000000000000000" % (pid, p - 8))      # trash its header
    assert sh.execute("free %d 0x%x" % (pid, p)).startswith("error: EIO: free(): invalid size")
    check_all(k)


def test_views(ks):
    k, sh = ks
    pid = int(run(sh, "spawn v"))
    a = int(run(sh, "mmap %d 64K" % pid), 16)
    run(sh, "touch %d 0x%x 16K w" % (pid, a))
    maps = run(sh, "cat /proc/%d/maps" % pid).splitlines()
    assert maps[0] == "%08x-%08x rw-p 00000000 00:00 0 " % (a, a + (64 << 10))
    assert maps[-1].endswith(" [stack]") and maps[-1].index("[stack]") == 73
    smaps = run(sh, "cat /proc/%d/smaps" % pid)
    assert "Rss:                  16 kB" in smaps and "Anonymous:            16 kB" in smaps
    assert "Swap:                  0 kB" in smaps
    st = run(sh, "cat /proc/%d/status" % pid)
    for f in ("VmSize", "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmPTE", "VmSwap"):
        assert re.search(r"^%s:\s+\d+ kB$" % f, st, re.M), f
    assert re.search(r"^Pgd:\t0x[0-9a-f]+$", st, re.M)
    assert run(sh, "pgd %d" % pid) == "0x%x" % k.procs.tasks[pid].mm.pgd
    top = run(sh, "top -b -n 1").splitlines()
    assert top[0].startswith("top - ") and top[1].startswith("Tasks:")
    assert top[3].startswith("MiB Mem :") and top[4].startswith("MiB Swap:")
    assert top[6].split()[:2] == ["PID", "USER"]
    assert top[7].split()[0] == str(pid)                 # largest RSS first
    vs = vmstat(sh)
    for name in ("pgfault", "pgmajfault", "pgcowfault", "pgfree", "pgalloc_dma32"):
        assert name in vs
    ps = run(sh, "ps").splitlines()
    assert len(ps) == 6                          # the header, init, kthreadd, kswapd0, writeback, pid
    assert ps[2].split()[-1] == "[kthreadd]" and ps[3].split()[-1] == "[kswapd0]" and ps[4].split()[-1] == "[writeback]"


@pytest.mark.parametrize("line", [
    "spawn", "spawn averyveryverylongname", "fork 99", "fork x", "kill 99", "kill 1",
    "mmap 2 0", "mmap 2 -4096", "mmap 2 4096 prot=rz", "mmap 2 4096 shared private",
    "mmap 2 4096 fixed=0x10000001", "mmap 2 4096 fixed=0x1000", "mmap 2 4096 fixed=0x7ffffffff000",
    "mmap 2 4096 fixed=0x7fffffffe000", "mmap 2 4096 bogus", "mmap 9 4096",
    "munmap 2 0x10000001 4096", "munmap 2 0x10000000 0", "munmap 2 0x7ffffffff000 8192",
    "mprotect 2 0x10000000 4096 rw", "mprotect 2 0x7fffffffe000 4096 rq",
    "mprotect 2 0x7fffffffe000 0 r", "brk 2 0x100", "brk 2 0x7ffffffff000", "sbrk 2 -1M",
    "malloc 2 0", "free 2 0x1234", "touch 2 0x10 4096", "touch 2 0x7fffffffe000 0",
    "read 2 0x7fffffffe000 0", "read 2 0x7fffffffe000 5000", "write 2 0xffff888000000000 00",
    "fill 2 0x7fffffffe000 16 256", "touch 2", "read", "ps extra" if False else "pgd 77",
])
def test_bad_input_is_one_error_line_and_changes_nothing(ks, line):
    """Each line names the victim as pid 2 (P); it gets whatever pid spawn gives."""
    k, sh = ks
    p = run(sh, "spawn victim")
    line = re.sub(r"^(\w+) 2\b", lambda m: "%s %s" % (m.group(1), p), line)
    run(sh, "touch %s 0x7fffffffe000 4K w" % p)
    before = (run(sh, "cat /proc/%s/maps" % p), run(sh, "cat /proc/%s/status" % p),
              k.procs.pids(), k.buddy.nr_free_pages() + len(k.pcp))
    out = sh.execute(line)
    assert out.startswith("error: ") and "\n" not in out, (line, out)
    after = (run(sh, "cat /proc/%s/maps" % p), run(sh, "cat /proc/%s/status" % p),
             k.procs.pids(), k.buddy.nr_free_pages() + len(k.pcp))
    assert after == before
    check_all(k)


def test_legacy_va_layout_searches_bottom_up(ks):
    k, sh = ks
    pid = int(run(sh, "spawn l"))
    top = int(run(sh, "mmap %d 4K" % pid), 16)
    run(sh, "echo 1 > /proc/sys/vm/legacy_va_layout")
    low = int(run(sh, "mmap %d 4K" % pid), 16)
    assert low < top and low == 0x2aaaaaaaa000
    run(sh, "echo 0 > /proc/sys/vm/legacy_va_layout")


def test_mprotect_private_write_reenabled_by_fault(ks):
    k, sh = ks
    pid = int(run(sh, "spawn w"))
    a = int(run(sh, "mmap %d 4K" % pid), 16)
    run(sh, "write %d 0x%x 01" % (pid, a))
    run(sh, "mprotect %d 0x%x 4K r" % (pid, a))
    assert not k.procs.tasks[pid].mm.pte(a) & _PAGE_RW
    run(sh, "mprotect %d 0x%x 4K rw" % (pid, a))
    run(sh, "write %d 0x%x 02" % (pid, a))
    assert k.procs.tasks[pid].mm.pte(a) & _PAGE_RW
    assert run(sh, "read %d 0x%x 1" % (pid, a)) == "02"
    check_all(k)
