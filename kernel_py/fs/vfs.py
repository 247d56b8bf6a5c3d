# The VFS glue: the mount table, path lookup under a mount point, and the
# file operations the console uses. Boot (init) creates the page cache
# (k.pagecache), the block devices' buffer caches come with their FS, and
# the data disk (sda) is mounted at /mnt when it holds a FAT file system.
#
# Two views of the same mounts. The console's commands (cat, ls, write,
# dd, rm... under /mnt) use the block mounts by path prefix (mounts,
# find_mount, lookup, read, write...), as before. Programs see the whole
# namespace (ns: mount point -> SuperBlock, walked by fs/namei.py): a
# ramfs root (fs/ramfs.py) with /bin, /dev (devtmpfs: the console, tty,
# null, zero, full, random, urandom, kmsg), /mnt (the FAT data disk, through
# fs/vfat.py), /proc and /sys (the console's pseudo-files, fs/procfs.py) and
# /tmp. k.vfs.files holds the VFS's slab objects (fs/file_table.py).

from kernel_py.lib.errors import KernelError
from kernel_py.fs.fat import ATTR_DIRECTORY
from kernel_py.fs.fat.super import FatFs
from kernel_py.fs.vfat import VfatSuper
from kernel_py.fs.mount import make_mountpoint
from kernel_py.fs.mount import namespace_file
from kernel_py.fs.mount import init_namespace
from kernel_py.mm.filemap.filemap import PageCache

MOUNT_POINT = "/mnt"
PATTERN_LINE = 32


def pattern(off, n):
    """The bytes `fill FILE N` writes at [off, off+n): page p of the file is
    the 32-byte line "kpy page %08d offset %08x\\n" % (p, p * 4096) repeated,
    so a misplaced page shows on the host."""
    out = []
    while n > 0:
        p = off >> 12
        po = off & 4095
        take = min(n, 4096 - po)
        line = ("kpy page %08d offset %08x\n" % (p, p << 12)).encode()
        page = line * (4096 // PATTERN_LINE)
        out.append(page[po:po + take])
        off += take
        n -= take
    return b"".join(out)


def split_path(path):
    if not path.startswith("/"):
        raise KernelError("EINVAL", "%s: give an absolute path" % path)
    return [p for p in path.split("/") if p and p != "."]


class Mount:
    def __init__(self, point, dev, fs, sb=None):
        self.point = point
        self.dev = dev
        self.fs = fs
        self.sb = sb                # its SuperBlock in the namespace (fs/vfat.py)


class Vfs:
    def __init__(self, k):
        self.k = k
        self.mounts = []            # Mount, in mount order
        self.ns = {}                # mount point -> SuperBlock: the namespace programs walk
        self.files = None           # the VFS's slab objects (fs/file_table.py)
        self.next_anon = 0          # minors of the anonymous devices (get_anon_bdev)
        self.pipefs = None          # where pipe inodes live (fs/pipe.py), mounted nowhere
        self.anon = None            # the anonymous inode of eventfds (fs/anon_inodes.py)
        self.shm_mnt = None         # memfd_create's files (mm/memfd.py): a tmpfs mounted nowhere

    def superblocks(self):
        """Every file system, mounted or internal (shm_mnt): swapoff and
        the swap census visit them all."""
        out = list(self.ns.values())
        if self.shm_mnt is not None:
            out.append(self.shm_mnt)
        return out

    def anon_minor(self):
        self.next_anon += 1
        return self.next_anon

    # -- mounts
    def mount(self, dev, point):
        for m in self.mounts:
            if m.point == point:
                raise KernelError("EBUSY", "%s is already a mount point" % point)
            if m.dev is dev:
                raise KernelError("EBUSY", "%s is already mounted" % dev.name)
        if dev.holder is not None:
            raise KernelError("EBUSY", "%s is in use (%s)" % (dev.name, dev.holder))
        fs = FatFs(self.k, dev)
        dev.holder = "mount " + point
        sb = None
        if "/" in self.ns:
            make_mountpoint(self.k, point)
            sb = VfatSuper(self.k, fs)
            self.ns[point] = sb
        self.mounts.append(Mount(point, dev, fs, sb))
        if self._shrink not in self.k.pagecache.shrinkers:
            self.k.pagecache.shrinkers.append(self._shrink)
        return fs

    def umount(self, point):
        for m in self.mounts:
            if m.point == point or "/dev/" + m.dev.name == point:
                m.fs.umount()
                m.dev.holder = None
                self.mounts.remove(m)
                if self.ns.get(m.point) is m.sb:
                    del self.ns[m.point]
                return
        raise KernelError("EINVAL", "%s: not mounted" % point)

    def _shrink(self):
        return sum(m.fs.shrink() for m in self.mounts)

    def find_mount(self, path):
        """(Mount, components below it) for a path under a mount point, or None."""
        path = path.rstrip("/") or "/"
        for m in self.mounts:
            if path == m.point or path.startswith(m.point + "/"):
                return m, split_path(path[len(m.point):] or "/")
        return None

    def owns(self, path):
        return self.find_mount(path) is not None

    def _resolve(self, path):
        found = self.find_mount(path)
        if found is None:
            raise KernelError("ENOENT", path)
        return found

    def lookup(self, path):
        """(fs, inode) for a path (ENOENT, ENOTDIR)."""
        m, parts = self._resolve(path)
        fs = m.fs
        ino = fs.root
        for name in parts:
            if not ino.is_dir:
                raise KernelError("ENOTDIR", path)
            nxt = fs.lookup(ino, name)
            if nxt is None:
                raise KernelError("ENOENT", path)
            ino = nxt
        return fs, ino

    def lookup_parent(self, path):
        """(fs, directory inode, last name)."""
        m, parts = self._resolve(path)
        if not parts:
            raise KernelError("EBUSY", "%s is a mount point" % path)
        fs = m.fs
        d = fs.root
        for name in parts[:-1]:
            d = fs.lookup(d, name)
            if d is None:
                raise KernelError("ENOENT", path)
            if not d.is_dir:
                raise KernelError("ENOTDIR", path)
        return fs, d, parts[-1]

    def open(self, path, create=False):
        """(fs, inode) of a regular file, created when asked."""
        fs, d, name = self.lookup_parent(path)
        ino = fs.lookup(d, name)
        if ino is None:
            if not create:
                raise KernelError("ENOENT", path)
            ino = fs.create(d, name)
        if ino.is_dir:
            raise KernelError("EISDIR", path)
        return fs, ino

    def get_file(self, path):
        """(fs, inode) of a regular file for a file-backed mapping, pinned
        (kept in the inode cache; an unlink removes the name only, the
        file goes with the last put_file) until put_file; the inode's page
        cache is ino.mapping, its size ino.i_size. Any absolute path of the
        namespace (FAT, ramfs), symlinks followed; under a block mount
        point exactly as before."""
        if self.owns(path) or "/" not in self.ns:
            fs, ino = self.open(path)
            fs.mapping_of(ino)
            ino.refs += 1
            return fs, ino
        return namespace_file(self.k, path)

    def put_file(self, ino):
        if ino.refs <= 0:
            raise KernelError("EINVAL", "put_file: %s not pinned" % ino.name)
        ino.refs -= 1
        if not ino.refs and ino.deleted:
            ino.fs.evict_orphan(ino)        # unlinked while mapped: now it goes

    # -- operations
    def read(self, path, off=0, n=None, sink=None, into=None):
        """The bytes (a bytearray) of [off, off+n); with sink or into, the
        count (see FatFs.read)."""
        fs, ino = self.lookup(path)
        if ino.is_dir:
            raise KernelError("EISDIR", path)
        return fs.read(ino, off, ino.size if n is None else n, sink, into)

    def write(self, path, data=None, off=0, append=False, trunc=False, n=None, fill=0):
        fs, ino = self.open(path, create=True)
        if trunc:
            fs.truncate(ino, 0)
        if append:
            off = ino.size
        return fs.write(ino, off, data, n, fill)

    def truncate(self, path, size):
        fs, ino = self.open(path, create=True)
        fs.truncate(ino, size)

    def unlink(self, path):
        fs, d, name = self.lookup_parent(path)
        fs.unlink(d, name)

    def mkdir(self, path):
        fs, d, name = self.lookup_parent(path)
        fs.mkdir(d, name)

    def rmdir(self, path):
        fs, d, name = self.lookup_parent(path)
        fs.rmdir(d, name)

    def listdir(self, path):
        """[(name, is_dir, size)] sorted by name; a file lists itself."""
        fs, ino = self.lookup(path)
        if not ino.is_dir:
            return [(ino.name, False, ino.size)]
        return sorted((n, bool(a & ATTR_DIRECTORY), s) for n, a, s in fs.readdir(ino))

    def sync(self):
        first_err = None
        for m in self.mounts:
            try:
                m.fs.sync()
            except KernelError as exc:
                first_err = first_err or exc
        # anything else dirty (block devices without an FS)
        cache = self.k.pagecache
        for mp in list(cache.mappings.values()):
            if mp.dirty:
                try:
                    cache.writeback_mapping(mp)
                except KernelError as exc:
                    first_err = first_err or exc
        if first_err is not None:
            raise first_err


def reclaim_hook(cache):
    """Until reclaim lands (mm/reclaim/vmscan.py), direct reclaim in the buddy's
    slow path frees clean page-cache pages."""
    def reclaim(gfp, order):
        return cache.shrink_page_cache(max(32, 2 << order))
    return reclaim


def init(k):
    """Boot: the page cache, the VFS, and /mnt from sda when it holds FAT.
    Reads one or two sectors; never scans the disk."""
    blk = k.blk
    cache = PageCache(k.hw, k.mem_map, k.buddy, blk)
    k.pagecache = cache
    k.vfs = Vfs(k)
    if k.buddy.reclaim is None:
        k.buddy.reclaim = reclaim_hook(cache)
    init_namespace(k)
    if blk is None or "sda" not in blk.devices or "nomount" in k.params:
        return
    try:
        fs = k.vfs.mount(blk.devices["sda"], MOUNT_POINT)
    except KernelError as exc:
        k.printk("vfs: sda not mounted: %s" % exc.line())
        return
    k.printk("FAT-fs (sda): mounted %s on %s, %d clusters of %d bytes" % (
        fs.type_name, MOUNT_POINT, fs.nclusters, fs.clus_size))
