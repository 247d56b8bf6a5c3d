"""The console fuzzer (kpyqemu/fuzz.py) over the simulated machine: the
same seeded lines the guest test types, through the kernel's line editor
and shell on CPython. Every line is answered with output, nothing, or one
well-formed `error:` line; no Python exception leaks out as an EIO; memory
accounting is the same afterwards; the generator is deterministic and
never produces a line that would allocate."""

import pytest

from kernel_py.shell import registry
from kernel_py.shell.shell import Shell
from kpyqemu import fuzz
from mmsupport import boot
import kernel_py.shell.all  # noqa: F401

N_LINES = 3000


@pytest.fixture(scope="module")
def shell():
    return Shell(boot(mem=64 << 20))


def names(shell):
    return fuzz.names_from_help(shell.execute("help"))


def test_generator_is_seeded_and_covers_every_command(shell):
    cmds = names(shell)
    assert sorted(cmds) == registry.names()
    a = list(fuzz.Fuzzer(5, cmds).lines(500))
    assert a == list(fuzz.Fuzzer(5, cmds).lines(500))
    assert a != list(fuzz.Fuzzer(6, cmds).lines(500))
    lines = list(fuzz.Fuzzer(1, cmds).lines(N_LINES))
    assert any(b"\x00" in l for l in lines) and any(len(l) > 4096 for l in lines)
    assert any(any(c >= 0x80 for c in l) for l in lines) and any(b"\x1b[" in l for l in lines)
    firsts = {fuzz.effective(l).split()[0] for l in lines if fuzz.effective(l).split()}
    assert set(cmds) <= firsts
    assert not any(c in l for l in lines for c in b"\r\n\x03")


def test_every_line_is_answered_and_accounting_is_unchanged(shell):
    before = fuzz.accounting(shell.execute)
    report = fuzz.drive_shell(shell, fuzz.Fuzzer(1, names(shell)).lines(N_LINES))
    assert report.sent == report.answered == N_LINES
    assert report.bad == [], report.bad[:5]
    assert report.errors > N_LINES // 3 and report.outputs > N_LINES // 10
    assert fuzz.accounting(shell.execute) == before
