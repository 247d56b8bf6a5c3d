# The VFS's generic objects (Linux's include/linux/fs.h, fs/inode.c,
# fs/super.c, include/uapi/linux/stat.h): the file-type and permission bits,
# the inode of the in-memory file systems (ramfs, procfs, devtmpfs, pipefs,
# anon inodes), and SuperBlock, which is a mounted file system's
# super_operations and inode_operations together.
#
# The seam. Everything above a file system — path lookup (fs/namei.py),
# open (fs/open.py), stat, getdents, read/write of regular files
# (fs/libfs.py) — calls only SuperBlock methods, never a file system's own
# classes: lookup, readdir, getattr/mode, create, mkdir, mknod, unlink,
# rmdir, rename, link, symlink, get_link, open, read, write, truncate, pin,
# unpin, sync. FAT keeps its own inode (fs/fat.py's FatInode) behind an
# adapter (fs/vfat.py); the in-memory file systems use Inode below. A tmpfs
# whose pages are shmem replaces ramfs (fs/ramfs.py) by providing the same
# methods; nothing above changes.
#
# The defaults answer as Linux answers for an inode_operations without the
# method: create EACCES (lookup_open), mkdir/mknod/symlink/link/rename/
# unlink/rmdir EPERM (vfs_mkdir and friends), readlink EINVAL.

from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.fs import libfs
from kernel_py.fs.mode import S_ISDIR
from kernel_py.lib.errors import KernelError

# d_type (include/linux/fs_types.h): the file type bits shifted down
DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12

# the *at calls (include/uapi/linux/fcntl.h)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000

PATH_MAX = 4096                 # with the NUL
NAME_MAX = 255
MAXSYMLINKS = 40                # ELOOP after this many links in one lookup
MAX_LFS_FILESIZE = 0x7FFFFFFFFFFFFFFF


def new_encode_dev(major, minor):
    """dev_t as stat reports it (include/linux/kdev_t.h new_encode_dev)."""
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def new_decode_dev(dev):
    """(major, minor) of a dev_t from user space (new_decode_dev)."""
    return (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


def name_hash(s):
    """A stable 31-bit FNV-1a of a str: inode numbers of the pseudo files,
    which Linux makes up as it instantiates them (proc_get_inode)."""
    h = 0x811C9DC5
    for c in s.encode():
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) | 0x10000


class AnonDev:
    """The device of a file system without one (get_anon_bdev: major 0):
    what a file-backed mapping's f.fs.dev needs (major, minor, flush)."""

    def __init__(self, minor, name):
        self.major = 0
        self.minor = minor
        self.name = name

    def flush(self):
        pass


class Kstat:
    """struct kstat: what stat and statx report (times in ns since the epoch)."""

    def __init__(self, dev, ino, mode, nlink, size, blksize, blocks, rdev=0,
                 atime=0, mtime=0, ctime=0):
        self.dev = dev
        self.ino = ino
        self.mode = mode
        self.nlink = nlink
        self.uid = 0
        self.gid = 0
        self.rdev = rdev
        self.size = size
        self.blksize = blksize
        self.blocks = blocks
        self.atime = atime
        self.mtime = mtime
        self.ctime = ctime


class Inode:
    """The inode of the in-memory file systems (struct inode's generic part)."""

    def __init__(self, sb, mode, rdev=0):
        self.sb = sb
        self.fs = sb                    # what file-backed mappings call their file system
        self.i_ino = sb.next_ino()
        self.mode = mode
        self.is_dir = S_ISDIR(mode)
        self.nlink = 2 if self.is_dir else 1
        self.size = 0
        self.rdev = rdev                # (major, minor) of a device node
        now = sb.now()
        self.atime = self.mtime = self.ctime = now
        self.uid = self.gid = 0         # every task is root: files are root's until chown
        self.pipe = None                # i_pipe: a FIFO's pipe while it is open (fs/pipe.py)
        self.refs = 0                   # pins: open files, mappings (iget/iput)
        self.deleted = False            # nlink reached 0 while pinned
        self.name = ""                  # for messages and the page cache's name
        self.va = 0                     # its inode_cache object, where it has one

    @property
    def i_size(self):
        return self.size

    def scan_refs(self, out):
        """Its inode_cache object and, for an open FIFO or a pipe's inode,
        i_pipe's objects (kmemleak's walk, fs/file_table.py)."""
        if self.va:
            out.append(self.va)
        if self.pipe is not None:
            self.pipe.scan_refs(out)


class SuperBlock:
    """A mounted file system (super_block + super_operations +
    inode_operations). Subclasses override what they support."""

    fstype = "?"
    magic = 0                       # statfs's f_type (fs/magic.py)
    namelen = NAME_MAX              # statfs's f_namelen
    read_only = False
    max_bytes = MAX_LFS_FILESIZE    # s_maxbytes: EFBIG past it
    blksize = PAGE_SIZE

    def __init__(self, k, dev=None):
        self.k = k
        if dev is None:
            dev = AnonDev(k.vfs.anon_minor(), self.fstype)
        self.dev = dev
        self.st_dev = new_encode_dev(dev.major, dev.minor)
        self.last_ino = 1
        self.root = None

    def next_ino(self):
        self.last_ino += 1
        return self.last_ino

    def scan_refs(self, out):
        """The slab addresses its inode and dentry tree holds (kmemleak's
        walk, fs/file_table.py); none for a file system without objects."""
        pass

    def now(self):
        """CLOCK_REALTIME in ns (the boot time before the clocks exist)."""
        tk = self.k.time
        return tk.clock_ns(None, 0) if tk is not None else 0

    # -- inode attributes
    def mode(self, ino):
        return ino.mode

    def getattr(self, ino):
        size = ino.size
        st = Kstat(self.st_dev, ino.i_ino, ino.mode, ino.nlink, size, self.blksize,
                   (size + 511) >> 9, new_encode_dev(ino.rdev[0], ino.rdev[1]) if ino.rdev else 0,
                   ino.atime, ino.mtime, ino.ctime)
        st.uid, st.gid = ino.uid, ino.gid
        return st

    def size(self, ino):
        return ino.size

    # -- names
    def lookup(self, d, name):
        return None

    def readdir(self, d):
        """[(name, inode number, d_type)] without . and .."""
        return []

    def create(self, d, name, mode):
        raise KernelError("EACCES", "%s: no files can be created here" % self.fstype)

    def mkdir(self, d, name, mode):
        raise KernelError("EPERM", "%s: no directories can be made here" % self.fstype)

    def mknod(self, d, name, mode, rdev):
        raise KernelError("EPERM", self.fstype)

    def symlink(self, d, name, target):
        raise KernelError("EPERM", "%s has no symbolic links" % self.fstype)

    def link(self, ino, d, name):
        raise KernelError("EPERM", "%s has no hard links" % self.fstype)

    def unlink(self, d, name):
        raise KernelError("EPERM", self.fstype)

    def rmdir(self, d, name):
        raise KernelError("EPERM", self.fstype)

    def rename(self, od, oname, nd, nname):
        raise KernelError("EPERM", self.fstype)

    def get_link(self, ino, t):
        """A symlink's target: a str path, or a namei.Jump (proc's magic links)."""
        raise KernelError("EINVAL", "not a symbolic link")

    def readlink(self, ino, t):
        """The bytes readlink returns."""
        target = self.get_link(ino, t)
        if type(target) is not str:
            target = target.text
        return target.encode()

    # -- open files and data
    def open(self, ino, f, t):
        """The FileOperations of an open of ino (f.flags set), or raise."""
        return libfs.open_by_mode(self, ino, f, t)

    def read(self, ino, off, n):
        raise KernelError("EINVAL", "no data")

    def write(self, ino, off, data):
        raise KernelError("EINVAL", "no data")

    def truncate(self, ino, size):
        raise KernelError("EINVAL", "no data")

    def setattr(self, ino, mode=None, atime=None, mtime=None, uid=None, gid=None):
        """notify_change: a new mode (chmod: permission bits), new times in
        ns (utimensat), a new owner (chown), the ctime set to now."""
        raise KernelError("EPERM", "%s: attributes cannot be changed" % self.fstype)

    def pin(self, ino):
        """iget: the inode stays (an open file, a mapping) until unpin."""
        ino.refs += 1

    def unpin(self, ino):
        ino.refs -= 1

    def sync(self):
        pass

    def statfs(self):
        """(block size, blocks, free blocks): none, for a file system of
        pseudo-files (simple_statfs)."""
        return PAGE_SIZE, 0, 0

    def swap_unuse(self, si):
        """swapoff of area si: pages this file system put there come back
        (tmpfs); nothing for the others."""

    def nr_swap_entries(self):
        """Swap entries this file system holds (tmpfs): the `check` census."""
        return 0

    def statfs_files(self):
        """(inodes, free inodes) for statfs; 0, 0 where there is no limit."""
        return 0, 0

    def fsync(self, ino):
        pass
