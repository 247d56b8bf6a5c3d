"""A large write to FAT that stops part way leaves the file system
consistent (issue 15: "Ctrl-C or the OOM killer in the middle of a large
write to /mnt ... fsck.fat on the host agrees ... and no other file
changes"). On this kernel a write stops part way when an allocation it
makes is refused: a page-cache page for the data, a FAT page read into
the buffer cache, an inode object. Linux's fail_nth with probability 100
(failsupport's "from" mode) refuses the Nth allocation and every later
one, for N = 1, 2, ... until the operation no longer reaches N; after
each attempt, sync, then on the host: fsck.fat -n finds nothing, the
other files are unchanged, and the interrupted file holds exactly what
the writer was told was written (a short write's count), a prefix of
what it asked for. tests/guest/test_fat_interrupted_write.py cuts large
writes with Ctrl-C, the OOM killer and a refused page on the real
machine."""

import pytest

from kernel_py.fs.vfs import pattern
from kernel_py.lib.errors import KernelError

from failsupport import NTH, fail_everything, set_all
from fssupport import Box, fsck, host_get, host_put, make_fat, needs_mkfs
from pagedebugsupport import errors_in

pytestmark = needs_mkfs

KEEP = {"/keep1.bin": b"k1" * 5000, "/keep2.txt": b"keep two\n"}
BIG = 200 << 10
CHUNK = 64 << 10                      # fs/read_write.py's CHUNK: one write(2) at a time
LAYOUTS = {"fat16-4k": (16, 8, 24), "fat32-512": (32, 1, 40)}


def armed_box(tmp_path, layout, n):
    """A fresh image with the files to keep and an old file, cold caches,
    and allocations failing from the Nth on."""
    fat, spc, mb = LAYOUTS[layout]
    img = make_fat(tmp_path / "data.img", mb, fat=fat, spc=spc)
    for name, data in KEEP.items():
        host_put(img, name, data)
    b = Box([str(img)])
    run = b.sh.execute
    b.run("mkdir /mnt/sub")
    b.run("fill /mnt/sub/old.bin 40K")
    b.run("sync")
    b.run("echo 3 > /proc/sys/vm/drop_caches")
    fail_everything(run)
    run("echo %d > %s" % (n, NTH))
    set_all(run, 100)
    return img, b


def disarm(b):
    """Failures off; True when the operation did not reach the Nth call."""
    run = b.sh.execute
    set_all(run, 0)
    left = int(run("cat " + NTH))
    run("echo 0 > " + NTH)
    return left != 0


def write_like_dd(b, path, total):
    """A writer's loop of write(2) calls through the VFS (vfat's write: a
    short count when the write stopped part way); it stops at the first
    short write or error, as dd does. Returns the bytes it was told were
    written."""
    sb = b.k.vfs.mounts[0].sb
    try:
        _fs, ino = b.k.vfs.open(path, create=True)
    except KernelError:
        return 0
    done = 0
    while done < total:
        want = min(CHUNK, total - done)
        try:
            r = sb.write(ino, done, pattern(done, want))
        except KernelError:
            break
        done += r
        if r < want:
            break
    return done


def check_image(img, name, written):
    clean, report = fsck(img)
    assert clean, report
    for keep, data in KEEP.items():
        assert host_get(img, keep) == data, keep
    assert host_get(img, "/sub/old.bin") == pattern(0, 40 << 10)
    got = host_get(img, name)
    if written:
        assert got == pattern(0, written)
    else:
        assert got in (None, b"")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_write_stopped_part_way_leaves_fat_consistent(tmp_path, layout):
    partial = 0
    for n in range(1, 600, 3):          # every third N: the same kinds of call, a third of the time
        img, b = armed_box(tmp_path, layout, n)
        written = write_like_dd(b, "/mnt/sub/big.bin", BIG)
        done = disarm(b)
        b.run("sync")
        size = b.k.vfs.open("/mnt/sub/big.bin", create=True)[1].size if written else None
        b.close()
        check_image(img, "/sub/big.bin", written)
        assert size in (None, written), (n, size, written)
        partial += 0 < written < BIG and written % CHUNK != 0
        if done:
            assert written == BIG
            break
    else:
        raise AssertionError("the write still allocates after %d calls" % n)
    assert partial >= 5, partial          # the failures did land inside the writes


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("line", ["mkdir /mnt/sub/newdir", "truncate -s 70000 /mnt/sub/old.bin",
                                  "rm /mnt/sub/old.bin"])
def test_metadata_changes_stopped_part_way_leave_fat_consistent(tmp_path, layout, line):
    """mkdir (its cluster goes back when what follows fails), growing a
    file (clusters past the size go back) and rm (the chain is freed
    whole or not at all)."""
    for n in range(1, 400):
        img, b = armed_box(tmp_path, layout, n)
        out = b.sh.execute(line)
        done = disarm(b)
        b.run("sync")
        b.close()
        clean, report = fsck(img)
        assert clean, (n, out, report)
        for keep, data in KEEP.items():
            assert host_get(img, keep) == data, keep
        if done:
            assert not errors_in(out), out
            break
    else:
        raise AssertionError("%s still allocates after %d calls" % (line, n))
