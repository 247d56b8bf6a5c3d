"""Slab figures measured in the guest (issue 4), for `make bench` (bench/run.py
calls bench_section). One boot of a 256 MiB guest with the default backend
(SLUB); the other backends get temporary slab layers over the same buddy,
so all three are measured in the same boot. The guest times with its
PIT-calibrated TSC and prints integers; this file only formats.

    python bench/slab.py [--quick]       # this section alone

Figures:
- kmalloc+kfree pairs/s per backend and size class (each pair warm: the
  object is freed at once), and SLUB held to its Python paths
  (slub-python) against the viper fast paths, in the same boot;
- kmem_cache_alloc+free pairs/s on a temporary cache of each backend;
- memory per object: frames taken from the buddy for N live kmalloc objects
  of 8, 32, 200 and 3000 bytes, per backend, against the object bytes and
  against a whole page per object. N is 100,000 except where memory or
  SLOB's first fit make that impractical (printed with each line): 3000-byte
  objects take a page each under every backend, 100,000 of them would not
  fit in 256 MiB; SLOB walks its page list on every allocation that the
  first page cannot serve, so its time grows with the square of the pages;
- vmalloc of 1 MiB and 16 MiB: time, and page-table pages used.
The host's view of the same code (CPython over the simulated machine) is
bench/slab_bench.py.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "qemu"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402

BACKENDS = ("slub", "slab", "slob")
SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
QUICK_SIZES = (8, 32, 256, 4096)
EFFICIENCY = (8, 32, 200, 3000)


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def field(out, name):
    m = re.search(r"\b%s=(\d+)" % name, out)
    if not m:
        raise RuntimeError("no %s= in %r" % (name, out))
    return int(m.group(1))


def pairs(g, cmd, timeout=1200):
    out = g.run(cmd, timeout=timeout)
    return field(out, "pairs_per_s"), field(out, "per_pair_ns")


def objects_for(backend, size, quick):
    """How many live objects the memory figure uses (see the top)."""
    if size >= 3000:
        n = 1000 if backend == "slob" else 40000
    elif backend == "slob" and size > 32:
        n = 20000
    else:
        n = 100000
    return max(100, n // 10) if quick else n


def kmalloc_section(g, accel, quick):
    n = 2000 if quick else 20000
    sizes = QUICK_SIZES if quick else SIZES
    for b in BACKENDS + ("slub-python",):
        count = max(200, n // 10) if b == "slob" else n
        for size in sizes:
            per_s, ns = pairs(g, "bench kmalloc %d %d %s" % (size, count, b))
            figure("kmalloc+kfree %d B, %s" % (size, b), per_s, "pairs/s",
                   "%d ns/pair, %d warm pairs, %s" % (ns, count, accel))
    fast, _ = pairs(g, "bench kmalloc 32 %d slub" % n)
    slow, _ = pairs(g, "bench kmalloc 32 %d slub-python" % n)
    figure("SLUB fast path: viper / Python", "%.2f" % (fast / slow), "x",
           "kmalloc-32 pairs/s, same boot (%d vs %d), %s; target >= 100k pairs/s" % (fast, slow, accel))


def cache_section(g, accel, quick):
    n = 2000 if quick else 20000
    for b in BACKENDS:
        for size in (32, 256):
            count = max(200, n // 10) if b == "slob" else n
            per_s, ns = pairs(g, "bench cache %s %d %d" % (b, size, count))
            figure("kmem_cache_alloc+free %d B, %s" % (size, b), per_s, "pairs/s",
                   "%d ns/pair, temporary cache, %d pairs, %s" % (ns, count, accel))


def memory_section(g, accel, quick):
    for size in EFFICIENCY:
        for b in BACKENDS:
            n = objects_for(b, size, quick)
            out = g.run("bench slabmem %s %d %d" % (b, size, n), timeout=1800)
            got, per100 = field(out, "objects"), field(out, "bytes_per_obj_x100")
            figure("memory per %d-byte object, %s" % (size, b), "%.2f" % (per100 / 100), "B/obj",
                   "%d objects: %+d%% over the object; a page per object is %.1fx this, %s"
                   % (got, field(out, "overhead_pct"), 4096 * 100 / per100, accel))


def vmalloc_section(g, accel, quick):
    for size in (1 << 20, 16 << 20):
        out = g.run("bench vmalloc %d" % size, timeout=600)
        figure("vmalloc %d MiB" % (size >> 20), field(out, "alloc_us"), "us",
               "vfree %d us, %d page-table pages added, %d frames, %s"
               % (field(out, "vfree_us"), field(out, "pt_pages"), field(out, "pages"), accel))


def bench_section(accel, quick):
    with Guest(mem="256M", accel=accel) as g:
        for part in (kmalloc_section, cache_section, memory_section, vmalloc_section):
            part(g, accel, quick)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    print("# slab (accelerator: %s)" % accel)
    bench_section(accel, quick)
