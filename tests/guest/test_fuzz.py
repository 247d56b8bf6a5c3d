"""The console under abuse (issue 7, item 5): seeded random and malformed
lines typed into a fresh guest (kpyqemu/fuzz.py: binary bytes with NUL,
control characters, ESC sequences and bytes that are not UTF-8, huge and
negative numbers, lines beyond 4096 bytes, unknown commands and paths,
partial commands, odd redirections, unbalanced quotes, every registered
command with wrong arguments). Each line gets its prompt back with output,
nothing, or one well-formed `error:` line; nothing crashes or hangs; the
memory accounting (MemFree, buddyinfo, slabinfo, vmallocinfo, ps) is the
same at the end, since no fuzz line can leave an allocation (see fuzz.py).

`make test` types FUZZ_LINES lines (2,000: 7-20 s under TCG, by machine load); `make soak`
types 10,000 (KPY_FUZZ_LINES overrides, KPY_FUZZ_SEED picks the seed)."""

import os

from kpyqemu import fuzz

FUZZ_LINES = int(os.environ.get("KPY_FUZZ_LINES", "2000"))
FUZZ_SEED = int(os.environ.get("KPY_FUZZ_SEED", "1"))


def test_every_fuzz_line_is_answered_and_accounting_is_unchanged(boot):
    g = boot(mem="64M")
    before = fuzz.accounting(g.run)
    fz = fuzz.Fuzzer(FUZZ_SEED, fuzz.names_from_help(g.run("help")))
    report = fuzz.drive(g, fz.lines(FUZZ_LINES))
    print(report.summary())
    assert report.crashes == 0 and report.hangs == 0, report.bad[-1:]
    assert report.sent == report.answered == FUZZ_LINES
    assert report.bad == [], report.bad[:5]
    assert report.errors > FUZZ_LINES // 3 and report.outputs > FUZZ_LINES // 10
    assert fuzz.accounting(g.run) == before
    assert g.run("echo still answering") == "still answering"


def test_control_bytes_each_get_one_answer(boot):
    g = boot(mem="64M")
    cases = [
        (b"echo a\xffb\r", "error: EILSEQ: the line is not valid UTF-8"),
        (b"echo \xc3\r", "error: EILSEQ: the line is not valid UTF-8"),
        ("echo caf\u00e9\r".encode(), "caf\u00e9"),
        (b"ec\x00ho \x01x\x1b[A\x1bOP\x1b[1;5Cy\r", "xy"),
        (b"echo abc\x08\x7fZ\r", "aZ"),
        (b"echo lost\x03", ""),                  # Ctrl-C: the line is dropped
        (b"\x04\r", ""),                          # Ctrl-D: ignored by the shell
        (b"echo " + b"x" * 5000 + b"\r", "error: E2BIG: line longer than 4096 characters"),
        (b"python now\r", "error: EINVAL: usage: python (it takes no arguments)"),
        (b"echo ; > /proc/meminfo\r", "error: EINVAL: redirection without a command"),
    ]
    report = fuzz.Report()
    for data, want in cases:
        echo = g.send_bytes(data)
        g.child.expect_exact("\n" + fuzz.PROMPT, timeout=30)
        out = (echo + g.child.before).replace("\r", "").partition("\n")[2].strip("\n")
        assert out == want, (data[:40], out)
        fuzz.classify(report, data, out)
    assert report.bad == []
    assert g.run("echo fine") == "fine"
