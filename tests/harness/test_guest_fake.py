"""The Guest console logic, against kpyqemu/fakeguest.py instead of QEMU."""

import pytest

from kpyqemu.guest import (Guest, GuestDied, GuestError, GuestOops,
                           GuestTimeout, parse_registers, parse_size)


@pytest.fixture
def fake(tmp_path):
    g = Guest(backend="fake", cmdline="slab=slub x=1", log_dir=tmp_path)
    yield g
    g.close()


def test_boot_and_banner(fake):
    assert fake.boot_time is not None and fake.boot_time < 10
    assert "fake kpy" in fake.banner and "slab=slub" in fake.banner


def test_run_returns_output_without_echo(fake):
    assert fake.run("echo hello world") == "hello world"
    assert fake.run("cat /proc/cmdline") == "slab=slub x=1"
    assert fake.run("") == ""
    assert fake.run("lines 3") == "line 0\nline 1\nline 2"


def test_large_output(fake):
    out = fake.run("lines 20000", timeout=60)
    lines = out.split("\n")
    assert len(lines) == 20000 and lines[-1] == "line 19999"


def test_output_line_starting_with_prompt_text(fake):
    assert fake.run("echo kpy# not a prompt") == "kpy# not a prompt"
    assert fake.run("echo after") == "after"


def test_errors(fake):
    with pytest.raises(GuestError) as ei:
        fake.run("cat /proc/nope")
    assert ei.value.line == "error: ENOENT: /proc/nope"
    assert fake.run_expect_error("cat /proc/nope") == "error: ENOENT: /proc/nope"
    with pytest.raises(AssertionError):
        fake.run_expect_error("echo fine")
    assert fake.run("cat /proc/nope", check=False) == "error: ENOENT: /proc/nope"
    assert fake.run("echo still alive") == "still alive"


def test_oops(fake):
    with pytest.raises(GuestOops):
        fake.run("oops")
    block = fake.run_expect_oops("oops")
    assert block.startswith("oops: #PF")
    assert fake.run_expect_error("oops", allow_oops=True).startswith("error: EFAULT")


def test_timeout_marks_broken(fake):
    with pytest.raises(GuestTimeout):
        fake.run("hang", timeout=1)
    assert fake.broken
    with pytest.raises(GuestError):
        fake.run("echo x")


def test_crash_is_reported(fake):
    with pytest.raises(GuestDied):
        fake.run("crash")
    assert fake.exit_code == 0 and fake.exit_status is None


def test_poweroff_status(fake):
    assert fake.poweroff(3) == 3
    assert fake.exit_code == 7
    assert not fake.alive


def test_shutdown_and_log(fake):
    fake.run("echo logged")
    assert "logged" in fake.log_text()
    assert fake.shutdown() == 0
    assert "poweroff" in fake.log_tail(5)


def test_no_qmp_on_fake(fake):
    with pytest.raises(GuestError):
        fake.registers()


def test_parse_registers_and_sizes():
    text = ("RAX=0000000000000001 RBX=0000000000000002\n"
            "RIP=ffffffff80001000 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1\n"
            "CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]\n"
            "GDT=     0000000000102000 00000027\n"
            "CR0=80010033 CR2=0000000000000000 CR3=0000000001234000 CR4=000000a0\n"
            "EFER=0000000000000d01\n")
    r = parse_registers(text)
    assert r.rip == 0xffffffff80001000 and r.cr3 == 0x1234000
    assert r.cr0 == 0x80010033 and r.efer == 0xd01 and r.CS == 0x10
    assert r.GDT == 0x102000
    assert parse_size("256M") == 256 << 20 and parse_size("4G") == 4 << 30
    assert parse_size("512") == 512 << 20


def test_python_repl(fake):
    from kpyqemu.guest import GuestPythonError
    assert fake.python("1 + 2") == "3"
    assert fake.python("for i in range(2):\n    print(i)\nprint('end')") == "0\n1\nend"
    big = "\n".join("v%d = %d" % (i, i) for i in range(400)) + "\nprint(v399 * 2)"
    assert fake.python(big) == "798"
    with pytest.raises(GuestPythonError) as ei:
        fake.python("1 // 0")
    assert ei.value.line.startswith("ZeroDivisionError:")
    assert fake.run("echo back") == "back"
