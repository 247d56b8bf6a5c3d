# Entering and leaving ring 3 (Linux's arch/x86/entry/common.c and
# arch/x86/kernel/traps.c): run a task in user mode until the next event,
# and dispatch the event — a system call by its number, a page fault to the
# fault handler, another exception as the signal Linux sends for it, an
# interrupt to its driver — then return to the task, or leave it when it
# sleeps, exits or has used its slice.
#
# hw.run_user(regs, fpu) is the whole mechanism (docs/hw.md, "User mode"):
# it restores the task's registers and FPU state, enters ring 3, and
# returns the event that brought the CPU back, the registers saved in
# regs. Everything here is policy.

try:
    from sys import print_exception         # MicroPython
except ImportError:                         # CPython (the simulated machine)
    from traceback import print_exception

from kernel_py.arch.x86.cpu import (
    PF_INSTR, PF_PROT, PF_USER, PF_WRITE, VEC_BP, VEC_DE, VEC_GP, VEC_PF, VEC_UD,
)
from kernel_py.arch.x86.ptrace import (
    CR2, ERROR, EVENT_BADFRAME, EVENT_SYSCALL, IRQ_VECTOR_BASE, ORIG_RAX, R8, R9,
    R10, RAX, RDI, RDX, RIP, RSI, TSC_ENTER, TSC_EXIT, user_addr,
)
from kernel_py.kernel import signal as sig
from kernel_py.kernel.exit import do_exit
from kernel_py.kernel.sched import BLOCKED
from kernel_py.kernel.task import TASK_RUNNING

SIGKILL_BIT = sig.sigbit(sig.SIGKILL)
IRQ_TIMER = 0
IRQ_COM1 = 4

# exceptions other than #PF -> (signal, si_code), as arch/x86/kernel/traps.c sends them
TRAP_SIGNALS = {
    VEC_DE: (sig.SIGFPE, sig.FPE_INTDIV),
    1: (sig.SIGTRAP, sig.TRAP_BRKPT),       # #DB
    VEC_BP: (sig.SIGTRAP, sig.SI_KERNEL),
    4: (sig.SIGSEGV, sig.SI_KERNEL),        # #OF (into)
    5: (sig.SIGSEGV, sig.SI_KERNEL),        # #BR
    VEC_UD: (sig.SIGILL, sig.ILL_ILLOPN),
    7: (sig.SIGSEGV, sig.SI_KERNEL),        # #NM: the FPU is always on
    10: (sig.SIGSEGV, sig.SI_KERNEL),       # #TS
    11: (sig.SIGBUS, sig.SI_KERNEL),        # #NP
    12: (sig.SIGBUS, sig.SI_KERNEL),        # #SS
    VEC_GP: (sig.SIGSEGV, sig.SI_KERNEL),
    16: (sig.SIGFPE, sig.FPE_FLTINV),       # #MF (x87)
    17: (sig.SIGBUS, sig.BUS_ADRALN),       # #AC
    19: (sig.SIGFPE, sig.FPE_FLTINV),       # #XM (SIMD)
}


def run_task(k, t):
    """Ring 3 for t until it sleeps, exits, stops, or the scheduler wants
    the CPU (need_resched). Called by the scheduler with t current.

    A Python exception in the kernel's work for t is this kernel's oops: it
    is logged with its traceback and t is killed (SIGKILL), as Linux kills
    the task an oops happened in; the kernel and every other task go on."""
    try:
        user_loop(k, t)
    except Exception as exc:  # noqa: BLE001 - a kernel bug must not end the kernel
        oops(k, t, exc)


def oops(k, t, exc):
    regs = t.regs
    k.printk("BUG: kernel_py %s in %s[%d] (syscall %d, rip %x): %s" % (
        type(exc).__name__, t.comm, t.pid, regs[ORIG_RAX], regs[RIP] & 0xFFFFFFFFFFFFFFFF, exc))
    k.note_exception(exc)
    print_exception(exc)
    if t.state not in ("Z", "X"):
        do_exit(k, t, sig.SIGKILL)


def user_loop(k, t):
    sched = k.sched
    regs = t.regs
    if t.restart is not None:               # woken: finish the syscall it slept in
        r = t.restart()
        if r is BLOCKED:
            return
        t.restart = None
        regs[RAX] = r
    run_user = k.hw.run_user
    rdtsc = k.hw.rdtsc
    fpu = t.fpu
    table = k.syscalls.table
    nr_max = len(table)
    fault = k.fault.handler
    t_kernel = rdtsc()
    while True:
        if t.pending:
            if t.pending & ~t.blocked or t.pending & SIGKILL_BIT:
                status = sig.do_signal(k, t)
                if status is not None:
                    do_exit(k, t, status)
            if t.state != TASK_RUNNING:
                return
        ev = run_user(regs, fpu)
        t0, t1 = regs[TSC_ENTER], regs[TSC_EXIT]       # ring 3 was [t0, t1)
        t.utime += t1 - t0
        t.stime += t0 - t_kernel
        t_kernel = t1
        if ev == EVENT_SYSCALL:
            t.nr_syscalls += 1
            nr = regs[ORIG_RAX]
            entry = table[nr] if 0 <= nr < nr_max else None
            if entry is None:
                r = k.syscalls.unknown(t, nr)
            else:
                fn, n = entry
                if n == 0:
                    r = fn(t)
                elif n == 1:
                    r = fn(t, regs[RDI])
                elif n == 2:
                    r = fn(t, regs[RDI], regs[RSI])
                elif n == 3:
                    r = fn(t, regs[RDI], regs[RSI], regs[RDX])
                elif n == 4:
                    r = fn(t, regs[RDI], regs[RSI], regs[RDX], regs[R10])
                elif n == 5:
                    r = fn(t, regs[RDI], regs[RSI], regs[RDX], regs[R10], regs[R8])
                else:
                    r = fn(t, regs[RDI], regs[RSI], regs[RDX], regs[R10], regs[R8], regs[R9])
            if r is BLOCKED:
                t.stime += rdtsc() - t_kernel
                return
            regs[RAX] = r
        elif ev == VEC_PF:
            if not fault(user_addr(regs[CR2]), regs[ERROR], regs[RIP]):
                user_fault(k, t)
        elif ev >= IRQ_VECTOR_BASE:
            irq(k, ev - IRQ_VECTOR_BASE)
        elif ev == EVENT_BADFRAME:              # IRET would #GP on it (a bad sigreturn)
            sig.force_sig(k, t, sig.SIGSEGV, sig.SI_KERNEL, 0, 0, VEC_GP)
        else:
            trap(k, t, ev)
        if sched.need_resched:
            t.stime += rdtsc() - t_kernel
            return


def irq(k, n):
    if n == IRQ_TIMER:
        k.sched.tick()
    elif n == IRQ_COM1:
        k.sched.need_resched = True         # the idle loop reads the console


def user_fault(k, t):
    """A #PF the fault handler refused: SIGSEGV (or SIGBUS past the end of a
    file), with Linux's log line when nothing handles it."""
    regs = t.regs
    info = k.fault.last_segv
    addr = user_addr(regs[CR2])
    why = info.why if info is not None else ""
    if why in ("beyond end of file", "file read error"):
        sig.force_sig(k, t, sig.SIGBUS, sig.BUS_ADRERR, addr)
        return
    if why == "out of memory":
        return                              # the OOM killer chose someone; retry
    err = regs[ERROR]
    # a VMA that forbids the access: SEGV_ACCERR; no VMA (kernel addresses
    # included): SEGV_MAPERR (arch/x86/mm/fault.c, bad_area vs access_error)
    code = sig.SEGV_ACCERR if why.startswith(("write to", "execute in", "read from")) \
        else sig.SEGV_MAPERR
    sig.force_sig(k, t, sig.SIGSEGV, code, addr, err | PF_USER, VEC_PF)


def trap(k, t, vector):
    signo, code = TRAP_SIGNALS.get(vector, (sig.SIGSEGV, sig.SI_KERNEL))
    addr = t.regs[RIP] if signo in (sig.SIGILL, sig.SIGFPE, sig.SIGTRAP) else 0
    sig.force_sig(k, t, signo, code, addr, t.regs[ERROR], vector)


def pf_error_text(err):
    """The error code's meaning, as Linux's show_fault_oops words it."""
    return "%s %s in %s mode" % (
        "protection fault" if err & PF_PROT else "not-present page",
        "write" if err & PF_WRITE else ("instruction fetch" if err & PF_INSTR else "read"),
        "user" if err & PF_USER else "kernel")

