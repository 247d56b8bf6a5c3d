# The serial console loop: read a line with echo and simple editing, run it,
# print the output and the prompt. The line editor works on bytes, as a tty's
# line discipline does (Linux drivers/tty/n_tty.c): whatever arrives on the
# wire, the editor never raises and a CR or LF always ends the line, so the
# prompt always comes back. Decoding (UTF-8) is the shell's job, where bad
# input becomes one `error:` line.

import sys

from kernel_py.lib.errors import KernelError
from kernel_py.shell.shell import MAX_LINE, PROMPT, decode_line, error_line

CR, LF, TAB = 0x0D, 0x0A, 0x09
BS, DEL = 0x08, 0x7F
CTRL_C, CTRL_D, ESC = 0x03, 0x04, 0x1B

# Escape-sequence states (ECMA-48): after ESC, then inside a CSI (ESC [) or
# SS3 (ESC O) sequence. Cursor keys and the like are dropped whole, so an
# arrow key does not leave "[A" in the line.
PLAIN, AFTER_ESC, IN_CSI, IN_SS3 = 0, 1, 2, 3


def stdin_getc():
    """The UART's next byte, blocking (sys.stdin.buffer: raw bytes; the
    text-mode sys.stdin would assemble UTF-8 and could swallow the CR)."""
    buf = bytearray(1)
    readinto = sys.stdin.buffer.readinto
    return lambda: readinto(buf) and buf[0]


def stdout_write(data):
    sys.stdout.buffer.write(data)


class LineEditor:
    """One line from a byte source. getc() -> int; write(bytes) echoes.

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

    def readline(self, prompt, eof_ok=False):
        """The line's bytes, or None at end of input (Ctrl-D, eof_ok only)."""
        write = self.write
        getc = self.getc
        write(prompt.encode())
        buf = bytearray()
        state = PLAIN
        while True:
            c = getc()
            if c == CR or c == LF:
                write(b"\n")
                return bytes(buf)
            if state != PLAIN:
                state = self.escape(state, c)
                continue
            if c == ESC:
                state = AFTER_ESC
            elif c == BS or c == DEL:
                buf = self.erase(buf)
            elif c == CTRL_C:
                write(b"^C\n")
                return b""
            elif c == CTRL_D:
                if eof_ok and not buf:
                    return None
            elif c >= 0x20 or c == TAB:
                if len(buf) < MAX_LINE:
                    buf.append(c)
                    write(buf[-1:])
                elif len(buf) == MAX_LINE:
                    buf.append(c)               # marks the line as too long

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


def run(shell):
    ed = editor()
    while True:
        try:
            out = shell.execute(ed.readline(PROMPT))
            if out:
                print(out)
        except Exception as exc:  # noqa: BLE001 - a console bug must not end the kernel
            print(error_line(exc))
