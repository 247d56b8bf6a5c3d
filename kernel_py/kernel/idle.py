# The loop the kernel runs after boot (Linux's kernel/sched/idle.c
# do_idle, with the console's input loop folded in): take what arrived on
# the serial line, run tasks while any is runnable, do the background work
# (kernel/kthread.py), and sleep in hlt until the next interrupt when there
# is nothing to do. The time halted is the CPU's idle time (kernel/cputime.py).

BACKGROUND_MS = 100             # background work at least this often while tasks run


def idle_loop(k):
    console = k.console
    serial = k.serial
    sched = k.sched
    hw = k.hw
    clock = k.clock
    cpustat = k.cpustat
    loadavg = k.loadavg
    getc = serial.getc
    receive = console.receive
    period = clock.hz * BACKGROUND_MS // 1000
    next_bg = 0
    console.prompt()
    while True:
        c = getc()
        if c >= 0:
            sched.switch_idle()         # the console's work is the idle task's
        while c >= 0:
            receive(c)
            c = getc()
        console.check_foreground()
        sched.wake_sleepers()
        sched.tick_control()
        if sched.run_one():
            now = clock.rdtsc()
            if now >= next_bg:
                next_bg = now + period
                k.background()
            continue
        k.background()
        sched.tick_control()
        if not sched.has_work() and not serial.ready():
            sched.switch_idle()
            t0 = clock.rdtsc()
            hw.idle()
            cpustat.idle += clock.rdtsc() - t0
            # what was active while halted (tasks in D, none runnable):
            # the periods that passed fold that, as calc_global_nohz does
            loadavg.update(sched.nr_active())
