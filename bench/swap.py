"""Swap and OOM benchmarks on the guest (issue 6): swap-out and swap-in
rates, a 2x-RAM write and read-back through swap, and the time from memory
exhaustion to OOM recovery. Prints numbers, asserts nothing.

    python3 bench/swap.py [--quick]

- swap-out: proactive reclaim (`echo SIZE > /sys/fs/cgroup/memory.reclaim`)
  of a process's cold anonymous pages: pages written to the swap disk
  (pswpout) per second of the command (host wall clock, less an `echo`
  round trip);
- swap-in: `touch PID ADDR LEN r` over those pages: one major fault and
  one 4 KiB read each (pswpin per second);
- shmem: the same for a shared anonymous mapping (written by one process,
  read back by a forked one);
- 2x RAM: `pattern` over twice the guest's RAM (faults + direct reclaim +
  swap-out), then `memsum` over it (swap-in + swap-out of what it displaces);
- OOM recovery: a process touches more memory than there is (no swap): the
  guest's TSC from the direct reclaim that found nothing to free to the
  victim's memory back in the buddy (k.oom.last_recovery_us), and the host
  wall clock of the whole command.

The swap disk is ATA PIO (one `rep insw`/`rep outsw` per sector), which
under TCG moves about 5 MB/s: that bounds every swap figure here.
"""

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402

MiB = 1 << 20


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def vmstat(g):
    return {l.split()[0]: int(l.split()[1]) for l in g.run("cat /proc/vmstat").splitlines()}


def disks(d, swap_mb):
    data, swap = os.path.join(d, "data.img"), os.path.join(d, "swap.img")
    for p, mb in ((data, 8), (swap, swap_mb)):
        with open(p, "wb") as f:
            f.truncate(mb << 20)
    return data, swap


def swapon_guest(accel, d, swap_mb):
    """A booted 64 MiB guest swapping on a fresh swap_mb MiB disk."""
    data, swap = disks(d, swap_mb)
    g = Guest(mem="64M", accel=accel, drives=[data, swap], cmdline="nomount noswap", cmd_timeout=3600)
    g.run("mkswap /dev/sdb")
    g.run("swapon /dev/sdb")
    return g


def timed(g, cmd, timeout=3600):
    t0 = time.monotonic()
    out = g.run(cmd, timeout=timeout)
    return time.monotonic() - t0, out


def echo_rtt(g):
    return min(timed(g, "echo x")[0] for _ in range(5))


def swap_rates(accel, quick, d):
    size = 16 if quick else 32
    with swapon_guest(accel, d, 96) as g:
        rtt = echo_rtt(g)
        pid = int(g.run("spawn bench"))
        a = int(g.run("mmap %d %dM" % (pid, size)), 16)
        g.run("pattern %d 0x%x %d 1" % (pid, a, size * MiB))
        g.run("echo 1 > /sys/fs/cgroup/memory.reclaim")   # age: first pass activates
        v0 = vmstat(g)
        dt, _ = timed(g, "echo %dM > /sys/fs/cgroup/memory.reclaim" % (size // 2))
        v1 = vmstat(g)
        out = v1["pswpout"] - v0["pswpout"]
        figure("swap-out (proactive reclaim)", "%d" % (out / max(dt - rtt, 1e-6)), "pages/s",
               "%d pages in %.2f s, %.1f MB/s, scanned %d; 64M guest, %s" % (
                   out, dt - rtt, out * 4096 / MiB / (dt - rtt), v1["pgscan_anon"] - v0["pgscan_anon"], accel))
        dt, _ = timed(g, "touch %d 0x%x %d r" % (pid, a, size * MiB))
        v2 = vmstat(g)
        n_in = v2["pswpin"] - v1["pswpin"]
        figure("swap-in (major faults)", "%d" % (n_in / max(dt - rtt, 1e-6)), "pages/s",
               "%d pages in %.2f s (%.0f us/fault), %.1f MB/s; %s" % (
                   n_in, dt - rtt, (dt - rtt) * 1e6 / max(n_in, 1), n_in * 4096 / MiB / (dt - rtt), accel))
        g.run("kill %d" % pid)


def shmem_rates(accel, quick, d):
    """Shared anonymous memory: proactive reclaim writes the object's pages
    to swap, a forked mapper reads them back (major faults)."""
    size = 8 if quick else 16
    with swapon_guest(accel, d, 96) as g:
        rtt = echo_rtt(g)
        pid = int(g.run("spawn shm"))
        a = int(g.run("mmap %d %dM shared" % (pid, size)), 16)
        child = int(g.run("fork %d" % pid))
        g.run("pattern %d 0x%x %d 1" % (pid, a, size * MiB))
        v0 = vmstat(g)
        dt, _ = timed(g, "echo %dM > /sys/fs/cgroup/memory.reclaim" % size)
        v1 = vmstat(g)
        out = v1["pswpout"] - v0["pswpout"]
        figure("shmem swap-out (proactive reclaim)", "%d" % (out / max(dt - rtt, 1e-6)), "pages/s",
               "%d pages of a MAP_SHARED|MAP_ANONYMOUS object; %s" % (out, accel))
        dt, _ = timed(g, "touch %d 0x%x %d r" % (child, a, size * MiB))
        v2 = vmstat(g)
        n_in = v2["pswpin"] - v1["pswpin"]
        figure("shmem swap-in (the other mapper)", "%d" % (n_in / max(dt - rtt, 1e-6)), "pages/s",
               "%d pages (%.0f us/fault); %s" % (n_in, (dt - rtt) * 1e6 / max(n_in, 1), accel))
        g.run("kill %d; kill %d" % (child, pid))


def twice_ram(accel, quick, d):
    if quick:
        return
    with swapon_guest(accel, d, 160) as g:
        pid = int(g.run("spawn big"))
        a = int(g.run("mmap %d 128M" % pid), 16)
        v0 = vmstat(g)
        dt, _ = timed(g, "pattern %d 0x%x %d 3" % (pid, a, 128 * MiB))
        v1 = vmstat(g)
        figure("write 2x RAM (128M in a 64M guest)", "%.1f" % dt, "s",
               "%d faults, %d pages swapped out, %.0f pages/s; %s" % (
                   32768, v1["pswpout"] - v0["pswpout"], (v1["pswpout"] - v0["pswpout"]) / dt, accel))
        dt, out = timed(g, "memsum %d 0x%x %d" % (pid, a, 128 * MiB))
        v2 = vmstat(g)
        figure("read back 2x RAM through swap", "%.1f" % dt, "s",
               "%d in + %d out (%.0f pages/s each way); %s" % (
                   v2["pswpin"] - v1["pswpin"], v2["pswpout"] - v1["pswpout"],
                   (v2["pswpin"] - v1["pswpin"]) / dt, accel))


def oom_recovery(accel, quick, d):
    runs = 1 if quick else 3
    us, wall = [], []
    with Guest(mem="64M", accel=accel, cmd_timeout=3600) as g:
        for _ in range(runs):
            pid = int(g.run("spawn hog"))
            a = int(g.run("mmap %d 64M" % pid), 16)
            t0 = time.monotonic()
            g.run("touch %d 0x%x 64M w" % (pid, a), check=False, allow_oops=True)
            wall.append(time.monotonic() - t0)
            us.append(int(g.python("k.oom.last_recovery_us()").strip().split("\n")[-1]))
    us.sort()
    wall.sort()
    figure("OOM: exhaustion -> victim's memory freed", "%d" % us[len(us) // 2], "us",
           "guest TSC from the futile direct reclaim to the reap, median of %d; %s" % (runs, accel))
    figure("OOM: touch 64M in a 64M guest, no swap", "%.2f" % wall[len(wall) // 2], "s",
           "host wall clock of the command (faults, reclaim, kill); %s" % accel)


def bench_section(accel, quick):
    print("# swap and OOM (ATA PIO swap disk; %s)" % accel)
    with tempfile.TemporaryDirectory(prefix="kpy-swapbench-") as d:
        swap_rates(accel, quick, d)
        shmem_rates(accel, quick, d)
        twice_ram(accel, quick, d)
        oom_recovery(accel, quick, d)


def main():
    quick = "--quick" in sys.argv
    accel = resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path())
    bench_section(accel, quick)


if __name__ == "__main__":
    main()
