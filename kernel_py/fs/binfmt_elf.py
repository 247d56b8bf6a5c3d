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
