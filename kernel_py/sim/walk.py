"""The x86-64 4-level page walk (Intel SDM Vol. 3A, 4.5) and the access-
rights rules (4.6), as pure functions over a `read64(pa)` callable.

Side-effect free: setting accessed/dirty bits and caching the result is the
caller's business (the simulated MMU does both; a host tool that walks a live
guest's tables over QMP does neither), so both can share this code.
"""

from kernel_py.arch.x86.cpu import (
    LEVEL_SHIFT, PTE_ADDR_MASK, PF_PROT, PF_RSVD,
    _PAGE_PRESENT, _PAGE_PSE, _PAGE_GLOBAL, _PAGE_DIRTY, _PAGE_NX,
)

# Effective rights of a translation, one bit each.
R_WRITE = 1      # R/W = 1 at every level (4.6.1)
R_USER = 2       # U/S = 1 at every level: a user-mode address (4.6.1)
R_EXEC = 4       # XD = 0 at every level, or EFER.NXE = 0 (4.6.2)
R_DIRTY = 8      # the leaf's dirty flag is already set (4.8)
R_GLOBAL = 16    # the leaf's G flag (only meaningful with CR4.PGE, 4.10.2.4)

LEVEL_NAMES = ("PML4E", "PDPTE", "PDE", "PTE")

_ADDR_BITS_52 = (1 << 52) - 1


class Walk:
    """The outcome of one walk.

    entries: [(entry_pa, entry_value)] for each level read, PML4E first.
    fault:   0 if the walk produced a translation; else the error-code bits
             it contributes: 0 (a P flag was 0, 4.7) or PF_RSVD|PF_PROT.
    pa, size, rights: the translation (when fault == 0).
    """

    __slots__ = ("va", "entries", "fault", "pa", "size", "rights")

    def __init__(self, va, entries, fault, pa=None, size=0, rights=0):
        self.va = va
        self.entries = entries
        self.fault = fault
        self.pa = pa
        self.size = size
        self.rights = rights

    @property
    def level(self):
        """Name of the last entry read (the leaf, or where the walk stopped)."""
        return LEVEL_NAMES[len(self.entries) - 1]

    def __repr__(self):
        if self.fault:
            return "<Walk %#x fault=%#x at %s>" % (self.va, self.fault, self.level)
        if self.pa is None:
            return "<Walk %#x not present at %s>" % (self.va, self.level)
        return "<Walk %#x -> %#x size=%#x rights=%#x>" % (
            self.va, self.pa, self.size, self.rights)


def reserved_mask(maxphyaddr=52, nxe=True):
    """Bits reserved in every paging-structure entry (4.5, Tables 4-14..20):
    address bits at and above MAXPHYADDR, and XD when EFER.NXE = 0."""
    mask = _ADDR_BITS_52 & ~((1 << maxphyaddr) - 1)
    if not nxe:
        mask |= _PAGE_NX
    return mask


def walk(read64, cr3, va, nxe=True, rsvd=0):
    """Translate `va` through the tables rooted at `cr3` (4.5.4).

    `rsvd` is reserved_mask(); `nxe` is EFER.NXE. When the walk faults, pa is
    None (fault == 0 means a P flag was 0).
    """
    table = cr3 & PTE_ADDR_MASK
    rw = us = 1
    xd = 0
    entries = []
    for level in range(4):
        shift = LEVEL_SHIFT[4 - level]           # level counts down from the PML4 here
        epa = table + ((va >> shift) & 511) * 8
        e = read64(epa)
        entries.append((epa, e))
        if not e & _PAGE_PRESENT:                 # 4.5.4: P = 0 stops the walk
            return Walk(va, entries, 0)
        bad = e & rsvd
        huge = e & _PAGE_PSE and level < 3
        if huge:
            if level == 0:                        # PS is reserved in a PML4E
                bad |= _PAGE_PSE
            else:                                 # 1 GiB / 2 MiB page: the
                bad |= e & ((1 << shift) - 1) & ~0x1FFF   # address bits below
        if bad:                                   # the page size, bit 12 = PAT
            return Walk(va, entries, PF_RSVD | PF_PROT)
        rw &= e >> 1                              # _PAGE_RW, ANDed (4.6.1)
        us &= e >> 2                              # _PAGE_USER, ANDed
        if nxe:
            xd |= e >> 63                         # _PAGE_NX, ORed (4.6.2)
        if huge or level == 3:
            size = 1 << shift
            pa = (e & PTE_ADDR_MASK & ~(size - 1)) | (va & (size - 1))
            rights = ((rw & 1) * R_WRITE | (us & 1) * R_USER
                      | (not xd) * R_EXEC
                      | bool(e & _PAGE_DIRTY) * R_DIRTY
                      | bool(e & _PAGE_GLOBAL) * R_GLOBAL)
            return Walk(va, entries, 0, pa, size, rights)
        table = e & PTE_ADDR_MASK
    raise AssertionError("unreachable")


def required_rights(write, user, fetch, wp):
    """Rights an access needs (4.6.1). Supervisor reads need nothing (no
    SMAP); supervisor writes need R/W only with CR0.WP = 1; user accesses
    need U/S, and R/W for writes; fetches need XD clear (no SMEP)."""
    need = 0
    if user:
        need |= R_USER
    if write and (user or wp):
        need |= R_WRITE
    if fetch:
        need |= R_EXEC
    return need


def access_error(w, need):
    """None if walk `w` allows an access needing `need`; else the error-code
    bits it causes (4.7): 0 for a P flag of 0, PF_RSVD|PF_PROT for a reserved
    bit, PF_PROT for a rights violation. The caller adds W/U/I."""
    if w.pa is None:
        return w.fault
    if w.rights & need != need:
        return PF_PROT
    return None
