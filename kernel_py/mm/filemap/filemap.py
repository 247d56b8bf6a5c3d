# The page cache (Linux mm/filemap.c): file pages cached in frames from the
# buddy (owner kind "pagecache"), keyed by (address space, page index).
#
# - An AddressSpace is one file's (or one block device's) cache: a dict
#   index -> pa and the set of dirty indices. Its `host` does the I/O:
#       host.readpages(mapping, [(index, pa), ...])   fill the frames
#       host.writepages(mapping, [(index, pa), ...])  write them (sorted)
#       host.i_size                                     bytes (EOF)
# - Page state lives in the frame's mem_map record: PG_uptodate, PG_dirty,
#   PG_writeback, PG_locked (I/O in flight, not on an LRU), PG_lru,
#   PG_active, PG_referenced; count = references (the cache holds one;
#   a mapping process holds one more per PTE). The owner of a frame is in
#   `rmap`: pfn -> (mapping id << MAPPING_SHIFT) | index (mm/types.py).
#
# PageCache is one object (k.pagecache) whose methods live where Linux has
# them:
#   here                          lookup, read (with readahead), the fault
#                                 on a file mapping, insertion and removal
#   filemap/page_writeback.py     dirtying, the dirty limits, writeback,
#                                 page_mkclean
#   filemap/truncate.py           truncate, release, drop_caches
#   reclaim/vmscan.py (FileLru)   the two file LRU lists (two-touch
#                                 promotion, second-chance scans from the
#                                 inactive tail) and their reclaim,
#                                 shrink_page_cache: the hook for reclaim
#   reclaim/rmap.py (FileRmap)    the file reverse map: the PTEs that map a
#                                 page, through mapping.i_mmap
#
# File-backed mmap (mm/vm/vma.py MappedFile, mm/vm/mmap.py, mm/vm/fault.py) uses:
#   pa, major = cache.filemap_fault(mapping, index)   page uptodate, one
#        reference taken for the PTE; major: it had to read the disk.
#        KernelError("EFAULT") (SIGBUS) beyond EOF.
#   fs, ino = k.vfs.get_file(path); mapping = ino.mapping  (pins the inode:
#        no eviction, no unlink while mapped); k.vfs.put_file(ino) at munmap.
#   cache.put_page(pa)                         drop a reference (unmap/COW)
#   cache.set_page_dirty(mapping, pa)          shared writable mapping dirtied
#   cache.owner(pfn) -> (mapping, index) or None
#   mapping.i_mmap                             the VMAs mapping the file
#        (vma.mm owns each): writeback write-protects their PTEs of a page
#        first (page_mkclean, so the next write dirties it again), truncate
#        unmaps what lies past the new end (unmap_mapping_range).
# Private mappings copy the page on the first write (COW) and drop their
# reference to the cache page; shared mappings keep it and dirty it. A
# mapped page has count > 1: drop_caches leaves it alone; reclaim ages it by
# its PTEs' accessed bits and unmaps it through i_mmap (reclaim_mapped).

from kernel_py.lib.errors import KernelError
from kernel_py.mm.filemap.page_writeback import PageWriteback
from kernel_py.mm.filemap.truncate import Truncate
from kernel_py.mm.gfp import F_NORETRY, F_ZERO, GFP_HIGHUSER_MOVABLE, GFP_NOFS
from kernel_py.mm.reclaim.rmap import FileRmap
from kernel_py.mm.reclaim.vmscan import FileLru
from kernel_py.mm.types import (
    INDEX_MASK, KIND_PAGECACHE, MAPPING_SHIFT, OFF_COUNT, PAGECACHE_FLAGS, PG_dirty, PG_locked,
    PG_referenced, PG_uptodate, RECORD_SHIFT,
)
from kernel_py.arch.x86.cpu import PAGE_SHIFT

GFP_CACHE = GFP_NOFS            # page-cache allocations may reclaim, not recurse into the FS
# a page fault's page (mapping_gfp_mask, GFP_HIGHUSER_MOVABLE in Linux): no
# file system call is under way, so __GFP_FS, and with it the OOM killer when
# nothing can be reclaimed (a NOFS failure would make the fault a SIGSEGV)
GFP_FAULT = GFP_HIGHUSER_MOVABLE
READAHEAD_PAGES = 32            # 128 KiB, Linux's default read_ahead_kb
MMAP_LOTSAMISS = 100            # page-fault misses after which faults stop reading ahead


class AddressSpace:
    """struct address_space: the cached pages of one file or block device."""

    def __init__(self, cache, host, bdev=False, name=""):
        self.cache = cache
        self.host = host
        self.bdev = bdev            # a block device's cache: counts as Buffers
        self.name = name
        self.id = cache.next_id
        cache.next_id += 1
        cache.mappings[self.id] = self
        self.pages = {}             # index -> pa
        self.dirty = set()          # indices of dirty pages
        self.dirtied_when = 0       # centiseconds since boot when it became dirty (the flusher's)
        self.error = None           # last writeback error, reported by sync
        self.released = False
        self.i_mmap = []            # file VMAs mapping it (vma.mm owns each)
        self.unevictable = False    # ramfs: reclaim never takes its pages (mapping_set_unevictable)
        self.swapbacked = False     # tmpfs: reclaim puts its pages on swap (shmem_writeout)
        self.fs_refs = 0            # references each page holds besides the cache's (ramfs, tmpfs: 1)
        self.mmap_miss = 0          # file_ra_state.mmap_miss, kept per file here (fault_readahead)

    def nrpages(self):
        return len(self.pages)

    def __repr__(self):
        return "<AddressSpace %d %s pages=%d dirty=%d>" % (
            self.id, self.name, len(self.pages), len(self.dirty))


class PageCache(FileLru, FileRmap, PageWriteback, Truncate):
    def __init__(self, hw, mem_map, buddy, blk=None):
        self.hw = hw
        self.mem_map = mem_map
        self.buddy = buddy
        self.blk = blk              # BlockLayer (pgpgin/pgpgout totals)
        self.base = mem_map.base
        self._r16, self._w16 = hw.read16, hw.write16
        self._r32, self._w32 = hw.read32, hw.write32
        self.mappings = {}          # id -> AddressSpace
        self.next_id = 1
        self.rmap = {}              # pfn -> (mapping id << MAPPING_SHIFT) | index
        # state counters (pages)
        self.nr_file = 0
        self.nr_bdev = 0
        self.nr_shmem = 0           # tmpfs pages (mm/filemap/shmem.py): NR_SHMEM's page-cache half
        # event counters (/proc/vmstat)
        self.hits = 0               # lookups served from the cache
        self.misses = 0             # lookups that read the disk
        self.pgmajfault = 0
        self.vfs_cache_pressure = 100
        self.init_file_lru(mem_map)
        self.init_writeback()
        self.init_truncate()

    # -- mem_map helpers
    def _rec(self, pa):
        return self.base + ((pa >> PAGE_SHIFT) << RECORD_SHIFT)

    def page_flags(self, pa):
        return self._r16(self._rec(pa))

    def _set(self, pa, bits):
        a = self._rec(pa)
        self._w16(a, self._r16(a) | bits)

    def _clear(self, pa, bits):
        a = self._rec(pa)
        self._w16(a, self._r16(a) & ~bits)

    def page_count(self, pa):
        return self._r32(self._rec(pa) + OFF_COUNT)

    def get_page(self, pa):
        a = self._rec(pa) + OFF_COUNT
        self._w32(a, self._r32(a) + 1)

    def put_page(self, pa):
        """Drop a reference; a page already removed from the cache is freed
        with its last reference."""
        a = self._rec(pa) + OFF_COUNT
        c = self._r32(a) - 1
        if c < 0:
            raise KernelError("EINVAL", "put_page 0x%x: count underflow" % pa)
        self._w32(a, c)
        if c == 0:
            self.buddy.free_pages(pa, 0)

    def owner(self, pfn):
        key = self.rmap.get(pfn)
        if key is None:
            return None
        return self.mappings.get(key >> MAPPING_SHIFT), key & INDEX_MASK

    # -- allocation and insertion
    def alloc_page(self, zero=False, gfp=GFP_CACHE):
        gfp |= F_ZERO if zero else 0
        pa = self.buddy.alloc_pages(gfp, 0, KIND_PAGECACHE)
        if pa is None:
            self.shrink_page_cache(32)
            pa = self.buddy.alloc_pages(gfp, 0, KIND_PAGECACHE)
            if pa is None:
                raise KernelError("ENOMEM", "page cache: no free page")
        return pa

    def _insert(self, mapping, index, pa, flags):
        mapping.pages[index] = pa
        self.rmap[pa >> PAGE_SHIFT] = (mapping.id << MAPPING_SHIFT) | index
        self._w16(self._rec(pa), PAGECACHE_FLAGS | flags)
        self.nr_file += 1
        if mapping.bdev:
            self.nr_bdev += 1

    def _delete(self, mapping, index, pa):
        """Remove a page from the cache (it must not be under I/O); the
        cache's reference goes, the frame is freed unless mapped."""
        flags = self.page_flags(pa)
        self._lru_del(pa, flags)
        if flags & PG_dirty:
            self.nr_dirty -= 1
            mapping.dirty.discard(index)
        del mapping.pages[index]
        del self.rmap[pa >> PAGE_SHIFT]
        self.nr_file -= 1
        if mapping.bdev:
            self.nr_bdev -= 1
            mapping.host.forget_page(index)
        self._clear(pa, PG_dirty | PG_referenced | PG_uptodate)
        self.put_page(pa)

    # -- lookup and read
    def find_get_page(self, mapping, index):
        """pa of a cached page with a reference taken, or None."""
        pa = mapping.pages.get(index)
        if pa is not None:
            self.get_page(pa)
        return pa

    def lookup(self, mapping, index):
        return mapping.pages.get(index)

    def read_page(self, mapping, index, ra=READAHEAD_PAGES, last=None, gfp=GFP_CACHE):
        """The uptodate page at index (no reference taken: use it before
        the next allocation). A miss reads it, and up to `ra` following
        missing pages (not past `last`) in the same request; the page
        asked for is allocated with gfp, the ones read ahead may fail
        without the OOM killer (readahead_gfp_mask's __GFP_NORETRY)."""
        pa = mapping.pages.get(index)
        if pa is not None:
            self.hits += 1
            self.mark_page_accessed(pa >> PAGE_SHIFT)
            return pa
        self.misses += 1
        if last is None:
            last = (mapping.host.i_size - 1) >> PAGE_SHIFT
        run = []
        i = index
        pages = mapping.pages
        while (not run or (len(run) < ra and i <= last)) and i not in pages:
            try:
                pa = self.alloc_page(gfp=gfp if not run else gfp | F_NORETRY)
            except KernelError:
                if not run:
                    raise
                break
            self._insert(mapping, i, pa, PG_locked)
            run.append((i, pa))
            i += 1
        try:
            mapping.host.readpages(mapping, run)
        except Exception:
            for i, pa in run:
                self._clear(pa, PG_locked)
                self._delete(mapping, i, pa)
            raise
        for i, pa in run:
            a = self._rec(pa)
            self._w16(a, (self._r16(a) & ~PG_locked) | PG_uptodate)
            self._lru_add(pa)
        pa = run[0][1]
        self.mark_page_accessed(pa >> PAGE_SHIFT)     # the page asked for, not the readahead
        return pa

    def filemap_fault(self, mapping, index):
        """A page fault on a file mapping: (pa, major). The page is uptodate
        and has one more reference (the PTE's); major when it was read from
        the disk (the fault handler counts pgmajfault; self.pgmajfault
        counts them too)."""
        host = mapping.host
        if index << PAGE_SHIFT >= host.i_size:
            raise KernelError("EFAULT", "SIGBUS: page %d beyond EOF of %s" % (index, mapping.name))
        major = index not in mapping.pages
        if major:
            self.pgmajfault += 1
        pa = self.read_page(mapping, index, self.fault_readahead(mapping, major), gfp=GFP_FAULT)
        self.get_page(pa)
        return pa, major

    def fault_readahead(self, mapping, major):
        """Pages a fault reads: Linux's do_sync_mmap_readahead counts the
        mapping's misses and, past MMAP_LOTSAMISS, reads only the page
        faulted on (a program whose text is being evicted and refaulted
        under memory pressure must not bring 32 pages back for each);
        each hit (do_async_mmap_readahead) takes one miss back."""
        if not major:
            if mapping.mmap_miss:
                mapping.mmap_miss -= 1
            return READAHEAD_PAGES
        if mapping.mmap_miss < MMAP_LOTSAMISS * 10:
            mapping.mmap_miss += 1
        return 1 if mapping.mmap_miss > MMAP_LOTSAMISS else READAHEAD_PAGES

    def grab_page(self, mapping, index, whole):
        """The page at index ready for a write of part of it (`whole`: all
        of it will be overwritten, or it lies beyond EOF: no read, zeroed)."""
        pa = mapping.pages.get(index)
        if pa is not None:
            self.mark_page_accessed(pa >> PAGE_SHIFT)
            return pa
        if not whole and index << PAGE_SHIFT < mapping.host.i_size:
            return self.read_page(mapping, index, ra=1)
        pa = self.alloc_page(zero=True)
        self._insert(mapping, index, pa, PG_uptodate)
        self._lru_add(pa)
        return pa

