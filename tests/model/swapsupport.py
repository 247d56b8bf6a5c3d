"""Simulated machines with a swap disk (sdb) for the swap, reclaim and OOM
model tests, and helpers to read their counters."""

from kernel_py.kernel.kernel import Kernel
from kernel_py.shell.shell import Shell
from kernel_py.sim.ata import attach_ide
from kernel_py.sim.machine import Machine
import kernel_py.shell.all  # noqa: F401

MiB = 1 << 20


def boot(mem=32 * MiB, swap=16 * MiB, swapon=True, cmdline="nomount"):
    """(kernel, shell): a machine with an empty sda and a swap disk sdb of
    `swap` bytes (mkswap'ed and swapped on unless told not to)."""
    hw = Machine(mem, cmdline, console=lambda text: None)
    disks = [bytearray(64 << 10), bytearray(swap) if swap else None]
    hw.ide = attach_ide(hw, disks)
    k = Kernel(hw, console=lambda msg: None)
    k.boot()
    sh = Shell(k)
    if swap and swapon:
        run(sh, "mkswap /dev/sdb")
        run(sh, "swapon /dev/sdb")
    return k, sh


def run(sh, line):
    out = sh.execute(line)
    assert "error:" not in out, (line, out)
    return out


def err(sh, line):
    out = sh.execute(line)
    lines = [l for l in out.split("\n") if l.startswith("error:")]
    assert len(lines) == 1, (line, out)
    return lines[0]


def vmstat(sh):
    return {l.split()[0]: int(l.split()[1]) for l in run(sh, "cat /proc/vmstat").splitlines()}


def meminfo(sh):
    out = {}
    for line in run(sh, "cat /proc/meminfo").split("\n"):
        name, _, rest = line.partition(":")
        out[name] = int(rest.split()[0])
    return out


def status(sh, pid):
    out = {}
    for line in run(sh, "cat /proc/%d/status" % pid).split("\n"):
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            out[name] = int(rest.split()[0])
    return out
