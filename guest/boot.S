/* Multiboot v1 entry (a.out kludge, so QEMU's -kernel loads this flat image
 * at KERNEL_LOAD_PHYS), then: zero .bss, temporary 4-level tables, long mode
 * (SDM 10.8.5: PAE, EFER.LME, then CR0.PG), and a jump to the kernel's link
 * address in the top 2 GiB. kernel_py replaces these tables later. */
#include "layout.h"

#define MB_MAGIC      0x1BADB002
#define MB_FLAGS      ((1 << 1) | (1 << 16))   /* memory map, a.out kludge */
#define PHYS(x)       ((x) - KERNEL_BASE)

#define PTE_P         0x1
#define PTE_RW        0x2
#define PTE_PS        0x80

#define CR0_MP        (1 << 1)
#define CR0_EM        (1 << 2)
#define CR0_NE        (1 << 5)
#define CR0_WP        (1 << 16)
#define CR0_PG        (1 << 31)
#define CR4_PAE       (1 << 5)
#define CR4_OSFXSR    (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER      0xC0000080
#define EFER_LME      (1 << 8)
#define EFER_NXE      (1 << 11)

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long PHYS(mb_header)           /* header_addr */
    .long PHYS(__image_start)       /* load_addr */
    .long PHYS(__load_end)          /* load_end_addr */
    .long PHYS(__bss_end)           /* bss_end_addr */
    .long PHYS(_start32)            /* entry_addr */

    .section .boot32, "ax"
    .code32
    .globl _start32
_start32:
    cli
    cld
    mov %ebx, %esi                  /* multiboot info (physical) */
    cmp $0x2BADB002, %eax
    jne boot_fail

    /* zero .bss: the tables below and the C world live there */
    mov $PHYS(__bss_start), %edi
    mov $PHYS(__bss_end), %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    /* boot_pd: BOOT_DIRECT_GIB page directories of 2 MiB pages covering
     * physical 0 .. BOOT_DIRECT_GIB GiB, shared by three views. */
    mov $PHYS(boot_pd), %edi
    mov $(PTE_P | PTE_RW | PTE_PS), %eax
    xor %edx, %edx                  /* high half of the entry */
    mov $(BOOT_DIRECT_GIB * 512), %ecx
1:  mov %eax, (%edi)
    mov %edx, 4(%edi)
    add $0x200000, %eax
    adc $0, %edx
    add $8, %edi
    loop 1b

    /* direct map: PML4[273] -> boot_pdpt_direct[0..N) -> boot_pd */
    mov $PHYS(boot_pdpt_direct), %edi
    mov $(PHYS(boot_pd) + PTE_P + PTE_RW), %eax
    mov $BOOT_DIRECT_GIB, %ecx
2:  mov %eax, (%edi)
    add $4096, %eax
    add $8, %edi
    loop 2b

    /* identity map of the first 4 GiB: PML4[0] -> boot_pdpt_low -> boot_pd */
    mov $PHYS(boot_pdpt_low), %edi
    mov $(PHYS(boot_pd) + PTE_P + PTE_RW), %eax
    mov $4, %ecx
3:  mov %eax, (%edi)
    add $4096, %eax
    add $8, %edi
    loop 3b

    /* kernel image: PML4[511] -> boot_pdpt_kernel[510] -> first GiB */
    movl $(PHYS(boot_pd) + PTE_P + PTE_RW), PHYS(boot_pdpt_kernel) + 510 * 8

    movl $(PHYS(boot_pdpt_low) + PTE_P + PTE_RW), PHYS(boot_pml4)
    movl $(PHYS(boot_pdpt_direct) + PTE_P + PTE_RW), PHYS(boot_pml4) + 273 * 8
    movl $(PHYS(boot_pdpt_kernel) + PTE_P + PTE_RW), PHYS(boot_pml4) + 511 * 8

    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $PHYS(boot_pml4), %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov %cr0, %eax
    and $~CR0_EM, %eax
    or $(CR0_PG | CR0_WP | CR0_MP | CR0_NE), %eax   /* NE: x87 errors raise #MF (SDM 2.5) */
    mov %eax, %cr0

    lgdt PHYS(boot_gdt_ptr)
    ljmp $SEL_KCODE, $PHYS(long_mode_low)

boot_fail:
    hlt
    jmp boot_fail

    .code64
long_mode_low:
    movabs $long_mode_high, %rax
    jmp *%rax

    .section .text
long_mode_high:
    mov $SEL_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    movabs $kstack_top, %rsp
    xor %ebp, %ebp
    mov %esi, %edi                  /* kmain(multiboot info physical address) */
    call kmain
4:  cli
    hlt
    jmp 4b

    .section .rodata
    .align 16
boot_gdt:                           /* the selectors of layout.h */
    .quad 0
    .quad 0
    .quad 0x00209A0000000000        /* SEL_KCODE 0x10: 64-bit code, DPL 0 */
    .quad 0x0000920000000000        /* SEL_KDATA 0x18: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long PHYS(boot_gdt)

    .section .bss
    .align 4096
    .globl boot_pml4, boot_pd, boot_tables_start, boot_tables_end
boot_tables_start:
boot_pml4:        .skip 4096
boot_pdpt_low:    .skip 4096
boot_pdpt_direct: .skip 4096
boot_pdpt_kernel: .skip 4096
boot_pd:          .skip 4096 * BOOT_DIRECT_GIB
boot_tables_end:

/* The kernel stack, with one page below it that kernel_py leaves unmapped
 * (hw.kernel_sections() names both); the exception stacks (IST, SDM 6.14.5)
 * of #DF (a kernel stack overflow: the #PF cannot push its frame) and of
 * NMI/#MC; and the stack the oops recovery starts on (guest/trap.c). */
    .align 4096
    .globl kstack_guard, kstack_bottom, kstack_top
kstack_guard:     .skip 4096
kstack_bottom:    .skip KSTACK_SIZE
kstack_top:
    .globl ist_df_top, ist_other_top, recover_stack_top
    .skip IST_STACK_SIZE
ist_df_top:
    .skip IST_STACK_SIZE
ist_other_top:
    .skip IST_STACK_SIZE
recover_stack_top:

    .section .note.GNU-stack, "", @progbits
