/* Exceptions: no memory-management policy here, only the mechanics of
 * getting a #PF to the Python handler kernel_py registered, printing an oops
 * for everything else, and getting the machine back to the console. */
#include <string.h>

#include "py/runtime.h"
#include "py/objexcept.h"
#include "py/gc.h"

#include "cpu.h"
#include "layout.h"
#include "ptrace.h"
#include "trap.h"
#include "uart.h"

MP_DEFINE_CONST_OBJ_TYPE(mp_type_HwFault, MP_QSTR_Fault, MP_TYPE_FLAG_NONE,
    make_new, mp_obj_exception_make_new,
    print, mp_obj_exception_print,
    attr, mp_obj_exception_attr,
    parent, &mp_type_Exception);

MP_REGISTER_ROOT_POINTER(mp_obj_t hw_pf_handler);

volatile uint8_t ua_faulted, uc_faulted;
struct fault_info ua_fault;
int python_ready;

extern char __uaccess_start[], __uaccess_end[], __usercopy_start[], __usercopy_end[];
extern char kstack_bottom[], kstack_top[], recover_stack_top[];
extern void ua_fixup(void), uc_fixup(void);

/* A handler that keeps answering True without mapping anything would loop
 * forever; after this many faults at the same address and RIP, give up. */
#define MAX_RETRIES 1000
static uint64_t last_cr2, last_rip;
static unsigned retries;

static struct fault_info recover_info;

static const char *const names[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
    "invalid opcode", "device not available", "double fault", "coprocessor",
    "invalid TSS", "segment not present", "stack fault", "general protection",
    "page fault", "reserved", "x87 error", "alignment check", "machine check",
    "SIMD error", "virtualization", "control protection", "reserved", "reserved",
    "reserved", "reserved", "reserved", "reserved", "hypervisor injection",
    "VMM communication", "security", "reserved",
};

static int in_uaccess(uint64_t rip) {
    return rip >= (uint64_t)__uaccess_start && rip < (uint64_t)__uaccess_end;
}

static int in_usercopy(uint64_t rip) {
    return rip >= (uint64_t)__usercopy_start && rip < (uint64_t)__usercopy_end;
}

static int on_kernel_stack(uint64_t sp) {
    return sp > (uint64_t)kstack_bottom && sp <= (uint64_t)kstack_top;
}

static void put(const char *s) {
    uart_write(s, strlen(s));
}

static void puthex(uint64_t v) {
    char buf[19] = "0x";
    for (int i = 0; i < 16; i++) {
        buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xF];
    }
    buf[18] = 0;
    put(buf);
}

static void reg(const char *name, uint64_t v) {
    put(" ");
    put(name);
    put("=");
    puthex(v);
}

/* Is va a kernel address mapped for reading under the current CR3? Walks
 * the tables through the direct map, so the oops printer never faults on a
 * bad RIP. A user address (the kernel jumped there: SMEP) is not read: SMAP
 * would fault on it. */
static int c_mapped(uint64_t va) {
    if (va < USER_ADDR_LIMIT) {
        return 0;
    }
    uint64_t table = read_cr3() & 0x000FFFFFFFFFF000ULL;
    for (int shift = 39; shift >= 12; shift -= 9) {
        uint64_t e = *(volatile uint64_t *)(DIRECT_MAP_BASE + table + ((va >> shift) & 511) * 8);
        if (!(e & 1)) {
            return 0;
        }
        if (shift == 12 || (shift < 39 && (e & 0x80))) {
            return 1;
        }
        table = e & 0x000FFFFFFFFFF000ULL;
    }
    return 1;
}

void oops_print(const struct trap_frame *f, const char *why) {
    put("oops: ");
    put(f->vector < 32 ? names[f->vector] : "?");
    put(" (vector ");
    char v[3] = { (char)('0' + f->vector / 10), (char)('0' + f->vector % 10), 0 };
    put(v);
    put(") ");
    put(why);
    put("\n ");
    reg("error", f->error); reg("rip", f->rip); reg("cr2", f->cr2); reg("cr3", read_cr3());
    put("\n ");
    reg("rax", f->rax); reg("rbx", f->rbx); reg("rcx", f->rcx); reg("rdx", f->rdx);
    put("\n ");
    reg("rsi", f->rsi); reg("rdi", f->rdi); reg("rbp", f->rbp); reg("rsp", f->rsp);
    put("\n ");
    reg("r8", f->r8); reg("r9", f->r9); reg("r10", f->r10); reg("r11", f->r11);
    put("\n ");
    reg("r12", f->r12); reg("r13", f->r13); reg("r14", f->r14); reg("r15", f->r15);
    put("\n ");
    reg("rflags", f->rflags); reg("cs", f->cs); reg("ss", f->ss);
    put("\n code:");
    for (int i = 0; i < 16; i++) {
        uint64_t a = f->rip + i;
        if (!c_mapped(a)) {
            put(" ??");
            continue;
        }
        uint8_t b = *(volatile uint8_t *)a;
        char h[4] = { ' ', "0123456789abcdef"[b >> 4], "0123456789abcdef"[b & 15], 0 };
        put(h);
    }
    put("\n");
}

static int call_python_handler(struct trap_frame *f) {
    mp_obj_t handler = MP_STATE_VM(hw_pf_handler);
    if (handler == MP_OBJ_NULL || handler == mp_const_none) {
        return 0;
    }
    if (f->cr2 == last_cr2 && f->rip == last_rip) {
        if (++retries > MAX_RETRIES) {
            retries = 0;
            put("oops: the #PF handler returned True 1000 times without mapping the page\n");
            return 0;
        }
    } else {
        last_cr2 = f->cr2;
        last_rip = f->rip;
        retries = 0;
    }
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t args[3] = { u64(f->cr2), u64(f->error), u64(f->rip) };
        mp_obj_t r = mp_call_function_n_kw(handler, 3, 0, args);
        nlr_pop();
        return mp_obj_is_true(r);
    }
    put("oops: the #PF handler raised: ");
    mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    return 0;
}

mp_obj_t fault_exception(const struct fault_info *fi) {
    mp_obj_t args[4] = {
        MP_OBJ_NEW_SMALL_INT(fi->vector), u64(fi->error), u64(fi->address), u64(fi->rip),
    };
    return mp_obj_new_exception_args(&mp_type_HwFault, 4, args);
}

/* Entered by iretq in place of the faulting code, on a spare stack: raise
 * hw.Fault into whatever Python code was running; its nlr chain unwinds the
 * kernel stack back to the innermost try (the console's, at worst). */
static void oops_recover(void) {
    MP_STATE_THREAD(gc_lock_depth) = 0;    /* a fault inside a locked section must not wedge the heap */
    nlr_raise(fault_exception(&recover_info));
}

static void save_fault(struct fault_info *fi, const struct trap_frame *f) {
    fi->vector = f->vector;
    fi->error = f->error;
    fi->address = f->vector == 14 ? f->cr2 : 0;
    fi->rip = f->rip;
}

/* An exception or interrupt taken in ring 0 (ring 3's go to user_exit in
 * guest/entry.S). No vector uses IST but #DF, NMI and #MC, so the frame is
 * on the stack that was running: for a #PF in an accessor, the kernel stack,
 * where the Python handler may run as in a nested call. */
void exc_handle(struct trap_frame *f) {
    if (f->vector >= IRQ_VECTOR_BASE) {
        irq_handle(f->vector - IRQ_VECTOR_BASE);    /* inside sti;hlt */
        return;
    }
    if (f->vector == 14 && in_usercopy(f->rip)) {
        if (python_ready && on_kernel_stack((uint64_t)f) && call_python_handler(f)) {
            return;             /* mapped: iretq retries the access */
        }
        f->rip = (uint64_t)uc_fixup;    /* quiet: the call returns None or False */
        return;
    }
    if (f->vector == 14 && in_uaccess(f->rip)) {
        if (python_ready && on_kernel_stack((uint64_t)f) && call_python_handler(f)) {
            return;
        }
        oops_print(f, "in a memory accessor");
        save_fault(&ua_fault, f);
        f->rip = (uint64_t)ua_fixup;
        return;
    }
    oops_print(f, "in kernel code");
    if (!python_ready || MP_STATE_THREAD(nlr_top) == NULL) {
        put("oops: not recoverable before the VM is up; halting\n");
        qemu_exit(3);
    }
    save_fault(&recover_info, f);
    f->rip = (uint64_t)oops_recover;
    f->rsp = (uint64_t)recover_stack_top - 8;   /* as if called: RSP+8 16-aligned */
    f->rflags &= ~(X86_EFLAGS_DF | X86_EFLAGS_AC);  /* the ABI's DF; SMAP back on */
}
