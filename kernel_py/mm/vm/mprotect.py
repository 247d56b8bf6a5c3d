# mprotect(2) (Linux mm/mprotect.c): new protections for a mapped range,
# the VMAs split at its ends and merged again after, and every PTE of it
# rewritten (change_protection). PROT_NONE keeps the frames in non-present
# PTEs (_PAGE_PROTNONE, mm/types.py). MmProtect is part of the
# address-space object (mm/vm/mmap.py's MmStruct); sys_mprotect is
# do_mprotect_pkey's checks before it.
#
# Linux changes the VMAs one by one and can stop part-way (ENOMEM at a hole
# after the mapped part before it was changed, EACCES at a VMA that may not
# get the protection); here every VMA of the range is checked first, so a
# refused call changes nothing.

from kernel_py.lib.errno import EACCES, EINVAL, ENOMEM
from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import (
    M64, VM_ACCESS, VM_GROWSDOWN, VM_MAYWRITE, VM_WRITE, _PAGE_PROTNONE, page_align,
)
from kernel_py.mm.vm.memory import ADDR, TLB_FLUSH_CEILING
from kernel_py.arch.x86.pgtable import used_slots
from kernel_py.mm.vm.vma import (
    NO_VMA, PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ, PROT_SEM, PROT_WRITE, prot_to_vm,
)
from kernel_py.arch.x86.cpu import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER

PROT_VALID = PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM     # arch_validate_prot


class MmProtect:
    def mprotect(self, addr, length, prot):
        end, hit = self.mapped_cover(addr, length)
        for v in hit:
            if prot & PROT_WRITE and not v.flags & VM_MAYWRITE:
                raise KernelError("EACCES", "0x%x-0x%x maps %s shared from a read-only file system" % (
                    v.start, v.end, v.file.path if v.file is not None else "?"))
        access = prot_to_vm(prot) & VM_ACCESS
        done = []
        for vma in hit:
            if vma.start < addr:
                vma = self.split(vma, addr)
            if vma.end > end:
                self.split(vma, end)
            vma.set_flags((vma.flags & ~VM_ACCESS) | access)
            self.change_protection(vma, vma.start, vma.end)
            done.append(vma)
        for vma in done:
            if vma in self.vmas.vmas:
                self.merge_around(vma)
        self.vma_cache = NO_VMA

    def change_protection(self, vma, start, end):
        """Rewrite the PTEs of [start, end) for vma's (new) flags. Private
        pages stay read-only when they were (a write faults: COW or reuse)."""
        hw = self.hw
        r64, w64 = hw.read64, hw.write64
        zero = self.k.zero_page
        fl = vma.flags
        prot_none = not fl & VM_ACCESS                  # (write- or exec-only is readable on x86)
        shared = vma.shm is not None
        live = self.live()
        n = 0
        for pt, base, i0, i1 in list(self.pt_tables(start, end)):
            for i in used_slots(hw, pt, i0, i1):
                epa = pt + (i << 3)
                e = r64(epa)
                if not e or not e & (_PAGE_PRESENT | _PAGE_PROTNONE):    # empty, swap entry
                    continue
                pa = e & ADDR
                if prot_none:                   # (D kept: a swap-cache page's copy may be stale)
                    new = pa | _PAGE_PROTNONE | _PAGE_USER | (e & _PAGE_DIRTY)
                else:
                    new = pa | vma.prot_bits | (e & 0x60)       # keep A/D
                    if fl & VM_WRITE and pa != zero and (
                            shared or (e & _PAGE_PRESENT and e & _PAGE_RW)):
                        new |= _PAGE_RW
                if new != e:
                    w64(epa, new)
                    if live and e & _PAGE_PRESENT:
                        n += 1
                        if n <= TLB_FLUSH_CEILING:
                            hw.invlpg(base + (i << 12))
        if n > TLB_FLUSH_CEILING:
            hw.write_cr3(self.pgd)


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
