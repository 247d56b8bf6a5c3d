"""guest/ptrace.h and kernel_py/arch/x86/ptrace.py describe one register
buffer, one set of events and limits (docs/hw.md, "User mode"): every
#define of the header has the same value in the Python module."""

from cheader import defines

from kernel_py.arch.x86 import ptrace

# struct pt_regs, arch/x86/include/asm/ptrace.h (x86-64), in order
LINUX_PT_REGS = ("R15", "R14", "R13", "R12", "RBP", "RBX", "R11", "R10", "R9",
                 "R8", "RAX", "RCX", "RDX", "RSI", "RDI", "ORIG_RAX", "RIP",
                 "CS", "EFLAGS", "RSP", "SS")
EXTRA = ("FS_BASE", "GS_BASE", "ERROR", "CR2", "VECTOR", "TSC_ENTER", "TSC_EXIT")


def test_every_define_has_the_same_value_in_python():
    c = defines("guest/ptrace.h")
    assert len(c) > 40
    for name, value in c.items():
        assert hasattr(ptrace, name), "%s is in guest/ptrace.h, not in ptrace.py" % name
        assert getattr(ptrace, name) == value, name


def test_python_has_no_constant_the_header_lacks():
    c = defines("guest/ptrace.h")
    py = {n for n in dir(ptrace) if n.isupper() and isinstance(getattr(ptrace, n), int)}
    assert py - set(c) == set()


def test_slots_are_pt_regs_then_the_extra_state():
    order = LINUX_PT_REGS + EXTRA
    assert [getattr(ptrace, n) for n in order] == list(range(len(order)))
    assert ptrace.NR_REGS == len(order) and ptrace.NR_REGS % 2 == 0
    assert [n.upper() for n in ptrace.REG_NAMES] == list(order)


def test_events_and_limits():
    assert ptrace.IRQ_VECTOR_BASE == 32 and ptrace.NR_IRQS == 16
    assert ptrace.IRQ_VECTOR_BASE + ptrace.NR_IRQS <= ptrace.EVENT_SYSCALL
    assert ptrace.EVENT_BADFRAME == ptrace.EVENT_SYSCALL + 1
    assert ptrace.USER_ADDR_LIMIT == 1 << 47
    # the flags a user frame keeps: CF PF AF ZF SF TF DF OF AC ID
    bits = (0, 2, 4, 6, 7, 8, 10, 11, 18, 21)
    assert ptrace.USER_EFLAGS_MASK == sum(1 << b for b in bits)
    assert ptrace.USER_EFLAGS_FIXED == 1 << 9 | 1 << 1       # IF, reserved bit 1
    assert ptrace.FPU_BUF_SIZE >= ptrace.FXSAVE_SIZE + 15


def test_new_regs_and_event_names():
    r = ptrace.new_regs()
    # 'l': signed 64-bit slots that the guest VM reads as small ints
    assert r.typecode == "l" and r.itemsize == 8 and len(r) == ptrace.NR_REGS and not any(r)
    r[ptrace.ORIG_RAX] = -1
    assert r[ptrace.ORIG_RAX] == -1
    assert ptrace.event_name(14) == "#PF"
    assert ptrace.event_name(32) == "IRQ 0"
    assert ptrace.event_name(256) == "syscall"
    assert ptrace.event_name(257) == "bad frame"


def test_user_addr_is_the_unsigned_address():
    assert ptrace.user_addr(0x7FFFFFFFF000) == 0x7FFFFFFFF000
    assert ptrace.user_addr(0) == 0
    assert ptrace.user_addr(-0x800000000000) == 0xFFFF800000000000
    assert ptrace.user_addr(-1) == 0xFFFFFFFFFFFFFFFF
