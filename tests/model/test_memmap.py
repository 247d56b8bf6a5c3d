"""tools/memmap's pieces on the host (kpyqemu/memmap.py): the mem_map walk
that gives each block head's owner to its 2^order frames, slab pages by
their cache's backend, pcp frames told from mapped anon; the PNG encoder
(decoded back: chunk CRCs, sizes, each frame's cell colour); the
fragmentation chart. Also a real kernel's mem_map on the simulated machine
against its /proc/meminfo."""

import struct

from kernel_py.mm import types as P
from kernel_py.mm.slab.kmalloc import LARGE_AUX
from kernel_py.shell.shell import Shell
from kpyqemu import memmap
from mmsupport import boot
import kernel_py.shell.all  # noqa: F401


def record(kind, order=0, aux=0, flags=0):
    return struct.pack("<HBBIII", flags | kind << P.KIND_SHIFT, order, aux, 1, 0, 0)


def synthetic():
    recs = bytearray(16 * 32)
    put = lambda pfn, rec: recs.__setitem__(slice(16 * pfn, 16 * pfn + 16), rec)
    put(0, record(P.KIND_FREE, 3, flags=P.PG_buddy))        # 0-7 free order 3
    put(8, record(P.KIND_SLAB, 1, aux=4))                   # 8-9 slab cache 4 (slab)
    put(10, record(P.KIND_SLAB, 0, aux=255))                # SLOB page
    put(11, record(P.KIND_ANON))
    put(12, record(P.KIND_ANON))                            # on the pcp list
    put(13, record(P.KIND_PAGETABLE))
    put(16, record(P.KIND_KERNEL, 2, aux=LARGE_AUX, flags=P.PG_head))   # 16-19, tails marked
    for t in (17, 18, 19):
        put(t, struct.pack("<HBBIII", P.PG_tail, 0, 0, 0, 16, 0))
    put(20, record(P.KIND_VMALLOC))
    put(24, record(P.KIND_PAGECACHE))
    return bytes(recs)


def test_classify_gives_each_head_its_block():
    snap = memmap.classify(synthetic(), 32, {4: "slab", 0: "slub"}, {12})
    assert snap.cats[:8] == ["free3"] * 8
    assert snap.cats[8:14] == ["slab", "slab", "slob", "anon", "pcp", "pagetable"]
    assert snap.cats[16:20] == ["kmalloc_large"] * 4
    assert snap.cats[20] == "vmalloc" and snap.cats[24] == "pagecache"
    assert snap.counts()["reserved"] == 32 - 8 - 6 - 4 - 2


def test_png_roundtrip_has_one_cell_per_frame_in_its_colour():
    snap = memmap.classify(synthetic(), 32, {4: "slab"}, {12})
    data = memmap.memmap_canvas(snap, columns=8, cell=3).png()
    w, h, rows = memmap.read_png(data)
    assert data[12:16] == b"IHDR" and w == 8 * 3 + 20 + 230
    top = 24
    for pfn, cat in enumerate(snap.cats):
        x, y = (pfn % 8) * 3 + 1, top + (pfn // 8) * 3 + 1
        assert tuple(rows[y][3 * x:3 * x + 3]) == memmap.COLOURS[cat], (pfn, cat)


def test_frag_chart_stacks_free_pages_by_order():
    samples = [(10, [256, 0, 64] + [0] * 8), (20, [0] * 10 + [1])]
    w, h, rows = memmap.read_png(memmap.frag_canvas(samples, height=100, bar=2).png())
    left, top = 10, 24
    px = lambda x, y: tuple(rows[y][3 * x:3 * x + 3])
    # sample 1: 256 order-0 pages (25 px) under 64 order-2 blocks (25 px), of a 1024 peak
    assert px(left, top + 99) == memmap.COLOURS["free0"]
    assert px(left, top + 75) == memmap.COLOURS["free0"]
    assert px(left, top + 74) == px(left, top + 50) == memmap.COLOURS["free2"]
    assert px(left, top + 49) == (255, 255, 255)
    # sample 2: one order-10 block is the peak: the full height
    assert px(left + 2, top) == px(left + 2, top + 99) == memmap.COLOURS["free10"]


def test_simulated_kernel_frames_match_meminfo():
    k = boot(mem=64 << 20)
    sh = Shell(k)
    pid = sh.execute("spawn a")
    a = sh.execute("mmap %s 2M" % pid)
    sh.execute("touch %s %s 2M w" % (pid, a))
    sh.execute("vmalloc 100000")
    base, nr, backends, pcp = memmap.parse_meta(sh.execute("cat /sys/kernel/debug/mem_map"))
    snap = memmap.classify(bytes(k.hw.readbytes(base, nr * 16)), nr, backends, pcp)
    counts = snap.counts()
    mi = {l.split(":")[0]: int(l.split()[1]) for l in sh.execute("cat /proc/meminfo").split("\n")}
    free = sum(n for c, n in counts.items() if c.startswith("free"))
    assert free * 4 == mi["MemFree"]
    assert counts["anon"] * 4 == mi["AnonPages"] and counts["vmalloc"] * 4 == mi["VmallocUsed"]
    assert counts.get("pcp", 0) == len(k.pcp)


def test_unusable_index_is_linuxs_formula():
    # mm/vmstat.c: (free_pages - (blocks of order >= o, in order-o units) << o) * 1000 / free_pages
    row = [8, 4, 0, 1] + [0] * 7            # 8 + 8 + 8 = 24 free pages
    assert memmap.unusable_index(row, 0) == 0
    assert memmap.unusable_index(row, 1) == 8 * 1000 // 24       # the 8 single pages
    assert memmap.unusable_index(row, 2) == 16 * 1000 // 24      # only the order-3 block is usable
    assert memmap.unusable_index(row, 3) == 16 * 1000 // 24
    assert memmap.unusable_index(row, 4) == 1000
    assert memmap.unusable_index([0] * 11, 0) == 1000           # nothing free: all unusable


def test_kernel_unusable_index_file_agrees_with_buddyinfo():
    k = boot(mem=64 << 20)
    sh = Shell(k)
    sh.execute("alloc_pages 0")             # split a block: some order-0..n blocks free
    info = sh.execute("cat /sys/kernel/debug/extfrag/unusable_index").split("\n")
    buddy = sh.execute("cat /proc/buddyinfo").split("\n")
    assert len(info) == len(buddy)
    for iline, bline in zip(info, buddy):
        assert iline.split()[:4] == bline.split()[:4]          # Node 0, zone NAME
        nr = [int(x) for x in bline.split()[4:]]
        want = ["%d.%03d" % divmod(memmap.unusable_index(nr, o), 1000) for o in range(len(nr))]
        assert iline.split()[4:] == want
        assert want[0] == "0.000"


def test_frag_chart_title_fits_and_index_panel_draws():
    samples = [(5, [0] * 10 + [4]), (10, [512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]
    cv = memmap.frag_canvas(samples)
    title = "free pages by order, 2 samples, peak 4096 pages"
    assert cv.width >= 4 + 8 * len(title)
    # order-10 index: 0 in sample 1 (bottom of the panel), 1000 in sample 2 (top)
    w, h, rows = memmap.read_png(cv.png())
    itop = 24 + 240 + 50
    col = [tuple(rows[y][3 * (10 + 3):3 * (10 + 3) + 3]) for y in range(itop, itop + 160)]
    assert memmap.INDEX_COLOURS[10] in col[:3]
    # an OOM mark: a red tick under the axis at sample 1 only
    w, h, rows = memmap.read_png(memmap.frag_canvas(samples, marks=[1]).png())
    tick = lambda i: tuple(rows[24 + 240 + 3][3 * (10 + 3 * i):3 * (10 + 3 * i) + 3])
    assert tick(1) == memmap.OOM_MARK and tick(0) != memmap.OOM_MARK
