# Swap areas (Linux mm/swapfile.c, mm/page_io.c): anonymous pages written
# to a block device and found again through the swap entry left in their
# non-present PTE (the entry's encoding is in mm/types.py).
#
# Swap area: page 0 of the device holds Linux's swap header (mkswap's
# format: "SWAPSPACE2" in the last 10 bytes, version 1, last_page,
# nr_badpages and the bad page list at offset 1024); slot N is page N of the
# device (sectors 8N..8N+7). The swap map is one byte per slot: its use
# count (the PTEs holding the entry) plus SWAP_HAS_CACHE while a page read
# back in is still in the swap cache (mm/reclaim/swap_state.py: the slot keeps the
# page's copy, so a clean page goes out again without a write), or
# SWAP_MAP_BAD for the header and bad pages. A slot is free when its byte
# is 0. Slots are handed out in runs from a cursor, so a batch of pages
# written by reclaim is one disk request.

from array import array

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.mm.vm.memory import k_swapin, shmem_swapin
from kernel_py.mm.types import (
    MAX_SWAPFILES, SHM_SWAPPED, SWAP_COUNT_MASK, SWAP_HAS_CACHE, SWAP_MAP_BAD, SWAP_MAP_MAX,
    SWP_OFFSET_MASK, is_swap_pte, swp_offset, swp_type,
)

HEADER_GFP = G.GFP_KERNEL | G.__GFP_ZERO   # (no __GFP_* inside a class: CPython mangles it)

SECTORS_PER_PAGE = PAGE_SIZE >> 9
MAGIC = b"SWAPSPACE2"
MAGIC_OFF = PAGE_SIZE - 10
INFO_OFF = 1024                 # version, last_page, nr_badpages, uuid, label
BADPAGES_OFF = INFO_OFF + 4 * 3 + 16 + 16 + 4 * 117
MAX_BADPAGES = (MAGIC_OFF - BADPAGES_OFF) // 4


def zeroed_u32(n):
    """array('I') of n zeros (MicroPython's arrays cannot be multiplied,
    CPython's cannot be made from bytes)."""
    try:
        return array("I", bytes(4 * n))
    except TypeError:
        return array("I", [0]) * n


def le32(buf, off):
    return buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)


def put_le32(buf, off, v):
    for i in range(4):
        buf[off + i] = (v >> (8 * i)) & 0xFF


class SwapInfo:
    """One active swap area (struct swap_info_struct)."""

    def __init__(self, type_, dev, path, last_page, bad, prio):
        self.type = type_
        self.dev = dev
        self.path = path
        self.prio = prio
        self.max = last_page + 1            # slots 0..last_page
        self.map = bytearray(self.max)
        self.map[0] = SWAP_MAP_BAD          # the header
        nbad = 0
        for b in bad:
            if 0 < b < self.max and not self.map[b]:
                self.map[b] = SWAP_MAP_BAD
                nbad += 1
        self.pages = self.max - 1 - nbad    # usable slots (Size in /proc/swaps)
        self.inuse = 0                      # slots with a count
        self.cursor = 1
        self.writeok = True                 # swapoff clears it first
        self.cache = zeroed_u32(self.max)   # slot -> pfn + 1 of its swap-cache page (0: none)

    def alloc_run(self, n):
        """(first, count): up to n contiguous free slots (count 0: full);
        each gets a count of 0 here, the caller sets it."""
        if self.inuse >= self.pages or not self.writeok:
            return 0, 0
        m, top = self.map, self.max
        i = self.cursor
        wrapped = False
        while True:
            if i >= top:
                if wrapped:
                    return 0, 0
                wrapped = True
                i = 1
            if not m[i]:
                break
            i += 1
        j = i + 1
        while j < top and j - i < n and not m[j]:
            j += 1
        self.cursor = j
        return i, j - i

    def lba(self, slot):
        return slot * SECTORS_PER_PAGE


class SwapSystem:
    """k.swap: the active swap areas, the entry refcounts, swap I/O, and
    the counters of /proc/vmstat, /proc/meminfo and /proc/swaps."""

    def __init__(self, k):
        self.k = k
        self.areas = [None] * MAX_SWAPFILES    # by type
        self.least_priority = -1
        self.nr_swap_pages = 0                 # free slots, all areas
        self.total_swap_pages = 0
        self.pswpin = 0
        self.pswpout = 0
        self.swap_ra = 0                       # pages read ahead (with a fault)

    # -- state
    def active(self):
        return [si for si in self.areas if si is not None]

    def can_swap_out(self):
        return self.nr_swap_pages > 0 and any(si.writeok for si in self.active())

    def lookup(self, e):
        """(SwapInfo, slot) of a swap PTE in use, or (None, 0)."""
        t = swp_type(e)
        if t >= MAX_SWAPFILES:
            return None, 0
        si = self.areas[t]
        if si is None:
            return None, 0
        off = swp_offset(e)
        if not 0 < off < si.max:
            return None, 0
        c = si.map[off]
        if c == 0 or c == SWAP_MAP_BAD:
            return None, 0
        return si, off

    def count(self, e):
        """PTEs holding entry e (the swap cache's hold not counted)."""
        si, off = self.lookup(e)
        return si.map[off] & SWAP_COUNT_MASK if si is not None else 0

    def vm_swap_full(self):
        """Linux's vm_swap_full: under half the swap space free; a page
        swapped in then gives its slot up rather than stay in the cache."""
        return self.nr_swap_pages * 2 < self.total_swap_pages

    def dup(self, e, n=1):
        """n more PTEs hold entry e (fork; reclaim unmapping a page that
        kept its slot)."""
        si, off = self.lookup(e)
        if si is None:
            raise KernelError("EINVAL", "swap_duplicate: bad swap entry 0x%x" % e)
        c = si.map[off]
        if (c & SWAP_COUNT_MASK) + n > SWAP_MAP_MAX:
            raise KernelError("ENOMEM", "swap_duplicate: slot %d has %d users" % (off, c & SWAP_COUNT_MASK))
        si.map[off] = c + n

    def free_entry(self, e):
        """One PTE holding e is gone (munmap, exit, swap-in)."""
        si, off = self.lookup(e)
        if si is None:
            raise KernelError("EINVAL", "swap_free: bad swap entry 0x%x" % e)
        self.put_slot(si, off)

    def put_slot(self, si, off):
        c = si.map[off] - 1
        si.map[off] = c
        if not c:
            self.slot_freed(si, off)

    def put_cache_slot(self, si, off):
        """The swap cache let go of the slot's page."""
        c = si.map[off] & ~SWAP_HAS_CACHE
        si.map[off] = c
        if not c:
            self.slot_freed(si, off)

    def slot_freed(self, si, off):
        si.inuse -= 1
        if si.writeok:                      # (swapoff took the area's slots out)
            self.nr_swap_pages += 1
        if off < si.cursor:
            si.cursor = off

    def get_swap_pages(self, n):
        """(SwapInfo, first slot, count) of up to n contiguous free slots
        from the highest-priority area that has some; count 0: none."""
        best = None
        for si in self.active():
            if si.writeok and si.inuse < si.pages and (best is None or si.prio > best.prio):
                best = si
        if best is None:
            return None, 0, 0
        first, got = best.alloc_run(n)
        return best, first, got

    def claim(self, si, first, got, counts):
        """Slots [first, first+got) now hold counts[i] references each."""
        m = si.map
        for i in range(got):
            m[first + i] = counts[i]
        si.inuse += got
        self.nr_swap_pages -= got

    # -- I/O
    def write_pages(self, si, first, pas):
        """__swap_writepage: frames pas to slots first.. in one bio (GFP_NOIO,
        from fs_bio_set: the reserve backs it when allocators fail)."""
        si.dev.submit(True, si.lba(first), [(pa, SECTORS_PER_PAGE) for pa in pas])
        self.pswpout += len(pas)

    def read_page(self, si, off, pa):
        si.dev.submit(False, si.lba(off), [(pa, SECTORS_PER_PAGE)])
        self.pswpin += 1

    def read_pages(self, si, first, pas):
        si.dev.submit(False, si.lba(first), [(pa, SECTORS_PER_PAGE) for pa in pas])
        self.pswpin += len(pas)

    # -- swapon / swapoff / mkswap
    def _header_page(self):
        k = self.k
        pa = k.buddy.alloc_pages(HEADER_GFP, 0)
        if pa is None:
            raise KernelError("ENOMEM", "no page for the swap header")
        return pa

    def mkswap(self, dev, label=""):
        """Write Linux's swap header on dev; returns (pages, last_page)."""
        if dev.holder is not None:
            raise KernelError("EBUSY", "/dev/%s is in use (%s)" % (dev.name, dev.holder))
        npages = dev.nr_sectors // SECTORS_PER_PAGE
        if npages < 10:
            raise KernelError("EINVAL", "/dev/%s: swap area needs at least 10 pages" % dev.name)
        last_page = npages - 1
        k = self.k
        pa = self._header_page()
        try:
            hdr = bytearray(PAGE_SIZE)
            put_le32(hdr, INFO_OFF, 1)                  # version
            put_le32(hdr, INFO_OFF + 4, last_page)
            put_le32(hdr, INFO_OFF + 8, 0)              # nr_badpages
            seed = k.hw.rdtsc()
            for i in range(16):                         # sws_uuid (version 4 style)
                seed = (seed * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
                hdr[INFO_OFF + 12 + i] = (seed >> 33) & 0xFF
            hdr[INFO_OFF + 12 + 6] = (hdr[INFO_OFF + 12 + 6] & 0x0F) | 0x40
            hdr[INFO_OFF + 12 + 8] = (hdr[INFO_OFF + 12 + 8] & 0x3F) | 0x80
            lab = label.encode()[:16]
            hdr[INFO_OFF + 28:INFO_OFF + 28 + len(lab)] = lab
            hdr[MAGIC_OFF:] = MAGIC
            k.hw.writebytes(pa, hdr)
            dev.write(0, SECTORS_PER_PAGE, pa)
            dev.flush()
        finally:
            k.buddy.free_pages(pa, 0)
        return last_page, uuid_text(hdr[INFO_OFF + 12:INFO_OFF + 28])

    def read_header(self, dev):
        """(last_page, [bad pages]) from dev's swap header; EINVAL if none."""
        k = self.k
        pa = self._header_page()
        try:
            dev.read(0, SECTORS_PER_PAGE, pa)
            hdr = k.hw.readbytes(pa, PAGE_SIZE)
        finally:
            k.buddy.free_pages(pa, 0)
        if hdr[MAGIC_OFF:] != MAGIC:
            raise KernelError("EINVAL", "/dev/%s: no swap signature (mkswap it first)" % dev.name)
        if le32(hdr, INFO_OFF) != 1:
            raise KernelError("EINVAL", "/dev/%s: unsupported swap version %d" % (
                dev.name, le32(hdr, INFO_OFF)))
        last_page = le32(hdr, INFO_OFF + 4)
        nbad = le32(hdr, INFO_OFF + 8)
        if nbad > MAX_BADPAGES:
            raise KernelError("EINVAL", "/dev/%s: %d bad pages" % (dev.name, nbad))
        bad = [le32(hdr, BADPAGES_OFF + 4 * i) for i in range(nbad)]
        npages = dev.nr_sectors // SECTORS_PER_PAGE
        if last_page >= npages:
            last_page = npages - 1      # Linux: the header may claim more than the device has
        if last_page < 1:
            raise KernelError("EINVAL", "/dev/%s: empty swap area" % dev.name)
        last_page = min(last_page, SWP_OFFSET_MASK - 1)   # type 0, offset ~0 would be pte_none
        return last_page, bad

    def swapon(self, dev, prio=None):
        for si in self.active():
            if si.dev is dev:
                raise KernelError("EBUSY", "/dev/%s is already a swap area" % dev.name)
        if dev.holder is not None:
            raise KernelError("EBUSY", "/dev/%s is in use (%s)" % (dev.name, dev.holder))
        last_page, bad = self.read_header(dev)
        t = 0
        while t < MAX_SWAPFILES and self.areas[t] is not None:
            t += 1
        if t >= MAX_SWAPFILES:
            raise KernelError("EPERM", "too many swap areas")
        if prio is None:
            self.least_priority -= 1
            prio = self.least_priority
        si = SwapInfo(t, dev, "/dev/" + dev.name, last_page, bad, prio)
        dev.holder = "swap"
        self.areas[t] = si
        self.nr_swap_pages += si.pages
        self.total_swap_pages += si.pages
        self.k.printk("Adding %dk swap on /dev/%s.  Priority:%d extents:1 across:%dk" % (
            si.pages * 4, dev.name, prio, si.pages * 4))
        return si

    def find(self, dev):
        for si in self.active():
            if si.dev is dev:
                return si
        raise KernelError("EINVAL", "/dev/%s is not a swap area" % dev.name)

    def swapoff(self, dev):
        """Bring every page of the area back into memory (try_to_unuse),
        then forget it. ENOMEM leaves it active."""
        si = self.find(dev)
        si.writeok = False
        self.nr_swap_pages -= si.pages - si.inuse
        self.total_swap_pages -= si.pages
        try:
            self.k.swapcache.drop_area(si)  # its pages stay, as plain anon pages
            if si.inuse:
                try_to_unuse(self.k, si)
        except KernelError:
            si.writeok = True
            self.nr_swap_pages += si.pages - si.inuse
            self.total_swap_pages += si.pages
            raise
        self.areas[si.type] = None
        dev.holder = None
        if si.prio < 0:                 # the later default priorities move up one
            for other in self.active():
                if other.prio < si.prio:
                    other.prio += 1
            self.least_priority += 1
        return si

    # -- reporting (pages)
    def totals(self):
        """(SwapTotal, SwapFree) in pages."""
        return self.total_swap_pages, self.nr_swap_pages

    def used_pages(self):
        return sum(si.inuse for si in self.active())

    def proc_swaps(self):
        """/proc/swaps, seq_printf for seq_printf (swap_show)."""
        lines = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"]
        for si in self.active():
            size, used = si.pages * 4, si.inuse * 4
            pad = 40 - len(si.path) if len(si.path) < 40 else 1
            lines.append("%s%s%s\t%d\t%s%d\t%s%d" % (
                si.path, " " * pad, "partition", size, "\t" if size < 10000000 else "",
                used, "\t" if used < 10000000 else "", si.prio))
        return "\n".join(lines)


# --- swapoff (Linux's try_to_unuse) ---------------------------------------------


def try_to_unuse(k, si):
    """Read every page of swap area si back in: each swap PTE of every
    process becomes a present private page (ENOMEM if memory runs out)."""
    procs = k.procs
    shmem_unuse(k, si)
    for pid in procs.pids():
        t = procs.tasks.get(pid)
        if t is None or t.mm is None:
            continue
        procs.busy.append(t)
        try:
            unuse_mm(k, t.mm, si)
        finally:
            procs.busy.remove(t)
            procs.reap()
        if not si.inuse:
            break
    if si.inuse:
        raise KernelError("EBUSY", "swapoff: %d pages of %s still in use" % (si.inuse, si.path))


def shmem_unuse(k, si):
    """swapoff: every shared anonymous page on area si back into its
    object (unmapped: the next touch is a minor fault)."""
    for shm in list(k.anon.shm.values()):
        for off, v in list(shm.pages.items()):
            if v & SHM_SWAPPED and swp_type(v & ~SHM_SWAPPED) == si.type:
                if shmem_swapin(k, shm, off, v) is None:
                    raise KernelError("ENOMEM", "swapoff: out of memory")
    if k.vfs is not None:
        for sb in k.vfs.superblocks():          # tmpfs files' pages, memfds' too
            sb.swap_unuse(si)


def unuse_mm(k, mm, si):
    """swapoff: every swap PTE of mm on area si back to a present page."""
    r64 = k.hw.read64
    for vma in list(mm.vmas.vmas):
        if vma.shm is not None:
            continue
        for pt, base, i0, i1 in list(mm.pt_tables(vma.start, vma.end)):
            for i in range(i0, i1):
                epa = pt + (i << 3)
                e = r64(epa)
                if is_swap_pte(e) and swp_type(e) == si.type:
                    if not k_swapin(k, mm, vma, base + (i << 12), epa, e):
                        raise KernelError("ENOMEM", "swapoff: out of memory")
            if mm.pgd is None:
                return


def uuid_text(b):
    h = "".join("%02x" % x for x in b)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
