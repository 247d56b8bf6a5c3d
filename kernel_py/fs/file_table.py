# The VFS's slab objects (Linux's fs/file_table.c, fs/inode.c, fs/dcache.c
# caches): every open File takes an object of the `filp` cache
# (alloc_empty_file) and gives it back with its last reference; the
# in-memory file systems' inodes and names take `inode_cache` and `dentry`
# objects; pipes and eventfds kmalloc their pipe_inode_info, pipe_buffer
# array and eventfd_ctx. So /proc/slabinfo, the Slab figures and the
# benchmarks' slab_eventfd, slab_hold and pipe measure the real allocators.
#
# The Python objects that hold these addresses (a File's va, an inode's va)
# are what kmemleak cannot see (docs/kmemleak.md, "What the roots are"):
# every address held here is listed by one root, "vfs objects", so a
# scan after open/close, pipe, eventfd, fork, exec and exit loops reports
# exactly the objects nobody holds any more. That root is a registration
# made at allocation and undone at free (as if each object were
# kmemleak_not_leak until freed): it cannot catch a File or pipe the VFS
# forgets to free. Linux finds these through the fd tables, vm_file and
# file->private_data, memory its scan reads; here those holders are Python
# (FdTable, vmas, File), and walking them instead is still to do.
#
# Sizes are Linux 6.1's on x86-64 (pahole): struct file 232 bytes, struct
# inode 600, struct dentry 192, pipe_inode_info 168, pipe_buffer 40 (16 of
# them: PIPE_DEF_BUFFERS), eventfd_ctx 48.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.debug import kmemleak
from kernel_py.mm.slab.common import SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT

FILP_SIZE = 232
INODE_SIZE = 600
DENTRY_SIZE = 192


class FileTable:
    """k.vfs.files: the filp cache and every VFS-held slab address."""

    def __init__(self, k):
        self.k = k
        self.held = {}                  # va -> what holds it (a short name, for debugging)
        self.nr_files = 0               # /proc/sys/fs/file-nr's first figure
        slab = k.slab
        self.filp = self.inode_cache = self.dentry = None
        if slab is not None:
            self.filp = cache(slab, "filp", FILP_SIZE, SLAB_HWCACHE_ALIGN)
            self.inode_cache = cache(slab, "inode_cache", INODE_SIZE, SLAB_RECLAIM_ACCOUNT)
            self.dentry = cache(slab, "dentry", DENTRY_SIZE, SLAB_RECLAIM_ACCOUNT)

    # -- any object
    def obj_alloc(self, cachep, what):
        """An object of cachep (None: no slab layer, 0), held; KernelError ENOMEM."""
        if cachep is None:
            return 0
        va = cachep.alloc()
        if va is None:
            raise KernelError("ENOMEM", "%s: no object" % cachep.name)
        self.held[va] = what
        return va

    def obj_free(self, cachep, va):
        if va and cachep is not None:
            del self.held[va]
            cachep.free(va)

    def kmalloc(self, size, what):
        km = self.k.kmalloc
        if km is None:
            return 0
        va = km.kmalloc(size)
        if not va:
            raise KernelError("ENOMEM", "kmalloc(%d) for %s" % (size, what))
        self.held[va] = what
        return va

    def kfree(self, va):
        if va:
            del self.held[va]
            self.k.kmalloc.kfree(va)

    # -- files
    def alloc_file(self, f):
        """The File's filp object (alloc_empty_file); f is returned.
        KernelError ENOMEM when the cache has none (as Linux: -ENOMEM,
        ENFILE being for the files-max limit this kernel does not have)."""
        f.va = self.obj_alloc(self.filp, "filp")
        self.nr_files += 1
        if not f.va:
            f.va = -1                   # no slab layer: still counted, freed by fput
        return f

    def free_file(self, f):
        va = f.va
        f.va = 0
        self.nr_files -= 1
        if va > 0:
            self.obj_free(self.filp, va)


def cache(slab, name, size, flags):
    """The cache by name, made on first use (FAT shares "dentry")."""
    c = slab.by_name.get(name)
    if c is None:
        c = slab.kmem_cache_create(name, size, 0, flags)
    return c


def held_objects(k):
    """The root: every address the VFS holds (FAT's objects have their own
    root, fs/fat/super.py)."""
    files = k.vfs.files if k.vfs is not None else None
    return list(files.held) if files is not None else []


kmemleak.register_root("vfs objects", held_objects)
