"""Page-cache benchmarks on the guest, with a data disk made by mkfs.fat:
read throughput cold (after drop_caches, from the IDE disk through ATA PIO)
vs warm (all page-cache hits), write-into-cache throughput, and sync
throughput (dirty pages written back to the disk), and the faults of
file-backed mappings (`bench faults N file-*`, guest TSC): cold (major,
from the disk with readahead), warm (minor, from the cache), private
write (copy), shared write (dirtied); reclaim of mapped file pages and
the refaults after it. Prints numbers, asserts nothing.

    python3 bench/pagecache.py [--quick]

Read and write rates come from dd's own figures (guest TSC); sync is timed
from the host around the command, less an `echo` round trip.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402

MKFS = shutil.which("mkfs.fat") or "/usr/sbin/mkfs.fat"


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def make_disks(d, data_mb=128):
    data, swap = os.path.join(d, "data.img"), os.path.join(d, "swap.img")
    with open(data, "wb") as f:
        f.truncate(data_mb << 20)
    subprocess.run([MKFS, "-F", "16", "-s", "8", data], check=True, capture_output=True)
    with open(swap, "wb") as f:
        f.truncate(16 << 20)
    return data, swap


def dd_rate(out):
    """(bytes, microseconds) from dd's last line."""
    m = re.search(r"(\d+) bytes copied, (\d+)\.(\d+) s", out)
    return int(m.group(1)), int(m.group(2)) * 1000000 + int(m.group(3))


def mb_s(nbytes, us):
    return "%.2f" % (nbytes / max(us, 1))        # bytes/us = MB/s


def timed(g, cmd, timeout=1200):
    t0 = time.perf_counter()
    g.run(cmd, timeout=timeout)
    return time.perf_counter() - t0


MMAP_MODES = (("file-cold", "mmap read fault, cold cache (major)", "page read from the disk"),
              ("file-warm", "mmap read fault, warm cache (minor)", "page mapped from the cache"),
              ("file-cow", "mmap private write fault (copy)", "cache page copied to anon"),
              ("file-shared", "mmap shared write fault (dirty)", "cache page mapped writable, dirtied"))


def mmap_faults(g, n, accel):
    g.run("dd if=/dev/zero of=/mnt/map.bin bs=64K count=%d" % (n // 16), timeout=1200)
    g.run("sync")
    for mode, name, what in MMAP_MODES:
        out = g.run("bench faults %d %s /mnt/map.bin" % (n, mode), timeout=1200)
        m = re.search(r"per_fault_ns=(\d+).*majfaults=(\d+)", out)
        figure(name, "%.1f" % (int(m.group(1)) / 1000), "us/page",
               "%d pages, %s, %s majfaults, guest TSC, %s" % (n, what, m.group(2), accel))
    g.run("sync; rm /mnt/map.bin")


def mapped_reclaim(g, size_mb, accel):
    """Reclaim of mapped file pages (unmapped through i_mmap, written back
    when dirty) by proactive reclaim, then the major faults of the re-read."""
    g.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    pid = int(g.run("spawn mapped"))
    n = size_mb << 20
    a = int(g.run("mmap %d %d file=/mnt/bench.bin shared" % (pid, n)), 16)
    g.run("touch %d 0x%x %d r" % (pid, a, n), timeout=1200)
    g.run("echo 1 > /sys/fs/cgroup/memory.reclaim; echo 1 > /sys/fs/cgroup/memory.reclaim")   # age the A bits
    vm0 = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    base = min(timed(g, "echo x") for _ in range(3))
    t = timed(g, "echo %dM > /sys/fs/cgroup/memory.reclaim" % size_mb) - base
    vm1 = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    got = int(vm1["pgsteal_file"]) - int(vm0["pgsteal_file"])
    figure("reclaim of mapped file pages", "%d" % (got / max(t, 1e-6)), "pages/s",
           "%d pages unmapped (i_mmap) and freed, clean, host-timed, %s" % (got, accel))
    t = timed(g, "touch %d 0x%x %d r" % (pid, a, n), timeout=1200) - base
    vm2 = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
    maj = int(vm2["pgmajfault"]) - int(vm1["pgmajfault"])
    figure("re-read after reclaim (file refaults)", "%.0f" % (t * 1e6 / (n >> 12)), "us/page",
           "%d pages, %d major faults (readahead 128K), host-timed, %s" % (n >> 12, maj, accel))
    g.run("kill %d" % pid)


def bench_section(accel, quick):
    if not os.path.exists(MKFS) or not image_path().is_file():
        print("(skipped: needs mkfs.fat and the guest image)")
        return
    size_mb = 2 if quick else 8
    with tempfile.TemporaryDirectory(prefix="kpy-pcbench-") as d:
        data, swap = make_disks(d)
        with Guest(mem="256M", accel=accel, drives=[data, swap]) as g:
            g.run("echo 0 > /proc/sys/vm/dirty_background_bytes; echo 50 > /proc/sys/vm/dirty_background_ratio")
            g.run("echo 80 > /proc/sys/vm/dirty_ratio")
            count = size_mb * 16
            out = g.run("dd if=/dev/zero of=/mnt/bench.bin bs=64K count=%d" % count, timeout=1200)
            n, us = dd_rate(out)
            figure("write into page cache (dd, 64K blocks)", mb_s(n, us), "MB/s",
                   "%d MiB dirtied, no writeback, %s" % (size_mb, accel))
            dirty = int(re.search(r"^Dirty:\s+(\d+)", g.run("cat /proc/meminfo"), re.M).group(1))
            base = min(timed(g, "echo x") for _ in range(3))
            t = timed(g, "sync") - base
            figure("sync throughput", "%.2f" % (dirty / 1024 / t), "MB/s",
                   "%d KiB of dirty pages to the IDE disk (ATA PIO), host-timed, %s" % (dirty, accel))
            g.run("echo 3 > /proc/sys/vm/drop_caches")
            cold = dd_rate(g.run("dd if=/mnt/bench.bin of=/dev/null bs=64K", timeout=1200))
            warm = dd_rate(g.run("dd if=/mnt/bench.bin of=/dev/null bs=64K", timeout=1200))
            figure("read, cold cache (dd, 64K blocks)", mb_s(*cold), "MB/s",
                   "%d MiB from the disk, readahead 128K, %s" % (size_mb, accel))
            figure("read, warm cache (dd, 64K blocks)", mb_s(*warm), "MB/s",
                   "%d MiB, all page-cache hits, %s" % (size_mb, accel))
            figure("warm / cold read ratio", "%.1f" % (cold[1] / max(warm[1], 1)), "x",
                   "same run, same file")
            mmap_faults(g, 256 if quick else 1024, accel)
            mapped_reclaim(g, size_mb, accel)
            vm = dict(l.split() for l in g.run("cat /proc/vmstat").split("\n"))
            figure("pgpgin / pgpgout", "%s/%s" % (vm["pgpgin"], vm["pgpgout"]), "KiB",
                   "disk traffic of the whole run")


if __name__ == "__main__":
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    print("# page cache (accelerator: %s)" % accel)
    bench_section(accel, "--quick" in sys.argv)
