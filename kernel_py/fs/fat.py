# FAT16 / FAT32 (Microsoft's "FAT: General Overview of On-Disk Format"),
# with VFAT long names, over a block device. File data goes through the
# page cache (each regular file's AddressSpace, this inode as its host);
# metadata (boot sector, FSInfo, the FATs, directories) through the block
# device's buffer cache (fs/buffer.py).
#
# Inodes and dentries are cached (icache, dcache) and accounted as objects
# of the slab caches "fat_inode_cache" and "dentry" (SLAB_RECLAIM_ACCOUNT),
# which drop_caches 2 shrinks. Cluster chains are cached per inode.
#
# Writes allocate clusters at once (no delayed allocation); sync writes the
# file pages, then the dirty directory entries, FSInfo, the buffer cache,
# and flushes the disk's cache.

import struct

from kernel_py.lib.errors import KernelError
from kernel_py.fs.buffer import BufferCache
from kernel_py.mm.filemap.filemap import AddressSpace, READAHEAD_PAGES
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LONG_NAME = 0x0F

NT_LOWER_BASE = 0x08
NT_LOWER_EXT = 0x10

DIRENT = 32
FREE_ENT = 0xE5
LFN_LAST = 0x40
LFN_CHARS = 13
MAX_NAME = 255
DATE = ((2025 - 1980) << 9) | (1 << 5) | 1     # no RTC: 2025-01-01 00:00
BALANCE_EVERY = 16                               # pages between dirty-limit checks

SHORT_OK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()-@^_`{}~"
BAD_LONG = '"*/:<>?\\|'


def lfn_checksum(short):
    s = 0
    for c in short:
        s = (((s & 1) << 7) + (s >> 1) + c) & 0xFF
    return s


def format_short(short, ntres):
    base = "".join([chr(c) for c in short[:8]]).rstrip()
    ext = "".join([chr(c) for c in short[8:]]).rstrip()
    if base and base[0] == "\x05":
        base = "\xe5" + base[1:]
    if ntres & NT_LOWER_BASE:
        base = base.lower()
    if ntres & NT_LOWER_EXT:
        ext = ext.lower()
    return base + "." + ext if ext else base


def check_name(name):
    if not name or name in (".", "..") or len(name) > MAX_NAME:
        raise KernelError("EINVAL", "bad file name %r" % name)
    for ch in name:
        if ch in BAD_LONG or ord(ch) < 32 or ord(ch) > 0xFFFF:
            raise KernelError("EINVAL", "bad character %r in file name" % ch)
    if name[-1] in ". " or name[0] == " ":
        raise KernelError("EINVAL", "file name %r ends in a dot or space" % name)


def plain_short(name):
    """(11-byte short name, ntres) when `name` fits 8.3 as typed (one case
    per part), else None: then it needs a long name."""
    if name.count(".") > 1 or name.startswith("."):
        return None
    base, _, ext = name.partition(".")
    if not 0 < len(base) <= 8 or len(ext) > 3:
        return None
    nt = 0
    for part, flag in ((base, NT_LOWER_BASE), (ext, NT_LOWER_EXT)):
        up, low = part.upper(), part.lower()
        if part != up and part != low:
            return None
        if part == low and part != up:
            nt |= flag
        for ch in up:
            if ch not in SHORT_OK:
                return None
    return ("%-8s%-3s" % (base.upper(), ext.upper())).encode(), nt


def alias_basis(name):
    """The basis of a numeric-tail short name (NAME~1.EXT) for a long name."""
    dot = name.rfind(".")
    base, ext = (name[:dot], name[dot + 1:]) if dot > 0 else (name, "")

    def clean(s):
        out = []
        for ch in s.upper():
            if ch in " .":
                continue
            out.append(ch if ch in SHORT_OK else "_")
        return "".join(out)
    return clean(base) or "_", clean(ext)[:3]


class Dentry:
    """A name in a directory (dcache entry) with its slab object."""

    def __init__(self, inode, va):
        self.inode = inode
        self.va = va


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

    def key(self):
        if self.parent is None:
            return ("root",)
        return (self.parent.first, self.off)

    # -- the page-cache host interface
    def readpages(self, mapping, run):
        self.fs.file_io(self, False, run)

    def writepages(self, mapping, batch):
        self.fs.file_io(self, True, batch)

    def __repr__(self):
        return "<FatInode %s first=%d size=%d%s>" % (self.name, self.first, self.size,
                                                    " dir" if self.is_dir else "")


class FatFs:
    fstype = "vfat"

    def __init__(self, k, dev):
        self.k = k
        self.hw = k.hw
        self.cache = k.pagecache
        self.dev = dev
        self.bc = BufferCache(self.cache, dev)
        self.icache = {}
        self.last_ino = 0
        self.dcache = {}
        self.dirty_inodes = {}
        self.orphans = []               # unlinked inodes still pinned (mapped)
        self.inode_cachep = None
        self.dentry_cachep = None
        self.read_only = False
        self.mount()

    # -- mount
    def mount(self):
        bs = self.bc.read(0, 512)
        if bs[510] != 0x55 or bs[511] != 0xAA:
            raise KernelError("EINVAL", "%s: no FAT boot sector signature" % self.dev.name)
        (bps, spc, rsvd, nfats, root_ents, tot16, media, fatsz16,
         _spt, _heads, _hidden, tot32) = struct.unpack_from("<HBHBHHBHHHII", bs, 11)
        if bps != 512:
            raise KernelError("EINVAL", "%s: %d-byte sectors (only 512 supported)" % (self.dev.name, bps))
        if not spc or spc & (spc - 1) or not nfats or not rsvd:
            raise KernelError("EINVAL", "%s: not a FAT file system" % self.dev.name)
        fatsz = fatsz16 or struct.unpack_from("<I", bs, 36)[0]
        total = tot16 or tot32
        root_secs = (root_ents * DIRENT + 511) // 512
        first_data = rsvd + nfats * fatsz + root_secs
        if total > self.dev.nr_sectors or first_data >= total:
            raise KernelError("EINVAL", "%s: FAT geometry beyond the disk" % self.dev.name)
        nclusters = (total - first_data) // spc
        # as Linux decides: FAT32 when the 16-bit FAT size is 0, else the
        # cluster count tells FAT12 from FAT16
        self.fat32 = fatsz16 == 0
        if not self.fat32 and nclusters < 4085:
            raise KernelError("EINVAL", "%s: FAT12 is not supported" % self.dev.name)
        if nclusters + 2 > self.fat_capacity(fatsz * 512):
            nclusters = self.fat_capacity(fatsz * 512) - 2
        self.type_name = "FAT32" if self.fat32 else "FAT16"
        self.spc = spc
        self.clus_size = spc * 512
        self.nfats = nfats
        self.fat_bytes = fatsz * 512
        self.fat_off = rsvd * 512
        self.root_off = (rsvd + nfats * fatsz) * 512
        self.root_bytes = root_secs * 512
        self.data_lba = first_data
        self.data_off = first_data * 512
        self.nclusters = nclusters
        self.max_cluster = nclusters + 1
        self.eoc = 0x0FFFFFF8 if self.fat32 else 0xFFF8
        self.eoc_mark = 0x0FFFFFFF if self.fat32 else 0xFFFF
        self.bad = 0x0FFFFFF7 if self.fat32 else 0xFFF7
        self.free_clusters = None       # unknown until counted
        self.next_free = 2
        self.fsinfo_off = 0
        self.label = bs[43:54] if not self.fat32 else bs[71:82]
        root_first = 0
        if self.fat32:
            root_first = struct.unpack_from("<I", bs, 44)[0]
            fsinfo = struct.unpack_from("<H", bs, 48)[0]
            if 0 < fsinfo < rsvd:
                fi = self.bc.read(fsinfo * 512, 512)
                if fi[0:4] == b"RRaA" and fi[484:488] == b"rrAa":
                    self.fsinfo_off = fsinfo * 512
                    free, nxt = struct.unpack_from("<II", fi, 488)
                    if free <= nclusters:
                        self.free_clusters = free
                    if 2 <= nxt <= self.max_cluster:
                        self.next_free = nxt
        self.root = FatInode(self, None, "/", ATTR_DIRECTORY, root_first, 0, 0, 0)
        self.root.refs = 1
        self.icache[self.root.key()] = self.root
        self.fsinfo_dirty = False
        self._slab_init()

    def fat_capacity(self, nbytes):
        """Entries a FAT of nbytes holds."""
        return nbytes >> (2 if self.fat32 else 1)

    def _slab_init(self):
        slab = self.k.slab
        if slab is None:
            return
        from kernel_py.mm.slab.common import SLAB_RECLAIM_ACCOUNT
        for attr, name, size in (("inode_cachep", "fat_inode_cache", 256),
                                 ("dentry_cachep", "dentry", 192)):
            c = slab.by_name.get(name)
            if c is None:
                c = slab.kmem_cache_create(name, size, 0, SLAB_RECLAIM_ACCOUNT)
            setattr(self, attr, c)

    def _obj_alloc(self, cachep, data):
        if cachep is None:
            return 0
        va = cachep.alloc()
        if va is None:
            raise KernelError("ENOMEM", "%s: no object" % cachep.name)
        from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
        self.hw.writebytes(va - DIRECT_MAP_BASE, data[:cachep.object_size])
        return va

    def _obj_free(self, cachep, va):
        if cachep is not None and va:
            cachep.free(va)

    # -- the FAT
    def fat_entry_off(self, c):
        return self.fat_off + (c << 2 if self.fat32 else c << 1)

    def fat_get(self, c):
        if self.fat32:
            return self.bc.read32(self.fat_off + (c << 2)) & 0x0FFFFFFF
        return self.bc.read16(self.fat_off + (c << 1))

    def fat_set(self, c, v):
        for i in range(self.nfats):
            off = self.fat_off + i * self.fat_bytes
            if self.fat32:
                off += c << 2
                old = self.bc.read32(off)
                self.bc.write32(off, (old & 0xF0000000) | (v & 0x0FFFFFFF))
            else:
                self.bc.write16(off + (c << 1), v)

    def chain(self, first):
        """The cluster chain from `first` (EIO on a loop or a bad entry)."""
        out = []
        c = first
        limit = self.nclusters
        while 2 <= c <= self.max_cluster:
            out.append(c)
            if len(out) > limit:
                raise KernelError("EIO", "FAT: cluster chain loops at %d" % c)
            c = self.fat_get(c)
        if c < self.eoc and out:
            raise KernelError("EIO", "FAT: bad entry 0x%x in chain at cluster %d" % (c, out[-1]))
        return out

    def clusters_of(self, ino):
        if ino.clusters is None:
            ino.clusters = self.chain(ino.first) if ino.first else []
        return ino.clusters

    def _scan_free(self, start, want, out):
        """Append free cluster numbers >= start (up to want of them) to out,
        reading the first FAT a page at a time; returns the next cluster."""
        per = PAGE_SIZE >> (2 if self.fat32 else 1)
        fmt = ("<%dI" if self.fat32 else "<%dH") % per
        c = start
        while c <= self.max_cluster and len(out) < want:
            page_first = c - c % per
            vals = struct.unpack(fmt, self.bc.read(self.fat_entry_off(page_first), PAGE_SIZE))
            i = c - page_first
            end = min(per, self.max_cluster + 1 - page_first)
            while i < end and len(out) < want:
                v = vals[i]
                if self.fat32:
                    v &= 0x0FFFFFFF
                if v == 0:
                    out.append(page_first + i)
                i += 1
            c = page_first + i
        return c

    def count_free(self):
        if self.free_clusters is None:
            per = PAGE_SIZE >> (2 if self.fat32 else 1)
            fmt = ("<%dI" if self.fat32 else "<%dH") % per
            free = 0
            c = 0
            while c <= self.max_cluster:
                vals = struct.unpack(fmt, self.bc.read(self.fat_entry_off(c), PAGE_SIZE))
                n = min(per, self.max_cluster + 1 - c)
                if n < per:
                    vals = vals[:n]
                if c == 0:
                    vals = vals[2:]
                if self.fat32:
                    free += sum(1 for v in vals if not v & 0x0FFFFFFF)
                else:
                    free += vals.count(0)
                c += per
            self.free_clusters = free
        return self.free_clusters

    def alloc_clusters(self, n, prev):
        """Up to n free clusters (at least one, else ENOSPC), chained after
        `prev` (0: a new chain); each is marked end-of-chain, linked, and
        its disk sectors dropped from the metadata cache."""
        got = []
        c = self._scan_free(max(2, self.next_free), n, got)
        if len(got) < n:
            self._scan_free(2, n, got)
        if not got:
            self.free_clusters = 0
            raise KernelError("ENOSPC", "%s: no free cluster" % self.dev.name)
        seen = set()
        out = []
        for x in got:
            if x not in seen:
                seen.add(x)
                out.append(x)
        for i in range(len(out)):
            self.fat_set(out[i], out[i + 1] if i + 1 < len(out) else self.eoc_mark)
            self.bc.forget(self.cluster_off(out[i]), self.clus_size)
        if prev:
            self.fat_set(prev, out[0])
        self.next_free = out[-1] + 1 if out[-1] < self.max_cluster else 2
        if self.free_clusters is not None:
            self.free_clusters -= len(out)
        self.fsinfo_dirty = True
        return out

    def free_chain(self, clusters):
        for c in clusters:
            self.fat_set(c, 0)
        if self.free_clusters is not None:
            self.free_clusters += len(clusters)
        if clusters and clusters[0] < self.next_free:
            self.next_free = clusters[0]
        self.fsinfo_dirty = True

    def cluster_off(self, c):
        return self.data_off + (c - 2) * self.clus_size

    # -- file data I/O (the page-cache host side)
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
                        dev.submit(write, start, segs)
                    segs, start = [(spa, 1)], lba
                nxt = lba + 1
        if segs:
            dev.submit(write, start, segs)
        if not write:
            size = ino.size
            for idx, pa in pages:
                lo = idx << PAGE_SHIFT
                if lo + PAGE_SIZE > size:
                    keep = max(0, size - lo)
                    fill(pa + keep, 0, PAGE_SIZE - keep)

    # -- directories: raw entry access by byte offset in the directory
    def dir_disk_off(self, d, off):
        if d.parent is None and not self.fat32:
            return self.root_off + off
        cl = self.clusters_of(d)
        return self.cluster_off(cl[off // self.clus_size]) + off % self.clus_size

    def dir_size(self, d):
        if d.parent is None and not self.fat32:
            return self.root_bytes
        return len(self.clusters_of(d)) * self.clus_size

    def dir_chunks(self, d):
        """(dir offset, bytes) per cluster (per page for the FAT16 root)."""
        if d.parent is None and not self.fat32:
            for off in range(0, self.root_bytes, PAGE_SIZE):
                n = min(PAGE_SIZE, self.root_bytes - off)
                yield off, self.bc.read(self.root_off + off, n)
            return
        cl = self.clusters_of(d)
        for i in range(len(cl)):
            yield i * self.clus_size, self.bc.read(self.cluster_off(cl[i]), self.clus_size)

    def read_dir(self, d):
        """[(name, short, attr, first, size, off, lfn_off, ntres)] of a
        directory, without '.', '..' and the volume label."""
        out = []
        lfn = None
        for base, data in self.dir_chunks(d):
            for o in range(0, len(data), DIRENT):
                first = data[o]
                if first == 0:
                    return out
                off = base + o
                if first == FREE_ENT:
                    lfn = None
                    continue
                attr = data[o + 11]
                if attr & 0x3F == ATTR_LONG_NAME:
                    seq = first & 0x3F
                    if first & LFN_LAST:
                        lfn = {"n": seq, "sum": data[o + 13], "parts": {}, "off": off}
                    if lfn is None or data[o + 13] != lfn["sum"] or not 1 <= seq <= lfn["n"]:
                        lfn = None
                        continue
                    units = struct.unpack_from("<5H", data, o + 1) + struct.unpack_from(
                        "<6H", data, o + 14) + struct.unpack_from("<2H", data, o + 28)
                    lfn["parts"][seq] = units
                    continue
                short = bytes(data[o:o + 11])
                if attr & ATTR_VOLUME_ID or short in (b".          ", b"..         "):
                    lfn = None
                    continue
                ntres = data[o + 12]
                hi, lo = struct.unpack_from("<H", data, o + 20)[0], struct.unpack_from("<H", data, o + 26)[0]
                size = struct.unpack_from("<I", data, o + 28)[0]
                name = None
                lfn_off = off
                if lfn is not None and lfn["sum"] == lfn_checksum(short) and len(lfn["parts"]) == lfn["n"]:
                    chars = []
                    for seq in range(1, lfn["n"] + 1):
                        for u in lfn["parts"][seq]:
                            if u == 0 or u == 0xFFFF:
                                break
                            chars.append(chr(u))
                    name = "".join(chars)
                    lfn_off = lfn["off"]
                lfn = None
                if not name:
                    name = format_short(short, ntres)
                first_cl = lo | ((hi << 16) if self.fat32 else 0)
                out.append((name, short, attr, first_cl, size, off, lfn_off, ntres))
        return out

    # -- inodes and dentries
    def _iget(self, d, ent):
        name, short, attr, first, size, off, lfn_off, ntres = ent
        key = (d.first, off)
        ino = self.icache.get(key)
        if ino is None:
            ino = FatInode(self, d, name, attr, first, size, off, lfn_off, short)
            ino.va = self._obj_alloc(self.inode_cachep, short + bytes((attr, ntres)))
            self.icache[key] = ino
            d.nchildren += 1
        return ino

    def lookup(self, d, name):
        """The inode of `name` in directory d (case-insensitive), or None."""
        if not d.is_dir:
            raise KernelError("ENOTDIR", d.name)
        lname = name.lower()
        den = self.dcache.get((d.key(), lname))
        if den is not None:
            return den.inode
        for ent in self.read_dir(d):
            if ent[0].lower() == lname or format_short(ent[1], 0).lower() == lname:
                ino = self._iget(d, ent)
                va = self._obj_alloc(self.dentry_cachep, name.encode())
                self.dcache[(d.key(), lname)] = Dentry(ino, va)
                return ino
        return None

    def readdir(self, d):
        """[(name, attr, size)]; sizes of cached inodes are current (their
        directory entries are written at sync)."""
        out = []
        for e in self.read_dir(d):
            ino = self.icache.get((d.first, e[5]))
            out.append((e[0], e[2], ino.size if ino is not None else e[4]))
        return out

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

    def mapping_of(self, ino):
        if ino.mapping is None:
            ino.mapping = AddressSpace(self.cache, ino, name=ino.name)
        return ino.mapping

    # -- directory entries
    def mark_inode_dirty(self, ino):
        if not ino.dirty:
            ino.dirty = True
            self.dirty_inodes[id(ino)] = ino

    def write_inode(self, ino):
        if ino.deleted or ino.parent is None:
            ino.dirty = False
            return
        off = self.dir_disk_off(ino.parent, ino.off)
        ent = bytearray(self.bc.read(off, DIRENT))
        struct.pack_into("<HHHH", ent, 20, (ino.first >> 16) if self.fat32 else 0, 0, DATE, ino.first & 0xFFFF)
        struct.pack_into("<I", ent, 28, 0 if ino.is_dir else ino.size)
        ent[11] = ino.attr
        self.bc.write(off, bytes(ent))
        ino.dirty = False

    def _extend_dir(self, d):
        if d.parent is None and not self.fat32:
            raise KernelError("ENOSPC", "root directory full")
        cl = self.clusters_of(d)
        new = self.alloc_clusters(1, cl[-1] if cl else 0)
        try:
            self.bc.fill(self.cluster_off(new[0]), 0, self.clus_size)
        except KernelError:
            # not zeroed: unlinked, or its stale bytes would read as entries
            if cl:
                self.fat_set(cl[-1], self.eoc_mark)
            self.free_chain(new)
            raise
        cl.extend(new)

    def _find_slots(self, d, n):
        """Byte offset of n consecutive free entries in d (grows d)."""
        run_start, run = 0, 0
        for base, data in self.dir_chunks(d):
            for o in range(0, len(data), DIRENT):
                first = data[o]
                if first == 0 or first == FREE_ENT:
                    if run == 0:
                        run_start = base + o
                    run += 1
                    if run == n:
                        return run_start
                    if first == 0:
                        # everything after the end marker is free
                        size = self.dir_size(d)
                        while run_start + n * DIRENT > size:
                            self._extend_dir(d)
                            size = self.dir_size(d)
                        return run_start
                else:
                    run = 0
        size = self.dir_size(d)
        if run == 0:
            run_start = size
        while run_start + n * DIRENT > self.dir_size(d):
            self._extend_dir(d)
        return run_start

    def _short_for(self, d, name):
        ps = plain_short(name)
        existing = set(e[1] for e in self.read_dir(d))
        if ps is not None:
            if ps[0] in existing:
                raise KernelError("EEXIST", name)
            return ps[0], ps[1], False
        base, ext = alias_basis(name)
        for i in range(1, 1000000):
            tail = "~%d" % i
            cand = ("%-8s%-3s" % (base[:8 - len(tail)] + tail, ext)).encode()
            if cand not in existing:
                return cand, 0, True
        raise KernelError("ENOSPC", "no short name for %r" % name)

    def _add_entry(self, d, name, attr, first):
        """Write the entry (long-name slots, then the short entry); returns
        (short offset, first slot offset, short name)."""
        check_name(name)
        short, ntres, need_lfn = self._short_for(d, name)
        slots = []
        if need_lfn:
            units = [ord(c) for c in name]
            nent = (len(units) + LFN_CHARS - 1) // LFN_CHARS
            if len(units) % LFN_CHARS:
                units.append(0)
            while len(units) % LFN_CHARS:
                units.append(0xFFFF)
            csum = lfn_checksum(short)
            for seq in range(nent, 0, -1):
                u = units[(seq - 1) * LFN_CHARS:seq * LFN_CHARS]
                e = bytearray(DIRENT)
                e[0] = seq | (LFN_LAST if seq == nent else 0)
                struct.pack_into("<5H", e, 1, *u[0:5])
                e[11] = ATTR_LONG_NAME
                e[13] = csum
                struct.pack_into("<6H", e, 14, *u[5:11])
                struct.pack_into("<2H", e, 28, *u[11:13])
                slots.append(bytes(e))
        e = bytearray(DIRENT)
        e[0:11] = short
        e[11] = attr
        e[12] = ntres
        struct.pack_into("<HHHHHHHI", e, 14, 0, DATE, DATE,
                         (first >> 16) if self.fat32 else 0, 0, DATE, first & 0xFFFF, 0)
        slots.append(bytes(e))
        start = self._find_slots(d, len(slots))
        for i in range(len(slots)):
            self.bc.write(self.dir_disk_off(d, start + i * DIRENT), slots[i])
        return start + (len(slots) - 1) * DIRENT, start, short

    def _remove_entry(self, ino):
        self._clear_slots(ino.parent, ino.lfn_off, ino.off)

    def _clear_slots(self, d, first, last):
        """Mark the entries first..last of d free (their pages were just
        written or read: cached, so this allocates nothing)."""
        for off in range(first, last + DIRENT, DIRENT):
            self.bc.write(self.dir_disk_off(d, off), bytes((FREE_ENT,)))

    def create(self, d, name, attr=ATTR_ARCHIVE):
        if self.read_only:
            raise KernelError("EROFS", self.dev.name)
        if self.lookup(d, name) is not None:
            raise KernelError("EEXIST", name)
        off, lfn_off, short = self._add_entry(d, name, attr, 0)
        ent = (name, short, attr, 0, 0, off, lfn_off, 0)
        ino = self._iget_new(d, ent)
        try:
            va = self._obj_alloc(self.dentry_cachep, name.encode())
        except KernelError:
            self._forget_inode(ino)
            self._clear_slots(d, lfn_off, off)
            raise
        self.dcache[(d.key(), name.lower())] = Dentry(ino, va)
        ino.clusters = []
        return ino

    def _iget_new(self, d, ent):
        """The inode of an entry just written; if it cannot be had the
        entry is taken back, so a failed create leaves no file behind."""
        try:
            return self._iget(d, ent)
        except KernelError:
            self._clear_slots(d, ent[6], ent[5])
            raise

    def mkdir(self, d, name):
        if self.lookup(d, name) is not None:
            raise KernelError("EEXIST", name)
        check_name(name)
        cl = self.alloc_clusters(1, 0)
        c = cl[0]
        self.bc.fill(self.cluster_off(c), 0, self.clus_size)
        parent_first = 0 if d.parent is None else d.first
        for i, nm, target in ((0, b".          ", c), (1, b"..         ", parent_first)):
            e = bytearray(DIRENT)
            e[0:11] = nm
            e[11] = ATTR_DIRECTORY
            struct.pack_into("<HHHHHHHI", e, 14, 0, DATE, DATE,
                             (target >> 16) if self.fat32 else 0, 0, DATE, target & 0xFFFF, 0)
            self.bc.write(self.cluster_off(c) + i * DIRENT, bytes(e))
        try:
            off, lfn_off, short = self._add_entry(d, name, ATTR_DIRECTORY, c)
            ino = self._iget_new(d, (name, short, ATTR_DIRECTORY, c, 0, off, lfn_off, 0))
        except KernelError:
            self.free_chain(cl)
            raise
        ino.clusters = cl
        return ino

    def unlink(self, d, name):
        ino = self.lookup(d, name)
        if ino is None:
            raise KernelError("ENOENT", name)
        if ino.is_dir:
            raise KernelError("EISDIR", name)
        self._delete(ino)

    def rmdir(self, d, name):
        ino = self.lookup(d, name)
        if ino is None:
            raise KernelError("ENOENT", name)
        if not ino.is_dir:
            raise KernelError("ENOTDIR", name)
        if self.read_dir(ino):
            raise KernelError("ENOTEMPTY", name)
        if ino.nchildren:
            raise KernelError("EBUSY", name)
        self._delete(ino)

    def rename(self, od, oname, nd, nname):
        """rename(2) (vfat_rename): the entry moves to nname in nd, a file
        in the way is unlinked (an empty directory removed) first; the
        inode keeps its identity, so open files and mappings follow it.
        The new entry is written before the old one is cleared, so a
        failure (ENOSPC) leaves the old name."""
        if self.read_only:
            raise KernelError("EROFS", self.dev.name)
        ino = self.lookup(od, oname)
        if ino is None:
            raise KernelError("ENOENT", oname)
        check_name(nname)
        old = self.lookup(nd, nname)
        if old is not None and old is not ino:
            (self.rmdir if old.is_dir else self.unlink)(nd, nname)
        if old is ino:                  # another case of the same name: clear it first
            self._remove_entry(ino)
            try:
                new = self._add_entry(nd, nname, ino.attr, ino.first)
            except KernelError:
                self._add_entry(od, oname, ino.attr, ino.first)
                raise
        else:
            new = self._add_entry(nd, nname, ino.attr, ino.first)
            self._remove_entry(ino)
        if ino.is_dir:                  # its children's dentries are keyed by its old place
            key = ino.key()
            for dk in [dk for dk in self.dcache if dk[0] == key]:
                self._obj_free(self.dentry_cachep, self.dcache.pop(dk).va)
        self._unhash(ino)
        ino.parent, ino.name = nd, nname
        ino.off, ino.lfn_off, ino.short = new
        self.icache[ino.key()] = ino
        nd.nchildren += 1
        if ino.is_dir and od is not nd:     # its ".." names the new parent
            dotdot = self.cluster_off(ino.first) + DIRENT
            pf = 0 if nd.parent is None else nd.first
            ent = bytearray(self.bc.read(dotdot, DIRENT))
            struct.pack_into("<HHHH", ent, 20, (pf >> 16) if self.fat32 else 0, 0, DATE, pf & 0xFFFF)
            self.bc.write(dotdot, bytes(ent))
        self.mark_inode_dirty(ino)      # size and first cluster reach the new entry at sync

    def _delete(self, ino):
        if ino.refs:
            if ino.is_dir:
                raise KernelError("EBUSY", "%s is in use" % ino.name)
            self._orphan(ino)
            return
        if ino.mapping is not None:
            self.cache.truncate_pages(ino.mapping, 0)
        cl = self.clusters_of(ino)
        self._remove_entry(ino)
        if ino.is_dir:
            for c in cl:
                self.bc.forget(self.cluster_off(c), self.clus_size)
        self.free_chain(cl)
        ino.deleted = True
        ino.dirty = False
        self._forget_inode(ino)

    def _orphan(self, ino):
        """Unlink of a file that is still mapped (Linux: i_nlink drops to 0,
        the inode lives on until its last iput, then fat_evict_inode
        truncates it): the name goes now, so it can be reused; the inode,
        its page cache and its clusters stay (faults and writeback still
        reach them) until evict_orphan, when the last pin goes."""
        self._remove_entry(ino)
        self._unhash(ino)
        self.dirty_inodes.pop(id(ino), None)
        ino.deleted = True              # write_inode: no directory entry to update
        ino.dirty = False
        self.orphans.append(ino)

    def evict_orphan(self, ino):
        """The last pin of an unlinked file went: its pages, then its clusters."""
        self.orphans.remove(ino)
        cl = self.clusters_of(ino)
        if ino.mapping is not None:
            self.cache.truncate_pages(ino.mapping, 0)
        self.free_chain(cl)
        self._forget_inode(ino)

    # -- file data
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
        Extends the file (zero-filling a gap); ENOSPC after writing what
        fits. Returns bytes written."""
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
        end = off + n
        err = None
        try:
            self._ensure_clusters(ino, end)
        except KernelError as exc:
            if exc.errname != "ENOSPC":
                raise
            err = exc
            end = min(end, len(self.clusters_of(ino)) * self.clus_size)
            if end <= off:
                raise
        start = min(off, ino.size)
        self._write_range(ino, start, end, data, fill, off)
        if err is not None:
            raise KernelError("ENOSPC", "%s: disk full after %d of %d bytes" % (
                self.dev.name, end - off, n))
        return end - off

    def _write_range(self, ino, start, end, data, fill, off):
        """Copy into the cache for [start, end): zeros before `off` (a gap
        past the old EOF), then data/fill. Pages are dirtied as they go and
        the file grows with them."""
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
            if pos > ino.size:
                ino.size = pos
                self.mark_inode_dirty(ino)
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
        keep = (size + self.clus_size - 1) // self.clus_size
        cl = self.clusters_of(ino)
        if keep < len(cl):
            if keep:
                self.fat_set(cl[keep - 1], self.eoc_mark)
            else:
                ino.first = 0
            self.free_chain(cl[keep:])
            del cl[keep:]
        ino.size = size
        self.mark_inode_dirty(ino)

    # -- sync and statistics
    def sync(self):
        """Data pages, then directory entries and FSInfo, then the buffer
        cache; then the disk's write cache. The first error is raised after
        everything else was tried."""
        first_err = None
        for ino in list(self.icache.values()) + self.orphans:
            m = ino.mapping
            if m is not None and m.dirty:
                try:
                    self.cache.writeback_mapping(m)
                except KernelError as exc:
                    first_err = first_err or exc
        for ino in list(self.dirty_inodes.values()):
            self.write_inode(ino)
        self.dirty_inodes = {}
        if self.fat32 and self.fsinfo_off and self.fsinfo_dirty:
            free = self.free_clusters if self.free_clusters is not None else 0xFFFFFFFF
            self.bc.write(self.fsinfo_off + 488, struct.pack("<II", free, self.next_free))
        self.fsinfo_dirty = False
        try:
            self.bc.sync()
            self.dev.flush()
        except KernelError as exc:
            first_err = first_err or exc
        if first_err is not None:
            raise first_err

    def statfs(self):
        """(block size, total blocks, free blocks)."""
        return self.clus_size, self.nclusters, self.count_free()

    def nr_dirty_pages(self):
        return sum(len(i.mapping.dirty) for i in self.icache.values() if i.mapping is not None)

    def umount(self):
        self.sync()
        for ino in list(self.icache.values()) + self.orphans:
            if ino.refs and ino is not self.root:
                raise KernelError("EBUSY", "%s is in use" % ino.name)
        for ino in list(self.icache.values()):
            if ino is not self.root:
                self._forget_inode(ino)
        for k in list(self.dcache):
            self._obj_free(self.dentry_cachep, self.dcache.pop(k).va)
        self.bc.release()
