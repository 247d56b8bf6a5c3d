# The FAT super block (Linux fs/fat/inode.c's fill_super, statfs, sync;
# fs/fat/misc.c's FSInfo): the boot sector's geometry read at mount
# (FAT16 or FAT32, as Linux decides: FAT32 when the 16-bit FAT size is 0,
# else the cluster count tells FAT12, refused, from FAT16), FSInfo's free
# count and next-free hint, sync and umount, and the slab caches the
# inodes and dentries are accounted in.

import struct

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.fs.buffer import BufferCache
from kernel_py.fs.fat import ATTR_DIRECTORY, DIRENT
from kernel_py.fs.fat.dir import FatDir
from kernel_py.fs.fat.fatent import FatTable
from kernel_py.fs.fat.inode import INODE_OBJ_SIZE, FatFile, FatInode
from kernel_py.fs.file_table import DENTRY_SIZE
from kernel_py.mm.debug import kmemleak
from kernel_py.mm.slab.common import SLAB_RECLAIM_ACCOUNT


class FatFs(FatTable, FatDir, FatFile):
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
        for attr, name, size in (("inode_cachep", "fat_inode_cache", INODE_OBJ_SIZE),
                                 ("dentry_cachep", "dentry", DENTRY_SIZE)):
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
        n = cachep.object_size          # the whole object: no stale bytes
        self.hw.writebytes(va - DIRECT_MAP_BASE, data[:n] + bytes(max(0, n - len(data))))
        return va

    def _obj_free(self, cachep, va):
        if cachep is not None and va:
            cachep.free(va)

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


def cached_objects(k):
    """kmemleak's root for FAT's objects: its inode and dentry caches, the
    Python dicts that stand for Linux's inode_hashtable and
    dentry_hashtable (memory Linux's scan reads), and the unlinked inodes
    still pinned, which Linux reaches through the file or mapping pinning
    them. A dentry's object also names its inode (d_inode): that reference
    is in scanned memory, as in Linux."""
    out = []
    vfs = k.vfs
    for m in vfs.mounts if vfs is not None else ():
        fs = m.fs
        if isinstance(fs, FatFs):
            out += [ino.va for ino in list(fs.icache.values()) + fs.orphans if ino.va]
            out += [den.va for den in fs.dcache.values() if den.va]
    return out


kmemleak.register_root("fat inode and dentry caches", cached_objects)
