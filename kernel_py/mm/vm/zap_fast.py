# zap_pte_range's common case (Linux mm/memory.c) in MicroPython's viper
# code, for the guest: clearing one page table's PTEs of a private anonymous
# VMA and dropping the frames they held.
#
# Why viper. munmap of a 64 KiB mapping spent ~35 us a page in MmMemory.zap
# under TCG (mmbench mmap_munmap): per PTE a read and a clear through hw,
# then put_page -> AnonLru.release -> pcp.free, three method calls and
# half a dozen more hw calls in bytecode. Here those are plain loads and
# stores through the direct map (slub_fast.py's header explains the casts
# and why big constants are built at run time).
#
# The state. One array('q') (ZapBatch.st, words Z_*) carries the table and
# range in, and out: where the function stopped, the frames whose last
# reference went (their record already says count 1, as pcp.free leaves a
# frame; the caller appends them to the pcp list and drains it as pcp.free
# would, in the same order), the addresses to flush (the first
# FLUSH_SLOTS) and how many present PTEs and anon pages went. The anon
# LRU's two list heads travel in an array('I') (first, last, n each), as
# in lru_fast.py.
#
# Guarding. The function handles: empty slots, the zero page, and present
# PTEs of anonymous frames whose count drops (to 0: off the LRU list if on
# one, rmap word cleared, flags reset - AnonLru.release - and handed back).
# It stops, having changed nothing for that slot, at anything else - a swap
# entry, a PROT_NONE entry, a frame not KIND_ANON, a frame in the swap
# cache - and returns its index: MmMemory.zap runs the Python loop (the
# reference, which the host always runs; tests/model/test_zap_fast.py
# compares the two) from there to the table's end.

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.native import const, host_ptr32, micropython, ptr32
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, _PAGE_PRESENT
from kernel_py.mm.page.page_ext import EXT_MASK, EXT_SHIFT
from kernel_py.mm.types import (
    ANON_FLAGS, KIND_ANON, KIND_SHIFT, NIL, OFF_COUNT, OFF_NEXT, OFF_PREV, PG_active, PG_lru,
    PG_swapcache, RECORD_SHIFT, _PAGE_PROTNONE,
)

# words of ZapBatch.st
Z_ZERO = const(0)          # in: the zero page's pa
Z_RECS = const(1)          # in: mem_map's pa
Z_PT = const(2)            # in: the page table's pa
Z_BASE = const(3)          # in: the address of its slot 0
Z_I0 = const(4)            # in: the first slot
Z_I1 = const(5)            # in: the end slot
Z_NFREED = const(6)        # out: frames at Z_FREED..
Z_NPRESENT = const(7)      # out: present PTEs cleared (the first FLUSH_SLOTS at Z_FLUSH..)
Z_RSS = const(8)           # out: anonymous pages unmapped (rss_anon's share)
Z_FLUSH = const(16)
FLUSH_SLOTS = const(34)    # one more than memory.py's TLB_FLUSH_CEILING
Z_FREED = const(64)
ST_WORDS = const(576)      # Z_FREED + 512 slots

_DMB_HI = const(-0x7780)   # DIRECT_MAP_BASE >> 32, signed
_32 = const(32)
_EXT_SHIFT = const(19)
_EXT_MASK = const(0x7FFFF)
_ADDR_HI = const(0xFFFFF)  # PTE_ADDR_MASK's bits 32..51, as the high half holds them
_PRESENT = const(1)
_PROTNONE = const(0x100)
_KIND_ANON = const(5)
_KIND_SHIFT = const(12)
_PG_LRU = const(0x80)
_PG_ACTIVE = const(0x40)
_PG_SWAPCACHE = const(0x100)
_ANON_FLAGS = const(0x5000)

if ((_DMB_HI << 32) + (1 << 64) != DIRECT_MAP_BASE or _EXT_SHIFT != EXT_SHIFT or _EXT_MASK != EXT_MASK
        or (_ADDR_HI << 32 | 0xFFFFF000) != PTE_ADDR_MASK or _PRESENT != _PAGE_PRESENT
        or _PROTNONE != _PAGE_PROTNONE or _KIND_ANON != KIND_ANON or _KIND_SHIFT != KIND_SHIFT
        or _PG_LRU != PG_lru or _PG_ACTIVE != PG_active or _PG_SWAPCACHE != PG_swapcache
        or _ANON_FLAGS != ANON_FLAGS or RECORD_SHIFT != 4 or OFF_COUNT != 4 or OFF_NEXT != 8
        or OFF_PREV != 12 or NIL != 0xFFFFFFFF or FLUSH_SLOTS > Z_FREED - Z_FLUSH):
    raise ImportError("zap_fast: constants out of step with cpu.py, layout.py, types.py, page_ext.py")


def new_state():
    from array import array
    return array("q", bytes(8 * ST_WORDS))


@micropython.viper
def zap_pte_range(st, ext, heads) -> int:
    """Clear st's PTE slots [Z_I0, Z_I1) of table Z_PT, stopping at the
    first slot the Python loop must take; returns that slot's index (Z_I1:
    all done). ext: the rmap's page_ext blocks (array('q') of pas); heads:
    array('I') (first, last, n) of the active then the inactive anon list."""
    sh = _32
    dmb = _DMB_HI << sh
    nil = (1 << sh) - 1
    s = ptr32(st)
    x = ptr32(ext)
    h = ptr32(heads)
    zero = s[2 * Z_ZERO] | (s[2 * Z_ZERO + 1] << sh)
    recs = dmb + (s[2 * Z_RECS] | (s[2 * Z_RECS + 1] << sh))
    pte = ptr32(dmb + (s[2 * Z_PT] | (s[2 * Z_PT + 1] << sh)))
    base = s[2 * Z_BASE] | (s[2 * Z_BASE + 1] << sh)
    i = int(s[2 * Z_I0])
    i1 = int(s[2 * Z_I1])
    nfreed = int(s[2 * Z_NFREED])
    npresent = int(s[2 * Z_NPRESENT])
    rss = int(s[2 * Z_RSS])
    while i < i1:
        lo = pte[2 * i]
        hi = pte[2 * i + 1]
        if lo == 0 and hi == 0:
            i += 1
            continue
        if not lo & _PRESENT:
            break                               # a swap or PROT_NONE entry
        pa = (lo & ~0xFFF) | ((hi & _ADDR_HI) << sh)
        if pa != zero:
            pfn = pa >> 12
            rec = ptr32(recs + (pfn << 4))
            v = rec[0]                          # flags | kind << 12 | order << 16 | aux << 24
            if (v >> _KIND_SHIFT) & 15 != _KIND_ANON:
                break
            c = rec[1] - 1
            if c <= 0:                          # the last reference: AnonLru.release
                if v & _PG_SWAPCACHE:
                    break
                if v & _PG_LRU:
                    j = 0 if v & _PG_ACTIVE else 3      # list_del
                    nxt = rec[2]
                    prv = rec[3]
                    if prv == nil:
                        h[j] = nxt
                    else:
                        ptr32(recs + (prv << 4))[2] = nxt
                    if nxt == nil:
                        h[j + 1] = prv
                    else:
                        ptr32(recs + (nxt << 4))[3] = prv
                    rec[2] = nil
                    rec[3] = nil
                    h[j + 2] = h[j + 2] - 1
                k = (pfn >> _EXT_SHIFT) << 1
                w = ptr32(dmb + (x[k] | (x[k + 1] << sh)) + ((pfn & _EXT_MASK) << 3))
                w[0] = 0
                w[1] = 0
                rec[0] = ((v >> 16) << 16) | _ANON_FLAGS
                rec[1] = 1                      # as pcp.free leaves it
                s[2 * (Z_FREED + nfreed)] = pa
                s[2 * (Z_FREED + nfreed) + 1] = pa >> sh
                nfreed += 1
            else:
                rec[1] = c
            rss += 1
        pte[2 * i] = 0
        pte[2 * i + 1] = 0
        if npresent < FLUSH_SLOTS:
            va = base + (i << 12)
            s[2 * (Z_FLUSH + npresent)] = va
            s[2 * (Z_FLUSH + npresent) + 1] = va >> sh
        npresent += 1
        i += 1
    s[2 * Z_NFREED] = nfreed
    s[2 * Z_NPRESENT] = npresent
    s[2 * Z_RSS] = rss
    return i


def install_host():
    """Host tests: run zap_pte_range on CPython with the stand-in for
    viper's casts (register st, ext and heads with native.register_area
    first, so their addresses resolve on the right machine)."""
    globals()["ptr32"] = host_ptr32
