"""Support for the caller audit under fault injection
(tests/model/test_fail_callers.py): Linux's fail_nth sweep and the
accounting that must come back after every failed attempt.

- `frames_by_kind(k)`: every frame counted once from mem_map - free
  blocks by their buddy heads, allocated blocks by their head's kind and
  order - and checked against the buddy's free count and the number of
  frames (free + used by kind == total).
- `snapshot(k, run)`: after giving caches back (sync, drop_caches, empty
  slabs), what a clean system holds: frames by kind, slab active objects
  per cache, swap slots in use, vmalloc pages, kmalloc_large pages.
- `sweep(...)`: for N = 1, 2, ...: set up, write N to /proc/self/fail-nth,
  run the operation, tear down; after every attempt the failure (if any)
  is one KernelError line, the page tables agree with the VMAs
  (mmcheck.check_all) and the snapshot is the baseline's. It ends at the
  first N the operation does not reach, and returns what it saw.
"""

import struct

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK
from kernel_py.mm.types import KIND_ANON, KIND_NAMES, KIND_SHIFT, PG_buddy, PG_tail, RECORD_SHIFT

from mmcheck import check_all
from pagedebugsupport import errors_in

NTH = "/proc/self/fail-nth"


def frames_by_kind(k):
    mm = k.mem_map
    raw = bytes(k.hw.readbytes(mm.base, mm.nr_pfns << RECORD_SHIFT))
    kinds = {}
    free = 0
    pfn = 0
    while pfn < mm.nr_pfns:
        flags, order = struct.unpack_from("<HB", raw, pfn << RECORD_SHIFT)
        assert not flags & PG_tail, "pfn 0x%x: a tail frame outside its block" % pfn
        if flags & PG_buddy:
            free += 1 << order
        else:
            name = KIND_NAMES[(flags >> KIND_SHIFT) & 15]
            kinds[name] = kinds.get(name, 0) + (1 << order)
        pfn += 1 << order
    assert pfn == mm.nr_pfns, "a block runs past the last frame"
    assert free == k.buddy.nr_free_pages(), (free, k.buddy.nr_free_pages())
    # the pcp list's frames are KIND_ANON to the buddy; they are free here
    anon = KIND_NAMES[KIND_ANON]
    kinds[anon] = kinds.get(anon, 0) - len(k.pcp)
    assert free + len(k.pcp) + sum(kinds.values()) == mm.nr_pfns
    return free + len(k.pcp), kinds


def vmalloc_tables(k):
    """Page-table pages of the kernel's vmalloc space below its PML4
    entries: made on demand by vmalloc and kept, as Linux keeps them (a
    table made for a failed vmalloc stays for the next one)."""
    vm = k.vmalloc
    if vm is None:
        return 0
    r64 = k.hw.read64
    n = 0
    todo = []
    va = vm.start
    while va < vm.end:
        e = r64(vm.root + (((va >> 39) & 511) << 3))
        if e & 1:
            todo.append((e & PTE_ADDR_MASK, 3))
        va += 1 << 39
    while todo:
        t, level = todo.pop()
        n += 1
        if level > 1:
            for i in range(512):
                e = r64(t + (i << 3))
                if e & 1 and not e & 0x80:
                    todo.append((e & PTE_ADDR_MASK, level - 1))
    return n


def settle(k, run):
    """Give back what caches keep between commands."""
    if k.pagecache is not None:
        run("sync")
        run("echo 3 > /proc/sys/vm/drop_caches")
    for name in list(k.slab.by_name):
        k.slab.by_name[name].shrink()


def snapshot(k, run):
    settle(k, run)
    free, kinds = frames_by_kind(k)
    kept = vmalloc_tables(k)
    kinds["pagetable"] -= kept
    free += kept            # not a leak: reused by the next vmalloc
    slabs = {name: s.counts()[0] for name, s in k.slab.by_name.items()}
    swap = [(si.type, si.inuse) for si in k.swap.active()]
    vm = k.vmalloc.nr_pages if k.vmalloc is not None else 0
    return {"free": free, "kinds": kinds, "slabs": slabs, "swap": swap,
            "nr_swap_pages": k.swap.nr_swap_pages, "vmalloc": vm,
            "large": k.slab.large_pages}


def diff(a, b):
    out = {}
    for key in a:
        if a[key] != b[key]:
            if isinstance(a[key], dict):
                out[key] = {n: (a[key].get(n), b[key].get(n)) for n in set(a[key]) | set(b[key])
                            if a[key].get(n) != b[key].get(n)}
            else:
                out[key] = (a[key], b[key])
    return out


def fail_everything(run):
    """Filters off: fail_nth reaches every allocation (GFP_KERNEL, order 0,
    user pages), silently."""
    for name in ("failslab", "fail_page_alloc"):
        run("echo N > /sys/kernel/debug/%s/ignore-gfp-wait" % name)
        run("echo 0 > /sys/kernel/debug/%s/verbose" % name)
    run("echo 0 > /sys/kernel/debug/fail_page_alloc/min-order")
    run("echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem")


class Sweep:
    """What one sweep saw: calls (allocations the operation makes when
    nothing fails), failed (attempts that answered with an error),
    absorbed (injected failures the operation recovered from)."""

    def __init__(self):
        self.calls = 0
        self.failed = 0
        self.absorbed = 0
        self.errors = set()


def sweep(k, run, op, setup=None, teardown=None, limit=500, drain_pcp=True, modes=("nth", "from")):
    """op(ctx) -> console output; setup() -> ctx (runs unfailed);
    teardown(ctx, out) frees what setup and a successful op made.
    Mode "nth" fails the Nth call only (Linux's fail_nth); "from" fails
    the Nth and every later one (fail_nth with probability 100: the calls
    before N are spared by the countdown), so that a caller that retries
    or falls back (pcp refill: order 5, then order 0) runs out too.
    Returns {mode: Sweep}."""
    return dict((m, sweep_mode(k, run, op, setup, teardown, limit, drain_pcp, m)) for m in modes)


def set_all(run, probability):
    for name in ("failslab", "fail_page_alloc"):
        run("echo -1 > /sys/kernel/debug/%s/times" % name)
        run("echo %d > /sys/kernel/debug/%s/probability" % (probability, name))


def sweep_mode(k, run, op, setup, teardown, limit, drain_pcp, mode):
    fail_everything(run)
    base = snapshot(k, run)
    seen = Sweep()
    for n in range(1, limit):
        ctx = setup() if setup is not None else None
        if drain_pcp:
            k.pcp.drain()           # the fault path's refills reach the buddy
        k.last_exception = None
        run("echo %d > %s" % (n, NTH))
        if mode == "from":
            set_all(run, 100)
        out = op(ctx)
        if mode == "from":
            set_all(run, 0)
        left = int(run("cat " + NTH))
        run("echo 0 > " + NTH)
        errs = errors_in(out)
        assert len(errs) <= 1 and "Traceback" not in out, (n, out)
        if errs:
            assert isinstance(k.last_exception, KernelError), (n, out, repr(k.last_exception))
            seen.failed += 1
            seen.errors.add(errs[0].split(":")[1].strip())
        elif not left:
            seen.absorbed += 1
        if left:
            assert not errs, "n=%d: an error with no failure injected: %s" % (n, out)
        check_all(k)
        if teardown is not None:
            teardown(ctx, out if not errs else None)
        now = snapshot(k, run)
        assert now == base, "n=%d (%s): leaked or lost: %s" % (n, out, diff(base, now))
        if left:
            seen.calls = n - 1
            return seen
    raise AssertionError("the operation still allocates after %d calls" % limit)
