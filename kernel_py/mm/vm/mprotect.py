# mprotect(2) (Linux's mm/mprotect.c, do_mprotect_pkey): the checks, then
# MmStruct.mprotect for the VMAs and PTEs.
#
# Linux changes the VMAs one by one and can stop part-way (ENOMEM at a hole
# after the mapped part before it was changed, EACCES at a VMA that may not
# get the protection); here every VMA of the range is checked first, so a
# refused call changes nothing.

from kernel_py.lib.errno import EACCES, EINVAL, ENOMEM
from kernel_py.mm.vm.mmap import M64, page_align
from kernel_py.mm.vm.vma import (
    PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ, PROT_SEM, PROT_WRITE, VM_ACCESS,
    VM_GROWSDOWN, prot_to_vm,
)

PROT_VALID = PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM     # arch_validate_prot


def sys_mprotect(t, start, length, prot):
    start &= M64
    length &= M64
    prot &= 0xFFFFFFFF
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == PROT_GROWSDOWN | PROT_GROWSUP:
        return -EINVAL
    if start & 0xFFF:
        return -EINVAL
    if not length:
        return 0
    length = page_align(length)
    end = start + length
    if end > M64 or not length:
        return -ENOMEM
    if prot & ~PROT_VALID:
        return -EINVAL
    if grows & PROT_GROWSUP:
        return -EINVAL                      # no VM_GROWSUP on x86
    mm = t.mm
    vma = mm.vmas.find_vma(start)
    if vma is None:
        return -ENOMEM
    if grows & PROT_GROWSDOWN:
        if vma.start >= end:
            return -ENOMEM
        if not vma.flags & VM_GROWSDOWN:
            return -EINVAL
        start = vma.start
    elif vma.start > start:
        return -ENOMEM
    # the whole range mapped, and each VMA allowed the new protection
    # (newflags & ~(newflags >> 4): VM_READ/WRITE/EXEC need VM_MAY*)
    want = prot_to_vm(prot) & VM_ACCESS
    pos = start
    for v in mm.vmas.overlapping(start, end):
        if v.start > pos:
            return -ENOMEM
        newflags = want | (v.flags & ~VM_ACCESS)
        if newflags & ~(newflags >> 4) & VM_ACCESS:
            return -EACCES
        pos = v.end
    if pos < end:
        return -ENOMEM
    mm.mprotect(start, end - start, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))
    return 0
