"""Support for the page-debugging tests (tests/model/test_pagedebug.py,
tests/guest/test_pagedebug.py).

- `direct_map_checked(hw)`: on the simulated machine the physical accessors
  read the buffer directly; in the guest they go through the kernel's direct
  map. Wrapped by this, every physical access made while the kernel's own
  tables are loaded first walks the direct map, and a not-present page
  faults as in the guest (the #PF handler is consulted, then hw.Fault):
  so a debug_pagealloc model test catches kernel code touching a free frame.
- `Workload`: a seeded mix of console commands (processes, mmap/touch,
  fork/kill, kmalloc/kfree, vmalloc/vfree, files) that keeps track of what
  it holds, and frees all of it at the end.
"""

import random

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.sim.fault import Fault
from kernel_py.arch.x86.cpu import VEC_PF

PHYS = ("read8", "read16", "read32", "read64", "write8", "write16", "write32", "write64")
MASK = (1 << 64) - 1


def direct_map_checked(hw):
    boot_cr3 = hw.cr3
    orig = {name: getattr(hw, name) for name in PHYS + ("fill", "copy", "readbytes", "writebytes", "mem")}
    r64 = orig["read64"]
    hw.checked_faults = []

    def present(pa):
        va = DIRECT_MAP_BASE + pa
        t = hw.cr3 & 0x000FFFFFFFFFF000
        for shift in (39, 30, 21, 12):
            e = r64(t + (((va >> shift) & 511) << 3))
            if not e & 1:
                return False
            if shift == 12 or (shift < 39 and e & 0x80):
                return True
            t = e & 0x000FFFFFFFFFF000
        return True

    def check(pa, n, write):
        if hw.cr3 == boot_cr3 or n <= 0:
            return
        for page in range(pa >> 12, ((pa + n - 1) >> 12) + 1):
            if not present(page << 12):
                va = (DIRECT_MAP_BASE + max(pa, page << 12)) & MASK
                hw.checked_faults.append(va)
                err = 2 if write else 0
                h = hw._handler
                if h is not None:
                    h(va, err, 0)
                raise Fault(VEC_PF, err, va, 0)

    def wrap(name, fn):
        write = name.startswith("write")
        if name in PHYS:
            size = int(name.lstrip("readwrit")) // 8
            return lambda pa, *a: (check(pa, size, write), fn(pa, *a))[1]
        if name == "fill":
            return lambda pa, b, n: (check(pa, n, True), fn(pa, b, n))[1]
        if name == "copy":
            return lambda d, s, n: (check(s, n, False), check(d, n, True), fn(d, s, n))[2]
        if name == "readbytes":
            return lambda pa, n: (check(pa, n, False), fn(pa, n))[1]
        if name == "writebytes":
            return lambda pa, buf: (check(pa, len(buf), True), fn(pa, buf))[1]
        return lambda pa, n: (check(pa, n, True), fn(pa, n))[1]        # mem()

    for name, fn in orig.items():
        setattr(hw, name, wrap(name, fn))
    return hw


def errors_in(out):
    return [l for l in out.split("\n") if l.startswith("error:")]


class Workload:
    """`run(cmd) -> output` drives a console; every command must answer with
    output or exactly one `error:` line (checked here)."""

    def __init__(self, run, seed=7, files=False):
        self.run = run
        self.rnd = random.Random(seed)
        self.files = files
        self.pids = []
        self.maps = {}          # pid -> [(addr, length)]
        self.kmallocs = []
        self.vmallocs = []
        self.names = []
        self.ops = 0
        self.failed = 0
        self.bad = []           # (cmd, output) that broke the one-error-line rule

    def do(self, cmd):
        out = self.run(cmd)
        self.ops += 1
        errs = errors_in(out)
        # a refused fault prints the CPU's oops block before its one error
        # line (SIGSEGV/SIGBUS); an oops with no error line is a crash
        if len(errs) > 1 or ("oops" in out and not errs) or "Traceback" in out:
            self.bad.append((cmd, out))
        if errs:
            self.failed += 1
            return None
        return out

    def step(self):
        r = self.rnd
        op = r.choice(("spawn", "mmap", "touch", "touch", "fork", "kill", "kmalloc", "kmalloc",
                       "kfree", "vmalloc", "vfree") + (("write", "read", "rm") if self.files else ()))
        if op == "spawn" or (not self.pids and op in ("mmap", "touch", "fork", "kill")):
            if len(self.pids) < 6:
                out = self.do("spawn wl")
                if out is not None:
                    self.pids.append(int(out.split()[-1]))
            return
        if op == "mmap":
            pid = r.choice(self.pids)
            length = r.choice((4096, 16384, 65536, 262144))
            out = self.do("mmap %d %d" % (pid, length))
            if out is not None:
                self.maps.setdefault(pid, []).append((int(out.split()[-1], 16), length))
        elif op == "touch":
            pid = r.choice(self.pids)
            if self.maps.get(pid):
                addr, length = r.choice(self.maps[pid])
                self.do("touch %d 0x%x %d w" % (pid, addr, length))
        elif op == "fork":
            if len(self.pids) < 6:
                pid = r.choice(self.pids)
                out = self.do("fork %d" % pid)
                if out is not None:
                    child = int(out.split()[-1])
                    self.pids.append(child)
                    self.maps[child] = list(self.maps.get(pid, []))
        elif op == "kill":
            pid = r.choice(self.pids)
            self.do("kill %d" % pid)
            self.forget(pid)
        elif op == "kmalloc":
            out = self.do("kmalloc %d" % r.choice((8, 24, 100, 500, 2000, 4096, 8192, 20000)))
            if out is not None:
                self.kmallocs.append(out.split()[-1])
        elif op == "kfree" and self.kmallocs:
            self.do("kfree %s" % self.kmallocs.pop(r.randrange(len(self.kmallocs))))
        elif op == "vmalloc":
            out = self.do("vmalloc %d" % r.choice((4096, 20000, 65536)))
            if out is not None:
                self.vmallocs.append(out.split()[-1])
        elif op == "vfree" and self.vmallocs:
            self.do("vfree %s" % self.vmallocs.pop(r.randrange(len(self.vmallocs))))
        elif op == "write":
            name = "/mnt/fi%d.txt" % r.randrange(8)
            if self.do("fill %s %dK" % (name, r.choice((1, 4, 12)))) is not None or True:
                if name not in self.names:
                    self.names.append(name)
        elif op == "read" and self.names:
            self.do("sha256sum %s" % r.choice(self.names))
        elif op == "rm" and self.names:
            name = self.names.pop(r.randrange(len(self.names)))
            self.do("rm %s" % name)

    def forget(self, pid):
        if pid in self.pids:
            self.pids.remove(pid)
        self.maps.pop(pid, None)
        # init adopts the children; the console kills them by pid like any other

    def release_all(self):
        """Free everything this workload holds (injection is off by now)."""
        for pid in list(self.pids):
            self.run("kill %d" % pid)
            self.forget(pid)
        for a in self.kmallocs:
            self.run("kfree %s" % a)
        for a in self.vmallocs:
            self.run("vfree %s" % a)
        for name in self.names:
            self.run("rm %s" % name)
        self.kmallocs, self.vmallocs, self.names = [], [], []


class SwapFileWorkload(Workload):
    """Workload plus what the 10% injection run on the guest must also
    cover: swap-out (memory.reclaim) and swap-in (memsum over swapped
    pages), copy-on-write writes after fork, malloc in a process,
    mprotect/munmap, appends, directories and writeback (sync)."""

    EXTRA = ("reclaim", "swapin", "swapin", "cow", "malloc", "mprotect", "munmap",
             "append", "mkdir", "sync")

    def __init__(self, run, seed=7):
        super().__init__(run, seed, files=True)
        self.dirs = []

    def step(self):
        r = self.rnd
        if r.randrange(3):
            return super().step()
        op = r.choice(self.EXTRA)
        mapped = [p for p in self.pids if self.maps.get(p)]
        if op == "reclaim":
            self.do("echo %dK > /sys/fs/cgroup/memory.reclaim" % r.choice((256, 1024)))
        elif op in ("swapin", "cow") and mapped:
            pid = r.choice(mapped)
            addr, length = r.choice(self.maps[pid])
            if op == "swapin":
                self.do("memsum %d 0x%x %d" % (pid, addr, length))
            else:
                self.do("touch %d 0x%x %d w" % (pid, addr, min(length, 16384)))
        elif op == "malloc" and self.pids:
            self.do("malloc %d %d" % (r.choice(self.pids), r.choice((64, 3000, 150000))))
        elif op == "mprotect" and mapped:
            pid = r.choice(mapped)
            addr, length = r.choice(self.maps[pid])
            self.do("mprotect %d 0x%x 4096 %s" % (pid, addr, r.choice(("r", "rw"))))
        elif op == "munmap" and mapped:
            pid = r.choice(mapped)
            addr, length = self.maps[pid].pop(r.randrange(len(self.maps[pid])))
            self.do("munmap %d 0x%x %d" % (pid, addr, length))
        elif op == "append" and self.names:
            self.do("append %s more-data" % r.choice(self.names))
        elif op == "mkdir":
            if self.dirs and r.randrange(2):
                self.do("rmdir %s" % self.dirs.pop())
            else:
                name = "/mnt/d%d" % r.randrange(100)
                if name not in self.dirs and self.do("mkdir %s" % name) is not None:
                    self.dirs.append(name)
        elif op == "sync":
            self.do("sync")

    def release_all(self):
        super().release_all()
        for name in self.dirs:
            self.run("rmdir %s" % name)
        self.dirs = []


def inject_everywhere(run, probability, times=-1):
    """failslab and fail_page_alloc at `probability`%, every filter off,
    silent; 0 disarms both and leaves the rest (times tells what was injected)."""
    for name in ("failslab", "fail_page_alloc"):
        if not probability:
            run("echo 0 > /sys/kernel/debug/%s/probability" % name)
            continue
        for f, v in (("probability", probability), ("interval", 1), ("times", times),
                     ("verbose", 0), ("ignore-gfp-wait", "N")):
            run("echo %s > /sys/kernel/debug/%s/%s" % (v, name, f))
    if not probability:
        return
    run("echo 0 > /sys/kernel/debug/fail_page_alloc/min-order")
    run("echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem")


def accounting(run):
    """What must come back after everything is freed: MemFree, the buddy's
    free pages per zone (buddyinfo totals), slab active objects per cache."""
    mem = {}
    for line in run("cat /proc/meminfo").split("\n"):
        name, _, rest = line.partition(":")
        if rest.strip():
            mem[name] = int(rest.split()[0])
    buddy = []
    for line in run("cat /proc/buddyinfo").split("\n"):
        counts = [int(x) for x in line.split()[4:]]
        buddy.append(sum(c << o for o, c in enumerate(counts)))
    slabs = {}
    for line in run("cat /proc/slabinfo").split("\n")[2:]:
        f = line.split()
        if f:
            slabs[f[0]] = int(f[1])
    return mem["MemFree"], buddy, slabs


def settle(run, caches):
    """Give back what caches keep: dirty and clean page cache, empty slabs."""
    run("sync")
    run("echo 3 > /proc/sys/vm/drop_caches")
    for name in caches:
        run("kmem_cache_shrink %s" % name)
