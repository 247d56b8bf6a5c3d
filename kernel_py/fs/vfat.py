# FAT as the VFS sees it (Linux's fs/fat/namei_vfat.c, file.c, inode.c's
# fat_getattr): the SuperBlock methods over FatFs's public ones (lookup,
# readdir, create, mkdir, unlink, rmdir, rename, read, write, truncate,
# statfs, sync). FAT's inode stays fs/fat.py's FatInode.
#
# What FAT cannot say is made up the way Linux's vfat makes it up: every
# file has mode 0755 (the mounter's umask 022 as fmask and dmask; a file
# with ATTR_READ_ONLY loses its write bits), uid and gid 0, one link (two
# for a directory: Linux counts the subdirectories, fat_subdirs, which
# costs a directory scan here). fat.py keeps no times in its inodes and
# writes one fixed date, so every time is the boot time. Inode numbers are
# fat.py's (made up as inodes enter its cache, as Linux's iunique); a
# directory listing gives made-up numbers too (fat_readdir uses iunique for
# an entry not in the inode cache), so d_ino need not match st_ino.
# No symlinks (EPERM) and no hard links (EPERM), as vfat.

from kernel_py.fs.fat import ATTR_DIRECTORY, ATTR_READ_ONLY
from kernel_py.fs.inode import DT_DIR, DT_REG, Kstat, SuperBlock, name_hash
from kernel_py.fs.magic import MSDOS_SUPER_MAGIC
from kernel_py.fs.mode import S_IALLUGO, S_IFDIR, S_IFREG
from kernel_py.lib.errors import KernelError

FAT_MAX_BYTES = 0xFFFFFFFF          # 4 GiB - 1: MAX_NON_LFS... FAT's s_maxbytes


class VfatSuper(SuperBlock):
    fstype = "vfat"
    magic = MSDOS_SUPER_MAGIC
    namelen = 1530                  # FAT_LFN_LEN * NLS_MAX_CHARSET_SIZE (fat_statfs)
    max_bytes = FAT_MAX_BYTES

    def __init__(self, k, fs):
        SuperBlock.__init__(self, k, fs.dev)
        self.fat = fs
        self.root = fs.root
        self.blksize = fs.clus_size

    @property
    def read_only(self):
        return self.fat.read_only

    def boot_time(self):
        tk = self.k.time
        return tk.realtime_base if tk is not None else 0

    # -- attributes
    def mode(self, ino):
        m = S_IFDIR | 0o755 if ino.is_dir else S_IFREG | 0o755
        if ino.attr & ATTR_READ_ONLY:
            m &= ~0o222
        return m

    def size(self, ino):
        return ino.size

    def setattr(self, ino, mode=None, atime=None, mtime=None, uid=None, gid=None):
        """fat_setattr: FAT keeps no owner and no permission bits but
        ATTR_READ_ONLY, and fat_sanitize_mode_change refuses (EPERM) a mode
        other than the one shown (clearing the w bits, which Linux stores as
        ATTR_READ_ONLY, is refused too: no attribute is written back here).
        Times are accepted and not kept: this FAT writes a fixed date into
        its entries (fs/fat/dir.py) and stat shows the boot time."""
        if mode is not None and (mode & S_IALLUGO) != self.mode(ino) & S_IALLUGO:
            raise KernelError("EPERM", "vfat: mode %o cannot be stored" % (mode & S_IALLUGO))
        if uid not in (None, 0) or gid not in (None, 0):
            raise KernelError("EPERM", "vfat: every file is the mount's (uid 0, gid 0)")

    def getattr(self, ino):
        fat = self.fat
        blocks = 0
        if not ino.is_dir or ino.parent is not None or fat.fat32:
            try:
                blocks = len(fat.clusters_of(ino)) * fat.clus_size >> 9
            except KernelError:
                blocks = 0
        size = ino.size
        if ino.is_dir:
            size = blocks << 9          # Linux reports a directory's allocated size
        t = self.boot_time()
        # fat_unlink's clear_nlink: a file unlinked while open has no links
        nlink = 0 if ino.deleted else 2 if ino.is_dir else 1
        return Kstat(self.st_dev, ino.i_ino, self.mode(ino), nlink, size,
                     fat.clus_size, blocks, 0, t, t, t)

    # -- names
    def lookup(self, d, name):
        return self.fat.lookup(d, name)

    def readdir(self, d):
        out = []
        base = d.i_ino << 16
        for name, attr, size in self.fat.readdir(d):
            out.append((name, (base ^ name_hash(name.lower())) & 0x7FFFFFFF | 0x100,
                        DT_DIR if attr & ATTR_DIRECTORY else DT_REG))
        return out

    def create(self, d, name, mode):
        return self.fat.create(d, name)

    def mkdir(self, d, name, mode):
        return self.fat.mkdir(d, name)

    def unlink(self, d, name):
        self.fat.unlink(d, name)

    def rmdir(self, d, name):
        self.fat.rmdir(d, name)

    def rename(self, od, oname, nd, nname):
        self.fat.rename(od, oname, nd, nname)

    # -- pins: what Vfs.get_file / put_file do for a mapping
    def pin(self, ino):
        if not ino.is_dir:
            self.fat.mapping_of(ino)
        ino.refs += 1

    def unpin(self, ino):
        ino.refs -= 1
        if not ino.refs and ino.deleted:
            self.fat.evict_orphan(ino)      # unlinked while open: now it goes

    # -- data
    def read(self, ino, off, n):
        return bytes(self.fat.read(ino, off, n))

    def write(self, ino, off, data):
        try:
            return self.fat.write(ino, off, data)
        except KernelError as e:
            # stopped part way (ENOSPC after what fits, ENOMEM, EIO): a
            # short write, as generic_perform_write returns it; nothing
            # written at all is the error
            written = getattr(e, "written", 0)
            if written:
                return written
            raise

    def truncate(self, ino, size):
        self.fat.truncate(ino, size)

    def sync(self):
        self.fat.sync()

    def fsync(self, ino):
        # fat_file_fsync writes the inode's pages and the metadata; the
        # whole file system here (fat.py syncs as one)
        self.fat.sync()

    def statfs(self):
        return self.fat.statfs()
