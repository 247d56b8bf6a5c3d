"""Process address spaces on the real machine (issue 5): lazy allocation,
the zero page, copy-on-write, SIGSEGV recovery, and the host's own walk of
a process's page tables over QMP compared with /proc/<pid>/maps."""

import re

from kernel_py.arch.x86.layout import KERNEL_BASE, USER_END
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK

MiB = 1 << 20


def status(guest, pid):
    out = guest.run("cat /proc/%d/status" % pid)
    fields = {m[0]: int(m[1]) for m in re.findall(r"^(\w+):\s+(\d+) kB$", out, re.M)}
    fields["Pgd"] = int(re.search(r"^Pgd:\s+0x([0-9a-f]+)$", out, re.M).group(1), 16)
    return fields


def spawn(guest, name="t"):
    return int(guest.run("spawn %s" % name))


def maps(guest, pid):
    out = []
    for line in guest.run("cat /proc/%d/maps" % pid).splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][ps]) ", line)
        assert m, line
        out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    return out


def test_reserve_100m_rss_grows_only_with_touched_pages(guest):
    pid = spawn(guest, "big")
    addr = int(guest.run("mmap %d 100M" % pid), 16)
    s = status(guest, pid)
    assert s["VmSize"] >= 100 * 1024 and s["VmRSS"] == 0
    free0 = int(re.search(r"MemFree:\s+(\d+)", guest.run("cat /proc/meminfo")).group(1))
    out = guest.run("touch %d 0x%x 1M w" % (pid, addr + 10 * MiB))
    assert out == "touched 256 pages, 256 faults"
    s = status(guest, pid)
    assert s["VmRSS"] == 1024 and s["RssAnon"] == 1024
    free1 = int(re.search(r"MemFree:\s+(\d+)", guest.run("cat /proc/meminfo")).group(1))
    assert free0 - free1 < 2 * 1024          # about 1 MiB, not 100
    out = guest.run("touch %d 0x%x 4M r" % (pid, addr + 50 * MiB))
    assert out == "touched 1024 pages, 1024 faults"
    assert status(guest, pid)["VmRSS"] == 1024    # zero-page reads cost no frames
    guest.run("kill %d" % pid)


def test_read_then_write_zero_page_to_private_frame(guest):
    pid = spawn(guest)
    a = int(guest.run("mmap %d 8K" % pid), 16)
    assert guest.run("read %d 0x%x 4" % (pid, a)) == "00 00 00 00"
    pgd = status(guest, pid)["Pgd"]
    zero = guest.walker(pgd).translate(a)
    assert zero is not None and not zero.writable and zero.nx and zero.user
    assert status(guest, pid)["VmRSS"] == 0
    guest.run("write %d 0x%x 6b70790a" % (pid, a))
    t = guest.walker(pgd).translate(a)
    assert t.writable and t.pa != zero.pa
    assert guest.read_phys(t.pa, 4) == b"kpy\n"
    assert guest.read_phys(zero.pa, 4096) == bytes(4096)
    assert status(guest, pid)["VmRSS"] == 4
    guest.run("kill %d" % pid)


def test_fork_and_write_gives_separate_copies(guest):
    p = spawn(guest, "parent")
    a = int(guest.run("mmap %d 64K" % p), 16)
    guest.run("fill %d 0x%x 65536 0x11" % (p, a))
    c = int(guest.run("fork %d" % p))
    pp, cp = status(guest, p)["Pgd"], status(guest, c)["Pgd"]
    before = guest.walker(pp).translate(a)
    assert guest.walker(cp).translate(a).pa == before.pa and not before.writable
    guest.run("write %d 0x%x 22" % (c, a))
    assert guest.run("read %d 0x%x 2" % (p, a)) == "11 11"
    assert guest.run("read %d 0x%x 2" % (c, a)) == "22 11"
    tp, tc = guest.walker(pp).translate(a), guest.walker(cp).translate(a)
    assert tp.pa != tc.pa and tc.writable
    assert guest.read_phys(tc.pa, 1) == b"\x22" and guest.read_phys(tp.pa, 1) == b"\x11"
    guest.run("kill %d" % c)
    guest.run("kill %d" % p)


def test_sigsegv_leaves_process_and_kernel_usable(guest):
    pid = spawn(guest, "segv")
    a = int(guest.run("mmap %d 4K prot=r" % pid), 16)
    out = guest.run("write %d 0x%x 01" % (pid, a), check=False, allow_oops=True)
    m = re.search(r"^error: SIGSEGV pid=%d addr=0x%x ip=0x([0-9a-f]+) .*code:((?: [0-9a-f?]{2}){16})$"
                  % (pid, a), out, re.M)
    assert m, out
    assert int(m.group(1), 16) >= KERNEL_BASE
    assert guest.run("read %d 0x%x 1" % (pid, a)) == "00"           # the process goes on
    guest.run("mprotect %d 0x%x 4K rw" % (pid, a))
    guest.run("write %d 0x%x 07" % (pid, a))
    assert guest.run("read %d 0x%x 1" % (pid, a)) == "07"
    assert guest.run("echo alive") == "alive"                        # so does the kernel
    assert guest.registers().cr3 & PTE_ADDR_MASK != status(guest, pid)["Pgd"]
    guest.run("kill %d" % pid)


def test_host_walk_agrees_with_maps(guest):
    pid = spawn(guest, "walk")
    a = int(guest.run("mmap %d 256K" % pid), 16)
    x = int(guest.run("mmap %d 8K prot=rx" % pid), 16)
    r = int(guest.run("mmap %d 8K prot=r" % pid), 16)
    heap = int(guest.run("sbrk %d 16K" % pid), 16)
    guest.run("touch %d 0x%x 128K w" % (pid, a))
    guest.run("touch %d 0x%x 8K r" % (pid, x))
    guest.run("touch %d 0x%x 8K r" % (pid, r))
    guest.run("touch %d 0x%x 16K w" % (pid, heap))
    guest.run("touch %d 0x7fffffffe000 4K w" % pid)
    vmas = maps(guest, pid)
    pgd = status(guest, pid)["Pgd"]
    w = guest.walker(pgd)
    user = [m for m in w.mappings(0, USER_END)]
    assert len(user) == 32 + 2 + 2 + 4 + 1
    for m in user:
        vma = [v for v in vmas if v[0] <= m.va < v[1]]
        assert vma, "mapping at 0x%x outside every VMA" % m.va
        perms = vma[0][2]
        assert m.user and m.size == 4096
        assert m.nx == (perms[2] != "x"), hex(m.va)
        assert not m.writable or perms[1] == "w"
    # heap and stack are NX; nothing user-accessible in the kernel half
    assert all(m.nx for m in user if m.va >= heap and m.va < heap + (16 << 10) or m.va >= 0x7fffffffe000)
    for m in w.mappings(1 << 47, 1 << 64):
        assert not m.user, "user-accessible kernel mapping at 0x%x" % m.va
    # no user page maps a page-table frame or a frame below 1 MiB (firmware, boot)
    tables = set(w.table_frames(0, 1 << 64))
    for m in user:
        assert m.pa not in tables and m.pa >= 0x100000, hex(m.pa)
    guest.run("kill %d" % pid)


def test_kill_frees_everything(guest):
    def free():
        return int(re.search(r"MemFree:\s+(\d+)", guest.run("cat /proc/meminfo")).group(1))
    guest.run("bench faults 64 write")          # prime the pcp list
    f0 = free()
    pid = spawn(guest, "k")
    a = int(guest.run("mmap %d 2M" % pid), 16)
    guest.run("touch %d 0x%x 2M w" % (pid, a))
    c = int(guest.run("fork %d" % pid))
    guest.run("touch %d 0x%x 1M w" % (c, a))
    assert f0 - free() >= 2 * 1024             # 3 MiB, less what the pcp list held
    guest.run("kill %d" % c)
    guest.run("kill %d" % pid)
    assert abs(free() - f0) <= 1024             # back, up to what the pcp list keeps
    assert [l.split()[-1] for l in guest.run("ps").splitlines()[1:]] == ["init", "[kthreadd]", "[kswapd0]", "[writeback]"]


def test_fault_bench_runs(guest):
    for mode in ("write", "read", "cow", "cycle"):
        out = guest.run("bench faults 200 %s" % mode, timeout=120)
        assert re.match(r"faults %s n=200 faults=\d+ total_us=\d+ per_(fault|cycle)_ns=\d+ " % mode, out), out
