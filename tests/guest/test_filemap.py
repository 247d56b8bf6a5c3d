"""File-backed mmap and `echo > FILE` on the real machine (issue 6 item 3):
files put on the FAT image by the host with mtools, mapped in the guest,
touched through the process's page tables (real #PFs served from the page
cache), synced, and read back from the image by the host."""

import re

import pytest

from kernel_py.fs.vfs import pattern
from kernel_py.lib import csum

from test_disk_pagecache import fields, host_get, host_put, make_disks, pytestmark  # noqa: F401
from test_mm import status

SIZE = 5 * 4096 + 1000
BIG = 8 << 20                   # the mapped file reclaim works through


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    d = tmp_path_factory.mktemp("fmdisks")
    data, swap = make_disks(d)
    host_put(data, "/shared.bin", pattern(0, SIZE))
    host_put(data, "/private.bin", pattern(0, SIZE))
    host_put(data, "/cold.bin", pattern(0, 64 << 10))
    host_put(data, "/big.bin", pattern(0, BIG))
    host_put(data, "/dirty.bin", pattern(0, SIZE))
    host_put(data, "/unlinked.bin", pattern(0, SIZE))
    return data, swap


@pytest.fixture
def fg(boot, disks):
    """A guest booted with the module's disks (each test uses its own files)."""
    return boot(drives=[str(disks[0]), str(disks[1])])


def mmap(g, pid, args):
    return int(g.run("mmap %d %s" % (pid, args)), 16)


def test_shared_mapping_written_in_the_guest_reaches_the_image(fg, disks):
    pid = int(fg.run("spawn writer"))
    a = mmap(fg, pid, "24K file=/mnt/shared.bin shared")
    line = fg.run("cat /proc/%d/maps" % pid).split("\n")[0]
    assert re.match(r"^%x-%x rw-s 00000000 08:00 \d+ +/mnt/shared.bin$" % (a, a + 24576), line)
    fg.run("write %d 0x%x 'through the mapping'" % (pid, a + 100))
    fg.run("fill %d 0x%x 200 0x5a" % (pid, a + 2 * 4096 + 50))
    assert fields(fg.run("cat /proc/meminfo"))["Dirty"] >= 8
    # the host walks the process's tables: the PTE maps the cache page, writable
    t = fg.walker(status(fg, pid)["Pgd"]).translate(a + 100)
    assert t.writable and fg.read_phys(t.pa, 19) == b"through the mapping"
    fg.run("sync")
    want = bytearray(pattern(0, SIZE))
    want[100:119] = b"through the mapping"
    want[8242:8442] = b"Z" * 200
    assert host_get(disks[0], "/shared.bin") == bytes(want)
    assert not fg.walker(status(fg, pid)["Pgd"]).translate(a + 100).writable   # cleaned
    fg.run("write %d 0x%x AGAIN" % (pid, a))                # dirtied again through a fault
    assert fg.run("msync %d 0x%x 24K async" % (pid, a)) == "0 pages written"   # left to writeback
    assert fg.run("msync %d 0x%x 24K" % (pid, a)) == "1 pages written"
    want[0:5] = b"AGAIN"
    assert host_get(disks[0], "/shared.bin") == bytes(want)
    fg.run("kill %d" % pid)
    assert fields(fg.run("cat /proc/meminfo"))["Mapped"] == 0


def test_private_mapping_written_leaves_the_file_alone(fg, disks):
    pid = int(fg.run("spawn cow"))
    a = mmap(fg, pid, "24K file=/mnt/private.bin private")
    assert fg.run("read %d 0x%x 8" % (pid, a + 4096)) == " ".join("%02x" % c for c in pattern(4096, 8))
    fg.run("write %d 0x%x 'private copy'" % (pid, a + 4096))
    assert fg.run("read %d 0x%x 12" % (pid, a + 4096)) == " ".join("%02x" % c for c in b"private copy")
    s = status(fg, pid)
    assert s["RssAnon"] == 4 and s["RssFile"] == 0          # the copy replaced the cache page
    fg.run("sync")
    assert host_get(disks[0], "/private.bin") == pattern(0, SIZE)
    assert fg.run("cat /mnt/private.bin").startswith("kpy page 00000000")
    fg.run("kill %d" % pid)


def test_cold_mapping_is_a_major_fault_warm_is_not(fg):
    fg.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    v0 = fields(fg.run("cat /proc/vmstat"))
    p1 = int(fg.run("spawn cold"))
    a = mmap(fg, p1, "64K file=/mnt/cold.bin private prot=r")
    assert fg.run("touch %d 0x%x 64K r" % (p1, a)) == "touched 16 pages, 16 faults"
    v1 = fields(fg.run("cat /proc/vmstat"))
    assert v1["pgmajfault"] > v0["pgmajfault"]
    assert v1["pgpgin"] - v0["pgpgin"] >= 64
    p2 = int(fg.run("spawn warm"))
    b = mmap(fg, p2, "64K file=/mnt/cold.bin shared prot=r")
    fg.run("touch %d 0x%x 64K r" % (p2, b))
    v2 = fields(fg.run("cat /proc/vmstat"))
    assert v2["pgmajfault"] == v1["pgmajfault"]
    assert v2["pgpgin"] == v1["pgpgin"]
    assert fields(fg.run("cat /proc/meminfo"))["Mapped"] == 64
    fg.run("kill %d; kill %d" % (p1, p2))


def test_sigbus_and_bad_mmap_input_leave_the_kernel_going(fg):
    fg.run("mkdir /mnt/adir")
    pid = int(fg.run("spawn bad"))
    a = mmap(fg, pid, "32K file=/mnt/shared.bin shared")
    err = fg.run_expect_error("read %d 0x%x 4" % (pid, a + 6 * 4096), allow_oops=True)
    m = re.match(r"error: SIGBUS pid=%d addr=0x([0-9a-f]+) .*\(beyond end of file\)" % pid, err)
    assert m and int(m.group(1), 16) >> 12 == (a >> 12) + 6
    for cmd, name in (("mmap %d 4K file=/mnt/no-such.bin", "ENOENT"),
                      ("mmap %d 4K file=/mnt/shared.bin offset=1000", "EINVAL"),
                      ("mmap %d 0 file=/mnt/shared.bin", "EINVAL"),
                      ("mmap %d 4K file=/mnt/adir", "ENODEV")):
        assert fg.run_expect_error(cmd % pid).startswith("error: " + name), cmd
    assert fg.run("read %d 0x%x 3" % (pid, a)) != ""         # the good mapping still works
    fg.run("kill %d" % pid)
    fg.run("rmdir /mnt/adir")
    fg.run("write /mnt/pin.txt x; rm /mnt/pin.txt")          # nothing left pinned


def test_echo_into_a_file_then_cat_sync_and_host_read(fg, disks):
    assert fg.run("echo hello from echo > /mnt/echo.txt") == ""
    fg.run("echo and more >> /mnt/echo.txt")
    assert fg.run("cat /mnt/echo.txt") == "hello from echo\nand more"
    fg.run("sync")
    assert host_get(disks[0], "/echo.txt") == b"hello from echo\nand more\n"
    assert fg.run_expect_error("echo x > /mnt/nodir/f.txt").startswith("error: ENOENT")


def host_memsum(data):
    h = csum.FNV_OFFSET
    for off in range(0, len(data), 4096):
        h = csum.fold(h, csum.page_csum(data[off:off + 4096]))
    return "0x%016x" % h


def memsum(g, pid, a, n):
    out = g.run("memsum %d 0x%x %d" % (pid, a, n)).split()
    return out[1], dict(f.split("=") for f in out[2:])


def squeeze(g):
    """Pressure: a process writes all but ~3 MiB of MemAvailable (free plus
    the file LRU; no swap is on: only file pages can make room)."""
    avail = fields(g.run("cat /proc/meminfo"))["MemAvailable"] << 10
    hog = int(g.run("spawn hog"))
    n = (avail - (3 << 20)) & ~0xFFFFF
    h = mmap(g, hog, "%d" % n)
    g.run("touch %d 0x%x %d w" % (hog, h, n))
    return hog


def test_mapped_file_pages_are_reclaimed_and_fault_back_intact(boot, disks):
    """Issue 6 follow-up: reclaim unmaps mapped page-cache pages through
    the file rmap (i_mmap); the next touch is a major fault; a shared
    mapping's store, never synced, is written by reclaim."""
    g = boot(mem="64M", drives=[str(disks[0]), str(disks[1])])
    want = host_memsum(pattern(0, BIG))
    w = int(g.run("spawn writer"))
    b = mmap(g, w, "24K file=/mnt/dirty.bin shared")
    g.run("write %d 0x%x 'stored, never synced'" % (w, b + 4096 + 7))
    pid = int(g.run("spawn reader"))
    a = mmap(g, pid, "%d file=/mnt/big.bin private prot=r" % BIG)
    assert memsum(g, pid, a, BIG)[0] == want
    m0, v0 = fields(g.run("cat /proc/meminfo")), fields(g.run("cat /proc/vmstat"))
    assert m0["Mapped"] >= (BIG >> 10) and m0["Cached"] >= (BIG >> 10)
    hog = squeeze(g)
    m1 = fields(g.run("cat /proc/meminfo"))
    assert m1["Mapped"] < m0["Mapped"] - 2048 and m1["Cached"] < m0["Cached"] - 2048
    assert status(g, pid)["RssFile"] < (BIG >> 10) - 2048
    assert status(g, w)["RssFile"] == 0                     # the written page went too
    g.run("kill %d" % hog)
    v1 = fields(g.run("cat /proc/vmstat"))
    assert v1["pgsteal_file"] - v0["pgsteal_file"] >= 512
    got, info = memsum(g, pid, a, BIG)
    assert got == want
    assert int(info["majfaults"]) > 0
    assert fields(g.run("cat /proc/vmstat"))["pgmajfault"] > v1["pgmajfault"]
    want_dirty = bytearray(pattern(0, SIZE))
    want_dirty[4096 + 7:4096 + 27] = b"stored, never synced"
    assert host_get(disks[0], "/dirty.bin") == bytes(want_dirty)    # reclaim wrote it
    assert g.run("read %d 0x%x 6" % (w, b + 4096 + 7)) == " ".join("%02x" % c for c in b"stored")
    g.run("sync")
    assert host_get(disks[0], "/dirty.bin") == bytes(want_dirty)
    g.run("kill %d; kill %d" % (pid, w))


def test_rm_of_a_mapped_file_keeps_its_data_until_the_last_unmap(fg, disks):
    pid = int(fg.run("spawn keep"))
    a = mmap(fg, pid, "24K file=/mnt/unlinked.bin shared")
    fg.run("touch %d 0x%x 24K r" % (pid, a))
    fg.run("rm /mnt/unlinked.bin")
    assert fg.run_expect_error("cat /mnt/unlinked.bin").startswith("error: ENOENT")
    assert "/mnt/unlinked.bin (deleted)" in fg.run("cat /proc/%d/maps" % pid)
    fg.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    assert fg.run("read %d 0x%x 8" % (pid, a + 4096)) == " ".join("%02x" % c for c in pattern(4096, 8))
    fg.run("kill %d" % pid)
    fg.run("sync")
    assert host_get(disks[0], "/unlinked.bin") is None
