# Process address spaces (Linux's struct mm_struct and mm/mmap.c): a PML4
# of its own that shares the kernel half with init_mm, the VMAs, RSS
# counters and the page-table pages it owns. mmap/brk only reserve address
# space; frames arrive on the first touch (mm/vm/fault.py) and leave on
# munmap/exit.
#
# MmStruct is one object (mm.mmap(), mm.zap() ...) whose methods live where
# Linux has them:
#   here                  mmap, munmap, brk, the initial stack, the VMA
#                         list's edits (split, merge), the search for a
#                         free range, exit (exit_mmap)
#   vm/memory.py          the page tables and the frames they hold: zap,
#                         free_pgtables, the copy at fork (MmMemory)
#   vm/mprotect.py        mprotect (MmProtect)
#   vm/msync.py           msync (MmSync)
# The PTE formats are in mm/types.py.

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import KERNEL_HALF, USER_END, USER_START
from kernel_py.mm.types import MAX_FILE_PAGES, SHM_SWAPPED, VM_GROWSDOWN, VM_MAYSHARE, VM_MAYWRITE, VM_SHARED
from kernel_py.mm.vm.memory import MmMemory
from kernel_py.mm.vm.mprotect import MmProtect
from kernel_py.mm.vm.msync import MmSync
from kernel_py.mm.vm.vma import (
    MAP_FIXED, MAP_PRIVATE, MAP_SHARED, NO_VMA, PROT_WRITE, VMA, SharedAnon, VmaList, prot_to_vm,
)
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK

STACK_SIZE = 132 << 10               # the initial [stack] VMA, as Linux sets up
STACK_TOP = USER_END
STACK_GAP = 128 << 20                # mmap_base sits this far below the stack
MMAP_BASE = STACK_TOP - STACK_GAP    # top-down mmap searches below here
TASK_UNMAPPED_BASE = (USER_END // 3) & ~(PAGE_SIZE - 1)   # bottom-up start
START_BRK = 0x0000000001000000       # the heap's start (no ELF image: fixed)
TLB_FLUSH_CEILING = 33               # more pages than this: reload CR3
ADDR = PTE_ADDR_MASK


def page_align(n):
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class MmStruct(MmMemory, MmProtect, MmSync):
    """One process address space. `k` gives hw, the buddy, mem_map, init_mm,
    the zero page (k.zero_page) and the system-wide fault counters."""

    def __init__(self, k):
        self.k = k
        self.hw = k.hw
        pgd = k.alloc_table()
        if pgd is None:
            raise KernelError("ENOMEM", "no frame for a PML4")
        k.hw.copy(pgd + KERNEL_HALF * 8, k.init_mm.pgd + KERNEL_HALF * 8, KERNEL_HALF * 8)
        self.pgd = pgd
        self.vmas = VmaList()
        self.vma_cache = NO_VMA
        self.rss_file = 0
        self.rss_anon = 0
        self.rss_shmem = 0
        self.swapents = 0            # swap entries in the PTEs (MM_SWAPENTS)
        self.nr_pgtables = 0         # PT, PD and PDPT pages (not the PML4)
        self.hiwater_rss = 0
        self.hiwater_vm = 0
        self.start_brk = START_BRK
        self.brk = START_BRK
        self.start_stack = STACK_TOP
        self.mmap_base = MMAP_BASE
        self.legacy_va_layout = False
        self.users = 1               # tasks using it (mm_users: vfork's CLONE_VM shares)
        self.start_code = self.end_code = 0      # the executable's layout (fs/binfmt_elf.py),
        self.start_data = self.end_data = 0      # for /proc/PID/stat and status
        self.arg_start = self.arg_end = 0        # argv and envp strings on the stack
        self.env_start = self.env_end = 0
        self.exe = None              # the executable's MappedFile (/proc/PID/exe)
        self.rid = 0
        self.rkey = 0                # rmap key base: rid << RID_SHIFT (mm/types.py)
        self.uprobes = None          # its breakpoints (kernel/events/uprobes.py MmUprobes)
        anon = k.anon
        if anon is not None:
            anon.register(self)

    # -- counters
    def rss(self):
        return self.rss_file + self.rss_anon + self.rss_shmem

    def total_vm(self):
        return self.vmas.total_pages()

    def update_hiwater(self):
        r = self.rss()
        if r > self.hiwater_rss:
            self.hiwater_rss = r
        v = self.total_vm()
        if v > self.hiwater_vm:
            self.hiwater_vm = v

    def live(self):
        return self.hw.read_cr3() & ADDR == self.pgd

    def release_vma(self, vma):
        """The VMA is gone: drop its hold on a shared backing or a file."""
        vma.unlink_file()
        shm = vma.shm
        if shm is None:
            return
        if shm.detach(vma):
            pages = shm.pages
            shm.pages = {}
            self.k.anon.shm.pop(shm.ino, None)
            for v in pages.values():
                if v & SHM_SWAPPED:
                    self.k.swap.free_entry(v & ~SHM_SWAPPED)
                else:
                    self.put_page(v)

    # -- VMA list edits
    def split(self, vma, addr):
        """Split vma at addr; returns the upper part (now in the list)."""
        upper = vma.copy(addr, vma.end)
        vma.end = addr
        self.vmas.insert(upper)
        self.vma_cache = NO_VMA
        return upper

    def merge_around(self, vma):
        """Merge vma with its neighbours where they are compatible."""
        vmas = self.vmas
        i = vmas.index(vma)
        if i + 1 < len(vmas.vmas) and vma.can_merge(vmas.vmas[i + 1]):
            nxt = vmas.vmas[i + 1]
            vma.end = nxt.end
            vmas.remove(nxt)
            self.release_vma(nxt)
        if i > 0 and vmas.vmas[i - 1].can_merge(vma):
            prev = vmas.vmas[i - 1]
            prev.end = vma.end
            vmas.remove(vma)
            self.release_vma(vma)
            vma = prev
        self.vma_cache = NO_VMA
        return vma

    # -- address-space search
    def get_unmapped_area(self, length):
        if not self.legacy_va_layout:
            addr = self._topdown(length)
            if addr is not None:
                return addr
        addr = self._bottomup(length)
        if addr is None:
            raise KernelError("ENOMEM", "no free range of 0x%x bytes" % length)
        return addr

    def _topdown(self, length):
        hi = self.mmap_base
        vmas = self.vmas.vmas
        i = len(vmas) - 1
        while i >= 0:
            v = vmas[i]
            i -= 1
            if v.start >= hi:
                continue
            lo = max(v.end, USER_START)
            if hi >= lo + length:
                return hi - length
            hi = v.start
        if hi >= USER_START + length:
            return hi - length
        return None

    def _bottomup(self, length):
        lo = TASK_UNMAPPED_BASE
        for v in self.vmas.vmas:
            if v.end <= lo:
                continue
            if v.start >= lo + length:
                return lo
            lo = max(lo, v.end)
        if lo + length <= USER_END:
            return lo
        return None

    # -- system calls
    def mmap(self, addr, length, prot, flags, name="", file=None, pgoff=0):
        """mmap(2), anonymous or of `file` (a MappedFile) from page pgoff;
        returns the address. MAP_FIXED here does not replace existing
        mappings (MAP_FIXED_NOREPLACE): EEXIST. A file mapping takes its
        own reference on the file (the caller still fputs its own)."""
        if type(length) is not int or length <= 0:
            raise KernelError("EINVAL", "length must be positive")
        length = page_align(length)
        if length > USER_END - USER_START:
            raise KernelError("ENOMEM", "length 0x%x larger than user space" % length)
        share = flags & (MAP_SHARED | MAP_PRIVATE)
        if share not in (MAP_SHARED, MAP_PRIVATE):
            raise KernelError("EINVAL", "exactly one of shared and private")
        if file is not None:
            check_file_mapping(file, length, prot, share, pgoff)
        if flags & MAP_FIXED:
            check_range(addr, length)
            if self.vmas.overlapping(addr, addr + length):
                raise KernelError("EEXIST", "0x%x-0x%x overlaps a mapping" % (addr, addr + length))
        else:
            addr = self.get_unmapped_area(length)
        vmflags = prot_to_vm(prot)
        shm = None
        if share == MAP_SHARED:
            vmflags |= VM_SHARED | VM_MAYSHARE
            if file is None:
                shm = SharedAnon()
            elif file.read_only:
                vmflags &= ~VM_MAYWRITE     # mprotect cannot make it writable later
        vma = VMA(addr, addr + length, vmflags, name, shm, pgoff if file is not None else 0,
                  file, self)
        self.vmas.insert(vma)
        vma.link_file()
        if shm is not None:
            shm.attach(vma)
            self.k.anon.shm[shm.ino] = shm       # reclaim's way from a frame to its object
        if shm is None and file is None:
            self.merge_around(vma)
        self.update_hiwater()
        return addr

    def munmap(self, addr, length):
        check_range(addr, length)
        self.unmap_range(addr, addr + page_align(length))

    def unmap_range(self, start, end):
        hit = self.vmas.overlapping(start, end)
        if not hit:
            return
        for vma in hit:
            if vma.start < start:
                vma = self.split(vma, start)
            if vma.end > end:
                self.split(vma, end)
            self.zap(vma, vma.start, vma.end)
            self.vmas.remove(vma)
            self.release_vma(vma)
        self.vma_cache = NO_VMA
        self.free_pgtables(start, end)

    def mapped_cover(self, addr, length):
        """(end, [VMA]) of a page-aligned range that must be mapped all
        through (mprotect, msync: ENOMEM otherwise)."""
        check_range(addr, length)
        end = addr + page_align(length)
        hit = self.vmas.overlapping(addr, end)
        pos = addr
        for v in hit:
            if v.start > pos:
                break
            pos = v.end
        if pos < end:
            raise KernelError("ENOMEM", "0x%x-0x%x is not all mapped" % (addr, end))
        return end, hit

    def set_brk(self, addr):
        """brk(2): move the end of the heap; returns the new break."""
        if addr < self.start_brk or addr >= self.mmap_base:
            raise KernelError("ENOMEM", "break 0x%x outside 0x%x-0x%x" % (addr, self.start_brk, self.mmap_base))
        old_end = page_align(self.brk)
        new_end = page_align(addr)
        if new_end < old_end:
            self.unmap_range(new_end, old_end)
        elif new_end > old_end:
            if self.vmas.overlapping(old_end, new_end):
                raise KernelError("ENOMEM", "heap growth to 0x%x hits a mapping" % addr)
            heap = self.vmas.find(old_end - 1) if old_end > self.start_brk else None
            if heap is not None and heap.name == "[heap]" and heap.end == old_end:
                heap.end = new_end
            else:
                heap = VMA(old_end, new_end, prot_to_vm(3), "[heap]")
                self.vmas.insert(heap)
            self.vma_cache = NO_VMA
        self.brk = addr
        self.update_hiwater()
        return addr

    def setup_stack(self):
        vma = VMA(STACK_TOP - STACK_SIZE, STACK_TOP, prot_to_vm(3) | VM_GROWSDOWN, "[stack]")
        self.vmas.insert(vma)
        self.start_stack = STACK_TOP - 8

    def destroy(self):
        """exit_mmap: unmap everything, free every frame and table, the PML4."""
        if self.pgd is None:
            return
        if self.live():
            self.hw.write_cr3(self.k.init_mm.pgd)
        for vma in list(self.vmas.vmas):
            self.zap(vma, vma.start, vma.end)
            self.vmas.remove(vma)
            self.release_vma(vma)
        self.free_pgtables(0, USER_END)
        self.k.free_table(self.pgd)
        self.pgd = None
        self.vma_cache = NO_VMA
        self.k.anon.unregister(self)


def check_file_mapping(file, length, prot, share, pgoff):
    """What do_mmap refuses for a file before anything is reserved."""
    if type(pgoff) is not int or pgoff < 0:
        raise KernelError("EINVAL", "file offset must be a non-negative page number")
    if pgoff + (length >> 12) > MAX_FILE_PAGES:
        raise KernelError("EOVERFLOW", "%s: offset + length past the largest file page" % file.path)
    if share == MAP_SHARED and prot & PROT_WRITE and file.read_only:
        raise KernelError("EACCES", "%s: shared writable mapping on a read-only file system" % file.path)


def check_range(addr, length):
    """A page-aligned, non-empty range inside user space."""
    if type(addr) is not int or type(length) is not int:
        raise KernelError("EINVAL", "address and length must be integers")
    if addr & (PAGE_SIZE - 1):
        raise KernelError("EINVAL", "address 0x%x is not page aligned" % addr)
    if length <= 0:
        raise KernelError("EINVAL", "length must be positive")
    if addr < USER_START or addr + page_align(length) > USER_END:
        raise KernelError("EINVAL", "0x%x-0x%x is outside user space 0x%x-0x%x" % (
            addr, addr + length, USER_START, USER_END))
