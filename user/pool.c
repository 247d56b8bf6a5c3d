/*
 * pool: a memory pool for fixed-size request objects against plain malloc,
 * on the same work (issue 15).
 *
 *   pool [-r ROUNDS] [-n REQUESTS] [-k KEEP_PERCENT]
 *
 * The work, a server's: each round REQUESTS requests arrive; each gets a
 * 512-byte request object and a body buffer of 1-16 KiB; then every body
 * is freed and every request object too, except KEEP_PERCENT (default 10%)
 * of them, which stay as long-lived sessions. ROUNDS (default 50) rounds.
 *
 * Run twice, each time in a child of its own (the kernel's per-task
 * counters start at 0 in a new process): once with the request objects
 * from malloc, once from the pool, the bodies from malloc both times. The
 * pool takes 64 KiB chunks with mmap and hands out objects from a free
 * list; freed objects go back on it, and no chunk is ever returned. With
 * malloc the long-lived request objects end up scattered among the bodies,
 * so the heap cannot shrink at the end of a round (a larger VmData, more of
 * it empty); in the pool they sit together in their chunks. The other side,
 * measured: with nothing long-lived left in it, malloc's heap of bodies is
 * trimmed at the end of every round and grown again at the next, so the
 * pool run makes more brk calls (glibc's M_TRIM_THRESHOLD, 128 KiB).
 *
 * Each child prints what the kernel counted for it, from /proc/self/syscalls
 * (brk, mmap, munmap) and /proc/self/status (VmData), and the live bytes:
 *   RESULT mode=malloc brk=N mmap=N munmap=N vmdata_kb=N live_kb=N frag_pct=N
 * frag_pct = 100 - live / VmData-growth, the part of the heap grown that
 * holds nothing live.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define OBJ 512
#define CHUNK (64 << 10)

struct pool {
    void *free;
    size_t chunks;
};

static void *pool_alloc(struct pool *p)
{
    if (!p->free) {
        char *c = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED)
            return NULL;
        p->chunks++;
        for (size_t off = 0; off + OBJ <= CHUNK; off += OBJ) {
            *(void **)(c + off) = p->free;
            p->free = c + off;
        }
    }
    void *o = p->free;
    p->free = *(void **)o;
    return o;
}

static void pool_free(struct pool *p, void *o)
{
    *(void **)o = p->free;
    p->free = o;
}

static long status_kb(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
            v = atol(line + strlen(key) + 1);
    fclose(f);
    return v;
}

static long syscall_count(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, name, n) && l[n] == ' ') {
            long nr, count;
            if (sscanf(l + n, "%ld %ld", &nr, &count) == 2)
                return count;
        }
    }
    return 0;
}

static void run(int use_pool, int rounds, int requests, int keep)
{
    static char text[8192];
    struct pool p = { 0 };
    void **objs = calloc(requests, sizeof *objs), **bodies = calloc(requests, sizeof *bodies);
    void **kept = calloc((size_t)rounds * requests, sizeof *kept);
    long vm0 = status_kb("VmData");
    size_t nkept = 0, live = 0;
    unsigned seed = 12345;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < requests; i++) {
            objs[i] = use_pool ? pool_alloc(&p) : malloc(OBJ);
            size_t len = 1024 + (rand_r(&seed) % 16) * 1024;
            bodies[i] = malloc(len);
            if (!objs[i] || !bodies[i]) {
                printf("pool: out of memory\n");
                exit(1);
            }
            memset(objs[i], r, OBJ);
            memset(bodies[i], i, len);
        }
        for (int i = 0; i < requests; i++) {
            free(bodies[i]);
            if ((int)(rand_r(&seed) % 100) < keep) {
                kept[nkept++] = objs[i];
                live += OBJ;
            } else if (use_pool) {
                pool_free(&p, objs[i]);
            } else {
                free(objs[i]);
            }
        }
    }
    long vm1 = status_kb("VmData");
    FILE *f = fopen("/proc/self/syscalls", "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    long grown = vm1 - vm0;
    printf("RESULT mode=%s brk=%ld mmap=%ld munmap=%ld vmdata_kb=%ld grown_kb=%ld live_kb=%zu "
           "frag_pct=%ld%s\n", use_pool ? "pool" : "malloc", syscall_count(text, "brk"),
           syscall_count(text, "mmap"), syscall_count(text, "munmap"), vm1, grown,
           live >> 10, grown > 0 ? 100 - (long)(live >> 10) * 100 / grown : 0,
           f ? "" : " (no /proc/self/syscalls)");
}

int main(int argc, char **argv)
{
    int rounds = 50, requests = 200, keep = 10, opt;
    while ((opt = getopt(argc, argv, "r:n:k:")) != -1) {
        switch (opt) {
        case 'r': rounds = atoi(optarg); break;
        case 'n': requests = atoi(optarg); break;
        case 'k': keep = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: pool [-r ROUNDS] [-n REQUESTS] [-k KEEP_PERCENT]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int use_pool = 0; use_pool < 2; use_pool++) {
        pid_t pid = fork();
        if (pid == 0) {
            run(use_pool, rounds, requests, keep);
            exit(0);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            return 1;
    }
    return 0;
}
