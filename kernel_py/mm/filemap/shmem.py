# tmpfs (Linux's mm/shmem.c): the root file system, filled at boot from the
# initramfs (kernel_py/init/initramfs.py), and /tmp on it.
#
# A tmpfs file's pages are shmem pages: they live in the page cache (so
# read, write, mmap and execve reach them as they reach any file's pages,
# and Linux counts them in Cached too) and are counted in NR_SHMEM, which
# /proc/meminfo prints as Shmem and sysinfo (free's "shared") reports as
# sharedram. Everything else is ramfs's (fs/ramfs.py): the names, the
# inodes, the file system's own reference on each page, which keeps the page
# cache's reclaim and drop_caches off it.
#
# Not yet: shmem_writeout. Linux puts a tmpfs page that reclaim finds cold
# on swap (the page cache's entry becomes a swap entry, shmem_swapin_folio
# reads it back); here tmpfs pages stay in memory until the file shrinks or
# goes, as ramfs's do.

from kernel_py.fs.magic import TMPFS_MAGIC
from kernel_py.fs.ramfs import RamFs


class TmpFs(RamFs):
    fstype = "tmpfs"
    magic = TMPFS_MAGIC

    def __init__(self, k, fstype="tmpfs"):
        RamFs.__init__(self, k, fstype)
        self.nr_pages = 0               # this file system's pages in memory (df's "used")

    def hold_page(self, pa):
        """shmem_add_to_page_cache: the page counts as shmem from now on."""
        RamFs.hold_page(self, pa)
        self.nr_pages += 1
        self.cache.nr_shmem += 1

    def release_page(self, pa):
        """shmem_delete_from_page_cache / truncate: no longer shmem."""
        self.nr_pages -= 1
        self.cache.nr_shmem -= 1
        RamFs.release_page(self, pa)

    def statfs(self):
        """(block size, blocks, free blocks) as shmem_statfs reports a
        tmpfs without size=: half of RAM, less its pages."""
        total = self.k.buddy.managed_pages() // 2
        return 4096, total, max(0, total - self.nr_pages)

    def statfs_files(self):
        """nr_inodes's default, half the pages of RAM, and what is left."""
        total = self.k.buddy.managed_pages() // 2
        return total, max(0, total - self.nr_inodes)
