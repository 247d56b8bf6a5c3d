/* What the boot loader and the linker tell the kernel, copied out of the
 * multiboot structures at boot (they live in memory kernel_py will reuse). */
#ifndef KPY_BOOT_INFO_H
#define KPY_BOOT_INFO_H
#include <stdint.h>

#define MAX_RANGES 64
#define MAX_NAMED 16
#define CMDLINE_MAX 1024

struct mem_range { uint64_t base, length; uint32_t type; };
struct named_range { uint64_t start, end; const char *name; };

struct boot_info {
    int nr_ranges, nr_reserved, nr_sections;
    struct mem_range ranges[MAX_RANGES];
    struct named_range reserved[MAX_NAMED];   /* physical */
    struct named_range sections[MAX_NAMED];   /* virtual, in the kernel image */
    char cmdline[CMDLINE_MAX];
    int kvm;
    uint64_t heap;          /* physical base of the VM's heap */
    uint64_t heap_size;     /* its size in bytes (place_heap) */
};

extern struct boot_info boot_info;
void boot_info_init(uint32_t multiboot_info);
#endif
