"""pyproject.toml against the tree: setuptools' package discovery finds every
kernel_py package (a folder holding .py files must be a package, or a
non-editable install would leave it out) and the harness, as `kpyqemu`."""

import os
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
