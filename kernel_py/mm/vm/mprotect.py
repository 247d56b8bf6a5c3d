# mprotect(2) (Linux mm/mprotect.c): new protections for a mapped range,
# the VMAs split at its ends and merged again after, and every PTE of it
# rewritten (change_protection). PROT_NONE keeps the frames in non-present
# PTEs (_PAGE_PROTNONE, mm/types.py). MmProtect is part of the
# address-space object (mm/vm/mmap.py's MmStruct).

from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import (
    VM_ACCESS, VM_MAYWRITE, VM_READ, VM_WRITE, _PAGE_PROTNONE,
)
from kernel_py.mm.vm.memory import ADDR, TLB_FLUSH_CEILING
from kernel_py.arch.x86.pgtable import used_slots
from kernel_py.mm.vm.vma import NO_VMA, PROT_WRITE, prot_to_vm
from kernel_py.arch.x86.cpu import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER


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
        prot_none = not fl & VM_READ
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
