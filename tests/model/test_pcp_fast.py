"""The guest's viper split of a pcp refill's block (kernel_py/mm/page/pcp_fast.py)
runs on the host over the simulated machine and must leave what the Python
loop in PerCpuPages.refill leaves: the same list of frames in the same
order, every record of the block the same (flags, order 0, count 1, links
untouched), on two machines driven alike."""

from kernel_py.arch.x86 import native
from kernel_py.mm.page import pcp_fast
from kernel_py.mm.page.pcp import PCP_ORDER
from kernel_py.mm.types import RECORD_SIZE

from swapsupport import MiB, boot

REFILLS = 3


def refill(k, fast):
    p = k.pcp
    if fast:
        pcp_fast.install_host()
        native.register_area(p._split, k.hw)
    p.fast_split = fast
    p.drain()
    got = []
    for _ in range(REFILLS):
        got.append(p.refill())
    return got, list(p.list), p.refills


def records(k):
    return k.hw.readbytes(k.mem_map.base, k.mem_map.nr_pfns * RECORD_SIZE)


def test_viper_split_matches_the_python_loop():
    k_py, _ = boot(mem=16 * MiB, swap=0)
    k_vi, _ = boot(mem=16 * MiB, swap=0)
    want = refill(k_py, False)
    got = refill(k_vi, True)
    assert got == want
    assert len(got[1]) == REFILLS * ((1 << PCP_ORDER) - 1)
    assert records(k_vi) == records(k_py)
