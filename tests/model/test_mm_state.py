"""Random mmap/munmap/mprotect/touch/brk/fork/exit across processes on the
simulated machine (hypothesis state machine). After every step the page
tables agree with the VMAs, RSS equals the mapped frames, refcounts equal
the references, frames are conserved (free + pcp + in use is constant),
and every byte a process reads is what it (or, for shared mappings, its
relatives) last wrote there, or zero."""

from hypothesis import settings, HealthCheck, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, precondition

from kernel_py.lib.errors import KernelError
from kernel_py.mm.vm.fault import SegvError
from kernel_py.mm.vm.vma import (
    MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE,
)
from kernel_py.mm.types import VM_READ, VM_WRITE
from kernel_py.arch.x86.layout import USER_END
from kernel_py.arch.x86.cpu import PAGE_SIZE

from mmcheck import boot, check_all

PROTS = [PROT_READ | PROT_WRITE, PROT_READ, PROT_READ | PROT_EXEC, PROT_NONE,
         PROT_READ | PROT_WRITE | PROT_EXEC]


class AddressSpaces(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.k, self.sh = boot(64 << 20)
        self.ps = self.k.procs
        self.baseline = check_all(self.k)
        self.private = {1: {}}         # pid -> {va: byte}
        self.shared = {}               # (shm ino, pgoff) -> byte
        self.counter = 0

    # -- helpers
    def user_pids(self):
        """The processes with an address space (not the kernel threads)."""
        return sorted(p for p, t in self.ps.tasks.items() if t.mm is not None)

    def pick(self, data, allow_init=True):
        pids = self.user_pids()
        if not allow_init:
            pids = [p for p in pids if p != 1]
        return data.draw(st.sampled_from(pids))

    def pick_vma(self, data, pid):
        vmas = list(self.ps.tasks[pid].mm.vmas)
        return data.draw(st.sampled_from(vmas)) if vmas else None

    def forget(self, pid, start, end):
        d = self.private[pid]
        for va in [va for va in d if start <= va < end]:
            del d[va]

    # -- rules
    @precondition(lambda self: len(self.user_pids()) < 5)
    @rule()
    def spawn(self):
        t = self.ps.spawn("p")
        self.private[t.pid] = {}

    @precondition(lambda self: len(self.user_pids()) < 5)
    @rule(data=st.data())
    def fork(self, data):
        pid = self.pick(data)
        c = self.ps.fork(pid)
        self.private[c.pid] = dict(self.private[pid])

    @precondition(lambda self: len(self.user_pids()) > 1)
    @rule(data=st.data())
    def exit(self, data):
        pid = self.pick(data, allow_init=False)
        self.ps.exit(pid)
        del self.private[pid]

    @rule(data=st.data(), pages=st.integers(1, 12), prot=st.sampled_from(PROTS),
          shared=st.booleans(), fixed=st.booleans())
    def mmap(self, data, pages, prot, shared, fixed):
        pid = self.pick(data)
        mm = self.ps.tasks[pid].mm
        flags = MAP_SHARED if shared else MAP_PRIVATE
        addr = 0
        if fixed:
            flags |= MAP_FIXED
            addr = data.draw(st.sampled_from([0x10000000, 0x10004000, 0x10008000, 0x7ffff7ff0000]))
        before = [(v.start, v.end, v.flags) for v in mm.vmas]
        try:
            a = mm.mmap(addr, pages * PAGE_SIZE, prot, flags)
        except KernelError as e:
            assert fixed and e.errname == "EEXIST"
            assert [(v.start, v.end, v.flags) for v in mm.vmas] == before
            return
        if fixed:
            assert a == addr
        self.forget(pid, a, a + pages * PAGE_SIZE)

    @rule(data=st.data(), off=st.integers(-2, 8), pages=st.integers(1, 10))
    def munmap(self, data, off, pages):
        pid = self.pick(data)
        mm = self.ps.tasks[pid].mm
        v = self.pick_vma(data, pid)
        if v is None:
            return
        start = max(v.start + off * PAGE_SIZE, 0x400000)
        try:
            mm.munmap(start, pages * PAGE_SIZE)
        except KernelError as e:
            assert e.errname == "EINVAL" and start + pages * PAGE_SIZE > USER_END
            return
        self.forget(pid, start, start + pages * PAGE_SIZE)
        assert not mm.vmas.overlapping(start, start + pages * PAGE_SIZE)

    @rule(data=st.data(), off=st.integers(0, 8), pages=st.integers(1, 6), prot=st.sampled_from(PROTS))
    def mprotect(self, data, off, pages, prot):
        pid = self.pick(data)
        mm = self.ps.tasks[pid].mm
        v = self.pick_vma(data, pid)
        if v is None:
            return
        start = v.start + off * PAGE_SIZE
        length = pages * PAGE_SIZE
        before = [(x.start, x.end, x.flags) for x in mm.vmas]
        try:
            mm.mprotect(start, length, prot)
        except KernelError as e:
            assert e.errname == "ENOMEM" or (
                e.errname == "EINVAL" and start + length > USER_END)
            assert [(x.start, x.end, x.flags) for x in mm.vmas] == before
            return
        for x in mm.vmas.overlapping(start, start + length):
            assert x.flags & 7 == prot

    @rule(data=st.data(), page=st.integers(0, 40), write=st.booleans())
    def touch(self, data, page, write):
        pid = self.pick(data)
        task = self.ps.tasks[pid]
        v = self.pick_vma(data, pid)
        if v is None:
            return
        va = min(v.start + page * PAGE_SIZE, v.end - PAGE_SIZE) + data.draw(st.integers(0, 4095))
        allowed = v.flags & (VM_WRITE if write else VM_READ)
        hw = self.k.hw
        if v.shm is not None:
            key = (v.shm.ino, v.offset_of(va), va & 0xFFF)
            store = self.shared
        else:
            key = va
            store = self.private[pid]
        try:
            if write:
                self.counter = (self.counter + 1) % 255 + 1
                self.ps.run_in(task, hw.vwrite8, va, self.counter)
            else:
                got = self.ps.run_in(task, hw.vread8, va)
        except SegvError as e:
            assert not allowed, "pid %d: allowed access to 0x%x faulted: %s" % (pid, va, e.line())
            assert e.line().startswith("error: SIGSEGV pid=%d addr=0x%x ip=0x" % (pid, va))
            return
        assert allowed, "pid %d: forbidden %s at 0x%x succeeded" % (pid, "write" if write else "read", va)
        if write:
            store[key] = self.counter
        else:
            assert got == store.get(key, 0), "pid %d: read 0x%x at 0x%x, expected 0x%x" % (
                pid, got, va, store.get(key, 0))

    @rule(data=st.data(), delta=st.integers(-6, 8))
    def brk(self, data, delta):
        pid = self.pick(data)
        mm = self.ps.tasks[pid].mm
        old = mm.brk
        new = old + delta * PAGE_SIZE
        try:
            mm.set_brk(new)
        except KernelError:
            assert mm.brk == old
            return
        if new < old:
            self.forget(pid, new, old)

    @rule()
    def drain_pcp(self):
        self.k.pcp.drain()

    @invariant()
    def consistent(self):
        check_all(self.k, self.baseline)

    def teardown(self):
        for pid in reversed(self.user_pids()):
            if pid != 1:
                self.ps.exit(pid)
        self.k.pcp.drain()
        check_all(self.k, self.baseline)


AddressSpaces.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestAddressSpaces = AddressSpaces.TestCase
