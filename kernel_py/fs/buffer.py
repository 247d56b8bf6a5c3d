# The buffer cache (Linux fs/buffer.c, block_dev page cache): a block
# device's own page cache, byte-addressed, for file-system metadata (boot
# sector, FAT, directories). Its pages count as "Buffers" in meminfo.
#
# A page holds 8 sectors. Dirtiness is kept per sector (like buffer_heads):
# metadata and file data can share a page of the disk (cluster size below
# 4 KiB, a data area not page-aligned), and writeback must only write the
# sectors the metadata code changed, never stale copies of file data.

from kernel_py.block.blkdev import SECTOR_SHIFT
from kernel_py.mm.gfp import GFP_NOFS
from kernel_py.mm.filemap.filemap import AddressSpace
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE

SECTORS_PER_PAGE = PAGE_SIZE >> SECTOR_SHIFT
FULL_MASK = (1 << SECTORS_PER_PAGE) - 1
BDEV_READAHEAD = 8


class BufferCache:
    def __init__(self, cache, dev):
        self.cache = cache
        self.dev = dev
        self.hw = cache.hw
        self.i_size = dev.size_bytes()
        self.last_index = (self.i_size - 1) >> PAGE_SHIFT
        self.dirty_mask = {}        # page index -> mask of dirty sectors
        self.mapping = AddressSpace(cache, self, bdev=True, name=dev.name)

    # -- address-space host
    def _sectors_in(self, idx):
        return min(SECTORS_PER_PAGE, self.dev.nr_sectors - idx * SECTORS_PER_PAGE)

    def readpages(self, mapping, run):
        lba = -1
        segs = []
        start = 0
        for idx, pa in run:
            n = self._sectors_in(idx)
            first = idx * SECTORS_PER_PAGE
            if n < SECTORS_PER_PAGE:
                self.hw.fill(pa + (n << SECTOR_SHIFT), 0, PAGE_SIZE - (n << SECTOR_SHIFT))
            if segs and first == lba:
                segs.append((pa, n))
            else:
                if segs:
                    self.dev.submit(False, start, segs, GFP_NOFS)
                segs, start = [(pa, n)], first
            lba = first + n
        if segs:
            self.dev.submit(False, start, segs, GFP_NOFS)

    def writepages(self, mapping, batch):
        masks = []
        for idx, pa in batch:
            masks.append(self.dirty_mask.pop(idx, FULL_MASK))
        try:
            segs, start, nxt = [], -1, -1
            for j in range(len(batch)):
                idx, pa = batch[j]
                mask = masks[j]
                for s in range(self._sectors_in(idx)):
                    if not mask & (1 << s):
                        continue
                    lba = idx * SECTORS_PER_PAGE + s
                    if lba == nxt:
                        p, n = segs[-1]
                        if p + (n << SECTOR_SHIFT) == pa + (s << SECTOR_SHIFT):
                            segs[-1] = (p, n + 1)
                        else:
                            segs.append((pa + (s << SECTOR_SHIFT), 1))
                    else:
                        if segs:
                            self.dev.submit(True, start, segs, GFP_NOFS)
                        segs, start = [(pa + (s << SECTOR_SHIFT), 1)], lba
                    nxt = lba + 1
            if segs:
                self.dev.submit(True, start, segs, GFP_NOFS)
        except Exception:
            for j in range(len(batch)):
                idx = batch[j][0]
                self.dirty_mask[idx] = self.dirty_mask.get(idx, 0) | masks[j]
            raise

    def forget_page(self, idx):
        self.dirty_mask.pop(idx, None)

    # -- byte-addressed access (offsets in bytes from the start of the disk)
    def page(self, off):
        """The uptodate page holding byte `off` (use before any allocation)."""
        return self.cache.read_page(self.mapping, off >> PAGE_SHIFT, BDEV_READAHEAD, self.last_index)

    def read(self, off, n):
        out = []
        while n > 0:
            po = off & (PAGE_SIZE - 1)
            take = min(n, PAGE_SIZE - po)
            out.append(self.hw.readbytes(self.page(off) + po, take))
            off += take
            n -= take
        return b"".join(out) if len(out) != 1 else bytes(out[0])

    def read16(self, off):
        return self.hw.read16(self.page(off) + (off & (PAGE_SIZE - 1)))

    def read32(self, off):
        return self.hw.read32(self.page(off) + (off & (PAGE_SIZE - 1)))

    def _dirty(self, pa, off, n):
        """Mark the sectors of [off, off+n) (inside one page) dirty."""
        s0 = (off & (PAGE_SIZE - 1)) >> SECTOR_SHIFT
        s1 = ((off & (PAGE_SIZE - 1)) + n - 1) >> SECTOR_SHIFT
        idx = off >> PAGE_SHIFT
        mask = ((1 << (s1 + 1)) - 1) & ~((1 << s0) - 1)
        self.dirty_mask[idx] = self.dirty_mask.get(idx, 0) | mask
        self.cache.set_page_dirty(self.mapping, pa)

    def _pages(self, off, n):
        """(page pa, byte offset, length) over [off, off+n), whole pages
        not read from the disk when they will be overwritten entirely."""
        while n > 0:
            po = off & (PAGE_SIZE - 1)
            take = min(n, PAGE_SIZE - po)
            if take == PAGE_SIZE:
                pa = self.cache.grab_page(self.mapping, off >> PAGE_SHIFT, True)
            else:
                pa = self.page(off)
            yield pa, off, take
            off += take
            n -= take

    def write(self, off, data):
        i = 0
        for pa, o, take in self._pages(off, len(data)):
            self.hw.writebytes(pa + (o & (PAGE_SIZE - 1)), data[i:i + take])
            self._dirty(pa, o, take)
            i += take

    def fill(self, off, byte, n):
        for pa, o, take in self._pages(off, n):
            self.hw.fill(pa + (o & (PAGE_SIZE - 1)), byte, take)
            self._dirty(pa, o, take)

    def write16(self, off, v):
        pa = self.page(off)
        self.hw.write16(pa + (off & (PAGE_SIZE - 1)), v)
        self._dirty(pa, off, 2)

    def write32(self, off, v):
        pa = self.page(off)
        self.hw.write32(pa + (off & (PAGE_SIZE - 1)), v)
        self._dirty(pa, off, 4)

    def forget(self, off, n):
        """The sectors of [off, off+n) now belong to file data: cancel any
        dirty metadata copy of them (it must not overwrite the file)."""
        if not self.dirty_mask:
            return
        end = off + n
        idx = off >> PAGE_SHIFT
        while idx << PAGE_SHIFT < end:
            mask = self.dirty_mask.get(idx)
            if mask:
                lo = max(off, idx << PAGE_SHIFT)
                hi = min(end, (idx + 1) << PAGE_SHIFT)
                s0 = (lo - (idx << PAGE_SHIFT)) >> SECTOR_SHIFT
                s1 = (hi - (idx << PAGE_SHIFT) + (1 << SECTOR_SHIFT) - 1) >> SECTOR_SHIFT
                mask &= ~(((1 << s1) - 1) & ~((1 << s0) - 1))
                if mask:
                    self.dirty_mask[idx] = mask
                else:
                    del self.dirty_mask[idx]
                    pa = self.mapping.pages.get(idx)
                    if pa is not None:
                        self.cache.clear_page_dirty(self.mapping, pa)
            idx += 1

    def sync(self):
        self.cache.writeback_mapping(self.mapping)

    def release(self):
        self.cache.release_mapping(self.mapping)
        self.dirty_mask = {}
