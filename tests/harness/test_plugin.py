"""kpyqemu's pytest plugin as a user gets it: README.md's example test, copied
into a directory outside the checkout and run there by a pytest of its own,
with no conftest and nothing on PYTHONPATH: the fixtures come from kernel_py's
`pytest11` entry point alone. Over the fake console (fast), and once under
QEMU when the image is built."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "test_meminfo.py"


def readme_example():
    """The indented block of README.md that starts '# test_meminfo.py'."""
    lines = (ROOT / "README.md").read_text().split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith("    # " + EXAMPLE))
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)) + "\n"


def run_pytest(where, backend, *args, accel=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_") and k not in ("PYTHONPATH", "KPY_GUEST_BACKEND")}
    if backend:
        env["KPY_GUEST_BACKEND"] = backend
    if accel:
        env["KPY_ACCEL"] = accel       # the session's: no second KVM probe
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                       cwd=where, env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def userdir(tmp_path):
    d = tmp_path / "mytests"
    d.mkdir()
    assert ROOT not in d.parents
    return d


def test_readme_example_is_five_lines():
    src = readme_example()
    assert len(src.strip().split("\n")) == 5 and "def test_" in src
    compile(src, EXAMPLE, "exec")


def test_readme_example_runs_outside_the_checkout(userdir):
    (userdir / EXAMPLE).write_text(readme_example())
    status, out = run_pytest(userdir, "fake", "-q")
    assert status == 0, out
    assert "1 passed" in out
    assert sorted(p.name for p in userdir.iterdir()) == [EXAMPLE]   # no conftest, no logs


def test_boot_marker_and_logs_kept_on_failure_outside_the_checkout(userdir):
    (userdir / "test_user.py").write_text(textwrap.dedent('''\
        def test_boot(boot):
            g = boot(mem="64M", cmdline="x=1")
            assert g.run("cat /proc/cmdline") == "x=1"
            assert g.run("cat /proc/meminfo").startswith("MemTotal:")

        def test_fails(guest):
            guest.run("echo marker-4711")
            assert guest.run("echo other") == "something else"

        def test_host_only():
            pass
        '''))
    status, out = run_pytest(userdir, "fake", "-q", "-m", "not guest")
    assert status == 0 and "1 passed, 2 deselected" in out, out

    status, out = run_pytest(userdir, "fake", "-q")
    assert status == 1 and "1 failed, 2 passed" in out, out
    assert "serial log guest" in out and "marker-4711" in out     # the tail, in the report
    logs = sorted((userdir / "kpy-logs").iterdir())
    assert [p.name for p in logs] == ["test_user.py_test_fails.call.log"]
    assert "marker-4711" in logs[0].read_text()

    status, out = run_pytest(userdir, "fake", "-q", "--kpy-log-dir", "elsewhere")
    assert status == 1 and (userdir / "elsewhere" / logs[0].name).is_file()

    status, out = run_pytest(userdir, "fake", "-q", "-p", "no:kpyqemu")
    assert "fixture 'boot' not found" in out and "fixture 'guest' not found" in out


def test_readme_example_under_qemu_outside_the_checkout(userdir, kernel_image, accel):
    if kernel_image is None:
        pytest.skip("KPY_GUEST_BACKEND=fake")
    (userdir / EXAMPLE).write_text(readme_example())
    status, out = run_pytest(userdir, None, "-q", accel=accel)
    assert status == 0 and "1 passed" in out, out
