# Where console commands and pseudo-files are declared. Subsystems register
# theirs with the decorators below; the shell only looks them up.
#
# A name means one thing whatever the order the command modules are
# imported in: registering a command, a process variant or a file twice is
# an error. A few commands have two meanings told apart by their
# arguments, declared as such with pid_variant(): `write FILE TEXT` and
# `write PID ADDR DATA`, `fill FILE SIZE` and `fill PID ADDR LENGTH BYTE`,
# procps' `free [-m]` and C's `free PID ADDR`; lookup() is the one place
# that chooses.

COMMANDS = {}        # name -> (fn(kernel, args) -> str|None, usage, summary)
PID_VARIANTS = {}    # name -> (fn, usage, summary): `name PID ...`, see pid_variant
FILES = {}           # path -> (read(kernel) -> str, write(kernel, text) or None)
PID_FILES = {}       # name under /proc/<pid>/ -> (read(kernel, pid), write or None)
PATTERN_FILES = []   # (prefix, suffix, read(kernel, name), write(kernel, name, text) or None,
                     #  names(kernel) -> the NAMEs that exist, for ls)


def _add(table, key, value, what):
    if key in table:
        raise ValueError("%s %r is registered twice" % (what, key))
    table[key] = value


def command(name, usage="", summary=""):
    def register(fn):
        _add(COMMANDS, name, (fn, usage, summary), "command")
        return fn
    return register


def pid_variant(name, usage, summary):
    """The process variant of command `name`: it runs when the command has
    at least two arguments and the first is a pid (digits); otherwise the
    command registered with command() does. Without such a command, the
    variant is the command."""
    def register(fn):
        _add(PID_VARIANTS, name, (fn, usage, summary), "process variant of")
        return fn
    return register


def is_pid_call(args):
    return len(args) >= 2 and args[0].isdigit()


def lookup(name, args):
    """(fn, usage, summary) that runs for `name args`, or None."""
    variant = PID_VARIANTS.get(name)
    if variant is not None and (name not in COMMANDS or is_pid_call(args)):
        return variant
    return COMMANDS.get(name)


def names():
    """Every command name, sorted."""
    out = list(COMMANDS)
    for name in PID_VARIANTS:
        if name not in COMMANDS:
            out.append(name)
    return sorted(out)


def help_entry(name):
    """(usage, summary) as help shows them: both meanings of a command
    with a process variant, the plain one first; None if no such command."""
    plain, variant = COMMANDS.get(name), PID_VARIANTS.get(name)
    if plain is None and variant is None:
        return None
    if variant is None:
        return plain[1], plain[2]
    if plain is None:
        return variant[1], variant[2]
    return plain[1] + " | " + variant[1], plain[2] + "; " + variant[2]


def usage_of(name):
    """The usage line of the handler that reports it: a process variant's
    own, else the command's."""
    entry = PID_VARIANTS.get(name) or COMMANDS[name]
    return entry[1]


def pseudo_file(path, write=None):
    """A file such as /proc/meminfo; `write(kernel, text)` makes it writable."""
    def register(read):
        _add(FILES, path, (read, write), "file")
        return read
    return register


def pid_file(name, write=None):
    """A per-process file /proc/<pid>/<name>: read(kernel, pid)."""
    def register(read):
        _add(PID_FILES, name, (read, write), "file /proc/<pid>/")
        return read
    return register


def pattern_file(prefix, suffix, write=None, names=None):
    """Files prefix + NAME + suffix for any NAME without "/", e.g.
    /sys/kernel/debug/slab/<cache>/alloc_traces: read(kernel, name);
    names(kernel) lists the NAMEs that ls shows."""
    def register(read):
        for entry in PATTERN_FILES:
            if entry[0] == prefix and entry[1] == suffix:
                raise ValueError("files %r...%r are registered twice" % (prefix, suffix))
        PATTERN_FILES.append((prefix, suffix, read, write, names))
        return read
    return register
