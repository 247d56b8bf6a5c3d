# The block-device layer: a disk is a BlockDevice with a name (sda, sdb), a
# size in 512-byte sectors and a driver that moves sectors between the disk
# and physical frames. Everything above (the page cache, the buffer cache of
# the FS metadata, swap) goes through submit(): a bio from the layer's
# fs_bio_set (block/bio.py), submitted to transfer(), the driver stage,
# which keeps the /proc/diskstats counters and the global pgpgin/pgpgout
# (KiB) of vmstat.
#
# Driver interface (kernel_py/drivers/ata.py, or any other):
#   transfer(write, lba, segs)   segs: [(pa, nsect), ...] contiguous on disk
#                                 from lba; pa is physical memory
#   flush()                      write the device's volatile cache
#   model (str)

from kernel_py.lib.errors import KernelError
from kernel_py.drivers import ata
from kernel_py.block.bio import (BioSet, REQ_OP_READ, REQ_OP_WRITE, bio_add_segment, bio_alloc,
                                 bio_put, submit_bio_wait)
from kernel_py.mm.gfp import GFP_NOIO

SECTOR_SIZE = 512
SECTOR_SHIFT = 9


class BlockDevice:
    def __init__(self, name, major, minor, nr_sectors, driver, model=""):
        self.name = name
        self.major = major
        self.minor = minor
        self.nr_sectors = nr_sectors
        self.driver = driver
        self.model = model
        self.read_only = False
        self.holder = None          # who claimed it (a mounted FS, swap)
        # /proc/diskstats (Documentation/admin-guide/iostats.rst)
        self.reads = 0              # read requests completed
        self.read_sectors = 0
        self.writes = 0
        self.write_sectors = 0
        self.flushes = 0
        self.errors = 0
        self.stats = None           # the layer's totals (BlockLayer), or None

    def size_bytes(self):
        return self.nr_sectors << SECTOR_SHIFT

    def _check(self, lba, count):
        if type(lba) is not int or type(count) is not int or lba < 0 or count < 0 \
                or lba + count > self.nr_sectors:
            raise KernelError("EIO", "%s: sectors %r+%r beyond the end (%d sectors)"
                              % (self.name, lba, count, self.nr_sectors))

    def submit(self, write, lba, segs, gfp=GFP_NOIO):
        """Move the sectors of `segs` ([(pa, nsect)], contiguous on disk from
        lba) in or out as one bio (submit_bio_wait). gfp: GFP_NOIO for swap,
        GFP_NOFS for a file system's pages, so the allocation never recurses
        into the I/O being done."""
        bs = self.stats.fs_bio_set if self.stats is not None else None
        if bs is None:                  # a bare device (model tests): no slab
            return self.transfer(write, lba, segs)
        bio = bio_alloc(bs, self, REQ_OP_WRITE if write else REQ_OP_READ, gfp)
        if bio is None:
            raise KernelError("ENOMEM", "%s: no bio (gfp %#x)" % (self.name, gfp))
        bio.bi_sector = lba
        for s in segs:
            bio_add_segment(bio, s[0], s[1])
        try:
            submit_bio_wait(bio)
        finally:
            bio_put(bio)

    def transfer(self, write, lba, segs):
        """The driver stage of a request (Linux: the queue's queue_rq)."""
        total = 0
        for s in segs:
            total += s[1]
        self._check(lba, total)
        if not total:
            return
        if write and self.read_only:
            raise KernelError("EROFS", self.name)
        try:
            self.driver.transfer(write, lba, segs)
        except KernelError:
            self.errors += 1
            raise
        st = self.stats
        if write:
            self.writes += 1
            self.write_sectors += total
            if st is not None:
                st.pgpgout_sectors += total
        else:
            self.reads += 1
            self.read_sectors += total
            if st is not None:
                st.pgpgin_sectors += total

    def read(self, lba, count, pa):
        self.submit(False, lba, [(pa, count)])

    def write(self, lba, count, pa):
        self.submit(True, lba, [(pa, count)])

    def flush(self):
        self.flushes += 1
        self.driver.flush()

    def diskstats_line(self):
        """One /proc/diskstats line: the 11 classic fields plus discard (4)
        and flush (2) fields, times in ms (not measured: 0)."""
        return "%4d %7d %s %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d" % (
            self.major, self.minor, self.name,
            self.reads, 0, self.read_sectors, 0,
            self.writes, 0, self.write_sectors, 0,
            0, 0, 0,
            0, 0, 0, 0,
            self.flushes, 0)


class BlockLayer:
    """The machine's disks by name, and the totals vmstat reports."""

    def __init__(self):
        self.devices = {}           # name -> BlockDevice, in probe order
        self.order = []
        self.pgpgin_sectors = 0
        self.pgpgout_sectors = 0
        self.fs_bio_set = None      # the bios of the page cache and swap (bio.py)

    def add(self, dev):
        dev.stats = self
        self.devices[dev.name] = dev
        self.order.append(dev)

    def get(self, name):
        """A device by 'sdb' or '/dev/sdb'."""
        if name.startswith("/dev/"):
            name = name[5:]
        dev = self.devices.get(name)
        if dev is None:
            raise KernelError("ENODEV", "no block device %s" % name)
        return dev

    def pgpgin(self):
        return self.pgpgin_sectors >> 1

    def pgpgout(self):
        return self.pgpgout_sectors >> 1


def disk_name(i):
    """sda, sdb, ... (Linux's sd naming for ATA disks)."""
    return "sd" + chr(ord("a") + i)


def init(k):
    """Boot: probe the primary ATA channel; the disks become k.blk.devices
    (sda = IDE index 0, the data disk; sdb = index 1, the swap disk)."""
    layer = BlockLayer()
    if k.slab is not None:
        layer.fs_bio_set = BioSet(k.slab)
    k.blk = layer
    try:
        disks = ata.probe(k.hw)
    except KernelError as exc:
        k.printk("ata: probe failed: %s" % exc.line())
        disks = []
    for i in range(len(disks)):
        d = disks[i]
        dev = BlockDevice(disk_name(i), 8, 16 * i, d.nr_sectors, d, d.model)
        layer.add(dev)
        k.printk("%s: ATA %s %s, %d sectors (%d MiB)%s" % (
            dev.name, "slave" if d.drive else "master", d.model, d.nr_sectors,
            d.nr_sectors >> 11, ", LBA48" if d.lba48 else ""))
    return layer
