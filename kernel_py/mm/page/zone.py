# Zones: physical ranges with their own free lists and watermarks, as Linux
# splits memory (ZONE_DMA < 16 MiB for ISA DMA, ZONE_DMA32 < 4 GiB for 32-bit
# devices, ZONE_NORMAL above). Allocations fall back from the highest zone the
# GFP mask allows down to DMA, keeping the low zones for callers that need them.
#
# Watermarks follow current Linux (mm/page_alloc.c): min_free_kbytes =
# int_sqrt(16 * lowmem_kbytes) clamped to [128, 262144], split among zones by
# managed size; low = min + max(min/4, managed * watermark_scale_factor/10000)
# and high = min + 2 * that, with watermark_scale_factor = 10. lowmem_reserve
# protects the lower zones from fallback allocations (ratios 256, 256, 32).

from kernel_py.arch.x86.layout import DMA_LIMIT, DMA32_LIMIT
from kernel_py.mm.page.mem_map import PfnList
from kernel_py.arch.x86.cpu import PAGE_SHIFT, small

MAX_ORDER = 10                  # orders 0..MAX_ORDER inclusive (Linux 6.4+ naming)
NR_ORDERS = MAX_ORDER + 1

ZONE_DMA = 0
ZONE_DMA32 = 1
ZONE_NORMAL = 2
ZONE_NAMES = ("DMA", "DMA32", "Normal")
ZONE_LIMITS = (DMA_LIMIT >> PAGE_SHIFT, DMA32_LIMIT >> PAGE_SHIFT, small(1 << 52))
LOWMEM_RESERVE_RATIO = (256, 256, 32)

PAGE_ALLOC_COSTLY_ORDER = 3     # larger requests: no OOM kill, one reclaim round

WMARK_MIN = 0
WMARK_LOW = 1
WMARK_HIGH = 2
WATERMARK_SCALE_FACTOR = 10
MIN_FREE_KBYTES_MIN = 128
MIN_FREE_KBYTES_MAX = 262144

# alloc_flags for zone_watermark_ok (Linux mm/internal.h)
ALLOC_WMARK_MIN = WMARK_MIN
ALLOC_WMARK_LOW = WMARK_LOW
ALLOC_WMARK_HIGH = WMARK_HIGH
ALLOC_WMARK_MASK = 3
ALLOC_NO_WATERMARKS = 4
ALLOC_MIN_RESERVE = 8           # __GFP_HIGH
ALLOC_NON_BLOCK = 16            # cannot reclaim (atomic)


def int_sqrt(x):
    """floor(sqrt(x)) by Newton's method (no math.isqrt in MicroPython)."""
    if x < 2:
        return x
    r = x
    y = (r + 1) >> 1
    while y < r:
        r = y
        y = (r + x // r) >> 1
    return r


def bit_length(x):
    n = 0
    while x:
        x >>= 1
        n += 1
    return n


class Zone:
    def __init__(self, idx, mem_map):
        self.idx = idx
        self.name = ZONE_NAMES[idx]
        self.zone_start_pfn = 0     # span [start, end): first..last RAM frame
        self.zone_end_pfn = 0
        self.present_pages = 0      # RAM frames in the span
        self.managed_pages = 0      # frames handed to the buddy
        self.free_pages = 0
        self.free_area = [PfnList(mem_map) for _ in range(NR_ORDERS)]
        self.watermark = [0, 0, 0]
        self.lowmem_reserve = [0, 0, 0]

    @property
    def spanned_pages(self):
        return self.zone_end_pfn - self.zone_start_pfn

    def populated(self):
        return self.present_pages != 0

    def contains(self, pfn):
        return self.zone_start_pfn <= pfn < self.zone_end_pfn

    def nr_free(self):
        return [a.n for a in self.free_area]

    def min_wmark(self):
        return self.watermark[WMARK_MIN]

    def low_wmark(self):
        return self.watermark[WMARK_LOW]

    def high_wmark(self):
        return self.watermark[WMARK_HIGH]


def zone_for_pfn(pfn):
    for i in range(len(ZONE_LIMITS)):
        if pfn < ZONE_LIMITS[i]:
            return i
    return ZONE_NORMAL


def span_zones(zones, ram_ranges):
    """Set each zone's span and present pages from the RAM ranges [s, e) (bytes)."""
    for s, e in ram_ranges:
        ps, pe = s >> PAGE_SHIFT, e >> PAGE_SHIFT
        lo = 0
        for z in zones:
            hi = ZONE_LIMITS[z.idx]
            a, b = max(ps, lo), min(pe, hi)
            if a < b:
                if z.present_pages == 0:
                    z.zone_start_pfn = a
                z.zone_end_pfn = b
                z.present_pages += b - a
            lo = hi


def calculate_min_free_kbytes(zones):
    lowmem_kbytes = sum(z.managed_pages for z in zones) << (PAGE_SHIFT - 10)
    v = int_sqrt(lowmem_kbytes * 16)
    return max(MIN_FREE_KBYTES_MIN, min(MIN_FREE_KBYTES_MAX, v))


def setup_per_zone_wmarks(zones, min_free_kbytes):
    pages_min = min_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem_pages = sum(z.managed_pages for z in zones)
    for z in zones:
        m = pages_min * z.managed_pages // lowmem_pages if lowmem_pages else 0
        tmp = max(m >> 2, z.managed_pages * WATERMARK_SCALE_FACTOR // 10000)
        z.watermark = [m, m + tmp, m + 2 * tmp]


def setup_per_zone_lowmem_reserve(zones):
    for i in range(len(zones)):
        managed = 0
        z = zones[i]
        z.lowmem_reserve = [0] * len(zones)
        for j in range(i + 1, len(zones)):
            managed += zones[j].managed_pages
            z.lowmem_reserve[j] = managed // LOWMEM_RESERVE_RATIO[i]


def totalreserve_pages(zones):
    """Pages the allocator keeps back: high watermark plus the largest reserve."""
    total = 0
    for z in zones:
        r = max(z.lowmem_reserve) + z.high_wmark()
        total += min(r, z.managed_pages)
    return total


def zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags):
    """Linux's __zone_watermark_ok: may `order` be taken with `mark` kept free?"""
    free_pages = z.free_pages - ((1 << order) - 1)
    m = mark
    if alloc_flags & ALLOC_MIN_RESERVE:
        m -= m // 2
        if alloc_flags & ALLOC_NON_BLOCK:
            m -= m // 4
    if free_pages <= m + z.lowmem_reserve[highest_zoneidx]:
        return False
    if order == 0:
        return True
    area = z.free_area
    for o in range(order, NR_ORDERS):
        if area[o].n:
            return True
    return False
