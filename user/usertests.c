/*
 * usertests: a test suite for a kernel that runs Linux x86-64 programs,
 * in the spirit of xv6's user/usertests.c: each test is a function; the
 * runner runs each one in a child process of its own (fork + wait4), in a
 * fresh directory of its own, and prints
 *
 *     test NAME: OK
 *     test NAME: FAILED line N: what went wrong
 *     test NAME: SKIPPED why        (only tests that need something absent)
 *
 * then "ALL TESTS PASSED" (exit 0) or "SOME TESTS FAILED: names" (exit 1).
 * Notes a tolerant test wants to leave (what it tolerated) follow its line,
 * indented, as "    note: ...".
 *
 * It is a Linux program: every test passes on Linux (Debian's 6.1 and newer
 * kernels) and states Linux's answer: the system call numbers of x86-64,
 * their argument rules and errno values, error paths included. Raw
 * syscall(SYS_x, ...) is used wherever glibc would hide or change the
 * kernel's answer (EFAULT, old syscalls glibc no longer calls, such as open,
 * stat, access, dup2, fork, getrlimit); libc wrappers elsewhere.
 *
 * usage: usertests [-l] [-x] [-s] [-k] [-v] [-d DIR] [-t SECONDS] [-b DIR] [NAME...]
 *   -l          list the tests (name, [extra], what each asserts) and exit
 *   -x          also run the extra tests (marked [extra] by -l: threads,
 *               hard links/symlinks/modes, which need a Linux file system such
 *               as tmpfs (-d /tmp), and tty, which needs a terminal)
 *   -s          single process: run the tests in the runner itself, no fork
 *               per test (for a kernel whose fork is not there yet)
 *   -k          keep each test's directory
 *   -v          print each test's notes even when it passes (the default)
 *               and the runner's own steps
 *   -d DIR      work in DIR (default $USERTESTS_DIR, else the current
 *               directory); the runner makes DIR/ut-PID/NAME for each test
 *   -t SECONDS  per-test alarm() (default 300; 0: none)
 *   -b DIR      the test ELF files of mkbadelf.sh with their EXPECT list
 *               (default $UT_BADELF_DIR, else badelf/ in this program's
 *               folder, else badelf/ beside it: /mnt/bin/usertests finds
 *               /mnt/badelf)
 *   NAME...     run only these tests (extra ones included when named)
 *
 * File system. The kernel runs this on a FAT file system (VFAT long names,
 * mounted at /mnt), so the default tests never rely on hard links,
 * symlinks, permission bits, owners, timestamps, case sensitivity or inode
 * numbers staying the same across renames. Tests that need those are extras
 * (-x): `links` (link, symlink, readlink, lstat on a symlink, st_nlink) and
 * `modes` (umask applied to new files' modes, chmod). Names used by the
 * default tests differ in more than case.
 *
 * Tolerant checks (each leaves a note when it tolerates):
 *   - mmap_file_private: a MAP_PRIVATE page not yet written showing a later
 *     write() to the file (Linux shows it; POSIX leaves it unspecified);
 *   - futex_shared: the waker's FUTEX_WAKE finding the waiter (0 is
 *     tolerated when the child was not asleep yet, a scheduling matter);
 *   - rseq: ENOSYS is accepted;
 *   - sigchld: a child killed by SIGSEGV is CLD_KILLED or CLD_DUMPED
 *     (depends on RLIMIT_CORE);
 *   - manyfds: when RLIMIT_NOFILE cannot be lowered, the current soft
 *     limit is used (if it is at most 4096);
 *   - sigprocmask: rt_sigpending answering ENOSYS (it is not in the
 *     required list) only skips that check;
 *   - clocks: CLOCK_REALTIME is only required to be >= 0 (no RTC needed);
 *   - open_errors: looking up a 256-byte name may be ENOENT (Linux's vfat)
 *     or ENAMETOOLONG (ext4, tmpfs); creating one must be ENAMETOOLONG;
 *   - demand_paging: a touched page may bring a transparent huge page's
 *     2 MiB around it (Linux with THP); nothing else may be resident;
 *   - ids, setpgid_setsid: process group 0 (init's, when nothing called
 *     setsid) is accepted, and then not joined by number.
 *
 * Pointers. "bad pointer" means each of: 0x10 (the never-mapped page 0),
 * 0x100000000000 (unmapped user space), a PROT_NONE page, 0xffff888000000000
 * (kernel memory) and 0x8000000000000000 (non-canonical): every syscall that
 * takes a pointer is called with each and must answer EFAULT (nothing
 * written, no crash, no oops). Exceptions, by Linux's rules: set_tid_address,
 * set_robust_list and clone's tid pointers only store the pointer (no
 * EFAULT); nanosleep's `rem` is written only on EINTR; ioctl(TCGETS) on a
 * non-tty answers ENOTTY before looking at its pointer; rseq is not called
 * with a bad pointer (Linux would accept it and SIGSEGV on return); the
 * EFAULT of wait4 is checked with one pointer only (the child is reaped).
 *
 * The syscalls (x86-64 numbers) and the tests that cover them:
 *   read 0, write 1: rw_basic rw_errors pipe*   readv 19, writev 20: readv_writev
 *   pread64 17, pwrite64 18: pread_pwrite       open 2: open_errors (+ most)
 *   openat 257: openat   close 3: close   lseek 8: lseek holes
 *   stat 4, fstat 5, lstat 6, newfstatat 262: stat
 *   access 21, faccessat 269: access   getdents64 217: getdents longnames
 *   mkdir 83: mkdir   unlink 87: unlink unlink_open   rename 82: rename
 *   fsync 74, sync 162: fsync_sync
 *   mmap 9: mmap_anon mmap_fixed mmap_populate demand_paging mmap_file_*
 *   munmap 11: mmap_anon munmap_split   mprotect 10: mprotect
 *   mremap 25: mremap   madvise 28: madvise   mincore 27: demand_paging
 *   msync 26: mmap_file_shared   brk 12: brk
 *   rt_sigaction 13, rt_sigprocmask 14, rt_sigreturn 15: sigaction
 *     sigprocmask sigreturn_regs sig_async_regs sig_ucontext sigreturn_bad
 *   kill 62, tgkill 234: kill tgkill sigchld
 *   getpid 39, getppid 110, gettid 186, getuid 102, geteuid 107, getgid 104,
 *     getegid 108, getpgid 121: ids   setpgid 109, setsid 112: setpgid_setsid
 *   fork 57, vfork 58, clone 56: fork_wait vfork clone   execve 59: exec*
 *   exit 60, exit_group 231, wait4 61: fork_wait sigchld
 *   uname 63: uname   arch_prctl 158: arch_prctl
 *   set_tid_address 218, set_robust_list 273, rseq 334: tid_robust_rseq
 *   prlimit64 302, getrlimit 97: prlimit manyfds   getrandom 318: getrandom
 *   clock_gettime 228, gettimeofday 96: clocks
 *   nanosleep 35, clock_nanosleep 230: nanosleep   sched_yield 24: sched_yield
 *   pipe 22, pipe2 293: pipe pipe_block pipe_atomic   dup 32, dup2 33,
 *     dup3 292: dup   fcntl 72: fcntl   ioctl 16: ioctl
 *   eventfd2 290: eventfd   sysinfo 99: sysinfo   getcwd 79, chdir 80: cwd
 *   umask 95: umask   futex 202: futex futex_shared
 * Also used, beyond that list (a Linux user relies on them): rmdir 84
 * (rmdir, and the runner's clean-up), ftruncate 77 (trunc), fdatasync 75
 * (fsync_sync), getsid 124 (setpgid_setsid), rt_sigpending 127
 * (sigprocmask, tolerant: ENOSYS skips that check), alarm 37 (the runner's
 * per-test timeout; ENOSYS is ignored), and what glibc's static start-up
 * calls before main: brk, arch_prctl(ARCH_SET_FS), set_tid_address,
 * set_robust_list, rseq, prlimit64(RLIMIT_STACK), readlink("/proc/self/exe")
 * (a failure is fine), getrandom(8 bytes, GRND_NONBLOCK), mprotect (RELRO),
 * then newfstatat(1, "", AT_EMPTY_PATH) and ioctl(1, TCGETS) at the first
 * printf. Children that wait to be killed sleep in nanosleep, not pause.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003

#define PG 4096L

/* ------------------------------------------------------------------ */
/* The runner's state and the failure machinery                       */

static char self_exe[PATH_MAX];     /* absolute path of this program */
static char badelf_dir[PATH_MAX];
static int opt_nofork, opt_verbose, opt_keep, opt_extra;
static int opt_timeout = 300;
static int report_fd = 2;           /* where fail/note/skip messages go */
static pid_t test_pid;              /* the process running the test */
static sigjmp_buf nofork_jb;        /* -s: fail() jumps back to the runner */
static int notes_left = 20;
/* each test runs in a process group of its own, so that what it leaves
 * running can be killed; not when stdin is a terminal (a background group
 * would be stopped by SIGTTOU/SIGTTIN at its first terminal ioctl) */
static int own_pgrp;

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static const char *bad_desc;        /* set while looping over bad pointers */

static void report(char kind, int line, const char *fmt, va_list ap)
{
    char buf[1200];
    int n = 0;
    buf[n++] = kind;
    buf[n++] = ':';
    if (line)
        n += snprintf(buf + n, 40, "line %d: ", line);
    n += vsnprintf(buf + n, sizeof buf - n - 80, fmt, ap);
    if (n > (int)sizeof buf - 80)
        n = sizeof buf - 80;
    if (bad_desc)
        n += snprintf(buf + n, 80, " [bad pointer: %s]", bad_desc);
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(report_fd, buf + off, n - off);
        if (w <= 0)
            break;
        off += w;
    }
}

static void __attribute__((noreturn)) end_process(int code)
{
    if (opt_nofork && getpid() == test_pid)
        siglongjmp(nofork_jb, code);
    _exit(code);
}

static void __attribute__((noreturn, format(printf, 2, 3))) fail_at(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report('F', line, fmt, ap);
    va_end(ap);
    end_process(1);
}

static void __attribute__((noreturn, format(printf, 1, 2))) skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report('S', 0, fmt, ap);
    va_end(ap);
    end_process(77);
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
    if (notes_left-- <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    report('N', 0, fmt, ap);
    va_end(ap);
}

#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
#define CHECK(c) do { if (!(c)) FAIL("check failed: %s", #c); } while (0)
#define CHECKM(c, ...) do { if (!(c)) FAIL(__VA_ARGS__); } while (0)
/* e must succeed (not -1 / MAP_FAILED); its value is returned as a long */
#define OK(e) ({ errno = 0; long _r = (long)(e); \
    if (_r == -1) { FAIL("%s failed: %s", #e, en(errno)); } \
    _r; })
/* e must fail with -1 and errno == want */
#define ERR(e, want) do { errno = 0; long _r = (long)(e); int _e = errno; \
    if (_r != -1 || _e != (want)) \
        FAIL("%s: expected %s, got %ld%s%s", #e, en(want), _r, \
             _r == -1 ? " " : "", _r == -1 ? en(_e) : ""); } while (0)
/* e must fail with one of two errnos */
#define ERR2(e, w1, w2) do { errno = 0; long _r = (long)(e); int _e = errno; \
    if (_r != -1 || (_e != (w1) && _e != (w2))) \
        FAIL("%s: expected %s or %s, got %ld%s%s", #e, en(w1), en(w2), _r, \
             _r == -1 ? " " : "", _r == -1 ? en(_e) : ""); } while (0)

/* ------------------------------------------------------------------ */
/* Bad pointers                                                       */

struct badptr { void *p; const char *name; };
static struct badptr bad_ptr[5];
#define NBAD 5
#define FOR_BAD(v) for (int _bi = 0; \
    _bi < NBAD ? ((v) = bad_ptr[_bi].p, bad_desc = bad_ptr[_bi].name, 1) \
               : (bad_desc = NULL, 0); _bi++)

static void init_bad_ptrs(void)
{
    void *none = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bad_ptr[0] = (struct badptr){(void *)0x10, "0x10 (page 0)"};
    bad_ptr[1] = (struct badptr){(void *)0x100000000000UL, "0x100000000000 (unmapped)"};
    bad_ptr[2] = (struct badptr){none == MAP_FAILED ? (void *)0x20 : none, "PROT_NONE page"};
    bad_ptr[3] = (struct badptr){(void *)0xffff888000000000UL, "0xffff888000000000 (kernel)"};
    bad_ptr[4] = (struct badptr){(void *)0x8000000000000000UL, "0x8000000000000000 (non-canonical)"};
}

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static long sys_open(const char *path, int flags, int mode)
{
    return syscall(SYS_open, path, flags, mode);
}

static void put_file(const char *name, const void *data, size_t n)
{
    int fd = OK(sys_open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644));
    for (size_t off = 0; off < n;) {
        long w = OK(write(fd, (const char *)data + off, n - off));
        CHECKM(w > 0, "put_file(%s): write returned 0", name);
        off += w;
    }
    OK(close(fd));
}

static void put_str(const char *name, const char *s)
{
    put_file(name, s, strlen(s));
}

/* reads up to max bytes of a file; returns the count */
static size_t get_file(const char *name, void *buf, size_t max)
{
    int fd = OK(sys_open(name, O_RDONLY, 0));
    size_t n = 0;
    while (n < max) {
        long r = OK(read(fd, (char *)buf + n, max - n));
        if (r == 0)
            break;
        n += r;
    }
    OK(close(fd));
    return n;
}

static void check_content(const char *name, const char *want)
{
    char buf[4096];
    size_t n = get_file(name, buf, sizeof buf - 1);
    buf[n] = 0;
    CHECKM(n == strlen(want) && memcmp(buf, want, n) == 0,
           "%s holds \"%s\", expected \"%s\"", name, buf, want);
}

static int exists(const char *path)
{
    struct stat st;
    return syscall(SYS_stat, path, &st) == 0;
}

static unsigned char pat(size_t i, unsigned seed)
{
    uint32_t x = (uint32_t)(i * 2654435761u) ^ (seed * 40503u) ^ (uint32_t)(i >> 12);
    return (unsigned char)(x ^ (x >> 13) ^ (x >> 24));
}

static void fill_pat(void *buf, size_t n, size_t base, unsigned seed)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < n; i++)
        b[i] = pat(base + i, seed);
}

/* -1 when buf holds the pattern, else the first offset that differs */
static long check_pat(const void *buf, size_t n, size_t base, unsigned seed)
{
    const unsigned char *b = buf;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat(base + i, seed))
            return i;
    return -1;
}

static int all_bytes(const void *buf, size_t n, unsigned char v)
{
    const unsigned char *b = buf;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

static double mono(void)
{
    struct timespec t;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void msleep(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (syscall(SYS_nanosleep, &t, &t) == -1 && errno == EINTR)
        ;
}

/* waits (polling) until *flag is non-zero; fails after 30 s */
#define AWAIT(flag) do { double _t0 = mono(); \
    while (!(flag)) { CHECKM(mono() - _t0 < 30, "waited 30 s for %s", #flag); msleep(1); } \
    } while (0)

static pid_t xfork(void)
{
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", en(errno));
    if (pid == 0)
        notes_left = 10;
    return pid;
}

static int xwait(pid_t pid)
{
    int st;
    long r;
    do
        r = syscall(SYS_wait4, pid, &st, 0, NULL);
    while (r == -1 && errno == EINTR);
    CHECKM(r == pid, "wait4(%d) returned %ld (%s)", pid, r, r < 0 ? en(errno) : "");
    return st;
}

static const char *signame(int sig)
{
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

static void describe_status(int st, char *out, size_t n)
{
    if (WIFEXITED(st))
        snprintf(out, n, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, n, "killed by signal %d (SIG%s)", WTERMSIG(st), signame(WTERMSIG(st)));
    else
        snprintf(out, n, "status %#x", st);
}

#define EXPECT_EXIT(pid, code) do { int _st = xwait(pid); char _d[64]; \
    describe_status(_st, _d, sizeof _d); \
    CHECKM(WIFEXITED(_st) && WEXITSTATUS(_st) == (code), \
           "child %s: %s, expected exit %d", #pid, _d, (code)); } while (0)
#define EXPECT_SIG(pid, sig) do { int _st = xwait(pid); char _d[64]; \
    describe_status(_st, _d, sizeof _d); \
    CHECKM(WIFSIGNALED(_st) && WTERMSIG(_st) == (sig), \
           "child %s: %s, expected death by SIG%s", #pid, _d, signame(sig)); } while (0)

/* a pid that existed a moment ago and is now reaped: nothing has it */
static pid_t dead_pid(void)
{
    pid_t pid = xfork();
    if (pid == 0)
        _exit(0);
    xwait(pid);
    return pid;
}

static void *xmap(size_t len, int prot, int flags)
{
    return (void *)OK(mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0));
}

static void *shared_page(size_t len)
{
    return xmap(len, PROT_READ | PROT_WRITE, MAP_SHARED);
}

/* ------------------------------------------------------------------ */
/* Probing an access: which signal it raises, with what siginfo       */

static sigjmp_buf probe_jb;
static siginfo_t probe_si;
/* the probed address is stored here so that it escapes: without it gcc may
 * prove a local array's address never reaches memory and fold
 * si_addr == &local to false */
void *volatile probe_addr;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    probe_si = *si;
    siglongjmp(probe_jb, sig);
}

enum { P_READ, P_WRITE, P_EXEC };

/* 0 if the access worked, else the signal it raised (probe_si holds the
 * siginfo); a write stores val */
static int __attribute__((noinline)) probe(volatile void *addr, int kind, unsigned char val)
{
    struct sigaction sa, o1, o2;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = probe_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &o1);
    sigaction(SIGBUS, &sa, &o2);
    memset(&probe_si, 0, sizeof probe_si);
    probe_addr = (void *)addr;
    int sig = sigsetjmp(probe_jb, 1);
    if (sig == 0) {
        if (kind == P_READ)
            (void)*(volatile unsigned char *)addr;
        else if (kind == P_WRITE)
            *(volatile unsigned char *)addr = val;
        else
            ((void (*)(void))addr)();
    }
    sigaction(SIGSEGV, &o1, NULL);
    sigaction(SIGBUS, &o2, NULL);
    return sig;
}

#define EXPECT_FAULT(addr, kind, sig, code) do { \
    void *_a = (void *)(addr); int _k = (kind); int _s = probe(_a, _k, 0x5a); \
    CHECKM(_s == (sig), "%s of %p (%s): signal %d, expected %d", \
           _k == P_READ ? "read" : _k == P_WRITE ? "write" : "exec", _a, #addr, _s, sig); \
    CHECKM(probe_si.si_addr == _a, "si_addr %p, expected %p (%s)", probe_si.si_addr, _a, #addr); \
    CHECKM(probe_si.si_code == (code), "si_code %d, expected %d (%s)", probe_si.si_code, code, #code); \
    } while (0)
#define EXPECT_ACCESS(addr, kind) do { void *_a = (void *)(addr); \
    int _s = probe(_a, kind, 0x5a); \
    CHECKM(_s == 0, "access to %p (%s) raised signal %d (si_addr %p)", _a, #addr, _s, \
           probe_si.si_addr); } while (0)

static int resident(void *p, size_t len, unsigned char *vec)
{
    if (mincore(p, len, vec) != 0)
        FAIL("mincore(%p, %zu): %s", p, len, en(errno));
    int n = 0;
    for (size_t i = 0; i < (len + PG - 1) / PG; i++)
        n += vec[i] & 1;
    return n;
}

/* ================================================================== */
/* Files                                                              */

static void t_rw_basic(void)
{
    char buf[100];
    int fd = OK(sys_open("f", O_CREAT | O_RDWR, 0644));
    CHECK(OK(write(fd, "hello world", 11)) == 11);
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 11);
    CHECK(OK(lseek(fd, 0, SEEK_SET)) == 0);
    CHECK(OK(read(fd, buf, sizeof buf)) == 11);
    CHECK(memcmp(buf, "hello world", 11) == 0);
    CHECK(OK(read(fd, buf, sizeof buf)) == 0);          /* end of file */
    CHECK(OK(read(fd, buf, 0)) == 0);
    CHECK(OK(write(fd, buf, 0)) == 0);
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == 11);
    /* short reads at the end, then 0 */
    OK(lseek(fd, 6, SEEK_SET));
    CHECK(OK(read(fd, buf, 4)) == 4 && memcmp(buf, "worl", 4) == 0);
    CHECK(OK(read(fd, buf, 4)) == 1 && buf[0] == 'd');
    OK(close(fd));
    check_content("f", "hello world");
    fd = OK(sys_open("f", O_RDONLY, 0));
    ERR(write(fd, "x", 1), EBADF);
    OK(close(fd));
    fd = OK(sys_open("f", O_WRONLY, 0));
    ERR(read(fd, buf, 1), EBADF);
    CHECK(OK(write(fd, "J", 1)) == 1);      /* no O_TRUNC: overwrite in place */
    OK(close(fd));
    check_content("f", "Jello world");
}

static void t_rw_errors(void)
{
    char buf[256];
    void *bad;
    ERR(read(-1, buf, 1), EBADF);
    ERR(write(-1, buf, 1), EBADF);
    int c = OK(sys_open("f", O_CREAT | O_RDWR, 0644));
    OK(close(c));
    ERR(read(c, buf, 1), EBADF);
    ERR(write(c, buf, 1), EBADF);
    ERR(read(INT_MAX, buf, 1), EBADF);

    memset(buf, 'a', sizeof buf);
    put_file("f", buf, sizeof buf);
    int fd = OK(sys_open("f", O_RDWR, 0));
    FOR_BAD(bad) {
        OK(lseek(fd, 0, SEEK_SET));
        ERR(syscall(SYS_read, fd, bad, 100), EFAULT);
        ERR(syscall(SYS_write, fd, bad, 100), EFAULT);
    }
    struct stat st;
    OK(fstat(fd, &st));
    CHECKM(st.st_size == 256, "size %ld after writes from bad buffers", (long)st.st_size);
    OK(lseek(fd, 0, SEEK_SET));
    CHECK(OK(read(fd, buf, sizeof buf)) == 256 && all_bytes(buf, 256, 'a'));
    OK(close(fd));

    /* a directory: read is EISDIR, write needs a write open (EISDIR) */
    OK(syscall(SYS_mkdir, "d", 0755));
    int dfd = OK(sys_open("d", O_RDONLY | O_DIRECTORY, 0));
    ERR(read(dfd, buf, 10), EISDIR);
    ERR(write(dfd, buf, 10), EBADF);
    OK(close(dfd));

    /* pipes: data waiting, so a bad buffer is the only problem */
    int p[2];
    OK(syscall(SYS_pipe, p));
    CHECK(OK(write(p[1], "0123456789", 10)) == 10);
    FOR_BAD(bad) {
        ERR(syscall(SYS_read, p[0], bad, 5), EFAULT);
        ERR(syscall(SYS_write, p[1], bad, 5), EFAULT);
    }
    CHECK(OK(write(p[1], "ab", 2)) == 2);
    long n = OK(read(p[0], buf, sizeof buf));
    CHECKM(n == 12 && memcmp(buf, "0123456789ab", 12) == 0,
           "pipe holds %ld bytes \"%.*s\" after EFAULTs, expected 0123456789ab",
           n, (int)n, buf);
    OK(close(p[0]));
    OK(close(p[1]));
}

static void t_readv_writev(void)
{
    void *bad;
    int fd = OK(sys_open("f", O_CREAT | O_RDWR | O_TRUNC, 0644));
    struct iovec w[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
    CHECK(OK(syscall(SYS_writev, fd, w, 3)) == 6);
    CHECK(OK(syscall(SYS_writev, fd, w, 0)) == 0);
    OK(lseek(fd, 0, SEEK_SET));
    char a[1], b[3], c[10];
    struct iovec r[3] = {{a, 1}, {b, 3}, {c, 10}};
    CHECK(OK(syscall(SYS_readv, fd, r, 3)) == 6);
    CHECK(a[0] == 'a' && memcmp(b, "bcd", 3) == 0 && memcmp(c, "ef", 2) == 0);
    CHECK(OK(syscall(SYS_readv, fd, r, 3)) == 0);       /* end of file */
    CHECK(OK(syscall(SYS_readv, fd, r, 0)) == 0);

    ERR(syscall(SYS_writev, fd, w, -1), EINVAL);
    ERR(syscall(SYS_writev, fd, w, 1025), EINVAL);      /* > IOV_MAX */
    ERR(syscall(SYS_readv, fd, r, 1025), EINVAL);
    struct iovec huge = {c, (size_t)-1};                /* does not fit ssize_t */
    ERR(syscall(SYS_readv, fd, &huge, 1), EINVAL);
    ERR(syscall(SYS_writev, -1, w, 3), EBADF);
    ERR(syscall(SYS_readv, -1, r, 3), EBADF);
    FOR_BAD(bad) {
        ERR(syscall(SYS_writev, fd, bad, 1), EFAULT);
        ERR(syscall(SYS_readv, fd, bad, 1), EFAULT);
        struct iovec bv = {bad, 4};
        ERR(syscall(SYS_writev, fd, &bv, 1), EFAULT);
        OK(lseek(fd, 0, SEEK_SET));
        ERR(syscall(SYS_readv, fd, &bv, 1), EFAULT);
    }
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == 6);
    OK(close(fd));

    /* on a pipe too */
    int p[2];
    OK(syscall(SYS_pipe, p));
    CHECK(OK(syscall(SYS_writev, p[1], w, 3)) == 6);
    memset(c, 0, sizeof c);
    struct iovec r2[2] = {{a, 1}, {c, 10}};
    CHECK(OK(syscall(SYS_readv, p[0], r2, 2)) == 6);
    CHECK(a[0] == 'a' && memcmp(c, "bcdef", 5) == 0);
    close(p[0]);
    close(p[1]);
    int ro = OK(sys_open("f", O_RDONLY, 0));
    ERR(syscall(SYS_writev, ro, w, 3), EBADF);
    close(ro);
}

static void t_pread_pwrite(void)
{
    void *bad;
    char buf[64];
    put_str("f", "0123456789");
    int fd = OK(sys_open("f", O_RDWR, 0));
    OK(lseek(fd, 2, SEEK_SET));
    CHECK(OK(syscall(SYS_pread64, fd, buf, 3, 4)) == 3 && memcmp(buf, "456", 3) == 0);
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 2);             /* offset untouched */
    CHECK(OK(syscall(SYS_pwrite64, fd, "XY", 2, 8)) == 2);
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 2);
    CHECK(OK(syscall(SYS_pread64, fd, buf, 64, 0)) == 10 && memcmp(buf, "01234567XY", 10) == 0);
    CHECK(OK(syscall(SYS_pread64, fd, buf, 64, 100)) == 0);
    CHECK(OK(syscall(SYS_pwrite64, fd, "Z", 1, 20)) == 1);      /* hole 10..19 */
    CHECK(OK(syscall(SYS_pread64, fd, buf, 64, 0)) == 21);
    CHECK(all_bytes(buf + 10, 10, 0) && buf[20] == 'Z');
    ERR(syscall(SYS_pread64, fd, buf, 1, -1L), EINVAL);
    ERR(syscall(SYS_pwrite64, fd, buf, 1, -1L), EINVAL);
    ERR(syscall(SYS_pread64, -1, buf, 1, 0), EBADF);
    ERR(syscall(SYS_pwrite64, -1, buf, 1, 0), EBADF);
    FOR_BAD(bad) {
        ERR(syscall(SYS_pread64, fd, bad, 5, 0), EFAULT);
        ERR(syscall(SYS_pwrite64, fd, bad, 5, 0), EFAULT);
    }
    OK(close(fd));
    int wo = OK(sys_open("f", O_WRONLY, 0));
    ERR(syscall(SYS_pread64, wo, buf, 1, 0), EBADF);
    OK(close(wo));
    int p[2];
    OK(syscall(SYS_pipe, p));
    ERR(syscall(SYS_pread64, p[0], buf, 1, 0), ESPIPE);
    ERR(syscall(SYS_pwrite64, p[1], buf, 1, 0), ESPIPE);
    close(p[0]);
    close(p[1]);
    OK(syscall(SYS_mkdir, "d", 0755));
    int dfd = OK(sys_open("d", O_RDONLY, 0));
    ERR(syscall(SYS_pread64, dfd, buf, 1, 0), EISDIR);
    close(dfd);
}

static void t_open_errors(void)
{
    void *bad;
    static char longname[300], longpath[5000];
    ERR(sys_open("nonexistent", O_RDONLY, 0), ENOENT);
    ERR(sys_open("nodir/x", O_CREAT | O_RDWR, 0644), ENOENT);
    ERR(sys_open("", O_RDONLY, 0), ENOENT);
    ERR(sys_open("", O_CREAT | O_RDWR, 0644), ENOENT);
    put_str("file", "x");
    ERR(sys_open("file/x", O_RDONLY, 0), ENOTDIR);
    ERR(sys_open("file/x", O_CREAT | O_RDWR, 0644), ENOTDIR);
    ERR(sys_open("file/", O_RDONLY, 0), ENOTDIR);
    ERR(sys_open("file", O_RDONLY | O_DIRECTORY, 0), ENOTDIR);
    OK(syscall(SYS_mkdir, "d", 0755));
    ERR(sys_open("d", O_WRONLY, 0), EISDIR);
    ERR(sys_open("d", O_RDWR, 0), EISDIR);
    ERR(sys_open("d", O_CREAT | O_RDWR, 0644), EISDIR);
    ERR(sys_open("d", O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);
    ERR(sys_open("file", O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);
    OK(close(OK(sys_open("d", O_RDONLY, 0))));
    OK(close(OK(sys_open("d", O_RDONLY | O_DIRECTORY, 0))));
    OK(close(OK(sys_open("d/", O_RDONLY, 0))));
    OK(close(OK(sys_open(".", O_RDONLY, 0))));
    OK(close(OK(sys_open("d/../file", O_RDONLY, 0))));
    OK(close(OK(sys_open("./d/./../file", O_RDONLY, 0))));
    memset(longname, 'n', 256);                   /* NAME_MAX is 255 */
    /* looking a 256-byte name up: ENAMETOOLONG on ext4 and tmpfs, but Linux's
     * vfat just finds nothing (ENOENT); creating one is ENAMETOOLONG on all */
    ERR2(sys_open(longname, O_RDONLY, 0), ENAMETOOLONG, ENOENT);
    ERR(sys_open(longname, O_CREAT | O_RDWR, 0644), ENAMETOOLONG);
    for (int i = 0; i < 4998; i += 2)             /* longer than PATH_MAX */
        longpath[i] = 'a', longpath[i + 1] = '/';
    ERR(sys_open(longpath, O_RDONLY, 0), ENAMETOOLONG);
    FOR_BAD(bad) {
        ERR(sys_open(bad, O_RDONLY, 0), EFAULT);
        ERR(sys_open(bad, O_CREAT | O_RDWR, 0644), EFAULT);
    }
    /* O_CLOEXEC on open sets FD_CLOEXEC; it is not a status flag */
    int fd = OK(sys_open("file", O_RDONLY | O_CLOEXEC, 0));
    CHECK(OK(fcntl(fd, F_GETFD)) == FD_CLOEXEC);
    OK(close(fd));
    fd = OK(sys_open("file", O_RDONLY, 0));
    CHECK(OK(fcntl(fd, F_GETFD)) == 0);
    OK(close(fd));
}

static void t_openat(void)
{
    void *bad;
    char buf[64], cwd[PATH_MAX], abs[PATH_MAX + 16];
    OK(syscall(SYS_mkdir, "d", 0755));
    put_str("d/f", "in d");
    put_str("top", "top");
    int dfd = OK(sys_open("d", O_RDONLY | O_DIRECTORY, 0));
    int fd = OK(syscall(SYS_openat, dfd, "f", O_RDONLY, 0));
    CHECK(OK(read(fd, buf, sizeof buf)) == 4 && memcmp(buf, "in d", 4) == 0);
    OK(close(fd));
    fd = OK(syscall(SYS_openat, dfd, "g", O_CREAT | O_WRONLY, 0644));
    OK(close(fd));
    CHECK(exists("d/g"));
    ERR(syscall(SYS_openat, dfd, "g", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    ERR(syscall(SYS_openat, dfd, "missing", O_RDONLY, 0), ENOENT);
    fd = OK(syscall(SYS_openat, dfd, "../top", O_RDONLY, 0));
    OK(close(fd));
    fd = OK(syscall(SYS_openat, AT_FDCWD, "d/f", O_RDONLY, 0));
    OK(close(fd));
    int ffd = OK(sys_open("top", O_RDONLY, 0));
    ERR(syscall(SYS_openat, ffd, "x", O_RDONLY, 0), ENOTDIR);
    ERR(syscall(SYS_openat, -5, "f", O_RDONLY, 0), EBADF);
    ERR(syscall(SYS_openat, 999, "f", O_RDONLY, 0), EBADF);
    /* an absolute path ignores the directory fd, even an invalid one */
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(abs, sizeof abs, "%s/d/f", cwd);
    fd = OK(syscall(SYS_openat, -5, abs, O_RDONLY, 0));
    OK(close(fd));
    fd = OK(syscall(SYS_openat, ffd, abs, O_RDONLY, 0));
    OK(close(fd));
    FOR_BAD(bad)
        ERR(syscall(SYS_openat, dfd, bad, O_RDONLY, 0), EFAULT);
    OK(close(ffd));
    OK(close(dfd));
}

static void t_close(void)
{
    put_str("f", "x");
    int fd = OK(sys_open("f", O_RDONLY, 0));
    OK(close(fd));
    ERR(close(fd), EBADF);
    ERR(close(-1), EBADF);
    ERR(close(INT_MAX), EBADF);
    /* the lowest free number is reused */
    int a = OK(sys_open("f", O_RDONLY, 0));
    int b = OK(sys_open("f", O_RDONLY, 0));
    CHECK(b > a);
    OK(close(a));
    int c = OK(sys_open("f", O_RDONLY, 0));
    CHECKM(c == a, "open after close(%d) returned %d", a, c);
    OK(close(b));
    OK(close(c));
}

static void t_lseek(void)
{
    char buf[16];
    put_str("f", "0123456789");
    int fd = OK(sys_open("f", O_RDWR, 0));
    CHECK(OK(lseek(fd, 0, SEEK_END)) == 10);
    CHECK(OK(lseek(fd, -3, SEEK_END)) == 7);
    CHECK(OK(read(fd, buf, 1)) == 1 && buf[0] == '7');
    CHECK(OK(lseek(fd, 1, SEEK_CUR)) == 9);
    CHECK(OK(lseek(fd, -9, SEEK_CUR)) == 0);
    CHECK(OK(lseek(fd, 100, SEEK_SET)) == 100);         /* past the end is fine */
    CHECK(OK(read(fd, buf, 1)) == 0);
    ERR(lseek(fd, -1, SEEK_SET), EINVAL);
    ERR(lseek(fd, -20, SEEK_END), EINVAL);
    ERR(lseek(fd, -200, SEEK_CUR), EINVAL);
    ERR(lseek(fd, 0, 99), EINVAL);
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 100);           /* failures move nothing */
    ERR(lseek(-1, 0, SEEK_SET), EBADF);
    int p[2];
    OK(syscall(SYS_pipe, p));
    ERR(lseek(p[0], 0, SEEK_SET), ESPIPE);
    ERR(lseek(p[1], 0, SEEK_CUR), ESPIPE);
    close(p[0]);
    close(p[1]);
    OK(close(fd));
}

static void t_holes(void)
{
    static char buf[8192];
    int fd = OK(sys_open("f", O_CREAT | O_RDWR | O_TRUNC, 0644));
    CHECK(OK(write(fd, "A", 1)) == 1);
    CHECK(OK(lseek(fd, 1 << 20, SEEK_SET)) == 1 << 20);
    CHECK(OK(write(fd, "B", 1)) == 1);
    CHECK(OK(lseek(fd, 0, SEEK_END)) == (1 << 20) + 1);
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == (1 << 20) + 1);
    OK(lseek(fd, 0, SEEK_SET));
    size_t total = 0;
    for (;;) {
        long n = OK(read(fd, buf, sizeof buf));
        if (n == 0)
            break;
        for (long i = 0; i < n; i++) {
            size_t off = total + i;
            char want = off == 0 ? 'A' : off == (1 << 20) ? 'B' : 0;
            CHECKM(buf[i] == want, "byte %zu is %#x, expected %#x", off, buf[i], want);
        }
        total += n;
    }
    CHECK(total == (1 << 20) + 1);
    /* a write inside the hole changes just those bytes */
    CHECK(OK(syscall(SYS_pwrite64, fd, "mid", 3, 500000)) == 3);
    CHECK(OK(syscall(SYS_pread64, fd, buf, 7, 499998)) == 7);
    CHECK(memcmp(buf, "\0\0mid\0\0", 7) == 0);
    OK(fstat(fd, &st));
    CHECK(st.st_size == (1 << 20) + 1);
    OK(close(fd));
}

static void t_stat(void)
{
    void *bad;
    struct stat st, fs, ls, at;
    put_str("f", "12345");
    OK(syscall(SYS_mkdir, "d", 0755));
    OK(syscall(SYS_stat, "f", &st));
    CHECK(S_ISREG(st.st_mode) && st.st_size == 5 && st.st_nlink >= 1 && st.st_blksize > 0);
    OK(syscall(SYS_stat, "d", &ls));
    CHECK(S_ISDIR(ls.st_mode));
    CHECK(ls.st_ino != st.st_ino || ls.st_dev != st.st_dev);
    int fd = OK(sys_open("f", O_RDWR | O_APPEND, 0));
    OK(syscall(SYS_fstat, fd, &fs));
    CHECK(fs.st_ino == st.st_ino && fs.st_dev == st.st_dev && fs.st_size == 5);
    CHECK(S_ISREG(fs.st_mode));
    CHECK(OK(write(fd, "678", 3)) == 3);
    OK(syscall(SYS_fstat, fd, &fs));
    CHECK(fs.st_size == 8);
    OK(syscall(SYS_lstat, "f", &ls));
    CHECK(ls.st_ino == st.st_ino && ls.st_size == 8 && S_ISREG(ls.st_mode));
    OK(syscall(SYS_lstat, "d", &ls));
    CHECK(S_ISDIR(ls.st_mode));
    OK(syscall(SYS_newfstatat, AT_FDCWD, "f", &at, 0));
    CHECK(at.st_ino == st.st_ino && at.st_size == 8);
    int dfd = OK(sys_open(".", O_RDONLY | O_DIRECTORY, 0));
    OK(syscall(SYS_newfstatat, dfd, "f", &at, 0));
    CHECK(at.st_ino == st.st_ino);
    OK(syscall(SYS_newfstatat, dfd, "f", &at, AT_SYMLINK_NOFOLLOW));
    CHECK(at.st_ino == st.st_ino);
    OK(syscall(SYS_newfstatat, fd, "", &at, AT_EMPTY_PATH));
    CHECK(at.st_ino == st.st_ino && at.st_size == 8);
    ERR(syscall(SYS_newfstatat, AT_FDCWD, "", &at, 0), ENOENT);
    ERR(syscall(SYS_newfstatat, AT_FDCWD, "f", &at, 0x1), EINVAL);
    ERR(syscall(SYS_newfstatat, -5, "f", &at, 0), EBADF);
    ERR(syscall(SYS_newfstatat, fd, "x", &at, 0), ENOTDIR);
    ERR(syscall(SYS_stat, "missing", &at), ENOENT);
    ERR(syscall(SYS_lstat, "missing", &at), ENOENT);
    ERR(syscall(SYS_stat, "f/x", &at), ENOTDIR);
    ERR(syscall(SYS_stat, "", &at), ENOENT);
    ERR(syscall(SYS_fstat, -1, &at), EBADF);
    FOR_BAD(bad) {
        ERR(syscall(SYS_stat, bad, &at), EFAULT);
        ERR(syscall(SYS_stat, "f", bad), EFAULT);
        ERR(syscall(SYS_lstat, bad, &at), EFAULT);
        ERR(syscall(SYS_lstat, "f", bad), EFAULT);
        ERR(syscall(SYS_fstat, fd, bad), EFAULT);
        ERR(syscall(SYS_newfstatat, AT_FDCWD, bad, &at, 0), EFAULT);
        ERR(syscall(SYS_newfstatat, AT_FDCWD, "f", bad, 0), EFAULT);
    }
    int p[2];
    OK(syscall(SYS_pipe, p));
    OK(syscall(SYS_fstat, p[0], &at));
    CHECK(S_ISFIFO(at.st_mode));
    close(p[0]);
    close(p[1]);
    OK(close(dfd));
    OK(close(fd));
}

static void t_access(void)
{
    void *bad;
    put_str("f", "x");
    OK(syscall(SYS_mkdir, "d", 0755));
    OK(syscall(SYS_access, "f", F_OK));
    OK(syscall(SYS_access, "f", R_OK));
    OK(syscall(SYS_access, "f", R_OK | W_OK));
    OK(syscall(SYS_access, "d", F_OK));
    OK(syscall(SYS_access, "d", R_OK | X_OK));
    ERR(syscall(SYS_access, "missing", F_OK), ENOENT);
    ERR(syscall(SYS_access, "f/x", F_OK), ENOTDIR);
    ERR(syscall(SYS_access, "f", 0x10), EINVAL);
    ERR(syscall(SYS_access, "", F_OK), ENOENT);
    OK(syscall(SYS_faccessat, AT_FDCWD, "f", R_OK));
    int dfd = OK(sys_open("d", O_RDONLY | O_DIRECTORY, 0));
    put_str("d/g", "y");
    OK(syscall(SYS_faccessat, dfd, "g", F_OK));
    ERR(syscall(SYS_faccessat, dfd, "f", F_OK), ENOENT);
    ERR(syscall(SYS_faccessat, -5, "g", F_OK), EBADF);
    ERR(syscall(SYS_faccessat, AT_FDCWD, "f", 0x10), EINVAL);
    FOR_BAD(bad) {
        ERR(syscall(SYS_access, bad, F_OK), EFAULT);
        ERR(syscall(SYS_faccessat, AT_FDCWD, bad, F_OK), EFAULT);
    }
    OK(close(dfd));
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* reads the whole directory fd with a small buffer; calls fn per entry */
static int list_dir(int fd, void (*fn)(struct linux_dirent64 *, void *), void *arg)
{
    char buf[512] __attribute__((aligned(8)));
    int count = 0;
    for (;;) {
        long n = OK(syscall(SYS_getdents64, fd, buf, sizeof buf));
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (void *)(buf + off);
            CHECKM(d->d_reclen % 8 == 0 && d->d_reclen >= offsetof(struct linux_dirent64, d_name) + strlen(d->d_name) + 1,
                   "bad d_reclen %u for '%s'", d->d_reclen, d->d_name);
            CHECKM(off + d->d_reclen <= n, "entry '%s' runs past the returned length", d->d_name);
            fn(d, arg);
            count++;
            off += d->d_reclen;
        }
    }
    return count;
}

struct seen { int n; char names[64][64]; int counts[64]; unsigned char types[64]; };

static void seen_add(struct linux_dirent64 *d, void *arg)
{
    struct seen *s = arg;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], d->d_name) == 0) {
            s->counts[i]++;
            return;
        }
    CHECKM(s->n < 64, "too many directory entries");
    snprintf(s->names[s->n], 64, "%s", d->d_name);
    s->counts[s->n] = 1;
    s->types[s->n] = d->d_type;
    CHECKM(d->d_ino != 0, "entry '%s' has inode 0", d->d_name);
    s->n++;
}

static int seen_find(struct seen *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return i;
    return -1;
}

static void t_getdents(void)
{
    void *bad;
    char name[64], buf[512] __attribute__((aligned(8)));
    static struct seen s;
    OK(syscall(SYS_mkdir, "d", 0755));
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "d/file%02d", i);
        put_str(name, "x");
    }
    put_str("d/A Long File Name.text", "y");
    OK(syscall(SYS_mkdir, "d/sub", 0755));
    int fd = OK(sys_open("d", O_RDONLY | O_DIRECTORY, 0));
    memset(&s, 0, sizeof s);
    list_dir(fd, seen_add, &s);
    CHECKM(s.n == 40 + 2 + 2, "%d entries, expected 44 (40 files, a long name, sub, . and ..)", s.n);
    for (int i = 0; i < s.n; i++)
        CHECKM(s.counts[i] == 1, "'%s' listed %d times", s.names[i], s.counts[i]);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "file%02d", i);
        int k = seen_find(&s, name);
        CHECKM(k >= 0, "%s not listed", name);
        CHECKM(s.types[k] == DT_REG || s.types[k] == DT_UNKNOWN, "%s has d_type %d", name, s.types[k]);
    }
    CHECK(seen_find(&s, "A Long File Name.text") >= 0);
    CHECK(seen_find(&s, ".") >= 0 && seen_find(&s, "..") >= 0);
    int k = seen_find(&s, "sub");
    CHECK(k >= 0 && (s.types[k] == DT_DIR || s.types[k] == DT_UNKNOWN));
    CHECK(OK(syscall(SYS_getdents64, fd, buf, sizeof buf)) == 0);   /* at the end */
    /* rewind, and the listing is the same; remove some, and they are gone */
    OK(lseek(fd, 0, SEEK_SET));
    memset(&s, 0, sizeof s);
    CHECK(list_dir(fd, seen_add, &s) == 44);
    for (int i = 0; i < 40; i += 4) {
        snprintf(name, sizeof name, "d/file%02d", i);
        OK(syscall(SYS_unlink, name));
    }
    OK(lseek(fd, 0, SEEK_SET));
    memset(&s, 0, sizeof s);
    CHECK(list_dir(fd, seen_add, &s) == 34);
    CHECK(seen_find(&s, "file00") < 0 && seen_find(&s, "file01") >= 0);

    OK(lseek(fd, 0, SEEK_SET));
    ERR(syscall(SYS_getdents64, fd, buf, 1), EINVAL);   /* no entry fits */
    ERR(syscall(SYS_getdents64, -1, buf, sizeof buf), EBADF);
    int ffd = OK(sys_open("d/file01", O_RDONLY, 0));
    ERR(syscall(SYS_getdents64, ffd, buf, sizeof buf), ENOTDIR);
    OK(close(ffd));
    FOR_BAD(bad) {
        OK(lseek(fd, 0, SEEK_SET));
        ERR(syscall(SYS_getdents64, fd, bad, sizeof buf), EFAULT);
    }
    OK(close(fd));
}

static void t_longnames(void)
{
    static const char *names[] = {
        "This is a Long File Name.txt", "MixedCase.Ext", "a.b.c.d", "name with  spaces",
        "lowercase", "UPPERCASE.TXT", "x", "-dash_under+plus=eq,comma;semi[br]",
        "name.with.a.very.long.extension", NULL,
    };
    static char longest[256];
    static struct seen s;
    memset(longest, 'L', 200);
    OK(syscall(SYS_mkdir, "d", 0755));
    OK(syscall(SYS_chdir, "d"));
    for (int i = 0; names[i]; i++)
        put_str(names[i], names[i]);
    put_str(longest, "long");
    for (int i = 0; names[i]; i++)
        check_content(names[i], names[i]);
    check_content(longest, "long");
    int fd = OK(sys_open(".", O_RDONLY | O_DIRECTORY, 0));
    memset(&s, 0, sizeof s);
    list_dir(fd, seen_add, &s);
    OK(close(fd));
    for (int i = 0; names[i]; i++)
        CHECKM(seen_find(&s, names[i]) >= 0, "'%s' is not listed with its case and spelling", names[i]);
    /* the 200-character name does not fit struct seen's 64-byte slots: stat it */
    struct stat st;
    OK(syscall(SYS_stat, longest, &st));
    CHECK(st.st_size == 4);
    OK(syscall(SYS_rename, "MixedCase.Ext", "Renamed Long Name.data"));
    check_content("Renamed Long Name.data", "MixedCase.Ext");
    CHECK(!exists("MixedCase.Ext"));
    for (int i = 0; names[i]; i++)
        if (i != 1)
            OK(syscall(SYS_unlink, names[i]));
    OK(syscall(SYS_unlink, "Renamed Long Name.data"));
    OK(syscall(SYS_unlink, longest));
    fd = OK(sys_open(".", O_RDONLY | O_DIRECTORY, 0));
    memset(&s, 0, sizeof s);
    CHECKM(list_dir(fd, seen_add, &s) == 2, "%d entries left after unlinking all", s.n);
    OK(close(fd));
}

static void t_mkdir(void)
{
    void *bad;
    struct stat st;
    OK(syscall(SYS_mkdir, "d", 0755));
    OK(syscall(SYS_stat, "d", &st));
    CHECK(S_ISDIR(st.st_mode));
    ERR(syscall(SYS_mkdir, "d", 0755), EEXIST);
    put_str("f", "x");
    ERR(syscall(SYS_mkdir, "f", 0755), EEXIST);
    ERR(syscall(SYS_mkdir, "missing/d", 0755), ENOENT);
    ERR(syscall(SYS_mkdir, "f/d", 0755), ENOTDIR);
    ERR(syscall(SYS_mkdir, "", 0755), ENOENT);
    OK(syscall(SYS_mkdir, "d/e", 0755));
    OK(syscall(SYS_mkdir, "d/e/f/", 0755));          /* a trailing slash is fine */
    put_str("d/e/f/file", "deep");
    check_content("d/e/f/file", "deep");
    check_content("./d/../d/e/./f/file", "deep");
    FOR_BAD(bad)
        ERR(syscall(SYS_mkdir, bad, 0755), EFAULT);
}

static void t_rmdir(void)
{
    void *bad;
    OK(syscall(SYS_mkdir, "d", 0755));
    OK(syscall(SYS_rmdir, "d"));
    CHECK(!exists("d"));
    ERR(syscall(SYS_rmdir, "d"), ENOENT);
    put_str("f", "x");
    ERR(syscall(SYS_rmdir, "f"), ENOTDIR);
    OK(syscall(SYS_mkdir, "d", 0755));
    put_str("d/f", "x");
    ERR(syscall(SYS_rmdir, "d"), ENOTEMPTY);
    ERR(syscall(SYS_rmdir, "."), EINVAL);
    OK(syscall(SYS_unlink, "d/f"));
    OK(syscall(SYS_rmdir, "d"));
    OK(syscall(SYS_mkdir, "d", 0755));           /* the name can be made again */
    FOR_BAD(bad)
        ERR(syscall(SYS_rmdir, bad), EFAULT);
}

static void t_unlink(void)
{
    void *bad;
    put_str("f", "data");
    OK(syscall(SYS_unlink, "f"));
    CHECK(!exists("f"));
    ERR(sys_open("f", O_RDONLY, 0), ENOENT);
    ERR(syscall(SYS_unlink, "f"), ENOENT);
    OK(syscall(SYS_mkdir, "d", 0755));
    ERR(syscall(SYS_unlink, "d"), EISDIR);
    put_str("g", "x");
    ERR(syscall(SYS_unlink, "g/x"), ENOTDIR);
    ERR(syscall(SYS_unlink, "missing/x"), ENOENT);
    put_str("f", "");                      /* the name again: a new, empty file */
    struct stat st;
    OK(syscall(SYS_stat, "f", &st));
    CHECK(st.st_size == 0);
    put_str("d/inner", "x");
    OK(syscall(SYS_unlink, "d/inner"));
    CHECK(!exists("d/inner"));
    FOR_BAD(bad)
        ERR(syscall(SYS_unlink, bad), EFAULT);
}

static void t_unlink_open(void)
{
    char buf[64];
    put_str("f", "data");
    int fd = OK(sys_open("f", O_RDWR, 0));
    OK(syscall(SYS_unlink, "f"));
    CHECK(!exists("f"));
    CHECK(OK(read(fd, buf, sizeof buf)) == 4 && memcmp(buf, "data", 4) == 0);
    CHECK(OK(write(fd, "more", 4)) == 4);
    CHECK(OK(syscall(SYS_pread64, fd, buf, sizeof buf, 0)) == 8 && memcmp(buf, "datamore", 8) == 0);
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == 8);
    CHECKM(st.st_nlink == 0, "st_nlink %lu after unlink, expected 0", (unsigned long)st.st_nlink);
    put_str("f", "new");                   /* a new file by the same name */
    check_content("f", "new");
    CHECK(OK(syscall(SYS_pread64, fd, buf, sizeof buf, 0)) == 8);
    OK(close(fd));
    check_content("f", "new");
}

static void t_rename(void)
{
    void *bad;
    char buf[16];
    put_str("a", "A");
    OK(syscall(SYS_rename, "a", "b"));
    CHECK(!exists("a"));
    check_content("b", "A");
    put_str("c", "C");
    OK(syscall(SYS_rename, "c", "b"));     /* replaces */
    CHECK(!exists("c"));
    check_content("b", "C");
    OK(syscall(SYS_rename, "b", "b"));     /* to itself: nothing happens */
    check_content("b", "C");
    ERR(syscall(SYS_rename, "missing", "x"), ENOENT);
    ERR(syscall(SYS_rename, "b", "missing/x"), ENOENT);
    OK(syscall(SYS_mkdir, "d", 0755));
    OK(syscall(SYS_rename, "b", "d/b"));   /* into a directory */
    check_content("d/b", "C");
    CHECK(!exists("b"));
    OK(syscall(SYS_mkdir, "e", 0755));
    ERR(syscall(SYS_rename, "d/b", "e"), EISDIR);        /* file over directory */
    put_str("f", "F");
    ERR(syscall(SYS_rename, "e", "f"), ENOTDIR);         /* directory over file */
    ERR(syscall(SYS_rename, "f/x", "y"), ENOTDIR);
    ERR2(syscall(SYS_rename, "e", "d"), ENOTEMPTY, EEXIST);
    OK(syscall(SYS_rename, "d", "d2"));    /* a directory, with what it holds */
    check_content("d2/b", "C");
    CHECK(!exists("d"));
    OK(syscall(SYS_rename, "d2", "e"));    /* over an empty directory */
    check_content("e/b", "C");
    CHECK(!exists("d2"));
    OK(syscall(SYS_mkdir, "e/sub", 0755));
    ERR(syscall(SYS_rename, "e", "e/sub/e"), EINVAL);    /* into itself */
    /* an open file keeps working across a rename */
    int fd = OK(sys_open("f", O_RDWR, 0));
    OK(syscall(SYS_rename, "f", "e/g"));
    CHECK(OK(syscall(SYS_pread64, fd, buf, sizeof buf, 0)) == 1 && buf[0] == 'F');
    CHECK(OK(write(fd, "G", 1)) == 1);
    OK(close(fd));
    check_content("e/g", "G");
    FOR_BAD(bad) {
        ERR(syscall(SYS_rename, bad, "x"), EFAULT);
        ERR(syscall(SYS_rename, "e/g", bad), EFAULT);
    }
    check_content("e/g", "G");
}

static void t_fsync_sync(void)
{
    int fd = OK(sys_open("f", O_CREAT | O_RDWR, 0644));
    CHECK(OK(write(fd, "sync me", 7)) == 7);
    OK(syscall(SYS_fsync, fd));
    OK(fdatasync(fd));
    ERR(syscall(SYS_fsync, -1), EBADF);
    int p[2];
    OK(syscall(SYS_pipe, p));
    ERR(syscall(SYS_fsync, p[0]), EINVAL);
    close(p[0]);
    close(p[1]);
    int dfd = OK(sys_open(".", O_RDONLY | O_DIRECTORY, 0));
    OK(syscall(SYS_fsync, dfd));
    OK(close(dfd));
    CHECK(syscall(SYS_sync) == 0);
    OK(close(fd));
    check_content("f", "sync me");
}

static void t_append(void)
{
    int fd = OK(sys_open("f", O_CREAT | O_WRONLY | O_APPEND, 0644));
    CHECK(OK(write(fd, "ab", 2)) == 2);
    OK(lseek(fd, 0, SEEK_SET));
    CHECK(OK(write(fd, "cd", 2)) == 2);
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 4);
    check_content("f", "abcd");
    int fd2 = OK(sys_open("f", O_WRONLY, 0));
    CHECK(OK(write(fd2, "XY", 2)) == 2);
    CHECK(OK(write(fd, "e", 1)) == 1);
    check_content("f", "XYcde");
    CHECK(OK(fcntl(fd, F_GETFL)) & O_APPEND);
    OK(fcntl(fd2, F_SETFL, O_APPEND));                  /* switched on later */
    OK(lseek(fd2, 0, SEEK_SET));
    CHECK(OK(write(fd2, "f", 1)) == 1);
    check_content("f", "XYcdef");
    OK(close(fd));
    OK(close(fd2));
}

static void t_trunc(void)
{
    static char buf[6000];
    put_str("f", "a hundred bytes? no, fewer");
    int fd = OK(sys_open("f", O_WRONLY | O_TRUNC, 0));
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == 0);
    CHECK(OK(write(fd, "0123456789", 10)) == 10);
    OK(ftruncate(fd, 5000));
    OK(fstat(fd, &st));
    CHECK(st.st_size == 5000);
    OK(ftruncate(fd, 4));
    OK(close(fd));
    check_content("f", "0123");
    fd = OK(sys_open("f", O_RDWR, 0));
    OK(ftruncate(fd, 6000));
    CHECK(OK(read(fd, buf, sizeof buf)) == 6000);
    CHECK(memcmp(buf, "0123", 4) == 0 && all_bytes(buf + 4, 5996, 0));
    ERR(ftruncate(fd, -1), EINVAL);
    ERR(ftruncate(-1, 0), EBADF);
    OK(close(fd));
    fd = OK(sys_open("f", O_RDONLY, 0));
    ERR2(ftruncate(fd, 0), EINVAL, EBADF);
    OK(close(fd));
    fd = OK(sys_open("f", O_CREAT | O_TRUNC | O_RDWR, 0644));
    OK(fstat(fd, &st));
    CHECK(st.st_size == 0);
    OK(close(fd));
}

static void t_excl(void)
{
    int fd = OK(sys_open("f", O_CREAT | O_EXCL | O_WRONLY, 0644));
    CHECK(OK(write(fd, "1", 1)) == 1);
    OK(close(fd));
    ERR(sys_open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    ERR(sys_open("f", O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST);
    fd = OK(sys_open("f", O_EXCL | O_RDONLY, 0));          /* O_EXCL alone: ignored */
    OK(close(fd));
    check_content("f", "1");
    OK(syscall(SYS_unlink, "f"));
    fd = OK(sys_open("f", O_CREAT | O_EXCL | O_RDWR, 0644));
    OK(close(fd));
}

static void t_bigfile(void)
{
    const size_t size = 3 << 20;
    static unsigned char buf[16384];
    int fd = OK(sys_open("big", O_CREAT | O_RDWR | O_TRUNC, 0644));
    for (size_t off = 0; off < size;) {
        size_t n = 4096 + 13 + (off / 7919) % 2000;
        if (n > size - off)
            n = size - off;
        fill_pat(buf, n, off, 7);
        CHECK(OK(write(fd, buf, n)) == (long)n);
        off += n;
    }
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == (off_t)size);
    OK(lseek(fd, 0, SEEK_SET));
    for (size_t off = 0; off < size;) {
        long n = OK(read(fd, buf, 8191));
        CHECKM(n > 0, "read returned 0 at %zu of %zu", off, size);
        long bad = check_pat(buf, n, off, 7);
        CHECKM(bad < 0, "byte %zu differs", off + bad);
        off += n;
    }
    /* random access */
    for (int i = 0; i < 50; i++) {
        size_t off = (size_t)i * 61231 % (size - 100);
        CHECK(OK(syscall(SYS_pread64, fd, buf, 100, off)) == 100);
        CHECKM(check_pat(buf, 100, off, 7) < 0, "pread at %zu differs", off);
    }
    OK(close(fd));
    OK(syscall(SYS_unlink, "big"));
}

static void t_manyfds(void)
{
    struct rlimit rl;
    OK(getrlimit(RLIMIT_NOFILE, &rl));
    long limit = rl.rlim_cur;
    if (limit > 256) {
        struct rlimit nl = {256, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0) {
            limit = 256;
        } else {
            CHECKM(limit <= 4096, "RLIMIT_NOFILE is %ld and cannot be lowered: %s", limit, en(errno));
            note("setrlimit(RLIMIT_NOFILE, 256): %s; using the limit %ld", en(errno), limit);
        }
    }
    put_str("f", "x");
    int before = 0;
    for (int i = 0; i < limit; i++)
        if (fcntl(i, F_GETFD) != -1)
            before++;
    static int fds[4096];
    int n = 0, maxfd = -1;
    for (;;) {
        int fd = sys_open("f", O_RDONLY, 0);
        if (fd < 0) {
            CHECKM(errno == EMFILE, "open #%d failed with %s, expected EMFILE", n, en(errno));
            break;
        }
        CHECKM(n < 4096 && fd < limit, "fd %d at or above the limit %ld", fd, limit);
        fds[n++] = fd;
        if (fd > maxfd)
            maxfd = fd;
    }
    CHECKM(n + before == limit, "opened %d (+%d already open), limit %ld", n, before, limit);
    CHECK(maxfd == limit - 1);
    int p[2];
    ERR(dup(0), EMFILE);
    ERR(syscall(SYS_pipe, p), EMFILE);
    ERR(fcntl(fds[0], F_DUPFD, 0), EMFILE);
    ERR(syscall(SYS_dup2, fds[0], limit), EBADF);
    ERR(fcntl(fds[0], F_DUPFD, limit), EINVAL);
    ERR(syscall(SYS_eventfd2, 0, 0), EMFILE);
    for (int i = 0; i < n; i++)
        OK(close(fds[i]));
    int fd = OK(sys_open("f", O_RDONLY, 0));
    CHECK(fd == fds[0]);
    OK(close(fd));
    /* open and close many times over: nothing leaks */
    for (int i = 0; i < 3 * limit; i++)
        OK(close(OK(sys_open("f", O_RDONLY, 0))));
}

static void t_fork_fds(void)
{
    int fd = OK(sys_open("f", O_CREAT | O_RDWR | O_TRUNC, 0644));
    CHECK(OK(write(fd, "p", 1)) == 1);
    pid_t pid = xfork();
    if (pid == 0) {
        CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 1);
        CHECK(OK(write(fd, "c", 1)) == 1);      /* the shared offset moves */
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 2);
    CHECK(OK(write(fd, "P", 1)) == 1);
    OK(close(fd));
    check_content("f", "pcP");
    /* a child's close does not close the parent's */
    fd = OK(sys_open("f", O_RDONLY, 0));
    pid = xfork();
    if (pid == 0) {
        OK(close(fd));
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
    char c;
    CHECK(OK(read(fd, &c, 1)) == 1 && c == 'p');
    OK(close(fd));
}

/* ================================================================== */
/* Memory                                                             */

static void t_mmap_anon(void)
{
    char *p = xmap(3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    CHECK(((uintptr_t)p & (PG - 1)) == 0);
    CHECK(all_bytes(p, 3 * PG, 0));
    memset(p, 'm', 3 * PG);
    CHECK(all_bytes(p, 3 * PG, 'm'));
    OK(munmap(p, 3 * PG));
    EXPECT_FAULT(p, P_READ, SIGSEGV, SEGV_MAPERR);
    EXPECT_FAULT(p + 2 * PG + 5, P_WRITE, SIGSEGV, SEGV_MAPERR);
    /* a length that is not a page multiple is rounded up */
    char *q = xmap(100, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    q[PG - 1] = 1;
    OK(munmap(q, 100));
    EXPECT_FAULT(q + PG - 1, P_READ, SIGSEGV, SEGV_MAPERR);

    ERR(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    ERR(mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);   /* neither shared nor private */
    ERR(mmap(p + 1, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), EINVAL);
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1), EINVAL);
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, -1, 0), EBADF);
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, 12345, 0), EBADF);
    ERR(mmap(NULL, 1UL << 48, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), ENOMEM);
    ERR(mmap(NULL, (size_t)-1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), ENOMEM);
    ERR(mmap((void *)0xffff888000000000UL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), ENOMEM);
    ERR(munmap(p + 1, PG), EINVAL);
    ERR(munmap(p, 0), EINVAL);
    ERR(munmap((void *)0xffff888000000000UL, PG), EINVAL);
    OK(munmap(p, 3 * PG));                  /* nothing mapped there: fine */
    /* PROT_NONE */
    char *n = xmap(PG, PROT_NONE, MAP_PRIVATE);
    EXPECT_FAULT(n, P_READ, SIGSEGV, SEGV_ACCERR);
    EXPECT_FAULT(n, P_WRITE, SIGSEGV, SEGV_ACCERR);
    OK(munmap(n, PG));
    /* many small mappings, each its own content */
    static char *maps[200];
    for (int i = 0; i < 200; i++) {
        maps[i] = xmap(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
        maps[i][0] = (char)i;
        maps[i][PG - 1] = (char)~i;
    }
    for (int i = 0; i < 200; i += 2)
        OK(munmap(maps[i], PG));
    for (int i = 1; i < 200; i += 2)
        CHECKM(maps[i][0] == (char)i && maps[i][PG - 1] == (char)~i, "mapping %d lost its content", i);
    for (int i = 1; i < 200; i += 2)
        OK(munmap(maps[i], PG));
}

static void t_munmap_split(void)
{
    char *p = xmap(10 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    for (int i = 0; i < 10; i++)
        memset(p + i * PG, 'a' + i, PG);
    OK(munmap(p + 3 * PG, 2 * PG));                     /* a hole in the middle */
    OK(mprotect(p + 6 * PG, PG, PROT_READ));            /* and a read-only page */
    for (int i = 0; i < 10; i++) {
        char *pg = p + i * PG;
        if (i == 3 || i == 4) {
            EXPECT_FAULT(pg, P_READ, SIGSEGV, SEGV_MAPERR);
            continue;
        }
        CHECKM(all_bytes(pg, PG, 'a' + i), "page %d lost its content", i);
        if (i == 6)
            EXPECT_FAULT(pg + 9, P_WRITE, SIGSEGV, SEGV_ACCERR);
        else
            EXPECT_ACCESS(pg + 9, P_WRITE);
    }
    OK(munmap(p, 10 * PG));                             /* across the hole */
    for (int i = 0; i < 10; i++)
        EXPECT_FAULT(p + i * PG, P_READ, SIGSEGV, SEGV_MAPERR);
}

static void t_mmap_fixed(void)
{
    char *p = xmap(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    memset(p, 'a', 4 * PG);
    char *q = (char *)OK(mmap(p + PG, PG, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    CHECK(q == p + PG);
    CHECK(all_bytes(q, PG, 0));                         /* a fresh page replaced it */
    CHECK(p[0] == 'a' && p[2 * PG] == 'a' && p[3 * PG + 5] == 'a');
    ERR(mmap(p, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    ERR(mmap(p + 2 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    OK(munmap(p + 3 * PG, PG));
    /* overlapping one mapped page is enough to refuse */
    ERR(mmap(p + 2 * PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    char *r = (char *)OK(mmap(p + 3 * PG, PG, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
    CHECK(r == p + 3 * PG);
    CHECK(all_bytes(r, PG, 0) && p[2 * PG] == 'a');
    ERR(mmap(p + 5, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EINVAL);
    /* a hint without MAP_FIXED never replaces a mapping */
    char *h = (char *)OK(mmap(p, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK(h != p && p[0] == 'a');
    OK(munmap(h, PG));
    OK(munmap(p, 4 * PG));
}

static void t_mmap_populate(void)
{
    static unsigned char vec[1024];
    char *p = (char *)OK(mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
    CHECKM(resident(p, 64 * PG, vec) == 64, "MAP_POPULATE left %d of 64 pages resident",
           resident(p, 64 * PG, vec));
    CHECK(all_bytes(p, 64 * PG, 0));
    OK(munmap(p, 64 * PG));
    /* a big MAP_NORESERVE mapping is fine; touching a few pages works */
    size_t big = 1UL << 30;
    char *n = (char *)OK(mmap(NULL, big, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    n[0] = 1;
    n[big / 2] = 2;
    n[big - 1] = 3;
    CHECK(n[0] == 1 && n[big / 2] == 2 && n[big - 1] == 3);
    OK(munmap(n, big));
    /* a populated file mapping reads the file */
    static char buf[8 * 4096];
    fill_pat(buf, sizeof buf, 0, 3);
    put_file("f", buf, sizeof buf);
    int fd = OK(sys_open("f", O_RDONLY, 0));
    char *f = (char *)OK(mmap(NULL, sizeof buf, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0));
    CHECK(check_pat(f, sizeof buf, 0, 3) < 0);
    OK(munmap(f, sizeof buf));
    OK(close(fd));
}

static void t_demand_paging(void)
{
    void *bad;
    const size_t len = 64UL << 20;
    static unsigned char vec[(64UL << 20) / 4096];
    char *p = xmap(len, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    int r = resident(p, len, vec);
    CHECKM(r == 0, "%d pages resident before any touch", r);
    size_t touched[] = {0, 10UL << 20, (33UL << 20) + 5 * PG, len - PG};
    for (int i = 0; i < 4; i++)
        p[touched[i]] = 1;
    resident(p, len, vec);
    for (int i = 0; i < 4; i++)
        CHECKM(vec[touched[i] / PG] & 1, "touched page at +%#zx is not resident", touched[i]);
    /* nothing else: allow a transparent huge page (2 MiB-aligned in the
     * address space) around each touched page */
    for (size_t pg = 0; pg < len / PG; pg++) {
        uintptr_t huge = ((uintptr_t)p + pg * PG) & ~((2UL << 20) - 1);
        int near = 0;
        for (int i = 0; i < 4; i++)
            near |= (((uintptr_t)p + touched[i]) & ~((2UL << 20) - 1)) == huge;
        CHECKM(near || !(vec[pg] & 1), "untouched page at +%#zx is resident", pg * PG);
    }
    CHECK(all_bytes(p + PG, PG, 0) && p[10UL << 20] == 1);
    OK(munmap(p, len));
    /* mincore's errors */
    char *q = xmap(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    ERR(mincore(q + 1, PG, vec), EINVAL);
    OK(munmap(q + PG, PG));
    ERR(mincore(q, 2 * PG, vec), ENOMEM);                /* part unmapped */
    ERR(mincore((void *)0xffff888000000000UL, PG, vec), ENOMEM);
    FOR_BAD(bad)
        ERR(mincore(q, PG, bad), EFAULT);
    OK(munmap(q, PG));
}

static void t_mprotect(void)
{
    char *p = xmap(3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    memset(p, 'a', 3 * PG);
    OK(mprotect(p + PG, PG, PROT_READ));
    EXPECT_FAULT(p + PG + 7, P_WRITE, SIGSEGV, SEGV_ACCERR);
    CHECK(p[PG + 7] == 'a');                            /* readable, unchanged */
    EXPECT_ACCESS(p, P_WRITE);
    EXPECT_ACCESS(p + 2 * PG, P_WRITE);
    OK(mprotect(p + PG, PG, PROT_READ | PROT_WRITE));
    EXPECT_ACCESS(p + PG, P_WRITE);
    OK(mprotect(p, 3 * PG, PROT_NONE));
    EXPECT_FAULT(p + 2 * PG, P_READ, SIGSEGV, SEGV_ACCERR);
    OK(mprotect(p, 3 * PG, PROT_READ));
    CHECK(p[2 * PG + 1] == 'a');                        /* the content survived PROT_NONE */
    OK(mprotect(p, 0, PROT_READ));                      /* zero length: nothing to do */
    ERR(mprotect(p + 1, PG, PROT_READ), EINVAL);
    ERR(mprotect(p, PG, 0x100), EINVAL);                /* unknown bits */
    OK(munmap(p + 2 * PG, PG));
    ERR(mprotect(p, 3 * PG, PROT_READ), ENOMEM);        /* part unmapped */
    /* W^X: write code, make it executable, run it */
    OK(mprotect(p, PG, PROT_READ | PROT_WRITE));
    p[0] = (char)0xc3;                                  /* ret */
    EXPECT_FAULT(p, P_EXEC, SIGSEGV, SEGV_ACCERR);      /* not executable yet */
    OK(mprotect(p, PG, PROT_READ | PROT_EXEC));
    EXPECT_ACCESS(p, P_EXEC);
    OK(munmap(p, 2 * PG));
    /* a shared mapping of a read-only file cannot become writable */
    put_str("f", "read only");
    int fd = OK(sys_open("f", O_RDONLY, 0));
    char *f = (char *)OK(mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0));
    ERR(mprotect(f, PG, PROT_READ | PROT_WRITE), EACCES);
    OK(munmap(f, PG));
    /* a private one can */
    f = (char *)OK(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0));
    OK(mprotect(f, PG, PROT_READ | PROT_WRITE));
    f[0] = 'R';
    OK(munmap(f, PG));
    OK(close(fd));
    check_content("f", "read only");
}

static void t_mremap(void)
{
    char *p = xmap(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    fill_pat(p, 2 * PG, 0, 5);
    char *q = (char *)OK(mremap(p, 2 * PG, 64 * PG, MREMAP_MAYMOVE));
    CHECK(check_pat(q, 2 * PG, 0, 5) < 0);              /* the content moved along */
    CHECK(all_bytes(q + 2 * PG, 62 * PG, 0));
    q[64 * PG - 1] = 1;
    if (q != p)
        EXPECT_FAULT(p, P_READ, SIGSEGV, SEGV_MAPERR);
    char *r = (char *)OK(mremap(q, 64 * PG, PG, 0));    /* shrink in place */
    CHECK(r == q && check_pat(r, PG, 0, 5) < 0);
    EXPECT_FAULT(q + PG, P_READ, SIGSEGV, SEGV_MAPERR);
    /* growing in place: possible when the next page is free, else ENOMEM */
    char *a = xmap(3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    OK(munmap(a + PG, PG));
    a[0] = 'x';
    char *g = (char *)OK(mremap(a, PG, 2 * PG, 0));
    CHECK(g == a && a[0] == 'x');
    a[PG] = 'y';
    ERR(mremap(a, 2 * PG, 3 * PG + PG, 0), ENOMEM);     /* a + 2 pages is still mapped */
    /* MREMAP_FIXED moves to a chosen address */
    char *dst = xmap(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    OK(munmap(dst, 4 * PG));
    char *m = (char *)OK(mremap(a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst + PG));
    CHECK(m == dst + PG && m[0] == 'x' && m[PG] == 'y');
    EXPECT_FAULT(a, P_READ, SIGSEGV, SEGV_MAPERR);
    CHECK(a[2 * PG] == 0);                              /* the neighbour stayed */
    ERR(mremap(m, PG, 2 * PG, MREMAP_FIXED, dst), EINVAL);   /* FIXED needs MAYMOVE */
    ERR(mremap(m + 1, PG, 2 * PG, MREMAP_MAYMOVE), EINVAL);
    ERR(mremap(m, PG, 2 * PG, 0x80), EINVAL);
    ERR(mremap(m, PG, 0, MREMAP_MAYMOVE), EINVAL);
    ERR(mremap(bad_ptr[1].p, PG, 2 * PG, MREMAP_MAYMOVE), EFAULT);   /* nothing mapped */
    OK(munmap(m, 2 * PG));
    OK(munmap(a + 2 * PG, PG));
    OK(munmap(r, PG));
    /* a shared file mapping grown with mremap shows the rest of the file */
    static char buf[3 * 4096];
    fill_pat(buf, sizeof buf, 0, 9);
    put_file("f", buf, sizeof buf);
    int fd = OK(sys_open("f", O_RDWR, 0));
    char *f = (char *)OK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    char *f2 = (char *)OK(mremap(f, PG, 3 * PG, MREMAP_MAYMOVE));
    CHECK(check_pat(f2, 3 * PG, 0, 9) < 0);
    f2[2 * PG] = 'W';
    OK(munmap(f2, 3 * PG));
    char c;
    CHECK(OK(syscall(SYS_pread64, fd, &c, 1, 2 * PG)) == 1 && c == 'W');
    OK(close(fd));
}

static void t_madvise(void)
{
    static unsigned char vec[16];
    char *p = xmap(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    memset(p, 'x', 4 * PG);
    OK(madvise(p, 4 * PG, MADV_DONTNEED));
    CHECK(all_bytes(p, 4 * PG, 0));                      /* private anonymous: zero again */
    memset(p, 'y', 4 * PG);
    OK(madvise(p + PG, PG, MADV_DONTNEED));
    CHECK(all_bytes(p, PG, 'y') && all_bytes(p + PG, PG, 0) && all_bytes(p + 2 * PG, 2 * PG, 'y'));
    OK(madvise(p, 4 * PG, MADV_DONTNEED));
    CHECK(resident(p, 4 * PG, vec) == 0);
    memset(p, 'z', 4 * PG);
    OK(madvise(p, 4 * PG, MADV_FREE));                  /* lazily freed: old data or zeros */
    for (int i = 0; i < 4; i++)
        CHECKM(all_bytes(p + i * PG, PG, 'z') || all_bytes(p + i * PG, PG, 0),
               "page %d after MADV_FREE is neither its data nor zeros", i);
    memset(p, 'w', 4 * PG);                             /* writing again keeps the new data */
    CHECK(all_bytes(p, 4 * PG, 'w'));
    OK(madvise(p, 4 * PG, MADV_WILLNEED));
    OK(madvise(p, 4 * PG, MADV_NORMAL));
    OK(madvise(p, 4 * PG, MADV_RANDOM));
    OK(madvise(p, 4 * PG, MADV_SEQUENTIAL));
    OK(madvise(p, 0, MADV_DONTNEED));
    ERR(madvise(p, PG, 12345), EINVAL);
    ERR(madvise(p + 1, PG, MADV_DONTNEED), EINVAL);
    OK(munmap(p + 3 * PG, PG));
    ERR(madvise(p, 4 * PG, MADV_WILLNEED), ENOMEM);     /* part unmapped */
    ERR(madvise(p, 4 * PG, MADV_DONTNEED), ENOMEM);
    OK(munmap(p, 3 * PG));
    /* a private file mapping: DONTNEED drops the private copy, the file shows */
    put_str("f", "file data");
    int fd = OK(sys_open("f", O_RDONLY, 0));
    char *f = (char *)OK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
    memcpy(f, "private!!", 9);
    OK(madvise(f, PG, MADV_DONTNEED));
    CHECK(memcmp(f, "file data", 9) == 0);
    OK(madvise(f, PG, MADV_WILLNEED));
    ERR(madvise(f, PG, MADV_FREE), EINVAL);             /* only for anonymous memory */
    OK(munmap(f, PG));
    OK(close(fd));
    /* shared anonymous memory keeps its content */
    char *s = shared_page(PG);
    memset(s, 's', PG);
    OK(madvise(s, PG, MADV_DONTNEED));
    CHECK(all_bytes(s, PG, 's'));
    OK(munmap(s, PG));
}

static void t_brk(void)
{
    uintptr_t cur = syscall(SYS_brk, 0);
    CHECK(cur > 0);
    CHECK((uintptr_t)syscall(SYS_brk, 0) == cur);
    uintptr_t base = (cur + PG - 1) & ~(uintptr_t)(PG - 1);
    uintptr_t top = base + 16 * PG;
    CHECKM((uintptr_t)syscall(SYS_brk, top) == top, "brk could not grow to %#lx", (long)top);
    CHECK(all_bytes((void *)base, 16 * PG, 0));
    memset((void *)base, 'b', 16 * PG);
    /* shrink: the pages above are gone */
    CHECK((uintptr_t)syscall(SYS_brk, base + PG) == base + PG);
    EXPECT_FAULT(base + 8 * PG, P_WRITE, SIGSEGV, SEGV_MAPERR);
    CHECK(*(char *)base == 'b');
    /* grow again: fresh zero pages */
    CHECK((uintptr_t)syscall(SYS_brk, top) == top);
    CHECK(all_bytes((void *)(base + PG), 15 * PG, 0));
    CHECK(*(char *)base == 'b');
    /* a break below the start, or one that cannot be had, leaves it alone */
    CHECK((uintptr_t)syscall(SYS_brk, 0x1000) == top);
    CHECK((uintptr_t)syscall(SYS_brk, 0x7ffffffff000UL) == top);
    CHECK((uintptr_t)syscall(SYS_brk, 0xffff888000000000UL) == top);
    /* glibc's brk and sbrk (sbrk works from the break glibc last set) */
    OK(brk((void *)top));
    CHECK((uintptr_t)sbrk(0) == top);
    CHECK((uintptr_t)sbrk(PG) == top);
    *(char *)top = 1;
    CHECK((uintptr_t)sbrk(0) == top + PG);
    OK(brk((void *)cur));
    CHECK((uintptr_t)sbrk(0) == cur);
    CHECK((uintptr_t)syscall(SYS_brk, 0) == cur);
}

static int stack_dig(int depth, volatile char *prev)
{
    volatile char frame[64 * 1024];
    for (size_t i = 0; i < sizeof frame; i += PG)
        frame[i] = (char)depth;
    (void)prev;
    int r = depth ? stack_dig(depth - 1, frame) : 0;
    for (size_t i = 0; i < sizeof frame; i += PG)
        if (frame[i] != (char)depth)
            return -1;
    return r;
}

static void t_stack_growth(void)
{
    struct rlimit rl;
    OK(getrlimit(RLIMIT_STACK, &rl));
    int depth = 64;                                     /* 4 MiB of stack */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 6UL << 20)
        depth = rl.rlim_cur / (2 * 64 * 1024);
    pid_t pid = xfork();
    if (pid == 0) {
        CHECKM(stack_dig(depth, NULL) == 0, "stack content lost");
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
}

static void t_cow(void)
{
    const size_t len = 1 << 20;
    static char bss[64 * 1024];
    char *anon = xmap(len, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    char *untouched = xmap(16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    char *heap = malloc(200 * 1024);
    char stack[16 * 1024];
    CHECK(heap != NULL);
    fill_pat(anon, len, 0, 1);
    fill_pat(bss, sizeof bss, 0, 1);
    fill_pat(heap, 200 * 1024, 0, 1);
    fill_pat(stack, sizeof stack, 0, 1);
    int to_child[2], to_parent[2];
    OK(syscall(SYS_pipe, to_child));
    OK(syscall(SYS_pipe, to_parent));
    char c;
    pid_t pid = xfork();
    if (pid == 0) {
        CHECK(check_pat(anon, len, 0, 1) < 0 && check_pat(bss, sizeof bss, 0, 1) < 0);
        CHECK(check_pat(heap, 200 * 1024, 0, 1) < 0 && check_pat(stack, sizeof stack, 0, 1) < 0);
        CHECK(all_bytes(untouched, 16 * PG, 0));
        fill_pat(anon, len, 0, 2);
        fill_pat(bss, sizeof bss, 0, 2);
        fill_pat(heap, 200 * 1024, 0, 2);
        fill_pat(stack, sizeof stack, 0, 2);
        memset(untouched, 'c', 16 * PG);
        CHECK(write(to_parent[1], "w", 1) == 1);
        CHECK(read(to_child[0], &c, 1) == 1);           /* the parent wrote its own */
        CHECKM(check_pat(anon, len, 0, 2) < 0, "the child sees the parent's write (anon)");
        CHECKM(check_pat(bss, sizeof bss, 0, 2) < 0, "the child sees the parent's write (bss)");
        CHECK(check_pat(heap, 200 * 1024, 0, 2) < 0 && check_pat(stack, sizeof stack, 0, 2) < 0);
        CHECK(all_bytes(untouched, 16 * PG, 'c'));
        /* a grandchild copies the child's copy */
        pid_t g = xfork();
        if (g == 0) {
            CHECK(check_pat(anon, len, 0, 2) < 0);
            fill_pat(anon, PG, 0, 3);
            _exit(0);
        }
        EXPECT_EXIT(g, 0);
        CHECK(check_pat(anon, len, 0, 2) < 0);
        _exit(0);
    }
    CHECK(OK(read(to_parent[0], &c, 1)) == 1);          /* the child wrote its own */
    CHECKM(check_pat(anon, len, 0, 1) < 0, "the parent sees the child's write (anon)");
    CHECKM(check_pat(bss, sizeof bss, 0, 1) < 0, "the parent sees the child's write (bss)");
    CHECK(check_pat(heap, 200 * 1024, 0, 1) < 0 && check_pat(stack, sizeof stack, 0, 1) < 0);
    CHECK(all_bytes(untouched, 16 * PG, 0));
    fill_pat(anon, len, 0, 4);
    fill_pat(bss, sizeof bss, 0, 4);
    CHECK(OK(write(to_child[1], "p", 1)) == 1);
    EXPECT_EXIT(pid, 0);
    CHECK(check_pat(anon, len, 0, 4) < 0 && check_pat(bss, sizeof bss, 0, 4) < 0);
    free(heap);
    OK(munmap(anon, len));
    OK(munmap(untouched, 16 * PG));
}

static void t_mmap_shared_anon(void)
{
    volatile char *s = shared_page(4 * PG);
    char *priv = xmap(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    s[0] = 1;
    priv[0] = 1;
    int go[2];
    OK(syscall(SYS_pipe, go));
    pid_t pid = xfork();
    if (pid == 0) {
        CHECK(s[0] == 1);
        s[0] = 2;
        s[3 * PG + 7] = 7;
        priv[0] = 9;
        char c;
        CHECK(read(go[0], &c, 1) == 1);
        CHECKM(s[PG] == 'P', "the child does not see the parent's write to shared memory");
        _exit(0);
    }
    for (int i = 0; i < 5000 && s[3 * PG + 7] != 7; i++)
        msleep(1);
    CHECKM(s[0] == 2 && s[3 * PG + 7] == 7, "the parent does not see the child's writes");
    CHECK(priv[0] == 1);                                /* private stays private */
    s[PG] = 'P';
    CHECK(OK(write(go[1], "g", 1)) == 1);
    EXPECT_EXIT(pid, 0);
    OK(munmap((void *)s, 4 * PG));
}

static void t_mmap_file_private(void)
{
    static char buf[3 * 4096];
    size_t flen = 2 * PG + PG / 2;                      /* two and a half pages */
    fill_pat(buf, flen, 0, 11);
    put_file("f", buf, flen);
    int fd = OK(sys_open("f", O_RDONLY, 0));
    char *p = (char *)OK(mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
    CHECK(check_pat(p, flen, 0, 11) < 0);
    CHECK(all_bytes(p + flen, 3 * PG - flen, 0));       /* the rest of the last page */
    EXPECT_FAULT(p + 3 * PG, P_READ, SIGBUS, BUS_ADRERR);  /* a page wholly past the end */
    p[0] = 'Z';                                         /* private: the file is untouched */
    p[flen + 1] = 'Q';
    char c;
    CHECK(OK(syscall(SYS_pread64, fd, &c, 1, 0)) == 1 && c == (char)pat(0, 11));
    struct stat st;
    OK(fstat(fd, &st));
    CHECK(st.st_size == (off_t)flen);
    /* an offset */
    char *o = (char *)OK(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, PG));
    CHECK(check_pat(o, PG, PG, 11) < 0);
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 100), EINVAL);
    ERR(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    OK(close(fd));
    CHECK(check_pat(o, PG, PG, 11) < 0);               /* the mapping outlives the fd */
    OK(munmap(o, PG));
    /* a later write() to the file: Linux shows it in pages not yet copied */
    int wfd = OK(sys_open("f", O_WRONLY, 0));
    CHECK(OK(syscall(SYS_pwrite64, wfd, "NEW", 3, PG)) == 3);
    OK(close(wfd));
    if (memcmp(p + PG, "NEW", 3) != 0)
        note("a MAP_PRIVATE page not yet written does not show a later write() (Linux shows it)");
    CHECK(p[0] == 'Z');                                 /* the copied page is ours */
    OK(munmap(p, 4 * PG));
    /* what cannot be mapped */
    int wo = OK(sys_open("f", O_WRONLY, 0));
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, wo, 0), EACCES);
    OK(close(wo));
    OK(syscall(SYS_mkdir, "d", 0755));
    int dfd = OK(sys_open("d", O_RDONLY, 0));
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, dfd, 0), ENODEV);
    OK(close(dfd));
    int pp[2];
    OK(syscall(SYS_pipe, pp));
    ERR(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, pp[0], 0), ENODEV);
    close(pp[0]);
    close(pp[1]);
}

static void t_mmap_file_shared(void)
{
    static char zero[2 * 4096], buf[64];
    put_file("f", zero, sizeof zero);
    int fd = OK(sys_open("f", O_RDWR, 0));
    char *p = (char *)OK(mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    char *p2 = (char *)OK(mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0));
    memcpy(p + 100, "shared!", 7);
    memcpy(p + PG + 5, "page two", 8);
    CHECK(OK(syscall(SYS_pread64, fd, buf, 7, 100)) == 7 && memcmp(buf, "shared!", 7) == 0);
    CHECK(OK(syscall(SYS_pread64, fd, buf, 8, PG + 5)) == 8 && memcmp(buf, "page two", 8) == 0);
    CHECK(memcmp(p2 + 100, "shared!", 7) == 0);         /* a second mapping sees it */
    CHECK(OK(syscall(SYS_pwrite64, fd, "viawrite", 8, 200)) == 8);
    CHECK(memcmp(p + 200, "viawrite", 8) == 0);         /* and write() shows in the mapping */
    OK(msync(p, 2 * PG, MS_SYNC));
    OK(msync(p, PG, MS_ASYNC));
    OK(msync(p, PG, MS_INVALIDATE));
    OK(msync(p, 0, MS_SYNC));
    ERR(msync(p, PG, MS_SYNC | MS_ASYNC), EINVAL);
    ERR(msync(p + 1, PG, MS_SYNC), EINVAL);
    ERR(msync(p, PG, 0x100), EINVAL);
    /* a child writes through its inherited mapping */
    pid_t pid = xfork();
    if (pid == 0) {
        memcpy(p + 300, "child", 5);
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
    CHECK(memcmp(p + 300, "child", 5) == 0);
    OK(munmap(p2, 2 * PG));
    OK(munmap(p, 2 * PG));
    ERR(msync(p, PG, MS_SYNC), ENOMEM);                 /* no longer mapped */
    OK(close(fd));
    fd = OK(sys_open("f", O_RDONLY, 0));
    CHECK(OK(syscall(SYS_pread64, fd, buf, 5, 300)) == 5 && memcmp(buf, "child", 5) == 0);
    CHECK(OK(syscall(SYS_pread64, fd, buf, 7, 100)) == 7 && memcmp(buf, "shared!", 7) == 0);
    OK(close(fd));
    struct stat st;
    OK(syscall(SYS_stat, "f", &st));
    CHECK(st.st_size == sizeof zero);                   /* mappings do not change the size */
    char *a = xmap(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    OK(msync(a, PG, MS_SYNC));                          /* anonymous: nothing to do */
    OK(munmap(a, PG));
}

/* ================================================================== */
/* Signals                                                            */

static volatile int h_count, h_sig, h_code, h_pid, h_uid, h_status;
static volatile int h_usr1_blocked, h_usr2_blocked;
static volatile uintptr_t h_fp;
static volatile uint32_t h_mxcsr;
static volatile uint16_t h_fcw;
static volatile int *spin_hits;

static int is_blocked(int sig)
{
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    return sigismember(&cur, sig);
}

static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    h_count++;
    h_sig = si->si_signo;
    h_code = si->si_code;
    h_pid = si->si_pid;
    h_uid = si->si_uid;
    h_status = si->si_status;
    h_usr1_blocked = is_blocked(SIGUSR1);
    h_usr2_blocked = is_blocked(SIGUSR2);
}

static void count_handler(int sig)
{
    (void)sig;
    h_count++;
}

static void set_handler(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    OK(sigaction(sig, &sa, NULL));
}

static void set_info_handler(int sig, int flags, int masked)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO | flags;
    if (masked)
        sigaddset(&sa.sa_mask, masked);
    OK(sigaction(sig, &sa, NULL));
}

/* the kernel's struct sigaction for x86-64 (rt_sigaction) */
struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

static void t_sigaction(void)
{
    void *bad;
    struct sigaction sa, old, cur;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    OK(sigaction(SIGUSR1, &sa, &old));
    CHECK(old.sa_handler == SIG_DFL);
    OK(sigaction(SIGUSR1, NULL, &cur));
    CHECK(cur.sa_sigaction == info_handler);
    CHECK((cur.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART));
    CHECK(sigismember(&cur.sa_mask, SIGUSR2) && !sigismember(&cur.sa_mask, SIGTERM));
    /* delivery: siginfo, and the mask while the handler runs */
    h_count = 0;
    OK(kill(getpid(), SIGUSR1));
    CHECK(h_count == 1 && h_sig == SIGUSR1 && h_code == SI_USER);
    CHECK(h_pid == getpid() && h_uid == (int)getuid());
    CHECKM(h_usr1_blocked && h_usr2_blocked, "in the handler SIGUSR1 blocked %d, SIGUSR2 (sa_mask) %d",
           h_usr1_blocked, h_usr2_blocked);
    CHECK(!is_blocked(SIGUSR1) && !is_blocked(SIGUSR2));        /* restored */
    /* SA_NODEFER: the signal itself is not blocked inside */
    set_info_handler(SIGUSR1, SA_NODEFER, 0);
    OK(kill(getpid(), SIGUSR1));
    CHECK(h_count == 2 && !h_usr1_blocked);
    /* SA_RESETHAND: one shot, then the default again */
    set_info_handler(SIGUSR1, SA_RESETHAND, 0);
    OK(kill(getpid(), SIGUSR1));
    CHECK(h_count == 3);
    OK(sigaction(SIGUSR1, NULL, &cur));
    CHECK(cur.sa_handler == SIG_DFL);
    /* SIG_IGN */
    set_handler(SIGUSR1, SIG_IGN, 0);
    OK(kill(getpid(), SIGUSR1));
    CHECK(h_count == 3);
    /* the raw call: its rules */
    struct ksigaction ka, kold;
    OK(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &kold, 8));
    CHECK(kold.handler == SIG_IGN);
    OK(syscall(SYS_rt_sigaction, SIGKILL, NULL, &kold, 8));      /* reading is fine */
    ERR(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &kold, 4), EINVAL);   /* sigsetsize */
    ERR(syscall(SYS_rt_sigaction, 0, NULL, &kold, 8), EINVAL);
    ERR(syscall(SYS_rt_sigaction, 65, NULL, &kold, 8), EINVAL);
    memset(&ka, 0, sizeof ka);
    ka.handler = (void *)count_handler;
    ka.flags = SA_RESTORER;
    ka.restorer = kold.restorer;
    ERR(syscall(SYS_rt_sigaction, SIGKILL, &ka, NULL, 8), EINVAL);
    ERR(syscall(SYS_rt_sigaction, SIGSTOP, &ka, NULL, 8), EINVAL);
    ka.handler = SIG_IGN;
    ERR(syscall(SYS_rt_sigaction, SIGKILL, &ka, NULL, 8), EINVAL);
    FOR_BAD(bad) {
        ERR(syscall(SYS_rt_sigaction, SIGUSR1, bad, NULL, 8), EFAULT);
        ERR(syscall(SYS_rt_sigaction, SIGUSR1, NULL, bad, 8), EFAULT);
    }
    OK(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &kold, 8));
    CHECK(kold.handler == SIG_IGN);                     /* the failures changed nothing */
    /* real-time signals queue; standard ones do not */
    set_info_handler(SIGRTMIN + 1, 0, 0);
    set_info_handler(SIGUSR2, 0, 0);
    sigset_t set, oldset;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGUSR2);
    OK(sigprocmask(SIG_BLOCK, &set, &oldset));
    h_count = 0;
    for (int i = 0; i < 3; i++) {
        OK(kill(getpid(), SIGRTMIN + 1));
        OK(kill(getpid(), SIGUSR2));
    }
    CHECK(h_count == 0);
    OK(sigprocmask(SIG_SETMASK, &oldset, NULL));
    CHECKM(h_count == 4, "%d deliveries, expected 3 of SIGRTMIN+1 and 1 of SIGUSR2", h_count);
}

static void t_sigprocmask(void)
{
    void *bad;
    sigset_t set, old, cur;
    set_handler(SIGUSR1, count_handler, 0);
    h_count = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    OK(sigprocmask(SIG_BLOCK, &set, &old));
    CHECK(!sigismember(&old, SIGUSR1));
    OK(kill(getpid(), SIGUSR1));
    OK(kill(getpid(), SIGUSR1));
    CHECK(h_count == 0);                                /* held */
    uint64_t pend = 0;
    if (syscall(SYS_rt_sigpending, &pend, 8) == 0)
        CHECK(pend & (1UL << (SIGUSR1 - 1)));
    else
        note("rt_sigpending: %s (its check skipped)", en(errno));
    /* the mask is inherited by a child; pending signals are not */
    pid_t pid = xfork();
    if (pid == 0) {
        CHECK(is_blocked(SIGUSR1));
        uint64_t p2 = 0;
        if (syscall(SYS_rt_sigpending, &p2, 8) == 0)
            CHECK(!(p2 & (1UL << (SIGUSR1 - 1))));
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
    OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
    CHECKM(h_count == 1, "%d deliveries after unblocking, expected 1 (standard signals do not queue)", h_count);
    /* SIG_SETMASK, and reading it back */
    OK(sigprocmask(SIG_SETMASK, &set, NULL));
    OK(sigprocmask(SIG_SETMASK, NULL, &cur));
    CHECK(sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGUSR2));
    /* SIGKILL and SIGSTOP cannot be blocked: silently left out */
    sigfillset(&set);
    OK(sigprocmask(SIG_SETMASK, &set, NULL));
    OK(sigprocmask(SIG_SETMASK, NULL, &cur));
    CHECK(!sigismember(&cur, SIGKILL) && !sigismember(&cur, SIGSTOP));
    CHECK(sigismember(&cur, SIGTERM) && sigismember(&cur, SIGRTMAX));
    OK(sigprocmask(SIG_SETMASK, &old, NULL));
    uint64_t kset = 0, kold;
    ERR(syscall(SYS_rt_sigprocmask, 99, &kset, NULL, 8), EINVAL);
    ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &kset, NULL, 4), EINVAL);
    OK(syscall(SYS_rt_sigprocmask, 99, NULL, &kold, 8));     /* no set: `how` is unused */
    FOR_BAD(bad) {
        ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, bad, NULL, 8), EFAULT);
        ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, bad, 8), EFAULT);
    }
}

/* --- registers across a signal: synchronous (kill from asm) and
 *     asynchronous (signals from another process while spinning) --- */

struct regprobe {
    uint8_t xin[256];       /* 0 */
    uint8_t xout[256];      /* 256 */
    uint64_t gout[16];      /* 512 */
    uint32_t mxcsr_in;      /* 640 */
    uint32_t mxcsr_out;     /* 644 */
    uint16_t fcw_in;        /* 648 */
    uint16_t fcw_out;       /* 650 */
    uint32_t pad;           /* 652 */
    int64_t pid;            /* 656 */
    int64_t sig;            /* 664 */
};
_Static_assert(offsetof(struct regprobe, mxcsr_in) == 640, "layout");
_Static_assert(offsetof(struct regprobe, pid) == 656, "layout");

void ut_regs_sync(struct regprobe *rp);
void ut_regs_spin(struct regprobe *rp);
volatile int *ut_spin_hits;
int ut_spin_target;

/* gout[]: rbx rbp rdx r8 r9 r10 r12 r13 r14 r15 rdi rsi rax rcx r11 */
#define LOAD_REGS \
    "ldmxcsr 640(%rdi)\n fldcw 648(%rdi)\n" \
    "movdqu 0(%rdi),%xmm0\n movdqu 16(%rdi),%xmm1\n movdqu 32(%rdi),%xmm2\n" \
    "movdqu 48(%rdi),%xmm3\n movdqu 64(%rdi),%xmm4\n movdqu 80(%rdi),%xmm5\n" \
    "movdqu 96(%rdi),%xmm6\n movdqu 112(%rdi),%xmm7\n movdqu 128(%rdi),%xmm8\n" \
    "movdqu 144(%rdi),%xmm9\n movdqu 160(%rdi),%xmm10\n movdqu 176(%rdi),%xmm11\n" \
    "movdqu 192(%rdi),%xmm12\n movdqu 208(%rdi),%xmm13\n movdqu 224(%rdi),%xmm14\n" \
    "movdqu 240(%rdi),%xmm15\n" \
    "movabs $0x1111111111111111,%rbx\n movabs $0x2222222222222222,%rbp\n" \
    "movabs $0x3333333333333333,%rdx\n movabs $0x4444444444444444,%r8\n" \
    "movabs $0x5555555555555555,%r9\n movabs $0x6666666666666666,%r10\n" \
    "movabs $0x7777777777777777,%r12\n movabs $0x8888888888888888,%r13\n" \
    "movabs $0x9999999999999999,%r14\n movabs $0xaaaaaaaaaaaaaaaa,%r15\n"
#define STORE_REGS /* rp in %rax, the value to store as rax on the stack top */ \
    "movdqu %xmm0,256(%rax)\n movdqu %xmm1,272(%rax)\n movdqu %xmm2,288(%rax)\n" \
    "movdqu %xmm3,304(%rax)\n movdqu %xmm4,320(%rax)\n movdqu %xmm5,336(%rax)\n" \
    "movdqu %xmm6,352(%rax)\n movdqu %xmm7,368(%rax)\n movdqu %xmm8,384(%rax)\n" \
    "movdqu %xmm9,400(%rax)\n movdqu %xmm10,416(%rax)\n movdqu %xmm11,432(%rax)\n" \
    "movdqu %xmm12,448(%rax)\n movdqu %xmm13,464(%rax)\n movdqu %xmm14,480(%rax)\n" \
    "movdqu %xmm15,496(%rax)\n" \
    "mov %rbx,512(%rax)\n mov %rbp,520(%rax)\n mov %rdx,528(%rax)\n mov %r8,536(%rax)\n" \
    "mov %r9,544(%rax)\n mov %r10,552(%rax)\n mov %r12,560(%rax)\n mov %r13,568(%rax)\n" \
    "mov %r14,576(%rax)\n mov %r15,584(%rax)\n mov %rdi,592(%rax)\n mov %rsi,600(%rax)\n" \
    "mov %rcx,616(%rax)\n mov %r11,624(%rax)\n" \
    "pop %rcx\n mov %rcx,608(%rax)\n" \
    "stmxcsr 644(%rax)\n fnstcw 650(%rax)\n" \
    "pushq $0x1f80\n ldmxcsr (%rsp)\n movq $0x37f,(%rsp)\n fldcw (%rsp)\n pop %rcx\n"

__asm__(
    ".text\n"
    ".globl ut_regs_sync\n .type ut_regs_sync,@function\n"
    "ut_regs_sync:\n"
    " push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n push %rdi\n"
    LOAD_REGS
    " mov 664(%rdi),%rsi\n mov 656(%rdi),%rdi\n"
    " mov $62,%eax\n syscall\n"                 /* kill(pid, sig): the signal comes on return */
    " push %rax\n mov 8(%rsp),%rax\n"
    STORE_REGS
    " pop %rdi\n pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n ret\n"
    ".size ut_regs_sync, .-ut_regs_sync\n"
    ".globl ut_regs_spin\n .type ut_regs_spin,@function\n"
    "ut_regs_spin:\n"
    " push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n push %rdi\n"
    LOAD_REGS
    " movabs $0xbbbbbbbbbbbbbbbb,%rdi\n movabs $0xcccccccccccccccc,%rsi\n"
    " movabs $0xdddddddddddddddd,%rcx\n movabs $0xeeeeeeeeeeeeeeee,%r11\n"
    "1: mov ut_spin_hits(%rip),%rax\n mov (%rax),%eax\n"
    " cmp ut_spin_target(%rip),%eax\n jl 1b\n"
    " push %rax\n mov 8(%rsp),%rax\n"
    STORE_REGS
    " pop %rdi\n pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n ret\n"
    ".size ut_regs_spin, .-ut_regs_spin\n");

static void clobber_handler(int sig)
{
    (void)sig;
    uint32_t m;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    h_mxcsr = m;
    h_fcw = cw;
    h_fp = (uintptr_t)__builtin_frame_address(0);
    uint32_t nm = 0x7f80;                   /* round toward zero */
    uint16_t ncw = 0x0c7f;
    __asm__ volatile(
        "pcmpeqd %%xmm0,%%xmm0\n pcmpeqd %%xmm1,%%xmm1\n pcmpeqd %%xmm2,%%xmm2\n"
        "pcmpeqd %%xmm3,%%xmm3\n pcmpeqd %%xmm4,%%xmm4\n pcmpeqd %%xmm5,%%xmm5\n"
        "pcmpeqd %%xmm6,%%xmm6\n pcmpeqd %%xmm7,%%xmm7\n pcmpeqd %%xmm8,%%xmm8\n"
        "pcmpeqd %%xmm9,%%xmm9\n pcmpeqd %%xmm10,%%xmm10\n pcmpeqd %%xmm11,%%xmm11\n"
        "pcmpeqd %%xmm12,%%xmm12\n pcmpeqd %%xmm13,%%xmm13\n pcmpeqd %%xmm14,%%xmm14\n"
        "pcmpeqd %%xmm15,%%xmm15\n"
        "ldmxcsr %0\n fldcw %1\n"
        "mov $-1,%%rdx\n mov $-1,%%rsi\n mov $-1,%%rdi\n mov $-1,%%r8\n mov $-1,%%r9\n"
        "mov $-1,%%r10\n mov $-1,%%r11\n mov $-1,%%rcx\n"
        : : "m"(nm), "m"(ncw)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "rcx", "memory");
    h_count++;
    if (spin_hits)
        (*spin_hits)++;
}

static void check_regs(struct regprobe *rp, int async, uint64_t rdi, uint64_t rsi)
{
    static const char *names[] = {"rbx", "rbp", "rdx", "r8", "r9", "r10", "r12", "r13",
                                  "r14", "r15", "rdi", "rsi", "rax", "rcx", "r11"};
    uint64_t want[15] = {
        0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444,
        0x5555555555555555, 0x6666666666666666, 0x7777777777777777, 0x8888888888888888,
        0x9999999999999999, 0xaaaaaaaaaaaaaaaa, rdi, rsi, 0, 0xdddddddddddddddd,
        0xeeeeeeeeeeeeeeee,
    };
    int n = async ? 15 : 12;
    for (int i = 0; i < n; i++) {
        if (i == 12)
            continue;                       /* rax: the loop's scratch / kill's result */
        CHECKM(rp->gout[i] == want[i], "%s is %#lx after the signal, expected %#lx",
               names[i], (unsigned long)rp->gout[i], (unsigned long)want[i]);
    }
    if (!async)
        CHECKM(rp->gout[12] == 0, "kill() returned %ld", (long)rp->gout[12]);
    for (int i = 0; i < 16; i++)
        CHECKM(memcmp(rp->xin + 16 * i, rp->xout + 16 * i, 16) == 0,
               "xmm%d changed across the signal", i);
    CHECKM(rp->mxcsr_out == rp->mxcsr_in, "MXCSR %#x after the signal, expected %#x",
           rp->mxcsr_out, rp->mxcsr_in);
    CHECKM(rp->fcw_out == rp->fcw_in, "x87 control word %#x, expected %#x", rp->fcw_out, rp->fcw_in);
}

static void init_regprobe(struct regprobe *rp)
{
    memset(rp, 0, sizeof *rp);
    fill_pat(rp->xin, sizeof rp->xin, 0, 77);
    rp->mxcsr_in = 0x3f80;                  /* round down, exceptions masked */
    rp->fcw_in = 0x047f;                    /* x87: round down */
}

static void t_sigreturn_regs(void)
{
    static struct regprobe rp;
    set_handler(SIGUSR1, clobber_handler, 0);
    init_regprobe(&rp);
    rp.pid = getpid();
    rp.sig = SIGUSR1;
    h_count = 0;
    ut_regs_sync(&rp);
    CHECK(h_count == 1);
    check_regs(&rp, 0, rp.pid, rp.sig);
    CHECKM(h_mxcsr == 0x1f80, "the handler started with MXCSR %#x, expected the default 0x1f80", h_mxcsr);
    CHECKM(h_fcw == 0x37f, "the handler started with x87 control word %#x, expected 0x37f", h_fcw);
    CHECKM((h_fp & 15) == 0, "the handler's stack is misaligned (frame %#lx)", (unsigned long)h_fp);
}

static void t_sig_async_regs(void)
{
    struct shared { volatile int hits, ready; } *sh = shared_page(PG);
    const int rounds = 20;
    pid_t pid = xfork();
    if (pid == 0) {
        static struct regprobe rp;
        set_handler(SIGUSR1, clobber_handler, 0);
        spin_hits = &sh->hits;
        ut_spin_hits = &sh->hits;
        ut_spin_target = rounds;
        init_regprobe(&rp);
        sh->ready = 1;
        ut_regs_spin(&rp);
        check_regs(&rp, 1, 0xbbbbbbbbbbbbbbbb, 0xcccccccccccccccc);
        _exit(0);
    }
    double t0 = mono();
    while (!sh->ready && mono() - t0 < 10)
        msleep(1);
    CHECKM(sh->ready, "the child did not start");
    for (int i = 1; i <= rounds; i++) {
        msleep(i % 3);
        OK(kill(pid, SIGUSR1));
        t0 = mono();
        while (sh->hits < i && mono() - t0 < 10)
            msleep(1);
        if (sh->hits < i) {
            kill(pid, SIGKILL);
            xwait(pid);
            FAIL("signal %d of %d did not reach the spinning child in 10 s", i, rounds);
        }
    }
    EXPECT_EXIT(pid, 0);
}

/* --- ucontext: the handler sees the faulting state and can change it --- */

long ut_uctx_probe(volatile void *addr);
extern char ut_uctx_fault[], ut_uctx_after[];
__asm__(
    ".text\n .globl ut_uctx_probe\n .type ut_uctx_probe,@function\n"
    "ut_uctx_probe:\n mov $7,%eax\n"
    ".globl ut_uctx_fault\n ut_uctx_fault:\n mov (%rdi),%rax\n"
    ".globl ut_uctx_after\n ut_uctx_after:\n ret\n"
    ".size ut_uctx_probe, .-ut_uctx_probe\n");

static volatile uint64_t u_rip, u_rdi, u_trapno, u_err, u_cr2;
static void *volatile u_addr;

static void uctx_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    ucontext_t *uc = ctx;
    u_addr = si->si_addr;
    u_rip = uc->uc_mcontext.gregs[REG_RIP];
    u_rdi = uc->uc_mcontext.gregs[REG_RDI];
    u_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
    u_err = uc->uc_mcontext.gregs[REG_ERR];
    u_cr2 = uc->uc_mcontext.gregs[REG_CR2];
    uc->uc_mcontext.gregs[REG_RIP] = (uintptr_t)ut_uctx_after;
    uc->uc_mcontext.gregs[REG_RAX] = (u_rip == (uintptr_t)ut_uctx_fault) ? 42 : -1;
    sigaddset(&uc->uc_sigmask, SIGUSR2);    /* sigreturn installs this mask */
}

static void t_sig_ucontext(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = uctx_handler;
    sa.sa_flags = SA_SIGINFO;
    OK(sigaction(SIGSEGV, &sa, NULL));
    CHECK(!is_blocked(SIGUSR2));
    void *bad = bad_ptr[1].p;
    long r = ut_uctx_probe(bad);
    CHECKM(u_rip == (uintptr_t)ut_uctx_fault, "uc_mcontext RIP %#lx, expected the load at %p",
           (unsigned long)u_rip, (void *)ut_uctx_fault);
    CHECKM(r == 42, "execution resumed with rax %ld, expected 42 (RIP/RAX set in the handler)", r);
    CHECK(u_addr == bad && u_rdi == (uintptr_t)bad);
    CHECKM(u_trapno == 14, "REG_TRAPNO %lu, expected 14 (#PF)", (unsigned long)u_trapno);
    CHECKM(u_err & 4, "REG_ERR %#lx lacks the user bit", (unsigned long)u_err);
    CHECKM(u_cr2 == (uintptr_t)bad, "REG_CR2 %#lx", (unsigned long)u_cr2);
    CHECKM(is_blocked(SIGUSR2), "the mask set in uc_sigmask was not installed by sigreturn");
}

static void t_sigreturn_bad(void)
{
    /* rt_sigreturn with no signal frame: the process dies of SIGSEGV, the
     * kernel survives (the frame is read from the stack pointer) */
    pid_t pid = xfork();
    if (pid == 0) {
        __asm__ volatile("mov %0,%%rsp\n mov $15,%%eax\n syscall\n ud2\n"
                         : : "r"(0x100000000000UL) : "memory");
        _exit(1);
    }
    EXPECT_SIG(pid, SIGSEGV);
    static uint64_t zeros[512] __attribute__((aligned(64)));   /* a frame of zeros */
    pid = xfork();
    if (pid == 0) {
        __asm__ volatile("mov %0,%%rsp\n mov $15,%%eax\n syscall\n ud2\n"
                         : : "r"(&zeros[8]) : "memory");
        _exit(1);
    }
    EXPECT_SIG(pid, SIGSEGV);
    static uint64_t junk[512] __attribute__((aligned(64)));    /* a frame of junk */
    fill_pat(junk, sizeof junk, 0, 99);
    pid = xfork();
    if (pid == 0) {
        __asm__ volatile("mov %0,%%rsp\n mov $15,%%eax\n syscall\n ud2\n"
                         : : "r"(&junk[8]) : "memory");
        _exit(1);
    }
    int st = xwait(pid);
    CHECKM(WIFSIGNALED(st), "a junk signal frame did not kill the process (status %#x)", st);
}

static void t_segv_info(void)
{
    /* each bad access reaches a handler with si_addr and si_code set */
    EXPECT_FAULT(bad_ptr[1].p, P_READ, SIGSEGV, SEGV_MAPERR);
    EXPECT_FAULT((void *)0, P_READ, SIGSEGV, SEGV_MAPERR);
    EXPECT_FAULT((void *)8, P_WRITE, SIGSEGV, SEGV_MAPERR);
    EXPECT_FAULT(0xffff888000000000UL, P_READ, SIGSEGV, SEGV_MAPERR);
    EXPECT_FAULT(0xffffffff80000000UL, P_WRITE, SIGSEGV, SEGV_MAPERR);
    /* non-canonical: a #GP, not a #PF; Linux reports si_addr 0, SI_KERNEL */
    int s = probe((void *)0x8000000000000000UL, P_READ, 0);
    CHECKM(s == SIGSEGV && probe_si.si_addr == NULL && probe_si.si_code == SI_KERNEL,
           "non-canonical read: signal %d si_addr %p si_code %d, expected SIGSEGV, 0, SI_KERNEL",
           s, probe_si.si_addr, probe_si.si_code);
    /* text is not writable, data is not executable */
    EXPECT_FAULT((void *)t_segv_info, P_WRITE, SIGSEGV, SEGV_ACCERR);
    static const char ro[] = "rodata";
    EXPECT_FAULT(ro, P_WRITE, SIGSEGV, SEGV_ACCERR);
    char *p = xmap(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    p[0] = (char)0xc3;
    EXPECT_FAULT(p, P_EXEC, SIGSEGV, SEGV_ACCERR);
    volatile unsigned char code[16] = {0xc3};
    EXPECT_FAULT(code, P_EXEC, SIGSEGV, SEGV_ACCERR);
    /* the handler can run again and again */
    for (int i = 0; i < 20; i++)
        EXPECT_FAULT((char *)bad_ptr[1].p + i * PG, i % 2 ? P_WRITE : P_READ, SIGSEGV, SEGV_MAPERR);
    OK(munmap(p, PG));
    /* without a handler: death by SIGSEGV */
    pid_t pid = xfork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile char *)bad_ptr[1].p = 1;
        _exit(0);
    }
    EXPECT_SIG(pid, SIGSEGV);
}

static void t_kill(void)
{
    OK(kill(getpid(), 0));
    ERR(kill(getpid(), 65), EINVAL);
    ERR(kill(getpid(), -1), EINVAL);
    pid_t dead = dead_pid();
    ERR(kill(dead, 0), ESRCH);
    ERR(kill(dead, SIGKILL), ESRCH);
    /* default actions */
    int sigs[] = {SIGKILL, SIGTERM, SIGUSR1, SIGINT, SIGHUP, SIGALRM};
    for (int i = 0; i < 6; i++) {
        pid_t pid = xfork();
        if (pid == 0) {
            for (;;)
                msleep(1000);
        }
        OK(kill(pid, sigs[i]));
        EXPECT_SIG(pid, sigs[i]);
    }
    /* ignored by default, or by choice */
    int go[2], ready[2];
    OK(syscall(SYS_pipe, go));
    OK(syscall(SYS_pipe, ready));
    pid_t pid = xfork();
    if (pid == 0) {
        signal(SIGTERM, SIG_IGN);
        char c;
        CHECK(write(ready[1], "r", 1) == 1);
        CHECK(read(go[0], &c, 1) == 1 && c == 'g');
        _exit(5);
    }
    char c;
    CHECK(OK(read(ready[0], &c, 1)) == 1);
    OK(kill(pid, SIGCHLD));
    OK(kill(pid, SIGURG));
    OK(kill(pid, SIGWINCH));
    OK(kill(pid, SIGTERM));
    msleep(50);
    CHECK(OK(write(go[1], "g", 1)) == 1);
    EXPECT_EXIT(pid, 5);
    /* a zombie still exists for kill() until it is reaped */
    pid = xfork();
    if (pid == 0)
        _exit(0);
    msleep(50);
    OK(kill(pid, 0));
    xwait(pid);
    ERR(kill(pid, 0), ESRCH);
    /* kill(0, sig): the caller's process group; kill(-pgid, sig): a group */
    pid = xfork();
    if (pid == 0) {
        OK(setpgid(0, 0));
        set_handler(SIGUSR1, count_handler, 0);
        h_count = 0;
        OK(kill(0, SIGUSR1));
        CHECK(h_count == 1);
        pid_t a = xfork();
        if (a == 0) {
            for (;;)
                msleep(1000);
        }
        pid_t b = xfork();
        if (b == 0) {
            for (;;)
                msleep(1000);
        }
        signal(SIGUSR2, SIG_IGN);
        OK(kill(-getpid(), SIGUSR2));       /* the group: both children die */
        EXPECT_SIG(a, SIGUSR2);
        EXPECT_SIG(b, SIGUSR2);
        ERR(kill(-dead_pid(), SIGUSR2), ESRCH);
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
}

static void t_tgkill(void)
{
    pid_t pid = getpid(), tid = syscall(SYS_gettid);
    set_info_handler(SIGUSR1, 0, 0);
    h_count = 0;
    OK(syscall(SYS_tgkill, pid, tid, SIGUSR1));
    CHECK(h_count == 1 && h_sig == SIGUSR1 && h_code == SI_TKILL && h_pid == pid);
    OK(syscall(SYS_tgkill, pid, tid, 0));
    pid_t dead = dead_pid();
    ERR(syscall(SYS_tgkill, pid, dead, SIGUSR1), ESRCH);
    ERR(syscall(SYS_tgkill, dead, dead, SIGUSR1), ESRCH);
    ERR(syscall(SYS_tgkill, 0, tid, SIGUSR1), EINVAL);
    ERR(syscall(SYS_tgkill, pid, 0, SIGUSR1), EINVAL);
    ERR(syscall(SYS_tgkill, pid, -1, SIGUSR1), EINVAL);
    ERR(syscall(SYS_tgkill, pid, tid, 65), EINVAL);
    /* to another process: its pid is its tid */
    pid_t child = xfork();
    if (child == 0) {
        for (;;)
            msleep(1000);
    }
    ERR(syscall(SYS_tgkill, pid, child, SIGTERM), ESRCH);     /* wrong thread group */
    OK(syscall(SYS_tgkill, child, child, SIGTERM));
    EXPECT_SIG(child, SIGTERM);
    CHECK(h_count == 1);
}

static void t_sigchld(void)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    set_info_handler(SIGCHLD, SA_RESTART, 0);
    struct { int how, arg, code, status; } cases[] = {
        {0, 7, CLD_EXITED, 7},                  /* exits with 7 */
        {1, SIGKILL, CLD_KILLED, SIGKILL},      /* killed by the parent */
        {2, SIGSEGV, CLD_KILLED, SIGSEGV},      /* dies of a bad access */
        {3, SIGTERM, CLD_KILLED, SIGTERM},      /* kills itself */
    };
    for (int i = 0; i < 4; i++) {
        OK(sigprocmask(SIG_BLOCK, &set, &old));
        h_count = 0;
        pid_t pid = xfork();
        if (pid == 0) {
            OK(sigprocmask(SIG_SETMASK, &old, NULL));
            signal(SIGSEGV, SIG_DFL);
            if (cases[i].how == 0)
                _exit(7);
            if (cases[i].how == 2)
                *(volatile char *)bad_ptr[1].p = 1;
            if (cases[i].how == 3)
                kill(getpid(), SIGTERM);
            for (;;)
                msleep(1000);
        }
        if (cases[i].how == 1)
            OK(kill(pid, SIGKILL));
        int st = xwait(pid);
        if (cases[i].how == 0)
            CHECKM(st == (7 << 8), "status %#x, expected 0x700", st);
        else
            CHECKM(WIFSIGNALED(st) && WTERMSIG(st) == cases[i].arg,
                   "status %#x, expected death by signal %d", st, cases[i].arg);
        if (cases[i].how == 1 || cases[i].how == 3)
            CHECKM(st == cases[i].arg, "status %#x, expected %#x", st, cases[i].arg);
        CHECK(h_count == 0);
        OK(sigprocmask(SIG_SETMASK, &old, NULL));       /* SIGCHLD was left pending */
        CHECKM(h_count == 1, "case %d: SIGCHLD handler ran %d times", i, h_count);
        CHECK(h_sig == SIGCHLD && h_pid == pid && h_status == cases[i].status);
        if (cases[i].how == 2)
            CHECKM(h_code == CLD_KILLED || h_code == CLD_DUMPED, "si_code %d", h_code);
        else
            CHECKM(h_code == cases[i].code, "case %d: si_code %d, expected %d", i, h_code, cases[i].code);
    }
    /* SIGCHLD ignored: children are reaped by the kernel, wait4 says ECHILD */
    set_handler(SIGCHLD, SIG_IGN, 0);
    pid_t pid = xfork();
    if (pid == 0)
        _exit(3);
    int st;
    ERR(syscall(SYS_wait4, -1, &st, 0, NULL), ECHILD);
    set_handler(SIGCHLD, SIG_DFL, 0);
}

static void t_sigpipe(void)
{
    int p[2];
    OK(syscall(SYS_pipe, p));
    OK(close(p[0]));
    pid_t pid = xfork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        (void)write(p[1], "x", 1);
        _exit(0);
    }
    EXPECT_SIG(pid, SIGPIPE);
    set_handler(SIGPIPE, SIG_IGN, 0);
    ERR(write(p[1], "x", 1), EPIPE);
    struct iovec v = {"x", 1};
    ERR(syscall(SYS_writev, p[1], &v, 1), EPIPE);
    set_handler(SIGPIPE, count_handler, 0);
    h_count = 0;
    ERR(write(p[1], "x", 1), EPIPE);
    CHECK(h_count == 1);
    OK(close(p[1]));
    /* the reader closes while the writer is blocked on a full pipe */
    OK(syscall(SYS_pipe, p));
    pid = xfork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        close(p[0]);
        static char buf[4096];
        for (;;) {
            if (write(p[1], buf, sizeof buf) < 0)
                _exit(errno == EPIPE ? 0 : 1);
        }
    }
    OK(close(p[1]));
    msleep(100);                                        /* the child fills the pipe */
    OK(close(p[0]));
    EXPECT_EXIT(pid, 0);
}

static void t_eintr(void)
{
    int p[2];
    struct shared { volatile int state; } *sh = shared_page(PG);
    /* without SA_RESTART: a blocked read returns EINTR */
    OK(syscall(SYS_pipe, p));
    pid_t pid = xfork();
    if (pid == 0) {
        set_handler(SIGUSR1, count_handler, 0);
        sh->state = 1;
        char c;
        long r = read(p[0], &c, 1);
        CHECKM(r == -1 && errno == EINTR, "read returned %ld (%s), expected EINTR", r, en(errno));
        CHECK(h_count >= 1);
        _exit(0);
    }
    AWAIT(sh->state);
    for (int i = 0; i < 200 && syscall(SYS_wait4, pid, NULL, WNOHANG, NULL) == 0; i++) {
        msleep(20);
        kill(pid, SIGUSR1);
    }
    CHECK(OK(write(p[1], "x", 1)) == 1);            /* in case it is still blocked */
    {
        int st;
        long r = syscall(SYS_wait4, pid, &st, 0, NULL);
        if (r == pid)
            CHECKM(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader ended with status %#x", st);
        else
            CHECK(r == -1 && errno == ECHILD);      /* reaped by the WNOHANG loop */
    }
    close(p[0]);
    close(p[1]);
    /* with SA_RESTART: the read goes on and gets the data */
    OK(syscall(SYS_pipe, p));
    sh->state = 0;
    pid = xfork();
    if (pid == 0) {
        set_handler(SIGUSR1, count_handler, SA_RESTART);
        h_count = 0;
        sh->state = 1;
        char c;
        long r = read(p[0], &c, 1);
        CHECKM(r == 1 && c == 'd', "read returned %ld (%s), expected the data", r, r < 0 ? en(errno) : "");
        CHECK(h_count >= 1);
        _exit(0);
    }
    AWAIT(sh->state);
    for (int i = 0; i < 3; i++) {
        msleep(30);
        OK(kill(pid, SIGUSR1));
    }
    msleep(30);
    CHECK(OK(write(p[1], "d", 1)) == 1);
    EXPECT_EXIT(pid, 0);
    close(p[0]);
    close(p[1]);
    /* nanosleep interrupted: EINTR and the time left */
    sh->state = 0;
    pid = xfork();
    if (pid == 0) {
        set_handler(SIGUSR1, count_handler, 0);
        sh->state = 1;
        struct timespec req = {5, 0}, rem = {0, 0};
        long r = syscall(SYS_nanosleep, &req, &rem);
        CHECKM(r == -1 && errno == EINTR, "nanosleep returned %ld (%s)", r, en(errno));
        CHECKM(rem.tv_sec < 5 && (rem.tv_sec > 0 || rem.tv_nsec > 0) && rem.tv_nsec < 1000000000,
               "rem = %ld.%09ld", (long)rem.tv_sec, rem.tv_nsec);
        _exit(0);
    }
    AWAIT(sh->state);
    msleep(100);
    OK(kill(pid, SIGUSR1));
    EXPECT_EXIT(pid, 0);
}

/* ================================================================== */
/* Processes                                                          */

static void t_ids(void)
{
    pid_t pid = getpid();
    CHECK(pid > 0 && syscall(SYS_getpid) == pid);
    CHECK(syscall(SYS_gettid) == pid);                  /* one thread: tid == pid */
    CHECK(syscall(SYS_getppid) > 0 && syscall(SYS_getppid) != pid);
    uid_t uid = syscall(SYS_getuid), euid = syscall(SYS_geteuid);
    gid_t gid = syscall(SYS_getgid), egid = syscall(SYS_getegid);
    CHECK(uid == euid && gid == egid);                  /* not set-id */
    CHECK(uid == getuid() && gid == getgid());
    pid_t pgid = syscall(SYS_getpgid, 0);           /* 0 is possible: init's group */
    CHECK(pgid >= 0 && syscall(SYS_getpgid, pid) == pgid);
    ERR(syscall(SYS_getpgid, dead_pid()), ESRCH);
    pid_t child = xfork();
    if (child == 0) {
        CHECK(syscall(SYS_getppid) == pid);
        CHECK(syscall(SYS_getpid) != pid && syscall(SYS_gettid) == syscall(SYS_getpid));
        CHECK(syscall(SYS_getpgid, 0) == pgid);         /* inherited */
        CHECK(syscall(SYS_getuid) == uid && syscall(SYS_getgid) == gid);
        _exit(0);
    }
    CHECK(syscall(SYS_getpgid, child) == pgid);
    EXPECT_EXIT(child, 0);
}

static void t_setpgid_setsid(void)
{
    pid_t me = getpid();
    pid_t mypgid = getpgid(0);
    pid_t a = xfork();
    if (a == 0) {
        OK(syscall(SYS_setpgid, 0, 0));
        CHECK(getpgid(0) == getpid());
        ERR(syscall(SYS_setsid), EPERM);                /* a group leader cannot */
        if (mypgid > 0) {       /* (group 0, init's, cannot be joined by number) */
            OK(syscall(SYS_setpgid, 0, mypgid));        /* back into the parent's group */
            CHECK(getpgid(0) == mypgid);
        }
        _exit(0);
    }
    EXPECT_EXIT(a, 0);
    pid_t b = xfork();
    if (b == 0) {
        pid_t sid = OK(syscall(SYS_setsid));
        CHECK(sid == getpid() && getpgid(0) == getpid());
        CHECK(syscall(SYS_getsid, 0) == getpid());
        ERR(syscall(SYS_setpgid, 0, mypgid), EPERM);    /* another session */
        ERR(syscall(SYS_setsid), EPERM);                /* already a leader */
        _exit(0);
    }
    EXPECT_EXIT(b, 0);
    /* the parent moves a child into a new group of its own */
    int go[2];
    OK(syscall(SYS_pipe, go));
    pid_t c = xfork();
    if (c == 0) {
        char ch;
        CHECK(read(go[0], &ch, 1) == 1);
        CHECK(getpgid(0) == getpid());
        _exit(0);
    }
    OK(syscall(SYS_setpgid, c, c));
    CHECK(getpgid(c) == c);
    CHECK(OK(write(go[1], "g", 1)) == 1);
    EXPECT_EXIT(c, 0);
    ERR(syscall(SYS_setpgid, dead_pid(), 0), ESRCH);
    ERR(syscall(SYS_setpgid, 0, -1), EINVAL);
    ERR(syscall(SYS_setpgid, 1, 1), ESRCH);              /* init is not our child */
    (void)me;
}

static void t_orphan(void)
{
    int p[2];
    OK(syscall(SYS_pipe, p));
    pid_t child = xfork();
    if (child == 0) {
        pid_t me = getpid();
        pid_t g = xfork();
        if (g == 0) {
            double t0 = mono();
            while (getppid() == me && mono() - t0 < 10)
                msleep(5);
            pid_t np = getppid();
            CHECK(write(p[1], &np, sizeof np) == sizeof np);
            _exit(0);
        }
        _exit(0);                                       /* orphan the grandchild */
    }
    EXPECT_EXIT(child, 0);
    pid_t np;
    CHECK(OK(read(p[0], &np, sizeof np)) == sizeof np);
    CHECKM(np != child && np > 0, "the orphan's parent is %d (its dead parent was %d)", np, child);
}

static void t_fork_wait(void)
{
    int st;
    /* many children at once, reaped in any order */
    enum { N = 20 };
    pid_t pids[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        pids[i] = xfork();
        if (pids[i] == 0) {
            msleep(i % 5 * 5);
            _exit(i + 1);
        }
    }
    for (int i = 0; i < N; i++) {
        long r = OK(syscall(SYS_wait4, -1, &st, 0, NULL));
        int k = -1;
        for (int j = 0; j < N; j++)
            if (pids[j] == r)
                k = j;
        CHECKM(k >= 0 && !seen[k], "wait4 returned %ld", r);
        seen[k] = 1;
        CHECKM(WIFEXITED(st) && WEXITSTATUS(st) == k + 1, "child %d: status %#x", k, st);
    }
    ERR(syscall(SYS_wait4, -1, &st, 0, NULL), ECHILD);
    ERR(syscall(SYS_wait4, -1, &st, WNOHANG, NULL), ECHILD);
    ERR(syscall(SYS_wait4, 1, &st, 0, NULL), ECHILD);    /* not ours */
    ERR(syscall(SYS_wait4, -1, &st, 0x100, NULL), EINVAL);
    /* WNOHANG, then a blocking wait for one pid */
    int go[2];
    OK(syscall(SYS_pipe, go));
    pid_t pid = xfork();
    if (pid == 0) {
        char c;
        CHECK(read(go[0], &c, 1) == 1);
        _exit(4);
    }
    CHECK(OK(syscall(SYS_wait4, pid, &st, WNOHANG, NULL)) == 0);
    CHECK(OK(syscall(SYS_wait4, -1, &st, WNOHANG, NULL)) == 0);
    CHECK(OK(write(go[1], "g", 1)) == 1);
    struct rusage ru;
    memset(&ru, 0xff, sizeof ru);
    CHECK(OK(syscall(SYS_wait4, pid, &st, 0, &ru)) == pid);
    CHECK(st == 4 << 8 && ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_usec < 1000000);
    /* status encoding */
    struct { int how, val, want; } cases[] = {
        {0, 0, 0}, {0, 255, 0xff00}, {0, 256 + 3, 0x300}, {0, -1, 0xff00},
        {1, 5, 0x500}, {2, 6, 0x600}, {3, SIGKILL, SIGKILL}, {3, SIGTERM, SIGTERM},
        {4, 9, 0x900},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].how == 4)
            pid = syscall(SYS_fork);                    /* the old fork syscall */
        else
            pid = xfork();
        if (pid == 0) {
            if (cases[i].how == 0 || cases[i].how == 4)
                exit(cases[i].val);
            if (cases[i].how == 1)
                syscall(SYS_exit, cases[i].val);
            if (cases[i].how == 2)
                syscall(SYS_exit_group, cases[i].val);
            for (;;)
                msleep(1000);
        }
        CHECKM(pid > 0, "fork: %s", en(errno));
        if (cases[i].how == 3)
            OK(kill(pid, cases[i].val));
        st = xwait(pid);
        CHECKM(st == cases[i].want, "case %u: status %#x, expected %#x", i, st, cases[i].want);
    }
    /* a bad status or rusage pointer: EFAULT (Linux reaps the child anyway) */
    pid = xfork();
    if (pid == 0)
        _exit(0);
    msleep(20);
    ERR(syscall(SYS_wait4, pid, bad_ptr[3].p, 0, NULL), EFAULT);
    syscall(SYS_wait4, pid, NULL, WNOHANG, NULL);
    pid = xfork();
    if (pid == 0)
        _exit(0);
    msleep(20);
    ERR(syscall(SYS_wait4, pid, &st, 0, bad_ptr[1].p), EFAULT);
    syscall(SYS_wait4, pid, NULL, WNOHANG, NULL);
    /* wait4(0): children in the caller's process group */
    pid = xfork();
    if (pid == 0)
        _exit(8);
    CHECK(OK(syscall(SYS_wait4, 0, &st, 0, NULL)) == pid && st == 8 << 8);
}

static void t_vfork(void)
{
    volatile int v = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        struct timespec t = {0, 50 * 1000000L};
        syscall(SYS_nanosleep, &t, NULL);
        v = 42;                             /* the parent's memory: shared */
        _exit(3);
    }
    CHECKM(pid > 0, "vfork: %s", en(errno));
    CHECKM(v == 42, "after vfork the parent sees %d: it ran before the child exited, "
           "or the memory was not shared", v);
    EXPECT_EXIT(pid, 3);
    /* vfork then execve: the parent resumes when the child execs */
    char *argv[] = {self_exe, "--exec-child", "exit", "9", NULL};
    char *envp[] = {"UT_X=1", NULL};
    pid = vfork();
    if (pid == 0) {
        execve(self_exe, argv, envp);
        _exit(127);
    }
    EXPECT_EXIT(pid, 9);
}

static void t_clone(void)
{
    /* glibc's fork: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD */
    volatile pid_t ctid = 0;
    long r = syscall(SYS_clone, CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, 0, NULL, &ctid, 0);
    if (r == 0)
        _exit(ctid == getpid() ? 0 : 1);
    CHECKM(r > 0, "clone: %s", en(errno));
    CHECK(ctid == 0);                       /* written in the child's copy only */
    EXPECT_EXIT((pid_t)r, 0);
    pid_t ptid = 0;
    r = syscall(SYS_clone, CLONE_PARENT_SETTID | SIGCHLD, 0, &ptid, NULL, 0);
    if (r == 0)
        _exit(0);
    CHECKM(r > 0, "clone: %s", en(errno));
    CHECKM(ptid == r, "CLONE_PARENT_SETTID stored %d, expected %ld", ptid, r);
    EXPECT_EXIT((pid_t)r, 0);
    /* the memory is a copy, as with fork */
    static int var = 1;
    r = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (r == 0) {
        var = 2;
        _exit(var == 2 ? 0 : 1);
    }
    EXPECT_EXIT((pid_t)r, 0);
    CHECK(var == 1);
    ERR(syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, NULL, NULL, 0), EINVAL);    /* needs CLONE_VM */
    ERR(syscall(SYS_clone, CLONE_THREAD | SIGCHLD, 0, NULL, NULL, 0), EINVAL);     /* needs CLONE_SIGHAND */
    ERR(syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, NULL, NULL, 0), EINVAL);
}

/* --- execve --- */

static char ut_bss[8192];
static int ut_data = 0x12345678;
extern const Elf64_Ehdr __ehdr_start;
extern char end[];

#define EXEC_ARGS {self_exe, "--exec-child", "args", "one", "two three", "", "last", NULL}

static char *envbuf[8];
static char envstore[8][64];

static char **make_env(void)
{
    snprintf(envstore[0], 64, "UT_A=1");
    snprintf(envstore[1], 64, "UT_B=two words");
    snprintf(envstore[2], 64, "UT_REPORT_FD=%d", report_fd);
    snprintf(envstore[3], 64, "UT_PPID=%d", getppid());
    snprintf(envstore[4], 64, "UT_PID=%d", getpid());
    for (int i = 0; i < 5; i++)
        envbuf[i] = envstore[i];
    envbuf[5] = NULL;
    return envbuf;
}

static void exec_child_args(int argc, char **argv, char **envp)
{
    static const char *want_argv[] = {"--exec-child", "args", "one", "two three", "", "last"};
    CHECKM(argc == 7, "argc %d, expected 7", argc);
    CHECK(argv[argc] == NULL);
    CHECKM(strcmp(argv[0], self_exe) == 0 || argv[0][0] == '/', "argv[0] %s", argv[0]);
    for (int i = 0; i < 6; i++)
        CHECKM(strcmp(argv[i + 1], want_argv[i]) == 0, "argv[%d] = \"%s\", expected \"%s\"",
               i + 1, argv[i + 1], want_argv[i]);
    int n = 0;
    while (envp[n])
        n++;
    CHECKM(n == 5, "%d environment strings, expected 5", n);
    CHECK(strcmp(envp[0], "UT_A=1") == 0 && strcmp(envp[1], "UT_B=two words") == 0);
    CHECK(strncmp(envp[2], "UT_REPORT_FD=", 13) == 0);
    CHECK(strcmp(getenv("UT_B"), "two words") == 0);
    CHECKM(getpid() == atoi(getenv("UT_PID")), "execve changed the pid (%d, was %s)",
           getpid(), getenv("UT_PID"));
    CHECK(getppid() == atoi(getenv("UT_PPID")));
    /* Linux's initial stack: rsp 16-byte aligned at _start, argc at rsp,
     * argv just above; the strings one after the other */
    CHECKM(((uintptr_t)argv & 15) == 8, "argv at %p: the entry stack was not 16-byte aligned", (void *)argv);
    CHECK(((long *)argv)[-1] == argc);
    for (int i = 0; i + 1 < argc; i++)
        CHECKM(argv[i + 1] == argv[i] + strlen(argv[i]) + 1, "argv strings not contiguous at %d", i);
    CHECKM(envp[0] == argv[argc - 1] + strlen(argv[argc - 1]) + 1, "envp strings do not follow argv's");
    for (int i = 0; i + 1 < n; i++)
        CHECK(envp[i + 1] == envp[i] + strlen(envp[i]) + 1);
    CHECK(envp == argv + argc + 1);
    /* the auxiliary vector */
    Elf64_auxv_t *auxv = (Elf64_auxv_t *)(envp + n + 1);
    uint64_t at[64];
    int have[64];
    memset(have, 0, sizeof have);
    int count = 0;
    for (Elf64_auxv_t *a = auxv; a->a_type != AT_NULL; a++) {
        CHECKM(++count < 64, "auxv has no AT_NULL");
        if (a->a_type < 64) {
            at[a->a_type] = a->a_un.a_val;
            have[a->a_type] = 1;
        }
    }
    int need[] = {AT_PAGESZ, AT_PHDR, AT_PHENT, AT_PHNUM, AT_ENTRY, AT_UID, AT_EUID, AT_GID,
                  AT_EGID, AT_SECURE, AT_RANDOM, AT_EXECFN};
    const char *need_names[] = {"AT_PAGESZ", "AT_PHDR", "AT_PHENT", "AT_PHNUM", "AT_ENTRY",
                                "AT_UID", "AT_EUID", "AT_GID", "AT_EGID", "AT_SECURE",
                                "AT_RANDOM", "AT_EXECFN"};
    for (unsigned i = 0; i < sizeof need / sizeof need[0]; i++)
        CHECKM(have[need[i]], "auxv lacks %s", need_names[i]);
    CHECKM(at[AT_PAGESZ] == 4096, "AT_PAGESZ %lu", (unsigned long)at[AT_PAGESZ]);
    const Elf64_Ehdr *eh = &__ehdr_start;
    uintptr_t base = eh->e_type == ET_DYN ? (uintptr_t)eh : 0;
    CHECKM(at[AT_PHDR] == (uintptr_t)eh + eh->e_phoff, "AT_PHDR %#lx, expected %#lx",
           (unsigned long)at[AT_PHDR], (unsigned long)((uintptr_t)eh + eh->e_phoff));
    CHECK(at[AT_PHENT] == sizeof(Elf64_Phdr) && at[AT_PHNUM] == eh->e_phnum);
    CHECKM(at[AT_ENTRY] == base + eh->e_entry, "AT_ENTRY %#lx, expected %#lx",
           (unsigned long)at[AT_ENTRY], (unsigned long)(base + eh->e_entry));
    CHECK(at[AT_UID] == getuid() && at[AT_EUID] == geteuid());
    CHECK(at[AT_GID] == getgid() && at[AT_EGID] == getegid());
    CHECK(at[AT_SECURE] == 0);
    const unsigned char *rnd = (const unsigned char *)at[AT_RANDOM];
    CHECKM((uintptr_t)rnd > (uintptr_t)auxv, "AT_RANDOM %p is not on the stack above auxv", (void *)rnd);
    CHECKM(!all_bytes(rnd, 16, 0), "AT_RANDOM's 16 bytes are all zero");
    CHECKM(strcmp((const char *)at[AT_EXECFN], self_exe) == 0, "AT_EXECFN \"%s\", expected \"%s\"",
           (const char *)at[AT_EXECFN], self_exe);
    if (have[AT_BASE])
        CHECKM(at[AT_BASE] == 0, "AT_BASE %#lx for a static program", (unsigned long)at[AT_BASE]);
    if (have[AT_FLAGS])
        CHECK(at[AT_FLAGS] == 0);
    if (have[AT_CLKTCK])
        CHECKM(at[AT_CLKTCK] == 100, "AT_CLKTCK %lu", (unsigned long)at[AT_CLKTCK]);
    if (have[AT_PLATFORM])
        CHECK(strcmp((const char *)at[AT_PLATFORM], "x86_64") == 0);
    CHECK(getauxval(AT_PAGESZ) == 4096 && getauxval(AT_RANDOM) == at[AT_RANDOM]);
    /* a fresh image: bss zero, data initialised, the break above the bss */
    CHECK(all_bytes(ut_bss, sizeof ut_bss, 0) && ut_data == 0x12345678);
    CHECKM((uintptr_t)syscall(SYS_brk, 0) >= (uintptr_t)end, "brk %#lx below the end of bss %p",
           (unsigned long)syscall(SYS_brk, 0), (void *)end);
}

static void t_exec(void)
{
    void *bad;
    char *argv[] = EXEC_ARGS;
    ut_bss[0] = 1;                          /* the new image must not see this */
    ut_data = 0;
    pid_t pid = xfork();
    if (pid == 0) {
        execve(self_exe, argv, make_env());
        FAIL("execve(%s): %s", self_exe, en(errno));
    }
    EXPECT_EXIT(pid, 0);
    /* failures leave the caller as it was */
    char **envp = make_env();
    ERR(execve("missing", argv, envp), ENOENT);
    ERR(execve("missing/x", argv, envp), ENOENT);
    ERR(execve(".", argv, envp), EACCES);
    put_str("f", "x");
    ERR(execve("f/x", argv, envp), ENOTDIR);
    int fd = OK(sys_open("text", O_CREAT | O_WRONLY | O_TRUNC, 0755));
    CHECK(OK(write(fd, "just some text\n", 15)) == 15);
    OK(close(fd));
    ERR(execve("text", argv, envp), ENOEXEC);
    OK(close(OK(sys_open("empty", O_CREAT | O_WRONLY | O_TRUNC, 0755))));
    ERR(execve("empty", argv, envp), ENOEXEC);
    FOR_BAD(bad) {
        ERR(syscall(SYS_execve, bad, argv, envp), EFAULT);
        ERR(syscall(SYS_execve, self_exe, bad, envp), EFAULT);
        ERR(syscall(SYS_execve, self_exe, argv, bad), EFAULT);
        char *bargv[] = {self_exe, bad, NULL};
        ERR(syscall(SYS_execve, self_exe, bargv, envp), EFAULT);
        char *benv[] = {"A=1", bad, NULL};
        ERR(syscall(SYS_execve, self_exe, argv, benv), EFAULT);
    }
    CHECK(ut_bss[0] == 1 && ut_data == 0);  /* still this image */
    ut_bss[0] = 0;
    ut_data = 0x12345678;
}

static void exec_child_inherit(int argc, char **argv)
{
    CHECK(argc == 5);
    int keep = atoi(argv[3]), closed = atoi(argv[4]);
    CHECKM(fcntl(keep, F_GETFD) == 0, "fd %d (no FD_CLOEXEC) was not inherited", keep);
    char buf[8];
    CHECK(syscall(SYS_pread64, keep, buf, 4, 0) == 4 && memcmp(buf, "keep", 4) == 0);
    errno = 0;
    CHECKM(fcntl(closed, F_GETFD) == -1 && errno == EBADF, "fd %d (FD_CLOEXEC) is still open", closed);
    struct sigaction sa;
    sigaction(SIGUSR2, NULL, &sa);
    CHECKM(sa.sa_handler == SIG_IGN, "an ignored signal is no longer ignored after execve");
    sigaction(SIGUSR1, NULL, &sa);
    CHECKM(sa.sa_handler == SIG_DFL, "a caught signal was not reset to SIG_DFL by execve");
    CHECKM(is_blocked(SIGPWR) && !is_blocked(SIGUSR1), "the signal mask did not survive execve");
    set_handler(SIGPWR, count_handler, 0);
    h_count = 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPWR);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    CHECKM(h_count == 1, "the signal pending before execve was not delivered after it");
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, getenv("UT_CWD")) == 0);
    CHECK((syscall(SYS_umask, 0) & 0777) == 027);
}

static void t_exec_inherit(void)
{
    put_str("keep", "keep");
    int keep = OK(sys_open("keep", O_RDONLY, 0));
    int closed = OK(sys_open("keep", O_RDONLY | O_CLOEXEC, 0));
    char cwd[PATH_MAX], cwdenv[PATH_MAX + 8], k[16], c[16];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(cwdenv, sizeof cwdenv, "UT_CWD=%s", cwd);
    snprintf(k, sizeof k, "%d", keep);
    snprintf(c, sizeof c, "%d", closed);
    char rfd[32];
    snprintf(rfd, sizeof rfd, "UT_REPORT_FD=%d", report_fd);
    char *argv[] = {self_exe, "--exec-child", "inherit", k, c, NULL};
    char *envp[] = {rfd, cwdenv, NULL};
    pid_t pid = xfork();
    if (pid == 0) {
        set_handler(SIGUSR1, count_handler, 0);
        set_handler(SIGUSR2, SIG_IGN, 0);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPWR);
        sigprocmask(SIG_BLOCK, &set, NULL);
        kill(getpid(), SIGPWR);                         /* pending across execve */
        syscall(SYS_umask, 027);
        execve(self_exe, argv, envp);
        FAIL("execve: %s", en(errno));
    }
    EXPECT_EXIT(pid, 0);
}

static void exec_child_bigargs(int argc, char **argv)
{
    int n = atoi(argv[3]);
    CHECKM(argc == n + 4, "argc %d, expected %d", argc, n + 4);
    for (int i = 0; i < n; i++) {
        const char *a = argv[4 + i];
        CHECKM(strlen(a) == 400, "argument %d has length %zu", i, strlen(a));
        for (int j = 0; j < 400; j++)
            CHECKM(a[j] == 'a' + (i + j) % 26, "argument %d differs at %d", i, j);
    }
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "UT_E%d", i);
        const char *v = getenv(name);
        CHECKM(v && strlen(v) == 100 && v[0] == 'A' + i % 26, "environment %s missing or wrong", name);
    }
}

static void t_exec_bigargs(void)
{
    enum { N = 300 };
    static char args[N][401], envs[40][120], count[16], rfd[32];
    static char *argv[N + 5], *envp[42];
    snprintf(count, sizeof count, "%d", N);
    argv[0] = self_exe;
    argv[1] = "--exec-child";
    argv[2] = "bigargs";
    argv[3] = count;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 400; j++)
            args[i][j] = 'a' + (i + j) % 26;
        argv[4 + i] = args[i];
    }
    argv[N + 4] = NULL;
    for (int i = 0; i < 40; i++) {
        int n = snprintf(envs[i], 120, "UT_E%d=", i);
        memset(envs[i] + n, 'A' + i % 26, 100);
        envp[i] = envs[i];
    }
    snprintf(rfd, sizeof rfd, "UT_REPORT_FD=%d", report_fd);
    envp[40] = rfd;
    envp[41] = NULL;
    pid_t pid = xfork();
    if (pid == 0) {
        execve(self_exe, argv, envp);
        FAIL("execve with %d arguments of 400 bytes: %s", N, en(errno));
    }
    EXPECT_EXIT(pid, 0);
}

/* the ELF files of mkbadelf.sh: each line of EXPECT is
 *   NAME OUTCOME [OUTCOME...]     with OUTCOME errno:ENAME | signal:SIGNAME | exit:N
 * and any listed outcome passes */
static void t_badelf(void)
{
    char path[PATH_MAX + 64], line[512];
    snprintf(path, sizeof path, "%s/EXPECT", badelf_dir);
    int fd = sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        skip("no %s (-b DIR or UT_BADELF_DIR names the folder mkbadelf.sh made)", path);
    static char text[16384];
    long n = OK(read(fd, text, sizeof text - 1));
    close(fd);
    text[n] = 0;
    int out = OK(sys_open("out", O_CREAT | O_WRONLY | O_TRUNC, 0644));
    int tested = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        if (l[0] == '#' || !l[0])
            continue;
        snprintf(line, sizeof line, "%s", l);
        char *save, *name = strtok_r(line, " \t", &save);
        snprintf(path, sizeof path, "%s/%s", badelf_dir, name);
        pid_t pid = xfork();
        if (pid == 0) {
            dup2(out, 1);
            dup2(out, 2);
            char *argv[] = {path, NULL}, *envp[] = {NULL};
            execve(path, argv, envp);
            _exit(100 + errno);
        }
        int st = xwait(pid);
        char got[64];
        if (WIFEXITED(st) && WEXITSTATUS(st) >= 100)
            snprintf(got, sizeof got, "errno:%s", en(WEXITSTATUS(st) - 100));
        else if (WIFEXITED(st))
            snprintf(got, sizeof got, "exit:%d", WEXITSTATUS(st));
        else
            snprintf(got, sizeof got, "signal:SIG%s", signame(WTERMSIG(st)));
        int ok = 0;
        char wants[256] = "";
        for (char *w = strtok_r(NULL, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
            ok |= strcmp(w, got) == 0;
            strncat(wants, w, sizeof wants - strlen(wants) - 2);
            strcat(wants, " ");
        }
        CHECKM(ok, "%s: %s, expected %s", name, got, wants);
        tested++;
    }
    close(out);
    CHECKM(tested > 0, "EXPECT lists no files");
}

/* ================================================================== */
/* The rest of the system-call list                                   */

static void t_uname(void)
{
    void *bad;
    struct utsname u;
    memset(&u, 0xff, sizeof u);
    OK(syscall(SYS_uname, &u));
    CHECKM(strcmp(u.sysname, "Linux") == 0, "sysname \"%.65s\"", u.sysname);
    CHECKM(strcmp(u.machine, "x86_64") == 0, "machine \"%.65s\"", u.machine);
    CHECK(memchr(u.release, 0, sizeof u.release) && u.release[0] >= '0' && u.release[0] <= '9');
    CHECK(memchr(u.nodename, 0, sizeof u.nodename) && memchr(u.version, 0, sizeof u.version));
    CHECK(memchr(u.domainname, 0, sizeof u.domainname));
    FOR_BAD(bad)
        ERR(syscall(SYS_uname, bad), EFAULT);
}

static long raw2(long nr, long a, long b)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}

static size_t tls_size(void)
{
    const Elf64_Ehdr *eh = &__ehdr_start;
    const Elf64_Phdr *ph = (const void *)((const char *)eh + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_TLS)
            return (ph[i].p_memsz + ph[i].p_align + 63) & ~63UL;
    return 0;
}

static void t_arch_prctl(void)
{
    void *bad;
    unsigned long fs = 0, got = 0;
    OK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
    CHECK(fs != 0 && fs == (unsigned long)pthread_self());
    unsigned long self;
    __asm__ volatile("mov %%fs:0,%0" : "=r"(self));
    CHECK(self == fs);
    /* a copy of the TLS block and the TCB; point FS at it and back, with
     * no libc call in between (errno and the stack guard live there) */
    size_t tls = tls_size();
    static unsigned char area[65536] __attribute__((aligned(4096)));
    CHECK(tls + 1024 < sizeof area);
    unsigned char *nfs = area + ((tls + 4095) & ~4095UL);
    memcpy(nfs - tls, (void *)(fs - tls), tls + 512);
    ((unsigned long *)nfs)[0] = (unsigned long)nfs;    /* tcb->tcb */
    ((unsigned long *)nfs)[2] = (unsigned long)nfs;    /* tcb->self */
    ((unsigned long *)nfs)[8] = 0x5eed5eed5eedUL;      /* a marker at %fs:0x40 */
    long r1 = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)nfs);
    unsigned long v0, mark;
    __asm__ volatile("mov %%fs:0,%0" : "=r"(v0));
    __asm__ volatile("mov %%fs:0x40,%0" : "=r"(mark));
    raw2(SYS_sched_yield, 0, 0);                        /* across a trip through the kernel */
    unsigned long mark2;
    __asm__ volatile("mov %%fs:0x40,%0" : "=r"(mark2));
    long r2 = raw2(SYS_arch_prctl, ARCH_GET_FS, (long)&got);
    long r3 = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)fs);
    CHECKM(r1 == 0 && r2 == 0 && r3 == 0, "ARCH_SET_FS/GET_FS/SET_FS returned %ld %ld %ld", r1, r2, r3);
    CHECKM(v0 == (unsigned long)nfs, "%%fs:0 read %#lx after ARCH_SET_FS %p", v0, (void *)nfs);
    CHECK(mark == 0x5eed5eed5eedUL && mark2 == mark);
    CHECK(got == (unsigned long)nfs);
    __asm__ volatile("mov %%fs:0,%0" : "=r"(self));
    CHECK(self == fs);
    /* FS survives fork (the child's FS is the same address) */
    pid_t pid = xfork();
    if (pid == 0) {
        unsigned long cfs = 0;
        syscall(SYS_arch_prctl, ARCH_GET_FS, &cfs);
        _exit(cfs == fs ? 0 : 1);
    }
    EXPECT_EXIT(pid, 0);
    ERR(syscall(SYS_arch_prctl, 0x9999, 0), EINVAL);
    FOR_BAD(bad)
        ERR(syscall(SYS_arch_prctl, ARCH_GET_FS, bad), EFAULT);
    /* an address no user mapping can have: refused, FS unchanged */
    pid = xfork();
    if (pid == 0) {
        long a = raw2(SYS_arch_prctl, ARCH_SET_FS, 0x8000000000000000L);
        long b = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)0xffff888000000000UL);
        _exit(a == -EPERM && b == -EPERM ? 0 : 1);
    }
    EXPECT_EXIT(pid, 0);
}

static void t_tid_robust_rseq(void)
{
    static int word;
    long tid = syscall(SYS_set_tid_address, &word);
    CHECK(tid == syscall(SYS_gettid) && tid == getpid());
    struct robust_list_head { void *next; long off; void *pending; } head = {&head, 0, NULL};
    OK(syscall(SYS_set_robust_list, &head, sizeof head));
    ERR(syscall(SYS_set_robust_list, &head, sizeof head - 1), EINVAL);
    ERR(syscall(SYS_set_robust_list, &head, 0), EINVAL);
    static struct rseq area __attribute__((aligned(32)));
    long r = syscall(SYS_rseq, &area, sizeof area, 0, 0x53053053);
    if (r == -1 && errno == ENOSYS) {
        note("rseq: ENOSYS (accepted)");
        CHECKM(__rseq_size == 0, "glibc registered rseq, yet rseq answers ENOSYS");
        return;
    }
    if (__rseq_size > 0) {
        /* glibc registered its own area at start-up: another one is refused */
        CHECKM(r == -1 && errno == EINVAL, "a second rseq area: %ld (%s), expected EINVAL", r, en(errno));
        struct rseq *rs = (void *)((char *)__builtin_thread_pointer() + __rseq_offset);
        CHECKM((int)rs->cpu_id >= 0, "rseq cpu_id %d", (int)rs->cpu_id);
    } else {
        CHECKM(r == 0, "rseq registration: %s", en(errno));
        OK(syscall(SYS_rseq, &area, sizeof area, 1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053));
    }
    ERR(syscall(SYS_rseq, &area, 31, 0, 0x53053053), EINVAL);
    ERR(syscall(SYS_rseq, (char *)&area + 4, sizeof area, 0, 0x53053053), EINVAL);
    ERR(syscall(SYS_rseq, &area, sizeof area, 2, 0x53053053), EINVAL);
}

static void t_prlimit(void)
{
    void *bad;
    struct rlimit r, o, n;
    OK(syscall(SYS_getrlimit, RLIMIT_NOFILE, &r));
    CHECK(r.rlim_cur > 0 && r.rlim_cur <= r.rlim_max);
    OK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &o));
    CHECK(o.rlim_cur == r.rlim_cur && o.rlim_max == r.rlim_max);
    OK(syscall(SYS_prlimit64, getpid(), RLIMIT_NOFILE, NULL, &o));
    CHECK(o.rlim_cur == r.rlim_cur);
    n.rlim_cur = 64;
    n.rlim_max = r.rlim_max;
    OK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &n, &o));
    CHECK(o.rlim_cur == r.rlim_cur);                    /* the old value came back */
    OK(syscall(SYS_getrlimit, RLIMIT_NOFILE, &o));
    CHECK(o.rlim_cur == 64);
    ERR(fcntl(0, F_DUPFD, 64), EINVAL);                 /* and it is enforced */
    pid_t pid = xfork();
    if (pid == 0) {
        struct rlimit c;
        syscall(SYS_getrlimit, RLIMIT_NOFILE, &c);
        _exit(c.rlim_cur == 64 ? 0 : 1);                /* inherited */
    }
    EXPECT_EXIT(pid, 0);
    pid = xfork();
    if (pid == 0) {                                     /* a hard limit cannot go back up */
        n.rlim_cur = 40;
        n.rlim_max = 100;                               /* lowering the hard limit: allowed */
        OK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &n, NULL));
        n.rlim_cur = 200;                               /* soft above hard */
        ERR(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &n, NULL), EINVAL);
        OK(syscall(SYS_getrlimit, RLIMIT_NOFILE, &o));
        CHECK(o.rlim_cur == 40 && o.rlim_max == 100);
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
    OK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &r, NULL));     /* back as it was */
    OK(syscall(SYS_getrlimit, RLIMIT_STACK, &o));
    CHECK(o.rlim_cur > 0);
    OK(syscall(SYS_getrlimit, RLIMIT_AS, &o));
    OK(syscall(SYS_getrlimit, RLIMIT_NPROC, &o));
    ERR(syscall(SYS_getrlimit, 99, &o), EINVAL);
    ERR(syscall(SYS_prlimit64, 0, 99, NULL, &o), EINVAL);
    ERR(syscall(SYS_prlimit64, dead_pid(), RLIMIT_NOFILE, NULL, &o), ESRCH);
    FOR_BAD(bad) {
        ERR(syscall(SYS_getrlimit, RLIMIT_NOFILE, bad), EFAULT);
        ERR(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, bad, NULL), EFAULT);
        ERR(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, bad), EFAULT);
    }
}

static void t_getrandom(void)
{
    void *bad;
    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK(OK(syscall(SYS_getrandom, a, sizeof a, 0)) == 64);
    CHECK(OK(syscall(SYS_getrandom, b, sizeof b, GRND_NONBLOCK)) == 64);
    CHECK(memcmp(a, b, 64) != 0 && !all_bytes(a, 64, 0));
    CHECK(OK(syscall(SYS_getrandom, a, 0, 0)) == 0);
    CHECK(OK(syscall(SYS_getrandom, a, 16, GRND_RANDOM | GRND_NONBLOCK)) > 0 || errno == EAGAIN);
    static unsigned char big[65536];
    CHECK(OK(syscall(SYS_getrandom, big, sizeof big, 0)) > 0);
    ERR(syscall(SYS_getrandom, a, 16, 0x100), EINVAL);
    FOR_BAD(bad)
        ERR(syscall(SYS_getrandom, bad, 16, 0), EFAULT);
}

static void t_clocks(void)
{
    void *bad;
    struct timespec t0, t1;
    for (int id = 0; id <= 7; id++) {
        OK(syscall(SYS_clock_gettime, id, &t0));
        CHECKM(t0.tv_nsec >= 0 && t0.tv_nsec < 1000000000 && t0.tv_sec >= 0,
               "clock %d: %ld.%09ld", id, (long)t0.tv_sec, t0.tv_nsec);
    }
    OK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0));
    for (int i = 0; i < 1000; i++) {
        OK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t1));
        CHECKM(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec),
               "CLOCK_MONOTONIC went back");
        t0 = t1;
    }
    ERR(syscall(SYS_clock_gettime, 100, &t0), EINVAL);
    FOR_BAD(bad)
        ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, bad), EFAULT);
    /* gettimeofday agrees with CLOCK_REALTIME */
    struct timeval tv;
    struct timezone tz;
    OK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &t0));
    OK(syscall(SYS_gettimeofday, &tv, &tz));
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    CHECKM(labs((long)tv.tv_sec - (long)t0.tv_sec) <= 2, "gettimeofday %ld, CLOCK_REALTIME %ld",
           (long)tv.tv_sec, (long)t0.tv_sec);
    OK(syscall(SYS_gettimeofday, &tv, NULL));
    OK(syscall(SYS_gettimeofday, NULL, NULL));
    FOR_BAD(bad) {
        ERR(syscall(SYS_gettimeofday, bad, NULL), EFAULT);
        ERR(syscall(SYS_gettimeofday, &tv, bad), EFAULT);      /* the timezone */
    }
    /* CPU time goes up while the process computes */
    struct timespec c0, c1;
    OK(syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &c0));
    double w0 = mono();
    volatile unsigned long x = 0;
    while (mono() - w0 < 0.2)
        for (int i = 0; i < 100000; i++)
            x += i;
    OK(syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &c1));
    double used = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
    CHECKM(used > 0.01, "CLOCK_PROCESS_CPUTIME_ID advanced %.4f s over 0.2 s of computing", used);
    /* and CLOCK_MONOTONIC measures time asleep */
    double a = mono();
    msleep(100);
    double el = mono() - a;
    CHECKM(el >= 0.099 && el < 5, "a 100 ms sleep measured %.3f s", el);
}

static void t_nanosleep(void)
{
    void *bad;
    struct timespec req = {0, 30 * 1000000L};
    double t0 = mono();
    OK(syscall(SYS_nanosleep, &req, NULL));
    double el = mono() - t0;
    CHECKM(el >= 0.0299 && el < 5, "nanosleep(30 ms) took %.4f s", el);
    req.tv_nsec = 0;
    OK(syscall(SYS_nanosleep, &req, NULL));
    struct timespec inval[] = {{0, 1000000000L}, {-1, 0}, {0, -1}};
    for (int i = 0; i < 3; i++) {
        ERR(syscall(SYS_nanosleep, &inval[i], NULL), EINVAL);
        ERR(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &inval[i], NULL), EINVAL);
    }
    FOR_BAD(bad) {
        ERR(syscall(SYS_nanosleep, bad, NULL), EFAULT);
        ERR(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, bad, NULL), EFAULT);
    }
    /* clock_nanosleep: relative, absolute, absolute in the past */
    req.tv_sec = 0;
    req.tv_nsec = 20 * 1000000L;
    t0 = mono();
    OK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, NULL));
    CHECK(mono() - t0 >= 0.0199);
    OK(syscall(SYS_clock_nanosleep, CLOCK_REALTIME, 0, &req, NULL));
    struct timespec now, target;
    OK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now));
    target = now;
    target.tv_nsec += 30 * 1000000L;
    if (target.tv_nsec >= 1000000000L) {
        target.tv_sec++;
        target.tv_nsec -= 1000000000L;
    }
    OK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL));
    OK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now));
    CHECK(now.tv_sec > target.tv_sec || (now.tv_sec == target.tv_sec && now.tv_nsec >= target.tv_nsec));
    t0 = mono();
    struct timespec past = {0, 1};                      /* 1 ns after boot */
    OK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL));
    CHECK(mono() - t0 < 1);                             /* the past: at once */
    struct timespec negative = {-1, 0};
    ERR(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &negative, NULL), EINVAL);
    ERR(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL), EOPNOTSUPP);
    ERR(syscall(SYS_clock_nanosleep, 100, 0, &req, NULL), EINVAL);
}

static void t_sched_yield(void)
{
    CHECK(syscall(SYS_sched_yield) == 0);
    /* two processes take turns through shared memory, yielding while waiting */
    struct shared { volatile int turn, done; } *sh = shared_page(PG);
    const int rounds = 200;
    pid_t pid = xfork();
    if (pid == 0) {
        double t0 = mono();
        for (int i = 0; i < rounds; i++) {
            while (sh->turn != 1) {
                sched_yield();
                if (mono() - t0 > 20)
                    _exit(2);
            }
            sh->turn = 0;
        }
        _exit(0);
    }
    double t0 = mono();
    for (int i = 0; i < rounds; i++) {
        while (sh->turn != 0) {
            sched_yield();
            CHECKM(mono() - t0 < 20, "round %d of %d after 20 s", i, rounds);
        }
        sh->turn = 1;
    }
    EXPECT_EXIT(pid, 0);
}

static void t_pipe(void)
{
    void *bad;
    int p[2];
    char buf[8192];
    OK(syscall(SYS_pipe, p));
    CHECK(p[0] >= 0 && p[1] >= 0 && p[0] != p[1]);
    CHECK(OK(write(p[1], "hello", 5)) == 5);
    CHECK(OK(read(p[0], buf, sizeof buf)) == 5 && memcmp(buf, "hello", 5) == 0);
    ERR(read(p[1], buf, 1), EBADF);
    ERR(write(p[0], "x", 1), EBADF);
    CHECK(OK(fcntl(p[0], F_GETFD)) == 0);
    CHECK((OK(fcntl(p[0], F_GETFL)) & O_ACCMODE) == O_RDONLY);
    CHECK((OK(fcntl(p[1], F_GETFL)) & O_ACCMODE) == O_WRONLY);
    CHECK(OK(write(p[1], "bye", 3)) == 3);
    OK(close(p[1]));
    CHECK(OK(read(p[0], buf, sizeof buf)) == 3);        /* what is left, then EOF */
    CHECK(OK(read(p[0], buf, sizeof buf)) == 0);
    CHECK(OK(read(p[0], buf, sizeof buf)) == 0);
    OK(close(p[0]));
    /* pipe2 flags */
    OK(syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK));
    CHECK(OK(fcntl(p[0], F_GETFD)) == FD_CLOEXEC && OK(fcntl(p[1], F_GETFD)) == FD_CLOEXEC);
    CHECK(OK(fcntl(p[0], F_GETFL)) & O_NONBLOCK);
    ERR(read(p[0], buf, 1), EAGAIN);
    long cap = 0;
    for (;;) {
        long w = write(p[1], buf, 1024);
        if (w < 0) {
            CHECKM(errno == EAGAIN, "write to a full pipe: %s", en(errno));
            break;
        }
        cap += w;
        CHECKM(cap <= (1L << 24), "the pipe never fills");
    }
    CHECKM(cap >= 4096, "pipe capacity %ld", cap);
    if (opt_verbose)
        note("pipe capacity %ld bytes", cap);
    ERR(write(p[1], "x", 1), EAGAIN);
    CHECK(OK(read(p[0], buf, 100)) == 100);
    long drained = 100;
    while (drained < cap) {
        long r = OK(read(p[0], buf, sizeof buf));
        drained += r;
    }
    CHECK(drained == cap);
    ERR(read(p[0], buf, 1), EAGAIN);
    OK(close(p[0]));
    OK(close(p[1]));
    OK(syscall(SYS_pipe2, p, 0));
    CHECK(OK(fcntl(p[0], F_GETFD)) == 0);
    struct stat st;
    OK(fstat(p[0], &st));
    CHECK(S_ISFIFO(st.st_mode));
    OK(close(p[0]));
    OK(close(p[1]));
    put_str("probe", "");
    int lowest = OK(sys_open("probe", O_RDONLY, 0));
    OK(close(lowest));
    ERR(syscall(SYS_pipe2, p, 0x1234), EINVAL);
    FOR_BAD(bad) {
        ERR(syscall(SYS_pipe, bad), EFAULT);
        ERR(syscall(SYS_pipe2, bad, 0), EFAULT);
    }
    /* the failed calls left no descriptors behind */
    int fd = OK(sys_open("probe", O_RDONLY, 0));
    CHECKM(fd == lowest, "the failed pipe calls left descriptors open (lowest free %d, was %d)",
           fd, lowest);
    close(fd);
}

static void t_pipe_block(void)
{
    int p[2];
    char buf[256];
    OK(syscall(SYS_pipe, p));
    /* a read blocks until another process writes, and returns what is there */
    pid_t pid = xfork();
    if (pid == 0) {
        msleep(150);
        CHECK(write(p[1], "0123456789", 10) == 10);
        _exit(0);
    }
    double t0 = mono();
    long n = OK(read(p[0], buf, sizeof buf));
    double el = mono() - t0;
    CHECKM(n == 10 && memcmp(buf, "0123456789", 10) == 0, "read %ld bytes", n);
    CHECKM(el >= 0.1, "the read returned after %.3f s, before the writer wrote", el);
    EXPECT_EXIT(pid, 0);
    /* EOF only when every write end is closed, the child's copy included */
    pid = xfork();
    if (pid == 0) {
        msleep(150);
        _exit(0);                           /* its write end closes with it */
    }
    OK(close(p[1]));
    t0 = mono();
    CHECK(OK(read(p[0], buf, sizeof buf)) == 0);
    CHECKM(mono() - t0 >= 0.1, "EOF came while the child still held a write end");
    EXPECT_EXIT(pid, 0);
    OK(close(p[0]));
    /* a stream bigger than the pipe: the writer blocks, the reader drains */
    OK(syscall(SYS_pipe, p));
    const size_t total = 1 << 20;
    pid = xfork();
    if (pid == 0) {
        close(p[0]);
        static unsigned char wbuf[7000];
        for (size_t off = 0; off < total;) {
            size_t k = 1 + (off * 31 + 7) % sizeof wbuf;
            if (k > total - off)
                k = total - off;
            fill_pat(wbuf, k, off, 21);
            long w = write(p[1], wbuf, k);
            CHECKM(w > 0, "write: %s", en(errno));
            off += w;
        }
        _exit(0);
    }
    OK(close(p[1]));
    static unsigned char rbuf[5000];
    size_t got = 0;
    for (;;) {
        long r = OK(read(p[0], rbuf, 1 + got % sizeof rbuf));
        if (r == 0)
            break;
        CHECKM(check_pat(rbuf, r, got, 21) < 0, "stream differs near byte %zu", got);
        got += r;
    }
    CHECKM(got == total, "received %zu of %zu bytes", got, total);
    EXPECT_EXIT(pid, 0);
    OK(close(p[0]));
}

static void t_pipe_atomic(void)
{
    /* writes of up to PIPE_BUF bytes are never interleaved */
    enum { W = 4, R = 16 };
    int p[2];
    OK(syscall(SYS_pipe, p));
    pid_t pids[W];
    for (int w = 0; w < W; w++) {
        pids[w] = xfork();
        if (pids[w] == 0) {
            close(p[0]);
            static char rec[PIPE_BUF];
            for (int r = 0; r < R; r++) {
                memset(rec, '0' + w * R + r, sizeof rec);
                CHECK(write(p[1], rec, sizeof rec) == sizeof rec);
            }
            _exit(0);
        }
    }
    OK(close(p[1]));
    static char all[W * R * PIPE_BUF];
    size_t got = 0;
    for (;;) {
        long r = OK(read(p[0], all + got, sizeof all - got < 3000 ? sizeof all - got : 3000));
        if (r == 0)
            break;
        got += r;
        CHECK(got <= sizeof all);
    }
    CHECK(got == sizeof all);
    int seen[W * R] = {0};
    for (size_t i = 0; i < W * R; i++) {
        char c = all[i * PIPE_BUF];
        CHECKM(all_bytes(all + i * PIPE_BUF, PIPE_BUF, c), "record %zu was interleaved", i);
        CHECK(c >= '0' && c < '0' + W * R && !seen[c - '0']);
        seen[c - '0'] = 1;
    }
    for (int w = 0; w < W; w++)
        EXPECT_EXIT(pids[w], 0);
    OK(close(p[0]));
}

static void t_dup(void)
{
    put_str("f", "0123456789");
    int fd = OK(sys_open("f", O_RDWR, 0));
    int d = OK(syscall(SYS_dup, fd));
    CHECK(d > fd);
    char c;
    CHECK(OK(read(fd, &c, 1)) == 1 && c == '0');
    CHECK(OK(lseek(d, 0, SEEK_CUR)) == 1);              /* one open file, one offset */
    CHECK(OK(read(d, &c, 1)) == 1 && c == '1');
    CHECK(OK(lseek(fd, 0, SEEK_CUR)) == 2);
    OK(close(fd));
    CHECK(OK(read(d, &c, 1)) == 1 && c == '2');         /* still open through d */
    fd = d;
    ERR(syscall(SYS_dup, -1), EBADF);
    ERR(syscall(SYS_dup, 999), EBADF);
    CHECK(OK(syscall(SYS_dup2, fd, fd)) == fd);
    ERR(syscall(SYS_dup2, -1, 50), EBADF);
    ERR(syscall(SYS_dup2, 999, 999), EBADF);
    ERR(syscall(SYS_dup2, fd, -1), EBADF);
    CHECK(OK(syscall(SYS_dup2, fd, 50)) == 50);
    CHECK(OK(lseek(50, 0, SEEK_CUR)) == 3);
    put_str("g", "other");
    int g = OK(sys_open("g", O_RDONLY, 0));
    CHECK(OK(syscall(SYS_dup2, g, 60)) == 60);
    CHECK(OK(syscall(SYS_dup2, fd, 60)) == 60);         /* closes the old 60 quietly */
    CHECK(OK(syscall(SYS_pread64, 60, &c, 1, 0)) == 1 && c == '0');
    OK(close(g));
    ERR(syscall(SYS_dup3, fd, fd, 0), EINVAL);
    ERR(syscall(SYS_dup3, fd, 70, 0x1234), EINVAL);
    ERR(syscall(SYS_dup3, -1, 70, 0), EBADF);
    CHECK(OK(syscall(SYS_dup3, fd, 70, O_CLOEXEC)) == 70);
    CHECK(OK(fcntl(70, F_GETFD)) == FD_CLOEXEC);
    CHECK(OK(syscall(SYS_dup3, fd, 71, 0)) == 71);
    CHECK(OK(fcntl(71, F_GETFD)) == 0);
    int e = OK(syscall(SYS_dup, 70));                   /* dup clears FD_CLOEXEC */
    CHECK(OK(fcntl(e, F_GETFD)) == 0);
    CHECK(OK(syscall(SYS_dup2, 70, 72)) == 72);
    CHECK(OK(fcntl(72, F_GETFD)) == 0);
    int closed = OK(syscall(SYS_dup, fd));
    OK(close(closed));
    ERR(syscall(SYS_dup2, closed, 73), EBADF);
    ERR(fcntl(73, F_GETFD), EBADF);                     /* nothing was made */
    int opened[] = {fd, e, 50, 60, 70, 71, 72};
    for (int i = 0; i < 7; i++)
        OK(close(opened[i]));
}

static void t_fcntl(void)
{
    put_str("f", "x");
    int fd = OK(sys_open("f", O_RDWR | O_APPEND, 0));
    CHECK(OK(syscall(SYS_fcntl, fd, F_GETFD)) == 0);
    OK(syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC));
    CHECK(OK(syscall(SYS_fcntl, fd, F_GETFD)) == FD_CLOEXEC);
    OK(syscall(SYS_fcntl, fd, F_SETFD, 0));
    CHECK(OK(syscall(SYS_fcntl, fd, F_GETFD)) == 0);
    long fl = OK(syscall(SYS_fcntl, fd, F_GETFL));
    CHECK((fl & O_ACCMODE) == O_RDWR && (fl & O_APPEND) && !(fl & O_NONBLOCK));
    OK(syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK));    /* clears O_APPEND */
    fl = OK(syscall(SYS_fcntl, fd, F_GETFL));
    CHECK((fl & O_NONBLOCK) && !(fl & O_APPEND) && (fl & O_ACCMODE) == O_RDWR);
    OK(syscall(SYS_fcntl, fd, F_SETFL, O_WRONLY | O_APPEND));   /* the access mode stays */
    fl = OK(syscall(SYS_fcntl, fd, F_GETFL));
    CHECK((fl & O_ACCMODE) == O_RDWR && (fl & O_APPEND));
    long d = OK(syscall(SYS_fcntl, fd, F_DUPFD, 30));
    CHECK(d >= 30 && OK(syscall(SYS_fcntl, d, F_GETFD)) == 0);
    long d2 = OK(syscall(SYS_fcntl, fd, F_DUPFD, 30));
    CHECK(d2 > d);
    long dc = OK(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 40));
    CHECK(dc >= 40 && OK(syscall(SYS_fcntl, dc, F_GETFD)) == FD_CLOEXEC);
    long d3 = OK(syscall(SYS_fcntl, fd, F_DUPFD, 0));
    CHECK(d3 < 30);                                     /* the lowest free one */
    ERR(syscall(SYS_fcntl, fd, F_DUPFD, -1), EINVAL);
    ERR(syscall(SYS_fcntl, fd, 9999), EINVAL);
    ERR(syscall(SYS_fcntl, -1, F_GETFD), EBADF);
    ERR(syscall(SYS_fcntl, 999, F_GETFL), EBADF);
    ERR(syscall(SYS_fcntl, 999, F_DUPFD, 0), EBADF);
    /* the status flags belong to the open file, shared by dups */
    fl = OK(syscall(SYS_fcntl, d, F_GETFL));
    CHECK(fl & O_APPEND);
    /* O_NONBLOCK set later on a pipe */
    int p[2];
    OK(syscall(SYS_pipe, p));
    OK(syscall(SYS_fcntl, p[0], F_SETFL, O_NONBLOCK));
    char c;
    ERR(read(p[0], &c, 1), EAGAIN);
    OK(syscall(SYS_fcntl, p[0], F_SETFL, 0));
    CHECK(!(OK(syscall(SYS_fcntl, p[0], F_GETFL)) & O_NONBLOCK));
    close(p[0]);
    close(p[1]);
    long fds[] = {fd, d, d2, dc, d3};
    for (int i = 0; i < 5; i++)
        OK(close(fds[i]));
}

static void t_ioctl(void)
{
    struct termios t;
    int p[2];
    OK(syscall(SYS_pipe, p));
    ERR(syscall(SYS_ioctl, p[0], TCGETS, &t), ENOTTY);
    ERR(syscall(SYS_ioctl, p[1], TCGETS, &t), ENOTTY);
    ERR(syscall(SYS_ioctl, p[0], TCGETS, bad_ptr[3].p), ENOTTY);   /* not a tty comes first */
    ERR(syscall(SYS_ioctl, p[0], TIOCGWINSZ, &t), ENOTTY);
    put_str("f", "x");
    int fd = OK(sys_open("f", O_RDONLY, 0));
    ERR(syscall(SYS_ioctl, fd, TCGETS, &t), ENOTTY);
    OK(close(fd));
    fd = OK(sys_open(".", O_RDONLY | O_DIRECTORY, 0));
    ERR(syscall(SYS_ioctl, fd, TCGETS, &t), ENOTTY);
    OK(close(fd));
    ERR(syscall(SYS_ioctl, -1, TCGETS, &t), EBADF);
    ERR(syscall(SYS_ioctl, 999, TCGETS, &t), EBADF);
    CHECK(!isatty(p[0]) && errno == ENOTTY);
    close(p[0]);
    close(p[1]);
}

static void t_eventfd(void)
{
    void *bad;
    uint64_t v;
    int fd = OK(syscall(SYS_eventfd2, 3, 0));
    CHECK(OK(read(fd, &v, 8)) == 8 && v == 3);          /* read returns and resets */
    v = 5;
    CHECK(OK(write(fd, &v, 8)) == 8);
    v = 2;
    CHECK(OK(write(fd, &v, 8)) == 8);
    uint64_t two[2];
    CHECK(OK(read(fd, two, 16)) == 8 && two[0] == 7);   /* writes add; a bigger buffer is fine */
    ERR(read(fd, &v, 4), EINVAL);                       /* less than 8 bytes */
    ERR(write(fd, &v, 4), EINVAL);
    v = UINT64_MAX;
    ERR(write(fd, &v, 8), EINVAL);
    /* bad pointers, on a non-blocking eventfd (Linux consumes the count
     * before its copy to user memory fails: 1 or nothing is left) */
    int nb = OK(syscall(SYS_eventfd2, 0, EFD_NONBLOCK));
    FOR_BAD(bad) {
        uint64_t one = 1;
        CHECK(OK(write(nb, &one, 8)) == 8);
        ERR(syscall(SYS_read, nb, bad, 8), EFAULT);
        long r = read(nb, &v, 8);
        CHECKM((r == 8 && v == 1) || (r == -1 && errno == EAGAIN), "after EFAULT: %ld %s", r, en(errno));
        ERR(syscall(SYS_write, nb, bad, 8), EFAULT);
        ERR(read(nb, &v, 8), EAGAIN);                   /* the bad write added nothing */
    }
    OK(close(nb));
    /* a blocking read woken by another process's write */
    pid_t pid = xfork();
    if (pid == 0) {
        msleep(100);
        uint64_t w = 9;
        CHECK(write(fd, &w, 8) == 8);
        _exit(0);
    }
    double t0 = mono();
    CHECK(OK(read(fd, &v, 8)) == 8 && v == 9);
    CHECK(mono() - t0 >= 0.09);
    EXPECT_EXIT(pid, 0);
    OK(close(fd));
    fd = OK(syscall(SYS_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC));
    ERR(read(fd, &v, 8), EAGAIN);
    CHECK(OK(fcntl(fd, F_GETFD)) == FD_CLOEXEC && (OK(fcntl(fd, F_GETFL)) & O_NONBLOCK));
    v = UINT64_MAX - 1;                                 /* full: the next write would block */
    CHECK(OK(write(fd, &v, 8)) == 8);
    v = 1;
    ERR(write(fd, &v, 8), EAGAIN);
    OK(close(fd));
    fd = OK(syscall(SYS_eventfd2, 2, EFD_SEMAPHORE | EFD_NONBLOCK));
    CHECK(OK(read(fd, &v, 8)) == 8 && v == 1);
    CHECK(OK(read(fd, &v, 8)) == 8 && v == 1);
    ERR(read(fd, &v, 8), EAGAIN);
    OK(close(fd));
    ERR(syscall(SYS_eventfd2, 0, 0x1234), EINVAL);
}

static void t_sysinfo(void)
{
    void *bad;
    struct sysinfo si;
    memset(&si, 0, sizeof si);
    OK(syscall(SYS_sysinfo, &si));
    CHECK(si.mem_unit >= 1 && si.totalram > 0 && si.freeram <= si.totalram);
    CHECK(si.procs >= 1 && si.uptime >= 0 && si.freeswap <= si.totalswap);
    CHECKM((unsigned long long)si.totalram * si.mem_unit >= 16ULL << 20, "totalram %lu x %u",
           si.totalram, si.mem_unit);
    FOR_BAD(bad)
        ERR(syscall(SYS_sysinfo, bad), EFAULT);
}

static void t_cwd(void)
{
    void *bad;
    char cwd[PATH_MAX], now[PATH_MAX];
    long n = OK(syscall(SYS_getcwd, cwd, sizeof cwd));
    CHECKM(n == (long)strlen(cwd) + 1, "getcwd returned %ld for \"%s\"", n, cwd);
    CHECK(cwd[0] == '/');
    OK(syscall(SYS_mkdir, "sub", 0755));
    OK(syscall(SYS_chdir, "sub"));
    OK(syscall(SYS_getcwd, now, sizeof now));
    CHECKM(strlen(now) == strlen(cwd) + 4 && strncmp(now, cwd, strlen(cwd)) == 0 &&
           strcmp(now + strlen(cwd), "/sub") == 0, "cwd \"%s\" after chdir(sub) from \"%s\"", now, cwd);
    put_str("inside", "x");                             /* relative names follow */
    OK(syscall(SYS_chdir, ".."));
    OK(syscall(SYS_getcwd, now, sizeof now));
    CHECK(strcmp(now, cwd) == 0);
    check_content("sub/inside", "x");
    OK(syscall(SYS_chdir, now));                        /* absolute */
    ERR(syscall(SYS_chdir, "missing"), ENOENT);
    ERR(syscall(SYS_chdir, "sub/inside"), ENOTDIR);
    ERR(syscall(SYS_chdir, ""), ENOENT);
    ERR(syscall(SYS_getcwd, now, strlen(cwd)), ERANGE);   /* no room for the NUL */
    ERR(syscall(SYS_getcwd, now, 0), ERANGE);
    FOR_BAD(bad) {
        ERR(syscall(SYS_getcwd, bad, sizeof now), EFAULT);
        ERR(syscall(SYS_chdir, bad), EFAULT);
    }
    /* a child inherits the directory; its chdir is its own */
    pid_t pid = xfork();
    if (pid == 0) {
        char c[PATH_MAX];
        CHECK(getcwd(c, sizeof c) && strcmp(c, cwd) == 0);
        OK(syscall(SYS_chdir, "sub"));
        _exit(0);
    }
    EXPECT_EXIT(pid, 0);
    OK(syscall(SYS_getcwd, now, sizeof now));
    CHECK(strcmp(now, cwd) == 0);
    OK(syscall(SYS_chdir, "/"));
    OK(syscall(SYS_getcwd, now, sizeof now));
    CHECK(strcmp(now, "/") == 0);
    OK(syscall(SYS_chdir, cwd));
}

static void t_umask(void)
{
    long old = syscall(SYS_umask, 022);
    CHECK(old >= 0 && old <= 0777);
    CHECK(syscall(SYS_umask, 077) == 022);
    CHECK(syscall(SYS_umask, 0) == 077);
    CHECK(syscall(SYS_umask, 01777 | 0170000) == 0);    /* only the permission bits */
    CHECK(syscall(SYS_umask, 022) == 0777);
    pid_t pid = xfork();
    if (pid == 0)
        _exit(syscall(SYS_umask, 0) == 022 ? 0 : 1);    /* inherited */
    EXPECT_EXIT(pid, 0);
    syscall(SYS_umask, old);
}

static long futex(volatile uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static void t_futex(void)
{
    void *bad;
    static uint32_t f __attribute__((aligned(4))) = 1;
    ERR(futex(&f, FUTEX_WAIT_PRIVATE, 0, NULL), EAGAIN);   /* the value is not 0 */
    ERR(futex(&f, FUTEX_WAIT, 0, NULL), EAGAIN);
    CHECK(OK(futex(&f, FUTEX_WAKE_PRIVATE, 1, NULL)) == 0);
    CHECK(OK(futex(&f, FUTEX_WAKE, INT_MAX, NULL)) == 0);
    struct timespec ts = {0, 50 * 1000000L};
    double t0 = mono();
    ERR(futex(&f, FUTEX_WAIT_PRIVATE, 1, &ts), ETIMEDOUT);
    double el = mono() - t0;
    CHECKM(el >= 0.0499 && el < 5, "a 50 ms FUTEX_WAIT timed out after %.4f s", el);
    ERR(futex(&f, FUTEX_WAIT, 1, &ts), ETIMEDOUT);
    ERR(futex((uint32_t *)((char *)&f + 1), FUTEX_WAIT_PRIVATE, 1, &ts), EINVAL);
    ERR(futex(&f, 99, 0, NULL), ENOSYS);
    struct timespec badts = {0, -1};
    ERR(futex(&f, FUTEX_WAIT_PRIVATE, 1, &badts), EINVAL);
    FOR_BAD(bad) {
        ERR(futex(bad, FUTEX_WAIT_PRIVATE, 0, NULL), EFAULT);
        ERR(futex(&f, FUTEX_WAIT_PRIVATE, 1, bad), EFAULT);
    }
}

static void t_futex_shared(void)
{
    struct shared { volatile uint32_t word, state; } *sh = shared_page(PG);
    pid_t pid = xfork();
    if (pid == 0) {
        sh->state = 1;
        while (sh->word == 0) {
            long r = futex(&sh->word, FUTEX_WAIT, 0, NULL);
            CHECKM(r == 0 || errno == EAGAIN || errno == EINTR, "FUTEX_WAIT: %s", en(errno));
        }
        _exit(sh->word == 1 ? 0 : 1);
    }
    AWAIT(sh->state);
    msleep(100);                                        /* let it fall asleep */
    sh->word = 1;
    long woken = OK(futex(&sh->word, FUTEX_WAKE, 1, NULL));
    if (woken != 1)
        note("FUTEX_WAKE found %ld waiters (the child was not asleep yet?)", woken);
    EXPECT_EXIT(pid, 0);
}

/* ================================================================== */
/* Extras (-x): what many programs use beyond the required list       */

static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static long th_counter;
static __thread long th_local = 5;

static void *th_main(void *arg)
{
    long id = (long)arg;
    th_local = id;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&th_lock);
        th_counter++;
        pthread_mutex_unlock(&th_lock);
    }
    return (void *)(syscall(SYS_gettid) * 100 + (th_local == id));
}

static void t_threads(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        CHECKM(pthread_create(&t[i], NULL, th_main, (void *)(i + 10)) == 0, "pthread_create");
    for (int i = 0; i < 4; i++) {
        void *ret;
        CHECK(pthread_join(t[i], &ret) == 0);
        long r = (long)ret;
        CHECKM(r % 100 == 1, "thread %d saw another thread's TLS", i);
        CHECKM(r / 100 != getpid(), "thread %d ran with the process's tid", i);
    }
    CHECK(th_counter == 4000 && th_local == 5);
}

static void t_stop_cont(void)
{
    pid_t pid = xfork();
    if (pid == 0) {
        for (;;)
            msleep(1000);
    }
    int st;
    OK(kill(pid, SIGSTOP));
    CHECK(OK(syscall(SYS_wait4, pid, &st, WUNTRACED, NULL)) == pid);
    CHECKM(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "status %#x", st);
    OK(kill(pid, SIGCONT));
    CHECK(OK(syscall(SYS_wait4, pid, &st, WCONTINUED, NULL)) == pid);
    CHECKM(WIFCONTINUED(st), "status %#x", st);
    OK(kill(pid, SIGKILL));
    EXPECT_SIG(pid, SIGKILL);
}

static void t_links(void)
{
    char buf[64];
    put_str("f", "data");
    OK(link("f", "g"));
    struct stat st;
    OK(stat("f", &st));
    CHECK(st.st_nlink == 2);
    OK(unlink("f"));
    check_content("g", "data");
    OK(symlink("g", "s"));
    OK(lstat("s", &st));
    CHECK(S_ISLNK(st.st_mode));
    long n = OK(readlink("s", buf, sizeof buf));
    CHECK(n == 1 && buf[0] == 'g');
    check_content("s", "data");
    ERR(sys_open("s", O_RDONLY | O_NOFOLLOW, 0), ELOOP);
    OK(symlink("s2", "s1"));
    OK(symlink("s1", "s2"));
    ERR(sys_open("s1", O_RDONLY, 0), ELOOP);
}

static void t_modes(void)
{
    syscall(SYS_umask, 022);
    int fd = OK(sys_open("f", O_CREAT | O_WRONLY, 0666));
    OK(close(fd));
    struct stat st;
    OK(stat("f", &st));
    CHECKM((st.st_mode & 0777) == 0644, "mode %o with umask 022", st.st_mode & 0777);
    OK(chmod("f", 0600));
    OK(stat("f", &st));
    CHECK((st.st_mode & 0777) == 0600);
    syscall(SYS_umask, 077);
    OK(mkdir("d", 0777));
    OK(stat("d", &st));
    CHECK((st.st_mode & 0777) == 0700);
}

static void t_tty(void)
{
    struct termios t;
    int fd = isatty(0) ? 0 : isatty(1) ? 1 : -1;
    if (fd < 0)
        skip("neither stdin nor stdout is a terminal");
    OK(ioctl(fd, TCGETS, &t));
    OK(ioctl(fd, TCSETS, &t));
    struct winsize ws;
    OK(ioctl(fd, TIOCGWINSZ, &ws));
    ERR(syscall(SYS_ioctl, fd, TCGETS, bad_ptr[3].p), EFAULT);
}

static void t_ioctl_generic(void)
{
    int p[2];
    OK(syscall(SYS_pipe, p));
    CHECK(OK(write(p[1], "12345", 5)) == 5);
    int n = -1;
    OK(ioctl(p[0], FIONREAD, &n));
    CHECK(n == 5);
    OK(ioctl(p[0], FIOCLEX));
    CHECK(OK(fcntl(p[0], F_GETFD)) == FD_CLOEXEC);
    OK(ioctl(p[0], FIONCLEX));
    CHECK(OK(fcntl(p[0], F_GETFD)) == 0);
    int on = 1;
    OK(ioctl(p[0], FIONBIO, &on));
    CHECK(OK(fcntl(p[0], F_GETFL)) & O_NONBLOCK);
    close(p[0]);
    close(p[1]);
}

static void t_poll(void)
{
    int p[2];
    OK(syscall(SYS_pipe, p));
    struct pollfd fds[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    CHECK(OK(poll(fds, 1, 0)) == 0);
    CHECK(OK(poll(&fds[1], 1, 0)) == 1 && (fds[1].revents & POLLOUT));
    double t0 = mono();
    CHECK(OK(poll(fds, 1, 50)) == 0 && mono() - t0 >= 0.049);
    CHECK(OK(write(p[1], "x", 1)) == 1);
    CHECK(OK(poll(fds, 1, -1)) == 1 && (fds[0].revents & POLLIN));
    OK(close(p[1]));
    char c;
    CHECK(OK(read(p[0], &c, 1)) == 1);
    CHECK(OK(poll(fds, 1, 0)) == 1 && (fds[0].revents & POLLHUP));
    fds[0].fd = 999;
    CHECK(OK(poll(fds, 1, 0)) == 1 && (fds[0].revents & POLLNVAL));
    OK(close(p[0]));
}

static volatile uintptr_t alt_sp;

static void alt_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    alt_sp = (uintptr_t)__builtin_frame_address(0);
    _exit(si->si_signo == SIGSEGV ? 0 : 1);
}

static int overflow(int n)
{
    volatile char buf[4096];
    buf[0] = (char)n;
    if (n > (1 << 30))
        return 0;
    return overflow(n + 1) + buf[0];
}

static void t_sigaltstack(void)
{
    pid_t pid = xfork();
    if (pid == 0) {
        static char stack[65536];
        stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
        OK(sigaltstack(&ss, NULL));
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = alt_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        OK(sigaction(SIGSEGV, &sa, NULL));
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_STACK, &rl);
        overflow(0);                        /* runs off the stack: the handler runs on ss */
        _exit(2);
    }
    EXPECT_EXIT(pid, 0);
}

static void t_posix_spawn(void)
{
    char *argv[] = {self_exe, "--exec-child", "exit", "5", NULL};
    char *envp[] = {NULL};
    pid_t pid;
    CHECKM(posix_spawn(&pid, self_exe, NULL, NULL, argv, envp) == 0, "posix_spawn");
    EXPECT_EXIT(pid, 5);
}

/* ================================================================== */
/* The table                                                          */

#define X 1                                 /* extra: only with -x or by name */

struct test {
    void (*fn)(void);
    const char *name;
    int extra;
    const char *what;
};

static struct test tests[] = {
    {t_rw_basic, "rw_basic", 0, "open/write/lseek/read round trip, EOF, zero-length calls, EBADF for the wrong access mode"},
    {t_rw_errors, "rw_errors", 0, "read/write EBADF, EFAULT for every bad pointer (file and pipe, nothing written or lost), EISDIR"},
    {t_readv_writev, "readv_writev", 0, "readv/writev scatter-gather on a file and a pipe; EINVAL (iovcnt<0, >IOV_MAX, len overflow), EBADF, EFAULT (array and element)"},
    {t_pread_pwrite, "pread_pwrite", 0, "pread64/pwrite64 at an offset leave the file offset; holes; EINVAL, EBADF, EFAULT, ESPIPE on a pipe, EISDIR"},
    {t_open_errors, "open_errors", 0, "open: ENOENT, ENOTDIR, EISDIR, EEXIST, ENAMETOOLONG (name and path), EFAULT; . and .. and trailing slashes; O_CLOEXEC"},
    {t_openat, "openat", 0, "openat relative to a directory fd, AT_FDCWD, absolute paths ignore the fd; ENOTDIR, EBADF, EEXIST, EFAULT"},
    {t_close, "close", 0, "close: EBADF twice and for bad numbers; the lowest free fd is reused"},
    {t_lseek, "lseek", 0, "SEEK_SET/CUR/END, past the end; EINVAL (negative, bad whence), ESPIPE, EBADF"},
    {t_holes, "holes", 0, "a write 1 MiB past the end makes a hole that reads as zeros; SEEK_END; a write inside the hole"},
    {t_stat, "stat", 0, "stat/fstat/lstat/newfstatat (AT_FDCWD, dirfd, AT_EMPTY_PATH): type, size, inode; ENOENT ENOTDIR EBADF EINVAL EFAULT; S_ISFIFO"},
    {t_access, "access", 0, "access/faccessat: F_OK R_OK W_OK X_OK; ENOENT ENOTDIR EINVAL EBADF EFAULT"},
    {t_getdents, "getdents", 0, "getdents64 lists created files once each with . and .., d_reclen/d_type, rewind, unlinked names vanish; EINVAL EBADF ENOTDIR EFAULT"},
    {t_longnames, "longnames", 0, "VFAT-style long names (spaces, mixed case, many dots, 200 chars) created, listed as written, renamed, removed"},
    {t_mkdir, "mkdir", 0, "mkdir, nested paths, trailing slash; EEXIST ENOENT ENOTDIR EFAULT"},
    {t_rmdir, "rmdir", 0, "rmdir; ENOENT ENOTDIR ENOTEMPTY EINVAL(.) EFAULT (beyond the required list)"},
    {t_unlink, "unlink", 0, "unlink removes the name; ENOENT, EISDIR, ENOTDIR, EFAULT; the name can be used again"},
    {t_unlink_open, "unlink_open", 0, "an unlinked open file stays readable and writable (st_nlink 0) until closed"},
    {t_rename, "rename", 0, "rename files and directories, replace, into directories; ENOENT EISDIR ENOTDIR ENOTEMPTY EINVAL EFAULT; open fds survive"},
    {t_fsync_sync, "fsync_sync", 0, "fsync/fdatasync on a file and a directory, EBADF, EINVAL on a pipe; sync"},
    {t_append, "append", 0, "O_APPEND writes at the end whatever the offset; F_SETFL O_APPEND"},
    {t_trunc, "trunc", 0, "O_TRUNC empties; ftruncate grows with zeros and shrinks; EINVAL EBADF"},
    {t_excl, "excl", 0, "O_CREAT|O_EXCL makes a new file, EEXIST when it exists; O_EXCL alone is ignored"},
    {t_bigfile, "bigfile", 0, "a 3 MiB file written and read in odd sizes, then at random offsets"},
    {t_manyfds, "manyfds", 0, "open until EMFILE at RLIMIT_NOFILE (lowered to 256), then dup/pipe/eventfd EMFILE, dup2/F_DUPFD past the limit; close all, reuse"},
    {t_fork_fds, "fork_fds", 0, "a child shares the parent's open files and their offsets; its close is its own"},
    {t_mmap_anon, "mmap_anon", 0, "anonymous mmap zero-filled, rounded up; munmap then SIGSEGV; EINVAL EBADF ENOMEM; PROT_NONE; 200 small mappings"},
    {t_munmap_split, "munmap_split", 0, "munmap and mprotect in the middle of a mapping split it; every page keeps its state"},
    {t_mmap_fixed, "mmap_fixed", 0, "MAP_FIXED replaces; MAP_FIXED_NOREPLACE EEXIST on any overlap, maps when free; a hint never replaces"},
    {t_mmap_populate, "mmap_populate", 0, "MAP_POPULATE makes every page resident (mincore), anonymous and file; 1 GiB MAP_NORESERVE"},
    {t_demand_paging, "demand_paging", 0, "64 MiB mapped costs no resident page until touched (mincore); mincore EINVAL ENOMEM EFAULT"},
    {t_mprotect, "mprotect", 0, "mprotect read-only then a write faults (SEGV_ACCERR), PROT_NONE, W^X code; EINVAL ENOMEM; EACCES for a shared read-only file"},
    {t_mremap, "mremap", 0, "mremap grows keeping content, shrinks, grows in place or ENOMEM, MREMAP_FIXED; EINVAL EFAULT; a shared file mapping grown"},
    {t_madvise, "madvise", 0, "MADV_DONTNEED zeroes private anon, refetches private file pages, keeps shared; MADV_FREE; WILLNEED; EINVAL ENOMEM"},
    {t_brk, "brk", 0, "brk grows (zeroed), shrinks (then SIGSEGV above), refuses impossible breaks; glibc brk/sbrk"},
    {t_stack_growth, "stack_growth", 0, "the stack grows on demand by 4 MiB"},
    {t_cow, "cow", 0, "after fork each side sees its own data by content (anon, bss, heap, stack, untouched pages), a grandchild too"},
    {t_mmap_shared_anon, "mmap_shared_anon", 0, "MAP_SHARED|MAP_ANONYMOUS memory is shared across fork both ways; private memory is not"},
    {t_mmap_file_private, "mmap_file_private", 0, "private file mapping: file content, zero tail, SIGBUS past EOF, copies on write, offsets; EINVAL EACCES ENODEV"},
    {t_mmap_file_shared, "mmap_file_shared", 0, "shared file mapping: writes visible through read() and vice versa, across fork, persisted; msync and its errors"},
    {t_sigaction, "sigaction", 0, "rt_sigaction set/get, siginfo (SI_USER), the mask inside handlers, SA_NODEFER SA_RESETHAND SIG_IGN; EINVAL EFAULT; RT signals queue"},
    {t_sigprocmask, "sigprocmask", 0, "blocked signals wait and arrive once on unblock; inherited mask; SIGKILL/SIGSTOP unblockable; EINVAL EFAULT"},
    {t_sigreturn_regs, "sigreturn_regs", 0, "every general register, xmm0-15, MXCSR and the x87 control word survive a handler that clobbers them; handler gets the default FPU state and an aligned stack"},
    {t_sig_async_regs, "sig_async_regs", 0, "the same while signals from another process interrupt a spinning loop (asynchronous delivery)"},
    {t_sig_ucontext, "sig_ucontext", 0, "a SIGSEGV handler sees RIP, RDI, trapno 14, err, cr2 in its ucontext, and changing RIP/RAX/uc_sigmask takes effect after sigreturn"},
    {t_sigreturn_bad, "sigreturn_bad", 0, "rt_sigreturn with no frame, a zero frame, a junk frame: the process dies (SIGSEGV), the kernel does not"},
    {t_segv_info, "segv_info", 0, "SIGSEGV si_addr/si_code for unmapped, NULL, kernel, non-canonical (SI_KERNEL), text and rodata writes, NX data and stack"},
    {t_kill, "kill", 0, "kill: sig 0, EINVAL, ESRCH; default actions; ignored signals; zombies; process groups (kill(0), kill(-pgid))"},
    {t_tgkill, "tgkill", 0, "tgkill delivers with SI_TKILL; ESRCH for a wrong thread group; EINVAL"},
    {t_sigchld, "sigchld", 0, "SIGCHLD siginfo and wait4 status for exit, kill, SIGSEGV, self-kill; SIGCHLD ignored means auto-reap (ECHILD)"},
    {t_sigpipe, "sigpipe", 0, "a write to a pipe with no reader: SIGPIPE kills, or EPIPE when ignored/handled; a blocked writer gets EPIPE"},
    {t_eintr, "eintr", 0, "a blocked read returns EINTR without SA_RESTART and restarts with it; nanosleep EINTR with the time left"},
    {t_ids, "ids", 0, "getpid gettid getppid getuid geteuid getgid getegid getpgid, in parent and child; ESRCH"},
    {t_setpgid_setsid, "setpgid_setsid", 0, "setpgid/setsid/getsid rules: EPERM for leaders and across sessions, ESRCH, EINVAL; a parent moves its child"},
    {t_orphan, "orphan", 0, "an orphan is re-parented (getppid changes)"},
    {t_fork_wait, "fork_wait", 0, "20 children reaped in any order; wait4 ECHILD EINVAL WNOHANG rusage; status words for exit/_exit/exit_group/kill; old fork; EFAULT; wait4(0)"},
    {t_vfork, "vfork", 0, "vfork suspends the parent and shares memory until _exit or execve"},
    {t_clone, "clone", 0, "clone with glibc's fork flags (CHILD_SETTID/CLEARTID), PARENT_SETTID, copied memory; EINVAL flag rules"},
    {t_exec, "exec", 0, "execve of itself: argc/argv/envp exact, initial stack layout and alignment, auxv (AT_PAGESZ AT_RANDOM AT_PHDR AT_ENTRY AT_EXECFN...), fresh bss/data; ENOENT EACCES ENOTDIR ENOEXEC EFAULT"},
    {t_exec_inherit, "exec_inherit", 0, "across execve: fds kept unless FD_CLOEXEC, ignored signals stay ignored, handlers reset, mask and pending signals kept, cwd and umask kept"},
    {t_exec_bigargs, "exec_bigargs", 0, "execve with 300 arguments of 400 bytes and 40 environment strings"},
    {t_badelf, "badelf", 0, "execs each mkbadelf.sh file (truncated, corrupt headers, dynamic...) and checks the outcome its EXPECT list gives"},
    {t_uname, "uname", 0, "uname: Linux, x86_64, a release; EFAULT"},
    {t_arch_prctl, "arch_prctl", 0, "ARCH_GET_FS is glibc's TCB; ARCH_SET_FS moves %fs (reads, a syscall, back); EINVAL, EFAULT, EPERM for non-user addresses"},
    {t_tid_robust_rseq, "tid_robust_rseq", 0, "set_tid_address returns the tid; set_robust_list EINVAL on a bad size; rseq registered by glibc (or ENOSYS) and its EINVALs"},
    {t_prlimit, "prlimit", 0, "prlimit64/getrlimit read and set RLIMIT_NOFILE (enforced, inherited); EINVAL ESRCH EFAULT"},
    {t_getrandom, "getrandom", 0, "getrandom fills buffers that differ; flags; EINVAL EFAULT"},
    {t_clocks, "clocks", 0, "clock_gettime for clocks 0-7, MONOTONIC never goes back, CPU time grows, gettimeofday agrees; EINVAL EFAULT"},
    {t_nanosleep, "nanosleep", 0, "nanosleep and clock_nanosleep (relative, TIMER_ABSTIME, the past) sleep long enough; EINVAL EFAULT"},
    {t_sched_yield, "sched_yield", 0, "two processes take 200 turns each with sched_yield"},
    {t_pipe, "pipe", 0, "pipe/pipe2: data, EOF after the writer closes, flags, O_NONBLOCK EAGAIN, capacity; EBADF EINVAL EFAULT (no fds leaked)"},
    {t_pipe_block, "pipe_block", 0, "a blocking read is woken by another process's write; EOF waits for every writer; 1 MiB streamed through"},
    {t_pipe_atomic, "pipe_atomic", 0, "four writers' PIPE_BUF-sized writes arrive whole"},
    {t_dup, "dup", 0, "dup/dup2/dup3 share the offset, lowest fd, replace quietly, CLOEXEC rules; EBADF EINVAL"},
    {t_fcntl, "fcntl", 0, "F_GETFD/F_SETFD/F_GETFL/F_SETFL/F_DUPFD/F_DUPFD_CLOEXEC; access mode fixed; EINVAL EBADF"},
    {t_ioctl, "ioctl", 0, "TCGETS on a pipe, file or directory is ENOTTY; EBADF"},
    {t_eventfd, "eventfd", 0, "eventfd2 counter, semaphore mode, blocking read woken by another process, NONBLOCK/CLOEXEC, overflow EAGAIN; EINVAL EFAULT"},
    {t_sysinfo, "sysinfo", 0, "sysinfo's fields are consistent; EFAULT"},
    {t_cwd, "cwd", 0, "getcwd/chdir relative and absolute, .. , inherited; ENOENT ENOTDIR ERANGE EFAULT"},
    {t_umask, "umask", 0, "umask returns the old mask, keeps only 0777, is inherited"},
    {t_futex, "futex", 0, "FUTEX_WAIT with a changed value EAGAIN, WAKE with no waiter 0, WAIT timeout ETIMEDOUT; EINVAL ENOSYS EFAULT"},
    {t_futex_shared, "futex_shared", 0, "FUTEX_WAKE from one process wakes a FUTEX_WAIT in another on shared memory"},
    {t_threads, "threads", X, "pthreads: 4 threads, a mutex, thread-local storage (clone3/clone CLONE_VM|CLONE_THREAD, futex)"},
    {t_stop_cont, "stop_cont", 0, "SIGSTOP/SIGCONT seen by wait4 WUNTRACED/WCONTINUED"},
    {t_links, "links", X, "link, symlink, readlink, lstat S_ISLNK, ELOOP (needs a Linux file system)"},
    {t_modes, "modes", X, "umask applied to new files' modes, chmod (needs a Linux file system)"},
    {t_tty, "tty", X, "TCGETS/TCSETS/TIOCGWINSZ on the terminal, EFAULT (skipped without one)"},
    {t_ioctl_generic, "ioctl_generic", 0, "FIONREAD on a pipe, FIOCLEX/FIONCLEX, FIONBIO"},
    {t_poll, "poll", 0, "poll on a pipe: timeout, POLLIN, POLLOUT, POLLHUP, POLLNVAL"},
    {t_sigaltstack, "sigaltstack", 0, "a stack overflow's SIGSEGV handled on an alternate stack"},
    {t_posix_spawn, "posix_spawn", 0, "glibc posix_spawn (clone CLONE_VM|CLONE_VFORK on a new stack) runs a program"},
    {NULL, NULL, 0, NULL},
};

/* ================================================================== */
/* The exec'd side of the exec tests                                  */

static int exec_child(int argc, char **argv, char **envp)
{
    const char *rfd = getenv("UT_REPORT_FD");
    report_fd = rfd ? atoi(rfd) : 2;
    test_pid = getpid();
    snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
    const char *mode = argv[2];
    if (strcmp(mode, "exit") == 0 && argc == 4)
        _exit(atoi(argv[3]));
    if (strcmp(mode, "args") == 0)
        exec_child_args(argc, argv, envp);
    else if (strcmp(mode, "inherit") == 0)
        exec_child_inherit(argc, argv);
    else if (strcmp(mode, "bigargs") == 0 && argc >= 4)
        exec_child_bigargs(argc, argv);
    else
        FAIL("unknown --exec-child mode %s", mode);
    return 0;
}

/* ================================================================== */
/* The runner                                                         */

static void remove_tree(const char *path, int depth)
{
    struct stat st;
    if (syscall(SYS_lstat, path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        syscall(SYS_unlink, path);
        return;
    }
    if (depth > 16)
        return;
    int fd = sys_open(path, O_RDONLY | O_DIRECTORY, 0);
    if (fd >= 0) {
        char buf[4096] __attribute__((aligned(8)));
        static char child[PATH_MAX];
        for (;;) {
            long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
            if (n <= 0)
                break;
            for (long off = 0; off < n;) {
                struct linux_dirent64 *d = (void *)(buf + off);
                off += d->d_reclen;
                if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                    continue;
                char *sub = malloc(PATH_MAX);
                if (!sub)
                    continue;
                snprintf(sub, PATH_MAX, "%s/%s", path, d->d_name);
                remove_tree(sub, depth + 1);
                free(sub);
            }
            (void)child;
            /* entries were removed under the cursor: start again */
            lseek(fd, 0, SEEK_SET);
            long again = syscall(SYS_getdents64, fd, buf, sizeof buf);
            int only_dots = 1;
            for (long off = 0; off < again;) {
                struct linux_dirent64 *d = (void *)(buf + off);
                off += d->d_reclen;
                if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
                    only_dots = 0;
            }
            if (only_dots)
                break;
            lseek(fd, 0, SEEK_SET);
        }
        close(fd);
    }
    syscall(SYS_rmdir, path);
}

static void reset_signals(void)
{
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* runs one test; returns 0 passed, 1 failed, 2 skipped */
static int run_test(struct test *t, const char *rundir)
{
    printf("test %s: ", t->name);
    fflush(stdout);
    remove_tree(t->name, 0);
    if (syscall(SYS_mkdir, t->name, 0755) != 0) {
        printf("FAILED runner: mkdir(%s): %s\n", t->name, en(errno));
        return 1;
    }
    int p[2];
    if (syscall(SYS_pipe, p) != 0) {
        printf("FAILED runner: pipe: %s\n", en(errno));
        return 1;
    }
    int st = 0;
    if (opt_nofork) {
        struct rlimit nofile;
        getrlimit(RLIMIT_NOFILE, &nofile);
        mode_t mask = umask(022);
        umask(mask);
        report_fd = p[1];
        test_pid = getpid();
        notes_left = 20;
        int code = sigsetjmp(nofork_jb, 1);
        if (code == 0) {
            if (syscall(SYS_chdir, t->name) != 0)
                fail_at(0, "chdir(%s): %s", t->name, en(errno));
            t->fn();
        }
        st = code << 8;
        if (syscall(SYS_chdir, rundir) != 0) {
            printf("FAILED runner: chdir(%s): %s\n", rundir, en(errno));
            exit(2);
        }
        report_fd = 2;
        alarm(0);
        reset_signals();
        setrlimit(RLIMIT_NOFILE, &nofile);
        umask(mask);
    } else {
        pid_t pid = fork();
        if (pid < 0) {
            printf("FAILED runner: fork: %s\n", en(errno));
            return 1;
        }
        if (pid == 0) {
            close(p[0]);
            report_fd = p[1];
            test_pid = getpid();
            notes_left = 20;
            reset_signals();                /* SIG_IGN is inherited (a shell's `&`) */
            if (own_pgrp)
                setpgid(0, 0);
            if (opt_timeout)
                alarm(opt_timeout);
            if (syscall(SYS_chdir, t->name) != 0)
                FAIL("chdir(%s): %s", t->name, en(errno));
            t->fn();
            _exit(0);
        }
        long r;
        do
            r = syscall(SYS_wait4, pid, &st, 0, NULL);
        while (r == -1 && errno == EINTR);
        if (r != pid) {
            printf("FAILED runner: wait4: %s\n", en(errno));
            return 1;
        }
        if (own_pgrp)
            kill(-pid, SIGKILL);            /* whatever the test left running */
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    static char msgs[65536];
    size_t n = 0;
    for (;;) {
        long k = read(p[0], msgs + n, sizeof msgs - 1 - n);
        if (k <= 0)
            break;
        n += k;
    }
    close(p[0]);
    msgs[n] = 0;
    char fails[2048] = "", notes[4096] = "", skipmsg[512] = "";
    for (char *l = strtok(msgs, "\n"); l; l = strtok(NULL, "\n")) {
        char *dst = l[0] == 'F' ? fails : l[0] == 'N' ? notes : l[0] == 'S' ? skipmsg : NULL;
        size_t cap = l[0] == 'F' ? sizeof fails : l[0] == 'N' ? sizeof notes : sizeof skipmsg;
        if (!dst || l[1] != ':')
            continue;
        if (dst == notes) {
            strncat(notes, "    note: ", cap - strlen(notes) - 1);
            strncat(notes, l + 2, cap - strlen(notes) - 2);
            strcat(notes, "\n");
        } else {
            if (dst[0])
                strncat(dst, " | ", cap - strlen(dst) - 1);
            strncat(dst, l + 2, cap - strlen(dst) - 1);
        }
    }
    int result;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !fails[0]) {
        printf("OK\n");
        result = 0;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 77 && !fails[0]) {
        printf("SKIPPED %s\n", skipmsg);
        result = 2;
    } else {
        char how[96];
        describe_status(st, how, sizeof how);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
            strncat(how, " (the per-test timeout)", sizeof how - strlen(how) - 1);
        if (fails[0] && WIFEXITED(st) && WEXITSTATUS(st) == 1)
            printf("FAILED %s\n", fails);
        else if (fails[0])
            printf("FAILED %s (%s)\n", fails, how);
        else
            printf("FAILED %s\n", how);
        result = 1;
    }
    fputs(notes, stdout);
    fflush(stdout);
    if (!opt_keep)
        remove_tree(t->name, 0);
    return result;
}

static void find_self(const char *argv0)
{
    const char *env = getenv("UT_SELF");
    char cwd[PATH_MAX / 2];
    if (env && env[0] == '/') {
        snprintf(self_exe, sizeof self_exe, "%s", env);
    } else if (argv0[0] == '/') {
        snprintf(self_exe, sizeof self_exe, "%s", argv0);
    } else if (strchr(argv0, '/') && getcwd(cwd, sizeof cwd)) {
        snprintf(self_exe, sizeof self_exe, "%s/%s", cwd, argv0);
    } else {
        const char *path = getenv("PATH");
        self_exe[0] = 0;
        while (path && *path) {
            const char *c = strchrnul(path, ':');
            char cand[PATH_MAX];
            snprintf(cand, sizeof cand, "%.*s/%s", (int)(c - path), path, argv0);
            if (cand[0] == '/' && access(cand, X_OK) == 0) {
                snprintf(self_exe, sizeof self_exe, "%s", cand);
                break;
            }
            path = *c ? c + 1 : c;
        }
        if (!self_exe[0]) {
            long n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
            self_exe[n > 0 ? n : 0] = 0;
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: usertests [-l] [-x] [-s] [-k] [-v] [-d DIR] [-t SECONDS] [-b DIR] [NAME...]\n");
    return 2;
}

int main(int argc, char **argv, char **envp)
{
    if (argc >= 3 && strcmp(argv[1], "--exec-child") == 0)
        return exec_child(argc, argv, envp);
    const char *dir = getenv("USERTESTS_DIR");
    const char *bdir = getenv("UT_BADELF_DIR");
    int list = 0, opt;
    while ((opt = getopt(argc, argv, "lxskvd:t:b:")) != -1) {
        switch (opt) {
        case 'l': list = 1; break;
        case 'x': opt_extra = 1; break;
        case 's': opt_nofork = 1; break;
        case 'k': opt_keep = 1; break;
        case 'v': opt_verbose = 1; break;
        case 'd': dir = optarg; break;
        case 't': opt_timeout = atoi(optarg); break;
        case 'b': bdir = optarg; break;
        default: return usage();
        }
    }
    if (list) {
        for (struct test *t = tests; t->fn; t++)
            printf("%-18s %s%s\n", t->name, t->extra ? "[extra] " : "", t->what);
        return 0;
    }
    for (int i = optind; i < argc; i++) {
        struct test *t = tests;
        while (t->fn && strcmp(t->name, argv[i]) != 0)
            t++;
        if (!t->fn) {
            fprintf(stderr, "usertests: no test named %s (usertests -l lists them)\n", argv[i]);
            return 2;
        }
    }
    find_self(argv[0]);
    if (bdir) {
        snprintf(badelf_dir, sizeof badelf_dir, "%s", bdir);
    } else {
        /* next to the program (build/user/badelf), else beside its folder
         * (the data disk: /mnt/bin/usertests, /mnt/badelf) */
        static const char *const where[] = {"/badelf", "/../badelf"};
        for (int i = 0; i < 2; i++) {
            snprintf(badelf_dir, sizeof badelf_dir, "%s", self_exe);
            char *slash = strrchr(badelf_dir, '/');
            if (slash)
                snprintf(slash, sizeof badelf_dir - (slash - badelf_dir), "%s", where[i]);
            char probe_path[PATH_MAX + 16];
            snprintf(probe_path, sizeof probe_path, "%s/EXPECT", badelf_dir);
            if (syscall(SYS_access, probe_path, F_OK) == 0)
                break;
        }
    }
    init_bad_ptrs();
    own_pgrp = !isatty(0);
    if (opt_nofork)
        reset_signals();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (dir && syscall(SYS_chdir, dir) != 0) {
        fprintf(stderr, "usertests: chdir(%s): %s\n", dir, strerror(errno));
        return 2;
    }
    char rundir[PATH_MAX];
    snprintf(rundir, sizeof rundir, "ut-%d", getpid());
    remove_tree(rundir, 0);
    if (syscall(SYS_mkdir, rundir, 0755) != 0 || syscall(SYS_chdir, rundir) != 0) {
        fprintf(stderr, "usertests: cannot make and enter %s: %s\n", rundir, strerror(errno));
        return 2;
    }
    if (!getcwd(rundir, sizeof rundir)) {
        fprintf(stderr, "usertests: getcwd: %s\n", strerror(errno));
        return 2;
    }
    printf("usertests starting (in %s%s)\n", rundir, opt_nofork ? ", no fork per test" : "");
    if (opt_verbose)
        printf("usertests: program %s, badelf files in %s\n", self_exe, badelf_dir);
    int passed = 0, failed = 0, skipped = 0;
    static char failed_names[4096];
    for (struct test *t = tests; t->fn; t++) {
        int wanted = optind == argc ? (!t->extra || opt_extra) : 0;
        for (int i = optind; i < argc; i++)
            wanted |= strcmp(argv[i], t->name) == 0;
        if (!wanted)
            continue;
        int r = run_test(t, rundir);
        if (r == 0)
            passed++;
        else if (r == 2)
            skipped++;
        else {
            failed++;
            strncat(failed_names, " ", sizeof failed_names - strlen(failed_names) - 1);
            strncat(failed_names, t->name, sizeof failed_names - strlen(failed_names) - 1);
        }
    }
    if (syscall(SYS_chdir, "..") == 0 && !opt_keep) {
        char *base = strrchr(rundir, '/');
        remove_tree(base ? base + 1 : rundir, 0);
    }
    printf("usertests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (failed) {
        printf("SOME TESTS FAILED:%s\n", failed_names);
        return 1;
    }
    printf("ALL TESTS PASSED\n");
    return 0;
}
