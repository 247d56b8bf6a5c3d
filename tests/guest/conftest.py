"""Fixtures for guest tests (QEMU).

- `guest`: a booted guest shared by the session (default mem/cmdline), booted
  again if an earlier test killed it or left its console out of step.
- `boot`: a factory for fresh guests, `boot(mem="1G", cmdline="slab=slob")`,
  with the Guest keyword arguments; they are killed after the test.
- `fresh_guest`: one fresh guest with the defaults.

Every guest a test used has its serial log kept in tests/logs/ if the test
fails, and the part written during the test is shown in the report.
The image is guest/build/kernel.bin (or $KPY_KERNEL). If it is missing the
guest tests error out, unless KPY_SKIP_MISSING_IMAGE=1 (then they skip).
KPY_GUEST_BACKEND=fake runs the fixtures over kpyqemu's fake console (to
test the harness; no QMP, few commands).
"""

import os

import pytest

from kpyqemu.guest import Guest, GuestBootError, image_path, resolve_accel
from kpyqemu.testing import register_guest, register_log


BACKEND = os.environ.get("KPY_GUEST_BACKEND", "qemu")


@pytest.fixture(scope="session")
def kernel_image():
    if BACKEND == "fake":
        return None
    img = image_path()
    if not img.is_file():
        msg = ("kernel image %s is missing: build it (make) or set KPY_KERNEL; "
               "KPY_SKIP_MISSING_IMAGE=1 skips guest tests instead" % img)
        if os.environ.get("KPY_SKIP_MISSING_IMAGE", "") not in ("", "0"):
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return img


@pytest.fixture(scope="session")
def accel(kernel_image):
    """'kvm' or 'tcg' for this session ($KPY_ACCEL, else a KVM probe boot)."""
    if BACKEND == "fake":
        return None
    return resolve_accel(None, kernel_image)


@pytest.fixture(scope="session")
def serial_log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("serial")


def _boot(item, log_dir, accel, image, **kwargs):
    """Boot a Guest, registering its log with the test even if boot fails."""
    kwargs.setdefault("accel", accel)
    kwargs.setdefault("backend", BACKEND)
    try:
        g = Guest(image=image, log_dir=log_dir, **kwargs)
    except GuestBootError as e:
        if e.log_path is not None:
            register_log(item, "boot", e.log_path, 0)
        raise
    register_log(item, g.name, g.log_path, 0)
    return g


class _Shared:
    def __init__(self, log_dir, accel, image):
        self.log_dir, self.accel, self.image = log_dir, accel, image
        self.guest = None
        self.boot_failures = 0

    def get(self, item):
        g = self.guest
        if g is not None and (g.broken or not g.alive):
            g.close()
            g = self.guest = None
        if g is None:
            if self.boot_failures >= 2:
                pytest.fail("the shared guest failed to boot twice; see the "
                            "first failing test's serial log", pytrace=False)
            try:
                g = self.guest = _boot(item, self.log_dir, self.accel, self.image)
            except GuestBootError:
                self.boot_failures += 1
                raise
            self.boot_failures = 0
            return g       # its whole log is already registered
        register_guest(item, g)
        return g

    def close(self):
        if self.guest is not None:
            self.guest.shutdown(timeout=10)
            self.guest.close()


@pytest.fixture(scope="session")
def shared_guest(serial_log_dir, accel, kernel_image):
    holder = _Shared(serial_log_dir, accel, kernel_image)
    yield holder
    holder.close()


@pytest.fixture
def guest(request, shared_guest):
    """The session's booted guest (default mem and cmdline)."""
    return shared_guest.get(request.node)


@pytest.fixture
def boot(request, serial_log_dir, accel, kernel_image):
    """Factory: boot(mem="256M", cmdline="", **Guest kwargs) -> a fresh Guest."""
    guests = []

    def _factory(mem="256M", cmdline="", **kwargs):
        g = _boot(request.node, serial_log_dir, accel, kernel_image,
                  mem=mem, cmdline=cmdline, **kwargs)
        guests.append(g)
        return g

    yield _factory
    for g in guests:
        g.close()


@pytest.fixture
def fresh_guest(boot):
    return boot()
