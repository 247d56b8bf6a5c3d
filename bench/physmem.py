"""Physical memory figures (issue 3), collected by bench/run.py:

- alloc_pages/free_pages pairs per second at order 0 and order 3, timed in
  the guest with the calibrated TSC (`bench pages ORDER N`; a free block of
  the order waits on its list first, so no pair splits or merges);
- mem_map bytes per frame at 4 GiB and 8 GiB (from the boot lines), and the
  boot time at 8 GiB (run.py already times 128M, 256M, 1G and 4G).

    python bench/physmem.py [--quick]      # this section alone
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "qemu")):
    if p not in sys.path:
        sys.path.insert(0, p)

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402

PAGE_SIZE = 4096


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def pairs_per_second(g, order, n):
    out = g.run("bench pages %d %d" % (order, n), timeout=600)
    m = re.search(r"pairs_per_s=(\d+)", out)
    ns = re.search(r"per_op_ns=(\d+)", out)
    if not m:
        raise RuntimeError("bench pages: %s" % out)
    return int(m.group(1)), int(ns.group(1))


def mem_map_figures(g, mem, accel, boot_time=False):
    m = re.search(r"mem_map (\d+) KiB", g.banner)
    ram = re.search(r"kernel_py: (\d+) MiB RAM", g.banner)
    if not (m and ram):
        print("# %s: no mem_map line in the boot banner" % mem)
        return
    size = int(m.group(1)) * 1024
    frames = int(ram.group(1)) * (1 << 20) // PAGE_SIZE
    figure("mem_map bytes per frame of RAM, %s" % mem, "%.1f" % (size / frames), "B",
           "%d KiB for %d frames (holes below 4 GiB included), %s"
           % (size >> 10, frames, accel))
    if boot_time:
        figure("boot to prompt, %s" % mem, "%.3f" % g.boot_time, "s",
               "QEMU start -> prompt, 1 run, %s" % accel)


def bench_section(accel, quick):
    n = 2000 if quick else 20000
    with Guest(mem="256M", accel=accel) as g:
        for order in (0, 3):
            pps, ns = pairs_per_second(g, order, n)
            figure("alloc_pages+free_pages, order %d" % order, pps, "pairs/s",
                   "%d pairs, %d ns/pair, 256 MiB guest, guest TSC, %s" % (n, ns, accel))
    for mem in (("4G",) if quick else ("4G", "8G")):
        with Guest(mem=mem, accel=accel) as g:
            mem_map_figures(g, mem, accel, boot_time=(mem == "8G"))


if __name__ == "__main__":
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    print("# physmem (accelerator: %s)" % accel)
    bench_section(accel, "--quick" in sys.argv)
