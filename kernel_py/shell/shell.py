# Parses a console line and runs it: ";" separates commands, "> path" and
# ">> path" redirect a command's output into a pseudo-file (how
# `echo 3 > /proc/sys/vm/drop_caches` works) or into a file under a mount
# point (`echo text > /mnt/f`, through the page cache; `>>` appends). Every failure becomes exactly
# one "error: ..." line; the kernel keeps running.

from kernel_py.lib.errors import KernelError
from kernel_py.shell import registry
from kernel_py.shell.cmd_fs import write_text

PROMPT = "kpy# "
MAX_LINE = 4096


def decode_line(raw):
    """A console line's bytes as text; KernelError if they are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except (UnicodeError, ValueError):
        raise KernelError("EILSEQ", "the line is not valid UTF-8")


def split_words(text):
    """Whitespace split with '...' and "..." quoting."""
    words, cur, quote, have = [], [], None, False
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur.append(ch)
        elif ch == "'" or ch == '"':
            quote, have = ch, True
        elif ch in " \t":
            if cur or have:
                words.append("".join(cur))
                cur, have = [], False
        else:
            cur.append(ch)
    if quote:
        raise KernelError("EINVAL", "unterminated quote")
    if cur or have:
        words.append("".join(cur))
    return words


def split_commands(line):
    parts, cur, quote = [], [], None
    for ch in line:
        if quote:
            if ch == quote:
                quote = None
        elif ch == "'" or ch == '"':
            quote = ch
        elif ch == ";":
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def resolve(path):
    """(read, write) for a pseudo-file path; pid files bind their pid."""
    if path in registry.FILES:
        return registry.FILES[path]
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "" and parts[1] == "proc":
        entry = registry.PID_FILES.get(parts[3])
        if entry and parts[2].isdigit():
            return bind(entry[0], entry[1], int(parts[2]))
    for prefix, suffix, read, write, _names in registry.PATTERN_FILES:
        name = path[len(prefix):len(path) - len(suffix)]
        if path.startswith(prefix) and path.endswith(suffix) and name and "/" not in name:
            return bind(read, write, name)
    raise KernelError("ENOENT", path)


def bind(read, write, arg):
    """(read(k), write(k, text)) of a file whose functions also take arg."""
    bound_write = None
    if write:
        bound_write = lambda k, text: write(k, arg, text)
    return (lambda k: read(k, arg)), bound_write


def error_line(exc, fault_type=None):
    if isinstance(exc, KernelError):
        return exc.line()
    if fault_type is not None and isinstance(exc, fault_type):
        vector, code, addr, rip = exc.args
        return "error: EFAULT: CPU exception %d (error code 0x%x) at address 0x%x, rip 0x%x" % (
            vector, code, addr, rip)
    if isinstance(exc, MemoryError):
        return "error: ENOMEM: python heap exhausted"
    if isinstance(exc, (ValueError, IndexError, KeyError, TypeError)):
        return "error: EINVAL: %s: %s" % (type(exc).__name__, exc)
    return "error: EIO: %s: %s" % (type(exc).__name__, exc)


class Shell:
    def __init__(self, kernel):
        self.kernel = kernel

    def execute(self, line):
        """Run one console line (str, or the console's raw bytes); returns
        its output text ("" if none)."""
        out = []
        try:
            if len(line) > MAX_LINE:
                raise KernelError("E2BIG", "line longer than %d characters" % MAX_LINE)
            if isinstance(line, bytes):
                line = decode_line(line)
            for part in split_commands(line):
                text = self.run_one(part)
                if text:
                    out.append(text)
        except Exception as exc:  # noqa: BLE001 - the console must survive anything
            self.kernel.note_exception(exc)
            out.append(error_line(exc, self.kernel.hw.Fault))
        self.idle()
        return "\n".join(out)

    def idle(self):
        """Between commands: the kernel's background work (kswapd)."""
        try:
            self.kernel.background()
        except Exception as exc:  # noqa: BLE001
            self.kernel.note_exception(exc)
            self.kernel.printk("kswapd: %s: %s" % (type(exc).__name__, exc))

    def run_one(self, text):
        words = split_words(text)
        if not words:
            return ""
        target, append = None, False
        for i in range(len(words)):
            if words[i] in (">", ">>"):
                if i != len(words) - 2:
                    raise KernelError("EINVAL", "redirection needs one file")
                target, append = words[i + 1], words[i] == ">>"
                words = words[:i]
                break
        if not words:
            raise KernelError("EINVAL", "redirection without a command")
        output = self.dispatch(words)
        if target is None:
            return output
        k = self.kernel
        if target not in registry.FILES and k.vfs is not None and k.vfs.owns(target):
            write_text(k, target, output or "", append)       # a file on a mounted FS
            return ""
        write = resolve(target)[1]
        if write is None:
            raise KernelError("EACCES", "%s is read-only" % target)
        write(k, output or "")
        return ""

    def dispatch(self, words):
        entry = registry.lookup(words[0], words[1:])
        if entry is None:
            raise KernelError("ENOENT", "unknown command %r (try help)" % words[0])
        k = self.kernel
        k.comm = words[0]           # the allocation site page_owner records
        k.command = (words[0], getattr(entry[0], "__name__", words[0]))     # kmemleak's
        try:
            return entry[0](k, words[1:])
        finally:
            k.comm = "kernel"
            k.command = None
