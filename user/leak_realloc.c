/*
 * leak_realloc: the leak corpus's leak through realloc (memleak, issue 16).
 * grow_buffer doubles a buffer from 16 bytes to 4096 with realloc and the
 * last one is never freed (the planted leak: 4096 bytes, one allocation,
 * from grow_buffer); grow_and_free does the same and frees it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

static char *last;

NOINLINE char *grow_buffer(void)
{
    char *b = NULL;
    for (size_t n = 16; n <= 4096; n *= 2) {
        char *nb = realloc(b, n);
        if (!nb)
            break;
        b = nb;
        b[n - 1] = 1;
    }
    return b;
}

NOINLINE void grow_and_free(void)
{
    char *b = grow_buffer();
    free(b);
}

int main(void)
{
    grow_and_free();
    last = grow_buffer();
    last = NULL;                /* the planted leak */
    say("leak_realloc: done\n");
    return 0;
}
