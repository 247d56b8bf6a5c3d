# The task (Linux's struct task_struct, include/linux/sched.h): one process
# of this kernel. Every member is declared here, grouped as Linux groups
# them; subsystems keep their own state in objects a task points at (mm,
# files, fs, sighand) so that fork can share or copy each one as clone's
# flags say.
#
# Kernel stacks: this kernel runs every task's kernel work on the one stack
# the MicroPython VM runs on, run to completion (DESIGN.md lets the
# implementation choose). What Linux keeps on a task's kernel stack is
# here instead: `regs` (struct pt_regs, the user registers saved at every
# entry; arch/x86/ptrace.py names the slots) and `fpu` (the FXSAVE image).
# A syscall that must wait does not keep a stack frame: it leaves a
# continuation in `restart` (kernel/sched.py), which the scheduler calls
# when the task is woken, and whose return value becomes the syscall's.

from kernel_py.arch.x86.ptrace import new_fpu, new_regs
from kernel_py.kernel.wait import WaitQueue

TASK_COMM_LEN = 16

# task states, as /proc/PID/stat's third field spells them (fs/proc/array.c)
TASK_RUNNING = "R"
TASK_INTERRUPTIBLE = "S"
TASK_UNINTERRUPTIBLE = "D"
TASK_STOPPED = "T"
EXIT_ZOMBIE = "Z"
EXIT_DEAD = "X"
STATE_NAMES = {"R": "R (running)", "S": "S (sleeping)", "D": "D (disk sleep)",
               "T": "T (stopped)", "Z": "Z (zombie)", "X": "X (dead)"}


class Task:
    def __init__(self, k, pid, name, ppid, mm):
        self.k = k
        # identity
        self.pid = pid
        self.tgid = pid                 # no threads: each task is its own group
        self.comm = name                # TASK_COMM_LEN - 1 characters at most
        self.ppid = ppid
        self.children = []              # pids
        self.pgid = pid                 # process group (setpgid)
        self.sid = pid                  # session (setsid)
        self.exe = None                 # the executable's path (/proc/PID/exe)
        self.cmdline = b""              # argv, each NUL-terminated (/proc/PID/cmdline)
        self.environ = b""              # envp, likewise (/proc/PID/environ)
        # state
        self.state = TASK_INTERRUPTIBLE
        self.exit_code = 0              # wait4's status once a zombie
        self.exit_signal = 17           # SIGCHLD to the parent at exit (clone's low byte)
        self.pdeath_signal = 0          # prctl(PR_SET_PDEATHSIG): sent when the parent exits
        self.dumpable = 1               # prctl(PR_SET_DUMPABLE)
        self.child_subreaper = False    # prctl(PR_SET_CHILD_SUBREAPER)
        self.no_new_privs = False       # prctl(PR_SET_NO_NEW_PRIVS): kept across fork and exec
        self.on_rq = False              # on the run queue (kernel/sched.py)
        self.restart = None             # the continuation of a sleeping syscall
        self.wake_at = 0                # TSC deadline of a timed sleep, 0: none
        self.alarm = None               # alarm(2)'s pending timer (kernel/time.py)
        self.vfork_parent = None        # the parent a vfork child releases at exec/exit
        self.kthread = None             # a kernel thread's work: fn() -> more to do (kernel/kthread.py)
        self.kthread_period = 0         # ms between its periodic wake-ups, 0: only when woken
        self.kthread_timer = False      # a one-off wake-up is armed (KThreads.wake_after)
        self.wait_chldexit = WaitQueue()    # this task in wait4 (kernel/exit.py)
        self.wait_vfork = WaitQueue()       # this task in vfork, until the child execs or exits
        self.stop_reported = True       # a stop already seen by wait4(WUNTRACED)
        self.continued = False          # a SIGCONT not yet seen by wait4(WCONTINUED)
        self.nice = 0                   # -20..19 (setpriority): the slice's weight (kernel/sched.py)
        self.nice_utime = 0             # ring-3 TSC while nice > 0, up to nice_since (cputime.py)
        self.nice_since = 0             # t.utime when nice last turned positive
        self.sas_ss_sp = 0              # the alternate signal stack (sigaltstack): base,
        self.sas_ss_size = 0            # size (0: none)
        self.sas_ss_flags = 0           # and SS_AUTODISARM
        self.syscall_trace = None       # fn(t, nr, ret) after each system call (a tracer: memleak)
        # memory
        self.mm = mm                    # MmStruct; None for kernel threads
        self.segv = 0                   # SIGSEGVs reported for this process
        self.heap = None                # the console malloc demo's state (demo/umalloc.py)
        self.oom_score_adj = 0          # -1000..1000 (/proc/<pid>/oom_score_adj)
        self.oom_pending = False        # chosen by the OOM killer while busy: reaped later
        self.min_flt = 0                # faults that needed no I/O
        self.maj_flt = 0                # faults that read a disk
        self.cmin_flt = 0               # reaped children's (/proc/PID/stat cminflt, wait4's rusage)
        self.cmaj_flt = 0
        # user-mode context (None: a process the console made, which never runs)
        self.regs = None                # array('q'): struct pt_regs and the rest (arch/x86/ptrace.py)
        self.fpu = None                 # the FXSAVE image (bytearray, hw.fpu_init's layout)
        self.clear_child_tid = 0        # set_tid_address / CLONE_CHILD_CLEARTID
        self.robust_list = 0            # set_robust_list's head (kept, not walked)
        # files and file system context
        self.files = None               # FdTable (fs/file.py)
        self.open_file = None           # the File a sleeping open holds, no descriptor yet
                                        # (a FIFO's wait_for_partner: its kernel stack's reference)
        self.fs = None                  # FsStruct: cwd, umask (fs/fs_struct.py)
        # signals (kernel/signal.py)
        self.sighand = None             # SigHand: the 64 sigactions
        self.pending = 0                # bit n-1: signal n pending
        self.siginfo = {}               # signal -> [siginfo tuples]: one, or a queue for real-time signals
        self.blocked = 0                # the signal mask
        self.saved_sigmask = None       # restored after a handler frame of rt_sigsuspend
        # accounting (TSC ticks, turned into clock ticks by /proc)
        self.utime = 0
        self.stime = 0
        self.cutime = 0                 # reaped children's, for wait4's rusage and times()
        self.cstime = 0
        self.maxrss_kb = 0              # the peak RSS, kept at exit for wait4's rusage
        self.start_time = 0             # jiffies at fork
        self.nvcsw = 0                  # voluntary context switches (slept)
        self.nivcsw = 0                 # involuntary (preempted)
        self.syscalls = {}              # Linux number -> calls (/proc/<pid>/syscalls; fork starts at 0)
        self.rlim = None                # list of [cur, max] by RLIMIT_* (kernel/sys.py)

    def new_user_context(self):
        """The register and FPU images of a task that runs in ring 3."""
        self.regs = new_regs()
        self.fpu = new_fpu(self.k.hw)

    def is_user(self):
        return self.regs is not None

    def __repr__(self):
        return "<Task %d %s %s>" % (self.pid, self.comm, self.state)
