"""The import structure of kernel_py, read from the source (the AST of every
module, imports inside functions included):

- no import cycle: the graph of every `import kernel_py...` and `from
  kernel_py... import ...` (a submodule imported from its package counts as
  an edge to the submodule) is acyclic, so no module needs an import inside
  a function to dodge one;
- under mm/, fs/, block/, drivers/, arch/, lib/, kernel/ and shell/ no kernel_py import sits
  inside a function at all;
- every name is imported from the module that defines it: a module that
  only imported a name does not pass it on (kernel_py.sim, the simulated
  machine's package, is the one whose __init__ names its public classes);
- every module imports on its own, in a fresh interpreter.
"""

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "kernel_py"
NO_LOCAL_IMPORTS = ("mm", "fs", "block", "drivers", "arch", "lib", "kernel", "shell")


def modules():
    """{dotted name: path} of every kernel_py module."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = modules()


def owner(name):
    """The module a dotted import name refers to (its longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(path):
    """[(module imported, name or None, line, inside a function or class)]."""
    tree = ast.parse(path.read_text())
    local = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for sub in ast.walk(node):
                if sub is not node:
                    local.add(id(sub))
    out = []
    for node in ast.walk(tree):
        inner = id(node) in local
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("kernel_py"):
                    out.append((owner(a.name), None, node.lineno, inner))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("kernel_py"):
            for a in node.names:
                sub = node.module + "." + a.name
                if sub in MODULES:
                    out.append((sub, None, node.lineno, inner))
                else:
                    out.append((owner(node.module), a.name, node.lineno, inner))
    return out


def graph():
    return {m: sorted({dep for dep, _n, _l, _i in imports(p) if dep != m}) for m, p in MODULES.items()}


def find_cycle(g):
    """A list of modules closing a cycle, or None."""
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in g.get(m, ()):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_no_imports_inside_functions_below_the_core_folders():
    bad = []
    for m, p in MODULES.items():
        if m.split(".")[1:2] and m.split(".")[1] in NO_LOCAL_IMPORTS:
            bad += ["%s:%d imports %s" % (p.relative_to(ROOT), line, dep)
                    for dep, _n, line, inner in imports(p) if inner]
    assert not bad, "\n".join(bad)


def defined_names(path):
    """Names a module binds at its top level itself (not by importing them
    from another kernel_py module)."""
    tree = ast.parse(path.read_text())
    out = set()

    def bind(target):
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                out.add(n.id)

    def scan(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(node.name)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    bind(t)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                bind(node.target)
            elif isinstance(node, ast.Import):
                out.update((a.asname or a.name).split(".")[0] for a in node.names
                           if not a.name.startswith("kernel_py"))
            elif isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("kernel_py"):
                out.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.If):
                scan(node.body)
                scan(node.orelse)
            elif isinstance(node, ast.Try):
                scan(node.body)
                for h in node.handlers:
                    scan(h.body)
                scan(node.orelse)
    scan(tree.body)
    return out


def test_names_come_from_where_they_are_defined():
    defined = {m: defined_names(p) for m, p in MODULES.items()}
    bad = []
    sources = list(PKG.rglob("*.py")) + list((ROOT / "tests").rglob("*.py")) + list((ROOT / "bench").rglob("*.py"))
    sources += list((ROOT / "qemu").rglob("*.py")) + list((ROOT / "tools").rglob("*.py"))
    for p in sources:
        for dep, name, line, _inner in imports(p):
            if name is None or dep == "kernel_py.sim" or dep not in defined:
                continue
            if name not in defined[dep]:
                bad.append("%s:%d takes %s from %s, which only imports it" % (p.relative_to(ROOT), line, name, dep))
    assert not bad, "\n".join(bad)


def import_alone(name):
    r = subprocess.run([sys.executable, "-c", "import importlib, sys; importlib.import_module(sys.argv[1])", name],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return name, r.returncode, r.stderr.strip().splitlines()[-1:] if r.returncode else []


def test_every_module_imports_alone_in_a_fresh_interpreter():
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(import_alone, sorted(MODULES)))
    bad = ["%s: %s" % (name, err) for name, rc, err in results if rc]
    assert not bad, "\n".join(bad)
