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
#                         free range, exit (exit_mmap); below the class,
#                         the system calls mmap, munmap, brk and the
#                         stack's growth (expand_stack)
#   vm/memory.py          the page tables and the frames they hold: zap,
#                         free_pgtables, the copy at fork (MmMemory)
#   vm/mprotect.py        mprotect (MmProtect) and sys_mprotect
#   vm/msync.py           msync (MmSync) and sys_msync
# mremap, madvise and mincore are module functions over an MmStruct in
# vm/mremap.py, madvise.py, mincore.py (docs/mm-syscalls.md). The PTE
# formats are in mm/types.py.

from kernel_py.lib.errno import EBADF, EINVAL, ENOMEM, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.layout import KERNEL_HALF, STACK_GUARD_GAP, USER_END, USER_START
from kernel_py.fs.file import MMAP_ANON, MMAP_FILE, fdget
from kernel_py.kernel.sys import RLIM_INFINITY, RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK
from kernel_py.mm.types import (
    M64, MAX_FILE_PAGES, SHM_SWAPPED, VM_ACCESS, VM_EXEC, VM_GROWSDOWN, VM_MAYSHARE, VM_MAYWRITE,
    VM_NORESERVE, VM_READ, VM_SHARED, VM_STACK, VM_WRITE, page_align,
)
from kernel_py.mm.vm.memory import MmMemory
from kernel_py.mm.vm.mprotect import MmProtect
from kernel_py.mm.vm.msync import MmSync
from kernel_py.mm.vm.vma import (
    MAP_FIXED, MAP_PRIVATE, MAP_SHARED, NO_VMA, PROT_WRITE, VMA, SharedAnon, VmaList, prot_to_vm,
)
from kernel_py.mm.vm.vma import (     # the system calls' (below)
    LEGACY_MAP_MASK, MAP_32BIT, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_GROWSDOWN, MAP_HUGETLB,
    MAP_LOCKED, MAP_NONBLOCK, MAP_NORESERVE, MAP_POPULATE, MAP_SHARED_VALIDATE, MAP_TYPE,
    MappedFile,
)
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK, _PAGE_PRESENT, _PAGE_RW

STACK_SIZE = 132 << 10               # the initial [stack] VMA, as Linux sets up
STACK_TOP = USER_END
STACK_GAP = 128 << 20                # mmap_base sits this far below the stack
MMAP_BASE = STACK_TOP - STACK_GAP    # top-down mmap searches below here
TASK_UNMAPPED_BASE = (USER_END // 3) & ~(PAGE_SIZE - 1)   # bottom-up start
START_BRK = 0x0000000001000000       # the heap's start (no ELF image: fixed)
ADDR = PTE_ADDR_MASK


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


# -- the system calls (Linux's mm/mmap.c: mmap, munmap, brk; expand_stack) ------
#
# Module functions over MmStruct, as Linux's are over an mm_struct: they
# check what Linux checks, in its order (do_mmap, get_unmapped_area,
# __vm_munmap, brk), and use the MmStruct methods above for the VMAs and
# page tables. A handler is sys_NAME(t, ...) (docs/programs.md): registers
# as signed 64-bit ints, the result or -errno.
#
# Where this kernel differs from Linux, on purpose:
#   - MAP_FIXED checks everything before it unmaps what is in the way, so a
#     refused MAP_FIXED leaves the old mapping whole (Linux can fail after
#     the unmap, in its accounting);
#   - below vm.mmap_min_addr (64 KiB, USER_START) is EPERM for everyone:
#     there are no capabilities here (Linux lets CAP_SYS_RAWIO map there);
#   - MAP_HUGETLB: no huge pages are reserved, ENOMEM as Linux with
#     nr_hugepages = 0; MAP_LOCKED populates (there is no mlock, so no
#     VM_LOCKED); MAP_SHARED_VALIDATE of anonymous memory is EINVAL, as
#     Linux 6.1 answers;
#   - no overcommit accounting (vm.overcommit_memory 1: always): a 2 GiB
#     MAP_SHARED anonymous mapping is reserved address space only.

MAX_MAP_COUNT = 65530                # vm.max_map_count (DEFAULT_MAX_MAP_COUNT)
MMAP_MIN_ADDR = USER_START           # vm.mmap_min_addr
MAP_32BIT_START = 0x40000000         # x86's MAP_32BIT window (find_start_end)
MAP_32BIT_END = 0x80000000
PF_WRITE_USER = 6                    # the error code of a user write fault (PF_WRITE | PF_USER)
PF_READ_USER = 4
PF_INSTR_USER = 20


def rlimit(t, which):
    """The soft limit of a task; a console process has no limits but the
    stack's default 8 MiB (kernel/sys.py's default_rlimits)."""
    rl = t.rlim if t is not None else None
    if rl is not None:
        return rl[which][0]
    return 8 << 20 if which == RLIMIT_STACK else RLIM_INFINITY


def vm_start_gap(vma):
    """Where the free space below vma must end: its start, less the guard
    gap when it is a stack that grows down."""
    if vma.flags & VM_GROWSDOWN:
        return max(vma.start - STACK_GUARD_GAP, 0)
    return vma.start


def unmapped_area_topdown(mm, length, low, high):
    """vm_unmapped_area, top-down: the highest [a, a + length) within
    [low, high) clear of every VMA and of the guard gap below a stack."""
    ceiling = high
    vmas = mm.vmas.vmas
    i = len(vmas) - 1
    while i >= 0:
        v = vmas[i]
        i -= 1
        if v.start >= ceiling and vm_start_gap(v) >= ceiling:
            continue
        lo = v.end if v.end > low else low
        if ceiling >= lo + length:
            return ceiling - length
        g = vm_start_gap(v)
        if g < ceiling:
            ceiling = g
        if ceiling <= low:
            return None
    if ceiling >= low + length:
        return ceiling - length
    return None


def unmapped_area(mm, length, low, high):
    """vm_unmapped_area, bottom-up: the lowest such range."""
    floor = low
    for v in mm.vmas.vmas:
        if v.end <= floor:
            continue
        top = vm_start_gap(v)
        if top > high:
            top = high
        if top >= floor + length:
            return floor
        if v.end > floor:
            floor = v.end
        if floor >= high:
            return None
    if high >= floor + length:
        return floor
    return None


def get_unmapped_area(mm, addr, length, flags):
    """Linux's get_unmapped_area (x86's arch_get_unmapped_area_topdown):
    MAP_FIXED's address as it is; a hint when the range is free (with the
    stack's guard gap); else a search below mmap_base (above
    TASK_UNMAPPED_BASE with the legacy layout, in the low 2 GiB for
    MAP_32BIT). Raises ENOMEM, EINVAL (unaligned), EPERM (below
    mmap_min_addr)."""
    if length > USER_END - MMAP_MIN_ADDR:
        raise KernelError("ENOMEM", "0x%x bytes: larger than user space" % length)
    if not flags & MAP_FIXED:
        found = None
        if addr:
            addr = page_align(addr)
            nxt = mm.vmas.find_vma(addr)
            i = mm.vmas.first_index(addr)
            prev = mm.vmas.vmas[i - 1] if i > 0 else None
            if (addr <= USER_END - length and addr >= MMAP_MIN_ADDR and
                    (nxt is None or addr + length <= vm_start_gap(nxt)) and
                    (prev is None or addr >= prev.end)):
                found = addr
        if found is None:
            if flags & MAP_32BIT:
                found = unmapped_area(mm, length, MAP_32BIT_START, MAP_32BIT_END)
            elif mm.legacy_va_layout:
                found = unmapped_area(mm, length, TASK_UNMAPPED_BASE, USER_END)
            else:
                found = unmapped_area_topdown(mm, length, MMAP_MIN_ADDR, mm.mmap_base)
                if found is None:
                    found = unmapped_area(mm, length, TASK_UNMAPPED_BASE, USER_END)
            if found is None:
                raise KernelError("ENOMEM", "no free range of 0x%x bytes" % length)
        addr = found
    if addr > USER_END - length:
        raise KernelError("ENOMEM", "0x%x-0x%x is past user space" % (addr, addr + length))
    if addr & (PAGE_SIZE - 1):
        raise KernelError("EINVAL", "address 0x%x is not page aligned" % addr)
    if addr < MMAP_MIN_ADDR:
        raise KernelError("EPERM", "0x%x is below vm.mmap_min_addr 0x%x" % (addr, MMAP_MIN_ADDR))
    return addr


def data_pages(mm):
    """VmData in pages: private writable mappings that are not the stack
    (is_data_mapping)."""
    n = 0
    for v in mm.vmas.vmas:
        if v.flags & (VM_WRITE | VM_SHARED | VM_STACK) == VM_WRITE:
            n += (v.end - v.start) >> 12
    return n


def may_expand_vm(t, mm, flags, npages):
    """RLIMIT_AS for any growth, RLIMIT_DATA for private writable memory
    (Linux's may_expand_vm, which refuses rather than warns)."""
    lim = rlimit(t, RLIMIT_AS)
    if lim != RLIM_INFINITY and (mm.total_vm() + npages) << 12 > lim:
        return False
    if flags & (VM_WRITE | VM_SHARED | VM_STACK) == VM_WRITE:
        lim = rlimit(t, RLIMIT_DATA)
        if lim != RLIM_INFINITY and (data_pages(mm) + npages) << 12 > lim:
            return False
    return True


class OpenMappedFile(MappedFile):
    """The MappedFile of an open File (mmap(2) of a descriptor): the File's
    inode pinned again, not looked up by its path (an unlinked file and a
    memfd have none). Otherwise as MappedFile: one reference per VMA, the
    pin goes with the last."""

    def __init__(self, vfs, f):
        ino = f.inode
        f.sb.pin(ino)                   # FAT's pin also makes the inode's page cache
        fs = ino.fs
        self.vfs = vfs
        path = f.path
        if path.endswith(" (deleted)"):
            path = path[:-10]
        self.path = path
        self.fs = fs
        self.ino = ino
        self.mapping = fs.mapping_of(ino)
        self.count = 1
        self.dev = "%02x:%02x" % (fs.dev.major, fs.dev.minor)


def mmap_region(mm, mf, addr, length, vmflags, pgoff, shared_anon, name=""):
    """The mapping itself, once do_mmap has checked everything: what is in
    the way goes (MAP_FIXED), the new VMA goes in (merged with equal
    anonymous neighbours). mf: a MappedFile (the VMA takes its own
    reference) or None."""
    end = addr + length
    if mm.vmas.overlapping(addr, end):
        mm.unmap_range(addr, end)
    shm = None
    if shared_anon:                     # shmem_zero_setup: an object of the mapping's size
        shm = SharedAnon()
        shm.size = length >> 12
    vma = VMA(addr, end, vmflags, name, shm, pgoff if (mf is not None or shm is not None) else 0,
              mf, mm)
    mm.vmas.insert(vma)
    vma.link_file()
    if shm is not None:
        shm.attach(vma)
        mm.k.anon.shm[shm.ino] = shm
    elif mf is None:
        vma = mm.merge_around(vma)
    mm.vma_cache = NO_VMA
    mm.update_hiwater()
    return vma


def populate(k, mm, start, end, write=None):
    """mm_populate: fault [start, end) in through the fault handler, as
    __mm_populate's get_user_pages: a write fault where the mapping is
    private and writable (copy-on-write broken now), a read fault (or an
    instruction fetch) elsewhere; PROT_NONE and what lies past the end of
    a file are skipped. write=True/False forces the kind (MADV_POPULATE_*).
    Returns False at the first fault refused (out of memory), True when
    every page is in."""
    handler = k.fault.handler
    for vma in mm.vmas.overlapping(start, end):
        fl = vma.flags
        if write is None:
            if fl & (VM_WRITE | VM_SHARED) == VM_WRITE:
                err = PF_WRITE_USER
            elif fl & VM_READ:
                err = PF_READ_USER
            elif fl & VM_EXEC:
                err = PF_INSTR_USER
            else:
                continue
        else:
            err = PF_WRITE_USER if write else PF_READ_USER
        s = start if start > vma.start else vma.start
        e = end if end < vma.end else vma.end
        if vma.file is not None:
            eof = vma.start + ((((vma.file.ino.i_size + PAGE_SIZE - 1) >> 12) - vma.pgoff) << 12)
            if eof < e:
                e = eof
        va = s
        while va < e:
            pte = mm.pte(va)
            if not (pte & _PAGE_PRESENT and (err != PF_WRITE_USER or pte & _PAGE_RW)):
                if not handler(va, err, 0):
                    return False
            va += PAGE_SIZE
    return True


def do_mmap(t, f, addr, length, prot, flags, pgoff):
    """Linux's do_mmap for task t: f the open File, or None (anonymous);
    the address, or KernelError."""
    mm = t.mm
    k = t.k
    if not length:
        raise KernelError("EINVAL", "length 0")
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr &= ~(PAGE_SIZE - 1)            # round_hint_to_min
        if addr and addr < MMAP_MIN_ADDR:
            addr = MMAP_MIN_ADDR
    length = page_align(length) & M64
    if not length:
        raise KernelError("ENOMEM", "length overflows")
    if pgoff + (length >> 12) > M64:
        raise KernelError("EOVERFLOW", "offset + length overflows")
    if len(mm.vmas) > MAX_MAP_COUNT:
        raise KernelError("ENOMEM", "vm.max_map_count mappings already")
    addr = get_unmapped_area(mm, addr, length, flags)
    if flags & MAP_FIXED_NOREPLACE and mm.vmas.overlapping(addr, addr + length):
        raise KernelError("EEXIST", "0x%x-0x%x overlaps a mapping" % (addr, addr + length))
    vmflags = prot_to_vm(prot) | (VM_GROWSDOWN if flags & MAP_GROWSDOWN else 0)
    typ = flags & MAP_TYPE
    kind = None
    shared_anon = False
    if f is not None:
        kind = f.f_op.mmap
        if kind == MMAP_FILE and pgoff + (length >> 12) > MAX_FILE_PAGES:
            raise KernelError("EOVERFLOW", "offset + length past the largest file page")
        if typ == MAP_SHARED or typ == MAP_SHARED_VALIDATE:
            if typ == MAP_SHARED:
                flags &= LEGACY_MAP_MASK
            if flags & ~LEGACY_MAP_MASK:
                raise KernelError("EOPNOTSUPP", "mmap flags 0x%x" % (flags & ~LEGACY_MAP_MASK))
            if prot & PROT_WRITE and not f.writable():
                raise KernelError("EACCES", "shared writable mapping of a file not open for writing")
            vmflags |= VM_SHARED | VM_MAYSHARE
            if not f.writable():
                # Linux clears VM_SHARED too (the mapping then behaves as a
                # private one that can never be written); it stays set here,
                # so that /proc/PID/maps says 's' as Linux's (from VM_MAYSHARE)
                vmflags &= ~VM_MAYWRITE
        elif typ != MAP_PRIVATE:
            raise KernelError("EINVAL", "mmap type %d: MAP_SHARED or MAP_PRIVATE" % typ)
        if not f.readable():
            raise KernelError("EACCES", "a mapping needs a file open for reading")
        if kind is None:
            raise KernelError("ENODEV", "%s cannot be mapped" % (f.path or "this file"))
        if vmflags & VM_GROWSDOWN:
            raise KernelError("EINVAL", "MAP_GROWSDOWN of a file")
        if kind == MMAP_ANON:               # /dev/zero: mmap_zero
            if vmflags & VM_SHARED:
                shared_anon = True
            pgoff = 0
    else:
        if typ == MAP_SHARED:
            if vmflags & VM_GROWSDOWN:
                raise KernelError("EINVAL", "MAP_GROWSDOWN of shared memory")
            vmflags |= VM_SHARED | VM_MAYSHARE
            shared_anon = True
        elif typ != MAP_PRIVATE:
            raise KernelError("EINVAL", "mmap type %d: MAP_SHARED or MAP_PRIVATE" % typ)
        pgoff = 0
    if flags & MAP_NORESERVE:
        vmflags |= VM_NORESERVE
    # the address-space limits, counted after what MAP_FIXED replaces
    grow = length >> 12
    for v in mm.vmas.overlapping(addr, addr + length):
        grow -= (min(v.end, addr + length) - max(v.start, addr)) >> 12
    if not may_expand_vm(t, mm, vmflags, grow):
        raise KernelError("ENOMEM", "RLIMIT_AS or RLIMIT_DATA")
    mf = None
    if kind == MMAP_FILE:
        mf = OpenMappedFile(k.vfs, f)
    try:
        mmap_region(mm, mf, addr, length, vmflags, pgoff, shared_anon)
    finally:
        if mf is not None:
            mf.fput()                       # the VMA holds its own
    if flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE or flags & MAP_LOCKED:
        populate(k, mm, addr, addr + length)
    return addr


def sys_mmap(t, addr, length, prot, flags, fd, off):
    off &= M64
    if off & (PAGE_SIZE - 1):
        return -EINVAL
    return ksys_mmap_pgoff(t, addr & M64, length & M64, prot & 0xFFFFFFFF, flags & M64, fd,
                           off >> 12)


def ksys_mmap_pgoff(t, addr, length, prot, flags, fd, pgoff):
    f = None
    if not flags & MAP_ANONYMOUS:
        f = fdget(t, fd)
        if f is None:
            return -EBADF
        if flags & MAP_HUGETLB:
            return -EINVAL                  # not a hugetlbfs file
    elif flags & MAP_HUGETLB:
        return -ENOMEM                      # no huge pages reserved (hugetlb_file_setup)
    try:
        return do_mmap(t, f, addr, length, prot, flags, pgoff)
    except KernelError as e:
        return -errno_of(e.errname)


def sys_munmap(t, addr, length):
    """__vm_munmap: any part of any mapping, nothing mapped there is fine."""
    addr &= M64
    length &= M64
    if addr & (PAGE_SIZE - 1) or addr > USER_END or length > USER_END - addr:
        return -EINVAL
    length = page_align(length)
    if not length:
        return -EINVAL
    mm = t.mm
    end = addr + length
    v = mm.vmas.find(addr)
    if v is not None and v.start < addr and v.end > end and len(mm.vmas) >= MAX_MAP_COUNT:
        return -ENOMEM                      # a split past vm.max_map_count
    mm.unmap_range(addr, end)
    return 0


def sys_brk(t, brk):
    """brk(2) as Linux's: the new break, or the old one when it cannot
    move. The heap starts at the end of the loaded image (mm.start_brk);
    it shrinks freely, and grows while RLIMIT_DATA allows and a page plus
    the stack's guard gap stay free below the next mapping."""
    mm = t.mm
    brk &= M64
    origbrk = mm.brk
    if brk < mm.start_brk:
        return origbrk
    lim = rlimit(t, RLIMIT_DATA)
    if lim != RLIM_INFINITY and (brk - mm.start_brk) + (mm.end_data - mm.start_data) > lim:
        return origbrk
    newbrk = page_align(brk)
    oldbrk = page_align(origbrk)
    if newbrk == oldbrk:
        mm.brk = brk
        return brk
    if brk <= origbrk:
        if not mm.vmas.overlapping(newbrk, oldbrk):
            return origbrk
    else:
        if newbrk > USER_END:
            return origbrk
        nxt = mm.vmas.find_vma(oldbrk)
        if nxt is not None and newbrk + PAGE_SIZE > vm_start_gap(nxt):
            return origbrk
        if not may_expand_vm(t, mm, VM_READ | VM_WRITE, (newbrk - oldbrk) >> 12):
            return origbrk
    try:
        mm.set_brk(brk)
    except KernelError:
        return origbrk
    return brk


def expand_stack(t, mm, vma, address):
    """expand_downwards: a fault at address below a VM_GROWSDOWN vma grows
    it down to the page of address, within RLIMIT_STACK, RLIMIT_AS, above
    mmap_min_addr and keeping the guard gap above the mapping below (an
    accessible one). True when it grew."""
    address &= ~(PAGE_SIZE - 1)
    if address < MMAP_MIN_ADDR or not vma.flags & VM_GROWSDOWN or address >= vma.start:
        return False
    vmas = mm.vmas
    i = vmas.index(vma)
    prev = vmas.vmas[i - 1] if i > 0 else None
    if prev is not None:
        if address < prev.end:
            return False
        if not prev.flags & VM_GROWSDOWN and prev.flags & VM_ACCESS and \
                address - prev.end < STACK_GUARD_GAP:
            return False
    if vma.end - address > rlimit(t, RLIMIT_STACK):
        return False
    if not may_expand_vm(t, mm, vma.flags, (vma.start - address) >> 12):
        return False
    vma.start = address
    vmas.moved(vma)
    mm.vma_cache = NO_VMA
    mm.update_hiwater()
    return True
