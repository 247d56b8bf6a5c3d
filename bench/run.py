"""`make bench`: boots the guest and prints the figures the issues ask for,
each with the accelerator it was measured on. Numbers only; nothing asserts.

    python bench/run.py [--quick]

Sections: platform (boot time by RAM size, a 1,000,000-iteration Python
loop, page faults handled in Python, image size), then every other
bench/*.py that has a bench_section(accel, quick) function.
"""

import importlib.util
import os
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def boot_times(accel, quick):
    sizes = ("256M",) if quick else ("128M", "256M", "1G", "4G")
    for mem in sizes:
        runs = []
        for _ in range(1 if quick else 3):
            with Guest(mem=mem, accel=accel) as g:
                runs.append(g.boot_time)
                banner = g.banner
        figure("boot to prompt, %s" % mem, "%.3f" % statistics.median(runs), "s",
               "QEMU start -> prompt, median of %d, %s" % (len(runs), accel))
        m = re.search(r"mem_map (\d+) KiB", banner)
        ram = re.search(r"(\d+) MiB RAM", banner)
        if m and ram and mem == "256M":
            per_frame = int(m.group(1)) * 1024 / (int(ram.group(1)) * 256)
            figure("mem_map bytes per frame", "%.1f" % per_frame, "B",
                   "mem_map size / frames of RAM (from the boot lines)")


def guest_micro(accel, quick):
    with Guest(mem="256M", accel=accel) as g:
        out = g.run("bench loop 1000000", timeout=600)
        ns = int(re.search(r"per_op_ns=(\d+)", out).group(1))
        figure("python loop, 1,000,000 iterations", ns * 1000000 // 1000, "us",
               "%d ns/iteration, guest TSC, %s" % (ns, accel))
        n = 1000 if quick else 10000
        out = g.run("bench pf %d" % n, timeout=1200)
        ns = int(re.search(r"per_op_ns=(\d+)", out).group(1))
        figure("page fault handled in Python", "%.1f" % (ns / 1000), "us/fault",
               "%d fresh pages, #PF -> handler -> buddy + map -> retry, %s" % (n, accel))


def image_size(accel, quick):
    img = image_path()
    figure("image size", os.stat(img).st_size, "bytes", str(img.relative_to(ROOT)))


def other_sections():
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.name == "run.py":
            continue
        spec = importlib.util.spec_from_file_location("bench_" + path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if hasattr(mod, "bench_section"):
            yield path.stem, mod.bench_section


def main():
    quick = "--quick" in sys.argv
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    print("# kernel_py benchmarks (accelerator: %s)" % accel)
    for section in (boot_times, guest_micro, image_size):
        section(accel, quick)
    for name, fn in other_sections():
        print("# %s" % name)
        fn(accel, quick)


if __name__ == "__main__":
    main()
