"""Simulated machines with ATA disks holding FAT images made by mkfs.fat,
and host-side reads of those images with mtools (what reached the disk)."""

import os
import shutil
import subprocess

import pytest

from kernel_py.kernel.kernel import Kernel
from kernel_py.shell.shell import Shell
import kernel_py.shell.all  # noqa: F401
from kernel_py.sim.ata import attach_ide
from kernel_py.sim.machine import Machine

MKFS = shutil.which("mkfs.fat") or shutil.which("mkfs.vfat") or (
    "/usr/sbin/mkfs.fat" if os.path.exists("/usr/sbin/mkfs.fat") else None)
MCOPY = shutil.which("mcopy")
FSCK = shutil.which("fsck.fat") or ("/usr/sbin/fsck.fat" if os.path.exists("/usr/sbin/fsck.fat") else None)

needs_mkfs = pytest.mark.skipif(MKFS is None or MCOPY is None,
                                reason="needs dosfstools (mkfs.fat) and mtools")


def make_fat(path, size_mb=32, fat=16, spc=None, root_entries=None, label=None):
    """A fresh FAT image at path (sparse file), made by mkfs.fat."""
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
    cmd = [MKFS, "-F", str(fat)]
    if spc:
        cmd += ["-s", str(spc)]
    if root_entries:
        cmd += ["-r", str(root_entries)]
    if label:
        cmd += ["-n", label]
    subprocess.run(cmd + [str(path)], check=True, capture_output=True)
    return path


def host_put(img, name, data):
    """Copy bytes into the image as ::name with mcopy (host side)."""
    src = str(img) + ".put"
    with open(src, "wb") as f:
        f.write(data)
    subprocess.run([MCOPY, "-o", "-i", str(img), src, "::" + name], check=True, capture_output=True)
    os.unlink(src)


def host_get(img, name):
    """The bytes of ::name in the image, read by mcopy; None if missing."""
    r = subprocess.run([MCOPY, "-n", "-i", str(img), "::" + name, "-"], capture_output=True)
    if r.returncode:
        return None
    return r.stdout


def host_mkdir(img, name):
    subprocess.run(["mmd", "-i", str(img), "::" + name], check=True, capture_output=True)


def fsck(img):
    """fsck.fat -n: (clean?, output)."""
    if FSCK is None:
        return True, "no fsck.fat"
    r = subprocess.run([FSCK, "-n", str(img)], capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


class Box:
    """A booted simulated machine: k (kernel), sh (shell), ide (the model)."""

    def __init__(self, disks, mem=64 << 20, cmdline="", log_commands=False, initrd=None):
        self.hw = Machine(mem, cmdline, console=lambda text: None, initrd=initrd)
        self.ide = attach_ide(self.hw, disks, log_commands)
        self.k = Kernel(self.hw, console=lambda msg: None)
        self.k.boot()
        self.sh = Shell(self.k)

    def run(self, line):
        out = self.sh.execute(line)
        assert "error:" not in out, (line, out)
        return out

    def err(self, line):
        out = self.sh.execute(line)
        lines = [l for l in out.split("\n") if l.startswith("error:")]
        assert len(lines) == 1, (line, out)
        return lines[0]

    @property
    def fs(self):
        return self.k.vfs.mounts[0].fs

    def meminfo(self):
        out = {}
        for line in self.run("cat /proc/meminfo").split("\n"):
            name, _, rest = line.partition(":")
            out[name] = int(rest.split()[0])
        return out

    def vmstat(self):
        return dict((l.split()[0], int(l.split()[1])) for l in self.run("cat /proc/vmstat").split("\n"))

    def close(self):
        self.ide.close()


def reboot(box, disks, **kw):
    """Throw the machine away (no sync: a power cut) and boot a new one."""
    box.close()
    return Box(disks, **kw)
