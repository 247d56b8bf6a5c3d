# Processes and their address spaces on the console: spawn/fork/kill/ps,
# the memory system calls acting on a pid (mmap, munmap, mprotect, brk,
# sbrk, malloc/free), touching memory for real (touch/read/write/fill load
# the process's CR3 and go through hw.v*: every first access is a real #PF),
# and /proc/sys/vm/legacy_va_layout, mmap_min_addr, max_map_count. write,
# fill and free are the process variants of the file system's and procps'
# commands (registry.pid_variant).
# /proc/<pid>/ files are in proc_pid.py, top in cmd_top.py.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import USER_END, USER_START
from kernel_py.demo import umalloc
from kernel_py.mm.types import page_align
from kernel_py.mm.vm.mmap import MAX_MAP_COUNT, MMAP_MIN_ADDR
from kernel_py.mm.vm.vma import (
    MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MS_NAMES, MS_SYNC, PROT_READ, PROT_WRITE, MappedFile,
    parse_prot,
)
from kernel_py.kernel import signal
from kernel_py.shell import registry
from kernel_py.shell.registry import command, pid_variant, pseudo_file
from kernel_py.arch.x86.cpu import PAGE_SIZE

MAX_TOUCH = 1 << 40
MAX_READ = 4096
MAX_FILL = 1 << 32

def procs(k):
    p = k.procs
    if p is None:
        raise KernelError("ENOSYS", "no process table (boot failed?)")
    return p


def task_of(k, word):
    """The task of a pid whose address space the command acts on."""
    t = procs(k).get(word)
    if t.mm is None:
        raise KernelError("ESRCH", "process %d has no address space (%s)" % (
            t.pid, "a zombie" if t.state in ("Z", "X") else "a kernel thread"))
    return t


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
    return KernelError("EINVAL", "usage: " + registry.usage_of(name))


def user_range(addr, length):
    if length <= 0:
        raise KernelError("EINVAL", "length must be positive")
    if addr < USER_START or addr + length > USER_END:
        raise KernelError("EFAULT", "0x%x-0x%x is outside user space" % (addr, addr + length))


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


@command("kill", "kill [-SIGNAL | -s SIGNAL] PID... | kill -l",
         "send a signal (default SIGTERM; -PGID: a process group); a process the console "
         "made ends at once, freeing every frame and page table")
def cmd_kill(k, args):
    if args == ["-l"]:
        return " ".join("%d) %s" % (i, signal.NAMES[i]) for i in range(1, len(signal.NAMES)))
    signo, targets = kill_args(args)
    if not targets:
        raise usage(k, "kill")
    for word in targets:
        n = num(word, "pid")
        if n < -1:
            if not signal.kill_pgrp(k, -n, signo):
                raise KernelError("ESRCH", "no process group %d" % -n)
            continue
        t = procs(k).get(word)
        if t.is_user() and signo != signal.SIGKILL:
            signal.send_signal(k, t, signo, signal.SI_USER)
        elif signo:
            procs(k).exit(word)
    return ""


def kill_args(args):
    """(signal, pid words) from kill's arguments: -9, -KILL, -SIGKILL, -s KILL."""
    if args[:1] == ["-s"] and len(args) > 1:
        return signal_number(args[1]), args[2:]
    if args and args[0].startswith("-") and len(args) > 1:
        return signal_number(args[0][1:]), args[1:]
    return signal.SIGTERM, args


def signal_number(word):
    if word.isdigit() and 0 <= int(word) < len(signal.NAMES):
        return int(word)
    name = word.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in signal.NAMES:
        return signal.NAMES.index(name)
    raise KernelError("EINVAL", "unknown signal %r" % word)


@command("exit", "exit PID", "the process exits (as kill)")
def cmd_exit(k, args):
    return do_exit(k, args, "exit")


def ps_time(k, t):
    """ps's TIME: utime + stime as [DD-]HH:MM:SS."""
    s = (t.utime + t.stime) // k.clock.hz if k.clock is not None else 0
    text = "%02d:%02d:%02d" % (s // 3600 % 24, s // 60 % 60, s % 60)
    return "%d-%s" % (s // 86400, text) if s >= 86400 else text


@command("ps", "ps", "list processes: state, sizes (KiB), CPU time")
def cmd_ps(k, args):
    lines = ["    PID    PPID S      VSZ     RSS     TIME COMMAND"]
    for pid in procs(k).pids():
        t = procs(k).tasks[pid]
        mm = t.mm                           # None: a zombie or a kernel thread
        lines.append("%7d %7d %s %8d %7d %8s %s" % (
            t.pid, t.ppid, t.state, mm.total_vm() * 4 if mm is not None else 0,
            mm.rss() * 4 if mm is not None else 0, ps_time(k, t),
            t.comm if mm is not None or t.is_user()
            else "[%s]" % t.comm))
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


@pid_variant("free", "free PID ADDR", "C-library free in the process")
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


@pid_variant("write", "write PID ADDR HEXBYTES|STRING", "store bytes (hex digits) or a string in the process's memory")
def cmd_write(k, args):
    if len(args) != 3:
        raise usage(k, "write")
    t = task_of(k, args[0])
    addr = num(args[1], "address")
    data = parse_data(args[2])
    user_range(addr, len(data))
    procs(k).run_in(t, k.hw.vwritebytes, addr, data)
    return ""


@pid_variant("fill", "fill PID ADDR LENGTH BYTE", "memset the process's memory")
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


# -- /proc/sys/vm/legacy_va_layout -----------------------------------------------

def write_legacy(k, text):
    v = text.strip()
    if v not in ("0", "1"):
        raise KernelError("EINVAL", "0 or 1")
    k.legacy_va_layout = v == "1"
    for t in procs(k).tasks.values():
        if t.mm is not None:
            t.mm.legacy_va_layout = k.legacy_va_layout


@pseudo_file("/proc/sys/vm/legacy_va_layout", write_legacy)
def proc_legacy_va_layout(k):
    return "1" if k.legacy_va_layout else "0"


# -- /proc/sys/vm/mmap_min_addr, max_map_count (mm/vm/mmap.py's, read-only here) --

@pseudo_file("/proc/sys/vm/mmap_min_addr")
def proc_mmap_min_addr(k):
    return "%d" % MMAP_MIN_ADDR


@pseudo_file("/proc/sys/vm/max_map_count")
def proc_max_map_count(k):
    return "%d" % MAX_MAP_COUNT
