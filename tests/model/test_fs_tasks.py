"""The file system and tasks: execve through the path walk (relative paths,
the cwd, symlinks, ramfs and FAT programs, /proc/PID/exe), spawn_user's
fds 0-2 on /dev/console, close-on-exec, fork sharing Files; and no leaks
(kmemleak, the slab counts, the frame census) after open/close, pipe and
eventfd loops, fork, exec and exit."""

import struct

from kernel_py.fs.file import O_CLOEXEC, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY
from kernel_py.fs.exec import do_execve
from kernel_py.kernel import fork as kfork
from kernel_py.kernel import signal as sig
from kernel_py.kernel.exit import do_exit, release_task
from kernel_py.lib.errno import EACCES, ENOENT, ENOEXEC
from tests.model.fssupport import make_fat, needs_mkfs
from tests.model.usersupport import UserBox

AT_FDCWD = -100
KMEMLEAK = "/sys/kernel/debug/kmemleak"


def tiny_elf():
    """A static ELF64 x86-64 executable: text at 0x400000 (entry 0x401000),
    data at 0x402000 with a .bss after it."""
    text_off, data_off = 0x1000, 0x2000
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    ph1 = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x1010, 0x1010, 0x1000)
    ph2 = struct.pack("<IIQQQQQQ", 1, 6, data_off, 0x402000, 0x402000, 16, 0x3000, 0x1000)
    img = bytearray(data_off + 16)
    img[0:64] = eh
    img[64:120] = ph1
    img[120:176] = ph2
    img[text_off:text_off + 16] = b"\x0f\x05" * 8          # syscall; syscall...
    img[data_off:data_off + 16] = b"initialised data"
    return bytes(img)


def opn(b, t, path, flags=O_RDONLY, mode=0o644):
    return b.sys(t, "openat", AT_FDCWD, path, flags, mode)


def put_file(b, t, path, data, mode=0o755):
    fd = opn(b, t, path, O_CREAT | O_WRONLY, mode)
    assert fd >= 0, (path, fd)
    assert b.write_all(t, fd, data) == len(data)
    b.call(t, "close", fd)


def readlink(b, t, path):
    a = b.ubuf(t, 4096)
    n = b.sys(t, "readlink", path, a, 4096)
    return n if n < 0 else b.get(t, a, n).decode()


def reap(b, t):
    do_exit(b.k, t, 0)
    if t.pid in b.k.procs.tasks:
        release_task(b.k, t)


def test_spawn_user_console_fds_and_exe():
    b = UserBox()
    t = b.new_task()
    put_file(b, t, "/bin/prog", tiny_elf())
    p, r = kfork.spawn_user(b.k, "/bin/prog", ["prog", "arg"], ["HOME=/"])
    assert r == 0, r
    b.adopt(p)
    for fd in (0, 1, 2):
        assert readlink(b, p, "/proc/self/fd/%d" % fd) == "/dev/console"
    st = b.ubuf(p, 144)
    assert b.call(p, "fstat", 1, st) == 0
    mode, = struct.unpack_from("<I", b.get(p, st, 144), 24)
    rdev, = struct.unpack_from("<Q", b.get(p, st, 144), 40)
    assert mode == 0o20600 and rdev == 0x501
    assert p.files.file(0) is p.files.file(2)                   # one File, three fds
    assert p.files.file(0).va                                   # a filp object
    assert readlink(b, p, "/proc/self/exe") == "/bin/prog"
    assert readlink(b, p, "/proc/%d/exe" % p.pid) == "/bin/prog"
    # the program's pages come from ramfs's page cache through the mapping
    b.k.procs.use_task(p)
    assert b.hw.copy_from_user(0x402000, 16) == b"initialised data"
    assert b.hw.copy_from_user(0x401000, 2) == b"\x0f\x05"


def test_execve_path_rules():
    b = UserBox()
    t = b.new_task()
    k = b.k
    put_file(b, t, "/tmp/tool", tiny_elf())
    put_file(b, t, "/tmp/plain", tiny_elf(), 0o644)
    put_file(b, t, "/tmp/short", tiny_elf()[:40])
    b.sys(t, "symlink", "/tmp/tool", "/bin/alias")
    b.sys(t, "mkdir", "/tmp/sub", 0o755)
    t.fs.cwd = "/tmp/sub"
    assert do_execve(k, t, "../tool", [b"tool"], []) == 0           # relative to the cwd
    assert t.exe == "/tmp/tool" and t.comm == "tool"
    assert do_execve(k, t, "/bin/alias", [b"alias"], []) == 0       # a symlink: the target
    assert t.exe == "/tmp/tool"
    b.adopt(t)
    assert readlink(b, t, "/proc/self/exe") == "/tmp/tool"
    # BusyBox re-executes itself through /proc/self/exe
    assert do_execve(k, t, "/proc/self/exe", [b"sh"], []) == 0
    assert t.exe == "/tmp/tool"
    b.adopt(t)
    assert do_execve(k, t, "/tmp/none", [b"x"], []) == -ENOENT
    assert do_execve(k, t, "/tmp", [b"x"], []) == -EACCES
    assert do_execve(k, t, "/tmp/plain", [b"x"], []) == -EACCES     # no x bit
    assert do_execve(k, t, "/dev/null", [b"x"], []) == -EACCES
    assert do_execve(k, t, "/tmp/short", [b"x"], []) == -ENOEXEC
    assert do_execve(k, t, "/tmp/tool/x", [b"x"], []) == -20        # ENOTDIR
    assert t.exe == "/tmp/tool"                                    # failures change nothing


def test_exec_closes_cloexec_and_fork_shares_files():
    b = UserBox()
    t = b.new_task()
    k = b.k
    put_file(b, t, "/bin/prog", tiny_elf())
    keep = opn(b, t, "/dev/null")
    drop = opn(b, t, "/dev/null", O_RDONLY | O_CLOEXEC)
    fd = opn(b, t, "/tmp/shared", O_CREAT | O_RDWR)
    base = b.slab_active("filp")
    c = kfork.copy_process(k, t, sig.SIGCHLD, 0, 0, 0, 0)
    c.buf, c.scratch = t.buf, t.scratch                          # the COW copy of the scratch
    assert c.files.file(fd) is t.files.file(fd)                  # the same File
    assert b.slab_active("filp") == base                         # shared, not copied
    b.write_all(c, fd, b"from the child")
    assert b.call(t, "lseek", fd, 0, 1) == 14                    # one position
    assert do_execve(k, c, "/bin/prog", [b"prog"], []) == 0
    b.adopt(c)
    assert c.files.file(drop) is None and c.files.file(keep) is not None
    assert t.files.file(drop) is not None
    reap(b, c)
    assert b.slab_active("filp") == base


def leak_report(b):
    out = b.sh.execute("cat " + KMEMLEAK)
    assert not out.startswith("error"), out
    return out


def test_no_leaks_after_file_loops_fork_exec_exit():
    b = UserBox(cmdline="kmemleak=on")
    sh = b.sh
    assert sh.execute("echo min_age=0 > " + KMEMLEAK) == ""
    assert sh.execute("echo scan=off > " + KMEMLEAK) == ""
    t = b.new_task()
    k = b.k
    put_file(b, t, "/bin/prog", tiny_elf())
    names = ("filp", "inode_cache", "dentry", "kmalloc-64", "kmalloc-192", "kmalloc-1k")
    base = dict((n, b.slab_active(n)) for n in names)
    for i in range(30):
        fd = opn(b, t, "/tmp/f%d" % (i % 3), O_CREAT | O_RDWR)
        b.write_all(t, fd, b"x" * 5000)
        b.call(t, "close", fd)
        fds = b.ubuf(t, 8)
        b.call(t, "pipe2", fds, 0)
        r, w = struct.unpack("<ii", b.get(t, fds, 8))
        b.write_all(t, w, b"pipe data")
        b.call(t, "close", w)
        b.call(t, "close", r)
        e = b.call(t, "eventfd2", 1, 0)
        b.call(t, "close", e)
        d = opn(b, t, "/proc/self/status")
        b.read_all(t, d)
        b.call(t, "close", d)
    for i in range(5):
        c = kfork.copy_process(k, t, sig.SIGCHLD, 0, 0, 0, 0)
        assert do_execve(k, c, "/bin/prog", [b"prog"], [b"A=1"]) == 0
        reap(b, c)
        p, r = kfork.spawn_user(k, "/bin/prog", ["prog"], [])
        assert r == 0
        reap(b, p)
    for n in ("/tmp/f0", "/tmp/f1", "/tmp/f2"):
        b.sys(t, "unlink", n)
    assert dict((n, b.slab_active(n)) for n in names) == base
    for _ in range(2):
        assert sh.execute("echo scan > " + KMEMLEAK) == ""
    assert leak_report(b) == ""
    out = sh.execute("check")
    assert out.endswith("check: ok"), out
    # and the scan would see a File nobody holds: forget one on purpose
    fd = opn(b, t, "/dev/null")
    f = t.files.file(fd)
    va = int(sh.execute("fdforget %d %d" % (t.pid, fd)), 16)
    assert va == f.va > 0 and t.files.file(fd) is None
    for _ in range(2):
        sh.execute("echo scan > " + KMEMLEAK)
    assert "unreferenced object 0x%x" % va in leak_report(b)


@needs_mkfs
def test_fat_program_and_unlink_while_mapped(tmp_path):
    img = make_fat(tmp_path / "p.img", 32, 16)
    b = UserBox([str(img)])
    t = b.new_task()
    put_file(b, t, "/mnt/prog", tiny_elf())
    p, r = kfork.spawn_user(b.k, "/mnt/prog", ["prog"], [])
    assert r == 0 and p.exe == "/mnt/prog"
    b.sys(t, "unlink", "/mnt/prog")                              # mapped: the inode stays
    b.k.procs.use_task(p)
    assert b.hw.copy_from_user(0x402000, 16) == b"initialised data"
    reap(b, p)
    assert b.sh.execute("check").endswith("check: ok")
    b.close()


def test_ramfs_program_unlinked_while_running():
    b = UserBox()
    t = b.new_task()
    put_file(b, t, "/tmp/prog", tiny_elf())
    nr = b.k.pagecache.nr_file
    p, r = kfork.spawn_user(b.k, "/tmp/prog", ["prog"], [])
    assert r == 0
    assert b.sys(t, "unlink", "/tmp/prog") == 0
    b.k.procs.use_task(p)
    assert b.hw.copy_from_user(0x402000, 16) == b"initialised data"
    reap(b, p)
    assert b.k.pagecache.nr_file < nr                            # the pages went with the mapping
    assert b.sh.execute("check").endswith("check: ok")
