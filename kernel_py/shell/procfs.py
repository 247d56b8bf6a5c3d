# Generic /proc files: cmdline, version, meminfo (from mm/vmstat.py's
# counters), and the machine's time figures: stat, uptime, loadavg,
# interrupts (fs/proc/stat.c, uptime.c, loadavg.c, interrupts.c), in
# Linux's exact formats, which procps and BusyBox parse. The subsystems'
# own files are in the cmd_* modules, the per-process ones in proc_pid.py.

from kernel_py.arch.x86.ptrace import NR_IRQS
from kernel_py.kernel.task import TASK_UNINTERRUPTIBLE
from kernel_py.kernel.time import NSEC
from kernel_py.mm import vmstat
from kernel_py.shell.registry import pseudo_file

NR_SOFTIRQS = 10                # Linux's softirq vector count (HI ... RCU)


@pseudo_file("/proc/cmdline")
def proc_cmdline(k):
    return k.hw.cmdline()


@pseudo_file("/proc/version")
def proc_version(k):
    return "kernel_py version 0.1 (MicroPython on x86-64; accel=%s)" % k.hw.accel()


@pseudo_file("/proc/meminfo")
def proc_meminfo(k):
    return vmstat.meminfo_show(k)


def nr_running(k):
    """Runnable tasks, the one running included (nr_running())."""
    return len(k.sched.rq) if k.sched is not None else 0


def nr_blocked(k):
    """Tasks in uninterruptible sleep (procs_blocked; nr_iowait's stand-in:
    a D sleep is the only wait for I/O here)."""
    if k.procs is None:
        return 0
    return sum(1 for t in k.procs.tasks.values() if t.state == TASK_UNINTERRUPTIBLE)


def boot_time_s(k):
    """btime: the wall clock at boot, in seconds since the epoch."""
    return k.time.realtime_base // NSEC if k.time is not None else 0


def hundredths(k, tsc):
    """'S.hh' for TSC ticks (/proc/uptime's two figures)."""
    cs = tsc * 100 // k.clock.hz
    return "%d.%02d" % (cs // 100, cs % 100)


@pseudo_file("/proc/stat")
def proc_stat(k):
    """show_stat: the cpu line (one CPU, so cpu0 repeats it) in USER_HZ
    ticks, interrupts per line since boot, context switches, boot time,
    tasks created, running and blocked."""
    cols = " ".join("%d" % v for v in k.cpustat.columns())
    irqs = k.hw.irq_counts()
    forks = k.procs.forks if k.procs is not None else 0
    ctxt = k.sched.nr_switches if k.sched is not None else 0
    return "\n".join((
        "cpu  " + cols,
        "cpu0 " + cols,
        "intr %d " % sum(irqs) + " ".join("%d" % n for n in irqs[:NR_IRQS]),
        "ctxt %d" % ctxt,
        "btime %d" % boot_time_s(k),
        "processes %d" % forks,
        "procs_running %d" % nr_running(k),
        "procs_blocked %d" % nr_blocked(k),
        "softirq 0" + " 0" * NR_SOFTIRQS,
    ))


@pseudo_file("/proc/uptime")
def proc_uptime(k):
    """Seconds since boot and seconds the CPU was idle (uptime_proc_show)."""
    return "%s %s" % (hundredths(k, k.cpustat.elapsed()), hundredths(k, k.cpustat.idle))


@pseudo_file("/proc/loadavg")
def proc_loadavg(k):
    """The three averages, runnable/total tasks and the last pid allocated
    (loadavg_proc_show)."""
    total = len(k.procs.tasks) if k.procs is not None else 0
    last = k.procs.last_pid if k.procs is not None else 0
    return "%s %d/%d %d" % (k.loadavg.text(), nr_running(k), total, last)


@pseudo_file("/proc/interrupts")
def proc_interrupts(k):
    """show_interrupts for the 8259's lines that fired (one CPU)."""
    names = {0: "timer", 4: "serial"}      # the lines this kernel unmasks
    lines = ["           CPU0"]
    for n, c in enumerate(k.hw.irq_counts()):
        if c or n in (0, 4):
            lines.append("%3d: %10d   XT-PIC  %s" % (n, c, names.get(n, "")))
    return "\n".join(lines)
