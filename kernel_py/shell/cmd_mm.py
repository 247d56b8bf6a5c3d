# Physical memory on the console: /proc/buddyinfo, /proc/zoneinfo,
# /proc/vmstat (mm/vmstat.py's table), extfrag_index, the page-table dumps,
# and the alloc_pages / free_pages / pfdemo commands.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import USER_END
from kernel_py.mm import gfp as G
from kernel_py.mm import vmstat
from kernel_py.mm.debug import debug_vm
from kernel_py.mm.page.extfrag import unusable_free_index
from kernel_py.demo import pfdemo
from kernel_py.arch.x86 import ptdump
from kernel_py.mm.page.zone import NR_ORDERS, ZONE_NAMES
from kernel_py.shell.registry import command, pseudo_file
from kernel_py.arch.x86.cpu import PTE_ADDR_MASK

def populated(k):
    return [z for z in k.zones if z.present_pages]


@pseudo_file("/proc/buddyinfo")
def proc_buddyinfo(k):
    return "\n".join("Node 0, zone %8s " % z.name + "".join("%6d " % n for n in z.nr_free())
                     for z in populated(k))


@pseudo_file("/sys/kernel/debug/extfrag/unusable_index")
def debug_unusable_index(k):
    """Linux's format: one line per zone, the index of each order to three places."""
    out = []
    for z in populated(k):
        nr = z.nr_free()
        out.append("Node 0, zone %8s " % z.name + "".join(
            "%d.%03d " % divmod(unusable_free_index(nr, o), 1000) for o in range(len(nr))))
    return "\n".join(out)


@pseudo_file("/proc/zoneinfo")
def proc_zoneinfo(k):
    out = []
    for z in k.zones:
        out.append("Node 0, zone %8s" % z.name)
        out.append("  pages free     %d" % z.free_pages)
        out.append("        boost    0")
        out.append("        min      %d" % z.min_wmark())
        out.append("        low      %d" % z.low_wmark())
        out.append("        high     %d" % z.high_wmark())
        out.append("        spanned  %d" % z.spanned_pages)
        out.append("        present  %d" % z.present_pages)
        out.append("        managed  %d" % z.managed_pages)
        out.append("        cma      0")
        out.append("        protection: (%s)" % ", ".join("%d" % r for r in z.lowmem_reserve))
        out.append("        free_area: (%s)" % ", ".join("%d" % n for n in z.nr_free()))
        out.append("      nr_free_pages %d" % z.free_pages)
        out.append("  start_pfn:           %d" % z.zone_start_pfn)
    return "\n".join(out)


@pseudo_file("/proc/vmstat")
def proc_vmstat(k):
    return vmstat.vmstat_show(k)


def fragmentation_index(nr_free, order):
    """Linux's __fragmentation_index in thousandths: -1000 when a block of
    `order` is free; towards 0 failure from lack of memory, towards 1000
    failure from fragmentation."""
    blocks = 0
    pages = 0
    suitable = 0
    for o in range(NR_ORDERS):
        blocks += nr_free[o]
        pages += nr_free[o] << o
        if o >= order:
            suitable += nr_free[o] << (o - order)
    if not blocks:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + pages * 1000 // (1 << order)) // blocks


def c_div_mod(a, b):
    """C's truncating / and % (seq_printf("%d.%03d", i / 1000, i % 1000))."""
    q = abs(a) // b
    if a < 0:
        q = -q
    return q, a - q * b


@pseudo_file("/sys/kernel/debug/extfrag/extfrag_index")
def debug_extfrag_index(k):
    out = []
    for z in populated(k):
        nr = z.nr_free()
        cells = []
        for o in range(NR_ORDERS):
            q, r = c_div_mod(fragmentation_index(nr, o), 1000)
            cells.append("%2d.%03d " % (q, abs(r)))
        out.append("Node 0, zone %8s " % z.name + "".join(cells))
    return "\n".join(out)


@pseudo_file("/sys/kernel/debug/page_tables/kernel")
def debug_pt_kernel(k):
    return ptdump.format_ptdump(ptdump.walk(k.hw, k.init_mm.pgd))


@pseudo_file("/sys/kernel/debug/page_tables/current_kernel")
def debug_pt_current_kernel(k):
    cr3 = k.hw.read_cr3() & PTE_ADDR_MASK
    start = ptdump.KERNEL_SPACE
    return ptdump.format_ptdump(ptdump.walk(k.hw, cr3, start), start=start)


@pseudo_file("/sys/kernel/debug/page_tables/current_user")
def debug_pt_current_user(k):
    cr3 = k.hw.read_cr3() & PTE_ADDR_MASK
    end = USER_END + 0x1000
    return ptdump.format_ptdump(ptdump.walk(k.hw, cr3, 0, end), end=end)


def parse_gfp(word):
    for i in range(len(ZONE_NAMES)):
        if word.lower() == ZONE_NAMES[i].lower():
            return G.GFP_KERNEL | (G.__GFP_DMA, G.__GFP_DMA32, 0)[i]
    gfp = G.parse(word)
    if gfp is None:
        raise KernelError("EINVAL", "unknown zone or GFP flags %r" % word)
    return gfp


def parse_int(word, what):
    try:
        return int(word, 0)
    except ValueError:
        raise KernelError("EINVAL", "%s %r is not a number" % (what, word))


@command("alloc_pages", "alloc_pages ORDER [DMA|DMA32|Normal|GFP_FLAGS]",
         "allocate 2^ORDER frames from the buddy; prints the physical address")
def cmd_alloc_pages(k, args):
    if not 1 <= len(args) <= 2:
        raise KernelError("EINVAL", "usage: alloc_pages ORDER [zone|gfp flags]")
    order = parse_int(args[0], "order")
    gfp = parse_gfp(args[1]) if len(args) > 1 else G.GFP_KERNEL
    pa = k.buddy.alloc_pages(gfp, order)
    if pa is None:
        raise KernelError("ENOMEM")
    return "0x%x" % pa


@command("free_pages", "free_pages ADDR ORDER", "return 2^ORDER frames at physical ADDR to the buddy")
def cmd_free_pages(k, args):
    if len(args) != 2:
        raise KernelError("EINVAL", "usage: free_pages ADDR ORDER")
    k.buddy.free_pages(parse_int(args[0], "address"), parse_int(args[1], "order"))
    return ""


PEEK_MAX = 64


@command("peek", "peek VADDR [COUNT]",
         "read COUNT (default 1) 64-bit words at a kernel virtual address through the MMU")
def cmd_peek(k, args):
    if not 1 <= len(args) <= 2:
        raise KernelError("EINVAL", "usage: peek VADDR [COUNT]")
    va = parse_int(args[0], "address")
    n = parse_int(args[1], "count") if len(args) > 1 else 1
    if not 0 <= va <= 0xFFFFFFFFFFFFFFFF or va & 7:
        raise KernelError("EINVAL", "address %s is not a 64-bit aligned address" % args[0])
    if not 1 <= n <= PEEK_MAX:
        raise KernelError("EINVAL", "count must be 1..%d" % PEEK_MAX)
    top = (va + 8 * n - 8) >> 47
    if (va >> 47) not in (0, 0x1FFFF) or top != va >> 47:
        raise KernelError("EINVAL", "0x%x is not a canonical address" % va)
    read64 = k.hw.vread64
    out = []
    for i in range(n):
        a = va + 8 * i
        out.append("0x%016x: 0x%016x" % (a, read64(a)))     # a fault raises hw.Fault: EFAULT
    return "\n".join(out)


@command("pfdemo", "pfdemo [restore]",
         "load a fresh page table, fault in a page at 0x400000 from Python; restore goes back to init_mm")
def cmd_pfdemo(k, args):
    if args == ["restore"]:
        pfdemo.restore(k)
        return "cr3=0x%x" % (k.hw.read_cr3() & PTE_ADDR_MASK)
    if args:
        raise KernelError("EINVAL", "usage: pfdemo [restore]")
    return pfdemo.run(k)


@command("check", "check", "walk mem_map: frames by owner, checked against the buddy, slab, vmalloc, page-cache and anon counters, the page tables and the swap maps")
def cmd_check(k, args):
    if args:
        raise KernelError("EINVAL", "usage: check")
    census, bad = debug_vm.check(k)
    for line in bad:
        k.printk("check: " + line)
    if bad:
        raise KernelError("EUCLEAN", "%d violations, first: %s" % (len(bad), bad[0]))
    return debug_vm.format_census(k, census) + "\ncheck: ok"


@pseudo_file("/sys/kernel/debug/mem_map")
def debug_mem_map(k):
    """Where mem_map is and how to read it from outside (tools/memmap):
    the record layout of mm/page/mem_map.py, the slab caches by id with their
    backend, and the frames on the pcp list (KIND_ANON records, not mapped)."""
    mm = k.mem_map
    lines = ["base 0x%x" % mm.base, "nr_pfns %d" % mm.nr_pfns, "record_size 16"]
    for s in k.slab.all_caches():
        lines.append("cache %d %s %s" % (s.id, s.backend, s.name))
    pcp = k.pcp
    if pcp is not None:
        lines.append("pcp " + " ".join("%x" % (pa >> 12) for pa in pcp.list))
    return "\n".join(lines)
