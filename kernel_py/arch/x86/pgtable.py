# 4-level page-table primitives over physical memory (SDM 3A, 4.5). Tables
# are frames read and written through hw; nothing is cached in Python, so a
# table built here is exactly what the MMU (and the host walker) sees.
#
# Levels use Linux's enum pg_level: 4 = PML4 entry, 3 = PDPTE (1 GiB leaf
# with PS), 2 = PDE (2 MiB leaf with PS), 1 = PTE (4 KiB).

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PMD_SIZE, PTE_ADDR_MASK, PUD_SIZE,
    _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER,
)

SHIFT = (0, 12, 21, 30, 39)             # indexed by level
LEVEL_SIZE = (0, PAGE_SIZE, PMD_SIZE, PUD_SIZE, 1 << 39)
LEVEL_NAMES = ("", "pte", "pmd", "pud", "pgd")
# Non-leaf entries grant everything; the leaf decides (4.6: rights are the
# AND of RW/US and the OR of XD over the levels). Linux's _KERNPG_TABLE.
TABLE_FLAGS = _PAGE_PRESENT | _PAGE_RW
ZERO_TABLE = bytes(PAGE_SIZE)
M64 = 0xFFFFFFFFFFFFFFFF


def leaf_level(size):
    if size == PAGE_SIZE:
        return 1
    if size == PMD_SIZE:
        return 2
    if size == PUD_SIZE:
        return 3
    raise KernelError("EINVAL", "page size %r (4K, 2M or 1G)" % (size,))


class PgTable:
    """Page-table operations on any root (a PML4's physical address).

    alloc_table() -> pa of a zeroed frame (or None); free_table(pa).
    Changes to the tables in CR3 are followed by invlpg (4.10.4.1); a new
    entry over a not-present one needs none, the TLB never caches
    not-present translations (4.10.2.3)."""

    def __init__(self, hw, alloc_table, free_table=None):
        self.hw = hw
        self.alloc_table = alloc_table
        self.free_table = free_table
        self._r64, self._w64 = hw.read64, hw.write64
        self._path = [0] * 5            # table pa per level, reused by unmap

    def live(self, root):
        return self.hw.read_cr3() & PTE_ADDR_MASK == root

    def walk(self, root, va):
        """(level, entry_pa, entry) of the entry that ends the walk for va:
        a not-present entry, or the leaf."""
        r64 = self._r64
        t = root
        level = 4
        while True:
            epa = t + (((va >> SHIFT[level]) & 511) << 3)
            e = r64(epa)
            if not e & _PAGE_PRESENT or level == 1 or (level < 4 and e & _PAGE_PSE):
                return level, epa, e
            t = e & PTE_ADDR_MASK
            level -= 1

    def translate(self, root, va):
        """Physical address va maps to, or None."""
        level, _epa, e = self.walk(root, va)
        if not e & _PAGE_PRESENT:
            return None
        return (e & PTE_ADDR_MASK & ~(LEVEL_SIZE[level] - 1)) | (va & (LEVEL_SIZE[level] - 1))

    def map(self, root, va, pa, flags, size=PAGE_SIZE):
        """Map one page. `flags` are the leaf's bits besides P and PS
        (RW, USER, NX, GLOBAL, PWT, PCD). EEXIST if va is already mapped."""
        want = leaf_level(size)
        if (va | pa) & (size - 1):
            raise KernelError("EINVAL", "va 0x%x / pa 0x%x not aligned to 0x%x" % (va & M64, pa, size))
        r64, w64 = self._r64, self._w64
        tflags = TABLE_FLAGS | (flags & _PAGE_USER)
        t = root
        level = 4
        while level > want:
            epa = t + (((va >> SHIFT[level]) & 511) << 3)
            e = r64(epa)
            if not e & _PAGE_PRESENT:
                nt = self.alloc_table()
                if nt is None:
                    raise KernelError("ENOMEM", "page table for 0x%x" % (va & M64))
                w64(epa, nt | tflags)
                t = nt
            else:
                if level < 4 and e & _PAGE_PSE:
                    raise KernelError("EEXIST", "0x%x inside a huge page" % (va & M64))
                if e & tflags != tflags:
                    w64(epa, e | tflags)
                t = e & PTE_ADDR_MASK
            level -= 1
        epa = t + (((va >> SHIFT[level]) & 511) << 3)
        if r64(epa) & _PAGE_PRESENT:
            raise KernelError("EEXIST", "0x%x already mapped" % (va & M64))
        e = pa | flags | _PAGE_PRESENT
        if level > 1:
            e |= _PAGE_PSE
        w64(epa, e)

    def map_range(self, root, va, pa, size, flags, gbpages=False):
        """Map [va, va+size) -> pa with the largest pages alignment allows."""
        end = va + size
        while va < end:
            left = end - va
            if gbpages and not (va | pa) & (PUD_SIZE - 1) and left >= PUD_SIZE:
                step = PUD_SIZE
            elif not (va | pa) & (PMD_SIZE - 1) and left >= PMD_SIZE:
                step = PMD_SIZE
            else:
                step = PAGE_SIZE
            self.map(root, va, pa, flags, step)
            va += step
            pa += step

    def unmap(self, root, va, free_tables=False):
        """Clear the leaf mapping va; returns the old entry (0 if none).
        With free_tables, tables left empty are freed (never the root)."""
        r64, w64, path = self._r64, self._w64, self._path
        t = root
        level = 4
        while True:
            path[level] = t
            epa = t + (((va >> SHIFT[level]) & 511) << 3)
            e = r64(epa)
            if not e & _PAGE_PRESENT:
                return 0
            if level == 1 or (level < 4 and e & _PAGE_PSE):
                break
            t = e & PTE_ADDR_MASK
            level -= 1
        w64(epa, 0)
        if free_tables and self.free_table is not None:
            readbytes = self.hw.readbytes
            while level < 4 and readbytes(path[level], PAGE_SIZE) == ZERO_TABLE:
                up = path[level + 1] + (((va >> SHIFT[level + 1]) & 511) << 3)
                w64(up, 0)
                self.free_table(path[level])
                level += 1
        if self.live(root):
            self.hw.invlpg(va)
        return e

    def protect(self, root, va, set_bits=0, clear_bits=0):
        """Change the leaf flags of va; returns the new entry. ENOENT if unmapped."""
        level, epa, e = self.walk(root, va)
        if not e & _PAGE_PRESENT:
            raise KernelError("ENOENT", "0x%x not mapped" % (va & M64))
        n = (e | set_bits) & ~clear_bits | _PAGE_PRESENT
        if level > 1:
            n |= _PAGE_PSE
        if n != e:
            self._w64(epa, n)
            if self.live(root):
                self.hw.invlpg(va)
        return n


def effective_flags(upper, leaf):
    """Rights the MMU enforces (4.6): RW and USER only if every level has
    them, NX if any level has it. `upper` is the AND/OR summary of the
    non-leaf entries as (and_bits, or_bits)."""
    and_bits, or_bits = upper
    keep = _PAGE_RW | _PAGE_USER
    return (leaf & ~keep) | (leaf & and_bits & keep) | (or_bits & _PAGE_NX)
