"""User mode on the simulated machine: hw.run_user, the FPU/SSE buffer,
uaccess and the interrupt calls of docs/hw.md ("User mode"), so host tests
can drive a syscall layer without executing x86 code.

Ring 3 is a Python callable the test installs: `machine.user_mode = fn`.
run_user validates and loads the frame exactly as the guest does, then calls
fn(regs); fn mutates regs as a user program would and returns the event:

- EVENT_SYSCALL: the task executed SYSCALL. fn leaves RIP at the next
  instruction (the guest's RCX), RAX and the argument registers set; run_user
  does what the CPU and the entry code do (ORIG_RAX = RAX, RCX = RIP,
  R11 = EFLAGS).
- a vector 0..31: an exception (ERROR = 0), RIP where the CPU leaves it.
  Raising UserTrap(vector, error) sets the error code; the access helpers
  below raise UserTrap(14, error, address) for a #PF, with CR2.
- IRQ_VECTOR_BASE + irq: an interrupt arrived (counted, pending, as on the
  guest). An IRQ queued with raise_irq() and not masked at the PIC is taken
  at entry, before fn runs, as the CPU takes it once IF = 1.

fn reaches memory only through the CPL-3 helpers user_read, user_write and
user_fetch (the user/supervisor, R/W, NX checks of walk.py; a fault is the
task's, never the kernel #PF handler's). The CPU's FPU/SSE image is
`machine.fpu_state` (512 bytes, FXSAVE layout) and the bases `fs_base` and
`gs_base` while fn runs; fn may change them.
"""

from kernel_py.arch.x86.ptrace import (
    CR2, CS, EFLAGS, ERROR, EVENT_BADFRAME, EVENT_SYSCALL, FPU_BUF_SIZE,
    FPU_INIT_FCW, FPU_INIT_MXCSR, FS_BASE, FXSAVE_FCW, FXSAVE_MXCSR,
    FXSAVE_SIZE, GS_BASE, IRQ_VECTOR_BASE, NR_IRQS, NR_REGS, ORIG_RAX, R11,
    RAX, RCX, RIP, SS, TSC_ENTER, TSC_EXIT, USER_ADDR_LIMIT,
    USER_EFLAGS_FIXED, USER_EFLAGS_MASK, VECTOR,
)
from kernel_py.arch.x86.layout import SEL_UCODE, SEL_UDATA
from kernel_py.sim import firmware
from kernel_py.sim.fault import Fault
from kernel_py.arch.x86.pit import PIC1_DATA, PIC2_DATA, PIT_CH0
from kernel_py.arch.x86.tsc import PIT_CMD
from kernel_py.sim.pic import PIC1_CMD, PIC2_CMD, Pit, PicPair
from kernel_py.sim.walk import R_DIRTY, required_rights
from kernel_py.arch.x86.cpu import CR0_WP, PF_WRITE, VEC_GP, VEC_PF, is_canonical

M64 = (1 << 64) - 1
MXCSR_MASK = 0xFFFF          # what QEMU's FXSAVE reports (DAZ supported)


class UserTrap(Exception):
    """An exception raised by the simulated ring 3 (fn or a helper)."""

    def __init__(self, vector, error=0, address=None):
        super().__init__(vector, error, address)
        self.vector = vector
        self.error = error
        self.address = address


def _signed(v):
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def _slots(regs):
    """regs as NR_REGS signed 64-bit slots (a writable view), or ValueError
    as on the guest."""
    try:
        v = memoryview(regs).cast("B")
    except TypeError:
        raise ValueError("regs: NR_REGS aligned 64-bit slots") from None
    if v.readonly or len(v) < 8 * NR_REGS:
        raise ValueError("regs: NR_REGS aligned 64-bit slots")
    return v[:8 * NR_REGS].cast("q")


def _window(fpu):
    """The FXSAVE image in fpu: its first 512 bytes (a bytearray's storage
    is 16-byte aligned on the guest, so the window starts at 0 there too)."""
    try:
        v = memoryview(fpu).cast("B")
    except TypeError:
        raise ValueError("fpu: FPU_BUF_SIZE bytes") from None
    if v.readonly or len(v) < FPU_BUF_SIZE:
        raise ValueError("fpu: FPU_BUF_SIZE bytes")
    return v[:FXSAVE_SIZE]


class UserMode:
    """Mixed into Machine (machine.py)."""

    UserTrap = UserTrap

    def _user_init(self):
        self.user_mode = None        # fn(regs) -> event: the running task's ring 3
        self.fpu_state = bytearray(FXSAVE_SIZE)
        self.fs_base = 0
        self.gs_base = 0
        self.irq_count = [0] * NR_IRQS
        self._irq_pending = 0
        self._irq_queue = []
        self.pic = PicPair()
        self.pit = Pit()
        self.attach_port((PIC1_CMD, PIC1_DATA, PIC2_CMD, PIC2_DATA), self.pic)
        self.attach_port((PIT_CH0, PIT_CMD), self.pit)

    # -- run_user -----------------------------------------------------------

    def run_user(self, regs, fpu):
        r = _slots(regs)
        fx = _window(fpu)
        mxcsr = int.from_bytes(fx[FXSAVE_MXCSR:FXSAVE_MXCSR + 4], "little")
        if (not 0 <= r[RIP] < USER_ADDR_LIMIT or not 0 <= r[FS_BASE] < USER_ADDR_LIMIT
                or not 0 <= r[GS_BASE] < USER_ADDR_LIMIT or mxcsr & ~MXCSR_MASK):
            return EVENT_BADFRAME
        r[CS] = SEL_UCODE
        r[SS] = SEL_UDATA
        r[EFLAGS] = (r[EFLAGS] & USER_EFLAGS_MASK) | USER_EFLAGS_FIXED
        self.fpu_state[:] = fx                       # FXRSTOR
        self.fs_base, self.gs_base = r[FS_BASE], r[GS_BASE]
        r[TSC_ENTER] = self.rdtsc()
        error, address = 0, None
        irq = self._next_irq()
        if irq is not None:
            event = IRQ_VECTOR_BASE + irq
        else:
            fn = self.user_mode
            if fn is None:
                raise RuntimeError("run_user: no user_mode installed on the machine")
            try:
                event = fn(regs)
            except UserTrap as t:
                event, error, address = t.vector, t.error, t.address
        r[TSC_EXIT] = self.rdtsc()
        if event == EVENT_SYSCALL:
            r[ORIG_RAX] = r[RAX]
            r[RCX] = r[RIP]
            r[R11] = r[EFLAGS]
        elif 0 <= event < IRQ_VECTOR_BASE + NR_IRQS:
            r[ORIG_RAX] = -1
            if event < IRQ_VECTOR_BASE:
                r[ERROR] = _signed(error)
                if event == VEC_PF:
                    r[CR2] = _signed(address if address is not None else self.cr2)
            else:
                self._irq(event - IRQ_VECTOR_BASE)
        else:
            raise ValueError("user_mode returned %r: not an event" % (event,))
        r[VECTOR] = event
        fx[:] = self.fpu_state                       # FXSAVE
        for slot, base in ((FS_BASE, self.fs_base), (GS_BASE, self.gs_base)):
            r[slot] = _signed(base)
        return event

    def fpu_init(self, fpu):
        fx = _window(fpu)
        fx[:] = bytes(FXSAVE_SIZE)
        fx[FXSAVE_FCW:FXSAVE_FCW + 2] = FPU_INIT_FCW.to_bytes(2, "little")
        fx[FXSAVE_MXCSR:FXSAVE_MXCSR + 4] = FPU_INIT_MXCSR.to_bytes(4, "little")

    # -- ring 3's memory accesses (for fn) --------------------------------------

    def _user_pa(self, va, write=False, fetch=False):
        """Translate va for a CPL-3 access: the TLB, else a walk (setting A/D);
        a fault raises UserTrap for the task (CR2 set), never the handler."""
        va &= M64
        if not is_canonical(va):
            raise UserTrap(VEC_GP, 0)
        write = write and not fetch
        need = required_rights(write, True, fetch, self.cr0 & CR0_WP)
        if write:
            need |= R_DIRTY
        e = self._tlb_get(va >> 12)
        if e is not None:
            if e[1] & need == need:
                return e[0] | (va & 0xFFF)
            self.tlb.drop(va)
        r = self._walk_fill(va, need, self._access_bits(write, True, fetch))
        if r < 0:
            self.cr2 = va
            raise UserTrap(VEC_PF, ~r, va)
        return r

    def user_read(self, va, n):
        """n bytes at va, read by ring 3."""
        out = []
        end = va + n
        while va < end:
            chunk = min(end, (va | 0xFFF) + 1) - va
            out.append(self._load(self._user_pa(va), chunk))
            va += chunk
        return b"".join(out)

    def user_fetch(self, va, n=1):
        """n instruction bytes at va, fetched by ring 3 (NX applies)."""
        out = []
        end = va + n
        while va < end:
            chunk = min(end, (va | 0xFFF) + 1) - va
            out.append(self._load(self._user_pa(va, fetch=True), chunk))
            va += chunk
        return b"".join(out)

    def user_write(self, va, data):
        """Ring 3 stores data at va; every page is checked before the first
        byte is written (one instruction faults as a whole)."""
        data = bytes(data)
        pas = []
        p = va
        while p < va + len(data):
            chunk = min(va + len(data), (p | 0xFFF) + 1) - p
            pas.append((self._user_pa(p, write=True), p - va, chunk))
            p += chunk
        for pa, off, chunk in pas:
            self._store(pa, data[off:off + chunk])

    def user_read64(self, va):
        return int.from_bytes(self.user_read(va, 8), "little")

    def user_write64(self, va, v):
        self.user_write(va, (v & M64).to_bytes(8, "little"))

    # -- uaccess: quiet, the #PF handler first -----------------------------------

    def _uc_pa(self, va, write):
        """Translate a user va for a supervisor access (STAC: no SMAP) as the
        guest's uaccess code does: a #PF goes to the handler, retried while
        it answers True; None when it refuses (quietly: no oops)."""
        need = self._wneed if write else 0
        acc = PF_WRITE if write else 0
        tries = 0
        while True:
            e = self._tlb_get(va >> 12)
            if e is not None:
                if e[1] & need == need:
                    return e[0] | (va & 0xFFF)
                self.tlb.drop(va)
            r = self._walk_fill(va, need, acc)
            if r >= 0:
                return r
            tries += 1
            err = ~r
            if tries > self.retry_limit:
                self._say("oops: the #PF handler returned True %d times without mapping the page\n"
                          % self.retry_limit)
                return None
            self.cr2 = va
            h = self._handler
            if h is None:
                return None
            self.faults += 1
            try:
                handled = h(va, err, firmware.RIP_USERCOPY)
            except Exception as ex:  # noqa: BLE001 - as the guest: reported, then a quiet failure
                self._oops(Fault(VEC_PF, err, va, firmware.RIP_USERCOPY),
                           "fault handler raised %r" % (ex,))
                return None
            if not handled:
                return None

    def _say(self, text):
        if self._console is not None:
            self._console(text)
        else:
            print(text, end="")

    @staticmethod
    def _access_ok(va, n):
        return 0 <= va < USER_ADDR_LIMIT and n <= USER_ADDR_LIMIT - va

    @staticmethod
    def _length(n):
        if n < 0:
            raise ValueError("negative length")
        return n

    def _uc_pages(self, va, n, write):
        """(pa, offset, length) per page of [va, va + n), translating each in
        turn; stops (None) at the first page the handler refuses."""
        end = va + n
        p = va
        while p < end:
            chunk = min(end, (p | 0xFFF) + 1) - p
            pa = self._uc_pa(p, write)
            if pa is None:
                yield None
                return
            yield pa, p - va, chunk
            p += chunk

    def copy_from_user(self, va, n):
        va &= M64
        n = self._length(n)
        if not self._access_ok(va, n):
            return None
        out = []
        for page in self._uc_pages(va, n, False):
            if page is None:
                return None
            out.append(self._load(page[0], page[2]))
        return b"".join(out)

    def copy_to_user(self, va, buf):
        va &= M64
        data = bytes(memoryview(buf).cast("B"))
        if not self._access_ok(va, len(data)):
            return False
        for page in self._uc_pages(va, len(data), True):
            if page is None:
                return False                      # earlier pages stay written
            pa, off, chunk = page
            self._store(pa, data[off:off + chunk])
        return True

    def clear_user(self, va, n):
        va &= M64
        n = self._length(n)
        if not self._access_ok(va, n):
            return False
        for page in self._uc_pages(va, n, True):
            if page is None:
                return False
            self._store(page[0], bytes(page[2]))
        return True

    def strncpy_from_user(self, va, maxlen):
        va &= M64
        maxlen = self._length(maxlen)
        if va >= USER_ADDR_LIMIT:
            return None
        lim = min(maxlen, USER_ADDR_LIMIT - va)
        out = []
        for page in self._uc_pages(va, lim, False):
            if page is None:
                return None
            chunk = self._load(page[0], page[2])
            nul = chunk.find(b"\0")
            if nul >= 0:
                out.append(chunk[:nul])
                return b"".join(out)
            out.append(chunk)
        if lim < maxlen:
            return None                           # the string runs past user space
        return b"".join(out)

    def get_user64(self, va):
        data = self.copy_from_user(va, 8)
        if data is None:
            return None
        return int.from_bytes(data, "little")

    def put_user64(self, va, v):
        """One 8-byte store: both pages translated before it is written."""
        va &= M64
        if not self._access_ok(va, 8):
            return False
        pages = list(self._uc_pages(va, 8, True))
        if None in pages:
            return False
        data = (v & M64).to_bytes(8, "little")
        for pa, off, chunk in pages:
            self._store(pa, data[off:off + chunk])
        return True

    # -- interrupts -------------------------------------------------------------

    def raise_irq(self, irq):
        """Sim-only: a device raises IRQ `irq`; taken when unmasked at the PIC
        and IF = 1 (hw.idle(), or the next run_user)."""
        if not 0 <= irq < NR_IRQS:
            raise ValueError("irq %r" % (irq,))
        self._irq_queue.append(irq)

    def _next_irq(self):
        for i, irq in enumerate(self._irq_queue):
            if not self.pic.masked(irq):
                del self._irq_queue[i]
                return irq
        return None

    def _irq(self, irq):
        self.irq_count[irq] += 1
        self._irq_pending |= 1 << irq

    def idle(self):
        """sti; hlt; cli: takes a queued IRQ, else a timer tick when the PIT
        runs and IRQ 0 is unmasked (the TSC moves on by one period). With
        neither, the guest would halt for ever: RuntimeError."""
        irq = self._next_irq()
        if irq is None:
            hz = self.pit.hz()
            if not hz or self.pic.masked(0):
                raise RuntimeError("idle: no interrupt can arrive (nothing queued, "
                                   "and the PIT stopped or IRQ 0 masked)")
            self._tsc += 1000000000 // hz
            irq = 0
        self._irq(irq)

    def irq_pending(self):
        m, self._irq_pending = self._irq_pending, 0
        return m

    def irq_counts(self):
        return tuple(self.irq_count)
