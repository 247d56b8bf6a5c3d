/*
 * mmstress: the memory system calls under hostile arguments, under memory
 * pressure, and in random sequences, each checked by content. A Linux
 * program first: every mode passes on Linux (checked on 6.1 and newer).
 *
 *   mmstress hostile
 *       every memory syscall called with bad pointers (NULL page, unmapped,
 *       PROT_NONE, kernel, non-canonical), huge and overflowing lengths,
 *       kernel and unaligned addresses, unknown flags; each answer must be
 *       Linux's errno (a few accept either of two answers Linux gives
 *       depending on privileges or version: said where). A sentinel mapping
 *       must keep its content and protection through all of it.
 *   mmstress swap MB
 *       MB MiB of anonymous memory with a pattern (more than the machine's
 *       RAM makes it swap); fork; both processes move their copy with
 *       mremap (the pages still shared copy-on-write, some on swap), grow
 *       it, write part of it, drop part with MADV_DONTNEED, and check every
 *       page.
 *   mmstress random OPS SEED
 *       OPS random operations (mmap anonymous/shared/file, munmap, mprotect,
 *       mremap, madvise, brk, fork with a checking child) over regions whose
 *       every page's content is known, checked as it goes and at the end.
 *
 * Prints "mmstress MODE: OK (...)" and exits 0, or prints each failure as
 * "mmstress: FAIL ..." and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1
#endif

#define PG 4096UL
#define KERNEL_VA 0xffff888000000000UL
#define NONCANON 0x8000000000000000UL
#define UNMAPPED 0x100000000000UL

static int failures, checks;

#define FAIL(...) do { failures++; printf("mmstress: FAIL line %d: ", __LINE__); \
                       printf(__VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

/* a raw syscall's result as -errno or the value */
static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
    long r = syscall(nr, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
}

static void expect(int line, const char *what, long got, long want1, long want2)
{
    checks++;
    if (got != want1 && got != want2) {
        failures++;
        printf("mmstress: FAIL line %d: %s = %ld (%s), want %ld%s\n", line, what, got,
               got < 0 && got > -4096 ? strerror((int)-got) : "a value", want1,
               want2 != want1 ? " or another" : "");
        fflush(stdout);
    }
}

#define EXPECT(call, want) expect(__LINE__, #call, (call), (want), (want))
#define EXPECT2(call, w1, w2) expect(__LINE__, #call, (call), (w1), (w2))

#define MMAP(a, l, p, f, fd, o) raw(SYS_mmap, (long)(a), (long)(l), p, f, fd, (long)(o))
#define MUNMAP(a, l) raw(SYS_munmap, (long)(a), (long)(l), 0, 0, 0, 0)
#define MPROTECT(a, l, p) raw(SYS_mprotect, (long)(a), (long)(l), p, 0, 0, 0)
#define MREMAP(a, o, n, f, na) raw(SYS_mremap, (long)(a), (long)(o), (long)(n), f, (long)(na), 0)
#define MADVISE(a, l, adv) raw(SYS_madvise, (long)(a), (long)(l), adv, 0, 0, 0)
#define MINCORE(a, l, v) raw(SYS_mincore, (long)(a), (long)(l), (long)(v), 0, 0, 0)
#define MSYNC(a, l, f) raw(SYS_msync, (long)(a), (long)(l), f, 0, 0, 0)
#define BRK(a) raw(SYS_brk, (long)(a), 0, 0, 0, 0, 0)
#define MEMFD(n, f) raw(SYS_memfd_create, (long)(n), f, 0, 0, 0, 0)

/* ---------------------------------------------------------------- */
/* page contents: a tag per page, written at both ends and the middle */

static void put_tag(char *page, uint64_t tag)
{
    memcpy(page, &tag, 8);
    memcpy(page + PG / 2, &tag, 8);
    memcpy(page + PG - 8, &tag, 8);
}

static uint64_t get_tag(const char *page)
{
    uint64_t a, b, c;
    memcpy(&a, page, 8);
    memcpy(&b, page + PG / 2, 8);
    memcpy(&c, page + PG - 8, 8);
    return a == b && b == c ? a : 0xbadbadbadbadUL;
}

/* ---------------------------------------------------------------- */
/* hostile                                                          */

static int hostile(void)
{
    char *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *none = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char vec[8];
    if (s == MAP_FAILED || none == MAP_FAILED) {
        FAIL("mmap: %s", strerror(errno));
        return 1;
    }
    for (int i = 0; i < 4; i++)
        put_tag(s + i * PG, 0x5e5e0000 + i);
    long bad[] = {0x10, (long)UNMAPPED, (long)none, (long)KERNEL_VA, (long)NONCANON};
    long lens[] = {0, 1, PG - 1, 1L << 47, 1L << 62, -1, -(long)PG, (long)KERNEL_VA};
    int nb = sizeof bad / sizeof bad[0], nl = sizeof lens / sizeof lens[0];
    int pipefd[2];
    if (pipe(pipefd)) {
        FAIL("pipe: %s", strerror(errno));
        return 1;
    }

    /* mmap */
    long anon = MAP_PRIVATE | MAP_ANONYMOUS;
    EXPECT(MMAP(0, 0, PROT_READ, anon, -1, 0), -EINVAL);
    EXPECT(MMAP(0, -1, PROT_READ, anon, -1, 0), -ENOMEM);
    EXPECT(MMAP(0, -(long)PG, PROT_READ, anon, -1, 0), -ENOMEM);
    EXPECT(MMAP(0, 1L << 47, PROT_READ, anon, -1, 0), -ENOMEM);
    EXPECT(MMAP(0, PG, PROT_READ, MAP_ANONYMOUS, -1, 0), -EINVAL);
    EXPECT(MMAP(0, PG, PROT_READ, anon, -1, 1), -EINVAL);
    EXPECT(MMAP(KERNEL_VA, PG, PROT_READ, anon | MAP_FIXED, -1, 0), -ENOMEM);
    EXPECT(MMAP(NONCANON, PG, PROT_READ, anon | MAP_FIXED, -1, 0), -ENOMEM);
    EXPECT(MMAP(0x7ffffffff000UL - PG, 2 * PG, PROT_READ, anon | MAP_FIXED, -1, 0), -ENOMEM);
    EXPECT(MMAP(s + 1, PG, PROT_READ, anon | MAP_FIXED, -1, 0), -EINVAL);
    EXPECT(MMAP(s, PG, PROT_READ, anon | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
    EXPECT(MMAP(0, PG, PROT_READ, MAP_PRIVATE, -1, 0), -EBADF);
    EXPECT(MMAP(0, PG, PROT_READ, MAP_PRIVATE, 4000, 0), -EBADF);
    EXPECT(MMAP(0, PG, PROT_READ, MAP_PRIVATE, pipefd[0], 0), -ENODEV);
    EXPECT(MMAP(0, PG, PROT_READ, MAP_PRIVATE, pipefd[1], 0), -EACCES);
    /* below vm.mmap_min_addr: EPERM, or mapped for a process with CAP_SYS_RAWIO (Linux's root) */
    long low = MMAP(0x1000, PG, PROT_READ, anon | MAP_FIXED, -1, 0);
    EXPECT2(low, -EPERM, 0x1000);
    if (low == 0x1000)
        munmap((void *)low, PG);
    /* munmap */
    EXPECT(MUNMAP(s + 1, PG), -EINVAL);
    EXPECT(MUNMAP(s, 0), -EINVAL);
    EXPECT(MUNMAP(s, -(long)PG), -EINVAL);
    EXPECT(MUNMAP(KERNEL_VA, PG), -EINVAL);
    EXPECT(MUNMAP(NONCANON, PG), -EINVAL);
    /* mprotect */
    EXPECT(MPROTECT(s + 1, PG, PROT_READ), -EINVAL);
    EXPECT(MPROTECT(s, PG, 0x100), -EINVAL);
    EXPECT(MPROTECT(s, -(long)PG, PROT_READ), -ENOMEM);
    EXPECT(MPROTECT(KERNEL_VA, PG, PROT_READ), -ENOMEM);
    EXPECT(MPROTECT(UNMAPPED, PG, PROT_READ), -ENOMEM);
    EXPECT(MPROTECT(s, 0, PROT_READ), 0);
    /* madvise */
    EXPECT(MADVISE(s, PG, 12345), -EINVAL);
    EXPECT(MADVISE(s + 1, PG, MADV_DONTNEED), -EINVAL);
    EXPECT(MADVISE(s, -1, MADV_DONTNEED), -EINVAL);
    EXPECT(MADVISE(KERNEL_VA, PG, MADV_DONTNEED), -ENOMEM);
    EXPECT(MADVISE(UNMAPPED, PG, MADV_WILLNEED), -ENOMEM);
    /* mincore */
    for (int i = 0; i < nb; i++)
        EXPECT(MINCORE(s, PG, bad[i]), -EFAULT);
    EXPECT(MINCORE(s + 1, PG, vec), -EINVAL);
    EXPECT(MINCORE(KERNEL_VA, PG, vec), -ENOMEM);
    EXPECT(MINCORE(UNMAPPED, PG, vec), -ENOMEM);
    EXPECT(MINCORE(s, -(long)PG, vec), -ENOMEM);
    /* msync */
    EXPECT(MSYNC(s, PG, 0x100), -EINVAL);
    EXPECT(MSYNC(s + 1, PG, MS_SYNC), -EINVAL);
    EXPECT(MSYNC(s, PG, MS_SYNC | MS_ASYNC), -EINVAL);
    EXPECT(MSYNC(KERNEL_VA, PG, MS_SYNC), -ENOMEM);
    EXPECT(MSYNC(UNMAPPED, PG, MS_SYNC), -ENOMEM);
    EXPECT(MSYNC(s, -(long)PG, MS_SYNC), -ENOMEM);
    /* mremap */
    EXPECT(MREMAP(s, PG, 2 * PG, 0x80, 0), -EINVAL);
    EXPECT(MREMAP(s + 1, PG, 2 * PG, MREMAP_MAYMOVE, 0), -EINVAL);
    EXPECT(MREMAP(s, PG, 0, MREMAP_MAYMOVE, 0), -EINVAL);
    EXPECT(MREMAP(UNMAPPED, PG, 2 * PG, MREMAP_MAYMOVE, 0), -EFAULT);
    EXPECT(MREMAP(KERNEL_VA, PG, 2 * PG, MREMAP_MAYMOVE, 0), -EFAULT);
    EXPECT(MREMAP(s, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, KERNEL_VA), -EINVAL);
    EXPECT(MREMAP(s, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, s + 1), -EINVAL);
    EXPECT(MREMAP(s, PG, PG, MREMAP_FIXED, UNMAPPED), -EINVAL);
    EXPECT(MREMAP(s, PG, 2 * PG, MREMAP_DONTUNMAP | MREMAP_MAYMOVE, 0), -EINVAL);
    EXPECT(MREMAP(s, 64 * PG, 128 * PG, MREMAP_MAYMOVE, 0), -EFAULT);
    /* memfd_create */
    for (int i = 0; i < nb; i++)
        if (bad[i] != (long)none)         /* PROT_NONE: EFAULT too, but not a name */
            EXPECT(MEMFD(bad[i], 0), -EFAULT);
    EXPECT(MEMFD("x", 0x100), -EINVAL);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    EXPECT(MEMFD(longname, 0), -EINVAL);
    /* brk: a break that cannot be had leaves it where it is */
    long cur = BRK(0);
    EXPECT(BRK(KERNEL_VA), cur);
    EXPECT(BRK(NONCANON), cur);
    EXPECT(BRK(0x1000), cur);
    /* every length with every bad address: no crash, nothing mapped */
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nl; j++) {
            long r = MMAP(bad[i], lens[j], PROT_READ, anon | MAP_FIXED_NOREPLACE, -1, 0);
            if (r > 0 && r != bad[i])
                FAIL("mmap(%#lx, %#lx) NOREPLACE gave %#lx", bad[i], lens[j], r);
            if (r > 0)
                munmap((void *)r, lens[j]);
            MADVISE(bad[i], lens[j], MADV_WILLNEED);      /* (DONTNEED would be obeyed) */
            MINCORE(bad[i], lens[j], vec);
            MSYNC(bad[i], lens[j], MS_SYNC);
            MREMAP(bad[i], lens[j], lens[j], MREMAP_MAYMOVE, 0);
        }
    /* the sentinel is as it was */
    for (int i = 0; i < 4; i++)
        if (get_tag(s + i * PG) != 0x5e5e0000UL + i)
            FAIL("the sentinel's page %d changed", i);
    s[0] = s[0];                        /* still writable */
    close(pipefd[0]);
    close(pipefd[1]);
    munmap(s, 4 * PG);
    munmap(none, PG);
    printf("mmstress hostile: %s (%d checks, %d failed)\n", failures ? "FAILED" : "OK", checks, failures);
    return failures != 0;
}

/* ---------------------------------------------------------------- */
/* swap                                                             */

static int check_pages(const char *what, char *p, size_t n, uint64_t seed, size_t from)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t want = seed ? seed + from + i : 0;
        uint64_t got = get_tag(p + i * PG);
        if (got != want) {
            if (bad < 5)
                FAIL("%s: page %zu has %#lx, want %#lx", what, i, (unsigned long)got,
                     (unsigned long)want);
            bad++;
        }
    }
    return bad;
}

static int swap_mode(long mb)
{
    size_t n = (size_t)mb << 8;                         /* pages */
    size_t len = n * PG;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        FAIL("mmap %ld MiB: %s", mb, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        put_tag(p + i * PG, 1000 + i);
    pid_t pid = fork();
    if (pid < 0) {
        FAIL("fork: %s", strerror(errno));
        return 1;
    }
    int me = pid == 0;
    /* each moves its copy (shared copy-on-write, partly on swap) */
    char *q = mremap(p, len, len + 64 * PG, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        FAIL("%s: mremap: %s", me ? "child" : "parent", strerror(errno));
        _exit(1);
    }
    check_pages(me ? "child after the move" : "parent after the move", q, n, 1000, 0);
    check_pages("the grown tail", q + len, 64, 0, 0);
    /* each writes a part of its own, drops another part */
    uint64_t mine = me ? 500000 : 700000;
    for (size_t i = 0; i < n / 4; i++)
        put_tag(q + i * PG, mine + i);
    if (madvise(q + n / 2 * PG, 16 * PG, MADV_DONTNEED))
        FAIL("madvise: %s", strerror(errno));
    /* a second move, to a fixed place: over another mapping, which goes */
    char *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dst == MAP_FAILED) {
        FAIL("mmap the destination: %s", strerror(errno));
        _exit(1);
    }
    for (size_t i = 0; i < n; i += 64)
        put_tag(dst + i * PG, 99);
    char *r = mremap(q, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    if (r != dst) {
        FAIL("mremap fixed: %s", strerror(errno));
        _exit(1);
    }
    munmap(q + len, 64 * PG);
    check_pages("own part", r, n / 4, mine, 0);
    check_pages("shared part", r + n / 4 * PG, n / 2 - n / 4, 1000, n / 4);
    check_pages("dropped part", r + n / 2 * PG, 16, 0, 0);
    check_pages("rest", r + (n / 2 + 16) * PG, n - n / 2 - 16, 1000, n / 2 + 16);
    munmap(r, len);
    if (me)
        _exit(failures != 0);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
        FAIL("the child: status %#x", st);
    }
    printf("mmstress swap: %s (%ld MiB, moved twice in two processes)\n",
           failures ? "FAILED" : "OK", mb);
    return failures != 0;
}

/* ---------------------------------------------------------------- */
/* random                                                           */

#define NREG 12
#define MAXPG 64

struct region {
    char *p;
    size_t n;                           /* pages */
    int shared, file, prot;
    uint64_t tag[MAXPG * 2];            /* per page; 0: zeros */
};

static struct region reg[NREG];
static uint64_t rng;
static uint64_t next_tag = 1;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void check_region(struct region *g, const char *when)
{
    if (!g->p || !(g->prot & PROT_READ))
        return;
    for (size_t i = 0; i < g->n; i++) {
        uint64_t got = get_tag(g->p + i * PG);
        if (got != g->tag[i]) {
            FAIL("%s: region %p page %zu: %#lx, want %#lx", when, g->p, i, (unsigned long)got,
                 (unsigned long)g->tag[i]);
            return;
        }
    }
}

static void check_all_regions(const char *when)
{
    for (int i = 0; i < NREG; i++)
        check_region(&reg[i], when);
}

static void write_pages(struct region *g, size_t from, size_t n)
{
    if (!(g->prot & PROT_WRITE))
        return;
    for (size_t i = from; i < from + n && i < g->n; i++) {
        g->tag[i] = next_tag++;
        put_tag(g->p + i * PG, g->tag[i]);
    }
}

static int random_mode(long ops, long seed)
{
    rng = (uint64_t)seed * 0x9e3779b97f4a7c15ULL + 1;
    printf("mmstress random: %ld operations, seed %ld\n", ops, seed);    /* stdout's buffer: malloc'd before brk moves */
    int fd = -1;
    char *dir = getenv("MMSTRESS_DIR");
    char fpath[256];
    snprintf(fpath, sizeof fpath, "%s/mmstress.%d", dir ? dir : "/tmp", getpid());
    fd = open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        fd = memfd_create("mmstress", 0);
    } else {
        unlink(fpath);
    }
    if (fd < 0 || ftruncate(fd, MAXPG * 2 * PG)) {
        FAIL("no file to map: %s", strerror(errno));
        return 1;
    }
    uint64_t ftag[MAXPG * 2];
    memset(ftag, 0, sizeof ftag);       /* the file's pages as the shared mappings see them */
    long brk0 = BRK(0), brk_pages = 0;
    for (long op = 0; op < ops; op++) {
        struct region *g = &reg[rnd() % NREG];
        int what = rnd() % 11;
        if (!g->p && what != 10)
            what = 0;
        switch (what) {
        case 0: {                       /* map */
            if (g->p)
                break;
            size_t n = 1 + rnd() % MAXPG;
            int kind = rnd() % 4;
            g->shared = kind == 1;
            g->file = kind == 2;
            g->prot = PROT_READ | PROT_WRITE;
            if (g->file) {
                n = n > MAXPG ? MAXPG : n;
                g->p = mmap(NULL, n * PG, g->prot, MAP_SHARED, fd, 0);
            } else {
                g->p = mmap(NULL, n * PG, g->prot,
                            (g->shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
            }
            if (g->p == MAP_FAILED) {
                FAIL("mmap: %s", strerror(errno));
                g->p = NULL;
                break;
            }
            g->n = n;
            for (size_t i = 0; i < n; i++)
                g->tag[i] = g->file ? ftag[i] : 0;
            if (!g->file)
                write_pages(g, 0, n);
            break;
        }
        case 1:                         /* write some pages */
            if (!g->file) {
                size_t from = rnd() % g->n;
                write_pages(g, from, 1 + rnd() % 8);
            }
            break;
        case 2:                         /* unmap all */
            check_region(g, "before munmap");
            munmap(g->p, g->n * PG);
            g->p = NULL;
            break;
        case 3: {                       /* unmap the tail */
            if (g->n < 2)
                break;
            size_t keep = 1 + rnd() % (g->n - 1);
            if (munmap(g->p + keep * PG, (g->n - keep) * PG))
                FAIL("munmap tail: %s", strerror(errno));
            g->n = keep;
            break;
        }
        case 4:                         /* read-only and back */
            if (mprotect(g->p, g->n * PG, PROT_READ))
                FAIL("mprotect: %s", strerror(errno));
            g->prot = PROT_READ;
            check_region(g, "read-only");
            if (mprotect(g->p, g->n * PG, PROT_READ | PROT_WRITE))
                FAIL("mprotect back: %s", strerror(errno));
            g->prot = PROT_READ | PROT_WRITE;
            break;
        case 5: {                       /* mremap: grow, shrink or move */
            if (g->file || g->shared)   /* (shared memory has its size: SIGBUS past it) */
                break;
            size_t n = 1 + rnd() % (MAXPG * 2);
            char *q = mremap(g->p, g->n * PG, n * PG, MREMAP_MAYMOVE);
            if (q == MAP_FAILED) {
                FAIL("mremap %zu -> %zu pages: %s", g->n, n, strerror(errno));
                break;
            }
            for (size_t i = g->n; i < n; i++)
                g->tag[i] = 0;
            g->p = q;
            g->n = n;
            check_region(g, "after mremap");
            break;
        }
        case 6:                         /* move with DONTUNMAP: the old range empties */
            if (!g->shared && !g->file) {
                char *q = mremap(g->p, g->n * PG, g->n * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
                if (q == MAP_FAILED) {
                    if (errno != EINVAL)        /* a kernel before 5.7 */
                        FAIL("mremap DONTUNMAP: %s", strerror(errno));
                    break;
                }
                struct region old = *g;
                g->p = q;
                check_region(g, "after DONTUNMAP");
                for (size_t i = 0; i < old.n; i++)
                    if (get_tag(old.p + i * PG) != 0)
                        FAIL("DONTUNMAP left data at page %zu", i);
                munmap(old.p, old.n * PG);
            }
            break;
        case 7: {                       /* madvise DONTNEED part */
            size_t from = rnd() % g->n, n = 1 + rnd() % 4;
            if (from + n > g->n)
                n = g->n - from;
            if (madvise(g->p + from * PG, n * PG, MADV_DONTNEED))
                FAIL("madvise: %s", strerror(errno));
            if (!g->shared && !g->file)
                for (size_t i = from; i < from + n; i++)
                    g->tag[i] = 0;
            break;
        }
        case 8: {                       /* a child checks everything, changes its own copy */
            pid_t pid = fork();
            if (pid == 0) {
                check_all_regions("in a child");
                for (int i = 0; i < NREG; i++)
                    if (reg[i].p && !reg[i].shared && !reg[i].file)
                        write_pages(&reg[i], 0, reg[i].n);
                check_all_regions("in a child, after its writes");
                _exit(failures != 0);
            }
            int st;
            if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
                FAIL("a checking child failed");
            break;
        }
        case 9:                         /* the file: write through one mapping */
            if (g->file) {
                size_t i = rnd() % g->n;
                ftag[i] = next_tag++;
                put_tag(g->p + i * PG, ftag[i]);
                for (int j = 0; j < NREG; j++)
                    if (reg[j].p && reg[j].file && i < reg[j].n)
                        reg[j].tag[i] = ftag[i];
            }
            break;
        case 10: {                      /* brk up or down */
            long want = brk_pages + (long)(rnd() % 9) - 4;
            if (want < 0)
                want = 0;
            long got = BRK(brk0 + want * (long)PG);
            if (got != brk0 + want * (long)PG)
                FAIL("brk(%ld pages): %#lx", want, got);
            else
                brk_pages = want;
            break;
        }
        }
        if (op % 64 == 63)
            check_all_regions("periodic");
    }
    check_all_regions("at the end");
    for (int i = 0; i < NREG; i++)
        if (reg[i].p)
            munmap(reg[i].p, reg[i].n * PG);
    BRK(brk0);
    close(fd);
    printf("mmstress random: %s (%ld operations, seed %ld)\n", failures ? "FAILED" : "OK", ops, seed);
    return failures != 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "hostile"))
        return hostile();
    if (argc >= 3 && !strcmp(argv[1], "swap"))
        return swap_mode(atol(argv[2]));
    if (argc >= 4 && !strcmp(argv[1], "random"))
        return random_mode(atol(argv[2]), atol(argv[3]));
    fprintf(stderr, "usage: mmstress hostile | swap MB | random OPS SEED\n");
    return 2;
}
