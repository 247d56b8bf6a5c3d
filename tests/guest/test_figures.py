"""The figures an administrator reads are measurements (issue 15, items 3
and 5), on the real machine: a spinning program's CPU time in
/proc/PID/stat, the load average, context switches, interrupts and CPU
time in /proc/stat, top's and vmstat's figures from them, the kernel log's
timestamps, and the VM heap sized from RAM in /proc/meminfo. One boot."""

import re
import time

from kpyqemu import disks

user_disks = disks.pytest_fixture()

MEM_MB = 512                    # heap = RAM / 8 = 64 MiB (24..256 MiB, guest/boot_info.c)


def fields(text):
    """'Name:   123 kB' lines -> {name: int}."""
    out = {}
    for line in text.split("\n"):
        name, _, rest = line.partition(":")
        if rest.split():
            out[name] = int(rest.split()[0])
    return out


def proc_stat(g):
    return dict((l.split()[0], [int(x) for x in l.split()[1:]])
                for l in g.run("cat /proc/stat").split("\n"))


def test_spinning_program_cpu_time_load_and_heap(boot, user_disks):
    g = boot(mem="%dM" % MEM_MB, drives=user_disks.drives)
    mi = fields(g.run("cat /proc/meminfo"))
    # an eighth of the RAM in the firmware's map (a little under -m) in 2 MiB
    assert MEM_MB // 8 * 1024 - 2048 <= mi["PyHeapTotal"] <= MEM_MB // 8 * 1024
    assert mi["PyHeapTotal"] % 2048 == 0
    assert 0 < mi["PyHeapLive"] <= mi["PyHeapPeak"] < mi["PyHeapTotal"]
    assert 0 < mi["PyHeapUsed"] <= mi["PyHeapTotal"]
    g.python("import gc\ngc.collect()")                      # a collection measures the live data
    mi = fields(g.run("cat /proc/meminfo"))
    assert 0 < mi["PyHeapLive"] <= mi["PyHeapUsed"] and mi["PyHeapLive"] <= mi["PyHeapPeak"]
    assert mi["MemTotal"] <= (MEM_MB - MEM_MB // 8) * 1024    # reserved: not the buddy's
    assert g.run("cat /proc/loadavg").startswith("0.00 0.00 0.00 ")
    time.sleep(1)                                             # nothing runs: the CPU halts
    s0 = proc_stat(g)
    assert s0["cpu"][3] >= 50                                 # idle, USER_HZ ticks
    # -n: a line every 10^15 iterations, i.e. never: nothing interleaves with the commands
    pid = int(g.run("run /mnt/bin/spin -n 1000000000000000 &").split()[-1].strip("[]"))
    time.sleep(1)
    st1 = g.run("cat /proc/%d/stat" % pid).split()
    assert len(st1) == 52 and st1[1] == "(spin)"
    time.sleep(11)                                            # two LOAD_FREQ folds of 5 s
    st2 = g.run("cat /proc/%d/stat" % pid).split()
    u1, u2 = int(st1[13]), int(st2[13])
    assert u2 - u1 >= 300, (u1, u2)                           # >= 3 of ~11 s in ring 3 (TCG)
    assert int(st2[21]) > 0                                   # starttime: ticks after boot
    load = g.run("cat /proc/loadavg").split()
    assert float(load[0]) >= 0.05, load                       # 1 runnable for 10 s: ~0.15
    running, total = load[3].split("/")
    assert int(running) >= 1 and int(total) >= 5 and int(load[4]) >= pid
    s1 = proc_stat(g)
    assert s1["ctxt"][0] > s0["ctxt"][0]
    assert s1["intr"][0] - s0["intr"][0] >= 250 * 8           # the tick ran while spin ran
    assert s1["intr"][1] - s0["intr"][1] >= 250 * 8           # IRQ 0 is the tick
    assert s1["cpu"][0] - s0["cpu"][0] >= 300                 # user time, USER_HZ ticks
    assert s1["processes"][0] > s0["processes"][0]
    assert s1["procs_running"][0] >= 1
    up, idle = (float(x) for x in g.run("cat /proc/uptime").split())
    assert up >= 12 and 0 <= idle < up
    top = g.run("top -b -n 1").split("\n")
    assert re.match(r"top - \d\d:\d\d:\d\d up \d+ min,  0 users,  load average: "
                    r"(\d+\.\d\d), \d+\.\d\d, \d+\.\d\d$", top[0]), top[0]
    assert float(top[0].split("load average: ")[1].split(",")[0]) > 0
    assert not top[2].endswith("100.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st")
    us = float(top[2].split()[1])
    assert us > 0, top[2]
    row = [l for l in top[7:] if l.split()[0] == str(pid)][0].split()
    assert row[-1] == "spin" and float(row[8]) > 0 and row[10] != "0:00.00", row
    vm = g.run("vmstat").split("\n")
    v = dict(zip(vm[1].split(), (int(x) for x in vm[2].split())))
    assert v["r"] >= 1 and v["in"] > 0 and v["cs"] > 0 and v["us"] > 0
    assert re.match(r"^ \d\d:\d\d:\d\d up \d+ min,  0 users,  load average: ", g.run("uptime"))
    g.run("kill %d" % pid)
    dmesg = g.run("dmesg").split("\n")
    assert all(re.match(r"^\[ *\d+\.\d{6}\] ", l) for l in dmesg if l)
    secs = [float(l[1:l.index("]")]) for l in dmesg if l]
    assert secs == sorted(secs) and secs[-1] > 0
    mi2 = fields(g.run("cat /proc/meminfo"))
    assert mi2["PyHeapPeak"] >= mi["PyHeapPeak"]
    assert g.run("cat /proc/%d/stat" % pid, check=False).startswith("error: ENOENT")
