/* User mode (docs/hw.md, "User mode"): the layout of the register buffer
 * hw.run_user(regs, fpu) reads and writes, the events it returns, and the
 * limits it checks. kernel_py/arch/x86/ptrace.py holds the same values for
 * Python; tests/model/test_ptrace_layout.py parses this file and checks that
 * every #define here has the same value there.
 *
 * Plain integer #defines only (the test evaluates them), usable from C and
 * from assembly. The register names are INDICES of 64-bit slots, in the order
 * of Linux's struct pt_regs (arch/x86/include/asm/ptrace.h), not the byte
 * offsets of Linux's uapi ptrace-abi.h: slot i is at byte 8 * i. */
#ifndef KPY_PTRACE_H
#define KPY_PTRACE_H

/* struct pt_regs */
#define R15         0
#define R14         1
#define R13         2
#define R12         3
#define RBP         4
#define RBX         5
#define R11         6
#define R10         7
#define R9          8
#define R8          9
#define RAX         10
#define RCX         11
#define RDX         12
#define RSI         13
#define RDI         14
#define ORIG_RAX    15      /* RAX at SYSCALL; -1 after an exception or interrupt */
#define RIP         16
#define CS          17
#define EFLAGS      18
#define RSP         19
#define SS          20
/* the rest of the task's CPU state */
#define FS_BASE     21      /* MSR 0xC0000100 */
#define GS_BASE     22      /* MSR 0xC0000101 */
#define ERROR       23      /* error code of the last exception (0 if it has none) */
#define CR2         24      /* faulting address of the last #PF */
#define VECTOR      25      /* the event run_user last returned */
#define TSC_ENTER   26      /* TSC read just before the switch to ring 3 */
#define TSC_EXIT    27      /* TSC read just after the switch back */
#define NR_REGS     28      /* slots (an even count: 224 bytes) */

/* Events: run_user's return value. 0..31: a CPU exception raised in ring 3
 * (its vector); IRQ_VECTOR_BASE + irq: a hardware interrupt. */
#define IRQ_VECTOR_BASE 32  /* the 8259 pair is remapped to vectors 32..47 */
#define NR_IRQS         16
#define EVENT_SYSCALL   256 /* the SYSCALL instruction */
#define EVENT_BADFRAME  257 /* the frame was refused; nothing ran, regs untouched */

/* access_ok: a user range lies entirely below this address (the lower
 * canonical half, 48-bit virtual addresses). */
#define USER_ADDR_LIMIT 0x800000000000

/* EFLAGS a user frame may carry (CF PF AF ZF SF TF DF OF AC ID); run_user
 * keeps these, sets IF and the reserved bit 1, clears everything else
 * (IOPL, NT, RF, VM, VIF, VIP). SDM Vol. 1, 3.4.3. */
#define USER_EFLAGS_MASK  0x240DD5
#define USER_EFLAGS_FIXED 0x202

/* The FPU/SSE buffer: FXSAVE's 512-byte area (SDM Vol. 1, 10.5.1), at the
 * first 16-byte-aligned address inside a buffer of at least FPU_BUF_SIZE. */
#define FPU_BUF_SIZE    528
#define FXSAVE_SIZE     512
#define FXSAVE_FCW      0   /* x87 control word, 16 bits */
#define FXSAVE_MXCSR    24  /* MXCSR, 32 bits */
#define FXSAVE_XMM0     160 /* XMM0..XMM15, 16 bytes each */
#define FPU_INIT_FCW    0x37F   /* Linux's initial state (fpstate_init_fx) */
#define FPU_INIT_MXCSR  0x1F80

#endif
