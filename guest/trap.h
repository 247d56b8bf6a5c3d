#ifndef KPY_TRAP_H
#define KPY_TRAP_H
#include "py/obj.h"
#include "py/smallint.h"
#include "cpu.h"

extern const mp_obj_type_t mp_type_HwFault;
extern int python_ready;    /* the VM is up: faults may call Python and recover */

void exc_handle(struct trap_frame *f);
mp_obj_t fault_exception(const struct fault_info *fi);

/* A small int when it fits: with MICROPY_LONGINT_IMPL_MPZ,
 * mp_obj_new_int_from_ull always builds a heap mpz, so every load (and every
 * fault's arguments) would allocate, and the allocator slows down as the
 * garbage piles up between collections. */
static inline mp_obj_t u64(uint64_t v) {
    if ((v & ~(uint64_t)MP_SMALL_INT_POSITIVE_MASK) == 0) {
        return MP_OBJ_NEW_SMALL_INT((mp_int_t)v);
    }
    return mp_obj_new_int_from_ull(v);
}
#endif
