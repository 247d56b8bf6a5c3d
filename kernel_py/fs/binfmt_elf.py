# Static ELF64 executables (Linux's fs/binfmt_elf.c, load_elf_binary): the
# checks, and the layout of the new address space. fs/exec.py does the
# rest of execve (arguments, the point of no return, the registers).
#
# What is mapped, as Linux maps it:
#   each PT_LOAD   a private file-backed VMA over the page cache, from the
#                  page holding p_vaddr, at file page p_offset >> 12
#                  (p_offset and p_vaddr agree modulo the page size);
#   its .bss       the tail of the last file page is zeroed (padzero: that
#                  page becomes a private copy), whole pages beyond are an
#                  anonymous mapping;
#   the heap       brk starts at the page after the highest segment.
# ET_DYN (static-pie) is loaded at ELF_ET_DYN_BASE, as Linux does without
# address-space randomisation; ET_EXEC at its own addresses. PT_INTERP (a
# dynamically linked program) is refused with ENOEXEC and one log line:
# there is no program interpreter here yet.

import struct

from kernel_py.arch.x86.layout import USER_END
from kernel_py.lib.bisect import bisect_right
from kernel_py.lib.errors import KernelError

ELFMAG = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_EXEC = 2
ET_DYN = 3
EM_X86_64 = 62
PT_LOAD = 1
PT_INTERP = 3
PT_PHDR = 6
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
EHDR = "<16sHHIQQQIHHHHHH"              # Elf64_Ehdr
EHDR_SIZE = 64
PHDR = "<IIQQQQQQ"                      # Elf64_Phdr
PHDR_SIZE = 56
MAX_PHNUM = 65536 // PHDR_SIZE          # ELF_MIN_ALIGN-sized table at most, as Linux
ELF_ET_DYN_BASE = (USER_END // 3 * 2) & ~0xFFF


class Segment:
    def __init__(self, vaddr, offset, filesz, memsz, flags):
        self.vaddr = vaddr
        self.offset = offset
        self.filesz = filesz
        self.memsz = memsz
        self.flags = flags

    def prot(self):
        """PROT_* from p_flags (PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4)."""
        f = self.flags
        return (1 if f & PF_R else 0) | (2 if f & PF_W else 0) | (4 if f & PF_X else 0)


class ElfImage:
    """What load_elf_binary learns from the headers: the segments to map,
    the entry point and what the auxiliary vector tells the program."""

    def __init__(self):
        self.type = 0
        self.entry = 0
        self.bias = 0
        self.phoff = 0
        self.phnum = 0
        self.phdr = 0                    # AT_PHDR
        self.segments = []
        self.interp = None
        self.exec_stack = False


def noexec(why):
    return KernelError("ENOEXEC", why)


def parse(header, read):
    """An ElfImage from the first bytes of the file; read(off, n) -> bytes
    reads more of it. Raises ENOEXEC for anything Linux would refuse."""
    if len(header) < EHDR_SIZE or header[:4] != ELFMAG:
        raise noexec("not an ELF file")
    (ident, e_type, machine, version, entry, phoff, shoff, flags, ehsize, phentsize,
     phnum, shentsize, shnum, shstrndx) = struct.unpack_from(EHDR, header, 0)
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
        raise noexec("not a little-endian ELF64 file")
    if e_type not in (ET_EXEC, ET_DYN):
        raise noexec("ELF type %d is not an executable" % e_type)
    if machine != EM_X86_64:
        raise noexec("ELF machine %d is not x86-64" % machine)
    if phentsize != PHDR_SIZE or not 1 <= phnum <= MAX_PHNUM:
        raise noexec("bad program header table (%d entries of %d bytes)" % (phnum, phentsize))
    table = read(phoff, phnum * PHDR_SIZE)
    if len(table) != phnum * PHDR_SIZE:
        raise noexec("truncated: the program headers end past the file")
    img = ElfImage()
    img.type = e_type
    img.phoff = phoff
    img.phnum = phnum
    img.bias = ELF_ET_DYN_BASE if e_type == ET_DYN else 0
    phdr_vaddr = None
    for i in range(phnum):
        p_type, p_flags, off, vaddr, paddr, filesz, memsz, align = struct.unpack_from(
            PHDR, table, i * PHDR_SIZE)
        if p_type == PT_LOAD:
            if filesz > memsz:
                raise noexec("PT_LOAD %d: file size above memory size" % i)
            if (off - vaddr) & 0xFFF:
                raise noexec("PT_LOAD %d: offset and address disagree within a page" % i)
            img.segments.append(Segment(img.bias + vaddr, off, filesz, memsz, p_flags))
        elif p_type == PT_INTERP:
            img.interp = read(off, min(filesz, 4096)).split(b"\0")[0].decode("utf-8", "replace") \
                if filesz else "?"
        elif p_type == PT_PHDR:
            phdr_vaddr = img.bias + vaddr
        elif p_type == PT_GNU_STACK:
            img.exec_stack = bool(p_flags & PF_X)
    if not img.segments:
        raise noexec("no PT_LOAD segment")
    for s in img.segments:
        end = s.vaddr + s.memsz
        if s.vaddr < 0x10000 or end > USER_END or end < s.vaddr:
            raise noexec("segment 0x%x-0x%x outside user space" % (s.vaddr, end))
    img.entry = img.bias + entry
    if phdr_vaddr is None:                      # the first load address + e_phoff
        first = img.segments[0]
        phdr_vaddr = first.vaddr - first.offset + phoff
    img.phdr = phdr_vaddr
    return img


# -- the symbol table (uprobes and memleak name functions by it) ----------------------

SHDR = "<IIQQQQIIQQ"                    # Elf64_Shdr
SHDR_SIZE = 64
SHT_SYMTAB = 2
SYM = "<IBBHQQ"                         # Elf64_Sym
SYM_SIZE = 24
STT_FUNC = 2
MAX_SYMTAB = 4 << 20                    # bytes of .symtab + .strtab read at most


class Symbols:
    """The FUNC symbols of an executable's .symtab, sorted by address:
    `lookup(name)` for a probe, `resolve(addr)` for a stack frame (what
    perf and bcc read from the file, as Linux's kernel keeps no user
    symbols)."""

    def __init__(self, funcs, bias):
        funcs.sort()
        self.addrs = [f[0] for f in funcs]
        self.sizes = [f[1] for f in funcs]
        self.names = [f[2] for f in funcs]
        self.by_name = {}
        for a, _, n in funcs:
            if n not in self.by_name:
                self.by_name[n] = a
        self.bias = bias

    def lookup(self, name):
        """The address of function `name`, or None."""
        return self.by_name.get(name)

    def resolve(self, addr):
        """(name, offset) of the function holding addr, or None."""
        i = bisect_right(self.addrs, addr) - 1
        if i < 0:
            return None
        # a symbol of size 0 (an asm label) covers up to the next one
        if self.sizes[i] and addr >= self.addrs[i] + self.sizes[i]:
            return None
        return self.names[i], addr - self.addrs[i]

    def format(self, addr):
        """'fn+0xOFF', or the bare address when no function holds it."""
        r = self.resolve(addr)
        if r is None:
            return "0x%x" % addr
        return "%s+0x%x" % r


def read_symbols(header, read):
    """Symbols from an ELF file's .symtab (read(off, n) -> bytes);
    ENOEXEC when it is not an ELF file or was stripped."""
    img = parse(header, read)
    f = struct.unpack_from(EHDR, header, 0)
    shoff, shentsize, shnum = f[6], f[11], f[12]
    if not shoff or shentsize != SHDR_SIZE or not shnum:
        raise noexec("no section headers")
    table = read(shoff, shnum * SHDR_SIZE)
    if len(table) != shnum * SHDR_SIZE:
        raise noexec("truncated: the section headers end past the file")
    for i in range(shnum):
        sh = struct.unpack_from(SHDR, table, i * SHDR_SIZE)
        if sh[1] == SHT_SYMTAB:
            return symtab_funcs(table, sh, read, img.bias)
    raise noexec("no .symtab (stripped)")


def symtab_funcs(table, sh, read, bias):
    _, _, _, _, off, size, link, _, _, entsize = sh
    if entsize != SYM_SIZE or link * SHDR_SIZE >= len(table):
        raise noexec("bad .symtab")
    st = struct.unpack_from(SHDR, table, link * SHDR_SIZE)
    if size + st[5] > MAX_SYMTAB:
        raise noexec(".symtab of %d bytes: larger than %d" % (size + st[5], MAX_SYMTAB))
    syms = read(off, size)
    strs = read(st[4], st[5])
    funcs = []
    for i in range(len(syms) // SYM_SIZE):
        name, info, _, shndx, value, sz = struct.unpack_from(SYM, syms, i * SYM_SIZE)
        if info & 0xF != STT_FUNC or not value or not shndx:
            continue
        end = strs.find(b"\0", name)
        funcs.append((bias + value, sz, strs[name:end if end >= 0 else len(strs)].decode()))
    return Symbols(funcs, bias)
