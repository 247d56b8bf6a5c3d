/*
 * leak_server: the leak corpus's request-handler leak (memleak, issue 16).
 * A server loop over a script of requests: GET builds a response and frees
 * it; POST parses a body into a session kept in a table (freed at
 * shutdown); a POST whose body is bad returns early from handle_post and
 * leaks the parsed body (the planted leak, from parse_body). The config
 * block is malloc'd before the wait and freed after it, so that memleak
 * -p, attached during the wait, sees a free of a block it never saw.
 *
 *   leak_server [-w] [N]   N rounds of the script (default 4); -w first
 *                          prints "pid PID" and "ready" and waits for SIGUSR1
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))
#define MAX_SESSIONS 64

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

static char *sessions[MAX_SESSIONS];
static int nsessions;
static volatile sig_atomic_t go;

static void on_usr1(int sig) { (void)sig; go = 1; }

NOINLINE char *parse_body(const char *req)
{
    size_t n = strlen(req) + 1;
    char *body = malloc(64);
    if (body)
        memcpy(body, req, n < 64 ? n : 64);
    return body;
}

NOINLINE int handle_post(const char *req)
{
    char *body = parse_body(req);
    if (!body)
        return -1;
    if (strstr(body, "bad"))
        return -1;              /* the planted leak: body is not freed */
    if (nsessions < MAX_SESSIONS)
        sessions[nsessions++] = body;
    else
        free(body);
    return 0;
}

NOINLINE int handle_get(const char *req)
{
    char *resp = malloc(256);
    if (!resp)
        return -1;
    snprintf(resp, 256, "200 OK %s", req);
    int n = (int)strlen(resp);
    free(resp);
    return n;
}

NOINLINE void serve(int rounds)
{
    static const char *script[] = { "GET /", "POST user=a", "GET /x", "POST bad=1", "GET /y" };
    for (int r = 0; r < rounds; r++)
        for (unsigned i = 0; i < sizeof script / sizeof *script; i++)
            if (script[i][0] == 'G')
                handle_get(script[i]);
            else
                handle_post(script[i]);
}

int main(int argc, char **argv)
{
    int wait = argc > 1 && strcmp(argv[1], "-w") == 0;
    int rounds = argc > 1 + wait ? atoi(argv[1 + wait]) : 4;
    char *config = malloc(128);
    if (wait) {
        char line[64];
        signal(SIGUSR1, on_usr1);
        snprintf(line, sizeof line, "pid %d\nready\n", (int)getpid());
        say(line);
        while (!go)
            pause();
    }
    serve(rounds);
    for (int i = 0; i < nsessions; i++)
        free(sessions[i]);
    free(config);
    say("leak_server: done\n");
    return 0;
}
