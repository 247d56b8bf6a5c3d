"""kmemleak figures measured in the guest (issue 7), for `make bench`
(bench/run.py calls bench_section). Two boots of a 256 MiB guest, SLUB:
kmemleak off (the default) and `kmemleak=on`.

    python bench/kmemleak.py [--quick]       # this section alone

Figures:
- kmalloc+kfree and kmem_cache_alloc+free pairs/s of 32 bytes with
  kmemleak off and on: off, the viper fast paths run untouched (the
  tracking layer is installed only at boot with kmemleak=on); on, every
  allocation is recorded and kmalloc takes the Python path;
- a kmemleak scan over N linked kmalloc-64 objects reachable from a root:
  time per scan and per object, and the leaks it reported (0 expected).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "qemu"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402
from bench.slab import field, figure  # noqa: E402


def pairs_section(g, accel, n, state):
    for what, cmd in (("kmalloc+kfree 32 B", "bench kmalloc 32 %d" % n),
                      ("kmem_cache_alloc+free 32 B", "bench cache slub 32 %d" % n)):
        out = g.run(cmd, timeout=1200)
        figure("%s, SLUB, kmemleak %s" % (what, state), field(out, "pairs_per_s"), "pairs/s",
               "%d ns/pair, %d warm pairs, %s" % (field(out, "per_pair_ns"), n, accel))


def bench_section(accel, quick):
    n = 2000 if quick else 20000
    with Guest(mem="256M", accel=accel) as g:
        pairs_section(g, accel, n, "off")
    with Guest(mem="256M", accel=accel, cmdline="kmemleak=on") as g:
        g.run("echo scan=off > /sys/kernel/debug/kmemleak")    # no scan thread between the runs
        pairs_section(g, accel, n // 4, "on")
        for objs in ((1000,) if quick else (1000, 10000)):
            out = g.run("bench kmemleak %d" % objs, timeout=1800)
            figure("kmemleak scan, %d linked objects" % objs, field(out, "scan_us"), "us",
                   "%d ns/object, %d tracked, %d false positives, %s" % (
                       field(out, "per_obj_ns"), field(out, "tracked"), field(out, "new_leaks"),
                       accel))


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    print("# kmemleak (accelerator: %s)" % accel)
    bench_section(accel, quick)
