# madvise(2) (Linux's mm/madvise.c): advice on a range of the address space.
#
# The range is walked VMA by VMA as madvise_walk_vmas does: holes are
# skipped and the call answers ENOMEM at the end (the mapped parts got the
# advice). What each advice does here:
#   MADV_DONTNEED       the pages go now (zap): private anonymous memory
#                       reads zeros again, a private file mapping shows the
#                       file again (its private copies are dropped), shared
#                       memory keeps its contents (only the PTEs go)
#   MADV_FREE           private anonymous memory only (else EINVAL): freed
#                       at once, as MADV_DONTNEED. Linux frees such pages
#                       lazily, when reclaim gets to them and only if they
#                       were not written since (they keep their data until
#                       then); freeing them at once is one of the outcomes
#                       Linux allows (a read returns the old data or zeros)
#   MADV_WILLNEED       file mappings: the file's pages read into the page
#                       cache now (readahead, up to the end of the file);
#                       anonymous memory: what is on swap read back in (and
#                       mapped: this swap cache keeps no unmapped page)
#   MADV_POPULATE_READ/WRITE   fault the range in (read or write faults)
#   MADV_NORMAL/RANDOM/SEQUENTIAL, DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK,
#   DONTDUMP/DODUMP, MERGEABLE/UNMERGEABLE, HUGEPAGE/NOHUGEPAGE
#                       the VMA's flags (split at the range's ends); fork
#                       honours VM_DONTCOPY and VM_WIPEONFORK, the others
#                       change nothing here (no readahead window, no core
#                       dumps, no KSM, no huge pages)
#   MADV_COLD, MADV_PAGEOUT   accepted, nothing done (hints)
#   MADV_REMOVE         private mappings EINVAL; shared ones EOPNOTSUPP
#                       (no file system here punches holes)
#   MADV_COLLAPSE       EINVAL (no transparent huge pages)
# Anything else (MADV_HWPOISON and MADV_SOFT_OFFLINE included: no
# CONFIG_MEMORY_FAILURE) is EINVAL.

from kernel_py.lib.errno import EINVAL, ENOMEM, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import PAGE_SIZE
from kernel_py.mm.types import (
    M64, SHM_SWAPPED, VM_ACCESS, VM_DONTCOPY, VM_DONTDUMP, VM_HUGEPAGE, VM_MERGEABLE, VM_NOHUGEPAGE,
    VM_RAND_READ, VM_SEQ_READ, VM_SHARED, VM_WIPEONFORK, VM_WRITE, is_swap_pte, page_align,
)
from kernel_py.mm.vm.memory import k_swapin, shmem_swapin
from kernel_py.mm.vm.mmap import populate
from kernel_py.mm.vm.vma import NO_VMA

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_MERGEABLE = 12
MADV_UNMERGEABLE = 13
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_DONTDUMP = 16
MADV_DODUMP = 17
MADV_WIPEONFORK = 18
MADV_KEEPONFORK = 19
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_DONTNEED_LOCKED = 24
MADV_COLLAPSE = 25

READAHEAD_MAX = 512                             # pages read in one request (2 MiB, Linux's too)

# advice that only changes the VMA's flags: (flags set, flags cleared)
FLAG_ADVICE = {
    MADV_NORMAL: (0, VM_RAND_READ | VM_SEQ_READ),
    MADV_RANDOM: (VM_RAND_READ, VM_SEQ_READ),
    MADV_SEQUENTIAL: (VM_SEQ_READ, VM_RAND_READ),
    MADV_DONTFORK: (VM_DONTCOPY, 0),
    MADV_DOFORK: (0, VM_DONTCOPY),
    MADV_WIPEONFORK: (VM_WIPEONFORK, 0),
    MADV_KEEPONFORK: (0, VM_WIPEONFORK),
    MADV_DONTDUMP: (VM_DONTDUMP, 0),
    MADV_DODUMP: (0, VM_DONTDUMP),
    MADV_MERGEABLE: (VM_MERGEABLE, 0),
    MADV_UNMERGEABLE: (0, VM_MERGEABLE),
    MADV_HUGEPAGE: (VM_HUGEPAGE, VM_NOHUGEPAGE),
    MADV_NOHUGEPAGE: (VM_NOHUGEPAGE, VM_HUGEPAGE),
}
VALID = (MADV_WILLNEED, MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_COLD, MADV_PAGEOUT,
         MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED, MADV_COLLAPSE)


def sys_madvise(t, start, len_in, behavior):
    start &= M64
    len_in &= M64
    behavior &= 0xFFFFFFFF
    if behavior & 0x80000000:
        behavior -= 1 << 32                     # an int
    if behavior not in FLAG_ADVICE and behavior not in VALID:
        return -EINVAL
    if start & (PAGE_SIZE - 1):
        return -EINVAL
    length = page_align(len_in) & M64
    if len_in and not length:
        return -EINVAL                          # rounded up from a small negative to zero
    end = start + length
    if end > M64:
        return -EINVAL
    if end == start:
        return 0
    try:
        return madvise_walk(t, t.mm, start, end, behavior)
    except KernelError as e:
        return -errno_of(e.errname)


def madvise_walk(t, mm, start, end, behavior):
    """Each VMA part of [start, end) gets the advice; 0, or ENOMEM when the
    range had holes, or the first error."""
    unmapped = 0
    while start < end:
        vma = mm.vmas.find_vma(start)
        if vma is None:
            return -ENOMEM
        if start < vma.start:
            unmapped = -ENOMEM
            start = vma.start
            if start >= end:
                break
        tmp = vma.end if vma.end < end else end
        r = madvise_vma(t, mm, vma, start, tmp, behavior)
        if r:
            return r
        start = tmp
    return unmapped


def madvise_vma(t, mm, vma, start, end, behavior):
    k = t.k
    if behavior in FLAG_ADVICE:
        if behavior == MADV_WIPEONFORK and (vma.file is not None or vma.flags & VM_SHARED):
            return -EINVAL                      # anonymous private memory only
        add, clear = FLAG_ADVICE[behavior]
        update_vma_flags(mm, vma, start, end, (vma.flags | add) & ~clear)
        return 0
    if behavior == MADV_DONTNEED or behavior == MADV_DONTNEED_LOCKED:
        mm.zap(vma, start, end)
        return 0
    if behavior == MADV_FREE:
        if vma.file is not None or vma.shm is not None:
            return -EINVAL
        mm.zap(vma, start, end)
        return 0
    if behavior == MADV_WILLNEED:
        willneed(k, mm, vma, start, end)
        return 0
    if behavior == MADV_POPULATE_READ or behavior == MADV_POPULATE_WRITE:
        write = behavior == MADV_POPULATE_WRITE
        if not vma.flags & VM_ACCESS or (write and not vma.flags & VM_WRITE):
            return -errno_of("EFAULT")          # would be refused (check_vma_flags)
        if vma.file is not None:
            eof = vma.start + ((((vma.file.ino.i_size + PAGE_SIZE - 1) >> 12) - vma.pgoff) << 12)
            if end > eof:
                return -errno_of("EFAULT")      # SIGBUS past the end of the file
        if not populate(k, mm, start, end, write):
            return -ENOMEM
        return 0
    if behavior == MADV_REMOVE:
        return -errno_of("EOPNOTSUPP") if vma.flags & VM_SHARED else -EINVAL
    if behavior == MADV_COLLAPSE:
        return -EINVAL
    return 0                                    # MADV_COLD, MADV_PAGEOUT


def update_vma_flags(mm, vma, start, end, flags):
    """madvise_update_vma: [start, end) of vma gets flags (split off when
    it is part of vma), then merges where it can."""
    if flags == vma.flags:
        return
    if vma.start < start:
        vma = mm.split(vma, start)
    if vma.end > end:
        mm.split(vma, end)
    vma.set_flags(flags)
    mm.vma_cache = NO_VMA
    if vma.shm is None and vma.file is None:
        mm.merge_around(vma)


def willneed(k, mm, vma, start, end):
    """MADV_WILLNEED: file pages into the page cache; swapped anonymous
    pages back in (the shared object's or the PTEs')."""
    if vma.file is not None:
        cache = k.pagecache
        mapping = vma.file.mapping
        size = vma.file.ino.i_size
        last = (size - 1) >> 12 if size else -1
        i = vma.offset_of(start)
        hi = vma.offset_of(end)
        if hi > last + 1:
            hi = last + 1
        while i < hi:
            if mapping.pages.get(i) is None:
                try:
                    cache.read_page(mapping, i, min(hi - i, READAHEAD_MAX), hi - 1)
                except KernelError:
                    return                      # no memory, or a read error: it was advice
            i += 1
        return
    if vma.shm is not None:
        shm = vma.shm
        lo, hi = vma.offset_of(start), vma.offset_of(end)
        for off, v in list(shm.pages.items()):
            if lo <= off < hi and v & SHM_SWAPPED:
                try:
                    if shmem_swapin(k, shm, off, v) is None:
                        return
                except KernelError:
                    return
        return
    hw = k.hw
    for pt, base, i0, i1 in list(mm.pt_tables(start, end)):
        for i in range(i0, i1):
            slot = pt + (i << 3)
            e = hw.read64(slot)
            if is_swap_pte(e):
                try:
                    if not k_swapin(k, mm, vma, base + (i << 12), slot, e):
                        return
                except KernelError:
                    return
