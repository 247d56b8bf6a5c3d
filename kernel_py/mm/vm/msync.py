# msync(2) (Linux's mm/msync.c): the checks and the walk over the VMAs of
# the range; each mapped run is MmStruct.msync's (MS_SYNC writes the dirty
# pages of shared file mappings, MS_ASYNC and MS_INVALIDATE have nothing to
# do, as its comment says). As Linux: holes are skipped and answered with
# ENOMEM once the mapped parts were synced; with MS_ASYNC alone a hole ends
# the call (ENOMEM) at once.

from kernel_py.lib.errno import EINVAL, ENOMEM, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.mm.vm.mmap import M64, page_align
from kernel_py.mm.vm.vma import MS_ASYNC, MS_INVALIDATE, MS_SYNC


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
