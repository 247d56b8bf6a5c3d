"""The integer #defines of a C header the platform shares with Python
(guest/layout.h, guest/ptrace.h), for the tests that check the two agree."""

import ast
import operator
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)(\s+(.*))?$")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.LShift: operator.lshift, ast.RShift: operator.rshift,
        ast.BitOr: operator.or_, ast.BitAnd: operator.and_}


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _eval(node, names):
    if isinstance(node, ast.Expression):
        return _eval(node.body, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, names), _eval(node.right, names))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, names)
    raise ValueError("not an integer expression: %s" % ast.dump(node))


def defines(relpath):
    """{name: int} of every #define with a value (include guards, which have
    none, are skipped); values are C integer expressions of literals
    (U/L suffixes allowed) and earlier names. Anything else is an error."""
    out = {}
    for line in _strip_comments((ROOT / relpath).read_text()).splitlines():
        m = _DEFINE.match(line)
        if not m or m.group(3) is None or not m.group(3).strip():
            continue
        expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", m.group(3).strip())
        out[m.group(1)] = _eval(ast.parse(expr, mode="eval"), out)
    return out
