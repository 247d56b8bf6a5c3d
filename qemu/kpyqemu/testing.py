"""pytest support: remember which serial logs a test used, and keep them
when it fails (used by tests/conftest.py and tests/guest/conftest.py)."""

import re
import shutil
from pathlib import Path

import pytest

SERIAL_LOGS_KEY = pytest.StashKey[list]()
TAIL_LINES = 60


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
            except ValueError:  # pragma: no cover
                pass
        rep.sections.append((
            "serial log %s (full log: %s; last %d lines from this test)"
            % (label, shown, len(tail)),
            "\n".join(tail)))
        faults = _fault_summary(data)
        if faults:
            rep.sections.append(("fault reports in serial log %s (tools/pfault)" % label,
                                 "\n".join(faults)))
