# init_mm: the kernel's own page tables, built from frames the kernel
# allocated, replacing the boot tables (Linux's init_mem_mapping and
# mark_rodata_ro in one step):
#
#   direct map   all RAM at DIRECT_MAP_BASE, RW NX GLOBAL, 1 GiB pages when
#                enabled, else 2 MiB, 4 KiB at unaligned edges
#   kernel image text RX, rodata R NX, data/bss/stack RW NX, all GLOBAL; the
#                page below the kernel stack stays unmapped (guard)
#   nothing else: no identity map (NULL faults), no user mappings
#
# 1 GiB pages need CPUID.80000001H:EDX.Page1GB (SDM 4.1.4): used when the CPU
# has it (or the command line says `gbpages`), never with `nogbpages`
# (Linux's names). With `debug_pagealloc=on` the direct map is built from
# 4 KiB pages only, so that single free frames can leave it
# (mm/debug/debug_pagealloc.py), and the free blocks are unmapped before the
# tables are loaded.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import DIRECT_MAP_BASE
from kernel_py.arch.x86.e820 import subtract
from kernel_py.mm.debug import debug_pagealloc
from kernel_py.arch.x86.cpu import PAGE_SIZE, PMD_SIZE, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW

PAGE_KERNEL = _PAGE_RW | _PAGE_NX | _PAGE_GLOBAL
PAGE_KERNEL_RO = _PAGE_NX | _PAGE_GLOBAL
PAGE_KERNEL_EXEC_RO = _PAGE_GLOBAL         # text: read + execute
SECTION_FLAGS = {
    "text": PAGE_KERNEL_EXEC_RO,
    "rodata": PAGE_KERNEL_RO,
    "data": PAGE_KERNEL,
    "bss": PAGE_KERNEL,
    "stack": PAGE_KERNEL,
}


class InitMM:
    """The kernel's address space: its PML4 and what was mapped."""

    def __init__(self, pgd, gbpages):
        self.pgd = pgd
        self.gbpages = gbpages
        self.image = []         # (vstart, vend, pstart, flags, section)
        self.stack_guards = []
        self.direct_pts = None  # debug_pagealloc: pa of the PTE table of each 2 MiB
        self.unmapped_free = 0


def want_gbpages(hw, params):
    if "nogbpages" in params:
        return False
    if "gbpages" in params:
        return True
    return cpu_has_pdpe1gb(hw)


def cpu_has_pdpe1gb(hw):
    """CPUID.80000001H:EDX.Page1GB (SDM 4.1.4); a machine without cpuid
    (the simulated one) may say so with a cpu_has_pdpe1gb attribute."""
    cpuid = getattr(hw, "cpuid", None)
    if cpuid is None:
        return bool(getattr(hw, "cpu_has_pdpe1gb", False))
    return bool(cpuid(0x80000001)[3] & (1 << 26))


def image_ranges(sections):
    """(vstart, vend, pstart, flags, name) to map: the first section wins
    where sections overlap (the stack lies inside bss); guard pages
    ("stack-guard", else the page below "stack") stay unmapped. A section
    this kernel does not know is mapped read-only and NX."""
    guards = [(vs, ve) for name, vs, ve, ps in sections if name == "stack-guard"]
    if not guards:
        guards = [(vs - PAGE_SIZE, vs) for name, vs, ve, ps in sections if name == "stack"]
    covered = list(guards)
    out = []
    for name, vs, ve, ps in sections:
        if name == "stack-guard":
            continue
        pieces = [(vs, ve)]
        for cs, ce in covered:
            pieces = subtract(pieces, cs, ce)
        flags = SECTION_FLAGS.get(name, PAGE_KERNEL_RO)
        for s, e in pieces:
            out.append((s, e, ps + (s - vs), flags, name))
        covered.append((vs, ve))
    return out, guards


def map_direct_4k(hw, pgt, root, s, e, pts):
    """[s, e) into the direct map with 4 KiB pages; pts[pa >> 21] gets the
    table of each 2 MiB (map() makes it for the first page, the rest of the
    table is written straight)."""
    w64 = hw.write64
    pa = s
    while pa < e:
        pgt.map(root, DIRECT_MAP_BASE + pa, pa, PAGE_KERNEL)
        pt = pgt.walk(root, DIRECT_MAP_BASE + pa)[1] & ~(PAGE_SIZE - 1)
        pts[pa >> 21] = pt
        end = min(e, (pa | (PMD_SIZE - 1)) + 1)
        pa += PAGE_SIZE
        while pa < end:
            w64(pt + ((pa >> 12) & 511) * 8, pa | PAGE_KERNEL | _PAGE_PRESENT)
            pa += PAGE_SIZE


def build(hw, pgt, ram, sections, gbpages, pte_only=False):
    """A new PML4 with the direct map and the kernel image; returns InitMM."""
    root = pgt.alloc_table()
    if root is None:
        raise KernelError("ENOMEM", "init_mm: no frame for the PML4")
    mm = InitMM(root, gbpages and not pte_only)
    if pte_only:
        mm.direct_pts = [None] * ((ram[-1][1] + PMD_SIZE - 1) >> 21 if ram else 0)
    for s, e in ram:
        if pte_only:
            map_direct_4k(hw, pgt, root, s, e, mm.direct_pts)
        else:
            pgt.map_range(root, DIRECT_MAP_BASE + s, s, e - s, PAGE_KERNEL, gbpages)
    ranges, mm.stack_guards = image_ranges(sections)
    for vs, ve, ps, flags, name in ranges:
        pgt.map_range(root, vs, ps, ve - vs, flags)
        mm.image.append((vs, ve, ps, flags, name))
    return mm


def takeover(hw, pgt, ram, params, buddy=None):
    """Build the kernel's tables and load them into CR3 (with
    debug_pagealloc, the buddy's free blocks unmapped first)."""
    pte_only = debug_pagealloc.enabled(params)
    mm = build(hw, pgt, ram, hw.kernel_sections(), want_gbpages(hw, params), pte_only)
    if pte_only and buddy is not None:
        mm.unmapped_free = debug_pagealloc.unmap_free_blocks(hw, mm.direct_pts, buddy)
    hw.write_cr3(mm.pgd)
    return mm
