# The memory manager's shared layouts and flags, each defined here once and
# imported by every user (Linux: include/linux/mm_types.h, page-flags.h,
# mm.h's VM_ flags, asm/pgtable_types.h's software bits, swapops.h). The
# bits the hardware defines (PTE bits, #PF error code) are in
# arch/x86/cpu.py; this file holds what the kernel builds on them.

from kernel_py.arch.x86.cpu import PAGE_SIZE, _PAGE_GLOBAL, small

# --- the page record (mem_map, mm/page/mem_map.py) ----------------------------
#
# One 16-byte record per page frame, kept in physical memory (as Linux's
# struct page array is), so its cost is RAM, not Python heap.
#
# Record of frame `pfn` at  base + pfn * 16  (little-endian):
#
#   off size field
#    0   u16  flags   bits 0-11: PG_* flags below; bits 12-15: owner kind (KIND_*)
#    2   u8   order   buddy order of a free block head or of an allocated head
#    3   u8   aux     owner's byte (slab: cache id)
#    4   u32  count   refcount; slab pages: u16 inuse (4) + u16 first free index (6)
#    8   u32  next    next pfn on a pfn-linked list (NIL = none)
#   12   u32  prev    previous pfn on that list        (NIL = none); compound
#                     tails keep their head's pfn in `next`
#
# An all-zero record (KIND_NONE, no flags) is a frame that is no block's head:
# a hole, a reserved or memblock frame, or a frame inside a free or allocated
# block. Boot zero-fills the whole array with hw.fill and then writes only the
# heads of the max-order free blocks, so boot cost does not grow per frame.
#
# Invariants the buddy keeps:
#   free block head:       PG_buddy, KIND_FREE, order = block order, linked
#   allocated block head:  kind not NONE/FREE, no PG_buddy, order = block order
#   __GFP_COMP tails:      PG_tail, next = head pfn (other tails stay zero)

RECORD_SIZE = 16
RECORD_SHIFT = 4
NIL = small(0xFFFFFFFF)         # a small int in the guest (see cpu.small)

OFF_FLAGS = 0
OFF_ORDER = 2
OFF_AUX = 3
OFF_COUNT = 4
OFF_INUSE = 4
OFF_FREEIDX = 6
OFF_NEXT = 8
OFF_PREV = 12

# PG_* flags (bits 0-11 of `flags`), named as Linux names them.
PG_buddy = 1 << 0
PG_head = 1 << 1
PG_tail = 1 << 2
PG_reserved = 1 << 3
PG_dirty = 1 << 4
PG_referenced = 1 << 5
PG_active = 1 << 6
PG_lru = 1 << 7
PG_swapcache = 1 << 8         # an anon page still in the swap cache (mm/reclaim/swap_state.py)
PG_uptodate = 1 << 9
PG_writeback = 1 << 10
PG_locked = 1 << 11
PG_FLAGS_MASK = 0x0FFF
PG_NAMES = ("buddy", "head", "tail", "reserved", "dirty", "referenced",
            "active", "lru", "swapcache", "uptodate", "writeback", "locked")

# Owner kind (bits 12-15 of `flags`).
KIND_SHIFT = 12
KIND_MASK = 0xF000
KIND_NONE = 0
KIND_FREE = 1
KIND_KERNEL = 2
KIND_SLAB = 3
KIND_PAGETABLE = 4
KIND_ANON = 5
KIND_PAGECACHE = 6
KIND_VMALLOC = 7
KIND_MEMMAP = 8
KIND_ZERO = 9
KIND_SWAPCACHE = 10
KIND_NAMES = ("none", "free", "kernel", "slab", "pagetable", "anon",
              "pagecache", "vmalloc", "memmap", "zero", "swapcache",
              "kind11", "kind12", "kind13", "kind14", "kind15")

FREE_HEAD_FLAGS = PG_buddy | (KIND_FREE << KIND_SHIFT)
ANON_FLAGS = KIND_ANON << KIND_SHIFT
PAGECACHE_FLAGS = KIND_PAGECACHE << KIND_SHIFT

# --- vm_flags of a VMA, with Linux's values (include/linux/mm.h) --------------

VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_SEQ_READ = 0x00008000        # MADV_SEQUENTIAL
VM_RAND_READ = 0x00010000       # MADV_RANDOM
VM_DONTCOPY = 0x00020000        # MADV_DONTFORK: not in a fork's child
VM_DONTEXPAND = 0x00040000      # mremap may not grow it
VM_NORESERVE = 0x00200000       # MAP_NORESERVE
VM_WIPEONFORK = 0x02000000      # MADV_WIPEONFORK: empty in a fork's child
VM_DONTDUMP = 0x04000000        # MADV_DONTDUMP
VM_HUGEPAGE = 0x20000000        # MADV_HUGEPAGE
VM_NOHUGEPAGE = 0x40000000      # MADV_NOHUGEPAGE
VM_MERGEABLE = 0x80000000       # MADV_MERGEABLE (KSM: nothing merges here)
VM_STACK = VM_GROWSDOWN         # x86: the stack grows down
VM_ACCESS = VM_READ | VM_WRITE | VM_EXEC

# Linux's /proc/<pid>/smaps VmFlags mnemonics
VMFLAG_NAMES = ((VM_READ, "rd"), (VM_WRITE, "wr"), (VM_EXEC, "ex"), (VM_SHARED, "sh"),
                (VM_MAYREAD, "mr"), (VM_MAYWRITE, "mw"), (VM_MAYEXEC, "me"),
                (VM_MAYSHARE, "ms"), (VM_GROWSDOWN, "gd"),
                (VM_SEQ_READ, "sr"), (VM_RAND_READ, "rr"), (VM_DONTCOPY, "dc"),
                (VM_DONTEXPAND, "de"), (VM_NORESERVE, "nr"), (VM_WIPEONFORK, "wf"),
                (VM_DONTDUMP, "dd"), (VM_HUGEPAGE, "hg"), (VM_NOHUGEPAGE, "nh"),
                (VM_MERGEABLE, "mg"))

# --- user PTEs (4 KiB only) ---------------------------------------------------
#
#   present      pa | P | US | [RW] | [NX] (+ A/D set by the MMU)
#   PROT_NONE    pa | _PAGE_PROTNONE | US   (P clear: the frame stays owned)
#   empty        0
#   swapped out  a swap entry (below: P clear, _PAGE_PROTNONE clear, type/offset)
#
# A non-present PTE that still holds its frame is a PROT_NONE page: Linux's
# _PAGE_PROTNONE reuses the global bit, which means nothing when P = 0.

_PAGE_PROTNONE = _PAGE_GLOBAL

# --- swap entries (Linux include/linux/swapops.h, arch/x86 pgtable_64.h) ------
#
# Swap entry in a PTE, x86-64 as Linux encodes it:
#
#   bit  63..59      58..9               8   7..5   4..1   0
#        TYPE (5)    ~OFFSET (50 bits)   0   0      0      P=0
#
#   - P (bit 0) is clear: the MMU never uses the entry, every access faults
#     (the fault handler recognises the entry: non-zero, P clear, and bit 8,
#     _PAGE_PROTNONE, clear);
#   - bit 8 stays clear so a swap entry is never mistaken for a PROT_NONE
#     page; bits 5..7 (A, D, PS) stay clear (hardware may set A/D on
#     non-present entries: an erratum Linux avoids the same way);
#   - the offset is stored inverted (L1TF mitigation: the would-be physical
#     address bits of a non-present entry point far above RAM);
#   - type 0 (the only type here so far) keeps the value below 2**59, a
#     small int in the guest VM.

SWP_TYPE_BITS = 5
SWP_TYPE_SHIFT = 64 - SWP_TYPE_BITS         # 59
SWP_OFFSET_FIRST_BIT = 9                    # _PAGE_BIT_PROTNONE + 1
SWP_OFFSET_BITS = SWP_TYPE_SHIFT - SWP_OFFSET_FIRST_BIT    # 50
SWP_OFFSET_MASK = (1 << SWP_OFFSET_BITS) - 1
MAX_SWAPFILES = 1 << SWP_TYPE_BITS


def swp_entry(type_, offset):
    """The PTE value of swap entry (type, offset) (Linux __swp_entry)."""
    return ((~offset & SWP_OFFSET_MASK) << SWP_OFFSET_FIRST_BIT) | (type_ << SWP_TYPE_SHIFT)


def swp_type(e):
    return e >> SWP_TYPE_SHIFT


def swp_offset(e):
    return ~(e >> SWP_OFFSET_FIRST_BIT) & SWP_OFFSET_MASK


def is_swap_pte(e):
    """Non-zero, not present, not a PROT_NONE page: a swap entry."""
    return e != 0 and not e & 1 and not e & _PAGE_PROTNONE


# The swap map: one byte per slot of a swap area (mm/reclaim/swapfile.py),
# its use count (the PTEs and shmem index slots holding the entry) plus
# SWAP_HAS_CACHE while a page read back in is still in the swap cache, or
# SWAP_MAP_BAD for the header and bad pages. A slot is free when its byte is 0.
SWAP_MAP_MAX = 0x3e             # Linux's highest count kept in the map byte
SWAP_MAP_BAD = 0x3f
SWAP_HAS_CACHE = 0x40           # the slot's page is in the swap cache
SWAP_COUNT_MASK = 0x3f

# A SharedAnon index slot (mm/vm/vma.py) holding a swap entry rather than a
# frame: the entry with bit 0 set (frames are page aligned), as Linux's
# shmem keeps swap entries in its page cache as xarray value entries
# (xa_mk_value).
SHM_SWAPPED = 1

# --- the reverse map's key (mm/reclaim/rmap.py) -------------------------------
#
# The word a private anonymous frame has in the anon rmap's page_ext:
#     key = (mm.rid << RID_SHIFT) | (va >> 12)
# naming the PTE that mapped it first (rid < 2**25, va >> 12 < 2**35: a
# small int in the guest VM); 0 for any other frame. A shared anonymous
# frame's word is
#     SHM_KEY | (object ino << RID_SHIFT) | page offset
# A page-cache frame's owner (mm/filemap/filemap.py's rmap dict) is
#     (mapping id << MAPPING_SHIFT) | index

RID_SHIFT = 36
VPN_MASK = (1 << RID_SHIFT) - 1
SHM_KEY = 1 << 61               # above any rid: a shared anonymous frame's word
MAPPING_SHIFT = 32
INDEX_MASK = (1 << MAPPING_SHIFT) - 1
MAX_FILE_PAGES = 1 << MAPPING_SHIFT     # page-cache indices are 32-bit

# --- the memory system calls' arithmetic (include/linux/mm.h's PAGE_ALIGN) ----

M64 = (1 << 64) - 1             # a register read as unsigned (addresses, lengths)


def page_align(n):
    """PAGE_ALIGN: n rounded up to the next page boundary."""
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
