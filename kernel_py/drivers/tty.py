# The console terminal (Linux's drivers/tty/tty_io.c, tty_ioctl.c and the
# n_tty line discipline, drivers/tty/n_tty.c) over the serial port.
#
# Bytes from the UART reach receive(). While no program holds the terminal
# the kpy# monitor takes them (shell/console.py); otherwise the line
# discipline does, with Linux's termios: in canonical mode (ICANON) a line
# is edited (VERASE, VKILL, VWERASE) and echoed (ECHO) and becomes readable
# at NL or VEOF; ISIG turns VINTR, VQUIT and VSUSP into SIGINT, SIGQUIT and
# SIGTSTP for the foreground process group; in raw mode (what `top` sets
# through TCSETS) bytes are readable as they come, VMIN/VTIME deciding when
# read() returns.

import struct

from kernel_py.fs.file import (
    O_NONBLOCK, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, FileOperations,
)
from kernel_py.kernel import signal as sig
from kernel_py.kernel.wait import WaitQueue
from kernel_py.lib.errno import EAGAIN, EFAULT, EINVAL, EIO, ENOTTY, EPERM, ERESTARTSYS

# termios bits (include/uapi/asm-generic/termbits.h)
IGNCR, ICRNL, INLCR, IXON = 0x80, 0x100, 0x40, 0x400
OPOST, ONLCR = 0x1, 0x4
ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHONL, NOFLSH, TOSTOP = 0x1, 0x2, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100
ECHOCTL, ECHOKE, IEXTEN = 0x200, 0x800, 0x8000
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN = 0, 1, 2, 3, 4, 5, 6
VSTART, VSTOP, VSUSP, VEOL, VREPRINT, VDISCARD, VWERASE, VLNEXT, VEOL2 = 8, 9, 10, 11, 12, 13, 14, 15, 16
NCCS = 19
INIT_C_CC = b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00\x00\x00"
TERMIOS = "<IIIIB19s"           # the kernel's struct termios (36 bytes): what TCGETS copies
TERMIOS_SIZE = 36
# ioctls (include/uapi/asm-generic/ioctls.h)
TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCOUTQ = 0x540E, 0x540F, 0x5410, 0x5411
TIOCGWINSZ, TIOCSWINSZ, FIONREAD, FIONBIO, TIOCNOTTY, TIOCGSID = (
    0x5413, 0x5414, 0x541B, 0x5421, 0x5422, 0x5429)
MAX_CANON = 4096
NL = 0x0A
CR = 0x0D


class Termios:
    def __init__(self):
        self.iflag = ICRNL | IXON
        self.oflag = OPOST | ONLCR
        self.cflag = 0x4BF                          # B38400 | CS8 | CREAD | HUPCL
        self.lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
        self.line = 0
        self.cc = bytearray(INIT_C_CC)

    def pack(self):
        return struct.pack(TERMIOS, self.iflag, self.oflag, self.cflag, self.lflag, self.line,
                           bytes(self.cc))

    def unpack(self, b):
        self.iflag, self.oflag, self.cflag, self.lflag, self.line, cc = struct.unpack(TERMIOS, b)
        self.cc = bytearray(cc)


class Tty:
    """k.tty: the console terminal. write_out(bytes) sends to the UART."""

    def __init__(self, k, write_out):
        self.k = k
        self.write_out = write_out
        self.termios = Termios()
        self.rows, self.cols = 24, 80
        self.pgrp = 0                       # the foreground process group; 0: the monitor's
        self.session = 0
        self.line = bytearray()             # the canonical line being edited
        self.readq = bytearray()            # what read() can take now
        self.eof = 0                        # VEOFs pending at the head of readq (canonical)
        self.read_wait = WaitQueue()
        self.input_count = 0                # bytes received (for /proc/interrupts' sake)

    # -- input: from the UART --------------------------------------------------------
    def receive(self, c):
        """One byte from the wire, while a program holds the terminal."""
        tio = self.termios
        self.input_count += 1
        if tio.iflag & IGNCR and c == CR:
            return
        if tio.iflag & ICRNL and c == CR:
            c = NL
        elif tio.iflag & INLCR and c == NL:
            c = CR
        lflag = tio.lflag
        cc = tio.cc
        if lflag & ISIG:
            for idx, signo in ((VINTR, sig.SIGINT), (VQUIT, sig.SIGQUIT), (VSUSP, sig.SIGTSTP)):
                if cc[idx] and c == cc[idx]:
                    self.isig(signo, c)
                    return
        if lflag & ICANON:
            self.canon(c)
        else:
            self.readq.append(c)
            if lflag & ECHO:
                self.echo(c)
            self.wake()

    def isig(self, signo, c):
        tio = self.termios
        if not tio.lflag & NOFLSH:
            self.line = bytearray()
            self.readq = bytearray()
            self.eof = 0
        if tio.lflag & ECHO:
            self.echo(c)
            self.write_out(b"\n") if tio.lflag & ICANON else None
        if self.pgrp:
            sig.kill_pgrp(self.k, self.pgrp, signo)

    def canon(self, c):
        tio = self.termios
        cc = tio.cc
        lflag = tio.lflag
        if c == cc[VERASE] or c == 0x08:
            if self.line:
                n = len(self.line) - 1
                while n > 0 and self.line[n] & 0xC0 == 0x80:     # a whole UTF-8 character
                    n -= 1
                self.line = self.line[:n]
                if lflag & ECHO and lflag & ECHOE:
                    self.write_out(b"\x08 \x08")
            return
        if c == cc[VKILL]:
            if lflag & ECHO and lflag & ECHOK:
                self.write_out(b"\x08 \x08" * len(self.line))
            self.line = bytearray()
            return
        if c == cc[VWERASE] and lflag & IEXTEN:
            ln = self.line
            n = len(ln)
            while n and ln[n - 1] in b" \t":
                n -= 1
            while n and ln[n - 1] not in b" \t":
                n -= 1
            if lflag & ECHO:
                self.write_out(b"\x08 \x08" * (len(ln) - n))
            self.line = ln[:n]
            return
        if c == cc[VEOF]:
            self.readq += self.line
            self.line = bytearray()
            self.eof += 1
            self.readq.append(0)                    # a marker: read() stops here
            self.wake()
            return
        if c == NL or (cc[VEOL] and c == cc[VEOL]):
            self.line.append(c)
            if lflag & (ECHO | ECHONL):
                self.write_out(b"\n")
            self.readq += self.line
            self.line = bytearray()
            self.wake()
            return
        if len(self.line) < MAX_CANON:
            self.line.append(c)
            if lflag & ECHO:
                self.echo(c)

    def echo(self, c):
        if c < 0x20 and c not in (NL, 0x09) and self.termios.lflag & ECHOCTL:
            self.write_out(bytes((0x5E, c + 0x40)))     # ^C
        else:
            self.write_out(bytes((c,)))

    def wake(self):
        self.k.sched.wake_up(self.read_wait)

    # -- the file operations of /dev/console and fds 0-2 --------------------------------
    def read(self, t, n, nonblock):
        """read(2) on the terminal: bytes, b"" at end of file, or an -errno /
        BLOCKED (the continuation retries)."""
        if self.pgrp and t.pgid != self.pgrp and t.sid == self.session:
            if sig.sig_ignored(t, sig.SIGTTIN) or t.blocked & sig.sigbit(sig.SIGTTIN):
                return -EIO
            sig.kill_pgrp(self.k, t.pgid, sig.SIGTTIN)
            return -ERESTARTSYS
        data = self.take(n)
        if data is not None:
            return data
        if nonblock:
            return -EAGAIN
        if sig.signal_pending(t):
            return -ERESTARTSYS
        return None                                 # the caller sleeps on read_wait

    def take(self, n):
        """Up to n readable bytes, b"" for an EOF, None when read must wait."""
        q = self.readq
        tio = self.termios
        if tio.lflag & ICANON:
            if not q:
                return None
            end = 0
            while end < len(q) and end < n:
                c = q[end]
                if c == 0 and self.eof:             # a VEOF marker ends this read
                    if end == 0:
                        self.readq = q[1:]
                        self.eof -= 1
                        return b""
                    break
                end += 1
                if c == NL:
                    break
            data = bytes(q[:end])
            self.readq = q[end:]
            return data
        vmin = tio.cc[VMIN]
        if not q and vmin:
            return None
        data = bytes(q[:n])
        self.readq = q[len(data):]
        return data

    def write(self, t, data):
        if self.pgrp and t.pgid != self.pgrp and self.termios.lflag & TOSTOP and \
                t.sid == self.session and not sig.sig_ignored(t, sig.SIGTTOU):
            sig.kill_pgrp(self.k, t.pgid, sig.SIGTTOU)
            return -ERESTARTSYS
        self.write_out(data)
        return len(data)

    def ioctl(self, t, cmd, arg):
        hw = self.k.hw
        cmd &= 0xFFFFFFFF
        if cmd == TCGETS:
            return 0 if hw.copy_to_user(arg, self.termios.pack()) else -EFAULT
        if cmd in (TCSETS, TCSETSW, TCSETSF):
            b = hw.copy_from_user(arg, TERMIOS_SIZE)
            if b is None:
                return -EFAULT
            was_canon = self.termios.lflag & ICANON
            self.termios.unpack(b)
            if cmd == TCSETSF:
                self.readq = bytearray()
                self.eof = 0
            if was_canon and not self.termios.lflag & ICANON:
                self.readq += self.line             # a half-typed line becomes raw input
                self.line = bytearray()
            return 0
        if cmd == TIOCGWINSZ:
            return 0 if hw.copy_to_user(arg, struct.pack("<HHHH", self.rows, self.cols, 0, 0)) \
                else -EFAULT
        if cmd == TIOCSWINSZ:
            b = hw.copy_from_user(arg, 8)
            if b is None:
                return -EFAULT
            self.rows, self.cols = struct.unpack("<HHHH", b)[:2]
            if self.pgrp:
                sig.kill_pgrp(self.k, self.pgrp, sig.SIGWINCH)
            return 0
        if cmd == TIOCGPGRP:
            return 0 if hw.copy_to_user(arg, struct.pack("<i", self.pgrp or t.pgid)) else -EFAULT
        if cmd == TIOCSPGRP:
            b = hw.copy_from_user(arg, 4)
            if b is None:
                return -EFAULT
            pgrp = struct.unpack("<i", b)[0]
            if pgrp <= 0:
                return -EINVAL
            if not any(p.pgid == pgrp and p.sid == t.sid for p in self.k.procs.tasks.values()):
                return -EPERM
            self.pgrp = pgrp
            return 0
        if cmd == TIOCGSID:
            return 0 if hw.copy_to_user(arg, struct.pack("<i", self.session or t.sid)) else -EFAULT
        if cmd == FIONREAD:
            return 0 if hw.copy_to_user(arg, struct.pack("<i", len(self.readq))) else -EFAULT
        if cmd == TIOCOUTQ:
            return 0 if hw.copy_to_user(arg, struct.pack("<i", 0)) else -EFAULT
        if cmd == TIOCSCTTY:
            self.session = t.sid
            self.pgrp = t.pgid
            return 0
        if cmd == TIOCNOTTY:
            return 0
        return -ENOTTY

    # -- who holds the terminal ---------------------------------------------------------
    def set_foreground(self, t):
        """A program started in the foreground (the console's `run`, init)."""
        self.session = t.sid
        self.pgrp = t.pgid
        self.termios = Termios()
        self.line = bytearray()
        self.readq = bytearray()
        self.eof = 0

    def release(self):
        """The monitor takes the terminal back."""
        self.pgrp = 0
        self.session = 0
        self.line = bytearray()
        self.readq = bytearray()
        self.eof = 0

    def held_by_program(self):
        return self.pgrp != 0


class TtyFile(FileOperations):
    """The file operations of the console (fds 0, 1, 2 and /dev/console)."""

    def __init__(self, tty):
        self.tty = tty

    def read(self, f, t, n):
        return self.tty.read(t, n, f.flags & O_NONBLOCK)

    def write(self, f, t, data):
        return self.tty.write(t, data)

    def ioctl(self, f, t, cmd, arg):
        if cmd & 0xFFFFFFFF == FIONBIO:
            b = t.k.hw.copy_from_user(arg, 4)
            if b is None:
                return -EFAULT
            if struct.unpack("<i", b)[0]:
                f.flags |= O_NONBLOCK
            else:
                f.flags &= ~O_NONBLOCK
            return 0
        return self.tty.ioctl(t, cmd, arg)

    def poll(self, f):
        """n_tty_poll: readable with bytes in readq (a whole line in
        canonical mode, where readq only ever holds whole lines), always
        writable (the UART is written at once)."""
        mask = POLLOUT | POLLWRNORM
        if self.tty.readq:
            mask |= POLLIN | POLLRDNORM
        return mask

    def wait_queue(self, f):
        return self.tty.read_wait
