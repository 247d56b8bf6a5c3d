# msync(2) (Linux's mm/msync.c): the checks and the walk over the VMAs of
# the range (sys_msync); each mapped run is MmSync.msync's (MS_SYNC writes
# the dirty pages of shared file mappings, MS_ASYNC and MS_INVALIDATE have
# nothing to do, as its comment says). As Linux: holes are skipped and
# answered with ENOMEM once the mapped parts were synced; with MS_ASYNC
# alone a hole ends the call (ENOMEM) at once. MmSync is part of the
# address-space object (mm/vm/mmap.py's MmStruct).

from kernel_py.lib.errno import EINVAL, ENOMEM, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.mm.types import M64, VM_SHARED, page_align
from kernel_py.mm.vm.vma import MS_ASYNC, MS_INVALIDATE, MS_SYNC


class MmSync:
    def msync(self, addr, length, flags=MS_SYNC):
        """msync(2) (mm/msync.c): with MS_SYNC the dirty file pages the
        shared mappings of the range hold are written to the disk (and the
        disk's cache flushed); returns pages written. Private and anonymous
        mappings have nothing to write. MS_ASYNC does nothing, as on Linux
        since 2.6.19: dirty shared pages are already tracked, and writeback
        takes them. MS_INVALIDATE has nothing to do either: there is one
        page cache and no mlock (Linux's only use of it is EBUSY on locked
        VMAs)."""
        if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) or (flags & MS_ASYNC and flags & MS_SYNC):
            raise KernelError("EINVAL", "msync flags 0x%x: MS_ASYNC, MS_INVALIDATE, MS_SYNC, not both ASYNC and SYNC" % flags)
        end, hit = self.mapped_cover(addr, length)
        if not flags & MS_SYNC:
            return 0
        cache = self.k.pagecache
        written = 0
        flush = []
        for v in hit:
            f = v.file
            if f is None or not v.flags & VM_SHARED:
                continue
            lo = v.offset_of(max(addr, v.start))
            hi = v.offset_of(min(end, v.end))
            written += cache.writeback_mapping(f.mapping, lo=lo, hi=hi)
            if f.fs.dev not in flush:
                flush.append(f.fs.dev)
        for dev in flush:
            dev.flush()
        return written


def sys_msync(t, start, length, flags):
    start &= M64
    length &= M64
    flags &= 0xFFFFFFFF
    if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
        return -EINVAL
    if start & (PAGE_SIZE - 1):
        return -EINVAL
    if flags & MS_ASYNC and flags & MS_SYNC:
        return -EINVAL
    length = page_align(length)
    end = start + length
    if end > M64:
        return -ENOMEM
    if end == start:
        return 0
    mm = t.mm
    unmapped = 0
    while True:
        vma = mm.vmas.find_vma(start)
        if vma is None:
            return -ENOMEM
        if start < vma.start:
            if flags == MS_ASYNC:
                return -ENOMEM
            start = vma.start
            if start >= end:
                return -ENOMEM
            unmapped = -ENOMEM
        stop = vma.end if vma.end < end else end
        try:
            mm.msync(start, stop - start, flags)
        except KernelError as e:
            return -errno_of(e.errname)
        start = stop
        if start >= end:
            return unmapped
