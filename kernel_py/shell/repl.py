# `python`: a small read-eval-print loop on the console, with the kernel (k)
# and the hw seam (hw) in scope. Single expressions print their value.

from kernel_py.shell.console import readline


def run(k):
    scope = {"k": k, "hw": k.hw}
    print("MicroPython REPL: k is the kernel, hw the machine; exit() or Ctrl-D to leave")
    while True:
        line = readline(">>> ")
        if line is None or line.strip() in ("exit()", "quit()"):
            return
        source = line
        if line.rstrip().endswith(":"):
            source = read_block(line)
        run_source(source, scope)


def read_block(first):
    lines = [first]
    while True:
        more = readline("... ")
        if not more:
            return "\n".join(lines)
        lines.append(more)


def run_source(source, scope):
    try:
        try:
            code = compile(source, "<console>", "eval")
        except SyntaxError:
            exec(compile(source, "<console>", "exec"), scope)
            return
        value = eval(code, scope)
        if value is not None:
            print(repr(value))
    except Exception as exc:  # noqa: BLE001 - the REPL reports and goes on
        print("%s: %s" % (type(exc).__name__, exc))
