# top -b -n 1: procps top's summary lines (uptime, tasks, memory from
# mm/vmstat.py's figures) and its process table, by resident memory.

from kernel_py.lib.errors import KernelError
from kernel_py.mm import vmstat
from kernel_py.shell.cmd_proc import procs
from kernel_py.shell.registry import command


def tenths(num_, den):
    """'12.3' for num_/den with one decimal, integers only."""
    if den <= 0:
        return "0.0"
    t = (num_ * 10 + den // 2) // den
    return "%d.%d" % (t // 10, t % 10)


def uptime_text(k):
    clock = k.clock
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
    mi = dict(vmstat.meminfo_pairs(k))
    total = mi["MemTotal"]
    free = mi["MemFree"]
    sreclaim = vmstat.counter(k, "nr_slab_reclaimable") * 4
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
    tasks.sort(key=lambda t: (-(t.mm.rss() if t.mm is not None else 0), t.pid))
    for t in tasks:
        mm = t.mm
        res = mm.rss() * 4 if mm is not None else 0
        virt = mm.total_vm() * 4 if mm is not None else 0
        shr = (mm.rss_file + mm.rss_shmem) * 4 if mm is not None else 0
        lines.append("%7d %-8s  20   0 %7d %6d %6d %s %5s %5s   0:00.00 %s" % (
            t.pid, "root", virt, res, shr, t.state, "0.0", tenths(res * 100, total), t.comm))
    return "\n".join(lines)
