"""User mode on the simulated machine (kernel_py/sim/user.py): the hw calls
of docs/hw.md's "User mode" with the guest's semantics, so a syscall layer
can be tested on the host; and the interface the guest's hw module has."""

import re
from pathlib import Path

import pytest

from kernel_py.arch.x86 import pit
from kernel_py.arch.x86.ptrace import (
    CR2, CS, EFLAGS, ERROR, EVENT_BADFRAME, EVENT_SYSCALL, FPU_BUF_SIZE,
    FS_BASE, FXSAVE_MXCSR, FXSAVE_XMM0, GS_BASE, IRQ_VECTOR_BASE, NR_REGS,
    ORIG_RAX, R10, R11, RAX, RCX, RDI, RDX, RIP, RSI, RSP, SS, TSC_ENTER,
    TSC_EXIT, VECTOR, new_fpu, new_regs,
)
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, SEL_UCODE, SEL_UDATA
from kernel_py.sim import Machine
from kernel_py.sim.user import UserTrap
from kernel_py.arch.x86.cpu import PF_INSTR, PF_PROT, PF_USER, PF_WRITE

from mmcheck import boot

M64 = (1 << 64) - 1
CODE, DATA = 0x400000, 0x600000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ks():
    """A booted kernel with a process whose CR3 is loaded: CODE (r-x) and
    DATA (rw-) mapped, nothing touched."""
    k, sh = boot(64 << 20)
    t = k.procs.spawn("user")
    t.mm.mmap(CODE, 0x4000, 5, 0x12)
    t.mm.mmap(DATA, 0x4000, 3, 0x12)
    k.procs.use_mm(t)
    return k, t


def regs_at(rip=CODE, sp=DATA + 0x3000):
    r = new_regs()
    r[RIP], r[RSP] = rip, sp
    return r


def test_the_guest_module_and_the_sim_share_every_call():
    """docs/hw.md: two implementations of one interface. Every name in the
    guest's hw globals table is a Machine attribute."""
    text = (ROOT / "guest/hw.c").read_text()
    table = text[text.index("hw_globals_table[]"):]
    names = set(re.findall(r"\{\s*MP_ROM_QSTR\(MP_QSTR_(\w+)\)", table)) - {"__name__"}
    for new in ("run_user", "fpu_init", "copy_from_user", "copy_to_user", "strncpy_from_user",
                "clear_user", "get_user64", "put_user64", "idle", "irq_pending", "irq_counts"):
        assert new in names
    m = Machine(16 << 20)
    missing = sorted(n for n in names if not hasattr(m, n) and n != "cpuid")
    assert missing == []            # (cpuid: the sim has none, docs/hw.md says so)


def test_syscall_event_fills_the_frame_as_the_entry_code_does(ks):
    k, t = ks
    hw = k.hw
    seen = []

    def user(regs):
        seen.append((regs[CS], regs[SS], regs[EFLAGS]))
        regs[RAX], regs[RDI], regs[RSI], regs[RDX], regs[R10] = 39, 1, 2, 3, 4
        regs[RIP] += 2                       # past the SYSCALL instruction
        return EVENT_SYSCALL

    hw.user_mode = user
    r = regs_at()
    r[EFLAGS] = 0x3000 | 0x4000 | 0x10000 | 0x20000 | 0x400 | 0x1   # IOPL NT RF VM DF CF
    fpu = new_fpu(hw)
    assert hw.run_user(r, fpu) == EVENT_SYSCALL
    assert seen == [(SEL_UCODE, SEL_UDATA, 0x400 | 0x1 | 0x202)]
    assert (r[RAX], r[ORIG_RAX], r[RDI], r[RSI], r[RDX], r[R10]) == (39, 39, 1, 2, 3, 4)
    assert r[RCX] == r[RIP] == CODE + 2 and r[R11] == r[EFLAGS]
    assert r[VECTOR] == EVENT_SYSCALL
    assert 0 < r[TSC_ENTER] < r[TSC_EXIT]


def test_a_tiny_syscall_layer_over_copy_from_user(ks):
    """What the kernel side will build: a dispatcher on ORIG_RAX, a return
    value in RAX, user memory through uaccess, demand paging underneath."""
    k, t = ks
    hw = k.hw
    out = []
    program = {                          # RIP -> what the user code does there
        CODE: lambda r: (hw.user_write(DATA + 0x100, b"hi there\n"),
                         r.__setitem__(RAX, 1), r.__setitem__(RDI, 1),
                         r.__setitem__(RSI, DATA + 0x100), r.__setitem__(RDX, 9)),
        CODE + 2: lambda r: (r.__setitem__(RDI, r[RAX]), r.__setitem__(RAX, 60)),
    }

    def user(regs):
        program[regs[RIP]](regs)
        regs[RIP] += 2
        return EVENT_SYSCALL

    def sys_write(r):
        data = hw.copy_from_user(r[RSI], r[RDX])
        if data is None:
            return -14                   # EFAULT
        out.append(data)
        return len(data)

    hw.user_mode = user
    r, fpu = regs_at(), new_fpu(hw)
    status = None
    while status is None:
        ev = hw.run_user(r, fpu)
        if ev == 14:                     # the user's own #PF
            assert k.fault_handler(r[CR2] & M64, r[ERROR], r[RIP])
            continue
        assert ev == EVENT_SYSCALL
        if r[ORIG_RAX] == 60:
            status = r[RDI]
        else:
            r[RAX] = sys_write(r)
    assert out == [b"hi there\n"] and status == 9


def test_cpl3_accesses_fault_to_the_task_not_the_handler(ks):
    k, t = ks
    hw = k.hw
    calls = []
    hw.set_fault_handler(lambda *a: calls.append(a) or False)
    cases = [
        (lambda: hw.user_read(DATA, 8), DATA, PF_USER),                         # not present
        (lambda: hw.user_write(CODE, b"x"), CODE, PF_USER | PF_WRITE),          # not present
        (lambda: hw.user_read(DIRECT_MAP_BASE, 8), DIRECT_MAP_BASE, PF_USER | PF_PROT),
        (lambda: hw.user_fetch(DIRECT_MAP_BASE), DIRECT_MAP_BASE, PF_USER | PF_PROT | PF_INSTR),
    ]
    for access, addr, err in cases:
        hw.user_mode = lambda regs, access=access: access()
        r = regs_at()
        assert hw.run_user(r, new_fpu(hw)) == 14
        assert (r[CR2] & M64, r[ERROR], r[ORIG_RAX]) == (addr, err, -1)
    assert calls == []
    hw.user_mode = lambda regs: hw.user_read(0x8000000000000000, 1)
    r = regs_at()
    assert hw.run_user(r, new_fpu(hw)) == 13 and r[ERROR] == 0


def test_protection_faults_after_the_kernel_mapped_the_pages(ks):
    k, t = ks
    hw = k.hw
    assert k.fault_handler(DATA, PF_USER | PF_WRITE, CODE)        # anon page, writable
    assert k.fault_handler(CODE, PF_USER, CODE)                   # zero page, r-x
    assert hw.user_read64(DATA) == 0
    hw.user_write64(DATA, M64)
    assert hw.user_read64(DATA) == M64
    for access, err in ((lambda: hw.user_write(CODE, b"x"), PF_USER | PF_WRITE | PF_PROT),
                        (lambda: hw.user_fetch(DATA), PF_USER | PF_INSTR | PF_PROT)):
        with pytest.raises(UserTrap) as e:
            access()
        assert (e.value.vector, e.value.error) == (14, err)
    assert hw.user_fetch(CODE, 4) == bytes(4)


def test_exceptions_and_interrupt_events(ks):
    k, t = ks
    hw = k.hw
    fpu = new_fpu(hw)

    def raise_gp(regs):
        raise UserTrap(13, 0x402)

    for fn, ev, err in ((lambda regs: 3, 3, 0), (lambda regs: 6, 6, 0), (raise_gp, 13, 0x402)):
        hw.user_mode = fn
        r = regs_at()
        r[ERROR] = 77
        assert hw.run_user(r, fpu) == ev
        assert (r[ERROR], r[ORIG_RAX], r[VECTOR]) == (err, -1, ev)
    hw.user_mode = lambda regs: IRQ_VECTOR_BASE + 0      # a tick arrived in ring 3
    r = regs_at()
    r[ERROR] = 77
    assert hw.run_user(r, fpu) == 32
    assert r[ERROR] == 77                                 # interrupts leave ERROR
    assert hw.irq_counts()[0] == 1 and hw.irq_pending() == 1 and hw.irq_pending() == 0
    hw.user_mode = lambda regs: 300
    with pytest.raises(ValueError):
        hw.run_user(regs_at(), fpu)


def test_refused_frames_change_nothing(ks):
    k, t = ks
    hw = k.hw
    hw.user_mode = lambda regs: pytest.fail("ran a refused frame")
    good = new_fpu(hw)
    bad_mxcsr = bytearray(good)
    bad_mxcsr[FXSAVE_MXCSR + 2] = 1
    for slot, value, fpu in ((RIP, 1 << 47, good), (RIP, -1, good), (FS_BASE, 1 << 47, good),
                             (GS_BASE, -(1 << 63), good), (RAX, 0, bad_mxcsr)):
        r = regs_at()
        r[slot] = value
        before = list(r)
        fpu_before = bytes(fpu)
        assert hw.run_user(r, fpu) == EVENT_BADFRAME
        assert list(r) == before and bytes(fpu) == fpu_before
    with pytest.raises(ValueError):
        hw.run_user(new_regs()[:NR_REGS - 1], good)
    with pytest.raises(ValueError):
        hw.run_user(regs_at(), bytes(FPU_BUF_SIZE))


def test_fpu_state_per_buffer_and_fs_base(ks):
    k, t = ks
    hw = k.hw
    fpus = [new_fpu(hw), new_fpu(hw)]
    assert fpus[0][:2] == b"\x7f\x03" and fpus[0][24:28] == (0x1F80).to_bytes(4, "little")
    assert not any(fpus[0][2:24]) and not any(fpus[0][28:])
    log = []

    def user(regs):
        xmm0 = hw.fpu_state[FXSAVE_XMM0:FXSAVE_XMM0 + 8]
        log.append((bytes(xmm0), hw.fs_base, hw.gs_base))
        hw.fpu_state[FXSAVE_XMM0:FXSAVE_XMM0 + 8] = regs[RDI].to_bytes(8, "little")
        hw.fs_base = regs[RDI]
        return EVENT_SYSCALL

    hw.user_mode = user
    regs = [regs_at(), regs_at()]
    for i, r in enumerate(regs):
        r[RDI], r[FS_BASE], r[GS_BASE] = 0x1111 * (i + 1), DATA + i, DATA + 8 * i
        hw.run_user(r, fpus[i])
    for i, r in enumerate(regs):
        hw.run_user(r, fpus[i])
        assert r[FS_BASE] == 0x1111 * (i + 1)           # what ring 3 left in the base
    assert log[2] == ((0x1111).to_bytes(8, "little"), 0x1111, DATA)
    assert log[3] == ((0x2222).to_bytes(8, "little"), 0x2222, DATA + 8)
    assert fpus[1][FXSAVE_XMM0:FXSAVE_XMM0 + 8] == (0x2222).to_bytes(8, "little")


def test_uaccess_faults_go_to_the_handler_first_and_fail_quietly(ks):
    k, t = ks
    hw = k.hw
    oops = hw.oops_count
    f0 = k.fault.stats.pgfault
    assert hw.copy_to_user(DATA + 0x1000, b"hello") is True          # demand paging
    assert k.fault.stats.pgfault == f0 + 1
    assert hw.copy_from_user(DATA + 0x1000, 5) == b"hello"
    assert hw.copy_from_user(DATA + 0x2000, 8) == bytes(8)           # zero page ...
    assert hw.copy_to_user(DATA + 0x2000, b"x") is True              # ... then COW
    assert hw.copy_from_user(DATA + 0x2000, 2) == b"x\0"
    assert hw.copy_from_user(0x10000000, 8) is None                  # no VMA: refused
    assert hw.copy_from_user(DIRECT_MAP_BASE, 8) is None             # access_ok
    assert hw.copy_from_user(-8, 8) is None
    assert hw.copy_from_user((1 << 47) - 4, 8) is None
    assert hw.copy_to_user(CODE, b"x") is False                      # r-x mapping
    assert hw.copy_to_user(DATA + 0x3FFE, b"abcd") is False          # runs off the mapping
    assert hw.copy_from_user(DATA + 0x3FFE, 2) == b"ab"              # the first page was written
    assert hw.copy_from_user(DATA, 0) == b"" and hw.copy_to_user(1 << 47, b"") is False
    with pytest.raises(ValueError):
        hw.copy_from_user(DATA, -1)
    assert hw.oops_count == oops


def test_strncpy_get_put_clear(ks):
    k, t = ks
    hw = k.hw
    hw.copy_to_user(DATA + 0x100, b"abc\0def")
    hw.copy_to_user(DATA + 0x4000 - 4, b"wxyz")
    assert hw.strncpy_from_user(DATA + 0x100, 100) == b"abc"
    assert hw.strncpy_from_user(DATA + 0x100, 2) == b"ab"
    assert hw.strncpy_from_user(DATA + 0x100, 0) == b""
    assert hw.strncpy_from_user(DATA + 0x4000 - 4, 4) == b"wxyz"     # maxlen, no NUL
    assert hw.strncpy_from_user(DATA + 0x4000 - 4, 5) is None        # the next byte faults
    assert hw.strncpy_from_user(DIRECT_MAP_BASE, 8) is None
    assert hw.put_user64(DATA + 0x200, M64) is True
    assert hw.get_user64(DATA + 0x200) == M64
    assert hw.put_user64(DATA + 0x1FFC, 0x1122334455667788) is True  # across two pages
    assert hw.get_user64(DATA + 0x1FFC) == 0x1122334455667788
    assert hw.put_user64(DATA + 0x4000 - 4, 1) is False              # second page unmapped:
    assert hw.copy_from_user(DATA + 0x4000 - 4, 4) == b"wxyz"        # nothing written
    assert hw.get_user64(0x10000000) is None and hw.put_user64(DIRECT_MAP_BASE, 1) is False
    assert hw.clear_user(DATA + 0x100, 4) is True
    assert hw.copy_from_user(DATA + 0x100, 5) == b"\0\0\0\0d"
    assert hw.clear_user(0x10000000, 1) is False


def test_uaccess_handler_errors_and_no_handler(ks):
    k, t = ks
    hw = k.hw
    texts = []
    hw._console = texts.append
    hw.set_fault_handler(lambda va, err, rip: 1 / 0)
    assert hw.copy_from_user(DATA, 8) is None
    assert hw.oops_count == 1 and "fault handler raised" in "".join(texts)
    hw.set_fault_handler(None)
    assert hw.copy_from_user(DATA, 8) is None and hw.oops_count == 1
    hw.set_fault_handler(lambda va, err, rip: True)                  # never maps
    assert hw.get_user64(DATA) is None
    assert "returned True 1000 times" in "".join(texts)


def test_interrupts_pic_pit_and_idle():
    hw = Machine(16 << 20)
    assert hw.irq_counts() == (0,) * 16 and hw.irq_pending() == 0
    with pytest.raises(RuntimeError):
        hw.idle()                                   # nothing can arrive: would hang
    hw.raise_irq(4)                                 # COM1: unmasked at boot
    hw.idle()
    assert hw.irq_counts()[4] == 1 and hw.irq_pending() == 1 << 4
    assert pit.start_tick(hw, 250) == 250 and hw.pit.hz() == 250
    t0 = hw.rdtsc()
    hw.idle()
    assert hw.irq_counts()[0] == 1 and hw.rdtsc() - t0 >= 4000000   # one 4 ms period
    assert hw.irq_pending() == 1
    pit.stop_tick(hw)
    with pytest.raises(RuntimeError):
        hw.idle()
    hw.raise_irq(12)                                # masked (and the cascade too)
    hw.user_mode = lambda regs: EVENT_SYSCALL
    r, fpu = regs_at(), new_fpu(hw)
    assert hw.run_user(r, fpu) == EVENT_SYSCALL
    pit.unmask_irq(hw, 12)
    assert not hw.pic.masked(2) and not hw.pic.masked(12)
    assert hw.run_user(r, fpu) == IRQ_VECTOR_BASE + 12             # taken before ring 3 runs
    assert r[ORIG_RAX] == -1 and hw.irq_pending() == 1 << 12
    with pytest.raises(ValueError):
        pit.start_tick(hw, 0)
    with pytest.raises(ValueError):
        pit.start_tick(hw, 10)                      # below 19 Hz: the divisor overflows
