"""Host ptdump: the guest's page tables read from its physical memory over
QMP, walked by kpyqemu.walker (never trusting the guest's own report), and
printed through the guest's formatter (kernel_py.arch.x86.ptdump.format_ptdump), so
host and guest dumps of the same tables are the same text.

    from kpyqemu.ptdump import entries, dump, check_wx
    w = guest.walker()                       # or PageWalker(cr3, read_phys)
    print(dump(w, start=KERNEL_SPACE))       # Linux's ptdump text
    bad = check_wx(entries(w))               # CONFIG_DEBUG_WX-style findings

Filters (`dump(..., flags=..., user=..., wx=...)`, or the command line of
tools/ptdump) keep only the leaves that match; runs are then coalesced as in
the guest, so a filtered dump is the unfiltered one with lines removed
(a run that only partly matches is printed for its matching part).

The command line (`kpy-ptdump`, or tools/ptdump) connects to a running
guest's QMP socket (`-qmp unix:PATH,server=on,wait=off`; `make qemu` opens
build/qmp.sock), or boots one itself with --boot.
"""

import argparse
import os
import sys
import tempfile
import time

from kernel_py.arch.x86 import ptdump as kptdump
from kernel_py.arch.x86.ptdump import KERNEL_SPACE, SHOWN, format_ptdump
from kernel_py.arch.x86.cpu import (
    EFER_NXE, PAGE_SIZE, PTE_ADDR_MASK, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PCD,
    _PAGE_PSE, _PAGE_PWT, _PAGE_RW, _PAGE_USER,
)

from .walker import PageWalker

M64 = (1 << 64) - 1
DEFAULT_QMP = os.path.join("build", "qmp.sock")

# Filter words: name -> (mask, wanted value). 'x' and 'ro' are the columns
# ptdump prints for the absence of NX and RW; 'KERNEL' is the absence of USR.
FLAG_WORDS = {
    "USR": (_PAGE_USER, _PAGE_USER), "USER": (_PAGE_USER, _PAGE_USER),
    "KERNEL": (_PAGE_USER, 0), "SUP": (_PAGE_USER, 0),
    "RW": (_PAGE_RW, _PAGE_RW), "W": (_PAGE_RW, _PAGE_RW),
    "RO": (_PAGE_RW, 0),
    "NX": (_PAGE_NX, _PAGE_NX),
    "X": (_PAGE_NX, 0), "EXEC": (_PAGE_NX, 0),
    "GLB": (_PAGE_GLOBAL, _PAGE_GLOBAL), "GLOBAL": (_PAGE_GLOBAL, _PAGE_GLOBAL),
    "PWT": (_PAGE_PWT, _PAGE_PWT), "PCD": (_PAGE_PCD, _PAGE_PCD),
}
# size words match the level: 4K/pte, 2M/pmd, 1G/pud
SIZE_WORDS = {"4K": 1, "PTE": 1, "2M": 2, "PMD": 2, "1G": 3, "PUD": 3}


# -- walking -------------------------------------------------------------------
def entries(walker, start=0, end=1 << 64):
    """Present leaves within [start, end) as kernel_py.arch.x86.ptdump entries
    (va, size, flags, level), va ascending: the form the guest's own walk
    produces, so both go through one formatter. Flags are the effective
    rights (RW and USR AND-ed over the levels, NX OR-ed) and the leaf's
    PWT/PCD/GLB, PSE on a huge leaf, and bit 7 (PAT) of a 4 KiB leaf.
    Accessed and dirty (set by the CPU as it goes) are dropped: ptdump does
    not print them."""
    out = []
    for m in walker.mappings(start, end):
        flags = m.flags & ~_PAGE_PSE
        if m.level > 1 or m.entry & _PAGE_PSE:
            flags |= _PAGE_PSE
        out.append((m.va, m.size, flags & SHOWN, m.level))
    return out


def parse_flags(text):
    """'RW,NX' / 'x,!USR' / 'ro 2M' -> [(mask, value, level or None)].
    A leading '!' or '-' negates a word."""
    preds = []
    for word in text.replace(",", " ").replace("+", " ").split():
        neg = word[0] in "!-~"
        w = word.lstrip("!-~").upper()
        if w in FLAG_WORDS:
            mask, val = FLAG_WORDS[w]
            preds.append((mask, val ^ mask if neg else val, None, neg))
        elif w in SIZE_WORDS:
            preds.append((0, 0, SIZE_WORDS[w], neg))
        else:
            raise ValueError("unknown flag %r (known: %s)" % (
                word, ", ".join(sorted(list(FLAG_WORDS) + list(SIZE_WORDS)))))
    return preds


def matches(entry, preds):
    _va, _size, flags, level = entry
    for mask, val, lvl, neg in preds:
        if lvl is not None:
            if (level == lvl) == neg:
                return False
        elif flags & mask != val:
            return False
    return True


def select(ents, flags=None, user=False, wx=False):
    """The entries that match every filter given."""
    preds = parse_flags(flags) if isinstance(flags, str) else list(flags or ())
    if user:
        preds.append((_PAGE_USER, _PAGE_USER, None, False))
    if wx:
        preds += [(_PAGE_RW, _PAGE_RW, None, False), (_PAGE_NX, 0, None, False)]
    if not preds:
        return list(ents)
    return [e for e in ents if matches(e, preds)]


def dump(walker, start=0, end=1 << 64, flags=None, user=False, wx=False):
    """ptdump text of the tables under walker.cr3 within [start, end)."""
    ents = select(entries(walker, start, end), flags, user, wx)
    return format_ptdump(ents, start=start, end=end)


# -- CONFIG_DEBUG_WX ---------------------------------------------------------------
class WXReport:
    """What a W+X check found: `.wx` and `.user_kernel` are runs
    (start, end, flags, level); `.ok` if both are empty; `.lines` the
    report, worded like Linux's ptdump_check_wx()."""

    def __init__(self, ents):
        self.wx = kptdump.wx_violations(ents)
        self.user_kernel = kptdump.user_kernel_violations(ents)
        self.lines = []
        for s, e, f, lvl in self.wx:
            self.lines.append("x86/mm: Found insecure W+X mapping at address 0x%016x-0x%016x (%s)"
                              % (s, e & M64, kptdump.size_text(e - s).strip()))
        for s, e, f, lvl in self.user_kernel:
            self.lines.append("x86/mm: Found user-accessible kernel mapping at address "
                              "0x%016x-0x%016x (%s)" % (s, e & M64, kptdump.size_text(e - s).strip()))
        nwx = sum(e - s for s, e, f, lvl in self.wx) // PAGE_SIZE
        nuk = sum(e - s for s, e, f, lvl in self.user_kernel) // PAGE_SIZE
        if nwx:
            self.lines.append("x86/mm: Checked W+X mappings: FAILED, %d W+X pages found." % nwx)
        else:
            self.lines.append("x86/mm: Checked W+X mappings: passed, no W+X pages found.")
        if nuk:
            self.lines.append("x86/mm: Checked user-accessible kernel mappings: FAILED, "
                              "%d pages found." % nuk)
        else:
            self.lines.append("x86/mm: Checked user-accessible kernel mappings: passed, "
                              "no user-accessible kernel pages found.")

    @property
    def ok(self):
        return not self.wx and not self.user_kernel

    def __str__(self):
        return "\n".join(self.lines)


def check_wx(ents):
    return WXReport(ents)


# -- a running guest over QMP ------------------------------------------------------
class QMPMachine:
    """registers() and read_phys() of a QEMU started elsewhere, over its QMP
    unix socket (the same calls a kpyqemu Guest offers)."""

    def __init__(self, path, timeout=30.0):
        from qemu.qmp.legacy import QEMUMonitorProtocol
        self.path = path
        self._dir = tempfile.mkdtemp(prefix="kpy-ptdump-")
        self.qmp = QEMUMonitorProtocol(path)
        self.qmp.connect()
        self.qmp.settimeout(timeout)

    def qmp_cmd(self, name, **args):
        return self.qmp.cmd(name, **args)

    cmd = qmp_cmd

    def pause(self):
        self.qmp_cmd("stop")

    def resume(self):
        self.qmp_cmd("cont")

    def registers(self):
        from .guest import parse_registers
        return parse_registers(self.cmd("human-monitor-command",
                                        **{"command-line": "info registers"}))

    def read_phys(self, pa, n):
        path = os.path.join(self._dir, "pmem")
        try:
            self.cmd("pmemsave", val=pa, size=n, filename=path)
            with open(path, "rb") as f:
                data = f.read()
        finally:
            if os.path.exists(path):
                os.unlink(path)
        if len(data) != n:
            raise IOError("pmemsave %#x+%#x returned %d bytes" % (pa, n, len(data)))
        return data

    def close(self):
        try:
            self.qmp.close()
        except Exception:
            pass
        try:
            os.rmdir(self._dir)
        except OSError:
            pass


def machine_walker(machine, cr3=None):
    """A PageWalker over `machine` (a kpyqemu Guest or a QMPMachine): its CR3
    register or `cr3`, NX honoured if EFER.NXE is set. Physical memory is
    read in 64 KiB chunks, each once."""
    from .guest import PhysCache
    regs = machine.registers()
    if cr3 is None:
        cr3 = regs.cr3
    return PageWalker(cr3 & PTE_ADDR_MASK, PhysCache(machine),
                      nxe=bool(regs.get("EFER", 0) & EFER_NXE))


def snapshot(machine, cr3=None, start=0, end=1 << 64, pause=True):
    """(walker, entries) read with the vCPU stopped (if it was running and
    `pause`), so the tables cannot change under the walk."""
    was_running = pause and _running(machine)
    if was_running:
        machine.pause()
    try:
        w = machine_walker(machine, cr3)
        ents = entries(w, start, end)
    finally:
        if was_running:
            machine.resume()
    return w, ents


def _running(machine):
    try:
        return bool(machine.qmp_cmd("query-status").get("running"))
    except Exception:
        return False


# -- command line ----------------------------------------------------------------
GUEST_FILE = "/sys/kernel/debug/page_tables/kernel"


def parse_addr(text):
    return int(text, 0) & M64


def build_parser():
    p = argparse.ArgumentParser(
        description="Dump a kernel_py guest's page tables in Linux's ptdump format, "
                    "walked from guest physical memory over QMP; check for W+X and "
                    "user-accessible kernel mappings (CONFIG_DEBUG_WX).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--qmp", metavar="SOCKET",
                     help="QMP unix socket of a running guest (default $KPY_QMP, else %s)"
                          % DEFAULT_QMP)
    src.add_argument("--boot", action="store_true",
                     help="boot a guest with kpyqemu, dump, power it off")
    p.add_argument("--mem", default="256M", help="guest RAM for --boot (default 256M)")
    p.add_argument("--cmdline", default="", help="kernel command line for --boot")
    p.add_argument("--accel", default=None, help="kvm|tcg for --boot (default: probe)")
    p.add_argument("--cr3", type=parse_addr, help="walk these tables instead of CR3's")
    p.add_argument("--start", type=parse_addr, default=0, help="first virtual address")
    p.add_argument("--end", type=parse_addr, default=None,
                   help="end virtual address (exclusive; default the top)")
    p.add_argument("--kernel", action="store_true", help="only the kernel half (as --start 0x%x)"
                   % KERNEL_SPACE)
    p.add_argument("--flags", help="keep leaves with all these flags, e.g. RW,NX or x,!USR or 2M "
                                   "(words: USR RW ro NX x GLB PWT PCD KERNEL 4K 2M 1G; ! negates)")
    p.add_argument("--user", action="store_true", help="keep user-accessible leaves only")
    p.add_argument("--wx", action="store_true", help="keep writable+executable leaves only")
    p.add_argument("--check-wx", action="store_true",
                   help="after the dump, report W+X and user-accessible kernel mappings; "
                        "exit status 1 if any")
    p.add_argument("--check-only", action="store_true", help="the check alone, no dump")
    p.add_argument("--compare", action="store_true",
                   help="also cat %s in the guest (--boot only) and diff; exit 2 if they differ"
                        % GUEST_FILE)
    p.add_argument("--no-pause", action="store_true", help="walk without stopping the vCPU")
    return p


def run(machine, args, out=sys.stdout, guest=None):
    """Dump (and check) per the parsed args; returns the exit status."""
    start = KERNEL_SPACE if args.kernel and args.start == 0 else args.start
    end = (1 << 64) if args.end is None else args.end
    if end <= start:
        raise SystemExit("ptdump: --end must be above --start")
    _, ents = snapshot(machine, args.cr3, start, end, pause=not args.no_pause)
    status = 0
    if not args.check_only:
        text = format_ptdump(select(ents, args.flags, args.user, args.wx),
                             start=start, end=end)
        out.write(text + "\n")
    if args.check_wx or args.check_only:
        report = check_wx(ents)
        out.write(str(report) + "\n")
        if not report.ok:
            status = 1
    if args.compare:
        if guest is None:
            raise SystemExit("ptdump: --compare needs --boot")
        mine = format_ptdump(entries(machine_walker(guest, args.cr3)))
        theirs = guest.run("cat " + GUEST_FILE, timeout=300)
        if mine == theirs:
            out.write("ptdump: host walk equals the guest's %s\n" % GUEST_FILE)
        else:
            import difflib
            out.write("ptdump: host walk differs from the guest's %s:\n" % GUEST_FILE)
            out.writelines(l + "\n" for l in difflib.unified_diff(
                theirs.split("\n"), mine.split("\n"), "guest", "host", lineterm=""))
            status = status or 2
    return status


def main(argv=None):
    """The command line (kpy-ptdump, tools/ptdump); returns the exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:          # `kpy-ptdump ... | head`: quietly done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv):
    args = build_parser().parse_args(argv)
    try:
        parse_flags(args.flags or "")
    except ValueError as e:
        raise SystemExit("ptdump: %s" % e)
    if args.boot:
        from .guest import Guest
        t0 = time.monotonic()
        with Guest(mem=args.mem, cmdline=args.cmdline, accel=args.accel) as g:
            sys.stderr.flush()
            sys.stderr.write("ptdump: booted %s guest (%s) in %.2fs\n"
                             % (g.mem, g.accel, time.monotonic() - t0))
            status = run(g, args, guest=g)
            g.poweroff()
        return status
    path = args.qmp or os.environ.get("KPY_QMP") or DEFAULT_QMP
    if not os.path.exists(path):
        raise SystemExit("ptdump: no QMP socket at %s (start QEMU with -qmp "
                         "unix:%s,server=on,wait=off, e.g. `make qemu`, or use --boot)"
                         % (path, path))
    m = QMPMachine(path)
    try:
        return run(m, args)
    finally:
        m.close()


if __name__ == "__main__":
    sys.exit(main())
