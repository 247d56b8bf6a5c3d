/*
 * pressure: page cache and anonymous memory, then memory pressure; prints
 * what reclaim took from each (the vm.swappiness test, issue 15).
 *
 *   pressure FILE HOLD_MB PRESS_MB
 *
 * Reads FILE twice (the second read finds its pages in the page cache and
 * marks them accessed), then touches HOLD_MB MiB of anonymous memory and
 * keeps it. Then it samples /proc/vmstat, touches PRESS_MB MiB more, which
 * makes the kernel reclaim, samples /proc/vmstat again and prints the
 * deltas of the reclaim counters on one line:
 *   pressure: pswpout=N pgsteal_anon=N pgsteal_file=N pgscan_anon=N pgscan_file=N
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[] = {
    "pswpout", "pgsteal_anon", "pgsteal_file", "pgscan_anon", "pgscan_file",
};
#define NR_NAMES (sizeof(names) / sizeof(names[0]))

static void sample(unsigned long *out)
{
    char name[64];
    unsigned long v;
    FILE *f = fopen("/proc/vmstat", "r");
    if (!f) {
        perror("pressure: /proc/vmstat");
        exit(1);
    }
    memset(out, 0, NR_NAMES * sizeof(*out));
    while (fscanf(f, "%63s %lu", name, &v) == 2)
        for (size_t i = 0; i < NR_NAMES; i++)
            if (!strcmp(name, names[i]))
                out[i] = v;
    fclose(f);
}

static long read_file(const char *path)
{
    static char buf[65536];
    long total = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += n;
    close(fd);
    return total;
}

static void touch(long mb)
{
    size_t n = (size_t)mb << 20;
    volatile char *p = malloc(n);
    if (!p) {
        printf("pressure: malloc of %ld MiB failed\n", mb);
        exit(1);
    }
    for (size_t off = 0; off < n; off += 4096)
        p[off] = 1;
}

int main(int argc, char **argv)
{
    unsigned long before[NR_NAMES], after[NR_NAMES];
    if (argc != 4) {
        fprintf(stderr, "usage: pressure FILE HOLD_MB PRESS_MB\n");
        return 2;
    }
    long size = read_file(argv[1]);
    read_file(argv[1]);
    touch(atol(argv[2]));
    sample(before);
    touch(atol(argv[3]));
    sample(after);
    printf("pressure: file=%ld", size);
    for (size_t i = 0; i < NR_NAMES; i++)
        printf(" %s=%lu", names[i], after[i] - before[i]);
    printf("\n");
    return 0;
}
