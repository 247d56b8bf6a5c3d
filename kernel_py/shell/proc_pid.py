# The per-process files /proc/<pid>/...: maps and smaps (show_map_vma,
# smaps' per-VMA usage from the page tables), status, oom_score and
# oom_score_adj (fs/proc/task_mmu.c, array.c, base.c), and syscalls, a
# kernel_py file of its own: the task's system calls counted by number
# (Linux keeps only read/write counts, /proc/<pid>/io's syscr/syscw).

from kernel_py.lib.errors import KernelError
from kernel_py.arch.x86.tsc import HZ, INITIAL_JIFFIES
from kernel_py.kernel.signal import SIG_DFL, SIG_IGN
from kernel_py.kernel.task import STATE_NAMES
from kernel_py.kernel.time import USER_HZ
from kernel_py.mm.reclaim.oom_kill import OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN
from kernel_py.mm.types import (
    KIND_PAGECACHE, KIND_SHIFT, PG_dirty, SHM_SWAPPED, VM_EXEC, VM_SHARED, VM_STACK, VM_WRITE,
    _PAGE_PROTNONE, page_align,
)
from kernel_py.shell.cmd_proc import procs
from kernel_py.shell.cmd_swap import parse_int
from kernel_py.shell.registry import pid_file
from kernel_py.arch.x86.syscall_64 import NAMES as SYSCALL_NAMES
from kernel_py.arch.x86.cpu import PAGE_SIZE, PTE_ADDR_MASK, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW


def maps_line(vma):
    """show_map_vma(): the name padded to column 73."""
    dev, ino, name = "00:00", 0, vma.name
    if vma.shm is not None:
        dev, ino, name = "00:01", vma.shm.ino, "/dev/zero (deleted)"
    elif vma.file is not None:
        f = vma.file
        dev, ino, name = f.dev, f.ino.i_ino, f.path + (" (deleted)" if f.ino.deleted else "")
    head = "%08x-%08x %s %08x %s %d " % (vma.start, vma.end, vma.perms(),
                                         vma.pgoff << 12 if vma.vm_ops is not None else 0, dev, ino)
    if name:
        if len(head) < 72:
            head += " " * (72 - len(head))
        head += " " + name
    return head


def pid_task(k, pid):
    t = procs(k).tasks.get(pid)
    if t is None:
        raise KernelError("ENOENT", "/proc/%d" % pid)
    return t


@pid_file("maps")
def proc_maps(k, pid):
    mm = pid_task(k, pid).mm
    if mm is None:                      # a kernel thread or a zombie: nothing mapped
        return ""
    return "\n".join(maps_line(v) for v in mm.vmas)


def kb_line(name, kb):
    return "%-16s%8d kB" % (name + ":", kb)


def vma_usage(k, mm, vma):
    """(rss, pss_bytes, shared_clean, shared_dirty, private_clean, private_dirty,
    referenced, anonymous, swap) in pages (pss in bytes) for one VMA. A
    page-cache page is shared by the PTEs that map it (the cache's own
    reference does not count) and dirty when its PTE or the page says so."""
    hw = k.hw
    r64, r32, r16 = hw.read64, hw.read32, hw.read16
    base = k.mem_map.base
    zero = k.zero_page
    filemap = vma.file is not None
    rss = pss = sc = sd = pc = pd = ref = anon = swap = 0
    for pt, vbase, i0, i1 in mm.pt_tables(vma.start, vma.end):
        for i in range(i0, i1):
            e = r64(pt + (i << 3))
            if not e:
                continue
            if not e & (_PAGE_PRESENT | _PAGE_PROTNONE):     # swapped out
                swap += 1
                continue
            pa = e & PTE_ADDR_MASK
            if pa == zero:
                continue
            rss += 1
            rec = base + ((pa >> 12) << 4)
            c = r32(rec + 4)
            cached = filemap and r16(rec) >> KIND_SHIFT == KIND_PAGECACHE
            if vma.shm is not None or cached:
                c -= 1                  # the shared object's (the cache's) own reference
            else:
                anon += 1
            c = max(c, 1)
            pss += PAGE_SIZE // c
            if cached:
                dirty = e & _PAGE_DIRTY or r16(rec) & PG_dirty
            else:
                dirty = e & _PAGE_DIRTY or (e & _PAGE_RW and vma.shm is None)
            if e & 0x20:
                ref += 1
            if c > 1:
                if dirty:
                    sd += 1
                else:
                    sc += 1
            elif dirty:
                pd += 1
            else:
                pc += 1
    if vma.shm is not None:             # shmem_swap_usage: the object's swap entries in range
        lo, hi = vma.pgoff, vma.pgoff + (vma.size >> 12)
        for off, v in vma.shm.pages.items():
            if v & SHM_SWAPPED and lo <= off < hi:
                swap += 1
    return rss, pss, sc, sd, pc, pd, ref, anon, swap


@pid_file("smaps")
def proc_smaps(k, pid):
    mm = pid_task(k, pid).mm
    out = []
    if mm is None:
        return ""
    for v in mm.vmas:
        rss, pss, sc, sd, pc, pd, ref, anon, swap = vma_usage(k, mm, v)
        out.append(maps_line(v))
        for name, kb in (("Size", v.size >> 10), ("KernelPageSize", 4), ("MMUPageSize", 4),
                         ("Rss", rss * 4), ("Pss", pss >> 10), ("Shared_Clean", sc * 4),
                         ("Shared_Dirty", sd * 4), ("Private_Clean", pc * 4),
                         ("Private_Dirty", pd * 4), ("Referenced", ref * 4),
                         ("Anonymous", anon * 4 if v.shm is None else 0),
                         ("LazyFree", 0), ("AnonHugePages", 0), ("ShmemPmdMapped", 0),
                         ("Shared_Hugetlb", 0), ("Private_Hugetlb", 0), ("Swap", swap * 4),
                         ("SwapPss", 0), ("Locked", 0)):
            out.append(kb_line(name, kb))
        out.append("THPeligible:    0")
        out.append("VmFlags: %s " % v.vmflags())
    return "\n".join(out)


def vm_counts(mm):
    """(data_vm, stack_vm, exec_vm) in pages, as Linux's vm_stat_account
    keeps them: private writable mappings that are not the stack, the
    stack (VM_STACK), executable ones neither writable nor the stack."""
    data = stk = exe = 0
    for v in mm.vmas:
        f = v.flags
        n = v.size >> 12
        if f & VM_STACK:
            stk += n
        elif f & (VM_WRITE | VM_SHARED) == VM_WRITE:        # is_data_mapping
            data += n
        elif f & (VM_EXEC | VM_WRITE) == VM_EXEC:           # is_exec_mapping
            exe += n
    return data, stk, exe


def text_pages(mm):
    """The executable's text, in pages (end_code rounded up - start_code rounded down)."""
    if not mm.end_code:
        return 0
    return (page_align(mm.end_code) - (mm.start_code & ~(PAGE_SIZE - 1))) >> 12


def status_pairs(mm):
    data, stk, exe = vm_counts(mm)
    text = min(text_pages(mm), exe)                         # task_mem: VmExe, the rest VmLib
    mm.update_hiwater()
    return (("VmPeak", mm.hiwater_vm * 4), ("VmSize", mm.total_vm() * 4), ("VmLck", 0),
            ("VmPin", 0), ("VmHWM", mm.hiwater_rss * 4), ("VmRSS", mm.rss() * 4),
            ("RssAnon", mm.rss_anon * 4), ("RssFile", mm.rss_file * 4),
            ("RssShmem", mm.rss_shmem * 4), ("VmData", data * 4), ("VmStk", stk * 4),
            ("VmExe", text * 4), ("VmLib", (exe - text) * 4), ("VmPTE", mm.nr_pgtables * 4),
            ("VmSwap", mm.swapents * 4))


@pid_file("status")
def proc_status(k, pid):
    t = pid_task(k, pid)
    umask = t.fs.umask if t.fs is not None else 0o022
    lines = ["Name:\t%s" % t.comm, "Umask:\t%04o" % umask,
             "State:\t%s" % STATE_NAMES.get(t.state, t.state),
             "Tgid:\t%d" % t.tgid, "Ngid:\t0", "Pid:\t%d" % t.pid, "PPid:\t%d" % t.ppid,
             "TracerPid:\t0", "Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0",
             "FDSize:\t%d" % (t.files.fdsize() if t.files is not None else 0), "Groups:\t"]
    if t.mm is not None:
        for name, kb in status_pairs(t.mm):
            lines.append("%s:\t%8d kB" % (name, kb))
    lines.append("Threads:\t1")
    ign, cgt = sig_sets(t)
    for name, v in (("SigPnd", t.pending), ("ShdPnd", 0), ("SigBlk", t.blocked),
                    ("SigIgn", ign), ("SigCgt", cgt)):
        lines.append("%s:\t%016x" % (name, v))
    if t.mm is not None:
        lines.append("Pgd:\t0x%x" % t.mm.pgd)
    lines += ["voluntary_ctxt_switches:\t%d" % t.nvcsw,       # sleeps (sched.sleep)
              "nonvoluntary_ctxt_switches:\t%d" % t.nivcsw]   # preemptions (sched.preempt)
    return "\n".join(lines)


def sig_sets(t):
    """(ignored, caught) signal masks from the task's actions (SigIgn, SigCgt)."""
    ign = cgt = 0
    sh = t.sighand
    if sh is not None:
        for i in range(1, len(sh.action)):
            h = sh.action[i][0]
            if h == SIG_IGN:
                ign |= 1 << (i - 1)
            elif h != SIG_DFL:
                cgt |= 1 << (i - 1)
    return ign, cgt


def args_text(b):
    """argv/envp bytes (NUL-terminated strings) as the text a pseudo-file
    returns: UTF-8 as is; other bytes as the characters of the same codes
    (the registry's files are text; see fs/procfs.py)."""
    try:
        return b.decode()
    except (UnicodeError, ValueError):
        return "".join([chr(c) for c in b])


@pid_file("cmdline")
def proc_cmdline(k, pid):
    """The argument strings, each NUL-terminated (proc_pid_cmdline_read)."""
    return args_text(pid_task(k, pid).cmdline)


@pid_file("environ")
def proc_environ(k, pid):
    return args_text(pid_task(k, pid).environ)


def clock_ticks(k, tsc):
    """TSC ticks as USER_HZ (100) clock ticks."""
    return k.clock.us(tsc) * USER_HZ // 1000000


@pid_file("stat")
def proc_pid_stat(k, pid):
    """do_task_stat's 52 fields."""
    t = pid_task(k, pid)
    mm = t.mm
    tty = k.tty
    tty_nr, tpgid = 0, -1
    if tty is not None and tty.session and t.sid == tty.session:
        tty_nr, tpgid = (5 << 8) | 1, tty.pgrp
    ign, cgt = sig_sets(t)
    start = max(0, t.start_time - INITIAL_JIFFIES) * USER_HZ // HZ
    if mm is not None:
        vsize, rss = mm.total_vm() * PAGE_SIZE, mm.rss()
        layout = (mm.start_code, mm.end_code, mm.start_stack, mm.start_data, mm.end_data,
                  mm.start_brk, mm.arg_start, mm.arg_end, mm.env_start, mm.env_end)
    else:
        vsize = rss = 0
        layout = (0,) * 10
    fields = [
        t.pid, "(%s)" % t.comm, t.state, t.ppid, t.pgid, t.sid, tty_nr, tpgid, 0x400000,
        t.min_flt, t.cmin_flt, t.maj_flt, t.cmaj_flt,
        clock_ticks(k, t.utime), clock_ticks(k, t.stime),
        clock_ticks(k, t.cutime), clock_ticks(k, t.cstime),
        20 + t.nice, t.nice, 1, 0, start, vsize, rss,
        (1 << 64) - 1, layout[0], layout[1], layout[2], 0, 0,
        t.pending, t.blocked, ign, cgt, 0, 0, 0, t.exit_signal, 0, 0, 0, 0, 0, 0,
        layout[3], layout[4], layout[5], layout[6], layout[7], layout[8], layout[9],
        t.exit_code if t.state in ("Z", "X") else 0,
    ]
    return " ".join(str(v) for v in fields)


@pid_file("statm")
def proc_statm(k, pid):
    """size resident shared text lib data dt, in pages (proc_pid_statm)."""
    mm = pid_task(k, pid).mm
    if mm is None:
        return "0 0 0 0 0 0 0"
    data, stk, exe = vm_counts(mm)
    return "%d %d %d %d 0 %d 0" % (mm.total_vm(), mm.rss(), mm.rss_file + mm.rss_shmem,
                                   text_pages(mm), data + stk)


@pid_file("oom_score")
def proc_oom_score(k, pid):
    return "%d" % k.oom.score(pid_task(k, pid))


def write_oom_score_adj(k, pid, text):
    t = pid_task(k, pid)
    t.oom_score_adj = parse_int(text, OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX, "oom_score_adj")


@pid_file("oom_score_adj", write_oom_score_adj)
def proc_oom_score_adj(k, pid):
    return "%d" % pid_task(k, pid).oom_score_adj


@pid_file("syscalls")
def proc_syscalls(k, pid):
    """`NAME NR COUNT` per system call the task made since fork (execve
    keeps them, as Linux keeps its I/O accounting), then `total N`."""
    t = pid_task(k, pid)
    counts = t.syscalls
    lines = ["%-24s %3d %d" % (SYSCALL_NAMES.get(nr, "?"), nr, counts[nr]) for nr in sorted(counts)]
    lines.append("total %d" % sum(counts.values()))
    return "\n".join(lines)
