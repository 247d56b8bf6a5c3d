"""Console commands mean one thing whatever the import order
(kernel_py/shell/registry.py): the shell's command modules imported in
several orders, each in a fresh interpreter, give the same commands, the
same handlers for the same arguments, the same help and the same files; a
second registration of a name is refused."""

import json
import os
import re
import subprocess
import sys

import pytest

from kernel_py.shell import registry
import kernel_py.shell.all  # noqa: F401

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# every module shell/all.py imports, in its order
MODULES = re.findall(r"^import kernel_py\.shell\.(\w+)", open(os.path.join(
    ROOT, "kernel_py", "shell", "all.py")).read(), re.M)

# argument lists that tell the meanings of a command apart
ARGS = ([], ["-m"], ["/mnt/f", "text"], ["2", "0x400000"], ["2", "0x400000", "4K", "7"],
        ["2"], ["x", "y"])

DESCRIBE = r"""
import importlib, json, sys
for m in sys.argv[1:]:
    importlib.import_module(m)
from kernel_py.shell import registry
from kernel_py.mm import vmstat
from kernel_py.mm.debug import kmemleak
ARGS = %r

def handler(entry):
    return None if entry is None else "%%s.%%s" %% (entry[0].__module__, entry[0].__name__)

out = {
    "commands": {n: [registry.help_entry(n), [handler(registry.lookup(n, list(a))) for a in ARGS]]
                 for n in registry.names()},
    "files": sorted(registry.FILES),
    "pid_files": sorted(registry.PID_FILES),
    "pattern_files": sorted([p[0], p[1]] for p in registry.PATTERN_FILES),
    "vmstat": [row[0] for row in vmstat.VM_STAT_ITEMS],
    "kmemleak_roots": sorted(r[0] for r in kmemleak.ROOTS),
}
print(json.dumps(out, sort_keys=True))
""" % (ARGS,)


def describe(modules):
    r = subprocess.run([sys.executable, "-c", DESCRIBE] + modules, cwd=ROOT,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def orders():
    full = ["kernel_py.shell." + m for m in MODULES]
    yield ["kernel_py.shell.all"]
    yield full
    yield full[::-1]
    yield [full[MODULES.index("cmd_proc")]] + [m for m in full if not m.endswith("cmd_proc")]
    yield [m for m in full if not m.endswith("cmd_fs")] + [full[MODULES.index("cmd_fs")]]
    yield full[1::2] + full[0::2]


def test_every_import_order_gives_the_same_commands():
    results = [(o, describe(o)) for o in orders()]
    first = results[0][1]
    assert "write" in first["commands"] and "top" in first["commands"]
    for o, r in results[1:]:
        for name in sorted(set(first["commands"]) | set(r["commands"])):
            assert r["commands"].get(name) == first["commands"].get(name), (o, name)
        assert r == first, o


def test_commands_with_a_process_variant():
    """write, fill and free: a first argument that is a pid picks the
    process variant, anything else the plain command."""
    assert sorted(registry.PID_VARIANTS) == ["fill", "free", "write"]
    for name in registry.PID_VARIANTS:
        plain, variant = registry.COMMANDS[name], registry.PID_VARIANTS[name]
        assert plain[0] is not variant[0]
        assert registry.lookup(name, ["2", "0x400000", "x", "y"]) is variant
        assert registry.lookup(name, ["/mnt/f", "x"]) is plain
        assert registry.lookup(name, ["2"]) is plain
        assert registry.lookup(name, []) is plain
        assert registry.help_entry(name) == (plain[1] + " | " + variant[1], plain[2] + "; " + variant[2])
    assert registry.lookup("free", ["-m"]) is registry.COMMANDS["free"]
    assert registry.lookup("nosuch", []) is None and registry.help_entry("nosuch") is None


def test_a_name_registers_once():
    before = (dict(registry.COMMANDS), dict(registry.PID_VARIANTS), dict(registry.FILES),
              dict(registry.PID_FILES), list(registry.PATTERN_FILES))
    with pytest.raises(ValueError):
        registry.command("help")(lambda k, args: "")
    with pytest.raises(ValueError):
        registry.pid_variant("write", "write PID", "again")(lambda k, args: "")
    with pytest.raises(ValueError):
        registry.pseudo_file("/proc/meminfo")(lambda k: "")
    with pytest.raises(ValueError):
        registry.pid_file("maps")(lambda k, pid: "")
    prefix, suffix = registry.PATTERN_FILES[0][:2]
    with pytest.raises(ValueError):
        registry.pattern_file(prefix, suffix)(lambda k, name: "")
    assert before == (registry.COMMANDS, registry.PID_VARIANTS, registry.FILES,
                      registry.PID_FILES, registry.PATTERN_FILES)
