# The FAT (Linux fs/fat/fatent.c): one entry per cluster, 16 or 32 bits
# (FAT32 keeps the top 4 bits), every copy of the table written alike.
# A file's clusters are a chain through the table, ended by an
# end-of-chain mark; 0 is a free cluster. Free clusters are found by
# scanning the first FAT a page at a time from the next-free hint; the
# free count is FSInfo's, or counted once when it is unknown.
#
# A change to the table is all or nothing: every page of every FAT copy
# it touches is read into the buffer cache before the first entry
# changes (fat_prepare), so a failed read (ENOMEM, EIO) leaves the table
# as it was: no copy differing from the other, no cluster marked used
# that no chain reaches. Linux gets the same from reading the FAT's
# buffer heads (fat_ent_read, fat_ent_read_block) before fat_ent_write
# touches them, its block device's pages being allocated __GFP_NOFAIL.

import struct

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE


class FatTable:
    """The FAT half of a FatFs (fs/fat/super.py)."""

    def fat_entry_off(self, c):
        return self.fat_off + (c << 2 if self.fat32 else c << 1)

    def fat_get(self, c):
        if self.fat32:
            return self.bc.read32(self.fat_off + (c << 2)) & 0x0FFFFFFF
        return self.bc.read16(self.fat_off + (c << 1))

    def fat_set(self, c, v):
        for i in range(self.nfats):
            off = self.fat_off + i * self.fat_bytes
            if self.fat32:
                off += c << 2
                old = self.bc.read32(off)
                self.bc.write32(off, (old & 0xF0000000) | (v & 0x0FFFFFFF))
            else:
                self.bc.write16(off + (c << 1), v)

    def fat_prepare(self, clusters):
        """Read every page holding the entries of `clusters`, in every
        copy, before any of them changes (see the top of this file)."""
        shift = 2 if self.fat32 else 1
        seen = set()
        for c in clusters:
            for i in range(self.nfats):
                off = self.fat_off + i * self.fat_bytes + (c << shift)
                if off >> PAGE_SHIFT not in seen:
                    seen.add(off >> PAGE_SHIFT)
                    self.bc.page(off)

    def chain(self, first):
        """The cluster chain from `first` (EIO on a loop or a bad entry)."""
        out = []
        c = first
        limit = self.nclusters
        while 2 <= c <= self.max_cluster:
            out.append(c)
            if len(out) > limit:
                raise KernelError("EIO", "FAT: cluster chain loops at %d" % c)
            c = self.fat_get(c)
        if c < self.eoc and out:
            raise KernelError("EIO", "FAT: bad entry 0x%x in chain at cluster %d" % (c, out[-1]))
        return out

    def clusters_of(self, ino):
        if ino.clusters is None:
            ino.clusters = self.chain(ino.first) if ino.first else []
        return ino.clusters

    def _scan_free(self, start, want, out):
        """Append free cluster numbers >= start (up to want of them) to out,
        reading the first FAT a page at a time; returns the next cluster."""
        per = PAGE_SIZE >> (2 if self.fat32 else 1)
        fmt = ("<%dI" if self.fat32 else "<%dH") % per
        c = start
        while c <= self.max_cluster and len(out) < want:
            page_first = c - c % per
            vals = struct.unpack(fmt, self.bc.read(self.fat_entry_off(page_first), PAGE_SIZE))
            i = c - page_first
            end = min(per, self.max_cluster + 1 - page_first)
            while i < end and len(out) < want:
                v = vals[i]
                if self.fat32:
                    v &= 0x0FFFFFFF
                if v == 0:
                    out.append(page_first + i)
                i += 1
            c = page_first + i
        return c

    def count_free(self):
        if self.free_clusters is None:
            per = PAGE_SIZE >> (2 if self.fat32 else 1)
            fmt = ("<%dI" if self.fat32 else "<%dH") % per
            free = 0
            c = 0
            while c <= self.max_cluster:
                vals = struct.unpack(fmt, self.bc.read(self.fat_entry_off(c), PAGE_SIZE))
                n = min(per, self.max_cluster + 1 - c)
                if n < per:
                    vals = vals[:n]
                if c == 0:
                    vals = vals[2:]
                if self.fat32:
                    free += sum(1 for v in vals if not v & 0x0FFFFFFF)
                else:
                    free += vals.count(0)
                c += per
            self.free_clusters = free
        return self.free_clusters

    def alloc_clusters(self, n, prev):
        """Up to n free clusters (at least one, else ENOSPC), chained after
        `prev` (0: a new chain); each is marked end-of-chain, linked, and
        its disk sectors dropped from the metadata cache."""
        got = []
        c = self._scan_free(max(2, self.next_free), n, got)
        if len(got) < n:
            self._scan_free(2, n, got)
        if not got:
            self.free_clusters = 0
            raise KernelError("ENOSPC", "%s: no free cluster" % self.dev.name)
        seen = set()
        out = []
        for x in got:
            if x not in seen:
                seen.add(x)
                out.append(x)
        self.fat_prepare(out + [prev] if prev else out)
        for i in range(len(out)):
            self.fat_set(out[i], out[i + 1] if i + 1 < len(out) else self.eoc_mark)
            self.bc.forget(self.cluster_off(out[i]), self.clus_size)
        if prev:
            self.fat_set(prev, out[0])
        self.next_free = out[-1] + 1 if out[-1] < self.max_cluster else 2
        if self.free_clusters is not None:
            self.free_clusters -= len(out)
        self.fsinfo_dirty = True
        return out

    def free_chain(self, clusters):
        self.fat_prepare(clusters)
        for c in clusters:
            self.fat_set(c, 0)
        if self.free_clusters is not None:
            self.free_clusters += len(clusters)
        if clusters and clusters[0] < self.next_free:
            self.next_free = clusters[0]
        self.fsinfo_dirty = True

    def cluster_off(self, c):
        return self.data_off + (c - 2) * self.clus_size
