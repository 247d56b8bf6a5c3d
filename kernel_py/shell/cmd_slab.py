# The slab layer on the console: /proc/slabinfo, slabtop, and commands that
# drive kmalloc and kmem_caches by hand (they print the addresses they get).

from kernel_py.lib.errors import KernelError
from kernel_py.mm import gfp as G
from kernel_py.mm.slab.common import BACKENDS, slabinfo
from kernel_py.shell import handles
from kernel_py.shell.cmd_mm import parse_gfp, parse_int
from kernel_py.shell.registry import command, pseudo_file
from kernel_py.arch.x86.cpu import PAGE_SIZE


@pseudo_file("/proc/slabinfo")
def proc_slabinfo(k):
    return slabinfo(k.slab)


def need(args, lo, hi, usage):
    if not lo <= len(args) <= hi:
        raise KernelError("EINVAL", "usage: " + usage)


def got(va, what):
    if va is None:
        raise KernelError("ENOMEM", what)
    return "0x%x" % va


@command("kmalloc", "kmalloc SIZE [GFP_FLAGS|zone]", "kmalloc SIZE bytes; prints the address")
def cmd_kmalloc(k, args):
    need(args, 1, 2, "kmalloc SIZE [GFP_FLAGS]")
    size = parse_int(args[0], "size")
    gfp = parse_gfp(args[1]) if len(args) > 1 else G.GFP_KERNEL
    va = k.kmalloc.kmalloc(size, gfp)
    return got(handles.hold(k, va, size, "kmalloc"), "kmalloc %d" % size)


def parse_addr(word):
    """A 64-bit address (kfree's fast path works on machine words: a larger
    or negative number must not reach it)."""
    va = parse_int(word, "address")
    if not 0 <= va <= 0xFFFFFFFFFFFFFFFF:
        raise KernelError("EINVAL", "%s is not a 64-bit address" % word)
    return va


@command("kfree", "kfree ADDR", "free what kmalloc returned")
def cmd_kfree(k, args):
    need(args, 1, 1, "kfree ADDR")
    va = parse_addr(args[0])
    k.kmalloc.kfree(va)
    handles.drop(k, va)
    return ""


@command("kmem_cache_create", "kmem_cache_create NAME SIZE [ALIGN] [slab|slub|slob]",
         "create a cache of SIZE-byte objects")
def cmd_kmem_cache_create(k, args):
    need(args, 2, 4, "kmem_cache_create NAME SIZE [ALIGN] [slab|slub|slob]")
    backend = None
    if args[-1] in BACKENDS:
        backend = args.pop()
    align = parse_int(args[2], "align") if len(args) > 2 else 0
    s = k.slab.kmem_cache_create(args[0], parse_int(args[1], "size"), align, 0, None, backend)
    return "%s: %s, object %d bytes, slot %d, align %d, %d per slab of %d pages" % (
        s.name, s.backend, s.object_size, s.size, s.align, s.objs_per_slab(), s.pages_per_slab())


@command("kmem_cache_alloc", "kmem_cache_alloc NAME", "allocate one object; prints its address")
def cmd_kmem_cache_alloc(k, args):
    need(args, 1, 1, "kmem_cache_alloc NAME")
    s = k.slab.find(args[0])
    return got(handles.hold(k, s.alloc(G.GFP_KERNEL), s.object_size, s.name), args[0])


@command("kmem_cache_free", "kmem_cache_free NAME ADDR", "free an object of cache NAME")
def cmd_kmem_cache_free(k, args):
    need(args, 2, 2, "kmem_cache_free NAME ADDR")
    va = parse_addr(args[1])
    k.slab.find(args[0]).free(va)
    handles.drop(k, va)
    return ""


@command("kmem_cache_shrink", "kmem_cache_shrink NAME", "return a cache's empty slabs to the buddy")
def cmd_kmem_cache_shrink(k, args):
    need(args, 1, 1, "kmem_cache_shrink NAME")
    k.slab.find(args[0]).shrink()
    return ""


@command("kmem_cache_destroy", "kmem_cache_destroy NAME", "destroy an empty cache")
def cmd_kmem_cache_destroy(k, args):
    need(args, 1, 1, "kmem_cache_destroy NAME")
    k.slab.kmem_cache_destroy(k.slab.find(args[0]))
    return ""


def kb(n):
    """Bytes as slabtop's "0.25K" (integers only: the guest has no floats)."""
    h = (int(n) * 100 + 512) // 1024
    return "%d.%02dK" % (h // 100, h % 100)


def pct(a, b):
    """Per-mille of a/b as "95.9" """
    x = 1000 * a // b if b else 0
    return "%d.%d" % (x // 10, x % 10)


@command("slabtop", "slabtop [-o] [-s c|o|a|s|n]", "slab cache statistics, once (as slabtop -o)")
def cmd_slabtop(k, args):
    sort = "o"
    if "-s" in args:
        i = args.index("-s")
        if i + 1 >= len(args):
            raise KernelError("EINVAL", "usage: slabtop [-o] [-s c|o|a|s|n]")
        sort = args[i + 1]
    rows = []
    for s in k.slab.all_caches():
        active, num, active_slabs, slabs = s.counts()
        cache_kb = slabs * s.pages_per_slab() * 4
        rows.append((s.name, active, num, s.size, slabs, s.objs_per_slab(), cache_kb, active_slabs))
    keys = {"o": lambda r: -r[2], "a": lambda r: -r[1], "s": lambda r: -r[3],
            "c": lambda r: -r[6], "n": lambda r: r[0]}
    rows.sort(key=keys.get(sort, keys["o"]))
    ta = sum(r[1] for r in rows)
    to = sum(r[2] for r in rows)
    ts = sum(r[4] for r in rows)
    tas = sum(r[7] for r in rows)
    used = sum(r[1] * r[3] for r in rows)
    total = sum(r[2] * r[3] for r in rows)
    live = sum(1 for r in rows if r[1])
    sizes = [r[3] for r in rows] or [0]
    out = [
        " Active / Total Objects (%% used)    : %d / %d (%s%%)" % (ta, to, pct(ta, to)),
        " Active / Total Slabs (%% used)      : %d / %d (%s%%)" % (tas, ts, pct(tas, ts)),
        " Active / Total Caches (%% used)     : %d / %d (%s%%)" % (live, len(rows), pct(live, len(rows))),
        " Active / Total Size (%% used)       : %s / %s (%s%%)" % (kb(used), kb(total), pct(used, total)),
        " Minimum / Average / Maximum Object : %s / %s / %s" % (
            kb(min(sizes)), kb(sum(sizes) // len(sizes)), kb(max(sizes))),
        "",
        "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME",
    ]
    for name, active, num, size, slabs, per, cache_kb, _a in rows:
        out.append("%6d %6d %3d%% %7s %6d %8d %9dK %s" % (
            num, active, 100 * active // num if num else 0, kb(size), slabs, per, cache_kb, name))
    return "\n".join(out)


# --- vmalloc ----------------------------------------------------------------

@pseudo_file("/proc/vmallocinfo")
def proc_vmallocinfo(k):
    return k.vmalloc.vmallocinfo()


@command("vmalloc", "vmalloc SIZE [GFP_FLAGS]", "map SIZE bytes of scattered frames contiguously; prints the address")
def cmd_vmalloc(k, args):
    need(args, 1, 2, "vmalloc SIZE [GFP_FLAGS]")
    gfp = parse_gfp(args[1]) if len(args) > 1 else G.GFP_KERNEL
    size = parse_int(args[0], "size")
    va = k.vmalloc.vmalloc(size, gfp)
    return got(handles.hold(k, va, (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), "vmalloc"), "vmalloc")


@command("vfree", "vfree ADDR", "unmap and free a vmalloc area")
def cmd_vfree(k, args):
    need(args, 1, 1, "vfree ADDR")
    va = parse_int(args[0], "address")
    k.vmalloc.vfree(va)
    handles.drop(k, va)
    return ""
