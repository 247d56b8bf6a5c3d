"""A small builder of x86-64 page tables in a machine's physical memory,
with a bump allocator for the table pages. The sim uses it for the boot
tables; model tests use it to lay out exactly the entries they exercise.
(The kernel has its own page-table code in kernel_py/mm; this is not it.)
"""

from kernel_py.arch.x86.cpu import (
    LEVEL_SHIFT, PAGE_SIZE, PMD_SIZE, PUD_SIZE, PTE_ADDR_MASK,
    _PAGE_PRESENT, _PAGE_RW, _PAGE_PSE,
)

TABLE_FLAGS = _PAGE_PRESENT | _PAGE_RW
_LEAF_LEVEL = {PUD_SIZE: 1, PMD_SIZE: 2, PAGE_SIZE: 3}


class Builder:
    """Tables rooted at `self.pml4`, allocated from [start, end)."""

    def __init__(self, hw, start, end=None, zero=True):
        self.hw = hw
        self.start = start
        self.next = start
        self.end = end
        self.zero = zero         # boot memory is already zero: skip the fill
        self.pml4 = self.alloc()

    def alloc(self):
        pa = self.next
        if self.end is not None and pa + PAGE_SIZE > self.end:
            raise MemoryError("page-table pool exhausted")
        self.next += PAGE_SIZE
        if self.zero:
            self.hw.fill(pa, 0, PAGE_SIZE)
        return pa

    def entry(self, va, level, create=False, table_flags=TABLE_FLAGS):
        """Physical address of the level-`level` entry (0 = PML4E .. 3 = PTE)
        for va; missing tables are allocated when `create`."""
        table = self.pml4
        for lv in range(level):
            epa = table + ((va >> LEVEL_SHIFT[4 - lv]) & 511) * 8
            e = self.hw.read64(epa)
            if not e & _PAGE_PRESENT:
                if not create:
                    raise LookupError("no table at level %d for %#x" % (lv + 1, va))
                e = self.alloc() | table_flags
                self.hw.write64(epa, e)
            table = e & PTE_ADDR_MASK
        return table + ((va >> LEVEL_SHIFT[4 - level]) & 511) * 8

    def map(self, va, pa, size=PAGE_SIZE, flags=TABLE_FLAGS,
            table_flags=TABLE_FLAGS):
        """Map one page of `size` (4 KiB, 2 MiB or 1 GiB); PS is added for
        the large sizes. Returns the physical address of the leaf entry."""
        level = _LEAF_LEVEL[size]
        epa = self.entry(va, level, True, table_flags)
        if size != PAGE_SIZE:
            flags |= _PAGE_PSE
        self.hw.write64(epa, pa | flags)
        return epa

    def map_range(self, va, pa, length, size=PAGE_SIZE, flags=TABLE_FLAGS):
        for off in range(0, length, size):
            self.map(va + off, pa + off, size, flags)
