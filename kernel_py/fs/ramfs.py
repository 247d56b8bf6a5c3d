# ramfs (Linux's fs/ramfs/inode.c, file-mmu.c, fs/libfs.c's simple_*
# operations): the root file system, and /dev (devtmpfs is one too here).
# A file's data lives in the page cache (its AddressSpace, this inode the
# host), as Linux's ramfs keeps it: pages with nothing behind them, which
# must never be reclaimed. Linux marks the mapping unevictable; this page
# cache has no unevictable list, so ramfs holds one reference of its own on
# every page of its files (taken as a page enters the cache: on a write, or
# in readpages when a fault maps a hole), which makes the page busy for
# reclaim and drop_caches (count > 1: never "reclaimable") until the file
# is truncated or freed. Pages are never written back (writepages does
# nothing: there is nowhere to write them), so they count as Cached, not
# Dirty — Linux's ramfs pages never become dirty either
# (noop_dirty_folio).
#
# Each inode takes an `inode_cache` object and each name a `dentry` object
# (fs/file_table.py), kept until unlink, as ramfs keeps its dentries
# pinned in the dcache; kmemleak finds them by walking the tree from the
# root (scan_refs).
#
# tmpfs (mm/filemap/shmem.py) is this file system with its pages counted as
# shmem (hold_page / release_page are the seam).

from kernel_py.fs.inode import MAX_LFS_FILESIZE, Inode, SuperBlock
from kernel_py.fs.magic import RAMFS_MAGIC
from kernel_py.fs.pipe import fifo_open
from kernel_py.fs.mode import (
    S_IALLUGO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_ISDIR, S_ISFIFO, S_ISLNK, S_ISREG,
    dtype_of,
)
from kernel_py.lib.errors import KernelError
from kernel_py.mm.filemap.filemap import AddressSpace

PAGE_SHIFT = 12
PAGE_SIZE = 4096


class RamInode(Inode):
    def __init__(self, sb, mode, rdev=0):
        Inode.__init__(self, sb, mode, rdev)
        self.children = {} if self.is_dir else None     # name -> (inode, dentry va)
        self.target = None              # a symlink's target (str)
        self.mapping = None             # a regular file's AddressSpace
        self.parent = None              # a directory's parent (for ..)

    # -- the page-cache host interface (mm/filemap/filemap.py)
    def readpages(self, mapping, run):
        """A fault (or a partial write) reached a hole: zeroed pages, each
        pinned by ramfs from now on."""
        sb = self.sb
        for idx, pa in run:
            sb.hw.fill(pa, 0, PAGE_SIZE)
            sb.hold_page(pa)

    def writepages(self, mapping, batch):
        pass                            # nowhere to write: the page is the file


class RamFs(SuperBlock):
    fstype = "ramfs"
    magic = RAMFS_MAGIC
    max_bytes = MAX_LFS_FILESIZE

    def __init__(self, k, fstype="ramfs"):
        self.fstype = fstype
        SuperBlock.__init__(self, k)
        self.hw = k.hw
        self.cache = k.pagecache
        self.files = k.vfs.files
        self.nr_inodes = 0
        self.root = self.new_inode(S_IFDIR | 0o755)
        self.root.parent = self.root
        self.root.refs = 1              # the mount holds it

    # -- inodes
    inode_class = RamInode

    def new_inode(self, mode, rdev=0):
        ino = self.inode_class(self, mode, rdev)
        ino.va = self.files.obj_alloc(self.files.inode_cache, "alloc_inode")
        self.nr_inodes += 1
        return ino

    def free_inode(self, ino):
        if ino.mapping is not None:
            self.drop_pages(ino, 0)
            self.cache.release_mapping(ino.mapping)
            ino.mapping = None
        self.files.obj_free(self.files.inode_cache, ino.va)
        ino.va = 0
        self.nr_inodes -= 1

    def iput_final(self, ino):
        """nlink and pins are gone: the inode and its pages go."""
        if ino.nlink <= 0 and ino.refs <= 0 and ino.va:
            self.free_inode(ino)

    def pin(self, ino):
        ino.refs += 1

    def unpin(self, ino):
        ino.refs -= 1
        if ino.refs <= 0 and ino.deleted:
            self.iput_final(ino)

    def evict_orphan(self, ino):
        """A file-backed mapping's last reference (Vfs.put_file) of an unlinked file."""
        self.iput_final(ino)

    def mapping_of(self, ino):
        if ino.mapping is None:
            ino.mapping = AddressSpace(self.cache, ino, name=ino.name)
            self.mapping_flags(ino.mapping)
        return ino.mapping

    def mapping_flags(self, mapping):
        """ramfs_get_inode's mapping_set_unevictable: reclaim leaves the
        pages alone, mapped or not (the page is the file)."""
        mapping.unevictable = True
        mapping.fs_refs = 1             # hold_page's

    def scan_refs(self, out):
        """kmemleak's walk (fs/file_table.py) of what Linux's scan reads
        from the super block down: s_root, each dentry of the tree and its
        d_inode (a FIFO's i_pipe with it). An unlinked inode is not here: an
        open File or a mapping reaches it."""
        todo = [self.root]
        self.root.scan_refs(out)
        while todo:
            d = todo.pop()
            for ino, va in d.children.values():
                out.append(va)
                ino.scan_refs(out)
                if ino.is_dir:
                    todo.append(ino)

    # -- names
    def lookup(self, d, name):
        e = d.children.get(name)
        return e[0] if e is not None else None

    def readdir(self, d):
        return [(name, e[0].i_ino, dtype_of(e[0].mode)) for name, e in d.children.items()]

    def _add(self, d, name, ino):
        if name in d.children:
            raise KernelError("EEXIST", name)
        va = self.files.obj_alloc(self.files.dentry, "d_alloc")
        d.children[name] = (ino, va)
        ino.name = name
        d.mtime = d.ctime = self.now()

    def _drop(self, d, name):
        ino, va = d.children.pop(name)
        self.files.obj_free(self.files.dentry, va)
        d.mtime = d.ctime = self.now()
        return ino

    def _make(self, d, name, mode, rdev=0):
        if name in d.children:
            raise KernelError("EEXIST", name)
        ino = self.new_inode(mode, rdev)
        try:
            self._add(d, name, ino)
        except KernelError:
            self.free_inode(ino)
            raise
        return ino

    def create(self, d, name, mode):
        return self._make(d, name, S_IFREG | (mode & 0o7777))

    def mkdir(self, d, name, mode):
        ino = self._make(d, name, S_IFDIR | (mode & 0o7777))
        ino.parent = d
        d.nlink += 1
        return ino

    def mknod(self, d, name, mode, rdev):
        return self._make(d, name, mode, rdev)

    def symlink(self, d, name, target):
        ino = self._make(d, name, S_IFLNK | 0o777)
        ino.target = target
        ino.size = len(target.encode())
        return ino

    def link(self, ino, d, name):
        if ino.is_dir:
            raise KernelError("EPERM", "hard link to a directory")
        self._add(d, name, ino)
        ino.nlink += 1
        ino.ctime = self.now()

    def _unlinked(self, ino):
        ino.nlink -= 1
        ino.ctime = self.now()
        if ino.nlink <= 0:
            if ino.refs > 0:
                ino.deleted = True      # an open file or a mapping keeps it
            else:
                self.free_inode(ino)

    def unlink(self, d, name):
        ino = self.lookup(d, name)
        if ino is None:
            raise KernelError("ENOENT", name)
        if ino.is_dir:
            raise KernelError("EISDIR", name)
        self._drop(d, name)
        self._unlinked(ino)

    def rmdir(self, d, name):
        ino = self.lookup(d, name)
        if ino is None:
            raise KernelError("ENOENT", name)
        if not ino.is_dir:
            raise KernelError("ENOTDIR", name)
        if ino.children:
            raise KernelError("ENOTEMPTY", name)
        self._drop(d, name)
        d.nlink -= 1
        ino.nlink = 1                   # its "." goes with it (simple_rmdir's drop_nlink)
        self._unlinked(ino)

    def rename(self, od, oname, nd, nname):
        """simple_rename: the checks of vfs_rename (types, emptiness) are
        namei's; a target in the way is unlinked."""
        ino = self.lookup(od, oname)
        if ino is None:
            raise KernelError("ENOENT", oname)
        old = self.lookup(nd, nname)
        if old is ino:
            return
        if old is not None:
            if old.is_dir:
                if old.children:
                    raise KernelError("ENOTEMPTY", nname)
                self.rmdir(nd, nname)
            else:
                self.unlink(nd, nname)
        e = od.children.pop(oname)
        nd.children[nname] = e
        ino.name = nname
        if ino.is_dir and od is not nd:
            od.nlink -= 1
            nd.nlink += 1
            ino.parent = nd
        now = self.now()
        od.mtime = od.ctime = nd.mtime = nd.ctime = ino.ctime = now

    def get_link(self, ino, t):
        if not S_ISLNK(ino.mode):
            raise KernelError("EINVAL", "not a symbolic link")
        return ino.target

    # -- data (through the page cache)
    def hold_page(self, pa):
        """A page entered a file: ramfs's own reference (tmpfs counts it too)."""
        self.cache.get_page(pa)

    def release_page(self, pa):
        """A page leaves a file (truncate, the last unlink): that reference goes."""
        self.cache.put_page(pa)

    def read(self, ino, off, n):
        if not S_ISREG(ino.mode):
            raise KernelError("EINVAL" if not S_ISDIR(ino.mode) else "EISDIR", ino.name)
        size = ino.size
        if off >= size or n <= 0:
            return b""
        n = min(n, size - off)
        m = ino.mapping
        out = bytearray(n)
        pos = off
        end = off + n
        pages = m.pages if m is not None else {}
        mem = self.hw.mem
        while pos < end:
            idx = pos >> PAGE_SHIFT
            po = pos & (PAGE_SIZE - 1)
            take = min(end - pos, PAGE_SIZE - po)
            pa = pages.get(idx)
            if pa is not None:              # else a hole: zeros
                out[pos - off:pos - off + take] = mem(pa + po, take)
            pos += take
        ino.atime = self.now()
        return bytes(out)

    def write(self, ino, off, data):
        if not S_ISREG(ino.mode):
            raise KernelError("EINVAL", ino.name)
        n = len(data)
        if not n:
            return 0
        m = self.mapping_of(ino)
        cache = self.cache
        hw = self.hw
        if type(data) is not memoryview:
            data = memoryview(data)
        pos = off
        end = off + n
        while pos < end:
            idx = pos >> PAGE_SHIFT
            po = pos & (PAGE_SIZE - 1)
            take = min(end - pos, PAGE_SIZE - po)
            had = idx in m.pages
            whole = po == 0 and (take == PAGE_SIZE or pos + take >= ino.size)
            try:
                pa = cache.grab_page(m, idx, whole)
            except KernelError:
                if pos > off:
                    break                   # a short write: what fits
                raise
            if not had and idx in m.pages and cache.page_count(pa) == 1:
                self.hold_page(pa)          # ramfs's own reference (readpages took it on a read)
            hw.writebytes(pa + po, data[pos - off:pos - off + take])
            pos += take
            if pos > ino.size:
                ino.size = pos
        ino.mtime = ino.ctime = self.now()
        return pos - off

    def drop_pages(self, ino, start):
        """Pages at index >= start leave the file: ramfs's reference first,
        then the cache's (truncate_pages unmaps them from every mapping)."""
        m = ino.mapping
        if m is None:
            return
        for idx in list(m.pages):
            if idx >= start:
                self.release_page(m.pages[idx])
        self.cache.truncate_pages(m, start)

    def truncate(self, ino, size):
        if not S_ISREG(ino.mode):
            raise KernelError("EISDIR" if ino.is_dir else "EINVAL", ino.name)
        if size < 0:
            raise KernelError("EINVAL", "size %d" % size)
        if size < ino.size:
            self.drop_pages(ino, (size + PAGE_SIZE - 1) >> PAGE_SHIFT)
            po = size & (PAGE_SIZE - 1)
            m = ino.mapping
            if po and m is not None:
                pa = m.pages.get(size >> PAGE_SHIFT)
                if pa is not None:
                    self.hw.fill(pa + po, 0, PAGE_SIZE - po)
        ino.size = size
        ino.mtime = ino.ctime = self.now()

    def open(self, ino, f, t):
        """A FIFO opens onto its pipe (init_special_inode's pipefifo_fops)."""
        if S_ISFIFO(ino.mode):
            return fifo_open(self.k, ino, f)
        return SuperBlock.open(self, ino, f, t)

    def setattr(self, ino, mode=None, atime=None, mtime=None, uid=None, gid=None):
        """simple_setattr: the inode is the only record."""
        if uid is not None or gid is not None:
            ino.uid = ino.uid if uid is None else uid
            ino.gid = ino.gid if gid is None else gid
            if not S_ISDIR(ino.mode):
                mode = (ino.mode if mode is None else mode) & ~0o6000   # chown clears set-id
        if mode is not None:
            ino.mode = (ino.mode & S_IFMT) | (mode & S_IALLUGO)
        if atime is not None:
            ino.atime = atime
        if mtime is not None:
            ino.mtime = mtime
        ino.ctime = self.now()

    def getattr(self, ino):
        st = SuperBlock.getattr(self, ino)
        m = ino.mapping
        st.blocks = (len(m.pages) << 3) if m is not None else 0
        if S_ISLNK(ino.mode) or ino.is_dir:
            st.blocks = 0
        return st

    def statfs(self):
        return PAGE_SIZE, 0, 0

