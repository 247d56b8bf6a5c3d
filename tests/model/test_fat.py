"""FAT16/FAT32 over the simulated disk, checked from the host with mtools
and fsck.fat: round trips of several sizes (multi-cluster, page and cluster
edges, sparse extension, truncation), directories, VFAT names, ENOSPC."""

import hashlib
import os
import re
import struct

import pytest

from kernel_py.fs.fat.dir import alias_basis, lfn_checksum, plain_short
from kernel_py.fs.vfs import pattern

from fssupport import Box, fsck, host_get, host_mkdir, host_put, make_fat, needs_mkfs, reboot

pytestmark = needs_mkfs

DMB = 0xFFFF888000000000
SIZES = [0, 1, 511, 512, 513, 2047, 2048, 2049, 4095, 4096, 4097, 8191, 8193, 12289, 65536 + 3, 200000]


@pytest.fixture(params=[(16, 4), (16, 1), (32, 1), (32, 8)], ids=["fat16-2k", "fat16-512", "fat32-512", "fat32-4k"])
def img(request, tmp_path):
    fat, spc = request.param
    return make_fat(tmp_path / "data.img", {(16, 4): 24, (16, 1): 24, (32, 1): 40, (32, 8): 300}[(fat, spc)],
                    fat, spc=spc)


def test_round_trip_sizes_written_in_guest_read_on_host(img):
    b = Box([str(img)])
    files = {}
    for n in SIZES:
        files[n] = os.urandom(n)
        b.k.vfs.write("/mnt/f%d.bin" % n, files[n])
    b.run("sync")
    b.close()
    for n in SIZES:
        assert host_get(img, "/f%d.bin" % n) == files[n], n
    ok, out = fsck(img)
    assert ok, out


def test_round_trip_host_to_guest_and_back(img):
    files = {}
    for n in SIZES:
        files[n] = os.urandom(n)
        host_put(img, "/h%d.bin" % n, files[n])
    b = Box([str(img)])
    for n in SIZES:
        assert b.k.vfs.read("/mnt/h%d.bin" % n) == files[n], n
    # modify every file in the guest: overwrite a middle slice, append a tail
    for n in SIZES:
        mid = n // 2
        b.k.vfs.write("/mnt/h%d.bin" % n, b"M" * 700, off=mid)
        b.k.vfs.write("/mnt/h%d.bin" % n, b"T" * 3000, append=True)
        d = bytearray(files[n])
        d[mid:mid + 700] = b"M" * 700
        d = bytes(d[:max(len(d), mid + 700)]) + b"T" * 3000
        files[n] = d
    b.run("sync")
    for n in SIZES:
        assert host_get(img, "/h%d.bin" % n) == files[n], n
    # and from the disk again, through a cold cache
    b.run("echo 3 > /proc/sys/vm/drop_caches")
    for n in SIZES:
        assert b.k.vfs.read("/mnt/h%d.bin" % n) == files[n], n
    b.close()
    ok, out = fsck(img)
    assert ok, out


def test_exact_bytes_reach_the_image(img):
    b = Box([str(img)])
    data = os.urandom(50000)
    b.k.vfs.write("/mnt/exact.bin", data)
    b.run("sync")
    assert host_get(img, "/exact.bin") == data
    b.close()


def test_sparse_extension_zero_fills_the_gap(img):
    b = Box([str(img)])
    b.k.vfs.write("/mnt/s.bin", b"head")
    b.k.vfs.write("/mnt/s.bin", b"tail", off=30000)
    assert b.k.vfs.read("/mnt/s.bin") == b"head" + bytes(30000 - 4) + b"tail"
    b.run("truncate -s 40000 /mnt/s.bin")
    b.run("sync")
    assert host_get(img, "/s.bin") == b"head" + bytes(30000 - 4) + b"tail" + bytes(40000 - 30004)
    b.close()


def test_sparse_gap_hides_old_cluster_contents(img):
    """Clusters freed by one file and reused for another's gap must read as zero."""
    b = Box([str(img)])
    b.run("fill /mnt/old.bin 64K 255")
    b.run("sync")
    b.run("rm /mnt/old.bin")
    b.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    b.k.vfs.write("/mnt/new.bin", b"x", off=60000)
    b.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    assert b.k.vfs.read("/mnt/new.bin") == bytes(60000) + b"x"
    assert host_get(img, "/new.bin") == bytes(60000) + b"x"
    b.close()


def test_truncate_frees_clusters_and_keeps_prefix(img):
    b = Box([str(img)])
    free0 = b.fs.count_free()
    b.run("fill /mnt/t.bin 100K")
    used = free0 - b.fs.count_free()
    assert used == -(-(100 << 10) // b.fs.clus_size)
    b.run("truncate -s 3000 /mnt/t.bin")
    assert free0 - b.fs.count_free() == -(-3000 // b.fs.clus_size)
    b.run("truncate -s 0 /mnt/t.bin")
    assert b.fs.count_free() == free0
    b.run("append /mnt/t.bin again")
    b.run("sync")
    assert host_get(img, "/t.bin") == b"again\n"
    b.close()
    ok, out = fsck(img)
    assert ok, out


def test_free_count_matches_a_fresh_scan(img):
    b = Box([str(img)])
    b.run("fill /mnt/a 30K")
    b.run("mkdir /mnt/d")
    b.run("fill /mnt/d/b 10K")
    b.run("rm /mnt/a")
    b.run("sync")
    counted = b.fs.count_free()
    b = reboot(b, [str(img)])
    b.fs.free_clusters = None
    assert b.fs.count_free() == counted
    df = b.run("df").split("\n")
    assert df[0].split()[:2] == ["Filesystem", "1K-blocks"]
    assert df[1].split()[0] == "/dev/sda" and df[1].split()[-1] == "/mnt"
    b.close()


def test_directories_nested_and_rmdir(img):
    b = Box([str(img)])
    b.run("mkdir /mnt/a")
    b.run("mkdir /mnt/a/b")
    b.run("write /mnt/a/b/deep.txt deep")
    assert b.run("ls /mnt/a") == "b/"
    assert b.run("cat /mnt/a/b/deep.txt") == "deep"
    assert b.err("rmdir /mnt/a/b").startswith("error: ENOTEMPTY")
    assert b.err("rm /mnt/a").startswith("error: EISDIR")
    assert b.err("cat /mnt/a/b").startswith("error: EISDIR")
    assert b.err("mkdir /mnt/a").startswith("error: EEXIST")
    assert b.err("write /mnt/a/nodir/x y").startswith("error: ENOENT")
    assert b.err("write /mnt/a/b/deep.txt/x y").startswith("error: ENOTDIR")
    b.run("sync")
    assert host_get(img, "/a/b/deep.txt") == b"deep\n"
    b.run("rm /mnt/a/b/deep.txt")
    b.run("rmdir /mnt/a/b")
    b.run("sync")
    assert host_get(img, "/a/b/deep.txt") is None
    b.close()
    ok, out = fsck(img)
    assert ok, out


def test_directory_grows_past_one_cluster(img):
    b = Box([str(img)])
    b.run("mkdir /mnt/many")
    names = ["file number %03d.txt" % i for i in range(70)]    # 3 slots each
    for n in names:
        b.k.vfs.write("/mnt/many/" + n, n.encode())
    _, d = b.k.vfs.lookup("/mnt/many")
    assert len(b.fs.clusters_of(d)) * b.fs.clus_size >= 70 * 3 * 32
    b.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    listing = b.k.vfs.listdir("/mnt/many")
    assert [e[0] for e in listing] == names
    b.close()
    for n in names[::10]:
        assert host_get(img, "/many/" + n) == n.encode()
    ok, out = fsck(img)
    assert ok, out


def test_vfat_names_both_ways(img):
    host_put(img, "/Host Long Name.TXT", b"from host")
    host_put(img, "/lower.txt", b"lower")
    host_mkdir(img, "/Sub Dir")
    host_put(img, "/Sub Dir/inner file.dat", b"inner")
    b = Box([str(img)])
    ls = b.run("ls /mnt")
    assert "Host Long Name.TXT" in ls and "lower.txt" in ls and "Sub Dir/" in ls
    assert b.run("cat '/mnt/host long name.txt'") == "from host"       # case-insensitive
    assert b.run("cat '/mnt/Sub Dir/inner file.dat'") == "inner"
    b.k.vfs.write("/mnt/Guest Mixed Case.Extension", b"guest")
    b.k.vfs.write("/mnt/Guest Mixed Case.Other", b"other")
    b.k.vfs.write("/mnt/Long Name One.txt", b"1")
    b.k.vfs.write("/mnt/Long Name Two.txt", b"2")
    b.k.vfs.write("/mnt/UPPER.TXT", b"up")
    b.k.vfs.write("/mnt/small.c", b"c")
    b.run("sync")
    b.close()
    assert host_get(img, "/Guest Mixed Case.Extension") == b"guest"
    assert host_get(img, "/Guest Mixed Case.Other") == b"other"
    out = os.popen("mdir -i %s ::/" % img).read()
    assert "GUESTM~1 EXT" in out and "GUESTM~1 OTH" in out        # unique as 11 bytes
    assert "LONGNA~1 TXT" in out and "LONGNA~2 TXT" in out
    assert host_get(img, "/Long Name Two.txt") == b"2"
    assert re.search(r"small\s+c\s+1", out)                 # 8.3 lowercase via NT flags
    assert re.search(r"UPPER\s+TXT\s+2", out)
    ok, out = fsck(img)
    assert ok, out


def test_short_name_helpers():
    assert plain_short("README.TXT") == (b"README  TXT", 0)
    assert plain_short("readme.txt") == (b"README  TXT", 0x18)
    assert plain_short("ReadMe.txt") is None
    assert plain_short("a.b.c") is None
    assert plain_short("toolongname.c") is None
    assert alias_basis("My File.tar.gz") == ("MYFILETAR", "GZ")
    assert lfn_checksum(b"README  TXT") == lfn_checksum(b"README  TXT")


def test_bad_names_and_bad_input_lose_nothing(img):
    b = Box([str(img)])
    b.run("write /mnt/keep.txt precious")
    for bad in ("write /mnt/a*b x", "write '/mnt/q?' x", "write '/mnt/end.' x", "fill /mnt/keep.txt lots",
                "dd if=/dev/zero of=/mnt/keep.txt bs=0 count=1", "truncate -s -1 /mnt/keep.txt",
                "cat /mnt/missing", "rm /mnt/missing", "rmdir /mnt/keep.txt", "dd if=/mnt/nope of=/dev/null",
                "dd if=/dev/zero of=/tmp/x count=1", "mount /dev/sdz /x", "umount /nowhere"):
        line = b.err(bad)
        assert re.match(r"error: E[A-Z]+", line), (bad, line)
    assert b.run("cat /mnt/keep.txt") == "precious"
    b.run("sync")
    assert host_get(img, "/keep.txt") == b"precious\n"
    b.close()


def test_enospc_writes_what_fits_and_keeps_old_data(tmp_path):
    img = make_fat(tmp_path / "small.img", 5, 16, spc=1)     # tiny FAT16 (FAT12-sized disks are refused)
    b = Box([str(img)])
    b.run("write /mnt/first.txt first")
    free = b.fs.count_free() * b.fs.clus_size
    line = b.err("fill /mnt/huge.bin %d" % (free + 100000))
    assert line.startswith("error: ENOSPC")
    assert b.fs.count_free() == 0
    assert b.err("write /mnt/third.txt x").startswith("error: ENOSPC")   # no cluster for it
    b.run("sync")
    _, ino = b.k.vfs.lookup("/mnt/huge.bin")
    assert ino.size >= free - 65536
    assert b.run("cat /mnt/first.txt") == "first"
    assert b.err("write /mnt/second.txt more").startswith("error: ENOSPC")
    b.run("rm /mnt/huge.bin")
    b.run("write /mnt/second.txt more")
    b.run("sync")
    b.close()
    assert host_get(img, "/first.txt") == b"first\n"
    assert host_get(img, "/second.txt") == b"more\n"
    ok, out = fsck(img)
    assert ok, out


def test_fat16_root_directory_full(tmp_path):
    img = make_fat(tmp_path / "r.img", 16, 16, root_entries=16)
    b = Box([str(img)])
    slots = b.fs.root_bytes // 32
    for i in range(slots):
        b.run("write /mnt/F%d.TXT x" % i)
    assert b.err("write /mnt/F99.TXT x").startswith("error: ENOSPC")
    assert b.run("cat /mnt/F0.TXT") == "x"
    b.close()


def test_mount_umount_and_mounts_file(img):
    b = Box([str(img)])
    assert b.run("mount") == "/dev/sda on /mnt type vfat (rw,relatime)"
    assert b.run("cat /proc/mounts").split("\n")[-1] == "/dev/sda /mnt vfat rw,relatime 0 0"
    b.run("write /mnt/u.txt before umount")
    b.run("umount /mnt")
    assert b.run("mount") == ""
    assert host_get(img, "/u.txt") == b"before umount\n"       # umount synced
    assert b.k.pagecache.nr_file == 0
    b.run("mount /dev/sda /data")
    assert b.run("cat /data/u.txt") == "before umount"
    assert b.err("mount /dev/sda /other").startswith("error: EBUSY")
    assert b.err("mount /dev/sdb /x").startswith("error: ENODEV")
    b.close()


def test_fincore_ls_dd_console(img):
    b = Box([str(img)])
    out = b.run("dd if=/dev/zero of=/mnt/z.bin bs=4096 count=8")
    assert out.split("\n")[:2] == ["8+0 records in", "8+0 records out"]
    assert "32768 bytes copied" in out
    out = b.run("dd if=/mnt/z.bin of=/dev/null bs=10000")
    assert out.split("\n")[:2] == ["3+1 records in", "3+1 records out"]
    b.run("dd if=/dev/zero of=/mnt/z.bin bs=1000 count=1 seek=2 conv=notrunc")
    assert b.k.vfs.lookup("/mnt/z.bin")[1].size == 32768
    b.run("dd if=/mnt/z.bin of=/mnt/copy.bin bs=4096 skip=1 count=2")
    assert b.k.vfs.lookup("/mnt/copy.bin")[1].size == 8192
    lines = b.run("ls -l /mnt").split("\n")
    assert lines[0].startswith("total ")
    assert any(l.endswith(" 32768 z.bin") for l in lines)
    assert b.run("sha256sum /mnt/copy.bin") == hashlib.sha256(bytes(8192)).hexdigest() + "  /mnt/copy.bin"
    from kernel_py.lib.sha256 import sha256           # the guest's fallback agrees
    assert sha256(pattern(0, 5000)).hexdigest() == hashlib.sha256(pattern(0, 5000)).hexdigest()
    b.close()


def test_slab_objects_are_the_real_records(img):
    """A fat_inode_cache object holds the inode's directory entry (name,
    attributes, first cluster, size) and i_ino, following writes and
    truncates; a dentry object holds d_name's length, d_inode (the inode's
    object, a reference kmemleak's scan follows) and the name."""
    b = Box([str(img)])
    name = "a_longer_name.txt"
    b.k.vfs.write("/mnt/" + name, b"x" * 5000)
    fs = b.fs
    ino = fs.lookup(fs.root, name)
    read = b.hw.readbytes

    def inode_fields():
        rec = read(ino.va - DMB, 40)
        hi, lo = struct.unpack_from("<H", rec, 20)[0], struct.unpack_from("<H", rec, 26)[0]
        return (rec[:11], rec[11], (hi << 16) | lo) + struct.unpack_from("<IQ", rec, 28)

    assert ino.va and ino.first >= 2
    assert inode_fields() == (ino.short, ino.attr, ino.first, 5000, ino.i_ino)
    b.k.vfs.truncate("/mnt/" + name, 10)
    assert inode_fields()[3] == 10
    b.k.vfs.truncate("/mnt/" + name, 0)
    assert inode_fields()[2:4] == (0, 0)                # no cluster left
    den = fs.dcache[(fs.root.key(), name)]
    rec = read(den.va - DMB, 88)
    hash_len, _, d_inode = struct.unpack_from("<QQQ", rec, 32)
    assert (hash_len >> 32, d_inode) == (len(name), ino.va)
    assert rec[56:56 + len(name)] == name.encode() and rec[56 + len(name)] == 0
