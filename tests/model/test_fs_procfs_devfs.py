"""procfs and sysfs through the syscalls (the console's registry as file
systems: every declared file, chunked reads, writes with the console's
checks, pid directories, /proc/self, exe, fd links, exited pids) and the
devices of /dev (null, zero, full, random, urandom, kmsg, console, tty)."""

import re
import struct

import pytest

from kernel_py.fs.file import O_CREAT, O_DIRECTORY, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY
from kernel_py.kernel.exit import do_exit, release_task
from kernel_py.kernel.sched import BLOCKED
from kernel_py.lib.errno import (
    EACCES, EAGAIN, EINVAL, EIO, ENOENT, ENOSPC, ENOTTY, errno_of,
)
from kernel_py.shell import registry
from tests.model.usersupport import UserBox

AT_FDCWD = -100


@pytest.fixture
def box():
    return UserBox()


def opn(b, t, path, flags=O_RDONLY, mode=0o644):
    return b.sys(t, "openat", AT_FDCWD, path, flags, mode)


def slurp(b, t, path, chunk=4096):
    fd = opn(b, t, path)
    assert fd >= 0, (path, fd)
    out = b.read_all(t, fd, chunk)
    b.call(t, "close", fd)
    return out


def console_cat(b, path):
    return b.sh.execute("cat " + path)


def test_every_registry_file_reads_as_on_the_console(box):
    """Each FILES path: readable through open/read, or failing with the
    errno the console's cat reports; the text is the console's (stable
    files compared exactly, the others by line names)."""
    t = box.new_task()
    stable = ("/proc/cmdline", "/proc/version", "/proc/sys/vm/swappiness",
              "/proc/sys/vm/dirty_ratio", "/proc/mounts", "/proc/partitions")
    paths = sorted(p for p in registry.FILES if not p.startswith("/proc/self/"))
    assert len(paths) > 40
    for path in paths:
        con = console_cat(box, path)
        fd = opn(box, t, path)
        if path == "/proc/sys/vm/drop_caches":
            assert fd == -EACCES                     # mode 0200, as Linux
            continue
        assert fd >= 0, (path, fd)
        a = box.ubuf(t, 65536)
        n = box.call(t, "read", fd, a, 65536)
        if con.startswith("error: "):
            name = con.split(":")[1].strip()
            assert n == -errno_of(name), (path, con, n)
        else:
            assert n >= 0, (path, n)
            text = box.get(t, a, n).decode() if n else ""
            assert text == "" or text.endswith("\n"), path
            if path in stable:
                assert text.rstrip("\n") == con, path
            else:
                heads = [l.split(":")[0].split()[0] for l in con.split("\n") if l.strip()][:3]
                for h in heads:
                    assert h in text, (path, h)
        box.call(t, "close", fd)


def test_chunked_reads_and_seeks(box):
    t = box.new_task()
    whole = slurp(box, t, "/proc/slabinfo", 65536)
    assert whole.startswith(b"slabinfo - version")
    fd = opn(box, t, "/proc/slabinfo")
    parts = []
    a = box.ubuf(t, 37)
    while True:
        n = box.call(t, "read", fd, a, 37)               # odd chunks, one generation
        assert n >= 0
        if not n:
            break
        parts.append(box.get(t, a, n))
    text = b"".join(parts)
    assert text.count(b"\n") == whole.count(b"\n")
    assert text.split(b"\n")[0] == whole.split(b"\n")[0]
    # pread at an offset, lseek back to 0 regenerates
    assert box.call(t, "pread64", fd, a, 10, 5) == 10
    assert box.get(t, a, 10) == text[5:15]
    assert box.call(t, "lseek", fd, 0, 0) == 0
    assert box.call(t, "read", fd, a, 10) == 10 and box.get(t, a, 10) == b"slabinfo -"
    assert box.call(t, "lseek", fd, 0, 2) == -EINVAL         # seq_lseek: no SEEK_END


def test_writes_go_through_the_console_checks(box):
    t = box.new_task()
    k = box.k
    before = k.pagecache.drop_pagecache_count
    # a shell's `echo 3 > FILE`: O_WRONLY|O_CREAT|O_TRUNC on an existing pseudo-file
    fd = opn(box, t, "/proc/sys/vm/drop_caches", O_WRONLY | O_CREAT | 0o1000)
    assert fd >= 0
    assert box.write_all(t, fd, b"3\n") == 2
    assert k.pagecache.drop_pagecache_count == before + 1
    assert box.write_all(t, fd, b"9\n") == -EINVAL
    assert opn(box, t, "/dev/null", O_WRONLY | O_CREAT | 0o1000) >= 0
    sw = opn(box, t, "/proc/sys/vm/swappiness", O_RDWR)
    old = k.vmscan.swappiness
    assert box.write_all(t, sw, b"garbage\n") == -EINVAL
    assert box.write_all(t, sw, b"-5") == -EINVAL
    assert box.write_all(t, sw, b"\xff\xfe") == -EINVAL
    assert k.vmscan.swappiness == old
    assert box.write_all(t, sw, b"33\n") == 3
    assert k.vmscan.swappiness == 33
    assert box.call(t, "lseek", sw, 0, 0) == 0
    assert box.read_all(t, sw) == b"33\n"
    adj = opn(box, t, "/proc/%d/oom_score_adj" % t.pid, O_WRONLY)
    assert box.write_all(t, adj, b"lots") == -EINVAL
    assert box.write_all(t, adj, b"-1001") == -EINVAL
    assert t.oom_score_adj == 0
    assert box.write_all(t, adj, b"-1000\n") == 6
    assert t.oom_score_adj == -1000
    assert slurp(box, t, "/proc/self/oom_score_adj") == b"-1000\n"
    # read-only files: /proc opens, the write is EIO; /proc/sys and /sys refuse the open
    mi = opn(box, t, "/proc/meminfo", O_WRONLY)
    assert mi >= 0
    assert box.write_all(t, mi, b"x") == -EIO
    assert opn(box, t, "/sys/kernel/debug/alloc_sites", O_WRONLY) == -EACCES
    assert opn(box, t, "/proc/nonexistent") == -ENOENT
    assert opn(box, t, "/proc/newfile", O_CREAT | O_WRONLY) == -EACCES


def test_self_exe_cmdline_environ_and_fd_links(box):
    t = box.new_task()
    a = box.ubuf(t, 256)
    assert box.sys(t, "readlink", "/proc/self", a, 256) == len(str(t.pid))
    assert box.get(t, a, len(str(t.pid))) == str(t.pid).encode()
    assert box.sys(t, "readlink", "/proc/self/exe", a, 256) == -ENOENT   # never exec'd
    t.exe = "/bin/prog"
    assert box.sys(t, "readlink", "/proc/self/exe", a, 256) == 9
    assert box.get(t, a, 9) == b"/bin/prog"
    assert box.sys(t, "readlink", "/proc/%d/cwd" % t.pid, a, 256) == 1
    t.cmdline = b"prog\0-x\0arg two\0"
    t.environ = b"HOME=/\0TERM=vt100\0"
    assert slurp(box, t, "/proc/self/cmdline") == t.cmdline
    assert slurp(box, t, "/proc/%d/environ" % t.pid) == t.environ
    assert slurp(box, t, "/proc/self/status").startswith(b"Name:\tprog\nUmask:\t0022\n")
    # fd links
    n = opn(box, t, "/dev/null")
    f = opn(box, t, "/tmp/linked", O_CREAT | O_RDWR)
    box.write_all(t, f, b"via the link")
    p = box.ubuf(t, 8)
    box.call(t, "pipe", p)
    r, w = struct.unpack("<ii", box.get(t, p, 8))
    e = box.call(t, "eventfd2", 0, 0)
    fds = sorted(int(x) for x in listdir(box, t, "/proc/self/fd"))
    assert fds == [0, 1, 2, 3, 4, 5]            # the five, and the listing's own directory fd
    assert [n, f, r, w, e] == [0, 1, 2, 3, 4]
    for fd, want in ((n, b"/dev/null"), (f, b"/tmp/linked"), (e, b"anon_inode:[eventfd]")):
        m = box.sys(t, "readlink", "/proc/self/fd/%d" % fd, a, 256)
        assert box.get(t, a, m) == want
    m = box.sys(t, "readlink", "/proc/self/fd/%d" % r, a, 256)
    assert re.fullmatch(rb"pipe:\[\d+\]", box.get(t, a, m))
    # opening a fd link opens the file itself (a magic link)
    assert slurp(box, t, "/proc/self/fd/%d" % f) == b"via the link"
    w2 = opn(box, t, "/proc/self/fd/%d" % w, O_WRONLY)
    assert box.write_all(t, w2, b"through proc") == 12
    b2 = box.ubuf(t, 32)
    assert box.call(t, "read", r, b2, 32) == 12 and box.get(t, b2, 12) == b"through proc"
    # the file unlinked: " (deleted)", and still reachable
    box.sys(t, "unlink", "/tmp/linked")
    m = box.sys(t, "readlink", "/proc/self/fd/%d" % f, a, 256)
    assert box.get(t, a, m) == b"/tmp/linked (deleted)"
    assert slurp(box, t, "/proc/self/fd/%d" % f) == b"via the link"
    assert opn(box, t, "/proc/self/fd/999") == -ENOENT
    # /dev/fd is /proc/self/fd
    assert slurp(box, t, "/dev/fd/%d" % n) == b""


def listdir(b, t, path):
    fd = opn(b, t, path, O_DIRECTORY)
    assert fd >= 0, (path, fd)
    a = b.ubuf(t, 8192)
    out = []
    while True:
        n = b.call(t, "getdents64", fd, a, 8192)
        assert n >= 0
        if not n:
            break
        raw = b.get(t, a, n)
        i = 0
        while i < n:
            reclen = struct.unpack_from("<H", raw, i + 16)[0]
            out.append(raw[i + 19:i + reclen].split(b"\0")[0].decode())
            i += reclen
    b.call(t, "close", fd)
    return [x for x in out if x not in (".", "..")]


def test_pid_stat_statm_status(box):
    t = box.new_task()
    k = box.k
    t.utime = k.clock.hz * 3                     # 3 s in ring 3: 300 clock ticks
    t.stime = k.clock.hz // 2
    t.min_flt, t.maj_flt = 12, 3
    box.sys(t, "umask", 0o027)
    fields = slurp(box, t, "/proc/%d/stat" % t.pid).decode().split()
    assert len(fields) == 52
    assert fields[0] == str(t.pid) and fields[1] == "(prog)" and fields[2] == "R"
    assert fields[3] == str(t.ppid) and fields[4] == str(t.pgid)
    assert fields[9] == "12" and fields[11] == "3"
    assert fields[13] == "300" and fields[14] == "50"
    assert fields[19] == "1"
    assert int(fields[21]) >= 0                               # start time, ticks since boot
    assert int(fields[22]) == t.mm.total_vm() * 4096
    assert fields[24] == str((1 << 64) - 1)
    statm = slurp(box, t, "/proc/%d/statm" % t.pid).decode().split()
    assert len(statm) == 7 and int(statm[0]) == t.mm.total_vm()
    status = slurp(box, t, "/proc/%d/status" % t.pid).decode()
    assert "\nUmask:\t0027\n" in status and "\nFDSize:\t64\n" in status
    assert "\nTgid:\t%d\n" % t.pid in status and "\nSigBlk:\t0000000000000000\n" in status


def test_exited_pid_is_enoent(box):
    t = box.new_task()
    u = box.new_task("victim")
    fd = opn(box, t, "/proc/%d/status" % u.pid)
    fd2 = opn(box, t, "/proc/%d/cmdline" % u.pid)
    a = box.ubuf(t, 64)
    assert box.call(t, "read", fd2, a, 64) == 0
    do_exit(box.k, u, 0)
    release_task(box.k, u)
    assert u.pid not in box.k.procs.tasks
    assert box.call(t, "read", fd, a, 64) == -ENOENT            # opened before, read after
    assert opn(box, t, "/proc/%d/status" % u.pid) == -ENOENT
    assert opn(box, t, "/proc/%d" % u.pid, O_DIRECTORY) == -ENOENT
    assert str(u.pid) not in listdir(box, t, "/proc")
    assert box.call(t, "lseek", fd2, 0, 0) == 0
    assert box.call(t, "read", fd2, a, 64) == -ENOENT


def test_sysfs_pattern_dirs(box):
    t = box.new_task()
    names = listdir(box, t, "/sys/kernel/debug/page_tables")
    assert "kernel" in names
    text = slurp(box, t, "/sys/kernel/debug/page_tables/kernel")
    assert text == (console_cat(box, "/sys/kernel/debug/page_tables/kernel") + "\n").encode()


def test_dev_null_zero_full_random(box):
    t = box.new_task()
    a = box.ubuf(t, 200000)
    n = opn(box, t, "/dev/null", O_RDWR)
    assert box.call(t, "read", n, a, 100) == 0
    assert box.call(t, "write", n, a, 150000) == 150000
    assert box.call(t, "lseek", n, 123, 0) == 0
    z = opn(box, t, "/dev/zero", O_RDWR)
    box.put(t, a - t.buf, b"\xaa" * 200000)
    assert box.call(t, "read", z, a, 200000) == 200000           # in chunks, all of it
    assert box.get(t, a, 200000) == bytes(200000)
    assert box.call(t, "write", z, a, 10) == 10
    f = opn(box, t, "/dev/full", O_RDWR)
    assert box.call(t, "write", f, a, 1) == -ENOSPC
    assert box.call(t, "read", f, a, 5) == 5
    for dev in ("/dev/urandom", "/dev/random"):
        r = opn(box, t, dev)
        assert box.call(t, "read", r, a, 4096) == 4096
        x = box.get(t, a, 4096)
        assert box.call(t, "read", r, a, 4096) == 4096
        assert x != box.get(t, a, 4096) and len(set(x)) > 200
        w = opn(box, t, dev, O_WRONLY)
        assert box.call(t, "write", w, a, 16) == 16
    assert box.call(t, "ioctl", n, 0x5401, a) == -ENOTTY        # TCGETS: not a terminal
    c = opn(box, t, "/dev/console", O_RDWR)
    assert box.call(t, "ioctl", c, 0x5401, a) == 0               # TCGETS
    assert box.call(t, "ioctl", c, 0x5413, a) == 0               # TIOCGWINSZ
    assert struct.unpack("<HH", box.get(t, a, 4)) == (24, 80)
    tty = opn(box, t, "/dev/tty", O_RDWR)
    assert box.call(t, "ioctl", tty, 0x5401, a) == 0


def test_dev_kmsg(box):
    t = box.new_task()
    k = box.k
    km = opn(box, t, "/dev/kmsg", O_RDWR | O_NONBLOCK)
    a = box.ubuf(t, 8192)
    n = box.call(t, "read", km, a, 8192)
    rec = box.get(t, a, n).decode()
    m = re.fullmatch(r"(\d+),(\d+),(\d+),-;(.*)\n", rec, re.S)
    assert m, rec
    assert int(m.group(2)) == k.log_next_seq - len(k.log)
    assert m.group(4) == k.log[0].replace("\\", "\\x5c")
    assert box.call(t, "read", km, a, 3) == -EINVAL              # the next record does not fit
    assert box.call(t, "lseek", km, 0, 2) == 0                   # SEEK_END: after the newest
    assert box.call(t, "read", km, a, 8192) == -EAGAIN
    assert box.write_all(t, km, b"<6>hello from a program\n") == 24
    assert k.log[-1] == "hello from a program"
    n = box.call(t, "read", km, a, 8192)
    assert box.get(t, a, n).decode().endswith(",-;hello from a program\n")
    seq1 = int(box.get(t, a, n).decode().split(",")[1])
    # a blocking reader at the end sleeps until the next printk
    kb = opn(box, t, "/dev/kmsg", O_RDONLY)
    box.call(t, "lseek", kb, 0, 2)
    assert box.call(t, "read", kb, a, 8192) is BLOCKED
    k.printk("a line with a tab\tand a backslash \\")
    n = box.resume(t)
    text = box.get(t, a, n).decode()
    assert text.endswith(";a line with a tab\\x09and a backslash \\x5c\n")
    assert int(text.split(",")[1]) == seq1 + 1
    assert box.call(t, "lseek", km, 5, 0) < 0                    # only offset 0
