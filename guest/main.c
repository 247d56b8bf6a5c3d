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

void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
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
