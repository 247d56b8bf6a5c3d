# `bench faults N [write|read|cow|cycle]`: the fault path timed inside the
# guest with the calibrated TSC, on a throw-away process:
#   write  N pages of a fresh private mapping written once each (anonymous faults)
#   read   N pages read once each (the zero page mapped read-only)
#   cow    N pages written in a process, forked, written again in the child (copies)
#   cycle  N rounds of mmap 16 pages + write each + munmap
# Integers only (the guest has no floats).

from kernel_py.errors import KernelError
from kernel_py.mm.vma import MAP_PRIVATE, PROT_READ, PROT_WRITE
from kernel_py.x86 import PAGE_SIZE

MODES = ("write", "read", "cow", "cycle")
CYCLE_PAGES = 16
RW = PROT_READ | PROT_WRITE


def _touch(hw, start, n, write):
    end = start + n * PAGE_SIZE
    va = start
    if write:
        w8 = hw.vwrite8
        while va < end:
            w8(va, 1)
            va += PAGE_SIZE
    else:
        r8 = hw.vread8
        while va < end:
            r8(va)
            va += PAGE_SIZE


def _cycles(k, mm, n):
    hw = k.hw
    w8 = hw.vwrite8
    length = CYCLE_PAGES * PAGE_SIZE
    for _ in range(n):
        a = mm.mmap(0, length, RW, MAP_PRIVATE)
        va = a
        end = a + length
        while va < end:
            w8(va, 1)
            va += PAGE_SIZE
        mm.munmap(a, length)


def run(k, n, mode):
    """(tsc ticks, faults handled) for one benchmark."""
    if mode not in MODES:
        raise KernelError("EINVAL", "mode must be one of " + "|".join(MODES))
    ps = k.procs
    hw = k.hw
    st = k.fault.stats
    rdtsc = hw.rdtsc
    task = ps.spawn("bench")
    child = None
    try:
        mm = task.mm
        target = task
        if mode != "cycle":
            addr = mm.mmap(0, n * PAGE_SIZE, RW, MAP_PRIVATE)
        if mode == "cow":
            ps.run_in(task, _touch, hw, addr, n, True)
            child = ps.fork(task.pid)
            target = child
        f0 = st.pgfault
        old = ps.use_mm(target)
        try:
            if mode == "cycle":
                t0 = rdtsc()
                _cycles(k, mm, n)
                t1 = rdtsc()
            else:
                t0 = rdtsc()
                _touch(hw, addr, n, mode != "read")
                t1 = rdtsc()
        finally:
            ps.unuse_mm(old)
        return t1 - t0, st.pgfault - f0
    finally:
        if child is not None:
            ps.exit(child.pid)
        ps.exit(task.pid)


def cmd(k, args):
    if not 1 <= len(args) <= 2:
        raise KernelError("EINVAL", "usage: bench faults N [write|read|cow|cycle]")
    try:
        n = int(args[0])
    except ValueError:
        raise KernelError("EINVAL", "count %r is not a number" % args[0])
    if not 0 < n <= 1000000:
        raise KernelError("EINVAL", "count must be 1..1000000")
    mode = args[1] if len(args) > 1 else "write"
    ticks, faults = run(k, n, mode)
    clock = k.clock
    ns = clock.ns(ticks)
    per = "per_cycle_ns" if mode == "cycle" else "per_fault_ns"
    return "faults %s n=%d faults=%d total_us=%d %s=%d per_sec=%d tsc_hz=%d" % (
        mode, n, faults, clock.us(ticks), per, ns // n, n * 1000000000 // max(1, ns), clock.hz)
