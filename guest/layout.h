/* Address-space constants the platform needs; kernel_py/arch/x86/layout.py holds the
 * same values for Python. tests/model/test_layout.py parses this file and
 * checks every #define against arch/x86/layout.py (except the platform's own sizes,
 * which the test lists, and which the kernel learns at run time from
 * hw.reserved() and hw.kernel_sections()). Plain integer #defines only. */
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
/* The VM heap: RAM >> VM_HEAP_RAM_SHIFT (an eighth), clamped to
 * [VM_HEAP_MIN, VM_HEAP_MAX] and rounded down to HEAP_ALIGN (place_heap). */
#define VM_HEAP_MIN      (24 * 1024 * 1024)
#define VM_HEAP_MAX      (256 * 1024 * 1024)
#define VM_HEAP_RAM_SHIFT 3
#define PYSTACK_SIZE     (256 * 1024)
#define HEAP_MIN_PHYS    (16 * 1024 * 1024)   /* above ZONE_DMA */
#define HEAP_ALIGN       (2 * 1024 * 1024)

/* GDT selectors, Linux's x86-64 layout (arch/x86/include/asm/segment.h):
 * guest/cpu.c builds the GDT with them. SYSCALL takes CS = STAR[47:32] =
 * SEL_KCODE and SS = that + 8 = SEL_KDATA; SYSRETQ takes SS = STAR[63:48] + 8
 * and CS = STAR[63:48] + 16, RPL 3 (SDM Vol. 2B SYSCALL, SYSRET), so with
 * STAR[63:48] = SEL_UCODE32 the user data segment must directly follow the
 * 32-bit user code slot, and the 64-bit user code segment follow that.
 * SEL_UCODE32 has no descriptor (compatibility mode is not supported: a
 * far transfer to it is #GP); it only anchors SYSRET. User selectors carry
 * RPL 3, as the CPU stores them. */
#define SEL_KCODE        0x10
#define SEL_KDATA        0x18
#define SEL_UCODE32      0x23
#define SEL_UDATA        0x2b
#define SEL_UCODE        0x33
#define SEL_TSS          0x40

#endif
