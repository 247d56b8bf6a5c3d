"""/proc/stat, /proc/uptime and /proc/loadavg in Linux's formats, from the
kernel's measurements: the tasks' utime, the idle loop's time in hlt (here:
set by hand, the simulated machine has no idle loop), the uptime."""

import re

from kernel_py.shell.procfs import USER_HZ

from tests.model.fssupport import Box


def test_formats_and_figures():
    b = Box([])
    k = b.k
    k.hw._tsc += 5 * k.clock.hz             # five seconds of uptime
    k.sched.idle_tsc = 3 * k.clock.hz         # three of them idle
    t = k.procs.tasks[1]
    t.utime += k.clock.hz // 2                # half a second in user mode
    stat = b.run("cat /proc/stat").split("\n")
    m = re.match(r"^cpu  (\d+) 0 (\d+) (\d+) 0 0 0 0 0 0$", stat[0])
    user, system, idle = (int(x) for x in m.groups())
    assert user == USER_HZ // 2 and idle == 3 * USER_HZ
    assert 5 * USER_HZ <= user + system + idle <= 6 * USER_HZ
    assert stat[1].startswith("cpu0 ")
    names = [l.split()[0] for l in stat[2:]]
    assert names == ["ctxt", "btime", "processes", "procs_running", "procs_blocked"]
    up, idl = b.run("cat /proc/uptime").split()
    assert 5.0 <= float(up) < 6.0 and idl == "3.00"
    assert re.match(r"^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+$", b.run("cat /proc/loadavg"))
    # a released task's time stays in the total
    k.sched.exited_utime += k.clock.hz
    assert int(b.run("cat /proc/stat").split()[1]) == user + USER_HZ
    b.close()
