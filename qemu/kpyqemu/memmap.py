"""A picture of physical memory (issue 7, item 7): one cell per frame,
coloured by owner, from the guest's mem_map read on the host over QMP; and
a fragmentation chart (free pages by buddy order over time) from soak
samples. PNG is written here with zlib and struct (no imaging library).

    from kpyqemu import memmap
    snap = memmap.snapshot(g)                  # Guest: console + QMP
    memmap.write_memmap_png("mem.png", snap)
    snap.counts()                              # {category: frames}

mem_map's record layout is kernel_py/mm/page/mem_map.py's (16 bytes a frame,
owner kind in the top nibble of the flags, the block order in byte 2, the
slab cache id in byte 3). Only block heads carry an owner: the walk gives
each head's kind to the 2^order frames of its block. What the host cannot
see in the records it asks the console once: /sys/kernel/debug/mem_map says
where mem_map is, each slab cache's backend by id, and which KIND_ANON
frames are really the per-cpu free list (pcp).
"""

import struct
import zlib

from kernel_py.mm import types as P
from kernel_py.mm.page.extfrag import unusable_free_index
from kernel_py.mm.slab.kmalloc import LARGE_AUX
from kernel_py.mm.slab.common import SLOB_AUX
from kernel_py.mm.slab.slob import BIG_AUX
from kernel_py.mm.page.zone import NR_ORDERS

# category -> RGB. Free blocks: light (order 0) to dark (order 10) green.
FREE = ["free%d" % o for o in range(NR_ORDERS)]
COLOURS = {
    "reserved": (40, 40, 40),
    "kernel": (220, 50, 47),
    "pagetable": (255, 140, 0),
    "slub": (108, 113, 196),
    "slab": (38, 139, 210),
    "slob": (42, 161, 152),
    "kmalloc_large": (211, 54, 130),
    "anon": (181, 137, 0),
    "pcp": (238, 232, 170),
    "pagecache": (133, 153, 0),
    "vmalloc": (160, 32, 240),
    "zero": (255, 255, 255),
    "swapcache": (147, 161, 161),
    "memmap": (88, 110, 117),
    "other": (255, 0, 255),
}
for _o in range(NR_ORDERS):
    COLOURS[FREE[_o]] = (200 - 16 * _o, 240 - 12 * _o, 200 - 16 * _o)
KIND_CATEGORY = {P.KIND_KERNEL: "kernel", P.KIND_PAGETABLE: "pagetable", P.KIND_ANON: "anon",
                 P.KIND_PAGECACHE: "pagecache", P.KIND_VMALLOC: "vmalloc", P.KIND_ZERO: "zero",
                 P.KIND_SWAPCACHE: "swapcache", P.KIND_MEMMAP: "memmap"}


class Snapshot:
    """Frame owners: `cats[pfn]` is a category name (see COLOURS)."""

    def __init__(self, cats):
        self.cats = cats

    def counts(self):
        out = {}
        for c in self.cats:
            out[c] = out.get(c, 0) + 1
        return out


def parse_meta(text):
    """/sys/kernel/debug/mem_map -> (base, nr_pfns, {cache id: backend}, {pcp pfns})."""
    base = nr = 0
    backends, pcp = {}, set()
    for line in text.split("\n"):
        w = line.split()
        if not w:
            continue
        if w[0] == "base":
            base = int(w[1], 16)
        elif w[0] == "nr_pfns":
            nr = int(w[1])
        elif w[0] == "cache":
            backends[int(w[1])] = w[2]
        elif w[0] == "pcp":
            pcp = {int(x, 16) for x in w[1:]}
    return base, nr, backends, pcp


def classify(records, nr_pfns, backends, pcp=()):
    """A Snapshot from mem_map's bytes (nr_pfns records)."""
    cats = ["reserved"] * nr_pfns
    pfn = 0
    while pfn < nr_pfns:
        i = pfn * P.RECORD_SIZE
        flags = records[i] | records[i + 1] << 8
        kind = flags >> P.KIND_SHIFT
        order = records[i + 2]
        if kind == P.KIND_NONE or flags & P.PG_tail or order >= NR_ORDERS:
            pfn += 1
            continue
        if kind == P.KIND_FREE:
            cat = FREE[order]
        elif kind == P.KIND_SLAB:
            aux = records[i + 3]
            cat = "slob" if aux == SLOB_AUX else backends.get(aux, "other")
        elif kind == P.KIND_KERNEL and records[i + 3] == LARGE_AUX:
            cat = "kmalloc_large"
        elif kind == P.KIND_KERNEL and records[i + 3] == BIG_AUX:
            cat = "slob"
        elif kind == P.KIND_ANON and pfn in pcp:
            cat = "pcp"
        else:
            cat = KIND_CATEGORY.get(kind, "other")
        end = min(nr_pfns, pfn + (1 << order))
        for f in range(pfn, end):
            cats[f] = cat
        pfn = end
    return Snapshot(cats)


def snapshot_qmp(machine):
    """The same from guest-physical memory alone (a running `make qemu`,
    its console the user's): the debug anchor at a fixed physical address
    (kernel_py/mm/debug/debug_anchor.py) says where mem_map is and each cache's
    backend. The pcp list is not published, so its frames count as anon."""
    from kernel_py.mm.debug import debug_anchor
    meta = debug_anchor.parse(machine.read_phys(debug_anchor.ANCHOR_PA, debug_anchor.ANCHOR_BYTES))
    if meta is None:
        raise RuntimeError("no debug anchor at 0x%x: is the kernel booted?" % debug_anchor.ANCHOR_PA)
    base, nr, backends = meta
    return classify(machine.read_phys(base, nr * P.RECORD_SIZE), nr, backends)


def snapshot(g):
    """The guest's frames by owner: metadata over the console, mem_map
    over QMP (read while the guest waits at its prompt)."""
    base, nr, backends, pcp = parse_meta(g.run("cat /sys/kernel/debug/mem_map"))
    return classify(g.read_phys(base, nr * P.RECORD_SIZE), nr, backends, pcp)


# -- PNG ---------------------------------------------------------------------
def png_bytes(width, height, rgb_rows):
    """An 8-bit RGB PNG (PNG spec: IHDR, IDAT zlib stream of filter-0
    scanlines, IEND; each chunk length, type, data, CRC-32)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes(row) for row in rgb_rows)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def read_png(data):
    """(width, height, rows of RGB bytes) of a PNG written by png_bytes
    (filter 0 only): the tests' decoder."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    rows = [raw[r * stride + 1:(r + 1) * stride] for r in range(height)]
    assert all(raw[r * stride] == 0 for r in range(height))
    return width, height, rows


class Canvas:
    def __init__(self, width, height, bg=(255, 255, 255)):
        self.width, self.height = width, height
        self.px = [bytearray(bytes(bg) * width) for _ in range(height)]

    def rect(self, x, y, w, h, rgb):
        c = bytes(rgb)
        for yy in range(max(0, y), min(self.height, y + h)):
            row = self.px[yy]
            x0, x1 = max(0, x), min(self.width, x + w)
            if x1 > x0:
                row[3 * x0:3 * x1] = c * (x1 - x0)

    def text(self, x, y, s, rgb=(0, 0, 0), scale=2):
        """Lower-case letters, digits and a few signs in a 3x5 font."""
        for ch in s.lower():
            glyph = FONT.get(ch, FONT["?"])
            for gy, bits in enumerate(glyph):
                for gx in range(3):
                    if bits >> (2 - gx) & 1:
                        self.rect(x + gx * scale, y + gy * scale, scale, scale, rgb)
            x += 4 * scale

    def png(self):
        return png_bytes(self.width, self.height, self.px)


# 3x5 glyphs, a row per number (bit 2 = left column)
FONT = {
    "a": (2, 5, 7, 5, 5), "b": (6, 5, 6, 5, 6), "c": (3, 4, 4, 4, 3), "d": (6, 5, 5, 5, 6),
    "e": (7, 4, 6, 4, 7), "f": (7, 4, 6, 4, 4), "g": (3, 4, 5, 5, 3), "h": (5, 5, 7, 5, 5),
    "i": (7, 2, 2, 2, 7), "j": (1, 1, 1, 5, 2), "k": (5, 5, 6, 5, 5), "l": (4, 4, 4, 4, 7),
    "m": (5, 7, 7, 5, 5), "n": (6, 5, 5, 5, 5), "o": (2, 5, 5, 5, 2), "p": (6, 5, 6, 4, 4),
    "q": (2, 5, 5, 6, 3), "r": (6, 5, 6, 5, 5), "s": (3, 4, 2, 1, 6), "t": (7, 2, 2, 2, 2),
    "u": (5, 5, 5, 5, 7), "v": (5, 5, 5, 5, 2), "w": (5, 5, 7, 7, 5), "x": (5, 5, 2, 5, 5),
    "y": (5, 5, 2, 2, 2), "z": (7, 1, 2, 4, 7), "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7),
    "2": (6, 1, 2, 4, 7), "3": (6, 1, 2, 1, 6), "4": (5, 5, 7, 1, 1), "5": (7, 4, 6, 1, 6),
    "6": (3, 4, 7, 5, 7), "7": (7, 1, 1, 2, 2), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 6),
    " ": (0, 0, 0, 0, 0), "_": (0, 0, 0, 0, 7), "-": (0, 0, 7, 0, 0), ":": (0, 2, 0, 2, 0),
    ".": (0, 0, 0, 0, 2), "/": (1, 1, 2, 4, 4), "(": (1, 2, 2, 2, 1), ")": (4, 2, 2, 2, 4),
    "=": (0, 7, 0, 7, 0), "?": (6, 1, 2, 0, 2), ",": (0, 0, 0, 2, 4), "%": (5, 1, 2, 4, 5),
}

LEGEND_ROW = 16


def legend(canvas, x, y, entries):
    """Swatches with labels, one row each: entries [(label, rgb)]."""
    for i, (label, rgb) in enumerate(entries):
        yy = y + i * LEGEND_ROW
        canvas.rect(x, yy, 12, 12, (0, 0, 0))
        canvas.rect(x + 1, yy + 1, 10, 10, rgb)
        canvas.text(x + 18, yy + 1, label)


def memmap_canvas(snap, columns=128, cell=4, title=""):
    """One cell per frame, `columns` frames a row, pfn 0 at the top left;
    the legend (with each category's frame count) on the right."""
    nr = len(snap.cats)
    rows = (nr + columns - 1) // columns
    counts = snap.counts()
    entries = [("%s %d" % (c, counts[c]), COLOURS[c]) for c in list(COLOURS) if c in counts]
    top = 24
    width = columns * cell + 20 + 230
    height = max(top + rows * cell + 10, top + len(entries) * LEGEND_ROW + 10)
    cv = Canvas(width, height)
    cv.text(4, 4, title or "physical memory: %d frames, %d per row" % (nr, columns))
    for pfn in range(nr):
        cv.rect((pfn % columns) * cell, top + (pfn // columns) * cell, cell, cell,
                COLOURS[snap.cats[pfn]])
    legend(cv, columns * cell + 20, top, entries)
    return cv


def write_canvas(path, canvas):
    """Write the canvas as a PNG file; returns the PNG's bytes."""
    data = canvas.png()
    with open(path, "wb") as f:
        f.write(data)
    return data


def write_memmap_png(path, snap, **kw):
    return write_canvas(path, memmap_canvas(snap, **kw))


def unusable_index(row, order):
    """Linux's unusable free space index of `order` in thousandths
    (kernel_py/mm/page/extfrag.py, the kernel's own
    /sys/kernel/debug/extfrag/unusable_index), for free blocks by order
    summed over the zones."""
    return unusable_free_index(row, order)


INDEX_ORDERS = (1, 2, 3, 4, 6, 8, 10)
INDEX_COLOURS = {1: (38, 139, 210), 2: (42, 161, 152), 3: (133, 153, 0), 4: (181, 137, 0),
                 6: (203, 75, 22), 8: (220, 50, 47), 10: (108, 113, 196)}


OOM_MARK = (220, 50, 47)


def frag_canvas(samples, height=240, bar=3, index_height=160, marks=()):
    """Free pages by order over time, stacked (order 0 at the bottom), one
    bar per sample [(ops, [free blocks by order])], the y axis scaled to
    the largest total; below it the unusable free space index of a few
    orders over the same samples (0 at the bottom, 1.000 at the top), where
    an OOM kill shows as the free pages jumping back (the victim's memory,
    in large blocks) and the index of the high orders falling.
    `marks`: sample indexes to flag with a red tick under the axis (the
    soak's samples just after each OOM hog)."""
    top, left = 24, 10
    totals = [sum(n << o for o, n in enumerate(row)) for _, row in samples] or [1]
    peak = max(max(totals), 1)
    entries = [("order %d" % o, COLOURS[FREE[o]]) for o in range(NR_ORDERS)]
    title = "free pages by order, %d samples, peak %d pages" % (len(samples), peak)
    title2 = "unusable free space index (0 - 1.000) by order"
    plot_w = max(1, len(samples)) * bar
    itop = top + height + 30 + 20
    width = max(left + plot_w + 20 + 130, 8 + 8 * max(len(title), len(title2)))
    cv = Canvas(width, itop + index_height + 30)
    cv.text(4, 4, title)
    cv.rect(left - 1, top, 1, height, (0, 0, 0))
    cv.rect(left - 1, top + height, plot_w + 1, 1, (0, 0, 0))
    for i, (_, row) in enumerate(samples):
        y = top + height
        for o, n in enumerate(row):
            h = (n << o) * height // peak
            cv.rect(left + i * bar, y - h, bar, h, COLOURS[FREE[o]])
            y -= h
    for i in marks:
        cv.rect(left + i * bar, top + height + 1, bar, 5, OOM_MARK)
    if samples:
        cv.text(left, top + height + 8, "ops 0 - %d (red ticks: oom hogs)" % samples[-1][0])
    legend(cv, left + plot_w + 20, top, entries)
    # the index: one line of dots per order
    cv.text(4, itop - 18, title2)
    cv.rect(left - 1, itop, 1, index_height, (0, 0, 0))
    cv.rect(left - 1, itop + index_height, plot_w + 1, 1, (0, 0, 0))
    for o in INDEX_ORDERS:
        prev = None
        for i, (_, row) in enumerate(samples):
            y = itop + index_height - 1 - unusable_index(row, o) * (index_height - 1) // 1000
            y0, y1 = (y, y) if prev is None else (min(prev, y), max(prev, y))
            cv.rect(left + i * bar, y0, bar, y1 - y0 + 1, INDEX_COLOURS[o])
            prev = y
    legend(cv, left + plot_w + 20, itop, [("order %d" % o, INDEX_COLOURS[o]) for o in INDEX_ORDERS])
    return cv


def write_frag_chart(path, samples, **kw):
    return write_canvas(path, frag_canvas(samples, **kw))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(
        description="draw a kernel_py guest's physical memory as a PNG",
        epilog="With --qmp SOCKET the tool attaches to a running guest (make qemu opens "
               "build/qmp.sock) and reads everything over QMP: the kernel's debug anchor "
               "at physical 0x1000 (magic KPYANCH1: mem_map base, frame count, slab "
               "backend per cache id; docs/debugging.md) and then mem_map. The guest is "
               "paused while it reads. Without --qmp it boots its own guest and asks its "
               "console (then the pcp frames are told apart from anon).")
    ap.add_argument("-o", "--output", default="memmap.png")
    ap.add_argument("--qmp", metavar="SOCKET", help="attach to a running guest's QMP socket")
    ap.add_argument("--mem", default="64M")
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--run", action="append", default=[],
                    help="console command to run before the picture (repeatable; own guest only)")
    ap.add_argument("--columns", type=int, default=128)
    ap.add_argument("--cell", type=int, default=4)
    ap.add_argument("--frag", metavar="PNG", help="also run a soak (--ops) and draw its fragmentation chart")
    ap.add_argument("--ops", type=int, default=300)
    args = ap.parse_args(argv)
    if args.qmp:
        from kpyqemu.ptdump import QMPMachine
        m = QMPMachine(args.qmp)
        try:
            m.pause()
            try:
                snap = snapshot_qmp(m)
            finally:
                m.resume()
        finally:
            m.close()
    else:
        from kpyqemu.guest import Guest
        with Guest(mem=args.mem, cmdline=args.cmdline) as g:
            for c in args.run:
                print("%s# %s" % (g.name, c))
                print(g.run(c, check=False, allow_oops=True))
            snap = snapshot(g)
    write_memmap_png(args.output, snap, columns=args.columns, cell=args.cell)
    for c, n in sorted(snap.counts().items(), key=lambda x: -x[1]):
        print("%-14s %8d frames" % (c, n))
    print("wrote %s" % args.output)
    if args.frag:
        from kpyqemu import soak
        return soak.main(["--ops", str(args.ops), "--frag-png", args.frag, "--backends", "slub"])
    return 0
