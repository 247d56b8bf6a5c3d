/*
 * server: the busy server of the OOM and reclaim scenarios (issue 15).
 *
 *   server [-w WORKERS] [-m ARENA_MB] [-k OBJ_KB] [-n REQS] [-l LOG]
 *
 * A pre-forking key-value server in the style of a cache daemon. The master
 * mallocs an ARENA_MB arena (default 100 MiB) at start-up and forks WORKERS
 * workers (default 2), which inherit it copy-on-write. Nothing of the arena
 * is touched by the malloc: memory is only used (RSS grows) as requests
 * store objects, so /proc/PID/status shows VmSize near 100 MiB and VmRSS
 * small until the server has been busy.
 *
 * Requests. The master generates them and sends them to each worker over
 * that worker's request pipe (one 16-byte record each): a batch of REQS
 * (default 16) PUT requests per worker at start-up and another batch each
 * time it gets SIGUSR1 (`kill -USR1 PID`). A PUT stores one object of
 * OBJ_KB (default 64 KiB) in the next free slot of the worker's copy of the
 * arena: a header (magic, key, checksum) and a payload from a PRNG seeded by
 * the key, so each request touches only the pages of its object. Every
 * batch ends with a CHECK request: the worker recomputes the FNV-1a
 * checksum of every object it holds and compares it with the header and
 * with the value it recorded when storing it, then answers the master over
 * its reply pipe.
 *
 * Output, one write() per line (to LOG, opened O_APPEND, or stdout):
 *   server PID: arena 100 MiB at 0x..., 2 workers, 64 KiB objects
 *   worker PID: batch B: N objects, N KiB, checksums ok N          (per check)
 *   worker PID: batch B: checksum BAD key K                         (a bad one)
 *   server PID: batch B: W workers, N objects, checksums ok N [bad M]
 *   server PID: worker PID killed by signal S, starting another
 *   server PID: checksums ok N      (on SIGTERM/SIGINT: the last check's total)
 *   server PID: checksums BAD M     (instead, when any failed in any batch)
 * At SIGTERM or SIGINT the master runs a last CHECK in every worker, prints
 * the total and exits 0 if every checksum held (1 otherwise). A worker that
 * dies (the OOM killer's SIGKILL) is reported and replaced by a fresh one
 * (empty: its objects died with it), as a pre-forking server's master does.
 *
 * Set the whole server's oom_score_adj from outside with one write per pid
 * (`echo -1000 > /proc/PID/oom_score_adj` for the master and each worker;
 * workers forked later inherit the master's value, as on Linux).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define OBJ_MAGIC 0x6b70792d6f626a31ULL    /* "kpy-obj1" */

enum { REQ_PUT = 1, REQ_CHECK = 2, REQ_QUIT = 3 };

struct request {
    uint32_t op;
    uint32_t batch;
    uint64_t key;
};

struct reply {
    int32_t pid;
    uint32_t batch;
    uint64_t objects;
    uint64_t ok;
    uint64_t bad;
};

struct object_header {
    uint64_t magic;
    uint64_t key;
    uint64_t csum;
    uint64_t len;
};

struct worker {
    pid_t pid;
    int req_fd;     /* master writes requests */
    int rep_fd;     /* master reads replies */
    uint64_t next_key;
};

static int log_fd = 1;
static char *arena;
static size_t arena_size, obj_size;
static int nworkers = 2, reqs = 16;
static struct worker workers[MAX_WORKERS];
static uint64_t last_ok;           /* checksums that held in the last batch */
static volatile sig_atomic_t want_batch, want_quit, child_died;

static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(log_fd, buf, n) < 0)
        _exit(3);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= r;
    }
    return 0;
}

/* ---- the worker ---------------------------------------------------------- */

static uint64_t *stored_csum;   /* the checksum recorded at PUT, per slot */
static uint64_t nobjects;

static void put(uint64_t key)
{
    size_t slots = arena_size / obj_size;
    if (nobjects >= slots)
        return;                 /* the arena is full: a real cache would evict */
    char *obj = arena + nobjects * obj_size;
    struct object_header *h = (struct object_header *)obj;
    unsigned char *payload = (unsigned char *)(h + 1);
    size_t len = obj_size - sizeof *h;
    uint64_t s = key * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = xorshift(&s);
        memcpy(payload + i, &v, 8);
    }
    h->magic = OBJ_MAGIC;
    h->key = key;
    h->len = len;
    h->csum = fnv1a(payload, len);
    stored_csum[nobjects++] = h->csum;
}

static void check(uint32_t batch, struct reply *rep)
{
    rep->objects = nobjects;
    rep->ok = rep->bad = 0;
    for (uint64_t i = 0; i < nobjects; i++) {
        struct object_header *h = (struct object_header *)(arena + i * obj_size);
        uint64_t c = fnv1a((unsigned char *)(h + 1), obj_size - sizeof *h);
        if (h->magic == OBJ_MAGIC && h->len == obj_size - sizeof *h &&
            h->csum == c && c == stored_csum[i]) {
            rep->ok++;
        } else {
            rep->bad++;
            say("worker %d: batch %u: checksum BAD slot %llu key %llu", getpid(), batch,
                (unsigned long long)i, (unsigned long long)h->key);
        }
    }
    say("worker %d: batch %u: %llu objects, %llu KiB, checksums ok %llu", getpid(), batch,
        (unsigned long long)nobjects, (unsigned long long)(nobjects * obj_size >> 10),
        (unsigned long long)rep->ok);
}

static void worker_main(int req_fd, int rep_fd)
{
    signal(SIGUSR1, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_IGN);      /* Ctrl-C goes to the master, which stops us */
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    stored_csum = calloc(arena_size / obj_size + 1, sizeof *stored_csum);
    if (!stored_csum)
        _exit(2);
    struct request rq;
    while (read_full(req_fd, &rq, sizeof rq) == 0) {
        if (rq.op == REQ_PUT) {
            put(rq.key);
        } else if (rq.op == REQ_CHECK) {
            struct reply rep = { .pid = getpid(), .batch = rq.batch };
            check(rq.batch, &rep);
            if (write_full(rep_fd, &rep, sizeof rep) < 0)
                _exit(2);
        } else {
            break;
        }
    }
    _exit(0);
}

/* ---- the master ---------------------------------------------------------- */

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        want_batch = 1;
    else if (sig == SIGCHLD)
        child_died = 1;
    else
        want_quit = 1;
}

static int start_worker(int i)
{
    int req[2], rep[2];
    if (pipe(req) < 0 || pipe(rep) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(req[0]); close(req[1]); close(rep[0]); close(rep[1]);
        return -1;
    }
    if (pid == 0) {
        for (int j = 0; j < nworkers; j++) {    /* the other workers' pipes */
            if (j != i && workers[j].pid > 0) {
                close(workers[j].req_fd);
                close(workers[j].rep_fd);
            }
        }
        close(req[1]);
        close(rep[0]);
        worker_main(req[0], rep[1]);
    }
    close(req[0]);
    close(rep[1]);
    workers[i].pid = pid;
    workers[i].req_fd = req[1];
    workers[i].rep_fd = rep[0];
    return 0;
}

static void lost_worker(int i, int status)
{
    struct worker *w = &workers[i];
    close(w->req_fd);
    close(w->rep_fd);
    if (WIFSIGNALED(status))
        say("server %d: worker %d killed by signal %d, starting another", getpid(), w->pid,
            WTERMSIG(status));
    else
        say("server %d: worker %d exited with %d, starting another", getpid(), w->pid,
            WEXITSTATUS(status));
    w->pid = 0;
    if (start_worker(i) < 0)
        say("server %d: fork failed: %s", getpid(), strerror(errno));
}

/* Collect dead workers (SIGCHLD) and start their replacements. */
static void reap_workers(void)
{
    int status;
    pid_t pid;
    child_died = 0;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < nworkers; i++)
            if (workers[i].pid == pid)
                lost_worker(i, status);
    }
}

/* One batch: `puts` PUT requests to every worker, then a CHECK; returns the
 * number of bad checksums (0: all held). */
static uint64_t batch(uint32_t b, int puts)
{
    uint64_t objects = 0, ok = 0, bad = 0;
    int answered = 0;
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        if (w->pid <= 0)
            continue;
        int failed = 0;
        for (int r = 0; r < puts && !failed; r++) {
            struct request rq = { REQ_PUT, b, ((uint64_t)i << 32) | w->next_key++ };
            failed = write_full(w->req_fd, &rq, sizeof rq) < 0;
        }
        struct request ck = { REQ_CHECK, b, 0 };
        struct reply rep;
        if (failed || write_full(w->req_fd, &ck, sizeof ck) < 0 ||
            read_full(w->rep_fd, &rep, sizeof rep) < 0)
            continue;           /* it died under the batch: SIGCHLD replaces it */
        answered++;
        objects += rep.objects;
        ok += rep.ok;
        bad += rep.bad;
    }
    if (bad)
        say("server %d: batch %u: %d workers, %llu objects, checksums ok %llu bad %llu", getpid(),
            b, answered, (unsigned long long)objects, (unsigned long long)ok,
            (unsigned long long)bad);
    else
        say("server %d: batch %u: %d workers, %llu objects, checksums ok %llu", getpid(), b,
            answered, (unsigned long long)objects, (unsigned long long)ok);
    last_ok = ok;
    return bad ? bad : (ok == objects ? 0 : 1);
}

static void usage(void)
{
    fprintf(stderr, "usage: server [-w WORKERS] [-m ARENA_MB] [-k OBJ_KB] [-n REQS] [-l LOG]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long arena_mb = 100, obj_kb = 64;
    const char *log = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "w:m:k:n:l:")) != -1) {
        switch (opt) {
        case 'w': nworkers = atoi(optarg); break;
        case 'm': arena_mb = atol(optarg); break;
        case 'k': obj_kb = atol(optarg); break;
        case 'n': reqs = atoi(optarg); break;
        case 'l': log = optarg; break;
        default: usage();
        }
    }
    if (nworkers < 1 || nworkers > MAX_WORKERS || arena_mb < 1 || obj_kb < 1 ||
        obj_kb * 1024 > arena_mb << 20 || reqs < 0)
        usage();
    if (log) {
        log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log_fd < 0) {
            fprintf(stderr, "server: %s: %s\n", log, strerror(errno));
            return 2;
        }
    }
    arena_size = (size_t)arena_mb << 20;
    obj_size = (size_t)obj_kb << 10;
    arena = malloc(arena_size);
    if (!arena) {
        say("server %d: malloc(%ld MiB) failed", getpid(), arena_mb);
        return 1;
    }
    say("server %d: arena %ld MiB at %p, %d workers, %ld KiB objects", getpid(), arena_mb,
        (void *)arena, nworkers, obj_kb);

    /* Signals arrive only in sigsuspend, so the flags are read race-free. */
    sigset_t block, none;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &none);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);       /* a dead worker's pipe: EPIPE, not death */

    for (int i = 0; i < nworkers; i++) {
        if (start_worker(i) < 0) {
            say("server %d: fork failed: %s", getpid(), strerror(errno));
            return 1;
        }
        say("server %d: worker %d started", getpid(), workers[i].pid);
    }
    uint32_t b = 0;
    uint64_t bad = batch(b++, reqs);
    say("server %d: ready", getpid());
    for (;;) {
        while (!want_batch && !want_quit && !child_died)
            sigsuspend(&none);
        if (child_died)
            reap_workers();
        if (want_batch) {
            want_batch = 0;
            bad += batch(b++, reqs);
        }
        if (want_quit)
            break;
    }
    bad += batch(b, 0);             /* the last check */
    for (int i = 0; i < nworkers; i++) {
        struct request q = { REQ_QUIT, b, 0 };
        if (workers[i].pid > 0)
            write_full(workers[i].req_fd, &q, sizeof q);
    }
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    while (wait(NULL) > 0)
        ;
    if (bad)
        say("server %d: checksums BAD %llu", getpid(), (unsigned long long)bad);
    else
        say("server %d: checksums ok %llu", getpid(), (unsigned long long)last_ok);
    return bad ? 1 : 0;
}
