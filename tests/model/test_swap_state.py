"""The address-space state machine of test_mm_state with a swap area and
reclaim: random mmap/munmap/mprotect/touch/brk/fork/exit plus proactive
reclaim (pages swapped out), swapoff/swapon (every page read back),
swappiness changes. After every step, besides test_mm_state's checks:
each swap slot's count equals the swap PTEs holding it (no swap cache),
mm.swapents matches the swap PTEs, the reverse map lists exactly the PTEs
of each private frame, every such frame is on one anon LRU list, and every
byte a process reads is still the one it last wrote."""

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kernel_py.mm.types import VM_WRITE
from kernel_py.arch.x86.cpu import PAGE_SIZE

from mmcheck import check_all
from swapsupport import boot, err, run
from test_mm_state import AddressSpaces


class SwappingAddressSpaces(AddressSpaces):
    def __init__(self):
        RuleBasedStateMachine.__init__(self)
        self.k, self.sh = boot(mem=24 << 20, swap=4 << 20)
        self.ps = self.k.procs
        self.baseline = check_all(self.k)
        self.private = {1: {}}
        self.shared = {}
        self.counter = 0

    @rule(pages=st.integers(1, 300), rounds=st.integers(1, 3))
    def reclaim(self, pages, rounds):
        for _ in range(rounds):     # the first round mostly ages (accessed bits)
            out = self.sh.execute("echo %dK > /sys/fs/cgroup/memory.reclaim" % (pages * 4))
            assert out == "" or out.startswith("error: EAGAIN"), out

    @rule(data=st.data(), off=st.integers(0, 4095))
    def write_every_page(self, data, off):
        """One byte in every page of a writable VMA: many resident pages."""
        pid = self.pick(data)
        task = self.ps.tasks[pid]
        v = self.pick_vma(data, pid)
        if v is None or not v.flags & VM_WRITE:
            return
        hw = self.k.hw
        self.counter = (self.counter + 1) % 255 + 1
        for va in range(v.start + off, min(v.end, v.start + 64 * PAGE_SIZE), PAGE_SIZE):
            self.ps.run_in(task, hw.vwrite8, va, self.counter)
            if v.shm is not None:
                self.shared[(v.shm.ino, v.offset_of(va), va & 0xFFF)] = self.counter
            else:
                self.private[pid][va] = self.counter

    @rule(value=st.sampled_from([0, 1, 10, 60, 100, 150, 200]))
    def swappiness(self, value):
        run(self.sh, "sysctl vm.swappiness=%d" % value)
        assert run(self.sh, "cat /proc/sys/vm/swappiness") == "%d" % value

    @rule()
    def swapoff_swapon(self):
        out = self.sh.execute("swapoff /dev/sdb")
        if out:
            assert out.startswith("error: ENOMEM"), out
            return
        assert self.k.swap.total_swap_pages == 0
        run(self.sh, "swapon /dev/sdb")

    @invariant()
    def consistent(self):
        check_all(self.k, self.baseline)


SwappingAddressSpaces.TestCase.settings = settings(
    max_examples=120, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestSwappingAddressSpaces = SwappingAddressSpaces.TestCase


def test_bad_swappiness_values_are_refused():
    k, sh = boot(mem=24 << 20, swap=1 << 20)
    for bad in ("201", "-1", "x", ""):
        assert err(sh, "echo %s > /proc/sys/vm/swappiness" % bad).startswith("error: EINVAL")
    assert run(sh, "cat /proc/sys/vm/swappiness") == "60"
    assert run(sh, "sysctl vm.swappiness=10") == "vm.swappiness = 10"
    assert run(sh, "sysctl -w vm.swappiness=20") == "vm.swappiness = 20"      # procps's -w
