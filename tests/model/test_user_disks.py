"""The disks of the user programs (qemu/kpyqemu/disks.py), checked against
the kernel's own FAT and swap code on the simulated machine: the data disk
mounts at /mnt with the programs under /mnt/bin, byte for byte; the swap
disk's header (mkswap's, or the one disks.py writes without mkswap) passes
`swapon /dev/sdb`; a test's copy is its own; refreshing the shared image
keeps what a user stored."""

import hashlib
import os
import stat

import pytest

from fssupport import Box, host_get, host_put, needs_mkfs
from kpyqemu import disks

pytestmark = needs_mkfs


def fake_user_dir(d, names=("hello", "usertests"), size=5000):
    d.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        p = d / name
        p.write_bytes(bytes((i * 7 + j) & 0xFF for j in range(size + i)))
        p.chmod(0o755)
    (d / "notes.txt").write_text("not executable: not copied\n")
    bad = d / "badelf"
    bad.mkdir(exist_ok=True)
    (bad / "EXPECT").write_text("empty errno:ENOEXEC\n")
    (bad / "empty").write_bytes(b"")
    return d


def test_fresh_disks_mount_in_the_kernel_with_the_programs(tmp_path):
    user = fake_user_dir(tmp_path / "user")
    d = disks.fresh_disks(tmp_path / "t1", data_mb=64, swap_mb=16, user_dir=user)
    assert d.drives == [str(d.data), str(d.swap)]
    assert disks.guest_files(d.data, "::/bin") == ["hello", "usertests"]
    assert disks.guest_files(d.data, "::/badelf") == ["EXPECT", "empty"]
    b = Box(d.drives)
    try:
        for name in ("hello", "usertests"):
            assert b.k.vfs.read("/mnt/bin/" + name) == (user / name).read_bytes()
        out = b.run("ls /mnt/bin")
        assert "hello" in out and "usertests" in out and "notes.txt" not in out
        assert b.k.vfs.read("/mnt/badelf/EXPECT") == b"empty errno:ENOEXEC\n"
        swaps = b.run("cat /proc/swaps")           # enabled at boot, as fstab's swap line would
        assert "/dev/sdb" in swaps
        assert str((16 << 20) // 1024 - 4) in swaps      # Linux's size: the header page excluded
    finally:
        b.close()
    b = Box(d.drives, cmdline="noswap")
    try:
        assert "/dev/sdb" not in b.run("cat /proc/swaps")
        b.run("swapon /dev/sdb")
        assert "/dev/sdb" in b.run("cat /proc/swaps")
    finally:
        b.close()


def test_python_swap_header_when_mkswap_is_missing(tmp_path, monkeypatch):
    real = disks._tool
    monkeypatch.setattr(disks, "_tool", lambda name: None if name == "mkswap" else real(name))
    img = disks.make_swap_disk(tmp_path / "swap.img", 8)
    with open(img, "rb") as f:
        page = f.read(4096)
    assert page[-10:] == b"SWAPSPACE2"
    assert int.from_bytes(page[1024:1028], "little") == 1
    assert int.from_bytes(page[1028:1032], "little") == (8 << 20) // 4096 - 1
    data = disks.make_data_disk(tmp_path / "data.img", 64, fake_user_dir(tmp_path / "user"))
    b = Box([str(data), str(img)], cmdline="noswap")
    try:
        b.run("swapon /dev/sdb")
        assert "/dev/sdb" in b.run("cat /proc/swaps")
    finally:
        b.close()


def test_each_test_gets_its_own_copy(tmp_path):
    user = fake_user_dir(tmp_path / "user")
    a = disks.fresh_disks(tmp_path / "a", data_mb=64, swap=False, user_dir=user,
                          files={"/data/in.txt": b"given\n"})
    assert a.swap is None and a.drives == [str(a.data)]
    assert host_get(a.data, "/data/in.txt") == b"given\n"
    host_put(a.data, "/scribble.txt", b"mine")
    b = disks.fresh_disks(tmp_path / "b", data_mb=64, swap=False, user_dir=user)
    assert host_get(b.data, "/scribble.txt") is None
    assert host_get(b.data, "/data/in.txt") is None
    assert host_get(b.data, "/bin/hello") == (user / "hello").read_bytes()
    # sparse: the copy does not write the image's holes
    st = os.stat(b.data)
    assert st.st_blocks * 512 < st.st_size // 4


def test_refresh_keeps_user_files_and_copies_newer_programs(tmp_path):
    user = fake_user_dir(tmp_path / "user")
    img = tmp_path / "disk.img"
    copied = disks.update_data_disk(img, 64, user)
    assert sorted(copied) == ["EXPECT", "empty", "hello", "usertests"]
    host_put(img, "/mine.txt", b"a user's file")
    old = os.stat(img).st_mtime
    assert disks.update_data_disk(img, 64, user) == []            # nothing newer
    (user / "hello").write_bytes(b"rebuilt")
    os.utime(user / "hello", (old + 10, old + 10))
    assert disks.update_data_disk(img, 64, user) == ["hello"]
    assert host_get(img, "/bin/hello") == b"rebuilt"
    assert host_get(img, "/mine.txt") == b"a user's file"
    assert host_get(img, "/bin/usertests") == (user / "usertests").read_bytes()


@pytest.mark.skipif(not (disks.USER_DIR / "hello").exists(), reason="user programs not built (make user)")
def test_the_built_programs_reach_the_kernel_intact(tmp_path):
    d = disks.fresh_disks(tmp_path, swap=False)
    progs, bad = disks.programs()
    names = disks.guest_files(d.data, "::/bin")
    assert sorted(p.name for p in progs) == names
    assert "EXPECT" in disks.guest_files(d.data, "::/badelf")
    b = Box(d.drives)
    try:
        for p in progs:
            if p.name in ("hello", "usertests"):
                want = hashlib.sha256(p.read_bytes()).hexdigest()
                out = b.run("sha256sum /mnt/bin/" + p.name)
                assert out.split()[0] == want, p.name
        assert stat.S_ISREG(os.stat(progs[0]).st_mode)
    finally:
        b.close()
