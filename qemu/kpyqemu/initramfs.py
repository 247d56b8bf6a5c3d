"""The root file system's image: an initramfs, a cpio archive in the "newc"
format (Linux's Documentation/driver-api/early-userspace/buffer-format.rst),
which the kernel unpacks into the tmpfs at / (kernel_py/init/initramfs.py).

    python3 qemu/kpyqemu/initramfs.py build/initramfs.cpio --busybox PATH \
        [--add usr/bin/vmstat=build/user/vmstat ...]

What goes in: the directories of a Linux root (/bin /sbin /usr/bin /usr/sbin
/etc /root /tmp /proc /sys /dev /mnt /var /run), BusyBox as /bin/busybox
with a symbolic link for each applet where `busybox --list-full` puts it
(/bin/sh, /bin/ls, /usr/bin/free, /sbin/sysctl ...), and the few /etc files
its applets read (passwd and group for user names, hostname, profile),
and the repository's programs named by --add (the Makefile adds
/usr/bin/vmstat, user/vmstat.c: BusyBox has no vmstat applet).
The FAT data disk keeps the repository's programs at /mnt/bin.

The newc format: each entry is a 110-byte ASCII header ("070701" and
thirteen 8-digit hex fields: ino, mode, uid, gid, nlink, mtime, filesize,
devmajor, devminor, rdevmajor, rdevminor, namesize, check), the name with
its NUL padded to a multiple of 4 (header included), then the data padded
to 4; a symlink's data is its target; "TRAILER!!!" ends the archive.
Every time stamp is the BusyBox binary's, so the same inputs give the same
archive. Standard library only (the Makefile runs it with the host's python3).
"""

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

MAGIC = b"070701"
HEADER_LEN = 110
TRAILER = "TRAILER!!!"

# (path, mode): the directories of the root
DIRS = (
    ("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
    ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777), ("proc", 0o555), ("sys", 0o555),
    ("dev", 0o755), ("mnt", 0o755), ("var", 0o755), ("var/log", 0o755), ("run", 0o755),
)

ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\n",
    "etc/hostname": "kpy\n",
    "etc/profile": "export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/mnt/bin\n"
                   "export HOME=/root\n"
                   "PS1='# '\n",
}
ETC_LINKS = (("etc/mtab", "/proc/mounts"),)


def pad4(n):
    return (4 - n % 4) % 4


class Newc:
    """An archive being written: entries in order, inode numbers from 1."""

    def __init__(self, mtime):
        self.mtime = mtime
        self.out = bytearray()
        self.ino = 0

    def entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        self.ino += 1
        raw = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, self.mtime, len(data), 0, 0,
                  rdev[0], rdev[1], len(raw), 0)
        hdr = MAGIC + b"".join(b"%08X" % f for f in fields)
        assert len(hdr) == HEADER_LEN
        self.out += hdr + raw + b"\0" * pad4(HEADER_LEN + len(raw))
        self.out += data + b"\0" * pad4(len(data))

    def directory(self, name, perm):
        self.entry(name, stat.S_IFDIR | perm, nlink=2)

    def file(self, name, data, perm):
        self.entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name, target):
        self.entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self):
        self.ino = -1
        self.entry(TRAILER, 0)
        self.out += b"\0" * pad4(len(self.out))
        return bytes(self.out)


def applets(busybox):
    """busybox --list-full: the applets with their install paths
    (bin/sh, usr/bin/free, sbin/sysctl ...). It is a static x86-64 program:
    it runs on the build host."""
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True,
                         text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def build(busybox, extra=()):
    """The archive's bytes; `extra` is (root path, host file) pairs, each
    added as an executable after BusyBox's links (so it wins over one)."""
    busybox = Path(busybox)
    a = Newc(int(busybox.stat().st_mtime))
    for name, perm in DIRS:
        a.directory(name, perm)
    a.file("bin/busybox", busybox.read_bytes(), 0o755)
    for path in applets(busybox):
        if path != "bin/busybox" and os.path.dirname(path) in dict(DIRS):
            a.symlink(path, "/bin/busybox")
    for name, text in ETC.items():
        a.file(name, text.encode(), 0o644)
    for name, host in extra:
        a.file(name, Path(host).read_bytes(), 0o755)
    for name, target in ETC_LINKS:
        a.symlink(name, target)
    return a.finish()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--busybox", required=True, help="the static BusyBox binary")
    p.add_argument("--add", action="append", default=[], metavar="PATH=FILE",
                   help="also put the program FILE at PATH (usr/bin/vmstat=build/user/vmstat)")
    args = p.parse_args(argv)
    extra = [a.split("=", 1) for a in args.add]
    if any(len(e) != 2 for e in extra):
        p.error("--add wants PATH=FILE")
    data = build(args.busybox, extra)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.out)
    print("made %s (newc cpio, %d KiB)" % (args.out, (len(data) + 1023) // 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
