/* The platform's main: CPU tables, the UART, the MicroPython VM, then
 * kernel_py.main.start(hw), which never returns. */
#include <string.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/mperrno.h"
#include "py/gc.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "shared/runtime/gchelper.h"

#include "boot_info.h"
#include "cpu.h"
#include "layout.h"
#include "trap.h"
#include "uart.h"

/* Headroom kept below the VM's stack limit for C frames and exception entry. */
#define STACK_MARGIN (32 * 1024)

extern char kstack_top[];
static mp_obj_t pystack[PYSTACK_SIZE / sizeof(mp_obj_t)];

static const char boot_py[] =
    "import hw\n"
    "from kernel_py.main import start\n"
    "start(hw)\n";

static void run_kernel_py(void) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_lexer_t *lex = mp_lexer_new_from_str_len(MP_QSTR__lt_stdin_gt_, boot_py, sizeof(boot_py) - 1, 0);
        qstr name = lex->source_name;
        mp_parse_tree_t tree = mp_parse(lex, MP_PARSE_FILE_INPUT);
        mp_call_function_0(mp_compile(&tree, name, false));
        nlr_pop();
    } else {
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
}

void kmain(uint32_t multiboot_info) {
    uart_init();
    cpu_init();
    boot_info_init(multiboot_info);
    mp_stack_set_top(kstack_top);
    mp_stack_set_limit(KSTACK_SIZE - STACK_MARGIN);
    if (!boot_info.heap) {
        mp_printf(&mp_plat_print, "kernel_py: no RAM above 16 MiB for a %u MiB heap; halting\n",
            VM_HEAP_MIN >> 20);
        qemu_exit(3);
    }
    char *heap = (char *)(DIRECT_MAP_BASE + boot_info.heap);
    gc_init(heap, heap + boot_info.heap_size);
    mp_pystack_init(pystack, pystack + PYSTACK_SIZE / sizeof(mp_obj_t));
    mp_init();
    python_ready = 1;
    run_kernel_py();
    mp_printf(&mp_plat_print, "kernel_py: start() returned; powering off\n");
    qemu_exit(3);
}

uint64_t heap_live;          /* bytes in use just after the last collection */
uint64_t heap_live_peak;     /* the largest heap_live since boot */
uint64_t heap_collections;

/* Blocks in use in the VM heap, read from its allocation table (py/gc.c's
 * ATB: 2 bits a block, nonzero for a head, a tail or a marked block) 8
 * bytes at a time, a quarter of gc_info's per-block walk: ~1.2 ms for a
 * 30 MiB heap on TCG, where gc_info takes 20 ms. */
static uint64_t heap_blocks_used(void) {
    const mp_state_mem_area_t *a = &MP_STATE_MEM(area);
    const uint8_t *p = a->gc_alloc_table_start;
    size_t n = a->gc_alloc_table_byte_len;
    uint64_t blocks = 0;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i < 8 ? n - i : 8);
        if (w) {
            w = (w | (w >> 1)) & 0x5555555555555555ULL;             /* a bit per block */
            w = (w & 0x3333333333333333ULL) + ((w >> 2) & 0x3333333333333333ULL);
            w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
            blocks += (w * 0x0101010101010101ULL) >> 56;
        }
    }
    return blocks;
}

/* The heap's bytes in use: the blocks the allocator holds plus its own
 * tables (the heap less its pool of blocks). */
uint64_t heap_in_use(void) {
    const mp_state_mem_area_t *a = &MP_STATE_MEM(area);
    uint64_t pool = a->gc_pool_end - a->gc_pool_start;
    return heap_blocks_used() * MICROPY_BYTES_PER_GC_BLOCK + boot_info.heap_size - pool;
}

/* A collection (the allocator's, when the heap is full, or gc.collect()):
 * what survives it is the kernel's live data, measured here at each one so
 * the peak is exact at collection points, not a sample. */
void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
    heap_live = heap_in_use();
    if (heap_live > heap_live_peak) {
        heap_live_peak = heap_live;
    }
    heap_collections++;
}

void nlr_jump_fail(void *val) {
    mp_printf(&mp_plat_print, "kernel_py: uncaught exception outside the VM; halting\n");
    qemu_exit(3);
}

void __assert_fail(const char *expr, const char *file, unsigned int line, const char *func) {
    mp_printf(&mp_plat_print, "kernel_py: assertion %s failed at %s:%u\n", expr, file, line);
    qemu_exit(3);
}

mp_lexer_t *mp_lexer_new_from_file(qstr filename) {
    mp_raise_OSError(MP_ENOENT);
}

mp_import_stat_t mp_import_stat(const char *path) {
    return MP_IMPORT_STAT_NO_EXIST;
}
