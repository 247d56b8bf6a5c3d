# Signals (Linux's kernel/signal.c and arch/x86/kernel/signal.c): sending,
# the pending and blocked masks, delivery on the way back to ring 3 — the
# default action, or a user handler entered through an rt_sigframe built on
# the user stack — and rt_sigreturn, which restores what the frame saved.
#
# The frame, as x86-64 Linux lays it out (arch/x86/include/asm/sigframe.h,
# uapi/asm/sigcontext.h, uapi/asm-generic/ucontext.h), from its lowest
# address, which is the handler's RSP (so that RSP + 8 is 16-aligned, as at
# any function entry):
#
#   +0    pretcode      sa_restorer: the handler's `ret` goes there, and it
#                       calls rt_sigreturn (SA_RESTORER is required on x86-64)
#   +8    ucontext      uc_flags, uc_link, uc_stack (24 bytes),
#   +48                 uc_mcontext: struct sigcontext (256 bytes: r8..r15,
#                       rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags,
#                       cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate, 8
#                       reserved words)
#   +304                uc_sigmask (8 bytes)
#   +312  siginfo       128 bytes
#   ...   fpstate       the 512-byte FXSAVE image, 64-aligned, above the frame
#
# The handler is called as handler(signo, &info, &uc) with RAX = 0.

import struct

from kernel_py.arch.x86.ptrace import (
    CR2, CS, EFLAGS, ERROR, FXSAVE_MXCSR, FXSAVE_SIZE, ORIG_RAX, R8, R9, R10, R11,
    R12, R13, R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RIP, RSI, RSP, SS,
    USER_EFLAGS_MASK, VECTOR,
)
from kernel_py.lib.errno import (
    EFAULT, EINTR, EINVAL, ENOMEM, EPERM, ERESTART_RESTARTBLOCK, ERESTARTNOHAND,
    ERESTARTNOINTR, ERESTARTSYS, ESRCH,
)

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU = 16, 17, 18, 19, 20, 21, 22
SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = (
    23, 24, 25, 26, 27, 28, 29, 30, 31)
SIGRTMIN = 32
NSIG = 64

SIG_DFL = 0
SIG_IGN = 1

# sa_flags (uapi/asm-generic/signal.h, x86's SA_RESTORER)
SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2

# sigaltstack (uapi/linux/signal.h, uapi/asm-generic/signal.h)
SS_ONSTACK, SS_DISABLE = 1, 2
SS_AUTODISARM = 1 << 31
SS_FLAG_BITS = SS_AUTODISARM
MINSIGSTKSZ = 2048
STACK_T_SIZE = 24

# si_code values (uapi/asm-generic/siginfo.h)
SI_USER = 0
SI_KERNEL = 0x80
SI_TKILL = -6
ILL_ILLOPN = 2
FPE_INTDIV = 1
FPE_FLTINV = 7
SEGV_MAPERR = 1
SEGV_ACCERR = 2
BUS_ADRALN = 1
BUS_ADRERR = 2
TRAP_BRKPT = 1
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6

NAMES = ("", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
         "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM",
         "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN",
         "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",
         "SIGIO", "SIGPWR", "SIGSYS")

# default actions (Documentation of signal(7); kernel/signal.c's sig_kernel_* sets)
def _mask(*sigs):
    m = 0
    for s in sigs:
        m |= 1 << (s - 1)
    return m


SIG_KERNEL_IGNORE = _mask(SIGCONT, SIGCHLD, SIGWINCH, SIGURG)
SIG_KERNEL_STOP = _mask(SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU)
SIG_KERNEL_ONLY = _mask(SIGKILL, SIGSTOP)
SYNCHRONOUS = _mask(SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS)
FULL_MASK = (1 << NSIG) - 1

# the frame (offsets from its start: see the header)
FRAME_UC = 8
FRAME_MCONTEXT = FRAME_UC + 40
FRAME_SIGMASK = FRAME_UC + 296
FRAME_INFO = FRAME_UC + 304
FRAME_SIZE = FRAME_INFO + 128
FPSTATE_SIZE = FXSAVE_SIZE
REDZONE = 128                       # the x86-64 ABI's red zone below RSP is the program's
# struct sigcontext's first 18 words, in order
SIGCONTEXT_REGS = (R8, R9, R10, R11, R12, R13, R14, R15, RDI, RSI, RBP, RBX, RDX, RAX,
                   RCX, RSP, RIP, EFLAGS)
USER_EFLAGS = USER_EFLAGS_MASK         # what sigreturn may set (CF PF AF ZF SF TF DF OF AC ID)
MINSIGSTKSZ = 2048


class SigHand:
    """Linux's struct sighand_struct: the 64 actions, (handler, flags,
    restorer, mask) each; shared between tasks by CLONE_SIGHAND."""

    def __init__(self, actions=None):
        self.action = list(actions) if actions else [(SIG_DFL, 0, 0, 0)] * (NSIG + 1)

    def copy(self):
        return SigHand(self.action)

    def reset_for_exec(self):
        """execve: handlers go back to SIG_DFL; ignored signals stay ignored."""
        a = self.action
        for i in range(1, NSIG + 1):
            if a[i][0] != SIG_IGN:
                a[i] = (SIG_DFL, 0, 0, 0)


def sigbit(signo):
    return 1 << (signo - 1)


def sig_ignored(t, signo):
    h = t.sighand.action[signo][0]
    if h == SIG_IGN:
        return signo != SIGKILL and signo != SIGSTOP
    return h == SIG_DFL and sigbit(signo) & SIG_KERNEL_IGNORE


# -- sending --------------------------------------------------------------

def send_signal(k, t, signo, code=SI_USER, addr=0, pid=0, status=0):
    """Make signo pending for t (one instance: standard signals do not
    queue) and wake t if it can take it now. SIGKILL and SIGCONT also act
    at once on a stopped task."""
    if t.regs is None or t.sighand is None:
        return False
    bit = sigbit(signo)
    if signo == SIGCONT or signo == SIGKILL:
        t.pending &= ~SIG_KERNEL_STOP
        if t.state == "T":
            k.sched.wake_up_process(t)
            if signo == SIGCONT:
                notify_parent_continued(k, t)
    if bit & SIG_KERNEL_STOP:
        t.pending &= ~sigbit(SIGCONT)
    if sig_ignored(t, signo) and not bit & t.blocked:
        return True                                 # discarded at generation, as Linux does
    queue_info(t, signo, (code, addr, pid, status))
    t.pending |= bit
    if bit & ~t.blocked or signo == SIGKILL:
        signal_wake_up(k, t)
    return True


def signal_wake_up(k, t):
    if t.state == "S" or (t.state == "T" and t.pending & sigbit(SIGKILL)):
        k.sched.wake_up_process(t)


def force_sig(k, t, signo, code, addr, error=0, trapno=-1):
    """A fault's signal (force_sig_fault): it cannot be blocked or ignored;
    if it is, the action goes back to the default. trapno: the CPU
    exception behind it (-1: none), for the log line of a fatal one."""
    bit = sigbit(signo)
    act = t.sighand.action[signo]
    if t.blocked & bit or act[0] == SIG_IGN:
        t.sighand.action[signo] = (SIG_DFL, 0, 0, 0)
        t.blocked &= ~bit
    t.pending |= bit
    t.siginfo[signo] = [(code, addr, 0, 0, error, trapno)]


def queue_info(t, signo, info):
    """A standard signal is pending once (a second instance merges into the
    first); a real-time signal (SIGRTMIN and up) queues every instance."""
    q = t.siginfo.get(signo)
    if q is None:
        t.siginfo[signo] = [info]
    elif signo >= SIGRTMIN:
        q.append(info)


def dequeue_info(t, signo):
    """The first instance's siginfo; the signal stays pending while more wait."""
    q = t.siginfo.get(signo)
    if not q:
        t.pending &= ~sigbit(signo)
        return (SI_USER, 0, 0, 0)
    info = q.pop(0)
    if not q:
        del t.siginfo[signo]
        t.pending &= ~sigbit(signo)
    return info


def signal_pending(t):
    return t.pending & ~t.blocked


def kill_pgrp(k, pgid, signo):
    n = 0
    for t in k.procs.tasks.values():
        if t.pgid == pgid and t.regs is not None:
            send_signal(k, t, signo)
            n += 1
    return n


# -- delivery -------------------------------------------------------------

def next_signal(t):
    """dequeue_signal's order: SIGKILL, then synchronous (fault) signals,
    then the lowest number."""
    ready = t.pending & ~t.blocked | (t.pending & sigbit(SIGKILL))
    if not ready:
        return 0
    if ready & sigbit(SIGKILL):
        return SIGKILL
    sync = ready & SYNCHRONOUS
    if sync:
        ready = sync
    signo = 1
    while not ready & 1:
        ready >>= 1
        signo += 1
    return signo


def do_signal(k, t):
    """Deliver what is pending (arch_do_signal_or_restart), on the way back
    to ring 3: at most one handler frame per return, as on Linux. Returns
    the wait status when a default action kills the task (the caller runs
    do_exit), else None."""
    while True:
        signo = next_signal(t)
        if not signo:
            restart_syscall(t.regs, False, 0)
            return None
        bit = sigbit(signo)
        info = dequeue_info(t, signo)
        handler, flags, restorer, mask = t.sighand.action[signo]
        if signo == SIGKILL or handler == SIG_DFL:
            if bit & SIG_KERNEL_IGNORE:
                continue
            if bit & SIG_KERNEL_STOP:
                restart_syscall(t.regs, False, 0)
                k.sched.stop(t)
                notify_parent_stopped(k, t, signo)
                return None
            if len(info) > 5 and info[5] >= 0 and bit & SYNCHRONOUS:
                show_signal_msg(k, t, signo, info)
            # do_coredump (SIGSEGV, SIGQUIT... sig_kernel_coredump) writes
            # no core file here, as Linux writes none under its default
            # RLIMIT_CORE of 0: the status says killed, never WCOREDUMP 0x80
            return signo
        if handler == SIG_IGN:
            continue
        restart_syscall(t.regs, True, flags)
        if not setup_rt_frame(k, t, signo, info, handler, flags, restorer, mask):
            force_sig(k, t, SIGSEGV, SI_KERNEL, 0)
            continue
        return None


def notify_parent_stopped(k, t, signo):
    """A stopped child: wait4(WUNTRACED) sees it; SIGCHLD unless SA_NOCLDSTOP."""
    t.exit_code = (signo << 8) | 0x7F
    t.stop_reported = False
    parent = k.procs.tasks.get(t.ppid)
    if parent is None or parent.sighand is None:
        return
    k.sched.wake_up(parent.wait_chldexit)
    if not parent.sighand.action[SIGCHLD][1] & SA_NOCLDSTOP:
        send_signal(k, parent, SIGCHLD, CLD_STOPPED, 0, t.pid, signo)


def notify_parent_continued(k, t):
    """prepare_signal's SIGCONT to a stopped task (SIGNAL_STOP_CONTINUED):
    wait4(WCONTINUED) sees it once; SIGCHLD with CLD_CONTINUED unless
    SA_NOCLDSTOP (do_notify_parent_cldstop)."""
    t.continued = True
    t.stop_reported = True
    parent = k.procs.tasks.get(t.ppid)
    if parent is None or parent.sighand is None:
        return
    k.sched.wake_up(parent.wait_chldexit)
    if not parent.sighand.action[SIGCHLD][1] & SA_NOCLDSTOP:
        send_signal(k, parent, SIGCHLD, CLD_CONTINUED, 0, t.pid, SIGCONT)


def restart_syscall(regs, have_handler, flags):
    """An interrupted syscall is restarted or fails with EINTR, as
    arch/x86/kernel/signal.c decides: ERESTARTNOINTR always restarts;
    ERESTARTSYS restarts unless a handler without SA_RESTART runs;
    ERESTARTNOHAND restarts only when no handler runs."""
    if regs[ORIG_RAX] < 0:
        return
    r = regs[RAX]
    if r == -ERESTART_RESTARTBLOCK:
        r = -ERESTARTNOHAND
    if r == -ERESTARTNOINTR or (not have_handler and r in (-ERESTARTSYS, -ERESTARTNOHAND)) or \
            (r == -ERESTARTSYS and flags & SA_RESTART):
        regs[RAX] = regs[ORIG_RAX]
        regs[RIP] -= 2                          # back over the 2-byte SYSCALL
    elif r in (-ERESTARTSYS, -ERESTARTNOHAND):
        regs[RAX] = -EINTR
    regs[ORIG_RAX] = -1


def siginfo_bytes(t, signo, info):
    code, addr, pid, status = info[0], info[1], info[2], info[3]
    b = bytearray(128)
    struct.pack_into("<iii", b, 0, signo, 0, code)
    if signo == SIGCHLD:
        struct.pack_into("<iIi", b, 16, pid, 0, status)
    elif signo in (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) and code > 0:
        struct.pack_into("<Q", b, 16, addr & 0xFFFFFFFFFFFFFFFF)
    else:
        struct.pack_into("<iI", b, 16, pid, 0)
    return b


def setup_rt_frame(k, t, signo, info, handler, flags, restorer, mask):
    """Build the rt_sigframe on the user stack and enter the handler."""
    hw = k.hw
    regs = t.regs
    if not flags & SA_RESTORER:
        return False                            # x86-64 has no kernel-provided trampoline
    sp = get_sigframe_sp(t, regs[RSP], flags)
    if sp is None:
        return False
    fp = (sp - FPSTATE_SIZE) & ~63
    frame = ((fp - FRAME_SIZE) & ~15) - 8
    if frame <= 0:
        return False
    fx = fpu_image(t)
    if not hw.copy_to_user(fp, fx):
        return False
    b = bytearray(FRAME_SIZE)
    struct.pack_into("<Q", b, 0, restorer)
    struct.pack_into("<QQQiiQ", b, FRAME_UC, 0, 0, t.sas_ss_sp,     # uc_flags, uc_link, uc_stack
                     sas_ss_flags(t, regs[RSP]) | t.sas_ss_flags, 0, t.sas_ss_size)
    off = FRAME_MCONTEXT
    for r in SIGCONTEXT_REGS:
        struct.pack_into("<q", b, off, regs[r])
        off += 8
    struct.pack_into("<HHHH", b, off, regs[CS] & 0xFFFF, 0, 0, regs[SS] & 0xFFFF)
    off += 8
    oldmask = t.saved_sigmask if t.saved_sigmask is not None else t.blocked
    struct.pack_into("<QQQQQ", b, off, regs[ERROR] & 0xFFFFFFFFFFFFFFFF,
                     regs[VECTOR] & 0xFFFFFFFFFFFFFFFF, oldmask, regs[CR2] & 0xFFFFFFFFFFFFFFFF, fp)
    struct.pack_into("<Q", b, FRAME_SIGMASK, oldmask)
    b[FRAME_INFO:FRAME_INFO + 128] = siginfo_bytes(t, signo, info)
    if not hw.copy_to_user(frame, b):
        return False
    hw.fpu_init(t.fpu)                          # the handler starts with a fresh FPU (fpu__clear_user_states)
    if t.sas_ss_flags & SS_AUTODISARM:
        t.sas_ss_sp = t.sas_ss_size = 0         # saved in uc_stack; rt_sigreturn rearms it
    t.saved_sigmask = None
    blocked = t.blocked | mask
    if not flags & SA_NODEFER:
        blocked |= sigbit(signo)
    t.blocked = blocked & ~SIG_KERNEL_ONLY
    if flags & SA_RESETHAND:
        t.sighand.action[signo] = (SIG_DFL, 0, 0, 0)
    regs[RSP] = frame
    regs[RIP] = handler
    regs[RDI] = signo
    regs[RSI] = frame + FRAME_INFO
    regs[RDX] = frame + FRAME_UC
    regs[RAX] = 0
    regs[EFLAGS] &= ~(1 << 10 | 1 << 8)        # DF and TF clear, as the ABI expects
    return True


def on_sig_stack(t, sp):
    """sp is on the alternate stack (the stack grows down: its top is
    not on it, its base is)."""
    return t.sas_ss_size and 0 < sp - t.sas_ss_sp <= t.sas_ss_size


def sas_ss_flags(t, sp):
    """ss_flags as sigaltstack and uc_stack report them."""
    if not t.sas_ss_size:
        return SS_DISABLE
    return SS_ONSTACK if on_sig_stack(t, sp) else 0


def get_sigframe_sp(t, sp, flags):
    """Where the frame goes (arch/x86's get_sigframe): below the red zone
    of the interrupted stack, or at the top of the alternate stack for an
    SA_ONSTACK handler not already on it. None when a frame built on the
    alternate stack would run off its bottom (the caller sends SIGSEGV)."""
    onsigstack = on_sig_stack(t, sp)
    if flags & SA_ONSTACK and t.sas_ss_size and not onsigstack:
        sp = t.sas_ss_sp + t.sas_ss_size
        onsigstack = True
    else:
        sp = (sp - REDZONE) & 0xFFFFFFFFFFFFFFFF
    if onsigstack and not on_sig_stack(t, ((sp - FPSTATE_SIZE) & ~63) - FRAME_SIZE - 16):
        return None
    return sp


def do_sigaltstack(t, ss_sp, ss_flags, ss_size, sp):
    """kernel/signal.c's do_sigaltstack for a new stack: 0 or -errno."""
    if on_sig_stack(t, sp):
        return -EPERM                           # not while running on it
    mode = ss_flags & ~SS_FLAG_BITS
    if mode not in (0, SS_ONSTACK, SS_DISABLE):
        return -EINVAL
    if mode == SS_DISABLE:
        ss_sp = ss_size = 0
    elif ss_size < MINSIGSTKSZ:
        return -ENOMEM
    t.sas_ss_sp, t.sas_ss_size, t.sas_ss_flags = ss_sp, ss_size, ss_flags & SS_FLAG_BITS
    return 0


def sys_sigaltstack(t, uss, uoss):
    """The old stack_t {ss_sp, ss_flags, ss_size} is read before the new
    one is set and written after, as Linux does."""
    hw = t.k.hw
    sp = t.regs[RSP]
    old = struct.pack("<QiiQ", t.sas_ss_sp, sas_ss_flags(t, sp) | t.sas_ss_flags, 0, t.sas_ss_size)
    if uss:
        b = hw.copy_from_user(uss, STACK_T_SIZE)
        if b is None:
            return -EFAULT
        ss_sp, ss_flags, _pad, ss_size = struct.unpack("<QiiQ", b)
        r = do_sigaltstack(t, ss_sp, ss_flags, ss_size, sp)
        if r:
            return r
    if uoss and not hw.copy_to_user(uoss, old):
        return -EFAULT
    return 0


def fpu_image(t):
    """The task's 512-byte FXSAVE image (hw.run_user keeps it at offset 0 of t.fpu)."""
    return bytes(t.fpu[:FPSTATE_SIZE])


def sys_rt_sigreturn(t):
    """Restore what setup_rt_frame saved; the frame is at RSP - 8 (the
    handler's `ret` popped pretcode)."""
    k = t.k
    regs = t.regs
    frame = regs[RSP] - 8
    b = k.hw.copy_from_user(frame, FRAME_SIZE)
    if b is None:
        force_sig(k, t, SIGSEGV, SI_KERNEL, 0)
        return regs[RAX]
    off = FRAME_MCONTEXT
    vals = struct.unpack_from("<18q", b, off)
    for i in range(18):
        r = SIGCONTEXT_REGS[i]
        if r == EFLAGS:
            regs[EFLAGS] = (regs[EFLAGS] & ~USER_EFLAGS) | (vals[i] & USER_EFLAGS)
        else:
            regs[r] = vals[i]
    fp = struct.unpack_from("<Q", b, off + 18 * 8 + 8 + 32)[0]
    if fp:
        fx = k.hw.copy_from_user(fp, FPSTATE_SIZE)
        if fx is None:
            force_sig(k, t, SIGSEGV, SI_KERNEL, 0)
            return regs[RAX]
        set_fpu_image(t, fx)
    mask = struct.unpack_from("<Q", b, FRAME_SIGMASK)[0]
    t.blocked = mask & ~SIG_KERNEL_ONLY
    ss_sp, ss_flags, _pad, ss_size = struct.unpack_from("<QiiQ", b, FRAME_UC + 16)
    do_sigaltstack(t, ss_sp, ss_flags, ss_size, regs[RSP])     # restore_altstack: errors ignored
    regs[ORIG_RAX] = -1                         # not a syscall to restart
    return regs[RAX]


def set_fpu_image(t, fx):
    fx = bytearray(fx)
    # MXCSR's reserved bits would make FXRSTOR fault (SDM FXRSTOR): keep the defined ones
    mxcsr = struct.unpack_from("<I", fx, FXSAVE_MXCSR)[0] & 0xFFFF
    struct.pack_into("<I", fx, FXSAVE_MXCSR, mxcsr)
    t.fpu[:FPSTATE_SIZE] = fx


# -- the syscalls -----------------------------------------------------------

def sys_rt_sigaction(t, signo, act, oact, sigsetsize):
    k = t.k
    if sigsetsize != 8 or signo < 1 or signo > NSIG:
        return -EINVAL
    if act and (signo == SIGKILL or signo == SIGSTOP):
        return -EINVAL
    old = t.sighand.action[signo]
    new = None
    if act:
        b = k.hw.copy_from_user(act, 32)
        if b is None:
            return -EFAULT
        handler, flags, restorer, mask = struct.unpack("<QQQQ", b)
        new = (handler, flags & 0xFFFFFFFF, restorer, mask & ~SIG_KERNEL_ONLY)
    if oact:
        if not k.hw.copy_to_user(oact, struct.pack("<QQQQ", old[0], old[1], old[2], old[3])):
            return -EFAULT
    if new is not None:
        t.sighand.action[signo] = new
        if sig_ignored(t, signo):               # POSIX: pending instances are discarded
            t.pending &= ~sigbit(signo)
            t.siginfo.pop(signo, None)
    return 0


def sys_rt_sigprocmask(t, how, nset, oset, sigsetsize):
    k = t.k
    if sigsetsize != 8:
        return -EINVAL
    old = t.blocked
    if nset:
        b = k.hw.copy_from_user(nset, 8)
        if b is None:
            return -EFAULT
        m = struct.unpack("<Q", b)[0]
        how &= 0xFFFFFFFF
        if how == SIG_BLOCK:
            new = old | m
        elif how == SIG_UNBLOCK:
            new = old & ~m
        elif how == SIG_SETMASK:
            new = m
        else:
            return -EINVAL
        t.blocked = new & ~SIG_KERNEL_ONLY
    if oset and not k.hw.copy_to_user(oset, struct.pack("<Q", old)):
        return -EFAULT
    return 0


def sys_rt_sigpending(t, uset, sigsetsize):
    if sigsetsize > 8:
        return -EINVAL
    if not t.k.hw.copy_to_user(uset, struct.pack("<Q", t.pending & t.blocked)[:sigsetsize]):
        return -EFAULT
    return 0


def sys_rt_sigsuspend(t, uset, sigsetsize):
    k = t.k
    if sigsetsize != 8:
        return -EINVAL
    b = k.hw.copy_from_user(uset, 8)
    if b is None:
        return -EFAULT
    t.saved_sigmask = t.blocked
    t.blocked = struct.unpack("<Q", b)[0] & ~SIG_KERNEL_ONLY

    def wait():
        if signal_pending(t):
            return -ERESTARTNOHAND
        return k.sched.sleep(t, None, wait)
    return wait()


def sys_pause(t):
    """kernel/signal.c sys_pause: sleep until a signal is delivered; a
    handler makes it EINTR, never a restart (-ERESTARTNOHAND)."""
    k = t.k

    def wait():
        if signal_pending(t):
            return -ERESTARTNOHAND
        return k.sched.sleep(t, None, wait)
    return wait()


def sys_kill(t, pid, signo):
    k = t.k
    pid = s32(pid)
    if signo < 0 or signo > NSIG:
        return -EINVAL
    targets = kill_targets(k, t, pid)
    if targets is None:
        return -ESRCH
    for p in targets:
        if signo:
            send_signal(k, p, signo, SI_USER, 0, t.pid)
    return 0


def kill_targets(k, t, pid):
    tasks = k.procs.tasks
    if pid > 0:
        p = tasks.get(pid)
        return [p] if p is not None else None     # a zombie takes the signal and ignores it
    if pid == 0:
        group = t.pgid
    elif pid == -1:
        out = [p for p in tasks.values() if p.pid > 1 and p is not t and p.state != "Z"]
        return out or None
    else:
        group = -pid
    out = [p for p in tasks.values() if p.pgid == group and p.state != "Z"]
    return out or None


def sys_tgkill(t, tgid, tid, signo):
    k = t.k
    if s32(tgid) <= 0 or s32(tid) <= 0 or signo < 0 or signo > NSIG:
        return -EINVAL
    p = k.procs.tasks.get(s32(tid))
    if p is None or p.tgid != s32(tgid) or p.state == "Z":
        return -ESRCH
    if signo:
        send_signal(k, p, signo, SI_TKILL, 0, t.pid)
    return 0


def sys_tkill(t, tid, signo):
    return sys_tgkill(t, s32(tid), tid, signo)


def s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


# -- the fatal-signal log line ----------------------------------------------------

def show_signal_msg(k, t, signo, info):
    """arch/x86/mm/fault.c show_signal_msg and traps.c's do_trap line."""
    regs = t.regs
    code, addr = info[0], info[1]
    err = info[4] if len(info) > 4 else 0
    trapno = info[5] if len(info) > 5 else 0
    ip, sp = regs[RIP] & 0xFFFFFFFFFFFFFFFF, regs[RSP] & 0xFFFFFFFFFFFFFFFF
    if signo == SIGSEGV and trapno == 14:
        line = "%s[%d]: segfault at %x ip %016x sp %016x error %x" % (
            t.comm, t.pid, addr, ip, sp, err)
    else:
        what = {0: "divide error", 3: "int3", 6: "invalid opcode", 13: "general protection fault",
                12: "stack segment", 17: "alignment check", 16: "x87 fpu exception",
                19: "simd exception"}.get(trapno, "trap %d" % trapno)
        if trapno == 13:
            line = "traps: %s[%d] general protection fault ip:%x sp:%x error:%x" % (
                t.comm, t.pid, ip, sp, err)
        else:
            line = "traps: %s[%d] trap %s ip:%x sp:%x error:%x" % (t.comm, t.pid, what, ip, sp, err)
    line += vma_addr(t, ip)
    k.printk(line)


def vma_addr(t, ip):
    """print_vma_addr: ' in NAME[START+SIZE]' for the file mapping holding ip."""
    mm = t.mm
    if mm is None:
        return ""
    vma = mm.vmas.find(ip)
    if vma is None or vma.file is None:
        return ""
    name = vma.name.rsplit("/", 1)[-1]
    return " in %s[%x+%x]" % (name, vma.start, vma.end - vma.start)


def wait_status_signaled(signo, core):
    return signo | (0x80 if core else 0)

