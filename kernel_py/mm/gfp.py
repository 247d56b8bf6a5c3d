# GFP ("get free pages") flags, named as Linux names them (include/linux/gfp_types.h).
# The bit values are this kernel's own; only the names and meanings follow Linux.

__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02            # accepted, means nothing on x86-64
__GFP_DMA32 = 0x04
__GFP_MOVABLE = 0x08
__GFP_RECLAIMABLE = 0x10
__GFP_HIGH = 0x20               # high priority: may use part of the reserve below min
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_ZERO = 0x100
__GFP_DIRECT_RECLAIM = 0x400    # the caller may sleep and reclaim
__GFP_KSWAPD_RECLAIM = 0x800    # wake background reclaim (kswapd, mm/reclaim/vmscan.py)
__GFP_NOWARN = 0x2000
__GFP_RETRY_MAYFAIL = 0x4000
__GFP_NOFAIL = 0x8000
__GFP_NORETRY = 0x10000
__GFP_MEMALLOC = 0x20000
__GFP_COMP = 0x40000            # mark tail pages (compound page)
__GFP_NOMEMALLOC = 0x80000

__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM

# The same bits under names CPython does not mangle: inside a class body a
# name with two leading underscores (__GFP_ZERO, also as G.__GFP_ZERO)
# becomes _ClassName__GFP_ZERO. Code in classes uses F_X for __GFP_X.
F_DMA = __GFP_DMA
F_HIGHMEM = __GFP_HIGHMEM
F_DMA32 = __GFP_DMA32
F_MOVABLE = __GFP_MOVABLE
F_RECLAIMABLE = __GFP_RECLAIMABLE
F_HIGH = __GFP_HIGH
F_IO = __GFP_IO
F_FS = __GFP_FS
F_ZERO = __GFP_ZERO
F_DIRECT_RECLAIM = __GFP_DIRECT_RECLAIM
F_KSWAPD_RECLAIM = __GFP_KSWAPD_RECLAIM
F_NOWARN = __GFP_NOWARN
F_RETRY_MAYFAIL = __GFP_RETRY_MAYFAIL
F_NOFAIL = __GFP_NOFAIL
F_NORETRY = __GFP_NORETRY
F_MEMALLOC = __GFP_MEMALLOC
F_COMP = __GFP_COMP
F_NOMEMALLOC = __GFP_NOMEMALLOC
F_RECLAIM = __GFP_RECLAIM
GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE

GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE

NAMES = (
    ("GFP_KERNEL", GFP_KERNEL), ("GFP_ATOMIC", GFP_ATOMIC), ("GFP_NOWAIT", GFP_NOWAIT),
    ("GFP_NOIO", GFP_NOIO), ("GFP_NOFS", GFP_NOFS), ("GFP_USER", GFP_USER),
    ("GFP_HIGHUSER", GFP_HIGHUSER), ("GFP_HIGHUSER_MOVABLE", GFP_HIGHUSER_MOVABLE),
    ("GFP_DMA", GFP_DMA), ("GFP_DMA32", GFP_DMA32),
    ("__GFP_DMA", __GFP_DMA), ("__GFP_HIGHMEM", __GFP_HIGHMEM), ("__GFP_DMA32", __GFP_DMA32),
    ("__GFP_MOVABLE", __GFP_MOVABLE), ("__GFP_RECLAIMABLE", __GFP_RECLAIMABLE),
    ("__GFP_HIGH", __GFP_HIGH), ("__GFP_IO", __GFP_IO), ("__GFP_FS", __GFP_FS),
    ("__GFP_ZERO", __GFP_ZERO), ("__GFP_DIRECT_RECLAIM", __GFP_DIRECT_RECLAIM),
    ("__GFP_KSWAPD_RECLAIM", __GFP_KSWAPD_RECLAIM), ("__GFP_RECLAIM", __GFP_RECLAIM),
    ("__GFP_NOWARN", __GFP_NOWARN), ("__GFP_RETRY_MAYFAIL", __GFP_RETRY_MAYFAIL),
    ("__GFP_NOFAIL", __GFP_NOFAIL), ("__GFP_NORETRY", __GFP_NORETRY),
    ("__GFP_MEMALLOC", __GFP_MEMALLOC), ("__GFP_COMP", __GFP_COMP),
    ("__GFP_NOMEMALLOC", __GFP_NOMEMALLOC),
)


def gfpflags_allow_blocking(gfp):
    return gfp & __GFP_DIRECT_RECLAIM != 0


def parse(text):
    """'GFP_ATOMIC|__GFP_ZERO' -> int; None for an unknown name."""
    value = 0
    for word in text.split("|"):
        word = word.strip()
        for name, v in NAMES:
            if name == word:
                value |= v
                break
        else:
            return None
    return value


def format_gfp(gfp):
    """Names for a mask, largest composite names first ('GFP_KERNEL|__GFP_ZERO')."""
    out, rest = [], gfp
    for name, v in NAMES:
        if v and rest & v == v:
            out.append(name)
            rest &= ~v
    if rest:
        out.append("0x%x" % rest)
    return "|".join(out) or "0"
