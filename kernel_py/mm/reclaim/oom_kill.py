# The OOM killer (Linux mm/oom_kill.c): when reclaim cannot free anything
# for an allocation, pick the process whose death frees the most memory,
# weighted by oom_score_adj, kill it and let the allocation retry.
#
#   oom_badness = rss + swap entries + page-table pages
#                 + oom_score_adj * (totalpages / 1000)
#   totalpages  = RAM managed by the buddy + swap pages (SwapTotal)
#
# oom_score_adj -1000 (OOM_SCORE_ADJ_MIN) is never chosen; init (pid 1) is
# unkillable, as Linux's oom_unkillable_task makes it. Ties go to the later
# task (Linux replaces the choice on equal points). /proc/<pid>/oom_score is
# Linux's proc_oom_score: (1000 + badness * 1000 / totalpages) * 2 / 3 with
# C's truncating division (0 for adj -1000), so 0..2000, about 666 for a
# process with adj 0 and little memory.
#
# A victim the kernel is working on right now (the process whose fault
# asked for the memory, a fork's parent, a process swapoff is reading back)
# cannot be torn down under that work: it is marked (oom_pending), the
# allocation fails (the fault reports ENOMEM/SIGBUS) and the process table
# reaps it as soon as that work unwinds (ProcTable.reap); a program in
# ring 3 gets SIGKILL and exits on its way back (do_exit ends oom_pending).
# Any other victim
# is torn down at once and the per-CPU lists are drained, so its frames are
# back in the buddy before the allocation retries. While a marked victim is
# still alive no second one is chosen (Linux waits for the first to exit).

from kernel_py.kernel.signal import SI_KERNEL, SIGKILL, send_signal
from kernel_py.mm.gfp import NAMES as GFP_NAMES

OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000


def c_div(a, b):
    """C's signed division (truncates towards zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def oom_badness(rss, swapents, pgtables_pages, adj, totalpages):
    """Linux's oom_badness; None for adj -1000 (LONG_MIN: never chosen)."""
    if adj == OOM_SCORE_ADJ_MIN:
        return None
    points = rss + swapents + pgtables_pages
    return points + adj * (totalpages // 1000)


def oom_score(badness, totalpages):
    """/proc/<pid>/oom_score (proc_oom_score)."""
    if badness is None or totalpages <= 0:
        return 0
    return c_div((1000 + c_div(badness * 1000, totalpages)) * 2, 3)


def gfp_text(gfp):
    for name, v in GFP_NAMES:
        if v == gfp:
            return name
    return "|".join(name for name, v in GFP_NAMES if name.startswith("__") and gfp & v) or "0"


class OomKiller:
    """k.oom."""

    def __init__(self, k):
        self.k = k
        self.oom_kill = 0               # /proc/vmstat oom_kill
        self.oom_calls = 0
        self.no_victim = 0
        self.last_victim = None         # (pid, name) of the last kill
        self.t_exhaust = 0              # rdtsc when reclaim began failing (the last kill)
        self.last_recovery = 0          # TSC cycles from there to the victim's memory freed

    def totalpages(self):
        k = self.k
        swap = k.swap
        return k.buddy.managed_pages() + (swap.total_swap_pages if swap is not None else 0)

    def badness(self, task):
        mm = task.mm
        if mm is None or mm.pgd is None or task.pid == 1:
            return None
        return oom_badness(mm.rss(), mm.swapents, mm.nr_pgtables, task.oom_score_adj,
                           self.totalpages())

    def score(self, task):
        if task.pid == 1:               # unkillable: Linux shows 0 for init too
            return 0
        mm = task.mm
        b = oom_badness(mm.rss(), mm.swapents, mm.nr_pgtables, task.oom_score_adj,
                        self.totalpages())
        return oom_score(b, self.totalpages())

    def select_bad_process(self):
        procs = self.k.procs
        chosen = None
        chosen_points = None
        for pid in procs.pids():
            t = procs.tasks[pid]
            if t.oom_pending:
                return t, None          # a victim is still dying: wait for it
            points = self.badness(t)
            if points is None:
                continue
            if chosen_points is not None and points < chosen_points:
                continue
            chosen, chosen_points = t, points
        return chosen, chosen_points

    def out_of_memory(self, gfp, order, t0=0):
        """Kill a victim; returns the pages that became free (0: none now).
        t0: rdtsc when the failed reclaim began (for last_recovery_us)."""
        k = self.k
        procs = k.procs
        if procs is None:
            return 0
        self.oom_calls += 1
        victim, points = self.select_bad_process()
        if victim is not None and points is None:
            return 0                    # the earlier victim has not exited yet
        cur = procs.current
        comm = cur.comm if cur is not None else "kpysh"
        adj = cur.oom_score_adj if cur is not None else 0
        pr = k.printk
        pr("%s invoked oom-killer: gfp_mask=0x%x(%s), order=%d, oom_score_adj=%d" % (
            comm, gfp, gfp_text(gfp), order, adj))
        self.show_mem()
        self.dump_tasks()
        if victim is None:
            self.no_victim += 1
            pr("Out of memory and no killable processes...")
            return 0
        mm = victim.mm
        pr("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
           "global_oom,task_memcg=/,task=%s,pid=%d,uid=0" % (victim.comm, victim.pid))
        pr("Out of memory: Killed process %d (%s) total-vm:%dkB, anon-rss:%dkB, file-rss:%dkB, "
           "shmem-rss:%dkB, UID:0 pgtables:%dkB oom_score_adj:%d" % (
               victim.pid, victim.comm, mm.total_vm() * 4, mm.rss_anon * 4, mm.rss_file * 4,
               mm.rss_shmem * 4, mm.nr_pgtables * 4, victim.oom_score_adj))
        self.oom_kill += 1
        self.last_victim = (victim.pid, victim.comm)
        self.t_exhaust = t0 or k.hw.rdtsc()
        if procs.is_busy(victim):
            victim.oom_pending = True
            # a program dies of the SIGKILL when its fault unwinds to ring 3
            # (Linux's __oom_kill_process sends SIGKILL; pagefault_out_of_memory
            # then returns to a fatal signal instead of faulting again)
            send_signal(k, victim, SIGKILL, SI_KERNEL)
            return 0
        return self.reap(victim)

    def reap(self, victim):
        """Tear the victim down now; the pages freed (buddy's view)."""
        k = self.k
        before = k.buddy.nr_free_pages()
        anon, rss_file, shmem = victim.mm.rss_anon, victim.mm.rss_file, victim.mm.rss_shmem
        k.procs.exit(victim.pid)
        if k.pcp is not None:
            k.pcp.drain()
        k.printk("oom_reaper: reaped process %d (%s), now anon-rss:0kB, file-rss:0kB, "
                 "shmem-rss:0kB" % (victim.pid, victim.comm))
        freed = k.buddy.nr_free_pages() - before
        if self.t_exhaust:
            self.last_recovery = k.hw.rdtsc() - self.t_exhaust
        return freed if freed > 0 else (1 if anon + rss_file + shmem else 0)

    def last_recovery_us(self):
        """Memory exhaustion (the reclaim that found nothing) to the
        victim's memory back in the buddy, in microseconds (guest TSC)."""
        clock = self.k.clock
        hz = clock.hz if clock is not None and clock.hz else 0
        return self.last_recovery * 1000000 // hz if hz else 0

    def show_mem(self):
        k = self.k
        anon = k.anon
        pc = k.pagecache
        fa = pc.active.n if pc is not None else 0
        fi = pc.inactive.n if pc is not None else 0
        dirty = pc.nr_dirty if pc is not None else 0
        wb = pc.nr_writeback if pc is not None else 0
        pr = k.printk
        pr("Mem-Info:")
        pr("active_anon:%d inactive_anon:%d isolated_anon:0" % (anon.active.n, anon.inactive.n))
        pr(" active_file:%d inactive_file:%d isolated_file:0" % (fa, fi))
        pr(" unevictable:0 dirty:%d writeback:%d" % (dirty, wb))
        pr(" free:%d free_pcp:%d" % (k.buddy.nr_free_pages(), len(k.pcp) if k.pcp is not None else 0))
        swap = k.swap
        if swap is not None:
            pr("Free swap  = %dkB" % (swap.nr_swap_pages * 4))
            pr("Total swap = %dkB" % (swap.total_swap_pages * 4))
        pr("%d pages RAM" % k.buddy.managed_pages())

    def dump_tasks(self):
        k = self.k
        pr = k.printk
        pr("Tasks state (memory values in pages):")
        pr("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name")
        procs = k.procs
        for pid in procs.pids():
            t = procs.tasks[pid]
            mm = t.mm
            if mm is None:                  # zombies and kernel threads hold no memory
                continue
            pr("[%7d] %5d %5d %8d %8d %8d %8d         %5d %s" % (
                t.pid, 0, t.pid, mm.total_vm(), mm.rss(), mm.nr_pgtables * 4096,
                mm.swapents, t.oom_score_adj, t.comm))
