# Scanning a page table for its used entries (pgtable.used_slots), and the
# fault handler's walk of a user address (pte_lookup), in MicroPython's
# viper code, for the guest.
#
# Why viper. used_slots compares views of the table with zero bytes, 64
# then 8 entries at a time, in a recursion of Python calls, and reads each
# entry of a non-zero group of 8 through hw: ~75,000 guest instructions
# for a table with one entry (measured with -icount, even with string.c's
# word-wise memcmp; ~130,000 with the byte loop before it). Here each
# entry is two plain loads through the direct map, four entries a step
# while they are zero: ~25,000 for a whole table, ~2,800 for the one-entry
# ranges free_pgtables scans in the upper levels (slub_fast.py's header
# explains the casts and why big constants are built at run time).
#
# pte_lookup replaces the handler's four hw.read64 calls (~450 guest
# instructions each, measured with -icount) with one call into viper.
#
# The state: `out`, an array('I') of 512 slots the indices are written
# to, and the handler's array('Q') the PTE is returned in; each is cast
# first (which tells the host's stand-in for the casts which machine the
# table is on). pgtable.py and fault.py keep the plain scan and walk as
# the reference (the host runs them; tests/model/test_pgtable_fast.py
# compares the two).

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.native import const, host_ptr32, micropython, ptr32
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_PRESENT

_DMB_HI = const(-0x7780)   # DIRECT_MAP_BASE >> 32, signed
_32 = const(32)
ENTRIES = const(512)
_ADDR_HI = const(0xFFFFF)  # PTE_ADDR_MASK's bits 32..51, as an entry's high half holds them

if (_DMB_HI << 32) + (1 << 64) != DIRECT_MAP_BASE or (_ADDR_HI << 32 | 0xFFFFF000) != PTE_ADDR_MASK \
        or _PAGE_PRESENT != 1:
    raise ImportError("pgtable_fast: constants out of step with layout.py, cpu.py")


def new_out():
    from array import array
    return array("I", bytes(4 * ENTRIES))


@micropython.viper
def used_entries(out, table: int, i0: int, i1: int) -> int:
    """The indices in [i0, i1) of the table's non-zero entries, in order,
    into out; returns how many."""
    sh = _32                    # not folded: the parser would make a long of the product
    o = ptr32(out)
    p = ptr32((_DMB_HI << sh) + table)
    n = 0
    i = i0
    while i < i1:
        if i & 3 == 0 and i + 4 <= i1:      # four entries at a time while they are zero
            j = i << 1
            if not (p[j] | p[j + 1] | p[j + 2] | p[j + 3] | p[j + 4] | p[j + 5] | p[j + 6] | p[j + 7]):
                i += 4
                continue
        if p[i << 1] or p[(i << 1) + 1]:
            o[n] = i
            n += 1
        i += 1
    return n


def new_pte_out():
    from array import array
    return array("Q", [0])


@micropython.viper
def pte_lookup(out, pgd: int, va: int) -> int:
    """The pa of user address va's PTE slot under PML4 pgd, its entry in
    out[0]; 0 when an entry above it is not present (then out is left as
    it was). Present upper entries are tables: user tables hold no huge
    pages (the handler's walk, fault.py)."""
    sh = _32
    dmb = _DMB_HI << sh
    o = ptr32(out)
    p = ptr32(dmb + pgd + ((va >> 36) & 0xFF8))
    lo = p[0]
    if not lo & 1:
        return 0
    p = ptr32(dmb + ((lo & ~0xFFF) | ((p[1] & _ADDR_HI) << sh)) + ((va >> 27) & 0xFF8))
    lo = p[0]
    if not lo & 1:
        return 0
    p = ptr32(dmb + ((lo & ~0xFFF) | ((p[1] & _ADDR_HI) << sh)) + ((va >> 18) & 0xFF8))
    lo = p[0]
    if not lo & 1:
        return 0
    t = ((lo & ~0xFFF) | ((p[1] & _ADDR_HI) << sh)) + ((va >> 9) & 0xFF8)
    p = ptr32(dmb + t)
    o[0] = p[0]
    o[1] = p[1]
    return t


def install_host():
    """Host tests: run used_entries and pte_lookup on CPython with the
    stand-in for viper's casts (register their arrays with
    native.register_area first)."""
    globals()["ptr32"] = host_ptr32
