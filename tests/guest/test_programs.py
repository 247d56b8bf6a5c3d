"""Real programs in ring 3 (issue 14, "Behaviour the tests must show"):
usertests' non-memory tests, fork's copy-on-write seen by content and in
/proc/vmstat, bad pointers, the segfault line and wait status of each segv
mode, the host's page-table walk of a running program, execve's failures
leaking nothing, a fork bomb at the task limit, the OOM killer's choice by
badness and oom_score_adj, and two CPU-bound programs sharing the CPU with
the console. The memory system calls (usertests' mm tests, Linux's mm
self-tests, malloc100) are tests/guest/test_mm_syscalls.py's.

Most tests share one 256 MiB guest with its own data and swap disks (one
boot for the module); each leaves it as it found it. The OOM test boots a
small guest without swap of its own."""

import re
import struct
import time

import pytest

from kpyqemu import disks
from kpyqemu.guest import Guest
from kpyqemu.pytest_plugin import backend, register_guest
from kernel_py.arch.x86.layout import USER_END
from kernel_py.kernel.proc import MAX_TASKS
from kernel_py.mm.types import KIND_ANON, KIND_NAMES, KIND_PAGECACHE, KIND_ZERO

user_disks = disks.pytest_fixture(scope="module")

# usertests' memory-syscall tests: tests/guest/test_mm_syscalls.py runs them
MEMORY_TESTS = set("mmap_anon munmap_split mmap_fixed mmap_populate demand_paging mprotect "
                   "mremap madvise brk stack_growth cow mmap_shared_anon mmap_file_private "
                   "mmap_file_shared exec_bigargs".split())

# usertests' tests that pass bad pointers (0x10, unmapped, PROT_NONE, kernel,
# non-canonical) to the syscalls they cover, outside the memory ones
EFAULT_TESTS = ("rw_errors readv_writev pread_pwrite open_errors openat stat access getdents "
                "mkdir rmdir unlink rename sigaction sigprocmask fork_wait exec uname arch_prctl "
                "prlimit getrandom clocks nanosleep pipe eventfd sysinfo cwd futex").split()

# dmesg prefixes each line with [SECONDS.MICROS] (printk.time), as Linux's does
TIME = r"(?:\[\s*\d+\.\d{6}\] )?"
SEGV_LINE = re.compile(r"^" + TIME + r"(\S+)\[(\d+)\]: segfault at ([0-9a-f]+) ip ([0-9a-f]{16}) "
                       r"sp ([0-9a-f]{16}) error ([0-9a-f]+)(?: in (\S+)\[([0-9a-f]+)\+([0-9a-f]+)\])?$",
                       re.M)
GP_LINE = re.compile(r"^" + TIME + r"traps: (\S+)\[(\d+)\] general protection fault ip:([0-9a-f]+) "
                     r"sp:([0-9a-f]+) error:0 in (\S+)\[([0-9a-f]+)\+([0-9a-f]+)\]$", re.M)

# x86 page-fault error code bits (Intel SDM vol. 3, 4.7)
PF_PROT, PF_WRITE, PF_USER, PF_INSTR = 1, 2, 4, 0x10

# segv MODE -> the error code Linux prints for it (in hex), or a set when the
# answer depends on whether the kernel maps the address (kernel-text: the
# first page of the kernel's text window)
SEGV_ERROR = {
    "null": {PF_USER},
    "null-write": {PF_USER | PF_WRITE},
    "kernel-read": {PF_USER | PF_PROT},
    "kernel-write": {PF_USER | PF_WRITE | PF_PROT},
    "kernel-text": {PF_USER, PF_USER | PF_PROT},
    "nx-exec": {PF_USER | PF_INSTR | PF_PROT},
    "stack-exec": {PF_USER | PF_INSTR | PF_PROT},
    "text-write": {PF_USER | PF_WRITE | PF_PROT},
    "rodata-write": {PF_USER | PF_WRITE | PF_PROT},
    "unmapped": {PF_USER},
}


# -- the shared guest -------------------------------------------------------------

class _Booted:
    """The module's guest, booted again if a test broke it."""

    def __init__(self, log_dir, accel, image, drives):
        self.args = dict(image=image, accel=accel, log_dir=log_dir, drives=drives,
                         backend=backend(), mem="256M")
        self.g = None

    def get(self, item):
        if self.g is not None and (self.g.broken or not self.g.alive):
            self.g.close()
            self.g = None
        if self.g is None:
            self.g = Guest(name="programs", **self.args)
        register_guest(item, self.g)
        return self.g


@pytest.fixture(scope="module")
def _booted(serial_log_dir, accel, kernel_image, user_disks):
    holder = _Booted(serial_log_dir, accel, kernel_image, user_disks.drives)
    yield holder
    if holder.g is not None:
        holder.g.close()


@pytest.fixture
def ug(request, _booted):
    """The module's 256 MiB guest with the programs at /mnt/bin and swap on sdb."""
    return _booted.get(request.node)


# -- what the kernel says --------------------------------------------------------

def census(g):
    """`check` passes; its census of frames by owner."""
    out = g.run("check")
    lines = out.split("\n")
    assert lines[-1] == "check: ok", out
    return {l.split()[0]: int(l.split()[1]) for l in lines[:-1] if len(l.split()) == 2}


def numbers(text, pattern=r"^(\S+?):?\s+(\d+)(?: kB)?$"):
    return {m.group(1): int(m.group(2)) for m in re.finditer(pattern, text, re.M)}


def vmstat(g):
    return numbers(g.run("cat /proc/vmstat"))


def slab_objects(g):
    """{cache: active objects} from /proc/slabinfo."""
    out = {}
    for line in g.run("cat /proc/slabinfo").split("\n"):
        f = line.split()
        if len(f) > 2 and not line.startswith(("#", "slabinfo")) and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out


def swap_used(g):
    """Swap slots in use, summed over /proc/swaps."""
    lines = g.run("cat /proc/swaps").split("\n")[1:]
    return sum(int(l.split()[3]) for l in lines if l.strip())


def counts(g):
    """Frames by owner, slab objects by cache, swap slots: after dropping the
    clean page cache and the dentries and inodes, which are caches."""
    g.run("sync")
    g.run("echo 3 > /proc/sys/vm/drop_caches")
    c = census(g)
    # the per-cpu free list's frames are census "anon" (KIND_ANON records,
    # not mapped): they are free frames
    pcp = [l for l in g.run("cat /sys/kernel/debug/mem_map").split("\n") if l.startswith("pcp")]
    c["pcp"] = len(pcp[0].split()) - 1 if pcp else 0
    c["anon"] = c.get("anon", 0) - c["pcp"]
    return c, slab_objects(g), swap_used(g)


def assert_counts_back(before, after):
    (c0, s0, w0), (c1, s1, w1) = before, after
    for kind in ("pagetable", "anon", "pagecache", "kernel", "vmalloc", "swapcache"):
        assert c1.get(kind, 0) == c0.get(kind, 0), (kind, c0, c1)
    # a frame is free or kept by a slab cache (an empty slab may stay cached)
    assert c1["free"] + c1["pcp"] + c1.get("slab", 0) == \
        c0["free"] + c0["pcp"] + c0.get("slab", 0), (c0, c1)
    changed = {n: (s0.get(n, 0), s1.get(n, 0)) for n in set(s0) | set(s1)
               if s0.get(n, 0) != s1.get(n, 0)}
    assert not changed, "slab objects not back: %s" % changed
    assert w1 == w0, (w0, w1)


def status(g, pid):
    return g.run("cat /proc/%d/status" % pid)


def stat_fields(g, pid):
    """/proc/PID/stat's fields after the command name (field 3 is [0])."""
    out = g.run("cat /proc/%d/stat" % pid)
    line = [l for l in out.split("\n") if l.startswith("%d (" % pid)][-1]
    return line[line.rindex(")") + 2:].split()


def utime(g, pid):
    return int(stat_fields(g, pid)[11])          # field 14, in USER_HZ ticks


HOLDING = r"hog {pid}: holding \d+ MiB until killed"      # hog's last line


def background(g, cmd):
    """`run CMD &`: the pid it printed."""
    out = g.run("run %s &" % cmd)
    m = re.search(r"^\[(\d+)\]$", out, re.M)
    assert m, out
    return int(m.group(1))


def wait_for(what, fn, timeout=120, every=0.3):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(every)


def pids_named(g, name):
    out = g.run("ps")
    return [int(l.split()[0]) for l in out.split("\n")[1:]
            if l.split() and l.split()[-1] == name and l.split()[0].isdigit()]


def alive(g):
    assert g.run("echo alive") == "alive"


# -- usertests ---------------------------------------------------------------------

def usertests_names(g):
    out = g.run("run /mnt/bin/usertests -l", timeout=60)
    return [l.split()[0] for l in out.split("\n")
            if l and not l.startswith(" ") and "[extra]" not in l]


def run_usertests(g, names, timeout=900):
    """usertests' output and {test: OK/FAILED/SKIPPED}. The kernel's own lines
    (a segfault line, execve's reason) may come between `test NAME: ` and
    the result, on lines of their own."""
    out = g.run("run /mnt/bin/usertests -d /mnt %s" % " ".join(names), timeout=timeout)
    results = {}
    for chunk in re.split(r"^test ", out, flags=re.M)[1:]:
        name, _, rest = chunk.partition(": ")
        m = re.search(r"(?:\A|\n)(OK|FAILED|SKIPPED)\b", rest)
        results[name] = m.group(1) if m else "no result"
    return out, results


def test_usertests_pass_except_the_memory_tests(ug):
    """Every default usertests test but the memory-syscall ones (those are
    test_mm_syscalls.py's): each `test NAME: OK`, exit status 0."""
    names = [n for n in usertests_names(ug) if n not in MEMORY_TESTS]
    assert len(names) >= 60 and "badelf" in names and "unlink_open" in names, names
    out, results = run_usertests(ug, names)
    failed = {n: r for n, r in results.items() if r != "OK"}
    assert not failed, out
    assert set(results) == set(names), out
    assert "ALL TESTS PASSED" in out and "usertests: exit status" not in out, out
    assert "usertests: %d passed, 0 failed, 0 skipped" % len(names) in out, out
    census(ug)


# -- fork and copy-on-write ------------------------------------------------------

def test_after_fork_each_side_sees_its_own_data_and_cow_counters_move(ug):
    before = vmstat(ug)
    out = ug.run("run /mnt/bin/forkcow 1000", timeout=300)
    after = vmstat(ug)
    m = re.search(r"^forkcow: parent (\d+) and child (\d+) each saw their own data in (\d+) pages$",
                  out, re.M)
    assert m and "FAILED" not in out and "exit status" not in out, out
    pages = int(m.group(3))
    assert pages == 1036
    copies = after["pgcowfault"] - before["pgcowfault"]
    reused = after["pgcowreuse"] - before["pgcowreuse"]
    # both sides wrote every page: the first writer copies each one, the
    # second copies it too or reuses the page it now holds alone
    assert copies >= pages, (copies, reused)
    assert copies + reused >= 2 * pages, (copies, reused)
    assert copies + reused < 4 * pages, (copies, reused)        # a count, not noise
    census(ug)


# -- bad pointers ------------------------------------------------------------------

def test_bad_pointers_answer_efault_and_leak_nothing(ug):
    """usertests' EFAULT checks (every syscall that takes a pointer, with five
    kinds of bad pointer) pass; afterwards the frames, slab objects and swap
    slots are where they were and no oops was printed."""
    run_usertests(ug, EFAULT_TESTS)              # fills caches that stay filled
    before = counts(ug)
    log = ug.log_size()
    out, results = run_usertests(ug, EFAULT_TESTS)
    assert results == {n: "OK" for n in EFAULT_TESTS}, out
    after = counts(ug)
    assert "oops" not in ug.log_text(log)
    assert_counts_back(before, after)
    alive(ug)


# -- SIGSEGV -----------------------------------------------------------------------

def elf_text_segment(path):
    """(start, size) of the executable PT_LOAD of a static ELF64, page-rounded,
    as the kernel's VMA for it."""
    data = path.read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, p_flags, _, p_vaddr, _, _, p_memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_flags & 1:
            start = p_vaddr & ~0xFFF
            end = (p_vaddr + p_memsz + 0xFFF) & ~0xFFF
            return start, end - start
    raise AssertionError("no executable PT_LOAD in %s" % path)


def test_segv_modes_print_linuxs_line_and_die_by_sigsegv(ug):
    text = elf_text_segment(disks.USER_DIR / "segv")
    modes = ug.run("run /mnt/bin/segv -l").split("\n")
    assert set(SEGV_ERROR) | {"noncanonical"} == set(modes), modes
    for mode in modes:
        out = ug.run("run /mnt/bin/segv %s" % mode)
        m = re.search(r"^segv: %s: (0x[0-9a-f]+|\(nil\))$" % re.escape(mode), out, re.M)
        assert m, out
        addr = 0 if m.group(1) == "(nil)" else int(m.group(1), 16)
        # the console's report of the wait status: killed by signal 11, no core
        assert out.split("\n")[-1] == "segv: killed by SIGSEGV", out
        if mode == "noncanonical":
            # #GP, not #PF: Linux's "traps:" line without an address
            g = GP_LINE.search(out)
            assert g and g.group(1) == "segv" and g.group(5) == "segv", out
            ip = int(g.group(3), 16)
            assert (int(g.group(6), 16), int(g.group(7), 16)) == text
            assert text[0] <= ip < text[0] + text[1]
            continue
        s = SEGV_LINE.search(out)
        assert s and s.group(1) == "segv", out
        at, ip, sp, err = (int(s.group(i), 16) for i in (3, 4, 5, 6))
        assert at == addr, (mode, out)
        assert err in SEGV_ERROR[mode], (mode, hex(err), out)
        assert 0x7FF000000000 <= sp < USER_END, out                # on its stack
        if err & PF_INSTR:
            assert ip == at and s.group(7) is None, out            # no file VMA holds ip
        else:
            assert s.group(7) == "segv", out
            assert (int(s.group(8), 16), int(s.group(9), 16)) == text, (out, text)
            assert text[0] <= ip < text[0] + text[1], out
    dmesg = ug.run("dmesg")
    assert len(SEGV_LINE.findall(dmesg)) >= len(modes) - 1
    usertests_wait = run_usertests(ug, ["sigchld", "segv_info"])[1]
    assert usertests_wait == {"sigchld": "OK", "segv_info": "OK"}
    alive(ug)
    census(ug)


# -- the host's page-table walk ----------------------------------------------------

def vmas(maps_text):
    out = []
    for line in maps_text.split("\n"):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps])", line)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    return out


def frame_kinds(g, pfns):
    """{pfn: kind name} from the guest's mem_map (the kernel's own records)."""
    kinds = {}
    pfns = sorted(pfns)
    for i in range(0, len(pfns), 200):
        part = pfns[i:i + 200]
        out = g.python("print(' '.join(str(k.mem_map.kind(p)) for p in %r))" % part)
        kinds.update(zip(part, (KIND_NAMES[int(x)] for x in out.split())))
    return kinds


def test_host_walk_of_a_running_program(ug):
    """A program with heap, stack, text, data and bss, paused in the middle of
    its work: every user-accessible entry lies in one of its VMAs with no more
    rights than the VMA; none maps a frame the kernel owns; the kernel half is
    supervisor-only; nothing in user space is writable and executable."""
    pid = ug.run_background("/mnt/bin/hog 1 4", HOLDING)
    wait_for("hog to sleep", lambda: re.search(r"^State:\s+S", status(ug, pid), re.M))
    maps = vmas(ug.run("cat /proc/%d/maps" % pid))
    pgd = int(re.search(r"^Pgd:\s+(0x[0-9a-f]+)$", status(ug, pid), re.M).group(1), 16)
    with ug.paused():
        w = ug.walker(pgd)
        leaves = list(w.mappings())
        tables = set(w.table_frames())
    assert not w.anomalies, w.anomalies
    user = [m for m in leaves if m.user]
    kernel = [m for m in leaves if not m.user]
    assert len(user) >= 1024, len(user)                     # the 4 MiB it touched, and more
    for m in user:
        assert m.end <= USER_END, m
        vma = [v for v in maps if v[0] <= m.va and m.end <= v[1]]
        assert len(vma) == 1, (m, maps)
        perms = vma[0][2]
        assert perms[0] == "r", (m, perms)
        assert not m.writable or perms[1] == "w", (m, perms)
        assert not m.executable or perms[2] == "x", (m, perms)
        assert not (m.writable and m.executable), m           # W^X
        assert m.pa >> 12 not in tables, m                    # never a page table
    assert all(m.va >= 1 << 47 for m in kernel), [m for m in kernel if m.va < 1 << 47][:3]
    assert kernel and not any(m.user for m in leaves if m.va >= 1 << 47)
    kinds = frame_kinds(ug, {m.pa >> 12 for m in user})
    allowed = {KIND_NAMES[KIND_ANON], KIND_NAMES[KIND_PAGECACHE], KIND_NAMES[KIND_ZERO]}
    wrong = {hex(p << 12): k for p, k in kinds.items() if k not in allowed}
    assert not wrong, "user entries reach kernel frames: %s" % wrong
    # the writable user pages are anonymous: none is the zero page or a file page
    for m in user:
        if m.writable:
            assert kinds[m.pa >> 12] == KIND_NAMES[KIND_ANON], m
    ug.run("kill -9 %d" % pid)
    wait_for("hog to be reaped", lambda: pid not in pids_named(ug, "hog"))


# -- execve's failures -------------------------------------------------------------

def test_failed_execve_returns_every_frame_slab_object_and_swap_slot(ug):
    """usertests badelf checks each bad file's errno (ENOEXEC, EACCES...); here
    the console's run of a truncated ELF, a corrupt one, a directory and a
    missing file answers its errno, and the counts come back."""
    cases = (("/mnt/badelf/truncated-ehdr-phdrs", "ENOEXEC"), ("/mnt/badelf/badmagic", "ENOEXEC"),
             ("/mnt/badelf/phoffpastend", "ENOEXEC"), ("/mnt/bin", "EACCES"),
             ("/mnt/bin/nonexistent", "ENOENT"))
    assert run_usertests(ug, ["badelf"])[1] == {"badelf": "OK"}          # warm the caches
    for path, errname in cases:
        ug.run_expect_error("run %s" % path)
    ug.run("run /mnt/badelf/truncated-half")
    before = counts(ug)
    out, results = run_usertests(ug, ["badelf", "exec"])
    assert results == {"badelf": "OK", "exec": "OK"}, out
    for path, errname in cases:
        line = ug.run_expect_error("run %s" % path)
        assert line.startswith("error: %s:" % errname), (path, line)
    # cut in half, its headers whole: execve succeeds and the text it lacks
    # kills it (SIGSEGV or SIGBUS, as on Linux); that teardown leaks nothing either
    out = ug.run("run /mnt/badelf/truncated-half")
    assert re.search(r"^truncated-half: killed by SIG(SEGV|BUS)$", out, re.M), out
    after = counts(ug)
    assert_counts_back(before, after)


# -- fork bomb ---------------------------------------------------------------------

def test_fork_bomb_meets_eagain_at_the_task_limit_and_killing_it_returns_every_frame(ug):
    assert "forkbomb: reaped 5" in ug.run("run /mnt/bin/forkbomb -m 5")   # warm up
    before = counts(ug)
    log = ug.log_size()
    pid = background(ug, "/mnt/bin/forkbomb -k")
    line = wait_for("fork to fail", lambda: ug.run_raw("echo") is not None and re.search(
        r"forkbomb: fork failed after (\d+) children: (\S+)", ug.log_text(log)), timeout=300)
    assert line.group(2) == "EAGAIN", line.group(0)
    children = int(line.group(1))
    ps = ug.run("ps").split("\n")[1:]
    assert len(ps) == MAX_TASKS, len(ps)
    assert len(pids_named(ug, "forkbomb")) == children + 1
    # the console is alive, and its own run meets the same limit
    alive(ug)
    assert ug.run_expect_error("run /mnt/bin/hello").startswith("error: EAGAIN")
    pgrp = int(stat_fields(ug, pid)[2])
    assert pgrp == pid
    ug.run("kill -9 -%d" % pgrp)
    wait_for("the bomb to be reaped", lambda: not pids_named(ug, "forkbomb"), timeout=300)
    after = counts(ug)
    assert_counts_back(before, after)
    assert "hello, world" in ug.run("run /mnt/bin/hello")


# -- CPU sharing -------------------------------------------------------------------

def test_two_cpu_bound_programs_and_the_console_share_the_cpu(ug):
    """Two spins that never print: their CPU time (utime in /proc/PID/stat)
    both grow while the console answers commands."""
    a = background(ug, "/mnt/bin/spin -n 1000000000000000")
    b = background(ug, "/mnt/bin/spin -n 1000000000000000")
    ua0, ub0 = utime(ug, a), utime(ug, b)
    t0 = time.monotonic()
    for _ in range(10):                         # the console answers meanwhile
        alive(ug)
        time.sleep(0.3)
    ua1, ub1 = utime(ug, a), utime(ug, b)
    elapsed = time.monotonic() - t0
    da, db = ua1 - ua0, ub1 - ub0
    assert da > 0 and db > 0, (da, db)
    # each had a fair part of the CPU (a third each, the console the rest),
    # and together no more than the time that passed (USER_HZ = 100)
    assert min(da, db) >= 0.2 * max(da, db), (da, db)
    assert da + db <= elapsed * 100 * 1.1 + 2, (da, db, elapsed)
    for pid in (a, b):
        assert stat_fields(ug, pid)[0] == "R"
    ug.run("kill -9 %d %d" % (a, b))
    wait_for("the spins to be reaped", lambda: not pids_named(ug, "spin"))


# -- OOM ---------------------------------------------------------------------------

def test_oom_killer_picks_by_badness_and_oom_score_adj(boot, tmp_path):
    """In 128 MiB without swap: a protected 48 MiB holder (oom_score_adj
    -1000), a small holder that volunteers (+1000) and a runaway hog in
    the foreground. The volunteer dies first though it is the smallest,
    then the runaway; the protected holder keeps its memory, and the
    console and new programs carry on."""
    d = disks.fresh_disks(tmp_path, swap=False)
    g = boot(mem="128M", drives=d.drives)
    big = g.run_background("/mnt/bin/hog 4 48", HOLDING)
    g.run("echo -1000 > /proc/%d/oom_score_adj" % big)
    small = g.run_background("/mnt/bin/hog 1 4", HOLDING)
    g.run("echo 1000 > /proc/%d/oom_score_adj" % small)
    assert g.run("cat /proc/%d/oom_score_adj" % small) == "1000"
    log = g.log_size()
    out = g.run("run /mnt/bin/hog 2", timeout=120)
    assert out.split("\n")[-1] == "hog: killed by SIGKILL", out[-2000:]
    kills = re.findall(r"Out of memory: Killed process (\d+) \((\S+)\).*oom_score_adj:(-?\d+)",
                       g.log_text(log))
    runaway = int(re.search(r"^hog (\d+): ", out, re.M).group(1))
    assert [(int(p), adj) for p, _, adj in kills] == [(small, "1000"), (runaway, "0")], kills
    assert small not in pids_named(g, "hog") and big in pids_named(g, "hog")
    assert numbers(status(g, big))["RssAnon"] >= 48 << 10
    alive(g)
    assert "hello, world" in g.run("run /mnt/bin/hello")
    assert vmstat(g)["oom_kill"] == 2
    g.run("kill -9 %d" % big)
    census(g)
