# memblock: the early boot allocator. Before the buddy exists, the kernel's
# own metadata (mem_map, the first page tables) is carved out of the usable
# ranges; what is left is then handed to the buddy (memblock_free_all).
# Allocations go top-down below a limit, as Linux's memblock does by default,
# which keeps the low zones (DMA) for the callers that need them.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.e820 import subtract
from kernel_py.arch.x86.cpu import PAGE_SIZE


class Memblock:
    def __init__(self, usable):
        self.memory = list(usable)      # [start, end) ranges the kernel may use
        self.reserved = []              # (start, end, name), in allocation order
        self.retired = False

    def free_ranges(self):
        free = list(self.memory)
        for s, e, _name in self.reserved:
            free = subtract(free, s, e)
        return free

    def reserve(self, start, size, name="reserved"):
        self.reserved.append((start, start + size, name))

    def alloc(self, size, align=PAGE_SIZE, limit=None, name="memblock"):
        """Highest `size` bytes aligned to `align` that end below `limit`."""
        if self.retired:
            raise KernelError("EINVAL", "memblock: allocation after the buddy took over")
        if size <= 0 or align <= 0 or align & (align - 1):
            raise KernelError("EINVAL", "memblock: size %d align %d" % (size, align))
        size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        free = self.free_ranges()
        for i in range(len(free) - 1, -1, -1):
            s, e = free[i]
            if limit is not None and e > limit:
                e = limit
            start = (e - size) & ~(align - 1)
            if e - s >= size and start >= s:
                self.reserve(start, size, name)
                return start
        raise KernelError("ENOMEM", "memblock: %d bytes below %s" % (size, limit))

    def reserved_bytes(self):
        return sum(e - s for s, e, _n in self.reserved)
