# Taking pages out of the page cache (Linux mm/truncate.c and
# fs/drop_caches.c): truncate (every page past the new end, dirty or not,
# unmapped from every VMA first: unmap_mapping_range, so an access past
# EOF faults again and gets SIGBUS), the inode's release, the zeroing of a
# truncated page's tail, and drop_caches: 1 invalidates every clean,
# unmapped, idle page (invalidate_mapping_pages), 2 runs the registered
# shrinkers (the file systems' inode and dentry caches).
#
# Truncate is part of the page cache object (mm/filemap/filemap.py's
# PageCache): its state is set up by init_truncate.

from kernel_py.mm.types import MAX_FILE_PAGES


class Truncate:
    def init_truncate(self):
        self.shrinkers = []         # fn() -> objects freed (drop_caches 2)
        self.drop_pagecache_count = 0
        self.drop_slab_count = 0

    def truncate_pages(self, mapping, start):
        """Drop every page at index >= start (dirty ones too: the data is
        past EOF), unmapping them first."""
        if mapping.i_mmap:
            self.unmap_mapping_range(mapping, start)
        for idx in [i for i in mapping.pages if i >= start]:
            self._delete(mapping, idx, mapping.pages[idx])

    def unmap_mapping_range(self, mapping, start):
        """Truncate: unmap file pages >= start from every VMA (private
        copies of them too, as Linux's truncate does): an access beyond the
        new EOF faults again and gets SIGBUS."""
        for vma in list(mapping.i_mmap):
            r = vma.file_index_range(start, MAX_FILE_PAGES)
            if r is not None:
                vma.mm.zap(vma, r[0], r[1])

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
