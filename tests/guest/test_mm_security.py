"""Security properties of process address spaces (issue 5), checked from the
host by walking each process's page tables and reading its frames over QMP."""

from test_mm import spawn, status

from kernel_py.arch.x86.layout import USER_END

MiB = 1 << 20
SECRET = 0x5A


def user_frames(guest, pid):
    """{va: pa} of every page the process maps, from the host's own walk."""
    w = guest.walker(status(guest, pid)["Pgd"])
    return {m.va: m.pa for m in w.mappings(0, USER_END)}


def test_first_touch_sees_zero_even_after_a_secret_was_freed(guest):
    a = spawn(guest, "writer")
    va = int(guest.run("mmap %d 1M" % a), 16)
    guest.run("fill %d 0x%x %d %d" % (a, va, MiB, SECRET))
    secret_frames = set(user_frames(guest, a).values())
    assert len(secret_frames) == 256
    assert guest.read_phys(min(secret_frames), 16) == bytes([SECRET]) * 16
    guest.run("kill %d" % a)

    b = spawn(guest, "reader")
    vb = int(guest.run("mmap %d 4M" % b), 16)
    guest.run("touch %d 0x%x %d w" % (b, vb, 4 * MiB))
    frames = user_frames(guest, b)
    reused = secret_frames & set(frames.values())
    assert reused, "no frame of the killed process was reused: the test proves nothing"
    for pa in reused:
        assert guest.read_phys(pa, 4096) == bytes(4096), "frame 0x%x leaked data" % pa
    guest.run("kill %d" % b)


def test_after_kill_no_frame_of_the_process_is_mapped_anywhere(guest):
    victim = spawn(guest, "victim")
    other = spawn(guest, "other")
    for pid in (victim, other):
        va = int(guest.run("mmap %d 512K" % pid), 16)
        guest.run("touch %d 0x%x %d w" % (pid, va, 512 << 10))
    gone = set(user_frames(guest, victim).values())
    assert len(gone) == 128
    guest.run("kill %d" % victim)
    for line in guest.run("ps").splitlines()[1:]:
        if line.split()[-1].startswith("["):
            continue                    # a kernel thread: no address space
        pid = int(line.split()[0])
        still = gone & set(user_frames(guest, pid).values())
        assert not still, "pid %d maps frames of the killed process: %s" % (pid, sorted(still)[:4])
    guest.run("kill %d" % other)
