"""The load test of issue 15, item 5 (a part of `make soak`).

user/loadtest runs 32 processes at once for a minute in a 64 MiB guest
with a 64 MiB swap disk: each maps, touches, forks, writes and reads back
files and unmaps in a loop with checksums, while the parent drops the page
cache every 3 s; 4 MiB regions in a 64 MiB guest, so that memory runs short (swap and
the OOM killer at work). The kernel's Python heap is reported from
/proc/meminfo: PyHeapPeak, the most live data any collection left (what
must fit), and PyHeapUsed sampled every 3 s (garbage included). At the end it
checks: the kernel answers (0 crashes), `check` finds every frame accounted
for, every surviving worker's checksums held, no swap slot is left in use
and no page-cache page is left after a last drop_caches.

    python bench/loadtest.py [--procs 32] [--seconds 60] [--mb 4] [--mem 64M]
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest  # noqa: E402
from kpyqemu.disks import fresh_disks  # noqa: E402


def meminfo(g):
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r"^(\S+?):\s+(\d+) kB$", g.run("cat /proc/meminfo"), re.M)}


def vmstat(g):
    return {l.split()[0]: int(l.split()[1]) for l in g.run("cat /proc/vmstat").split("\n")
            if len(l.split()) == 2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--mb", type=int, default=4)
    ap.add_argument("--mem", default="64M")
    a = ap.parse_args()
    d = fresh_disks(Path(tempfile.mkdtemp()))
    g = Guest(mem=a.mem, drives=d.drives)
    g.start()
    failures = []
    try:
        v0 = vmstat(g)
        t0 = time.monotonic()
        g.run("run /mnt/bin/loadtest -p %d -t %d -m %d &"
              % (a.procs, a.seconds, a.mb), check=False)
        used_peak = 0
        line = None
        while time.monotonic() - t0 < a.seconds * 20 + 120:
            time.sleep(3)
            used_peak = max(used_peak, meminfo(g)["PyHeapUsed"])
            ps = g.run("ps")
            if not re.search(r" loadtest$", ps, re.M):
                break
        log = g.log_text()
        m = re.search(r"loadtest: (\d+) workers, (\d+) loops, (\d+) killed, checksums ok (\d+) "
                      r"bad (\d+), drops (\d+)", log)
        line = m.group(0) if m else None
        elapsed = time.monotonic() - t0
        g.run("sync; echo 3 > /proc/sys/vm/drop_caches", check=False)
        check = g.run("check", check=False)
        mi, v1 = meminfo(g), vmstat(g)
        print("loadtest (TCG, %s guest, %d MiB swap disk): %s" % (a.mem, 64, line))
        print("  wall time %.0f s; OOM kills %d; swap-outs %d, swap-ins %d; pgsteal_file %d, "
              "pgsteal_anon %d" % (elapsed, v1.get("oom_kill", 0) - v0.get("oom_kill", 0),
                                   v1["pswpout"] - v0["pswpout"], v1["pswpin"] - v0["pswpin"],
                                   v1["pgsteal_file"] - v0["pgsteal_file"],
                                   v1["pgsteal_anon"] - v0["pgsteal_anon"]))
        print("  kernel Python heap of %d kB: live data peak %d kB (PyHeapPeak: what survived a "
              "collection), in use with garbage up to %d kB (PyHeapUsed, sampled every 3 s)"
              % (mi["PyHeapTotal"], mi["PyHeapPeak"], used_peak))
        print("  after: SwapFree %d / SwapTotal %d kB, nr_file_pages %d, check: %s"
              % (mi.get("SwapFree", 0), mi.get("SwapTotal", 0), v1["nr_file_pages"],
                 check.split("\n")[-1]))
        if line is None:
            failures.append("no result line")
        elif int(m.group(5)):
            failures.append("bad checksums")
        if mi.get("SwapFree") != mi.get("SwapTotal"):
            failures.append("swap slots leaked")
        bad = [l for l in check.split("\n") if l.startswith(("check:", "error:")) and l != "check: ok"]
        if bad or "check: ok" not in check:
            failures.append("check: " + "; ".join(bad))
        if v1["nr_file_pages"] > v0["nr_file_pages"]:
            failures.append("page-cache pages left: %d" % v1["nr_file_pages"])
    finally:
        g.kill()
    print("loadtest: %s" % ("; ".join(failures) if failures else "all invariants held"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
