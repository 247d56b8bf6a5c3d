# The VFS's slab objects (Linux's fs/file_table.c, fs/inode.c, fs/dcache.c
# caches): every open File takes an object of the `filp` cache
# (alloc_empty_file) and gives it back with its last reference; the
# in-memory file systems' inodes and names take `inode_cache` and `dentry`
# objects; pipes and eventfds kmalloc their pipe_inode_info, pipe_buffer
# array and eventfd_ctx. So /proc/slabinfo, the Slab figures and the
# benchmarks' slab_eventfd, slab_hold and pipe measure the real allocators.
#
# kmemleak (docs/kmemleak.md, "What the roots are"). Linux's scan finds
# these objects through the memory that points to them: a task's
# files_struct and fdtable, a file's f_inode and private_data (the
# pipe_inode_info, which points to the pipe_buffer array; the
# eventfd_ctx), an inode's i_pipe, the dentries under each super block,
# every VMA's vm_file, and the kernel stack of a task asleep in an open.
# Here those holders are Python objects, so the root "vfs holders" walks
# them as the scan would read that memory: every task's fd table and each
# File in it, the File a task asleep in a FIFO's open holds (Task.open_file),
# the files of every task's VMAs, and each super block's tree of inodes
# and dentries (ramfs, devtmpfs, tmpfs, the internal shm mount). Each
# holder names what it points to (scan_refs on File, FdTable, Inode,
# SuperBlock, Pipe, MappedFile; a file operation's scan_private for
# private_data). Nothing is registered at allocation: an object no holder
# reaches is reported, e.g. a File dropped from its fd table without fput
# (the console's `fdforget`, a leak made on purpose), or a pipe whose
# Files are gone but which was never freed. Each allocation names its
# caller as Linux's would (alloc_empty_file, alloc_inode, d_alloc,
# alloc_pipe_info, do_eventfd): kmemleak's trace shows it.
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
    """k.vfs.files: the VFS's caches (filp, inode_cache, dentry)."""

    def __init__(self, k):
        self.k = k
        self.nr_files = 0               # /proc/sys/fs/file-nr's first figure
        slab = k.slab
        self.filp = self.inode_cache = self.dentry = None
        if slab is not None:
            self.filp = cache(slab, "filp", FILP_SIZE, SLAB_HWCACHE_ALIGN)
            self.inode_cache = cache(slab, "inode_cache", INODE_SIZE, SLAB_RECLAIM_ACCOUNT)
            self.dentry = cache(slab, "dentry", DENTRY_SIZE, SLAB_RECLAIM_ACCOUNT)

    def traced(self, site, fn, arg=None):
        """fn(arg) (fn() without one) with kmemleak told the caller its
        trace names, as Linux's backtrace shows the allocating function."""
        kml = self.k.kmemleak
        if kml is not None:
            kml.caller = site
        try:
            return fn() if arg is None else fn(arg)
        finally:
            if kml is not None:
                kml.caller = None

    # -- any object
    def obj_alloc(self, cachep, site):
        """An object of cachep (None: no slab layer, 0), allocated for the
        function site (alloc_inode, d_alloc...); KernelError ENOMEM."""
        if cachep is None:
            return 0
        va = self.traced(site, cachep.alloc)
        if va is None:
            raise KernelError("ENOMEM", "%s: no object" % cachep.name)
        return va

    def obj_free(self, cachep, va):
        if va and cachep is not None:
            cachep.free(va)

    def kmalloc(self, size, site):
        km = self.k.kmalloc
        if km is None:
            return 0
        va = self.traced(site, km.kmalloc, size)
        if not va:
            raise KernelError("ENOMEM", "kmalloc(%d) for %s" % (size, site))
        return va

    def kfree(self, va):
        if va:
            self.k.kmalloc.kfree(va)

    # -- files
    def alloc_file(self, f):
        """The File's filp object (alloc_empty_file); f is returned.
        KernelError ENOMEM when the cache has none (as Linux: -ENOMEM,
        ENFILE being for the files-max limit this kernel does not have)."""
        f.va = self.obj_alloc(self.filp, "alloc_empty_file")
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


def vfs_holders(k):
    """kmemleak's root: the addresses the VFS's holders point to, walked
    as Linux's scan reads the memory they stand for (see the header). FAT's
    inode and dentry caches have their own root (fs/fat/super.py)."""
    out = []
    vfs = k.vfs
    if vfs is None or vfs.files is None:
        return out
    for sb in vfs.superblocks():
        sb.scan_refs(out)
    if k.procs is not None:
        task_refs(k.procs.tasks.values(), out)
    return out


def task_refs(tasks, out):
    """Each task's fd table (once when CLONE_FILES shares it), the File its
    sleeping open holds, the files its VMAs map (once per mm)."""
    seen = set()
    for t in tasks:
        if t.open_file is not None:
            t.open_file.scan_refs(out)
        if t.files is not None and first_visit(seen, t.files):
            t.files.scan_refs(out)
        if t.mm is not None and first_visit(seen, t.mm):
            for v in t.mm.vmas:
                if v.file is not None:
                    v.file.scan_refs(out)


def first_visit(seen, holder):
    if id(holder) in seen:
        return False
    seen.add(id(holder))
    return True


kmemleak.register_root("vfs holders", vfs_holders)
