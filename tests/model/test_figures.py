"""The figures of /proc/stat, /proc/uptime, /proc/loadavg, /proc/PID/stat,
/proc/meminfo's heap lines, syslog(2) and the console's top, vmstat, free,
uptime and dmesg: Linux's formats, and figures that move with what the
machine does (issue 15, items 3 and 5). Ring 3 is the simulated machine's
(kernel_py/sim/user.py): each stretch in user mode moves the TSC on by
USER_MS and ends with a timer tick, as a spinning program does."""

import re

import pytest

from kernel_py.arch.x86.ptrace import IRQ_VECTOR_BASE
from kernel_py.kernel.exit import do_exit, release_task
from kernel_py.kernel.loadavg import LoadAvg
from kernel_py.kernel.printk import LOG_BUF_LEN
from kernel_py.lib.errno import EFAULT, EINVAL, ESRCH
from tests.model.usersupport import UserBox

USER_MS = 10


@pytest.fixture
def box():
    return UserBox()


def spinning(b, names):
    """Tasks on the run queue whose ring 3 spins (a tick every USER_MS)."""
    k, hw = b.k, b.hw
    tasks = [b.new_task(n) for n in names]
    for t in tasks:
        k.sched.enqueue(t)

    def user(regs):
        hw._tsc += USER_MS * 1000000
        hw.irq_count[0] += 1
        return IRQ_VECTOR_BASE + 0
    hw.user_mode = user
    return tasks


def run_for(b, ms):
    """Run the queue for about ms of TSC time, a slice per tick."""
    k = b.k
    end = k.hw.rdtsc() + ms * 1000000
    while k.hw.rdtsc() < end:
        k.sched.need_resched = True
        assert k.sched.run_one()


def stat_lines(b):
    return dict((l.split()[0], l.split()[1:]) for l in b.sh.execute("cat /proc/stat").split("\n"))


def test_proc_stat_format_and_figures_move(box):
    s0 = stat_lines(box)
    assert list(s0) == ["cpu", "cpu0", "intr", "ctxt", "btime", "processes", "procs_running",
                        "procs_blocked", "softirq"]
    assert len(s0["cpu"]) == 10 and len(s0["intr"]) == 17 and len(s0["softirq"]) == 11
    assert box.sh.execute("cat /proc/stat").startswith("cpu  ")      # two spaces, as Linux
    a, c = spinning(box, ["spin", "spin2"])
    run_for(box, 1000)
    s1 = stat_lines(box)
    user = int(s1["cpu"][0]) - int(s0["cpu"][0])
    assert 90 <= user <= 110                                 # ~1 s in ring 3: ~100 USER_HZ ticks
    assert int(s1["ctxt"][0]) - int(s0["ctxt"][0]) >= 90     # the two alternate every slice
    assert int(s1["intr"][1]) - int(s0["intr"][1]) >= 90     # IRQ 0: the ticks
    assert int(s1["intr"][0]) == sum(int(x) for x in s1["intr"][1:])
    assert int(s1["processes"][0]) == int(s0["processes"][0]) + 2
    assert s1["procs_running"] == ["2"] and s1["procs_blocked"] == ["0"]
    total = sum(int(x) for x in s1["cpu"])
    up = float(box.sh.execute("cat /proc/uptime").split()[0])
    assert abs(total - up * 100) <= 2                        # the columns add up to the uptime


def test_spinning_task_utime_and_pid_stat(box):
    t, = spinning(box, ["spin"])
    f0 = box.sh.execute("cat /proc/%d/stat" % t.pid).split()
    run_for(box, 500)
    f1 = box.sh.execute("cat /proc/%d/stat" % t.pid).split()
    assert len(f1) == 52 and f1[1] == "(spin)" and f1[2] == "R"
    assert int(f1[13]) - int(f0[13]) >= 45                   # utime: ~50 ticks of 10 ms
    assert int(f1[22]) == t.mm.total_vm() * 4096 and int(f1[23]) == t.mm.rss()
    statm = box.sh.execute("cat /proc/%d/statm" % t.pid).split()
    assert int(statm[0]) == t.mm.total_vm() and int(statm[1]) == t.mm.rss()
    top = box.sh.execute("top -b -n 1").split("\n")
    row = [l.split() for l in top[7:] if l.split()[0] == str(t.pid)][0]
    assert row[-1] == "spin" and row[10] != "0:00.00" and float(row[8]) > 0
    ps = [l.split() for l in box.sh.execute("ps").split("\n")[1:] if l.split()[0] == str(t.pid)][0]
    assert ps[5] == "00:00:00" and ps[-1] == "spin"          # 0.5 s: under a second


def test_loadavg_rises_with_runnable_tasks_and_decays(box):
    k = box.k
    assert box.sh.execute("cat /proc/loadavg").startswith("0.00 0.00 0.00 ")
    spinning(box, ["a", "b", "c"])
    run_for(box, 61000)                                       # a minute of three runnable
    la = box.sh.execute("cat /proc/loadavg").split()
    one, five, fifteen = (float(x) for x in la[:3])
    assert 1.7 <= one <= 2.1                                  # 3 * (1 - 1/e) = 1.90
    assert 0 < fifteen < five < one
    assert la[3] == "3/%d" % len(k.procs.tasks) and la[4] == str(k.procs.last_pid)
    for t in list(k.sched.rq):
        k.sched.dequeue(t)
    k.hw._tsc += 60 * 10 ** 9
    k.loadavg.update(k.sched.nr_active())
    assert float(box.sh.execute("cat /proc/loadavg").split()[0]) < one / 2


class FakeClock:
    hz = 1000
    t0 = 0

    def __init__(self):
        self.now = 0

    def rdtsc(self):
        return self.now


def test_calc_load_fixed_point_as_linux():
    c = FakeClock()
    la = LoadAvg(c)
    for _ in range(12):                                       # one minute of 5 s folds
        c.now += 5000
        la.update(1)
    assert la.avenrun[0] == 1299       # calc_load: load*EXP_1 + active*(FIXED_1-EXP_1), rounded up while rising
    assert la.text() == "0.63 0.18 0.06"
    la.avenrun = [31, 30, 0]                                  # 0.0151, 0.0146: rounded by FIXED_1/200
    assert la.text(", ") == "0.02, 0.01, 0.00"


def test_uptime_idle_and_console_figures(box):
    up, idle = (float(x) for x in box.sh.execute("cat /proc/uptime").split())
    assert up >= 0 and idle == 0                              # the host tests never halt
    spinning(box, ["spin"])
    run_for(box, 300)
    assert re.match(r"^ \d\d:\d\d:\d\d up 0 min,  0 users,  load average: "
                    r"\d\.\d\d, \d\.\d\d, \d\.\d\d$", box.sh.execute("uptime"))
    top = box.sh.execute("top -b -n 1").split("\n")
    us = float(top[2].split()[1])
    assert us > 10 and "100.0 id" not in top[2]
    assert top[1].startswith("Tasks:   5 total,   1 running,   4 sleeping")
    vm = box.sh.execute("vmstat").split("\n")
    v = dict(zip(vm[1].split(), (int(x) for x in vm[2].split())))
    assert v["r"] == 1 and v["b"] == 0 and v["in"] > 0 and v["cs"] >= 0 and v["us"] > 10
    assert v["us"] + v["sy"] + v["id"] + v["wa"] + v["st"] in (99, 100, 101)
    assert box.sh.execute("uptime x").startswith("error: EINVAL")


def test_free_shared_is_shmem(box):
    k = box.k
    t = box.new_task()
    MAP_SHARED_ANON = 0x01 | 0x20
    a = box.call(t, "mmap", 0, 1 << 20, 3, MAP_SHARED_ANON, -1, 0)
    assert a > 0
    k.procs.use_task(t)
    box.hw.vwritebytes(a, b"x" * (1 << 20))
    mem = box.sh.execute("free").split("\n")[1].split()
    shmem = int(re.search(r"Shmem:\s+(\d+)", box.sh.execute("cat /proc/meminfo")).group(1))
    assert shmem >= 1024 and int(mem[4]) == shmem


def test_meminfo_heap_lines(box, monkeypatch):
    mi = box.sh.execute("cat /proc/meminfo").split("\n")
    names = [l.split(":")[0] for l in mi]
    assert names[-4:] == ["PyHeapTotal", "PyHeapUsed", "PyHeapLive", "PyHeapPeak"]
    size = [e - s for s, e, n in box.hw.reserved() if n == "heap"][0]
    assert mi[-4] == "%-16s%8d kB" % ("PyHeapTotal:", size >> 10)
    # the platform's figures, as the guest reports them: before and after collections
    monkeypatch.setattr(box.hw, "heap_info", lambda: (size, 3 << 20, 0, 0, 0))
    mi = dict(l.split(":") for l in box.sh.execute("cat /proc/meminfo").split("\n"))
    assert [int(mi[n].split()[0]) for n in ("PyHeapUsed", "PyHeapLive", "PyHeapPeak")] == \
        [3072, 3072, 3072]                                  # nothing collected: all counts live
    monkeypatch.setattr(box.hw, "heap_info", lambda: (size, 3 << 20, 1 << 20, 2 << 20, 4))
    mi = dict(l.split(":") for l in box.sh.execute("cat /proc/meminfo").split("\n"))
    assert [int(mi[n].split()[0]) for n in ("PyHeapUsed", "PyHeapLive", "PyHeapPeak")] == \
        [3072, 1024, 2048]


def test_syslog_reads_clears_and_refuses_bad_input(box):
    k = box.k
    t = box.new_task()
    k.printk("figures: hello")
    assert box.call(t, "syslog", 10, 0, 0) == LOG_BUF_LEN
    n = box.call(t, "syslog", 3, t.buf, 1 << 16)
    text = bytes(box.get(t, t.buf, n)).decode()
    assert re.search(r"^<4>\[ *\d+\.\d{6}\] figures: hello\n\Z", text, re.M)
    assert all(re.match(r"<4>\[ *\d+\.\d{6}\] ", l) for l in text.split("\n") if l)
    small = box.call(t, "syslog", 3, t.buf, 40)               # only the newest whole lines
    assert small == 0 or bytes(box.get(t, t.buf, small)).decode().endswith("figures: hello\n")
    assert box.call(t, "syslog", 5, 0, 0) == 0                # CLEAR
    assert box.call(t, "syslog", 3, t.buf, 4096) == 0
    k.printk("figures: after")
    n = box.call(t, "syslog", 4, t.buf, 4096)                 # READ_CLEAR
    assert bytes(box.get(t, t.buf, n)).decode().endswith("figures: after\n")
    assert box.call(t, "syslog", 3, t.buf, 4096) == 0
    unread = box.call(t, "syslog", 9, 0, 0)
    n = box.call(t, "syslog", 2, t.buf, 1 << 16)             # READ consumes
    assert n == unread > 0 and box.call(t, "syslog", 9, 0, 0) == 0
    assert box.call(t, "syslog", 3, 0, 10) == -EINVAL
    assert box.call(t, "syslog", 3, t.buf, -1) == -EINVAL
    assert box.call(t, "syslog", 99, 0, 0) == -EINVAL
    assert box.call(t, "syslog", 8, 0, 9) == -EINVAL
    k.printk("figures: more")
    assert box.call(t, "syslog", 3, 0x10, 4096) == -EFAULT
    assert box.sh.execute("dmesg").split("\n")[-1].endswith("] figures: more")
    assert box.sh.execute("dmesg -C") == "" and box.sh.execute("dmesg") == ""
    assert box.sh.execute("dmesg -x").startswith("error: EINVAL")


def test_log_keeps_log_buf_len_bytes(box):
    k = box.k
    line = "y" * 1000
    for _ in range(LOG_BUF_LEN // 1000 + 50):
        k.printk(line)
    assert k.log_bytes <= LOG_BUF_LEN and k.log_bytes == sum(len(m) for m in k.log)
    assert len(k.log) == len(k.log_times) and k.log[-1] == line


def test_reaped_children_faults_in_cminflt_cmajflt(box):
    k = box.k
    t = box.new_task("parent")
    c = box.new_task("child", ppid=t.pid)
    c.min_flt, c.maj_flt = 7, 2
    do_exit(k, c, 0)
    release_task(k, c)
    f = box.sh.execute("cat /proc/%d/stat" % t.pid).split()
    assert (f[9], f[10], f[11], f[12]) == ("0", "7", "0", "2")


def run_ticks(b, ms):
    """Run the queue for about ms of TSC time, each task until its slice
    ends (the tick decides, as in the guest)."""
    k = b.k
    end = k.hw.rdtsc() + ms * 1000000
    while k.hw.rdtsc() < end:
        assert k.sched.run_one()


def test_nice_weights_the_slices_and_counts_as_nice(box):
    """setpriority: a task at nice -5 gets three times the CPU of one at
    0 (slices of 6 and 2 ticks, from sched_prio_to_weight), one at 19 half
    (1 tick); the ring-3 time at a positive nice is /proc/stat's nice
    column, not user; /proc/PID/stat and top show PR and NI."""
    a, b_, c = spinning(box, ["fav", "plain", "low"])
    assert box.sys(a, "setpriority", 0, 0, -5) == 0
    assert box.sys(a, "setpriority", 0, c.pid, 19) == 0
    assert box.sys(a, "getpriority", 0, 0) == 25 and box.sys(a, "getpriority", 0, c.pid) == 1
    s0 = stat_lines(box)
    run_ticks(box, 3000)
    s1 = stat_lines(box)
    ua, ub, uc = a.utime, b_.utime, c.utime
    assert 2.5 <= ua / ub <= 3.5 and 0.4 <= uc / ub <= 0.6, (ua, ub, uc)
    nice = int(s1["cpu"][1]) - int(s0["cpu"][1])
    user = int(s1["cpu"][0]) - int(s0["cpu"][0])
    assert abs(nice - box.k.cpustat.ticks(uc)) <= 1 and abs(user - box.k.cpustat.ticks(ua + ub)) <= 2
    f = box.sh.execute("cat /proc/%d/stat" % c.pid).split()
    assert f[17:19] == ["39", "19"]
    row = [l.split() for l in box.sh.execute("top -b -n 1").split("\n")[7:]
           if l.split()[0] == str(a.pid)][0]
    assert row[2:4] == ["15", "-5"]
    # back to 0: the time at 19 stays nice, nothing more is added
    assert box.sys(a, "setpriority", 0, c.pid, 0) == 0
    before = box.k.cpustat.nice()
    run_ticks(box, 300)
    assert box.k.cpustat.nice() == before


def test_priority_and_affinity_errors(box):
    t = box.new_task()
    assert box.sys(t, "setpriority", 0, 0, 100) == 0 and t.nice == 19          # clamped
    assert box.sys(t, "setpriority", 0, 0, -100) == 0 and t.nice == -20
    assert box.sys(t, "getpriority", 3, 0) == -EINVAL
    assert box.sys(t, "getpriority", 0, 99999) == -ESRCH
    assert box.sys(t, "setpriority", 2, 1000, 0) == -ESRCH                  # no such user's tasks
    assert box.sys(t, "setpriority", 1, 0, 3) == 0 and t.nice == 3           # its process group
    m = box.ubuf(t, 16)
    assert box.sys(t, "sched_getaffinity", 0, 16, m) == 8
    assert box.get(t, m, 8) == b"\x01" + b"\0" * 7
    assert box.sys(t, "sched_getaffinity", 0, 4, m) == -EINVAL
    assert box.sys(t, "sched_getaffinity", 99999, 8, m) == -ESRCH
    assert box.call(t, "sched_getaffinity", 0, 8, 8) == -EFAULT
    assert box.sys(t, "sched_setaffinity", 0, 8, box.ubuf(t, 8, b"\x01" + b"\0" * 7)) == 0
    assert box.sys(t, "sched_setaffinity", 0, 8, box.ubuf(t, 8, b"\x02" + b"\0" * 7)) == -EINVAL
