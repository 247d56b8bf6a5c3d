"""The platform on the real machine: boot, the console, oops recovery, and
the CR3 takeover with a Python-handled #PF checked over QMP (issue 2)."""

import re

import pytest

from kpyqemu.guest import GuestError


def test_boot_reaches_prompt_with_summary(guest):
    assert re.search(r"kernel_py: \d+ MiB RAM in \d+ ranges", guest.banner)
    assert guest.run("echo ready") == "ready"


def test_help_lists_every_command(guest):
    out = guest.run("help")
    for name in ("help", "cat", "echo", "poweroff", "python", "trap", "sysctl"):
        assert re.search(r"^%s\s" % name, out, re.M), name


def test_echo_prints_arguments_and_separates_commands(guest):
    assert guest.run("echo one two; echo 'three;four'") == "one two\nthree;four"


def test_meminfo_reports_memory_map(guest):
    out = guest.run("cat /proc/meminfo")
    fields = dict(re.findall(r"^(\w+):\s+(\d+) kB$", out, re.M))
    total, free = int(fields["MemTotal"]), int(fields["MemFree"])
    assert 200 * 1024 < total < 256 * 1024      # 256 MiB guest, minus firmware and image
    assert 0 < free <= total


def test_cmdline_reaches_kernel(boot):
    g = boot(cmdline="slab=slob answer=42")
    assert g.run("cat /proc/cmdline") == "slab=slob answer=42"


def test_unknown_command_is_one_error_line(guest):
    line = guest.run_expect_error("frobnicate now")
    assert line.startswith("error: ENOENT")
    assert guest.run("echo still here") == "still here"


def test_bad_arguments_are_one_error_line(guest):
    assert guest.run_expect_error("cat").startswith("error: EINVAL")
    assert guest.run_expect_error("cat /proc/nope").startswith("error: ENOENT")
    assert guest.run_expect_error("poweroff lots").startswith("error: EINVAL")
    assert guest.run_expect_error("echo 1 > /proc/meminfo").startswith("error: EACCES")


def test_python_exception_inside_a_command_is_one_error_line(guest):
    # a Python exception raised by the command itself (int() of a non-number)
    line = guest.run_expect_error("poweroff 1x")
    assert line.startswith("error: EINVAL: ValueError")
    assert guest.run("echo alive") == "alive"


@pytest.mark.parametrize("kind,vector", [("ud", 6), ("de", 0), ("bp", 3), ("gp", 13), ("pf", 14),
                                         ("df", 8)])
def test_unhandled_exception_oopses_and_console_survives(guest, kind, vector):
    out = guest.run("trap %s" % kind, check=False, allow_oops=True)
    assert "oops: " in out
    assert re.search(r"rip=0x[0-9a-f]{16} cr2=0x[0-9a-f]{16} cr3=0x[0-9a-f]{16}", out)
    assert re.search(r"^ code:( [0-9a-f?]{2}){16}$", out, re.M)
    assert re.search(r"^error: EFAULT: CPU exception %d " % vector, out, re.M)
    assert guest.run("echo alive") == "alive"


def test_fault_in_accessor_without_handler_raises_into_python(guest):
    out = guest.run("pfdemo", check=False)      # leaves the demo table in CR3
    assert "faults=1" in out
    out = guest.run("trap pf", check=False, allow_oops=True)
    assert "error: EFAULT" in out
    assert guest.run("echo alive") == "alive"


def test_python_repl(guest):
    child = guest.child
    guest.send_line("python")
    child.expect_exact(">>> ", timeout=30)
    guest.send_line("[x * x for x in range(4)]")
    child.expect_exact(">>> ", timeout=30)
    assert "[0, 1, 4, 9]" in child.before
    guest.send_line("undefined_name")
    child.expect_exact(">>> ", timeout=30)
    assert "NameError" in child.before
    guest.send_line("exit()")
    child.expect_exact("kpy# ", timeout=30)
    assert guest.run("echo back") == "back"


def test_pfdemo_mapping_verified_over_qmp(guest):
    out = guest.run("pfdemo")
    m = re.search(r"cr3=0x([0-9a-f]+) va=0x([0-9a-f]+) pa=0x([0-9a-f]+) faults=1", out)
    assert m, out
    cr3, va, pa = (int(x, 16) for x in m.groups())
    regs = guest.registers()
    assert regs.cr3 & ~0xFFF == cr3                   # the demo table is live in CR3
    t = guest.walker(cr3).translate(va)
    assert t is not None and t.pa == pa
    assert t.writable and t.nx
    assert guest.read_u64(pa) == 0x6B65726E656C5F70   # what the guest wrote, in that frame
    guest.run("pfdemo restore")


def test_poweroff_exit_status(boot):
    g = boot()
    assert g.poweroff(5) == 5
