# Virtual memory areas (Linux's struct vm_area_struct): one contiguous range
# [start, end) of a process's address space with one protection and one
# backing (anonymous, SharedAnon, or a file: MappedFile, whose VMAs are on
# the file's mapping.i_mmap). A process's VMAs are kept in a list sorted by
# start address, never overlapping, with a parallel list of start addresses
# for binary search (O(log n) lookup; MicroPython has no bisect module).

from kernel_py.lib.bisect import bisect_right
from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.cpu import _PAGE_NX, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER
from kernel_py.mm.types import (
    VM_EXEC, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE, VMFLAG_NAMES,
)

# mmap/mprotect arguments (include/uapi/asm-generic/mman-common.h)
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MS_ASYNC = 1
MS_INVALIDATE = 2
MS_SYNC = 4
MS_NAMES = (("async", MS_ASYNC), ("invalidate", MS_INVALIDATE), ("sync", MS_SYNC))

# -- what the memory system calls add (issue 14; mm/vm/mmap.py, mremap.py,
# madvise.py): the rest of mmap's flags (uapi asm-generic/mman-common.h,
# asm-generic/mman.h, x86's MAP_32BIT), with Linux's values; the vm_flags
# they and madvise set are mm/types.py's
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0f
MAP_32BIT = 0x40
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000
MAP_HUGE_2MB = 21 << 26
MAP_HUGE_1GB = 30 << 26
# what MAP_SHARED accepts and ignores, MAP_SHARED_VALIDATE refuses beyond (linux/mman.h)
LEGACY_MAP_MASK = (MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE |
                   MAP_EXECUTABLE | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED |
                   MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB |
                   MAP_32BIT | MAP_HUGE_2MB | MAP_HUGE_1GB)
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000


def prot_to_vm(prot):
    return (prot & 7) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC


def parse_prot(text):
    """'rw', 'r', 'rx', 'rwx', 'w', 'none', '---', 'r-x' -> PROT_* bits, or None."""
    if text in ("none", "---", "-"):
        return PROT_NONE
    prot = 0
    for ch in text:
        bit = {"r": PROT_READ, "w": PROT_WRITE, "x": PROT_EXEC}.get(ch)
        if bit is None:
            if ch == "-":
                continue
            return None
        if prot & bit:
            return None
        prot |= bit
    if not prot:
        return None
    if prot & PROT_WRITE:
        prot |= PROT_READ           # x86 cannot map write-only
    return prot


def pte_bits(flags):
    """Leaf bits of a present page in a VMA with these flags, read-only
    (write access is added per page: fresh anon frames and shared pages)."""
    b = _PAGE_PRESENT | _PAGE_USER
    if not flags & VM_EXEC:
        b |= _PAGE_NX
    return b


SHM_UNSIZED = 1 << 52                   # a SharedAnon without a size (the console's mmap): no end


class SharedAnon:
    """The backing of a MAP_SHARED|MAP_ANONYMOUS mapping (Linux: a shmem file
    on /dev/zero): page offset -> frame (or swap entry | SHM_SWAPPED once
    reclaim wrote it out, types.SHM_SWAPPED), kept while any VMA uses it; every process mapping
    the same offset maps the same frame. The object holds one reference on
    each of its frames (the swap slot's one count when swapped), and knows
    its VMAs (`vmas`, like a file's i_mmap: reclaim finds the PTEs there)."""

    next_ino = 1

    def __init__(self):
        self.pages = {}
        self.users = 0
        self.vmas = []
        self.ino = SharedAnon.next_ino
        self.size = SHM_UNSIZED         # pages, as the shmem file's i_size (mmap(2) sets it)
        SharedAnon.next_ino += 1

    def attach(self, vma):
        self.users += 1
        self.vmas.append(vma)

    def detach(self, vma):
        """A VMA goes; True when it was the last."""
        self.users -= 1
        self.vmas.remove(vma)
        return self.users <= 0

    def va_of(self, vma, off):
        """The address of page offset off in vma, or None."""
        if off < vma.pgoff or off >= vma.pgoff + ((vma.end - vma.start) >> 12):
            return None
        return vma.start + ((off - vma.pgoff) << 12)


class MappedFile:
    """The open file behind file-backed mappings (Linux's struct file): the
    path it was opened by, its inode pinned in the VFS (not evicted, not
    unlinkable) and the inode's page cache (mapping). References: the
    opener's (dropped with fput once mmap returns) and one per VMA mapping
    it (split pieces and fork copies included); the pin goes with the last."""

    def __init__(self, vfs, path):
        try:
            fs, ino = vfs.get_file(path)
        except KernelError as exc:
            if exc.errname == "EISDIR":     # a directory has no mmap file operation
                raise KernelError("ENODEV", "%s is a directory: it cannot be mapped" % path)
            raise
        self.vfs = vfs
        self.path = path
        self.fs = fs
        self.ino = ino
        self.mapping = ino.mapping
        self.count = 1
        self.dev = "%02x:%02x" % (fs.dev.major, fs.dev.minor)

    @property
    def read_only(self):
        return self.fs.read_only

    def get(self):
        self.count += 1

    def fput(self):
        self.count -= 1
        if self.count == 0:
            self.vfs.put_file(self.ino)

    def scan_refs(self, out):
        """vm_file's inode (kmemleak's walk, fs/file_table.py): all that
        holds an unlinked file or a memfd once its descriptors are closed."""
        self.ino.scan_refs(out)


class VMA:
    def __init__(self, start, end, flags, name="", shm=None, pgoff=0, file=None, mm=None):
        self.start = start
        self.end = end
        self.flags = flags
        self.name = name            # "[heap]", "[stack]" or ""
        self.shm = shm              # SharedAnon for shared anonymous mappings
        self.pgoff = pgoff          # page offset into the backing (shm or file)
        self.file = file            # MappedFile for file-backed mappings
        self.mm = mm                # the owner (file VMAs: found from the file's i_mmap)
        # Linux's vma_is_anonymous() is !vm_ops: anything else takes the
        # fault handler's rare path (one identity test on the hot path)
        self.vm_ops = shm if shm is not None else file
        self.set_flags(flags)

    def set_flags(self, flags):
        self.flags = flags
        self.prot_bits = pte_bits(flags)            # present, read-only
        self.rw_bits = self.prot_bits | _PAGE_RW    # present, writable

    @property
    def size(self):
        return self.end - self.start

    def is_shared(self):
        return self.flags & VM_SHARED != 0

    def is_anon(self):
        return self.file is None

    def offset_of(self, va):
        """Page offset of va in the backing."""
        return self.pgoff + ((va - self.start) >> 12)

    def copy(self, start=None, end=None, mm=None):
        """A VMA like this one over [start, end) (a split piece, or a fork
        copy owned by mm)."""
        s = self.start if start is None else start
        e = self.end if end is None else end
        v = VMA(s, e, self.flags, self.name, self.shm, self.pgoff + ((s - self.start) >> 12),
                self.file, self.mm if mm is None else mm)
        if v.shm is not None:
            v.shm.attach(v)
        v.link_file()
        return v

    def link_file(self):
        """A new file VMA: one more reference on the file, and in the
        mapping's i_mmap (where truncate and writeback find its PTEs)."""
        f = self.file
        if f is not None:
            f.get()
            f.mapping.i_mmap.append(self)

    def unlink_file(self):
        f = self.file
        if f is not None:
            f.mapping.i_mmap.remove(self)
            f.fput()

    def file_index_range(self, lo, hi):
        """[va, va_end) of this VMA holding file pages lo <= index < hi."""
        first = max(lo, self.pgoff)
        last = min(hi, self.pgoff + ((self.end - self.start) >> 12))
        if first >= last:
            return None
        return (self.start + ((first - self.pgoff) << 12),
                self.start + ((last - self.pgoff) << 12))

    def can_merge(self, other):
        """other follows self directly and could be one VMA with it."""
        if self.end != other.start or self.flags != other.flags or self.name != other.name:
            return False
        if self.file is not None or other.file is not None:
            return False
        if self.shm is not other.shm:
            return False
        return self.shm is None or other.pgoff == self.pgoff + ((self.end - self.start) >> 12)

    def perms(self):
        f = self.flags
        return "%s%s%s%s" % ("r" if f & VM_READ else "-", "w" if f & VM_WRITE else "-",
                             "x" if f & VM_EXEC else "-", "s" if f & VM_SHARED else "p")

    def vmflags(self):
        return " ".join(name for bit, name in VMFLAG_NAMES if self.flags & bit)

    def __repr__(self):
        return "<VMA %x-%x %s %s>" % (self.start, self.end, self.perms(), self.name)


# A VMA that contains nothing: the initial value of a VMA cache.
NO_VMA = VMA(0, 0, 0)


class VmaList:
    """The VMAs of one mm, sorted by start and disjoint."""

    def __init__(self):
        self.vmas = []
        self.starts = []

    def __len__(self):
        return len(self.vmas)

    def __iter__(self):
        return iter(self.vmas)

    def _upper(self, addr):
        """Index of the first VMA starting above addr."""
        return bisect_right(self.starts, addr)

    def find(self, addr):
        """The VMA containing addr, or None."""
        i = self._upper(addr) - 1
        if i >= 0:
            v = self.vmas[i]
            if addr < v.end:
                return v
        return None

    def find_vma(self, addr):
        """Linux's find_vma: the first VMA with end > addr (may not contain it)."""
        i = self.first_index(addr)
        return self.vmas[i] if i < len(self.vmas) else None

    def first_index(self, addr):
        """Index of the first VMA with end > addr."""
        i = self._upper(addr) - 1
        if i >= 0 and addr < self.vmas[i].end:
            return i
        return i + 1

    def overlapping(self, start, end):
        """[VMA] intersecting [start, end), in order."""
        out = []
        i = self.first_index(start)
        vmas = self.vmas
        while i < len(vmas) and vmas[i].start < end:
            out.append(vmas[i])
            i += 1
        return out

    def index(self, vma):
        i = self._upper(vma.start) - 1
        if i < 0 or self.vmas[i] is not vma:
            raise ValueError("VMA not in the list")
        return i

    def insert(self, vma):
        i = self._upper(vma.start)
        if (i > 0 and self.vmas[i - 1].end > vma.start) or (
                i < len(self.vmas) and self.vmas[i].start < vma.end):
            raise ValueError("VMA %r overlaps" % (vma,))
        self.vmas.insert(i, vma)
        self.starts.insert(i, vma.start)
        return i

    def remove(self, vma):
        i = self.index(vma)
        del self.vmas[i]
        del self.starts[i]

    def moved(self, vma):
        """vma.start changed in place (it stays in the same slot)."""
        i = self.vmas.index(vma)
        self.starts[i] = vma.start

    def total_pages(self):
        n = 0
        for v in self.vmas:
            n += (v.end - v.start) >> 12
        return n
