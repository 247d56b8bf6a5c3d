# The firmware memory map, reduced to the RAM the kernel may manage: usable
# E820 ranges, page-aligned inward, minus the ranges already in use (kernel
# image, VM heap, boot tables, stacks, modules, low firmware memory).

from kernel_py.arch.x86.layout import E820_RAM
from kernel_py.arch.x86.cpu import PAGE_SIZE


def page_up(a):
    return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def page_down(a):
    return a & ~(PAGE_SIZE - 1)


def subtract(ranges, start, end):
    """Remove [start, end) from a sorted list of disjoint [s, e) ranges."""
    out = []
    for s, e in ranges:
        if e <= start or s >= end:
            out.append((s, e))
            continue
        if s < start:
            out.append((s, start))
        if e > end:
            out.append((end, e))
    return out


class MemoryMap:
    def __init__(self, firmware, reserved):
        self.firmware = sorted(firmware)
        self.reserved = sorted(reserved)
        ram = []
        for base, length, kind in self.firmware:
            s, e = page_up(base), page_down(base + length)
            if kind == E820_RAM and e > s:
                ram.append((s, e))
        self.ram = ram
        usable = list(ram)
        for start, end, _name in self.reserved:
            usable = subtract(usable, page_down(start), page_up(end))
        self.usable = usable

    def total_ram(self):
        return sum(e - s for s, e in self.ram)

    def total_usable(self):
        return sum(e - s for s, e in self.usable)

    def max_pfn(self):
        return self.ram[-1][1] // PAGE_SIZE if self.ram else 0
