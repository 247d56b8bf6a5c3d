/* Exception and interrupt entry for vectors 0..47 (SDM Vol. 3A 6.15: the
 * 32 architectural exceptions, then the 8259 pair's 16 IRQs), user mode
 * (entry to ring 3 and the three ways back: exception, interrupt, SYSCALL),
 * and the accessors through which Python touches memory. */
#include "layout.h"
#include "ptrace.h"

/* Vectors that push an error code (SDM Table 6-1). */
#define HAS_ERRCODE(n) ((n) == 8 || ((n) >= 10 && (n) <= 14) || (n) == 17 || (n) == 21 || (n) == 29 || (n) == 30)

/* STAC / CLAC (SDM Vol. 2, 3 bytes each) raise #UD on a CPU without SMAP:
 * every site is recorded in .smap_sites, and cpu_init() turns them into
 * 3-byte NOPs when CPUID.(EAX=7):EBX.SMAP is 0 (Linux's alternatives). */
    .macro SMAP insn
771:    \insn
    .pushsection .smap_sites, "a"
    .quad 771b
    .popsection
    .endm

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
    .irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    isr \n
    .endr

    .section .rodata
    .globl isr_table
    .align 8
isr_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_\n
    .endr
    .irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .quad isr_\n
    .endr

    .section .text
/* Every vector arrives here with the vector and an error code (0 if the CPU
 * pushed none) above the CPU's frame: RIP, CS, RFLAGS, RSP, SS (SDM 6.14.2).
 * The CPU does not clear RFLAGS.AC or DF on delivery (6.12.1.3), so both are
 * cleared first: user code may have set them, and a fault inside a STAC
 * section must not run its handler with SMAP off (the iretq puts them back).
 * From ring 3 (CS.RPL = 3): user_exit. From ring 0: struct trap_frame
 * (guest/cpu.h) below the CPU's frame, CR2 read before anything can fault
 * again; exc_handle may rewrite RIP/RSP/RFLAGS in it before the iretq. */
isr_common:
    SMAP clac
    cld
    testb $3, 24(%rsp)              /* the saved CS */
    jnz user_exit
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

/* ---- user mode ----
 *
 * uint64_t user_enter(int64_t *regs, int sysret): called by hw.run_user
 * (guest/user.c) with a validated frame. It saves the callee-saved registers
 * and makes the stack pointer below them the continuation (user_cont): the
 * RSP0 of the TSS, so an exception or interrupt from ring 3 lands right
 * there on the kernel stack (6.14.2: no IST for these vectors), and the
 * stack the SYSCALL entry switches to. Then ring 3, by IRETQ (6.14.3) or,
 * when guest/user.c found it safe, SYSRETQ (Vol. 2B SYSRET). Whatever brings
 * the CPU back stores the user registers in regs and "returns" from
 * user_enter with the event: RSP := user_cont, pop, ret. */
    .section .bss
    .align 8
    .globl user_cont, user_regs
user_cont:          .quad 0         /* kernel RSP while ring 3 runs; = TSS.RSP0 */
user_regs:          .quad 0         /* the regs buffer of the running task */
syscall_user_rsp:   .quad 0         /* scratch: the user RSP at SYSCALL */

    .section .text
    .globl user_enter
user_enter:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    sub $8, %rsp                    /* 16-aligned: the CPU aligns RSP0 (6.14.2) and SYSCALL's stack is this too */
    mov %rsp, user_cont(%rip)
    mov %rsp, cpu_tss + 4(%rip)     /* TSS.RSP0 (SDM Figure 8-11) */
    mov %rdi, user_regs(%rip)
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, 8*TSC_ENTER(%rdi)
    test %esi, %esi
    jnz 1f
    pushq 8*SS(%rdi)                /* IRETQ: the frame of 6.14.3 from regs */
    pushq 8*RSP(%rdi)
    pushq 8*EFLAGS(%rdi)
    pushq 8*CS(%rdi)
    pushq 8*RIP(%rdi)
    call load_gprs
    mov 8*RDI(%rdi), %rdi
    iretq
1:  call load_gprs                  /* SYSRETQ: RIP := RCX, RFLAGS := R11, CS/SS from STAR */
    mov 8*RSP(%rdi), %rsp           /* IF is 0 until sysretq; NMI and #MC use IST */
    mov 8*RDI(%rdi), %rdi
    sysretq

/* every general register but RDI and RSP from regs (RDI) */
load_gprs:
    mov 8*R15(%rdi), %r15
    mov 8*R14(%rdi), %r14
    mov 8*R13(%rdi), %r13
    mov 8*R12(%rdi), %r12
    mov 8*RBP(%rdi), %rbp
    mov 8*RBX(%rdi), %rbx
    mov 8*R11(%rdi), %r11
    mov 8*R10(%rdi), %r10
    mov 8*R9(%rdi), %r9
    mov 8*R8(%rdi), %r8
    mov 8*RAX(%rdi), %rax
    mov 8*RCX(%rdi), %rcx
    mov 8*RDX(%rdi), %rdx
    mov 8*RSI(%rdi), %rsi
    ret

/* every general register but RDI, RAX and RDX into regs (RDI) */
store_gprs:
    mov %r15, 8*R15(%rdi)
    mov %r14, 8*R14(%rdi)
    mov %r13, 8*R13(%rdi)
    mov %r12, 8*R12(%rdi)
    mov %rbp, 8*RBP(%rdi)
    mov %rbx, 8*RBX(%rdi)
    mov %r11, 8*R11(%rdi)
    mov %r10, 8*R10(%rdi)
    mov %r9, 8*R9(%rdi)
    mov %r8, 8*R8(%rdi)
    mov %rcx, 8*RCX(%rdi)
    mov %rsi, 8*RSI(%rdi)
    ret

/* An exception or interrupt from ring 3, on the kernel stack at user_cont:
 * RSP -> vector, error, RIP, CS, RFLAGS, RSP, SS. AC and DF are clear. */
user_exit:
    push %rdi
    mov user_regs(%rip), %rdi
    mov %rax, 8*RAX(%rdi)
    mov %rdx, 8*RDX(%rdi)
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, 8*TSC_EXIT(%rdi)
    call store_gprs
    popq 8*RDI(%rdi)
    pop %rax                        /* the vector: the event */
    mov %rax, 8*VECTOR(%rdi)
    pop %rdx                        /* the error code */
    cmp $IRQ_VECTOR_BASE, %eax
    jae 2f
    mov %rdx, 8*ERROR(%rdi)         /* exceptions only */
    cmp $14, %eax
    jne 2f
    mov %cr2, %rdx                  /* #PF: the faulting address (6.15, interrupt 14) */
    mov %rdx, 8*CR2(%rdi)
2:  popq 8*RIP(%rdi)
    popq 8*CS(%rdi)
    popq 8*EFLAGS(%rdi)
    popq 8*RSP(%rdi)
    popq 8*SS(%rdi)
    movq $-1, 8*ORIG_RAX(%rdi)
    jmp user_return

/* SYSCALL from ring 3 (IA32_LSTAR; Vol. 2B SYSCALL): CS/SS from STAR, RCX =
 * the user RIP, R11 = the user RFLAGS, RFLAGS &= ~IA32_FMASK (IF, TF, DF,
 * AC, NT clear), RSP still the user's. Both copies of RIP and RFLAGS are
 * stored (RCX and RIP, R11 and EFLAGS) so IRETQ and SYSRETQ restore the
 * same state. */
    .globl syscall_entry
syscall_entry:
    mov %rsp, syscall_user_rsp(%rip)
    mov user_cont(%rip), %rsp
    push %rdi
    mov user_regs(%rip), %rdi
    mov %rax, 8*RAX(%rdi)
    mov %rax, 8*ORIG_RAX(%rdi)
    mov %rdx, 8*RDX(%rdi)
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, 8*TSC_EXIT(%rdi)
    call store_gprs
    popq 8*RDI(%rdi)
    mov %rcx, 8*RIP(%rdi)
    mov %r11, 8*EFLAGS(%rdi)
    mov syscall_user_rsp(%rip), %rax
    mov %rax, 8*RSP(%rdi)
    movq $SEL_UCODE, 8*CS(%rdi)
    movq $SEL_UDATA, 8*SS(%rdi)
    mov $EVENT_SYSCALL, %eax
    mov %rax, 8*VECTOR(%rdi)
    /* fall through */

/* back into user_enter's caller with the event in RAX */
user_return:
    mov user_cont(%rip), %rsp
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

/* ---- accessors ----
 * Leaf functions that never touch the stack, so a #PF inside one is resumed
 * at its fixup with RSP at the return address (the idea of Linux's exception
 * tables). Two ranges, which exc_handle tells apart by RIP:
 *
 * .text.uaccess: hw's accessors. A #PF goes to the Python handler; if it
 * refuses: an oops, then ua_fixup sets ua_faulted and the caller raises
 * hw.Fault. The ua_v* versions are the virtual ones (vread8...): they run
 * with STAC, being the kernel's deliberate touch through CR3 (user pages
 * included, SMAP notwithstanding). The physical ones go through the direct
 * map only and need none (STAC/CLAC end a translation block under TCG).
 *
 * .text.usercopy: uaccess proper (copy_from_user...). Only user addresses
 * (the caller checked access_ok), always with STAC. A #PF goes to the Python
 * handler; if it refuses: no oops, uc_fixup sets uc_faulted and the caller
 * returns None or False. */
    .section .text.uaccess, "ax"
    .globl ua_read8, ua_read16, ua_read32, ua_read64
    .globl ua_write8, ua_write16, ua_write32, ua_write64
    .globl ua_memset, ua_memmove, ua_fixup
    .globl ua_vread8, ua_vread16, ua_vread32, ua_vread64
    .globl ua_vwrite8, ua_vwrite16, ua_vwrite32, ua_vwrite64
    .globl ua_vmemset, ua_vmemmove
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
ua_vread8:  SMAP stac
            movzbl (%rdi), %eax
            SMAP clac
            ret
ua_vread16: SMAP stac
            movzwl (%rdi), %eax
            SMAP clac
            ret
ua_vread32: SMAP stac
            movl (%rdi), %eax
            SMAP clac
            ret
ua_vread64: SMAP stac
            movq (%rdi), %rax
            SMAP clac
            ret
ua_vwrite8: SMAP stac
            movb %sil, (%rdi)
            SMAP clac
            ret
ua_vwrite16: SMAP stac
            movw %si, (%rdi)
            SMAP clac
            ret
ua_vwrite32: SMAP stac
            movl %esi, (%rdi)
            SMAP clac
            ret
ua_vwrite64: SMAP stac
            movq %rsi, (%rdi)
            SMAP clac
            ret
ua_vmemset: SMAP stac
            call ua_memset_body
            SMAP clac
            ret
ua_vmemmove: SMAP stac
            call ua_memmove_body
            SMAP clac
            ret
/* ua_memset(dst, byte, n): 8 bytes a step, then the tail (rep stosq is
 * several times faster than rep stosb under TCG) */
ua_memset:
ua_memset_body:
            movzbl %sil, %eax
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
ua_memmove:
ua_memmove_body:
            mov %rdx, %rcx
            cmp %rsi, %rdi
            jbe 1f
            lea (%rsi,%rdx), %rax
            cmp %rax, %rdi
            jae 1f                  /* no overlap: forwards, 8 bytes a step */
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
/* A fault in ua_vmemset/ua_vmemmove is taken one call deeper (in the body):
 * RSP then points at the return address into the wrapper, and the fixup's
 * ret lands on the wrapper's CLAC and ret. */
ua_fixup:   SMAP clac
            cld
            movb $1, ua_faulted(%rip)
            xor %eax, %eax
            ret

    .section .text.usercopy, "ax"
    .globl uc_copy, uc_fill, uc_strncpy, uc_read64, uc_write64, uc_fixup
/* uc_copy(dst, src, n) */
uc_copy:    SMAP stac
            mov %rdx, %rcx
            shr $3, %rcx
            rep movsq
            mov %rdx, %rcx
            and $7, %rcx
            rep movsb
            SMAP clac
            ret
/* uc_fill(dst, byte, n) */
uc_fill:    SMAP stac
            movzbl %sil, %eax
            movabs $0x0101010101010101, %rcx
            imul %rcx, %rax
            mov %rdx, %rcx
            shr $3, %rcx
            rep stosq
            mov %rdx, %rcx
            and $7, %rcx
            rep stosb
            SMAP clac
            ret
/* uc_strncpy(dst, src, max) -> bytes copied before the first NUL (the NUL
 * is copied too when it lies within max), or max */
uc_strncpy: SMAP stac
            xor %eax, %eax
1:          cmp %rdx, %rax
            jae 2f
            movzbl (%rsi,%rax), %ecx
            movb %cl, (%rdi,%rax)
            test %ecx, %ecx
            jz 2f
            inc %rax
            jmp 1b
2:          SMAP clac
            ret
uc_read64:  SMAP stac
            movq (%rdi), %rax
            SMAP clac
            ret
uc_write64: SMAP stac
            movq %rsi, (%rdi)
            SMAP clac
            ret
uc_fixup:   SMAP clac
            cld
            movb $1, uc_faulted(%rip)
            xor %eax, %eax
            ret

    .section .text
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
