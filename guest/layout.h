/* Address-space constants the platform needs; kernel_py/arch/x86/layout.py holds the
 * same values for Python (tests/model/test_layout.py checks they agree). */
#ifndef KPY_LAYOUT_H
#define KPY_LAYOUT_H

#define KERNEL_BASE      0xffffffff80000000
#define DIRECT_MAP_BASE  0xffff888000000000
#define KERNEL_LOAD_PHYS 0x100000

/* The boot tables map this much of physical memory in the direct map. */
#define BOOT_DIRECT_GIB  16

#define PAGE_SIZE        4096
#define KSTACK_SIZE      (256 * 1024)
#define IST_STACK_SIZE   (16 * 1024)
#define VM_HEAP_SIZE     (24 * 1024 * 1024)
#define PYSTACK_SIZE     (256 * 1024)
#define HEAP_MIN_PHYS    (16 * 1024 * 1024)   /* above ZONE_DMA */
#define HEAP_ALIGN       (2 * 1024 * 1024)

/* GDT selectors (guest/cpu.c lays the GDT out in this order). */
#define SEL_KCODE        0x08
#define SEL_KDATA        0x10
#define SEL_TSS          0x18

#endif
