"""Boot kernel_py under QEMU and drive it: serial console and QMP.

    from kpyqemu.guest import Guest, GuestError
    with Guest(mem="256M", cmdline="slab=slub") as g:
        print(g.boot_time, g.accel, g.banner)
        print(g.run("cat /proc/meminfo"))
        line = g.run_expect_error("cat /proc/nope")   # 'error: ENOENT: ...'
        regs = g.registers()                         # regs.cr3, regs.rip ...
        data = g.read_phys(0x100000, 4096)
        w = g.walker()                               # PageWalker over CR3
        status = g.poweroff()                        # the guest's exit status

The console is QEMU's serial port on stdio, driven with pexpect through a
pty; every byte the guest sends is kept in `g.log_path`. QMP (registers,
physical memory, HMP commands) goes over a unix socket with the synchronous
`qemu.qmp.legacy.QEMUMonitorProtocol`, connected on first use.

`backend="fake"` runs kpyqemu/fakeguest.py instead of QEMU (a console
look-alike without QMP) to test the harness without an image.
"""

import fcntl
import itertools
import os
import re
import select
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pexpect

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMAGE = REPO_ROOT / "guest" / "build" / "kernel.bin"
DEFAULT_INITRD = REPO_ROOT / "build" / "initramfs.cpio"
QEMU = "qemu-system-x86_64"
PROMPT = "kpy# "
_PROMPT_AFTER_LINE = "\n" + PROMPT
_REPL_PROMPT = "\n>>> "
_REPL_LINE_MAX = 3000          # the console takes lines up to 4096 chars
_PY_EXC_RE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Fault|Interrupt|Exit): ")
DEBUG_EXIT_PORT = 0xF4

DEFAULT_BOOT_TIMEOUT = {"tcg": 60.0, "kvm": 30.0, "fake": 10.0}
DEFAULT_CMD_TIMEOUT = 30.0
KVM_PROBE_TIMEOUT = 12.0

_counter = itertools.count(1)
_kvm_probe_cache = {}


class GuestError(Exception):
    """A command failed in the guest (an `error:` line), or the harness could
    not talk to the guest. `.cmd`, `.output`, `.line` (the error line) and
    `.log_path` describe it."""

    def __init__(self, message, cmd=None, output="", line=None, log_path=None):
        super().__init__(message)
        self.cmd = cmd
        self.output = output
        self.line = line
        self.log_path = log_path


class GuestOops(GuestError):
    """The command produced an oops block (an unhandled CPU fault)."""


class GuestPythonError(GuestError):
    """Code run with Guest.python() raised; `.line` is the 'Error: ...' line."""


class GuestTimeout(GuestError):
    """No prompt within the timeout. The console is out of step afterwards:
    the guest is marked broken."""


class GuestDied(GuestError):
    """QEMU exited while the harness expected the guest to answer."""


class GuestBootError(GuestError):
    """The guest did not reach its first prompt."""


def parse_size(s):
    """'256M' / '4G' / '1024' (MiB, as QEMU's -m) -> bytes."""
    s = str(s).strip().upper().rstrip("B").rstrip("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s) << 20


def _env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v else default


def image_path(image=None):
    """The kernel image: `image`, else $KPY_KERNEL, else guest/build/kernel.bin."""
    return Path(image or os.environ.get("KPY_KERNEL") or DEFAULT_IMAGE)


def initrd_path(initrd=None):
    """The initramfs a Guest boots with: `initrd` ("" for none), else
    $KPY_INITRD, else none. Tests of the memory manager boot without one
    (their figures assume a root with nothing to swap); tests of the root
    file system ask for built_initrd()."""
    if initrd is None:
        initrd = os.environ.get("KPY_INITRD", "")
    return Path(initrd) if initrd else None


def built_initrd():
    """build/initramfs.cpio (BusyBox, `make initramfs`) when it was built,
    else None: what `make qemu` boots with."""
    return DEFAULT_INITRD if DEFAULT_INITRD.is_file() else None


def kvm_usable():
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def probe_kvm(image=None, timeout=KVM_PROBE_TIMEOUT):
    """True if the image really boots under KVM and answers a command.

    /dev/kvm existing proves nothing on some hosts (guests hang), so this
    boots once with -accel kvm and a short timeout. The answer is cached for
    the life of the process, per image (path and mtime)."""
    img = image_path(image)
    try:
        key = (str(img.resolve()), img.stat().st_mtime_ns)
    except OSError:
        return False
    if key in _kvm_probe_cache:
        return _kvm_probe_cache[key]
    ok = False
    if kvm_usable():
        g = None
        try:
            g = Guest(image=img, accel="kvm", boot_timeout=timeout,
                      name="kvm-probe")
            ok = g.run("echo kvm-probe", timeout=timeout) == "kvm-probe"
        except Exception:
            ok = False
        finally:
            if g is not None:
                g.close()
    _kvm_probe_cache[key] = ok
    return ok


def resolve_accel(accel=None, image=None):
    """`accel` if given, else $KPY_ACCEL (kvm|tcg), else KVM if probe_kvm()
    proves it works, else TCG."""
    accel = accel or os.environ.get("KPY_ACCEL", "").strip().lower() or "auto"
    if accel in ("kvm", "tcg"):
        return accel
    if accel != "auto":
        raise ValueError("KPY_ACCEL/accel must be kvm, tcg or auto, not %r" % accel)
    return "kvm" if probe_kvm(image) else "tcg"


class Registers(dict):
    """Register values by upper-case name ('CR3', 'RIP', 'EFER', ...), also
    readable as lower-case attributes: regs.cr3."""

    def __getattr__(self, name):
        try:
            return self[name.upper()]
        except KeyError:
            raise AttributeError(name) from None


_REG_RE = re.compile(r"\b([A-Z][A-Z0-9]*)\s*=\s*([0-9a-fA-F]+)\b")


def parse_registers(text):
    """Parse HMP `info registers` output. Segment and descriptor-table lines
    give their first field (selector / base)."""
    regs = Registers()
    for name, value in _REG_RE.findall(text):
        regs.setdefault(name, int(value, 16))
    # outside long mode QEMU prints EAX.. EIP, EFL: give them the R names too
    for r in ("AX", "BX", "CX", "DX", "SI", "DI", "BP", "SP", "IP"):
        if "R" + r not in regs and "E" + r in regs:
            regs["R" + r] = regs["E" + r]
    if "RFL" not in regs and "EFL" in regs:
        regs["RFL"] = regs["EFL"]
    return regs


class PhysCache:
    """read_phys(pa, n) over a guest, reading aligned chunks once (one
    pmemsave each) and serving repeated reads from memory. Make a new one
    whenever the guest may have changed the memory."""

    def __init__(self, guest, chunk=64 << 10):
        self.guest = guest
        self.chunk = chunk
        self._chunks = {}

    def __call__(self, pa, n):
        chunk = self.chunk
        out = bytearray()
        end = pa + n
        p = pa
        while p < end:
            base = p - p % chunk
            data = self._chunks.get(base)
            if data is None:
                data = self.guest.read_phys(base, chunk)
                self._chunks[base] = data
            take = min(end, base + chunk) - p
            out += data[p - base:p - base + take]
            p += take
        return bytes(out)


class Guest:
    """One running QEMU (or fake) guest. Boots in the constructor.

    Arguments: mem (QEMU -m), cmdline (-append), accel ('kvm', 'tcg' or
    None: $KPY_ACCEL, else probed), extra_args (appended to QEMU's argv),
    drives (paths of raw images, attached as IDE disks in order, or strings
    used verbatim as -drive values), boot_timeout / cmd_timeout (seconds;
    $KPY_BOOT_TIMEOUT / $KPY_CMD_TIMEOUT), log_dir (where the serial log is
    written; default a fresh temporary directory), keep_log (keep the log
    directory on close), backend ('qemu' or 'fake'), eol (what ends a typed
    line; a terminal sends '\\r'), initrd (the initramfs passed with
    -initrd; none unless asked: see initrd_path).
    """

    def __init__(self, mem="256M", cmdline="", accel=None, extra_args=(),
                 drives=(), *, image=None, boot_timeout=None, cmd_timeout=None,
                 log_dir=None, keep_log=False, backend="qemu", name=None,
                 qemu=QEMU, cpu="max", eol="\r", start=True, initrd=None):
        self.name = name or "guest%d" % next(_counter)
        self.mem = mem
        self.mem_bytes = parse_size(mem)
        self.cmdline = cmdline
        self.backend = backend
        self.image = image_path(image)
        self.initrd = initrd_path(initrd)
        self.extra_args = list(extra_args)
        self.drives = list(drives)
        self.qemu = qemu
        self.cpu = cpu
        self.eol = eol
        self.keep_log = keep_log
        if backend == "fake":
            self.accel = "fake"
        elif backend == "qemu":
            self.accel = resolve_accel(accel, self.image)
        else:
            raise ValueError("backend must be 'qemu' or 'fake'")
        default_boot = DEFAULT_BOOT_TIMEOUT[self.accel] + 10.0 * max(
            0, self.mem_bytes / (1 << 30) - 1)
        self.boot_timeout = boot_timeout or _env_float("KPY_BOOT_TIMEOUT", default_boot)
        self.cmd_timeout = cmd_timeout or _env_float("KPY_CMD_TIMEOUT", DEFAULT_CMD_TIMEOUT)

        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="kpy-%s-" % self.name))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / ("%s.serial.log" % self.name)
        self.stderr_path = self.log_dir / ("%s.qemu-stderr.log" % self.name)
        # unix socket paths must stay short: always a short temporary dir
        self._sock_dir = tempfile.mkdtemp(prefix="kpyq-")
        self.qmp_path = os.path.join(self._sock_dir, "qmp.sock")

        self.child = None
        self._log = None
        self._qmp = None
        self.broken = False          # console out of step (after a timeout)
        self.exit_code = None        # QEMU's exit code, once it exited
        self.boot_time = None
        self.banner = ""
        self.last_output = ""
        self.argv = self._argv()
        if start:
            self.start()

    # -- process -------------------------------------------------------------
    def _argv(self):
        if self.backend == "fake":
            return [sys.executable, str(Path(__file__).with_name("fakeguest.py")),
                    "--mem", str(self.mem), "--cmdline", self.cmdline]
        argv = [
            self.qemu, "-machine", "pc", "-cpu", self.cpu, "-m", str(self.mem),
            "-accel", self.accel, "-display", "none", "-no-reboot",
            "-kernel", str(self.image), "-append", self.cmdline,
        ] + (["-initrd", str(self.initrd)] if self.initrd is not None else []) + [
            "-device", "isa-debug-exit,iobase=%#x,iosize=0x04" % DEBUG_EXIT_PORT,
            "-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0",
            "-monitor", "none",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
        ]
        for i, d in enumerate(self.drives):
            d = str(d)
            if "=" not in d:
                d = "file=%s,format=raw,if=ide,index=%d,media=disk" % (d, i)
            argv += ["-drive", d]
        return argv + [str(a) for a in self.extra_args]

    def start(self):
        if self.backend == "qemu" and not self.image.is_file():
            raise GuestBootError("kernel image not found: %s (build it first)"
                                 % self.image, log_path=self.log_path)
        self._log = open(self.log_path, "w", encoding="utf-8", newline="",
                         buffering=1)
        stderr_path = str(self.stderr_path)

        def child_setup():     # runs in the child: keep QEMU's stderr apart
            fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            os.close(fd)

        t0 = time.monotonic()
        self.child = pexpect.spawn(
            self.argv[0], self.argv[1:], timeout=self.cmd_timeout,
            maxread=65536, encoding="utf-8", codec_errors="replace",
            echo=False, preexec_fn=child_setup, dimensions=(24, 500))
        self.child.logfile_read = self._log
        self.child.delaybeforesend = None     # pexpect's default sleeps 50 ms
        try:
            self.child.expect_exact(PROMPT, timeout=self.boot_timeout)
        except pexpect.TIMEOUT:
            self.kill()
            raise GuestBootError(
                "%s: no prompt within %.0fs (accel=%s)\n%s"
                % (self.name, self.boot_timeout, self.accel, self._diagnostics()),
                output=self._before(), log_path=self.log_path) from None
        except pexpect.EOF:
            self._reap()
            raise GuestBootError(
                "%s: QEMU exited during boot (exit code %s)\n%s"
                % (self.name, self.exit_code, self._diagnostics()),
                output=self._before(), log_path=self.log_path) from None
        self.boot_time = time.monotonic() - t0
        self.banner = _normalize(self.child.before).strip("\n")
        return self

    def _before(self):
        b = self.child.before if self.child is not None else ""
        return _normalize(b if isinstance(b, str) else "")

    def _diagnostics(self, lines=40):
        parts = ["argv: %s" % " ".join(self.argv)]
        try:
            err = self.stderr_path.read_text(errors="replace").strip()
            if err:
                parts.append("qemu stderr:\n" + err[-4000:])
        except OSError:
            pass
        parts.append("serial log %s, last lines:\n%s"
                     % (self.log_path, self.log_tail(lines)))
        return "\n".join(parts)

    @property
    def alive(self):
        return self.child is not None and self.child.isalive()

    def _reap(self):
        """Collect QEMU's exit code once its console hit EOF or it was killed."""
        if self.child is None:
            return self.exit_code
        try:
            self.child.close(force=True)
        except Exception:
            pass
        self.exit_code = self.child.exitstatus
        if self.exit_code is None and self.child.signalstatus is not None:
            self.exit_code = -self.child.signalstatus
        self._close_qmp()
        if self._log is not None:
            self._log.flush()
        return self.exit_code

    @property
    def exit_status(self):
        """The guest's status passed to isa-debug-exit, or None if QEMU exited
        some other way (QEMU's exit code is status*2+1)."""
        c = self.exit_code
        if c is None or c <= 0 or c % 2 == 0:
            return None
        return (c - 1) // 2

    # -- console ---------------------------------------------------------------
    def _require_console(self):
        if self.child is None:
            raise GuestError("%s: not started" % self.name, log_path=self.log_path)
        if self.broken:
            raise GuestError("%s: console out of step after an earlier timeout"
                             % self.name, log_path=self.log_path)
        if not self.child.isalive():
            self._reap()
            raise GuestDied("%s: QEMU has exited (exit code %s)"
                            % (self.name, self.exit_code), log_path=self.log_path)

    def send_line(self, line):
        """Type one line (no waiting). Prefer run()."""
        if "\n" in line or "\r" in line:
            raise ValueError("one command line at a time: %r" % line)
        self.child.send(line + self.eol)

    def send_bytes(self, data, chunk=512):
        """Write raw bytes to the serial line (binary input, no line end
        added) and return, decoded, what the guest sent meanwhile (its echo).

        Reading while writing matters: the guest echoes what it reads, and
        if nobody reads the echo the pty fills, QEMU stops taking output, the
        guest spins on the UART, stops taking input, and the write blocks
        for ever. So the pty is written non-blocking in small pieces,
        draining the other way whenever it has data."""
        self._require_console()
        fd = self.child.child_fd
        view = memoryview(bytes(data))
        got = bytearray()
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            while view:
                r, w, _ = select.select([fd], [fd], [], self.cmd_timeout)
                if not r and not w:
                    self.broken = True
                    raise GuestTimeout("%s: the serial line takes no input" % self.name,
                                       log_path=self.log_path)
                if r:
                    try:
                        got += os.read(fd, 65536)
                    except BlockingIOError:
                        pass
                if w:
                    try:
                        view = view[os.write(fd, view[:chunk]):]
                    except BlockingIOError:
                        pass
        finally:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        text = got.decode("utf-8", "replace")
        if self._log is not None:
            self._log.write(text)
        return text

    def run_raw(self, cmd, timeout=None):
        """Type `cmd`, wait for the next prompt, return the output (normalized
        to '\\n' line ends, without the echoed command line and without a
        trailing newline). No checking for error/oops lines."""
        self._require_console()
        out = self._exchange(cmd, (_PROMPT_AFTER_LINE,), timeout)[0]
        self.last_output = out
        return out

    def _exchange(self, line, prompts, timeout=None):
        """Type `line`; wait for one of `prompts` (each must follow a line
        break and be followed by silence). Returns (output, prompt index)."""
        timeout = self.cmd_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.send_line(line)
        parts = []
        child = self.child
        while True:
            try:
                i = child.expect_exact(list(prompts),
                                       timeout=max(0.0, deadline - time.monotonic()))
            except pexpect.TIMEOUT:
                self.broken = True
                partial = _strip_echo("".join(parts) + _normalize(child.before), line)
                raise GuestTimeout(
                    "%s: %r: no prompt within %.0fs\npartial output:\n%s"
                    % (self.name, line, timeout, _tail(partial, 30)),
                    cmd=line, output=partial, log_path=self.log_path) from None
            except pexpect.EOF:
                partial = _strip_echo("".join(parts) + _normalize(child.before), line)
                self._reap()
                raise GuestDied(
                    "%s: %r: QEMU exited (exit code %s)\n%s"
                    % (self.name, line, self.exit_code, self._diagnostics()),
                    cmd=line, output=partial, log_path=self.log_path) from None
            parts.append(child.before)
            # A prompt is followed by silence. More data already buffered
            # means an output line merely began with the prompt text.
            if child.buffer:
                parts.append(child.after)
                continue
            break
        return _strip_echo(_normalize("".join(parts)), line), i

    def python(self, code, timeout=None, *, check=True, allow_oops=False):
        """Run Python source in the guest's `python` REPL (k = the kernel,
        hw = the machine) and return what it printed; a lone expression
        prints its repr. The REPL is entered and left around each call.

        Raises GuestPythonError if the last output line is an exception
        report ('SomeError: ...') and check is set; GuestOops as run()."""
        self._require_console()
        banner, i = self._exchange("python", (_REPL_PROMPT, _PROMPT_AFTER_LINE), timeout)
        if i != 0:
            raise GuestError("%s: `python` did not start a REPL:\n%s"
                             % (self.name, banner), cmd="python", output=banner,
                             log_path=self.log_path)
        outs = []
        try:
            if "\n" not in code.strip() and len(code) < _REPL_LINE_MAX:
                outs.append(self._exchange(code.strip(), (_REPL_PROMPT,), timeout)[0])
            else:
                # one line per chunk; repr() grows a chunk at most 4 times
                step = _REPL_LINE_MAX // 4
                self._exchange("_kpy_src = ''", (_REPL_PROMPT,), timeout)
                for n in range(0, len(code), step):
                    piece = repr(code[n:n + step])
                    self._exchange("_kpy_src += " + piece, (_REPL_PROMPT,), timeout)
                outs.append(self._exchange("exec(_kpy_src)", (_REPL_PROMPT,), timeout)[0])
        finally:
            if not self.broken and self.alive:
                self._exchange("exit()", (_PROMPT_AFTER_LINE,), timeout)
        out = "\n".join(o for o in outs if o)
        self.last_output = out
        lines = out.split("\n")
        if not allow_oops and any(l.startswith("oops:") for l in lines):
            raise GuestOops("%s: python: oops\n%s" % (self.name, out), cmd=code,
                            output=out, log_path=self.log_path)
        if check and lines and _PY_EXC_RE.match(lines[-1]):
            raise GuestPythonError("%s: python: %s" % (self.name, lines[-1]),
                                   cmd=code, output=out, line=lines[-1],
                                   log_path=self.log_path)
        return out

    def run(self, cmd, timeout=None, *, check=True, allow_oops=False):
        """Run a console command and return its output (see run_raw).

        Raises GuestOops if an `oops:` line appears (unless allow_oops),
        GuestError if a line begins with `error:` (unless check=False),
        GuestTimeout / GuestDied if the prompt does not come back."""
        out = self.run_raw(cmd, timeout)
        lines = out.split("\n")
        err = next((l for l in lines if l.startswith("error:")), None)
        if not allow_oops and any(l.startswith("oops:") for l in lines):
            raise GuestOops("%s: %r: oops\n%s" % (self.name, cmd, out),
                            cmd=cmd, output=out, line=err, log_path=self.log_path)
        if check and err is not None:
            raise GuestError("%s: %r: %s" % (self.name, cmd, err), cmd=cmd,
                             output=out, line=err, log_path=self.log_path)
        return out

    def run_background(self, cmd, until, timeout=300):
        """`run CMD &` at kpy#, for a program that prints: its pid. Its lines
        follow the console's prompt (as a background job's do on Linux), so
        the prompt cannot be told from them: wait for its line matching
        `until` (a regex, `{pid}` replaced by its pid; its last line), then
        for a fresh prompt."""
        self._require_console()
        self.send_line("run %s &" % cmd)
        self.child.expect(r"\[(\d+)\]\r*\n", timeout=60)
        pid = int(self.child.match.group(1))
        self.child.expect(until.replace("{pid}", str(pid)), timeout=timeout)
        if self.run("echo synced") != "synced":
            raise GuestError("%s: no fresh prompt after %r" % (self.name, cmd), cmd=cmd,
                             output=self.last_output, line=None, log_path=self.log_path)
        return pid

    def run_expect_error(self, cmd, timeout=None, *, allow_oops=False):
        """Run a command that must fail; return its `error:` line."""
        out = self.run(cmd, timeout, check=False, allow_oops=allow_oops)
        errs = [l for l in out.split("\n") if l.startswith("error:")]
        if len(errs) != 1:
            raise AssertionError("%r: expected exactly one error line, got %d:\n%s"
                                 % (cmd, len(errs), out))
        return errs[0]

    def run_expect_oops(self, cmd, timeout=None):
        """Run a command that must oops; return the output from the `oops:`
        line on (the oops block and whatever follows)."""
        out = self.run(cmd, timeout, check=False, allow_oops=True)
        lines = out.split("\n")
        for i, l in enumerate(lines):
            if l.startswith("oops:"):
                return "\n".join(lines[i:])
        raise AssertionError("%r: expected an oops, got:\n%s" % (cmd, out))

    # -- logs ------------------------------------------------------------------
    def log_size(self):
        if self._log is not None and not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_text(self, start=0):
        self.log_size()
        try:
            data = self.log_path.read_bytes()[start:]
        except OSError:
            return ""
        return _normalize(data.decode("utf-8", "replace"))

    def log_tail(self, lines=40):
        return _tail(self.log_text(), lines)

    # -- QMP -------------------------------------------------------------------
    @property
    def qmp(self):
        """The connected qemu.qmp.legacy.QEMUMonitorProtocol."""
        if self.backend != "qemu":
            raise GuestError("%s: the %s backend has no QMP" % (self.name, self.backend))
        if self._qmp is None:
            from qemu.qmp.legacy import QEMUMonitorProtocol
            deadline = time.monotonic() + 15.0
            while True:
                if not self.alive:
                    raise GuestDied("%s: QEMU is not running" % self.name,
                                    log_path=self.log_path)
                q = QEMUMonitorProtocol(self.qmp_path)
                try:
                    q.connect()
                    break
                except Exception:
                    _quiet_close(q)
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            q.settimeout(60.0)
            self._qmp = q
        return self._qmp

    def _close_qmp(self):
        if self._qmp is not None:
            _quiet_close(self._qmp)
            self._qmp = None

    def qmp_cmd(self, name, **args):
        """Execute a QMP command; returns its 'return' value. QMP argument
        names with hyphens need **{"a-b": v}."""
        return self.qmp.cmd(name, **args)

    def hmp(self, command_line):
        """Run a human-monitor command (e.g. 'info tlb', 'xp /4gx 0x1000')."""
        return self.qmp.cmd("human-monitor-command", **{"command-line": command_line})

    def registers(self):
        """CPU 0's registers from HMP `info registers`: a Registers dict with
        at least cr0 cr2 cr3 cr4 rip rsp efer (as attributes too)."""
        return parse_registers(self.hmp("info registers"))

    def pause(self):
        self.qmp_cmd("stop")

    def resume(self):
        self.qmp_cmd("cont")

    @contextmanager
    def paused(self):
        """Stop the vCPU for a consistent view (registers, memory)."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def read_phys(self, pa, n):
        """n bytes of guest-physical memory at pa (one QMP pmemsave)."""
        if n <= 0:
            return b""
        fd, path = tempfile.mkstemp(prefix="pmem-", dir=self._sock_dir)
        os.close(fd)
        try:
            self.qmp_cmd("pmemsave", val=pa, size=n, filename=path)
            with open(path, "rb") as f:
                data = f.read()
        finally:
            os.unlink(path)
        if len(data) != n:
            raise GuestError("%s: pmemsave %#x+%#x returned %d bytes"
                             % (self.name, pa, n, len(data)))
        return data

    def read_u64(self, pa):
        return int.from_bytes(self.read_phys(pa, 8), "little")

    def phys_reader(self, chunk=64 << 10):
        """A caching read_phys(pa, n) callable (see PhysCache)."""
        return PhysCache(self, chunk)

    def walker(self, cr3=None):
        """A PageWalker over the guest's current CR3 (or `cr3`), reading
        physical memory through a fresh PhysCache. NX is honoured if
        EFER.NXE is set."""
        from kernel_py.arch.x86.cpu import EFER_NXE
        from .walker import PageWalker
        regs = self.registers()
        if cr3 is None:
            cr3 = regs.cr3
        return PageWalker(cr3, self.phys_reader(), nxe=bool(regs.get("EFER", 0) & EFER_NXE))

    # -- ending ----------------------------------------------------------------
    def poweroff(self, status=None, timeout=30.0):
        """Type `poweroff [status]`; wait for QEMU to exit; return the guest's
        exit status (None if QEMU exited other than by isa-debug-exit)."""
        self._require_console()
        self._close_qmp()
        self.send_line("poweroff" if status is None else "poweroff %d" % status)
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            self.broken = True
            raise GuestTimeout("%s: still running %.0fs after poweroff\n%s"
                               % (self.name, timeout, self._diagnostics()),
                               cmd="poweroff", log_path=self.log_path) from None
        self._reap()
        return self.exit_status

    def shutdown(self, timeout=30.0):
        """End the guest however works: poweroff, else QMP quit, else kill.
        Returns the guest's exit status (None unless it powered off)."""
        if self.alive and not self.broken:
            try:
                return self.poweroff(timeout=timeout)
            except GuestError:
                pass
        if self.alive and self.backend == "qemu":
            try:
                self.qmp_cmd("quit")
                self.child.expect(pexpect.EOF, timeout=10)
            except Exception:
                pass
        self.kill()
        return self.exit_status

    def kill(self):
        """Stop QEMU at once (SIGHUP/SIGINT, then SIGKILL)."""
        self._close_qmp()
        if self.child is not None and self.exit_code is None:
            try:
                self.child.terminate(force=True)
            except Exception:
                pass
            self._reap()

    def close(self):
        """Kill if still running; remove the temporary files (the serial log
        too, unless keep_log or log_dir was given)."""
        self.kill()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self._sock_dir, ignore_errors=True)
        if self._own_log_dir and not self.keep_log:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.keep_log = True
        self.close()

    def __repr__(self):
        return "<Guest %s %s mem=%s cmdline=%r %s>" % (
            self.name, self.accel, self.mem, self.cmdline,
            "alive" if self.alive else "exit=%s" % self.exit_code)


def _normalize(text):
    return text.replace("\r\n", "\n").replace("\r", "")


def _strip_echo(text, cmd):
    """Drop the echoed command line (the first line ending with cmd; guest
    output is never printed before the echo)."""
    first, sep, rest = text.partition("\n")
    if first.endswith(cmd):
        return rest
    # tolerate stray output before the echo (e.g. a late message)
    lines = text.split("\n")
    for i, l in enumerate(lines[:20]):
        if l.endswith(cmd) and cmd:
            return "\n".join(lines[i + 1:])
    return text


def _tail(text, n):
    return "\n".join(text.split("\n")[-n:])


def _quiet_close(q):
    try:
        q.close()
    except Exception:
        pass
