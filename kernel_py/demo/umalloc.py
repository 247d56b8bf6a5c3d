# A C library's malloc, in miniature, on top of a process's brk and mmap (the
# demo of issue 5): small requests come from the brk heap through a
# first-fit free list with splitting and coalescing; requests of
# M_MMAP_THRESHOLD (128 KiB) or more get an mmap of their own. Like glibc,
# each chunk carries a header in the process's memory (its size at
# chunk+8, the user pointer at chunk+16), so malloc touches memory and
# free reads the header back (a corrupted header is caught). The heap
# grows with sbrk in steps of at least M_TOP_PAD and is trimmed when
# M_TRIM_THRESHOLD is free at its top.

from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import page_align
from kernel_py.mm.vm.vma import MAP_PRIVATE, PROT_READ, PROT_WRITE

M_MMAP_THRESHOLD = 128 << 10
M_TOP_PAD = 128 << 10
M_TRIM_THRESHOLD = 128 << 10
HDR = 16
MIN_CHUNK = 32
PREV_INUSE = 1
IS_MMAPPED = 2
MAX_REQUEST = 1 << 40


class Heap:
    def __init__(self):
        self.free = []              # [[chunk, size]] sorted by chunk address
        self.chunks = {}            # user pointer -> (chunk size, mmapped)

    def copy(self):
        h = Heap()
        h.free = [list(c) for c in self.free]
        h.chunks = dict(self.chunks)
        return h

    def in_use(self):
        return sum(size for size, mm in self.chunks.values())

    def free_bytes(self):
        return sum(size for c, size in self.free)


def heap_of(task):
    if task.heap is None:
        task.heap = Heap()
    return task.heap


def malloc(k, task, size):
    """The user pointer of a new block of `size` bytes."""
    if type(size) is not int or size <= 0 or size > MAX_REQUEST:
        raise KernelError("EINVAL", "size must be 1..2^40")
    h = heap_of(task)
    mm = task.mm
    need = (size + HDR + 15) & ~15
    if need < MIN_CHUNK:
        need = MIN_CHUNK
    if need >= M_MMAP_THRESHOLD:
        length = page_align(need)
        chunk = mm.mmap(0, length, PROT_READ | PROT_WRITE, MAP_PRIVATE)
        ptr = chunk + HDR
        k.procs.run_in(task, k.hw.vwrite64, chunk + 8, length | IS_MMAPPED)
        h.chunks[ptr] = (length, True)
        return ptr
    chunk = take(h, need)
    if chunk is None:
        grow(k, task, h, need)
        chunk = take(h, need)
    ptr = chunk + HDR
    k.procs.run_in(task, k.hw.vwrite64, chunk + 8, need | PREV_INUSE)
    h.chunks[ptr] = (need, False)
    return ptr


def take(h, need):
    """First fit from the free list, splitting off the rest."""
    fl = h.free
    for i in range(len(fl)):
        c, size = fl[i]
        if size >= need:
            if size - need >= MIN_CHUNK:
                fl[i] = [c + need, size - need]
            else:
                del fl[i]
            return c
    return None


def grow(k, task, h, need):
    mm = task.mm
    old = mm.brk
    start = (old + 15) & ~15
    top = start
    if h.free and h.free[-1][0] + h.free[-1][1] == start:
        top = h.free[-1][0]             # the free chunk at the top grows
    new_brk = page_align(top + need + M_TOP_PAD)
    mm.set_brk(new_brk)
    if top == start:
        h.free.append([start, new_brk - start])
    else:
        h.free[-1][1] = new_brk - top


def free(k, task, ptr):
    h = heap_of(task)
    rec = h.chunks.get(ptr)
    if rec is None:
        raise KernelError("EINVAL", "free(): invalid pointer 0x%x" % ptr)
    size, mmapped = rec
    hdr = k.procs.run_in(task, k.hw.vread64, ptr - HDR + 8)
    want = size | (IS_MMAPPED if mmapped else PREV_INUSE)
    if hdr != want:
        raise KernelError("EIO", "free(): invalid size 0x%x at 0x%x (heap corrupted)" % (hdr, ptr))
    del h.chunks[ptr]
    chunk = ptr - HDR
    if mmapped:
        task.mm.munmap(chunk, size)
        return
    insert_free(h, chunk, size)
    trim(task, h)


def insert_free(h, chunk, size):
    fl = h.free
    i = 0
    while i < len(fl) and fl[i][0] < chunk:
        i += 1
    fl.insert(i, [chunk, size])
    if i + 1 < len(fl) and chunk + size == fl[i + 1][0]:
        fl[i][1] += fl[i + 1][1]
        del fl[i + 1]
    if i > 0 and fl[i - 1][0] + fl[i - 1][1] == chunk:
        fl[i - 1][1] += fl[i][1]
        del fl[i]


def trim(task, h):
    """Give the top of the heap back when M_TRIM_THRESHOLD of it is free."""
    if not h.free:
        return
    mm = task.mm
    c, size = h.free[-1]
    if c + size != mm.brk:
        return
    keep_end = page_align(c + MIN_CHUNK)
    if mm.brk - keep_end < M_TRIM_THRESHOLD:
        return
    mm.set_brk(keep_end)
    h.free[-1][1] = keep_end - c
