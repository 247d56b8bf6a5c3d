"""kpyqemu: the host harness for kernel_py.

- `kpyqemu.guest.Guest`: boot the kernel under QEMU, drive its serial console
  (pexpect), read registers and physical memory (QMP).
- `kpyqemu.walker.PageWalker`: walk x86-64 page tables in physical memory.
- `kpyqemu.pytest_plugin`: the pytest plugin `kpyqemu` (guest fixtures,
  serial logs kept on failure), loaded by pytest's `pytest11` entry point.
- `kpyqemu.ptdump`, `.pfault`, `.memmap`: the commands kpy-ptdump,
  kpy-pfault and kpy-memmap (`[project.scripts]`; tools/ in a checkout).

Installed with kernel_py (`pip install -e .`, `make venv`). This package
lives in the repository's `qemu/` directory, which is *not* a Python package
itself (QEMU's QMP library is imported as `qemu.qmp`); without installing,
put `qemu/` (and the repository root, for `kernel_py`) on sys.path.
"""

import os as _os
import sys as _sys

try:  # the walker imports x86 constants from kernel_py (repository root)
    import kernel_py as _kernel_py  # noqa: F401
except ImportError:  # pragma: no cover - depends on how we were imported
    _sys.path.insert(0, _os.path.dirname(_os.path.dirname(
        _os.path.dirname(_os.path.abspath(__file__)))))
