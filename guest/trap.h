#ifndef KPY_TRAP_H
#define KPY_TRAP_H
#include "py/obj.h"
#include "cpu.h"

extern const mp_obj_type_t mp_type_HwFault;
extern int python_ready;    /* the VM is up: faults may call Python and recover */

struct trap_frame *exc_enter(struct trap_frame *f);
void exc_handle(struct trap_frame *f);
mp_obj_t fault_exception(const struct fault_info *fi);
#endif
