"""Console fuzzing (issue 7): a seeded generator of random and malformed
console lines, and a driver that types them and checks every one is
answered (the prompt comes back) with output, nothing, or one `error:` line.

    from kpyqemu.fuzz import Fuzzer, drive
    fz = Fuzzer(seed=7, commands=names_from_help(g.run("help")))
    report = drive(g, fz.lines(10000))        # report.crashes, .hangs, ...

What the lines are: raw bytes (NUL, control characters, ESC sequences,
bytes >= 0x80 that are not UTF-8), huge and negative numbers, lines longer
than the console's 4096 bytes, unknown commands and paths, partial commands,
redirections to odd places, unbalanced quotes, and every registered command
with wrong arguments. CR, LF and Ctrl-C end a line on the console, so they
only ever appear as the line's end (one line in, one prompt out).

Memory accounting must be unchanged at the end, so no line may leave an
allocation behind. Commands that can allocate (ALLOCATING) only ever get
arguments that cannot work: a first argument no such command accepts, or
the wrong number of arguments; every other generator uses only commands
that allocate nothing, and a random line whose effective text (after the
console's own line editing, modelled with the kernel's LineEditor) would
start an allocating command is drawn again. The fuzz guest has no disks,
so the file commands fail too.
"""

import random
import re
import time

import pexpect

from kernel_py.shell.console import LineEditor
from kernel_py.shell.shell import MAX_LINE
from kpyqemu.guest import GuestTimeout

PROMPT = "kpy# "

# Commands that can leave memory allocated, change the console (python) or
# end the machine: they only get arguments that make them fail.
ALLOCATING = frozenset((
    "alloc_pages", "kmalloc", "vmalloc", "kmem_cache_create", "kmem_cache_alloc",
    "spawn", "fork", "mmap", "munmap", "mprotect", "brk", "sbrk", "malloc", "free",
    "touch", "read", "write", "fill", "pattern", "memsum", "append", "truncate",
    "mkdir", "dd", "mkswap", "swapon", "swapoff", "mount", "umount", "pfdemo",
    "python", "poweroff", "bench", "trap", "peek", "kfree", "vfree", "free_pages",
    "kmem_cache_free", "kmem_cache_shrink", "kmem_cache_destroy", "kill", "exit",
    "rm", "rmdir", "sync", "kmemleak-test", "kwrite", "kforget",
))
# First arguments that no allocating command accepts: not a number, not a
# pid, not a size, not a name it could create (a cache or process name may
# be any word, so those commands only get the wrong number of arguments).
BAD_FIRST = ("-1", "-4096", "-0x1000", "0x", "1e9", "NaN", "--", "%s%n", "99999999999999999999999",
             "0x10000000000000000", "-99999999999999999999", "12abc", "0b102", "+-1", "",
             "1..2", "0xGG", "/nonexistent")
NAME_TAKERS = {"spawn": 1, "kmem_cache_create": (2, 4), "kmem_cache_alloc": 1,
               "kmem_cache_shrink": 1, "kmem_cache_destroy": 1, "mkdir": None, "rm": None,
               "rmdir": None, "mkswap": 1, "swapon": 1, "swapoff": 1, "python": None,
               "sync": None, "trap": 1, "pfdemo": None}
JUNK_ARGS = ("0", "1", "-1", "4096", "-4096", "0xffffffffffffffff", "0x1", "18446744073709551616",
             "340282366920938463463374607431768211456", "-9223372036854775809", "4K", "4G", "9T",
             "rw", "rwx", "none", "x", "'", '"', "''", "/proc/meminfo", "/mnt/x", "GFP_KERNEL",
             "DMA", "slub", "slab", "slob", "fixed=0x400000", "prot=rwx", "shared", ">", ";")
SAFE = ("help", "echo", "cat", "ls", "sysctl", "dmesg", "ps", "top", "slabtop", "vmstat",
        "df", "fincore", "sha256sum", "pgd")
VALID = ("cat /proc/meminfo", "cat /proc/buddyinfo", "cat /proc/slabinfo", "cat /proc/vmstat",
         "ps", "help", "help kmalloc", "echo hello world", "ls /proc", "cat /proc/1/maps",
         "cat /proc/1/status", "sysctl vm.swappiness", "cat /proc/zoneinfo", "dmesg",
         "cat /sys/kernel/debug/extfrag/extfrag_index", "top -b -n 1", "slabtop",
         "cat /proc/vmallocinfo", "vmstat", "cat /proc/swaps", "free", "echo 'a  b' \"c\"")
PATHS = ("/proc/", "/proc/1/", "/proc/99999/", "/proc/-1/", "/sys/kernel/debug/", "/mnt/",
         "/", "", "//", "/proc/self/", "/dev/", "../", "/proc/sys/vm/")
WRITABLE = ("/proc/sys/vm/drop_caches", "/proc/sys/vm/swappiness", "/proc/meminfo",
            "/proc/1/oom_score_adj", "/proc/sys/vm/dirty_ratio", "/nonexistent",
            "/proc/99999/oom_score_adj", "/sys/fs/cgroup/memory.reclaim", "/proc/sys/vm/",
            "/proc/sys/vm/legacy_va_layout", "/dev/null", "")
LINE_END = b"\r"
NEVER_INSIDE = (0x0D, 0x0A, 0x03)          # CR, LF, Ctrl-C: they end a line
ANSWER_RE = re.compile(r"^error: E[A-Z0-9]+(: .*)?$")


def names_from_help(text):
    """Command names from the console's `help` listing."""
    return sorted(l.split()[0] for l in text.split("\n") if l.strip())


def effective(line):
    """What the console's line editor makes of `line` (bytes), as text."""
    data = iter(line + LINE_END)
    ed = LineEditor(lambda: next(data), lambda b: None)
    return ed.readline("").decode("utf-8", "replace")


def starts_allocating(text):
    for part in text.split(";"):
        words = part.split()
        if words and words[0].strip("'\"") in ALLOCATING:
            return True
    return False


class Fuzzer:
    def __init__(self, seed, commands):
        self.rng = random.Random(seed)
        self.commands = list(commands)
        self.kinds = (
            (12, self.raw_bytes), (8, self.printable_junk), (1, self.long_line),
            (6, self.unknown_command), (25, self.wrong_args), (8, self.unknown_path),
            (8, self.redirection), (5, self.unbalanced_quote), (6, self.partial),
            (5, self.edited_valid), (8, self.valid), (8, self.chained))
        self.total_weight = sum(w for w, _ in self.kinds)

    # -- line makers: each returns bytes without the line end -----------------
    def raw_bytes(self):
        r = self.rng
        n = r.choice((1, 2, 5, 20, 80, 300))
        return bytes(b for b in (r.randrange(256) for _ in range(n)) if b not in NEVER_INSIDE)

    def printable_junk(self):
        r = self.rng
        return bytes(r.randrange(0x20, 0x7F) for _ in range(r.randrange(1, 120)))

    def long_line(self):
        r = self.rng
        n = r.choice((MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, MAX_LINE + 50, 3 * MAX_LINE))
        head = r.choice((b"echo ", b"cat ", b"", b"x"))
        return (head + b"A" * n)[:n]

    def word(self):
        r = self.rng
        return "".join(r.choice("abcdefghijklmnopqrstuvwxyz_0123456789-")
                       for _ in range(r.randrange(1, 14)))

    def unknown_command(self):
        w = self.word()
        while w in self.commands:
            w += "x"
        return (w + " " + " ".join(self.word() for _ in range(self.rng.randrange(3)))).encode()

    def wrong_args(self):
        """A registered command with arguments it must refuse."""
        r = self.rng
        name = r.choice(self.commands)
        if name in NAME_TAKERS:
            return self.wrong_count(name)
        if name in ALLOCATING:
            args = [r.choice(BAD_FIRST)] + [r.choice(JUNK_ARGS) for _ in range(r.randrange(4))]
        else:
            args = [r.choice(JUNK_ARGS + BAD_FIRST) for _ in range(r.randrange(1, 6))]
        return (name + " " + " ".join(quote(a) for a in args)).encode()

    def wrong_count(self, name):
        """Commands whose arguments are free names: too many of them."""
        r = self.rng
        want = NAME_TAKERS[name]
        hi = want if isinstance(want, int) else (want[1] if want else 0)
        if want is None:
            # a path (no disk: they fail) or a word that is not theirs
            return ("%s /nonexistent/%s extra words" % (name, self.word())).encode()
        return (name + " " + " ".join(self.word() for _ in range(hi + 1 + r.randrange(3)))).encode()

    def unknown_path(self):
        r = self.rng
        verb = r.choice(("cat", "ls", "cat", "sha256sum", "fincore"))
        return ("%s %s%s" % (verb, r.choice(PATHS), self.word())).encode()

    def redirection(self):
        r = self.rng
        src = r.choice(("echo %s" % r.choice(JUNK_ARGS + BAD_FIRST), "cat /proc/meminfo", "ps",
                        "help", "echo", "echo 3"))
        op = r.choice((">", ">>", "> ", ">>>", "> >", "<", "|", "2>"))
        dst = r.choice(WRITABLE + (self.word(), "/proc/" + self.word(), "a b", ""))
        return ("%s %s %s" % (src, op, dst)).encode()

    def unbalanced_quote(self):
        r = self.rng
        q = r.choice(("'", '"'))
        return ("%s %s%s %s" % (r.choice(SAFE), q, self.word(), self.word())).encode()

    def partial(self):
        r = self.rng
        line = r.choice(VALID + ("echo 3 > /proc/sys/vm/drop_caches", "kmalloc 64", "spawn p",
                                 "mmap 1 4096 prot=rw"))
        cut = line[:r.randrange(1, len(line))]
        return cut.encode()

    def edited_valid(self):
        """A valid line with editing keys and escape sequences typed in."""
        r = self.rng
        line = bytearray(r.choice(VALID).encode())
        for _ in range(r.randrange(1, 4)):
            pos = r.randrange(len(line) + 1)
            line[pos:pos] = r.choice((b"\x1b[A", b"\x1b[1;5C", b"\x1bOP", b"\x00", b"\x07",
                                      b"x\x08", b"y\x7f", b"\x1b", b"\t", b"\x04", "\u00e9".encode()))
        return bytes(line)

    def valid(self):
        return self.rng.choice(VALID).encode()

    def chained(self):
        r = self.rng
        parts = [r.choice(VALID + ("echo a", "cat /nope", "", " ", "help nosuch"))
                 for _ in range(r.randrange(2, 5))]
        return r.choice((";", " ; ", ";;")).join(parts).encode()

    # -- the stream ---------------------------------------------------------------
    def line(self):
        while True:
            x = self.rng.randrange(self.total_weight)
            for w, make in self.kinds:
                if x < w:
                    break
                x -= w
            line = make()
            text = effective(line)
            if make != self.wrong_args and make != self.partial and starts_allocating(text):
                continue
            if make == self.wrong_args and starts_allocating(text) and len(text.split()) < 2:
                continue              # `poweroff`, `python`, `sync` alone do their job
            if make == self.partial and starts_allocating(text) and " " in text.strip():
                continue              # "kmalloc 6" is a valid command, not a partial one
            if "kpy#" in text:
                continue              # output starting with the prompt text would look like one
            return line

    def lines(self, n):
        for _ in range(n):
            yield self.line()


def quote(a):
    return "''" if a == "" else a


class Report:
    def __init__(self):
        self.sent = 0
        self.answered = 0
        self.errors = 0
        self.outputs = 0
        self.empty = 0
        self.crashes = 0
        self.hangs = 0
        self.bad = []          # (line, output): more than one error line, a Python exception or an oops
        self.seconds = 0.0

    def rate(self):
        return self.sent / self.seconds if self.seconds else 0.0

    def summary(self):
        return ("Fuzz: %d lines sent, %d answered (%d error, %d output, %d empty), "
                "%d crashes, %d hangs, %d bad answers, %.0f lines/s"
                % (self.sent, self.answered, self.errors, self.outputs, self.empty,
                   self.crashes, self.hangs, len(self.bad), self.rate()))


PY_EXC_RE = re.compile(r"\b(Traceback|oops:|UnicodeError|NameError|AttributeError|SyntaxError)\b")


def classify(report, line, out):
    lines = [l for l in out.split("\n") if l.strip()]
    errs = [l for l in lines if l.startswith("error:")]
    report.answered += 1
    if errs:
        report.errors += 1
    elif lines:
        report.outputs += 1
    else:
        report.empty += 1
    if len(errs) > 1 or any(not ANSWER_RE.match(e) for e in errs) or PY_EXC_RE.search(out):
        report.bad.append((line, out))


def drive(g, lines, timeout=30.0):
    """Type each line, wait for its prompt; returns a Report. A missing
    prompt is a hang, QEMU exiting a crash: both end the run."""
    report = Report()
    child = g.child
    t0 = time.monotonic()
    for line in lines:
        report.sent += 1
        try:
            echo = g.send_bytes(line + LINE_END)
            child.expect_exact("\n" + PROMPT, timeout=timeout)
        except (pexpect.TIMEOUT, GuestTimeout):
            report.hangs += 1
            report.bad.append((line, child.before))
            g.broken = True
            break
        except pexpect.EOF:
            report.crashes += 1
            report.bad.append((line, child.before))
            break
        out = (echo + child.before).replace("\r", "")
        classify(report, line, out.partition("\n")[2])     # the first line is the echo
    report.seconds = time.monotonic() - t0
    return report


def drive_shell(shell, lines):
    """The same over the simulated machine's Shell (model tests): each line
    through the kernel's LineEditor, then Shell.execute."""
    report = Report()
    t0 = time.monotonic()
    for line in lines:
        report.sent += 1
        data = iter(line + LINE_END)
        raw = LineEditor(lambda: next(data), lambda b: None).readline("")
        classify(report, line, shell.execute(raw))
    report.seconds = time.monotonic() - t0
    return report


def accounting(run):
    """What must not change across a fuzz run, from the console's own files:
    MemFree, the buddy's free blocks per zone and order, every slab cache's
    objects and slabs, the vmalloc areas and the process list. `run(cmd)`
    returns a command's output."""
    meminfo = {l.split(":")[0]: l.split()[1] for l in run("cat /proc/meminfo").split("\n")}
    slabs = [l.split()[:3] + l.split()[-3:-1] for l in run("cat /proc/slabinfo").split("\n")[2:]]
    return {
        "MemFree": meminfo["MemFree"],
        "buddyinfo": run("cat /proc/buddyinfo"),
        "slabinfo": slabs,
        "vmallocinfo": run("cat /proc/vmallocinfo"),
        "ps": run("ps"),
    }
