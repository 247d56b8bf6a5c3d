"""Page-fault benchmarks (issue 5): boots the guest and times the process
fault path with the guest's own TSC (`bench faults N MODE`, calibrated
against the PIT) and, as a cross-check, the host's wall clock around a
`touch` command. Prints numbers, asserts nothing.

    python bench/faults.py [--quick]

    demand (write) faults      1,000 / 10,000 / 100,000 fresh pages
    read faults                zero page mapped read-only
    COW faults                 write after fork (a copy per page)
    mmap+touch+munmap cycles   16 pages a cycle

Targets (10x Linux's time per fault in the same QEMU and accelerator, Linux
under TCG ~15 us per anonymous write fault, 2.4 us per zero-page read
fault, 10 us per COW fault): write <= 150 us, read <= 24 us, COW <= 100 us.
"""

import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402

TARGET_US = {"write": 150, "read": 24, "cow": 100}
LINUX_US = {"write": 15, "read": 2.4, "cow": 10}


def figure(name, value, unit, how):
    print("%-44s %12s %-10s %s" % (name, value, unit, how))


def guest_bench(g, n, mode, runs):
    """Median over `runs` of (per-op ns, ops per second, faults)."""
    per, rate, faults = [], [], 0
    for _ in range(runs):
        out = g.run("bench faults %d %s" % (n, mode), timeout=3600)
        m = re.search(r"faults=(\d+) total_us=(\d+) per_(?:fault|cycle)_ns=(\d+) per_sec=(\d+)", out)
        if not m:
            raise RuntimeError("bench faults: %r" % out)
        faults = int(m.group(1))
        per.append(int(m.group(3)))
        rate.append(int(m.group(4)))
    return statistics.median(per), statistics.median(rate), faults


def wall_touch(g, n, write):
    """Host wall clock around one `touch` of n fresh pages (includes the
    console round trip), per page in us."""
    pid = int(g.run("spawn wall"))
    addr = int(g.run("mmap %d %d" % (pid, n * 4096)), 16)
    t0 = time.monotonic()
    g.run("touch %d 0x%x %d %s" % (pid, addr, n * 4096, "w" if write else "r"), timeout=3600)
    dt = time.monotonic() - t0
    g.run("kill %d" % pid)
    return dt * 1e6 / n


def bench_section(accel, quick):
    sizes = (1000, 10000) if quick else (1000, 10000, 100000)
    runs = 1 if quick else 3
    with Guest(mem="1G", accel=accel, cmd_timeout=3600) as g:
        hz = re.search(r"tsc_hz=(\d+)", g.run("bench faults 100 write")).group(1)
        print("# process fault path (guest TSC at %s Hz, PIT-calibrated; %s; median of %d runs)"
              % (hz, accel, runs))
        for n in sizes:
            ns, rate, faults = guest_bench(g, n, "write", runs)
            figure("demand write faults, %d pages" % n, "%.1f" % (ns / 1000), "us/fault",
                   "%d faults/s, %d faults; target <= %d us (10x Linux's %s us)"
                   % (rate, faults, TARGET_US["write"], LINUX_US["write"]))
        n = sizes[1]
        for mode, what in (("read", "read faults (zero page)"), ("cow", "COW faults after fork")):
            ns, rate, faults = guest_bench(g, n, mode, runs)
            figure("%s, %d pages" % (what, n), "%.1f" % (ns / 1000), "us/fault",
                   "%d faults/s; target <= %d us (10x Linux's %s us)"
                   % (rate, TARGET_US[mode], LINUX_US[mode]))
        cycles = 100 if quick else 1000
        ns, rate, faults = guest_bench(g, cycles, "cycle", runs)
        figure("mmap+touch 16 pages+munmap", "%.1f" % (ns / 1000), "us/cycle",
               "%d cycles/s, %d faults in %d cycles" % (rate, faults, cycles))
        for write in (True, False):
            us = wall_touch(g, sizes[1], write)
            figure("touch %d pages %s, host wall clock" % (sizes[1], "w" if write else "r"),
                   "%.1f" % us, "us/page", "console round trip included; %s" % accel)


def main():
    quick = "--quick" in sys.argv
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    print("# kernel_py fault benchmarks (accelerator: %s)" % accel)
    bench_section(accel, quick)


if __name__ == "__main__":
    main()
