# 4-level page-table primitives over physical memory (SDM 3A, 4.5). Tables
# are frames read and written through hw; nothing is cached in Python, so a
# table built here is exactly what the MMU (and the host walker) sees.
#
# Levels use Linux's enum pg_level: 4 = PML4 entry, 3 = PDPTE (1 GiB leaf
# with PS), 2 = PDE (2 MiB leaf with PS), 1 = PTE (4 KiB); cpu.LEVEL_SHIFT
# is indexed by them.
#
# walk() is the kernel's one page-table walk (xv6's walk(): one function,
# an alloc hook, the entry's address back); every other way into the
# tables is built on it or, for ranges, on pt_tables() and tables() below.
# The one exception is the fault handler's hot path (mm/vm/fault.py), which
# inlines the walk of a user address; tests/model/test_fault_walk.py checks
# that it reaches the entries walk() reaches.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.native import VIPER, micropython
from kernel_py.arch.x86.pgtable_fast import new_out, used_entries
from kernel_py.arch.x86.cpu import (
    LEVEL_SHIFT, PAGE_SIZE, PGDIR_SIZE, PMD_SIZE, PTE_ADDR_MASK, PUD_SIZE,
    _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER,
)

LEVEL_SIZE = (0, PAGE_SIZE, PMD_SIZE, PUD_SIZE, PGDIR_SIZE)      # indexed by level
# Non-leaf entries grant everything; the leaf decides (4.6: rights are the
# AND of RW/US and the OR of XD over the levels). Linux's _KERNPG_TABLE,
# and with USER its _PAGE_TABLE (what a user address's tables get).
TABLE_FLAGS = _PAGE_PRESENT | _PAGE_RW
USER_TABLE = TABLE_FLAGS | _PAGE_USER
ZERO_TABLE = bytes(PAGE_SIZE)
M64 = 0xFFFFFFFFFFFFFFFF
VA_END = 1 << 48                        # the end of a 4-level address space (before sign extension)


@micropython.native
def walk(hw, root, va, level=1, alloc=None, tflags=0):
    """The entry that maps va at `level` (1: its 4 KiB PTE; 2, 3: the PDE /
    PDPTE of a 2 MiB / 1 GiB page), reached from the PML4 at root.

    A missing table on the way is made by alloc(epa) when alloc is given: it
    links a zeroed table at entry epa and returns the table's pa (None: out
    of memory). Present entries on the way that lack any of tflags get them
    (a user page under tables made for the kernel).

    Returns (lvl, epa, e): the entry the walk ended at and its value: at
    `level`, or above it when the entry there is not present (and was not
    allocated) or maps a huge page (PS)."""
    r64 = hw.read64
    t = root
    lvl = 4
    while True:
        epa = t + (((va >> LEVEL_SHIFT[lvl]) & 511) << 3)
        e = r64(epa)
        if lvl == level:
            return lvl, epa, e
        if not e & _PAGE_PRESENT:
            if alloc is None:
                return lvl, epa, e
            t = alloc(epa)
            if t is None:
                return lvl, epa, e
        elif lvl < 4 and e & _PAGE_PSE:
            return lvl, epa, e
        else:
            if e & tflags != tflags:
                hw.write64(epa, e | tflags)
            t = e & PTE_ADDR_MASK
        lvl -= 1


def pte_slot(hw, root, va, alloc=None):
    """Physical address of va's 4 KiB PTE, or None when a table above it is
    missing (or could not be allocated) or a huge page maps va."""
    lvl, epa, e = walk(hw, root, va, 1, alloc)
    return epa if lvl == 1 else None


ZERO_VIEW = memoryview(ZERO_TABLE)
SLOT_GROUPS = (64, 8)                   # entries per group, coarse to fine, for used_slots
# used_slots scans in viper in the guest (pgtable_fast.py); the host, and
# the guest when this is cleared, with the views below. SLOTS_OUT is the
# viper scan's output (the list used_slots returns is a copy: callers nest)
FAST_SCAN = [VIPER]
SLOTS_OUT = new_out()


def used_slots(hw, table, i0, i1):
    """The indices in [i0, i1) of the table's non-zero entries, in order,
    and of the zero entries that share a group of 8 with one (callers test
    each entry they read anyway).

    A process's tables are sparse (a stack's page table maps a few pages of
    its 512; a PML4 has a handful of entries in 256), and reading every
    entry costs a hw call each: exit, fork and munmap spent milliseconds so
    under TCG. So runs of zero entries are skipped by comparing a view of
    the table with zero bytes (one memcmp in C), 64 entries, then 8 at a
    time, and only the entries of a non-zero group of 8 are read. The
    guest scans in viper instead (pgtable_fast.py: the view comparisons
    cost tens of thousands of instructions a table under TCG) and returns
    exactly the non-zero entries."""
    if FAST_SCAN[0]:
        n = used_entries(SLOTS_OUT, table, i0, i1)
        return list(SLOTS_OUT[:n]) if n else []
    out = []
    _used(hw.mem, table, i0, i1, 0, out)
    return out


def _used(mem, table, i0, i1, depth, out):
    if i0 >= i1 or mem(table + (i0 << 3), (i1 - i0) << 3) == ZERO_VIEW[:(i1 - i0) << 3]:
        return
    if depth == len(SLOT_GROUPS):
        out.extend(range(i0, i1))       # a group of 8 with something in it
        return
    step = SLOT_GROUPS[depth]
    i = i0
    while i < i1:
        j = min(i1, (i // step + 1) * step)
        _used(mem, table, i, j, depth + 1, out)
        i = j


def pt_tables(hw, root, start, end):
    """(pt_pa, base_va, i0, i1) for each page table (level 1) covering part
    of [start, end): its PTE slots i0..i1-1 (base_va is the address of slot
    0). Ranges without a table are skipped a whole missing level at a time."""
    va = start
    while va < end:
        lvl, epa, e = walk(hw, root, va, 2)
        shift = LEVEL_SHIFT[lvl]
        nxt = ((va >> shift) + 1) << shift
        if lvl == 2 and e & _PAGE_PRESENT and not e & _PAGE_PSE:
            base = va & ~(PMD_SIZE - 1)
            i1 = 512 if end >= nxt else (end - base) >> 12
            yield e & PTE_ADDR_MASK, base, (va - base) >> 12, i1
        va = nxt


def tables(hw, table, start=0, end=VA_END, level=4, base=0):
    """(level, table_pa, epa) of every page table below `table` (a
    level-`level` table, 4: a PML4, at address `base`) reached through the
    entries for [start, end) (48-bit addresses): the table's own level (3
    a PDPT .. 1 a PT) and the entry pointing at it. Children come before
    their parent table, so a caller may free a table it finds empty."""
    r64 = hw.read64
    shift = LEVEL_SHIFT[level]
    size = 1 << shift
    i0 = (max(start, base) - base) >> shift
    i1 = min(512, (end - base + size - 1) >> shift)
    for i in used_slots(hw, table, i0, i1):
        epa = table + (i << 3)
        e = r64(epa)
        if not e & _PAGE_PRESENT or (level < 4 and e & _PAGE_PSE):
            continue
        child = e & PTE_ADDR_MASK
        if level > 2:
            yield from tables(hw, child, start, end, level - 1, base + i * size)
        yield level - 1, child, epa


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
        self._w64 = hw.write64
        self._link = (self.link_kernel_table, self.link_user_table)    # walk()'s alloc, bound once

    def link_kernel_table(self, epa):
        t = self.alloc_table()
        if t is not None:
            self._w64(epa, t | TABLE_FLAGS)
        return t

    def link_user_table(self, epa):
        t = self.alloc_table()
        if t is not None:
            self._w64(epa, t | USER_TABLE)
        return t

    def live(self, root):
        return self.hw.read_cr3() & PTE_ADDR_MASK == root

    def walk(self, root, va):
        """(level, entry_pa, entry) of the entry that ends the walk for va:
        a not-present entry, or the leaf."""
        return walk(self.hw, root, va)

    def translate(self, root, va):
        """Physical address va maps to, or None."""
        level, _epa, e = walk(self.hw, root, va)
        if not e & _PAGE_PRESENT:
            return None
        return (e & PTE_ADDR_MASK & ~(LEVEL_SIZE[level] - 1)) | (va & (LEVEL_SIZE[level] - 1))

    def map(self, root, va, pa, flags, size=PAGE_SIZE):
        """Map one page. `flags` are the leaf's bits besides P and PS
        (RW, USER, NX, GLOBAL, PWT, PCD). EEXIST if va is already mapped."""
        want = leaf_level(size)
        if (va | pa) & (size - 1):
            raise KernelError("EINVAL", "va 0x%x / pa 0x%x not aligned to 0x%x" % (va & M64, pa, size))
        user = flags & _PAGE_USER
        lvl, epa, e = walk(self.hw, root, va, want, self._link[1 if user else 0],
                           USER_TABLE if user else TABLE_FLAGS)
        if lvl != want:
            if e & _PAGE_PRESENT:
                raise KernelError("EEXIST", "0x%x inside a huge page" % (va & M64))
            raise KernelError("ENOMEM", "page table for 0x%x" % (va & M64))
        if e & _PAGE_PRESENT:
            raise KernelError("EEXIST", "0x%x already mapped" % (va & M64))
        e = pa | flags | _PAGE_PRESENT
        if want > 1:
            e |= _PAGE_PSE
        self._w64(epa, e)

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
        hw = self.hw
        level, epa, e = walk(hw, root, va)
        if not e & _PAGE_PRESENT:
            return 0
        hw.write64(epa, 0)
        if free_tables and self.free_table is not None:
            readbytes = hw.readbytes
            while level < 4:
                table = epa & ~(PAGE_SIZE - 1)          # the table holding the entry just cleared
                if readbytes(table, PAGE_SIZE) != ZERO_TABLE:
                    break
                level, epa, _e = walk(hw, root, va, level + 1)     # the entry pointing at it
                hw.write64(epa, 0)
                self.free_table(table)
        if self.live(root):
            hw.invlpg(va)
        return e

    def protect(self, root, va, set_bits=0, clear_bits=0):
        """Change the leaf flags of va; returns the new entry. ENOENT if unmapped."""
        level, epa, e = walk(self.hw, root, va)
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
