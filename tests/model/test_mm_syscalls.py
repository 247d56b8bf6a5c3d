"""The memory system calls (issue 14, the mm side) called as a program
calls them, with a Task over a booted simulated kernel: mmap (anonymous,
files through descriptors, MAP_FIXED replacing, MAP_FIXED_NOREPLACE,
MAP_POPULATE, hints, mmap_min_addr), munmap, mprotect, brk, mremap (the
pages moving with their contents, COW-shared and swapped ones included,
the reverse map following), madvise, mincore, msync, memfd_create, the
stack growing down, and hostile arguments. After each step the
independent checks of tests/model/mmcheck.py (page tables against VMAs,
RSS, refcounts, the rmap and LRU, swap counts, the kernel's own `check`)
must hold, with every frame accounted for."""

import struct

import pytest

from kernel_py.fs.file import O_CREAT, O_RDONLY, O_RDWR, O_WRONLY
from kernel_py.lib.errno import (
    EACCES, EBADF, EEXIST, EFAULT, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, EPERM,
)
from kernel_py.mm.types import VM_DONTCOPY, VM_GROWSDOWN, VM_RAND_READ, VM_WIPEONFORK, is_swap_pte
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_PRESENT
from kernel_py.arch.x86.layout import USER_END

from tests.model.mmcheck import check_all
from tests.model.usersupport import UserBox

PG = 4096
MiB = 1 << 20
R, W, X = 1, 2, 4
RW = R | W
SHARED, PRIVATE, FIXED, ANON = 0x01, 0x02, 0x10, 0x20
SHARED_VALIDATE = 0x03
GROWSDOWN, NORESERVE, POPULATE, MAP_SYNC, NOREPLACE = 0x100, 0x4000, 0x8000, 0x80000, 0x100000
MAP_32BIT = 0x40
MAYMOVE, MREMAP_FIXED, DONTUNMAP = 1, 2, 4
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4
MADV_NORMAL, MADV_RANDOM, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 3, 4
MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK = 8, 9, 10, 11
MADV_WIPEONFORK, MADV_POPULATE_READ, MADV_POPULATE_WRITE = 18, 22, 23
KERNEL_VA = 0xFFFF888000000000
NONCANON = 0x8000000000000000
AT_FDCWD = -100


# -- helpers -----------------------------------------------------------------

def box(**kw):
    b = UserBox(**kw)
    t = b.new_task()
    warm_up(b, t)
    return b, t


def swap_box():
    """A box with a 16 MiB swap disk in use (sdb)."""
    b = UserBox(disks=[bytearray(64 << 10), bytearray(16 * MiB)], mem=48 * MiB)
    b.run("mkswap /dev/sdb")
    b.run("swapon /dev/sdb")
    t = b.new_task()
    warm_up(b, t)
    return b, t


def warm_up(b, t):
    """A file made, opened, mapped and removed, a memfd made and closed: the
    slab caches get their first slabs (kept when empty) before a test
    counts frames."""
    put_file(b, t, "/tmp/warm", b"w" * PG)
    fd = opn(b, t, "/tmp/warm", O_RDWR)
    a = mmap(b, t, 0, PG, RW, SHARED, fd)
    wr(b, t, a, b"x")
    assert b.call(t, "munmap", a, PG) == 0
    b.call(t, "close", fd)
    assert b.sys(t, "unlink", "/tmp/warm") == 0
    b.call(t, "close", b.sys(t, "memfd_create", "warm-up", 0))


def mmap(b, t, addr, length, prot, flags, fd=-1, off=0):
    return b.call(t, "mmap", addr, length, prot, flags, fd, off)


def wr(b, t, va, data):
    b.k.procs.use_task(t)
    assert b.hw.copy_to_user(va, data), hex(va)


def rd(b, t, va, n):
    b.k.procs.use_task(t)
    return b.hw.copy_from_user(va, n)


def can_read(b, t, va):
    return rd(b, t, va, 1) is not None


def pattern(va, n, seed):
    """n bytes that differ per page and per seed."""
    out = bytearray()
    for p in range(0, n, PG):
        stamp = struct.pack("<QQ", va + p, seed)
        out += (stamp * (PG // 16))[:min(PG, n - p)]
    return bytes(out)


def put_file(b, t, path, data, mode=0o644):
    fd = b.sys(t, "openat", AT_FDCWD, path, O_CREAT | O_WRONLY, mode)
    assert fd >= 0, fd
    if data:
        assert b.write_all(t, fd, data) == len(data)
    b.call(t, "close", fd)


def opn(b, t, path, flags):
    fd = b.sys(t, "openat", AT_FDCWD, path, flags, 0)
    assert fd >= 0, (path, fd)
    return fd


def pread(b, t, fd, n, off):
    a = b.ubuf(t, n)
    got = b.call(t, "pread64", fd, a, n, off)
    assert got >= 0, got
    return b.get(t, a, got)


def mincore(b, t, va, n):
    vec = b.ubuf(t, n)
    r = b.call(t, "mincore", va, n * PG, vec)
    assert r == 0, r
    return list(b.get(t, vec, n))


def frames(b, t, a, n):
    """Pages of [a, a + n) that hold a frame of their own (not the zero page)."""
    got = 0
    for i in range(0, n, PG):
        e = t.mm.pte(a + i)
        if e & (_PAGE_PRESENT | 0x100) and e & PTE_ADDR_MASK != b.k.zero_page:
            got += 1
    return got


def vma_at(t, va):
    return t.mm.vmas.find(va)


def unmapped(t, n):
    """A free range of n bytes (found by mapping and unmapping it)."""
    a = t.mm.get_unmapped_area(n)
    assert not t.mm.vmas.overlapping(a, a + n)
    return a


# -- mmap ----------------------------------------------------------------------

def test_mmap_argument_rules_as_linux():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 3 * PG, RW, PRIVATE | ANON)
    assert p > 0 and p & (PG - 1) == 0
    wr(b, t, p, b"x")
    assert mmap(b, t, 0, 0, R, PRIVATE | ANON) == -EINVAL                  # length 0
    assert mmap(b, t, 0, PG, R, ANON) == -EINVAL                           # neither type
    assert mmap(b, t, 0, PG, R, SHARED_VALIDATE | ANON) == -EINVAL        # 6.1: anonymous
    assert mmap(b, t, p + 1, PG, R, PRIVATE | ANON | FIXED) == -EINVAL
    assert mmap(b, t, 0, PG, R, PRIVATE | ANON, -1, 1) == -EINVAL          # offset
    o = mmap(b, t, 0, PG, R, PRIVATE | ANON, -1, -PG)                     # anonymous: offset ignored
    assert o > 0 and b.call(t, "munmap", o, PG) == 0
    assert mmap(b, t, 0, PG, R, PRIVATE) == -EBADF                        # fd -1, not anonymous
    assert mmap(b, t, 0, PG, R, PRIVATE, 12345) == -EBADF
    assert mmap(b, t, 0, 1 << 48, R, PRIVATE | ANON) == -ENOMEM
    assert mmap(b, t, 0, -1, R, PRIVATE | ANON) == -ENOMEM                 # rounds up to 0
    assert mmap(b, t, 0, -PG, R, PRIVATE | ANON) == -ENOMEM
    assert mmap(b, t, KERNEL_VA, PG, R, PRIVATE | ANON | FIXED) == -ENOMEM
    assert mmap(b, t, NONCANON, PG, R, PRIVATE | ANON | FIXED) == -ENOMEM
    assert mmap(b, t, USER_END - PG, 2 * PG, R, PRIVATE | ANON | FIXED) == -ENOMEM
    assert mmap(b, t, 0x1000, PG, R, PRIVATE | ANON | FIXED) == -EPERM     # below mmap_min_addr
    assert mmap(b, t, 0xF000, 2 * PG, R, PRIVATE | ANON | FIXED) == -EPERM
    assert mmap(b, t, 0, PG, R, PRIVATE | ANON | 0x40000) == -ENOMEM       # MAP_HUGETLB: none reserved
    lo = mmap(b, t, 0x10000, PG, RW, PRIVATE | ANON | FIXED)              # at mmap_min_addr: fine
    assert lo == 0x10000
    wr(b, t, lo, b"low")
    assert rd(b, t, p, 1) == b"x"                                          # nothing else changed
    assert b.call(t, "munmap", lo, PG) == 0
    assert b.call(t, "munmap", p, 3 * PG) == 0
    assert rd(b, t, p, 1) is None
    # a hint below mmap_min_addr is not a refusal: it is moved up
    h = mmap(b, t, 0x1000, PG, R, PRIVATE | ANON)
    assert h >= 0x10000
    assert b.call(t, "munmap", h, PG) == 0
    check_all(b.k, base)


def test_hints_are_used_when_free_and_keep_the_stack_guard_gap():
    b, t = box()
    free = 0x200000000
    assert not t.mm.vmas.overlapping(free, free + 4 * PG)
    assert mmap(b, t, free, 2 * PG, RW, PRIVATE | ANON) == free           # free: taken
    q = mmap(b, t, free, PG, RW, PRIVATE | ANON)                           # taken: elsewhere
    assert q != free and not free <= q < free + 2 * PG
    assert mmap(b, t, free + 2 * PG + 5, PG, RW, PRIVATE | ANON) == free + 2 * PG   # rounded down
    assert mmap(b, t, free + 5, PG, RW, PRIVATE | ANON) != free                  # down to a taken page
    stack = [v for v in t.mm.vmas if v.flags & VM_GROWSDOWN][0]
    inside_gap = stack.start - 16 * PG
    a = mmap(b, t, inside_gap, PG, RW, PRIVATE | ANON)
    assert a != inside_gap                                                 # the guard gap stays free
    below = stack.start - 256 * PG - PG
    assert mmap(b, t, below, PG, RW, PRIVATE | ANON) == below             # just below the gap: fine
    # MAP_32BIT: in the 2 GiB below 2 GiB
    lo = mmap(b, t, 0, PG, RW, PRIVATE | ANON | MAP_32BIT)
    assert 0x40000000 <= lo < 0x80000000
    check_all(b.k)


def test_map_fixed_replaces_and_a_refused_one_changes_nothing():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 4 * PG, RW, PRIVATE | ANON)
    wr(b, t, p, b"a" * 4 * PG)
    q = mmap(b, t, p + PG, PG, RW, PRIVATE | ANON | FIXED)
    assert q == p + PG
    assert rd(b, t, q, PG) == bytes(PG)                                    # a fresh page
    assert rd(b, t, p, 1) == b"a" and rd(b, t, p + 2 * PG, 1) == b"a" and rd(b, t, p + 3 * PG, 1) == b"a"
    assert frames(b, t, p, 4 * PG) == 3                                     # the old page is freed
    check_all(b.k)
    # MAP_FIXED over a mapping with a request that fails: the old one stays whole
    put_file(b, t, "/tmp/wo", b"w" * PG)
    wo = opn(b, t, "/tmp/wo", O_WRONLY)
    assert mmap(b, t, p, 2 * PG, R, PRIVATE | FIXED, wo) == -EACCES
    assert mmap(b, t, p, 2 * PG, R, SHARED | FIXED | 0x40000, -1) == -EBADF
    assert rd(b, t, p, 1) == b"a" and rd(b, t, p + PG, 1) == b"\0"
    # NOREPLACE: any overlap is EEXIST; a free range is mapped
    assert mmap(b, t, p + 3 * PG, PG, R, PRIVATE | ANON | NOREPLACE) == -EEXIST
    assert mmap(b, t, p + 3 * PG, 2 * PG, R, PRIVATE | ANON | NOREPLACE) == -EEXIST
    assert b.call(t, "munmap", p + 3 * PG, PG) == 0
    assert mmap(b, t, p + 3 * PG, PG, RW, PRIVATE | ANON | NOREPLACE) == p + 3 * PG
    assert mmap(b, t, p + 5, PG, R, PRIVATE | ANON | NOREPLACE) == -EINVAL
    b.call(t, "close", wo)
    assert b.call(t, "munmap", p, 4 * PG) == 0
    assert b.sys(t, "unlink", "/tmp/wo") == 0
    check_all(b.k, base)


def test_map_populate_faults_the_range_in():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 16 * PG, RW, PRIVATE | ANON | POPULATE)
    assert frames(b, t, p, 16 * PG) == 16                                   # written: real frames
    assert all(t.mm.pte(p + i * PG) & _PAGE_PRESENT for i in range(16))
    ro = mmap(b, t, 0, 8 * PG, R, PRIVATE | ANON | POPULATE)
    assert frames(b, t, ro, 8 * PG) == 0                                    # read: the zero page
    assert all(t.mm.pte(ro + i * PG) & PTE_ADDR_MASK == b.k.zero_page for i in range(8))
    s = mmap(b, t, 0, 4 * PG, RW, SHARED | ANON | POPULATE)
    assert t.mm.rss_shmem == 4
    none = mmap(b, t, 0, 4 * PG, 0, PRIVATE | ANON | POPULATE)             # PROT_NONE: nothing
    assert not any(t.mm.pte(none + i * PG) for i in range(4))
    # a file: up to its end, no SIGBUS past it
    put_file(b, t, "/tmp/f", b"f" * (2 * PG + 100))
    fd = opn(b, t, "/tmp/f", O_RDONLY)
    f = mmap(b, t, 0, 8 * PG, R, SHARED | POPULATE, fd)
    assert [bool(t.mm.pte(f + i * PG) & _PAGE_PRESENT) for i in range(5)] == [True] * 3 + [False] * 2
    assert t.segv == 0 and b.k.fault.stats.segv == 0
    assert mincore(b, t, p, 16) == [1] * 16
    for a, n in ((p, 16), (ro, 8), (s, 4), (none, 4), (f, 8)):
        assert b.call(t, "munmap", a, n * PG) == 0
    b.call(t, "close", fd)
    assert b.sys(t, "unlink", "/tmp/f") == 0
    check_all(b.k, base)


def test_file_mappings_follow_the_descriptor():
    b, t = box()
    base = check_all(b.k)
    data = pattern(0, 3 * PG, 9)
    put_file(b, t, "/tmp/f", data)
    ro = opn(b, t, "/tmp/f", O_RDONLY)
    rw = opn(b, t, "/tmp/f", O_RDWR)
    wo = opn(b, t, "/tmp/f", O_WRONLY)
    assert mmap(b, t, 0, PG, RW, SHARED, ro) == -EACCES                   # writable shared: O_RDWR
    assert mmap(b, t, 0, PG, R, PRIVATE, wo) == -EACCES                   # any mapping: readable
    assert mmap(b, t, 0, PG, R, SHARED_VALIDATE | MAP_SYNC, ro) == -EOPNOTSUPP
    s = mmap(b, t, 0, PG, R, SHARED | MAP_SYNC, ro)                        # MAP_SHARED ignores it
    assert s > 0 and rd(b, t, s, 16) == data[:16]
    assert b.call(t, "mprotect", s, PG, RW) == -EACCES                    # never writable later
    # private: written pages are ours; the file does not change
    p = mmap(b, t, 0, 3 * PG, RW, PRIVATE, ro)
    assert rd(b, t, p + PG, PG) == data[PG:2 * PG]
    wr(b, t, p + PG, b"PRIVATE")
    assert pread(b, t, rw, 7, PG) == data[PG:PG + 7]
    # shared through O_RDWR: stores reach the file, write() reaches the mapping
    q = mmap(b, t, 0, 3 * PG, RW, SHARED, rw, PG)
    assert rd(b, t, q, 8) == data[PG:PG + 8]
    wr(b, t, q + PG, b"SHARED")
    assert pread(b, t, ro, 6, 2 * PG) == b"SHARED"
    # the mapping outlives the descriptors, and the name
    for fd in (ro, rw, wo):
        b.call(t, "close", fd)
    assert b.sys(t, "unlink", "/tmp/f") == 0
    assert rd(b, t, q + PG, 6) == b"SHARED" and rd(b, t, p + PG, 7) == b"PRIVATE"
    check_all(b.k)
    for a, n in ((s, 1), (p, 3), (q, 3)):
        assert b.call(t, "munmap", a, n * PG) == 0
    check_all(b.k, base)


def test_an_unlinked_open_file_still_maps():
    b, t = box()
    put_file(b, t, "/tmp/gone", b"still here" + bytes(PG))
    fd = opn(b, t, "/tmp/gone", O_RDWR)
    assert b.sys(t, "unlink", "/tmp/gone") == 0
    p = mmap(b, t, 0, PG, RW, SHARED, fd)
    assert p > 0 and rd(b, t, p, 10) == b"still here"
    b.call(t, "close", fd)
    wr(b, t, p, b"STILL")
    assert b.call(t, "munmap", p, PG) == 0
    check_all(b.k)


def test_what_cannot_be_mapped_and_dev_zero():
    b, t = box()
    base = check_all(b.k)
    d = opn(b, t, "/tmp", O_RDONLY)
    assert mmap(b, t, 0, PG, R, PRIVATE, d) == -ENODEV                    # a directory
    fds = b.ubuf(t, 8)
    assert b.call(t, "pipe", fds) == 0
    r, w = struct.unpack("<ii", b.get(t, fds, 8))
    assert mmap(b, t, 0, PG, R, PRIVATE, r) == -ENODEV                    # a pipe
    assert mmap(b, t, 0, PG, R, PRIVATE, w) == -EACCES                    # write end: not readable
    null = opn(b, t, "/dev/null", O_RDWR)
    assert mmap(b, t, 0, PG, R, PRIVATE, null) == -ENODEV
    meminfo = opn(b, t, "/proc/meminfo", O_RDONLY)
    assert mmap(b, t, 0, PG, R, PRIVATE, meminfo) == -ENODEV
    assert mmap(b, t, 0, PG, R, PRIVATE | GROWSDOWN, d) == -ENODEV
    zero = opn(b, t, "/dev/zero", O_RDWR)
    z = mmap(b, t, 0, 2 * PG, RW, PRIVATE, zero, 5 * PG)                   # the offset is ignored
    v = vma_at(t, z)
    assert v.file is None and v.shm is None
    wr(b, t, z, b"zz")
    zs = mmap(b, t, 0, 2 * PG, RW, SHARED, zero)
    assert vma_at(t, zs).shm is not None                                   # shared anonymous memory
    pid = b.call(t, "fork")
    c = b.k.procs.tasks[pid]
    wr(b, c, zs, b"from the child")
    assert rd(b, t, zs, 14) == b"from the child"
    assert mmap(b, t, 0, PG, R, SHARED | GROWSDOWN | ANON) == -EINVAL
    for fd in (d, r, w, null, meminfo, zero):
        b.call(t, "close", fd)
    check_all(b.k)
    assert b.call(t, "munmap", z, 2 * PG) == 0 and b.call(t, "munmap", zs, 2 * PG) == 0
    check_all(b.k)


# -- munmap, mprotect, brk -------------------------------------------------------

def test_munmap_rules_and_splits():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 10 * PG, RW, PRIVATE | ANON)
    for i in range(10):
        wr(b, t, p + i * PG, bytes([65 + i]) * PG)
    assert b.call(t, "munmap", p + 3 * PG, 2 * PG) == 0
    assert len(t.mm.vmas.overlapping(p, p + 10 * PG)) == 2
    assert [can_read(b, t, p + i * PG) for i in range(10)] == [True] * 3 + [False] * 2 + [True] * 5
    assert rd(b, t, p + 5 * PG, 1) == b"F"
    assert b.call(t, "munmap", p + 1, PG) == -EINVAL
    assert b.call(t, "munmap", p, 0) == -EINVAL
    assert b.call(t, "munmap", KERNEL_VA, PG) == -EINVAL
    assert b.call(t, "munmap", p, -PG) == -EINVAL                          # overflows
    assert b.call(t, "munmap", 0x1000, PG) == 0                           # nothing there: fine
    assert b.call(t, "munmap", p, 10 * PG) == 0                           # across the hole
    assert frames(b, t, p, 10 * PG) == 0
    check_all(b.k, base)


def test_mprotect_checks_everything_first():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 3 * PG, RW, PRIVATE | ANON)
    wr(b, t, p, b"a" * 3 * PG)
    assert b.call(t, "mprotect", p, 0, R) == 0
    assert b.call(t, "mprotect", p + 1, PG, R) == -EINVAL
    assert b.call(t, "mprotect", p, PG, 0x100) == -EINVAL
    assert b.call(t, "mprotect", p, PG, RW | 0x8) == 0                    # PROT_SEM: accepted
    assert b.call(t, "mprotect", p, PG, R | 0x03000000) == -EINVAL        # GROWSDOWN|GROWSUP
    assert b.call(t, "mprotect", p, -PG, R) == -ENOMEM
    assert b.call(t, "munmap", p + 2 * PG, PG) == 0
    assert b.call(t, "mprotect", p, 3 * PG, R) == -ENOMEM                 # a hole: nothing changed
    b.k.procs.use_task(t)
    assert b.hw.copy_to_user(p, b"still writable")
    assert b.call(t, "mprotect", p, PG, R) == 0
    b.k.procs.use_task(t)
    assert not b.hw.copy_to_user(p, b"x")
    assert rd(b, t, p, 5) == b"still"
    assert b.call(t, "mprotect", p, PG, R | 0x01000000) == -EINVAL       # not a GROWSDOWN VMA
    stack = [v for v in t.mm.vmas if v.flags & VM_GROWSDOWN][0]
    s0 = stack.start
    assert b.call(t, "mprotect", stack.end - PG, PG, RW | 0x01000000) == 0    # from the VMA's start
    assert stack.start == s0
    # write-only memory is readable (x86 has no write-only pages)
    wo = mmap(b, t, 0, PG, W, PRIVATE | ANON)
    wr(b, t, wo, b"w")
    assert rd(b, t, wo, 1) == b"w"
    assert b.call(t, "munmap", wo, PG) == 0
    assert b.call(t, "munmap", p, 2 * PG) == 0
    check_all(b.k, base)


def test_brk_follows_linux_rules():
    b, t = box()
    mm = t.mm
    start = mm.start_brk
    assert b.call(t, "brk", 0) == start
    top = start + 16 * PG
    assert b.call(t, "brk", top) == top
    wr(b, t, start, b"b" * 16 * PG)
    assert b.call(t, "brk", start + PG) == start + PG                       # shrink
    assert rd(b, t, start + 8 * PG, 1) is None
    assert b.call(t, "brk", top) == top and rd(b, t, start + 8 * PG, 1) == b"\0"
    assert b.call(t, "brk", 0x1000) == top                                  # below the start
    assert b.call(t, "brk", KERNEL_VA) == top
    # a page must stay free below the next mapping
    nxt = mmap(b, t, top + 4 * PG, PG, R, PRIVATE | ANON | FIXED)
    assert b.call(t, "brk", top + 4 * PG) == top
    assert b.call(t, "brk", top + 3 * PG) == top + 3 * PG
    assert b.call(t, "munmap", nxt, PG) == 0
    # RLIMIT_DATA
    t.rlim[2] = [8 * PG, 8 * PG]
    assert b.call(t, "brk", start + 64 * PG) == top + 3 * PG
    assert b.call(t, "brk", start + 4 * PG) == start + 4 * PG
    check_all(b.k)


# -- mremap ----------------------------------------------------------------------

def test_mremap_grow_shrink_move_and_errors():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 2 * PG, RW, PRIVATE | ANON)
    data = pattern(p, 2 * PG, 1)
    wr(b, t, p, data)
    q = b.call(t, "mremap", p, 2 * PG, 64 * PG, MAYMOVE, 0)
    assert q > 0 and rd(b, t, q, 2 * PG) == data
    assert rd(b, t, q + 2 * PG, PG) == bytes(PG)
    if q != p:
        assert rd(b, t, p, 1) is None
    check_all(b.k)
    assert b.call(t, "mremap", q, 64 * PG, PG, 0, 0) == q                  # shrink in place
    assert rd(b, t, q + PG, 1) is None and frames(b, t, q, PG) == 1
    # grow in place into a hole, merging with what follows
    a = mmap(b, t, 0, 3 * PG, RW, PRIVATE | ANON)
    assert b.call(t, "munmap", a + PG, PG) == 0
    assert b.call(t, "mremap", a, PG, 2 * PG, 0, 0) == a
    assert vma_at(t, a).start <= a and vma_at(t, a).end >= a + 3 * PG       # one VMA again
    assert b.call(t, "mremap", a, 3 * PG, 4 * PG, 0, 0) in (a, -ENOMEM)
    # MREMAP_FIXED
    wr(b, t, a, b"x")
    dst = mmap(b, t, 0, 4 * PG, RW, PRIVATE | ANON)
    wr(b, t, dst, b"old content")
    m = b.call(t, "mremap", a, 2 * PG, 2 * PG, MAYMOVE | MREMAP_FIXED, dst + PG)
    assert m == dst + PG and rd(b, t, m, 1) == b"x"
    assert rd(b, t, dst, 11) == b"old content" and rd(b, t, a, 1) is None
    # errors, nothing changed by any
    assert b.call(t, "mremap", m, PG, 2 * PG, MREMAP_FIXED, dst) == -EINVAL
    assert b.call(t, "mremap", m + 1, PG, 2 * PG, MAYMOVE, 0) == -EINVAL
    assert b.call(t, "mremap", m, PG, 2 * PG, 0x80, 0) == -EINVAL
    assert b.call(t, "mremap", m, PG, 0, MAYMOVE, 0) == -EINVAL
    assert b.call(t, "mremap", 0x100000000000, PG, 2 * PG, MAYMOVE, 0) == -EFAULT
    assert b.call(t, "mremap", m, 8 * PG, 9 * PG, MAYMOVE, 0) == -EFAULT   # past its VMA
    assert b.call(t, "mremap", m, PG, PG, DONTUNMAP, 0) == -EINVAL         # needs MAYMOVE
    assert b.call(t, "mremap", m, PG, 2 * PG, DONTUNMAP | MAYMOVE, 0) == -EINVAL   # same size
    assert b.call(t, "mremap", m, 0, PG, MAYMOVE, 0) == -EINVAL            # duplicate a private one
    assert b.call(t, "mremap", m, PG, PG, MAYMOVE | MREMAP_FIXED, m) == -EINVAL     # overlap
    assert b.call(t, "mremap", m, PG, PG, MAYMOVE | MREMAP_FIXED, m + 5) == -EINVAL
    assert b.call(t, "mremap", m, PG, PG, MAYMOVE | MREMAP_FIXED, KERNEL_VA) == -EINVAL
    assert b.call(t, "mremap", m, PG, PG, MAYMOVE | MREMAP_FIXED, 0x1000) == -EPERM
    assert b.call(t, "mremap", m, PG, 1 << 47, 0, 0) == -ENOMEM
    assert rd(b, t, m, 1) == b"x"
    for v in list(t.mm.vmas):
        if v.start != t.buf and not v.flags & VM_GROWSDOWN:
            assert b.call(t, "munmap", v.start, v.end - v.start) == 0
    check_all(b.k, base)


def test_mremap_moves_cow_shared_and_swapped_pages_and_reclaim_finds_them():
    b, t = swap_box()
    base = check_all(b.k)
    n = 512                                                   # 2 MiB
    p = mmap(b, t, 0, n * PG, RW, PRIVATE | ANON)
    data = pattern(p, n * PG, 3)
    wr(b, t, p, data)
    pid = b.call(t, "fork")
    c = b.k.procs.tasks[pid]
    assert b.k.mem_map.count(t.mm.pte(p) >> 12 & 0xFFFFFFFFF) == 2        # shared copy-on-write
    check_all(b.k)
    # the parent moves the shared region: its pages become its own
    q = b.call(t, "mremap", p, n * PG, n * PG, MAYMOVE | MREMAP_FIXED, 0x300000000)
    assert q == 0x300000000
    check_all(b.k)
    assert rd(b, t, q, n * PG) == data and rd(b, c, p, n * PG) == data
    # reclaim writes both out (it finds every PTE), they come back intact
    b.sh.execute("echo 8M > /sys/fs/cgroup/memory.reclaim")
    b.sh.execute("echo 8M > /sys/fs/cgroup/memory.reclaim")
    swapped = sum(1 for i in range(n) if is_swap_pte(t.mm.pte(q + i * PG)))
    assert swapped > n // 2, swapped
    check_all(b.k)
    # the swapped region moves again: swap entries carried along
    r = b.call(t, "mremap", q, n * PG, 2 * n * PG, MAYMOVE | MREMAP_FIXED, 0x340000000)
    assert r == 0x340000000
    assert sum(1 for i in range(n) if is_swap_pte(t.mm.pte(r + i * PG))) == swapped
    check_all(b.k)
    assert rd(b, t, r, n * PG) == data
    assert rd(b, t, r + n * PG, PG) == bytes(PG)
    check_all(b.k)
    # the child's pages: swapped while shared with nobody now, then moved in the child
    b.sh.execute("echo 8M > /sys/fs/cgroup/memory.reclaim")
    s = b.call(c, "mremap", p, n * PG, n * PG, MAYMOVE, 0)
    assert s > 0
    check_all(b.k)
    wr(b, c, s + 5 * PG, b"child")
    assert rd(b, c, s, 5 * PG) == data[:5 * PG] and rd(b, t, r + 5 * PG, 5) == data[5 * PG:5 * PG + 5]
    # a swap entry fork shares: the mover reads it in and keeps its own copy
    b.sh.execute("echo 16M > /sys/fs/cgroup/memory.reclaim")
    pid2 = b.call(c, "fork")
    g = b.k.procs.tasks[pid2]
    shared = [i for i in range(n) if is_swap_pte(c.mm.pte(s + i * PG))]
    assert shared
    e = c.mm.pte(s + shared[0] * PG)
    assert b.k.swap.count(e) == 2
    u = b.call(g, "mremap", s, n * PG, n * PG, MAYMOVE, 0)
    assert u > 0
    check_all(b.k)
    assert rd(b, g, u, n * PG) == rd(b, c, s, n * PG)
    for task in (g, c, t):
        b.call(task, "exit_group", 0)
    check_all(b.k)
    mi = b.meminfo()
    assert mi["SwapFree"] == mi["SwapTotal"]


def test_a_failed_mremap_moves_everything_back():
    """Three chunks of COW-shared pages; frames run out in the middle one:
    ENOMEM, the chunks already moved come back, every page where it was
    with its content, nothing at the destination, no frame lost."""
    b, t = box()
    n = 3 * 256
    p = mmap(b, t, 0, n * PG, RW, PRIVATE | ANON)
    data = pattern(p, n * PG, 8)
    wr(b, t, p, data)
    pid = b.call(t, "fork")
    c = b.k.procs.tasks[pid]
    b.k.procs.use_task(t)
    base = check_all(b.k)
    vmas = [(v.start, v.end) for v in t.mm.vmas]
    pcp = b.k.pcp
    real = pcp.alloc
    calls = [0]

    def failing():
        calls[0] += 1
        return real() if calls[0] <= 300 else None     # the second chunk's copies fail
    pcp.alloc = failing
    try:
        assert b.call(t, "mremap", p, n * PG, n * PG, MAYMOVE | MREMAP_FIXED, 0x300000000) == -ENOMEM
    finally:
        pcp.alloc = real
    assert calls[0] > 300
    assert [(v.start, v.end) for v in t.mm.vmas] == vmas
    assert not any(t.mm.pte(0x300000000 + i * PG) for i in range(n))
    check_all(b.k, base)
    assert rd(b, t, p, n * PG) == data and rd(b, c, p, n * PG) == data
    # and with frames to spare it goes through
    assert b.call(t, "mremap", p, n * PG, n * PG, MAYMOVE | MREMAP_FIXED, 0x300000000) == 0x300000000
    assert rd(b, t, 0x300000000, n * PG) == data
    check_all(b.k)


def test_mremap_dontunmap():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 5 * PG, RW, PRIVATE | ANON)
    wr(b, t, p, b"a" * 5 * PG)
    q = b.call(t, "mremap", p, 5 * PG, 5 * PG, MAYMOVE | DONTUNMAP, 0)
    assert q > 0 and q != p
    assert rd(b, t, q, 5 * PG) == b"a" * 5 * PG
    assert rd(b, t, p, 5 * PG) == bytes(5 * PG)                            # mapped, empty
    check_all(b.k)
    # part of a mapping, to a fixed place over another mapping
    dst = mmap(b, t, 0, 10 * PG, RW, PRIVATE | ANON)
    wr(b, t, dst, b"d" * 10 * PG)
    wr(b, t, p, b"b" * 5 * PG)
    m = b.call(t, "mremap", p + 2 * PG, 2 * PG, 2 * PG, MAYMOVE | DONTUNMAP | MREMAP_FIXED, dst)
    assert m == dst
    assert rd(b, t, dst, 2 * PG) == b"b" * 2 * PG and rd(b, t, dst + 2 * PG, 1) == b"d"
    assert rd(b, t, p + 2 * PG, 2 * PG) == bytes(2 * PG) and rd(b, t, p, 2 * PG) == b"b" * 2 * PG
    # shared memory: the old range still shows the object
    s = mmap(b, t, 0, 3 * PG, RW, SHARED | ANON)
    wr(b, t, s, b"s" * 3 * PG)
    s2 = b.call(t, "mremap", s, 3 * PG, 3 * PG, MAYMOVE | DONTUNMAP, 0)
    assert s2 > 0 and rd(b, t, s2, 3 * PG) == b"s" * 3 * PG == rd(b, t, s, 3 * PG)
    wr(b, t, s2, b"both")
    assert rd(b, t, s, 4) == b"both"
    check_all(b.k)
    for a, n in ((p, 5), (q, 5), (dst, 10), (s, 3), (s2, 3)):
        assert b.call(t, "munmap", a, n * PG) == 0
    check_all(b.k, base)


def test_mremap_of_files_and_shared_duplicates():
    b, t = box()
    data = pattern(0, 3 * PG, 5)
    put_file(b, t, "/tmp/f", data)
    fd = opn(b, t, "/tmp/f", O_RDWR)
    f = mmap(b, t, 0, PG, RW, SHARED, fd)
    f2 = b.call(t, "mremap", f, PG, 3 * PG, MAYMOVE, 0)
    assert f2 > 0 and rd(b, t, f2, 3 * PG) == data
    wr(b, t, f2 + 2 * PG, b"W")
    assert pread(b, t, fd, 1, 2 * PG) == b"W"
    # old_len 0: a second mapping of the same shared pages
    s = mmap(b, t, 0, 2 * PG, RW, SHARED | ANON)
    wr(b, t, s, b"dup")
    d = b.call(t, "mremap", s, 0, 2 * PG, MAYMOVE, 0)
    assert d > 0 and d != s and rd(b, t, d, 3) == b"dup" and rd(b, t, s, 3) == b"dup"
    check_all(b.k)
    b.call(t, "close", fd)


def test_shared_memory_grown_by_mremap_ends_where_its_object_does():
    """MAP_SHARED|MAP_ANONYMOUS is a shmem object of the mapping's size:
    mremap may grow the mapping, but past the object is SIGBUS (as a file
    mapping past the end of its file)."""
    b, t = box()
    s = mmap(b, t, 0, 2 * PG, RW, SHARED | ANON)
    wr(b, t, s, b"s" * 2 * PG)
    g = b.call(t, "mremap", s, 2 * PG, 4 * PG, MAYMOVE, 0)
    assert g > 0 and rd(b, t, g, 2 * PG) == b"s" * 2 * PG
    assert rd(b, t, g + 2 * PG, 1) is None
    assert b.k.fault.last_segv.why == "beyond end of file"                # SIGBUS, not SIGSEGV
    assert b.call(t, "mremap", g, 4 * PG, PG, 0, 0) == g                   # shrink: the object stays
    assert b.call(t, "mremap", g, PG, 2 * PG, MAYMOVE, 0) > 0
    check_all(b.k)


# -- madvise, mincore, msync ------------------------------------------------------

def test_madvise():
    b, t = box()
    base = check_all(b.k)
    p = mmap(b, t, 0, 4 * PG, RW, PRIVATE | ANON)
    wr(b, t, p, b"x" * 4 * PG)
    assert b.call(t, "madvise", p + PG, PG, MADV_DONTNEED) == 0
    assert rd(b, t, p, 4 * PG) == b"x" * PG + bytes(PG) + b"x" * 2 * PG
    assert frames(b, t, p, 4 * PG) == 3
    assert b.call(t, "madvise", p, 4 * PG, MADV_FREE) == 0
    assert frames(b, t, p, 4 * PG) == 0 and rd(b, t, p, 4 * PG) == bytes(4 * PG)
    assert b.call(t, "madvise", p, 4 * PG, MADV_RANDOM) == 0
    assert vma_at(t, p).flags & VM_RAND_READ
    assert b.call(t, "madvise", p, 4 * PG, MADV_NORMAL) == 0
    assert not vma_at(t, p).flags & VM_RAND_READ
    assert b.call(t, "madvise", p, 0, MADV_DONTNEED) == 0
    assert b.call(t, "madvise", p, PG, 12345) == -EINVAL
    assert b.call(t, "madvise", p, PG, 100) == -EINVAL                     # MADV_HWPOISON
    assert b.call(t, "madvise", p + 1, PG, MADV_DONTNEED) == -EINVAL
    assert b.call(t, "madvise", p, -1, MADV_DONTNEED) == -EINVAL
    assert b.call(t, "madvise", p, PG, MADV_REMOVE) == -EINVAL             # private
    assert b.call(t, "munmap", p + 3 * PG, PG) == 0
    wr(b, t, p, b"y" * 3 * PG)
    assert b.call(t, "madvise", p, 4 * PG, MADV_DONTNEED) == -ENOMEM      # the mapped part still done
    assert frames(b, t, p, 3 * PG) == 0
    assert b.call(t, "madvise", p, 4 * PG, MADV_POPULATE_WRITE) == -ENOMEM
    assert frames(b, t, p, 3 * PG) == 3
    # a private file mapping: DONTNEED drops our copy, the file shows
    put_file(b, t, "/tmp/f", b"file data" + bytes(PG))
    fd = opn(b, t, "/tmp/f", O_RDONLY)
    f = mmap(b, t, 0, PG, RW, PRIVATE, fd)
    wr(b, t, f, b"private!!")
    assert b.call(t, "madvise", f, PG, MADV_DONTNEED) == 0
    assert rd(b, t, f, 9) == b"file data"
    assert b.call(t, "madvise", f, PG, MADV_FREE) == -EINVAL
    assert b.call(t, "madvise", f, PG, MADV_WILLNEED) == 0
    # shared anonymous memory keeps its content
    s = mmap(b, t, 0, PG, RW, SHARED | ANON)
    wr(b, t, s, b"s" * PG)
    assert b.call(t, "madvise", s, PG, MADV_DONTNEED) == 0
    assert rd(b, t, s, PG) == b"s" * PG
    assert b.call(t, "madvise", s, PG, MADV_REMOVE) == -EOPNOTSUPP
    assert b.call(t, "madvise", s, PG, MADV_WIPEONFORK) == -EINVAL        # shared
    assert b.call(t, "madvise", s, PG, MADV_POPULATE_READ) == 0
    b.call(t, "close", fd)
    for a, n in ((p, 3), (f, 1), (s, 1)):
        assert b.call(t, "munmap", a, n * PG) == 0
    assert b.sys(t, "unlink", "/tmp/f") == 0
    check_all(b.k, base)


def test_madvise_fork_advice():
    b, t = box()
    keep = mmap(b, t, 0, 2 * PG, RW, PRIVATE | ANON)
    gone = mmap(b, t, 0, 2 * PG, RW, PRIVATE | ANON)
    wipe = mmap(b, t, 0, 2 * PG, RW, PRIVATE | ANON)
    for a in (keep, gone, wipe):
        wr(b, t, a, b"parent" * 1000)
    assert b.call(t, "madvise", gone, 2 * PG, MADV_DONTFORK) == 0
    assert b.call(t, "madvise", wipe + PG, PG, MADV_WIPEONFORK) == 0          # splits it
    assert vma_at(t, gone).flags & VM_DONTCOPY and vma_at(t, wipe + PG).flags & VM_WIPEONFORK
    assert not vma_at(t, wipe).flags & VM_WIPEONFORK
    pid = b.call(t, "fork")
    c = b.k.procs.tasks[pid]
    assert rd(b, c, keep, 6) == b"parent"
    assert vma_at(c, gone) is None and rd(b, c, gone, 1) is None
    assert rd(b, c, wipe, 6) == b"parent" and rd(b, c, wipe + PG, 6) == bytes(6)
    assert rd(b, t, wipe + PG, 6) == b"parent"[:6] or rd(b, t, wipe + PG, 6) == (b"parent" * 1000)[PG:PG + 6]
    check_all(b.k)
    assert b.call(t, "madvise", gone, 2 * PG, MADV_DOFORK) == 0
    pid = b.call(t, "fork")
    assert rd(b, b.k.procs.tasks[pid], gone, 6) == b"parent"
    check_all(b.k)


def test_mincore_reports_what_is_in_memory():
    b, t = swap_box()
    p = mmap(b, t, 0, 9 * PG, RW, PRIVATE | ANON)
    assert b.call(t, "munmap", p + 8 * PG, PG) == 0                        # a hole after it
    assert mincore(b, t, p, 8) == [0] * 8
    for i in (0, 3, 7):
        wr(b, t, p + i * PG, b"1")
    assert rd(b, t, p + PG, 1) == b"\0"                                   # the zero page: mapped
    assert mincore(b, t, p, 8) == [1, 1, 0, 1, 0, 0, 0, 1]
    # a file's cached pages count, mapped or not
    put_file(b, t, "/tmp/f", bytes(4 * PG))
    fd = opn(b, t, "/tmp/f", O_RDONLY)
    f = mmap(b, t, 0, 4 * PG, R, SHARED, fd)
    assert mincore(b, t, f, 4) == [1] * 4                                  # ramfs: all in the cache
    # errors: unaligned, unmapped (a hole after mapped pages), bad vectors
    vec = b.ubuf(t, 16)
    assert b.call(t, "mincore", p + 1, PG, vec) == -EINVAL
    assert b.call(t, "mincore", p, 9 * PG, vec) in (-ENOMEM,)
    assert b.call(t, "mincore", KERNEL_VA, PG, vec) == -ENOMEM
    assert b.call(t, "mincore", p, 0, vec) == 0
    none = mmap(b, t, 0, PG, 0, PRIVATE | ANON)
    for bad in (0x10, 0x100000000000, none, KERNEL_VA, NONCANON):
        assert b.call(t, "mincore", p, PG, bad) == -EFAULT, hex(bad)
    # swapped pages: not resident unless in the swap cache
    q = mmap(b, t, 0, 256 * PG, RW, PRIVATE | ANON)
    wr(b, t, q, b"z" * 256 * PG)
    b.sh.execute("echo 8M > /sys/fs/cgroup/memory.reclaim")
    v = mincore(b, t, q, 256)
    out = [i for i in range(256) if is_swap_pte(t.mm.pte(q + i * PG))]
    assert out and all(v[i] == 0 for i in out)
    b.call(t, "close", fd)
    check_all(b.k)


def test_msync():
    b, t = box()
    put_file(b, t, "/tmp/f", bytes(2 * PG))
    fd = opn(b, t, "/tmp/f", O_RDWR)
    p = mmap(b, t, 0, 2 * PG, RW, SHARED, fd)
    wr(b, t, p + 100, b"shared!")
    assert b.call(t, "msync", p, 2 * PG, MS_SYNC) == 0
    assert b.call(t, "msync", p, PG, MS_ASYNC) == 0
    assert b.call(t, "msync", p, PG, MS_INVALIDATE) == 0
    assert b.call(t, "msync", p, 0, MS_SYNC) == 0
    assert b.call(t, "msync", p, PG, MS_SYNC | MS_ASYNC) == -EINVAL
    assert b.call(t, "msync", p + 1, PG, MS_SYNC) == -EINVAL
    assert b.call(t, "msync", p, PG, 0x100) == -EINVAL
    assert b.call(t, "msync", p, -PG, MS_SYNC) == -ENOMEM
    assert b.call(t, "munmap", p + PG, PG) == 0
    assert b.call(t, "msync", p, 2 * PG, MS_SYNC) == -ENOMEM               # a hole after
    assert b.call(t, "msync", p, 2 * PG, MS_ASYNC) == -ENOMEM
    assert b.call(t, "msync", KERNEL_VA, PG, MS_SYNC) == -ENOMEM
    assert b.call(t, "munmap", p, PG) == 0
    assert b.call(t, "msync", p, PG, MS_SYNC) == -ENOMEM
    b.call(t, "close", fd)


# -- the stack -------------------------------------------------------------------

def test_the_stack_grows_down_within_its_limit_and_gap():
    b, t = box()
    stack = [v for v in t.mm.vmas if v.flags & VM_GROWSDOWN][0]
    top, s0 = stack.end, stack.start
    wr(b, t, s0 - 64 * PG, b"deep")                                        # a fault below it
    assert stack.start == s0 - 64 * PG and rd(b, t, s0 - 64 * PG, 4) == b"deep"
    assert t.k.fault.stats.segv == 0
    # up to RLIMIT_STACK, not one page beyond
    t.rlim[3] = [1 * MiB, 1 * MiB]
    wr(b, t, top - MiB, b"edge")
    assert stack.start == top - MiB
    assert rd(b, t, top - MiB - PG, 1) is None
    assert stack.start == top - MiB
    # the guard gap: nothing grows to within 256 pages of a mapping below
    t.rlim[3] = [64 * MiB, 64 * MiB]
    low = mmap(b, t, top - MiB - 300 * PG, PG, RW, PRIVATE | ANON | FIXED)
    assert rd(b, t, low + 256 * PG, 1) is None                              # 255 pages above it: no
    assert rd(b, t, low + PG + 256 * PG, 1) == b"\0"                        # 256 pages: yes
    assert stack.start == low + PG + 256 * PG
    check_all(b.k)


# -- memfd -------------------------------------------------------------------------

def test_memfd_create_ftruncate_mmap_and_nothing_left():
    b, t = box()
    base = check_all(b.k)
    inodes = b.slab_active("inode_cache")
    fd = b.sys(t, "memfd_create", "memfd", 1)                              # MFD_CLOEXEC
    assert fd >= 0
    assert fd in t.files.cloexec
    assert b.call(t, "ftruncate", fd, 5 * PG) == 0
    p = mmap(b, t, 0, 5 * PG, RW, SHARED, fd)
    assert p > 0
    wr(b, t, p, b"a" * 5 * PG)
    assert pread(b, t, fd, 5, 3 * PG) == b"aaaaa"
    a = b.ubuf(t, 256)
    n = b.sys(t, "readlink", "/proc/self/fd/%d" % fd, a, 256)
    assert b.get(t, a, n) == b"/memfd:memfd (deleted)"
    assert "/memfd:memfd (deleted)" in b.run("cat /proc/%d/maps" % t.pid)
    q = b.call(t, "mremap", p, 5 * PG, 5 * PG, MAYMOVE | DONTUNMAP, 0)
    assert q > 0 and rd(b, t, q, 5 * PG) == rd(b, t, p, 5 * PG) == b"a" * 5 * PG
    b.call(t, "close", fd)
    assert rd(b, t, q + 4 * PG, 1) == b"a"                                  # the mappings keep it
    assert b.slab_active("inode_cache") == inodes + 1
    assert b.call(t, "munmap", p, 5 * PG) == 0 and b.call(t, "munmap", q, 5 * PG) == 0
    assert b.slab_active("inode_cache") == inodes                           # gone with the last
    check_all(b.k, base)
    assert b.sys(t, "memfd_create", "x" * 250, 0) == -EINVAL                # 249 at most
    assert b.sys(t, "memfd_create", "x" * 249, 0) >= 0
    assert b.sys(t, "memfd_create", "x", 0x100) == -EINVAL
    assert b.call(t, "memfd_create", 0x10, 0) == -EFAULT
    assert b.call(t, "memfd_create", KERNEL_VA, 0) == -EFAULT


# -- hostile arguments --------------------------------------------------------------

def test_hostile_arguments_change_nothing_and_leak_nothing():
    b, t = box()
    p = mmap(b, t, 0, 4 * PG, RW, PRIVATE | ANON)
    wr(b, t, p, b"keep" * PG)
    base = check_all(b.k)
    vmas = [(v.start, v.end, v.flags) for v in t.mm.vmas]
    huge = (0, 1, PG - 1, 1 << 47, 1 << 63, -1, -PG, USER_END, KERNEL_VA, NONCANON)
    addrs = (0, 0x10, 0x1000, p, p + 1, p + 3 * PG, USER_END - PG, USER_END, KERNEL_VA, NONCANON, -PG)
    for a in addrs:
        for n in huge:
            assert b.call(t, "mprotect", a, n, 0x100) in (-EINVAL, -ENOMEM, 0)
            assert b.call(t, "madvise", a, n, 12345) == -EINVAL
            assert b.call(t, "msync", a, n, 0x100) == -EINVAL
            assert b.call(t, "mincore", a, n, KERNEL_VA) in (-EINVAL, -ENOMEM, -EFAULT, 0)
            assert b.call(t, "mremap", a, n, n, 0x80, 0) == -EINVAL
            r = b.call(t, "mmap", a, n, RW, PRIVATE | ANON | FIXED | NOREPLACE, -1, 0)
            assert r < 0 or (r == a and b.call(t, "munmap", r, n) == 0), (hex(a), n, r)
            if a & (PG - 1) or a >= USER_END:
                assert b.call(t, "munmap", a, n) == -EINVAL
    assert [(v.start, v.end, v.flags) for v in t.mm.vmas] == vmas
    assert rd(b, t, p, 4 * PG) == b"keep" * PG
    check_all(b.k, base)
