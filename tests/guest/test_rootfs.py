"""The root file system and BusyBox's shell on the real machine (issue 15,
items 1 and 2): the initramfs (build/initramfs.cpio, `make initramfs`)
unpacked into a tmpfs at /, BusyBox's applets as programs, the console as a
terminal (canonical mode, erase, Ctrl-C to the foreground job, Ctrl-D),
tmpfs pages in Shmem, and init=/bin/sh. One boot for the module, one more
for init=."""

import re
import time

import pexpect
import pytest

from kpyqemu import disks as kdisks
from kpyqemu.guest import Guest, built_initrd

PS1 = "rootsh> "

pytestmark = pytest.mark.skipif(built_initrd() is None,
                                reason="no initramfs: make initramfs builds build/initramfs.cpio")


def fields(text):
    """/proc/meminfo's `Name: N kB` lines as a dict of ints."""
    return dict((m.group(1), int(m.group(2)))
                for m in re.finditer(r"^(\S+):\s+(\d+)", text, re.M))


@pytest.fixture(scope="module")
def g(tmp_path_factory, accel, kernel_image):
    d = kdisks.fresh_disks(tmp_path_factory.mktemp("rootfs"))
    guest = Guest(drives=d.drives, accel=accel, image=kernel_image, initrd=str(built_initrd()),
                  log_dir=tmp_path_factory.mktemp("rootfs-log"))
    yield guest
    guest.close()


def sh_run(g, cmd, timeout=60):
    """A command line through the console's `run /bin/sh -c`: its output."""
    return g.run("run /bin/sh -c '%s'" % cmd, timeout)


def test_the_root_is_a_tmpfs_from_the_initramfs(g):
    dmesg = g.run("dmesg")
    m = re.search(r"initramfs: (\d+) files \((\d+) KiB\), (\d+) directories, (\d+) symlinks", dmesg)
    assert m and int(m.group(4)) > 100                  # the applet links
    out = sh_run(g, "echo hi; ls /; cat /proc/meminfo; cat /proc/mounts; readlink /bin/sh")
    assert "\nhi\n" in "\n" + out
    for d in ("bin", "sbin", "usr", "etc", "tmp", "proc", "sys", "dev", "mnt"):
        assert re.search(r"\b%s\b" % d, out), d
    assert fields(out)["MemTotal"] > 0 and "Shmem" in fields(out)
    assert "rootfs / rootfs" in out and "/dev/sda /mnt vfat" in out and "proc /proc proc" in out
    assert "/bin/busybox" in out


def test_busybox_free_ps_uptime(g):
    out = sh_run(g, "free; ps -o pid,rss,vsz,comm; uptime; top -b -n 1")
    lines = out.split("\n")
    i = next(n for n, l in enumerate(lines) if l.split()[:3] == ["total", "used", "free"])
    mem = lines[i + 1].split()
    swap = lines[i + 2].split()
    assert mem[0] == "Mem:" and swap[0] == "Swap:"
    info = fields(g.run("cat /proc/meminfo"))
    assert abs(int(mem[1]) - info["MemTotal"]) <= 4             # kB, as meminfo
    assert int(swap[1]) == info["SwapTotal"]
    assert int(mem[4]) >= 0                                     # shared: Shmem
    ps = [l.split() for l in lines if re.match(r"^\s*\d+\s+\d+\s+\d+\s+\S+$", l)]
    comms = dict((int(p[0]), p[3]) for p in ps)
    assert comms[1] == "init" and "kswapd0" in comms.values()
    me = [p for p in ps if p[3] == "ps"]
    assert me and int(me[0][1]) > 0 and int(me[0][2]) >= int(me[0][1])   # rss, vsz in KiB
    up = next(l for l in lines if "load average" in l)
    assert re.search(r"up .*load average: \d+\.\d\d, \d+\.\d\d, \d+\.\d\d", up)
    cpu = re.search(r"CPU:\s+(\d+)% usr\s+(\d+)% sys\s+\d+% nic\s+(\d+)% idle", out)
    assert cpu and 90 <= sum(int(x) for x in cpu.groups()) <= 101
    assert re.search(r"^\s*\d+\s+\d+ root\s+R\s+\d+\s+\d+%\s+\d+% top -b -n 1", out, re.M)


VMSTAT_HEAD = ["procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----",
               " r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st"]


def test_vmstat_program_against_proc(g):
    """/usr/bin/vmstat (user/vmstat.c), procps's `vmstat 1 3`: the header,
    three lines; memory columns as /proc/meminfo read right after it, in/cs
    of the 2nd and 3rd lines per-second rates of a real interval, the cpu
    split summing to 100; the console's built-in has the same columns."""
    out = sh_run(g, "vmstat 1 3; cat /proc/meminfo", timeout=120)
    lines = out.split("\n")
    assert lines[:2] == VMSTAT_HEAD, out
    rows = [dict(zip(VMSTAT_HEAD[1].split(), map(int, l.split()))) for l in lines[2:5]]
    assert all(len(l.split()) == 17 for l in lines[2:5]), out
    info = fields("\n".join(lines[5:]))
    last = rows[-1]
    assert last["swpd"] == info["SwapTotal"] - info["SwapFree"]
    assert abs(last["free"] - info["MemFree"]) <= 4096          # kB: vmstat exits, cat starts
    assert last["buff"] == info["Buffers"]
    assert abs(last["cache"] - info["Cached"] - info["SReclaimable"]) <= 1024
    for r in rows:
        assert 98 <= r["us"] + r["sy"] + r["id"] + r["wa"] + r["st"] <= 102, out
        assert r["r"] >= 1                                       # vmstat itself
    for r in rows[1:]:
        assert r["in"] > 0 and r["cs"] > 0, out                  # timer ticks, switches
    assert g.run("vmstat").split("\n")[:2] == VMSTAT_HEAD
    assert "usage" in sh_run(g, "vmstat x 2>&1; echo rc=$?") and "rc=1" in \
        sh_run(g, "vmstat 1 2 3 2>&1; echo rc=$?")


def test_busybox_admin_commands(g):
    out = sh_run(g, "df; dmesg | tail -n 3; sysctl vm.swappiness; pidof init; "
                    "dd if=/dev/zero of=/tmp/dd.bin bs=4k count=8; ls -l /tmp/dd.bin; rm /tmp/dd.bin")
    assert re.search(r"^/dev/sda\s+\d+\s+\d+\s+\d+\s+\d+% /mnt$", out, re.M)
    assert re.search(r"^\[\s*\d+\.\d{6}\] ", out, re.M)          # syslog(2)'s text
    assert "vm.swappiness = " in out
    assert "8+0 records out" in out and re.search(r" 32768 .*/tmp/dd.bin", out)
    assert "unimplemented syscall" not in g.run("dmesg")


def test_bad_input_through_the_shell(g):
    """Unknown commands, garbage into /proc/sys, a pid that does not exist,
    a missing file: the shell reports each as Linux's tools do (errno
    texts from the syscalls), the old value stays, the kernel goes on."""
    old = g.run("cat /proc/sys/vm/swappiness").strip()
    out = sh_run(g, "nosuchcmd; echo rc=$?; echo garbage > /proc/sys/vm/swappiness; echo rc=$?; "
                    "cat /proc/999999/status; echo rc=$?; cat /nonexistent; df /nonexistent; "
                    "kill -9 999999; echo rc=$?")
    assert "nosuchcmd: not found" in out and "rc=127" in out
    assert re.search(r"write error: Invalid argument", out)
    assert out.count("rc=1") >= 3
    assert "No such file or directory" in out
    assert "No such process" in out
    assert g.run("cat /proc/sys/vm/swappiness").strip() == old
    assert "check: ok" in g.run("check")


def test_links_modes_and_times_on_the_tmpfs_root(g):
    """usertests' extras that need a Linux file system (hard links,
    symlinks, umask and chmod) pass on /tmp, and BusyBox's touch and chmod
    work there (utimensat, chmod); vfat refuses a mode it cannot store."""
    out = g.run("run /mnt/bin/usertests -d /tmp links modes", timeout=120)
    assert "usertests: 2 passed, 0 failed, 0 skipped" in out, out
    out = sh_run(g, "touch /tmp/t; chmod 640 /tmp/t; stat -c \"%a %Y\" /tmp/t; "
                    "touch -d \"2001-02-03 04:05:06\" /tmp/t; stat -c \"%a %Y\" /tmp/t; date +%s; "
                    "touch /mnt/t; chmod 600 /mnt/t; echo rc=$?; rm /tmp/t /mnt/t")
    lines = out.split("\n")
    mode, first = lines[0].split()
    assert mode == "640" and abs(int(first) - int(lines[2])) < 60, out
    assert lines[1] == "640 981173106", out                   # 2001-02-03 04:05:06 UTC
    assert "chmod: /mnt/t: Operation not permitted" in out and "rc=1" in out


def test_mkfifo_between_two_programs(g):
    """A FIFO on /tmp: the reader's open waits for the writer, the data
    passes, both exit; mknod makes device nodes that open their driver."""
    out = sh_run(g, "mkfifo /tmp/p; ls -l /tmp/p; (cat /tmp/p > /tmp/got &); sleep 0.3; "
                    "echo through the fifo > /tmp/p; sleep 0.3; cat /tmp/got; "
                    "mknod /tmp/nul c 1 3; echo x > /tmp/nul; echo rc=$?; rm /tmp/p /tmp/got /tmp/nul")
    assert "unimplemented" not in out, out
    lines = out.split("\n")
    assert lines[0].startswith("prw-r--r--") and lines[1] == "through the fifo", out
    assert "rc=0" in out


def test_renice_nproc_chown(g):
    """BusyBox's renice, nproc, taskset and chown: setpriority (top's NI
    and /proc/PID/stat follow), sched_getaffinity, chown on tmpfs."""
    pid = int(g.run("run /mnt/bin/spin 30 &").strip("[]"))
    out = sh_run(g, "renice -n 7 -p %d; nproc; taskset -p %d; touch /tmp/c; chown 12:34 /tmp/c; "
                    "stat -c \"%%u %%g\" /tmp/c; rm /tmp/c" % (pid, pid))
    assert "unimplemented" not in out, out
    lines = out.split("\n")
    assert lines[-3] == "1" and lines[-2].endswith("mask: 1") and lines[-1] == "12 34", out
    f = g.run("cat /proc/%d/stat" % pid).split()
    assert f[17:19] == ["27", "7"], f
    g.run("kill -9 %d" % pid)


def test_a_file_in_tmp_is_shmem(g):
    before = fields(g.run("cat /proc/meminfo"))["Shmem"]
    sh_run(g, "dd if=/dev/zero of=/tmp/shm.bin bs=64k count=32")          # 2 MiB
    during = fields(g.run("cat /proc/meminfo"))["Shmem"]
    assert during - before == 2048
    sh_run(g, "rm /tmp/shm.bin")
    assert fields(g.run("cat /proc/meminfo"))["Shmem"] == before


def test_shell_on_the_console_line_discipline_and_ctrl_c(g):
    c = g.child
    c.send("sh\r")
    c.expect(r"# ", timeout=30)
    c.send("PS1='%s'\r" % PS1)
    c.expect_exact(PS1, timeout=30)
    c.expect_exact(PS1, timeout=30)
    # canonical mode: `read` gets the edited line (DEL erases, ECHOE echoes it away)
    c.send("read x; echo got:$x.\r")
    c.expect(r"got:\$x\.\r*\n", timeout=30)
    time.sleep(1)           # typed ahead, the bytes would reach ash's raw mode (as on Linux)
    c.send("abcX\x7fd\r")
    c.expect_exact("abcX\b \bd", timeout=30)           # ECHO, ECHOE
    c.expect(r"got:([a-z]*)\.", timeout=30)
    assert c.match.group(1) == "abcd"
    c.expect_exact(PS1, timeout=30)
    # Ctrl-C: SIGINT to the foreground job; the shell survives
    # the job says it runs (ash's child has joined its own process group and
    # taken the terminal before it runs the command), then becomes sleep
    c.send("sh -c 'echo fg-ready; exec sleep 100'\r")
    c.expect(r"\nfg-ready\r*\n", timeout=30)
    c.send("\x03")
    c.expect_exact(PS1, timeout=30)
    c.send("echo status=$?\r")
    c.expect(r"status=(\d+)", timeout=30)
    assert c.match.group(1) == "130"                    # 128 + SIGINT
    c.expect_exact(PS1, timeout=30)
    # Ctrl-Z: SIGTSTP stops the foreground job; the shell's job control has it
    c.send("sleep 200\r")
    c.expect(r"sleep 200\r*\n", timeout=30)
    time.sleep(2)
    c.send("\x1a")
    c.expect(r"Stopped\s+sleep 200", timeout=30)
    c.expect_exact(PS1, timeout=30)
    c.send("ps -o pid,stat,comm | grep sleep\r")
    c.expect(r"(\d+)\s+T\s+sleep", timeout=30)
    c.expect_exact(PS1, timeout=30)
    c.send("kill -9 %1; wait; echo killed\r")
    c.expect_exact("killed", timeout=30)
    c.expect_exact(PS1, timeout=30)
    # Ctrl-D at the start of a line: end of file for cat
    c.send("cat; echo cat-done\r")
    c.expect(r"cat-done\r*\n", timeout=30)
    time.sleep(1)
    c.send("line\r")
    c.expect(r"line\r*\n", timeout=30)
    c.expect(r"line\r*\n", timeout=30)                # cat's copy
    c.send("\x04")
    c.expect_exact("cat-done", timeout=30)
    c.expect_exact(PS1, timeout=30)
    # top in raw mode (TCSETS without ICANON): it redraws until `q`
    c.send("top\r")
    c.expect(r"CPU:\s+\d+% usr\s+\d+% sys", timeout=30)
    c.expect(r"\d+\s+\d+ root\s+R\s+\d+\s+\d+%\s+\d+% top", timeout=30)
    time.sleep(1)
    c.send("q")
    c.expect_exact(PS1, timeout=30)
    c.send("echo after-top\r")
    c.expect(r"after-top\r*\n", timeout=30)
    c.expect_exact(PS1, timeout=30)
    # exit gives the console back to kpy#
    c.send("exit\r")
    c.expect_exact("kpy# ", timeout=30)
    assert "ok" in g.run("echo ok")


def test_init_is_bin_sh(tmp_path, accel, kernel_image):
    """CMDLINE="init=/bin/sh": pid 1 is BusyBox's shell, on the console from
    boot (no kpy# prompt first); when it exits the kernel says what Linux
    says and its monitor takes the console."""
    gi = Guest(cmdline="init=/bin/sh", accel=accel, image=kernel_image, initrd=str(built_initrd()), log_dir=tmp_path,
               start=False)
    child = pexpect.spawn(gi.argv[0], gi.argv[1:], timeout=60, encoding="utf-8",
                          codec_errors="replace", echo=False, dimensions=(24, 500))
    try:
        child.expect(r"# ", timeout=gi.boot_timeout)
        assert "kpy# " not in child.before
        child.send("echo pid=$$ ppid=$PPID\r")
        child.expect(r"pid=(\d+) ppid=(\d+)", timeout=30)
        assert child.match.groups() == ("1", "0")
        child.send("exit\r")
        child.expect_exact("Attempted to kill init", timeout=30)
        child.expect_exact("kpy# ", timeout=30)
        child.send("poweroff\r")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
