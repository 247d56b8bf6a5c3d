"""Soak: a seeded random workload over the console, with invariants checked
every N operations from inside the kernel and from the host (issue 7, item 6).

    python -m kpyqemu.soak --ops 3000 --seed 1 [--backends slub,slab,slob]

Each backend gets a fresh guest (64 MiB, `slab=BACKEND`) with a FAT data
disk on /mnt and a small swap disk (swapon), and ops/len(backends)
operations drawn from: spawn, fork, kill; mmap, touch (read or write),
munmap, mprotect, sbrk; kmalloc/kfree (small, page-sized and
kmalloc_large); kmem_cache_alloc/free on one cache of each backend;
vmalloc/vfree; file writes, reads, removals and sync on /mnt; shared
mappings with known contents, of a file on /mnt (written back and read again
through the page cache; the file sometimes removed while mapped) or anonymous
(shmem, through swap), checked after msync too; and, a set number of times,
a hog that touches more than RAM + swap (an OOM event).

Data regions carry known contents, checked with the kernel's `memsum`
against the host's closed form (kernel_py/lib/csum.py pattern_memsum):
each process's data regions are `pattern`-filled with a seed, and between
them they hold more than the free RAM (MemFree at setup + `over_ram`, 8
MiB by default; `working_set` sets the bytes outright), so re-reading and re-filling them pushes pages out to swap
and faults them back in by ordinary means. A region is also made PROT_NONE
(reading it must fail with SIGSEGV, its pages may be swapped meanwhile)
and back, and a process with data is forked, the child re-fills a region
with its own seed and each side must read back its own data (COW). At the end every region still
held is read back. Every checksum mismatch or missing SIGSEGV is a
violation.

Every `check_every` operations (and at the end):
  inside  `check`: mem_map walked, frame conservation and each subsystem's
          counters (kernel_py/mm/debug/debug_vm.py); MemFree == the buddyinfo total;
  host    for every process, its page tables walked over QMP: each user
          mapping lies in a VMA of /proc/<pid>/maps with no more rights than
          the VMA (write, exec), maps an anon or zero-page frame, or a
          page-cache frame in a file VMA (mem_map read over QMP: never
          kernel memory), and the whole address space
          has no W+X mapping and no user-accessible kernel mapping
          (ptdump's check_wx).
Every `frag_every` operations, and just before and after each OOM hog, the
buddy's free blocks by order are sampled for the fragmentation chart
(free pages by order and Linux's unusable free space index per order).

The summary gives operations, invariant checks, violations, OOM events
(vmstat oom_kill) and swap-outs (pswpout), and ops/s.
"""

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):                      # run as a script
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]),
                    str(Path(__file__).resolve().parents[2])]
    __package__ = "kpyqemu"

from kernel_py.arch.x86.layout import USER_END
from kernel_py.lib.csum import pattern_memsum
from kernel_py.mm.types import KIND_ANON, KIND_PAGECACHE, KIND_ZERO, KIND_SHIFT
from kernel_py.arch.x86.cpu import PAGE_SIZE

from kpyqemu import ptdump
from kpyqemu.guest import Guest

MiB = 1 << 20
GUEST_MEM = "64M"
SWAP_MB = 48
DATA_SIZES = (256, 1024, 2048, 4096)        # KiB per data region
DATA_MB = 16
SHARED_SIZES = (64, 256, 512, 1024)         # KiB per shared data region
FILE_BYTES = 8 * MiB                        # files the soak keeps on the 16 MiB disk, at most
MAX_PROCS = 6
KMALLOC_SIZES = (8, 24, 64, 100, 200, 500, 1000, 2048, 3000, 4096, 8192, 20000)
CACHE_SIZES = {"slab": 72, "slub": 136, "slob": 40}
PROTS = ("rw", "rw", "r", "none")
MKFS = shutil.which("mkfs.fat") or "/usr/sbin/mkfs.fat"
MKSWAP = shutil.which("mkswap") or "/usr/sbin/mkswap"


class Report:
    def __init__(self):
        self.ops = 0
        self.rounds = 0
        self.checks = 0
        self.violations = []
        self.oom_kills = 0
        self.pswpout = 0
        self.pswpin = 0
        self.data_checks = 0        # memsum verifications (swap-in, PROT_NONE, COW)
        self.shared_checks = 0      # of them, of shared mappings (a file's or shmem)
        self.op_errors = {}         # errname -> count (ENOMEM under pressure is expected)
        self.seconds = 0.0
        self.frag = []              # (ops so far, [free blocks by order]) samples
        self.oom_marks = []         # indexes into frag of the samples just after an OOM hog
        self.heap_kb = (0, 0)       # the kernel's Python heap: (size, peak live data) in KiB

    def add(self, other):
        for name in ("ops", "rounds", "checks", "data_checks", "shared_checks", "oom_kills",
                     "pswpout", "pswpin", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.violations += other.violations
        self.heap_kb = max(self.heap_kb, other.heap_kb, key=lambda h: h[1])
        for k, v in other.op_errors.items():
            self.op_errors[k] = self.op_errors.get(k, 0) + v
        base = self.frag[-1][0] if self.frag else 0
        self.oom_marks += [len(self.frag) + i for i in other.oom_marks]
        self.frag += [(base + n, row) for n, row in other.frag]

    def summary(self):
        return ("Soak: %d operations, %d invariant checks in %d rounds (%d of them data "
                "checksums, %d of shared mappings), %d violations, %d OOM events, %d swap-outs, "
                "%d swap-ins, %.1f ops/s; op errors %s; kernel Python heap's live data peak %d of %d KiB"
                % (self.ops, self.checks, self.rounds, self.data_checks, self.shared_checks,
                   len(self.violations),
                   self.oom_kills, self.pswpout, self.pswpin,
                   self.ops / self.seconds if self.seconds else 0.0, self.op_errors or "none",
                   self.heap_kb[1], self.heap_kb[0]))


def heap_figures(g):
    """(PyHeapTotal, PyHeapPeak: the most live data after a collection) in
    KiB from /proc/meminfo ((0, 0) on a kernel without the lines)."""
    mi = {}
    for line in g.run("cat /proc/meminfo").split("\n"):
        name, _, rest = line.partition(":")
        if rest.split():
            mi[name] = int(rest.split()[0])
    return mi.get("PyHeapTotal", 0), mi.get("PyHeapPeak", 0)


def make_disks(d, swap_mb=SWAP_MB):
    """A FAT data disk (when mkfs.fat exists) and a swap disk of swap_mb MiB."""
    d = Path(d)
    data, swap = d / "data.img", d / "swap.img"
    for p, mb in ((data, DATA_MB), (swap, swap_mb)):
        with open(p, "wb") as f:
            f.truncate(mb << 20)
    fat = Path(MKFS).exists()
    if fat:
        subprocess.run([MKFS, "-F", "16", "-n", "KPYSOAK", str(data)], check=True, capture_output=True)
    host_swap = Path(MKSWAP).exists()
    if host_swap:
        subprocess.run([MKSWAP, str(swap)], check=True, capture_output=True)
    return data, swap, fat, host_swap


def meminfo(g):
    return {l.split(":")[0]: int(l.split()[1]) for l in g.run("cat /proc/meminfo").split("\n")}


def vmstat(g):
    return {l.split()[0]: int(l.split()[1]) for l in g.run("cat /proc/vmstat").split("\n")}


class Soak:
    """The workload on one booted guest (with disks attached as make_disks
    made them); run(ops) returns a Report."""

    def __init__(self, g, seed, check_every=50, ooms=1, fat=True, host_swap=True,
                 frag_every=5, log=None, over_ram=8 * MiB, working_set=None, snapshot=False):
        self.g = g
        self.rng = random.Random(seed)
        self.check_every = check_every
        self.frag_every = frag_every
        self.ooms_left = ooms
        self.fat = fat
        self.log = log or (lambda msg: None)
        self.report = Report()
        self.procs = {}             # pid -> [[addr, length, prot]]
        self.heap = {}              # pid -> bytes grown with sbrk
        self.data = {}              # pid -> [[addr, length, seed, prot, shared]] with known contents
                                    # (shared: None, "shm", or the file's path)
        self.sizes = {}             # path -> bytes, for files on /mnt (self.files and mapped ones)
        self.nseed = 0
        self.over_ram = over_ram
        self.working_set = working_set
        self.snapshot = snapshot
        self.snap = None
        self.objs = []              # kmalloc addresses
        self.cache_objs = {}        # backend -> addresses
        self.vmallocs = []
        self.files = []
        self.nfile = 0
        self.setup(host_swap)

    # -- setup ---------------------------------------------------------------
    def setup(self, host_swap):
        g = self.g
        if not host_swap:
            g.run("mkswap /dev/sdb")
        g.run("swapon /dev/sdb")
        for backend, size in CACHE_SIZES.items():
            g.run("kmem_cache_create soak-%s %d 0 %s" % (backend, size, backend))
            self.cache_objs[backend] = []
        info = g.run("cat /sys/kernel/debug/mem_map").split("\n")
        self.mem_map_base = int(info[0].split()[1], 16)
        self.nr_pfns = int(info[1].split()[1])
        self.v0 = vmstat(g)
        if self.working_set is None:
            self.working_set = (meminfo(g)["MemFree"] << 10) + self.over_ram

    # -- running commands ------------------------------------------------------
    def cmd(self, line, timeout=None):
        """Run a workload command; an error line is counted, not raised. An
        oops is a violation unless it is the OOM killer's victim faulting
        (Linux's SIGBUS of the killed task, shown as an oops here)."""
        out = self.g.run(line, timeout=timeout, check=False, allow_oops=True)
        if "oops:" in out and "(out of memory)" not in out:
            self.violation("oops in %r: %s" % (line, out[out.index("oops:"):][:300]))
        for l in out.split("\n"):
            if l.startswith("error:"):
                name = l.split(":")[1].strip()
                self.report.op_errors[name] = self.report.op_errors.get(name, 0) + 1
                self.log("op error: %s -> %s" % (line, l))
                return None
        return out

    def sync_procs(self):
        """Forget processes the OOM killer took."""
        alive = {int(l.split()[0]) for l in self.g.run("ps").split("\n")[1:]
                 if not l.endswith("]")}         # kernel threads have no memory to check
        for pid in list(self.procs):
            if pid not in alive:
                self.forget(pid)

    def forget(self, pid):
        del self.procs[pid]
        self.heap.pop(pid, None)
        self.data.pop(pid, None)

    def pick_pid(self):
        return self.rng.choice(sorted(self.procs)) if self.procs else None

    def pick_region(self, prots=None):
        cands = [(pid, r) for pid in sorted(self.procs) for r in self.procs[pid]
                 if prots is None or r[2] in prots]
        return self.rng.choice(cands) if cands else (None, None)

    # -- operations -------------------------------------------------------------
    def op_spawn(self):
        if len(self.procs) >= MAX_PROCS:
            return self.op_kill()
        out = self.cmd("spawn soak%d" % self.report.ops)
        if out:
            self.procs[int(out)] = []

    def op_fork(self):
        pid = self.pick_pid()
        if pid is None or len(self.procs) >= MAX_PROCS:
            return self.op_spawn()
        self.fork(pid)

    def fork(self, pid):
        """The child's pid (it inherits the parent's regions), or None."""
        out = self.cmd("fork %d" % pid)
        if not out:
            return None
        child = int(out)
        self.procs[child] = [list(r) for r in self.procs[pid]]
        self.heap[child] = self.heap.get(pid, 0)
        # a shared region's contents belong to the parent's record: the
        # child keeps the mapping but the soak leaves it alone
        self.data[child] = [list(r) for r in self.data.get(pid, ()) if not r[4]]
        return child

    def op_kill(self):
        pid = self.pick_pid()
        if pid is not None:
            self.cmd("kill %d" % pid)
            self.forget(pid)

    def op_mmap(self):
        pid = self.pick_pid()
        if pid is None:
            return self.op_spawn()
        length = self.rng.choice((1, 4, 16, 64, 256, 512)) * PAGE_SIZE
        prot = self.rng.choice(PROTS)
        out = self.cmd("mmap %d %d prot=%s" % (pid, length, prot))
        if out:
            self.procs[pid].append([int(out, 16), length, prot])

    def op_touch(self):
        pid, r = self.pick_region(("rw", "r"))
        if r is None:
            return self.op_mmap()
        off = self.rng.randrange(0, r[1], PAGE_SIZE)
        length = self.rng.randrange(PAGE_SIZE, r[1] - off + 1, PAGE_SIZE)
        mode = "w" if r[2] == "rw" and self.rng.random() < 0.8 else "r"
        self.cmd("touch %d 0x%x %d %s" % (pid, r[0] + off, length, mode), timeout=120)
        self.sync_procs()

    def op_munmap(self):
        pid, r = self.pick_region()
        if r is None:
            return self.op_mmap()
        if r[1] > PAGE_SIZE and self.rng.random() < 0.5:
            half = (r[1] // PAGE_SIZE // 2) * PAGE_SIZE
            if self.cmd("munmap %d 0x%x %d" % (pid, r[0], half)) is not None:
                r[0] += half
                r[1] -= half
            return
        if self.cmd("munmap %d 0x%x %d" % (pid, r[0], r[1])) is not None:
            self.procs[pid].remove(r)

    def op_mprotect(self):
        pid, r = self.pick_region()
        if r is None:
            return self.op_mmap()
        prot = self.rng.choice(PROTS)
        if self.cmd("mprotect %d 0x%x %d %s" % (pid, r[0], r[1], prot)) is not None:
            r[2] = prot

    def op_sbrk(self):
        pid = self.pick_pid()
        if pid is None:
            return self.op_spawn()
        grown = self.heap.get(pid, 0)
        inc = self.rng.choice((1, 4, 16)) * PAGE_SIZE
        if grown and self.rng.random() < 0.4:
            inc = -min(grown, inc)
        old = self.cmd("sbrk %d %d" % (pid, inc))
        if old is not None:
            self.heap[pid] = grown + inc
            if inc > 0:
                self.cmd("touch %d %s %d w" % (pid, old, inc))

    def op_kmalloc(self):
        if self.objs and self.rng.random() < 0.45:
            return self.cmd("kfree %s" % self.objs.pop(self.rng.randrange(len(self.objs))))
        out = self.cmd("kmalloc %d" % self.rng.choice(KMALLOC_SIZES))
        if out:
            self.objs.append(out)

    def op_cache(self):
        backend = self.rng.choice(sorted(self.cache_objs))
        objs = self.cache_objs[backend]
        if objs and self.rng.random() < 0.45:
            return self.cmd("kmem_cache_free soak-%s %s" % (backend, objs.pop(self.rng.randrange(len(objs)))))
        out = self.cmd("kmem_cache_alloc soak-%s" % backend)
        if out:
            objs.append(out)

    def op_vmalloc(self):
        if self.vmallocs and (len(self.vmallocs) > 8 or self.rng.random() < 0.45):
            return self.cmd("vfree %s" % self.vmallocs.pop(self.rng.randrange(len(self.vmallocs))))
        out = self.cmd("vmalloc %d" % (self.rng.choice((1, 3, 8, 32)) * PAGE_SIZE))
        if out:
            self.vmallocs.append(out)

    def op_file(self):
        if not self.fat:
            return self.op_kmalloc()
        x = self.rng.random()
        if self.files and x < 0.3:
            self.rm(self.files.pop(self.rng.randrange(len(self.files))))
        elif self.files and x < 0.55:
            self.cmd("dd if=%s of=/dev/null bs=64K" % self.rng.choice(self.files), timeout=120)
        elif x < 0.6:
            self.cmd("sync", timeout=120)
        elif len(self.files) < 8:
            self.new_file(self.rng.choice((4, 16, 64, 256)) << 10)

    def new_file(self, size):
        """A file of size bytes on /mnt (listed in self.files), or None when
        the disk budget or the kernel says no."""
        if self.disk_bytes() + size > FILE_BYTES:
            return None
        name = "/mnt/f%d.bin" % self.nfile
        self.nfile += 1
        if self.cmd("fill %s %d" % (name, size), timeout=120) is None:
            return None
        self.files.append(name)
        self.sizes[name] = size
        return name

    def rm(self, name):
        """Remove a file; if a live region maps it, it stays on the disk (an
        orphan) until the last unmap, and still counts against the budget
        (disk_bytes)."""
        self.cmd("rm %s" % name)
        if name in self.files:
            self.files.remove(name)

    def disk_bytes(self):
        """Bytes of the files listed and of the orphans a region still maps;
        sizes of files gone for good are forgotten here."""
        live = set(self.files) | {r[4] for rs in self.data.values() for r in rs if r[4] not in (None, "shm")}
        self.sizes = {n: b for n, b in self.sizes.items() if n in live}
        return sum(self.sizes.values())

    # -- data with known contents: swap, PROT_NONE, COW -------------------------
    def data_bytes(self):
        return sum(r[1] for regions in self.data.values() for r in regions)

    def pick_data(self, prots=("rw",), shared=None):
        """A random (pid, region) with one of prots; shared=False: private
        ones only, True: shared ones only."""
        cands = [(pid, r) for pid in sorted(self.data) for r in self.data[pid]
                 if r[3] in prots and (shared is None or bool(r[4]) == shared)]
        return self.rng.choice(cands) if cands else (None, None)

    def fill(self, pid, r):
        """pattern the region with a fresh seed; False if the kernel refused."""
        self.nseed += 1
        seed = (self.report.ops << 8 | self.nseed) & 0xFFFFFF
        if self.cmd("pattern %d 0x%x %d %d" % (pid, r[0], r[1], seed), timeout=600) is None:
            self.sync_procs()
            return False
        r[2] = seed
        return True

    def verify(self, pid, r, what):
        """memsum of a region against the host's checksum of its pattern."""
        out = self.cmd("memsum %d 0x%x %d" % (pid, r[0], r[1]), timeout=600)
        self.sync_procs()
        if out is None or pid not in self.procs:
            return                          # ENOMEM, or the OOM killer took it
        self.report.data_checks += 1
        self.report.shared_checks += 1 if r[4] else 0
        self.report.checks += 1
        want = pattern_memsum(r[0], r[1], r[2])
        # (an OOM report for another process may come before memsum's line)
        m = re.search(r"^memsum (0x[0-9a-f]+) ", out, re.M)
        got = m.group(1) if m else repr(out[-200:])
        if got != want:
            self.violation("pid %d: %s: memsum of 0x%x+%d is %s, the pattern's %s"
                           % (pid, what, r[0], r[1], got, want))

    def op_data(self):
        """Grow the working set while it is below its target, else re-read
        or re-fill a region (pages come back from swap, others go out)."""
        pid = self.pick_pid()
        if pid is None:
            return self.op_spawn()
        if self.data_bytes() < self.working_set:
            length = min(self.rng.choice(DATA_SIZES) << 10, self.working_set - self.data_bytes())
            length = max(PAGE_SIZE, length & ~(PAGE_SIZE - 1))
            out = self.cmd("mmap %d %d prot=rw" % (pid, length))
            if out:
                r = [int(out, 16), length, 0, "rw", None]
                if self.fill(pid, r) and pid in self.procs:
                    self.data.setdefault(pid, []).append(r)
            return
        pid, r = self.pick_data(("rw",))
        if r is None:
            return
        if self.rng.random() < 0.3:
            self.fill(pid, r)
        else:
            self.verify(pid, r, "after swap pressure")

    def op_protnone(self):
        """PROT_NONE a data region (a read must be refused), or give one back
        its rights and check its data survived."""
        pid, r = self.pick_data(("none",))
        if r is not None and self.rng.random() < 0.6:
            if self.cmd("mprotect %d 0x%x %d rw" % (pid, r[0], r[1])) is not None:
                r[3] = "rw"
                self.verify(pid, r, "PROT_NONE and back")
            return
        pid, r = self.pick_data(("rw",))
        if r is None:
            return self.op_data()
        if self.cmd("mprotect %d 0x%x %d none" % (pid, r[0], r[1])) is None:
            return
        r[3] = "none"
        out = self.g.run("memsum %d 0x%x %d" % (pid, r[0], PAGE_SIZE), check=False, allow_oops=True)
        self.report.checks += 1
        if "error: SIGSEGV" not in out:
            self.violation("pid %d: PROT_NONE 0x%x read without SIGSEGV: %r" % (pid, r[0], out[:200]))

    def op_cow(self):
        """fork a process with data; the child re-fills one region: each
        side reads its own data back (the child's write broke COW)."""
        pid, r = self.pick_data(("rw",), shared=False)
        if r is None or len(self.procs) >= MAX_PROCS:
            return self.op_data()
        child = self.fork(pid)
        if child is None:
            return
        cr = next(c for c in self.data[child] if c[0] == r[0])     # the same address
        self.verify(child, cr, "child before its write")
        if child in self.procs and self.fill(child, cr) and child in self.procs:
            self.verify(child, cr, "child after its write")
        if pid in self.procs:
            self.verify(pid, r, "parent after the child's write")

    def verify_all_data(self):
        """At the end, every data region still held reads back its pattern
        (PROT_NONE ones after getting their rights back): nothing lost."""
        for pid in sorted(self.data):
            for r in list(self.data.get(pid, ())):
                if pid not in self.procs:
                    break
                if r[3] == "none" and self.cmd("mprotect %d 0x%x %d rw" % (pid, r[0], r[1])) is None:
                    continue
                r[3] = "rw"
                self.verify(pid, r, "at the end")

    def op_shared(self):
        """A shared data region: a new one (of a file on /mnt, mapped
        MAP_SHARED, the file sometimes removed at once; or anonymous
        MAP_SHARED), or an old one re-read (after msync for a file),
        re-filled or verified. Its pages leave through writeback and
        reclaim (a file's) or swap (shmem's) and come back by faults."""
        pid, r = self.pick_data(("rw",), shared=True)
        if r is not None and self.rng.random() < 0.6:
            x = self.rng.random()
            if x < 0.3:
                self.fill(pid, r)
            elif x < 0.5 and r[4] != "shm":
                if self.cmd("msync %d 0x%x %d" % (pid, r[0], r[1]), timeout=120) is not None:
                    self.verify(pid, r, "after msync")
            else:
                self.verify(pid, r, "shared, after pressure")
            return
        pid = self.pick_pid()
        if pid is None:
            return self.op_spawn()
        length = self.rng.choice(SHARED_SIZES) << 10
        path = None
        if self.fat and self.rng.random() < 0.6:
            path = self.new_file(length)
        if path is not None:
            out = self.cmd("mmap %d %d file=%s shared" % (pid, length, path))
            if out and self.rng.random() < 0.4:
                self.rm(path)               # mapped, then removed: an orphan
        else:
            out = self.cmd("mmap %d %d shared" % (pid, length))
        if not out:
            return
        r = [int(out, 16), length, 0, "rw", path or "shm"]
        if self.fill(pid, r) and pid in self.procs:
            self.data.setdefault(pid, []).append(r)

    def op_oom(self):
        """A hog that touches more than RAM + swap: the OOM killer must act."""
        if self.ooms_left <= 0:
            return self.op_touch()
        self.ooms_left -= 1
        mi = meminfo(self.g)
        size = (mi["MemFree"] + mi["SwapFree"]) // 1024 + 16          # MiB
        pid = int(self.g.run("spawn hog"))
        a = self.g.run("mmap %d %dM" % (pid, size))
        self.cmd("touch %d %s %dM w" % (pid, a, size), timeout=600)
        self.procs[pid] = []
        self.sync_procs()
        if pid in self.procs:
            self.cmd("kill %d" % pid)
            self.forget(pid)

    OPS = ((6, "spawn"), (4, "fork"), (3, "kill"), (14, "mmap"), (18, "touch"), (6, "munmap"),
           (6, "mprotect"), (4, "sbrk"), (12, "kmalloc"), (9, "cache"), (6, "vmalloc"), (8, "file"),
           (24, "data"), (3, "protnone"), (3, "cow"), (6, "shared"))

    def step(self):
        total = sum(w for w, _ in self.OPS)
        x = self.rng.randrange(total)
        for w, name in self.OPS:
            if x < w:
                break
            x -= w
        getattr(self, "op_" + name)()
        self.report.ops += 1

    def run(self, ops):
        t0 = time.monotonic()
        oom_at = {self.rng.randrange(ops // 4, ops) for _ in range(self.ooms_left)} if ops >= 8 else set()
        for i in range(ops):
            if i in oom_at:
                self.sample_frag()          # just before and after: the OOM kill shows
                self.op_oom()
                self.report.ops += 1
                self.sample_frag()
                self.report.oom_marks.append(len(self.report.frag) - 1)
            else:
                self.step()
            if (i + 1) % self.frag_every == 0:
                self.sample_frag()
            if (i + 1) % self.check_every == 0:
                self.check_invariants()
        self.check_invariants()
        self.verify_all_data()
        if self.snapshot:
            from kpyqemu import memmap
            self.snap = memmap.snapshot(self.g)     # the workload's memory, before teardown
        self.teardown()
        self.check_invariants()
        v = vmstat(self.g)
        r = self.report
        r.oom_kills = v.get("oom_kill", 0) - self.v0.get("oom_kill", 0)
        r.pswpout = v.get("pswpout", 0) - self.v0.get("pswpout", 0)
        r.pswpin = v.get("pswpin", 0) - self.v0.get("pswpin", 0)
        r.heap_kb = heap_figures(self.g)
        r.seconds = time.monotonic() - t0
        return r

    def teardown(self):
        """Free what the workload holds: every object, area, file, process."""
        for a in self.objs:
            self.cmd("kfree %s" % a)
        for backend, objs in self.cache_objs.items():
            for a in objs:
                self.cmd("kmem_cache_free soak-%s %s" % (backend, a))
        for a in self.vmallocs:
            self.cmd("vfree %s" % a)
        self.sync_procs()
        for pid in sorted(self.procs):
            self.cmd("kill %d" % pid)
        for f in self.files:
            self.cmd("rm %s" % f)
        self.objs, self.vmallocs, self.files, self.procs, self.data = [], [], [], {}, {}
        self.sizes = {}
        self.cache_objs = {b: [] for b in self.cache_objs}

    # -- invariants ----------------------------------------------------------------
    def sample_frag(self):
        rows = [l.split()[4:] for l in self.g.run("cat /proc/buddyinfo").split("\n")]
        per_order = [sum(int(r[o]) for r in rows) for o in range(len(rows[0]))]
        self.report.frag.append((self.report.ops, per_order))

    def violation(self, what):
        self.report.violations.append(what)
        self.log("VIOLATION: " + what)

    def check_invariants(self):
        r = self.report
        r.rounds += 1
        out = self.g.run("check", check=False)
        r.checks += 1
        if not out.endswith("check: ok"):
            self.violation("check: " + out.split("\n")[-1])
        r.checks += 1
        mi = meminfo(self.g)
        buddy = 0
        for line in self.g.run("cat /proc/buddyinfo").split("\n"):
            buddy += sum(int(c) << o for o, c in enumerate(line.split()[4:]))
        if mi["MemFree"] != buddy * 4:
            self.violation("MemFree %d kB, buddyinfo %d kB" % (mi["MemFree"], buddy * 4))
        kinds = self.frame_kinds()
        for line in self.g.run("ps").split("\n")[1:]:
            if not line.endswith("]"):          # kernel threads have no page tables of their own
                self.check_process(int(line.split()[0]), kinds)

    def frame_kinds(self):
        """Owner kind of every frame's record, from mem_map over QMP (block
        heads only: the pcp split makes every user frame its own head)."""
        data = self.g.read_phys(self.mem_map_base, self.nr_pfns * 16)
        return data

    def check_process(self, pid, mem_map):
        g = self.g
        r = self.report
        maps = []
        for line in g.run("cat /proc/%d/maps" % pid, check=False).split("\n"):
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+ *(\S*)", line)
            if m:
                maps.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3),
                             m.group(4).startswith("/mnt/")))
        pgd = int(g.run("pgd %d" % pid), 16)
        w = g.walker(pgd)
        ents = ptdump.entries(w)
        r.checks += 1
        wx = ptdump.check_wx(ents)
        if not wx.ok:
            self.violation("pid %d: %s" % (pid, wx))
        r.checks += 1
        for m in w.mappings(0, USER_END):
            vma = next((v for v in maps if v[0] <= m.va and m.end <= v[1]), None)
            if vma is None:
                self.violation("pid %d: 0x%x mapped outside every VMA" % (pid, m.va))
                continue
            perms = vma[2]
            if not m.user or "r" not in perms or (m.writable and "w" not in perms) \
                    or (m.executable and "x" not in perms):
                self.violation("pid %d: 0x%x %s in a %s VMA" % (pid, m.va, m.flag_string(), perms))
            for pa in range(m.pa, m.pa + m.size, PAGE_SIZE):
                pfn = pa >> 12
                kind = (mem_map[pfn * 16] | mem_map[pfn * 16 + 1] << 8) >> KIND_SHIFT \
                    if pfn < self.nr_pfns else -1
                if kind not in (KIND_ANON, KIND_ZERO) and not (kind == KIND_PAGECACHE and vma[3]):
                    self.violation("pid %d: 0x%x maps frame 0x%x of kind %d (kernel memory?)"
                                   % (pid, m.va, pa, kind))


def soak_backend(backend, ops, seed, check_every, ooms, workdir, log, png=None):
    """One backend's soak on a fresh guest; its memmap PNG (taken before
    the teardown) to `png` when given."""
    data, swap, fat, host_swap = make_disks(workdir)
    with Guest(mem=GUEST_MEM, cmdline="slab=%s noswap" % backend, drives=[str(data), str(swap)],
               keep_log=False) as g:
        s = Soak(g, seed, check_every=check_every, ooms=ooms, fat=fat, host_swap=host_swap,
                 log=log, snapshot=png is not None)
        rep = s.run(ops)
        g.run("echo done")
        accel = g.accel
    if png:
        from kpyqemu import memmap
        memmap.write_memmap_png(png, s.snap, title="slab=%s after %d soak operations" % (backend, ops))
    return rep, accel


def fuzz_run(lines, seed):
    """The console fuzz on a fresh 64 MiB guest (as tests/guest/test_fuzz.py):
    its Report and whether the memory accounting came back unchanged."""
    from kpyqemu import fuzz
    with Guest(mem=GUEST_MEM, keep_log=False) as g:
        before = fuzz.accounting(g.run)
        fz = fuzz.Fuzzer(seed, fuzz.names_from_help(g.run("help")))
        report = fuzz.drive(g, fz.lines(lines))
        same = not report.hangs and not report.crashes and fuzz.accounting(g.run) == before
    return report, same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=3000, help="operations in all (split over the backends)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-every", type=int, default=50)
    ap.add_argument("--ooms", type=int, default=2, help="OOM events per backend")
    ap.add_argument("--backends", default="slub,slab,slob")
    ap.add_argument("--png-dir", default=None,
                    help="write soak-frag.png (fragmentation chart) and soak-memmap-BACKEND.png here")
    ap.add_argument("--frag-png", default=None, help="write the fragmentation chart here")
    ap.add_argument("--fuzz-lines", type=int, default=0, help="then type this many fuzz lines (0: none)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    backends = args.backends.split(",")
    total = Report()
    log = print if args.verbose else None
    accel = "?"
    pngs = []
    for i, b in enumerate(backends):
        png = str(Path(args.png_dir) / ("soak-memmap-%s.png" % b)) if args.png_dir else None
        with tempfile.TemporaryDirectory(prefix="kpysoak-") as d:
            rep, accel = soak_backend(b, args.ops // len(backends), args.seed + i, args.check_every,
                                      args.ooms, d, log, png)
        print("slab=%s: %s" % (b, rep.summary()), flush=True)
        for v in rep.violations[:20]:
            print("  " + v)
        total.add(rep)
        pngs += [png] if png else []
    frag = args.frag_png or (str(Path(args.png_dir) / "soak-frag.png") if args.png_dir else None)
    if frag:
        from kpyqemu import memmap
        memmap.write_frag_chart(frag, total.frag, marks=total.oom_marks)
        pngs.insert(0, frag)
    failed = bool(total.violations)
    lines = []
    if args.fuzz_lines:
        fz, same = fuzz_run(args.fuzz_lines, args.seed)
        failed |= bool(fz.crashes or fz.hangs or fz.bad or not same)
        lines.append(fz.summary() + ("; accounting unchanged" if same else "; ACCOUNTING CHANGED"))
        lines += ["  bad answer: %r -> %r" % (l[:60], o[-200:]) for l, o in fz.bad[:5]]
    lines.append(total.summary())
    print("\n== soak summary (accel=%s, seed %d, backends %s) ==" % (accel, args.seed, args.backends))
    print("\n".join(lines + ["PNG: " + p for p in pngs]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
