"""memleak's cost (issue 16, item 5): malloc+free pairs per second in
user/noleak_basic's timed loop (`noleak_basic -b N`: N x malloc(64) then
free, timed in the program with clock_gettime), run plain (`run`) and
traced by memleak (`memleak -c`: entry and return probes on malloc, an
entry probe on free; each pair is three #BP round trips into the Python
kernel). Both runs in one boot, the plain one first.

    python bench/memleak.py [--quick]     (also a section of `make bench`)
"""

import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu import disks  # noqa: E402
from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402

RESULT = re.compile(r"RESULT malloc_free_pairs_per_s (\d+)")


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def rate(g, line, timeout):
    out = g.run(line, timeout=timeout)
    m = RESULT.search(out)
    if m is None:
        raise RuntimeError("%r: no RESULT line:\n%s" % (line, out))
    return int(m.group(1))


def bench_section(accel, quick):
    n_plain, n_traced = (200000, 500) if quick else (2000000, 5000)
    with tempfile.TemporaryDirectory() as d:
        dk = disks.fresh_disks(d, swap=False)
        with Guest(mem="256M", accel=accel, drives=dk.drives) as g:
            plain = rate(g, "run /mnt/bin/noleak_basic -b %d" % n_plain, 600)
            traced = rate(g, "memleak -c /mnt/bin/noleak_basic -b %d" % n_traced, 1200)
    figure("malloc+free pairs/s, plain", plain, "pairs/s",
           "noleak_basic -b %d, in-program clock, %s" % (n_plain, accel))
    figure("malloc+free pairs/s, memleak attached", traced, "pairs/s",
           "memleak -c noleak_basic -b %d (3 uprobe hits a pair), %s" % (n_traced, accel))
    figure("memleak slowdown", "%.0f" % (plain / max(traced, 1)), "x", "plain / traced")


if __name__ == "__main__":
    bench_section(resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path()),
                  "--quick" in sys.argv)
