/* Exception entry for the 32 architectural vectors (SDM 6.15) and the
 * accessors through which Python touches memory. */

/* Vectors that push an error code (SDM Table 6-1). */
#define HAS_ERRCODE(n) ((n) == 8 || ((n) >= 10 && (n) <= 14) || (n) == 17 || (n) == 21 || (n) == 29 || (n) == 30)

    .section .text
    .macro isr n
    .align 16
isr_\n:
    .if !HAS_ERRCODE(\n)
    pushq $0
    .endif
    pushq $\n
    jmp isr_common
    .endm

    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    isr \n
    .endr

    .section .rodata
    .globl isr_table
    .align 8
isr_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_\n
    .endr

    .section .text
/* Builds struct trap_frame (guest/cpu.h) below the CPU's frame. CR2 is read
 * first, before anything can fault again. exc_enter may move the frame to the
 * interrupted stack (a #PF in an accessor runs Python there); exc_handle may
 * rewrite RIP/RSP in it before the iretq. */
isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %cr2, %rax
    push %rax
    sub $8, %rsp                    /* pad: the frame is 24 quads, keeps RSP 16-aligned */
    cld
    mov %rsp, %rdi
    call exc_enter
    mov %rax, %rsp
    mov %rsp, %rdi
    call exc_handle
    add $16, %rsp                   /* pad, cr2 */
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   /* vector, error code */
    iretq

/* Accessors: leaf functions that never touch the stack, so a fault inside
 * one is resumed at ua_fixup with RSP at the return address (the idea of
 * Linux's exception tables). ua_faulted tells the caller. */
    .section .text.uaccess, "ax"
    .globl ua_read8, ua_read16, ua_read32, ua_read64
    .globl ua_write8, ua_write16, ua_write32, ua_write64
    .globl ua_memset, ua_memmove, ua_fixup
ua_read8:   movzbl (%rdi), %eax
            ret
ua_read16:  movzwl (%rdi), %eax
            ret
ua_read32:  movl (%rdi), %eax
            ret
ua_read64:  movq (%rdi), %rax
            ret
ua_write8:  movb %sil, (%rdi)
            ret
ua_write16: movw %si, (%rdi)
            ret
ua_write32: movl %esi, (%rdi)
            ret
ua_write64: movq %rsi, (%rdi)
            ret
/* ua_memset(dst, byte, n): 8 bytes a step, then the tail (rep stosq is
 * several times faster than rep stosb under TCG) */
ua_memset:  movzbl %sil, %eax
            movabs $0x0101010101010101, %rcx
            imul %rcx, %rax
            mov %rdx, %rcx
            shr $3, %rcx
            rep stosq
            mov %rdx, %rcx
            and $7, %rcx
            rep stosb
            ret
/* ua_memmove(dst, src, n): backwards when dst overlaps above src */
ua_memmove: mov %rdx, %rcx
            cmp %rsi, %rdi
            jbe 1f
            lea -1(%rsi,%rdx), %rsi
            lea -1(%rdi,%rdx), %rdi
            std
            rep movsb
            cld
            ret
1:          shr $3, %rcx
            rep movsq
            mov %rdx, %rcx
            and $7, %rcx
            rep movsb
            ret
ua_fixup:   cld
            movb $1, ua_faulted(%rip)
            xor %eax, %eax
            ret

    .section .text
/* IRQs from the 8259 PIC (remapped to 32..47). Interrupts are enabled only
 * inside the console's sti;hlt wait, so the handler only acknowledges: the
 * waiter then polls the UART again. */
    .globl irq_stub
    .align 16
irq_stub:
    push %rax
    mov $0x20, %al
    out %al, $0xA0                  /* EOI to the slave (harmless for master IRQs) */
    out %al, $0x20                  /* EOI to the master */
    pop %rax
    iretq

/* run_on_stack(fn, arg, sp): call fn(arg) with RSP = sp, then return. */
    .globl run_on_stack
run_on_stack:
    push %rbp
    mov %rsp, %rbp
    mov %rdx, %rsp
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    mov %rbp, %rsp
    pop %rbp
    ret

    .section .note.GNU-stack, "", @progbits
