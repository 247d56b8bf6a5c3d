"""Ring 3 on the guest before the kernel has tasks: small user programs,
assembled on the host with GNU as, run through hw.run_user from the guest's
`python` REPL (tests/guest/test_user_mode.py, bench/user.py).

    code = assemble("mov $39, %eax; syscall")
    out = run_user_python(g, code, '''
    r = ut.regs()
    print(ut.run(r), r[RAX])
    ''')

The guest side (GUEST_LIB) spawns a process with the kernel's own process
machinery, maps CODE (RWX, 64 KiB: the programs' bytes, each at a page of
its own, written through the fault handler) and DATA (RW, untouched; 64 KiB
unless data_size says), loads its CR3, and gives the body `ut`:
ut.regs(rip, sp) a fresh register buffer, ut.run(regs[, fpu]) hw.run_user
until an event other than an interrupt (irqs=True: any event; faults=True:
nor a #PF the kernel's handler resolves),
ut.fault(regs) the kernel's #PF handler on the fault in regs.
The process is torn down whatever the body does.
"""

import subprocess
import tempfile
import textwrap
from pathlib import Path

CODE = 0x400000
DATA = 0x600000
STACK = 0x7FFFFFFFF000 - 0x100

GUEST_LIB = """
from kernel_py.arch.x86.ptrace import *
from kernel_py.arch.x86 import pit
CODE = %#x
DATA = %#x
STACK = %#x
M64 = 0xFFFFFFFFFFFFFFFF

class UT:
    def __init__(self, k, codes, data_size):
        self.k = k
        self.hw = k.hw
        self.t = k.procs.spawn("ut")
        mm = self.t.mm
        mm.mmap(CODE, 0x10000, 7, 0x12)          # PROT_RWX, MAP_PRIVATE|MAP_FIXED
        mm.mmap(DATA, data_size, 3, 0x12)        # PROT_READ|PROT_WRITE
        self.old = k.procs.use_mm(self.t)
        for i, code in enumerate(codes):
            self.hw.vwritebytes(CODE + i * 0x1000, code)
        self.fpu = new_fpu(self.hw)

    def regs(self, rip=CODE, sp=STACK):
        r = new_regs()
        r[RIP] = rip
        r[RSP] = sp
        return r

    def run(self, r, fpu=None, irqs=False, faults=False):
        # interrupts (the console's IRQ 4 as the harness types) re-enter,
        # as a kernel would, unless the caller wants to see them; with
        # faults, so does a #PF the kernel's handler resolves
        fpu = self.fpu if fpu is None else fpu
        while True:
            ev = self.hw.run_user(r, fpu)
            if IRQ_VECTOR_BASE <= ev < IRQ_VECTOR_BASE + NR_IRQS and not irqs:
                continue
            if ev == 14 and faults and self.fault(r):
                continue
            return ev

    def fault(self, r):
        return self.k.fault_handler(r[CR2] & M64, r[ERROR], r[RIP])

    def us(self, ticks):
        return ticks * 1000000 // self.k.clock.hz

    def done(self):
        self.k.procs.unuse_mm(self.old)
        self.k.procs.exit(self.t.pid)
""" % (CODE, DATA, STACK)


def assemble(src):
    """Machine code of AT&T-syntax x86-64 source (one .text section)."""
    with tempfile.TemporaryDirectory(prefix="kpy-as-") as d:
        s, o, b = (Path(d) / n for n in ("u.s", "u.o", "u.bin"))
        s.write_text(".text\n.code64\n" + textwrap.dedent(src) + "\n")
        subprocess.run(["as", "--64", "-o", str(o), str(s)], check=True,
                       capture_output=True, text=True)
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(o), str(b)],
                       check=True, capture_output=True, text=True)
        return b.read_bytes()


def run_user_python(g, code, body, data_size=0x10000, **kwargs):
    """Run `body` (Python, with `ut` set up over `code`: bytes at CODE, or a
    list of programs at CODE, CODE + 0x1000...) in the guest's REPL; returns
    what it printed (Guest.python's checks apply)."""
    codes = [code] if isinstance(code, (bytes, bytearray)) else list(code)
    src = (GUEST_LIB + "\nut = UT(k, %r, %#x)\ntry:\n" % ([bytes(c) for c in codes], data_size)
           + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
           + "\nfinally:\n    ut.done()\n")
    return g.python(src, **kwargs)
