"""The ATA PIO driver and the block layer over the simulated IDE channel
(kernel_py/sim/ata.py): probe, IDENTIFY, 28/48-bit LBA reads and writes
through physical frames, commands split at 256 sectors, flush, errors."""

import os

import pytest

from kernel_py.drivers import ata
from kernel_py.block.blkdev import BlockDevice
from kernel_py.lib.errors import KernelError
from kernel_py.mm.gfp import GFP_KERNEL
from kernel_py.sim.ata import attach_ide
from kernel_py.sim.machine import Machine

from fssupport import Box


def machine(disks, log=True):
    hw = Machine(32 << 20, "", console=lambda t: None)
    ide = attach_ide(hw, disks, log_commands=log) if disks is not None else None
    return hw, ide


def test_probe_finds_master_and_slave_with_identify_data():
    hw, ide = machine([bytearray(8 << 20), bytearray(3 << 20)])
    disks = ata.probe(hw)
    assert [d.drive for d in disks] == [0, 1]
    assert [d.nr_sectors for d in disks] == [(8 << 20) // 512, (3 << 20) // 512]
    assert disks[0].model == "QEMU HARDDISK 0"
    assert disks[0].lba48
    assert hw.inb(0x3F6) & 0x80 == 0            # idle, not busy
    assert ide.control & 0x02                    # nIEN: polled, no interrupts


def test_probe_without_controller_or_slave():
    hw, _ = machine(None)
    assert ata.probe(hw) == []
    hw, _ = machine([bytearray(1 << 20)])
    assert [d.drive for d in ata.probe(hw)] == [0]
    hw, _ = machine([None, bytearray(1 << 20)])
    assert [d.drive for d in ata.probe(hw)] == [1]


def dev_and_frames(disks, npages=4):
    hw, ide = machine(disks)
    d = ata.probe(hw)[0]
    dev = BlockDevice("sda", 8, 0, d.nr_sectors, d, d.model)
    frames = [hw.mem_size // 2 + i * 0x3000 for i in range(npages)]   # scattered frames
    return hw, ide, dev, frames


def test_read_write_round_trip_through_scattered_frames():
    disk = bytearray(os.urandom(2 << 20))
    before = bytes(disk)
    hw, ide, dev, frames = dev_and_frames([disk])
    dev.submit(False, 100, [(frames[0], 8), (frames[1], 3)])
    assert hw.readbytes(frames[0], 4096) == disk[100 * 512:108 * 512]
    assert hw.readbytes(frames[1], 3 * 512) == disk[108 * 512:111 * 512]
    hw.writebytes(frames[2], b"\xa5" * 4096)
    hw.writebytes(frames[3], b"\x5a" * 512)
    dev.submit(True, 7, [(frames[2], 8), (frames[3], 1)])
    assert disk[7 * 512:15 * 512] == b"\xa5" * 4096
    assert disk[15 * 512:16 * 512] == b"\x5a" * 512
    # the write touched sectors 7..15 and nothing else
    assert disk[:7 * 512] == before[:7 * 512]
    assert disk[16 * 512:] == before[16 * 512:]
    assert (dev.reads, dev.read_sectors, dev.writes, dev.write_sectors) == (1, 11, 1, 9)
    assert [c[0] for c in ide.log[-2:]] == [0x20, 0x30]     # 28-bit commands


def test_large_request_is_split_into_256_sector_commands():
    disk = bytearray(os.urandom(1 << 20))
    hw, ide, dev, frames = dev_and_frames([disk])
    base = hw.mem_size // 4
    dev.read(0, 600, base)
    assert hw.readbytes(base, 600 * 512) == disk[:600 * 512]
    reads = [c for c in ide.log if c[0] == 0x20]
    assert [(c[2], c[3]) for c in reads] == [(0, 256), (256, 256), (512, 88)]
    assert ide.sectors_read == 600


def test_lba48_beyond_128_gib(tmp_path):
    img = tmp_path / "big.img"
    with open(img, "wb") as f:
        f.truncate(200 << 30)                     # sparse
    hw, ide, dev, frames = dev_and_frames([str(img)])
    assert dev.nr_sectors == (200 << 30) // 512
    lba = (1 << 28) + 12345
    hw.writebytes(frames[0], bytes(range(256)) * 16)
    dev.write(lba, 8, frames[0])
    dev.read(lba, 8, frames[1])
    assert hw.readbytes(frames[1], 4096) == bytes(range(256)) * 16
    assert [c[0] for c in ide.log[-2:]] == [0x34, 0x24]
    assert ide.log[-1][2] == lba
    ide.close()
    with open(img, "rb") as f:
        f.seek(lba * 512)
        assert f.read(4096) == bytes(range(256)) * 16


def test_flush_and_errors():
    disk = bytearray(1 << 20)
    hw, ide, dev, frames = dev_and_frames([disk])
    dev.flush()
    assert ide.flushes == 1 and ide.log[-1][0] == 0xEA     # FLUSH CACHE EXT (LBA48 disk), once
    with pytest.raises(KernelError) as e:
        dev.read(dev.nr_sectors - 1, 2, frames[0])
    assert e.value.errname == "EIO"
    ide.fail_lba.add(10)
    with pytest.raises(KernelError) as e:
        dev.read(8, 4, frames[0])
    assert e.value.errname == "EIO" and "error 0x40" in e.value.detail
    assert dev.errors == 1
    ide.fail_lba.clear()
    dev.read(8, 4, frames[0])                    # the channel recovers
    hw.writebytes(frames[1], b"\x11" * 512)
    ide.fail_lba.add(3)
    with pytest.raises(KernelError):
        dev.write(2, 2, frames[1])
    assert disk[2 * 512:3 * 512] == b"\x11" * 512 and disk[3 * 512:4 * 512] == bytes(512)


def test_boot_registers_disks_and_diskstats():
    b = Box([bytearray(4 << 20), bytearray(2 << 20)])
    assert sorted(b.k.blk.devices) == ["sda", "sdb"]
    assert b.k.blk.get("/dev/sdb").nr_sectors == 4096
    stats = b.run("cat /proc/diskstats").split("\n")
    assert stats[1].split()[:3] == ["8", "16", "sdb"]
    parts = b.run("cat /proc/partitions").split("\n")
    assert parts[0].split() == ["major", "minor", "#blocks", "name"]
    assert parts[-1].split() == ["8", "16", "2048", "sdb"]
    assert any("sda: ATA master" in l for l in b.k.log)
    assert "vfs: sda not mounted" in "\n".join(b.k.log)     # not FAT: left alone


def test_boot_without_disks():
    b = Box([])
    assert b.k.blk.devices == {}
    assert b.run("cat /proc/diskstats") == ""
    assert b.err("ls /mnt/x").startswith("error: ENOENT")
    assert b.run("mount") == ""
    assert "Buffers:" in b.run("cat /proc/meminfo")
