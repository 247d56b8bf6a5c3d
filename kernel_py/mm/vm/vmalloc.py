# vmalloc (Linux: mm/vmalloc.c): virtually contiguous kernel memory built
# from scattered order-0 frames, mapped one by one into the kernel's page
# tables in [VMALLOC_START, VMALLOC_END). Each area is followed by an
# unmapped guard page, so running off the end faults instead of corrupting
# the next area. The free address ranges are kept sorted by address and
# merged on free; allocation is first fit.
#
# Processes copy the kernel half of init_mm's PML4 when they are created, so
# the PML4 slots that vmalloc uses are populated at init (Linux's
# preallocate_vmalloc_pages) and the areas stay inside them: mappings made
# later are then visible in every address space. VMALLOC_SLOTS slots of
# 512 GiB each are plenty here.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import VMALLOC_END, VMALLOC_START
from kernel_py.mm.gfp import F_ZERO, GFP_KERNEL
from kernel_py.mm.types import KIND_VMALLOC
from kernel_py.arch.x86.pgtable import walk
from kernel_py.arch.x86.cpu import PAGE_SHIFT, PAGE_SIZE, PGDIR_SIZE, _PAGE_GLOBAL, _PAGE_NX, _PAGE_RW

PAGE_KERNEL = _PAGE_RW | _PAGE_NX | _PAGE_GLOBAL
VMALLOC_SLOTS = 1
PML4_SLOT = PGDIR_SIZE
GUARD = PAGE_SIZE


class VmStruct:
    """struct vm_struct: one area; size includes the guard page."""

    def __init__(self, addr, size, caller):
        self.addr = addr
        self.size = size
        self.pages = []          # pa of each mapped frame, in order
        self.caller = caller

    def end(self):
        return self.addr + self.size

    def mapped_end(self):
        return self.addr + len(self.pages) * PAGE_SIZE


class Vmalloc:
    def __init__(self, hw, pgtable, root, buddy, start=VMALLOC_START, end=None):
        self.hw = hw
        self.pgt = pgtable
        self.root = root
        self.buddy = buddy
        self.start = start
        self.end = end if end is not None else min(VMALLOC_END, start + VMALLOC_SLOTS * PML4_SLOT)
        self.free = [(self.start, self.end)]     # sorted, disjoint [s, e)
        self.areas = {}                           # addr -> VmStruct
        self.nr_pages = 0
        self.preallocate()

    def preallocate(self):
        """Populate the PML4 entries of the range now (see the top)."""
        va = self.start
        while va < self.end:
            level, epa, e = walk(self.hw, self.root, va, 3, self.pgt.link_kernel_table)
            if level != 3:
                raise KernelError("ENOMEM", "vmalloc: page table")
            va += PML4_SLOT

    # --- the area allocator -----------------------------------------------------
    def get_vm_area(self, size, caller="vmalloc"):
        """Reserve size bytes plus a guard page, first fit."""
        need = size + GUARD
        for i in range(len(self.free)):
            s, e = self.free[i]
            if e - s >= need:
                if e - s == need:
                    del self.free[i]
                else:
                    self.free[i] = (s + need, e)
                area = VmStruct(s, need, caller)
                self.areas[s] = area
                return area
        return None

    def free_vm_area(self, area):
        """Give [addr, addr+size) back, merging with free neighbours."""
        del self.areas[area.addr]
        s, e = area.addr, area.end()
        free = self.free
        i = 0
        while i < len(free) and free[i][0] < s:
            i += 1
        if i < len(free) and free[i][0] == e:
            e = free[i][1]
            del free[i]
        if i > 0 and free[i - 1][1] == s:
            s = free[i - 1][0]
            i -= 1
            del free[i]
        free.insert(i, (s, e))

    # --- vmalloc / vfree ------------------------------------------------------------
    def vmalloc(self, size, gfp=GFP_KERNEL, caller="vmalloc"):
        """Virtually contiguous size bytes (page granular), or None."""
        if type(size) is not int or size <= 0:
            raise KernelError("EINVAL", "vmalloc size %r" % (size,))
        size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        area = self.get_vm_area(size, caller)
        if area is None:
            return None
        va = area.addr
        try:
            for _ in range(size >> PAGE_SHIFT):
                pa = self.buddy.alloc_pages(gfp, 0, KIND_VMALLOC)
                if pa is None:
                    raise KernelError("ENOMEM", "vmalloc page")
                area.pages.append(pa)
                self.pgt.map(self.root, va, pa, PAGE_KERNEL)
                va += PAGE_SIZE
        except KernelError:
            self.unmap_area(area)
            self.free_vm_area(area)
            return None
        self.nr_pages += len(area.pages)
        return area.addr

    def vzalloc(self, size, gfp=GFP_KERNEL):
        return self.vmalloc(size, gfp | F_ZERO)

    def unmap_area(self, area):
        """Unmap, flush each page from the TLB (global entries survive CR3
        reloads, so always invlpg), then free the frames."""
        va = area.addr
        invlpg = self.hw.invlpg
        for pa in area.pages:
            if self.pgt.translate(self.root, va) == pa:
                self.pgt.unmap(self.root, va)
            invlpg(va)
            self.buddy.free_pages(pa, 0)
            va += PAGE_SIZE
        area.pages = []

    def vfree(self, addr):
        area = self.areas.get(addr)
        if area is None:
            what = self.describe(addr)
            raise KernelError("EINVAL", "vfree(0x%x): not a vmalloc area%s" % (
                addr, (" (" + what + ")") if what else ""))
        self.nr_pages -= len(area.pages)
        self.unmap_area(area)
        self.free_vm_area(area)

    # --- lookups -------------------------------------------------------------------
    def find_area(self, va):
        for area in self.areas.values():
            if area.addr <= va < area.end():
                return area
        return None

    def vmalloc_to_page(self, va):
        """Physical address of the frame behind a vmalloc address (the
        frame's struct page is at mem_map record pa >> PAGE_SHIFT)."""
        area = self.find_area(va)
        if area is None or va >= area.mapped_end():
            return None
        return area.pages[(va - area.addr) >> PAGE_SHIFT]

    def vmalloc_to_pfn(self, va):
        pa = self.vmalloc_to_page(va)
        return None if pa is None else pa >> PAGE_SHIFT

    def describe(self, va):
        """For the fault path: what a vmalloc-space address is, or None."""
        if not VMALLOC_START <= va < VMALLOC_END:
            return None
        area = self.find_area(va)
        if area is None:
            return "vmalloc space 0x%x: no vmalloc area" % va
        n = len(area.pages)
        where = "guard page" if va >= area.mapped_end() else "offset %d" % (va - area.addr)
        return "vmalloc area 0x%x-0x%x (%d pages) %s" % (area.addr, area.mapped_end(), n, where)

    # --- /proc -----------------------------------------------------------------------
    def vmallocinfo(self):
        """/proc/vmallocinfo: one line per area, by address; sizes include
        the guard page, as Linux prints them."""
        lines = []
        for addr in sorted(self.areas):
            a = self.areas[addr]
            n = len(a.pages)
            lines.append("0x%016x-0x%016x %7d %s pages=%d vmalloc N0=%d" % (
                a.addr, a.end(), a.size, a.caller, n, n))
        return "\n".join(lines) + ("\n" if lines else "")


def vmalloc_init(k):
    return Vmalloc(k.hw, k.pgtable, k.init_mm.pgd, k.buddy)
