/*
 * sysbench: the two process-level round trips mmbench does not time, in
 * mmbench's RESULT format so that bench/mmbench.py reads both alike.
 *
 *   sysbench getppid N   N x getppid(): a bare system call's round trip
 *                        (syscall(2) directly, so no libc caching is in it)
 *   sysbench fork N      N x (fork; the child _exit(0)s; waitpid): fork's
 *                        page-table copy of this small program, the child's
 *                        first run, exit's teardown and the reap
 *
 * Each prints one line:
 *   RESULT name=NAME ops=N seconds=S ops_per_s=R ns_per_op=X arg=N
 * timed with CLOCK_MONOTONIC around the loop only. A Linux program first:
 * it runs unchanged on Linux, for the same figures there.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void result(const char *name, const char *arg, long ops, double s)
{
    printf("RESULT name=%s ops=%ld seconds=%.6f ops_per_s=%.0f ns_per_op=%.1f arg=%s\n",
           name, ops, s, s > 0 ? ops / s : 0.0, ops ? s * 1e9 / ops : 0.0, arg);
    fflush(stdout);
}

static int bench_getppid(const char *arg, long n)
{
    double t = now();
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    result("getppid", arg, n, now() - t);
    return 0;
}

static int bench_fork(const char *arg, long n)
{
    double t = now();
    for (long i = 0; i < n; i++) {
        int status;
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(0);
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "sysbench: child %d: bad wait status %#x\n", pid, status);
            return 1;
        }
    }
    result("fork_exit_wait", arg, n, now() - t);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (argc != 3 || n <= 0) {
        fprintf(stderr, "usage: sysbench getppid|fork N\n");
        return 2;
    }
    if (!strcmp(argv[1], "getppid"))
        return bench_getppid(argv[2], n);
    if (!strcmp(argv[1], "fork"))
        return bench_fork(argv[2], n);
    fprintf(stderr, "sysbench: unknown command %s\n", argv[1]);
    return 2;
}
