"""A large write to /mnt cut short on the real machine (issue 15, "Bad
input": "Ctrl-C or the OOM killer in the middle of a large write to /mnt
(the file system stays consistent - fsck.fat on the host agrees after a
clean poweroff - and no other file changes)").

One small guest (48 MiB, no swap) with its own FAT data disk, which also
holds two files the host put there. From BusyBox's shell on the console:
dd asks to write twice the guest's memory to /mnt and Ctrl-C stops it
part way, after writeback began; awk writes while keeping four times what
it wrote, until the OOM killer takes it part way; dd writes while a
background job makes the page allocator refuse a page-cache page in the
middle of one write(2) (fail_page_alloc), the way a write stops inside
the kernel. Then sync and poweroff, and on the host: fsck.fat -n finds
nothing, the host's files are unchanged, and each cut file is on the disk
at the size the guest listed, all of it what its writer wrote.
tests/model/test_fat_write_failure.py sweeps every allocation of a write
and of the metadata changes on the model."""

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import time

import pytest

from kpyqemu import disks as kdisks
from kpyqemu.guest import Guest, built_initrd
from test_rootfs import start_sh

PS1 = "badwrite$ "
COUNT = 1536                                # dd's 64 KiB blocks: 96 MiB asked, the guest has 48
REFUSED_COUNT = 160                         # 10 MiB: the fault-injection case's dd
GROWTH = 4                                  # the OOM case's writer: 4 bytes kept per byte written
KEEP = {"/keep/random.bin": os.urandom(300 << 10), "/keep/notes.txt": b"written by the host\n"}
FSCK = shutil.which("fsck.fat") or shutil.which("fsck.fat", path="/usr/sbin:/sbin")

pytestmark = [
    pytest.mark.skipif(built_initrd() is None,
                       reason="no initramfs: make initramfs builds build/initramfs.cpio"),
    pytest.mark.skipif(FSCK is None or shutil.which("mcopy") is None,
                       reason="needs dosfstools (fsck.fat) and mtools"),
]

cut = {}                                    # file -> (size the guest listed after the cut, its byte)


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    return kdisks.fresh_disks(tmp_path_factory.mktemp("badwrite"), swap=False, files=KEEP)


@pytest.fixture(scope="module")
def g(disks, tmp_path_factory, accel, kernel_image):
    guest = Guest(mem="48M", drives=disks.drives, accel=accel, image=kernel_image,
                  initrd=str(built_initrd()), log_dir=tmp_path_factory.mktemp("badwrite-log"))
    yield guest
    guest.close()


def meminfo(text):
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(r"^(\S+):\s+(\d+)", text, re.M))


def sh(g, line, timeout=30):
    """Type a line into the shell; wait for the prompt."""
    g.child.send(line + "\r")
    g.child.expect_exact(PS1, timeout=timeout)


@contextlib.contextmanager
def shell(g):
    """BusyBox's shell on the console for the block; the console's own
    prompt back after it, even when the block failed part way."""
    c = g.child
    start_sh(c, PS1)
    try:
        yield c
    finally:
        c.send("\x03")                     # whatever still runs stops; a fresh prompt
        c.expect_exact(PS1, timeout=60)
        c.send("exit\r")
        c.expect_exact("kpy# ", timeout=30)


def sh_number(g, expr, timeout=30):
    """The number a shell expression ($?, $(cat FILE)) gives; marked so
    that the line's own echo cannot match."""
    c = g.child
    c.send('echo "=[%s]="\r' % expr)
    c.expect(r"=\[(-?\d+)\]=", timeout=timeout)
    n = int(c.match.group(1))
    c.expect_exact(PS1, timeout=timeout)
    return n


def listed_size(g, name):
    c = g.child
    c.send("stat -c size=%%s %s\r" % name)
    c.expect(r"size=(\d+)\r*\n", timeout=30)
    size = int(c.match.group(1))
    c.expect_exact(PS1, timeout=30)
    return size


def test_ctrl_c_in_the_middle_of_a_large_write(g):
    written0 = int(re.search(r"^nr_written (\d+)", g.run("cat /proc/vmstat"), re.M).group(1))
    with shell(g) as c:
        # the job says it runs, then becomes dd (as test_rootfs's Ctrl-C)
        c.send("sh -c 'echo fg-ready; exec dd if=/dev/zero of=/mnt/big1 bs=64k count=%d'\r" % COUNT)
        c.expect(r"\nfg-ready\r*\n", timeout=30)
        time.sleep(4)                       # some MiB in: past the dirty limits
        c.send("\x03")
        c.expect_exact(PS1, timeout=60)
        status = sh_number(g, "$?")
        cut["/big1"] = (listed_size(g, "/mnt/big1"), b"\0")
    assert status == 130                    # 128 + SIGINT: killed, not finished
    assert 0 < cut["/big1"][0] < COUNT * 64 * 1024
    written = int(re.search(r"^nr_written (\d+)", g.run("cat /proc/vmstat"), re.M).group(1))
    assert written > written0               # writeback ran during the write
    assert g.run("echo ok") == "ok"


def test_the_oom_killer_kills_the_writer_in_the_middle_of_a_large_write(g):
    with shell(g) as c:
        # the writer is the one that grows: awk keeps GROWTH copies of each
        # 64 KiB block it writes, until the OOM killer takes it (no swap)
        c.send("awk 'BEGIN { b = sprintf(\"%%65536s\", \"\"); for (;;) { for (i = 0; i < %d; i++) "
               "k[n++] = b \"\"; printf \"%%s\", b > \"/mnt/big2\" } }'; echo awk-status=$?\r" % GROWTH)
        c.expect(r"awk-status=(\d+)\r*\n", timeout=180)
        assert c.match.group(1) == "137"    # 128 + SIGKILL
        c.expect_exact(PS1, timeout=30)
        cut["/big2"] = (listed_size(g, "/mnt/big2"), b" ")
    assert 0 < cut["/big2"][0]
    dmesg = g.run("dmesg")
    assert re.search(r"\] awk invoked oom-killer: gfp_mask=0x\w+\(GFP_HIGHUSER_MOVABLE\)", dmesg)
    killed = re.findall(r"\] Out of memory: Killed process \d+ \((\S+)\)", dmesg)
    assert killed == ["awk"], killed
    assert g.run("echo ok") == "ok"


def test_a_page_refused_in_the_middle_of_a_write(g):
    """Inside the kernel a write stops part way when the page cache is
    refused a page: fail_page_alloc, armed by a background job while dd
    writes, spares 4 allocations (space) and fails the next two (the
    page and its retry after reclaim; user pages spared), the 5th page
    of a 64 KiB write(2). dd is told of a short write and writes the
    rest; the clusters the stopped write had allocated past its end
    went back (fsck checks, below)."""
    knobs = "/sys/kernel/debug/fail_page_alloc"
    arm = ("cd %s; echo 2 > times; echo 5 > space; echo 0 > min-order; echo N > ignore-gfp-wait; "
           "echo Y > ignore-gfp-highmem; echo 100 > probability" % knobs)
    with shell(g) as c:
        c.send("(sleep 1; %s) & dd if=/dev/zero of=/mnt/big3 bs=64k count=%d; echo dd-status=$?\r"
               % (arm, REFUSED_COUNT))
        c.expect(r"dd-status=(\d+)\r*\n", timeout=120)
        status = c.match.group(1)
        c.expect_exact(PS1, timeout=30)
        left = sh_number(g, "$(cat %s/times)" % knobs)
        sh(g, "echo 0 > %s/probability" % knobs)
        cut["/big3"] = (listed_size(g, "/mnt/big3"), b"\0")
    assert left == 0                        # both failures were injected
    assert status == "0"                    # a short write, then the rest
    assert cut["/big3"][0] == REFUSED_COUNT * 64 * 1024
    assert g.run("dmesg").count("FAULT_INJECTION: forcing a failure.") == 2


def test_after_a_clean_poweroff_fsck_agrees_and_no_other_file_changed(g, disks):
    g.run("sync")
    assert meminfo(g.run("cat /proc/meminfo"))["Dirty"] == 0
    assert g.poweroff() == 0
    r = subprocess.run([FSCK, "-n", str(disks.data)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for name, data in KEEP.items():
        got = subprocess.run(["mcopy", "-n", "-i", str(disks.data), "::" + name, "-"],
                             capture_output=True).stdout
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), name
    for name, (size, byte) in cut.items():
        got = subprocess.run(["mcopy", "-n", "-i", str(disks.data), "::" + name, "-"],
                             capture_output=True).stdout
        assert len(got) == size and got.count(byte) == size, name
