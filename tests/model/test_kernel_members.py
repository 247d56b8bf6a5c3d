"""The Kernel object declares its parts (kernel/kernel.py): every member
exists from __init__, boot and a varied console workload add none, and no
code probes the kernel object with getattr/hasattr."""

import os
import re

import pytest

from kernel_py.kernel.kernel import Kernel
from kernel_py.shell import registry
from kernel_py.shell.shell import Shell
from kernel_py.sim.ata import attach_ide
from kernel_py.sim.machine import Machine
from kpyqemu import fuzz
import kernel_py.shell.all  # noqa: F401

from fssupport import MKFS, make_fat

KERNEL_PY = os.path.join(os.path.dirname(__file__), "..", "..", "kernel_py")
PROBE_RE = re.compile(r"\b(getattr|hasattr|setattr)\(\s*(k|kernel|self\.k|self\.kernel)\s*,")

WORKLOAD = [
    "help", "cat /proc/meminfo", "cat /proc/vmstat", "free -m", "vmstat", "top -b -n 1",
    "spawn a", "mmap {P} 1M", "touch {P} ADDR 1M", "write {P} ADDR 4142", "read {P} ADDR 4",
    "fill {P} ADDR 4K 7", "malloc {P} 100", "malloc {P} 200000", "brk {P}", "sbrk {P} 8K",
    "mprotect {P} ADDR 4K r", "fork {P}", "ps", "cat /proc/{P}/maps", "cat /proc/{P}/smaps",
    "cat /proc/{P}/status", "cat /proc/{P}/oom_score", "echo 100 > /proc/{P}/oom_score_adj",
    "mmap {P} 64K shared", "echo 1 > /proc/sys/vm/legacy_va_layout", "spawn b",
    "echo 0 > /proc/sys/vm/legacy_va_layout", "kill {C}",
    "echo hello > /mnt/h.txt", "cat /mnt/h.txt", "mmap {P} 8K file=/mnt/h.txt shared",
    "sync", "echo 3 > /proc/sys/vm/drop_caches", "ls /mnt", "df",
    "mkswap /dev/sdb", "swapon /dev/sdb", "echo 2M > /sys/fs/cgroup/memory.reclaim",
    "cat /proc/swaps", "swapoff /dev/sdb",
    "pfdemo", "check", "pfdemo restore", "alloc_pages 2", "kmalloc 100", "vmalloc 8192",
    "cat /proc/slabinfo", "slabtop", "kmem_cache_create t 64", "kmem_cache_alloc t",
    "kmemleak-test", "echo scan > /sys/kernel/debug/kmemleak", "cat /sys/kernel/debug/kmemleak",
    "echo 1 > /sys/kernel/debug/failslab/probability", "cat /sys/kernel/debug/page_owner",
    "dmesg", "kill {P}", "check",
]


def boot(tmp_path, cmdline, mem=48 << 20):
    img = make_fat(tmp_path / "fat.img", 16)
    hw = Machine(mem, cmdline, console=lambda text: None)
    hw.ide = attach_ide(hw, [str(img), bytearray(8 << 20)])
    k = Kernel(hw, console=lambda msg: None)
    declared = set(vars(k))
    k.boot()
    return k, declared


@pytest.mark.skipif(MKFS is None, reason="needs dosfstools (mkfs.fat)")
@pytest.mark.parametrize("cmdline", ["", "kmemleak=on slab=slab page_owner=on",
                                     "debug_pagealloc=on slab=slob"])
def test_boot_and_console_add_no_member(tmp_path, cmdline):
    k, declared = boot(tmp_path, cmdline)
    assert set(vars(k)) == declared, "boot added %s" % sorted(set(vars(k)) - declared)
    sh = Shell(k)
    names = {"ADDR": "0", "P": "0", "C": "0"}
    for line in WORKLOAD:
        out = sh.execute(re.sub(r"\{(\w+)\}", lambda m: names[m.group(1)], line.replace(
            "ADDR", "{ADDR}")))
        if line == "spawn a":
            names["P"] = out                    # its pid (kernel threads take the low ones)
        elif line == "fork {P}":
            names["C"] = out
        elif line == "mmap {P} 1M":
            names["ADDR"] = "0x%x" % int(out, 16)
    sh.execute("echo 0 > /sys/kernel/debug/failslab/probability")
    cmds = fuzz.names_from_help(sh.execute("help"))
    fuzz.drive_shell(sh, fuzz.Fuzzer(3, cmds).lines(300))
    assert set(vars(k)) == declared, "the console added %s" % sorted(set(vars(k)) - declared)


def test_declared_members_are_documented():
    """One line per member in __init__: `self.NAME = ...  # what (file)`."""
    src = open(os.path.join(KERNEL_PY, "kernel", "kernel.py")).read()
    init = src[src.index("    def __init__(self, hw"):src.index("    def printk(")]
    hw = Machine(16 << 20, "", console=lambda text: None)
    for name in vars(Kernel(hw, console=lambda m: None)):
        line = [l for l in init.split("\n") if l.strip().startswith("self.%s = " % name)]
        assert len(line) == 1 and "#" in line[0], name


def test_no_probe_of_the_kernel_object():
    hits = []
    for root, _dirs, files in os.walk(KERNEL_PY):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                for n, line in enumerate(open(path), 1):
                    if PROBE_RE.search(line):
                        hits.append("%s:%d: %s" % (os.path.relpath(path, KERNEL_PY), n, line.strip()))
    assert hits == []


def test_every_command_exists_after_import():
    assert "write" in registry.COMMANDS and "top" in registry.COMMANDS
