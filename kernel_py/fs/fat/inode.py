# FAT inodes and file data (Linux fs/fat/inode.c, file.c): FatInode and the
# inode cache (FAT keeps no inode numbers: they are made up as inodes come
# into the cache), the dentries' and inodes' slab objects, each file's
# address space (the inode is its page cache's host: readpages and
# writepages map pages to sectors through the cluster chain), read, write
# (clusters allocated at once, pages dirtied as they are written, the
# writer throttled by the dirty limits; a write stopped part way by a
# refused page or a full disk keeps what got in, reports it as a short
# write and gives back the clusters past the new end of file, as Linux's
# fat_write_failed, so that fsck finds the chain and the size agreeing),
# truncate, the directory entry written back at sync (write_inode), and
# the eviction of unlinked files.

import struct

from kernel_py.lib.errors import KernelError
from kernel_py.mm.gfp import GFP_NOFS
from kernel_py.fs.fat import ATTR_DIRECTORY, DATE, DIRENT
from kernel_py.mm.filemap.filemap import READAHEAD_PAGES, AddressSpace
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.fs.file_table import DENTRY_SIZE

BALANCE_EVERY = 16                               # pages between dirty-limit checks

# The slab objects are the real records, not copies of a name: a
# fat_inode_cache object holds the inode's directory entry as write_inode
# stores it (short name, attributes, first cluster, size, date: what
# Linux's msdos_inode_info and its vfs inode carry) and i_ino after it,
# rewritten whenever one of those fields changes (mark_inode_dirty). A
# dentry object (the VFS's DENTRY_SIZE) is laid out as Linux 6.1's struct
# dentry on x86-64: d_name's hash_len (length in the high half), d_inode
# (the inode's object: a reference kmemleak's scan follows, as in Linux)
# and d_iname, the name inline (DNAME_INLINE_LEN; Linux kmallocs a longer
# name, cut here). d_parent stays 0: the dcache's keys stand for it.
INODE_OBJ_SIZE = 256
SIZE_OFF = 28                   # the entry's (and the object's) file size
I_INO_OFF = DIRENT
D_NAME_OFF = 32
D_INODE_OFF = 48
D_INAME_OFF = 56
DNAME_INLINE_LEN = 32


class FatInode:
    def __init__(self, fs, parent, name, attr, first, size, off, lfn_off, short=b""):
        self.fs = fs
        self.parent = parent            # directory inode (None for the root)
        self.name = name
        self.attr = attr
        self.first = first              # first cluster (0: none)
        self.size = size                # bytes (0 for directories)
        self.off = off                  # byte offset of the short entry in the parent
        self.lfn_off = lfn_off          # first slot of the entry (LFN) in the parent
        self.short = short
        self.ntres = 0                  # the entry's NT case bits
        self.is_dir = bool(attr & ATTR_DIRECTORY)
        self.clusters = None            # cached chain
        self.mapping = None
        self.dirty = False              # directory entry needs writing
        self.refs = 0                   # pins: open files, mappings
        self.nchildren = 0              # cached child inodes
        self.va = 0                     # fat_inode_cache object
        self.deleted = False
        # FAT keeps no inode numbers: Linux's fat makes them up (iunique)
        # as inodes come into the cache, the root being MSDOS_ROOT_INO (1)
        fs.last_ino += 1
        self.i_ino = fs.last_ino

    @property
    def i_size(self):
        return self.size

    def scan_refs(self, out):
        """Its fat_inode_cache object, as an open File's f_inode or a
        mapping's file points to it (kmemleak's walk, fs/file_table.py)."""
        if self.va:
            out.append(self.va)

    def key(self):
        if self.parent is None:
            return ("root",)
        return (self.parent.first, self.off)

    def readpages(self, mapping, run):
        self.fs.file_io(self, False, run)

    def writepages(self, mapping, batch):
        self.fs.file_io(self, True, batch)

    def __repr__(self):
        return "<FatInode %s first=%d size=%d%s>" % (self.name, self.first, self.size,
                                                    " dir" if self.is_dir else "")


class FatFile:
    """The inode and file-data half of a FatFs (fs/fat/super.py)."""

    def _iget(self, d, ent):
        name, short, attr, first, size, off, lfn_off, ntres = ent
        key = (d.first, off)
        ino = self.icache.get(key)
        if ino is None:
            ino = FatInode(self, d, name, attr, first, size, off, lfn_off, short)
            ino.ntres = ntres
            ino.va = self._obj_alloc(self.inode_cachep, inode_record(ino, self.fat32))
            self.icache[key] = ino
            d.nchildren += 1
        return ino

    def _unhash(self, ino):
        """The inode leaves the name caches (dentries, icache)."""
        for k in [k for k in self.dcache if self.dcache[k].inode is ino]:
            self._obj_free(self.dentry_cachep, self.dcache.pop(k).va)
        if self.icache.get(ino.key()) is ino:
            del self.icache[ino.key()]
            if ino.parent is not None:
                ino.parent.nchildren -= 1

    def _forget_inode(self, ino):
        self._unhash(ino)
        self._obj_free(self.inode_cachep, ino.va)
        ino.va = 0
        if ino.mapping is not None:
            self.cache.release_mapping(ino.mapping)
            ino.mapping = None
        self.dirty_inodes.pop(id(ino), None)

    def shrink(self):
        """drop_caches 2: every dentry, then every idle inode (no pages, no
        pins, clean, no cached children), leaves first. Returns objects freed."""
        freed = 0
        for k in list(self.dcache):
            self._obj_free(self.dentry_cachep, self.dcache.pop(k).va)
            freed += 1
        progress = True
        while progress:
            progress = False
            for key in list(self.icache):
                ino = self.icache[key]
                if (ino is self.root or ino.refs or ino.dirty or ino.nchildren
                        or (ino.mapping is not None and (ino.mapping.pages or ino.mapping.dirty))):
                    continue
                self._forget_inode(ino)
                freed += 1
                progress = True
        for c in (self.inode_cachep, self.dentry_cachep):
            if c is not None:
                c.shrink()
        return freed

    def evict_orphan(self, ino):
        """The last pin of an unlinked file went: its pages, then its clusters."""
        self.orphans.remove(ino)
        cl = self.clusters_of(ino)
        if ino.mapping is not None:
            self.cache.truncate_pages(ino.mapping, 0)
        self.free_chain(cl)
        self._forget_inode(ino)

    def mapping_of(self, ino):
        if ino.mapping is None:
            ino.mapping = AddressSpace(self.cache, ino, name=ino.name)
        return ino.mapping

    def dentry_alloc(self, ino, name):
        """A dentry object naming ino (d_alloc + d_instantiate)."""
        return self._obj_alloc(self.dentry_cachep, dentry_record(ino, name))

    def mark_inode_dirty(self, ino):
        if ino.va:                      # the object follows the fields at once
            self.hw.writebytes(ino.va - DIRECT_MAP_BASE, inode_record(ino, self.fat32))
        self._queue_dirty(ino)

    def i_size_write(self, ino, size):
        """A write grew the file (generic_write_end: i_size_write, then
        mark_inode_dirty): only the object's size field changes, so only
        it is stored, not the whole record, once per page written."""
        ino.size = size
        if ino.va:
            self.hw.write32(ino.va - DIRECT_MAP_BASE + SIZE_OFF, size)
        self._queue_dirty(ino)

    def _queue_dirty(self, ino):
        """On the list write_inode stores at sync."""
        if not ino.dirty:
            ino.dirty = True
            self.dirty_inodes[id(ino)] = ino

    def write_inode(self, ino):
        if ino.deleted or ino.parent is None:
            ino.dirty = False
            return
        off = self.dir_disk_off(ino.parent, ino.off)
        ent = bytearray(self.bc.read(off, DIRENT))
        pack_inode_fields(ent, ino, self.fat32)
        self.bc.write(off, bytes(ent))
        ino.dirty = False

    def file_io(self, ino, write, pages):
        """Read or write whole pages of a file: each page's sectors are
        mapped through the cluster chain; contiguous sectors go in one
        request. Reads zero what lies past the allocation and past EOF."""
        clusters = self.clusters_of(ino)
        spc = self.spc
        alloc_sectors = len(clusters) * spc
        segs, start, nxt = [], -1, -1
        dev = self.dev
        fill = self.hw.fill
        for idx, pa in pages:
            fsec = idx << 3
            for s in range(8):
                f = fsec + s
                if f >= alloc_sectors:
                    if not write:
                        fill(pa + (s << 9), 0, (8 - s) << 9)
                    break
                lba = self.data_lba + (clusters[f // spc] - 2) * spc + f % spc
                spa = pa + (s << 9)
                if lba == nxt and segs[-1][0] + (segs[-1][1] << 9) == spa:
                    segs[-1] = (segs[-1][0], segs[-1][1] + 1)
                elif lba == nxt:
                    segs.append((spa, 1))
                else:
                    if segs:
                        dev.submit(write, start, segs, GFP_NOFS)
                    segs, start = [(spa, 1)], lba
                nxt = lba + 1
        if segs:
            dev.submit(write, start, segs, GFP_NOFS)
        if not write:
            size = ino.size
            for idx, pa in pages:
                lo = idx << PAGE_SHIFT
                if lo + PAGE_SIZE > size:
                    keep = max(0, size - lo)
                    fill(pa + keep, 0, PAGE_SIZE - keep)

    def read(self, ino, off, n, sink=None, into=None):
        """Up to n bytes at off, copied out of the page cache: a bytearray;
        or into `into` (a writable buffer, returns the count); or each piece
        passed to sink(memoryview) (returns the count). One allocation at
        most: a large bytes object per page costs a heap search in the VM."""
        if ino.is_dir:
            raise KernelError("EISDIR", ino.name)
        if off < 0 or n < 0:
            raise KernelError("EINVAL", "negative offset or length")
        size = ino.size
        if off >= size or not n:
            return bytearray() if sink is None and into is None else 0
        n = min(n, size - off)
        if into is not None:
            n = min(n, len(into))
        ret = None
        if sink is None and into is None:
            ret = into = bytearray(n)
        end = off + n
        mapping = self.mapping_of(ino)
        last = (size - 1) >> PAGE_SHIFT
        mem = self.hw.mem
        read_page = self.cache.read_page
        pos = off
        while pos < end:
            idx = pos >> PAGE_SHIFT
            po = pos & (PAGE_SIZE - 1)
            take = min(end - pos, PAGE_SIZE - po)
            pa = read_page(mapping, idx, READAHEAD_PAGES, last)
            if into is not None:
                into[pos - off:pos - off + take] = mem(pa + po, take)
            else:
                sink(mem(pa + po, take))
            pos += take
        return ret if ret is not None else n

    def _ensure_clusters(self, ino, end):
        """Allocate clusters so that [0, end) is backed; returns the end
        actually backed (smaller on ENOSPC, which is then raised by the
        caller after the part that fits is written)."""
        need = (end + self.clus_size - 1) // self.clus_size
        cl = self.clusters_of(ino)
        while len(cl) < need:
            new = self.alloc_clusters(need - len(cl), cl[-1] if cl else 0)
            if not cl:
                ino.first = new[0]
                self.mark_inode_dirty(ino)
            cl.extend(new)
        return end

    def write(self, ino, off, data=None, n=None, fill=0):
        """Write data (bytes) at off, or n bytes of `fill` when data is None.
        Extends the file (zero-filling a gap). Returns bytes written. A
        failure part way (ENOSPC, ENOMEM, EIO) raises after what was
        written stays, its count in the error's `written`, and the
        clusters past the new end of file freed."""
        if ino.is_dir:
            raise KernelError("EISDIR", ino.name)
        if self.read_only:
            raise KernelError("EROFS", self.dev.name)
        if data is not None:
            n = len(data)
        if off < 0 or n < 0:
            raise KernelError("EINVAL", "negative offset or length")
        if off + n > 0xFFFFFFFF:
            raise KernelError("EFBIG", "FAT files end at 4 GiB - 1")
        progress = [off]
        try:
            end = self._back(ino, off, off + n)
            self._write_range(ino, min(off, ino.size), end, data, fill, off, progress)
        except KernelError as exc:
            self.write_failed(ino)
            exc.written = max(0, progress[0] - off)
            raise
        if end < off + n:
            exc = KernelError("ENOSPC", "%s: disk full after %d of %d bytes" % (
                self.dev.name, end - off, n))
            exc.written = end - off
            raise exc
        return n

    def _back(self, ino, off, end):
        """Back [0, end) with clusters: the end backed, smaller than asked
        when the disk is full (ENOSPC only if nothing of [off, end) fits)."""
        try:
            self._ensure_clusters(ino, end)
        except KernelError as exc:
            if exc.errname != "ENOSPC":
                raise
            end = min(end, len(self.clusters_of(ino)) * self.clus_size)
            if end <= off:
                raise
        return end

    def write_failed(self, ino):
        """fat_write_failed: a write stopped part way; the clusters it
        allocated past the end of file go back, so that the chain and
        the size in the directory entry agree (fsck's check)."""
        self.truncate_clusters(ino, ino.size)

    def _write_range(self, ino, start, end, data, fill, off, progress):
        """Copy into the cache for [start, end): zeros before `off` (a gap
        past the old EOF), then data/fill. Pages are dirtied as they go and
        the file grows with them; progress[0] follows the position."""
        mapping = self.mapping_of(ino)
        cache = self.cache
        hw = self.hw
        if data is not None and type(data) is not memoryview:
            data = memoryview(data)         # slices without copies
        pos = start
        done = 0
        while pos < end:
            idx = pos >> PAGE_SHIFT
            po = pos & (PAGE_SIZE - 1)
            take = min(end - pos, PAGE_SIZE - po)
            if pos < off:
                take = min(take, off - pos)
            whole = po == 0 and (take == PAGE_SIZE or pos + take >= ino.size)
            pa = cache.grab_page(mapping, idx, whole)
            if pos < off:
                hw.fill(pa + po, 0, take)
            elif data is None:
                hw.fill(pa + po, fill, take)
            else:
                i = pos - off
                hw.writebytes(pa + po, data[i:i + take])
            cache.set_page_dirty(mapping, pa)
            pos += take
            progress[0] = pos
            if pos > ino.size:
                self.i_size_write(ino, pos)
            done += 1
            if done % BALANCE_EVERY == 0:
                cache.balance_dirty_pages(mapping)
        cache.balance_dirty_pages(mapping)

    def truncate(self, ino, size):
        if ino.is_dir:
            raise KernelError("EISDIR", ino.name)
        if size < 0 or size > 0xFFFFFFFF:
            raise KernelError("EINVAL", "size %d" % size)
        old = ino.size
        if size > old:
            self.write(ino, size, b"")
            return
        if size == old:
            return
        mapping = self.mapping_of(ino)
        self.cache.truncate_pages(mapping, (size + PAGE_SIZE - 1) >> PAGE_SHIFT)
        if size & (PAGE_SIZE - 1):
            po = size & (PAGE_SIZE - 1)
            self.cache.zero_page_range(mapping, size >> PAGE_SHIFT, po, PAGE_SIZE - po)
        self.truncate_clusters(ino, size)
        ino.size = size
        self.mark_inode_dirty(ino)

    def truncate_clusters(self, ino, size):
        """fat_truncate_blocks: free the clusters past those `size` bytes
        need, ending the chain at the last one kept."""
        keep = (size + self.clus_size - 1) // self.clus_size
        cl = self.clusters_of(ino)
        if keep >= len(cl):
            return
        self.fat_prepare(cl[keep - 1:] if keep else cl)
        if keep:
            self.fat_set(cl[keep - 1], self.eoc_mark)
        else:
            ino.first = 0
            self.mark_inode_dirty(ino)
        self.free_chain(cl[keep:])
        del cl[keep:]


def pack_inode_fields(ent, ino, fat32):
    """The fields of a directory entry the inode owns (fat_write_inode)."""
    struct.pack_into("<HHHH", ent, 20, (ino.first >> 16) if fat32 else 0, 0, DATE, ino.first & 0xFFFF)
    struct.pack_into("<I", ent, SIZE_OFF, 0 if ino.is_dir else ino.size)
    ent[11] = ino.attr


def inode_record(ino, fat32):
    """A fat_inode_cache object's bytes: the entry, then i_ino."""
    rec = bytearray(I_INO_OFF + 8)
    rec[0:len(ino.short[:11])] = ino.short[:11]
    rec[12] = ino.ntres
    pack_inode_fields(rec, ino, fat32)
    struct.pack_into("<Q", rec, I_INO_OFF, ino.i_ino)
    return bytes(rec)


def dentry_record(ino, name):
    """A dentry object's bytes up to d_iname's end (d_parent and the
    rest stay zero: the dcache's hash keys stand for them)."""
    b = name.encode()[:DNAME_INLINE_LEN - 1]
    rec = bytearray(D_INAME_OFF + DNAME_INLINE_LEN)
    struct.pack_into("<QQQ", rec, D_NAME_OFF, len(b) << 32, 0, ino.va)
    rec[D_INAME_OFF:D_INAME_OFF + len(b)] = b
    return bytes(rec)
