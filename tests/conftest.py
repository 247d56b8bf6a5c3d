"""Shared pytest configuration for kernel_py's test suites.

- puts the repository root (kernel_py) and qemu/ (the kpyqemu harness) on
  sys.path; qemu/ itself is not a package (QEMU's own `qemu.qmp` must stay
  importable);
- registers the `guest` marker (tests that boot QEMU) and applies it to every
  test under tests/guest/ and to every test using the guest fixtures;
- keeps the serial log of every failing guest test in tests/logs/ and puts
  its tail in the test report (see tests/guest/conftest.py for the fixtures).

Environment:
  KPY_ACCEL=kvm|tcg        force the accelerator (default: probe KVM, else TCG)
  KPY_KERNEL=path          the image (default guest/build/kernel.bin)
  KPY_SKIP_MISSING_IMAGE=1 skip guest tests when the image is missing
                           (default: missing image is an error)
  KPY_BOOT_TIMEOUT, KPY_CMD_TIMEOUT   seconds
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Test modules are imported by path (--import-mode=importlib in pyproject), so
# tests/model/test_slab.py and tests/guest/test_slab.py can share a name; the
# suites' helper modules (mmsupport, fssupport...) are found on sys.path.
for _p in (ROOT / "tests" / "guest", ROOT / "tests" / "model", ROOT / "qemu", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

LOG_DIR = ROOT / "tests" / "logs"
GUEST_FIXTURES = {"guest", "boot", "fresh_guest", "shared_guest"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "guest: boots the kernel under QEMU (needs guest/build/kernel.bin)")


def pytest_collection_modifyitems(config, items):
    guest_dir = ROOT / "tests" / "guest"
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath)))
        uses = GUEST_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses or guest_dir in path.parents:
            item.add_marker(pytest.mark.guest)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        from kpyqemu.testing import keep_failed_logs
        keep_failed_logs(item, rep, LOG_DIR, ROOT)
