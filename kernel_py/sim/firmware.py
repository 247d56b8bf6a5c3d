"""What the firmware and the boot code leave behind: the E820 memory map,
the fake kernel image's layout, and the boot page tables.

The map is the one SeaBIOS gives for QEMU's `pc` machine (hw/i386/pc.c,
pc_piix.c): conventional memory below the EBDA, the BIOS area, low RAM from
1 MiB up to at most 3 GiB (the top 128 KiB of it reserved by SeaBIOS), the
BIOS flash below 4 GiB, and the rest of RAM above 4 GiB.
"""

from kernel_py.arch.x86 import layout
from kernel_py.arch.x86.layout import (
    E820_RAM, E820_RESERVED, KERNEL_BASE, DIRECT_MAP_BASE, BOOT_IDENTITY_SIZE,
)
from kernel_py.sim.pagetable import Builder
from kernel_py.arch.x86.cpu import PMD_SIZE, _PAGE_PRESENT, _PAGE_RW, _PAGE_NX

MiB = 1 << 20
GiB = 1 << 30

# QEMU pc: with >= 3.5 GiB of RAM only 3 GiB stay below 4 GiB (pc_piix.c).
LOWMEM_SPLIT = 0xE0000000
LOWMEM_GIGABYTE_ALIGNED = 0xC0000000
EBDA_START = 0x9FC00
BIOS_AREA = (0xF0000, 0x100000)
SEABIOS_HIGH_RESERVED = 128 << 10     # top of low RAM, kept by SeaBIOS
KVM_TSS = (0xFEFFC000, 0xFF000000)
BIOS_FLASH = (0xFFFC0000, 0x100000000)

# The fake kernel image, loaded at 1 MiB like a multiboot kernel.
IMAGE_START = 1 * MiB
IMAGE_END = 5 * MiB
SECTIONS = (                          # (name, pstart, pend)
    ("text", 0x100000, 0x180000),
    ("rodata", 0x180000, 0x1C0000),
    ("data", 0x1C0000, 0x200000),
    ("bss", 0x200000, IMAGE_END),
)
HEAP = (0x210000, 0x410000)           # the VM heap, inside bss
STACK = (0x4F8000, IMAGE_END)         # kernel stack, top of bss ...
STACK_GUARD = (0x4F7000, 0x4F8000)    # ... with a guard page below it
# As the guest (boot_info.c): everything below the image is "firmware".
FIRMWARE_LOW = (0, IMAGE_START)
BOOT_TABLES_START = IMAGE_END

# Fake instruction pointers reported with faults, inside "text".
RIP_PHYS = KERNEL_BASE + 0x101000      # physical accessors (direct map)
RIP_UACCESS = KERNEL_BASE + 0x102000   # virtual accessors
RIP_TRAP = KERNEL_BASE + 0x103000      # trap(kind)
RIP_USERCOPY = KERNEL_BASE + 0x104000  # copy_from_user and the other uaccess calls


def lowmem_size(mem_size):
    """RAM below 4 GiB for a pc machine with mem_size bytes."""
    if mem_size >= LOWMEM_SPLIT:
        return LOWMEM_GIGABYTE_ALIGNED
    return mem_size


def e820_map(mem_size):
    """The firmware memory map: list of (base, length, type), sorted."""
    low = lowmem_size(mem_size)
    low_ram_end = low - SEABIOS_HIGH_RESERVED
    entries = [
        (0, EBDA_START, E820_RAM),
        (EBDA_START, 0xA0000 - EBDA_START, E820_RESERVED),
        (BIOS_AREA[0], BIOS_AREA[1] - BIOS_AREA[0], E820_RESERVED),
        (1 * MiB, low_ram_end - 1 * MiB, E820_RAM),
        (low_ram_end, SEABIOS_HIGH_RESERVED, E820_RESERVED),
        (KVM_TSS[0], KVM_TSS[1] - KVM_TSS[0], E820_RESERVED),
        (BIOS_FLASH[0], BIOS_FLASH[1] - BIOS_FLASH[0], E820_RESERVED),
    ]
    if mem_size > low:
        entries.append((4 * GiB, mem_size - low, E820_RAM))
    return entries


def ram_top(mem_map):
    """End of the highest RAM range."""
    return max(b + n for b, n, t in mem_map if t == E820_RAM)


def kernel_sections():
    """(name, vstart, vend, pstart) of the image, virt = KERNEL_BASE + phys."""
    out = [(n, KERNEL_BASE + s, KERNEL_BASE + e, s) for n, s, e in SECTIONS]
    for name, (s, e) in (("stack-guard", STACK_GUARD), ("stack", STACK)):
        out.append((name, KERNEL_BASE + s, KERNEL_BASE + e, s))
    return out


def reserved_ranges(boot_tables_end):
    """(start, end, name) of physical memory already in use at boot."""
    return [
        (FIRMWARE_LOW[0], FIRMWARE_LOW[1], "firmware"),
        (IMAGE_START, IMAGE_END, "kernel"),
        (HEAP[0], HEAP[1], "heap"),
        (STACK_GUARD[0], STACK[1], "stack"),      # guard included, as
                                                  # the guest reports it
        (BOOT_TABLES_START, boot_tables_end, "boot-tables"),
    ]


# Boot page tables ---------------------------------------------------------

LEAF_2M = _PAGE_PRESENT | _PAGE_RW


def build_boot_tables(hw, mem_map):
    """Identity map of BOOT_IDENTITY_SIZE, direct map of all RAM (NX) and the
    kernel image at KERNEL_BASE, all 2 MiB pages, no global bit.
    Returns (cr3, end of the tables)."""
    bt = Builder(hw, BOOT_TABLES_START, zero=False)   # memory is still zero
    bt.map_range(0, 0, BOOT_IDENTITY_SIZE, PMD_SIZE, LEAF_2M)
    for base, length, kind in mem_map:
        if kind != E820_RAM:
            continue
        start = base & ~(PMD_SIZE - 1)
        end = (base + length + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
        bt.map_range(DIRECT_MAP_BASE + start, start, end - start, PMD_SIZE,
                     LEAF_2M | _PAGE_NX)
    image = (IMAGE_END + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
    bt.map_range(KERNEL_BASE, 0, image, PMD_SIZE, LEAF_2M)
    return bt.pml4, bt.next


assert layout.KERNEL_BASE % PMD_SIZE == 0
