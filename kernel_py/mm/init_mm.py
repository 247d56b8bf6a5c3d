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
# (Linux's names).

from kernel_py.errors import KernelError
from kernel_py.layout import DIRECT_MAP_BASE
from kernel_py.mm.memmap import subtract
from kernel_py.x86 import PAGE_SIZE, _PAGE_GLOBAL, _PAGE_NX, _PAGE_RW

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


def build(hw, pgt, ram, sections, gbpages):
    """A new PML4 with the direct map and the kernel image; returns InitMM."""
    root = pgt.alloc_table()
    if root is None:
        raise KernelError("ENOMEM", "init_mm: no frame for the PML4")
    mm = InitMM(root, gbpages)
    for s, e in ram:
        pgt.map_range(root, DIRECT_MAP_BASE + s, s, e - s, PAGE_KERNEL, gbpages)
    ranges, mm.stack_guards = image_ranges(sections)
    for vs, ve, ps, flags, name in ranges:
        pgt.map_range(root, vs, ps, ve - vs, flags)
        mm.image.append((vs, ve, ps, flags, name))
    return mm


def takeover(hw, pgt, ram, params):
    """Build the kernel's tables and load them into CR3."""
    mm = build(hw, pgt, ram, hw.kernel_sections(), want_gbpages(hw, params))
    hw.write_cr3(mm.pgd)
    return mm
