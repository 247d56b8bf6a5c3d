"""The exception every hw accessor raises, and the oops text printed first.

`Fault.args == (vector, error_code, address, rip)` exactly as docs/hw.md
says; the named properties are conveniences for tests.
"""

from kernel_py.arch.x86.cpu import (
    EXCEPTION_NAMES, PF_INSTR, PF_PROT, PF_RSVD, PF_USER, PF_WRITE, VEC_PF,
)


class Fault(Exception):
    """A CPU exception that reached the caller of an accessor (an oops)."""

    def __init__(self, vector, error_code, address, rip):
        super().__init__(vector, error_code, address, rip)

    @property
    def vector(self):
        return self.args[0]

    @property
    def error_code(self):
        return self.args[1]

    @property
    def address(self):
        return self.args[2]

    @property
    def rip(self):
        return self.args[3]

    def __str__(self):
        v, err, addr, rip = self.args
        name = EXCEPTION_NAMES[v] if 0 <= v < len(EXCEPTION_NAMES) else "#%d" % v
        return "%s error_code=0x%x address=0x%x rip=0x%x" % (name, err, addr, rip)


def describe_pf(err):
    """Linux's two '#PF:' lines (arch/x86/mm/fault.c: show_fault_oops)."""
    who = "user" if err & PF_USER else "supervisor"
    if err & PF_INSTR:
        what = "instruction fetch"
    elif err & PF_WRITE:
        what = "write access"
    else:
        what = "read access"
    mode = "user" if err & PF_USER else "kernel"
    if err & PF_RSVD:
        why = "reserved bit violation"
    elif err & PF_PROT:
        why = "permissions violation"
    else:
        why = "not-present page"
    return ("#PF: %s %s in %s mode" % (who, what, mode),
            "#PF: error_code(0x%04x) - %s" % (err, why))


def oops_text(fault, count, why=""):
    """The oops report for `fault` (the count-th oops of this machine)."""
    v, err, addr, rip = fault.args
    lines = []
    if v == VEC_PF:
        lines.append("BUG: unable to handle page fault for address: %016x" % addr)
        lines.extend(describe_pf(err))
    else:
        lines.append("%s: error_code(0x%04x)" % (EXCEPTION_NAMES[v], err))
    if why:
        lines.append("reason: " + why)
    lines.append("Oops: %04x [#%d]" % (err, count))
    lines.append("RIP: 0010:%016x" % rip)
    return "\n".join(lines) + "\n"
