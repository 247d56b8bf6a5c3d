# The lru_add batch drain (rmap.AnonLru.drain) in MicroPython's viper code,
# for the guest: Linux's lru_add_drain moving a per-CPU batch of new pages
# onto the inactive anon list.
#
# Why viper. Every anonymous fault appends its frame to the batch, and each
# frame then costs a drain step: a rmap read, a flags read, three list
# writes and a flags write. In bytecode those are six hw calls plus a method
# call, about 6.8 us a frame under TCG (a quarter of a fault); here they are
# plain loads and stores through the direct map, as in slub_fast.py, whose
# header explains the casts.
#
# Same checks as the Python drain, which the host runs (VIPER is False there;
# tests/model/test_lru_fast.py runs this function on the simulated machine
# through native.host_ptr32 and compares it with the Python drain).

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.native import const, host_ptr32, micropython, ptr32
from kernel_py.mm.page.page_ext import EXT_MASK, EXT_SHIFT
from kernel_py.mm.types import (
    KIND_ANON, KIND_SHIFT, NIL, OFF_NEXT, OFF_PREV, PG_active, PG_lru, RECORD_SHIFT,
)

_EXT_SHIFT = const(19)          # page_ext's EXT_SHIFT: frames per block of the rmap's words
_EXT_MASK = const(0x7FFFF)
_DMB_HI = const(-0x7780)        # DIRECT_MAP_BASE >> 32, signed (see slub_fast.py)
_32 = const(32)
_PG_LRU = const(0x80)
_PG_ACTIVE = const(0x40)
_KIND_ANON = const(5)
_KIND_SHIFT = const(12)

if ((_DMB_HI << 32) + (1 << 64) != DIRECT_MAP_BASE or _PG_LRU != PG_lru or _PG_ACTIVE != PG_active
        or _KIND_ANON != KIND_ANON or _KIND_SHIFT != KIND_SHIFT or RECORD_SHIFT != 4
        or OFF_NEXT != 8 or OFF_PREV != 12 or NIL != 0xFFFFFFFF or _EXT_SHIFT != EXT_SHIFT or _EXT_MASK != EXT_MASK):
    raise ImportError("lru_fast: constants out of step with layout.py, types.py, page_ext.py")


@micropython.viper
def lru_add_drain(pend, ext, rec_base: int, head) -> int:
    """Push every frame of pend (pas) that is still a mapped anonymous page
    (its rmap word is set) and on no list at the head of the list whose
    (first, last, n) head (array('I')) holds, clearing PG_active; returns
    how many it pushed. ext: array('q') of the rmap's page_ext blocks (pas);
    rec_base: the pa of mem_map."""
    sh = _32
    dmb = _DMB_HI << sh
    nil = (1 << sh) - 1
    e = ptr32(ext)
    h = ptr32(head)
    recs = dmb + rec_base
    first = h[0]
    last = h[1]
    added = 0
    for o in pend:
        pfn = int(o) >> 12
        j = (pfn >> _EXT_SHIFT) << 1
        w = ptr32(dmb + (e[j] | (e[j + 1] << sh)) + ((pfn & _EXT_MASK) << 3))
        if w[0] == 0 and w[1] == 0:
            continue                            # freed since: no rmap
        rec = ptr32(recs + (pfn << 4))
        v = rec[0]                              # flags | kind << 12 | order << 16 | aux << 24
        if v & _PG_LRU or ((v >> _KIND_SHIFT) & 15) != _KIND_ANON:
            continue
        rec[2] = first                          # OFF_NEXT
        rec[3] = nil                            # OFF_PREV
        if first == nil:
            last = pfn
        else:
            ptr32(recs + (first << 4))[3] = pfn
        first = pfn
        rec[0] = (v | _PG_LRU) & ~_PG_ACTIVE
        added += 1
    h[0] = first
    h[1] = last
    h[2] = h[2] + added
    return added


def install_host():
    """Host tests: run lru_add_drain on CPython with the stand-in for
    viper's casts (register ext and head with native.register_area first,
    so their addresses resolve on the right machine)."""
    globals()["ptr32"] = host_ptr32
