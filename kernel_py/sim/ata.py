"""A model of QEMU's PIIX IDE primary channel for the simulated machine:
the command block at 0x1F0-0x1F7 and the control block at 0x3F6, with up to
two ATA disks (master, slave) backed by a bytearray or a host file.

It implements what the driver uses, with the protocol's states: IDENTIFY
DEVICE, READ/WRITE SECTORS (+EXT, 48-bit LBA through the HOB register
pairs), FLUSH CACHE (+EXT), nIEN and SRST in device control, BSY/DRDY/DRQ/
ERR in the status register, 16-bit data-port transfers of one sector per
DRQ block. Unknown commands abort (ERR, error register ABRT).

    m = Machine(...)
    ide = attach_ide(m, [bytearray(8 << 20), "swap.img"])

Counters for tests: commands, sectors_read, sectors_written, flushes,
per-command log in `log` (cmd, drive, lba, count) when log_commands is set.
Fault injection: `fail_lba` (a set of LBAs whose access sets ERR).
"""

import struct

BASE = 0x1F0
CTRL = 0x3F6
SECTOR = 512

ST_ERR, ST_DRQ, ST_DSC, ST_DRDY, ST_BSY = 0x01, 0x08, 0x10, 0x40, 0x80
ERR_ABRT, ERR_IDNF, ERR_UNC = 0x04, 0x10, 0x40


class Backing:
    """Sectors in a bytearray, or in a host file (read/written in place)."""

    def __init__(self, src):
        self.file = None
        if isinstance(src, (bytearray, memoryview)):
            self.buf = src
            self.size = len(src)
        else:
            self.buf = None
            self.file = open(src, "r+b")
            self.file.seek(0, 2)
            self.size = self.file.tell()

    def read(self, off, n):
        if self.buf is not None:
            return bytes(self.buf[off:off + n])
        self.file.seek(off)
        return self.file.read(n)

    def write(self, off, data):
        if self.buf is not None:
            self.buf[off:off + len(data)] = data
        else:
            self.file.seek(off)
            self.file.write(data)

    def flush(self):
        if self.file is not None:
            self.file.flush()

    def close(self):
        if self.file is not None:
            self.file.close()


class Drive:
    def __init__(self, src, model):
        self.back = Backing(src)
        self.nsect = self.back.size // SECTOR
        self.model = model

    def identify(self):
        w = [0] * 256
        w[0] = 0x0040                       # fixed, not removable
        w[1], w[3], w[6] = 16383, 16, 63    # legacy CHS
        put_string(w, 10, 20, "KPYSIM%06d" % self.nsect)
        put_string(w, 23, 27, "1.0")
        put_string(w, 27, 47, self.model)
        w[47] = 0x8001
        w[49] = 1 << 9                      # LBA
        n28 = min(self.nsect, (1 << 28) - 1)
        w[60], w[61] = n28 & 0xFFFF, n28 >> 16
        w[80] = 0x7E                        # ATA-1..6
        w[82] = 1 << 5                      # write cache
        w[83] = (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10)   # FLUSH EXT, LBA48
        w[86] = (1 << 13) | (1 << 12) | (1 << 10)
        for i in range(4):
            w[100 + i] = (self.nsect >> (16 * i)) & 0xFFFF
        return struct.pack("<256H", *w)


def put_string(words, start, end, text):
    text = text.ljust(2 * (end - start))
    for i in range(start, end):
        j = 2 * (i - start)
        words[i] = (ord(text[j]) << 8) | ord(text[j + 1])


class IdeChannel:
    """port_read/port_write for 0x1F0-0x1F7 and 0x3F6 (ports.py protocol)."""

    def __init__(self, drives, log_commands=False):
        self.drives = list(drives) + [None] * (2 - len(drives))
        self.features = 0
        self.nsect = [0, 0]          # [current, previous (HOB)]
        self.lba = [[0, 0], [0, 0], [0, 0]]
        self.device = 0xA0
        self.control = 0
        self.status = ST_DRDY | ST_DSC
        self.error = 0
        self.buf = b""               # the DRQ block being transferred
        self.pos = 0
        self.op = None               # ("r"|"w", drive, next lba, remaining)
        self.wbuf = bytearray()
        self.commands = 0
        self.sectors_read = 0
        self.sectors_written = 0
        self.flushes = 0
        self.log_commands = log_commands
        self.log = []
        self.fail_lba = set()

    # -- helpers
    def cur(self):
        return self.drives[(self.device >> 4) & 1]

    def drive_no(self):
        return (self.device >> 4) & 1

    def present(self):
        return self.cur() is not None

    def abort(self, err=ERR_ABRT):
        self.status = ST_DRDY | ST_DSC | ST_ERR
        self.error = err
        self.op = None
        self.buf, self.pos = b"", 0

    def _lba(self, ext):
        lo = self.lba[0][0] | (self.lba[1][0] << 8) | (self.lba[2][0] << 16)
        if ext:
            hi = self.lba[0][1] | (self.lba[1][1] << 8) | (self.lba[2][1] << 16)
            n = self.nsect[0] | (self.nsect[1] << 8)
            return lo | (hi << 24), n or 65536
        return lo | ((self.device & 0x0F) << 24), self.nsect[0] or 256

    # -- ports
    def port_read(self, port, width):
        if port == CTRL:
            return self._status_value()
        reg = port - BASE
        if reg == 0:
            return self._data_read(width)
        if not self.present():
            return 0
        hob = self.control & 0x80
        if reg == 1:
            return self.error
        if reg == 2:
            return self.nsect[1 if hob else 0]
        if 3 <= reg <= 5:
            return self.lba[reg - 3][1 if hob else 0]
        if reg == 6:
            return self.device
        return self._status_value()

    def _status_value(self):
        if not self.present():
            return 0
        return self.status

    def port_write(self, port, width, value):
        if port == CTRL:
            if value & 0x04 and not self.control & 0x04:
                self.reset()
            self.control = value & 0xFF
            return
        reg = port - BASE
        if reg == 0:
            self._data_write(width, value)
            return
        value &= 0xFF
        self.control &= ~0x80           # a register write clears HOB
        if reg == 1:
            self.features = value
        elif reg == 2:
            self.nsect = [value, self.nsect[0]]
        elif 3 <= reg <= 5:
            r = self.lba[reg - 3]
            r[1], r[0] = r[0], value
        elif reg == 6:
            self.device = value
        else:
            if self.present():
                self.command(value)

    def reset(self):
        self.status = ST_DRDY | ST_DSC
        self.error = 1                  # diagnostic code: no error
        self.op = None
        self.buf, self.pos = b"", 0
        self.device = 0xA0
        self.nsect = [1, 1]
        self.lba = [[1, 1], [0, 0], [0, 0]]   # ATA signature

    def command(self, cmd):
        d = self.cur()
        self.commands += 1
        self.error = 0
        if self.log_commands:
            ext = cmd in (0x24, 0x34)
            lba, n = self._lba(ext) if cmd in (0x20, 0x24, 0x30, 0x34) else (0, 0)
            self.log.append((cmd, self.drive_no(), lba, n))
        if cmd == 0xEC:
            self.lba = [[0, 0], [0, 0], [0, 0]]
            self._start_pio_in(d.identify())
            self.op = None
        elif cmd in (0x20, 0x24, 0x30, 0x34):
            lba, n = self._lba(cmd in (0x24, 0x34))
            if lba + n > d.nsect:
                self.abort(ERR_IDNF)
                return
            if cmd in (0x20, 0x24):
                self.op = ["r", d, lba, n]
                self._next_read()
            else:
                self.op = ["w", d, lba, n]
                self.wbuf = bytearray()
                self.status = ST_DRDY | ST_DSC | ST_DRQ
        elif cmd in (0xE7, 0xEA):
            d.back.flush()
            self.flushes += 1
            self.status = ST_DRDY | ST_DSC
        else:
            self.abort()

    def _start_pio_in(self, data):
        self.buf, self.pos = data, 0
        self.status = ST_DRDY | ST_DSC | ST_DRQ

    def _next_read(self):
        op = self.op
        if op[3] == 0:
            self.op = None
            self.status = ST_DRDY | ST_DSC
            return
        lba = op[2]
        if lba in self.fail_lba:
            self.abort(ERR_UNC)
            return
        self._start_pio_in(op[1].back.read(lba * SECTOR, SECTOR))
        self.sectors_read += 1
        op[2] += 1
        op[3] -= 1

    def _data_read(self, width):
        if not self.status & ST_DRQ or self.buf is None or self.op and self.op[0] == "w":
            return 0xFFFF if width == 2 else 0xFF
        v = int.from_bytes(self.buf[self.pos:self.pos + width], "little")
        self.pos += width
        if self.pos >= len(self.buf):
            self.buf, self.pos = b"", 0
            self.status = ST_DRDY | ST_DSC
            if self.op is not None:
                self._next_read()
        return v

    def _data_write(self, width, value):
        op = self.op
        if not self.status & ST_DRQ or op is None or op[0] != "w":
            return
        self.wbuf += value.to_bytes(width, "little")
        if len(self.wbuf) >= SECTOR:
            lba = op[2]
            if lba in self.fail_lba:
                self.abort(ERR_UNC)
                return
            op[1].back.write(lba * SECTOR, bytes(self.wbuf[:SECTOR]))
            self.sectors_written += 1
            self.wbuf = bytearray()
            op[2] += 1
            op[3] -= 1
            if op[3] == 0:
                self.op = None
                self.status = ST_DRDY | ST_DSC
            else:
                self.status = ST_DRDY | ST_DSC | ST_DRQ

    def close(self):
        for d in self.drives:
            if d is not None:
                d.back.close()


def attach_ide(machine, disks, log_commands=False):
    """Attach a primary IDE channel with `disks` (master, then slave; each a
    bytearray, a path, or None) to a Machine. Returns the IdeChannel."""
    drives = []
    for i, src in enumerate(disks):
        drives.append(None if src is None else Drive(src, "QEMU HARDDISK %d" % i))
    chan = IdeChannel(drives, log_commands)
    machine.attach_port(range(BASE, BASE + 8), chan)
    machine.attach_port(CTRL, chan)
    return chan
