"""Fault reports in a serial log, made readable: each oops block (guest/trap.c:
`oops: ... (vector N) ...`, then `error=.. rip=.. cr2=.. cr3=..` and
` code: xx xx ...`) and each SIGSEGV line of the fault handler
(`error: SIGSEGV pid=.. addr=.. ip=.. ... code: xx ...`) becomes one line
with the faulting instruction disassembled (capstone), and the symbol it
is in when the image's kernel.elf is at hand.

    from kpyqemu.pfault import summarize
    for line in summarize(log_text):
        print(line)

The command line is `kpy-pfault` (or tools/pfault):

    kpy-pfault tests/logs/some_test.call.log [--elf guest/build/kernel.elf]
    make qemu 2>&1 | tee serial.log; kpy-pfault serial.log
    kpy-pfault - < serial.log
"""

import argparse
import re
import sys
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ELF = REPO_ROOT / "guest" / "build" / "kernel.elf"

_OOPS_RE = re.compile(r"^oops: (?P<name>.*?) \(vector (?P<vec>\d+)\) (?P<why>.*)$")
_REGS_RE = re.compile(r"\b(?P<reg>error|rip|cr2|cr3)=0x(?P<val>[0-9a-fA-F]+)")
_CODE_RE = re.compile(r"^\s*code:(?P<bytes>( [0-9a-fA-F?]{2})+)\s*$")
_SEGV_RE = re.compile(
    r"error: (?P<kind>[A-Z: ]*SIG[A-Z]+) pid=(?P<pid>\S+) addr=0x(?P<addr>[0-9a-f]+) "
    r"ip=0x(?P<ip>[0-9a-f]+)(?P<rest>.*?) code:(?P<bytes>( [0-9a-fA-F?]{2})+)\s*$")

PF_BITS = ((1, "P", "not-present"), (2, "W", "R"), (4, "U", "S"), (8, "RSVD", ""), (16, "I", ""))


class FaultReport:
    def __init__(self, kind, rip, code, line_no, addr=None, error=None, pid=None, why="", vector=None):
        self.kind = kind          # "oops" or "SIGSEGV"
        self.rip = rip
        self.code = code          # bytes at rip (up to the first unreadable one)
        self.line_no = line_no    # 1-based line in the log
        self.addr = addr
        self.error = error
        self.pid = pid
        self.why = why
        self.vector = vector


def parse_code(text):
    out = bytearray()
    for tok in text.split():
        if tok == "??":
            break
        out.append(int(tok, 16))
    return bytes(out)


def parse(text):
    """[FaultReport] in the order they appear in the log."""
    lines = text.replace("\r\n", "\n").replace("\r", "").split("\n")
    reports = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _SEGV_RE.search(line)
        if m:
            rest = m.group("rest")
            err = re.search(r"error=0x([0-9a-f]+)", rest)
            why = re.search(r"\((.*)\)", rest)
            reports.append(FaultReport(
                "SIGSEGV", int(m.group("ip"), 16), parse_code(m.group("bytes")), i + 1,
                addr=int(m.group("addr"), 16), error=int(err.group(1), 16) if err else None,
                pid=m.group("pid"), why=why.group(1) if why else ""))
            i += 1
            continue
        m = _OOPS_RE.match(line)
        if m:
            regs, code = {}, b""
            j = i + 1
            while j < len(lines) and j < i + 12:
                cm = _CODE_RE.match(lines[j])
                if cm:
                    code = parse_code(cm.group("bytes"))
                    break
                for r in _REGS_RE.finditer(lines[j]):
                    regs.setdefault(r.group("reg"), int(r.group("val"), 16))
                if _OOPS_RE.match(lines[j]):
                    break
                j += 1
            vec = int(m.group("vec"))
            reports.append(FaultReport(
                "oops", regs.get("rip", 0), code, i + 1, addr=regs.get("cr2") if vec == 14 else None,
                error=regs.get("error"), why="%s, %s" % (m.group("name"), m.group("why")), vector=vec))
            i = j + 1 if j > i else i + 1
            continue
        i += 1
    return reports


def disassemble(code, rip):
    """'mnemonic operands' of the first instruction, or a reason it has none."""
    if not code:
        return "(no code bytes)"
    try:
        import capstone
    except ImportError:
        return "(capstone not installed) " + code.hex(" ")
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for insn in md.disasm(code, rip):
        return ("%s %s" % (insn.mnemonic, insn.op_str)).strip() + "  [%s]" % insn.bytes.hex(" ")
    return "(undecodable: %s)" % code.hex(" ")


class Symbols:
    """Addresses to `name+0xoff` from an ELF's symbol table (nm -n)."""

    def __init__(self, elf=None):
        self.syms = []
        elf = Path(elf) if elf else DEFAULT_ELF
        if not elf.is_file() or not shutil.which("nm"):
            return
        try:
            out = subprocess.run(["nm", "-n", str(elf)], capture_output=True, text=True,
                                 timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tTwW":
                self.syms.append((int(parts[0], 16), parts[2]))

    def name(self, addr):
        lo, hi = 0, len(self.syms)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.syms[mid][0] <= addr:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        base, name = self.syms[lo - 1]
        return "%s+0x%x" % (name, addr - base)


def pf_error_text(err):
    if err is None:
        return ""
    return "%s %s%s%s%s" % (
        "protection" if err & 1 else "not-present",
        "write" if err & 2 else ("fetch" if err & 16 else "read"),
        " user" if err & 4 else " kernel",
        " rsvd" if err & 8 else "", "")


def describe(r, syms=None):
    where = syms.name(r.rip) if syms is not None else None
    at = "0x%x%s" % (r.rip, " <%s>" % where if where else "")
    insn = disassemble(r.code, r.rip)
    if r.kind == "SIGSEGV":
        return "log:%d SIGSEGV pid=%s addr=0x%x (%s; %s) at %s: %s" % (
            r.line_no, r.pid, r.addr, pf_error_text(r.error), r.why, at, insn)
    what = r.why
    if r.addr is not None:
        what += "; addr=0x%x %s" % (r.addr, pf_error_text(r.error))
    return "log:%d oops (%s) at %s: %s" % (r.line_no, what, at, insn)


def summarize(text, elf=None):
    """One readable line per fault report in `text`."""
    reports = parse(text)
    if not reports:
        return []
    syms = Symbols(elf)
    return [describe(r, syms) for r in reports]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="the oops and SIGSEGV reports in a kernel_py serial log, one line "
                    "each with the faulting instruction disassembled and its symbol")
    ap.add_argument("logs", nargs="+", help="serial log files ('-' for stdin)")
    ap.add_argument("--elf", help="kernel.elf for symbols (default guest/build/kernel.elf)")
    args = ap.parse_args(argv)
    found = 0
    for name in args.logs:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(errors="replace")
        lines = summarize(text, args.elf)
        for line in lines:
            print(("%s: " % name if len(args.logs) > 1 else "") + line)
        found += len(lines)
    if not found:
        print("no fault reports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
