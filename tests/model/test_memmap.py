"""tools/memmap's pieces on the host (kpyqemu/memmap.py): the mem_map walk
that gives each block head's owner to its 2^order frames, slab pages by
their cache's backend, pcp frames told from mapped anon; the PNG encoder
(decoded back: chunk CRCs, sizes, each frame's cell colour); the
fragmentation chart. Also a real kernel's mem_map on the simulated machine
against its /proc/meminfo."""

import struct

from kernel_py.mm import page as P
from kernel_py.mm.kmalloc import LARGE_AUX
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
