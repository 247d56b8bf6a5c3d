"""memleak and uprobes on the real machine (issue 16): the leak corpus of
user/ (user/leaks.expect) run under `memleak -c`, every planted leak found
at its call site with its bytes and count, no stack reported for the
programs without a leak; `memleak -p` attached to a running server during
its wait, with the free of a block it never saw noted; bad input (a
symbol that does not exist, an address outside the text, a pid that is
not a program) one error line each, the kernel and the programs unharmed,
the probes gone at exit. One boot for the module."""

import re
from pathlib import Path

import pytest

from kpyqemu import disks
from kpyqemu.pytest_plugin import _boot

EXPECT = Path(__file__).resolve().parents[2] / "user" / "leaks.expect"
RUN_TIMEOUT = 300
STACK_RE = re.compile(r"^\t(\d+) bytes in (\d+) allocations from stack$")


def expectations():
    """{program: [(function, bytes, count, caller)]} ([] for no leak)."""
    out = {}
    for line in EXPECT.read_text().splitlines():
        w = line.split()
        if not w or w[0].startswith("#"):
            continue
        out.setdefault(w[0], [])
        if w[1] != "none":
            out[w[0]].append((w[1], int(w[2]), int(w[3]), w[4]))
    return out


def outstanding(text):
    """[(bytes, count, [frames])] of the last report in text."""
    part = text.rsplit("Top ", 1)[-1]
    rows = []
    for line in part.split("\n"):
        m = STACK_RE.match(line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), []))
        elif line.startswith("\t\t") and rows:
            rows[-1][2].append(line.strip())
    return rows


def fn(frame):
    return frame.split("+", 1)[0]


@pytest.fixture(scope="module")
def g(request, serial_log_dir, accel, kernel_image, tmp_path_factory):
    d = disks.fresh_disks(tmp_path_factory.mktemp("memleak"), swap=False)
    guest = _boot(request.node, serial_log_dir, accel, kernel_image, mem="256M",
                  drives=d.drives)
    yield guest
    guest.close()


@pytest.mark.parametrize("prog", sorted(expectations()))
def test_corpus_every_planted_leak_and_no_false_report(g, prog):
    want = expectations()[prog]
    out = g.run("memleak -c /mnt/bin/%s" % prog, timeout=RUN_TIMEOUT)
    assert "%s: done" % prog in out, out
    assert "memleak: pid" in out and "heap summary" in out, out
    assert "child FAILED" not in out, out       # leak_fork: the child ran its malloc unprobed
    assert re.search(r"^calls to allocation functions: [1-9]", out, re.M), out
    rows = outstanding(out)
    leaked = int(re.search(r"^bytes leaked: (\d+)", out, re.M).group(1))
    assert leaked == sum(r[0] for r in rows), out
    if not want:
        assert rows == [], out
        assert leaked == 0, out
        return
    assert len(rows) == len(want), out
    for (func, nbytes, count, caller), (b, n, frames) in zip(want, rows):
        assert (b, n) == (nbytes, count), out
        assert fn(frames[0]) == func and fn(frames[1]) == caller, out
    assert "BUG:" not in out


def test_attach_to_a_running_server_and_bad_input(g):
    g.send_line("run /mnt/bin/leak_server -w 3 &")
    g.child.expect(r"ready")
    pid = int(re.search(r"pid (\d+)", g.child.before).group(1))
    g.run("echo sync")
    assert "EINVAL" in g.run_expect_error("memleak -p 1")     # the kernel's init: no program
    out = g.run("memleak -p %d -o 0 1" % pid)            # and a report every second
    assert "Attaching to pid %d" % pid in out and "4 probes" in out, out
    g.child.expect(r"Top 10 stacks with outstanding allocations \(pid %d" % pid, timeout=60)
    g.run("echo sync")
    assert "[uprobes]" in g.run("cat /proc/%d/maps" % pid)
    assert g.run_expect_error("memleak -p 999999").startswith("error: ESRCH")
    assert g.run_expect_error("memleak -p").startswith("error: EINVAL")
    py = g.python("t = k.procs.tasks[%d]\n"
                  "for w in ('no_such_fn', '0x10'):\n"
                  "    try:\n"
                  "        k.uprobes.register(t, w, None)\n"
                  "    except Exception as e:\n"
                  "        print('refused', w, e.errname)\n" % pid)
    assert "refused no_such_fn ENOENT" in py and "refused 0x10 EFAULT" in py, py
    out = g.run("kill -USR1 %d" % pid)
    g.child.expect(r"leak_server: done")
    g.child.expect(r"bytes leaked: (\d+) in ")
    leaked = int(g.child.match.group(1))
    assert leaked == 3 * 64, g.child.before   # 3 rounds, one bad POST each
    tail = g.run("echo after")
    assert "after" in tail
    log = g.run("dmesg")
    assert "BUG:" not in log
    assert g.run_expect_error("memleak -p %d" % pid).startswith("error: ESRCH")
    assert g.run("echo alive") == "alive"


def test_single_stepped_probes_on_the_real_cpu(g):
    """Probes on instructions the emulator does not know (glibc malloc's
    rip-relative cmpb, make_record's mov $0x30, %edi): #BP, the byte back,
    TF, #DB, int3 back; the program runs to its end with every hit seen."""
    out = g.python(
        "from kernel_py.kernel.fork import spawn_user, ENVP_INIT\n"
        "P = '/mnt/bin/leak_loop'\n"
        "t, err = spawn_user(k, P, [P], ENVP_INIT)\n"
        "u = k.uprobes\n"
        "s = u.symbols_of(t)\n"
        "for name, off in (('malloc', 9), ('make_record', 7)):\n"
        "    a = s.lookup(name) + off\n"
        "    print(name, u.run_in_mm(t, hw.copy_from_user, a, 2))\n"
        "    u.register(t, '0x%x' % a, None)\n"
        "print('registered', len(t.mm.uprobes.probes), 'hits', u.nr_hits)\n")
    assert "registered 2" in out, out
    if "malloc b'\\x80='" not in out or "make_record b'\\xbf0'" not in out:
        pytest.skip("the program's code differs:\n" + out)
    before = int(re.search(r"hits (\d+)", out).group(1))
    g.child.expect("leak_loop: done", timeout=RUN_TIMEOUT)
    g.run("echo sync")
    after = int(g.python("print(k.uprobes.nr_hits)").strip())
    assert after - before >= 20         # 10 records: malloc and make_record each, plus start-up
    log = g.run("dmesg")
    assert "BUG:" not in log and "leak_loop" not in log, log    # no oops, no signal
