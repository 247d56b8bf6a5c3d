# x86-64 architectural constants: page-table entry bits, #PF error-code bits,
# control-register bits. Named once here and imported everywhere (kernel,
# simulated machine, host walker). Section numbers refer to the Intel SDM,
# Volume 3A.



def small(v):
    """v as the guest VM's small int when it fits (below 2**62). Frozen
    bytecode stores every literal of 2**30 or more as a heap-style long
    (mpz) constant; arithmetic on one allocates a new long each time, and a
    comparison with one takes the slow path. Building the value at import
    time from its text gives a small int."""
    return int("%x" % v, 16)


PAGE_SHIFT = 12
PMD_SHIFT = 21
PUD_SHIFT = 30
PGDIR_SHIFT = 39
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)
PMD_SIZE = 1 << PMD_SHIFT   # 2 MiB page (PS in a PDE)
PUD_SIZE = small(1 << PUD_SHIFT)      # 1 GiB page (PS in a PDPTE)
PGDIR_SIZE = small(1 << PGDIR_SHIFT)  # what one PML4 entry maps: 512 GiB
PTRS_PER_TABLE = 512
# The address bits that index the table at each level (SDM 4.5), indexed by
# level as Linux's enum pg_level: 1 PT (PTE), 2 PD (PMD), 3 PDPT (PUD), 4 PML4 (PGD).
LEVEL_SHIFT = (0, PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, PGDIR_SHIFT)

# Paging-structure entry bits (SDM 4.5, Tables 4-14 .. 4-20)
_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_PWT = 1 << 3
_PAGE_PCD = 1 << 4
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7          # page size: 2 MiB in a PDE, 1 GiB in a PDPTE
_PAGE_GLOBAL = 1 << 8
_PAGE_NX = 1 << 63          # requires EFER.NXE (SDM 4.6.2)
# Physical-address field of an entry: bits 51:12 (MAXPHYADDR = 52 at most).
PTE_ADDR_MASK = small(0x000FFFFFFFFFF000)
PTE_FLAGS_MASK = ~PTE_ADDR_MASK & 0xFFFFFFFFFFFFFFFF

# #PF error code (SDM 4.7, Figure 4-12)
PF_PROT = 1 << 0    # 0: not-present page; 1: protection violation
PF_WRITE = 1 << 1   # the access was a write
PF_USER = 1 << 2    # the access was made at CPL 3
PF_RSVD = 1 << 3    # a reserved bit was set in a paging-structure entry
PF_INSTR = 1 << 4   # the access was an instruction fetch (NX or SMEP)

# Control registers (SDM 2.5)
CR0_WP = 1 << 16    # supervisor writes honour read-only pages
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
CR4_PGE = 1 << 7
EFER_NXE = 1 << 11

# EFLAGS arithmetic flags (SDM Vol. 1, 3.4.3.1) and the trap flag
X86_EFLAGS_CF = 1 << 0
X86_EFLAGS_PF = 1 << 2
X86_EFLAGS_AF = 1 << 4
X86_EFLAGS_ZF = 1 << 6
X86_EFLAGS_SF = 1 << 7
X86_EFLAGS_TF = 1 << 8
X86_EFLAGS_OF = 1 << 11

# Exception vectors (SDM 6.3.1)
VEC_DE = 0
VEC_DB = 1
VEC_BP = 3
VEC_UD = 6
VEC_DF = 8
VEC_GP = 13
VEC_PF = 14
EXCEPTION_NAMES = (
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO",
    "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM",
    "#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC",
    "#SX", "#31",
)


def canonical(va):
    """Sign-extend a 48-bit virtual address (SDM 3.3.7.1)."""
    va &= 0xFFFFFFFFFFFF
    if va & (1 << 47):
        va |= 0xFFFF000000000000
    return va


def is_canonical(va):
    return canonical(va) == va
