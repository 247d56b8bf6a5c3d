"""A stand-in for the guest's serial console, for testing the harness itself.

Run by `Guest(backend="fake")` in place of QEMU: it speaks on stdio like the
real console (banner, `kpy# ` prompt, echo, "\\r\\n" line ends, `error:`
lines, oops blocks, poweroff with an exit status). It has no QMP.

Commands: echo ARGS | cat /proc/cmdline | cat /proc/meminfo (its first
lines, in Linux's format, sized from --mem) | lines N | sleep SECONDS |
oops | hang | crash | python (a REPL) | poweroff [STATUS]; anything else
is an error.
"""

import os
import sys
import time

PROMPT = b"kpy# "


def out(text):
    os.write(1, text.replace("\n", "\r\n").encode())


def readline(prompt):
    """A line with echo, like the guest's console.readline; None on Ctrl-D."""
    os.write(1, prompt)
    line = b""
    while True:
        ch = os.read(0, 1)
        if not ch or (ch == b"\x04" and not line):
            return None
        if ch in (b"\r", b"\n"):
            os.write(1, b"\r\n")
            return line.decode()
        if ch in (b"\x7f", b"\x08"):
            if line:
                line = line[:-1]
                os.write(1, b"\b \b")
        else:
            line += ch
            os.write(1, ch)


def repl():
    """`python`: the guest REPL's behaviour (expressions print their repr,
    exceptions print 'Type: message', exit() leaves)."""
    scope = {}
    out("fake REPL; exit() to leave\n")
    while True:
        line = readline(b">>> ")
        if line is None or line.strip() in ("exit()", "quit()"):
            return
        try:
            try:
                code = compile(line, "<console>", "eval")
            except SyntaxError:
                exec(compile(line, "<console>", "exec"), scope)
                continue
            value = eval(code, scope)
            if value is not None:
                out(repr(value) + "\n")
        except Exception as exc:
            out("%s: %s\n" % (type(exc).__name__, exc))


def main(argv):
    mem, cmdline, delay = "256M", "", 0.0
    i = 0
    while i < len(argv):
        if argv[i] == "--mem":
            mem = argv[i + 1]
        elif argv[i] == "--cmdline":
            cmdline = argv[i + 1]
        elif argv[i] == "--boot-delay":
            delay = float(argv[i + 1])
        i += 2
    if os.isatty(0):
        import tty
        tty.setraw(0)      # like QEMU's stdio chardev: no tty echo, no ONLCR
    time.sleep(delay)
    out("fake kpy: mem=%s cmdline=%r\n" % (mem, cmdline))
    while True:
        line = readline(PROMPT)
        if line is None:
            continue
        status = run(line, cmdline, mem)
        if status is not None:
            return status


def meminfo(mem):
    """The first lines of /proc/meminfo for a guest of `mem` ('256M')."""
    n, unit = (mem[:-1], mem[-1].upper()) if mem[-1:].isalpha() else (mem, "M")
    kb = int(n) << {"K": 0, "M": 10, "G": 20}[unit]
    total = kb - kb // 10          # what the image and the firmware keep
    free = total - 1024
    return "".join("%-16s%8d kB\n" % (name + ":", v) for name, v in (
        ("MemTotal", total), ("MemFree", free), ("MemAvailable", free - 3072)))


def run(line, cmdline, mem="256M"):
    words = line.split()
    if not words:
        return None
    cmd, args = words[0], words[1:]
    if cmd == "echo":
        out(" ".join(args) + "\n")
    elif cmd == "cat" and args == ["/proc/cmdline"]:
        out(cmdline + "\n")
    elif cmd == "cat" and args == ["/proc/meminfo"]:
        out(meminfo(mem))
    elif cmd == "lines":
        out("".join("line %d\n" % n for n in range(int(args[0]))))
    elif cmd == "sleep":
        time.sleep(float(args[0]))
    elif cmd == "oops":
        out("oops: #PF error_code=0x2 cr2=0x0 rip=0xffffffff80001234\n"
            "  rax=0 rbx=0\nerror: EFAULT: page fault\n")
    elif cmd == "python":
        import builtins
        builtins.print = lambda *a, **kw: out(" ".join(map(str, a)) + "\n")
        repl()
    elif cmd == "hang":
        while True:
            time.sleep(1)
    elif cmd == "crash":
        os._exit(0)        # like a triple fault under -no-reboot
    elif cmd == "poweroff":
        status = int(args[0]) if args else 0
        return status * 2 + 1   # isa-debug-exit's encoding
    elif cmd == "cat":
        out("error: ENOENT: %s\n" % (args[0] if args else ""))
    else:
        out("error: ENOENT: %s: command not found\n" % cmd)
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
