# FAT directories (Linux fs/fat/dir.c, namei_vfat.c): 32-byte entries in
# the directory's clusters (FAT16's root: a fixed region after the FATs),
# read and written through the buffer cache. A name that does not fit 8.3
# as typed gets VFAT long-name entries (13 UCS-2 characters each, checksum
# of the short alias) before a numeric-tail short alias (NAME~1.EXT).
# lookup is case-insensitive and fills the dcache; create, mkdir, unlink
# and rmdir edit the entries; an unlinked file that is still mapped keeps
# its inode and clusters until its last pin goes (an orphan, evicted in
# fs/fat/inode.py).

import struct

from kernel_py.lib.errors import KernelError
from kernel_py.fs.fat import ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_ID, DATE, DIRENT
from kernel_py.arch.x86.cpu import PAGE_SIZE

NT_LOWER_BASE = 0x08
NT_LOWER_EXT = 0x10

FREE_ENT = 0xE5
LFN_LAST = 0x40
LFN_CHARS = 13
MAX_NAME = 255

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


class FatDir:
    """The directory half of a FatFs (fs/fat/super.py)."""

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
                va = self.dentry_alloc(ino, name)
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
            va = self.dentry_alloc(ino, name)
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

    def _init_dir_cluster(self, d, c):
        """A new directory's cluster: zeroed, then "." and ".."."""
        self.bc.fill(self.cluster_off(c), 0, self.clus_size)
        parent_first = 0 if d.parent is None else d.first
        for i, nm, target in ((0, b".          ", c), (1, b"..         ", parent_first)):
            e = bytearray(DIRENT)
            e[0:11] = nm
            e[11] = ATTR_DIRECTORY
            struct.pack_into("<HHHHHHHI", e, 14, 0, DATE, DATE,
                             (target >> 16) if self.fat32 else 0, 0, DATE, target & 0xFFFF, 0)
            self.bc.write(self.cluster_off(c) + i * DIRENT, bytes(e))

    def mkdir(self, d, name):
        if self.lookup(d, name) is not None:
            raise KernelError("EEXIST", name)
        check_name(name)
        cl = self.alloc_clusters(1, 0)
        c = cl[0]
        try:
            self._init_dir_cluster(d, c)
            off, lfn_off, short = self._add_entry(d, name, ATTR_DIRECTORY, c)
            ino = self._iget_new(d, (name, short, ATTR_DIRECTORY, c, 0, off, lfn_off, 0))
        except KernelError:
            # the cluster goes back whatever failed (a lost cluster for
            # fsck otherwise), as fat_mkdir's out_free
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
        # the chain's FAT pages before the entry goes: a failed read after
        # it would leave the chain reachable from nothing (lost clusters)
        self.fat_prepare(cl)
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
