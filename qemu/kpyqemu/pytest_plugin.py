"""kpyqemu's pytest plugin: guest fixtures for any test, in any directory.

Registered as the pytest plugin `kpyqemu` (a `pytest11` entry point in
pyproject.toml): with kernel_py installed (`pip install -e .`, or
`make venv`), a test file needs no conftest to use

- `guest`: a booted guest shared by the session (default mem and cmdline),
  booted again if an earlier test killed it or left its console out of step;
- `boot`: a factory for fresh guests, `boot(mem="1G", cmdline="slab=slob")`,
  taking the keyword arguments of kpyqemu.guest.Guest; they are killed after
  the test;
- `fresh_guest`: one fresh guest with the defaults;
- `kernel_image`, `accel`: the image and the accelerator of the session.

A test using them gets the `guest` marker (`-m "not guest"` leaves it out).
When it fails, every serial log it used is copied to the log directory and
the part written during the test (its last lines, and tools/pfault's
summary of any oops) is shown in the report. The log directory is
`--kpy-log-dir`, else the ini option `kpy_log_dir` (relative to the ini
file; kernel_py's own tests use tests/logs), else `kpy-logs` in the rootdir.

Environment:
  KPY_KERNEL=path          the image (default the checkout's guest/build/kernel.bin)
  KPY_ACCEL=kvm|tcg        force the accelerator (default: probe KVM, else TCG)
  KPY_GUEST_BACKEND=fake   run the fixtures over kpyqemu's fake console
                           (tests the harness: no QEMU, no QMP, few commands)
  KPY_SKIP_MISSING_IMAGE=1 skip guest tests when the image is missing
                           (default: a missing image is an error)
  KPY_BOOT_TIMEOUT, KPY_CMD_TIMEOUT   seconds

`pytest -p no:kpyqemu` turns the plugin off.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from .guest import Guest, GuestBootError, image_path, resolve_accel

SERIAL_LOGS_KEY = pytest.StashKey[list]()
TAIL_LINES = 60
DEFAULT_LOG_DIR = "kpy-logs"
GUEST_FIXTURES = {"guest", "boot", "fresh_guest", "shared_guest", "kernel_image"}


def backend():
    """'qemu', or 'fake' under KPY_GUEST_BACKEND=fake."""
    return os.environ.get("KPY_GUEST_BACKEND", "qemu")


# -- hooks ----------------------------------------------------------------------

def pytest_addoption(parser):
    group = parser.getgroup("kpyqemu", "kernel_py guests (kpyqemu)")
    group.addoption("--kpy-log-dir", metavar="DIR", default=None,
                    help="where failing guest tests keep their serial logs "
                         "(default: ini kpy_log_dir, else %s in the rootdir)"
                         % DEFAULT_LOG_DIR)
    parser.addini("kpy_log_dir", "where failing guest tests keep their serial "
                  "logs, relative to the ini file (default: %s)" % DEFAULT_LOG_DIR,
                  default="")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "guest: boots kernel_py under QEMU (needs the guest image)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if GUEST_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.guest)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        keep_failed_logs(item, rep, log_dir(item.config), item.config.rootpath)


def log_dir(config):
    """The directory failing tests' serial logs are copied to."""
    opt = config.getoption("kpy_log_dir", None)
    if opt:
        return Path(opt).resolve()
    ini = config.getini("kpy_log_dir")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return base / ini
    return config.rootpath / DEFAULT_LOG_DIR


# -- serial logs ----------------------------------------------------------------

def register_log(item, label, log_path, start=0):
    """Note that test `item` used the serial log at log_path from byte
    `start` on; if the test fails the log is copied out and its tail shown."""
    item.stash.setdefault(SERIAL_LOGS_KEY, []).append((label, Path(log_path), start))


def register_guest(item, guest):
    register_log(item, guest.name, guest.log_path, guest.log_size())


def _safe(nodeid):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


def _fault_summary(text):
    """tools/pfault's lines for the oopses and SIGSEGVs in `text` (never raises)."""
    try:
        from .pfault import summarize
        return summarize(text)
    except Exception as e:  # noqa: BLE001 - a report helper must not fail the report
        return ["pfault failed: %s" % e]


def keep_failed_logs(item, rep, log_dir, root=None):
    """For a failed report: copy every registered log to log_dir and add the
    part written during this test (its last TAIL_LINES lines) to the report."""
    if not rep.failed:
        return
    logs = item.stash.get(SERIAL_LOGS_KEY, [])
    if not logs:
        return
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    for n, (label, path, start) in enumerate(logs):
        if not path.exists():
            continue
        dest = log_dir / ("%s%s.%s.log" % (
            _safe(item.nodeid), "" if n == 0 else ".%d" % n, rep.when))
        try:
            shutil.copyfile(path, dest)
            data = path.read_bytes()[start:].decode("utf-8", "replace")
        except OSError as e:  # pragma: no cover
            rep.sections.append(("serial log %s" % label, "unreadable: %s" % e))
            continue
        tail = data.replace("\r\n", "\n").replace("\r", "").split("\n")[-TAIL_LINES:]
        shown = dest
        if root is not None:
            try:
                shown = dest.relative_to(root)
            except ValueError:
                pass
        rep.sections.append((
            "serial log %s (full log: %s; last %d lines from this test)"
            % (label, shown, len(tail)),
            "\n".join(tail)))
        faults = _fault_summary(data)
        if faults:
            rep.sections.append(("fault reports in serial log %s (tools/pfault)" % label,
                                 "\n".join(faults)))


# -- fixtures -------------------------------------------------------------------

@pytest.fixture(scope="session")
def kernel_image():
    """The image the session boots (None on the fake backend)."""
    if backend() == "fake":
        return None
    img = image_path()
    if not img.is_file():
        msg = ("kernel image %s is missing: build it (make image) or set KPY_KERNEL; "
               "KPY_SKIP_MISSING_IMAGE=1 skips guest tests instead" % img)
        if os.environ.get("KPY_SKIP_MISSING_IMAGE", "") not in ("", "0"):
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return img


@pytest.fixture(scope="session")
def accel(kernel_image):
    """'kvm' or 'tcg' for this session ($KPY_ACCEL, else a KVM probe boot)."""
    if backend() == "fake":
        return None
    return resolve_accel(None, kernel_image)


@pytest.fixture(scope="session")
def serial_log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("serial")


def _boot(item, log_dir, accel, image, **kwargs):
    """Boot a Guest, registering its log with the test even if boot fails."""
    kwargs.setdefault("accel", accel)
    kwargs.setdefault("backend", backend())
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
    """One fresh guest with the defaults, killed after the test."""
    return boot()
