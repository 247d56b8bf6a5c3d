/* Multiboot v1 information (Multiboot Specification 0.6.96, section 3.3). */
#include <string.h>

#include "boot_info.h"
#include "cpu.h"
#include "layout.h"

#define MB_INFO_CMDLINE (1 << 2)
#define MB_INFO_MODS    (1 << 3)
#define MB_INFO_MMAP    (1 << 6)

struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb_mmap_entry {
    uint32_t size;
    uint64_t base, length;
    uint32_t type;
} __attribute__((packed));

struct mb_module { uint32_t start, end, string, reserved; };

struct boot_info boot_info;

extern char __image_start[], __text_end[], __rodata_end[], __load_end[];
extern char __bss_start[], __bss_end[];
extern char kstack_guard[], kstack_bottom[], kstack_top[];
extern char boot_tables_start[], boot_tables_end[];

static void *pa(uint64_t p) {
    return (void *)(DIRECT_MAP_BASE + p);
}

static void add(struct named_range *list, int *n, uint64_t start, uint64_t end, const char *name) {
    if (*n < MAX_NAMED) {
        list[(*n)++] = (struct named_range){ start, end, name };
    }
}

static uint64_t to_phys(const char *sym) {
    return (uint64_t)sym - KERNEL_BASE;
}

static void read_mmap(const struct mb_info *mbi) {
    uint64_t p = mbi->mmap_addr, end = p + mbi->mmap_length;
    while (p < end && boot_info.nr_ranges < MAX_RANGES) {
        const struct mb_mmap_entry *e = pa(p);
        boot_info.ranges[boot_info.nr_ranges++] = (struct mem_range){ e->base, e->length, e->type };
        p += e->size + 4;
    }
}

static void note_sections(void) {
    struct named_range *s = boot_info.sections;
    int *n = &boot_info.nr_sections;
    add(s, n, (uint64_t)__image_start, (uint64_t)__text_end, "text");
    add(s, n, (uint64_t)__text_end, (uint64_t)__rodata_end, "rodata");
    add(s, n, (uint64_t)__rodata_end, (uint64_t)__load_end, "data");
    add(s, n, (uint64_t)__bss_start, (uint64_t)__bss_end, "bss");
    add(s, n, (uint64_t)kstack_guard, (uint64_t)kstack_bottom, "stack-guard");
    add(s, n, (uint64_t)kstack_bottom, (uint64_t)kstack_top, "stack");
}

static void note_reserved(const struct mb_info *mbi) {
    struct named_range *r = boot_info.reserved;
    int *n = &boot_info.nr_reserved;
    add(r, n, 0, KERNEL_LOAD_PHYS, "firmware");
    add(r, n, to_phys(__image_start), to_phys(__bss_end), "kernel");
    add(r, n, boot_info.heap, boot_info.heap + boot_info.heap_size, "heap");
    add(r, n, to_phys(kstack_guard), to_phys(kstack_top), "stack");
    add(r, n, to_phys(boot_tables_start), to_phys(boot_tables_end), "boot-tables");
    if (mbi->flags & MB_INFO_MODS) {
        const struct mb_module *m = pa(mbi->mods_addr);
        for (uint32_t i = 0; i < mbi->mods_count; i++) {
            add(r, n, m[i].start, m[i].end, "modules");
        }
    }
}

/* The VM's heap is sized from RAM: an eighth of it, at least VM_HEAP_MIN
 * (what the kernel needs to boot) and at most VM_HEAP_MAX (a larger heap
 * only makes each collection's sweep longer), so the kernel's own
 * bookkeeping grows with the memory it manages. */
static uint64_t heap_size_for_ram(void) {
    uint64_t ram = 0;
    for (int i = 0; i < boot_info.nr_ranges; i++) {
        if (boot_info.ranges[i].type == 1) {
            ram += boot_info.ranges[i].length;
        }
    }
    uint64_t size = ram >> VM_HEAP_RAM_SHIFT;
    size = size < VM_HEAP_MIN ? VM_HEAP_MIN : size > VM_HEAP_MAX ? VM_HEAP_MAX : size;
    return size & ~(uint64_t)(HEAP_ALIGN - 1);
}

/* The end of the boot loader's modules (the initramfs) that overlap
 * [start, start + size): the heap goes above them, never over one. */
static uint64_t above_modules(const struct mb_info *mbi, uint64_t start, uint64_t size) {
    if (mbi->flags & MB_INFO_MODS) {
        const struct mb_module *m = pa(mbi->mods_addr);
        for (uint32_t i = 0; i < mbi->mods_count; i++) {
            if (m[i].end > start && m[i].start < start + size) {
                start = m[i].end;
            }
        }
    }
    return start;
}

/* The first RAM above ZONE_DMA (and the modules) that holds size bytes, 0
 * if none does. */
static uint64_t find_heap(const struct mb_info *mbi, uint64_t size) {
    for (int i = 0; i < boot_info.nr_ranges; i++) {
        const struct mem_range *r = &boot_info.ranges[i];
        uint64_t start = r->base < HEAP_MIN_PHYS ? HEAP_MIN_PHYS : r->base;
        start = (above_modules(mbi, start, size) + HEAP_ALIGN - 1) & ~(uint64_t)(HEAP_ALIGN - 1);
        if (r->type == 1 && start + size <= r->base + r->length) {
            return start;
        }
    }
    return 0;
}

/* The VM's heap goes in the first RAM above ZONE_DMA that holds it, so the
 * kernel image stays small and ZONE_DMA stays free for the allocator; when
 * no range holds the size RAM asks for, halve it down to VM_HEAP_MIN. */
static void place_heap(const struct mb_info *mbi) {
    for (uint64_t size = heap_size_for_ram(); size >= VM_HEAP_MIN; size >>= 1) {
        size &= ~(uint64_t)(HEAP_ALIGN - 1);
        boot_info.heap = find_heap(mbi, size);
        if (boot_info.heap) {
            boot_info.heap_size = size;
            return;
        }
    }
}

static void detect_hypervisor(void) {
    uint32_t a, b, c, d;
    cpuid(0x40000000, &a, &b, &c, &d);
    boot_info.kvm = b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d;   /* "KVMKVMKVM" */
}

void boot_info_init(uint32_t multiboot_info) {
    const struct mb_info *mbi = pa(multiboot_info);
    if (mbi->flags & MB_INFO_MMAP) {
        read_mmap(mbi);
    }
    if (mbi->flags & MB_INFO_CMDLINE) {
        /* QEMU passes "<image path> <-append text>"; keep the -append text */
        const char *text = pa(mbi->cmdline), *space = strchr(text, ' ');
        strncpy(boot_info.cmdline, space ? space + 1 : "", CMDLINE_MAX - 1);
    }
    place_heap(mbi);
    note_sections();
    note_reserved(mbi);
    detect_hypervisor();
}
