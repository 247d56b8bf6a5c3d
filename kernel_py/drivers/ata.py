# ATA PIO driver for the primary channel of QEMU's `pc` machine (PIIX IDE):
# command block at 0x1F0-0x1F7, control block at 0x3F6. Polled, with device
# interrupts off (nIEN). IDENTIFY DEVICE, READ/WRITE SECTORS (28-bit LBA) and
# their EXT forms (48-bit LBA), FLUSH CACHE (EXT). Data moves with rep insw /
# rep outsw straight into / out of physical frames (hw.insw, hw.outsw), one
# 512-byte sector per DRQ block, as the ATA/ATAPI-6 PIO protocols describe.

from kernel_py.lib.errors import KernelError

PRIMARY_BASE = 0x1F0
PRIMARY_CTRL = 0x3F6

# Command block register offsets
REG_DATA = 0
REG_ERROR = 1           # read
REG_FEATURES = 1        # write
REG_NSECT = 2
REG_LBA0 = 3
REG_LBA1 = 4
REG_LBA2 = 5
REG_DEVICE = 6
REG_STATUS = 7          # read
REG_COMMAND = 7         # write

# Status bits
ST_ERR = 0x01
ST_DRQ = 0x08
ST_DF = 0x20
ST_DRDY = 0x40
ST_BSY = 0x80

# Device control register
CTL_NIEN = 0x02
CTL_SRST = 0x04
CTL_HOB = 0x80

DEV_LBA = 0x40          # device register: LBA addressing
DEV_OBS = 0xA0          # obsolete bits, set by convention

CMD_READ_SECTORS = 0x20
CMD_READ_SECTORS_EXT = 0x24
CMD_WRITE_SECTORS = 0x30
CMD_WRITE_SECTORS_EXT = 0x34
CMD_FLUSH_CACHE = 0xE7
CMD_FLUSH_CACHE_EXT = 0xEA
CMD_IDENTIFY = 0xEC

LBA28_LIMIT = 1 << 28
MAX_SECTORS_PER_CMD = 256
POLL_LIMIT = 2000000     # status reads before a command is declared hung


class AtaDisk:
    """One drive (0 master, 1 slave) on a channel; the block layer's driver."""

    def __init__(self, chan, drive, ident):
        self.chan = chan
        self.drive = drive
        self.ident = ident                      # the 256 IDENTIFY words
        self.lba48 = bool(ident[83] & (1 << 10))
        n28 = ident[60] | (ident[61] << 16)
        n48 = ident[100] | (ident[101] << 16) | (ident[102] << 32) | (ident[103] << 48)
        self.nr_sectors = n48 if self.lba48 and n48 else n28
        self.model = ident_string(ident, 27, 47)
        self.serial = ident_string(ident, 10, 20)

    def transfer(self, write, lba, segs):
        """segs [(pa, nsect)] contiguous on disk from lba, in commands of at
        most 256 sectors; a command may span frames (one insw per sector)."""
        sectors = []            # (pa of one sector) for the current command
        for pa, n in segs:
            for i in range(n):
                sectors.append(pa + (i << 9))
                if len(sectors) == MAX_SECTORS_PER_CMD:
                    self.chan.pio(self, write, lba, sectors)
                    lba += len(sectors)
                    sectors = []
        if sectors:
            self.chan.pio(self, write, lba, sectors)

    def flush(self):
        self.chan.flush(self)


class AtaChannel:
    def __init__(self, hw, base=PRIMARY_BASE, ctrl=PRIMARY_CTRL):
        self.hw = hw
        self.base = base
        self.ctrl = ctrl
        self.selected = -1
        self.commands = 0

    # -- low level
    def status(self):
        return self.hw.inb(self.base + REG_STATUS)

    def delay400(self):
        """Four reads of the alternate status: the 400 ns a drive needs after
        a select or a command before its status is valid."""
        inb, c = self.hw.inb, self.ctrl
        inb(c)
        inb(c)
        inb(c)
        inb(c)

    def select(self, drive):
        if self.selected != drive:
            self.hw.outb(self.base + REG_DEVICE, DEV_OBS | DEV_LBA | (drive << 4))
            self.delay400()
            self.selected = drive

    def wait_idle(self, what):
        """Poll until BSY clears (before a command: ERR of the last one may
        still show, it is cleared by the next command)."""
        inb, port = self.hw.inb, self.base + REG_STATUS
        for _ in range(POLL_LIMIT):
            if not inb(port) & ST_BSY:
                return
        raise KernelError("EIO", "ata: %s: device busy (timeout)" % what)

    def wait(self, what):
        """Poll until BSY clears; then the status. EIO on a hang, an error
        (ERR/DF) or when DRQ is wanted but not given."""
        inb, port = self.hw.inb, self.base + REG_STATUS
        for _ in range(POLL_LIMIT):
            st = inb(port)
            if not st & ST_BSY:
                break
        else:
            raise KernelError("EIO", "ata: %s: device busy (timeout)" % what)
        if st & (ST_ERR | ST_DF):
            err = self.hw.inb(self.base + REG_ERROR)
            raise KernelError("EIO", "ata: %s: status 0x%02x error 0x%02x" % (what, st, err))
        return st

    def issue(self, disk, lba, count, cmd28, cmd48):
        outb, base = self.hw.outb, self.base
        self.select(disk.drive)
        self.wait_idle("select")
        if lba + count > LBA28_LIMIT:
            if not disk.lba48:
                raise KernelError("EIO", "ata: LBA %d beyond 28-bit addressing" % lba)
            # 48-bit: the high ("previous") bytes first, then the low ones
            outb(base + REG_NSECT, (count >> 8) & 0xFF)
            outb(base + REG_LBA0, (lba >> 24) & 0xFF)
            outb(base + REG_LBA1, (lba >> 32) & 0xFF)
            outb(base + REG_LBA2, (lba >> 40) & 0xFF)
            outb(base + REG_NSECT, count & 0xFF)
            outb(base + REG_LBA0, lba & 0xFF)
            outb(base + REG_LBA1, (lba >> 8) & 0xFF)
            outb(base + REG_LBA2, (lba >> 16) & 0xFF)
            outb(base + REG_DEVICE, DEV_OBS | DEV_LBA | (disk.drive << 4))
            outb(base + REG_COMMAND, cmd48)
        else:
            outb(base + REG_NSECT, count & 0xFF)      # 0 means 256
            outb(base + REG_LBA0, lba & 0xFF)
            outb(base + REG_LBA1, (lba >> 8) & 0xFF)
            outb(base + REG_LBA2, (lba >> 16) & 0xFF)
            outb(base + REG_DEVICE, DEV_OBS | DEV_LBA | (disk.drive << 4) | ((lba >> 24) & 0x0F))
            outb(base + REG_COMMAND, cmd28)
        self.commands += 1
        self.delay400()

    def pio(self, disk, write, lba, sectors):
        """One READ/WRITE SECTORS command; sectors: the pa of each sector.
        Per sector (one DRQ block): poll BSY off, check ERR/DF/DRQ, move
        256 words with rep insw/outsw."""
        count = len(sectors)
        hw = self.hw
        data, port = self.base + REG_DATA, self.base + REG_STATUS
        inb = hw.inb
        if write:
            self.issue(disk, lba, count, CMD_WRITE_SECTORS, CMD_WRITE_SECTORS_EXT)
            move = hw.outsw
        else:
            self.issue(disk, lba, count, CMD_READ_SECTORS, CMD_READ_SECTORS_EXT)
            move = hw.insw
        i = 0
        for pa in sectors:
            st = inb(port)
            if st & (ST_BSY | ST_ERR | ST_DF | ST_DRQ) != ST_DRQ:
                st = self.wait("%s lba %d" % ("write" if write else "read", lba + i))
                if not st & ST_DRQ:
                    raise KernelError("EIO", "ata: %s lba %d: no DRQ (status 0x%02x)" % (
                        "write" if write else "read", lba + i, st))
            move(data, pa, 256)
            i += 1
        if write or inb(port) & (ST_BSY | ST_ERR | ST_DF):
            self.wait("%s lba %d" % ("write" if write else "read", lba + count - 1))

    def flush(self, disk):
        self.select(disk.drive)
        self.wait_idle("select")
        self.hw.outb(self.base + REG_COMMAND,
                     CMD_FLUSH_CACHE_EXT if disk.lba48 else CMD_FLUSH_CACHE)
        self.commands += 1
        self.delay400()
        self.wait("flush")

    def identify(self, drive):
        """The IDENTIFY words of an ATA drive, or None (no drive, ATAPI)."""
        hw, base = self.hw, self.base
        self.selected = -1
        self.select(drive)
        st = self.status()
        if st == 0 or st == 0xFF:
            return None
        for r in (REG_NSECT, REG_LBA0, REG_LBA1, REG_LBA2):
            hw.outb(base + r, 0)
        hw.outb(base + REG_COMMAND, CMD_IDENTIFY)
        self.delay400()
        st = self.status()
        if st == 0 or st == 0xFF:
            return None
        for _ in range(POLL_LIMIT):
            st = self.status()
            if not st & ST_BSY:
                break
        else:
            return None
        if hw.inb(base + REG_LBA1) or hw.inb(base + REG_LBA2):
            return None                         # ATAPI / SATA signature
        for _ in range(POLL_LIMIT):
            st = self.status()
            if st & (ST_DRQ | ST_ERR):
                break
        if st & ST_ERR or not st & ST_DRQ:
            return None
        inw = hw.inw
        return [inw(base + REG_DATA) for _ in range(256)]


def ident_string(words, start, end):
    """An IDENTIFY ASCII field: two characters per word, high byte first."""
    out = []
    for w in words[start:end]:
        out.append(chr((w >> 8) & 0x7F or 32))
        out.append(chr(w & 0x7F or 32))
    return "".join(out).strip()


def probe(hw, base=PRIMARY_BASE, ctrl=PRIMARY_CTRL):
    """The ATA disks on a channel (master first). Interrupts off (nIEN).
    An absent controller reads 0xFF (floating bus): no disks."""
    if hw.inb(base + REG_STATUS) == 0xFF and hw.inb(ctrl) == 0xFF:
        return []
    chan = AtaChannel(hw, base, ctrl)
    hw.outb(ctrl, CTL_NIEN)
    disks = []
    for drive in (0, 1):
        ident = chan.identify(drive)
        if ident is None or not ident[49] & (1 << 9):   # LBA supported
            continue
        disk = AtaDisk(chan, drive, ident)
        if disk.nr_sectors:
            disks.append(disk)
    return disks
