"""ptdump's text format (arch/x86/mm/dump_pagetables.c)."""

from kernel_py.arch.x86.layout import DIRECT_MAP_BASE, KERNEL_BASE
from kernel_py.arch.x86.ptdump import coalesce, format_ptdump, line
from kernel_py.arch.x86.cpu import (
    PAGE_SIZE, PMD_SIZE, PUD_SIZE,
    _PAGE_ACCESSED, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PSE,
    _PAGE_PWT, _PAGE_RW, _PAGE_USER,
)

P = _PAGE_PRESENT
KERN = P | _PAGE_RW | _PAGE_GLOBAL | _PAGE_NX


def test_lines_match_linux():
    assert line(DIRECT_MAP_BASE, DIRECT_MAP_BASE + PUD_SIZE, KERN | _PAGE_PSE, 3) == \
        "0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud"
    assert line(DIRECT_MAP_BASE + 0x1000, DIRECT_MAP_BASE + 0x100000, KERN, 1) == \
        "0xffff888000001000-0xffff888000100000        1020K     RW                 GLB NX pte"
    assert line(DIRECT_MAP_BASE + PMD_SIZE, DIRECT_MAP_BASE + (1 << 30), KERN | _PAGE_PSE, 2) == \
        "0xffff888000200000-0xffff888040000000        1022M     RW         PSE     GLB NX pmd"
    assert line(KERNEL_BASE, KERNEL_BASE + 0x3000, P | _PAGE_GLOBAL, 1) == \
        "0xffffffff80000000-0xffffffff80003000          12K     ro                 GLB x  pte"
    assert line(0x400000, 0x401000, P | _PAGE_USER | _PAGE_RW | _PAGE_PWT | _PAGE_PCD, 1) == \
        "0x0000000000400000-0x0000000000401000           4K USR RW PWT PCD             x  pte"
    # bit 7 of a 4 KiB PTE is PAT, not PSE
    assert line(0, 0x1000, P | _PAGE_PSE, 1).endswith("ro             PAT     x  pte")
    assert line(0, 5 << 30, P | _PAGE_PSE, 3).split()[1] == "5G"


def test_coalescing_and_markers():
    entries = [
        (DIRECT_MAP_BASE, PAGE_SIZE, KERN, 1),
        (DIRECT_MAP_BASE + PAGE_SIZE, PAGE_SIZE, KERN | _PAGE_ACCESSED, 1),   # A not shown: merges
        (DIRECT_MAP_BASE + 2 * PAGE_SIZE, PAGE_SIZE, KERN & ~_PAGE_RW, 1),    # flags differ
        (DIRECT_MAP_BASE + PMD_SIZE, PMD_SIZE, KERN | _PAGE_PSE, 2),          # gap, level differs
        (DIRECT_MAP_BASE + 2 * PMD_SIZE, PMD_SIZE, KERN | _PAGE_PSE, 2),
        (KERNEL_BASE, PAGE_SIZE, P | _PAGE_GLOBAL, 1),
    ]
    assert len(coalesce(entries)) == 4
    text = format_ptdump(entries).split("\n")
    assert text == [
        "---[ User Space ]---",
        "---[ Kernel Space ]---",
        "---[ Low Kernel Mapping ]---",
        "0xffff888000000000-0xffff888000002000           8K     RW                 GLB NX pte",
        "0xffff888000002000-0xffff888000003000           4K     ro                 GLB NX pte",
        "0xffff888000200000-0xffff888000600000           4M     RW         PSE     GLB NX pmd",
        "---[ vmalloc() Area ]---",
        "---[ High Kernel Mapping ]---",
        "0xffffffff80000000-0xffffffff80001000           4K     ro                 GLB x  pte",
    ]


def test_runs_split_at_markers():
    from kernel_py.arch.x86.layout import VMALLOC_START
    entries = [(VMALLOC_START - PAGE_SIZE, PAGE_SIZE, KERN, 1), (VMALLOC_START, PAGE_SIZE, KERN, 1)]
    text = format_ptdump(entries, start=DIRECT_MAP_BASE)
    assert text.split("\n")[1].endswith("pte") and text.split("\n")[2] == "---[ vmalloc() Area ]---"
    assert "User Space" not in text
