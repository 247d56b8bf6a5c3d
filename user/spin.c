/*
 * spin: a CPU-bound loop for scheduler and preemption tests.
 *
 *   spin [-n N] [SECONDS]
 *
 * Counts in a tight loop (no system call inside it) and prints
 * "spin PID: COUNT" every N iterations (default 10,000,000). With SECONDS it
 * reads CLOCK_MONOTONIC at each print and stops once SECONDS have passed,
 * printing "spin PID: done COUNT iterations in S.SSS s"; without it, it
 * spins until killed. Output is line buffered even into a pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long every = 10000000UL;
    double seconds = -1;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-n") == 0) {
        every = strtoul(argv[i + 1], NULL, 0);
        i += 2;
    }
    if (i < argc)
        seconds = atof(argv[i++]);
    if (i < argc || every == 0) {
        fprintf(stderr, "usage: spin [-n ITERATIONS] [SECONDS]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int pid = getpid();
    double t0 = now();
    unsigned long count = 0, next = every;
    for (;;) {
        count++;
        __asm__ volatile("" : "+r"(count));      /* keep the loop a loop */
        if (count == next) {
            next += every;
            printf("spin %d: %lu\n", pid, count);
            if (seconds >= 0) {
                double el = now() - t0;
                if (el >= seconds) {
                    printf("spin %d: done %lu iterations in %.3f s\n", pid, count, el);
                    return 0;
                }
            }
        }
    }
}
