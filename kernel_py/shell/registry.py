# Where console commands and pseudo-files are declared. Subsystems register
# theirs with the decorators below; the shell only looks them up.

COMMANDS = {}        # name -> (fn(kernel, args) -> str|None, usage, summary)
FILES = {}           # path -> (read(kernel) -> str, write(kernel, text) or None)
PID_FILES = {}       # name under /proc/<pid>/ -> (read(kernel, pid), write or None)
PATTERN_FILES = []   # (prefix, suffix, read(kernel, name), write(kernel, name, text) or None,
                     #  names(kernel) -> the NAMEs that exist, for ls)


def command(name, usage="", summary=""):
    def register(fn):
        COMMANDS[name] = (fn, usage, summary)
        return fn
    return register


def pseudo_file(path, write=None):
    """A file such as /proc/meminfo; `write(kernel, text)` makes it writable."""
    def register(read):
        FILES[path] = (read, write)
        return read
    return register


def pid_file(name, write=None):
    """A per-process file /proc/<pid>/<name>: read(kernel, pid)."""
    def register(read):
        PID_FILES[name] = (read, write)
        return read
    return register


def pattern_file(prefix, suffix, write=None, names=None):
    """Files prefix + NAME + suffix for any NAME without "/", e.g.
    /sys/kernel/debug/slab/<cache>/alloc_traces: read(kernel, name);
    names(kernel) lists the NAMEs that ls shows."""
    def register(read):
        PATTERN_FILES.append((prefix, suffix, read, write, names))
        return read
    return register
