/*
 * noleak_basic: the leak corpus's program with no leak (memleak, issue 16):
 * malloc, calloc, realloc (growing, shrinking, to and from NULL) and free,
 * small blocks and large ones (glibc mmaps those), all freed; one malloc
 * made with a corrupt frame pointer (memleak's stack walk must stop there,
 * the kernel and the program unharmed). Also the cost benchmark:
 *
 *   noleak_basic [-b N]    with -b, N malloc+free pairs timed, printed as
 *                          RESULT malloc_free_pairs_per_s VALUE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

/* the compiler must not drop an allocation it sees unused */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

NOINLINE void *alloc_with_bad_frame(size_t n)
{
    void *p;
    /* rbp garbage across the call, the stack 16-byte aligned at it */
    __asm__ volatile("push %%rbp\n\tsub $8, %%rsp\n\tmovabs $0xdead0000beef, %%rbp\n\t"
                     "call malloc\n\tadd $8, %%rsp\n\tpop %%rbp"
                     : "=a"(p) : "D"(n)
                     : "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc",
                       "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7");
    return p;
}

NOINLINE void balanced(void)
{
    void *small[32];
    for (int i = 0; i < 32; i++) {
        small[i] = malloc(8 + 16 * i);
        ESCAPE(small[i]);
    }
    for (int i = 31; i >= 0; i--)
        free(small[i]);
    char *z = calloc(100, 10);
    ESCAPE(z);
    char *r = realloc(NULL, 10);
    ESCAPE(r);
    r = realloc(r, 5000);
    ESCAPE(r);
    r = realloc(r, 20);
    ESCAPE(r);
    char *big = malloc(300 << 10);          /* above glibc's mmap threshold */
    ESCAPE(big);
    big = realloc(big, 600 << 10);
    ESCAPE(big);
    free(big);
    free(r);
    free(z);
    free(alloc_with_bad_frame(40));
}

NOINLINE long bench(long n)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        void *p = malloc(64);
        ESCAPE(p);
        free(p);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
    return ns > 0 ? n * 1000000000L / ns : 0;
}

int main(int argc, char **argv)
{
    char line[80];
    if (argc > 2 && strcmp(argv[1], "-b") == 0) {
        long rate = bench(atol(argv[2]));
        snprintf(line, sizeof line, "RESULT malloc_free_pairs_per_s %ld\n", rate);
        say(line);
        return 0;
    }
    for (int i = 0; i < 3; i++)
        balanced();
    say("noleak_basic: done\n");
    return 0;
}
