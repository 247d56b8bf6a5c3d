# The memory system calls' first versions (Linux's mm/mmap.c, mprotect.c):
# brk, anonymous mmap, munmap, mprotect over MmStruct, enough for glibc's
# start-up. ISSUE 14 WORK IN PROGRESS: file mappings, MAP_FIXED replacing,
# mremap, madvise, mincore and msync come with the mm syscalls' own change,
# which moves these beside their Linux counterparts.

from kernel_py.lib.errno import EINVAL, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.mm.vm.mmap import page_align
from kernel_py.mm.vm.vma import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED


def sys_brk(t, addr):
    """brk: the new break, or the old one when the move fails (Linux's
    convention: glibc compares)."""
    mm = t.mm
    if addr < mm.start_brk:
        return mm.brk
    try:
        return mm.set_brk(addr)
    except KernelError:
        return mm.brk


def sys_mmap(t, addr, length, prot, flags, fd, off):
    mm = t.mm
    if length <= 0 or off & 0xFFF:
        return -EINVAL
    if not flags & MAP_ANONYMOUS:
        return -errno_of("ENODEV")
    if flags & MAP_FIXED and addr & 0xFFF:
        return -EINVAL
    try:
        if flags & MAP_FIXED:
            mm.unmap_range(addr, addr + page_align(length))
        return mm.mmap(addr, length, prot & 7, flags & (MAP_SHARED | MAP_PRIVATE | MAP_FIXED))
    except KernelError as e:
        return -errno_of(e.errname)


def sys_munmap(t, addr, length):
    try:
        t.mm.munmap(addr, length)
    except KernelError as e:
        return -errno_of(e.errname)
    return 0


def sys_mprotect(t, addr, length, prot):
    if addr & 0xFFF:
        return -EINVAL
    if length == 0:
        return 0
    try:
        t.mm.mprotect(addr, page_align(length), prot & 7)
    except KernelError as e:
        return -errno_of(e.errname)
    return 0


