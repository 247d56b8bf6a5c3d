# User mode's register buffer, events and limits (docs/hw.md, "User mode"):
# the values of guest/ptrace.h, which tests/model/test_ptrace_layout.py
# checks one by one against this file.
#
#     regs = new_regs()                  # array('q'), NR_REGS slots
#     fpu = new_fpu(hw)                  # bytearray(FPU_BUF_SIZE), Linux's initial state
#     regs[RIP], regs[RSP] = entry, sp
#     event = hw.run_user(regs, fpu)     # returns when the task enters the kernel
#
# The register names are indices of 64-bit slots in the order of Linux's
# struct pt_regs (arch/x86/include/asm/ptrace.h), then the rest of a task's
# CPU state. Slots are signed (array 'q'): a kernel address reads negative;
# mask with & 0xFFFFFFFFFFFFFFFF where an unsigned value is wanted.

from array import array

from kernel_py.arch.x86.cpu import EXCEPTION_NAMES, small
from kernel_py.arch.x86 import pgtable

R15 = 0
R14 = 1
R13 = 2
R12 = 3
RBP = 4
RBX = 5
R11 = 6
R10 = 7
R9 = 8
R8 = 9
RAX = 10
RCX = 11
RDX = 12
RSI = 13
RDI = 14
ORIG_RAX = 15       # RAX at SYSCALL; -1 after an exception or interrupt
RIP = 16
CS = 17
EFLAGS = 18
RSP = 19
SS = 20
FS_BASE = 21        # MSR 0xC0000100
GS_BASE = 22        # MSR 0xC0000101
ERROR = 23          # error code of the last exception (0 if it has none)
CR2 = 24            # faulting address of the last #PF
VECTOR = 25         # the event run_user last returned
TSC_ENTER = 26      # TSC just before the switch to ring 3
TSC_EXIT = 27       # TSC just after the switch back
NR_REGS = 28

REG_NAMES = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
    "rsp", "ss", "fs_base", "gs_base", "error", "cr2", "vector",
    "tsc_enter", "tsc_exit",
)

# Events (run_user's return value): 0..31 a CPU exception raised in ring 3
# (its vector), IRQ_VECTOR_BASE + irq a hardware interrupt, and these two.
IRQ_VECTOR_BASE = 32
NR_IRQS = 16
EVENT_SYSCALL = 256
EVENT_BADFRAME = 257    # refused: nothing ran, regs and fpu untouched

# access_ok: a user range lies entirely below this address.
USER_ADDR_LIMIT = small(0x800000000000)

# EFLAGS bits a user frame keeps (CF PF AF ZF SF TF DF OF AC ID); run_user
# sets USER_EFLAGS_FIXED (IF and the reserved bit 1) and clears the rest.
USER_EFLAGS_MASK = 0x240DD5
USER_EFLAGS_FIXED = 0x202

# The FPU/SSE buffer: FXSAVE's 512-byte image at the first 16-byte-aligned
# address of a buffer of FPU_BUF_SIZE bytes (offset 0 for a bytearray).
FPU_BUF_SIZE = 528
FXSAVE_SIZE = 512
FXSAVE_FCW = 0
FXSAVE_MXCSR = 24
FXSAVE_XMM0 = 160
FPU_INIT_FCW = 0x37F
FPU_INIT_MXCSR = 0x1F80


def new_regs():
    """A zeroed register buffer for hw.run_user: signed 64-bit slots.

    Typecode 'l' (C long, 64-bit on x86-64 and on the host), not 'q': the
    guest VM reads a 'q' element through mp_obj_new_int_from_ll, which
    always builds a heap long (mpz), so every regs[...] allocated and all
    arithmetic on it (the TSC stamps, CR2 in the fault handler) took the
    slow path; an 'l' element is a small int when it fits. Stores are the
    same for both (a long is truncated to the slot's 8 bytes)."""
    return array("l", bytes(8 * NR_REGS))


def new_fpu(hw):
    """An FPU/SSE buffer holding Linux's initial state (hw.fpu_init)."""
    fpu = bytearray(FPU_BUF_SIZE)
    hw.fpu_init(fpu)
    return fpu


def user_addr(v):
    """A register's signed slot value (CR2, RIP) as the unsigned address:
    kept a small int when it is a user address (the common case, which
    must not allocate), masked to 64 bits only when negative (a kernel
    address in the sign-extended upper half)."""
    return v if v >= 0 else v & pgtable.M64


def event_name(ev):
    """'#PF', 'IRQ 0', 'syscall'... for messages."""
    if 0 <= ev < 32:
        return EXCEPTION_NAMES[ev]
    if IRQ_VECTOR_BASE <= ev < IRQ_VECTOR_BASE + NR_IRQS:
        return "IRQ %d" % (ev - IRQ_VECTOR_BASE)
    if ev == EVENT_SYSCALL:
        return "syscall"
    if ev == EVENT_BADFRAME:
        return "bad frame"
    return "event %d" % ev
