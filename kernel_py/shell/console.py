# The serial console loop: read a line with echo and simple editing, run it,
# print the output and the prompt. Guest only (the host drives Shell.execute).

import sys

from kernel_py.shell.shell import PROMPT, MAX_LINE

BACKSPACE = ("\x08", "\x7f")
CTRL_C = "\x03"
CTRL_D = "\x04"


def readline(prompt):
    """One line from the UART, echoed; None on Ctrl-D at an empty line."""
    write = sys.stdout.write
    write(prompt)
    buf = []
    while True:
        ch = sys.stdin.read(1)
        if ch == "\r" or ch == "\n":
            write("\n")
            return "".join(buf)
        if ch in BACKSPACE:
            if buf:
                buf.pop()
                write("\x08 \x08")
        elif ch == CTRL_C:
            write("^C\n")
            return ""
        elif ch == CTRL_D and not buf:
            return None
        elif len(buf) <= MAX_LINE and (ch >= " " or ch == "\t"):
            buf.append(ch)
            write(ch)
        elif len(buf) > MAX_LINE:
            buf.append(ch)      # keep counting; the shell rejects it whole


def run(shell):
    while True:
        line = readline(PROMPT)
        if line is None:
            continue
        out = shell.execute(line)
        if out:
            print(out)
