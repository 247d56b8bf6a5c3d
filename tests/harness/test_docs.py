"""README.md and docs/*.md against the tree: every file of this repository
they name exists, so a move or a split that forgets the docs fails here.

Checked: paths ending in .py (from the repository's top, kernel_py/ or
qemu/), and paths under the repository's own folders (guest/, tests/,
tools/, docs/, bench/, qemu/, kernel_py/). Linux's files (mm/vmstat.c,
arch/x86/...h) and bare file names are not checked."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
OWN = ("guest/", "tests/", "tools/", "docs/", "bench/", "qemu/", "kernel_py/")
BASES = (ROOT, ROOT / "kernel_py", ROOT / "qemu")
NOT_OURS = (
    "tests/logs/",                  # written by failing tests
    "tools/mm/", "tools/testing/",  # Linux's
)
PATH_RE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)+[\w.-]*)")


def named_paths(text):
    for m in PATH_RE.finditer(text):
        p = m.group(1).rstrip(".")
        if p.endswith(".py") or p.startswith(OWN):
            yield p


def test_docs_name_files_that_exist():
    missing = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().split("\n"), 1):
            for p in named_paths(line):
                if p.startswith(NOT_OURS) or any((base / p).exists() for base in BASES):
                    continue
                missing.append("%s:%d: %s" % (doc.relative_to(ROOT), n, p))
    assert not missing, "\n".join(missing)


def test_the_check_sees_paths():
    found = set(named_paths("see mm/vm/fault.py, guest/entry.S and mm/vmstat.c; "
                            "/proc/meminfo; fs/fat/ (Linux's)"))
    assert found == {"mm/vm/fault.py", "guest/entry.S"}
