# The pcp refill's split_page (Linux mm/page_alloc.c: every frame of the
# order-PCP_ORDER block becomes an order-0 page of its own) in MicroPython's
# viper code, for the guest.
#
# Why viper. Each refill wrote 2 * PCP_BATCH record words with hw.write32
# in bytecode: ~55 us a refill under TCG (60% of it; the buddy allocation
# is the rest), ~1.7 us of every anonymous fault amortised. Here they are
# plain stores through the direct map (slub_fast.py's header explains the
# casts and why big constants are built at run time).
#
# The state: array('q') [the pa of the block's first record]; the viper
# function casts it first, which is also what tells the host's stand-in
# for the casts which machine the records live on. pcp.py keeps the plain
# loop as the reference (the host runs it; tests/model/test_pcp_fast.py
# compares the two).

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.native import const, host_ptr32, micropython, ptr32
from kernel_py.mm.types import OFF_COUNT, RECORD_SHIFT

_DMB_HI = const(-0x7780)   # DIRECT_MAP_BASE >> 32, signed
_32 = const(32)

if (_DMB_HI << 32) + (1 << 64) != DIRECT_MAP_BASE or RECORD_SHIFT != 4 or OFF_COUNT != 4:
    raise ImportError("pcp_fast: constants out of step with layout.py, types.py")


@micropython.viper
def split_records(area, n: int, flags: int):
    """The n records from area[0] on: word 0 flags (order 0, aux 0), the
    count 1; the list links are left as they are."""
    sh = _32
    a = ptr32(area)
    r = ptr32((_DMB_HI << sh) + (a[0] | (a[1] << sh)))
    i = 0
    while i < n:
        r[i << 2] = flags
        r[(i << 2) + 1] = 1
        i += 1


def install_host():
    """Host tests: run split_records on CPython with the stand-in for
    viper's casts (register the area with native.register_area first)."""
    globals()["ptr32"] = host_ptr32
