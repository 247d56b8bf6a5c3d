/* GDT with a TSS, the IDT, SYSCALL, SMEP/SMAP, the 8259 pair and its IRQ
 * bookkeeping: the policy-free CPU setup. Which stack a handler runs on,
 * when Python may be called, and how the machine gets back to the console
 * after an oops are guest/trap.c's. */
#include <string.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "py/stackctrl.h"

#include "cpu.h"
#include "layout.h"
#include "ptrace.h"
#include "trap.h"

struct idt_entry {
    uint16_t offset_lo, selector;
    uint8_t ist, type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi, zero;
} __attribute__((packed));

struct table_ptr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

enum { IST_NONE = 0, IST_DF = 1, IST_OTHER = 2 };

extern uint64_t isr_table[48];
extern char ist_df_top[], ist_other_top[];
extern char syscall_entry[];
extern char __smap_sites_start[], __smap_sites_end[];

static uint64_t gdt[SEL_TSS / 8 + 2] __attribute__((aligned(16)));
struct tss cpu_tss __attribute__((aligned(16)));
static struct idt_entry idt[48] __attribute__((aligned(16)));

int cpu_smep, cpu_smap;
uint32_t mxcsr_mask;

volatile uint64_t irq_count[16], irq_seq;
volatile uint32_t irq_pending_mask;

/* Linux's x86-64 layout (layout.h): kernel code and data, then the SYSRET
 * triple (32-bit user code: none, user data, 64-bit user code), then the TSS.
 * Descriptors: SDM Vol. 3A 3.4.5; in 64-bit mode base and limit are ignored
 * for code and data, L = 1 makes a 64-bit code segment (5.2.1). */
static void gdt_init(void) {
    uint64_t base = (uint64_t)&cpu_tss, limit = sizeof(cpu_tss) - 1;
    gdt[SEL_KCODE / 8] = 0x00209A0000000000;    /* P, DPL 0, code exec/read, L */
    gdt[SEL_KDATA / 8] = 0x0000920000000000;    /* P, DPL 0, data read/write */
    gdt[SEL_UDATA / 8] = 0x0000F20000000000;    /* P, DPL 3, data read/write */
    gdt[SEL_UCODE / 8] = 0x0020FA0000000000;    /* P, DPL 3, code exec/read, L */
    /* 64-bit TSS descriptor, type 9 (available), present (SDM 8.2.3) */
    gdt[SEL_TSS / 8] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ULL << 40)
           | (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    gdt[SEL_TSS / 8 + 1] = base >> 32;
    cpu_tss.ist[IST_DF - 1] = (uint64_t)ist_df_top;
    cpu_tss.ist[IST_OTHER - 1] = (uint64_t)ist_other_top;
    cpu_tss.iomap_base = sizeof(cpu_tss);       /* no I/O bitmap: IOPL 0 denies ring 3 every port */
    struct table_ptr p = { sizeof(gdt) - 1, (uint64_t)gdt };
    __asm__ volatile(
        "lgdt %0\n"
        "pushq %1\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1: mov %2, %%ax\n mov %%ax, %%ss\n"
        "xor %%eax, %%eax\n mov %%ax, %%ds\n mov %%ax, %%es\n"   /* null, as ring 3 gets them */
        "mov %3, %%ax\n ltr %%ax\n"
        : : "m"(p), "i"(SEL_KCODE), "i"(SEL_KDATA), "i"(SEL_TSS) : "rax", "memory");
}

/* All 48 vectors are interrupt gates (IF cleared on entry, SDM 6.12.1.3).
 * Only #DF (and NMI, #MC) use an IST stack: IST overrides RSP0 whatever
 * the CPL (6.14.5), and every vector ring 3 can raise must land on the
 * kernel stack at RSP0 (never on an IST stack that a second event could
 * reuse). Gate DPL 3 for #BP and #OF only, so int3 and int $4 work from
 * ring 3; any other INT n from ring 3 is #GP (6.12.1.1). */
static void idt_init(void) {
    for (int v = 0; v < 48; v++) {
        uint64_t a = isr_table[v];
        int dpl = v == 3 || v == 4 ? 3 : 0;
        idt[v].offset_lo = a & 0xFFFF;
        idt[v].selector = SEL_KCODE;
        idt[v].ist = v == 8 ? IST_DF : v == 2 || v == 18 ? IST_OTHER : IST_NONE;
        idt[v].type_attr = 0x8E | dpl << 5;    /* present, interrupt gate */
        idt[v].offset_mid = (a >> 16) & 0xFFFF;
        idt[v].offset_hi = a >> 32;
        idt[v].zero = 0;
    }
    struct table_ptr p = { sizeof(idt) - 1, (uint64_t)idt };
    __asm__ volatile("lidt %0" : : "m"(p));
}

/* SYSCALL/SYSRET (SDM Vol. 3A 5.8.8; Vol. 2B SYSCALL, SYSRET). FMASK
 * clears IF (the kernel runs with interrupts off), TF (no single-step into
 * the kernel), DF (the C ABI), AC (SMAP stays on) and NT. CSTAR stays 0:
 * there is no compatibility-mode code segment to SYSCALL from. */
static void syscall_init(void) {
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
    wrmsr(MSR_STAR, ((uint64_t)SEL_UCODE32 << 48) | ((uint64_t)SEL_KCODE << 32));
    wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
    wrmsr(MSR_FMASK, X86_EFLAGS_IF | X86_EFLAGS_TF | X86_EFLAGS_DF | X86_EFLAGS_AC | X86_EFLAGS_NT);
}

/* SMEP and SMAP (SDM Vol. 3A 4.6) when CPUID.(EAX=7,ECX=0):EBX reports them
 * (bits 7 and 20). Without SMAP, STAC and CLAC are #UD: each recorded site
 * (guest/entry.S) becomes a 3-byte NOP. The boot tables still map the
 * kernel's text writable here. */
static void smep_smap_init(void) {
    uint32_t a, b, c, d;
    cpuid(0, &a, &b, &c, &d);
    if (a >= 7) {
        cpuid(7, &a, &b, &c, &d);
        cpu_smep = (b >> 7) & 1;
        cpu_smap = (b >> 20) & 1;
    }
    if (!cpu_smap) {
        static const uint8_t nop3[3] = { 0x0F, 0x1F, 0x00 };
        for (uint64_t *s = (uint64_t *)__smap_sites_start; s < (uint64_t *)__smap_sites_end; s++) {
            memcpy((void *)*s, nop3, 3);
        }
    }
    write_cr4(read_cr4() | (cpu_smep ? CR4_SMEP : 0) | (cpu_smap ? CR4_SMAP : 0));
}

/* FXRSTOR raises #GP for MXCSR bits outside MXCSR_MASK (0 in the FXSAVE
 * image means the default 0xFFBF; SDM Vol. 1, 11.6.6). */
static void fpu_init_mask(void) {
    static uint8_t area[512] __attribute__((aligned(16)));
    fxsave(area);
    memcpy(&mxcsr_mask, area + 28, 4);
    if (mxcsr_mask == 0) {
        mxcsr_mask = 0xFFBF;
    }
}

/* The 8259 pair, remapped above the exceptions (vectors 32..47), with only
 * IRQ 4 (COM1) unmasked: the console sleeps in hlt until a key arrives.
 * kernel_py programs the masks (ports 0x21, 0xA1) and the PIT itself. */
static void pic_init(void) {
    outb(0x20, 0x11); outb(0xA0, 0x11);     /* ICW1: edge, cascade, ICW4 */
    outb(0x21, IRQ_VECTOR_BASE);            /* ICW2: vector bases */
    outb(0xA1, IRQ_VECTOR_BASE + 8);
    outb(0x21, 4);    outb(0xA1, 2);        /* ICW3: slave on IRQ 2 */
    outb(0x21, 1);    outb(0xA1, 1);        /* ICW4: 8086 mode */
    outb(0x21, (uint8_t)~(1 << 4));
    outb(0xA1, 0xFF);
}

/* The in-service register of one 8259 (OCW3 = 0x0B, then read). */
static uint8_t pic_isr(uint16_t cmd) {
    outb(cmd, 0x0B);
    return inb(cmd);
}

/* A hardware interrupt, from ring 0 (inside sti;hlt) or ring 3: count it,
 * remember it in the pending mask, EOI. A spurious IRQ 7 or 15 (its ISR bit
 * clear: the line dropped before the CPU acknowledged it, 8259A data sheet)
 * is neither counted nor pending, and gets no EOI from its own PIC (the
 * master still gets one for the slave's cascade line). */
void irq_handle(unsigned irq) {
    irq_seq++;
    if (irq == 7 && !(pic_isr(0x20) & 0x80)) {
        return;
    }
    if (irq == 15 && !(pic_isr(0xA0) & 0x80)) {
        outb(0x20, 0x20);
        return;
    }
    irq_count[irq]++;
    irq_pending_mask |= 1u << irq;
    if (irq >= 8) {
        outb(0xA0, 0x20);
    }
    outb(0x20, 0x20);
}

void cpu_init(void) {
    gdt_init();
    idt_init();
    syscall_init();
    smep_smap_init();
    fpu_init_mask();
    pic_init();
}

void qemu_exit(int status) {
    outb(0xf4, (uint8_t)status);
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}
