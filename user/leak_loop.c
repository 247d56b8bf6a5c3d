/*
 * leak_loop: the leak corpus's loop leak (memleak, issue 16). Builds N
 * records in a loop and frees only the even ones: the odd ones leak, all
 * from make_record (called by loop_leaker). Output by write(2) only, so
 * that glibc's stdio buffer (a malloc kept to the end) is no leak of ours.
 *
 *   leak_loop [N]          N records (default 10): N/2 x 48 bytes leak
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

NOINLINE char *make_record(int i)
{
    char *r = malloc(48);
    if (r)
        memset(r, i, 48);
    return r;
}

NOINLINE void loop_leaker(int n)
{
    for (int i = 0; i < n; i++) {
        char *r = make_record(i);
        if (i % 2 == 0)
            free(r);            /* the odd ones are forgotten: the planted leak */
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    loop_leaker(n);
    say("leak_loop: done\n");
    return 0;
}
