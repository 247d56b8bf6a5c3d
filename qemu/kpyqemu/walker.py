"""Host-side x86-64 page-table walker.

Walks 4-level page tables found in a machine's physical memory, the way the
MMU does, without trusting anything the guest kernel says about them.

    from kpyqemu.walker import PageWalker, BufferReader
    w = PageWalker(cr3, read_phys)          # read_phys(pa, n) -> bytes
    t = w.translate(va)                      # Translation or None
    for m in w.mappings():                   # every leaf mapping, VA order
        print(hex(m.va), hex(m.pa), m.size, m.flag_string(), m.level)

Entries are decoded with the construct structure `PTE` (the 64-bit entry of
SDM Vol. 3A, 4.5, Tables 4-14..4-20). Decoded flag sets are cached by their
flag bits, and whole 4 KiB tables are read once and cached, so enumerating a
multi-GiB direct map plus thousands of 4 KiB pages takes well under a second.

Levels follow Linux's numbering (enum pg_level): 1 = 4 KiB page (PTE),
2 = 2 MiB page (PDE with PS), 3 = 1 GiB page (PDPTE with PS), 4 = PML4.

`Mapping.flags` are the *effective* permissions the MMU enforces for the
page, as x86 PTE bits: _PAGE_RW / _PAGE_USER only if every level grants them,
_PAGE_NX if any level sets it; PWT/PCD/ACCESSED/DIRTY/GLOBAL come from the
leaf entry, and _PAGE_PSE marks a huge page.
"""

import struct
from functools import lru_cache
from typing import Callable, Iterator, List, NamedTuple, Optional

from construct import BitsInteger, BitStruct, ByteSwapped, Flag, Int64ul, Array

from kernel_py.arch.x86.cpu import (
    LEVEL_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    PTE_ADDR_MASK,
    PTE_FLAGS_MASK,
    PTRS_PER_TABLE,
    PUD_SIZE,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_USER,
    canonical,
)

# --------------------------------------------------------------------------
# Entry formats (construct)

#: One paging-structure entry, 64-bit little-endian. BitStruct reads bits
#: most-significant first, so the 8 bytes are swapped to put bit 63 first.
#: For a 4 KiB PTE `ps` is the PAT bit; for a 2 MiB / 1 GiB leaf, PAT is
#: bit 12 (the low bit of `pfn`) and the frame is `pfn` with the low 9 / 18
#: bits cleared.
PTE = ByteSwapped(
    BitStruct(
        "nx" / Flag,                   # 63: execute-disable (EFER.NXE)
        "pkey" / BitsInteger(4),       # 62:59: protection key (CR4.PKE)
        "avail_hi" / BitsInteger(7),   # 58:52: ignored by hardware
        "pfn" / BitsInteger(40),       # 51:12: physical frame number
        "avail" / BitsInteger(3),      # 11:9: ignored by hardware
        "global_" / Flag,              # 8
        "ps" / Flag,                   # 7: page size (PAT in a 4 KiB PTE)
        "dirty" / Flag,                # 6
        "accessed" / Flag,             # 5
        "pcd" / Flag,                  # 4
        "pwt" / Flag,                  # 3
        "user" / Flag,                 # 2
        "rw" / Flag,                   # 1
        "present" / Flag,              # 0
    )
)

#: A whole 4 KiB paging structure: 512 entries.
PAGE_TABLE = Array(PTRS_PER_TABLE, Int64ul)

_TABLE_FMT = struct.Struct("<%dQ" % PTRS_PER_TABLE)
_TABLE_BYTES = PTRS_PER_TABLE * 8

LEVEL_4K, LEVEL_2M, LEVEL_1G, LEVEL_PML4 = 1, 2, 3, 4
LEVEL_NAMES = {4: "pml4", 3: "pdpt", 2: "pd", 1: "pt"}
LEVEL_PAGE_SIZE = {1: PAGE_SIZE, 2: PMD_SIZE, 3: PUD_SIZE}
_LEVEL_SHIFT = LEVEL_SHIFT                     # indexed by level, 4 = PML4

_LEAF_KEEP = _PAGE_PWT | _PAGE_PCD | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL
_PAT_LARGE = 1 << 12   # PAT bit of a 2 MiB / 1 GiB leaf


def build_pte(pa=0, *, present=True, rw=False, user=False, nx=False, ps=False,
              global_=False, accessed=False, dirty=False, pcd=False, pwt=False):
    """Encode an entry with the construct structure (for tests and tools)."""
    return PTE.build(dict(
        nx=nx, pkey=0, avail_hi=0, pfn=(pa & PTE_ADDR_MASK) >> 12, avail=0,
        global_=global_, ps=ps, dirty=dirty, accessed=accessed, pcd=pcd,
        pwt=pwt, user=user, rw=rw, present=present,
    ))


@lru_cache(maxsize=4096)
def _decode_flags(flag_bits):
    """Decode the non-address bits of an entry (cached: few distinct sets)."""
    return PTE.parse(flag_bits.to_bytes(8, "little"))


def decode_pte(raw):
    """Full construct decoding of one raw 64-bit entry (a Container)."""
    return PTE.parse(raw.to_bytes(8, "little"))


def flag_string(flags, size=PAGE_SIZE):
    """Linux ptdump-style flags: 'USR RW NX GLB 2M' etc."""
    parts = [
        "USR" if flags & _PAGE_USER else "   ",
        "RW" if flags & _PAGE_RW else "ro",
        "NX" if flags & _PAGE_NX else "x ",
        "GLB" if flags & _PAGE_GLOBAL else "   ",
        "PCD" if flags & _PAGE_PCD else "   ",
        "PWT" if flags & _PAGE_PWT else "   ",
    ]
    parts.append({PAGE_SIZE: "4K", PMD_SIZE: "2M", PUD_SIZE: "1G"}.get(size, "?"))
    return " ".join(parts)


class Mapping(NamedTuple):
    """One leaf mapping: a page (or a coalesced run of pages) of `size` bytes."""

    va: int
    pa: int
    size: int
    flags: int   # effective permissions + leaf attributes (see module doc)
    level: int   # 1 = 4K, 2 = 2M, 3 = 1G
    entry: int   # the raw leaf entry (of the first page, if coalesced)

    @property
    def end(self):
        return self.va + self.size

    @property
    def writable(self):
        return bool(self.flags & _PAGE_RW)

    @property
    def user(self):
        return bool(self.flags & _PAGE_USER)

    @property
    def nx(self):
        return bool(self.flags & _PAGE_NX)

    @property
    def executable(self):
        return not self.flags & _PAGE_NX

    @property
    def global_(self):
        return bool(self.flags & _PAGE_GLOBAL)

    @property
    def pte(self):
        """The leaf entry decoded with the construct structure."""
        return decode_pte(self.entry)

    def flag_string(self):
        return flag_string(self.flags, LEVEL_PAGE_SIZE.get(self.level, 0))

    def __repr__(self):
        return "Mapping(va=%#x, pa=%#x, size=%#x, %s, level=%d)" % (
            self.va, self.pa, self.size, self.flag_string().split(), self.level)


class Translation(NamedTuple):
    """Result of translating one virtual address."""

    va: int
    pa: int          # the translated physical address (page pa + offset)
    size: int        # page size
    flags: int       # effective flags, as Mapping.flags
    level: int
    entry: int
    page: Mapping    # the whole page containing va

    @property
    def writable(self):
        return bool(self.flags & _PAGE_RW)

    @property
    def user(self):
        return bool(self.flags & _PAGE_USER)

    @property
    def nx(self):
        return bool(self.flags & _PAGE_NX)


class WalkStep(NamedTuple):
    level: int       # 4 = PML4 ... 1 = PT
    table_pa: int
    index: int
    entry: int

    def __repr__(self):
        return "WalkStep(%s[%d] @ %#x = %#018x)" % (
            LEVEL_NAMES[self.level], self.index, self.table_pa, self.entry)


class Anomaly(NamedTuple):
    """Something the MMU would reject (reserved-bit #PF) or that looks wrong."""

    va: int
    level: int
    entry: int
    what: str


class BufferReader:
    """read_phys over a bytes-like object holding physical memory from `base`."""

    def __init__(self, buf, base=0):
        self.buf = memoryview(buf)
        self.base = base

    def __call__(self, pa, n):
        off = pa - self.base
        if off < 0 or off + n > len(self.buf):
            raise ValueError("physical range %#x+%#x outside buffer" % (pa, n))
        return bytes(self.buf[off:off + n])


class PageWalker:
    """Walks the 4-level tables rooted at `cr3` in physical memory.

    read_phys(pa, n) -> bytes must return n bytes of physical memory. Tables
    are read whole (4 KiB) and cached for the life of the walker: create a new
    walker (or call `flush()`) after the guest changes its tables.
    """

    def __init__(self, cr3: int, read_phys: Callable[[int, int], bytes], *,
                 nxe: bool = True):
        self.cr3 = cr3
        self.root = cr3 & PTE_ADDR_MASK
        self.read_phys = read_phys
        self.nxe = nxe
        self._tables = {}
        self.anomalies: List[Anomaly] = []

    # -- tables ------------------------------------------------------------
    def flush(self):
        self._tables.clear()
        self.anomalies = []

    def table(self, pa):
        """The 512 raw entries of the table at pa (cached)."""
        t = self._tables.get(pa)
        if t is None:
            data = self.read_phys(pa, _TABLE_BYTES)
            if len(data) != _TABLE_BYTES:
                raise ValueError("short read of table at %#x" % pa)
            t = _TABLE_FMT.unpack(data)
            self._tables[pa] = t
        return t

    @property
    def tables_read(self):
        return len(self._tables)

    # -- single address ----------------------------------------------------
    def walk(self, va) -> List[WalkStep]:
        """The entries the MMU reads for va, top-down, until a leaf or a
        not-present entry (the last step)."""
        va = canonical(va)
        steps = []
        table_pa = self.root
        for level in (4, 3, 2, 1):
            idx = (va >> _LEVEL_SHIFT[level]) & (PTRS_PER_TABLE - 1)
            e = self.table(table_pa)[idx]
            steps.append(WalkStep(level, table_pa, idx, e))
            if not e & _PAGE_PRESENT:
                break
            if level > 1 and e & _PAGE_PSE:   # leaf (or reserved, in a PML4E)
                break
            table_pa = e & PTE_ADDR_MASK
        return steps

    def lookup(self, va) -> Optional[Mapping]:
        """The page mapping va, or None if it is not mapped."""
        va = canonical(va)
        steps = self.walk(va)
        rw = user = True
        nx = False
        for s in steps:
            e = s.entry
            if not e & _PAGE_PRESENT:
                return None
            if s.level == 4 and e & _PAGE_PSE:
                self._anomaly(va, 4, e, "PS set in a PML4 entry (reserved)")
                return None
            rw = rw and bool(e & _PAGE_RW)
            user = user and bool(e & _PAGE_USER)
            nx = nx or bool(e & _PAGE_NX)
        level = steps[-1].level    # PT -> 4K (1), PD -> 2M (2), PDPT -> 1G (3)
        size = LEVEL_PAGE_SIZE[level]
        return self._leaf(va & ~(size - 1) & 0xFFFFFFFFFFFFFFFF, steps[-1].entry,
                          level, rw, user, nx)

    def translate(self, va) -> Optional[Translation]:
        """va -> Translation(pa, size, flags, ...), or None if not mapped."""
        m = self.lookup(va)
        if m is None:
            return None
        va = canonical(va)
        return Translation(va, m.pa + (va - m.va), m.size, m.flags, m.level,
                           m.entry, m)

    # -- enumeration -------------------------------------------------------
    def mappings(self, start=0, end=1 << 64) -> Iterator[Mapping]:
        """Every leaf mapping overlapping [start, end) (canonical addresses,
        end exclusive), in increasing VA order. Subtrees outside the range
        are not read."""
        start &= 0xFFFFFFFFFFFFFFFF
        yield from self._scan(self.root, 4, 0, start, end, True, True, False)

    def _scan(self, table_pa, level, base, start, end, rw, user, nx):
        shift = _LEVEL_SHIFT[level]
        span = 1 << shift
        entries = self.table(table_pa)
        for idx in range(PTRS_PER_TABLE):
            e = entries[idx]
            if not e & _PAGE_PRESENT:
                continue
            va = base + (idx << shift)
            if level == 4:
                va = canonical(va)
            if va + span <= start or va >= end:
                continue
            e_rw = rw and bool(e & _PAGE_RW)
            e_user = user and bool(e & _PAGE_USER)
            e_nx = nx or bool(e & _PAGE_NX)
            if level == 1:
                yield self._leaf(va, e, 1, e_rw, e_user, e_nx)
            elif e & _PAGE_PSE:
                if level == 4:
                    self._anomaly(va, 4, e, "PS set in a PML4 entry (reserved)")
                    continue
                yield self._leaf(va, e, level, e_rw, e_user, e_nx)
            else:
                yield from self._scan(e & PTE_ADDR_MASK, level - 1, va,
                                      start, end, e_rw, e_user, e_nx)

    def _leaf(self, va, e, level, rw, user, nx):
        d = _decode_flags(e & PTE_FLAGS_MASK)
        size = LEVEL_PAGE_SIZE[level]
        pa = e & PTE_ADDR_MASK
        if level > 1:
            if pa & _PAT_LARGE:
                pa &= ~_PAT_LARGE
            if pa & (size - 1):
                self._anomaly(va, level, e,
                              "huge page frame not %#x-aligned (reserved bits)" % size)
                pa &= ~(size - 1)
        flags = _PAGE_PRESENT
        if rw:
            flags |= _PAGE_RW
        if user:
            flags |= _PAGE_USER
        if nx and self.nxe:
            flags |= _PAGE_NX
        if d.global_:
            flags |= _PAGE_GLOBAL
        if d.dirty:
            flags |= _PAGE_DIRTY
        if d.accessed:
            flags |= _PAGE_ACCESSED
        if d.pcd:
            flags |= _PAGE_PCD
        if d.pwt:
            flags |= _PAGE_PWT
        if level > 1:
            flags |= _PAGE_PSE
        return Mapping(va, pa, size, flags, level, e)

    def _anomaly(self, va, level, e, what):
        self.anomalies.append(Anomaly(va, level, e, what))

    # -- conveniences --------------------------------------------------------
    def aliases(self, pa, start=0, end=1 << 64) -> List[int]:
        """Every virtual address that maps physical address pa."""
        out = []
        for m in self.mappings(start, end):
            if m.pa <= pa < m.pa + m.size:
                out.append(m.va + (pa - m.pa))
        return out

    def table_frames(self, start=0, end=1 << 64) -> List[int]:
        """Physical addresses of every paging structure reachable from CR3
        (the tables themselves, not the pages they map)."""
        seen = [self.root]
        todo = [(self.root, 4, 0)]
        while todo:
            table_pa, level, base = todo.pop()
            if level == 1:
                continue
            shift = _LEVEL_SHIFT[level]
            for idx, e in enumerate(self.table(table_pa)):
                if not e & _PAGE_PRESENT or e & _PAGE_PSE:
                    continue
                va = base + (idx << shift)
                if level == 4:
                    va = canonical(va)
                if va + (1 << shift) <= start or va >= end:
                    continue
                child = e & PTE_ADDR_MASK
                seen.append(child)
                todo.append((child, level - 1, va))
        return seen


def coalesce(mappings, ignore=_PAGE_ACCESSED | _PAGE_DIRTY) -> List[Mapping]:
    """Merge runs of mappings contiguous in VA and PA with equal flags
    (except the `ignore` bits: by default accessed/dirty, which the CPU sets
    as it goes) and page size, as ptdump prints them. The merged Mapping's
    size is the run's length; flags and entry are its first page's."""
    out = []
    cur = None
    keep = ~ignore
    for m in mappings:
        if (cur is not None and m.va == cur.va + cur.size
                and m.pa == cur.pa + cur.size
                and m.flags & keep == cur.flags & keep
                and m.level == cur.level):
            cur = cur._replace(size=cur.size + m.size)
        else:
            if cur is not None:
                out.append(cur)
            cur = m
    if cur is not None:
        out.append(cur)
    return out


def format_mappings(mappings) -> str:
    """Human-readable table (one line per mapping), ptdump style."""
    lines = []
    for m in mappings:
        lines.append("0x%016x-0x%016x -> 0x%012x %10s  %s" % (
            m.va, m.va + m.size, m.pa, _human(m.size), m.flag_string()))
    return "\n".join(lines)


def _human(n):
    for unit, s in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << s and n % (1 << s) == 0:
            return "%d%s" % (n >> s, unit)
    return str(n)
