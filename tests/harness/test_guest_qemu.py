"""The harness against the real image under QEMU (skipped if it is not
built; the CI guest suite in tests/guest/ requires it instead)."""

import pytest

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.cpu import CR0_PG, EFER_NXE
from kpyqemu.guest import Guest, GuestError, image_path

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif(not image_path().is_file(), reason="guest image not built"),
]


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    guest = Guest(log_dir=tmp_path_factory.mktemp("serial"))
    yield guest
    guest.close()


def test_console(g):
    assert g.boot_time > 0
    assert g.run("echo hello  world") == "hello world"
    assert g.run("echo a; echo b") == "a\nb"
    assert g.run_expect_error("cat /proc/nope").startswith("error: ENOENT")
    with pytest.raises(GuestError):
        g.run("cat /proc/nope")
    assert "MemTotal:" in g.run("cat /proc/meminfo")


def test_registers_and_walker(g):
    r = g.registers()
    assert r.cr0 & CR0_PG and r.efer & EFER_NXE
    w = g.walker()
    rip = w.translate(r.rip)
    assert rip is not None and not rip.nx
    # the direct map maps physical 0x100000 where the image starts
    dm = w.translate(DIRECT_MAP_BASE + 0x100000)
    assert dm.pa == 0x100000
    assert g.read_phys(rip.pa, 16) == g.phys_reader()(rip.pa, 16)


def test_poweroff_status(tmp_path):
    with Guest(log_dir=tmp_path) as g2:
        assert g2.poweroff(5) == 5
        assert g2.exit_code == 11


def test_python_repl(g):
    assert int(g.python("hw.read_cr3()")) == g.registers().cr3
    assert g.python("for i in range(3):\n    print(i * i)") == "0\n1\n4"
    assert g.run("echo shell again") == "shell again"
