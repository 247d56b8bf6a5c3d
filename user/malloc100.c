/*
 * malloc100: a process with a known footprint, to read /proc/PID/status
 * (VmSize, VmRSS...) while it runs.
 *
 *   malloc100 [TOTAL_MB [TOUCH_MB]]
 *
 * mallocs TOTAL_MB MiB (default 100) and writes every page of the first
 * TOUCH_MB MiB (default 10), then prints two lines:
 *     pid PID
 *     ready
 * and waits: it exits 0 as soon as a byte arrives on standard input, and
 * dies by the first signal sent to it (no handlers). If standard input is
 * at end of file or unreadable, it waits in pause() for that signal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 100;
    long touch = argc > 2 ? atol(argv[2]) : 10;
    long page = sysconf(_SC_PAGESIZE);
    if (total <= 0 || touch < 0 || touch > total) {
        fprintf(stderr, "usage: malloc100 [TOTAL_MB [TOUCH_MB]]\n");
        return 2;
    }
    volatile char *p = malloc((size_t)total << 20);
    if (!p) {
        printf("malloc100: malloc(%ld MiB) failed\n", total);
        return 1;
    }
    for (size_t off = 0; off < (size_t)touch << 20; off += page)
        p[off] = 1;
    printf("pid %d\nready\n", getpid());
    fflush(stdout);
    char c;
    ssize_t r = read(0, &c, 1);
    if (r > 0)
        return 0;
    for (;;)
        pause();
}
