# The serial console loop: read a line with echo and simple editing, run it,
# print the output and the prompt. The line editor works on bytes, as a tty's
# line discipline does (Linux drivers/tty/n_tty.c): whatever arrives on the
# wire, the editor never raises and a CR or LF always ends the line, so the
# prompt always comes back. Decoding (UTF-8) is the shell's job, where bad
# input becomes one `error:` line.

import sys

from kernel_py.kernel.fork import ENVP_INIT, spawn_user
from kernel_py.kernel.signal import NAMES
from kernel_py.lib.errors import KernelError
from kernel_py.shell.shell import MAX_LINE, PROMPT, decode_line, error_line

CR, LF, TAB = 0x0D, 0x0A, 0x09
BS, DEL = 0x08, 0x7F
CTRL_C, CTRL_D, ESC = 0x03, 0x04, 0x1B

# Escape-sequence states (ECMA-48): after ESC, then inside a CSI (ESC [) or
# SS3 (ESC O) sequence. Cursor keys and the like are dropped whole, so an
# arrow key does not leave "[A" in the line.
PLAIN, AFTER_ESC, IN_CSI, IN_SS3 = 0, 1, 2, 3
EOF = object()          # feed()'s answer to Ctrl-D at an empty line, where allowed


def stdin_getc():
    """The UART's next byte, blocking (sys.stdin.buffer: raw bytes; the
    text-mode sys.stdin would assemble UTF-8 and could swallow the CR)."""
    buf = bytearray(1)
    readinto = sys.stdin.buffer.readinto
    return lambda: readinto(buf) and buf[0]


def stdout_write(data):
    sys.stdout.buffer.write(data)


class LineEditor:
    """One line from a byte source: readline() pulls bytes from getc(),
    or the kernel's idle loop pushes them with feed(). write(bytes) echoes.

    Printable ASCII, TAB and bytes >= 0x80 (UTF-8) are kept and echoed;
    BS/DEL erase one character (a whole UTF-8 sequence); Ctrl-C discards the
    line; Ctrl-D at an empty line means end of input where eof_ok (the REPL)
    and is ignored elsewhere; escape sequences and every other control byte
    (NUL included) are dropped. At most MAX_LINE + 1 bytes are kept: a longer
    line comes back one byte too long, for the shell to refuse it (E2BIG),
    without the heap holding the rest."""

    def __init__(self, getc, write):
        self.getc = getc
        self.write = write
        self.buf = bytearray()
        self.state = PLAIN
        self.eof_ok = False

    def start(self, prompt, eof_ok=False):
        """Begin a line: show the prompt."""
        self.write(prompt.encode())
        self.buf = bytearray()
        self.state = PLAIN
        self.eof_ok = eof_ok

    def readline(self, prompt, eof_ok=False):
        """The line's bytes, or None at end of input (Ctrl-D, eof_ok only)."""
        self.start(prompt, eof_ok)
        getc = self.getc
        while True:
            r = self.feed(getc())
            if r is not None:
                return None if r is EOF else r

    def feed(self, c):
        """Byte c of the line: the finished line's bytes, EOF, or None while
        the line goes on."""
        write = self.write
        if c == CR or c == LF:
            write(b"\n")
            return bytes(self.buf)
        if self.state != PLAIN:
            self.state = self.escape(self.state, c)
            return None
        buf = self.buf
        if c == ESC:
            self.state = AFTER_ESC
        elif c == BS or c == DEL:
            self.buf = self.erase(buf)
        elif c == CTRL_C:
            write(b"^C\n")
            self.buf = bytearray()
            return b""
        elif c == CTRL_D:
            if self.eof_ok and not buf:
                return EOF
        elif c >= 0x20 or c == TAB:
            if len(buf) < MAX_LINE:
                buf.append(c)
                write(buf[-1:])
            elif len(buf) == MAX_LINE:
                buf.append(c)               # marks the line as too long
        return None

    @staticmethod
    def escape(state, c):
        """The state after byte c of an escape sequence."""
        if state == AFTER_ESC:
            if c == 0x5B:                       # ESC [
                return IN_CSI
            if c == 0x4F:                       # ESC O
                return IN_SS3
            return PLAIN                        # a two-byte sequence
        if state == IN_CSI and 0x20 <= c <= 0x3F:
            return IN_CSI                       # parameter / intermediate bytes
        return PLAIN                            # the final byte (or junk): done

    def erase(self, buf):
        """buf without its last character (MicroPython's bytearray has no pop)."""
        if not buf:
            return buf
        n = len(buf) - 1
        while n > 0 and buf[n] & 0xC0 == 0x80:     # UTF-8 continuation bytes
            n -= 1
        self.write(b"\x08 \x08")
        return buf[:n]


_editor = None


def readline(prompt, eof_ok=True):
    """A line of text from the UART for the REPL (None at Ctrl-D); a line
    that is not UTF-8 reads as empty, after one error line."""
    raw = editor().readline(prompt, eof_ok)
    if raw is None:
        return None
    try:
        return decode_line(raw)
    except KernelError as exc:
        print(exc.line())
        return ""


def editor():
    global _editor
    if _editor is None:
        _editor = LineEditor(stdin_getc(), stdout_write)
    return _editor


class Console:
    """The kpy# monitor on the serial line (k.console). The kernel's idle
    loop (kernel/idle.py) hands it every byte that arrives; it edits and
    runs command lines, and lends the terminal to a foreground program
    (`run`), taking it back when the program exits or stops."""

    def __init__(self, k, shell):
        self.k = k
        self.shell = shell
        self.ed = LineEditor(None, k.serial.write)
        self.fg = None                  # the foreground program's task
        self.last_status = 0            # of the last foreground program ($? in a shell)

    def prompt(self):
        self.ed.start(PROMPT)

    def receive(self, c):
        """One byte from the line."""
        if self.fg is not None:
            self.k.tty.receive(c)
            return
        line = self.ed.feed(c)
        if line is not None and line is not EOF:
            self.execute(line)

    def execute(self, line):
        try:
            out = self.shell.execute(line)
            if out:
                print(out)
        except Exception as exc:  # noqa: BLE001 - a console bug must not end the kernel
            print(error_line(exc))
        if self.fg is None:
            self.prompt()

    def foreground(self, t):
        """t holds the terminal until it exits or stops (the `run` command)."""
        self.fg = t
        self.k.tty.set_foreground(t)

    def start_init(self, path):
        """init=PATH: the program is pid 1, in the foreground (init/main.c's
        run_init_process); if it cannot start, the kernel's own init takes
        pid 1 and the console goes on."""
        t, err = spawn_user(self.k, path, [path], ENVP_INIT, ppid=0, pid=1)
        if t is None:
            self.k.printk("Failed to execute %s (error %d); using the kernel's init" % (path, -err))
            self.k.procs.spawn("init", 0)
            return
        self.foreground(t)

    def check_foreground(self):
        """The foreground program is done (or stopped): report it, prompt."""
        t = self.fg
        if t is None or t.state not in ("Z", "X", "T"):
            return
        self.fg = None
        self.k.tty.release()
        status = t.exit_code
        self.last_status = status
        if t.pid == 1 and t.state != "T":
            # Linux panics here; this kernel keeps its monitor and its own init
            self.k.printk("Kernel panic - not syncing: Attempted to kill init! exitcode=0x%08x"
                          % status)
            self.k.procs.spawn("init", 0)
        if t.state == "T":
            print("[%d] stopped (%s)" % (t.pid, signal_name(status >> 8)))
        elif status & 0x7F:
            print("%s: killed by %s%s" % (t.comm, signal_name(status & 0x7F),
                                          " (core dumped)" if status & 0x80 else ""))
        elif status >> 8:
            print("%s: exit status %d" % (t.comm, status >> 8))
        self.prompt()


def signal_name(n):
    return NAMES[n] if 1 <= n < len(NAMES) else "signal %d" % n


def run_blocking(shell):
    """The console alone, reading the UART directly: for a kernel whose boot
    failed before the idle loop's parts existed."""
    ed = editor()
    while True:
        try:
            out = shell.execute(ed.readline(PROMPT))
            if out:
                print(out)
        except Exception as exc:  # noqa: BLE001 - a console bug must not end the kernel
            print(error_line(exc))
