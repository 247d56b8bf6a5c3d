# Block I/O requests (Linux block/bio.c, include/linux/blk_types.h): a bio
# names the device, the first sector, the segments (frame, sectors) and the
# operation; submit_bio hands it to the device's driver, bio_endio records
# the completion status and runs bi_end_io, bio_put gives it back.
#
# Bios come from a bio_set: a slab cache ("bio-0", Linux's name for the
# cache of a bio_set without front padding) behind a mempool of
# BIO_POOL_SIZE reserved elements (bioset_init -> mempool_create_slab_pool).
# fs_bio_set is the one the page cache, the buffer cache and swap use, so
# writeback and swap-out (reclaim's way of freeing memory) get a bio even
# when the slab and page allocators fail: the reserve backs them, and
# bio_put refills it. Linux's mempool_alloc with __GFP_DIRECT_RECLAIM
# (GFP_NOIO, GFP_NOFS) never fails: it sleeps until a bio in flight is put.
# Here I/O is synchronous: every bio is put before its submitter returns, so
# no bio is ever in flight at the next bio_alloc and the reserve is full
# again then; a caller never has to wait.
#
# The segments live inline in the bio (Linux's bi_inline_vecs); Linux takes
# a longer vector from the biovec-* caches, here it is a Python list.

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.page.mempool import mempool_create_slab_pool
from kernel_py.mm.slab.common import SLAB_HWCACHE_ALIGN
from kernel_py.mm.debug.kmemleak import register_root

REQ_OP_READ = 0
REQ_OP_WRITE = 1
BIO_POOL_SIZE = 2           # Linux's reserve per bio_set (include/linux/bio.h)
BIO_SLAB = "bio-0"
BIO_SIZE = 128              # sizeof(struct bio) on x86-64 (6.x, no integrity)
BLK_STS_OK = None           # bi_status: None, or the errno name of the failure


class Bio:
    def __init__(self, bs, obj, bdev, opf):
        self.bi_pool = bs           # the bio_set it returns to
        self.obj = obj              # its slab object in bs.cache
        self.bi_bdev = bdev
        self.bi_opf = opf           # REQ_OP_READ / REQ_OP_WRITE
        self.bi_sector = 0
        self.bi_io_vec = []         # [(pa, nsect)], contiguous on disk
        self.bi_size = 0            # bytes
        self.bi_status = BLK_STS_OK
        self.error = None           # the KernelError behind bi_status
        self.bi_end_io = None       # fn(bio) at completion, or None
        self.bi_private = None


class BioSet:
    """bioset_init: the slab cache and the mempool behind it."""

    def __init__(self, slab, pool_size=BIO_POOL_SIZE):
        s = slab.by_name.get(BIO_SLAB)
        self.cache = s if s is not None else slab.kmem_cache_create(
            BIO_SLAB, BIO_SIZE, 0, SLAB_HWCACHE_ALIGN)
        self.bio_pool = mempool_create_slab_pool(pool_size, self.cache)
        self.reserve_used = 0       # bios the reserve backed (allocator failed)


def bio_alloc(bs, bdev, opf, gfp):
    """bio_alloc_bioset: None only for a caller that may not reclaim
    (GFP_ATOMIC/GFP_NOWAIT) once the allocator and the reserve are empty."""
    pool = bs.bio_pool
    before = pool.curr_nr
    obj = pool.alloc(gfp)
    if obj is None:
        return None
    if pool.curr_nr < before:
        bs.reserve_used += 1
    return Bio(bs, obj, bdev, opf)


def bio_add_segment(bio, pa, nsect):
    bio.bi_io_vec.append((pa, nsect))
    bio.bi_size += nsect << 9


def submit_bio(bio):
    """The driver moves the data; completion (bio_endio) follows at once,
    the I/O being synchronous."""
    try:
        bio.bi_bdev.transfer(bio.bi_opf == REQ_OP_WRITE, bio.bi_sector, bio.bi_io_vec)
    except KernelError as exc:
        bio.bi_status = exc.errname
        bio.error = exc
    bio_endio(bio)


def bio_endio(bio):
    if bio.bi_end_io is not None:
        bio.bi_end_io(bio)


def bio_put(bio):
    """The last reference: the object goes back to the mempool (refilling
    the reserve first) or to the slab cache."""
    obj = bio.obj
    bio.obj = None
    bio.bi_pool.bio_pool.free(obj)


def submit_bio_wait(bio):
    """Submit and raise the completion's error, if any; the caller puts."""
    submit_bio(bio)
    if bio.bi_status is not BLK_STS_OK:
        raise bio.error


def bio_reserve_roots(k):
    """kmemleak: the reserve holds its bios (Linux's mempool keeps them in
    pool->elements, which kmemleak scans)."""
    blk = k.blk
    bs = blk.fs_bio_set if blk is not None else None
    return list(bs.bio_pool.elements) if bs is not None else []


register_root("fs_bio_set", bio_reserve_roots)
