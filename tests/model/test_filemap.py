"""File-backed mmap over the simulated disk (issue 6 item 3): faults fill
mappings from the page cache (major when the disk was read), private
mappings copy on write and leave the file alone, shared mappings write
through to the file at sync/msync (and are write-protected again by
writeback), SIGBUS past EOF, truncate unmaps, fork shares the pages, and
munmap/exit give every reference back to the cache. mmcheck.check_all
walks the page tables against the cache after each step."""

import pytest

from kernel_py.fs.vfs import pattern
from kernel_py.mm.filemap.filemap import MMAP_LOTSAMISS
from kernel_py.mm.reclaim.vmscan import PAGEREF_ACTIVATE, PAGEREF_KEEP, PAGEREF_RECLAIM
from kernel_py.mm.types import PG_active, PG_dirty, PG_referenced
from kernel_py.arch.x86.cpu import _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW

from fssupport import Box, fsck, host_get, host_put, make_fat, needs_mkfs
from mmcheck import check_all

pytestmark = needs_mkfs

SIZE = 5 * 4096 + 1000          # six pages, the last one partly past EOF


@pytest.fixture
def img(tmp_path):
    img = make_fat(tmp_path / "data.img", 32, 16, spc=4)
    host_put(img, "/f.bin", pattern(0, SIZE))
    host_put(img, "/small.txt", b"tiny\n")
    return img


@pytest.fixture
def box(img):
    b = Box([str(img)], mem=64 << 20)
    yield b
    b.close()


def spawn_map(box, how, length="24K", extra=""):
    pid = int(box.run("spawn p"))
    addr = int(box.run("mmap %d %s file=/mnt/f.bin %s %s" % (pid, length, how, extra)), 16)
    return pid, addr


def read(box, pid, addr, n):
    return bytes.fromhex(box.run("read %d 0x%x %d" % (pid, addr, n)).replace("\n", " ").replace(" ", ""))


def read_pages(box, pid, addr, n):
    return b"".join(read(box, pid, addr + (i << 12), 4096) for i in range(n))


def cache_page(box, index, name="/mnt/f.bin"):
    _, ino = box.k.vfs.lookup(name)
    return ino.mapping.pages.get(index)


def count(box, pa):
    return box.k.mem_map.count(pa >> 12)


def pte(box, pid, va):
    return box.k.procs.get(pid).mm.pte(va)


def test_read_fault_maps_the_cache_page_read_only(box):
    pid, addr = spawn_map(box, "private", extra="prot=r")
    assert read(box, pid, addr + 4096 + 64, 32) == pattern(4096 + 64, 32)
    pa = cache_page(box, 1)
    e = pte(box, pid, addr + 4096)
    assert e & ~0xFFF & ((1 << 52) - 1) == pa and not e & _PAGE_RW
    assert count(box, pa) == 2                           # the cache's and the PTE's
    mm = box.k.procs.get(pid).mm
    assert (mm.rss_file, mm.rss_anon) == (1, 0)
    assert box.meminfo()["Mapped"] == 4
    st = dict(l.split(":\t") for l in box.run("cat /proc/%d/status" % pid).split("\n") if ":\t" in l)
    assert st["RssFile"].split()[0] == "4"
    # the tail of the last page past EOF reads as zeros
    assert read(box, pid, addr + 5 * 4096 + 990, 20) == pattern(5 * 4096 + 990, 10) + bytes(10)
    check_all(box.k)


def test_cold_mapping_counts_a_major_fault_warm_does_not(box):
    box.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    v0 = box.vmstat()
    pid, addr = spawn_map(box, "private")
    box.run("touch %d 0x%x 24K r" % (pid, addr))
    v1 = box.vmstat()
    assert v1["pgmajfault"] - v0["pgmajfault"] == 1      # readahead brought the rest
    assert v1["pgfault"] - v0["pgfault"] == 6
    assert v1["pgfilefault"] - v0["pgfilefault"] == 6
    assert v1["pgpgin"] > v0["pgpgin"]
    pid2, addr2 = spawn_map(box, "shared")
    box.run("touch %d 0x%x 24K r" % (pid2, addr2))
    v2 = box.vmstat()
    assert v2["pgmajfault"] == v1["pgmajfault"]           # warm: all from the cache
    assert v2["pgpgin"] == v1["pgpgin"]
    assert box.meminfo()["Mapped"] == 24
    check_all(box.k)


def test_private_write_copies_and_leaves_the_file_alone(box, img):
    pid, addr = spawn_map(box, "private")
    box.run("touch %d 0x%x 8K r" % (pid, addr))           # both pages mapped from the cache
    pa0 = cache_page(box, 0)
    assert count(box, pa0) == 2
    box.run("write %d 0x%x PRIVATE" % (pid, addr + 10))   # COW of a mapped page
    box.run("write %d 0x%x FRESH" % (pid, addr + 3 * 4096))  # COW at the first touch
    assert read(box, pid, addr, 24) == pattern(0, 10) + b"PRIVATE" + pattern(17, 7)
    assert read(box, pid, addr + 3 * 4096, 5) == b"FRESH"
    assert count(box, pa0) == 1                            # back to the cache's own
    assert cache_page(box, 3) is not None and count(box, cache_page(box, 3)) == 1
    mm = box.k.procs.get(pid).mm
    assert (mm.rss_file, mm.rss_anon) == (1, 2)
    smaps = box.run("cat /proc/%d/smaps" % pid)
    assert "Anonymous:             8 kB" in smaps
    assert box.meminfo()["Dirty"] == 0
    box.run("sync")
    assert box.k.vfs.read("/mnt/f.bin") == pattern(0, SIZE)
    assert host_get(img, "/f.bin") == pattern(0, SIZE)
    check_all(box.k)
    box.run("kill %d" % pid)
    assert count(box, pa0) == 1
    check_all(box.k)


def test_shared_write_reaches_the_file_and_is_tracked_again_after_sync(box, img):
    pid, addr = spawn_map(box, "shared")
    box.run("touch %d 0x%x 4K r" % (pid, addr))            # mapped read-only first
    assert box.meminfo()["Dirty"] == 0
    box.run("write %d 0x%x SHARED" % (pid, addr + 100))    # write-protect fault: dirty
    box.run("fill %d 0x%x 100 0x41" % (pid, addr + 2 * 4096))   # not-present write fault
    pa0 = cache_page(box, 0)
    assert box.k.mem_map.flags(pa0 >> 12) & PG_dirty
    assert pte(box, pid, addr) & _PAGE_RW
    assert box.meminfo()["Dirty"] == 8
    assert box.k.vfs.read("/mnt/f.bin", 100, 6) == b"SHARED"   # one page cache: read() sees it
    box.run("sync")
    want = bytearray(pattern(0, SIZE))
    want[100:106] = b"SHARED"
    want[8192:8292] = b"A" * 100
    assert host_get(img, "/f.bin") == bytes(want)
    assert not pte(box, pid, addr) & _PAGE_RW                 # page_mkclean at writeback
    check_all(box.k)
    box.run("write %d 0x%x AGAIN" % (pid, addr))             # faults, dirties again
    assert box.meminfo()["Dirty"] == 4
    for flags in ("async", "MS_INVALIDATE", "async,invalidate"):     # left to writeback
        assert box.run("msync %d 0x%x 24K %s" % (pid, addr, flags)) == "0 pages written"
    assert box.meminfo()["Dirty"] == 4
    assert box.run("msync %d 0x%x 24K %s" % (pid, addr, "MS_SYNC|MS_INVALIDATE")) == "1 pages written"
    want[0:5] = b"AGAIN"
    assert host_get(img, "/f.bin") == bytes(want)
    assert box.meminfo()["Dirty"] == 0
    check_all(box.k)


def test_shared_mappings_see_each_other_and_write_syscalls(box):
    a, va = spawn_map(box, "shared")
    b, vb = spawn_map(box, "shared", extra="offset=8192")
    box.run("write %d 0x%x FROM-A" % (a, va + 8192 + 7))
    assert read(box, b, vb + 7, 6) == b"FROM-A"
    box.k.vfs.write("/mnt/f.bin", b"BY-WRITE", off=8192 + 40)
    assert read(box, a, va + 8192 + 40, 8) == b"BY-WRITE"
    assert box.run("cat /proc/%d/maps" % b).split("\n")[0].split()[2] == "00002000"
    check_all(box.k)


def test_beyond_eof_is_sigbus_and_the_kernel_goes_on(box):
    pid, addr = spawn_map(box, "shared", length="32K")     # the file has six pages
    line = box.err("read %d 0x%x 4" % (pid, addr + 6 * 4096))
    assert line.startswith("error: SIGBUS pid=%d addr=0x%x" % (pid, addr + 6 * 4096))
    assert "beyond end of file" in line
    assert box.err("write %d 0x%x X" % (pid, addr + 7 * 4096)).startswith("error: SIGBUS")
    assert read(box, pid, addr, 4) == pattern(0, 4)
    big = int(box.run("mmap %d 4K file=/mnt/f.bin offset=1M" % pid), 16)
    assert box.err("touch %d 0x%x" % (pid, big)).startswith("error: SIGBUS")
    assert box.k.fault.stats.segv >= 3
    check_all(box.k)


def test_truncate_unmaps_what_is_past_the_new_end(box):
    pid, addr = spawn_map(box, "shared")
    box.run("touch %d 0x%x 24K r" % (pid, addr))
    mm = box.k.procs.get(pid).mm
    assert mm.rss_file == 6
    box.run("truncate -s 5000 /mnt/f.bin")
    assert mm.rss_file == 2
    assert read(box, pid, addr + 4096, 904) == pattern(4096, 904)
    assert read(box, pid, addr + 5000, 8) == bytes(8)        # zeroed tail of the EOF page
    assert box.err("read %d 0x%x 4" % (pid, addr + 2 * 4096)).startswith("error: SIGBUS")
    check_all(box.k)


def test_munmap_and_exit_return_references_and_the_inode_pin(box):
    pid, addr = spawn_map(box, "shared")
    box.run("touch %d 0x%x 24K r" % (pid, addr))
    _, ino = box.k.vfs.lookup("/mnt/f.bin")
    assert ino.refs == 1
    box.run("munmap %d 0x%x 8K" % (pid, addr + 8192))     # splits the VMA: both halves hold it
    assert len(ino.mapping.i_mmap) == 2 and ino.refs == 1
    assert [count(box, cache_page(box, i)) for i in range(6)] == [2, 2, 1, 1, 2, 2]
    assert box.k.procs.get(pid).mm.rss_file == 4
    check_all(box.k)
    box.run("munmap %d 0x%x 8K" % (pid, addr))
    assert ino.refs == 1 and len(ino.mapping.i_mmap) == 1
    box.run("exit %d" % pid)
    assert ino.refs == 0 and ino.mapping.i_mmap == []
    assert all(count(box, pa) == 1 for pa in ino.mapping.pages.values())
    assert box.meminfo()["Mapped"] == 0
    check_all(box.k)
    box.run("rm /mnt/f.bin")                               # not pinned any more: all goes now
    assert ino.deleted and ino.mapping is None


def test_fork_shares_file_pages_and_private_copies(box):
    pid, sh = spawn_map(box, "shared")
    pr = int(box.run("mmap %d 24K file=/mnt/f.bin private" % pid), 16)
    box.run("touch %d 0x%x 8K r" % (pid, sh))
    box.run("touch %d 0x%x 8K r" % (pid, pr))
    box.run("write %d 0x%x PARENT" % (pid, pr + 4096))     # a private anon copy before fork
    child = int(box.run("fork %d" % pid))
    check_all(box.k)
    cm = box.k.procs.get(child).mm
    assert (cm.rss_file, cm.rss_anon) == (3, 1)
    assert count(box, cache_page(box, 0)) == 5             # cache + 2 shared PTEs + 2 private
    _, ino = box.k.vfs.lookup("/mnt/f.bin")
    assert len(ino.mapping.i_mmap) == 4 and ino.refs == 2   # two mmaps, one pin each
    box.run("write %d 0x%x CHILD" % (child, sh))           # shared: the parent sees it
    assert read(box, pid, sh, 5) == b"CHILD"
    assert read(box, pid, pr, 5) == b"CHILD"               # (an unwritten private page is the file's)
    box.run("write %d 0x%x KID" % (child, pr))             # private: nobody else sees it
    assert read(box, pid, pr, 5) == b"CHILD" and read(box, pid, sh, 5) == b"CHILD"
    assert read(box, child, pr, 5) == b"KIDLD"
    assert read(box, child, pr + 4096, 6) == b"PARENT"
    box.run("write %d 0x%x OWN" % (child, pr + 4096))      # COW of the forked anon copy
    assert read(box, pid, pr + 4096, 6) == b"PARENT"
    check_all(box.k)
    box.run("kill %d" % child)
    box.run("kill %d" % pid)
    assert ino.refs == 0 and all(count(box, pa) == 1 for pa in ino.mapping.pages.values())
    check_all(box.k)


def test_drop_caches_keeps_mapped_pages_reclaim_ages_them_first(box):
    pid, addr = spawn_map(box, "private", extra="prot=r")
    box.run("touch %d 0x%x 4K r" % (pid, addr))
    pc = box.k.pagecache
    pa = cache_page(box, 0)
    box.run("echo 1 > /proc/sys/vm/drop_caches")
    assert cache_page(box, 0) == pa                        # mapped: stays
    assert cache_page(box, 1) is None                      # readahead page, unmapped: gone
    # one round: PG_referenced (the fault's mark_page_accessed) rotates it,
    # then its PTE's accessed bit activates it, clearing the bit
    pc.shrink_inactive(1000, 2 * pc.inactive.n + 2)
    assert cache_page(box, 0) == pa and count(box, pa) == 2
    assert box.k.mem_map.flags(pa >> 12) & PG_active
    assert not pte(box, pid, addr) & _PAGE_ACCESSED
    assert read(box, pid, addr, 8) == pattern(0, 8)
    box.run("munmap %d 0x%x 24K" % (pid, addr))
    pc.shrink_page_cache(1000)
    assert cache_page(box, 0) is None
    check_all(box.k)


def shrink_all(box):
    """Reclaim until nothing more goes (mapped pages need three rounds:
    PG_referenced, the PTE accessed bit, then the unmap)."""
    pc = box.k.pagecache
    for _ in range(4):
        pc.shrink_page_cache(10000)


def clear_referenced(box, pa):
    mm = box.k.mem_map
    mm.set_flags(pa >> 12, mm.flags(pa >> 12) & ~PG_referenced)


def check_references(box, pa):
    pc = box.k.pagecache
    return pc.page_check_references(pa >> 12, pc.mapped_ptes_of(pa >> 12))


def test_referenced_text_is_activated_at_once_data_gets_one_more_round(box):
    """folio_check_references: a mapped page whose PTE was used since the
    last scan is activated at once when it is program text (VM_EXEC);
    data used once goes round the inactive list again (PG_referenced) and
    is activated only if used again; unused, it is reclaimed."""
    text, vt = spawn_map(box, "private", extra="prot=rx")
    box.run("touch %d 0x%x 4K r" % (text, vt))
    pa = cache_page(box, 0)
    clear_referenced(box, pa)
    assert check_references(box, pa) == PAGEREF_ACTIVATE
    box.run("munmap %d 0x%x 24K" % (text, vt))
    data, vd = spawn_map(box, "private", extra="prot=r")
    box.run("touch %d 0x%x 4K r" % (data, vd))
    clear_referenced(box, pa)
    assert check_references(box, pa) == PAGEREF_KEEP
    assert box.k.mem_map.flags(pa >> 12) & PG_referenced
    assert not pte(box, data, vd) & _PAGE_ACCESSED
    box.run("touch %d 0x%x 4K r" % (data, vd))            # used again: activated
    assert check_references(box, pa) == PAGEREF_ACTIVATE
    assert check_references(box, pa) == PAGEREF_RECLAIM   # not used since


def test_shrink_active_gives_used_text_another_round(box):
    """shrink_active_list: a page of a VM_EXEC mapping whose PTE was used
    stays on the active list (its accessed bit cleared); a data page in
    the same state is deactivated."""
    pc = box.k.pagecache
    pid, vt = spawn_map(box, "private", extra="prot=rx")
    vd = int(box.run("mmap %d 4K file=/mnt/small.txt private prot=r" % pid), 16)
    box.run("touch %d 0x%x 4K r" % (pid, vt))
    box.run("touch %d 0x%x 4K r" % (pid, vd))
    text, data = cache_page(box, 0), cache_page(box, 0, "/mnt/small.txt")
    mm = box.k.mem_map
    for pa in (text, data):
        if not mm.flags(pa >> 12) & PG_active:
            pc._activate(pa >> 12)
        clear_referenced(box, pa)
    pc.shrink_active(pc.active.n)
    assert mm.flags(text >> 12) & PG_active and not pte(box, pid, vt) & _PAGE_ACCESSED
    assert not mm.flags(data >> 12) & PG_active
    pc.shrink_active(pc.active.n)                          # not used since: deactivated too
    assert not mm.flags(text >> 12) & PG_active
    check_all(box.k)


def test_fault_readahead_stops_after_many_misses(box):
    """do_sync_mmap_readahead: a major fault reads 32 pages ahead until
    the mapping has missed MMAP_LOTSAMISS times, then only its page."""
    _, ino = box.k.vfs.lookup("/mnt/f.bin")
    pid, va = spawn_map(box, "private", extra="prot=r")
    box.run("touch %d 0x%x 4K r" % (pid, va))
    assert cache_page(box, 1) is not None and ino.mapping.mmap_miss == 1
    box.run("munmap %d 0x%x 24K" % (pid, va))
    box.run("echo 1 > /proc/sys/vm/drop_caches")
    ino.mapping.mmap_miss = MMAP_LOTSAMISS
    pid, va = spawn_map(box, "private", extra="prot=r")
    box.run("touch %d 0x%x 4K r" % (pid, va))
    assert cache_page(box, 0) is not None and cache_page(box, 1) is None
    box.run("touch %d 0x%x 4K r" % (pid, va + 4096))
    assert cache_page(box, 1) is not None and cache_page(box, 2) is None
    assert ino.mapping.mmap_miss == MMAP_LOTSAMISS + 2
    check_all(box.k)


def test_reclaim_unmaps_shared_and_private_pages_and_they_fault_back(box):
    a, va = spawn_map(box, "shared")
    b, vb = spawn_map(box, "private")                      # read-only cache pages, one COW copy
    box.run("touch %d 0x%x 24K r" % (a, va))
    box.run("touch %d 0x%x 24K r" % (b, vb))
    box.run("write %d 0x%x COPY" % (b, vb + 4096))
    pa0 = cache_page(box, 0)
    assert count(box, pa0) == 3 and box.meminfo()["Mapped"] == 24
    v0 = box.vmstat()
    shrink_all(box)
    assert all(cache_page(box, i) is None for i in range(6))
    assert box.meminfo()["Mapped"] == 0
    assert pte(box, a, va) == 0 and pte(box, b, vb) == 0
    assert pte(box, b, vb + 4096) & 1                      # the anon copy is not the file's
    ma, mb = box.k.procs.get(a).mm, box.k.procs.get(b).mm
    assert (ma.rss_file, mb.rss_file, mb.rss_anon) == (0, 0, 1)
    check_all(box.k)
    assert read_pages(box, a, va, 6) == pattern(0, SIZE) + bytes(6 * 4096 - SIZE)
    want = bytearray(pattern(0, 3 * 4096))
    want[4096:4100] = b"COPY"
    assert read_pages(box, b, vb, 3) == bytes(want)
    v1 = box.vmstat()
    assert v1["pgmajfault"] > v0["pgmajfault"]
    assert v1["pgsteal_file"] - v0["pgsteal_file"] >= 6
    assert count(box, cache_page(box, 0)) == 3              # both mappings again
    check_all(box.k)


def test_shared_store_reaches_the_disk_through_reclaim(box, img):
    pid, addr = spawn_map(box, "shared")
    box.run("touch %d 0x%x 4K r" % (pid, addr))
    pc = box.k.pagecache
    box.run("sync")
    pa = cache_page(box, 0)
    box.run("write %d 0x%x RECLAIMED" % (pid, addr + 10))     # dirties the page
    # a store through a writable PTE that only the D bit records
    e = pte(box, pid, addr)
    assert e & _PAGE_RW and e & _PAGE_DIRTY
    pc.clear_page_dirty(pc.owner(pa >> 12)[0], pa)
    assert box.meminfo()["Dirty"] == 0                     # only the PTE knows now
    shrink_all(box)
    assert cache_page(box, 0) is None and pte(box, pid, addr) == 0
    want = bytearray(pattern(0, SIZE))
    want[10:19] = b"RECLAIMED"
    assert host_get(img, "/f.bin") == bytes(want)           # written by reclaim, no sync
    assert read(box, pid, addr + 10, 9) == b"RECLAIMED"
    assert box.meminfo()["Dirty"] == 0
    check_all(box.k)


def test_mprotect_on_file_mappings(box):
    pid, addr = spawn_map(box, "shared", extra="prot=r")
    box.run("touch %d 0x%x 4K r" % (pid, addr))
    assert box.err("write %d 0x%x X" % (pid, addr)).startswith("error: SIGSEGV")
    box.run("mprotect %d 0x%x 24K rw" % (pid, addr))
    assert not pte(box, pid, addr) & _PAGE_RW              # still clean: the write must fault
    box.run("write %d 0x%x RW" % (pid, addr))
    assert box.meminfo()["Dirty"] == 4
    box.run("mprotect %d 0x%x 4K none" % (pid, addr))
    assert box.err("read %d 0x%x 1" % (pid, addr)).startswith("error: SIGSEGV")
    box.run("mprotect %d 0x%x 4K r" % (pid, addr))
    assert read(box, pid, addr, 2) == b"RW"
    check_all(box.k)
    box.fs.read_only = True                                # as a read-only mount would be
    ro = int(box.run("mmap %d 4K file=/mnt/f.bin shared prot=r" % pid), 16)
    assert box.err("mprotect %d 0x%x 4K rw" % (pid, ro)).startswith("error: EACCES")
    assert box.err("mmap %d 4K file=/mnt/f.bin shared" % pid).startswith("error: EACCES")
    box.run("mmap %d 4K file=/mnt/f.bin private" % pid)   # private copies stay allowed
    box.fs.read_only = False
    check_all(box.k)


def test_bad_mmap_input_is_one_error_and_nothing_is_pinned(box):
    box.run("mkdir /mnt/dir")
    pid = int(box.run("spawn p"))
    maps0 = box.run("cat /proc/%d/maps" % pid)
    for cmd, err in (("mmap %d 4K file=/mnt/nope.bin", "ENOENT"),
                     ("mmap %d 4K file=/proc/meminfo", "ENOENT"),
                     ("mmap %d 4K file=/mnt/f.bin offset=100", "EINVAL"),
                     ("mmap %d 0 file=/mnt/f.bin", "EINVAL"),
                     ("mmap %d 4K file=/mnt/dir", "ENODEV"),
                     ("mmap %d 4K offset=4096", "EINVAL"),
                     ("mmap %d 4K file=/mnt/f.bin offset=-4096", "EINVAL"),
                     ("mmap %d 4K file=/mnt/f.bin fixed=0x123", "EINVAL"),
                     ("mmap %d 4K file=/mnt/f.bin offset=20T", "EOVERFLOW"),
                     ("msync %d 0x1000 4K", "EINVAL"),
                     ("msync %d 0x400000 4K", "ENOMEM"),
                     ("msync %d 0x400000 4K async", "ENOMEM"),
                     ("msync %d 0x400000 4K sync,async", "EINVAL"),
                     ("msync %d 0x400000 4K flush", "EINVAL"),
                     ("msync %d 0x400000 4K sync|", "EINVAL")):
        assert box.err(cmd % pid).startswith("error: %s" % err), cmd
    assert box.run("cat /proc/%d/maps" % pid) == maps0
    _, ino = box.k.vfs.lookup("/mnt/f.bin")
    assert ino.refs == 0
    box.run("rm /mnt/f.bin")
    box.run("rmdir /mnt/dir")
    check_all(box.k)


def test_maps_and_smaps_of_a_file_mapping(box):
    pid, addr = spawn_map(box, "shared", extra="offset=4096")
    box.run("touch %d 0x%x 8K r" % (pid, addr))
    box.run("write %d 0x%x D" % (pid, addr))
    first = box.run("cat /proc/%d/maps" % pid).split("\n")[0]
    f = first.split()
    _, ino = box.k.vfs.lookup("/mnt/f.bin")
    assert f[1:6] == ["rw-s", "00001000", "08:00", str(ino.i_ino), "/mnt/f.bin"]
    assert first.index("/mnt/f.bin") == 73                 # Linux pads the name to column 73
    sm = box.run("cat /proc/%d/smaps" % pid).split("\n")
    vals = dict((l.split(":")[0], l.split(":")[1].strip()) for l in sm[1:21])
    assert vals["Rss"] == "8 kB" and vals["Anonymous"] == "0 kB"
    assert vals["Private_Dirty"] == "4 kB" and vals["Private_Clean"] == "4 kB"
    child = int(box.run("fork %d" % pid))
    sm = box.run("cat /proc/%d/smaps" % child).split("\n")
    vals = dict((l.split(":")[0], l.split(":")[1].strip()) for l in sm[1:21])
    assert vals["Shared_Dirty"] == "4 kB" and vals["Shared_Clean"] == "4 kB"
    assert vals["Pss"] == "4 kB"
    top = box.run("top -b -n 1").split("\n")
    row = [l for l in top if l.split() and l.split()[0] == str(child)][0].split()
    assert row[6] == "8"                                    # SHR: file pages


def test_private_copies_swap_out_and_back_in(img):
    """The anon copies of a private file mapping are ordinary anon pages:
    reclaim swaps them out under pressure, a fault reads them back."""
    from test_swap import expected, memsum
    host_put(img, "/big.bin", pattern(0, 2 << 20))
    b = Box([str(img), bytearray(24 << 20)], mem=24 << 20)
    try:
        b.run("mkswap /dev/sdb")
        b.run("swapon /dev/sdb")
        pid = int(b.run("spawn p"))
        a = int(b.run("mmap %d 2M file=/mnt/big.bin private" % pid), 16)
        b.run("pattern %d 0x%x %d 7" % (pid, a, 2 << 20))     # every page copied on write
        hog = int(b.run("spawn hog"))
        h = int(b.run("mmap %d 24M" % hog), 16)
        b.run("pattern %d 0x%x %d 3" % (hog, h, 24 << 20))
        assert b.vmstat()["pswpout"] > 1000
        check_all(b.k)
        assert b.k.procs.get(pid).mm.swapents > 100            # the copies went too
        got, info = memsum(b.sh, pid, a, 2 << 20)
        assert got == expected(a, 2 << 20, 7)
        assert int(info["majfaults"]) > 100
        check_all(b.k)
        b.run("kill %d" % hog)
        b.run("kill %d" % pid)
        b.run("sync")
        assert b.k.vfs.read("/mnt/big.bin", 0, 2 << 20) == pattern(0, 2 << 20)
        check_all(b.k)
    finally:
        b.close()


def test_unlink_of_a_mapped_file_removes_the_name_and_keeps_the_data(box, img):
    """rm of a mapped file (Linux: the name goes, the inode lives on with
    i_nlink 0): the mapping keeps working - through reclaim and refaults
    from the still allocated clusters, a shared store included - until the
    last mapping goes, when the clusters are freed."""
    pid, addr = spawn_map(box, "shared")
    box.run("touch %d 0x%x 24K r" % (pid, addr))
    box.run("sync")
    _, ino = box.k.vfs.lookup("/mnt/f.bin")
    free0 = box.fs.count_free()
    box.run("write %d 0x%x GONE" % (pid, addr + 4096))
    box.run("rm /mnt/f.bin")
    assert box.err("cat /mnt/f.bin").startswith("error: ENOENT")
    assert "f.bin" not in box.run("ls /mnt")
    assert box.fs.count_free() == free0                     # the clusters stay
    assert "/mnt/f.bin (deleted)" in box.run("cat /proc/%d/maps" % pid)
    box.run("echo a new file > /mnt/f.bin")                # the name is free again
    assert box.run("cat /mnt/f.bin") == "a new file"
    shrink_all(box)                                         # dirty page written, all dropped
    assert not ino.mapping.pages
    want = bytearray(pattern(0, SIZE))
    want[4096:4100] = b"GONE"
    assert read_pages(box, pid, addr, 6)[:SIZE] == bytes(want)      # refaulted from the clusters
    check_all(box.k)
    assert box.err("umount /mnt").startswith("error: EBUSY")
    fork = int(box.run("fork %d" % pid))
    box.run("kill %d" % pid)
    assert not ino.deleted or ino.mapping is not None       # the child still maps it
    assert read(box, fork, addr + 4096, 4) == b"GONE"
    box.run("kill %d" % fork)
    assert ino.mapping is None and ino not in box.fs.orphans
    assert box.fs.count_free() > free0                      # freed with the last mapping
    box.run("sync")
    assert host_get(img, "/f.bin") == b"a new file\n"
    ok, out = fsck(img)
    assert ok, out
    check_all(box.k)
