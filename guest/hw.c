/* The native module `hw`: the seam through which kernel_py touches the
 * machine (docs/hw.md). Mechanism only; every decision is kernel_py's. */
#include <string.h>

#include "py/runtime.h"
#include "py/smallint.h"
#include "py/objstr.h"
#include "py/objarray.h"

#include "boot_info.h"
#include "cpu.h"
#include "layout.h"
#include "trap.h"

#define DIRECT_MAP_LIMIT (64ULL << 40)

uint64_t ua_read8(uint64_t a);
uint64_t ua_read16(uint64_t a);
uint64_t ua_read32(uint64_t a);
uint64_t ua_read64(uint64_t a);
void ua_write8(uint64_t a, uint64_t v);
void ua_write16(uint64_t a, uint64_t v);
void ua_write32(uint64_t a, uint64_t v);
void ua_write64(uint64_t a, uint64_t v);
void ua_memset(uint64_t dst, int byte, uint64_t n);
void ua_memmove(uint64_t dst, uint64_t src, uint64_t n);
/* the virtual ones: the same with STAC/CLAC around the access */
uint64_t ua_vread8(uint64_t a);
uint64_t ua_vread16(uint64_t a);
uint64_t ua_vread32(uint64_t a);
uint64_t ua_vread64(uint64_t a);
void ua_vwrite8(uint64_t a, uint64_t v);
void ua_vwrite16(uint64_t a, uint64_t v);
void ua_vwrite32(uint64_t a, uint64_t v);
void ua_vwrite64(uint64_t a, uint64_t v);
void ua_vmemset(uint64_t dst, int byte, uint64_t n);
void ua_vmemmove(uint64_t dst, uint64_t src, uint64_t n);

/* guest/user.c */
extern const mp_obj_fun_builtin_fixed_t hw_run_user_obj, hw_fpu_init_obj;
extern const mp_obj_fun_builtin_fixed_t hw_copy_from_user_obj, hw_copy_to_user_obj;
extern const mp_obj_fun_builtin_fixed_t hw_strncpy_from_user_obj, hw_clear_user_obj;
extern const mp_obj_fun_builtin_fixed_t hw_get_user64_obj, hw_put_user64_obj;
extern uint64_t heap_live, heap_live_peak, heap_collections;   /* main.c */
uint64_t heap_in_use(void);
extern const mp_obj_fun_builtin_fixed_t hw_idle_obj, hw_irq_pending_obj, hw_irq_counts_obj;

static uint64_t arg_u64(mp_obj_t o) {
    return (uint64_t)mp_obj_get_int_truncated(o);
}

static uint64_t phys(mp_obj_t o, uint64_t n) {
    uint64_t pa = arg_u64(o);
    if (pa >= DIRECT_MAP_LIMIT || n > DIRECT_MAP_LIMIT - pa) {
        mp_raise_ValueError(MP_ERROR_TEXT("physical address out of range"));
    }
    return DIRECT_MAP_BASE + pa;
}

static void check(void) {
    if (ua_faulted) {
        ua_faulted = 0;
        nlr_raise(fault_exception(&ua_fault));
    }
}

/* ---- loads and stores, physical (through the direct map) and virtual ---- */

#define ACCESSORS(bits, size)                                                  \
    static mp_obj_t hw_read##bits(mp_obj_t a) {                                \
        uint64_t v = ua_read##bits(phys(a, size));                             \
        check();                                                               \
        return u64(v);                                                         \
    }                                                                          \
    static MP_DEFINE_CONST_FUN_OBJ_1(hw_read##bits##_obj, hw_read##bits);      \
    static mp_obj_t hw_write##bits(mp_obj_t a, mp_obj_t v) {                   \
        ua_write##bits(phys(a, size), arg_u64(v));                             \
        check();                                                               \
        return mp_const_none;                                                  \
    }                                                                          \
    static MP_DEFINE_CONST_FUN_OBJ_2(hw_write##bits##_obj, hw_write##bits);    \
    static mp_obj_t hw_vread##bits(mp_obj_t a) {                               \
        uint64_t v = ua_vread##bits(arg_u64(a));                               \
        check();                                                               \
        return u64(v);                                                         \
    }                                                                          \
    static MP_DEFINE_CONST_FUN_OBJ_1(hw_vread##bits##_obj, hw_vread##bits);    \
    static mp_obj_t hw_vwrite##bits(mp_obj_t a, mp_obj_t v) {                  \
        ua_vwrite##bits(arg_u64(a), arg_u64(v));                               \
        check();                                                               \
        return mp_const_none;                                                  \
    }                                                                          \
    static MP_DEFINE_CONST_FUN_OBJ_2(hw_vwrite##bits##_obj, hw_vwrite##bits);

ACCESSORS(8, 1)
ACCESSORS(16, 2)
ACCESSORS(32, 4)
ACCESSORS(64, 8)

static mp_obj_t hw_fill(mp_obj_t a, mp_obj_t byte, mp_obj_t n) {
    uint64_t len = arg_u64(n);
    ua_memset(phys(a, len), mp_obj_get_int(byte), len);
    check();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(hw_fill_obj, hw_fill);

static mp_obj_t hw_vfill(mp_obj_t a, mp_obj_t byte, mp_obj_t n) {
    ua_vmemset(arg_u64(a), mp_obj_get_int(byte), arg_u64(n));
    check();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(hw_vfill_obj, hw_vfill);

static mp_obj_t hw_copy(mp_obj_t dst, mp_obj_t src, mp_obj_t n) {
    uint64_t len = arg_u64(n);
    ua_memmove(phys(dst, len), phys(src, len), len);
    check();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(hw_copy_obj, hw_copy);

typedef void (*move_fn)(uint64_t dst, uint64_t src, uint64_t n);

static mp_obj_t read_bytes(uint64_t src, mp_obj_t n, move_fn move) {
    mp_int_t len = mp_obj_get_int(n);
    if (len < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("negative length"));
    }
    vstr_t vstr;
    vstr_init_len(&vstr, len);
    move((uint64_t)vstr.buf, src, len);
    if (ua_faulted) {
        vstr_clear(&vstr);
        check();
    }
    return mp_obj_new_bytes_from_vstr(&vstr);
}

static mp_obj_t write_bytes(uint64_t dst, mp_obj_t buf, move_fn move) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(buf, &info, MP_BUFFER_READ);
    move(dst, (uint64_t)info.buf, info.len);
    check();
    return mp_const_none;
}

static mp_obj_t hw_readbytes(mp_obj_t a, mp_obj_t n) {
    return read_bytes(phys(a, mp_obj_get_int(n)), n, ua_memmove);
}
static MP_DEFINE_CONST_FUN_OBJ_2(hw_readbytes_obj, hw_readbytes);

static mp_obj_t hw_writebytes(mp_obj_t a, mp_obj_t buf) {
    return write_bytes(phys(a, mp_obj_get_int(mp_obj_len(buf))), buf, ua_memmove);
}
static MP_DEFINE_CONST_FUN_OBJ_2(hw_writebytes_obj, hw_writebytes);

static mp_obj_t hw_vreadbytes(mp_obj_t a, mp_obj_t n) {
    return read_bytes(arg_u64(a), n, ua_vmemmove);
}
static MP_DEFINE_CONST_FUN_OBJ_2(hw_vreadbytes_obj, hw_vreadbytes);

static mp_obj_t hw_vwritebytes(mp_obj_t a, mp_obj_t buf) {
    return write_bytes(arg_u64(a), buf, ua_vmemmove);
}
static MP_DEFINE_CONST_FUN_OBJ_2(hw_vwritebytes_obj, hw_vwritebytes);

/* A view straight onto physical memory: no copy, and no fault protection
 * (a fault through it is an oops that recovers to the console). */
static mp_obj_t hw_mem(mp_obj_t a, mp_obj_t n) {
    mp_int_t len = mp_obj_get_int(n);
    if (len < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("negative length"));
    }
    return mp_obj_new_memoryview('B' | MP_OBJ_ARRAY_TYPECODE_FLAG_RW, len, (void *)phys(a, len));
}
static MP_DEFINE_CONST_FUN_OBJ_2(hw_mem_obj, hw_mem);

/* ---- faults ---- */

static mp_obj_t hw_set_fault_handler(mp_obj_t fn) {
    MP_STATE_VM(hw_pf_handler) = fn;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(hw_set_fault_handler_obj, hw_set_fault_handler);

/* Recurses until the kernel stack runs into its guard page: the #PF there
 * cannot push its frame, so the CPU raises #DF, which has an IST stack. */
volatile int trap_depth_limit = 1 << 30;
static __attribute__((noinline)) int overflow(int depth) {
    volatile char frame[512];
    frame[0] = (char)depth;
    if (depth > trap_depth_limit) {
        return 0;
    }
    return overflow(depth + 1) + frame[0];
}

/* Deliberate exceptions outside any accessor, to exercise the oops path. */
static mp_obj_t hw_trap(mp_obj_t kind_in) {
    const char *kind = mp_obj_str_get_str(kind_in);
    if (!strcmp(kind, "de")) {
        __asm__ volatile("xor %%ecx, %%ecx; xor %%edx, %%edx; div %%ecx" : : : "rax", "rcx", "rdx");
    } else if (!strcmp(kind, "bp")) {
        __asm__ volatile("int3");
    } else if (!strcmp(kind, "ud")) {
        __asm__ volatile("ud2");
    } else if (!strcmp(kind, "gp")) {
        __asm__ volatile("movabs $0x8000000000000000, %%rax; movq (%%rax), %%rax" : : : "rax");
    } else if (!strcmp(kind, "pf")) {
        /* the unused hole below the vmalloc area: never mapped */
        *(volatile uint64_t *)0xffffc88000000000ULL = 1;
    } else if (!strcmp(kind, "df")) {
        overflow(0);
    } else {
        mp_raise_ValueError(MP_ERROR_TEXT("trap kind: de, bp, ud, gp, pf or df"));
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(hw_trap_obj, hw_trap);

/* ---- CPU ---- */

static mp_obj_t hw_read_cr0(void) { return u64(read_cr0()); }
static MP_DEFINE_CONST_FUN_OBJ_0(hw_read_cr0_obj, hw_read_cr0);
static mp_obj_t hw_read_cr2(void) { return u64(read_cr2()); }
static MP_DEFINE_CONST_FUN_OBJ_0(hw_read_cr2_obj, hw_read_cr2);
static mp_obj_t hw_read_cr3(void) { return u64(read_cr3()); }
static MP_DEFINE_CONST_FUN_OBJ_0(hw_read_cr3_obj, hw_read_cr3);
static mp_obj_t hw_read_cr4(void) { return u64(read_cr4()); }
static MP_DEFINE_CONST_FUN_OBJ_0(hw_read_cr4_obj, hw_read_cr4);
static mp_obj_t hw_rdtsc(void) { return u64(rdtsc()); }
static MP_DEFINE_CONST_FUN_OBJ_0(hw_rdtsc_obj, hw_rdtsc);

static mp_obj_t hw_cpuid(mp_obj_t leaf) {
    uint32_t r[4];
    cpuid(mp_obj_get_int(leaf), &r[0], &r[1], &r[2], &r[3]);
    mp_obj_t t[4] = { u64(r[0]), u64(r[1]), u64(r[2]), u64(r[3]) };
    return mp_obj_new_tuple(4, t);
}
static MP_DEFINE_CONST_FUN_OBJ_1(hw_cpuid_obj, hw_cpuid);

static mp_obj_t hw_write_cr3(mp_obj_t v) {
    write_cr3(arg_u64(v));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(hw_write_cr3_obj, hw_write_cr3);

static mp_obj_t hw_invlpg(mp_obj_t va) {
    invlpg(arg_u64(va));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(hw_invlpg_obj, hw_invlpg);

/* ---- ports ---- */

static mp_obj_t hw_inb(mp_obj_t p) { return MP_OBJ_NEW_SMALL_INT(inb(mp_obj_get_int(p))); }
static MP_DEFINE_CONST_FUN_OBJ_1(hw_inb_obj, hw_inb);
static mp_obj_t hw_inw(mp_obj_t p) { return MP_OBJ_NEW_SMALL_INT(inw(mp_obj_get_int(p))); }
static MP_DEFINE_CONST_FUN_OBJ_1(hw_inw_obj, hw_inw);
static mp_obj_t hw_inl(mp_obj_t p) { return u64(inl(mp_obj_get_int(p))); }
static MP_DEFINE_CONST_FUN_OBJ_1(hw_inl_obj, hw_inl);
static mp_obj_t hw_outb(mp_obj_t p, mp_obj_t v) { outb(mp_obj_get_int(p), arg_u64(v)); return mp_const_none; }
static MP_DEFINE_CONST_FUN_OBJ_2(hw_outb_obj, hw_outb);
static mp_obj_t hw_outw(mp_obj_t p, mp_obj_t v) { outw(mp_obj_get_int(p), arg_u64(v)); return mp_const_none; }
static MP_DEFINE_CONST_FUN_OBJ_2(hw_outw_obj, hw_outw);
static mp_obj_t hw_outl(mp_obj_t p, mp_obj_t v) { outl(mp_obj_get_int(p), arg_u64(v)); return mp_const_none; }
static MP_DEFINE_CONST_FUN_OBJ_2(hw_outl_obj, hw_outl);

static mp_obj_t hw_insw(mp_obj_t p, mp_obj_t a, mp_obj_t n) {
    uint64_t count = arg_u64(n), dst = phys(a, count * 2);
    __asm__ volatile("rep insw" : "+D"(dst), "+c"(count) : "d"((uint16_t)mp_obj_get_int(p)) : "memory");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(hw_insw_obj, hw_insw);

static mp_obj_t hw_outsw(mp_obj_t p, mp_obj_t a, mp_obj_t n) {
    uint64_t count = arg_u64(n), src = phys(a, count * 2);
    __asm__ volatile("rep outsw" : "+S"(src), "+c"(count) : "d"((uint16_t)mp_obj_get_int(p)) : "memory");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(hw_outsw_obj, hw_outsw);

/* ---- boot information ---- */

static mp_obj_t triple(uint64_t a, uint64_t b, mp_obj_t c) {
    mp_obj_t t[3] = { u64(a), u64(b), c };
    return mp_obj_new_tuple(3, t);
}

static mp_obj_t hw_memory_map(void) {
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (int i = 0; i < boot_info.nr_ranges; i++) {
        const struct mem_range *r = &boot_info.ranges[i];
        mp_obj_list_append(list, triple(r->base, r->length, MP_OBJ_NEW_SMALL_INT(r->type)));
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(hw_memory_map_obj, hw_memory_map);

static mp_obj_t hw_reserved(void) {
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (int i = 0; i < boot_info.nr_reserved; i++) {
        const struct named_range *r = &boot_info.reserved[i];
        mp_obj_list_append(list, triple(r->start, r->end, mp_obj_new_str(r->name, strlen(r->name))));
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(hw_reserved_obj, hw_reserved);

static mp_obj_t hw_kernel_sections(void) {
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (int i = 0; i < boot_info.nr_sections; i++) {
        const struct named_range *s = &boot_info.sections[i];
        mp_obj_t t[4] = {
            mp_obj_new_str(s->name, strlen(s->name)), u64(s->start), u64(s->end),
            u64(s->start - KERNEL_BASE),
        };
        mp_obj_list_append(list, mp_obj_new_tuple(4, t));
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(hw_kernel_sections_obj, hw_kernel_sections);

/* The VM heap's size; the bytes of it in use now (live objects and garbage
 * not yet collected); in use just after the last collection (live data);
 * the largest such figure since boot; the number of collections (main.c
 * measures at each gc_collect). */
static mp_obj_t hw_heap_info(void) {
    mp_obj_t t[5] = {
        u64(boot_info.heap_size), u64(heap_in_use()), u64(heap_live), u64(heap_live_peak),
        u64(heap_collections),
    };
    return mp_obj_new_tuple(5, t);
}
static MP_DEFINE_CONST_FUN_OBJ_0(hw_heap_info_obj, hw_heap_info);

static mp_obj_t hw_cmdline(void) {
    return mp_obj_new_str(boot_info.cmdline, strlen(boot_info.cmdline));
}
static MP_DEFINE_CONST_FUN_OBJ_0(hw_cmdline_obj, hw_cmdline);

static mp_obj_t hw_accel(void) {
    return MP_OBJ_NEW_QSTR(boot_info.kvm ? MP_QSTR_kvm : MP_QSTR_tcg);
}
static MP_DEFINE_CONST_FUN_OBJ_0(hw_accel_obj, hw_accel);

static mp_obj_t hw_exit(mp_obj_t code) {
    qemu_exit(mp_obj_get_int(code));
}
static MP_DEFINE_CONST_FUN_OBJ_1(hw_exit_obj, hw_exit);

static const mp_rom_map_elem_t hw_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_hw) },
    { MP_ROM_QSTR(MP_QSTR_read8), MP_ROM_PTR(&hw_read8_obj) },
    { MP_ROM_QSTR(MP_QSTR_read16), MP_ROM_PTR(&hw_read16_obj) },
    { MP_ROM_QSTR(MP_QSTR_read32), MP_ROM_PTR(&hw_read32_obj) },
    { MP_ROM_QSTR(MP_QSTR_read64), MP_ROM_PTR(&hw_read64_obj) },
    { MP_ROM_QSTR(MP_QSTR_write8), MP_ROM_PTR(&hw_write8_obj) },
    { MP_ROM_QSTR(MP_QSTR_write16), MP_ROM_PTR(&hw_write16_obj) },
    { MP_ROM_QSTR(MP_QSTR_write32), MP_ROM_PTR(&hw_write32_obj) },
    { MP_ROM_QSTR(MP_QSTR_write64), MP_ROM_PTR(&hw_write64_obj) },
    { MP_ROM_QSTR(MP_QSTR_vread8), MP_ROM_PTR(&hw_vread8_obj) },
    { MP_ROM_QSTR(MP_QSTR_vread16), MP_ROM_PTR(&hw_vread16_obj) },
    { MP_ROM_QSTR(MP_QSTR_vread32), MP_ROM_PTR(&hw_vread32_obj) },
    { MP_ROM_QSTR(MP_QSTR_vread64), MP_ROM_PTR(&hw_vread64_obj) },
    { MP_ROM_QSTR(MP_QSTR_vwrite8), MP_ROM_PTR(&hw_vwrite8_obj) },
    { MP_ROM_QSTR(MP_QSTR_vwrite16), MP_ROM_PTR(&hw_vwrite16_obj) },
    { MP_ROM_QSTR(MP_QSTR_vwrite32), MP_ROM_PTR(&hw_vwrite32_obj) },
    { MP_ROM_QSTR(MP_QSTR_vwrite64), MP_ROM_PTR(&hw_vwrite64_obj) },
    { MP_ROM_QSTR(MP_QSTR_fill), MP_ROM_PTR(&hw_fill_obj) },
    { MP_ROM_QSTR(MP_QSTR_vfill), MP_ROM_PTR(&hw_vfill_obj) },
    { MP_ROM_QSTR(MP_QSTR_copy), MP_ROM_PTR(&hw_copy_obj) },
    { MP_ROM_QSTR(MP_QSTR_readbytes), MP_ROM_PTR(&hw_readbytes_obj) },
    { MP_ROM_QSTR(MP_QSTR_writebytes), MP_ROM_PTR(&hw_writebytes_obj) },
    { MP_ROM_QSTR(MP_QSTR_vreadbytes), MP_ROM_PTR(&hw_vreadbytes_obj) },
    { MP_ROM_QSTR(MP_QSTR_vwritebytes), MP_ROM_PTR(&hw_vwritebytes_obj) },
    { MP_ROM_QSTR(MP_QSTR_mem), MP_ROM_PTR(&hw_mem_obj) },
    { MP_ROM_QSTR(MP_QSTR_set_fault_handler), MP_ROM_PTR(&hw_set_fault_handler_obj) },
    { MP_ROM_QSTR(MP_QSTR_Fault), MP_ROM_PTR(&mp_type_HwFault) },
    { MP_ROM_QSTR(MP_QSTR_trap), MP_ROM_PTR(&hw_trap_obj) },
    { MP_ROM_QSTR(MP_QSTR_read_cr0), MP_ROM_PTR(&hw_read_cr0_obj) },
    { MP_ROM_QSTR(MP_QSTR_read_cr2), MP_ROM_PTR(&hw_read_cr2_obj) },
    { MP_ROM_QSTR(MP_QSTR_read_cr3), MP_ROM_PTR(&hw_read_cr3_obj) },
    { MP_ROM_QSTR(MP_QSTR_read_cr4), MP_ROM_PTR(&hw_read_cr4_obj) },
    { MP_ROM_QSTR(MP_QSTR_write_cr3), MP_ROM_PTR(&hw_write_cr3_obj) },
    { MP_ROM_QSTR(MP_QSTR_invlpg), MP_ROM_PTR(&hw_invlpg_obj) },
    { MP_ROM_QSTR(MP_QSTR_rdtsc), MP_ROM_PTR(&hw_rdtsc_obj) },
    { MP_ROM_QSTR(MP_QSTR_cpuid), MP_ROM_PTR(&hw_cpuid_obj) },
    { MP_ROM_QSTR(MP_QSTR_inb), MP_ROM_PTR(&hw_inb_obj) },
    { MP_ROM_QSTR(MP_QSTR_inw), MP_ROM_PTR(&hw_inw_obj) },
    { MP_ROM_QSTR(MP_QSTR_inl), MP_ROM_PTR(&hw_inl_obj) },
    { MP_ROM_QSTR(MP_QSTR_outb), MP_ROM_PTR(&hw_outb_obj) },
    { MP_ROM_QSTR(MP_QSTR_outw), MP_ROM_PTR(&hw_outw_obj) },
    { MP_ROM_QSTR(MP_QSTR_outl), MP_ROM_PTR(&hw_outl_obj) },
    { MP_ROM_QSTR(MP_QSTR_insw), MP_ROM_PTR(&hw_insw_obj) },
    { MP_ROM_QSTR(MP_QSTR_outsw), MP_ROM_PTR(&hw_outsw_obj) },
    { MP_ROM_QSTR(MP_QSTR_memory_map), MP_ROM_PTR(&hw_memory_map_obj) },
    { MP_ROM_QSTR(MP_QSTR_reserved), MP_ROM_PTR(&hw_reserved_obj) },
    { MP_ROM_QSTR(MP_QSTR_kernel_sections), MP_ROM_PTR(&hw_kernel_sections_obj) },
    { MP_ROM_QSTR(MP_QSTR_cmdline), MP_ROM_PTR(&hw_cmdline_obj) },
    { MP_ROM_QSTR(MP_QSTR_accel), MP_ROM_PTR(&hw_accel_obj) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&hw_exit_obj) },
    { MP_ROM_QSTR(MP_QSTR_run_user), MP_ROM_PTR(&hw_run_user_obj) },
    { MP_ROM_QSTR(MP_QSTR_fpu_init), MP_ROM_PTR(&hw_fpu_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_copy_from_user), MP_ROM_PTR(&hw_copy_from_user_obj) },
    { MP_ROM_QSTR(MP_QSTR_copy_to_user), MP_ROM_PTR(&hw_copy_to_user_obj) },
    { MP_ROM_QSTR(MP_QSTR_strncpy_from_user), MP_ROM_PTR(&hw_strncpy_from_user_obj) },
    { MP_ROM_QSTR(MP_QSTR_clear_user), MP_ROM_PTR(&hw_clear_user_obj) },
    { MP_ROM_QSTR(MP_QSTR_get_user64), MP_ROM_PTR(&hw_get_user64_obj) },
    { MP_ROM_QSTR(MP_QSTR_put_user64), MP_ROM_PTR(&hw_put_user64_obj) },
    { MP_ROM_QSTR(MP_QSTR_idle), MP_ROM_PTR(&hw_idle_obj) },
    { MP_ROM_QSTR(MP_QSTR_irq_pending), MP_ROM_PTR(&hw_irq_pending_obj) },
    { MP_ROM_QSTR(MP_QSTR_irq_counts), MP_ROM_PTR(&hw_irq_counts_obj) },
    { MP_ROM_QSTR(MP_QSTR_heap_info), MP_ROM_PTR(&hw_heap_info_obj) },
};
static MP_DEFINE_CONST_DICT(hw_globals, hw_globals_table);

const mp_obj_module_t hw_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&hw_globals,
};
MP_REGISTER_MODULE(MP_QSTR_hw, hw_module);
