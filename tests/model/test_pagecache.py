"""The page cache over the simulated disk: reads fill it once, writes dirty
it, sync writes back, drop_caches keeps dirty pages, dirty limits start
writeback, LRU ageing and the reclaim hook, file-mapping faults, and the
console's free / vmstat / meminfo."""

import re

import pytest

from kernel_py.lib.errors import KernelError
from kernel_py.fs.vfs import pattern
from kernel_py.mm import vmstat
from kernel_py.mm.gfp import GFP_KERNEL
from kernel_py.mm.types import (
    KIND_PAGECACHE, PG_active, PG_dirty, PG_lru, PG_referenced, PG_uptodate,
)

from fssupport import Box, host_get, host_put, make_fat, needs_mkfs, reboot

pytestmark = needs_mkfs


@pytest.fixture
def img(tmp_path):
    return make_fat(tmp_path / "data.img", 32, 16, spc=4)     # 2 KiB clusters


@pytest.fixture
def box(img, tmp_path):
    b = Box([str(img), bytearray(1 << 20)], mem=64 << 20)
    yield b
    b.close()


def test_read_fills_cache_once_second_read_is_a_hit(img, tmp_path):
    data = pattern(0, 40000)
    host_put(img, "/f.bin", data)
    b = Box([str(img)], log_commands=True)
    v0 = b.vmstat()
    assert b.k.vfs.read("/mnt/f.bin") == data
    v1 = b.vmstat()
    reads = b.ide.sectors_read
    assert v1["pgpgin"] - v0["pgpgin"] >= 40000 // 1024
    assert v1["nr_file_pages"] - v0["nr_file_pages"] >= 10
    assert b.k.vfs.read("/mnt/f.bin") == data
    v2 = b.vmstat()
    assert b.ide.sectors_read == reads                  # no device I/O
    assert v2["pgpgin"] == v1["pgpgin"]
    assert v2["pagecache_hits"] > v1["pagecache_hits"]
    assert v2["pagecache_misses"] == v1["pagecache_misses"]
    assert "     40960     10      40000 /mnt/f.bin" in b.run("fincore /mnt/f.bin")
    b.close()


def test_readahead_reads_contiguous_pages_in_one_request(img):
    host_put(img, "/seq.bin", pattern(0, 64 << 10))
    b = Box([str(img)], log_commands=True)
    n0 = len(b.ide.log)
    assert b.k.vfs.read("/mnt/seq.bin", 0, 100) == pattern(0, 100)
    reads = [c for c in b.ide.log[n0:] if c[0] == 0x20 and c[2] >= b.fs.data_lba]
    assert sum(c[3] for c in reads) == 128               # all 16 pages ...
    assert len(reads) <= 2                               # ... in one or two requests
    b.close()


def test_write_dirties_and_sync_writes_back(box, img):
    box.run("fill /mnt/w.bin 20000")
    mi = box.meminfo()
    assert mi["Dirty"] >= 20
    assert host_get(img, "/w.bin") in (None, b"")        # nothing on disk yet
    w0 = box.vmstat()["nr_written"]
    box.run("sync")
    assert box.meminfo()["Dirty"] == 0
    assert box.vmstat()["nr_written"] > w0
    assert host_get(img, "/w.bin") == pattern(0, 20000)
    assert box.ide.flushes >= 1                          # FLUSH CACHE after writeback


def test_overwrite_in_place_reaches_disk(box, img):
    box.run("fill /mnt/o.bin 12288")
    box.run("sync")
    box.k.vfs.write("/mnt/o.bin", b"XYZ" * 100, off=4000)
    box.run("sync")
    want = bytearray(pattern(0, 12288))
    want[4000:4300] = b"XYZ" * 100
    assert host_get(img, "/o.bin") == bytes(want)


def test_drop_caches_1_keeps_dirty_drops_clean(img):
    host_put(img, "/clean.txt", b"clean data\n" * 500)
    box = Box([str(img)])
    box.k.vfs.read("/mnt/clean.txt")
    box.run("write /mnt/dirty.txt not yet on disk")
    before = box.meminfo()
    assert box.run("echo 1 > /proc/sys/vm/drop_caches") == ""
    after = box.meminfo()
    assert after["Dirty"] == before["Dirty"] > 0
    assert after["Cached"] < before["Cached"]
    pc = box.k.pagecache
    for m in pc.mappings.values():                       # only dirty pages stay
        for idx, pa in m.pages.items():
            assert pc.page_flags(pa) & PG_dirty
    assert box.run("cat /mnt/dirty.txt") == "not yet on disk"
    assert box.run("cat /mnt/clean.txt").startswith("clean data")
    box.run("sync")
    assert host_get(img, "/dirty.txt") == b"not yet on disk\n"
    box.close()


def test_sync_then_drop_3_as_typed_frees_buff_cache(box):
    box.run("fill /mnt/a.bin 100K")
    box.run("mkdir /mnt/d")
    for i in range(5):
        box.run("write /mnt/d/f%d.txt %d" % (i, i))
    free0 = box.run("free").split("\n")[1].split()
    ino0 = len(box.fs.icache)
    slab0 = [l for l in box.run("cat /proc/slabinfo").split("\n") if l.startswith("dentry ")][0].split()
    assert box.run("sync; echo 3 > /proc/sys/vm/drop_caches") == ""
    free1 = box.run("free").split("\n")[1].split()
    assert int(free1[5]) < int(free0[5])                 # buff/cache fell
    assert int(free1[3]) > int(free0[3])                 # free grew
    assert len(box.fs.icache) < ino0                     # inode cache shrank
    assert box.fs.dcache == {}
    slab1 = [l for l in box.run("cat /proc/slabinfo").split("\n") if l.startswith("dentry ")][0].split()
    assert int(slab1[1]) < int(slab0[1])
    v = box.vmstat()
    assert v["drop_pagecache"] == 1 and v["drop_slab"] == 1
    assert box.run("cat /mnt/d/f3.txt") == "3"           # everything comes back


def test_drop_caches_2_keeps_inodes_with_pages_or_dirty(box):
    box.run("write /mnt/keep.txt dirty")
    box.run("echo 2 > /proc/sys/vm/drop_caches")
    names = [i.name for i in box.fs.icache.values()]
    assert "keep.txt" in names
    box.run("sync; echo 1 > /proc/sys/vm/drop_caches; echo 2 > /proc/sys/vm/drop_caches")
    assert [i.name for i in box.fs.icache.values()] == ["/"]


def test_drop_caches_rejects_bad_values(box):
    for bad in ("0", "5", "x", ""):
        assert box.err("echo %s > /proc/sys/vm/drop_caches" % bad).startswith("error: EINVAL")


def test_dirty_limits_start_writeback(box, img):
    box.run("echo 65536 > /proc/sys/vm/dirty_bytes")     # 16 pages
    box.run("echo 32768 > /proc/sys/vm/dirty_background_bytes")
    assert box.run("cat /proc/sys/vm/dirty_ratio") == "0"
    assert box.run("sysctl vm.dirty_background_bytes") == "vm.dirty_background_bytes = 32768"
    box.run("fill /mnt/big.bin 400K")
    v = box.vmstat()
    assert v["nr_written"] >= 50                         # written before any sync
    assert v["nr_dirty"] <= 16 + 16
    assert v["nr_dirty_threshold"] == 16 and v["nr_dirty_background_threshold"] == 8
    box.run("sync")
    assert host_get(img, "/big.bin") == pattern(0, 400 << 10)
    box.run("echo 20 > /proc/sys/vm/dirty_ratio")
    assert box.run("cat /proc/sys/vm/dirty_bytes") == "0"
    assert box.err("echo 101 > /proc/sys/vm/dirty_ratio").startswith("error: EINVAL")


def test_default_dirty_thresholds_follow_ratios(box):
    pc = box.k.pagecache
    bg, thresh = pc.dirty_thresholds()
    avail = pc.dirtyable_pages()
    assert thresh == avail * 20 // 100 and bg == avail * 10 // 100


def test_lru_two_touch_activation_and_reclaim_order(img):
    host_put(img, "/hot.bin", pattern(0, 8192))
    host_put(img, "/cold.bin", pattern(0, 8192))
    box = Box([str(img)])
    box.run("echo 1 > /proc/sys/vm/drop_caches")
    v = box.k.vfs
    pc = box.k.pagecache
    v.read("/mnt/hot.bin")
    v.read("/mnt/hot.bin")
    v.read("/mnt/cold.bin")
    _, hot = v.lookup("/mnt/hot.bin")
    _, cold = v.lookup("/mnt/cold.bin")
    for pa in hot.mapping.pages.values():
        assert pc.page_flags(pa) & (PG_active | PG_lru) == PG_active | PG_lru
        assert pc.page_flags(pa) >> 12 == KIND_PAGECACHE
    for pa in cold.mapping.pages.values():
        f = pc.page_flags(pa)
        assert f & PG_lru and not f & PG_active and f & PG_referenced and f & PG_uptodate
    assert set(pc.active.pfns()) >= set(pa >> 12 for pa in hot.mapping.pages.values())
    # reclaim takes inactive pages first; referenced ones get a second round
    freed = pc.shrink_page_cache(2)
    assert freed == 2
    assert len(hot.mapping.pages) == 2
    names = [n for n, _ in vmstat.vmstat_pairs(box.k)]
    assert "pgscan_file" in names and "nr_inactive_file" in names


def test_reclaim_skips_dirty_and_mapped_pages(box):
    v = box.k.vfs
    pc = box.k.pagecache
    box.run("fill /mnt/m.bin 16K")
    box.run("sync")
    fs, ino = v.get_file("/mnt/m.bin")
    pa, major = pc.filemap_fault(ino.mapping, 1)         # mapped: count 2
    assert not major
    box.run("write /mnt/d.txt dirty")
    pc.shrink_page_cache(1000)
    assert 1 in ino.mapping.pages and ino.mapping.pages[1] == pa
    _, d = v.lookup("/mnt/d.txt")
    assert len(d.mapping.pages) == 1
    pc.put_page(pa)
    assert pc.shrink_page_cache(1000) >= 1               # pinned, not mapped: now it goes
    assert 1 not in ino.mapping.pages
    box.run("rm /mnt/m.bin")                              # the name goes, the pinned inode stays
    assert ino in fs.orphans and ino.mapping is not None
    v.put_file(ino)                                       # the last pin: pages, clusters go
    assert ino not in fs.orphans and ino.mapping is None


def test_filemap_fault_major_then_minor_and_sigbus(box):
    box.run("fill /mnt/map.bin 10000")
    box.run("sync; echo 3 > /proc/sys/vm/drop_caches")
    v, pc = box.k.vfs, box.k.pagecache
    fs, ino = v.get_file("/mnt/map.bin")
    m0 = pc.pgmajfault
    pa, major = pc.filemap_fault(ino.mapping, 2)
    assert major and pc.pgmajfault == m0 + 1
    assert box.hw.readbytes(pa, 10000 - 8192) == pattern(8192, 10000 - 8192)
    assert box.hw.readbytes(pa + 10000 - 8192, 100) == bytes(100)     # zero past EOF
    pa2, major = pc.filemap_fault(ino.mapping, 2)
    assert pa2 == pa and not major and pc.page_count(pa) == 3
    assert pc.find_get_page(ino.mapping, 2) == pa and pc.page_count(pa) == 4
    assert pc.find_get_page(ino.mapping, 0) is None
    with pytest.raises(KernelError) as e:
        pc.filemap_fault(ino.mapping, 3)
    assert e.value.errname == "EFAULT"
    # a shared writable mapping dirties the page; sync writes it
    box.hw.writebytes(pa, b"MMAP")
    pc.set_page_dirty(ino.mapping, pa)
    for _ in range(3):
        pc.put_page(pa)
    v.put_file(ino)
    box.run("sync")
    assert v.read("/mnt/map.bin", 8192, 4) == b"MMAP"
    assert pc.owner(pa >> 12) == (ino.mapping, 2)


def test_truncate_drops_dirty_pages_past_eof(box, img):
    box.run("fill /mnt/t.bin 40000")
    box.run("truncate -s 5000 /mnt/t.bin")
    _, ino = box.k.vfs.lookup("/mnt/t.bin")
    assert sorted(ino.mapping.pages) == [0, 1]
    box.run("truncate -s 9000 /mnt/t.bin")
    box.run("sync")
    assert host_get(img, "/t.bin") == pattern(0, 5000) + bytes(4000)


def test_buddy_reclaim_hook_shrinks_the_cache_under_pressure(img):
    b = Box([str(img)], mem=32 << 20)
    host_put(img, "/x", b"")
    b.run("fill /mnt/fill.bin 6M")
    b.run("sync")
    cached0 = b.k.pagecache.nr_file
    assert cached0 > 1000
    taken = []
    while True:                                          # eat all free memory
        pa = b.k.buddy.alloc_pages(GFP_KERNEL, 0)
        if pa is None:
            break
        taken.append(pa)
        if len(taken) > 20000:
            break
    assert b.k.pagecache.nr_file < cached0 // 2          # the cache gave way
    assert b.k.pagecache.pgsteal > 0
    for pa in taken:
        b.k.buddy.free_pages(pa, 0)
    assert b.k.vfs.read("/mnt/fill.bin", 5 << 20, 64) == pattern(5 << 20, 64)
    b.close()


def test_free_vmstat_meminfo_formats(box):
    out = box.run("free").split("\n")
    assert re.match(r"^ +total +used +free +shared +buff/cache +available$", out[0])
    assert out[0] == "               total        used        free      shared  buff/cache   available"
    assert out[1].startswith("Mem: ") and len(out[1].split()) == 7
    assert out[2].split() == ["Swap:", "0", "0", "0"]
    mem = [int(x) for x in out[1].split()[1:]]
    assert mem[0] == mem[1] + mem[2] + mem[4]
    m = box.run("free -m").split("\n")[1].split()
    assert int(m[1]) == mem[0] >> 10
    vm = box.run("vmstat").split("\n")
    assert vm[0] == "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----"
    assert vm[1].split() == "r b swpd free buff cache si so bi bo in cs us sy id wa st".split()
    assert len(vm[2].split()) == 17
    mi = box.run("cat /proc/meminfo")
    names = [l.split(":")[0] for l in mi.split("\n")]
    for n in ("Buffers", "Cached", "SwapCached", "SwapTotal", "SwapFree", "Dirty", "Writeback"):
        assert n in names
    assert names.index("Buffers") == names.index("MemAvailable") + 1
    assert names.index("SwapTotal") < names.index("Dirty")
    assert box.err("free -x").startswith("error: EINVAL")


def test_unsynced_data_is_lost_on_power_cut_synced_survives(img):
    b = Box([str(img)])
    b.run("write /mnt/synced.txt safe")
    b.run("sync")
    b.run("write /mnt/unsynced.txt gone")
    b = reboot(b, [str(img)])
    assert b.run("cat /mnt/synced.txt") == "safe"
    assert b.err("cat /mnt/unsynced.txt").startswith("error: ENOENT")
    b.close()


def test_echo_redirects_into_files_through_the_cache(box, img):
    assert box.run("echo hello world > /mnt/e.txt") == ""
    assert box.run("cat /mnt/e.txt") == "hello world"
    box.run("echo second line >> /mnt/e.txt; echo 'quoted  text' >> /mnt/e.txt")
    assert box.k.vfs.read("/mnt/e.txt") == b"hello world\nsecond line\nquoted  text\n"
    assert box.meminfo()["Dirty"] >= 4                     # in the page cache, not yet on disk
    box.run("sync")
    assert host_get(img, "/e.txt") == b"hello world\nsecond line\nquoted  text\n"
    box.run("echo replaced > /mnt/e.txt")                  # > truncates
    box.run("write /mnt/w.txt via write; append /mnt/w.txt and append")
    box.run("cat /proc/sys/vm/dirty_ratio > /mnt/ratio.txt")
    box.run("sync")
    assert host_get(img, "/e.txt") == b"replaced\n"
    assert host_get(img, "/w.txt") == b"via write\nand append\n"
    assert host_get(img, "/ratio.txt") == b"20\n"
    box.run("echo 3 > /proc/sys/vm/drop_caches")          # pseudo-files still first
    box.run("mkdir /mnt/sub")
    assert box.err("echo x > /mnt/sub").startswith("error: EISDIR")
    assert box.err("echo x > /mnt/none/f.txt").startswith("error: ENOENT")
    assert box.err("echo x > /nowhere/f.txt").startswith("error: ENOENT")
    assert box.err("echo x > /mnt/a > /mnt/b").startswith("error: EINVAL")
    assert box.run("cat /mnt/e.txt") == "replaced"
