# The virtual address-space layout (x86-64, 4-level paging, as Linux lays it
# out; see Documentation/arch/x86/x86_64/mm.rst), and the platform's GDT
# selectors. guest/layout.h holds the values the C platform needs;
# tests/model/test_layout.py checks that each of them has the same value here.

USER_START = 0x0000000000010000      # the lowest address mmap gives: vm.mmap_min_addr, Linux's default 64 KiB
STACK_GUARD_GAP = 256 << 12          # kept free below a stack that grows down (Linux's stack_guard_gap)
USER_END = 0x00007FFFFFFFF000        # first address above user space
NULL_GUARD_END = 0x1000              # [0, 4 KiB) is never mapped

DIRECT_MAP_BASE = 0xFFFF888000000000  # all of RAM, phys p at DIRECT_MAP_BASE + p
DIRECT_MAP_SIZE = 64 << 40            # 64 TiB window (Linux reserves the same)
VMALLOC_START = 0xFFFFC90000000000
VMALLOC_END = 0xFFFFE8FFFFFFFFFF + 1
KERNEL_BASE = 0xFFFFFFFF80000000      # kernel image: virt = KERNEL_BASE + phys
KERNEL_HALF = 256                     # PML4 slots 256..511 map the kernel: every PML4 shares init_mm's

# The boot tables also identity-map the first BOOT_IDENTITY_SIZE bytes; the
# kernel's own tables drop that map so a NULL dereference faults.
BOOT_IDENTITY_SIZE = 4 << 30

# GDT selectors (guest/cpu.c; Linux's x86-64 layout, asm/segment.h). A user
# frame for hw.run_user has CS = SEL_UCODE, SS = SEL_UDATA (run_user forces
# them); the kernel's are what the oops and the host see in ring 0.
SEL_KCODE = 0x10       # __KERNEL_CS
SEL_KDATA = 0x18       # __KERNEL_DS
SEL_UCODE32 = 0x23     # __USER32_CS: no descriptor (no compatibility mode); STAR's SYSRET base
SEL_UDATA = 0x2B       # __USER_DS
SEL_UCODE = 0x33       # __USER_CS
SEL_TSS = 0x40

# Physical memory map types (multiboot / E820)
E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5

# Zone limits (physical)
DMA_LIMIT = 16 << 20
DMA32_LIMIT = 4 << 30


def phys_to_virt(pa):
    return DIRECT_MAP_BASE + pa


def virt_to_phys(va):
    if va >= KERNEL_BASE:
        return va - KERNEL_BASE
    return va - DIRECT_MAP_BASE
