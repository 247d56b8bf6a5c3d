# The page cache (Linux mm/filemap.c, mm/truncate.c, parts of mm/vmscan.c):
# file pages cached in frames from the buddy (owner kind "pagecache"),
# keyed by (address space, page index).
#
# - An AddressSpace is one file's (or one block device's) cache: a dict
#   index -> pa and the set of dirty indices. Its `host` does the I/O:
#       host.readpages(mapping, [(index, pa), ...])   fill the frames
#       host.writepages(mapping, [(index, pa), ...])  write them (sorted)
#       host.i_size                                     bytes (EOF)
# - Page state lives in the frame's mem_map record: PG_uptodate, PG_dirty,
#   PG_writeback, PG_locked (I/O in flight, not on an LRU), PG_lru,
#   PG_active, PG_referenced; count = references (the cache holds one;
#   a mapping process holds one more per PTE).
# - Two LRU lists of page-cache pages, active and inactive, threaded through
#   the records' next/prev fields with Linux's two-touch promotion
#   (mark_page_accessed) and second-chance scanning from the inactive tail.
#   shrink_page_cache(nr) frees clean, unmapped, inactive pages: the hook
#   for reclaim (kswapd / direct reclaim) and for drop_caches.
# - Dirty pages are written back by sync, by the dirty limits
#   (vm.dirty_background_ratio / vm.dirty_ratio, or the *_bytes forms) and
#   never dropped.
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
from kernel_py.mm.gfp import F_ZERO, GFP_NOFS
from kernel_py.mm.page.mem_map import PfnList
from kernel_py.mm.types import (
    KIND_PAGECACHE, NIL, OFF_COUNT, PAGECACHE_FLAGS, PG_active, PG_dirty, PG_locked, PG_lru,
    PG_referenced, PG_uptodate, PG_writeback, RECORD_SHIFT, VM_SHARED, _PAGE_PROTNONE,
)
from kernel_py.arch.x86.cpu import (
    PAGE_SHIFT, PAGE_SIZE, PTE_ADDR_MASK, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT,
)

GFP_CACHE = GFP_NOFS            # page-cache allocations may reclaim, not recurse into the FS
READAHEAD_PAGES = 32            # 128 KiB, Linux's default read_ahead_kb
WRITEBACK_BATCH = 64            # pages per writepages call
DIRTY_RATIO = 20
DIRTY_BACKGROUND_RATIO = 10


class LruList(PfnList):
    """An LRU list (active/inactive, file or anon): a PfnList with a name;
    new pages go to the head, scans start at the tail (`last`)."""

    def __init__(self, mem_map, name):
        super().__init__(mem_map)
        self.name = name


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
        self.error = None           # last writeback error, reported by sync
        self.released = False
        self.i_mmap = []            # file VMAs mapping it (vma.mm owns each)

    def nrpages(self):
        return len(self.pages)

    def __repr__(self):
        return "<AddressSpace %d %s pages=%d dirty=%d>" % (
            self.id, self.name, len(self.pages), len(self.dirty))


class PageCache:
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
        self.rmap = {}              # pfn -> (mapping id << 32) | index
        self.active = LruList(mem_map, "active_file")
        self.inactive = LruList(mem_map, "inactive_file")
        self.shrinkers = []         # fn() -> objects freed (drop_caches 2)
        # state counters (pages)
        self.nr_file = 0
        self.nr_bdev = 0
        self.nr_dirty = 0
        self.nr_writeback = 0
        # event counters (/proc/vmstat)
        self.hits = 0               # lookups served from the cache
        self.misses = 0             # lookups that read the disk
        self.pgmajfault = 0
        self.nr_dirtied = 0
        self.nr_written = 0
        self.pgactivate = 0
        self.pgdeactivate = 0
        self.pgscan = 0
        self.pgsteal = 0
        self.pgrotated = 0
        self.drop_pagecache_count = 0
        self.drop_slab_count = 0
        self.bg_writeback = 0       # background writeback runs
        self.throttled = 0          # writers over vm.dirty_ratio
        # vm sysctls
        self.dirty_ratio = DIRTY_RATIO
        self.dirty_background_ratio = DIRTY_BACKGROUND_RATIO
        self.dirty_bytes = 0
        self.dirty_background_bytes = 0
        self.vfs_cache_pressure = 100
        self.in_writeback = False
        self.in_pageout = False     # reclaim is writing a mapped page back

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
        return self.mappings.get(key >> 32), key & 0xFFFFFFFF

    # -- allocation and insertion
    def alloc_page(self, zero=False):
        gfp = GFP_CACHE | (F_ZERO if zero else 0)
        pa = self.buddy.alloc_pages(gfp, 0, KIND_PAGECACHE)
        if pa is None:
            self.shrink_page_cache(32)
            pa = self.buddy.alloc_pages(gfp, 0, KIND_PAGECACHE)
            if pa is None:
                raise KernelError("ENOMEM", "page cache: no free page")
        return pa

    def _insert(self, mapping, index, pa, flags):
        mapping.pages[index] = pa
        self.rmap[pa >> PAGE_SHIFT] = (mapping.id << 32) | index
        self._w16(self._rec(pa), PAGECACHE_FLAGS | flags)
        self.nr_file += 1
        if mapping.bdev:
            self.nr_bdev += 1

    def _lru_add(self, pa):
        pfn = pa >> PAGE_SHIFT
        self.inactive.push(pfn)
        self._set(pa, PG_lru)

    def _lru_del(self, pa, flags):
        if flags & PG_lru:
            pfn = pa >> PAGE_SHIFT
            if flags & PG_active:
                self.active.remove(pfn)
            else:
                self.inactive.remove(pfn)
            self._clear(pa, PG_lru | PG_active)

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

    def read_page(self, mapping, index, ra=READAHEAD_PAGES, last=None):
        """The uptodate page at index (no reference taken: use it before
        the next allocation). A miss reads it, and up to `ra` following
        missing pages (not past `last`) in the same request."""
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
                pa = self.alloc_page()
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
        pa = self.read_page(mapping, index)
        self.get_page(pa)
        return pa, major

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

    # -- LRU ageing
    def mark_page_accessed(self, pfn):
        """Two-touch: an inactive page touched twice becomes active."""
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        if not f & PG_referenced:
            self._w16(a, f | PG_referenced)
        elif not f & PG_active and f & PG_lru:
            self.inactive.remove(pfn)
            self.active.push(pfn)
            self._w16(a, (f | PG_active) & ~PG_referenced)
            self.pgactivate += 1

    # -- dirtying
    def set_page_dirty(self, mapping, pa):
        a = self._rec(pa)
        f = self._r16(a)
        if not f & PG_dirty:
            self._w16(a, f | PG_dirty)
            self.nr_dirty += 1
            self.nr_dirtied += 1
            idx = self.rmap[pa >> PAGE_SHIFT] & 0xFFFFFFFF
            mapping.dirty.add(idx)

    def clear_page_dirty(self, mapping, pa):
        """cancel_dirty_page: the data no longer needs writing."""
        a = self._rec(pa)
        f = self._r16(a)
        if f & PG_dirty:
            self._w16(a, f & ~PG_dirty)
            self.nr_dirty -= 1
            mapping.dirty.discard(self.rmap[pa >> PAGE_SHIFT] & 0xFFFFFFFF)

    def dirtyable_pages(self):
        """Linux's global_dirtyable_memory: free pages plus the file LRU."""
        return self.buddy.nr_free_pages() + self.nr_file

    def dirty_thresholds(self):
        """(background, hard) limits in pages."""
        avail = self.dirtyable_pages()
        if self.dirty_bytes:
            thresh = (self.dirty_bytes + PAGE_SIZE - 1) >> PAGE_SHIFT
        else:
            thresh = avail * self.dirty_ratio // 100
        if self.dirty_background_bytes:
            bg = (self.dirty_background_bytes + PAGE_SIZE - 1) >> PAGE_SHIFT
        else:
            bg = avail * self.dirty_background_ratio // 100
        if bg >= thresh:
            bg = thresh // 2
        return bg, thresh

    def balance_dirty_pages(self, mapping=None):
        """Called after a writer dirtied pages. Over the background limit
        the flusher's work runs (here, synchronously): write back until
        the dirty count is under half of it. Over the hard limit the writer
        itself is throttled: its own pages are written first."""
        if self.in_writeback:
            return 0
        bg, thresh = self.dirty_thresholds()
        if self.nr_dirty <= bg:
            return 0
        done = 0
        self.in_writeback = True
        try:
            if self.nr_dirty > thresh and mapping is not None:
                self.throttled += 1
                done += self.writeback_mapping(mapping, self.nr_dirty - bg // 2)
            if self.nr_dirty > bg:
                self.bg_writeback += 1
                done += self.wb_writeback(self.nr_dirty - bg // 2)
        finally:
            self.in_writeback = False
        return done

    # -- writeback
    def writeback_mapping(self, mapping, nr=None, lo=0, hi=None):
        """Write back up to nr (all) dirty pages of a mapping (those with
        lo <= index < hi: msync's range), in index order and batches;
        returns pages written. A failed batch stays dirty and the error is
        raised (and kept in mapping.error)."""
        if not mapping.dirty:
            return 0
        todo = sorted(mapping.dirty)
        if lo or hi is not None:
            todo = [i for i in todo if i >= lo and (hi is None or i < hi)]
        if nr is not None:
            todo = todo[:nr]
        written = 0
        shared = mapping.i_mmap
        for s in range(0, len(todo), WRITEBACK_BATCH):
            batch = []
            for idx in todo[s:s + WRITEBACK_BATCH]:
                pa = mapping.pages[idx]
                if shared:
                    self.page_mkclean(mapping, idx, pa)
                a = self._rec(pa)
                self._w16(a, (self._r16(a) & ~PG_dirty) | PG_writeback)
                mapping.dirty.discard(idx)
                batch.append((idx, pa))
            self.nr_dirty -= len(batch)
            self.nr_writeback += len(batch)
            try:
                mapping.host.writepages(mapping, batch)
            except KernelError as exc:
                mapping.error = exc
                for idx, pa in batch:
                    self._clear(pa, PG_writeback)
                    self.set_page_dirty(mapping, pa)
                    self.nr_dirtied -= 1
                self.nr_writeback -= len(batch)
                raise
            for idx, pa in batch:
                self._clear(pa, PG_writeback)
            self.nr_writeback -= len(batch)
            self.nr_written += len(batch)
            written += len(batch)
        return written

    def wb_writeback(self, nr):
        """Background writeback: file data first, then block-device
        buffers (metadata), until nr pages are written."""
        done = 0
        for bdev in (False, True):
            for m in list(self.mappings.values()):
                if done >= nr:
                    return done
                if m.bdev == bdev and m.dirty:
                    done += self.writeback_mapping(m, nr - done)
        return done

    # -- mapped pages (the file rmap: mapping.i_mmap)
    def page_mkclean(self, mapping, index, pa):
        """Before writeback (clear_page_dirty_for_io): every shared
        mapping's PTE of the page loses write permission (and its dirty
        bit), so the next write through it faults and dirties the page
        again instead of being lost after this write."""
        for vma in mapping.i_mmap:
            if vma.flags & VM_SHARED:
                r = vma.file_index_range(index, index + 1)
                if r is not None:
                    vma.mm.page_mkclean_one(r[0], pa)

    def unmap_mapping_range(self, mapping, start):
        """Truncate: unmap file pages >= start from every VMA (private
        copies of them too, as Linux's truncate does): an access beyond the
        new EOF faults again and gets SIGBUS."""
        for vma in list(mapping.i_mmap):
            r = vma.file_index_range(start, 1 << 32)
            if r is not None:
                vma.mm.zap(vma, r[0], r[1])

    def nr_mapped(self):
        """meminfo Mapped (NR_FILE_MAPPED): cached pages some PTE maps
        (a reference beyond the cache's own), in files that are mapped."""
        n = 0
        r32, base = self._r32, self.base
        for m in self.mappings.values():
            if m.i_mmap:
                for pa in m.pages.values():
                    if r32(base + ((pa >> PAGE_SHIFT) << RECORD_SHIFT) + OFF_COUNT) > 1:
                        n += 1
        return n

    # -- truncation and removal
    def truncate_pages(self, mapping, start):
        """Drop every page at index >= start (dirty ones too: the data is
        past EOF), unmapping them first."""
        if mapping.i_mmap:
            self.unmap_mapping_range(mapping, start)
        for idx in [i for i in mapping.pages if i >= start]:
            self._delete(mapping, idx, mapping.pages[idx])

    def release_mapping(self, mapping):
        """The inode goes away: all pages dropped."""
        self.truncate_pages(mapping, 0)
        mapping.released = True
        self.mappings.pop(mapping.id, None)

    def zero_page_range(self, mapping, index, off, n):
        """Zero part of a cached page (a truncate's tail), dirtying it."""
        pa = mapping.pages.get(index)
        if pa is not None and n > 0:
            self.hw.fill(pa + off, 0, n)
            self.set_page_dirty(mapping, pa)

    # -- reclaim
    def reclaimable(self, pa, flags):
        return (not flags & (PG_dirty | PG_writeback | PG_locked)
                and self.page_count(pa) == 1)

    def shrink_active(self, nr):
        """Move up to nr pages from the active tail to the inactive list;
        referenced ones get another round on the active list."""
        moved = 0
        lst, base = self.active, self.base
        for _ in range(nr):
            pfn = lst.last
            if pfn == NIL:
                break
            a = base + (pfn << RECORD_SHIFT)
            f = self._r16(a)
            lst.remove(pfn)
            if f & PG_referenced:
                lst.push(pfn)
                self._w16(a, f & ~PG_referenced)
                continue
            self.inactive.push(pfn)
            self._w16(a, f & ~PG_active)
            self.pgdeactivate += 1
            moved += 1
        return moved

    def shrink_inactive(self, nr_to_reclaim, nr_to_scan):
        """Scan the inactive tail: referenced pages get a second chance,
        busy ones (dirty, writeback, pinned) rotate, clean ones are freed;
        a mapped page is aged by its PTEs' accessed bits and, when none was
        set, unmapped from every PTE (try_to_unmap), written back if it was
        dirty, and freed."""
        reclaimed = 0
        lst, base = self.inactive, self.base
        for _ in range(nr_to_scan):
            if reclaimed >= nr_to_reclaim:
                break
            pfn = lst.last
            if pfn == NIL:
                break
            self.pgscan += 1
            a = base + (pfn << RECORD_SHIFT)
            f = self._r16(a)
            pa = pfn << PAGE_SHIFT
            if not f & PG_referenced and self.page_count(pa) > 1:
                got = self.reclaim_mapped(pfn, f)
                if got is not None:
                    reclaimed += got
                    continue
                f = self._r16(a)
            if f & PG_referenced or not self.reclaimable(pa, f):
                self._rotate(pfn, a, f)
                continue
            m, idx = self.owner(pfn)
            self._delete(m, idx, pa)
            self.pgsteal += 1
            reclaimed += 1
        return reclaimed

    def _rotate(self, pfn, a, f):
        self.inactive.remove(pfn)
        self.inactive.push(pfn)
        self._w16(a, f & ~PG_referenced)
        self.pgrotated += 1

    # -- reclaim of mapped pages (the file rmap: mapping.i_mmap)
    def mapped_ptes(self, mapping, index, pa):
        """[(mm, va, slot, pte, vma)]: every PTE of the file VMAs that maps
        page pa (present or PROT_NONE), or None unless they account for
        every reference but the cache's own (someone pins the page: a
        fault copying it, a read in flight)."""
        out = []
        for vma in mapping.i_mmap:
            r = vma.file_index_range(index, index + 1)
            if r is None or vma.mm is None or vma.mm.pgd is None:
                continue
            slot = vma.mm.pte_slot(r[0])
            if slot is None:
                continue
            e = self.hw.read64(slot)
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE) and e & PTE_ADDR_MASK == pa:
                out.append((vma.mm, r[0], slot, e, vma))
        if len(out) != self.page_count(pa) - 1:
            return None
        return out

    def page_referenced(self, ptes):
        """Test-and-clear the accessed bit of each PTE (invlpg where the
        tables are live: the TLB caches A, SDM 4.8); how many had it."""
        hw = self.hw
        n = 0
        for mm, va, slot, e, vma in ptes:
            if e & _PAGE_ACCESSED:
                hw.write64(slot, e & ~_PAGE_ACCESSED)
                if mm.live():
                    hw.invlpg(va)
                n += 1
        return n

    def try_to_unmap(self, mapping, pa, ptes):
        """Clear every PTE of the page and drop its references; a shared
        PTE's dirty bit (set in memory by the processor's first store
        through it, SDM 4.8) becomes the page's (set_page_dirty) first, so
        the store is written back, not lost."""
        hw = self.hw
        for mm, va, slot, e, vma in ptes:
            e = hw.read64(slot)
            hw.write64(slot, 0)
            if mm.live():
                hw.invlpg(va)           # the TLB may still hold the translation (SDM 4.10.4)
            if e & _PAGE_DIRTY and vma.flags & VM_SHARED:
                self.set_page_dirty(mapping, pa)
            mm.rss_file -= 1
            self.put_page(pa)

    def reclaim_mapped(self, pfn, f):
        """shrink_folio_list for a mapped page: 1 when it was unmapped and
        freed, 0 when it stays (activated, or its writeback failed), None
        when it is left to the unmapped-page rules (pinned, under I/O)."""
        if f & (PG_writeback | PG_locked):
            return None
        key = self.rmap.get(pfn)
        if key is None:
            return None
        mapping = self.mappings.get(key >> 32)
        index = key & 0xFFFFFFFF
        pa = pfn << PAGE_SHIFT
        if mapping is None or not mapping.i_mmap:
            return None
        ptes = self.mapped_ptes(mapping, index, pa)
        if not ptes:
            return None
        if self.page_referenced(ptes):
            self._activate(pfn)             # its PTEs were used since the last scan
            return 0
        dirty = self._r16(self._rec(pa)) & PG_dirty
        if self.in_pageout and (dirty or any(e & _PAGE_DIRTY for m, v, s, e, vma in ptes)):
            return None                     # an allocation of our own pageout: no nested write
        self.try_to_unmap(mapping, pa, ptes)
        if self._r16(self._rec(pa)) & PG_dirty:
            self.in_pageout = True
            try:
                self.writeback_mapping(mapping, lo=index, hi=index + 1)     # pageout
            except KernelError:
                self._rotate(pfn, self._rec(pa), self._r16(self._rec(pa)))
                return 0
            finally:
                self.in_pageout = False
        self._delete(mapping, index, pa)
        self.pgsteal += 1
        return 1

    def _activate(self, pfn):
        a = self.base + (pfn << RECORD_SHIFT)
        f = self._r16(a)
        self.inactive.remove(pfn)
        self.active.push(pfn)
        self._w16(a, (f | PG_active) & ~PG_referenced)
        self.pgactivate += 1

    def shrink_page_cache(self, nr):
        """Free up to nr clean page-cache pages, least recently used first
        (keeps the inactive list at least as long as the active one).
        Returns pages freed. The reclaim hook (buddy.reclaim) calls this."""
        reclaimed = 0
        for _ in range(4):
            if self.active.n > self.inactive.n:
                self.shrink_active(max(nr, self.active.n - self.inactive.n))
            got = self.shrink_inactive(nr - reclaimed, 2 * self.inactive.n + 1)
            reclaimed += got
            if reclaimed >= nr:
                break
            if not got and not self.active.n:
                break
            if not got:
                self.shrink_active(self.active.n)
        return reclaimed

    # -- drop_caches
    def invalidate_clean(self):
        """echo 1 > drop_caches: every clean, unmapped, idle page goes."""
        freed = 0
        for m in list(self.mappings.values()):
            for idx in list(m.pages):
                pa = m.pages[idx]
                if self.reclaimable(pa, self.page_flags(pa)):
                    self._delete(m, idx, pa)
                    freed += 1
        self.drop_pagecache_count += 1
        return freed

    def drop_slab(self):
        """echo 2 > drop_caches: the registered shrinkers (inode, dentry)."""
        freed = 0
        for fn in self.shrinkers:
            freed += fn()
        self.drop_slab_count += 1
        return freed

    def drop_caches(self, mode):
        if mode & 1:
            self.invalidate_clean()
        if mode & 2:
            self.drop_slab()

    # -- reporting
    def nr_cached(self):
        """meminfo Cached: page-cache pages not counted as Buffers."""
        return self.nr_file - self.nr_bdev

    def meminfo_pairs(self, swap_total=0, swap_free=0, swap_cached=0):
        """Buffers .. Writeback, in /proc/meminfo's order (swap: 0 until it lands)."""
        return (("Buffers", self.nr_bdev * 4), ("Cached", self.nr_cached() * 4),
                ("SwapCached", swap_cached * 4), ("Active(file)", self.active.n * 4),
                ("Inactive(file)", self.inactive.n * 4),
                ("SwapTotal", swap_total * 4), ("SwapFree", swap_free * 4),
                ("Dirty", self.nr_dirty * 4), ("Writeback", self.nr_writeback * 4))

    def vmstat_pairs(self):
        bg, thresh = self.dirty_thresholds()
        blk = self.blk
        return [("nr_inactive_file", self.inactive.n), ("nr_active_file", self.active.n),
                ("nr_file_pages", self.nr_file), ("nr_dirty", self.nr_dirty),
                ("nr_writeback", self.nr_writeback), ("nr_dirtied", self.nr_dirtied),
                ("nr_written", self.nr_written),
                ("nr_dirty_threshold", thresh), ("nr_dirty_background_threshold", bg),
                ("pgpgin", blk.pgpgin() if blk else 0), ("pgpgout", blk.pgpgout() if blk else 0),
                ("pgactivate", self.pgactivate), ("pgdeactivate", self.pgdeactivate),
                ("pgscan_file", self.pgscan), ("pgsteal_file", self.pgsteal),
                ("pgrotated", self.pgrotated),
                ("drop_pagecache", self.drop_pagecache_count), ("drop_slab", self.drop_slab_count),
                ("pagecache_hits", self.hits), ("pagecache_misses", self.misses)]
