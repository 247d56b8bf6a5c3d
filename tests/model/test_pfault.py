"""tools/pfault: oops blocks and SIGSEGV lines of a serial log become one
line each with the faulting instruction (capstone)."""

import subprocess
import sys
from pathlib import Path

from kpyqemu.pfault import parse, summarize

ROOT = Path(__file__).resolve().parents[2]

LOG = """kpy# write 2 0x7ffff1bff000 xx
oops: page fault (vector 14) in a memory accessor
  error=0x0000000000000003 rip=0xffffffff8010017f cr2=0x00007ffff1bff000 cr3=0x000000000feca000
  rax=0x0000000000000001 rbx=0x00007ffff1bff000 rcx=0x0000000000000002 rdx=0x0000000000000002
 code: f3 a4 c3 fc c6 05 b6 e5 06 00 01 31 c0 c3 0f 1f
error: SIGSEGV pid=2 addr=0x7ffff1bff000 ip=0xffffffff8010017f error=0x3 (write to a read-only mapping) code: f3 a4 c3 fc c6 05 b6 e5 06 00 01 31 c0 c3 0f 1f
kpy# trap ud
oops: invalid opcode (vector 06) in kernel code
  error=0x0000000000000000 rip=0xffffffff80100123 cr2=0x0000000000000000 cr3=0x000000000feca000
 code: 0f 0b ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ??
"""


def test_parse_finds_each_report():
    rs = parse(LOG)
    assert [r.kind for r in rs] == ["oops", "SIGSEGV", "oops"]
    assert rs[0].rip == 0xffffffff8010017f and rs[0].addr == 0x7ffff1bff000 and rs[0].error == 3
    assert rs[1].pid == "2" and rs[1].why == "write to a read-only mapping"
    assert rs[2].vector == 6 and rs[2].code == b"\x0f\x0b" and rs[2].addr is None


def test_summary_disassembles():
    lines = summarize(LOG, elf="/nonexistent")
    assert len(lines) == 3
    assert "rep movsb" in lines[0] and "addr=0x7ffff1bff000" in lines[0]
    assert lines[1].startswith("log:6 SIGSEGV pid=2") and "rep movsb" in lines[1]
    assert lines[2].endswith("ud2  [0f 0b]")


def test_cli(tmp_path):
    log = tmp_path / "serial.log"
    log.write_text(LOG)
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "pfault"), str(log)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("\n") == 3 and "ud2" in out
    log.write_text("kpy# echo hi\nhi\n")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "pfault"), str(log)],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "no fault reports"
