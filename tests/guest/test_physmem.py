"""Physical memory on the real machine (issue 3): the buddy allocator and its
/proc files, bad input, ENOMEM, the CR3 takeover checked from the host (the
harness walks the tables from guest physical memory over QMP and compares
with the kernel image's ELF), host ptdump == guest ptdump, NULL faults, and
boots at 128 MiB, 4 GiB and 8 GiB."""

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from kpyqemu import ptdump as hptdump
from kpyqemu.guest import image_path

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, E820_RAM, KERNEL_BASE
from kernel_py.arch.x86.ptdump import KERNEL_SPACE
from kernel_py.mm.page.zone import int_sqrt
from kernel_py.arch.x86.cpu import PAGE_SIZE

REPO = Path(__file__).resolve().parents[2]
ZONE_LIMITS = {"DMA": 16 << 20, "DMA32": 4 << 30, "Normal": 1 << 52}
ZONE_ORDER = ("DMA", "DMA32", "Normal")
MAX_ORDER = 10
PT_KERNEL = "/sys/kernel/debug/page_tables/kernel"


# -- parsing ------------------------------------------------------------------------
def buddyinfo(g):
    """{zone: [nr_free per order]}; every line must be in Linux's format
    ("Node 0, zone %8s " then "%6lu " per order)."""
    out = {}
    for line in g.run("cat /proc/buddyinfo").split("\n"):
        m = re.match(r"^Node 0, zone ([ \w]{8}) ((?: {0,5}\d+ ){11})$", line)
        assert m, "not a buddyinfo line: %r" % line
        assert len(m.group(2)) == 7 * 11, line
        out[m.group(1).strip()] = [int(x) for x in m.group(2).split()]
    return out


def free_pages_of(nr_free):
    return sum(n << o for o, n in enumerate(nr_free))


def zoneinfo(g):
    """{zone: {field: int, 'protection': [..], 'free_area': [..]}}."""
    zones = {}
    cur = None
    for line in g.run("cat /proc/zoneinfo").split("\n"):
        m = re.match(r"^Node 0, zone\s+(\w+)$", line)
        if m:
            cur = zones[m.group(1)] = {}
            continue
        m = re.match(r"^\s+(pages free|boost|min|low|high|spanned|present|managed|cma|"
                     r"nr_free_pages|start_pfn:)\s+(\d+)$", line)
        if m:
            cur[m.group(1).rstrip(":").replace("pages free", "free")] = int(m.group(2))
            continue
        m = re.match(r"^\s+(protection|free_area): \(([\d, ]*)\)$", line)
        if m:
            cur[m.group(1)] = [int(x) for x in m.group(2).split(",")]
            continue
        if line.strip():
            cur.setdefault("other", []).append(line)
    return zones


def meminfo(g):
    return {k: int(v) for k, v in re.findall(r"^([\w()]+):\s+(\d+) kB$",
                                             g.run("cat /proc/meminfo"), re.M)}


def banner_facts(g):
    """From the boot lines: init_mm's PML4, mem_map size, managed pages."""
    m = re.search(r"mm: mem_map (\d+) KiB at 0x([0-9a-f]+), managed pages (.*?), "
                  r"cr3=0x([0-9a-f]+)", g.banner)
    assert m, g.banner
    managed = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(3)))
    return {"mem_map_kib": int(m.group(1)), "mem_map": int(m.group(2), 16),
            "managed": managed, "pgd": int(m.group(4), 16)}


def platform_facts(g):
    """hw.memory_map() and hw.kernel_sections(), asked once per guest."""
    facts = getattr(g, "_physmem_facts", None)
    if facts is None:
        out = g.python("print(repr(hw.memory_map())); print(repr(hw.kernel_sections()))")
        mm_line, sec_line = [l for l in out.split("\n") if l.startswith("[")][:2]
        facts = {"memory_map": eval(mm_line), "sections": eval(sec_line)}
        g._physmem_facts = facts
    return facts


def ram_ranges(g):
    return [(b, b + n) for b, n, t in platform_facts(g)["memory_map"] if t == E820_RAM]


def alloc(g, order, zone=""):
    out = g.run(("alloc_pages %d %s" % (order, zone)).strip())
    assert re.match(r"^0x[0-9a-f]+$", out), out
    return int(out, 16)


def free(g, pa, order):
    assert g.run("free_pages 0x%x %d" % (pa, order)) == ""


def zone_of(pa):
    for name in ZONE_ORDER:
        if pa < ZONE_LIMITS[name]:
            return name


def after_alloc(nr_free, order):
    """The free counts after the buddy takes an `order` block: the smallest
    free block of at least that order is split, halves going back down."""
    nr = list(nr_free)
    o = order
    while nr[o] == 0:
        o += 1
    nr[o] -= 1
    for lower in range(order, o):
        nr[lower] += 1
    return nr


# -- the kernel image's ELF (independent of what the guest reports) ---------------------
def elf_sections(path):
    """{name: (addr, size, offset, type)} from an ELF64 file's section headers."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, path
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = hdrs[shstrndx][4]
    out = {}
    for name_off, typ, _flags, addr, off, size, *_ in hdrs:
        end = data.index(b"\0", stroff + name_off)
        out[data[stroff + name_off:end].decode()] = (addr, size, off, typ)
    return out, data


@pytest.fixture(scope="module")
def elf():
    path = image_path().with_suffix(".elf")
    if not path.is_file():
        pytest.skip("no %s next to the image" % path)
    return elf_sections(path)


# -- buddyinfo / zoneinfo / meminfo ---------------------------------------------------------
def test_buddyinfo_after_boot_in_linux_format(guest):
    bi = buddyinfo(guest)
    facts = banner_facts(guest)
    assert list(bi) == ["DMA", "DMA32"]          # 256 MiB: no memory above 4 GiB
    for name, nr in bi.items():
        # most of a fresh zone sits in max-order blocks
        assert nr[MAX_ORDER] * 1024 * 5 > free_pages_of(nr) * 4, (name, nr)
        assert free_pages_of(nr) <= facts["managed"][name]


def test_alloc_pattern_changes_buddyinfo_and_returns_to_boot_state(guest):
    before = buddyinfo(guest)
    pattern = [(0, "DMA32"), (3, "DMA32"), (1, "DMA32"), (10, "DMA32"), (5, "DMA"),
               (0, "DMA"), (2, "DMA32"), (9, "DMA32"), (0, "DMA32"), (4, "DMA"),
               (9, "DMA32"), (9, "DMA32"), (7, "DMA"), (7, "DMA"), (8, "DMA"), (8, "DMA"),
               (0, "DMA32"), (6, "DMA32")]
    held = []
    expect = {z: list(v) for z, v in before.items()}
    split_max = set()
    for order, zone in pattern:
        pa = alloc(guest, order, zone)
        assert pa % (PAGE_SIZE << order) == 0, (hex(pa), order)
        assert zone_of(pa) == zone, (hex(pa), zone)
        nxt = after_alloc(expect[zone], order)
        if order < MAX_ORDER and nxt[MAX_ORDER] < expect[zone][MAX_ORDER]:
            split_max.add(zone)
        expect[zone] = nxt
        assert buddyinfo(guest) == expect, (order, zone)
        held.append((pa, order))
    assert split_max == {"DMA", "DMA32"}    # the frees below must merge up to MAX_ORDER
    # no two blocks overlap
    spans = sorted((pa, pa + (PAGE_SIZE << o)) for pa, o in held)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # free in an order unlike the allocation order: every block merges back
    for pa, order in held[1::2] + held[0::2]:
        free(guest, pa, order)
    assert buddyinfo(guest) == before


def test_zoneinfo_lines(guest):
    zi = zoneinfo(guest)
    bi = buddyinfo(guest)
    facts = banner_facts(guest)
    assert list(zi) == ["DMA", "DMA32", "Normal"]
    for name, z in zi.items():
        for field in ("free", "min", "low", "high", "spanned", "present", "managed",
                      "nr_free_pages", "start_pfn", "protection", "free_area"):
            assert field in z, (name, field)
        assert "other" not in z, z.get("other")
    assert zi["Normal"]["present"] == 0 and zi["Normal"]["managed"] == 0
    total_managed = 0
    for name in ("DMA", "DMA32"):
        z = zi[name]
        assert z["free_area"] == bi[name]
        assert z["free"] == z["nr_free_pages"] == free_pages_of(bi[name])
        assert z["managed"] == facts["managed"][name]
        assert 0 < z["managed"] <= z["present"] <= z["spanned"]
        assert 0 < z["min"] < z["low"] < z["high"] < z["managed"]
        total_managed += z["managed"]
    assert zi["DMA"]["start_pfn"] == 0 and zi["DMA"]["spanned"] == 4096
    assert zi["DMA32"]["start_pfn"] == 4096
    # watermarks as Linux derives them: min_free_kbytes = sqrt(16 * lowmem KiB),
    # clamped to [128, 262144], split among the zones by managed size
    min_free_kbytes = max(128, min(262144, int_sqrt(total_managed * 4 * 16)))
    for name in ("DMA", "DMA32"):
        z = zi[name]
        assert z["min"] == (min_free_kbytes >> 2) * z["managed"] // total_managed
        tmp = max(z["min"] >> 2, z["managed"] * 10 // 10000)
        assert (z["low"], z["high"]) == (z["min"] + tmp, z["min"] + 2 * tmp)
    # lowmem_reserve: DMA keeps DMA32's managed/256 back from DMA32 callers
    assert zi["DMA"]["protection"][1] == zi["DMA32"]["managed"] // 256


def test_meminfo_consistent_with_buddyinfo(guest):
    bi = buddyinfo(guest)
    zi = zoneinfo(guest)
    mi = meminfo(guest)
    free_kb = sum(free_pages_of(nr) for nr in bi.values()) * 4
    assert mi["MemFree"] == free_kb
    assert mi["MemTotal"] == sum(z["managed"] for z in zi.values()) * 4
    reserve = sum(min(max(z["protection"]) + z["high"], z["managed"]) for z in zi.values())
    assert mi["MemFree"] - reserve * 4 <= mi["MemAvailable"] <= mi["MemTotal"]
    assert 200 << 10 < mi["MemTotal"] < 256 << 10
    vm = dict(l.split() for l in guest.run("cat /proc/vmstat").split("\n"))
    assert int(vm["nr_free_pages"]) * 4 == free_kb


# -- bad input -----------------------------------------------------------------------
BAD_ALLOCS = ["alloc_pages 11", "alloc_pages -1", "alloc_pages 99 DMA", "alloc_pages x",
              "alloc_pages 0 HIGHMEM", "alloc_pages", "free_pages 0x1000",
              "free_pages 0x1001 0", "free_pages 0x3000 1", "free_pages 0x0 11",
              "free_pages 0x100000 0", "free_pages 0x100000000000 0",
              "free_pages -0x1000 0", "free_pages zz 0"]


def test_bad_input_is_one_error_line_and_changes_nothing(guest):
    before = buddyinfo(guest)
    for cmd in BAD_ALLOCS:
        line = guest.run_expect_error(cmd)
        assert line.startswith("error: EINVAL"), (cmd, line)
        assert buddyinfo(guest) == before, cmd


def test_bad_frees_of_real_blocks(guest):
    before = buddyinfo(guest)
    pa = alloc(guest, 3)
    held = buddyinfo(guest)
    for cmd in ("free_pages 0x%x 2" % pa,                 # wrong order (smaller)
                "free_pages 0x%x 4" % pa,                 # wrong order (larger)
                "free_pages 0x%x 0" % (pa + PAGE_SIZE),   # a frame inside the block
                "free_pages 0x%x 1" % (pa + 2 * PAGE_SIZE)):
        line = guest.run_expect_error(cmd)
        assert line.startswith("error: EINVAL"), (cmd, line)
        assert buddyinfo(guest) == held, cmd
    free(guest, pa, 3)
    assert buddyinfo(guest) == before
    line = guest.run_expect_error("free_pages 0x%x 3" % pa)          # double free
    assert line.startswith("error: EINVAL") and "0x%x" % pa in line, line
    assert buddyinfo(guest) == before
    # never allocated: frames inside a free max-order block, and a frame of
    # the kernel image (memblock-reserved, never in the buddy)
    big = alloc(guest, MAX_ORDER)
    free(guest, big, MAX_ORDER)
    for cmd in ("free_pages 0x%x 0" % (big + PAGE_SIZE), "free_pages 0x%x 3" % (big + 0x8000),
                "free_pages 0x%x %d" % (big, MAX_ORDER), "free_pages 0x200000 0"):
        line = guest.run_expect_error(cmd)
        assert line.startswith("error: EINVAL"), (cmd, line)
    assert buddyinfo(guest) == before


# -- the takeover, checked from the host --------------------------------------------------
@pytest.fixture
def kernel_walk(guest):
    """init_mm's tables, walked by the host (CR3 is init_mm's PML4)."""
    guest.run("pfdemo restore")
    pgd = banner_facts(guest)["pgd"]
    w = guest.walker(pgd)
    ents = hptdump.entries(w)
    cur = guest.walker()
    if cur.cr3 & ~0xFFF != pgd:         # a process's tables: the kernel half is shared
        assert hptdump.entries(cur, KERNEL_SPACE) == hptdump.entries(w, KERNEL_SPACE)
    return w, ents


def test_direct_map_covers_ram_rw_nx(guest, kernel_walk):
    w, ents = kernel_walk
    ram = ram_ranges(guest)
    assert sum(e - s for s, e in ram) > 250 << 20
    lo, hi = DIRECT_MAP_BASE, DIRECT_MAP_BASE + (64 << 40)
    dm = list(w.mappings(lo, hi))
    assert dm, "no direct map"
    for m in dm:
        assert m.pa == m.va - DIRECT_MAP_BASE, m
        assert m.writable and m.nx and not m.user and m.global_, m
        # only RAM is mapped (a page that is RAM at least in part)
        assert any(s < m.pa + m.size and m.pa < e for s, e in ram), m
    mapped = hptdump.kptdump.coalesce([(m.va, m.size, 0, 0) for m in dm])
    mapped = [(s - DIRECT_MAP_BASE, e - DIRECT_MAP_BASE) for s, e, _f, _l in mapped]
    for s, e in ram:                    # every whole RAM page is mapped
        s, e = -(-s // PAGE_SIZE) * PAGE_SIZE, e // PAGE_SIZE * PAGE_SIZE
        if s < e:
            assert any(a <= s and e <= b for a, b in mapped), (hex(s), hex(e), mapped)
    assert any(m.size == 2 << 20 for m in dm), "no 2 MiB pages in the direct map"
    # the host reads the frame behind a direct-map address itself
    t = w.translate(DIRECT_MAP_BASE + 0x100000)
    assert t.pa == 0x100000
    out = guest.run("peek 0x%x 2" % (DIRECT_MAP_BASE + 0x100000))
    words = [int(l.split()[1], 16) for l in out.split("\n")]
    assert struct.unpack("<2Q", guest.read_phys(0x100000, 16)) == tuple(words)


def test_kernel_image_text_rx_rodata_ro_data_rw_nx(guest, kernel_walk, elf):
    w, ents = kernel_walk
    secs, data = elf
    text, rodata = secs[".text"], secs[".rodata"]
    data_s, bss = secs[".data"], secs[".bss"]
    # what the guest reports agrees with the ELF
    reported = {n: (vs, ve) for n, vs, ve, ps in platform_facts(guest)["sections"]}
    assert reported["text"][0] == text[0] and reported["rodata"][0] == rodata[0]
    assert reported["data"][0] == data_s[0] and reported["bss"][0] == bss[0]

    def pages(addr, size):
        return range(addr, -(-(addr + size) // PAGE_SIZE) * PAGE_SIZE, PAGE_SIZE)

    guard = reported["stack-guard"][0]
    for va in pages(text[0], text[1]):
        t = w.translate(va)
        assert t and not t.writable and not t.nx and not t.user, hex(va)
        assert t.pa == va - KERNEL_BASE
    for va in pages(rodata[0], rodata[1]):
        t = w.translate(va)
        assert t and not t.writable and t.nx and not t.user, hex(va)
    for va in list(pages(data_s[0], data_s[1])) + list(pages(bss[0], bss[1])):
        t = w.translate(va)
        if va == guard:
            assert t is None, "stack guard page 0x%x is mapped" % va
            continue
        assert t and t.writable and t.nx and not t.user, hex(va)
    # the mapped frames hold the image: compare with the ELF's bytes
    for sec in (text, rodata):
        for off in (0, sec[1] // 2 & ~0xFFF):
            pa = w.translate(sec[0] + off).pa
            assert guest.read_phys(pa, 256) == data[sec[2] + off:sec[2] + off + 256], hex(sec[0] + off)
    # nothing else in the high kernel mapping
    image_end = -(-(bss[0] + bss[1]) // PAGE_SIZE) * PAGE_SIZE
    for m in w.mappings(KERNEL_BASE, 1 << 64):
        assert text[0] <= m.va and m.va + m.size <= image_end, m


def test_stack_guard_unmapped(guest, kernel_walk):
    w, _ = kernel_walk
    secs = {n: (vs, ve) for n, vs, ve, ps in platform_facts(guest)["sections"]}
    gs, ge = secs["stack-guard"]
    assert ge - gs == PAGE_SIZE and ge == secs["stack"][0]
    assert w.translate(gs) is None and w.translate(ge - 8) is None
    assert w.translate(ge) is not None and w.translate(gs - PAGE_SIZE) is not None
    line = guest.run_expect_error("peek 0x%x" % gs, allow_oops=True)
    assert line.startswith("error: EFAULT: CPU exception 14") and "address 0x%x" % gs in line


def test_no_wx_no_identity_map_nothing_user(guest, kernel_walk):
    w, ents = kernel_walk
    report = hptdump.check_wx(ents)
    assert report.ok, str(report)
    assert not [e for e in ents if e[2] & 4], "user-accessible kernel mappings"
    assert list(w.mappings(0, KERNEL_SPACE)) == [], "mappings in the user half"
    for va in (0, 0x1000, 0xB8000, 0x100000, 0x200000, 0x40000000, 0xFFFFF000):
        assert w.translate(va) is None, hex(va)
    assert not w.anomalies
    # the current tables (CR3) too, not only init_mm's
    cur = guest.walker()
    assert hptdump.check_wx(hptdump.entries(cur, KERNEL_SPACE)).ok


def test_null_dereference_faults(guest):
    for va in (0, 0x8, 0xFF8, 0x100000):
        out = guest.run("peek 0x%x" % va, check=False, allow_oops=True)
        assert out.startswith("oops: page fault"), out
        assert "cr2=0x%016x" % va in out
        errs = [l for l in out.split("\n") if l.startswith("error:")]
        assert len(errs) == 1 and re.match(
            r"^error: EFAULT: CPU exception 14 \(error code 0x0\) at address 0x%x, "
            r"rip 0xffffffff8[0-9a-f]{7}$" % va, errs[0]), out
    assert guest.run_expect_error("peek 0x800000000000").startswith("error: EINVAL")
    assert guest.run("echo alive") == "alive"


def test_host_ptdump_equals_guest(guest, kernel_walk):
    """tools/ptdump's text equals the guest's own dump, character for
    character. Nothing is normalized: the only bits that may change between
    the two reads are accessed/dirty, which the CPU sets as it goes, and
    ptdump prints neither (both sides mask them with ptdump.SHOWN); the
    kernel's tables do not change while the console is idle."""
    w, ents = kernel_walk
    theirs = guest.run("cat " + PT_KERNEL)
    mine = hptdump.format_ptdump(ents)
    assert mine == theirs
    assert "---[ Low Kernel Mapping ]---" in mine and "---[ High Kernel Mapping ]---" in mine
    # the kernel-half dump through CR3, as the guest's current_kernel prints it
    cur = hptdump.dump(guest.walker(), start=KERNEL_SPACE)
    assert cur == guest.run("cat /sys/kernel/debug/page_tables/current_kernel")
    # and the command-line tool, over this guest's QMP socket
    guest._close_qmp()                       # QEMU serves one QMP client at a time
    r = subprocess.run([sys.executable, str(REPO / "tools" / "ptdump"), "--qmp", guest.qmp_path,
                        "--cr3", "0x%x" % w.cr3, "--check-wx"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == theirs + "\n" + str(hptdump.check_wx(ents)) + "\n"
    r = subprocess.run([sys.executable, str(REPO / "tools" / "ptdump"), "--qmp", guest.qmp_path,
                        "--cr3", "0x%x" % w.cr3, "--flags", "x", "--kernel"],
                       capture_output=True, text=True, timeout=120)
    text_lines = [l for l in r.stdout.split("\n") if l.startswith("0x")]
    assert text_lines and all(" x  pte" in l and " ro " in l for l in text_lines), r.stdout


# -- ENOMEM and boots at other sizes ---------------------------------------------------------
def exhaust_and_restore(g, order=MAX_ORDER, limit=400):
    boot_state = buddyinfo(g)
    held = []
    for _ in range(limit):
        out = g.run("alloc_pages %d" % order, check=False)
        if out.startswith("error:"):
            assert out == "error: ENOMEM"
            break
        held.append(int(out, 16))
    else:
        pytest.fail("alloc_pages %d never failed" % order)
    assert held
    zi = zoneinfo(g)
    # really exhausted: in every zone GFP_KERNEL may use, either no block of
    # that order is free or taking one would go below the min watermark plus
    # the reserve kept back from ZONE_NORMAL callers (the slow path's check)
    for name, z in zi.items():
        if z["managed"]:
            assert (z["free"] - (1 << order) + 1 <= z["min"] + z["protection"][2]
                    or not any(z["free_area"][order:])), (name, z)
    assert g.run("alloc_pages %d" % order, check=False) == "error: ENOMEM"
    assert g.run("echo alive") == "alive"
    for pa in held:
        free(g, pa, order)
    assert buddyinfo(g) == boot_state
    return held


def test_boot_128m_zones_and_enomem(boot):
    g = boot(mem="128M")
    assert re.search(r"kernel_py: 12\d MiB RAM", g.banner), g.banner
    bi = buddyinfo(g)
    assert list(bi) == ["DMA", "DMA32"]
    zi = zoneinfo(g)
    assert zi["DMA32"]["start_pfn"] == 4096
    assert zi["DMA32"]["start_pfn"] + zi["DMA32"]["spanned"] <= (128 << 20) // PAGE_SIZE
    assert 100 << 10 < meminfo(g)["MemTotal"] < 128 << 10
    held = exhaust_and_restore(g)
    assert len(held) > 15           # ~100 MiB free in 4 MiB blocks
    # mem_map: 16 bytes per frame
    f = banner_facts(g)
    assert f["mem_map_kib"] * 1024 <= 16 * (128 << 20) // PAGE_SIZE + PAGE_SIZE


@pytest.mark.parametrize("mem,normal_gib", [("4G", 1), ("8G", 5)])
def test_boot_large_has_zone_normal(boot, mem, normal_gib):
    """QEMU's pc machine puts 3 GiB below 4 GiB when RAM is >= 3.5 GiB and
    the rest from 4 GiB up: ZONE_NORMAL is present."""
    g = boot(mem=mem)
    ram = ram_ranges(g)
    above = sum(e - max(s, 4 << 30) for s, e in ram if e > 4 << 30)
    assert above == normal_gib << 30
    bi = buddyinfo(g)
    assert list(bi) == ["DMA", "DMA32", "Normal"]
    zi = zoneinfo(g)
    n = zi["Normal"]
    assert n["start_pfn"] == (4 << 30) // PAGE_SIZE
    assert n["present"] == n["spanned"] == above // PAGE_SIZE
    assert n["managed"] > n["present"] - 16384    # mem_map may sit there; little else
    assert zi["DMA32"]["start_pfn"] + zi["DMA32"]["spanned"] <= (4 << 30) // PAGE_SIZE
    for name in ZONE_ORDER:
        assert free_pages_of(bi[name]) == zi[name]["free"] <= zi[name]["managed"]
    mi = meminfo(g)
    assert mi["MemTotal"] == sum(z["managed"] for z in zi.values()) * 4
    # all but the kernel's Python heap (an eighth of RAM, at most 256 MiB) is managed
    assert mi["MemTotal"] > (((normal_gib + 3) << 20) - mi["PyHeapTotal"]) * 95 // 100
    # mem_map: 16 bytes per frame of the span
    f = banner_facts(g)
    max_pfn = max(e for s, e in ram) // PAGE_SIZE
    assert f["mem_map_kib"] * 1024 <= 16 * max_pfn + PAGE_SIZE
    # GFP_KERNEL prefers Normal; the block comes back
    pa = alloc(g, MAX_ORDER)
    assert pa >= 4 << 30
    pa2 = alloc(g, 3, "DMA32")
    assert 16 << 20 <= pa2 < 4 << 30
    free(g, pa, MAX_ORDER)
    free(g, pa2, 3)
    assert buddyinfo(g) == bi
    # the direct map reaches RAM above 4 GiB, RW NX; still no W+X
    w = g.walker(banner_facts(g)["pgd"])
    for s, e in ram:
        for pa in (-(-s // PAGE_SIZE) * PAGE_SIZE, e // PAGE_SIZE * PAGE_SIZE - PAGE_SIZE):
            t = w.translate(DIRECT_MAP_BASE + pa)
            assert t and t.pa == pa and t.writable and t.nx, hex(pa)
    assert w.translate(DIRECT_MAP_BASE + max_pfn * PAGE_SIZE) is None
    assert hptdump.check_wx(hptdump.entries(w)).ok
    assert hptdump.format_ptdump(hptdump.entries(w)) == g.run("cat " + PT_KERNEL)


# -- the benchmark command ---------------------------------------------------------------
def test_bench_pages_command(guest):
    before = buddyinfo(guest)
    for order in (0, 3):
        out = guest.run("bench pages %d 200" % order)
        m = re.match(r"^pages order=%d n=200 total_us=\d+ per_op_ns=\d+ pairs_per_s=(\d+) "
                     r"tsc_hz=\d+$" % order, out)
        assert m and int(m.group(1)) > 0, out
    assert guest.run_expect_error("bench pages 11").startswith("error: EINVAL")
    assert guest.run_expect_error("bench pages").startswith("error: EINVAL")
    assert buddyinfo(guest) == before
