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
    PF_INSTR, PF_PROT, PF_USER, PF_WRITE, VEC_BP, VEC_DB, VEC_DE, VEC_GP, VEC_PF, VEC_UD,
)
from kernel_py.arch.x86.ptrace import (
    CR2, ERROR, EVENT_BADFRAME, EVENT_SYSCALL, IRQ_VECTOR_BASE, ORIG_RAX, R8, R9,
    R10, RAX, RDI, RDX, RIP, RSI, TSC_ENTER, TSC_EXIT, user_addr,
)
from kernel_py.arch.x86.native import micropython
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
    VEC_DB: (sig.SIGTRAP, sig.TRAP_BRKPT),
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


@micropython.native
def user_loop(k, t):
    """The entry loop. Native code (the emitter turns each bytecode into a
    call of the runtime helper, no dispatch loop) with every global it
    touches per event bound to a local first: a global is a dictionary
    lookup, a local a register or stack slot. A null syscall's round trip
    was ~8.4 us under TCG in bytecode (measured with sysbench getppid)."""
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
    blocked = BLOCKED
    running = TASK_RUNNING
    ev_syscall, ev_pf, ev_irq = EVENT_SYSCALL, VEC_PF, IRQ_VECTOR_BASE
    i_enter, i_exit, i_nr, i_rax, i_cr2, i_err, i_rip = TSC_ENTER, TSC_EXIT, ORIG_RAX, RAX, CR2, ERROR, RIP
    i_rdi, i_rsi, i_rdx, i_r10, i_r8, i_r9 = RDI, RSI, RDX, R10, R8, R9
    t_kernel = rdtsc()
    while True:
        if t.pending:
            if t.pending & ~t.blocked or t.pending & SIGKILL_BIT:
                status = sig.do_signal(k, t)
                if status is not None:
                    do_exit(k, t, status)
            if t.state != running:
                return
        ev = run_user(regs, fpu)
        t0 = regs[i_enter]                  # ring 3 was [t0, t1)
        t1 = regs[i_exit]
        t.utime += t1 - t0
        t.stime += t0 - t_kernel
        t_kernel = t1
        if ev == ev_syscall:
            nr = regs[i_nr]
            counts = t.syscalls
            counts[nr] = counts.get(nr, 0) + 1
            entry = table[nr] if 0 <= nr < nr_max else None
            if entry is None:
                r = k.syscalls.unknown(t, nr)
            else:
                fn, n = entry
                if n == 0:
                    r = fn(t)
                elif n == 1:
                    r = fn(t, regs[i_rdi])
                elif n == 2:
                    r = fn(t, regs[i_rdi], regs[i_rsi])
                elif n == 3:
                    r = fn(t, regs[i_rdi], regs[i_rsi], regs[i_rdx])
                elif n == 4:
                    r = fn(t, regs[i_rdi], regs[i_rsi], regs[i_rdx], regs[i_r10])
                elif n == 5:
                    r = fn(t, regs[i_rdi], regs[i_rsi], regs[i_rdx], regs[i_r10], regs[i_r8])
                else:
                    r = fn(t, regs[i_rdi], regs[i_rsi], regs[i_rdx], regs[i_r10], regs[i_r8],
                           regs[i_r9])
            if r is blocked:
                t.stime += rdtsc() - t_kernel
                return
            regs[i_rax] = r
            if t.syscall_trace is not None:     # Linux's sys_exit tracepoint
                t.syscall_trace(t, nr, r)
        elif ev == ev_pf:
            va = regs[i_cr2]
            if not fault(va if va >= 0 else user_addr(va), regs[i_err], regs[i_rip]):
                user_fault(k, t)
        elif ev >= ev_irq:
            irq(k, ev - ev_irq)
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
        return      # a victim was killed (t itself: its SIGKILL is pending, mm/reclaim/oom_kill.py); retry
    err = regs[ERROR]
    # a VMA that forbids the access: SEGV_ACCERR; no VMA (kernel addresses
    # included): SEGV_MAPERR (arch/x86/mm/fault.c, bad_area vs access_error)
    code = sig.SEGV_ACCERR if why.startswith(("write to", "execute in", "read from")) \
        else sig.SEGV_MAPERR
    sig.force_sig(k, t, sig.SIGSEGV, code, addr, err | PF_USER, VEC_PF)


def trap(k, t, vector):
    if vector == VEC_BP and k.uprobes is not None and k.uprobes.handle_swbp(t):
        return                                  # a uprobe's int3 (kernel/events/uprobes.py)
    if vector == VEC_DB and k.uprobes is not None and k.uprobes.handle_sstep(t):
        return                                  # the end of a uprobe's single-step
    signo, code = TRAP_SIGNALS.get(vector, (sig.SIGSEGV, sig.SI_KERNEL))
    addr = t.regs[RIP] if signo in (sig.SIGILL, sig.SIGFPE, sig.SIGTRAP) else 0
    sig.force_sig(k, t, signo, code, addr, t.regs[ERROR], vector)


def pf_error_text(err):
    """The error code's meaning, as Linux's show_fault_oops words it."""
    return "%s %s in %s mode" % (
        "protection fault" if err & PF_PROT else "not-present page",
        "write" if err & PF_WRITE else ("instruction fetch" if err & PF_INSTR else "read"),
        "user" if err & PF_USER else "kernel")

