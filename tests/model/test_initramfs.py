"""The initramfs and the tmpfs root on the simulated machine: the host's
newc writer (qemu/kpyqemu/initramfs.py) and the kernel's parser
(kernel_py/init/initramfs.py) agree; the archive passed as a multiboot
module is unpacked into a tmpfs at / (directories, files byte for byte,
symlinks, hard links, device nodes); tmpfs pages count as Shmem, go to
swap under reclaim and come back (read, write, swapoff), mapped ones
unmapped first and faulted back, no slot left after truncate and unlink; a bad archive is refused with Linux's message
and the kernel boots on."""

import stat

import pytest

from kpyqemu.initramfs import Newc
from kernel_py.init import initramfs
from kernel_py.lib.errors import KernelError

from kernel_py.mm import vmstat
from tests.model import swapsupport
from kernel_py.mm.memfd import memfd_file
from tests.model.fssupport import Box
from tests.model.swapsupport import run
from tests.model.usersupport import UserBox
from kernel_py.fs.file import O_RDWR
from kernel_py.mm.vm.vma import MAP_SHARED, PROT_READ, PROT_WRITE

BIG = bytes(range(256)) * 40 + b"tail"          # 10244 bytes: three pages, the last partial


def read(sb, path):
    ino = sb.root
    for c in path.split("/"):
        ino = sb.lookup(ino, c)
    return sb.read(ino, 0, 1 << 20)


def archive(extra=()):
    a = Newc(1700000000)
    a.directory("bin", 0o755)
    a.directory("etc", 0o755)
    a.file("bin/prog", BIG, 0o755)
    a.symlink("bin/sh", "/bin/prog")
    a.file("etc/motd", b"hello from the initramfs\n", 0o644)
    a.file("deep/er/file", b"parents made on the way\n", 0o600)
    a.entry("dev-null", stat.S_IFCHR | 0o666, rdev=(1, 3))
    # two names of one inode: the data comes with the last (as cpio writes them)
    a.ino += 1
    ino = a.ino
    for name, data in (("etc/a", b""), ("etc/b", b"linked\n")):
        a.ino = ino - 1
        a.entry(name, stat.S_IFREG | 0o644, data, nlink=2)
    for e in extra:
        e(a)
    return a.finish()


def test_parser_reads_the_writers_archive():
    names = [(n, f[initramfs.F_MODE] & 0o170000, bytes(d)) for n, f, d in
             initramfs.entries(archive())]
    assert ("bin/prog", stat.S_IFREG, BIG) in names
    assert ("bin/sh", stat.S_IFLNK, b"/bin/prog") in names
    assert names[-1] == ("etc/b", stat.S_IFREG, b"linked\n")
    assert all(n != "TRAILER!!!" for n, _m, _d in names)


@pytest.mark.parametrize("cut", [7, 120, 300])
def test_parser_refuses_a_cut_archive(cut):
    buf = archive()
    with pytest.raises(KernelError) as e:
        list(initramfs.entries(buf[:cut] + b"x"))
    assert e.value.errname == "EINVAL"


@pytest.fixture(scope="module")
def box():
    b = Box([], initrd=archive())
    yield b
    b.close()


def test_unpacked_into_a_tmpfs_root(box):
    k = box.k
    assert k.vfs.ns["/"].fstype == "rootfs"
    assert type(k.vfs.ns["/"]).__name__ == "TmpFs"
    root = k.vfs.ns["/"]
    ls = [name for name, _i, _t in root.readdir(root.root)]
    for d in ("bin", "etc", "deep", "dev", "proc", "sys", "tmp", "mnt"):
        assert d in ls
    assert read(root, "etc/motd") == b"hello from the initramfs\n"
    assert read(root, "deep/er/file") == b"parents made on the way\n"
    assert read(root, "etc/a") == b"linked\n"
    etc = root.lookup(root.root, "etc")
    assert root.lookup(etc, "a") is root.lookup(etc, "b")
    assert root.lookup(etc, "a").nlink == 2
    binf = root.lookup(root.root, "bin")
    prog = root.lookup(binf, "prog")
    assert root.read(prog, 0, 1 << 20) == BIG
    assert prog.mode & 0o7777 == 0o755
    assert root.get_link(root.lookup(binf, "sh"), None) == "/bin/prog"
    assert root.lookup(root.root, "dev-null").rdev == (1, 3)


def test_the_console_cat_and_ls_see_the_root(box):
    """kpy#'s cat and ls reach the tmpfs root through the namespace
    programs walk (symlinks followed), /mnt and /proc as before."""
    assert box.run("cat /etc/motd") == "hello from the initramfs"
    assert box.run("cat /bin/sh") == box.run("cat /bin/prog")
    for d in ("bin/", "etc/", "deep/", "proc/", "tmp/"):
        assert d in box.run("ls /").split()
    assert box.run("ls") == box.run("ls /")
    assert box.run("ls /etc").split() == ["a", "b", "motd"]
    assert "%8d prog" % len(BIG) in box.run("ls -l /bin")
    assert "MemTotal:" in box.run("cat /proc/meminfo")
    assert box.err("cat /etc/nothing").startswith("error: ENOENT")
    assert box.err("cat /etc").startswith("error: EISDIR")


def test_the_initrd_pages_are_freed(box):
    """free_initrd_mem: after the unpacking the module's pages are the
    buddy's (MemTotal as without a module), and `check` agrees."""
    plain = Box([])
    try:
        assert box.meminfo()["MemTotal"] == plain.meminfo()["MemTotal"]
    finally:
        plain.close()
    size = len(archive())
    assert "Freeing initrd memory: %dK" % (((size + 4095) >> 12) * 4) in box.run("dmesg")
    assert box.run("check").endswith("check: ok")


def test_tmpfs_pages_are_shmem(box):
    root = box.k.vfs.ns["/"]
    tmp = root.lookup(root.root, "tmp")
    before = box.meminfo()["Shmem"]
    f = root.create(tmp, "f", 0o644)
    assert root.write(f, 0, b"x" * 5000) == 5000
    assert box.meminfo()["Shmem"] - before == 8         # two pages, kB
    root.truncate(f, 100)
    assert box.meminfo()["Shmem"] - before == 4
    root.unlink(tmp, "f")
    assert box.meminfo()["Shmem"] == before


def test_shmem_counts_the_unpacked_files(box):
    # bin/prog (3 pages), motd, deep/er/file and the linked file: 6 pages
    assert box.k.vfs.ns["/"].nr_pages >= 6
    assert box.meminfo()["Shmem"] >= 6 * 4


def test_a_bad_archive_is_refused_and_boot_goes_on():
    b = Box([], initrd=archive()[:300])
    try:
        root = b.k.vfs.ns["/"]
        names = [name for name, _i, _t in root.readdir(root.root)]
        assert "bin" in names and "tmp" in names and "proc" in names
        assert "Initramfs unpacking failed: initramfs: truncated header at 232 (EINVAL)" in b.run("dmesg")
    finally:
        b.close()


# -- tmpfs pages go to swap under reclaim, and come back -------------------------------

def pattern_pages(n, seed):
    return b"".join(bytes([(seed + i) & 0xFF]) * 4096 for i in range(n))


def tmp_file(k, name, data):
    root = k.vfs.ns["/"]
    tmp = root.lookup(root.root, "tmp")
    ino = root.create(tmp, name, 0o644)
    assert root.write(ino, 0, data) == len(data)
    return root, tmp, ino


def test_tmpfs_pages_go_to_swap_and_come_back():
    k, sh = swapsupport.boot()
    data = pattern_pages(64, 7)
    root, tmp, ino = tmp_file(k, "cold", data)
    shmem0 = vmstat.counter(k, "nr_shmem")
    pswpout0 = k.swap.pswpout
    freed = k.pagecache.shrink_page_cache(48)
    assert freed >= 48
    out = k.swap.pswpout - pswpout0
    assert out >= 48 and len(ino.swapped) == out == root.nr_swapped
    assert vmstat.counter(k, "nr_shmem") == shmem0 - out          # Shmem: resident pages only
    assert k.swap.used_pages() == out
    assert "error" not in run(sh, "check")          # the swap census counts tmpfs's entries
    # read back byte for byte, from swap; the slots are freed
    assert root.read(ino, 0, len(data)) == data
    assert not ino.swapped and k.swap.used_pages() == 0
    assert vmstat.counter(k, "nr_shmem") == shmem0
    # written out again, then truncated and unlinked: no slot left behind
    k.pagecache.shrink_page_cache(48)
    assert ino.swapped
    root.truncate(ino, 10 * 4096 + 5)
    assert root.read(ino, 0, 1 << 20) == data[:10 * 4096 + 5]
    root.unlink(tmp, "cold")
    assert k.swap.used_pages() == 0 and root.nr_swapped == 0
    assert "error" not in run(sh, "check")


def test_a_partial_write_and_swapoff_bring_tmpfs_pages_back():
    k, sh = swapsupport.boot()
    data = bytearray(pattern_pages(32, 1))
    root, tmp, ino = tmp_file(k, "w", bytes(data))
    k.pagecache.shrink_page_cache(24)
    assert len(ino.swapped) >= 24
    root.write(ino, 5 * 4096 + 100, b"hello")               # inside a swapped page
    data[5 * 4096 + 100:5 * 4096 + 105] = b"hello"
    run(sh, "swapoff /dev/sdb")
    assert not ino.swapped and root.nr_swapped == 0
    assert root.read(ino, 0, 1 << 20) == bytes(data)


def test_without_swap_tmpfs_pages_stay():
    k, sh = swapsupport.boot(swap=0)
    data = pattern_pages(16, 3)
    root, tmp, ino = tmp_file(k, "stay", data)
    k.pagecache.shrink_page_cache(16)
    assert not ino.swapped and root.read(ino, 0, len(data)) == data


def test_unlinked_files_and_memfds_on_swap_come_back_at_swapoff():
    """shmem_swaplist: a /tmp file unlinked while open and a memfd (the
    internal shm mount) have no name to be found by, yet their swapped
    pages are counted by `check` and brought back by swapoff."""
    k, sh = swapsupport.boot()
    data = pattern_pages(24, 5)
    root, tmp, ino = tmp_file(k, "gone", data)
    root.pin(ino)                                   # an open file...
    root.unlink(tmp, "gone")                        # ...whose name goes
    f = memfd_file(k, "memfd:m")
    shm = k.vfs.shm_mnt
    assert shm.write(f.inode, 0, data) == len(data)
    assert vmstat.counter(k, "nr_shmem") >= 48
    k.pagecache.shrink_page_cache(96)
    assert ino.swapped and f.inode.swapped
    assert k.swap.used_pages() == len(ino.swapped) + len(f.inode.swapped)
    assert "error" not in run(sh, "check")
    run(sh, "swapoff /dev/sdb")
    assert not ino.swapped and not f.inode.swapped and not shm.swaplist and not root.swaplist
    assert root.read(ino, 0, 1 << 20) == data and shm.read(f.inode, 0, 1 << 20) == data
    f.fput(k)
    root.unpin(ino)
    assert shm.nr_pages == 0 and "error" not in run(sh, "check")


def mapped_tmpfs_box(swap):
    """A UserBox with the tmpfs root, a swap disk (swapped on) or none, and
    a task that maps /tmp/mapped (32 pages of a pattern) shared."""
    disks = [bytearray(64 << 10)] + ([bytearray(16 << 20)] if swap else [])
    b = UserBox(disks, initrd=archive(), cmdline="nomount")
    if swap:
        b.run("mkswap /dev/sdb")
        b.run("swapon /dev/sdb")
    data = pattern_pages(32, 9)
    root, tmp, ino = tmp_file(b.k, "mapped", data)
    t = b.new_task("reader")
    fd = b.sys(t, "openat", -100, "/tmp/mapped", O_RDWR, 0)
    va = b.call(t, "mmap", 0, len(data), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    assert fd >= 0 and va > 0
    assert b.get(t, va, len(data)) == data              # every page faulted in
    return b, t, va, data, root, ino


def rss_file_kb(b, t):
    return swapsupport.status(b.sh, t.pid)["RssFile"]


def reclaim_twice(b):
    for _ in range(2):                                  # the accessed bits go in the first pass
        b.k.pagecache.shrink_page_cache(64)


def test_mapped_tmpfs_pages_are_unmapped_to_swap_and_fault_back():
    """shrink_folio_list on a mapped tmpfs page: try_to_unmap from every
    PTE, then shmem_writeout to swap; the process's next touch faults it
    back, its stores kept (shared: in the file too)."""
    b, t, va, data, root, ino = mapped_tmpfs_box(swap=True)
    b.put(t, va + 4096 - t.buf, b"stored through the mapping")
    rss0 = rss_file_kb(b, t)
    assert rss0 == 128 and swapsupport.meminfo(b.sh)["Mapped"] == 128
    reclaim_twice(b)
    out = len(ino.swapped)
    assert out >= 16, out
    assert rss_file_kb(b, t) == rss0 - 4 * out == swapsupport.meminfo(b.sh)["Mapped"]
    assert "error" not in b.run("check")
    got = b.get(t, va, len(data))                       # faulted back from swap
    want = data[:4096] + b"stored through the mapping" + data[4096 + 26:]
    assert got == want and root.read(ino, 0, len(data)) == want
    assert not ino.swapped and b.k.swap.used_pages() == root.nr_swapped    # the archive's files
    assert "error" not in b.run("check")


def test_without_swap_mapped_tmpfs_pages_stay_mapped():
    b, t, va, data, root, ino = mapped_tmpfs_box(swap=False)
    reclaim_twice(b)
    assert rss_file_kb(b, t) == 128 and not ino.swapped
