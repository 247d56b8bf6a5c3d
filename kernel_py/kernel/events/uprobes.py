# User-space breakpoints (Linux's kernel/events/uprobes.c with
# arch/x86/kernel/uprobes.c): a probe on an instruction of a running
# program, named by a symbol of its ELF .symtab or by address.
#
# Installing (uprobe_write_opcode): the text page is made the process's own
# copy first, as a write fault on a writable private mapping would (Linux:
# get_user_pages with FOLL_FORCE, then __replace_page): a page-cache page is
# copied into a fresh anonymous page (cow_file_page), an anonymous page
# shared with a fork child is copied (wp_page_copy), one only this process
# maps is written in place. The PTE stays read-only (the VMA has no
# VM_WRITE), and int3 (0xCC) goes into the frame through the physical
# address. The file's page-cache page, and every other process running the
# program, never see the breakpoint. Removing a probe writes the original
# byte back into that private copy (Linux swaps the page-cache page back in
# when the copy matches it again; here the private copy stays).
#
# Hitting (handle_swbp): int3 from ring 3 arrives as #BP (vector 3) with RIP
# one past the 0xCC; the probe's handler runs with the task's registers,
# then the displaced instruction is emulated and the task resumes after it.
# Linux emulates push and branches and single-steps everything else in an
# execute-out-of-line slot. Here the instructions found at the entry of
# functions (endbr64, push, mov and test between registers, nop) are
# emulated; any other is single-stepped in place: the original byte goes
# back, the task resumes with TF set, and the #DB (vector 1) after that one
# instruction puts int3 back and clears TF (unless the program had set
# it). In place is safe here because a process has one thread (clone with
# CLONE_THREAD is refused): no other thread can run past the restored byte.
# SYSCALL (its #DB comes after the kernel's return) and int3 itself are
# refused (EOPNOTSUPP).
#
# Return probes (prepare_uretprobe): at the entry hit, the return address
# on the user stack is replaced by the address of a trampoline, an int3 in
# a one-page "[uprobes]" mapping of the process (Linux's XOL area); the
# trampoline's #BP runs the return handler (RAX is the return value) and
# sends the task to the saved return address. Instances whose stack frame is
# gone (longjmp) are dropped when a later one returns.
#
# Lifetime: probes belong to the process's mm. fork: the child's copy of
# every probed page gets the original bytes back (Linux removes breakpoints
# from a child no consumer wants, and a pid-filtered tracer such as memleak
# -p wants only the parent); the child keeps the [uprobes] mapping but no
# probe. exec: the old mm and its probes go with it (the tracer is told).
# exit: the tracer is told first (memleak's summary), then the probes go.

from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PF_USER, PF_WRITE, PTE_ADDR_MASK, X86_EFLAGS_AF, X86_EFLAGS_CF,
    X86_EFLAGS_OF, X86_EFLAGS_PF, X86_EFLAGS_SF, X86_EFLAGS_TF, X86_EFLAGS_ZF, _PAGE_RW,
)
from kernel_py.arch.x86.pgtable import pte_slot
from kernel_py.arch.x86.ptrace import (
    R8, R9, R10, R11, R12, R13, R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RIP, RSI, RSP, EFLAGS,
)
from kernel_py.fs import binfmt_elf as elf
from kernel_py.fs import namei
from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import KIND_PAGECACHE, KIND_SHIFT, OFF_COUNT, RECORD_SHIFT, VM_EXEC
from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_EXEC, PROT_READ

UPROBE_SWBP_INSN = 0xCC
UPROBE_SWBP_INSN_SIZE = 1
XOL_NAME = "[uprobes]"
MAX_INSN_SIZE = 16
MASK64 = 0xFFFFFFFFFFFFFFFF
ARITH_FLAGS = X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF \
    | X86_EFLAGS_OF

# x86 register numbers (ModRM reg/rm with REX.R/REX.B) -> pt_regs slots
GPR = (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15)

# emulated instructions: (kind, length, operands)
OP_NOP, OP_PUSH, OP_MOV, OP_TEST, OP_SSTEP = 0, 1, 2, 3, 4
SSTEP_INSN = (OP_SSTEP, 0, 0, 0)
NO_SSTEP = (b"\x0f\x05", b"\xcc", b"\xcd\x03")    # syscall, int3, int $3


def decode(code):
    """(kind, length, a, b) for an instruction this file emulates, else
    None. a, b: pt_regs slots (push: a is the register; mov: a = dst,
    b = src; test: both operands)."""
    c0 = code[0]
    if code[:4] == b"\xf3\x0f\x1e\xfa" or c0 == 0x90:       # endbr64, nop
        return (OP_NOP, 4 if c0 == 0xF3 else 1, 0, 0)
    if 0x50 <= c0 <= 0x57:                                  # push r64
        return (OP_PUSH, 1, GPR[c0 - 0x50], 0)
    if c0 == 0x41 and 0x50 <= code[1] <= 0x57:              # push r8..r15
        return (OP_PUSH, 2, GPR[8 + code[1] - 0x50], 0)
    if c0 & 0xF8 == 0x48 and code[1] in (0x89, 0x85) and code[2] >> 6 == 3:
        # REX.W mov r/m64, r64 or test r/m64, r64, both registers
        rm = (code[2] & 7) | (8 if c0 & 1 else 0)           # REX.B
        reg = ((code[2] >> 3) & 7) | (8 if c0 & 4 else 0)   # REX.R
        return (OP_MOV if code[1] == 0x89 else OP_TEST, 3, GPR[rm], GPR[reg])
    return None


def parity_even(b):
    b ^= b >> 4
    b ^= b >> 2
    b ^= b >> 1
    return not b & 1


class Uprobe:
    """One breakpoint: where, what it displaced, and who wants the hits."""

    def __init__(self, vaddr, name, orig, insn, handler, ret_handler, owner):
        self.vaddr = vaddr
        self.name = name                # 'malloc' or '0x401000', for messages
        self.orig = orig                # the displaced byte
        self.insn = insn                # decode()'s answer for the displaced instruction
        self.handler = handler          # handler(t, probe) -> data for the return probe
        self.ret_handler = ret_handler  # ret_handler(t, probe, data), or None
        self.owner = owner              # the tracer that registered it (or None)
        self.hits = 0


class ReturnInstance:
    """A return probe armed for one call (Linux's struct return_instance)."""

    def __init__(self, probe, orig_ret, sp, data):
        self.probe = probe
        self.orig_ret = orig_ret
        self.sp = sp                    # where the return address was
        self.data = data


class MmUprobes:
    """The probes of one address space (mm.uprobes)."""

    def __init__(self):
        self.probes = {}                # vaddr -> Uprobe
        self.xol = 0                    # the trampoline's address, once mapped
        self.returns = []               # armed ReturnInstances, innermost last
        self.stepping = None            # (probe, TF the program had) during a single-step
        self.owners = []                # tracers: on_exit(t), on_exec(t)


class Uprobes:
    """k.uprobes: registering, removing and hitting probes."""

    def __init__(self, k):
        self.k = k
        self.symbols = {}               # path -> binfmt_elf.Symbols (read once per program)
        self.nr_hits = 0
        self.nr_emulated = 0

    # -- symbols --------------------------------------------------------------
    def symbols_of(self, t):
        """The Symbols of t's executable (ENOEXEC when it has none)."""
        path = t.exe
        if path is None:
            raise KernelError("ENOEXEC", "pid %d runs no program file" % t.pid)
        syms = self.symbols.get(path)
        if syms is None:
            syms = self.read_symbols(t, path)
            self.symbols[path] = syms
        return syms

    def read_symbols(self, t, path):
        stack = namei.lookup(self.k, t, namei.AT_FDCWD, path.encode())
        _, sb, ino = stack[-1]
        header = sb.read(ino, 0, 256)
        return elf.read_symbols(header, lambda off, n: sb.read(ino, off, n))

    def resolve(self, t, where):
        """(address, name) of 'SYMBOL' or '0xADDR' in t's program."""
        if where[:2] in ("0x", "0X"):
            try:
                return int(where, 16), where
            except ValueError:
                raise KernelError("EINVAL", "%r is not an address" % where)
        addr = self.symbols_of(t).lookup(where)
        if addr is None:
            raise KernelError("ENOENT", "no function %r in %s" % (where, t.exe))
        return addr, where

    # -- registering ----------------------------------------------------------
    def register(self, t, where, handler, ret_handler=None, owner=None):
        """A probe on t's function `where` (a symbol or 0xADDR); returns it."""
        mm = t.mm
        if mm is None:
            raise KernelError("ESRCH", "process %d has no address space" % t.pid)
        vaddr, name = self.resolve(t, where)
        up = mm.uprobes
        if up is None:
            up = mm.uprobes = MmUprobes()
        if vaddr in up.probes:
            raise KernelError("EEXIST", "%s (0x%x) is already probed" % (name, vaddr))
        code = self.run_in_mm(t, self.text_bytes, mm, vaddr)
        insn = decode(code)
        if insn is None:
            if any(code[:len(n)] == n for n in NO_SSTEP):
                raise KernelError("EOPNOTSUPP", "%s (0x%x): cannot step %s" % (
                    name, vaddr, " ".join("%02x" % b for b in code[:2])))
            insn = SSTEP_INSN
        if ret_handler is not None and not up.xol:
            up.xol = self.run_in_mm(t, self.xol_map, mm)
        self.run_in_mm(t, self.write_opcode, mm, vaddr, bytes([UPROBE_SWBP_INSN]))
        p = Uprobe(vaddr, name, code[0], insn, handler, ret_handler, owner)
        up.probes[vaddr] = p
        if owner is not None and owner not in up.owners:
            up.owners.append(owner)
        return p

    def unregister(self, t, p):
        """Remove probe p from t: the original byte goes back."""
        mm = t.mm
        up = mm.uprobes if mm is not None else None
        if up is None or up.probes.get(p.vaddr) is not p:
            return
        del up.probes[p.vaddr]
        if mm.pgd is not None:
            self.run_in_mm(t, self.write_opcode, mm, p.vaddr, bytes([p.orig]))

    def unregister_owner(self, t, owner):
        """Remove every probe of tracer `owner` from t, with its pending
        return instances (their return addresses go back on the stack)."""
        up = t.mm.uprobes if t.mm is not None else None
        if up is None:
            return
        for p in list(up.probes.values()):
            if p.owner is owner:
                self.unregister(t, p)
        if owner in up.owners:
            up.owners.remove(owner)
        self.run_in_mm(t, self.disarm_returns, up)

    def disarm_returns(self, up):
        put = self.k.hw.put_user64
        for ri in up.returns:
            put(ri.sp, ri.orig_ret)
        up.returns = []

    def run_in_mm(self, t, fn, *args):
        """fn(*args) with t's tables in CR3 and t's mm the fault handler's;
        then whatever was there before (a console command, or the parent
        of a fork in its system call)."""
        procs = self.k.procs
        hw = self.k.hw
        saved = (procs.current, procs.cur_mm)
        old = hw.read_cr3()
        hw.write_cr3(t.mm.pgd)
        procs.current, procs.cur_mm = t, t.mm
        try:
            return fn(*args)
        finally:
            procs.current, procs.cur_mm = saved
            hw.write_cr3(old & PTE_ADDR_MASK)

    # -- the text page ----------------------------------------------------------
    def text_bytes(self, mm, vaddr):
        """MAX_INSN_SIZE bytes at vaddr (t's CR3 loaded): EFAULT when vaddr
        is not in an executable mapping."""
        vma = mm.vmas.find(vaddr)
        if vma is None or not vma.flags & VM_EXEC:
            raise KernelError("EFAULT", "0x%x is not in the program's text" % vaddr)
        n = min(MAX_INSN_SIZE, vma.end - vaddr)
        code = self.k.hw.copy_from_user(vaddr, n)
        if code is None:
            raise KernelError("EFAULT", "0x%x cannot be read" % vaddr)
        return code + bytes(MAX_INSN_SIZE - n)

    def write_opcode(self, mm, vaddr, data):
        """uprobe_write_opcode: data into this mm's own copy of the text
        page at vaddr (its tables loaded); the file's page is untouched."""
        k = self.k
        hw = k.hw
        vma = mm.vmas.find(vaddr)
        if vma is None or not vma.flags & VM_EXEC:
            raise KernelError("EFAULT", "0x%x is not in the program's text" % vaddr)
        slot = pte_slot(hw, mm.pgd, vaddr, mm.new_table)
        for _ in range(4):                      # a fault that raced with reclaim retries
            pa = self.private_page(mm, vma, vaddr, slot)
            if pa is not None:
                break
        else:
            raise KernelError("ENOMEM", "no private copy of the page at 0x%x" % vaddr)
        hw.writebytes(pa + (vaddr & (PAGE_SIZE - 1)), data)

    def private_page(self, mm, vma, va, slot):
        """The frame of va once it is this mm's alone (read-only PTE), or
        None to try again."""
        k = self.k
        hw = k.hw
        f = k.fault
        e = hw.read64(slot)
        if not e & 1:                           # not present (or swapped): a read fault
            if not f.handler(va, PF_USER, 0):
                raise KernelError("EFAULT", "0x%x cannot be paged in" % va)
            return None
        pa = e & PTE_ADDR_MASK
        rec = k.mem_map.base + ((pa >> 12) << RECORD_SHIFT)
        err = PF_USER | PF_WRITE
        if hw.read16(rec) >> KIND_SHIFT == KIND_PAGECACHE:
            f.cow_file_page(mm, vma, va, err, 0, slot, pa, e)
            return None
        if pa == f.zero_page:
            f.wp_page_copy(mm, vma, va, err, 0, slot, e, pa, 0, 0)
            return None
        c = hw.read32(rec + OFF_COUNT)
        if c != 1:
            f.wp_page_copy(mm, vma, va, err, 0, slot, e, pa, rec + OFF_COUNT, c)
            return None
        f.wp_page_reuse(va, slot, e, pa)        # leaves the swap cache: its copy goes stale
        hw.write64(slot, hw.read64(slot) & ~_PAGE_RW)   # the VMA stays read-only
        hw.invlpg(va)
        return pa

    def xol_map(self, mm):
        """The [uprobes] page (xol_add_vma): one r-x page of int3."""
        addr = mm.mmap(0, PAGE_SIZE, PROT_READ | PROT_EXEC, MAP_PRIVATE, XOL_NAME)
        self.write_opcode(mm, addr, bytes([UPROBE_SWBP_INSN]))
        return addr

    # -- fork, exec, exit -----------------------------------------------------------
    def dup_mmap(self, parent, child_t):
        """fork: the child's copies of probed pages get their bytes back."""
        mm = child_t.mm
        up = parent.mm.uprobes if parent.mm is not None else None
        if up is None or not up.probes or mm is None or mm is parent.mm:
            return
        for p in up.probes.values():
            self.run_in_mm(child_t, self.write_opcode, mm, p.vaddr, bytes([p.orig]))
        for ri in up.returns:                   # frames copied with hijacked returns
            self.run_in_mm(child_t, self.k.hw.put_user64, ri.sp, ri.orig_ret)

    def task_exit(self, t):
        """do_exit, before the mm goes: tracers report, probes are removed."""
        mm = t.mm
        up = mm.uprobes if mm is not None else None
        if up is None:
            return
        for owner in list(up.owners):
            owner.on_exit(t)
        if mm.users <= 1:
            mm.uprobes = None                   # the mm and its pages go now
            return
        for owner in list(up.owners):
            self.unregister_owner(t, owner)

    def exec_drop(self, t, old_mm):
        """execve's point of no return: the old image's probes go with it."""
        up = old_mm.uprobes if old_mm is not None else None
        if up is None:
            return
        for owner in list(up.owners):
            owner.on_exec(t)
        old_mm.uprobes = None

    # -- the trap -------------------------------------------------------------------
    def handle_swbp(self, t):
        """#BP from ring 3: True when it was a probe (handled), False for the
        program's own int3 (SIGTRAP, as before)."""
        mm = t.mm
        up = mm.uprobes if mm is not None else None
        if up is None:
            return False
        regs = t.regs
        bp = (regs[RIP] - UPROBE_SWBP_INSN_SIZE) & MASK64
        if bp == up.xol and up.xol:
            return self.uretprobe_trampoline(t, up)
        p = up.probes.get(bp)
        if p is None:
            return False
        self.nr_hits += 1
        p.hits += 1
        data = p.handler(t, p) if p.handler is not None else None
        if p.ret_handler is not None:
            self.prepare_uretprobe(t, up, p, data)
        regs[RIP] = bp
        if p.insn is SSTEP_INSN:
            return self.pre_sstep(t, up, p)
        return self.emulate(t, p.insn)

    def pre_sstep(self, t, up, p):
        """arch_uprobe_pre_xol, in place: the original byte back, TF on."""
        if up.probes.get(p.vaddr) is not p:
            return True                         # the handler removed it: just resume
        self.write_opcode(t.mm, p.vaddr, bytes([p.orig]))
        regs = t.regs
        up.stepping = (p, regs[EFLAGS] & X86_EFLAGS_TF)
        regs[EFLAGS] |= X86_EFLAGS_TF
        return True

    def handle_sstep(self, t):
        """#DB from ring 3: True when it ends a probe's single-step
        (arch_uprobe_post_xol): int3 back, the program's own TF back."""
        mm = t.mm
        up = mm.uprobes if mm is not None else None
        if up is None or up.stepping is None:
            return False
        p, had_tf = up.stepping
        up.stepping = None
        if up.probes.get(p.vaddr) is p:
            self.write_opcode(mm, p.vaddr, bytes([UPROBE_SWBP_INSN]))
        regs = t.regs
        if not had_tf:
            regs[EFLAGS] &= ~X86_EFLAGS_TF
            return True
        return False                            # the program was stepping itself: SIGTRAP

    def prepare_uretprobe(self, t, up, p, data):
        hw = self.k.hw
        sp = t.regs[RSP] & MASK64
        ret = hw.get_user64(sp)
        if ret is None or not hw.put_user64(sp, up.xol):
            return                              # a bad stack: no return probe for this call
        up.returns.append(ReturnInstance(p, ret, sp, data))

    def uretprobe_trampoline(self, t, up):
        """The trampoline's int3: the innermost armed return fires."""
        regs = t.regs
        sp = (regs[RSP] & MASK64) - 8           # where its return address was
        rets = up.returns
        while rets and rets[-1].sp < sp:        # frames longjmp skipped
            rets.pop()
        if not rets:
            return False                        # nothing armed: SIGTRAP
        ri = rets.pop()
        regs[RIP] = ri.orig_ret
        self.nr_hits += 1
        if ri.probe.ret_handler is not None:
            ri.probe.ret_handler(t, ri.probe, ri.data)
        return True

    def emulate(self, t, insn):
        """Run the displaced instruction (arch_uprobe_skip_sstep / the
        emulate ops): False if its memory access fails (then the task
        takes the signal the real instruction would have)."""
        regs = t.regs
        kind, n, a, b = insn
        self.nr_emulated += 1
        if kind == OP_PUSH:
            sp = (regs[RSP] - 8) & MASK64
            if not self.k.hw.put_user64(sp, regs[a]):
                return False
            regs[RSP] = sp
        elif kind == OP_MOV:
            regs[a] = regs[b]
        elif kind == OP_TEST:
            r = (regs[a] & regs[b]) & MASK64
            fl = regs[EFLAGS] & ~ARITH_FLAGS
            if not r:
                fl |= X86_EFLAGS_ZF
            if r >> 63:
                fl |= X86_EFLAGS_SF
            if parity_even(r & 0xFF):
                fl |= X86_EFLAGS_PF
            regs[EFLAGS] = fl
        regs[RIP] += n
        return True

