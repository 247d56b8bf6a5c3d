/*
 * leak_fork: the leak corpus's leak after fork (memleak, issue 16). The
 * parent forks a child that allocates and frees (its text must run without
 * the parent's breakpoints), waits for it, then leaks three blocks from
 * after_fork (the planted leak).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

/* the compiler must not drop an allocation it sees unused */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

NOINLINE void child_work(void)
{
    for (int i = 0; i < 100; i++) {
        char *p = malloc(32 + i);
        if (p)
            p[0] = (char)i;
        ESCAPE(p);
        free(p);
    }
}

NOINLINE void after_fork(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = malloc(100);
        if (p)
            memset(p, 'a' + i, 100);
        ESCAPE(p);                      /* the planted leak: 3 x 100 bytes */
    }
}

int main(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        child_work();
        _exit(0);
    }
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        say("leak_fork: fork or wait failed\n");
        return 1;
    }
    say(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "leak_fork: child ok\n"
                                                       : "leak_fork: child FAILED\n");
    after_fork();
    say("leak_fork: done\n");
    return 0;
}
