# The CR3 demo (issue 2 item 4): a fresh 4-level table from free frames that
# shares the kernel half of init_mm, with one user page left unmapped; the
# kernel loads it, touches the page, and the Python #PF handler maps a fresh
# frame. The demo table stays in CR3 afterwards (the kernel half is shared,
# so the kernel runs on unchanged) so the host can read CR3 over QMP and walk
# it; the next run, or `pfdemo restore`, goes back to init_mm and frees it.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import KERNEL_HALF
from kernel_py.mm.gfp import GFP_KERNEL, __GFP_ZERO
from kernel_py.mm.types import KIND_ANON
from kernel_py.arch.x86.cpu import PAGE_MASK, PF_PROT, PTE_ADDR_MASK, _PAGE_NX, _PAGE_RW, _PAGE_USER

DEMO_VA = 0x400000
MAGIC = 0x6B65726E656C5F70      # "kernel_p"
DEMO_GFP = GFP_KERNEL | __GFP_ZERO
PAGE_USER_DATA = _PAGE_RW | _PAGE_USER | _PAGE_NX


class Demo:
    def __init__(self, root):
        self.root = root
        self.pa = None
        self.faults = 0


def restore(k):
    """Back to init_mm's tables; free the previous demo's frames."""
    d = k.pfdemo
    if d is None:
        return
    hw = k.hw
    if hw.read_cr3() & PTE_ADDR_MASK == d.root:
        hw.write_cr3(k.init_mm.pgd)
    if d.pa is not None:
        k.pgtable.unmap(d.root, DEMO_VA, free_tables=True)
        k.buddy.free_pages(d.pa, 0)
    k.buddy.free_pages(d.root, 0)
    k.pfdemo = None


def run(k):
    hw, pgt, buddy = k.hw, k.pgtable, k.buddy
    restore(k)
    root = k.alloc_table()
    if root is None:
        raise KernelError("ENOMEM", "pfdemo: no frame for the PML4")
    hw.copy(root + KERNEL_HALF * 8, k.init_mm.pgd + KERNEL_HALF * 8, KERNEL_HALF * 8)
    d = Demo(root)
    k.pfdemo = d

    def handler(va, err, rip):
        if va & PAGE_MASK != DEMO_VA or err & PF_PROT or d.pa is not None:
            return False
        pa = buddy.alloc_pages(DEMO_GFP, 0, KIND_ANON)
        if pa is None:
            return False
        pgt.map(root, DEMO_VA, pa, PAGE_USER_DATA)
        d.pa = pa
        d.faults += 1
        return True

    hw.set_fault_handler(handler)
    try:
        hw.write_cr3(root)
        hw.vwrite64(DEMO_VA, MAGIC)
        value = hw.vread64(DEMO_VA)
    finally:
        hw.set_fault_handler(k.fault_handler)
    if value != MAGIC or d.pa is None or hw.read64(d.pa) != MAGIC:
        raise KernelError("EIO", "pfdemo: the page does not hold what was written")
    return "cr3=0x%x va=0x%x pa=0x%x faults=%d" % (root, DEMO_VA, d.pa, d.faults)
