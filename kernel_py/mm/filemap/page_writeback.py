# Dirty page-cache pages and their writeback (Linux mm/page-writeback.c,
# with rmap.c's folio_mkclean): set_page_dirty, the dirty limits
# (vm.dirty_background_ratio / vm.dirty_ratio, or the *_bytes forms) and
# the writer's throttling in balance_dirty_pages, writeback of a mapping
# (sync, msync, the flusher's background work, reclaim's pageout) and the
# write protection of a shared mapping's PTEs before a page is written
# (page_mkclean). Dirty pages are never dropped.
#
# PageWriteback is part of the page cache object (mm/filemap/filemap.py's
# PageCache): its state is set up by init_writeback.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import INDEX_MASK, PG_dirty, PG_writeback, VM_SHARED
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

WRITEBACK_BATCH = 64            # pages per writepages call
DIRTY_RATIO = 20
DIRTY_BACKGROUND_RATIO = 10
DIRTY_EXPIRE_CENTISECS = 3000   # data dirty this long is written by the flusher
DIRTY_WRITEBACK_CENTISECS = 500 # how often the flusher looks, while anything is dirty


class PageWriteback:
    def init_writeback(self):
        self.nr_dirty = 0           # pages
        self.nr_writeback = 0
        self.nr_dirtied = 0         # /proc/vmstat
        self.nr_written = 0
        self.bg_writeback = 0       # background writeback runs
        self.throttled = 0          # writers over vm.dirty_ratio
        # vm sysctls
        self.dirty_ratio = DIRTY_RATIO
        self.dirty_background_ratio = DIRTY_BACKGROUND_RATIO
        self.dirty_bytes = 0
        self.dirty_background_bytes = 0
        self.dirty_expire_centisecs = DIRTY_EXPIRE_CENTISECS
        self.dirty_writeback_centisecs = DIRTY_WRITEBACK_CENTISECS
        self.in_writeback = False
        self.now_cs = None          # fn() -> centiseconds since boot (the flusher's clock)
        self.wake_flusher = None    # fn(): arm the flusher's next look (kernel/kthread.py)
        self.flusher_runs = 0

    def set_page_dirty(self, mapping, pa):
        a = self._rec(pa)
        f = self._r16(a)
        if not f & PG_dirty:
            self._w16(a, f | PG_dirty)
            self.nr_dirty += 1
            self.nr_dirtied += 1
            idx = self.rmap[pa >> PAGE_SHIFT] & INDEX_MASK
            if not mapping.dirty and self.now_cs is not None:
                mapping.dirtied_when = self.now_cs()    # __mark_inode_dirty's dirtied_when
                if self.wake_flusher is not None:
                    self.wake_flusher()                 # wb_wakeup_delayed
            mapping.dirty.add(idx)

    def clear_page_dirty(self, mapping, pa):
        """cancel_dirty_page: the data no longer needs writing."""
        a = self._rec(pa)
        f = self._r16(a)
        if f & PG_dirty:
            self._w16(a, f & ~PG_dirty)
            self.nr_dirty -= 1
            mapping.dirty.discard(self.rmap[pa >> PAGE_SHIFT] & INDEX_MASK)

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

    def flusher(self):
        """The flusher thread's look (wb_do_writeback's periodic part,
        wb_check_old_data_flush): what has been dirty longer than
        dirty_expire_centisecs is written; over the background limit,
        background writeback. True while dirty data remains (the thread
        looks again in dirty_writeback_centisecs)."""
        self.flusher_runs += 1
        now = self.now_cs()
        expire = self.dirty_expire_centisecs
        for m in list(self.mappings.values()):
            if m.dirty and now - m.dirtied_when >= expire:
                try:
                    self.writeback_mapping(m)
                except KernelError:
                    pass                        # kept in m.error, reported by fsync/sync
        self.balance_dirty_pages()
        return self.nr_dirty > 0

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
