"""pyproject.toml against the tree: setuptools' package discovery finds every
kernel_py package (a folder holding .py files must be a package, or a
non-editable install would leave it out), the harness is installed as
`kpyqemu`, and the commands and the pytest plugin point at real functions
and are installed in this environment."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
setuptools = pytest.importorskip("setuptools")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())


def python_folders(top):
    """Dotted names of the folders under top (top included) holding .py files."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(ROOT / top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        if any(f.endswith(".py") for f in filenames):
            out.add(".".join(Path(dirpath).relative_to(ROOT / top).parts) or "")
    return out


def discovered():
    find = CONFIG["tool"]["setuptools"]["packages"]["find"]
    assert find.get("namespaces") is False
    found = set()
    for where in find["where"]:
        found |= set(setuptools.find_packages(str(ROOT / where), include=find["include"]))
    return found


def test_every_kernel_py_folder_is_a_package():
    folders = {"kernel_py" + ("." + f if f else "") for f in python_folders("kernel_py")}
    missing = sorted(f for f in folders
                     if not (ROOT / f.replace(".", "/") / "__init__.py").is_file())
    assert not missing, "folders without __init__.py (not installed): %s" % missing
    assert folders <= discovered()


def test_discovery_is_kernel_py_and_kpyqemu_only():
    found = discovered()
    assert {"kernel_py", "kernel_py.fs", "kernel_py.block", "kernel_py.mm.vm",
            "kernel_py.arch.x86", "kpyqemu"} <= found
    assert all(p == "kpyqemu" or p.split(".")[0] == "kernel_py" for p in found)


def entry_points():
    project = CONFIG["project"]
    eps = dict(project["scripts"])
    eps.update(project["entry-points"]["pytest11"])
    return eps


def test_entry_points_resolve():
    eps = entry_points()
    assert set(CONFIG["project"]["scripts"]) == {"kpy-ptdump", "kpy-pfault", "kpy-memmap"}
    assert CONFIG["project"]["entry-points"]["pytest11"] == {"kpyqemu": "kpyqemu.pytest_plugin"}
    for name, target in eps.items():
        mod, _, func = target.partition(":")
        m = importlib.import_module(mod)
        if func:
            assert callable(getattr(m, func)), name


def test_commands_installed_and_run():
    """The commands next to this Python (pip install -e . puts them there)."""
    bindir = Path(sys.executable).parent
    for name in CONFIG["project"]["scripts"]:
        exe = bindir / name
        assert exe.is_file(), "%s not installed: pip install -e . (make venv)" % exe
    r = subprocess.run([str(bindir / "kpy-pfault"), "-"], input="kpy# echo hi\nhi\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "no fault reports\n", r.stderr
    r = subprocess.run([str(bindir / "kpy-ptdump"), "--qmp", "/nonexistent/qmp.sock"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no QMP socket at /nonexistent/qmp.sock" in r.stderr
    r = subprocess.run([str(bindir / "kpy-memmap"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage: kpy-memmap" in r.stdout


def test_plugin_is_loaded(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("kpyqemu")
