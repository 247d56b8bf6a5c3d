"""bio lifecycle (block/bio.py): bio_alloc from fs_bio_set's slab cache,
submit_bio -> the driver -> bio_endio, bio_put back to the mempool; under
failslab the reserve backs GFP_NOIO allocations, and without a reserve the
same request fails."""

import pytest

from kernel_py.block.bio import (BIO_POOL_SIZE, BIO_SLAB, REQ_OP_WRITE, BioSet, bio_add_segment,
                                 bio_alloc, bio_put, submit_bio)
from kernel_py.block.blkdev import BlockDevice, BlockLayer
from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.slab import slub_fast

from slabsupport import boot_slab


class Driver:
    def __init__(self, fail=False):
        self.fail = fail
        self.done = []

    def transfer(self, write, lba, segs):
        if self.fail:
            raise KernelError("EIO", "media error")
        self.done.append((write, lba, list(segs)))


def machine(pool_size=BIO_POOL_SIZE, fail=False):
    st, _ = boot_slab(16 << 20)
    layer = BlockLayer()
    layer.fs_bio_set = BioSet(st, pool_size)
    drv = Driver(fail)
    dev = BlockDevice("sda", 8, 0, 1 << 16, drv)
    layer.add(dev)
    return st, layer, dev, drv


def fail_every_slab_alloc(st, on=True):
    """What failslab at probability 100, times -1 does (fault_inject.arm_slab)."""
    st.should_failslab = (lambda s, gfp, size=0: True) if on else None
    st.area[slub_fast.GLOBAL_ID * slub_fast.NF + slub_fast.G_NOFAST_ALLOC] = 1 if on else 0


def test_lifecycle_and_slab_counts():
    st, layer, dev, drv = machine()
    bs = layer.fs_bio_set
    cache = st.find(BIO_SLAB)
    assert bs.cache is cache and bs.bio_pool.curr_nr == BIO_POOL_SIZE
    ends = []
    bio = bio_alloc(bs, dev, REQ_OP_WRITE, G.GFP_NOIO)
    bio.bi_sector = 64
    bio_add_segment(bio, 0x5000, 8)
    bio.bi_end_io = ends.append
    submit_bio(bio)
    assert ends == [bio] and bio.bi_status is None and bio.bi_size == 4096
    assert drv.done == [(True, 64, [(0x5000, 8)])]
    assert dev.writes == 1 and dev.write_sectors == 8 and layer.pgpgout() == 4
    obj = bio.obj
    bio_put(bio)
    assert bio.obj is None and obj not in bs.bio_pool.elements   # the reserve was full


def test_error_completes_and_returns_the_bio():
    st, layer, dev, drv = machine(fail=True)
    with pytest.raises(KernelError) as e:
        dev.submit(False, 0, [(0x6000, 8)])
    assert e.value.errname == "EIO" and dev.errors == 1
    assert layer.fs_bio_set.bio_pool.curr_nr == BIO_POOL_SIZE


def test_reserve_backs_io_when_every_slab_allocation_fails():
    st, layer, dev, drv = machine()
    bs = layer.fs_bio_set
    fail_every_slab_alloc(st)
    for i in range(10):                   # swap-out: one request after another
        dev.submit(True, 8 * i, [(0x7000, 8)], G.GFP_NOIO)
        assert bs.bio_pool.curr_nr == BIO_POOL_SIZE    # bio_put refilled it
    assert bs.reserve_used == 10 and len(drv.done) == 10
    held = [bio_alloc(bs, dev, REQ_OP_WRITE, G.GFP_NOIO) for _ in range(BIO_POOL_SIZE)]
    assert bio_alloc(bs, dev, REQ_OP_WRITE, G.GFP_ATOMIC) is None
    for b in held:
        bio_put(b)
    fail_every_slab_alloc(st, False)
    dev.submit(True, 0, [(0x7000, 8)])
    assert bs.reserve_used == 12           # the 2 held; then the allocator again


def test_without_a_reserve_the_same_swap_out_fails():
    st, layer, dev, drv = machine(pool_size=0)
    fail_every_slab_alloc(st)
    with pytest.raises(KernelError) as e:
        dev.submit(True, 0, [(0x7000, 8)], G.GFP_NOIO)
    assert e.value.errname == "ENOMEM" and drv.done == []
