# memleak: outstanding allocations of a running program, grouped by call
# stack, on the model of bcc's tools/memleak.py (which puts uprobes on
# libc's allocator through BPF; here the tracer is kernel code on
# kernel/events/uprobes.py), with heaptrack's summary at the program's exit.
#
# Probes: entry and return probes on the public entry points of a static
# glibc program's allocator, malloc, calloc and realloc (the return probe
# learns the pointer), and an entry probe on free. glibc's internals call
# each other (realloc(NULL, n) is __libc_malloc, realloc(p, 0) frees p), so
# a hit while another probed call is in progress is the inner half of that
# call and is not counted again. mmap, munmap and brk are seen on the
# system-call path (the task's syscall_trace hook, Linux's sys_exit
# tracepoint), counted in the summary: glibc serves large blocks and the
# heap itself from them.
#
# Stacks: the return address at the entry probe's RSP, then the frame-
# pointer chain (RBP -> saved RBP, return address above it), read with
# get_user64 and bounded: a pointer that is not 8-byte aligned, does not go
# up the stack, or cannot be read, or a return address outside the program
# text, ends the walk (a corrupt stack truncates a stack, never faults the
# kernel). Programs built without frame pointers give one frame.
#
# Started with the program (memleak -c), tracing begins at main: a probe on
# main attaches the allocator probes and removes itself. What glibc's
# static start-up allocates before main (_dl_non_dynamic_init's search
# paths, kept for the process's life, which valgrind's suppressions hide
# and __libc_freeres frees) is not the program's to free.

from kernel_py.arch.x86.ptrace import RAX, RBP, RDI, RSI, RSP
from kernel_py.lib.errors import KernelError

MAX_STACK_DEPTH = 16
TOP_STACKS = 10                 # bcc's -T default
TOP_SITES = 5
DEFAULT_OLDER_MS = 500          # bcc's -o default
MASK64 = 0xFFFFFFFFFFFFFFFF
SYSCALLS_SEEN = {9: "mmap", 11: "munmap", 12: "brk"}
NR_MMAP, NR_MUNMAP, NR_BRK = 9, 11, 12
ALLOC_FUNCS = ("malloc", "calloc", "realloc")


class Site:
    """One call stack's allocation calls (heaptrack's per-site counters)."""

    def __init__(self, stack):
        self.stack = stack
        self.calls = 0
        self.bytes = 0


class MemleakTracer:
    """The tracer attached to one process (k.memleak[pid])."""

    def __init__(self, k, t, older_ms=DEFAULT_OLDER_MS):
        self.k = k
        self.t = t
        self.pid = t.pid
        self.comm = t.comm
        self.older_ms = older_ms
        self.syms = None
        self.probes = []
        self.allocs = {}                # address -> (size, Site, tsc)
        self.sites = {}                 # stack tuple -> Site
        self.inside = 0                 # probed calls in progress (glibc's nesting)
        self.calls = {"malloc": 0, "calloc": 0, "realloc": 0, "free": 0}
        self.temporary = 0              # freed before any other allocation (heaptrack)
        self.last_alloc = 0
        self.outstanding = 0            # bytes
        self.peak = 0
        self.bad_frees = 0              # free of an address never allocated (while traced)
        self.truncated = 0              # stacks a bad frame pointer ended early
        self.sys_calls = {"mmap": 0, "munmap": 0, "brk": 0}
        self.mmap_bytes = 0
        self.brk_start = 0
        self.brk_top = 0
        self.hook = self.syscall_exit   # one bound method: t.syscall_trace is compared by identity
        self.timer = None
        self.interval = 0
        self.t0 = k.hw.rdtsc()
        self.done = False

    def attach_at(self, where):
        """Attach when the program reaches function `where` (memleak -c:
        main), from a probe that then removes itself."""
        up = self.k.uprobes
        self.syms = up.symbols_of(self.t)
        self.k.memleak[self.pid] = self
        self.probes.append(up.register(self.t, where, self.start_hit, None, self))

    def start_hit(self, t, p):
        up = self.k.uprobes
        up.unregister(t, p)
        self.probes.remove(p)
        self.t0 = self.k.hw.rdtsc()
        try:
            self.attach()
        except KernelError as e:
            self.k.log_out("memleak: pid %d: cannot attach at %s: %s" % (self.pid, p.name, e))
            self.detach()
        return None

    # -- attaching ------------------------------------------------------------------
    def attach(self):
        """Probes on malloc, calloc, realloc and free; all or none."""
        up = self.k.uprobes
        t = self.t
        self.syms = up.symbols_of(t)
        try:
            for name in ALLOC_FUNCS:
                self.probes.append(up.register(t, name, self.alloc_entry, self.alloc_return,
                                               self))
            self.probes.append(up.register(t, "free", self.free_entry, None, self))
        except KernelError:
            up.unregister_owner(t, self)
            raise
        mm = t.mm
        self.brk_start = mm.start_brk
        self.brk_top = mm.brk
        t.syscall_trace = self.hook
        self.k.memleak[self.pid] = self

    def detach(self):
        t = self.t
        self.stop_timer()
        if t.syscall_trace is self.hook:
            t.syscall_trace = None
        if t.mm is not None:
            self.k.uprobes.unregister_owner(t, self)
        self.done = True
        if self.k.memleak.get(self.pid) is self:
            del self.k.memleak[self.pid]

    def every(self, seconds):
        """bcc's INTERVAL: a report on the console every `seconds`."""
        self.stop_timer()
        self.interval = seconds
        self.timer = self.k.sched.add_timer(self.k.clock.deadline(seconds * 1000000000),
                                            self.tick)

    def tick(self):
        self.timer = None
        if self.done:
            return
        self.k.log_out(self.report())
        self.every(self.interval)

    def stop_timer(self):
        if self.timer is not None:
            self.k.sched.del_timer(self.timer)
            self.timer = None

    # -- the probes ----------------------------------------------------------------
    def alloc_entry(self, t, p):
        """malloc(size) / calloc(n, size) / realloc(ptr, size): the request
        and the caller's stack, handed to the return probe."""
        self.inside += 1
        if self.inside > 1:
            return None                         # glibc's own nested call
        regs = t.regs
        name = p.name
        self.calls[name] += 1
        if name == "calloc":
            size = (regs[RDI] & MASK64) * (regs[RSI] & MASK64)
            old = 0
        elif name == "realloc":
            size = regs[RSI] & MASK64
            old = regs[RDI] & MASK64
        else:
            size = regs[RDI] & MASK64
            old = 0
        return (size, old, self.stack(t))

    def alloc_return(self, t, p, data):
        self.inside -= 1
        if data is None:
            return
        size, old, stack = data
        addr = t.regs[RAX] & MASK64
        if old and (addr or not size):          # realloc moved or freed the old block
            self.forget(old)
        if not addr:
            return
        site = self.sites.get(stack)
        if site is None:
            site = self.sites[stack] = Site(stack)
        site.calls += 1
        site.bytes += size
        self.forget(addr)                       # realloc in place: the same address again
        self.allocs[addr] = (size, site, self.k.hw.rdtsc())
        self.outstanding += size
        if self.outstanding > self.peak:
            self.peak = self.outstanding
        self.last_alloc = addr

    def free_entry(self, t, p):
        if self.inside:
            return None                         # realloc(p, 0) freeing: counted there
        addr = t.regs[RDI] & MASK64
        self.calls["free"] += 1
        if not addr:
            return None
        if addr not in self.allocs:
            self.bad_frees += 1                 # before attach, or never allocated
            return None
        if addr == self.last_alloc:
            self.temporary += 1
        self.forget(addr)
        return None

    def forget(self, addr):
        a = self.allocs.pop(addr, None)
        if a is not None:
            self.outstanding -= a[0]
            if addr == self.last_alloc:
                self.last_alloc = 0

    def syscall_exit(self, t, nr, ret):
        """mmap, munmap and brk as the program made them (counted only)."""
        name = SYSCALLS_SEEN.get(nr)
        if name is None:
            return
        self.sys_calls[name] += 1
        if nr == NR_MMAP and 0 <= ret:
            self.mmap_bytes += t.regs[RSI] & MASK64
        elif nr == NR_BRK and ret > self.brk_top:
            self.brk_top = ret

    # -- stacks ------------------------------------------------------------------------
    def stack(self, t):
        """The caller's return addresses, innermost first (a tuple)."""
        hw = self.k.hw
        regs = t.regs
        mm = t.mm
        lo, hi = mm.start_code, mm.end_code
        ret = hw.get_user64(regs[RSP] & MASK64)
        if ret is None or not lo <= ret < hi:
            self.truncated += 1
            return ()
        out = [ret]
        fp = regs[RBP] & MASK64
        while len(out) < MAX_STACK_DEPTH:
            if not fp or fp & 7:
                break
            nxt = hw.get_user64(fp)
            ret = hw.get_user64(fp + 8)
            if nxt is None or ret is None or not lo <= ret < hi:
                break
            out.append(ret)
            if nxt <= fp:                       # frames go up the stack
                break
            fp = nxt
        return tuple(out)

    def frames(self, stack):
        fmt = self.syms.format
        return ["\t\t" + fmt(a) for a in stack] or ["\t\t[unknown: no return address]"]

    # -- reports -------------------------------------------------------------------------
    def report(self, older_ms=None, top=TOP_STACKS):
        """bcc's report: outstanding allocations older than older_ms,
        grouped by stack, largest first."""
        if older_ms is None:
            older_ms = self.older_ms
        clock = self.k.clock
        now = self.k.hw.rdtsc()
        groups = {}
        for size, site, tsc in self.allocs.values():
            if clock.us(now - tsc) < older_ms * 1000:
                continue
            g = groups.get(site.stack)
            if g is None:
                g = groups[site.stack] = [0, 0]
            g[0] += size
            g[1] += 1
        rows = sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]
        out = ["[%d.%03d] Top %d stacks with outstanding allocations (pid %d %s):" % (
            clock.uptime_s(), clock.uptime_ns() // 1000000 % 1000, top, self.pid, self.comm)]
        for stack, (nbytes, n) in rows:
            out.append("\t%d bytes in %d allocations from stack" % (nbytes, n))
            out.extend(self.frames(stack))
        if not rows:
            out.append("\tno outstanding allocations older than %d ms" % older_ms)
        return "\n".join(out + self.notes())

    def notes(self):
        out = []
        if self.bad_frees:
            out.append("note: %d frees of addresses not allocated while traced "
                       "(allocated before attaching, or never)" % self.bad_frees)
        if self.truncated:
            out.append("note: %d stacks unreadable at the first frame" % self.truncated)
        return out

    def summary(self):
        """heaptrack_print's summary, when the program exits."""
        c = self.calls
        nalloc = c["malloc"] + c["calloc"] + c["realloc"]
        secs_us = self.k.clock.us(self.k.hw.rdtsc() - self.t0)
        out = ["memleak: pid %d (%s) exited; heap summary:" % (self.pid, self.comm),
               "calls to allocation functions: %d (malloc %d, calloc %d, realloc %d), "
               "free %d, in %d.%03d s" % (nalloc, c["malloc"], c["calloc"], c["realloc"],
                                          c["free"], secs_us // 1000000, secs_us // 1000 % 1000),
               "temporary allocations: %d" % self.temporary,
               "peak heap memory consumption: %d bytes" % self.peak,
               "bytes leaked: %d in %d allocations" % (self.outstanding, len(self.allocs)),
               "system calls: mmap %d (%d bytes), munmap %d, brk %d (heap %d bytes)" % (
                   self.sys_calls["mmap"], self.mmap_bytes, self.sys_calls["munmap"],
                   self.sys_calls["brk"], max(0, self.brk_top - self.brk_start)),
               "uprobe hits: %s" % ", ".join("%s %d" % (p.name, p.hits) for p in self.probes)]
        sites = sorted(self.sites.values(), key=lambda s: -s.calls)[:TOP_SITES]
        if sites:
            out.append("top allocation sites (calls):")
            for s in sites:
                out.append("\t%d calls, %d bytes from stack" % (s.calls, s.bytes))
                out.extend(self.frames(s.stack))
        out.append(self.report(0))
        return "\n".join(out)

    # -- the program's end --------------------------------------------------------------
    def on_exit(self, t):
        self.k.log_out(self.summary())
        self.detach()

    def on_exec(self, t):
        self.k.log_out("memleak: pid %d executed a new program; probes dropped\n%s" % (
            self.pid, self.summary()))
        self.stop_timer()
        t.syscall_trace = None
        self.done = True
        self.k.memleak.pop(self.pid, None)
