/* MicroPython configuration for the kernel_py guest. */
#include <stdint.h>

/* Extra features: f-strings, bytes.hex, compile/exec for the REPL, heapq... */
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#define MICROPY_ENABLE_COMPILER           (1)
#define MICROPY_ENABLE_GC                 (1)
#define MICROPY_STACK_CHECK               (1)
#define MICROPY_LONGINT_IMPL              (MICROPY_LONGINT_IMPL_MPZ)
#define MPZ_DIG_SIZE                      (16)    /* what mpy-tool freezes constants with */
#define MICROPY_FLOAT_IMPL                (MICROPY_FLOAT_IMPL_NONE)   /* kernel_py counts in integers */
#define MICROPY_ERROR_REPORTING           (MICROPY_ERROR_REPORTING_DETAILED)
#define MICROPY_ENABLE_SOURCE_LINE        (1)
#define MICROPY_ALLOC_PATH_MAX            (256)
#define MICROPY_KBD_EXCEPTION             (0)
#define MICROPY_HELPER_REPL               (0)

/* Frozen kernel_py only: no file system to import from, no open(). */
#define MICROPY_ENABLE_EXTERNAL_IMPORT    (1)   /* the import machinery frozen modules need; mp_import_stat finds no files */
#define MICROPY_PY_BUILTINS_INPUT         (0)
#define MICROPY_PY_SYS_PLATFORM           "kernel_py"
#define MICROPY_PY_SYS_STDFILES           (1)
#define MICROPY_PY_SYS_STDIO_BUFFER       (1)   /* sys.stdin.buffer: the console reads bytes, not UTF-8 text */
#define MICROPY_PY_OS                     (0)
#define MICROPY_PY_TIME                   (0)
#define MICROPY_PY_SELECT                 (0)
#define MICROPY_PY_IO                     (0)
#define MICROPY_PY_UCTYPES                (0)
#define MICROPY_PY_MATH                   (0)
#define MICROPY_PY_CMATH                  (0)

/* The x64 native emitter: frozen @micropython.native/viper code is machine
 * code in .text (mpy-cross -march=x64). Code emitted at run time would sit
 * in the NX heap, so the REPL cannot use these decorators. */
#define MICROPY_EMIT_X64                  (1)

/* The VM's speed is the kernel's speed (DESIGN.md, Performance). */
#define MICROPY_OPT_COMPUTED_GOTO         (1)
#define MICROPY_OPT_LOAD_ATTR_FAST_PATH   (1)
#define MICROPY_OPT_MAP_LOOKUP_CACHE      (1)
#define MICROPY_OPT_MPZ_BITWISE           (1)
/* Python frames come from a bump-allocated stack, not the GC heap: without
 * it every call of a function with more than 11 words of state allocates. */
#define MICROPY_ENABLE_PYSTACK            (1)

typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef long mp_off_t;

#define MICROPY_HW_BOARD_NAME "QEMU x86-64"
#define MICROPY_HW_MCU_NAME "x86-64"
#define MP_STATE_PORT MP_STATE_VM

#include <alloca.h>
