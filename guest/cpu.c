/* GDT with a TSS, the IDT, and the policy-free part of exception handling:
 * which stack a handler runs on, when Python may be called, and how the
 * machine gets back to the console after an oops. */
#include <string.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "py/stackctrl.h"

#include "cpu.h"
#include "layout.h"
#include "trap.h"

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

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

enum { IST_PF = 1, IST_DF = 2, IST_OTHER = 3 };

extern uint64_t isr_table[32];
extern char ist_pf_top[], ist_df_top[], ist_other_top[], recover_stack_top[];
extern char kstack_bottom[], kstack_top[];

static uint64_t gdt[5] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static struct idt_entry idt[48] __attribute__((aligned(16)));
extern char irq_stub[];

static void gdt_init(void) {
    uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
    gdt[0] = 0;
    gdt[1] = 0x00209A0000000000;    /* 64-bit code, DPL 0 */
    gdt[2] = 0x0000920000000000;    /* data */
    /* 64-bit TSS descriptor, type 9 (available), present (SDM 8.2.3) */
    gdt[3] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ULL << 40)
           | (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    gdt[4] = base >> 32;
    tss.ist[IST_PF - 1] = (uint64_t)ist_pf_top;
    tss.ist[IST_DF - 1] = (uint64_t)ist_df_top;
    tss.ist[IST_OTHER - 1] = (uint64_t)ist_other_top;
    tss.iomap_base = sizeof(tss);
    struct table_ptr p = { sizeof(gdt) - 1, (uint64_t)gdt };
    __asm__ volatile(
        "lgdt %0\n"
        "pushq %1\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1: mov %2, %%ax\n"
        "mov %%ax, %%ds\n mov %%ax, %%es\n mov %%ax, %%ss\n"
        "mov %3, %%ax\n ltr %%ax\n"
        : : "m"(p), "i"(SEL_KCODE), "i"(SEL_KDATA), "i"(SEL_TSS) : "rax", "memory");
}

static void idt_init(void) {
    for (int v = 0; v < 48; v++) {
        uint64_t a = v < 32 ? isr_table[v] : (uint64_t)irq_stub;
        idt[v].offset_lo = a & 0xFFFF;
        idt[v].selector = SEL_KCODE;
        idt[v].ist = v == 14 ? IST_PF : v == 8 ? IST_DF : IST_OTHER;
        idt[v].type_attr = 0x8E;    /* present, DPL 0, interrupt gate */
        idt[v].offset_mid = (a >> 16) & 0xFFFF;
        idt[v].offset_hi = a >> 32;
        idt[v].zero = 0;
    }
    struct table_ptr p = { sizeof(idt) - 1, (uint64_t)idt };
    __asm__ volatile("lidt %0" : : "m"(p));
}

/* The 8259 pair, remapped above the exceptions (vectors 32..47), with only
 * IRQ 4 (COM1) unmasked: the console sleeps in hlt until a key arrives. */
static void pic_init(void) {
    outb(0x20, 0x11); outb(0xA0, 0x11);     /* ICW1: edge, cascade, ICW4 */
    outb(0x21, 32);   outb(0xA1, 40);       /* ICW2: vector bases */
    outb(0x21, 4);    outb(0xA1, 2);        /* ICW3: slave on IRQ 2 */
    outb(0x21, 1);    outb(0xA1, 1);        /* ICW4: 8086 mode */
    outb(0x21, (uint8_t)~(1 << 4));
    outb(0xA1, 0xFF);
}

void cpu_init(void) {
    gdt_init();
    idt_init();
    pic_init();
}

void qemu_exit(int status) {
    outb(0xf4, (uint8_t)status);
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}
