# tmpfs (Linux's mm/shmem.c): the root file system, filled at boot from the
# initramfs (kernel_py/init/initramfs.py), and /tmp on it.
#
# A tmpfs file's pages are shmem pages: they live in the page cache (so
# read, write, mmap and execve reach them as they reach any file's pages,
# and Linux counts them in Cached too) and are counted in NR_SHMEM, which
# /proc/meminfo prints as Shmem and sysinfo (free's "shared") reports as
# sharedram. The names, the inodes and the file system's own reference on
# each page are ramfs's (fs/ramfs.py).
#
# Swap (shmem_writeout, shmem_swapin_folio): the page cache's reclaim
# (reclaim/vmscan.py's shrink_inactive) hands a cold tmpfs page that no
# process maps to shmem_writeout, which writes it to a swap slot, keeps the
# slot's entry in the inode (`swapped`: index -> swap entry, where Linux
# keeps it in the page cache's xarray) and frees the page. Whatever needs
# the page again — read, write, truncate, a fault through a mapping
# (readpages) — reads it back first and frees the slot. Truncate and
# unlink free the slots past the new end; swapoff brings every page back
# (swap_unuse), finding the files through the swap list (Linux's
# shmem_swaplist: every inode with a page on swap, linked or not — an
# unlinked open file, a memfd). A page a process maps is unmapped from
# every PTE first (vmscan.py's pageout_shmem, as Linux's try_to_unmap), only
# when swap can take it; its next touch faults it back through readpages.

from kernel_py.fs.magic import TMPFS_MAGIC
from kernel_py.fs.mode import S_ISREG
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE
from kernel_py.fs.ramfs import RamFs, RamInode
from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import swp_entry, swp_type


class ShmemInode(RamInode):
    def __init__(self, sb, mode, rdev=0):
        RamInode.__init__(self, sb, mode, rdev)
        self.swapped = {}               # page index -> swap entry (shmem_writeout)

    def readpages(self, mapping, run):
        """A fault, a partial write or a read reached a page not in the
        cache: from swap when it was written out, else a hole (zeros)."""
        sb = self.sb
        for idx, pa in run:
            e = self.swapped.get(idx)
            if e is None:
                sb.hw.fill(pa, 0, PAGE_SIZE)
            else:
                sb.swap_in(self, idx, e, pa)
            sb.hold_page(pa)


class TmpFs(RamFs):
    fstype = "tmpfs"
    magic = TMPFS_MAGIC
    inode_class = ShmemInode

    def __init__(self, k, fstype="tmpfs"):
        RamFs.__init__(self, k, fstype)
        self.nr_pages = 0               # this file system's pages in memory (df's "used")
        self.nr_swapped = 0             # its pages on swap
        self.swapout = 0                # pages written out (shmem_writeout), ever
        self.swaplist = {}              # id -> inode with pages on swap (shmem_swaplist)

    def mapping_flags(self, mapping):
        mapping.swapbacked = True       # shmem's mappings: reclaim may swap them
        mapping.fs_refs = 1             # hold_page's

    # -- the pages' accounting
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

    # -- swap
    def can_writeout(self):
        """A swap device with a free slot (else reclaim keeps the pages)."""
        swap = self.k.swap
        return swap is not None and swap.can_swap_out()

    def shmem_writeout(self, mapping, idx, pa):
        """Reclaim's pageout of an unmapped page at idx (count 2: the
        cache's and ours): to a new swap slot, then freed. False when there
        is no swap or the write failed (the page stays)."""
        if not self.can_writeout():
            return False
        swap = self.k.swap
        si, first, got = swap.get_swap_pages(1)
        if not got:
            return False
        try:
            swap.write_pages(si, first, [pa])
        except KernelError as exc:
            self.k.printk("Write-error on swap-device (%s): %s" % (si.path, exc.line()))
            return False
        swap.claim(si, first, 1, [1])
        ino = mapping.host
        ino.swapped[idx] = swp_entry(si.type, first)
        self.swaplist[id(ino)] = ino
        self.nr_swapped += 1
        self.swapout += 1
        self.release_page(pa)
        self.cache._delete(mapping, idx, pa)       # the cache's reference: the frame is free
        return True

    def swap_in(self, ino, idx, e, pa):
        """Read page idx of ino from its slot into pa; the slot is freed."""
        swap = self.k.swap
        si, off = swap.lookup(e)
        if si is None:
            raise KernelError("EIO", "tmpfs: bad swap entry 0x%x for page %d of %s" % (e, idx, ino.name))
        swap.read_page(si, off, pa)
        swap.put_slot(si, off)
        del ino.swapped[idx]
        self.nr_swapped -= 1
        self.swaplist_del(ino)

    def swaplist_del(self, ino):
        if not ino.swapped:
            self.swaplist.pop(id(ino), None)

    def swap_in_range(self, ino, start, end):
        """The swapped pages of bytes [start, end) back in the cache."""
        if not ino.swapped or end <= start:
            return
        lo, hi = start >> PAGE_SHIFT, (end - 1) >> PAGE_SHIFT
        m = self.mapping_of(ino)
        for idx in sorted(ino.swapped):
            if lo <= idx <= hi:
                self.cache.read_page(m, idx, ra=1)

    def swap_unuse(self, si):
        """swapoff: every page of every file on area si back in memory."""
        for ino in list(self.swaplist.values()):
            for idx in [i for i, e in ino.swapped.items() if swp_type(e) == si.type]:
                self.cache.read_page(self.mapping_of(ino), idx, ra=1)

    def nr_swap_entries(self):
        return self.nr_swapped

    # -- data: swapped pages come back before ramfs's code sees the file
    def read(self, ino, off, n):
        if S_ISREG(ino.mode):
            self.swap_in_range(ino, off, min(off + n, ino.size))
        return RamFs.read(self, ino, off, n)

    def write(self, ino, off, data):
        if S_ISREG(ino.mode):
            self.swap_in_range(ino, off, min(off + len(data), ino.size))
        return RamFs.write(self, ino, off, data)

    def truncate(self, ino, size):
        if S_ISREG(ino.mode) and size & (PAGE_SIZE - 1):
            self.swap_in_range(ino, size, size + 1)     # its tail is zeroed in memory
        RamFs.truncate(self, ino, size)

    def drop_pages(self, ino, start):
        """Pages at index >= start leave the file: on swap, their slots go."""
        swap = self.k.swap
        for idx in [i for i in ino.swapped if i >= start]:
            si, off = swap.lookup(ino.swapped.pop(idx))
            if si is not None:
                swap.put_slot(si, off)
            self.nr_swapped -= 1
        self.swaplist_del(ino)
        RamFs.drop_pages(self, ino, start)

    def statfs(self):
        """(block size, blocks, free blocks) as shmem_statfs reports a
        tmpfs without size=: half of RAM, less its pages (on swap too)."""
        total = self.k.buddy.managed_pages() // 2
        return PAGE_SIZE, total, max(0, total - self.nr_pages - self.nr_swapped)

    def statfs_files(self):
        """nr_inodes's default, half the pages of RAM, and what is left."""
        total = self.k.buddy.managed_pages() // 2
        return total, max(0, total - self.nr_inodes)
