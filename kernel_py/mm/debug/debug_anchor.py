# The debug anchor: a few words at a fixed physical address that tell a host
# debugger, with nothing but guest-physical reads (QMP pmemsave on a running
# `make qemu`), where mem_map is and which slab backend owns each cache id.
# The console is the user's terminal there, so tools/memmap --qmp cannot ask
# it; Linux's crash/makedumpfile solve the same problem with VMCOREINFO.
#
# The page is frame 1 (0x1000), inside the firmware range below 1 MiB that
# boot_info.c reserves and the buddy never hands out. Layout (little-endian):
#
#   off  size  field
#     0    8   magic "KPYANCH1"
#     8    8   mem_map base (physical)
#    16    8   nr_pfns
#    24    8   record size (16, mm/page/mem_map.py)
#    32    8   generation: bumped each time the cache table below changes
#    64  256   backend of slab cache id 0..255: 0 none, 1 slab, 2 slub, 3 slob
#
# Written at boot and refreshed between console commands when the set of
# caches changed (kmem_cache_create/destroy), so a reader sees a table at
# most one command old.

from kernel_py.mm.slab.common import BACKENDS

ANCHOR_PA = 0x1000
MAGIC = b"KPYANCH1"
OFF_BASE = 8
OFF_NR_PFNS = 16
OFF_RECORD = 24
OFF_GEN = 32
OFF_CACHES = 64
NR_CACHE_IDS = 256
ANCHOR_BYTES = OFF_CACHES + NR_CACHE_IDS


class DebugAnchor:
    def __init__(self, k):
        self.k = k
        self.gen = 0
        self.seen = None                # the cache (id, backend) list last written

    def publish(self):
        hw, mm = self.k.hw, self.k.mem_map
        hw.fill(ANCHOR_PA, 0, ANCHOR_BYTES)
        hw.write64(OFF_BASE + ANCHOR_PA, mm.base)
        hw.write64(OFF_NR_PFNS + ANCHOR_PA, mm.nr_pfns)
        hw.write64(OFF_RECORD + ANCHOR_PA, 16)
        self.refresh()
        hw.writebytes(ANCHOR_PA, MAGIC)        # last: a reader sees all or nothing

    def refresh(self):
        st = self.k.slab
        caches = [(s.id, s.backend) for s in st.all_caches()] if st is not None else []
        if caches == self.seen:
            return
        hw = self.k.hw
        hw.fill(ANCHOR_PA + OFF_CACHES, 0, NR_CACHE_IDS)
        for cid, backend in caches:
            if 0 <= cid < NR_CACHE_IDS:
                hw.write8(ANCHOR_PA + OFF_CACHES + cid, 1 + BACKENDS.index(backend))
        self.gen += 1
        hw.write64(ANCHOR_PA + OFF_GEN, self.gen)
        self.seen = caches


def parse(data):
    """Host side: (mem_map base, nr_pfns, {cache id: backend}) from the
    anchor's bytes, or None when the magic is not there (not booted yet)."""
    if bytes(data[:8]) != MAGIC:
        return None
    u64 = lambda off: int.from_bytes(bytes(data[off:off + 8]), "little")
    backends = {}
    for cid in range(NR_CACHE_IDS):
        b = data[OFF_CACHES + cid]
        if b:
            backends[cid] = BACKENDS[b - 1]
    return u64(OFF_BASE), u64(OFF_NR_PFNS), backends
