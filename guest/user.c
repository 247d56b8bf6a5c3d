/* User mode for the hw module (docs/hw.md, "User mode"): run_user, the
 * FPU/SSE buffer, uaccess (copy_from_user...), and the interrupt calls.
 * Mechanism only: C checks that a frame can be entered, enters it, and
 * reports how it came back; what a syscall, a fault or an interrupt means
 * is kernel_py's business. */
#include <string.h>

#include "py/runtime.h"
#include "py/objstr.h"

#include "cpu.h"
#include "layout.h"
#include "ptrace.h"
#include "trap.h"

uint64_t user_enter(int64_t *regs, int sysret);     /* guest/entry.S */
void uc_copy(uint64_t dst, uint64_t src, uint64_t n);
void uc_fill(uint64_t dst, int byte, uint64_t n);
uint64_t uc_strncpy(uint64_t dst, uint64_t src, uint64_t max);
uint64_t uc_read64(uint64_t a);
void uc_write64(uint64_t a, uint64_t v);

/* The bases now in MSR_FS_BASE / MSR_GS_BASE, so an entry whose bases did
 * not change skips the WRMSR. Not a base (>= USER_ADDR_LIMIT) when unknown. */
static uint64_t cur_fs_base, cur_gs_base;

/* The FXSAVE image the CPU's x87/SSE registers hold: the bytes last loaded
 * by FXRSTOR or stored by FXSAVE (FXRSTOR of an FXSAVE image restores that
 * state exactly, SDM Vol. 1, 10.5.1). The kernel never touches those
 * registers (the image is built -mno-sse -mno-80387; tests check the
 * disassembly), so while cpu_fpu holds an image, FXRSTOR of the same bytes
 * would change nothing and is skipped: a task re-entered with its buffer
 * unchanged (the common case: a syscall, a fault, a tick) pays one FXSAVE
 * per round trip instead of FXSAVE + FXRSTOR (each about 0.8 us under TCG;
 * the compare and the copy cost a fraction of one). Exact whatever the
 * kernel did to the buffer in between: it compares the bytes, not a pointer
 * or a flag. Only the first 416 bytes hold state; FXRSTOR ignores the rest
 * (reserved and software-available, Table 10-2). */
#define FPU_STATE_WORDS (416 / 8)
static uint64_t cpu_fpu[FPU_STATE_WORDS] __attribute__((aligned(16)));
static int cpu_fpu_valid;

static int same_image(const uint64_t *a, const uint64_t *b) {
    uint64_t d = 0;
#pragma GCC unroll 8
    for (int i = 0; i < FPU_STATE_WORDS; i++) {
        d |= a[i] ^ b[i];
    }
    return d == 0;
}

static void copy_image(uint64_t *dst, const uint64_t *src) {
#pragma GCC unroll 8
    for (int i = 0; i < FPU_STATE_WORDS; i++) {
        dst[i] = src[i];
    }
}

static int64_t *regs_buffer(mp_obj_t o) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(o, &b, MP_BUFFER_RW);
    if (b.len < NR_REGS * 8 || ((uintptr_t)b.buf & 7)) {
        mp_raise_ValueError(MP_ERROR_TEXT("regs: NR_REGS aligned 64-bit slots"));
    }
    return b.buf;
}

/* The FXSAVE area: the first 16-byte-aligned 512 bytes of the buffer. */
static uint8_t *fpu_window(mp_obj_t o) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(o, &b, MP_BUFFER_RW);
    if (b.len < FPU_BUF_SIZE) {
        mp_raise_ValueError(MP_ERROR_TEXT("fpu: FPU_BUF_SIZE bytes"));
    }
    return (uint8_t *)(((uintptr_t)b.buf + 15) & ~(uintptr_t)15);
}

/* hw.run_user(regs, fpu) -> event. Refuses (EVENT_BADFRAME, nothing
 * changed) a frame whose RIP or FS/GS base is not a user address, or whose
 * MXCSR would make FXRSTOR fault. Otherwise CS, SS and EFLAGS are made
 * user values (written to regs), the FPU/SSE state is loaded from fpu, the
 * bases from regs, and ring 3 runs until an event; then fpu and regs hold
 * the state the task left the CPU in. SYSRETQ only when the frame is what
 * a SYSCALL left, RCX == RIP and R11 == EFLAGS (then both paths restore the
 * same state), and TF is clear (SYSRET would trap before the first user
 * instruction; Linux makes the same choice). RIP < USER_ADDR_LIMIT keeps
 * RCX canonical: on Intel CPUs SYSRET with a non-canonical RCX raises #GP in
 * ring 0 with the user's RSP (CVE-2012-0217). */
static mp_obj_t hw_run_user(mp_obj_t regs_in, mp_obj_t fpu_in) {
    int64_t *r = regs_buffer(regs_in);
    uint8_t *fx = fpu_window(fpu_in);
    uint32_t mxcsr = *(uint32_t *)(fx + FXSAVE_MXCSR);
    if ((uint64_t)r[RIP] >= USER_ADDR_LIMIT || (uint64_t)r[FS_BASE] >= USER_ADDR_LIMIT
        || (uint64_t)r[GS_BASE] >= USER_ADDR_LIMIT || (mxcsr & ~mxcsr_mask)) {
        return MP_OBJ_NEW_SMALL_INT(EVENT_BADFRAME);
    }
    uint64_t fl = ((uint64_t)r[EFLAGS] & USER_EFLAGS_MASK) | USER_EFLAGS_FIXED;
    int sysret = r[VECTOR] == EVENT_SYSCALL && r[RCX] == r[RIP] && (uint64_t)r[R11] == fl
        && !(fl & X86_EFLAGS_TF);
    r[CS] = SEL_UCODE;
    r[SS] = SEL_UDATA;
    r[EFLAGS] = fl;
    if (!cpu_fpu_valid || !same_image((uint64_t *)fx, cpu_fpu)) {
        fxrstor(fx);
        copy_image(cpu_fpu, (uint64_t *)fx);
        cpu_fpu_valid = 1;
    }
    if ((uint64_t)r[FS_BASE] != cur_fs_base) {
        wrmsr(MSR_FS_BASE, r[FS_BASE]);
        cur_fs_base = r[FS_BASE];
    }
    if ((uint64_t)r[GS_BASE] != cur_gs_base) {
        wrmsr(MSR_GS_BASE, r[GS_BASE]);
        cur_gs_base = r[GS_BASE];
    }
    uint64_t event = user_enter(r, sysret);
    fxsave(fx);
    copy_image(cpu_fpu, (uint64_t *)fx);
    /* Ring 3 can change a base without WRFSBASE (CR4.FSGSBASE is off): a
     * selector load writes the descriptor's base, and on Intel a null one
     * clears it. So read them back. Every entry runs with null DS, ES, FS
     * and GS: if the task loaded others, null them again (a null load may
     * clear a base again: forget the cache). */
    r[FS_BASE] = cur_fs_base = rdmsr(MSR_FS_BASE);
    r[GS_BASE] = cur_gs_base = rdmsr(MSR_GS_BASE);
    uint16_t ds, es, fs, gs;
    __asm__ volatile("mov %%ds, %0; mov %%es, %1; mov %%fs, %2; mov %%gs, %3"
        : "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
    if (ds | es | fs | gs) {
        __asm__ volatile("mov %0, %%ds; mov %0, %%es; mov %0, %%fs; mov %0, %%gs" : : "r"(0));
        if (fs | gs) {
            cur_fs_base = cur_gs_base = USER_ADDR_LIMIT;
        }
    }
    if (event >= IRQ_VECTOR_BASE && event < IRQ_VECTOR_BASE + NR_IRQS) {
        irq_handle(event - IRQ_VECTOR_BASE);
    }
    return MP_OBJ_NEW_SMALL_INT(event);
}
MP_DEFINE_CONST_FUN_OBJ_2(hw_run_user_obj, hw_run_user);

/* hw.fpu_init(fpu): Linux's initial FPU/SSE state (fpstate_init_fx). */
static mp_obj_t hw_fpu_init(mp_obj_t fpu_in) {
    uint8_t *fx = fpu_window(fpu_in);
    memset(fx, 0, FXSAVE_SIZE);
    *(uint16_t *)(fx + FXSAVE_FCW) = FPU_INIT_FCW;
    *(uint32_t *)(fx + FXSAVE_MXCSR) = FPU_INIT_MXCSR;
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_1(hw_fpu_init_obj, hw_fpu_init);

/* ---- uaccess: quiet on a bad pointer (no oops), the #PF handler first ---- */

static uint64_t arg_u64(mp_obj_t o) {
    return (uint64_t)mp_obj_get_int_truncated(o);
}

static int access_ok(uint64_t va, uint64_t n) {
    return va < USER_ADDR_LIMIT && n <= USER_ADDR_LIMIT - va;
}

static mp_int_t arg_len(mp_obj_t n) {
    mp_int_t len = mp_obj_get_int(n);
    if (len < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("negative length"));
    }
    return len;
}

/* uc_faulted is set by uc_fixup (guest/entry.S); read and clear it. */
static int faulted(void) {
    int f = uc_faulted;
    uc_faulted = 0;
    return f;
}

static mp_obj_t hw_copy_from_user(mp_obj_t va_in, mp_obj_t n_in) {
    uint64_t va = arg_u64(va_in);
    mp_int_t n = arg_len(n_in);
    if (!access_ok(va, n)) {
        return mp_const_none;
    }
    vstr_t vstr;
    vstr_init_len(&vstr, n);
    if (n) {
        uc_copy((uint64_t)vstr.buf, va, n);
    }
    if (faulted()) {
        vstr_clear(&vstr);
        return mp_const_none;
    }
    return mp_obj_new_bytes_from_vstr(&vstr);
}
MP_DEFINE_CONST_FUN_OBJ_2(hw_copy_from_user_obj, hw_copy_from_user);

static mp_obj_t hw_copy_to_user(mp_obj_t va_in, mp_obj_t buf) {
    uint64_t va = arg_u64(va_in);
    mp_buffer_info_t b;
    mp_get_buffer_raise(buf, &b, MP_BUFFER_READ);
    if (!access_ok(va, b.len)) {
        return mp_const_false;
    }
    if (b.len) {
        uc_copy(va, (uint64_t)b.buf, b.len);
    }
    return mp_obj_new_bool(!faulted());
}
MP_DEFINE_CONST_FUN_OBJ_2(hw_copy_to_user_obj, hw_copy_to_user);

/* The bytes before the first NUL; exactly maxlen bytes when there is none
 * within maxlen (the caller's ENAMETOOLONG); None when a byte to read is
 * not a mapped user byte. */
static mp_obj_t hw_strncpy_from_user(mp_obj_t va_in, mp_obj_t max_in) {
    uint64_t va = arg_u64(va_in);
    mp_int_t max = arg_len(max_in);
    if (va >= USER_ADDR_LIMIT) {
        return mp_const_none;
    }
    uint64_t lim = (uint64_t)max < USER_ADDR_LIMIT - va ? (uint64_t)max : USER_ADDR_LIMIT - va;
    vstr_t vstr;
    vstr_init_len(&vstr, lim);
    uint64_t n = lim ? uc_strncpy((uint64_t)vstr.buf, va, lim) : 0;
    if (faulted() || (n == lim && lim < (uint64_t)max)) {
        vstr_clear(&vstr);
        return mp_const_none;
    }
    vstr.len = n;
    return mp_obj_new_bytes_from_vstr(&vstr);
}
MP_DEFINE_CONST_FUN_OBJ_2(hw_strncpy_from_user_obj, hw_strncpy_from_user);

static mp_obj_t hw_clear_user(mp_obj_t va_in, mp_obj_t n_in) {
    uint64_t va = arg_u64(va_in);
    mp_int_t n = arg_len(n_in);
    if (!access_ok(va, n)) {
        return mp_const_false;
    }
    if (n) {
        uc_fill(va, 0, n);
    }
    return mp_obj_new_bool(!faulted());
}
MP_DEFINE_CONST_FUN_OBJ_2(hw_clear_user_obj, hw_clear_user);

static mp_obj_t hw_get_user64(mp_obj_t va_in) {
    uint64_t va = arg_u64(va_in);
    if (!access_ok(va, 8)) {
        return mp_const_none;
    }
    uint64_t v = uc_read64(va);
    if (faulted()) {
        return mp_const_none;
    }
    return u64(v);
}
MP_DEFINE_CONST_FUN_OBJ_1(hw_get_user64_obj, hw_get_user64);

static mp_obj_t hw_put_user64(mp_obj_t va_in, mp_obj_t v) {
    uint64_t va = arg_u64(va_in);
    if (!access_ok(va, 8)) {
        return mp_const_false;
    }
    uc_write64(va, arg_u64(v));
    return mp_obj_new_bool(!faulted());
}
MP_DEFINE_CONST_FUN_OBJ_2(hw_put_user64_obj, hw_put_user64);

/* ---- interrupts ---- */

/* sti; hlt; cli until at least one interrupt was handled (STI's shadow
 * makes the pair race-free, SDM Vol. 2B STI). */
static mp_obj_t hw_idle(void) {
    uint64_t seen = irq_seq;
    do {
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    } while (irq_seq == seen);
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_0(hw_idle_obj, hw_idle);

static mp_obj_t hw_irq_pending(void) {
    uint32_t m = irq_pending_mask;      /* IF is 0: nothing can set a bit in between */
    irq_pending_mask = 0;
    return MP_OBJ_NEW_SMALL_INT(m);
}
MP_DEFINE_CONST_FUN_OBJ_0(hw_irq_pending_obj, hw_irq_pending);

static mp_obj_t hw_irq_counts(void) {
    mp_obj_t t[NR_IRQS];
    for (int i = 0; i < NR_IRQS; i++) {
        t[i] = u64(irq_count[i]);
    }
    return mp_obj_new_tuple(NR_IRQS, t);
}
MP_DEFINE_CONST_FUN_OBJ_0(hw_irq_counts_obj, hw_irq_counts);
