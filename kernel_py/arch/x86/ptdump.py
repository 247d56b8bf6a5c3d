# ptdump: page tables as Linux prints them in /sys/kernel/debug/page_tables/
# (arch/x86/mm/dump_pagetables.c): one line per run of contiguous mappings
# with the same flags and level, address-range section markers, and the
# flags in fixed columns:
#
#   0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud
#
# format_ptdump() takes (va, size, flags, level) entries (level as Linux's pg_level:
# 1 pte, 2 pmd, 3 pud, 4 pgd), so the host walker and the guest walker below
# print through the same code. Flags are the effective rights (RW/USER
# AND-ed over the levels, NX OR-ed) plus the leaf's PWT/PCD/PSE/GLOBAL.
# Unlike Linux, runs of not-present entries are not printed.

import struct

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, KERNEL_BASE, VMALLOC_START
from kernel_py.arch.x86.cpu import (
    LEVEL_SHIFT, PAGE_SIZE, PTE_ADDR_MASK,
    _PAGE_GLOBAL, _PAGE_NX, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PSE, _PAGE_PWT,
    _PAGE_RW, _PAGE_USER,
)

M64 = 0xFFFFFFFFFFFFFFFF
KERNEL_SPACE = 0xFFFF800000000000
MARKERS = (
    (0, "User Space"),
    (KERNEL_SPACE, "Kernel Space"),
    (DIRECT_MAP_BASE, "Low Kernel Mapping"),
    (VMALLOC_START, "vmalloc() Area"),
    (KERNEL_BASE, "High Kernel Mapping"),
)
LEVEL_NAMES = ("", "pte", "pmd", "pud", "pgd")
SHOWN = (_PAGE_PRESENT | _PAGE_USER | _PAGE_RW | _PAGE_PWT | _PAGE_PCD
         | _PAGE_PSE | _PAGE_GLOBAL | _PAGE_NX)
UNITS = "BKMGTPE"
_PAT_4K = _PAGE_PSE         # bit 7 of a 4 KiB PTE is PAT (SDM 4.5, Table 4-20)


def prot_text(flags, level):
    """The flag columns of printk_prot()."""
    if not flags & _PAGE_PRESENT:
        return " " * 30
    return "".join((
        "USR " if flags & _PAGE_USER else "    ",
        "RW " if flags & _PAGE_RW else "ro ",
        "PWT " if flags & _PAGE_PWT else "    ",
        "PCD " if flags & _PAGE_PCD else "    ",
        "PSE " if level > 1 and flags & _PAGE_PSE else "    ",
        "PAT " if level == 1 and flags & _PAT_4K else "    ",
        "GLB " if flags & _PAGE_GLOBAL else "    ",
        "NX " if flags & _PAGE_NX else "x  ",
    ))


def size_text(delta):
    u = 0
    while not delta & 1023 and u < len(UNITS) - 1 and delta:
        delta >>= 10
        u += 1
    return "%9d%s" % (delta, UNITS[u])


def line(start, end, flags, level):
    return "0x%016x-0x%016x   %s %s%s" % (
        start, end & M64, size_text(end - start), prot_text(flags, level),
        LEVEL_NAMES[level])


def coalesce(entries, cuts=()):
    """Merge contiguous (va, size, flags, level) with equal flags and level
    into (start, end, flags, level) runs, never across an address in cuts."""
    runs = []
    cur = None
    for va, size, flags, level in entries:
        flags &= SHOWN
        if cur is not None and cur[1] == va and cur[2] == flags and cur[3] == level \
                and not crosses(cuts, va):
            cur[1] = va + size
            continue
        if cur is not None:
            runs.append(tuple(cur))
        cur = [va, va + size, flags, level]
    if cur is not None:
        runs.append(tuple(cur))
    return runs


def crosses(cuts, va):
    for c in cuts:
        if c == va:
            return True
    return False


def format_ptdump(entries, markers=MARKERS, start=0, end=1 << 64):
    """ptdump text for entries sorted by va within [start, end)."""
    inside = [m for m in markers if start <= m[0] < end]
    runs = coalesce(entries, [m[0] for m in inside])
    out = []
    mi = 0
    for s, e, flags, level in runs:
        while mi < len(inside) and inside[mi][0] <= s:
            out.append("---[ %s ]---" % inside[mi][1])
            mi += 1
        out.append(line(s, e, flags, level))
    while mi < len(inside):
        out.append("---[ %s ]---" % inside[mi][1])
        mi += 1
    return "\n".join(out)


def walk(hw, root, start=0, end=1 << 64):
    """Present leaves under root within [start, end) as (va, size, flags,
    level), va ascending; flags are effective rights (see the top)."""
    out = []
    _walk(hw.readbytes, root, 4, 0, start, end, M64, 0, out)
    return out


def _walk(readbytes, table, level, base, start, end, and_bits, or_bits, out):
    shift = LEVEL_SHIFT[level]
    size = 1 << shift
    entries = struct.unpack("<512Q", readbytes(table, PAGE_SIZE))
    for i in range(512):
        e = entries[i]
        if not e & _PAGE_PRESENT:
            continue
        va = base + (i << shift)
        if level == 4 and i >= 256:
            va |= 0xFFFF000000000000        # sign-extend (SDM 3.3.7.1)
        if va + size <= start or va >= end:
            continue
        if level == 1 or (level < 4 and e & _PAGE_PSE):
            keep = _PAGE_RW | _PAGE_USER
            flags = (e & ~keep & ~PTE_ADDR_MASK) | (e & and_bits & keep) | (or_bits & _PAGE_NX)
            out.append((va, size, flags & SHOWN, level))
        else:
            _walk(readbytes, e & PTE_ADDR_MASK, level - 1, va, start, end,
                  and_bits & e, or_bits | e, out)


def wx_violations(entries):
    """Runs that are both writable and executable (CONFIG_DEBUG_WX)."""
    return [r for r in coalesce(entries) if r[2] & _PAGE_RW and not r[2] & _PAGE_NX]


def user_kernel_violations(entries):
    """User-accessible runs in the kernel half."""
    return [r for r in coalesce(entries) if r[2] & _PAGE_USER and r[0] >= KERNEL_SPACE]
