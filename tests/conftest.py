"""kernel_py's own test suites: the pieces that are not the harness's.

The guest fixtures (`guest`, `boot`, `fresh_guest`), the `guest` marker and
the serial logs kept on failure come from kpyqemu's pytest plugin
(qemu/kpyqemu/pytest_plugin.py), which pytest loads through its entry point
once kernel_py is installed (`make venv`, or `pip install -e .`); a failing
guest test keeps its logs in tests/logs/ (`kpy_log_dir` in pyproject.toml).
This file only

- puts the suites' helper modules (mmsupport, fssupport...) on sys.path:
  test modules are imported by path (--import-mode=importlib), so
  tests/model/test_slab.py and tests/guest/test_slab.py can share a name;
- marks every test under tests/guest/ `guest`, whichever fixtures it uses.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "tests" / "guest", ROOT / "tests" / "model", ROOT / "qemu", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def pytest_configure(config):
    if not (config.pluginmanager.has_plugin("kpyqemu")
            or config.pluginmanager.has_plugin("kpyqemu.pytest_plugin")):
        raise pytest.UsageError(
            "kpyqemu's pytest plugin is not loaded: install kernel_py into "
            "this Python (make venv, or pip install -e .), or pass -p kpyqemu")


def pytest_collection_modifyitems(config, items):
    guest_dir = ROOT / "tests" / "guest"
    for item in items:
        if guest_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.guest)
