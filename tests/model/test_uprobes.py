"""uprobes on the simulated machine (kernel/events/uprobes.py), over a real
static program (build/user/hello) on a FAT disk: the breakpoint goes into
the process's own copy of the text page, never into the page cache or
another process running the same file; removal restores the byte; a fork
child's copy has no breakpoint; the #BP path runs the handler, emulates the
displaced instruction and arms the return probe; bad input is one error."""

import shutil

import pytest

from fssupport import Box, needs_mkfs
from kpyqemu import disks

from kernel_py.arch.x86.cpu import PTE_ADDR_MASK, X86_EFLAGS_TF
from kernel_py.arch.x86.pgtable import pte_slot
from kernel_py.arch.x86.ptrace import EFLAGS, RAX, RBP, RDI, RIP, RSI, RSP
from kernel_py.kernel.events.uprobes import decode, OP_PUSH, OP_TEST
from kernel_py.kernel.fork import ENVP_INIT, copy_process, spawn_user
from kernel_py.kernel.trace.memleak import MemleakTracer
from kernel_py.lib.errors import KernelError

pytestmark = needs_mkfs

HELLO = disks.USER_DIR / "hello"
PROG = "/mnt/bin/hello"


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    if not HELLO.exists():
        pytest.skip("build/user/hello not built (make user)")
    d = tmp_path_factory.mktemp("uprobes")
    user = d / "user"
    user.mkdir()
    shutil.copy(HELLO, user / "hello")
    dk = disks.fresh_disks(d / "disks", data_mb=32, swap=False, user_dir=user)
    b = Box(dk.drives)
    yield b
    b.close()


def spawn(b):
    t, err = spawn_user(b.k, PROG, [PROG], ENVP_INIT)
    assert t is not None, err
    return t


def frame_of(b, t, va):
    pgd = t.mm.pgd
    e = b.hw.read64(pte_slot(b.hw, pgd, va))
    return e & PTE_ADDR_MASK if e & 1 else None


def user_bytes(b, t, va, n):
    return b.k.uprobes.run_in_mm(t, b.hw.copy_from_user, va, n)


def cache_byte(b, t, va):
    vma = t.mm.vmas.find(va)
    pa = vma.file.mapping.pages.get(vma.offset_of(va))
    return None if pa is None else b.hw.readbytes(pa + (va & 0xFFF), 1)[0]


def test_breakpoint_in_a_private_copy_only(box):
    b = box
    k = b.k
    t1, t2 = spawn(b), spawn(b)
    addr = k.uprobes.symbols_of(t1).lookup("malloc")
    orig = user_bytes(b, t1, addr, 1)[0]
    assert user_bytes(b, t2, addr, 1)[0] == orig
    shared = frame_of(b, t1, addr)
    p = k.uprobes.register(t1, "malloc", lambda t, p: None)
    assert user_bytes(b, t1, addr, 1) == b"\xcc"
    assert frame_of(b, t1, addr) != shared              # COW broken: t1's own frame
    assert user_bytes(b, t2, addr, 1)[0] == orig         # the other process: untouched
    assert cache_byte(b, t1, addr) == orig               # the file's page: untouched
    assert b.hw.read64(pte_slot(b.hw, t1.mm.pgd, addr)) & 2 == 0   # still read-only
    c = copy_process(k, t1, 17, 0, 0, 0, 0)             # fork (SIGCHLD)
    assert user_bytes(b, c, addr, 1)[0] == orig          # the child: no breakpoint
    assert user_bytes(b, t1, addr, 1) == b"\xcc"
    k.uprobes.unregister(t1, p)
    assert user_bytes(b, t1, addr, 1)[0] == orig
    assert "[uprobes]" not in b.run("cat /proc/%d/maps" % t1.pid)   # no return probe: no XOL
    for t in (t1, t2, c):
        k.procs.kill_user(t)


def test_hit_runs_handler_emulates_and_returns(box):
    b = box
    k = b.k
    t = spawn(b)
    seen = []
    addr = k.uprobes.symbols_of(t).lookup("malloc")
    k.uprobes.register(t, "malloc", lambda t, p: seen.append(t.regs[RDI]) or t.regs[RDI],
                       lambda t, p, data: seen.append(("ret", data, t.regs[RAX])))
    assert "[uprobes]" in b.run("cat /proc/%d/maps" % t.pid)
    regs = t.regs
    sp = regs[RSP] - 64
    k.uprobes.run_in_mm(t, b.hw.put_user64, sp, 0x401234)
    regs[RSP], regs[RDI], regs[RBP], regs[RIP] = sp, 100, 0x7777, addr + 1
    k.procs.use_task(t)
    assert k.uprobes.handle_swbp(t)
    assert t.mm.uprobes.probes[addr].insn[0] == OP_PUSH     # malloc starts with push %rbp
    assert seen == [100]
    assert regs[RIP] == addr + 1 and regs[RSP] == sp - 8    # push rbp, emulated
    assert b.hw.get_user64(sp - 8) == 0x7777
    xol = t.mm.uprobes.xol
    assert b.hw.get_user64(sp) == xol                      # the return address hijacked
    regs[RSP], regs[RAX], regs[RIP] = sp + 8, 0x5000, xol + 1    # malloc returns
    assert k.uprobes.handle_swbp(t)
    assert seen[1] == ("ret", 100, 0x5000) and regs[RIP] == 0x401234
    regs[RIP] = 0x401001                                   # the program's own int3
    assert not k.uprobes.handle_swbp(t)
    k.procs.unuse_task()
    k.procs.kill_user(t)


def test_test_instruction_flags():
    kind, n, a, bb = decode(b"\x48\x85\xff")              # test rdi, rdi (glibc's free)
    assert (kind, n, a, bb) == (OP_TEST, 3, RDI, RDI)
    assert decode(b"\x0f\x0b") is None                    # ud2: not emulated


def test_bad_input(box):
    b = box
    k = b.k
    t = spawn(b)
    with pytest.raises(KernelError) as e:
        k.uprobes.register(t, "no_such_function", lambda t, p: None)
    assert e.value.errname == "ENOENT"
    with pytest.raises(KernelError) as e:
        k.uprobes.register(t, "0x10000000", lambda t, p: None)
    assert e.value.errname == "EFAULT"
    p = k.uprobes.register(t, "free", lambda t, p: None)
    with pytest.raises(KernelError) as e:
        k.uprobes.register(t, "free", lambda t, p: None)
    assert e.value.errname == "EEXIST"
    k.uprobes.unregister(t, p)
    k.procs.kill_user(t)


def call(b, t, sp, func, ret_to, rbp, args, rax):
    """One call of a probed allocator function as the CPU would make it:
    the return address pushed, #BP at the entry, then (for a function with
    a return probe) #BP at the trampoline with RAX the result."""
    k = b.k
    u = k.uprobes
    regs = t.regs
    addr = u.symbols_of(t).lookup(func)
    b.hw.put_user64(sp, ret_to)
    regs[RSP], regs[RBP], regs[RIP] = sp, rbp, addr + 1
    regs[RDI] = args[0]
    regs[RSI] = args[1] if len(args) > 1 else 0
    assert u.handle_swbp(t)
    if func == "free":
        return
    xol = t.mm.uprobes.xol
    assert b.hw.get_user64(sp) == xol
    regs[RSP], regs[RAX], regs[RIP] = sp + 8, rax, xol + 1
    assert u.handle_swbp(t)
    assert regs[RIP] == ret_to


def test_memleak_groups_by_stack_and_notes_bad_input(box):
    b = box
    k = b.k
    t = spawn(b)
    syms = k.uprobes.symbols_of(t)
    main = syms.lookup("main")
    tr = MemleakTracer(k, t, 0)
    tr.attach()
    assert len(tr.probes) == 4
    k.procs.use_task(t)
    sp = (t.regs[RSP] & ~0xF) - 0x400       # below what the start-up stack holds
    frame = sp + 0x80                   # a caller's frame: saved rbp 0, return into main
    b.hw.put_user64(frame, 0)
    b.hw.put_user64(frame + 8, main + 0x20)
    site = main + 0x10
    call(b, t, sp, "malloc", site, frame, [100], 0x5000)
    call(b, t, sp, "malloc", site, frame, [100], 0x5100)
    call(b, t, sp, "calloc", site + 4, 0xdead0000beef, [3, 10], 0x5200)    # a corrupt frame pointer
    call(b, t, sp, "free", site, frame, [0x5100], 0)
    call(b, t, sp, "free", site, frame, [0x9990], 0)                      # never allocated
    call(b, t, sp, "realloc", site + 8, frame, [0x5200, 64], 0x5300)      # moves the calloc block
    rep = tr.report(0)
    assert "100 bytes in 1 allocations from stack\n\t\tmain+0x10\n\t\tmain+0x20" in rep, rep
    assert "64 bytes in 1 allocations from stack\n\t\tmain+0x18\n\t\tmain+0x20" in rep, rep
    assert "30 bytes" not in rep                                      # realloc freed it
    assert rep.index("100 bytes") < rep.index("64 bytes")             # largest first
    assert "note: 1 frees of addresses not allocated" in rep
    s = tr.summary()
    assert "calls to allocation functions: 4 (malloc 2, calloc 1, realloc 1), free 2" in s, s
    assert "bytes leaked: 164 in 2 allocations" in s, s
    k.procs.unuse_task()
    tr.detach()
    assert t.mm.uprobes.probes == {}
    assert t.pid not in k.memleak
    k.procs.kill_user(t)


def test_single_step_in_place(box):
    """An instruction the emulator does not know (glibc malloc's cmpb
    0x..(%rip), 9 bytes in): #BP puts the byte back and sets TF, #DB puts
    int3 back and clears TF; syscall is refused."""
    b = box
    k = b.k
    u = k.uprobes
    t = spawn(b)
    addr = u.symbols_of(t).lookup("malloc") + 9
    if user_bytes(b, t, addr, 2) != b"\x80\x3d":
        pytest.skip("this glibc's malloc differs")
    hits = []
    u.register(t, "0x%x" % addr, lambda t, p: hits.append(1))
    regs = t.regs
    regs[RIP], regs[EFLAGS] = addr + 1, 0x202
    k.procs.use_task(t)
    assert u.handle_swbp(t) and hits == [1]
    assert regs[RIP] == addr and regs[EFLAGS] & X86_EFLAGS_TF
    assert b.hw.copy_from_user(addr, 1) == b"\x80"          # the original, for one step
    regs[RIP] = addr + 7
    assert u.handle_sstep(t)
    assert not regs[EFLAGS] & X86_EFLAGS_TF
    assert b.hw.copy_from_user(addr, 1) == b"\xcc"
    assert not u.handle_sstep(t)                            # a #DB of the program's own
    k.procs.unuse_task()
    k.procs.kill_user(t)


@pytest.mark.parametrize("line, errname", [
    ("memleak", "EINVAL"), ("memleak -p", "EINVAL"), ("memleak -p abc", "EINVAL"),
    ("memleak -p 999999", "ESRCH"), ("memleak -p 1", "EINVAL"), ("memleak -p 1 -d", "ENOENT"),
    ("memleak -p 1 -o x", "EINVAL"), ("memleak -p 1 0", "EINVAL"), ("memleak -c", "EINVAL"),
    ("memleak -c /mnt/bin/nope", "ENOENT"), ("memleak -p 1 extra words", "EINVAL"),
])
def test_memleak_console_bad_input(box, line, errname):
    assert box.err(line).startswith("error: %s" % errname)
    assert box.run("echo alive") == "alive"
