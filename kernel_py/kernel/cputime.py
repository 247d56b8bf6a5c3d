# CPU time accounting for the whole machine (Linux's kernel/sched/cputime.c
# and include/linux/kernel_stat.h's kernel_cpustat): what /proc/stat's cpu
# line, /proc/uptime's idle figure, top's %Cpu(s) and vmstat's us/sy/id
# columns read.
#
# Measured with the TSC, not sampled by the tick (Linux's
# CONFIG_VIRT_CPU_ACCOUNTING_GEN): the entry code charges every stretch in
# ring 3 to the task's utime (arch/x86/entry.py) and the machine's user time
# is the live tasks' utime plus what released tasks had (release_task adds
# theirs to `exited_user`), so the entry's hot loop keeps one counter, not
# two; the idle loop charges the time the CPU sat in hlt to `idle` (kernel/idle.py),
# and everything else the one CPU did since boot is kernel work: system.
# Ring-3 time of a task at a positive nice is nice, not user, as
# account_user_time decides (per task: the time at nice > 0 is folded
# when the nice changes, so the hot loop still keeps one counter). There
# is one CPU, no softirqs, no guests and no hypervisor steal report, so
# those columns are zero, as Linux's are on such a machine. iowait is zero too: the disk driver polls (ATA PIO,
# drivers/ata.py), so no time passes halted while a task waits for I/O.

from kernel_py.kernel.time import USER_HZ

# the columns of /proc/stat's cpu line (kernel_stat.h's cpu_usage_stat)
CPU_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq",
               "steal", "guest", "guest_nice")


def nice_utime(t):
    """t's ring-3 TSC at a positive nice: what was folded, and the stretch
    since its nice last turned positive."""
    return t.nice_utime + (t.utime - t.nice_since if t.nice > 0 else 0)


def set_user_nice(t, nice):
    """sched/core.c's set_user_nice, for the accounting: the time at the
    old nice is folded before the new one counts."""
    if t.nice > 0 and nice <= 0:
        t.nice_utime += t.utime - t.nice_since
    elif t.nice <= 0 and nice > 0:
        t.nice_since = t.utime
    t.nice = nice


class CpuStat:
    """k.cpustat: TSC ticks spent in ring 3 and idle since boot."""

    def __init__(self, clock, procs):
        self.clock = clock
        self.procs = procs
        self.exited_user = 0            # TSC in ring 3 of the tasks released so far
        self.exited_nice = 0            # the part of it at a positive nice
        self.idle = 0                   # TSC halted in the idle loop (CPUTIME_IDLE)

    def user(self):
        """TSC in ring 3, every task since boot (CPUTIME_USER)."""
        return self.exited_user + sum(t.utime for t in self.procs.tasks.values())

    def nice(self):
        """The part of user() spent at a positive nice (CPUTIME_NICE)."""
        return self.exited_nice + sum(nice_utime(t) for t in self.procs.tasks.values())

    def release(self, t):
        """release_task: a task's ring-3 time stays in the machine's."""
        self.exited_user += t.utime
        self.exited_nice += nice_utime(t)

    def elapsed(self):
        c = self.clock
        return c.rdtsc() - c.t0

    def tsc_columns(self):
        """The ten cpu columns in TSC ticks; system is the rest of the time
        since boot (kernel work: syscalls, faults, kernel threads, the
        console), so the columns add up to the uptime."""
        user, nice, idle = self.user(), self.nice(), self.idle
        system = max(0, self.elapsed() - user - idle)
        return (user - nice, nice, system, idle, 0, 0, 0, 0, 0, 0)

    def ticks(self, tsc):
        """TSC ticks as USER_HZ clock ticks (cputime_to_clock_t)."""
        return tsc * USER_HZ // self.clock.hz

    def columns(self):
        """The cpu line's figures in USER_HZ ticks (show_stat)."""
        return [self.ticks(v) for v in self.tsc_columns()]
