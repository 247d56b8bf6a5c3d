# Scanning a page table for its used entries (pgtable.used_slots) in
# MicroPython's viper code, for the guest.
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
# The state: `out`, an array('I') of 512 slots the indices are written
# to, cast first (which tells the host's stand-in for the casts which
# machine the table is on). pgtable.py keeps the plain scan as the
# reference (the host runs it; tests/model/test_pgtable_fast.py compares
# the two).

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.native import const, host_ptr32, micropython, ptr32

_DMB_HI = const(-0x7780)   # DIRECT_MAP_BASE >> 32, signed
_32 = const(32)
ENTRIES = const(512)

if (_DMB_HI << 32) + (1 << 64) != DIRECT_MAP_BASE:
    raise ImportError("pgtable_fast: constants out of step with layout.py")


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


def install_host():
    """Host tests: run used_entries on CPython with the stand-in for viper's casts
    (register out with native.register_area first)."""
    globals()["ptr32"] = host_ptr32
