"""The page cache over a real (QEMU) IDE disk: the harness makes data.img
(mkfs.fat) and swap.img in a temporary directory and attaches both; what
reached the disk is checked from the host with mtools (issue 6)."""

import os
import re
import shutil
import subprocess

import pytest

from kernel_py.fs.vfs import pattern

MKFS = shutil.which("mkfs.fat") or "/usr/sbin/mkfs.fat"
pytestmark = pytest.mark.skipif(not os.path.exists(MKFS) or not shutil.which("mcopy"),
                                reason="needs dosfstools and mtools")

DATA_MB = 64
SWAP_MB = 32


def make_disks(d):
    data, swap = d / "data.img", d / "swap.img"
    with open(data, "wb") as f:
        f.truncate(DATA_MB << 20)
    subprocess.run([MKFS, "-F", "16", "-s", "8", "-n", "KPYDATA", str(data)], check=True,
                   capture_output=True)
    with open(swap, "wb") as f:
        f.truncate(SWAP_MB << 20)
    return data, swap


def host_get(img, name):
    r = subprocess.run(["mcopy", "-n", "-i", str(img), "::" + name, "-"], capture_output=True)
    return None if r.returncode else r.stdout


def host_put(img, name, data):
    src = str(img) + ".put"
    with open(src, "wb") as f:
        f.write(data)
    subprocess.run(["mcopy", "-o", "-i", str(img), src, "::" + name], check=True, capture_output=True)
    os.unlink(src)


def fields(text):
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(r"^(\S+?):?\s+(\d+)", text, re.M))


def free_line(g):
    out = g.run("free").split("\n")
    return dict(zip(out[0].split(), (int(x) for x in out[1].split()[1:])))


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    d = tmp_path_factory.mktemp("disks")
    data, swap = make_disks(d)
    host_put(data, "/From Host.txt", b"written by mtools\n")
    return data, swap


@pytest.fixture
def dg(boot, disks):
    """A guest booted with the module's data and swap disks."""
    return boot(drives=[str(disks[0]), str(disks[1])])


def test_boot_finds_both_disks_and_mounts_fat(dg):
    assert re.search(r"^sda: ATA master .*%d sectors" % (DATA_MB << 11), dg.banner, re.M)
    assert re.search(r"^sdb: ATA slave .*%d sectors" % (SWAP_MB << 11), dg.banner, re.M)
    assert "FAT-fs (sda): mounted FAT16 on /mnt" in dg.banner
    parts = dg.run("cat /proc/partitions").split("\n")
    assert parts[-2].split() == ["8", "0", str(DATA_MB << 10), "sda"]
    assert parts[-1].split() == ["8", "16", str(SWAP_MB << 10), "sdb"]
    assert dg.run("mount") == "/dev/sda on /mnt type vfat (rw,relatime)"
    assert dg.run("cat '/mnt/From Host.txt'") == "written by mtools"
    assert "From Host.txt" in dg.run("ls /mnt")


def test_write_sync_reaches_the_image(dg, disks):
    dg.run("write /mnt/hello.txt hello from the guest")
    dg.run("fill /mnt/pat.bin 300K")
    dg.run("sync")
    assert host_get(disks[0], "/hello.txt") == b"hello from the guest\n"
    assert host_get(disks[0], "/pat.bin") == pattern(0, 300 << 10)
    assert fields(dg.run("cat /proc/meminfo"))["Dirty"] == 0


def test_synced_data_survives_kill_and_reboot(boot, disks):
    g = boot(drives=[str(disks[0]), str(disks[1])])
    g.run("mkdir /mnt/keep")
    g.run("write /mnt/keep/survivor.txt synced before the kill")
    g.run("fill /mnt/keep/big.bin 200K")
    g.run("sync")
    g.run("write /mnt/keep/late.txt never synced")
    g.kill()                                         # QEMU dies: no poweroff, no sync
    g2 = boot(drives=[str(disks[0]), str(disks[1])])
    assert g2.run("cat /mnt/keep/survivor.txt") == "synced before the kill"
    sha = g2.run("sha256sum /mnt/keep/big.bin", timeout=300).split()[0]
    import hashlib
    assert sha == hashlib.sha256(pattern(0, 200 << 10)).hexdigest()
    assert g2.run_expect_error("cat /mnt/keep/late.txt").startswith("error: ENOENT")
    g2.run("rm /mnt/keep/big.bin")
    g2.run("sync")


def test_sync_and_drop_caches_as_typed_shrinks_buff_cache(dg):
    dg.run("fill /mnt/cache.bin 2M")
    dg.run("dd if=/mnt/cache.bin of=/dev/null bs=64K")
    before = free_line(dg)
    assert before["buff/cache"] >= 2048
    assert dg.run("sync; echo 3 > /proc/sys/vm/drop_caches") == ""
    after = free_line(dg)
    assert after["buff/cache"] < before["buff/cache"] - 1500
    assert after["free"] > before["free"] + 1500
    mi = fields(dg.run("cat /proc/meminfo"))
    assert mi["Cached"] < 1024 and mi["Dirty"] == 0
    m = dg.run("free -m").split("\n")
    assert m[1].split()[0] == "Mem:" and m[2].split()[0] == "Swap:"


def test_drop_caches_never_loses_dirty_data(dg, disks):
    dg.run("fill /mnt/dirty.bin 64K")
    dg.run("write /mnt/dirty.txt not synced yet")
    dirty = fields(dg.run("cat /proc/meminfo"))["Dirty"]
    assert dirty >= 64
    dg.run("echo 3 > /proc/sys/vm/drop_caches")
    assert fields(dg.run("cat /proc/meminfo"))["Dirty"] == dirty
    assert dg.run("cat /mnt/dirty.txt") == "not synced yet"
    assert host_get(disks[0], "/dirty.txt") in (None, b"")     # still only in memory
    dg.run("sync")
    assert host_get(disks[0], "/dirty.txt") == b"not synced yet\n"
    assert host_get(disks[0], "/dirty.bin") == pattern(0, 64 << 10)


def test_cold_then_warm_read_in_vmstat(dg):
    dg.run("fill /mnt/cold.bin 512K")
    dg.run("sync; echo 1 > /proc/sys/vm/drop_caches")
    v0 = fields(dg.run("cat /proc/vmstat"))
    dg.run("dd if=/mnt/cold.bin of=/dev/null bs=64K")
    v1 = fields(dg.run("cat /proc/vmstat"))
    dg.run("dd if=/mnt/cold.bin of=/dev/null bs=64K")
    v2 = fields(dg.run("cat /proc/vmstat"))
    assert v1["pgpgin"] - v0["pgpgin"] >= 512              # cold: KiB read from the disk
    assert v1["pagecache_misses"] > v0["pagecache_misses"]
    assert v2["pgpgin"] == v1["pgpgin"]                    # warm: all hits
    assert v2["pagecache_misses"] == v1["pagecache_misses"]
    assert v2["pagecache_hits"] - v1["pagecache_hits"] >= 128
    assert "524288    128     524288 /mnt/cold.bin" in dg.run("fincore /mnt/cold.bin")
    vm = dg.run("vmstat").split("\n")
    assert vm[1].split()[8:10] == ["bi", "bo"] and len(vm[2].split()) == 17
    ds = dg.run("cat /proc/diskstats").split("\n")[0].split()
    assert ds[2] == "sda" and int(ds[5]) > 0 and int(ds[9]) > 0


def test_dirty_background_limit_writes_back_without_sync(dg):
    dg.run("echo 131072 > /proc/sys/vm/dirty_background_bytes")
    dg.run("echo 262144 > /proc/sys/vm/dirty_bytes")
    try:
        w0 = fields(dg.run("cat /proc/vmstat"))["nr_written"]
        dg.run("dd if=/dev/zero of=/mnt/wb.bin bs=64K count=16")
        v = fields(dg.run("cat /proc/vmstat"))
        assert v["nr_written"] - w0 >= 128                  # 1 MiB dirtied, most written already
        assert v["nr_dirty"] <= 64
    finally:
        dg.run("echo 10 > /proc/sys/vm/dirty_background_ratio; echo 20 > /proc/sys/vm/dirty_ratio")
    dg.run("rm /mnt/wb.bin; sync")


def test_bad_input_is_one_error_line_and_keeps_data(dg):
    dg.run("write /mnt/safe.txt safe")
    for cmd in ("cat /mnt/nope", "write /mnt/a*b x", "fill /mnt/safe.txt huge",
                "dd if=/dev/zero of=/mnt/x.bin bs=0 count=1", "rmdir /mnt/safe.txt",
                "echo 9 > /proc/sys/vm/drop_caches", "mount /dev/sdq /mnt2"):
        assert dg.run_expect_error(cmd).startswith("error: E")
    assert dg.run("cat /mnt/safe.txt") == "safe"
