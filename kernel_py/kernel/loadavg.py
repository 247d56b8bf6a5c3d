# The load average (Linux's kernel/sched/loadavg.c): every LOAD_FREQ (5 s)
# the number of active tasks — runnable plus uninterruptible — is folded
# into three fixed-point exponential averages (FSHIFT = 11 bits of fraction)
# with decay factors for 1, 5 and 15 minutes, exactly as calc_load does.

FSHIFT = 11
FIXED_1 = 1 << FSHIFT
LOAD_FREQ_S = 5
EXP_1 = 1884                    # 1/exp(5s/1min) as fixed point
EXP_5 = 2014                    # 1/exp(5s/5min)
EXP_15 = 2037                   # 1/exp(5s/15min)
SI_LOAD_SHIFT = 16


def calc_load(load, exp, active):
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1
    return newload // FIXED_1


class LoadAvg:
    """k.loadavg: avenrun[3], folded when LOAD_FREQ has passed."""

    def __init__(self, clock):
        self.clock = clock
        self.avenrun = [0, 0, 0]
        self.next_fold = LOAD_FREQ_S * clock.hz

    def update(self, nr_active):
        """Fold nr_active in for every LOAD_FREQ elapsed since the last fold."""
        c = self.clock
        now = c.rdtsc() - c.t0
        if now < self.next_fold:
            return
        active = nr_active * FIXED_1
        while now >= self.next_fold:
            a = self.avenrun
            a[0] = calc_load(a[0], EXP_1, active)
            a[1] = calc_load(a[1], EXP_5, active)
            a[2] = calc_load(a[2], EXP_15, active)
            self.next_fold += LOAD_FREQ_S * c.hz

    def figures(self):
        """(int, hundredths) of each average, rounded as loadavg_proc_show
        rounds them (get_avenrun with an offset of FIXED_1/200, then
        LOAD_INT and LOAD_FRAC)."""
        out = []
        for a in self.avenrun:
            a += FIXED_1 // 200
            out.append((a >> FSHIFT, ((a & (FIXED_1 - 1)) * 100) >> FSHIFT))
        return out

    def text(self, sep=" "):
        """The three figures as /proc/loadavg prints them (sep ", " for
        uptime and top)."""
        return sep.join("%d.%02d" % f for f in self.figures())

    def sysinfo_loads(self):
        return [a << (SI_LOAD_SHIFT - FSHIFT) for a in self.avenrun]
