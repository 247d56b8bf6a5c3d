# top -b -n 1 and uptime: procps top's summary lines (the clock, uptime and
# load average as sprint_uptime prints them, tasks by state, CPU time since
# boot from kernel/cputime.py, memory from mm/vmstat.py's figures) and its
# process table, by resident memory, with each task's CPU time. USER is
# root for every task because every task runs as uid 0 here.

from kernel_py.arch.x86.tsc import HZ
from kernel_py.kernel.time import CLOCK_REALTIME, NSEC
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


def uptime_line(k):
    """procps' sprint_uptime: the wall clock, the time up, the users and the
    load average ("12:34:56 up  1:02,  0 users,  load average: ...").
    Users are the login sessions utmp records; nothing here logs in, so 0."""
    now = k.time.clock_ns(None, CLOCK_REALTIME) // NSEC if k.time is not None else 0
    up = k.clock.uptime_s() if k.clock is not None else 0
    days, mins = up // 86400, up // 60 % 60
    hours = up // 3600 % 24
    text = "%02d:%02d:%02d up " % (now // 3600 % 24, now // 60 % 60, now % 60)
    if days:
        text += "%d %s, " % (days, "day" if days == 1 else "days")
    if hours:
        text += "%2d:%02d, " % (hours, mins)
    else:
        text += "%d min, " % mins
    load = k.loadavg.text(", ") if k.loadavg is not None else "0.00, 0.00, 0.00"
    return text + "%2d users,  load average: %s" % (0, load)


@command("uptime", "uptime", "the time, how long the machine is up, the load average (procps uptime)")
def cmd_uptime(k, args):
    if args:
        raise KernelError("EINVAL", "usage: uptime")
    return " " + uptime_line(k)


def cpu_percents(k):
    """us, sy, ni, id, wa, hi, si, st in tenths of a percent of the time
    since boot (top's first frame, vmstat's first line), from the cpu
    columns of /proc/stat (kernel/cputime.py)."""
    user, nice, system, idle, iowait, irq, softirq, steal = k.cpustat.tsc_columns()[:8]
    total = max(1, user + nice + system + idle + iowait + irq + softirq + steal)
    return [(v * 1000 + total // 2) // total for v in (user, system, nice, idle, iowait, irq,
                                                       softirq, steal)]


def cpu_time(k, t):
    """TIME+: the task's CPU time (utime + stime) as M:SS.hh."""
    cs = (t.utime + t.stime) * 100 // k.clock.hz
    return "%d:%02d.%02d" % (cs // 6000, cs // 100 % 60, cs % 100)


def pcpu_tenths(k, t):
    """%CPU in tenths: CPU time over the time since the task started (the
    first frame's figure, as ps computes pcpu)."""
    c = k.clock
    alive = (c.jiffies() - t.start_time) * c.hz // HZ if t.start_time else c.rdtsc() - c.t0
    return (t.utime + t.stime) * 1000 // max(1, alive)


def tenths_text(v):
    return "%d.%d" % (v // 10, v % 10)


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
    states = [t.state for t in tasks]
    running, stopped, zombie = states.count("R"), states.count("T"), states.count("Z")
    cpu = [tenths_text(v) for v in cpu_percents(k)]
    lines = [
        "top - " + uptime_line(k),
        "Tasks: %3d total, %3d running, %3d sleeping, %3d stopped, %3d zombie" % (
            len(tasks), running, len(tasks) - running - stopped - zombie, stopped, zombie),
        "%%Cpu(s):%5s us,%5s sy,%5s ni,%5s id,%5s wa,%5s hi,%5s si,%5s st" % tuple(cpu),
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
        lines.append("%7d %-8s %3d %3d %7d %6d %6d %s %5s %5s %9s %s" % (
            t.pid, "root", 20 + t.nice, t.nice, virt, res, shr, t.state, tenths_text(pcpu_tenths(k, t)),
            tenths(res * 100, total), cpu_time(k, t), t.comm))
    return "\n".join(lines)
