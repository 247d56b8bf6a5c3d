# Swap and reclaim on the console: mkswap, swapon, swapoff, /proc/swaps,
# vm.swappiness, proactive reclaim (cgroup v2's memory.reclaim at the
# root); and two test helpers: `pattern` writes a known pattern over a
# process's memory (a stamp and a fill byte per page), `memsum` checksums
# it (lib/csum.py). The OOM killer's /proc/<pid>/ files are in proc_pid.py.

from kernel_py.lib.errors import KernelError
from kernel_py.lib import csum
from kernel_py.mm.page.buddy import MAX_RECLAIM_RETRIES
from kernel_py.mm.reclaim.vmscan import MAX_SWAPPINESS
from kernel_py.shell.registry import command, pseudo_file
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK

SIZE_SUFFIX = {"K": 10, "M": 20, "G": 30}


def swap_sys(k):
    s = k.swap
    if s is None:
        raise KernelError("ENOSYS", "no swap support (boot failed?)")
    return s


def block_dev(k, path):
    if k.blk is None:
        raise KernelError("ENODEV", "no block devices")
    if not path.startswith("/dev/"):
        raise KernelError("EINVAL", "%s: a block device like /dev/sdb" % path)
    return k.blk.get(path)


@command("mkswap", "mkswap [-L LABEL] DEVICE", "write a Linux swap header (SWAPSPACE2) on a disk")
def cmd_mkswap(k, args):
    label = ""
    if len(args) == 3 and args[0] == "-L":
        label, args = args[1], args[2:]
    if len(args) != 1:
        raise KernelError("EINVAL", "usage: mkswap [-L LABEL] DEVICE")
    dev = block_dev(k, args[0])
    last_page, uuid = swap_sys(k).mkswap(dev, label)
    return "Setting up swapspace version 1, size = %d KiB (%d bytes)\n%s, UUID=%s" % (
        last_page * 4, last_page * PAGE_SIZE, "LABEL=" + label if label else "no label", uuid)


@command("swapon", "swapon [-p PRIO] DEVICE | swapon -s",
         "start swapping to a disk with a swap header (mkswap); -s lists the areas")
def cmd_swapon(k, args):
    s = swap_sys(k)
    if args in (["-s"], ["--summary"]):
        return s.proc_swaps()
    prio = None
    if len(args) == 3 and args[0] == "-p":
        try:
            prio = int(args[1])
        except ValueError:
            raise KernelError("EINVAL", "priority %r is not a number" % args[1])
        if not -1 <= prio <= 32767:
            raise KernelError("EINVAL", "priority must be -1..32767")
        if prio == -1:
            prio = None
        args = args[2:]
    if len(args) != 1:
        raise KernelError("EINVAL", "usage: swapon [-p PRIO] DEVICE | swapon -s")
    s.swapon(block_dev(k, args[0]), prio)
    return ""


@command("swapoff", "swapoff DEVICE", "read every page of a swap area back into memory and stop using it")
def cmd_swapoff(k, args):
    if len(args) != 1:
        raise KernelError("EINVAL", "usage: swapoff DEVICE")
    if args[0] in ("-a", "--all"):
        s = swap_sys(k)
        for si in list(s.active()):
            s.swapoff(si.dev)
        return ""
    swap_sys(k).swapoff(block_dev(k, args[0]))
    return ""


@pseudo_file("/proc/swaps")
def proc_swaps(k):
    return swap_sys(k).proc_swaps()


# -- vm.swappiness
def parse_int(text, lo, hi, what):
    t = text.strip()
    try:
        v = int(t)
    except ValueError:
        raise KernelError("EINVAL", "%s: %r is not a number" % (what, t))
    if not lo <= v <= hi:
        raise KernelError("EINVAL", "%s: %d not in %d..%d" % (what, v, lo, hi))
    return v


def vmscan(k):
    v = k.vmscan
    if v is None:
        raise KernelError("ENOSYS", "no reclaim (boot failed?)")
    return v


def write_swappiness(k, text):
    vmscan(k).swappiness = parse_int(text, 0, MAX_SWAPPINESS, "swappiness")


@pseudo_file("/proc/sys/vm/swappiness", write=write_swappiness)
def sys_swappiness(k):
    return "%d" % vmscan(k).swappiness


# -- proactive reclaim
def write_memory_reclaim(k, text):
    """echo SIZE > /sys/fs/cgroup/memory.reclaim (cgroup v2's root):
    reclaim that much; EAGAIN when less could be freed."""
    t = text.strip()
    shift = 0
    if t and t[-1].upper() in SIZE_SUFFIX:
        shift = SIZE_SUFFIX[t[-1].upper()]
        t = t[:-1]
    try:
        n = int(t) << shift
    except ValueError:
        raise KernelError("EINVAL", "memory.reclaim: %r is not a size" % text.strip())
    if n <= 0:
        raise KernelError("EINVAL", "memory.reclaim: size must be positive")
    want = (n + PAGE_SIZE - 1) // PAGE_SIZE
    v = vmscan(k)
    got = 0
    retries = MAX_RECLAIM_RETRIES   # as memory_reclaim()
    while got < want:
        r = v.try_to_free_pages(nr=want - got)
        if not r:
            if not retries:
                break
            retries -= 1
        got += r
    if got < want:
        raise KernelError("EAGAIN", "memory.reclaim: %d of %d pages reclaimed" % (got, want))


@pseudo_file("/sys/fs/cgroup/memory.reclaim", write=write_memory_reclaim)
def sys_memory_reclaim(k):
    return ""


# -- pattern / memsum
def num(word, what):
    shift = 0
    if word and word[-1].upper() in SIZE_SUFFIX and not word.lower().startswith("0x"):
        shift = SIZE_SUFFIX[word[-1].upper()]
        word = word[:-1]
    try:
        return int(word, 0) << shift
    except ValueError:
        raise KernelError("EINVAL", "%s %r is not a number" % (what, word))


def page_range(k, args, name):
    if len(args) < 3:
        raise KernelError("EINVAL", "usage: %s PID ADDR LENGTH%s" % (name, " SEED" if name == "pattern" else ""))
    t = k.procs.get(args[0])
    addr = num(args[1], "address")
    length = num(args[2], "length")
    if addr & (PAGE_SIZE - 1) or length <= 0 or length & (PAGE_SIZE - 1):
        raise KernelError("EINVAL", "address and length must be whole pages")
    return t, addr, length


def _pattern(hw, start, end, seed):
    vfill, vw64 = hw.vfill, hw.vwrite64
    va = start
    while va < end:
        vfill(va, csum.pattern_byte(seed, va), PAGE_SIZE)
        vw64(va, csum.pattern_stamp(seed, va))
        va += PAGE_SIZE


@command("pattern", "pattern PID ADDR LENGTH SEED",
         "fill each page of the range with a stamp (seed, page number) and a fill byte")
def cmd_pattern(k, args):
    if len(args) != 4:
        raise KernelError("EINVAL", "usage: pattern PID ADDR LENGTH SEED")
    t, addr, length = page_range(k, args, "pattern")
    seed = num(args[3], "seed")
    k.procs.run_in(t, _pattern, k.hw, addr, addr + length, seed)
    return ""


def _memsum(k, mm, start, end):
    hw = k.hw
    r8, mem, r64 = hw.vread8, hw.mem, hw.read64
    h = csum.FNV_OFFSET
    page_csum, fold = csum.page_csum, csum.fold
    va = start
    while va < end:
        r8(va)                          # fault it in (swap-in, zero page)
        slot = mm.pte_slot(va)
        pa = r64(slot) & PTE_ADDR_MASK
        h = fold(h, page_csum(mem(pa, PAGE_SIZE)))
        va += PAGE_SIZE
    return h


@command("memsum", "memsum PID ADDR LENGTH",
         "checksum of a range of a process's memory (faults pages in, swap-in included)")
def cmd_memsum(k, args):
    if len(args) != 3:
        raise KernelError("EINVAL", "usage: memsum PID ADDR LENGTH")
    t, addr, length = page_range(k, args, "memsum")
    st = k.fault.stats
    f0, m0 = st.pgfault, st.pgmajfault
    h = k.procs.run_in(t, _memsum, k, t.mm, addr, addr + length)
    return "memsum 0x%016x pages=%d faults=%d majfaults=%d" % (
        h, length // PAGE_SIZE, st.pgfault - f0, st.pgmajfault - m0)
