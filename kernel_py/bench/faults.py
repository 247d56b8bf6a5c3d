# `bench faults N [write|read|cow|cycle]`: the fault path timed inside the
# guest with the calibrated TSC, on a throw-away process:
#   write  N pages of a fresh private mapping written once each (anonymous faults)
#   read   N pages read once each (the zero page mapped read-only)
#   cow    N pages written in a process, forked, written again in the child (copies)
#   cycle  N rounds of mmap 16 pages + write each + munmap
# and, over the first N pages of a file (`bench faults N MODE /mnt/FILE`):
#   file-cold    read once each through a private mapping, the clean page
#                cache dropped first: major faults (readahead reads 32 pages
#                a request, so 1 in 32 faults waits for the disk)
#   file-warm    the same with every page already cached: minor faults
#   file-cow     written once each through a private mapping (a copy each)
#   file-shared  written once each through a shared mapping (dirtied)
# The clock stops after the lru_add batch is drained: each new anonymous
# page's move onto the LRU is paid inside the figure, as Linux pays it in
# the fault (otherwise runs under PENDING_MAX pages would leave it for the
# next command). Integers only (the guest has no floats).

from kernel_py.lib.errors import KernelError
from kernel_py.mm.vm.vma import MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, MappedFile
from kernel_py.arch.x86.cpu import PAGE_SIZE

MODES = ("write", "read", "cow", "cycle")
FILE_MODES = ("file-cold", "file-warm", "file-cow", "file-shared")
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


def file_setup(k, task, n, mode, path):
    """Map the file for a file-* mode (warming or dropping its cache);
    returns the address."""
    if k.vfs is None or not k.vfs.owns(path):
        raise KernelError("ENOENT", "%s: not a file under a mount point" % path)
    f = MappedFile(k.vfs, path)
    try:
        if f.ino.size < n * PAGE_SIZE:
            raise KernelError("EINVAL", "%s has fewer than %d pages" % (path, n))
        mm = task.mm
        if mode == "file-cold":
            k.pagecache.drop_caches(1)
        else:
            warm = mm.mmap(0, n * PAGE_SIZE, PROT_READ, MAP_PRIVATE, file=f)
            k.procs.run_in(task, _touch, k.hw, warm, n, False)
            mm.munmap(warm, n * PAGE_SIZE)
        share = MAP_SHARED if mode == "file-shared" else MAP_PRIVATE
        return mm.mmap(0, n * PAGE_SIZE, RW, share, file=f)
    finally:
        f.fput()


def run(k, n, mode, path=None):
    """(tsc ticks, faults handled) for one benchmark."""
    if mode not in MODES and mode not in FILE_MODES:
        raise KernelError("EINVAL", "mode must be one of " + "|".join(MODES + FILE_MODES))
    if mode in FILE_MODES and path is None:
        raise KernelError("EINVAL", "%s needs a file: bench faults N %s /mnt/FILE" % (mode, mode))
    ps = k.procs
    hw = k.hw
    st = k.fault.stats
    rdtsc = hw.rdtsc
    task = ps.spawn("bench")
    child = None
    try:
        mm = task.mm
        target = task
        if mode in FILE_MODES:
            addr = file_setup(k, task, n, mode, path)
        elif mode != "cycle":
            addr = mm.mmap(0, n * PAGE_SIZE, RW, MAP_PRIVATE)
        if mode == "cow":
            ps.run_in(task, _touch, hw, addr, n, True)
            child = ps.fork(task.pid)
            target = child
        f0 = st.pgfault
        old = ps.use_mm(target)
        try:
            drain = k.anon.drain
            drain()
            if mode == "cycle":
                t0 = rdtsc()
                _cycles(k, mm, n)
                drain()
                t1 = rdtsc()
            else:
                t0 = rdtsc()
                _touch(hw, addr, n, mode not in ("read", "file-cold", "file-warm"))
                drain()
                t1 = rdtsc()
        finally:
            ps.unuse_mm(old)
        return t1 - t0, st.pgfault - f0
    finally:
        if child is not None:
            ps.exit(child.pid)
        ps.exit(task.pid)


def cmd(k, args):
    if not 1 <= len(args) <= 3:
        raise KernelError("EINVAL", "usage: bench faults N [write|read|cow|cycle] | N file-cold|file-warm|file-cow|file-shared /mnt/FILE")
    try:
        n = int(args[0])
    except ValueError:
        raise KernelError("EINVAL", "count %r is not a number" % args[0])
    if not 0 < n <= 1000000:
        raise KernelError("EINVAL", "count must be 1..1000000")
    mode = args[1] if len(args) > 1 else "write"
    m0 = k.fault.stats.pgmajfault
    ticks, faults = run(k, n, mode, args[2] if len(args) > 2 else None)
    majors = k.fault.stats.pgmajfault - m0
    clock = k.clock
    ns = clock.ns(ticks)
    per = "per_cycle_ns" if mode == "cycle" else "per_fault_ns"
    return "faults %s n=%d faults=%d total_us=%d %s=%d per_sec=%d tsc_hz=%d majfaults=%d" % (
        mode, n, faults, clock.us(ticks), per, ns // n, n * 1000000000 // max(1, ns), clock.hz, majors)
