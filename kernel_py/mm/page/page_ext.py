# page_ext (Linux mm/page_ext.c): per-frame side tables in physical memory,
# one fixed-size entry per frame, outside mem_map so that only the features
# switched on pay for them. A table is a list of zeroed buddy blocks of up
# to 4 MiB; block i holds the entries of pfns [i << shift, (i + 1) << shift)
# where shift = 22 - entry_shift. Entries are reached with hw.read*/write*
# on physical addresses; no per-frame Python object (MicroPython dicts keyed
# by consecutive pfns degrade to linear scans, see mm/reclaim/rmap.py).
#
# The entry of frame pfn in a table of 2**entry_shift-byte entries is at
#     blocks[pfn >> s] + ((pfn & ((1 << s) - 1)) << entry_shift)
# with s = ext_shift(entry_shift). The tables of 64-bit words (the anon
# rmap's keys, the swap cache's entries) use EXT_SHIFT and EXT_MASK, which
# the fault handler and lru_fast's viper drain write as literals (they check
# them against these at import).

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.page.zone import MAX_ORDER

EXT_GFP = G.GFP_KERNEL | G.__GFP_ZERO
BLOCK_SHIFT = 22                # bytes per block: 4 MiB, one order-10 block
WORD_SHIFT = 3                  # 64-bit entries
EXT_SHIFT = BLOCK_SHIFT - WORD_SHIFT        # 19: frames per block of 64-bit entries (log2)
EXT_MASK = (1 << EXT_SHIFT) - 1


def ext_shift(entry_shift):
    """log2 of the frames one block of 2**entry_shift-byte entries covers."""
    return BLOCK_SHIFT - entry_shift


def block_order(n, entry_shift):
    """Buddy order of a block holding n entries."""
    order = 0
    while (4096 << order) < n << entry_shift:
        order += 1
    return order


def alloc_page_ext(buddy, nr_pfns, entry_shift, what="page_ext"):
    """[pa]: zeroed blocks of 2**entry_shift-byte entries, block i for pfns
    i << ext_shift(entry_shift) ..; ENOMEM (having freed what it got) if the
    buddy cannot supply them."""
    per_block = 1 << ext_shift(entry_shift)
    out = []
    left = nr_pfns
    while left > 0:
        n = min(left, per_block)
        order = block_order(n, entry_shift)
        pa = buddy.alloc_pages(EXT_GFP, order) if order <= MAX_ORDER else None
        if pa is None:
            free_page_ext(buddy, out, nr_pfns, entry_shift)
            raise KernelError("ENOMEM", "no memory for %s" % what)
        out.append(pa)
        left -= n
    return out


def free_page_ext(buddy, blocks, nr_pfns, entry_shift):
    left = nr_pfns
    per_block = 1 << ext_shift(entry_shift)
    for pa in blocks:
        n = min(left, per_block)
        buddy.free_pages(pa, block_order(n, entry_shift))
        left -= n
