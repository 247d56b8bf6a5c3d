"""mmbench on kernel_py beside Linux (issue 14, item 9).

The planning side's mmbench (../shared/mmbench/mmbench.c, built unmodified
onto the data disk as /mnt/bin/mmbench) runs in a 512 MiB guest under the
same accelerator as Linux's figures in ../shared/mmbench/README.md. Like
those, each command runs twice in one boot and the second run is the one
compared (its frames were touched once, so QEMU has already populated them
on the host). Every RESULT line's ns_per_op is printed beside Linux's
second-run figure for the same command and the ratio.

user/sysbench adds what mmbench does not time: a bare system call
(getppid) and fork+exit+wait; the README has no Linux figure for them, so
the host's own Linux (not under QEMU) is shown as a reference instead when
the binary runs here, and said so.

With --icount, QEMU counts instructions (-icount shift=0,align=off: one
guest instruction is one virtual nanosecond), so ns_per_op is the guest
instructions an operation takes: a figure that does not move with the
build machine's load, for before/after comparisons of the kernel's own
code (not comparable with Linux's wall-clock figures, so no ratio).

    python bench/mmbench.py [--quick] [--icount]   (also a section of `make bench`)
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "qemu"), str(ROOT)]

from kpyqemu.guest import Guest, image_path, resolve_accel  # noqa: E402
from kpyqemu.disks import fresh_disks  # noqa: E402

MMBENCH_DIR = (ROOT / os.environ.get("MMBENCH_SRC", "../shared/mmbench/mmbench.c")).parent
USER_DIR = ROOT / "build" / "user"

# (program, command, argument): the list, Linux's rows first
RUNS = [
    ("mmbench", "fault", 1000), ("mmbench", "fault", 10000), ("mmbench", "fault", 100000),
    ("mmbench", "fault_read", 10000), ("mmbench", "cow", 10000),
    ("mmbench", "mmap_munmap", 1000), ("mmbench", "brk", 10000),
    ("mmbench", "slab_eventfd", 100000), ("mmbench", "slab_hold", 1000),
    ("mmbench", "pipe", 10000),
    ("sysbench", "getppid", 100000), ("sysbench", "fork", 200),
]
QUICK = {("fault", 10000), ("fault_read", 10000), ("cow", 10000), ("mmap_munmap", 1000),
         ("getppid", 100000)}
ICOUNT_ARGS = ("-icount", "shift=0,align=off")
ICOUNT = "tcg -icount"                  # report()'s accel for an --icount run
TARGETS = {("fault", 10000): 2, ("fault_read", 10000): 3, ("cow", 10000): 2,
           ("mmap_munmap", 1000): 2}


def figure(name, value, unit, how):
    print("%-44s %12s %-8s %s" % (name, value, unit, how))


def linux_figures(readme):
    """{(command, arg): ns per op, second run} from the README's table rows
    such as `| fault 1000 / 10000 / 100000 | 6,580 / 5,858 / 6,051 | ... |`."""
    out = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.match(r"[a-z_]+ \d", cells[0]):
            continue
        name, args = cells[0].split(" ", 1)
        args = re.findall(r"\d+", re.sub(r"\(.*\)", "", args))
        values = [int(v.replace(",", "")) for v in re.findall(r"[\d,]+", cells[1])]
        for a, v in zip(args, values):
            out[(name, int(a))] = v
    return out


def results(out):
    """The RESULT lines of a run: {name: {key: value}}."""
    found = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            found[kv["name"]] = kv
    return found


def host_reference(prog, cmd, arg):
    path = USER_DIR / prog
    if not path.is_file():
        return None
    r = subprocess.run([str(path), cmd, str(arg)], capture_output=True, text=True, timeout=120)
    got = results(r.stdout)
    return float(next(iter(got.values()))["ns_per_op"]) if got else None


def run_twice(g, prog, cmd, arg):
    """The second run's RESULT (the first only warms the frames), or the
    output of a run that printed none."""
    line = "run /mnt/bin/%s %s %d" % (prog, cmd, arg)
    g.run(line, timeout=3600)
    out = g.run(line, timeout=3600)
    got = results(out)
    return next(iter(got.values())) if got else out.strip()[-200:]


def bench_section(accel, quick, icount=False):
    if not (USER_DIR / "mmbench").is_file() or not image_path().is_file():
        print("(skipped: needs build/user/mmbench (MMBENCH_SRC) and the guest image)")
        return
    readme = MMBENCH_DIR / "README.md"
    linux = linux_figures(readme) if readme.is_file() else {}
    if icount:
        print("# mmbench: 512 MiB guest, second run of two in one boot, guest instructions "
              "per op (%s)" % " ".join(ICOUNT_ARGS))
        linux, accel = {}, ICOUNT
    else:
        print("# mmbench: 512 MiB guest, second run of two in one boot, ns per op; "
              "Linux: %s (6.1, same QEMU, TCG, second run)" % ("README" if linux else "not found"))
    with tempfile.TemporaryDirectory(prefix="kpy-mmbench-") as d:
        disks = fresh_disks(d)
        with Guest(mem="512M", accel="tcg" if icount else accel, drives=disks.drives, cmd_timeout=3600,
                   extra_args=ICOUNT_ARGS if icount else ()) as g:
            for prog, cmd, arg in RUNS:
                if quick and (cmd, arg) not in QUICK:
                    continue
                report(prog, cmd, arg, run_twice(g, prog, cmd, arg), linux, accel)


def report(prog, cmd, arg, got, linux, accel):
    name = "%s %s %d" % (prog, cmd, arg)
    if isinstance(got, str):
        figure(name, "failed", "", "no RESULT line: %r" % got)
        return
    ns = float(got["ns_per_op"])
    ref = linux.get((cmd, arg))
    if accel == ICOUNT:
        figure(name, "%.0f" % ns, "insn/op", "guest instructions, %s" % accel)
        return
    if ref:
        target = TARGETS.get((cmd, arg))
        how = "Linux %d ns, ratio %.1fx%s, %s" % (
            ref, ns / ref, "" if target is None else " (target <= %dx)" % target, accel)
    else:
        host = host_reference(prog, cmd, arg) if prog == "sysbench" else None
        how = ("no Linux figure in the README; this host's Linux, native: %.0f ns, %s" % (host, accel)
               if host else "no Linux figure in the README, %s" % accel)
    figure(name, "%.0f" % ns, "ns/op", how)


if __name__ == "__main__":
    bench_section(resolve_accel(os.environ.get("KPY_ACCEL") or None, image_path()),
                  "--quick" in sys.argv, "--icount" in sys.argv)
