"""The disks user programs live on: a FAT data disk and a swap disk.

    from kpyqemu.disks import fresh_disks
    d = fresh_disks(tmp_path)                  # this test's own copies
    g = Guest(drives=d.drives)                 # data = IDE 0 = sda, swap = IDE 1 = sdb
    # in the guest: /mnt/bin/hello, /mnt/bin/usertests, /mnt/badelf/EXPECT ...

    # as a pytest fixture, in a test module:
    from kpyqemu import disks
    user_disks = disks.pytest_fixture()        # then: def test_x(boot, user_disks): ...

The data disk is FAT16 (mkfs.fat -F 16 -s 8: 4 KiB clusters, label KPYDATA,
the format kernel_py/fs/fat.py mounts), with every program of build/user/
under /bin and the test ELF files of user/mkbadelf.sh under /badelf. A
pristine image is built once per process (mkfs.fat + mcopy, in a temporary
directory removed at exit) and each call gets a sparse copy of it, so a test never writes the shared build/disk.img
(which `make` keeps across boots, with whatever a user stored on it).

The swap disk is a sparse file with Linux's swap header (mkswap's format:
version 1, last_page, "SWAPSPACE2" at the end of page 0), the header
kernel_py/mm/swap.py reads at `swapon /dev/sdb`. It is made by mkswap when
the host has it, else written here (the same bytes).

The Makefile uses this file as a script for the shared images:

    python3 qemu/kpyqemu/disks.py data build/disk.img [--size-mb N]
    python3 qemu/kpyqemu/disks.py swap build/swap.img [--size-mb N]

`data` makes the image on first use and afterwards copies in only the
programs newer than it (mcopy -o), leaving every other file alone; `swap`
makes the image only when it is missing. Standard library only.
"""

import argparse
import atexit
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid
from collections import namedtuple
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DIR = REPO_ROOT / "build" / "user"
DATA_MB = 128
SWAP_MB = 64
LABEL = "KPYDATA"
PAGE = 4096
SWAP_MAGIC = b"SWAPSPACE2"

Disks = namedtuple("Disks", "data swap")
Disks.drives = property(lambda d: [str(p) for p in (d.data, d.swap) if p is not None])
Disks.__doc__ = ("A test's disks: .data (FAT, the kernel's sda) and .swap (sdb, or None); "
                 ".drives is the list for Guest(drives=...).")


class DiskError(Exception):
    pass


def _tool(name):
    path = shutil.which(name)
    if path is None:
        for d in ("/usr/sbin", "/sbin"):
            if os.path.exists(os.path.join(d, name)):
                return os.path.join(d, name)
    return path


def _run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    if r.returncode:
        raise DiskError("%s failed (%d): %s" % (" ".join(map(str, argv)), r.returncode,
                                                r.stdout.decode(errors="replace").strip()))
    return r.stdout.decode(errors="replace")


def programs(user_dir=USER_DIR):
    """(programs for /bin, files for /badelf) found in build/user: every
    executable regular file directly in it, and everything in badelf/."""
    user_dir = Path(user_dir)
    progs, bad = [], []
    if user_dir.is_dir():
        for p in sorted(user_dir.iterdir()):
            if p.is_file() and os.access(p, os.X_OK) and not p.name.startswith("."):
                progs.append(p)
        bd = user_dir / "badelf"
        if bd.is_dir():
            bad = sorted(p for p in bd.iterdir() if p.is_file())
    return progs, bad


def _mkfs(img, size_mb):
    mkfs = _tool("mkfs.fat")
    if mkfs is None:
        raise DiskError("mkfs.fat not found (Debian package dosfstools)")
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    _run([mkfs, "-F", "16", "-s", "8", "-n", LABEL, str(img)])
    _run(["mmd", "-i", str(img), "::/bin", "::/badelf"])


def _mcopy(img, files, dest):
    if files:
        _run(["mcopy", "-o", "-i", str(img)] + [str(f) for f in files] + ["::" + dest])


def make_data_disk(img, size_mb=DATA_MB, user_dir=USER_DIR):
    """A new FAT data disk at img with the programs under /bin and the test
    ELF files under /badelf (overwrites img)."""
    progs, bad = programs(user_dir)
    if not progs:
        raise DiskError("no programs in %s: build them first (make user)" % user_dir)
    img = Path(img)
    if img.exists():
        img.unlink()
    _mkfs(img, size_mb)
    _mcopy(img, progs, "/bin/")
    _mcopy(img, bad, "/badelf/")
    return img


def update_data_disk(img, size_mb=DATA_MB, user_dir=USER_DIR):
    """Make img if it is missing; else copy in only the programs and test
    files newer than it. Returns the names copied."""
    img = Path(img)
    progs, bad = programs(user_dir)
    if not img.exists():
        make_data_disk(img, size_mb, user_dir)
        return [p.name for p in progs + bad]
    since = img.stat().st_mtime
    new_progs = [p for p in progs if p.stat().st_mtime > since]
    new_bad = [p for p in bad if p.stat().st_mtime > since]
    if new_progs or new_bad:
        subprocess.run(["mmd", "-D", "s", "-i", str(img), "::/bin", "::/badelf"],   # if removed
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _mcopy(img, new_progs, "/bin/")
        _mcopy(img, new_bad, "/badelf/")
    os.utime(img)
    return [p.name for p in new_progs + new_bad]


def swap_header(nr_pages, label=b"kpyswap"):
    """Page 0 of a swap area as Linux's mkswap writes it (version 1)."""
    hdr = bytearray(PAGE)
    struct.pack_into("<III", hdr, 1024, 1, nr_pages - 1, 0)   # version, last_page, nr_badpages
    hdr[1036:1052] = uuid.uuid4().bytes
    hdr[1052:1052 + len(label[:16])] = label[:16]
    hdr[PAGE - len(SWAP_MAGIC):] = SWAP_MAGIC
    return bytes(hdr)


def make_swap_disk(img, size_mb=SWAP_MB):
    """A sparse swap disk with Linux's swap header (overwrites img)."""
    img = Path(img)
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    os.chmod(img, 0o600)            # mkswap warns about anything wider
    mkswap = _tool("mkswap")
    if mkswap:
        _run([mkswap, "-L", "kpyswap", str(img)])
    else:
        with open(img, "r+b") as f:
            f.write(swap_header((size_mb << 20) // PAGE))
    return img


def sparse_copy(src, dst):
    """Copy src to dst keeping holes (the images are mostly holes)."""
    size = os.path.getsize(src)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        fo.truncate(size)
        fdi = fi.fileno()
        off = 0
        while off < size:
            try:
                data = os.lseek(fdi, off, os.SEEK_DATA)
            except OSError:         # no more data
                break
            hole = os.lseek(fdi, data, os.SEEK_HOLE)
            fi.seek(data)
            fo.seek(data)
            left = hole - data
            while left:
                chunk = fi.read(min(left, 1 << 20))
                if not chunk:
                    break
                fo.write(chunk)
                left -= len(chunk)
            off = hole
    return Path(dst)


_templates = {}
_template_dirs = []


@atexit.register
def _remove_templates():
    for d in _template_dirs:
        shutil.rmtree(d, ignore_errors=True)


def _template(size_mb, user_dir):
    """A pristine data disk for this process, rebuilt when a program changed."""
    progs, bad = programs(user_dir)
    key = (size_mb, str(user_dir), tuple((str(p), p.stat().st_mtime_ns) for p in progs + bad))
    path = _templates.get(key)
    if path is None or not path.exists():
        d = Path(tempfile.mkdtemp(prefix="kpy-disk-template-"))
        _template_dirs.append(d)
        path = make_data_disk(d / "data.img", size_mb, user_dir)
        _templates[key] = path
    return path


def fresh_disks(directory, *, data_mb=DATA_MB, swap_mb=SWAP_MB, swap=True,
                files=None, user_dir=USER_DIR):
    """This test's own disks in `directory`: data.img (a copy of the pristine
    data disk; `files` maps guest paths such as "/data/in.txt" to bytes to
    add) and swap.img (unless swap=False). Returns Disks(data, swap)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = sparse_copy(_template(data_mb, user_dir), directory / "data.img")
    for guest_path, content in (files or {}).items():
        src = directory / ".put"
        src.write_bytes(content)
        parent = os.path.dirname(guest_path)
        if parent not in ("", "/"):
            subprocess.run(["mmd", "-D", "s", "-i", str(data), "::" + parent],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _run(["mcopy", "-o", "-i", str(data), str(src), "::" + guest_path])
        src.unlink()
    sw = make_swap_disk(directory / "swap.img", swap_mb) if swap else None
    return Disks(data, sw)


def pytest_fixture(name="user_disks", scope="function", **kwargs):
    """A pytest fixture giving each test (or module, with scope=) fresh
    disks: `user_disks = disks.pytest_fixture()` in a test module."""
    import pytest

    @pytest.fixture(name=name, scope=scope)
    def _fixture(tmp_path_factory):
        return fresh_disks(tmp_path_factory.mktemp("disks"), **kwargs)
    return _fixture


def guest_files(img, path="::/bin"):
    """The names mdir lists in a folder of a FAT image."""
    out = _run(["mdir", "-b", "-i", str(img), path])
    return sorted(os.path.basename(l.rstrip("/")) for l in out.split("\n") if l.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description="make or refresh the data and swap disks")
    ap.add_argument("kind", choices=["data", "swap"])
    ap.add_argument("image")
    ap.add_argument("--size-mb", type=int)
    ap.add_argument("--user-dir", default=str(USER_DIR))
    a = ap.parse_args(argv)
    try:
        if a.kind == "data":
            existed = os.path.exists(a.image)
            copied = update_data_disk(a.image, a.size_mb or DATA_MB, a.user_dir)
            if not existed:
                print("made %s (FAT16, %d MiB): %d files under /bin and /badelf"
                      % (a.image, a.size_mb or DATA_MB, len(copied)))
            elif copied:
                print("%s: copied %s" % (a.image, " ".join(copied)))
        elif not os.path.exists(a.image):
            make_swap_disk(a.image, a.size_mb or SWAP_MB)
            print("made %s (swap, %d MiB)" % (a.image, a.size_mb or SWAP_MB))
    except DiskError as e:
        print("disks.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
