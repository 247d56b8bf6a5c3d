"""The console's line editor over bytes (shell/console.py): whatever
arrives on the serial line, CR or LF ends the line and nothing raises;
control bytes and escape sequences are dropped, BS/DEL erase a whole
character, overlong lines come back one byte too long for the shell's
E2BIG; the shell turns bytes that are not UTF-8 into one EILSEQ line."""

from kernel_py.shell.console import LineEditor
from kernel_py.shell.shell import MAX_LINE, Shell
from mmsupport import boot as boot_kernel
import kernel_py.shell.all  # noqa: F401


def editor(data):
    it = iter(data)
    out = bytearray()
    return LineEditor(lambda: next(it), out.extend), out


def lines(data, eof_ok=False):
    ed, out = editor(data)
    got = []
    while True:
        try:
            got.append(ed.readline("> ", eof_ok))
        except StopIteration:
            return got, bytes(out)


def test_plain_line_is_echoed_and_returned():
    got, out = lines(b"echo hi\r")
    assert got == [b"echo hi"]
    assert out == b"> echo hi\n> "


def test_cr_or_lf_ends_a_line_even_inside_an_escape_or_utf8_sequence():
    got, _ = lines(b"a\x1b\rb\x1b[1;\nc\xc3\rd\xf0\x9f\r")
    assert got == [b"a", b"b", b"c\xc3", b"d\xf0\x9f"]


def test_control_bytes_and_escape_sequences_are_dropped():
    got, out = lines(b"e\x00c\x01h\x07o\x1b[A\x1b[1;5C\x1bOP\x1bx x\x04\r")
    assert got == [b"echo x"]
    assert b"\x00" not in out and b"[A" not in out


def test_backspace_and_delete_erase_one_character_utf8_included():
    got, out = lines("ab\u00e9\x7f\x08c\x08\x08\x08\x08d\r".encode())
    assert got == [b"d"]
    assert out.count(b"\x08 \x08") == 4          # nothing echoed for an empty line's BS


def test_ctrl_c_discards_the_line_ctrl_d_ends_only_where_allowed():
    got, out = lines(b"half\x03whole\r\x04\r")
    assert got == [b"", b"whole", b""]
    assert b"^C\n" in out
    got, _ = lines(b"\x04x\x04\r", eof_ok=True)
    assert got == [None, b"x"]


def test_overlong_line_is_kept_one_byte_too_long():
    got, out = lines(b"x" * (MAX_LINE * 3) + b"\r")
    assert got == [b"x" * (MAX_LINE + 1)]
    assert out.count(b"x") == MAX_LINE


def test_shell_answers_bad_bytes_with_one_error_line():
    k = boot_kernel()
    sh = Shell(k)
    assert sh.execute(b"echo caf\xc3\xa9") == "caf\u00e9"
    assert sh.execute(b"echo \xff\xfe") == "error: EILSEQ: the line is not valid UTF-8"
    assert sh.execute(b"x" * (MAX_LINE + 1)).startswith("error: E2BIG:")
    assert sh.execute(b"echo still here") == "still here"
