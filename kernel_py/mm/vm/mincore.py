# mincore(2) (Linux's mm/mincore.c): one byte per page of [start, start +
# len), bit 0 set when the page is in memory:
#   a PTE holding a frame (present, or PROT_NONE that keeps it)   1
#   a swap entry                         1 while its page is in the swap cache
#   no PTE, file mapping                 1 when the file's page is in the page
#                                          cache (mapped by anyone or not)
#   no PTE, shared anonymous memory      1 when the object holds the page (or
#                                          its swap slot's page is cached)
#   no PTE, private anonymous memory     0
# The vector is filled VMA by VMA, in chunks of at most a page of bytes as
# Linux's: a hole is ENOMEM once the bytes before it were written, a vector
# that cannot be written EFAULT.

from kernel_py.lib.errno import EFAULT, EINVAL, ENOMEM
from kernel_py.arch.x86.cpu import PAGE_SIZE, _PAGE_PRESENT
from kernel_py.arch.x86.layout import USER_END
from kernel_py.mm.types import M64, SHM_SWAPPED, _PAGE_PROTNONE

CHUNK = PAGE_SIZE                       # vector bytes per step (a page of them, as Linux)


def access_ok(addr, n):
    return n <= USER_END and addr <= USER_END - n


def sys_mincore(t, start, length, vec):
    start &= M64
    length &= M64
    vec &= M64
    if start & (PAGE_SIZE - 1):
        return -EINVAL
    if not access_ok(start, length):
        return -ENOMEM
    pages = (length >> 12) + (1 if length & (PAGE_SIZE - 1) else 0)
    if not access_ok(vec, pages):
        return -EFAULT
    k = t.k
    mm = t.mm
    while pages:
        vma = mm.vmas.find(start)
        if vma is None:
            return -ENOMEM
        n = pages if pages < CHUNK else CHUNK
        end = start + (n << 12)
        if end > vma.end:
            end = vma.end
        data = mincore_vma(k, mm, vma, start, end)
        if not k.hw.copy_to_user(vec, data):
            return -EFAULT
        got = len(data)
        pages -= got
        vec += got
        start = end
    return 0


def in_swap_cache(k, e):
    si, off = k.swap.lookup(e)
    return si is not None and k.swapcache.lookup(si, off) is not None


def mincore_vma(k, mm, vma, start, end):
    """The bytes for [start, end), all inside vma."""
    n = (end - start) >> 12
    out = bytearray(n)
    seen = bytearray(n)
    r64 = k.hw.read64
    for pt, base, i0, i1 in mm.pt_tables(start, end):
        for i in range(i0, i1):
            e = r64(pt + (i << 3))
            if not e:
                continue
            j = (base + (i << 12) - start) >> 12
            seen[j] = 1
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE) or in_swap_cache(k, e):
                out[j] = 1
    if vma.file is not None:
        pages = vma.file.mapping.pages
        off = vma.offset_of(start)
        for j in range(n):
            if not seen[j] and off + j in pages:
                out[j] = 1
    elif vma.shm is not None:
        pages = vma.shm.pages
        off = vma.offset_of(start)
        for j in range(n):
            if not seen[j]:
                v = pages.get(off + j)
                if v is not None and (not v & SHM_SWAPPED or in_swap_cache(k, v & ~SHM_SWAPPED)):
                    out[j] = 1
    return bytes(out)
