"""The slab layer, kmalloc and vmalloc on the real machine (issue 4): each
backend chosen at boot, /proc/slabinfo and meminfo against what the tests
allocate, bad frees, slub_debug catching a use-after-free write and a red
zone overwrite, and vmalloc's mappings checked from the host over QMP
(the kernel's tables walked from CR3), with its guard page faulting."""

import re

import pytest

PAGE = 4096
DMB = 0xFFFF888000000000
SLABINFO_RE = re.compile(
    r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+) : tunables\s+(\d+)\s+(\d+)\s+(\d+)"
    r" : slabdata\s+(\d+)\s+(\d+)\s+(\d+)$")


def slabinfo(g):
    """{cache name: (active_objs, num_objs, objsize, objperslab, pagesperslab,
    active_slabs, num_slabs)} from /proc/slabinfo, format checked."""
    out = g.run("cat /proc/slabinfo")
    lines = out.split("\n")
    assert lines[0] == "slabinfo - version: 2.1"
    assert lines[1].startswith("# name            <active_objs> <num_objs> <objsize>")
    caches = {}
    for line in lines[2:]:
        m = SLABINFO_RE.match(line)
        assert m, "bad slabinfo line %r" % line
        v = [int(x) for x in m.groups()[1:]]
        caches[m.group(1)] = (v[0], v[1], v[2], v[3], v[4], v[8], v[9])
    return caches


def meminfo(g):
    return {k: int(v) for k, v in
            re.findall(r"^(\w+):\s+(\d+) kB$", g.run("cat /proc/meminfo"), re.M)}


def addr(out):
    assert re.fullmatch(r"0x[0-9a-f]+", out), out
    return int(out, 16)


# --- each backend chosen at boot ----------------------------------------------

@pytest.mark.parametrize("backend", ["slab", "slub", "slob"])
def test_backend_selected_at_boot_works(boot, backend):
    g = boot(cmdline="slab=%s" % backend)
    assert "slab: %s allocator" % backend.upper() in g.banner
    # kmalloc / kfree: distinct, direct-mapped, usable addresses
    vas = [addr(g.run("kmalloc %d" % size)) for size in (8, 100, 3000, 5000)]
    assert len(set(vas)) == 4
    for va in vas:
        assert DMB <= va < DMB + g.mem_bytes
    for va in vas:
        g.run("kfree 0x%x" % va)
    # kmem_cache_* on a cache of the boot backend
    out = g.run("kmem_cache_create gt-%s 200" % backend)
    assert out.startswith("gt-%s: %s, object 200 bytes" % (backend, backend)), out
    objs = [addr(g.run("kmem_cache_alloc gt-%s" % backend)) for _ in range(5)]
    assert len(set(objs)) == 5
    assert all(abs(a - b) >= 200 for a in objs for b in objs if a != b)
    for va in objs:
        g.run("kmem_cache_free gt-%s 0x%x" % (backend, va))
    g.run("kmem_cache_shrink gt-%s" % backend)
    g.run("kmem_cache_destroy gt-%s" % backend)
    assert "gt-%s" % backend not in slabinfo(g)
    assert g.run("echo alive") == "alive"


@pytest.mark.parametrize("backend", ["slab", "slub", "slob"])
def test_slabinfo_follows_allocations(boot, backend):
    """active_objs grows by what was allocated and returns after the frees;
    the slabs go back to the buddy on shrink (SLAB's array cache counts as
    active in Linux, so each count is taken after kmem_cache_shrink)."""
    g = boot(cmdline="slab=%s" % backend)
    name = "count-%s" % backend
    g.run("kmem_cache_create %s 256" % name)
    g.run("kmem_cache_shrink %s" % name)
    base = slabinfo(g)[name]
    assert base[0] == 0 and base[2] >= 256
    n = 40
    objs = [addr(g.run("kmem_cache_alloc %s" % name)) for _ in range(n)]
    g.run("kmem_cache_shrink %s" % name)
    after = slabinfo(g)[name]
    assert after[0] == n, after
    assert after[1] >= n
    if backend != "slob":               # SLOB's pages are shared by all caches: no slabs of its own
        assert after[6] >= 1
    for va in objs[:10]:
        g.run("kmem_cache_free %s 0x%x" % (name, va))
    g.run("kmem_cache_shrink %s" % name)
    assert slabinfo(g)[name][0] == n - 10
    for va in objs[10:]:
        g.run("kmem_cache_free %s 0x%x" % (name, va))
    g.run("kmem_cache_shrink %s" % name)
    end = slabinfo(g)[name]
    assert end[0] == 0 and end[1] == 0 and end[6] == 0, end
    g.run("kmem_cache_destroy %s" % name)


def test_meminfo_slab_lines_move(guest):
    before = meminfo(guest)
    assert before["Slab"] == before["SReclaimable"] + before["SUnreclaim"]
    guest.run("kmem_cache_create mi-big 4000")
    objs = [addr(guest.run("kmem_cache_alloc mi-big")) for _ in range(64)]
    during = meminfo(guest)
    assert during["Slab"] - before["Slab"] >= 64 * 4000 // 1024, (before, during)
    assert during["SUnreclaim"] - before["SUnreclaim"] == during["Slab"] - before["Slab"]
    assert during["MemFree"] < before["MemFree"]
    for va in objs:
        guest.run("kmem_cache_free mi-big 0x%x" % va)
    guest.run("kmem_cache_destroy mi-big")
    after = meminfo(guest)
    assert after["Slab"] <= before["Slab"] + 64, (before, after)


# --- bad input ------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["slab", "slub", "slob"])
def test_bad_frees_are_one_error_line_and_change_nothing(boot, backend):
    g = boot(cmdline="slab=%s" % backend)
    va = addr(g.run("kmalloc 64"))
    keep = addr(g.run("kmalloc 64"))
    g.run("kmem_cache_create bad-%s 128" % backend)
    obj = addr(g.run("kmem_cache_alloc bad-%s" % backend))
    info = g.run("cat /proc/slabinfo")
    bad = [
        "kfree 0x%x" % (DMB + 0x1234),          # never returned (firmware memory)
        "kfree 0x%x" % (va + 8),                # into the middle of an object
        "kfree 0x123456789",                    # not a direct-mapped address
        "kfree -0x%x" % (va - DMB),             # not an address at all
        "kmem_cache_free bad-%s 0x%x" % (backend, va),   # another cache's object
        "kmem_cache_free bad-%s 0x%x" % (backend, obj + 16),
    ]
    for cmd in bad:
        line = g.run_expect_error(cmd)
        assert line.startswith("error: EINVAL"), (cmd, line)
        assert g.run("cat /proc/slabinfo") == info, cmd
    g.run("kfree 0x%x" % va)
    info = g.run("cat /proc/slabinfo")
    line = g.run_expect_error("kfree 0x%x" % va)          # double free
    assert line.startswith("error: EINVAL") and "free" in line, line
    assert g.run("cat /proc/slabinfo") == info
    g.run("kmem_cache_free bad-%s 0x%x" % (backend, obj))
    line = g.run_expect_error("kmem_cache_free bad-%s 0x%x" % (backend, obj))
    assert line.startswith("error: EINVAL"), line
    # the allocator still works, and hands out distinct objects
    a, b = addr(g.run("kmalloc 64")), addr(g.run("kmalloc 64"))
    assert len({a, b, keep}) == 3
    for x in (a, b, keep):
        g.run("kfree 0x%x" % x)


# --- slub_debug -----------------------------------------------------------------

def test_slub_debug_detects_use_after_free_write(boot):
    g = boot(cmdline="slub_debug")
    assert "slub_debug" in g.banner
    va = addr(g.run("kmalloc 32"))
    g.run("kfree 0x%x" % va)
    g.python("hw.vwrite8(0x%x, 0x41)" % (va + 5))      # write after free
    out = g.run("kmalloc 32", check=False)             # the freed object comes back
    assert "BUG kmalloc-32: Poison overwritten" in out, out
    m = re.search(r"INFO: 0x([0-9a-f]+)-0x[0-9a-f]+ @offset=(\d+)\. First byte 0x41 instead of 0x6b", out)
    assert m and int(m.group(1), 16) == va + 5 and int(m.group(2)) == 5, out
    m = re.search(r"INFO: Object 0x([0-9a-f]+) @offset=5", out)
    assert m and int(m.group(1), 16) == va, out
    again = addr(out.split("\n")[-1])
    g.run("kfree 0x%x" % again)
    assert g.run("echo alive") == "alive"


def test_slub_debug_detects_redzone_overwrite(boot):
    g = boot(cmdline="slub_debug")
    va = addr(g.run("kmalloc 32"))
    info = g.run("cat /proc/slabinfo")
    g.python("hw.vwrite8(0x%x, 0x99)" % (va + 32))     # one byte past the object
    out = g.run("kfree 0x%x" % va, check=False)
    assert "BUG kmalloc-32: Redzone overwritten" in out, out
    errs = [l for l in out.split("\n") if l.startswith("error:")]
    assert len(errs) == 1, out
    assert re.search(r"^error: EFAULT: BUG kmalloc-32: Redzone overwritten: object 0x%x offset 32"
                     % va, errs[0]), errs[0]
    assert g.run("cat /proc/slabinfo") == info             # not freed
    g.run("kfree 0x%x" % va)                               # repaired: frees now
    assert g.run("echo alive") == "alive"


# --- vmalloc ----------------------------------------------------------------------

VMALLOCINFO_RE = re.compile(r"^0x([0-9a-f]{16})-0x([0-9a-f]{16})\s+(\d+) (\S+) pages=(\d+) vmalloc N0=(\d+)$")


def test_vmalloc_mapping_checked_over_qmp(guest):
    # fragment the order-0 free list, so the area's frames come from scattered pages
    held = [addr(guest.run("alloc_pages 0")) for _ in range(8)]
    for pa in held[::2]:
        guest.run("free_pages 0x%x 0" % pa)
    n = 4
    va = addr(guest.run("vmalloc %d" % (n * PAGE)))
    frames = [int(x) for x in re.findall(r"\d+", guest.python(
        "print(' '.join(str(k.vmalloc.vmalloc_to_page(0x%x + i * 4096)) for i in range(%d)))"
        % (va, n)))]
    assert len(frames) == n
    w = guest.walker()
    for i, pa in enumerate(frames):
        t = w.translate(va + i * PAGE)
        assert t is not None, "page %d of the area is not mapped" % i
        assert t.pa == pa and t.writable and t.nx
    assert any(frames[i + 1] != frames[i] + PAGE for i in range(n - 1)), \
        "frames %s are contiguous after fragmenting" % [hex(f) for f in frames]
    assert w.translate(va + n * PAGE) is None, "the guard page is mapped"
    # /proc/vmallocinfo, Linux's format; the size includes the guard page
    rows = [VMALLOCINFO_RE.match(l) for l in guest.run("cat /proc/vmallocinfo").split("\n")]
    assert all(rows), rows
    mine = [m for m in rows if int(m.group(1), 16) == va]
    assert len(mine) == 1
    m = mine[0]
    assert int(m.group(2), 16) == va + (n + 1) * PAGE
    assert int(m.group(3)) == (n + 1) * PAGE and int(m.group(5)) == n
    # data written through the area lands in those frames
    guest.python("hw.vwrite64(0x%x, 0x1122334455667788)" % (va + 2 * PAGE + 8))
    assert guest.read_u64(frames[2] + 8) == 0x1122334455667788
    guest.run("vfree 0x%x" % va)
    w = guest.walker()
    assert all(w.translate(va + i * PAGE) is None for i in range(n)), "vfree left a mapping"
    assert "0x%016x-" % va not in guest.run("cat /proc/vmallocinfo")
    for pa in held[1::2]:
        guest.run("free_pages 0x%x 0" % pa)


def test_vmalloc_guard_page_fault_names_the_area(guest):
    va = addr(guest.run("vmalloc 8192"))
    guest.python("hw.vwrite8(0x%x, 1)" % (va + 8191))          # the last byte is fine
    out = guest.python("hw.vread8(0x%x)" % (va + 8192), check=False, allow_oops=True)
    assert "oops:" in out, out
    m = re.search(r"BUG: unable to handle page fault for address: 0x([0-9a-f]+) "
                  r"\(vmalloc area 0x([0-9a-f]+)-0x([0-9a-f]+) \(2 pages\) guard page\)", out)
    assert m, out
    assert int(m.group(1), 16) == va + 8192 and int(m.group(2), 16) == va
    assert int(m.group(3), 16) == va + 8192
    assert guest.run("echo alive") == "alive"
    guest.run("vfree 0x%x" % va)
    line = guest.run_expect_error("vfree 0x%x" % va)
    assert line.startswith("error: EINVAL")
