# Generic /proc files: cmdline, version, meminfo (from mm/vmstat.py's
# counters), stat, uptime and loadavg (CPU time, the scheduler's counts).
# The subsystems' own files are in the cmd_* modules, the per-process ones
# in proc_pid.py.

from kernel_py.kernel.task import TASK_RUNNING, TASK_UNINTERRUPTIBLE
from kernel_py.mm import vmstat
from kernel_py.shell.registry import pseudo_file


@pseudo_file("/proc/cmdline")
def proc_cmdline(k):
    return k.hw.cmdline()


@pseudo_file("/proc/version")
def proc_version(k):
    return "kernel_py version 0.1 (MicroPython on x86-64; accel=%s)" % k.hw.accel()


@pseudo_file("/proc/meminfo")
def proc_meminfo(k):
    return vmstat.meminfo_show(k)


# -- CPU time and the scheduler's figures (fs/proc/stat.c, uptime.c, loadavg.c)
USER_HZ = 100                   # the clock_t of /proc/stat (and times(2))


def cpu_times(k):
    """(user, system, idle) in TSC cycles since boot, measured: the tasks'
    utime (live and released), the idle loop's time in hlt, and the rest
    of the uptime — system calls, faults, the console and kernel threads —
    as system time, which is where Linux's tick accounting puts kernel work."""
    clock = k.clock
    sched = k.sched
    total = clock.rdtsc() - clock.t0
    user = sched.exited_utime
    for t in k.procs.tasks.values():
        user += t.utime
    idle = min(sched.idle_tsc, total)
    return user, max(0, total - user - idle), idle


def proc_stat_text(k):
    hz = k.clock.hz
    user, system, idle = [v * USER_HZ // hz for v in cpu_times(k)]
    cpu = "%d 0 %d %d 0 0 0 0 0 0" % (user, system, idle)
    tasks = k.procs.tasks.values()
    running = len([t for t in tasks if t.state == TASK_RUNNING]) or 1      # the reader runs
    blocked = len([t for t in tasks if t.state == TASK_UNINTERRUPTIBLE])
    return "\n".join([
        "cpu  " + cpu, "cpu0 " + cpu,
        "ctxt %d" % k.sched.nr_switches,
        "btime %d" % (k.time.realtime_base // 1000000000),
        "processes %d" % k.procs.forks,
        "procs_running %d" % running,
        "procs_blocked %d" % blocked,
    ])


@pseudo_file("/proc/stat")
def proc_stat(k):
    return proc_stat_text(k)


@pseudo_file("/proc/uptime")
def proc_uptime(k):
    """Seconds since boot and seconds idle, with hundredths (uptime_proc_show)."""
    hz = k.clock.hz
    up = (k.clock.rdtsc() - k.clock.t0) * 100 // hz
    idle = k.sched.idle_tsc * 100 // hz
    return "%d.%02d %d.%02d" % (up // 100, up % 100, idle // 100, idle % 100)


@pseudo_file("/proc/loadavg")
def proc_loadavg(k):
    """The three averages, runnable/total tasks, the last pid (loadavg_proc_show)."""
    tasks = k.procs.tasks.values()
    running = len([t for t in tasks if t.state == TASK_RUNNING]) or 1
    return "%s %d/%d %d" % (k.loadavg.text(), running, len(k.procs.tasks), k.procs.last_pid)
