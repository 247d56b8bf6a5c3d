"""The debug anchor (kernel_py/mm/debug/debug_anchor.py): at frame 1 the kernel
publishes mem_map's place and the slab caches' backends, the same as
/sys/kernel/debug/mem_map says, and refreshes the cache table between
commands after kmem_cache_create/destroy; tools/memmap --qmp reads it."""

from kernel_py.mm.debug import debug_anchor
from kernel_py.shell.shell import Shell
from kpyqemu import memmap
from mmsupport import boot
import kernel_py.shell.all  # noqa: F401


def anchor(k):
    return debug_anchor.parse(k.hw.readbytes(debug_anchor.ANCHOR_PA, debug_anchor.ANCHOR_BYTES))


def test_anchor_matches_the_console_metadata_and_follows_new_caches():
    k = boot(mem=64 << 20)
    sh = Shell(k)
    base, nr, backends, _pcp = memmap.parse_meta(sh.execute("cat /sys/kernel/debug/mem_map"))
    assert anchor(k) == (base, nr, backends)
    assert base == k.mem_map.base and nr == k.mem_map.nr_pfns and backends
    sh.execute("kmem_cache_create anchored 72 0 slob")
    k.background()                      # between console commands
    base2, nr2, backends2 = anchor(k)
    new = {cid: b for cid, b in backends2.items() if cid not in backends}
    assert list(new.values()) == ["slob"]
    assert memmap.parse_meta(sh.execute("cat /sys/kernel/debug/mem_map"))[2] == backends2


def test_anchor_frame_is_reserved_never_given_out():
    k = boot(mem=64 << 20)
    pfn = debug_anchor.ANCHOR_PA >> 12
    snap = memmap.classify(bytes(k.hw.readbytes(k.mem_map.base, (pfn + 1) * 16)), pfn + 1, {})
    assert snap.cats[pfn] == "reserved"
    assert debug_anchor.parse(bytes(debug_anchor.ANCHOR_BYTES)) is None
