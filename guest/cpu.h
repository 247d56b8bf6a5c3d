/* CPU tables, exception dispatch, and the small CPU helpers hw.c needs. */
#ifndef KPY_CPU_H
#define KPY_CPU_H

#include <stdint.h>

/* What guest/entry.S pushes, lowest address first. */
struct trap_frame {
    uint64_t pad;
    uint64_t cr2;
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;   /* pushed by the CPU (SDM 6.14.2) */
};

/* The last fault taken inside an accessor, for hw.Fault's arguments. */
struct fault_info {
    uint64_t vector, error, address, rip;
};

extern volatile uint8_t ua_faulted, uc_faulted;
extern struct fault_info ua_fault;

/* What cpu_init found (CPUID leaf 7) and switched on. */
extern int cpu_smep, cpu_smap;
extern uint32_t mxcsr_mask;     /* MXCSR bits FXRSTOR accepts (SDM Vol. 1, 11.6.6) */

/* The 64-bit TSS (SDM Vol. 3A 8.7); guest/entry.S stores RSP0 in it. */
struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));
extern struct tss cpu_tss;

#define MSR_EFER          0xC0000080
#define MSR_STAR          0xC0000081
#define MSR_LSTAR         0xC0000082
#define MSR_CSTAR         0xC0000083
#define MSR_FMASK         0xC0000084
#define MSR_FS_BASE       0xC0000100
#define MSR_GS_BASE       0xC0000101
#define EFER_SCE          (1ULL << 0)
#define CR4_SMEP          (1ULL << 20)
#define CR4_SMAP          (1ULL << 21)
#define X86_EFLAGS_TF     (1ULL << 8)
#define X86_EFLAGS_IF     (1ULL << 9)
#define X86_EFLAGS_DF     (1ULL << 10)
#define X86_EFLAGS_NT     (1ULL << 14)
#define X86_EFLAGS_AC     (1ULL << 18)

void cpu_init(void);
/* hardware interrupts: count, EOI, pending (guest/cpu.c) */
void irq_handle(unsigned irq);
extern volatile uint64_t irq_count[16], irq_seq;
extern volatile uint32_t irq_pending_mask;
void oops_print(const struct trap_frame *f, const char *why);

static inline uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr2(void) { uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static inline void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void invlpg(uint64_t va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }
static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline void fxsave(void *area) { __asm__ volatile("fxsave64 %0" : "=m"(*(char (*)[512])area)); }
static inline void fxrstor(const void *area) { __asm__ volatile("fxrstor64 %0" : : "m"(*(const char (*)[512])area)); }

/* isa-debug-exit (QEMU exits with status * 2 + 1). */
void qemu_exit(int status) __attribute__((noreturn));

#endif
