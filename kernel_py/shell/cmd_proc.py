# Processes and their address spaces on the console: spawn/fork/kill/ps,
# the memory system calls acting on a pid (mmap, munmap, mprotect, brk,
# sbrk, malloc/free), touching memory for real (touch/read/write/fill load
# the process's CR3 and go through hw.v*: every first access is a real #PF),
# /proc/<pid>/{maps,status,smaps}, /proc/vmstat's fault counters, and top.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import USER_END, USER_START
from kernel_py.mm.vm import fault as fault_mod
from kernel_py.demo import umalloc
from kernel_py.mm.vm.mmap import page_align
from kernel_py.mm.vm.vma import (
    MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MS_NAMES, MS_SYNC, PROT_READ, PROT_WRITE,
    MappedFile, parse_prot,
)
from kernel_py.kernel.proc import STATE_NAMES
from kernel_py.shell.cmd_mm import VMSTAT_SOURCES
from kernel_py.shell import registry
from kernel_py.shell.registry import command, pid_file, pseudo_file
from kernel_py.mm.types import KIND_PAGECACHE, KIND_SHIFT, PG_dirty, SHM_SWAPPED, VM_SHARED, _PAGE_PROTNONE
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW

MAX_TOUCH = 1 << 40
MAX_READ = 4096
MAX_FILL = 1 << 32

VMSTAT_SOURCES.append(fault_mod.vmstat_pairs)


def procs(k):
    p = getattr(k, "procs", None)
    if p is None:
        raise KernelError("ENOSYS", "no process table (boot failed?)")
    return p


def task_of(k, word):
    return procs(k).get(word)


SUFFIXES = {"K": 10, "M": 20, "G": 30, "T": 40}


def num(word, what):
    """An integer (0x.. hex too); lengths may end in K, M, G or T."""
    shift = 0
    if word and word[-1].upper() in SUFFIXES and not word.lower().startswith("0x"):
        shift = SUFFIXES[word[-1].upper()]
        word = word[:-1]
    try:
        return int(word, 0) << shift
    except ValueError:
        raise KernelError("EINVAL", "%s %r is not a number" % (what, word))


def usage(k, name):
    return KernelError("EINVAL", "usage: " + MY_USAGE.get(name, registry.COMMANDS[name][1]))


def user_range(addr, length):
    if length <= 0:
        raise KernelError("EINVAL", "length must be positive")
    if addr < USER_START or addr + length > USER_END:
        raise KernelError("EFAULT", "0x%x-0x%x is outside user space" % (addr, addr + length))


def pid_command(name, use, summary):
    """Register a command that acts on a pid; when another module already
    has a command of that name (the file system's `write FILE`, procps'
    `free`), both stay: a first argument that is a pid selects this one.
    (shell/all.py imports this module last.)"""
    def register(fn):
        prev = registry.COMMANDS.get(name)
        if prev is None:
            registry.COMMANDS[name] = (fn, use, summary)
            return fn
        other = prev[0]

        def either(k, args):
            if len(args) >= 2 and args[0].isdigit():
                return fn(k, args)
            return other(k, args)
        registry.COMMANDS[name] = (either, prev[1] + " | " + use, prev[2] + "; " + summary)
        MY_USAGE[name] = use
        return fn
    return register


MY_USAGE = {}


# -- processes --------------------------------------------------------------

@command("spawn", "spawn NAME", "create a process with an empty address space; prints its pid")
def cmd_spawn(k, args):
    if len(args) != 1:
        raise usage(k, "spawn")
    return "%d" % procs(k).spawn(args[0]).pid


@command("fork", "fork PID", "duplicate a process copy-on-write; prints the child's pid")
def cmd_fork(k, args):
    if len(args) != 1:
        raise usage(k, "fork")
    return "%d" % procs(k).fork(args[0]).pid


def do_exit(k, args, name):
    if len(args) != 1:
        raise usage(k, name)
    procs(k).exit(args[0])
    return ""


@command("kill", "kill PID", "end a process: free its address space, every frame and page table")
def cmd_kill(k, args):
    return do_exit(k, args, "kill")


@command("exit", "exit PID", "the process exits (as kill)")
def cmd_exit(k, args):
    return do_exit(k, args, "exit")


@command("ps", "ps", "list processes")
def cmd_ps(k, args):
    lines = ["    PID    PPID S      VSZ     RSS COMMAND"]
    for pid in procs(k).pids():
        t = procs(k).tasks[pid]
        mm = t.mm
        lines.append("%7d %7d %s %8d %7d %s" % (t.pid, t.ppid, t.state, mm.total_vm() * 4,
                                               mm.rss() * 4, t.name))
    return "\n".join(lines)


@command("pgd", "pgd PID", "physical address of the process's PML4 (what CR3 holds when it runs)")
def cmd_pgd(k, args):
    if len(args) != 1:
        raise usage(k, "pgd")
    return "0x%x" % task_of(k, args[0]).mm.pgd


# -- memory system calls ------------------------------------------------------

@command("mmap", "mmap PID LENGTH [prot=rw|r|rx|rwx|none] [shared|private] [fixed=ADDR] "
         "[file=/mnt/FILE [offset=N]]",
         "reserve memory, anonymous or of a file from byte offset N (page aligned; "
         "private by default), no frames until touched; prints the address")
def cmd_mmap(k, args):
    if len(args) < 2:
        raise usage(k, "mmap")
    t = task_of(k, args[0])
    length = num(args[1], "length")
    prot = PROT_READ | PROT_WRITE
    share = None
    addr = 0
    flags = 0
    path = None
    offset = None
    for w in args[2:]:
        if w.startswith("prot="):
            prot = parse_prot(w[5:])
            if prot is None:
                raise KernelError("EINVAL", "bad protection %r (rw, r, rx, rwx, none)" % w[5:])
        elif w in ("shared", "private"):
            if share is not None:
                raise KernelError("EINVAL", "shared or private, once")
            share = MAP_SHARED if w == "shared" else MAP_PRIVATE
        elif w.startswith("fixed="):
            addr = num(w[6:], "address")
            flags |= MAP_FIXED
        elif w.startswith("file=") and len(w) > 5:
            path = w[5:]
        elif w.startswith("offset="):
            offset = num(w[7:], "offset")
        else:
            raise KernelError("EINVAL", "unknown mmap option %r" % w)
    flags |= share if share is not None else MAP_PRIVATE
    if path is None:
        if offset is not None:
            raise KernelError("EINVAL", "offset= needs file=")
        return "0x%x" % t.mm.mmap(addr, length, prot, flags)
    offset = offset or 0
    if offset < 0 or offset & (PAGE_SIZE - 1):
        raise KernelError("EINVAL", "offset %d is not a multiple of the page size" % offset)
    if length <= 0:
        raise KernelError("EINVAL", "length must be positive")
    if k.vfs is None or not k.vfs.owns(path):
        raise KernelError("ENOENT", "%s: not a file under a mount point" % path)
    f = MappedFile(k.vfs, path)
    try:
        return "0x%x" % t.mm.mmap(addr, length, prot, flags, file=f, pgoff=offset >> 12)
    finally:
        f.fput()                            # the opener's reference: the VMA holds its own


@command("munmap", "munmap PID ADDR LENGTH", "unmap a range: frames and empty page tables are freed")
def cmd_munmap(k, args):
    if len(args) != 3:
        raise usage(k, "munmap")
    t = task_of(k, args[0])
    t.mm.munmap(num(args[1], "address"), num(args[2], "length"))
    return ""


@command("msync", "msync PID ADDR LENGTH [sync|async|invalidate[,...]]",
         "MS_SYNC (the default here) writes the dirty pages of the range's shared file mappings"
         " to the disk; MS_ASYNC and MS_INVALIDATE leave them to writeback; prints pages written")
def cmd_msync(k, args):
    if not 3 <= len(args) <= 4:
        raise usage(k, "msync")
    t = task_of(k, args[0])
    flags = parse_msync_flags(args[3]) if len(args) == 4 else MS_SYNC
    n = t.mm.msync(num(args[1], "address"), num(args[2], "length"), flags)
    return "%d pages written" % n


def parse_msync_flags(text):
    """'sync', 'async,invalidate', 'MS_SYNC|MS_INVALIDATE' -> MS_* bits."""
    names = dict(MS_NAMES)
    flags = 0
    for word in text.replace("|", ",").split(","):
        w = word.lower()
        if w.startswith("ms_"):
            w = w[3:]
        if w not in names:
            raise KernelError("EINVAL", "msync flag %r (sync, async, invalidate)" % word)
        flags |= names[w]
    return flags


@command("mprotect", "mprotect PID ADDR LENGTH PROT", "change the protection of a mapped range (rw, r, rx, none)")
def cmd_mprotect(k, args):
    if len(args) != 4:
        raise usage(k, "mprotect")
    t = task_of(k, args[0])
    prot = parse_prot(args[3])
    if prot is None:
        raise KernelError("EINVAL", "bad protection %r (rw, r, rx, rwx, none)" % args[3])
    t.mm.mprotect(num(args[1], "address"), num(args[2], "length"), prot)
    return ""


@command("brk", "brk PID [ADDR]", "print, or move, the end of the heap")
def cmd_brk(k, args):
    if not 1 <= len(args) <= 2:
        raise usage(k, "brk")
    mm = task_of(k, args[0]).mm
    if len(args) == 2:
        mm.set_brk(num(args[1], "address"))
    return "0x%x" % mm.brk


@command("sbrk", "sbrk PID INCREMENT", "move the end of the heap by INCREMENT; prints the old end")
def cmd_sbrk(k, args):
    if len(args) != 2:
        raise usage(k, "sbrk")
    mm = task_of(k, args[0]).mm
    old = mm.brk
    inc = num(args[1], "increment")
    if inc:
        mm.set_brk(old + inc)
    return "0x%x" % old


@command("malloc", "malloc PID SIZE", "C-library malloc in the process: brk heap, mmap for >= 128 KiB")
def cmd_malloc(k, args):
    if len(args) != 2:
        raise usage(k, "malloc")
    return "0x%x" % umalloc.malloc(k, task_of(k, args[0]), num(args[1], "size"))


@pid_command("free", "free PID ADDR", "C-library free in the process")
def cmd_free(k, args):
    if len(args) != 2:
        raise usage(k, "free")
    umalloc.free(k, task_of(k, args[0]), num(args[1], "address"))
    return ""


# -- touching memory --------------------------------------------------------

def touch_pages(hw, start, end, write):
    if write:
        w8 = hw.vwrite8
        va = start
        while va < end:
            w8(va, 0)
            va += PAGE_SIZE
    else:
        r8 = hw.vread8
        va = start
        while va < end:
            r8(va)
            va += PAGE_SIZE


@command("touch", "touch PID ADDR [LENGTH] [r|w]",
         "one access per page (w stores a zero byte at each page start); prints pages and faults")
def cmd_touch(k, args):
    if not 2 <= len(args) <= 4:
        raise usage(k, "touch")
    t = task_of(k, args[0])
    addr = num(args[1], "address")
    length = PAGE_SIZE
    write = True
    for w in args[2:]:
        if w in ("r", "w"):
            write = w == "w"
        else:
            length = num(w, "length")
    if length > MAX_TOUCH:
        raise KernelError("EINVAL", "length too large")
    user_range(addr, length)
    start = addr & ~(PAGE_SIZE - 1)
    end = page_align(addr + length)
    st = k.fault.stats
    f0 = st.pgfault
    procs(k).run_in(t, touch_pages, k.hw, start, end, write)
    return "touched %d pages, %d faults" % ((end - start) // PAGE_SIZE, st.pgfault - f0)


@command("read", "read PID ADDR [N]", "N bytes (default 16, at most 4096) of the process's memory, in hex")
def cmd_read(k, args):
    if not 2 <= len(args) <= 3:
        raise usage(k, "read")
    t = task_of(k, args[0])
    addr = num(args[1], "address")
    n = num(args[2], "count") if len(args) == 3 else 16
    if not 0 < n <= MAX_READ:
        raise KernelError("EINVAL", "count must be 1..%d" % MAX_READ)
    user_range(addr, n)
    data = procs(k).run_in(t, k.hw.vreadbytes, addr, n)
    return "\n".join(" ".join("%02x" % b for b in data[i:i + 16]) for i in range(0, len(data), 16))


def parse_data(word):
    """HEXBYTES (an even number of hex digits) or a string."""
    if word and len(word) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in word):
        return bytes.fromhex(word)
    return word.encode()


@pid_command("write", "write PID ADDR HEXBYTES|STRING", "store bytes (hex digits) or a string in the process's memory")
def cmd_write(k, args):
    if len(args) != 3:
        raise usage(k, "write")
    t = task_of(k, args[0])
    addr = num(args[1], "address")
    data = parse_data(args[2])
    user_range(addr, len(data))
    procs(k).run_in(t, k.hw.vwritebytes, addr, data)
    return ""


@pid_command("fill", "fill PID ADDR LENGTH BYTE", "memset the process's memory")
def cmd_fill(k, args):
    if len(args) != 4:
        raise usage(k, "fill")
    t = task_of(k, args[0])
    addr = num(args[1], "address")
    length = num(args[2], "length")
    byte = num(args[3], "byte")
    if not 0 <= byte <= 255:
        raise KernelError("EINVAL", "byte must be 0..255")
    if length > MAX_FILL:
        raise KernelError("EINVAL", "length too large")
    user_range(addr, length)
    procs(k).run_in(t, k.hw.vfill, addr, byte, length)
    return ""


# -- /proc/<pid>/... ---------------------------------------------------------------

def maps_line(vma):
    """show_map_vma(): the name padded to column 73."""
    dev, ino, name = "00:00", 0, vma.name
    if vma.shm is not None:
        dev, ino, name = "00:01", vma.shm.ino, "/dev/zero (deleted)"
    elif vma.file is not None:
        f = vma.file
        dev, ino, name = f.dev, f.ino.i_ino, f.path + (" (deleted)" if f.ino.deleted else "")
    head = "%08x-%08x %s %08x %s %d " % (vma.start, vma.end, vma.perms(),
                                         vma.pgoff << 12 if vma.vm_ops is not None else 0, dev, ino)
    if name:
        if len(head) < 72:
            head += " " * (72 - len(head))
        head += " " + name
    return head


def pid_task(k, pid):
    t = procs(k).tasks.get(pid)
    if t is None:
        raise KernelError("ENOENT", "/proc/%d" % pid)
    return t


@pid_file("maps")
def proc_maps(k, pid):
    return "\n".join(maps_line(v) for v in pid_task(k, pid).mm.vmas)


def kb_line(name, kb):
    return "%-16s%8d kB" % (name + ":", kb)


def vma_usage(k, mm, vma):
    """(rss, pss_bytes, shared_clean, shared_dirty, private_clean, private_dirty,
    referenced, anonymous, swap) in pages (pss in bytes) for one VMA. A
    page-cache page is shared by the PTEs that map it (the cache's own
    reference does not count) and dirty when its PTE or the page says so."""
    hw = k.hw
    r64, r32, r16 = hw.read64, hw.read32, hw.read16
    base = k.mem_map.base
    zero = k.zero_page
    filemap = vma.file is not None
    rss = pss = sc = sd = pc = pd = ref = anon = swap = 0
    for pt, vbase, i0, i1 in mm.pt_tables(vma.start, vma.end):
        for i in range(i0, i1):
            e = r64(pt + (i << 3))
            if not e:
                continue
            if not e & (_PAGE_PRESENT | _PAGE_PROTNONE):     # swapped out
                swap += 1
                continue
            pa = e & PTE_ADDR_MASK
            if pa == zero:
                continue
            rss += 1
            rec = base + ((pa >> 12) << 4)
            c = r32(rec + 4)
            cached = filemap and r16(rec) >> KIND_SHIFT == KIND_PAGECACHE
            if vma.shm is not None or cached:
                c -= 1                  # the shared object's (the cache's) own reference
            else:
                anon += 1
            c = max(c, 1)
            pss += PAGE_SIZE // c
            if cached:
                dirty = e & _PAGE_DIRTY or r16(rec) & PG_dirty
            else:
                dirty = e & _PAGE_DIRTY or (e & _PAGE_RW and vma.shm is None)
            if e & 0x20:
                ref += 1
            if c > 1:
                if dirty:
                    sd += 1
                else:
                    sc += 1
            elif dirty:
                pd += 1
            else:
                pc += 1
    if vma.shm is not None:             # shmem_swap_usage: the object's swap entries in range
        lo, hi = vma.pgoff, vma.pgoff + (vma.size >> 12)
        for off, v in vma.shm.pages.items():
            if v & SHM_SWAPPED and lo <= off < hi:
                swap += 1
    return rss, pss, sc, sd, pc, pd, ref, anon, swap


@pid_file("smaps")
def proc_smaps(k, pid):
    mm = pid_task(k, pid).mm
    out = []
    for v in mm.vmas:
        rss, pss, sc, sd, pc, pd, ref, anon, swap = vma_usage(k, mm, v)
        out.append(maps_line(v))
        for name, kb in (("Size", v.size >> 10), ("KernelPageSize", 4), ("MMUPageSize", 4),
                         ("Rss", rss * 4), ("Pss", pss >> 10), ("Shared_Clean", sc * 4),
                         ("Shared_Dirty", sd * 4), ("Private_Clean", pc * 4),
                         ("Private_Dirty", pd * 4), ("Referenced", ref * 4),
                         ("Anonymous", anon * 4 if v.shm is None else 0),
                         ("LazyFree", 0), ("AnonHugePages", 0), ("ShmemPmdMapped", 0),
                         ("Shared_Hugetlb", 0), ("Private_Hugetlb", 0), ("Swap", swap * 4),
                         ("SwapPss", 0), ("Locked", 0)):
            out.append(kb_line(name, kb))
        out.append("THPeligible:    0")
        out.append("VmFlags: %s " % v.vmflags())
    return "\n".join(out)


def status_pairs(mm):
    data = stk = 0
    for v in mm.vmas:
        if v.name == "[stack]":
            stk += v.size
        elif not v.flags & VM_SHARED and v.flags & 2:       # is_data_mapping
            data += v.size
    mm.update_hiwater()
    return (("VmPeak", mm.hiwater_vm * 4), ("VmSize", mm.total_vm() * 4), ("VmLck", 0),
            ("VmPin", 0), ("VmHWM", mm.hiwater_rss * 4), ("VmRSS", mm.rss() * 4),
            ("RssAnon", mm.rss_anon * 4), ("RssFile", mm.rss_file * 4),
            ("RssShmem", mm.rss_shmem * 4), ("VmData", data >> 10), ("VmStk", stk >> 10),
            ("VmExe", 0), ("VmLib", 0), ("VmPTE", mm.nr_pgtables * 4), ("VmSwap", mm.swapents * 4))


@pid_file("status")
def proc_status(k, pid):
    t = pid_task(k, pid)
    lines = ["Name:\t%s" % t.name, "Umask:\t0022", "State:\t%s" % STATE_NAMES.get(t.state, t.state),
             "Tgid:\t%d" % t.pid, "Ngid:\t0", "Pid:\t%d" % t.pid, "PPid:\t%d" % t.ppid,
             "TracerPid:\t0", "Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0"]
    for name, kb in status_pairs(t.mm):
        lines.append("%s:\t%8d kB" % (name, kb))
    lines.append("Threads:\t1")
    lines.append("Pgd:\t0x%x" % t.mm.pgd)
    return "\n".join(lines)


def write_legacy(k, text):
    v = text.strip()
    if v not in ("0", "1"):
        raise KernelError("EINVAL", "0 or 1")
    k.legacy_va_layout = v == "1"
    for t in procs(k).tasks.values():
        t.mm.legacy_va_layout = k.legacy_va_layout


@pseudo_file("/proc/sys/vm/legacy_va_layout", write_legacy)
def proc_legacy_va_layout(k):
    return "1" if getattr(k, "legacy_va_layout", False) else "0"


# -- top ------------------------------------------------------------------------

def tenths(num_, den):
    """'12.3' for num_/den with one decimal, integers only."""
    if den <= 0:
        return "0.0"
    t = (num_ * 10 + den // 2) // den
    return "%d.%d" % (t // 10, t % 10)


def uptime_text(k):
    clock = getattr(k, "clock", None)
    secs = 0
    if clock is not None:
        secs = clock.rdtsc() // max(1, clock.hz)
    mins = secs // 60
    if mins >= 60:
        return "%2d:%02d" % (mins // 60, mins % 60)
    return "%2d min" % mins


TOP_SCALES = {"k": ("KiB", 0), "m": ("MiB", 10), "g": ("GiB", 20)}


def top_args(args):
    """top -b -n 1 [-E k|m|g] (also -bn1, -n1, -Em): the summary's unit."""
    scale = "m"
    words = []
    for a in args:
        if a.startswith("-") and len(a) > 2 and a[1] in "bn" and not a.startswith("-n"):
            words.append("-b")
            a = "-" + a[2:]
            if a == "-":
                continue
        if a.startswith("-n") and len(a) > 2:
            words += ["-n", a[2:]]
        elif a.startswith("-E") and len(a) > 2:
            words += ["-E", a[2:]]
        else:
            words.append(a)
    i = 0
    while i < len(words):
        w = words[i]
        if w == "-b":
            i += 1
        elif w == "-n" and i + 1 < len(words) and words[i + 1] == "1":
            i += 2
        elif w == "-E" and i + 1 < len(words) and words[i + 1].lower() in TOP_SCALES:
            scale = words[i + 1].lower()
            i += 2
        else:
            raise KernelError("EINVAL", "only batch mode, one iteration: top -b -n 1 [-E k|m|g]")
    return TOP_SCALES[scale]


def scaled(kb, shift):
    """top's summary numbers: KiB as integers, larger units with one decimal."""
    if not shift:
        return "%d" % kb
    return tenths(kb, 1 << shift)


@command("top", "top -b -n 1 [-E k|m|g]", "processes by resident memory, with top's summary lines")
def cmd_top(k, args):
    unit, shift = top_args(args)
    ps = procs(k)
    tasks = [ps.tasks[p] for p in ps.pids()]
    mi = {}
    for line in k.meminfo().split("\n"):
        name, _, rest = line.partition(":")
        mi[name] = int(rest.split()[0])
    total = mi["MemTotal"]
    free = mi["MemFree"]
    slab = getattr(k, "slab", None)
    sreclaim = slab.slab_pages()[0] * 4 if slab is not None else 0
    bc = mi.get("Buffers", 0) + mi.get("Cached", 0) + sreclaim
    used = total - free - bc
    if used < 0:
        used = total - free
    stotal, sfree = mi.get("SwapTotal", 0), mi.get("SwapFree", 0)
    running = sum(1 for t in tasks if t.state == "R")
    lines = [
        "top - 00:00:00 up %s,  0 users,  load average: 0.00, 0.00, 0.00" % uptime_text(k),
        "Tasks: %3d total, %3d running, %3d sleeping,   0 stopped,   0 zombie" % (
            len(tasks), running, len(tasks) - running),
        "%Cpu(s):  0.0 us,  0.0 sy,  0.0 ni,100.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st",
        "%s Mem : %8s total, %8s free, %8s used, %8s buff/cache" % (
            unit, scaled(total, shift), scaled(free, shift), scaled(used, shift), scaled(bc, shift)),
        "%s Swap: %8s total, %8s free, %8s used. %8s avail Mem" % (
            unit, scaled(stotal, shift), scaled(sfree, shift), scaled(stotal - sfree, shift),
            scaled(mi.get("MemAvailable", free), shift)),
        "",
        "    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND",
    ]
    tasks.sort(key=lambda t: (-t.mm.rss(), t.pid))
    for t in tasks:
        mm = t.mm
        res = mm.rss() * 4
        lines.append("%7d %-8s  20   0 %7d %6d %6d %s %5s %5s   0:00.00 %s" % (
            t.pid, "root", mm.total_vm() * 4, res, (mm.rss_file + mm.rss_shmem) * 4, t.state, "0.0",
            tenths(res * 100, total), t.name))
    return "\n".join(lines)
