/*
 * hog: eats memory until killed (OOM-killer and reclaim tests).
 *
 *   hog [STEP_MB [MAX_MB]]
 *
 * Every step mallocs STEP_MB MiB (default 1) and writes one byte in each of
 * its pages, then prints "hog PID: N MiB". At MAX_MB (default: no limit), or
 * when malloc fails ("hog PID: malloc failed at N MiB"), it stops and waits
 * in pause() until a signal kills it, so what it holds stays held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long step = argc > 1 ? atol(argv[1]) : 1;
    long max = argc > 2 ? atol(argv[2]) : -1;
    long page = sysconf(_SC_PAGESIZE);
    int pid = getpid();
    long total = 0;
    if (step <= 0) {
        fprintf(stderr, "usage: hog [STEP_MB [MAX_MB]]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("hog %d: start, %ld MiB steps\n", pid, step);
    while (max < 0 || total + step <= max) {
        size_t n = (size_t)step << 20;
        volatile char *p = malloc(n);
        if (!p) {
            printf("hog %d: malloc failed at %ld MiB\n", pid, total);
            break;
        }
        for (size_t off = 0; off < n; off += page)
            p[off] = 1;
        total += step;
        printf("hog %d: %ld MiB\n", pid, total);
    }
    printf("hog %d: holding %ld MiB until killed\n", pid, total);
    for (;;)
        pause();
}
