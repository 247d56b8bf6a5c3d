# execve (Linux's fs/exec.c with fs/binfmt_elf.c and fs/binfmt_script.c):
# replace a task's program.
#
# Everything that can fail happens before the point of no return, with the
# old program untouched: the arguments are copied in from the old address
# space, the file is checked (ENOENT, EACCES for a directory, ENOEXEC for
# what is not a static ELF64 x86-64 executable), the new address space is
# built and its stack written. Then the old address space goes (its frames,
# swap slots and page-cache references, with the existing teardown) and the
# registers start the new program: RIP at the entry point, RSP at argc,
# every other register zero (glibc's _start takes RDX as an atexit
# function), the FPU in its initial state.
#
# The initial stack, from the top down (create_elf_tables):
#   the file name (AT_EXECFN), the environment and argument strings,
#   16 random bytes (AT_RANDOM), "x86_64" (AT_PLATFORM), padding to 16,
#   auxv pairs ending with AT_NULL, envp[] + NULL, argv[] + NULL, argc
# with RSP (pointing at argc) 16-byte aligned.

import struct

from kernel_py.arch.x86.layout import USER_END
from kernel_py.arch.x86.layout import SEL_UCODE, SEL_UDATA
from kernel_py.arch.x86.ptrace import CS, EFLAGS, RIP, RSP, SS, USER_EFLAGS_FIXED
from kernel_py.fs import binfmt_elf as elf
from kernel_py.fs import namei
from kernel_py.fs.mode import S_ISREG
from kernel_py.kernel.signal import SI_KERNEL, SIGSEGV, force_sig
from kernel_py.kernel.sys import RLIMIT_STACK
from kernel_py.lib.errno import E2BIG, EFAULT, ENAMETOOLONG, errno_of
from kernel_py.lib.errors import KernelError
from kernel_py.mm.types import page_align
from kernel_py.mm.vm.mmap import MmStruct
from kernel_py.mm.vm.vma import MAP_FIXED, MAP_PRIVATE, MappedFile

MAX_ARG_STRLEN = 32 * 4096              # one argument or environment string
MAX_ARG_STRINGS = 0x7FFFFFFF
ARG_MAX = 2 << 20                       # a quarter of the 8 MiB stack rlimit, as Linux
ARG_MIN_STACK = 32 * 4096               # Linux's ARG_MAX (32 pages): always allowed on the stack
STK_LIM = 8 << 20                       # _STK_LIM, the default RLIMIT_STACK
PATH_MAX = 4096
BINPRM_BUF_SIZE = 256
MAX_INTERP_DEPTH = 4                    # #! scripts calling #! scripts

# auxv types (include/uapi/linux/auxvec.h)
AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_MINSIGSTKSZ = 23, 25, 26, 31, 51
PLATFORM = b"x86_64\0"


class Binprm:
    """Linux's struct linux_binprm: what one execve carries along."""

    def __init__(self, filename, argv, envp):
        self.filename = filename        # as given (AT_EXECFN)
        self.path = filename            # the file actually loaded (#! changes it)
        self.argv = argv                # lists of bytes, without NULs
        self.envp = envp
        self.image = None               # the ElfImage
        self.exe = None                 # the canonical path of the program loaded (/proc/PID/exe)
        self.mm = None                  # the new address space


# -- copying arguments in from the old program ------------------------------------

def copy_strings(hw, uptr, budget):
    """The NUL-terminated strings of a user char *[] (NULL-ended); (list,
    budget left) or a negative errno."""
    out = []
    if not uptr:
        return out, budget
    i = 0
    while True:
        p = hw.get_user64(uptr + 8 * i)
        if p is None:
            return -EFAULT, 0
        if p == 0:
            return out, budget
        s = hw.strncpy_from_user(p, MAX_ARG_STRLEN)
        if s is None:
            return -EFAULT, 0
        if len(s) >= MAX_ARG_STRLEN:
            return -E2BIG, 0
        budget -= len(s) + 1 + 8
        if budget < 0:
            return -E2BIG, 0
        out.append(s)
        i += 1


def sys_execve(t, filename, argv, envp):
    k = t.k
    hw = k.hw
    name = hw.strncpy_from_user(filename, PATH_MAX)
    if name is None:
        return -EFAULT
    if len(name) >= PATH_MAX:
        return -ENAMETOOLONG
    args, budget = copy_strings(hw, argv, ARG_MAX)
    if type(args) is int:
        return args
    env, budget = copy_strings(hw, envp, budget)
    if type(env) is int:
        return env
    try:
        path = name.decode()
    except UnicodeError:
        return -errno_of("ENOENT")
    return do_execve(k, t, path, args, env)


def do_execve(k, t, path, argv, envp):
    """execve for task t (the syscall, the console's `run` and init):
    0, with t running the new program, or -errno with t unchanged."""
    bprm = Binprm(path.encode(), list(argv), list(envp))
    try:
        prepare(k, t, bprm, 0)
    except KernelError as e:
        if bprm.mm is not None:
            bprm.mm.destroy()
        if e.errname == "ENOEXEC" and e.detail:
            k.printk("%s[%d]: execve %s: %s" % (t.comm, t.pid, path, e.detail))
        return -errno_of(e.errname)
    commit(k, t, bprm)
    procs = k.procs
    procs.use_task(t)
    if not zero_bss_tails(k.hw, bprm.image):
        # past the point of no return, as Linux's padzero failing in
        # load_elf_binary: the new image dies (a file cut short, say)
        force_sig(k, t, SIGSEGV, SI_KERNEL, 0)
    return 0


def open_exec(k, t, path):
    """(canonical path, sb, inode) of the program at path (absolute, or
    relative to the task's working directory; symlinks followed): ENOENT,
    EACCES for a directory, something not a regular file, or a file with
    no execute bit (do_open_execat, may_open with MAY_EXEC)."""
    try:
        stack = namei.lookup(k, t, namei.AT_FDCWD, path.encode())
    except KernelError as e:
        raise KernelError(e.errname, "")
    p, sb, ino = stack[-1]
    if sb is None or ino.is_dir:
        raise KernelError("EACCES", "")
    mode = sb.mode(ino)
    if not S_ISREG(mode) or not mode & 0o111:
        raise KernelError("EACCES", "")
    return p, sb, ino


def prepare(k, t, bprm, depth):
    """Everything before the point of no return; raises KernelError."""
    path, sb, ino = open_exec(k, t, bprm.path.decode())
    header = sb.read(ino, 0, BINPRM_BUF_SIZE)
    if header[:2] == b"#!":
        if depth >= MAX_INTERP_DEPTH:
            raise KernelError("ELOOP", "%s: #! scripts nested too deep" % path)
        interp, arg = parse_shebang(header)
        bprm.argv = [interp.encode()] + ([arg.encode()] if arg else []) + \
            [bprm.path] + bprm.argv[1:]
        bprm.path = interp.encode()
        return prepare(k, t, bprm, depth + 1)
    img = elf.parse(header, lambda off, n: sb.read(ino, off, n))
    if img.interp is not None:
        raise elf.noexec("dynamically linked (needs %s): only static programs run here" %
                         img.interp)
    bprm.image = img
    bprm.exe = path
    bprm.mm = mm = MmStruct(k)
    map_segments(k, mm, path, img)
    mm.setup_stack()
    write_stack(k, t, bprm)


def parse_shebang(header):
    line = bytes(header[2:]).split(b"\n")[0].strip()
    if not line:
        raise KernelError("ENOEXEC", "#! with no interpreter")
    parts = line.split(None, 1)
    interp = parts[0].decode()
    arg = parts[1].strip().decode() if len(parts) > 1 else ""
    return interp, arg


def map_segments(k, mm, path, img):
    """Each PT_LOAD as a private file mapping, the .bss as zeroed memory,
    and brk's start after the highest segment."""
    top = 0
    for s in img.segments:
        start = s.vaddr & ~0xFFF
        file_end = page_align(s.vaddr + s.filesz)
        mem_end = page_align(s.vaddr + s.memsz)
        prot = s.prot()
        if s.filesz:
            f = MappedFile(k.vfs, path)
            try:
                mm.mmap(start, file_end - start, prot, MAP_PRIVATE | MAP_FIXED, path, f,
                        (s.offset - (s.vaddr - start)) >> 12)
            finally:
                f.fput()
        else:
            file_end = start
        if mem_end > file_end:
            mm.mmap(file_end, mem_end - file_end, prot, MAP_PRIVATE | MAP_FIXED)
        if prot & 4 and not mm.start_code:
            mm.start_code, mm.end_code = s.vaddr, s.vaddr + s.filesz
        elif prot & 2 and not mm.start_data:
            mm.start_data, mm.end_data = s.vaddr, s.vaddr + s.filesz
        top = max(top, mem_end)
    mm.start_brk = mm.brk = top


def write_stack(k, t, bprm):
    """The initial stack in the new address space, which is loaded in CR3
    for the writes (then the old one again)."""
    hw = k.hw
    mm = bprm.mm
    old = hw.read_cr3()
    hw.write_cr3(mm.pgd)
    procs = k.procs
    saved = procs.cur_mm
    procs.cur_mm = mm                           # the fault handler maps into the new mm
    try:
        sp, argc_at = build_stack(k, bprm, USER_END, arg_limit(t))
    finally:
        procs.cur_mm = saved
        hw.write_cr3(old)
    bprm.sp = sp
    mm.start_stack = sp


def zero_bss_tails(hw, img):
    """padzero: the bytes past p_filesz in the last file page read as zero;
    False if that page cannot be had (the file ends before it)."""
    for s in img.segments:
        end = s.vaddr + s.filesz
        if s.memsz > s.filesz and end & 0xFFF and s.filesz:
            n = min(page_align(end), s.vaddr + s.memsz) - end
            if not hw.clear_user(end, n):
                return False
    return True


def build_stack(k, bprm, top, limit):
    hw = k.hw
    mm = bprm.mm
    img = bprm.image
    p = top - 8                                 # a NULL word at the very top, as Linux
    blob = []

    def push_bytes(data):
        nonlocal p
        p -= len(data)
        blob.append((p, data))
        return p

    execfn = push_bytes(bprm.filename + b"\0")
    env_ptrs = []
    env_end = p
    for s in reversed(bprm.envp):
        env_ptrs.append(push_bytes(s + b"\0"))
    env_ptrs.reverse()
    arg_end = p
    arg_ptrs = []
    for s in reversed(bprm.argv):
        arg_ptrs.append(push_bytes(s + b"\0"))
    arg_ptrs.reverse()
    mm.arg_start, mm.arg_end = p, arg_end
    mm.env_start, mm.env_end = arg_end, env_end
    p &= ~15
    rnd = push_bytes(k.random.get_bytes(16))
    plat = push_bytes(PLATFORM)
    p &= ~15
    hwcap = hw.cpuid(1)[3] if hw.accel() != "sim" else 0
    auxv = [
        (AT_HWCAP, hwcap), (AT_PAGESZ, 4096), (AT_CLKTCK, 100),
        (AT_PHDR, img.phdr), (AT_PHENT, elf.PHDR_SIZE), (AT_PHNUM, img.phnum),
        (AT_BASE, 0), (AT_FLAGS, 0), (AT_ENTRY, img.entry),
        (AT_UID, 0), (AT_EUID, 0), (AT_GID, 0), (AT_EGID, 0), (AT_SECURE, 0),
        (AT_RANDOM, rnd), (AT_HWCAP2, 0), (AT_EXECFN, execfn), (AT_PLATFORM, plat),
        (AT_MINSIGSTKSZ, 2048), (AT_NULL, 0),
    ]
    words = [len(bprm.argv)] + arg_ptrs + [0] + env_ptrs + [0]
    for a, v in auxv:
        words += [a, v]
    size = 8 * len(words)
    sp = (p - size) & ~15
    if top - sp > limit:
        raise KernelError("E2BIG", "arguments larger than a quarter of the stack limit")
    for addr, data in blob:
        if not hw.copy_to_user(addr, data):
            raise KernelError("EFAULT", "cannot write the initial stack")
    table = struct.pack("<%dQ" % len(words), *words)
    if not hw.copy_to_user(sp, table):
        raise KernelError("EFAULT", "cannot write the initial stack")
    return sp, sp


def arg_limit(t):
    """How much of the new stack the strings, pointers and auxv may take
    (get_arg_page): 128 KiB always, else up to a quarter of RLIMIT_STACK
    (at most 6 MiB). The [stack] VMA grows down over them as they are
    written (its faults expand it: mm/vm/fault.py)."""
    rlim = t.rlim[RLIMIT_STACK][0] if t.rlim is not None else STK_LIM
    return max(ARG_MIN_STACK, min(STK_LIM // 4 * 3, rlim // 4))


# -- the point of no return --------------------------------------------------------------

def commit(k, t, bprm):
    """The old program ends here; the task runs the new one."""
    from_task_mm(k, t, bprm.mm)
    if t.regs is None:
        t.new_user_context()
    regs = t.regs
    for i in range(len(regs)):
        regs[i] = 0
    regs[RIP] = bprm.image.entry
    regs[RSP] = bprm.sp
    regs[CS] = SEL_UCODE
    regs[SS] = SEL_UDATA
    regs[EFLAGS] = USER_EFLAGS_FIXED
    k.hw.fpu_init(t.fpu)
    if t.sighand is not None:
        t.sighand = t.sighand.copy()            # unshare, then reset handlers
        t.sighand.reset_for_exec()
    t.sas_ss_sp = t.sas_ss_size = t.sas_ss_flags = 0     # execve clears the alternate stack
    if t.files is not None:
        t.files.close_on_exec(k)
    name = bprm.path.decode().rsplit("/", 1)[-1]
    t.comm = name[:15]
    t.exe = bprm.exe
    t.cmdline = b"".join(a + b"\0" for a in bprm.argv)
    t.environ = b"".join(e + b"\0" for e in bprm.envp)
    t.clear_child_tid = 0
    t.robust_list = 0


def from_task_mm(k, t, mm):
    """exec_mmap: the task's address space becomes mm; the old one is
    released (destroyed unless a vfork parent still uses it)."""
    old = t.mm
    procs = k.procs
    if k.uprobes is not None:
        k.uprobes.exec_drop(t, old)             # uprobe_munmap: the old image's probes go
    t.mm = mm
    if procs.current is t:
        procs.use_task(t)
    parent = t.vfork_parent
    if parent is not None:
        t.vfork_parent = None
        k.sched.wake_up(parent.wait_vfork)
    if old is not None:
        old.users -= 1
        if old.users <= 0:
            old.destroy()

