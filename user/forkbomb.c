/*
 * forkbomb: forks until fork fails, and reports why.
 *
 *   forkbomb [-k] [-m MAX] [-p NPROC]
 *
 * The parent forks children one after the other (a linear bomb, so it is
 * the process table and memory that run out, not the parent's patience);
 * each child waits in pause(). When fork fails it prints
 *     forkbomb: fork failed after N children: EAGAIN (errno 11)
 * (EAGAIN is what Linux answers at RLIMIT_NPROC or the pid limit; ENOMEM
 * when memory runs out). Then, by default, it kills (SIGKILL) and reaps every
 * child, prints "forkbomb: reaped N", and exits 0 if the errno was EAGAIN,
 * 1 otherwise. With -k it keeps the children and waits in pause() until a
 * signal kills it (kill the process group: the children share it).
 *
 * -m MAX stops after MAX children (default 100000) and reports
 * "forkbomb: stopped at MAX children" (exit 3 without -k): a guard for
 * running it on a host, where root is not held back by RLIMIT_NPROC.
 * -p NPROC sets RLIMIT_NPROC first (not binding for root on Linux).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int keep = 0;
    long max = 100000, nproc = -1;
    int opt;
    while ((opt = getopt(argc, argv, "km:p:")) != -1) {
        if (opt == 'k')
            keep = 1;
        else if (opt == 'm')
            max = atol(optarg);
        else if (opt == 'p')
            nproc = atol(optarg);
        else {
            fprintf(stderr, "usage: forkbomb [-k] [-m MAX] [-p NPROC]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (nproc >= 0) {
        struct rlimit rl = {nproc, nproc};
        if (setrlimit(RLIMIT_NPROC, &rl) != 0)
            printf("forkbomb: setrlimit(RLIMIT_NPROC, %ld): %s\n", nproc, strerror(errno));
    }
    pid_t *kids = calloc(max > 0 ? max : 1, sizeof *kids);
    if (!kids) {
        printf("forkbomb: no memory for %ld pids\n", max);
        return 1;
    }
    long n = 0;
    int err = 0;
    printf("forkbomb %d: forking\n", getpid());
    while (n < max) {
        pid_t pid = fork();
        if (pid < 0) {
            err = errno;
            break;
        }
        if (pid == 0) {
            for (;;)
                pause();
        }
        kids[n++] = pid;
    }
    if (err) {
        const char *name = err == EAGAIN ? "EAGAIN" : err == ENOMEM ? "ENOMEM" : "other";
        printf("forkbomb: fork failed after %ld children: %s (errno %d: %s)\n",
               n, name, err, strerror(err));
    } else {
        printf("forkbomb: stopped at %ld children\n", n);
    }
    if (keep) {
        printf("forkbomb: keeping %ld children until killed\n", n);
        for (;;)
            pause();
    }
    for (long i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    long reaped = 0;
    for (long i = 0; i < n; i++)
        if (waitpid(kids[i], NULL, 0) == kids[i])
            reaped++;
    printf("forkbomb: reaped %ld\n", reaped);
    if (!err)
        return 3;
    return err == EAGAIN ? 0 : 1;
}
