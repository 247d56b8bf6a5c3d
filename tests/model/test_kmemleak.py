"""kmemleak (issue 7 item 1) and per-site allocation tracking (item 2, slab)
on the simulated machine, through the kernel's shell, on every slab backend:
a leak made on purpose is found, a chain reachable from a root is not, a
pointer into the middle of an object is a reference, clear, free forgets,
the report's format, bad input, and the fast paths untouched when off."""

import re

import pytest

from kernel_py.kernel.kernel import Kernel
from kernel_py.mm.debug import kmemleak as KL
from kernel_py.mm.slab.kmalloc import Kmalloc
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401
from kernel_py.sim.machine import Machine

BACKENDS = ["slab", "slub", "slob"]
FILE = "/sys/kernel/debug/kmemleak"
DMB = 0xFFFF888000000000
REPORT_RE = re.compile(
    r"unreferenced object 0x([0-9a-f]+) \(size (\d+)\):\n"
    r'  comm "([^"]+)", pid (\d+), jiffies (\d+)\n'
    r"  hex dump \(first (\d+) bytes\):\n"
    r"((?:    [0-9a-f ]{47}  .{1,16}\n)+)"
    r"  backtrace \(crc ([0-9a-f]+)\):\n"
    r"((?:    \[<[0-9a-f]{16}>\] \S+\n?)+)")


def boot(backend="slub", extra=" kmemleak=on", min_age=0):
    hw = Machine(64 << 20, "slab=%s%s" % (backend, extra), console=lambda text: None)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    sh = Shell(k)
    if k.kmemleak is not None and min_age is not None:
        assert sh.execute("echo min_age=%d > %s" % (min_age, FILE)) == ""
    if k.kmemleak is not None and k.kmemleak.scanning:
        assert sh.execute("echo scan=off > %s" % FILE) == ""     # the tests scan when they choose
    return k, sh


def run(sh, line):
    out = sh.execute(line)
    assert not out.startswith("error:"), (line, out)
    return out


def alloc(sh, line):
    out = run(sh, line)
    assert re.fullmatch(r"0x[0-9a-f]+", out), out
    return int(out, 16)


def scan(sh, times=2):
    for _ in range(times):
        run(sh, "echo scan > %s" % FILE)


def reported(sh):
    """{address: (size, comm, pid, hex bytes, frames)} from the report,
    every line of which must belong to one well-formed block."""
    text = run(sh, "cat %s" % FILE)
    out = {}
    pos = 0
    for m in REPORT_RE.finditer(text + "\n"):
        assert m.start() == pos, text[pos:m.start()]
        pos = m.end()
        hexbytes = bytes(int(x, 16) for line in m.group(7).splitlines()
                         for x in line[4:51].split())
        frames = re.findall(r"\] (\S+)", m.group(9))
        out[int(m.group(1), 16)] = (int(m.group(2)), m.group(3), int(m.group(4)), hexbytes, frames)
    assert pos >= len(text), text[pos:]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_leak_found_with_linux_report(backend):
    k, sh = boot(backend)
    a = alloc(sh, "kmalloc 64")
    run(sh, "kwrite 0x%x 0 0x4142434445464748" % a)
    run(sh, "kforget 0x%x" % a)
    run(sh, "echo scan > %s" % FILE)
    assert a not in reported(sh)         # contents changed since allocation: gray this round
    run(sh, "echo scan > %s" % FILE)
    r = reported(sh)
    assert set(r) == {a}
    size, comm, pid, head, frames = r[a]
    assert size == 64 and comm == "kmalloc" and pid == 1
    assert head == k.hw.readbytes(a - DMB, 32) and head[:8] == bytes.fromhex("4847464544434241")
    assert frames == ["kmalloc", "cmd_kmalloc"]
    assert any("1 new suspected memory leaks" in line for line in k.log)
    assert "HGFEDCBA" in run(sh, "cat %s" % FILE)       # the hex dump's ASCII column


@pytest.mark.parametrize("backend", BACKENDS)
def test_chain_reachable_from_root_not_reported(backend):
    """root (console handle) -> A -> B (into its middle) -> C (vmalloc) -> D"""
    k, sh = boot(backend)
    a = alloc(sh, "kmalloc 64")
    b = alloc(sh, "kmalloc 128")
    c = alloc(sh, "vmalloc 8192")
    d = alloc(sh, "kmalloc 32")
    run(sh, "kwrite 0x%x 16 0x%x" % (a, b + 40))
    run(sh, "kwrite 0x%x 120 0x%x" % (b, c))
    run(sh, "kwrite 0x%x 4096 0x%x" % (c, d + 31))    # on the area's second page
    for x in (b, c, d):
        run(sh, "kforget 0x%x" % x)
    scan(sh, 3)
    assert reported(sh) == {}
    # cut the chain at B -> C: C and D leak, A and B stay reachable
    run(sh, "kmalloc 8")                                 # noise the scan must not mind
    handle_b = b
    k.console_handles[handle_b] = (128, "kmalloc")       # hold B again to rewrite it
    run(sh, "kwrite 0x%x 120 0" % b)
    run(sh, "kforget 0x%x" % b)
    scan(sh)
    assert set(reported(sh)) == {c, d}
    # dropping the root makes the rest of the chain unreferenced too
    run(sh, "kforget 0x%x" % a)
    scan(sh)
    assert set(reported(sh)) == {a, b, c, d}


@pytest.mark.parametrize("backend", BACKENDS)
def test_pointer_bounds(backend):
    """A value inside [start, start + size) references the object; one past
    the end does not; an unaligned word is not seen (Linux scans aligned
    words); an object pointing at itself is still a leak."""
    k, sh = boot(backend)
    holder = alloc(sh, "kmalloc 64")
    inside = alloc(sh, "kmalloc 32")
    past = alloc(sh, "kmalloc 96")          # alone in its cache: past + 96 is no object
    selfref = alloc(sh, "kmalloc 192")
    run(sh, "kwrite 0x%x 0 0x%x" % (holder, inside + 31))
    run(sh, "kwrite 0x%x 8 0x%x" % (holder, past + 96))
    run(sh, "kwrite 0x%x 0 0x%x" % (selfref, selfref + 8))
    for x in (inside, past, selfref):
        run(sh, "kforget 0x%x" % x)
    scan(sh)
    r = reported(sh)
    assert inside not in r and holder not in r
    assert past in r
    assert selfref in r


def test_unaligned_word_not_a_reference():
    k, sh = boot()
    holder = alloc(sh, "kmalloc 64")
    x = alloc(sh, "kmalloc 32")
    pa = holder - DMB
    k.hw.write64(pa + 4, x)                 # straddles two aligned words
    run(sh, "kforget 0x%x" % x)
    scan(sh)
    assert x in reported(sh)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clear_and_free(backend):
    k, sh = boot(backend)
    a = alloc(sh, "kmalloc 32")
    b = alloc(sh, "kmalloc 32")
    run(sh, "kforget 0x%x; kforget 0x%x" % (a, b))
    scan(sh)
    assert set(reported(sh)) == {a, b}
    run(sh, "echo clear > %s" % FILE)
    assert reported(sh) == {}
    scan(sh)
    assert reported(sh) == {}                # gray for good: not reported again
    c = alloc(sh, "kmalloc 32")
    run(sh, "kforget 0x%x" % c)
    scan(sh)
    assert set(reported(sh)) == {c}          # a new leak after clear is
    run(sh, "kfree 0x%x" % c)                # free forgets: gone from the report
    assert reported(sh) == {}
    assert c - DMB not in k.kmemleak.index
    scan(sh)
    assert reported(sh) == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmemleak_test_corpus(backend):
    """samples/kmemleak: exactly the 10 dropped objects are reported, none
    of the 10 list nodes (the list head is a root and points into node 0)."""
    k, sh = boot(backend)
    out = run(sh, "kmemleak-test")
    leaks = {int(a, 16) for a in re.findall(r"(?:kmalloc|vmalloc)\(\d+\) = (0x[0-9a-f]+)", out)}
    nodes = {int(a, 16) for a in re.findall(r"kzalloc\(sizeof\(\*elem\)\) = (0x[0-9a-f]+)", out)}
    assert len(leaks) == 10 and len(nodes) == 10
    held = alloc(sh, "kmalloc 256")
    scan(sh)
    r = reported(sh)
    true_leaks, false_pos = len(set(r) & leaks), len(set(r) - leaks)
    assert (true_leaks, false_pos) == (10, 0)
    assert held not in r and not nodes & set(r)
    assert {r[a][1] for a in r} == {"kmemleak-test"}


def test_young_objects_not_reported():
    k, sh = boot(min_age=600000)
    a = alloc(sh, "kmalloc 32")
    run(sh, "kforget 0x%x" % a)
    scan(sh, 3)
    assert reported(sh) == {}
    run(sh, "echo min_age=0 > %s" % FILE)
    scan(sh, 1)
    assert set(reported(sh)) == {a}


def test_kmem_cache_objects_and_dump():
    k, sh = boot()
    run(sh, "kmem_cache_create leaky 200")
    a = alloc(sh, "kmem_cache_alloc leaky")
    b = alloc(sh, "kmem_cache_alloc leaky")
    run(sh, "kforget 0x%x" % a)
    scan(sh)
    r = reported(sh)
    assert set(r) == {a} and r[a][0] == 200 and r[a][4] == ["kmem_cache_alloc", "cmd_kmem_cache_alloc"]
    run(sh, "echo dump=0x%x > %s" % (b, FILE))
    log = "\n".join(k.log)
    assert "kmemleak: Object 0x%x (size 200):" % b in log
    assert 'kmemleak:   comm "kmem_cache_alloc", pid 1, jiffies' in log
    run(sh, "kmem_cache_free leaky 0x%x" % b)
    assert b - DMB not in k.kmemleak.index
    assert sh.execute("echo dump=0x%x > %s" % (b, FILE)).startswith("error: EINVAL: Unknown object")


def test_kernel_api_not_leak_and_ignore():
    k, sh = boot()
    t = k.kmemleak
    a, b, c = (alloc(sh, "kmalloc 64") for _ in range(3))
    for x in (a, b, c):
        run(sh, "kforget 0x%x" % x)
    t.not_leak(a)                            # gray: scanned, so c it points to is referenced
    k.hw.write64(a - DMB, c)
    t.ignore(b)
    scan(sh)
    assert reported(sh) == {}
    # no_scan: a's pointer to c is no longer seen
    t.no_scan(a)
    scan(sh)
    assert set(reported(sh)) == {c}


def test_bad_input():
    k, sh = boot()
    a = alloc(sh, "kmalloc 64")
    before = run(sh, "cat /proc/slabinfo")
    for line in ["echo bogus > %s" % FILE, "echo on > %s" % FILE, "echo > %s" % FILE,
                 "echo dump=zz > %s" % FILE, "echo dump=0x1234 > %s" % FILE,
                 "echo dump=-5 > %s" % FILE, "echo min_age=-1 > %s" % FILE,
                 "echo min_age=x > %s" % FILE, "kforget 0x1234", "kforget", "kwrite 0x%x 3 1" % a,
                 "kwrite 0x%x 64 1" % a, "kwrite 0x%x -8 1" % a, "kwrite 0x%x 0 -1" % a,
                 "kwrite 0x%x 0 0x10000000000000000" % a, "kwrite 0x1000 0 1", "kread 0x%x" % a,
                 "cat /sys/kernel/debug/slab/nosuch/alloc_traces", "kmemleak-test x"]:
        out = sh.execute(line)
        assert out.startswith("error: E") and "\n" not in out, (line, out)
    assert run(sh, "cat /proc/slabinfo") == before
    assert a in k.console_handles and a - DMB in k.kmemleak.index
    run(sh, "kwrite 0x%x 56 0x1122334455667788" % a)
    assert run(sh, "kread 0x%x 56" % a) == "0x1122334455667788"


def test_off_by_default_leaves_fast_paths_alone():
    k, sh = boot(extra="", min_age=None)
    assert k.kmemleak is None
    km = k.kmalloc
    assert "kmalloc" not in vars(km) and "kfree" not in vars(km)
    assert all("alloc" not in vars(s) for s in k.slab.all_caches())
    assert sh.execute("cat %s" % FILE).startswith("error: EPERM")
    assert sh.execute("echo scan > %s" % FILE).startswith("error: EPERM")
    assert sh.execute("cat /sys/kernel/debug/alloc_sites").startswith("error: EPERM")
    assert run(sh, "kmemleak-test").count("= 0x") == 20        # still runs, untracked


def test_echo_off_restores_allocators():
    k, sh = boot()
    km = k.kmalloc
    assert vars(km)["kmalloc"].__name__ == "kmalloc"             # the tracking wrapper
    run(sh, "echo off > %s" % FILE)
    assert km.kmalloc.__func__ is Kmalloc.kmalloc and km.kfree.__func__ is Kmalloc.kfree
    assert sh.execute("cat %s" % FILE).startswith("error: EPERM")
    a = alloc(sh, "kmalloc 32")
    run(sh, "kfree 0x%x" % a)
    run(sh, "kmem_cache_create later 48")
    assert "alloc" not in vars(k.slab.find("later"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_alloc_traces_per_cache_and_summary(backend):
    k, sh = boot(backend)
    run(sh, "kmem_cache_create obj 100")
    objs = [alloc(sh, "kmem_cache_alloc obj") for _ in range(5)]
    run(sh, "kmem_cache_free obj 0x%x" % objs.pop())
    big = alloc(sh, "vmalloc 65536")
    small = [alloc(sh, "kmalloc 64") for _ in range(3)]
    text = run(sh, "cat /sys/kernel/debug/slab/obj/alloc_traces")
    lines = text.splitlines()
    assert re.fullmatch(r"      4 cmd_kmem_cache_alloc age=\d+(/\d+/\d+)? pid=1", lines[0]), lines
    assert lines[1:3] == ["        kmem_cache_alloc", "        cmd_kmem_cache_alloc"]
    summary = run(sh, "cat /sys/kernel/debug/alloc_sites").splitlines()
    assert summary[0].split() == ["bytes", "objects", "site", "caches"]
    rows = [l.split() for l in summary[1:]]
    by_site = {r[2]: (int(r[0]), int(r[1]), r[3]) for r in rows}
    assert by_site["cmd_vmalloc"] == (65536, 1, "vmalloc")
    assert by_site["cmd_kmem_cache_alloc"] == (400, 4, "obj")
    assert by_site["cmd_kmalloc"][:2] == (192, 3)
    assert [int(r[0]) for r in rows] == sorted((int(r[0]) for r in rows), reverse=True)
    # a growing site climbs to the top
    for _ in range(30):
        alloc(sh, "kmalloc 4096")
    top = run(sh, "cat /sys/kernel/debug/alloc_sites").splitlines()[1].split()
    assert top[2] == "cmd_kmalloc" and int(top[0]) == 30 * 4096 + 192
    assert big and small


def test_scan_rebuilds_after_frees_and_reuse():
    """Slots are reused; records follow the addresses through free/alloc."""
    k, sh = boot()
    booted = len(k.kmemleak.index)     # objects the boot made (the VFS's root, /dev...)
    addrs = [alloc(sh, "kmalloc 32") for _ in range(40)]
    for a in addrs[::2]:
        run(sh, "kfree 0x%x" % a)
    again = [alloc(sh, "kmalloc 32") for _ in range(20)]
    for a in addrs[1::2] + again:
        run(sh, "kforget 0x%x" % a)
    scan(sh)
    assert set(reported(sh)) == set(addrs[1::2]) | set(again)
    assert len(k.kmemleak.index) == booted + 40


def test_root_registry_names():
    names = [n for n, _ in KL.ROOTS]
    assert "console handles" in names and "kmemleak-test test_list" in names


def test_slub_debug_u_records_sites_without_the_scanner():
    """slub_debug=U (SLAB_STORE_USER): alloc_traces of the caches it names,
    the site summary; no kmemleak file."""
    k, sh = boot(extra=" slub_debug=U,kmalloc-64", min_age=None)
    assert k.kmemleak is not None and not k.kmemleak.scanning
    for _ in range(3):
        alloc(sh, "kmalloc 64")
    alloc(sh, "kmalloc 32")
    lines = run(sh, "cat /sys/kernel/debug/slab/kmalloc-64/alloc_traces").splitlines()
    assert re.fullmatch(r"      3 cmd_kmalloc age=\d+(/\d+/\d+)? pid=1", lines[0]), lines
    assert sh.execute("cat /sys/kernel/debug/slab/kmalloc-32/alloc_traces").startswith("error: ENOENT")
    sites = [l.split() for l in run(sh, "cat /sys/kernel/debug/alloc_sites").splitlines()[1:]]
    assert [r[:3] for r in sites if r[2] == "cmd_kmalloc"] == [["224", "4", "cmd_kmalloc"]]
    assert sh.execute("cat %s" % FILE).startswith("error: EPERM")
    assert sh.execute("echo scan > %s" % FILE).startswith("error: EPERM")
    assert sh.execute("bench kmemleak 10").startswith("error: EPERM")
    assert run(sh, "ls /sys/kernel/debug/slab") == "kmalloc-64"
    assert run(sh, "ls /sys/kernel/debug/slab/kmalloc-64") == "alloc_traces"
    assert "slab" in run(sh, "ls /sys/kernel/debug").split()
    assert not k.slab.find("kmalloc-64").debug()          # U alone is no debug cache


def random_graph(sh, rng, n):
    """n held objects (kmalloc 64..4096, some vmalloc), up to 4 pointers
    each (into a random byte of the target), a random third kept as roots.
    Returns (objects, sizes, edges, roots)."""
    objs, sizes = [], {}
    for _ in range(n):
        if rng.random() < 0.1:
            size = rng.choice((4096, 8192))
            va = alloc(sh, "vmalloc %d" % size)
        else:
            size = rng.choice((64, 96, 100, 200, 512, 1000, 4096))
            va = alloc(sh, "kmalloc %d" % size)
        objs.append(va)
        sizes[va] = size
    edges = {}
    for va in objs:
        edges[va] = [rng.choice(objs) for _ in range(rng.randrange(5))]
        for slot, dst in enumerate(edges[va]):
            run(sh, "kwrite 0x%x %d 0x%x" % (va, slot * 8, dst + rng.randrange(sizes[dst])))
    roots = set(rng.sample(objs, n // 3))
    for va in objs:
        if va not in roots:
            run(sh, "kforget 0x%x" % va)
    return objs, edges, roots


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_reported_exactly_the_unreachable(backend, seed):
    """Property: after two scans, the report is exactly the objects not
    reachable from the roots (reachability computed here, on the host)."""
    import random
    rng = random.Random(seed)
    k, sh = boot(backend)
    objs, edges, roots = random_graph(sh, rng, 60)
    live, todo = set(), list(roots)
    while todo:
        va = todo.pop()
        if va not in live:
            live.add(va)
            todo += [d for d in edges[va] if d != va]
    scan(sh)
    assert set(reported(sh)) == set(objs) - live


def test_scan_thread_runs_between_commands_and_obeys_scan_knobs():
    """Linux's kmemleak_scan_thread: the first scan a minute after boot, then
    every 600 s; scan=off / scan=0 stop it, scan=on and scan=SECS start it
    (at the next chance)."""
    hw = Machine(64 << 20, "kmemleak=on", console=lambda text: None)
    log = []
    k = Kernel(hw, console=log.append)
    k.boot()
    sh = Shell(k)
    t = k.kmemleak
    scans = []
    real_scan = t.scan
    t.scan = lambda: scans.append(1) or real_scan()
    assert any("Automatic memory scanning thread started" in m for m in log)
    assert t.next_scan - t.jiffies() > 55 * KL.HZ and t.scan_period == 600 * KL.HZ
    run(sh, "echo min_age=0 > %s" % FILE)
    a = alloc(sh, "kmalloc 96")
    run(sh, "kforget 0x%x" % a)
    assert not scans                                    # not yet: the first scan waits a minute
    run(sh, "echo scan=1 > %s" % FILE)                  # started: scans after this command
    assert len(scans) == 1 and t.scan_period == KL.HZ
    run(sh, "echo hello")
    assert len(scans) == 1                              # the next one is a second away
    t.next_scan = t.jiffies()                           # a second later
    run(sh, "echo hello")
    assert len(scans) == 2
    assert any("kmemleak: 1 new suspected memory leaks" in m for m in log)
    assert a in reported(sh)
    run(sh, "echo scan=off > %s" % FILE)
    assert t.next_scan is None
    run(sh, "echo hello")
    assert len(scans) == 2
    run(sh, "echo scan=on > %s" % FILE)                 # the period stays 1 s
    assert len(scans) == 3 and t.scan_period == KL.HZ
    for bad in ("scan=-5", "scan=soon"):
        assert sh.execute("echo %s > %s" % (bad, FILE)).startswith("error: EINVAL")
    run(sh, "echo scan=0 > %s" % FILE)
    assert t.next_scan is None
