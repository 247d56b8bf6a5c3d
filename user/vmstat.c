/*
 * vmstat: procps-ng's default report, `vmstat [delay [count]]`, for the
 * initramfs root (Debian's static BusyBox has no vmstat applet and procps is
 * dynamically linked). Installed as /usr/bin/vmstat.
 *
 * The columns and their arithmetic are procps's: the first line averages
 * over the time since boot, every later one over the last `delay` seconds;
 * the time base is the sum of /proc/stat's cpu ticks (USER_HZ, 100 a
 * second), rates are rounded as procps rounds them.
 *   r b            procs_running, procs_blocked (/proc/stat, now)
 *   swpd free buff cache   SwapTotal-SwapFree, MemFree, Buffers,
 *                  Cached+SReclaimable (/proc/meminfo, KiB, now)
 *   si so          pswpin, pswpout pages -> KiB/s (/proc/vmstat)
 *   bi bo          pgpgin, pgpgout (KiB) per second (/proc/vmstat)
 *   in cs          intr (total), ctxt per second (/proc/stat)
 *   us sy id wa st per cent of the cpu ticks (us = user+nice,
 *                  sy = system+irq+softirq)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HZ 100                          /* USER_HZ: /proc/stat's tick */

struct sample {
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    unsigned long long intr, ctxt, running, blocked;
    unsigned long long pswpin, pswpout, pgpgin, pgpgout;
    unsigned long swpd, free, buff, cache;
};

static FILE *open_proc(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void read_stat(struct sample *s)
{
    char line[4096];
    FILE *f = open_proc("/proc/stat");
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "cpu ", 4))
            sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &s->user, &s->nice,
                   &s->sys, &s->idle, &s->iowait, &s->irq, &s->softirq, &s->steal);
        else
            (void)(sscanf(line, "intr %llu", &s->intr) || sscanf(line, "ctxt %llu", &s->ctxt) ||
                   sscanf(line, "procs_running %llu", &s->running) ||
                   sscanf(line, "procs_blocked %llu", &s->blocked));
    }
    fclose(f);
}

static void read_meminfo(struct sample *s)
{
    char name[64];
    unsigned long v, swap_total = 0, swap_free = 0, cached = 0, sreclaimable = 0;
    FILE *f = open_proc("/proc/meminfo");
    while (fscanf(f, "%63s %lu%*[^\n]", name, &v) == 2) {
        if (!strcmp(name, "MemFree:"))
            s->free = v;
        else if (!strcmp(name, "Buffers:"))
            s->buff = v;
        else if (!strcmp(name, "Cached:"))
            cached = v;
        else if (!strcmp(name, "SReclaimable:"))
            sreclaimable = v;
        else if (!strcmp(name, "SwapTotal:"))
            swap_total = v;
        else if (!strcmp(name, "SwapFree:"))
            swap_free = v;
    }
    fclose(f);
    s->swpd = swap_total - swap_free;
    s->cache = cached + sreclaimable;
}

static void read_vmstat(struct sample *s)
{
    char name[64];
    unsigned long long v;
    FILE *f = open_proc("/proc/vmstat");
    while (fscanf(f, "%63s %llu", name, &v) == 2) {
        if (!strcmp(name, "pswpin"))
            s->pswpin = v;
        else if (!strcmp(name, "pswpout"))
            s->pswpout = v;
        else if (!strcmp(name, "pgpgin"))
            s->pgpgin = v;
        else if (!strcmp(name, "pgpgout"))
            s->pgpgout = v;
    }
    fclose(f);
}

static void take(struct sample *s)
{
    memset(s, 0, sizeof(*s));
    read_stat(s);
    read_meminfo(s);
    read_vmstat(s);
}

/* One line: `now` against `then` (all zero for the line since boot). */
static void report(const struct sample *now, const struct sample *then, long kb_per_page)
{
    unsigned long long us = now->user + now->nice - then->user - then->nice;
    unsigned long long sy = now->sys + now->irq + now->softirq
        - then->sys - then->irq - then->softirq;
    unsigned long long id = now->idle - then->idle;
    unsigned long long wa = now->iowait - then->iowait;
    unsigned long long st = now->steal - then->steal;
    unsigned long long div = us + sy + id + wa + st;
    unsigned long long half;
    if (!div)
        div = 1;
    half = div / 2;
#define RATE(x) (unsigned)(((x) * HZ + half) / div)
#define PCT(x) (unsigned)((100 * (x) + half) / div)
    printf("%2llu %2llu %6lu %6lu %6lu %6lu %4u %4u %5u %5u %4u %4u %2u %2u %2u %2u %2u\n",
           now->running, now->blocked, now->swpd, now->free, now->buff, now->cache,
           RATE((now->pswpin - then->pswpin) * kb_per_page),
           RATE((now->pswpout - then->pswpout) * kb_per_page),
           RATE(now->pgpgin - then->pgpgin), RATE(now->pgpgout - then->pgpgout),
           RATE(now->intr - then->intr), RATE(now->ctxt - then->ctxt),
           PCT(us), PCT(sy), PCT(id), PCT(wa), PCT(st));
}

static long number(const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "vmstat: not a number: %s\nusage: vmstat [delay [count]]\n", arg);
        exit(1);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct sample prev, cur;
    static const struct sample boot;
    long kb_per_page = sysconf(_SC_PAGESIZE) / 1024;
    long delay = 0, count = 1;
    if (argc > 3) {
        fprintf(stderr, "usage: vmstat [delay [count]]\n");
        return 1;
    }
    if (argc > 1) {
        delay = number(argv[1]);
        count = argc > 2 ? number(argv[2]) : -1;          /* a delay alone: forever */
        if (!delay) {
            fprintf(stderr, "vmstat: delay must be positive integer\n");
            return 1;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----\n");
    printf(" r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st\n");
    take(&prev);
    report(&prev, &boot, kb_per_page);
    for (long i = 1; count < 0 || i < count; i++) {
        sleep(delay);
        take(&cur);
        report(&cur, &prev, kb_per_page);
        prev = cur;
    }
    return 0;
}
