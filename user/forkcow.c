/*
 * forkcow: after fork, parent and child each see their own data.
 *
 *   forkcow [HEAP_PAGES]
 *
 * Stamps every 64-bit word of four regions with who wrote it, the region,
 * the page and the word: the heap (HEAP_PAGES pages, default 256, malloc),
 * initialized data (16 pages), bss (16 pages) and an array on the stack
 * (4 pages). Then it forks:
 *
 *   child:  checks the parent's stamp, writes its own, checks it, tells the
 *           parent, waits for the parent's turn, checks its own stamp again;
 *   parent: waits for the child's turn, checks that its own stamp is still
 *           there, writes a new one, checks it, lets the child check, reaps
 *           it (exit 0 expected), checks its stamp once more.
 *
 * Every page of each region is written by both sides after the fork, so a
 * kernel copies each at least once (the first writer's copy-on-write fault;
 * the second writer may reuse the page, as Linux's wp_page_reuse does).
 * Prints "forkcow: parent PID and child PID each saw their own data in N
 * pages" and exits 0, or "forkcow: FAILED: ..." and exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define WORDS (PG / 8)
#define DATA_PAGES 16
#define BSS_PAGES 16
#define STACK_PAGES 4

enum { PARENT_BEFORE = 1, CHILD = 2, PARENT_AFTER = 3 };

static uint64_t data_pages[DATA_PAGES * WORDS] = {1};    /* .data, not .bss */
static uint64_t bss_pages[BSS_PAGES * WORDS];

struct region {
    const char *name;
    uint64_t *p;
    long pages;
};

static uint64_t stamp(int who, int region, long word)
{
    return (uint64_t)who << 56 | (uint64_t)region << 48 | (uint64_t)word;
}

static void write_all(struct region *r, int n, int who)
{
    for (int i = 0; i < n; i++)
        for (long w = 0; w < r[i].pages * WORDS; w++)
            r[i].p[w] = stamp(who, i, w);
}

/* 0, or prints the first word that is not `who`'s and returns 1 */
static int check_all(struct region *r, int n, int who, const char *side)
{
    for (int i = 0; i < n; i++)
        for (long w = 0; w < r[i].pages * WORDS; w++)
            if (r[i].p[w] != stamp(who, i, w)) {
                printf("forkcow: FAILED: %s %d: %s page %ld word %ld: expected %#llx, got %#llx\n",
                       side, getpid(), r[i].name, w / WORDS, w % WORDS,
                       (unsigned long long)stamp(who, i, w), (unsigned long long)r[i].p[w]);
                return 1;
            }
    return 0;
}

static void xpipe(int fd[2])
{
    if (pipe(fd) < 0) {
        perror("forkcow: pipe");
        exit(1);
    }
}

static char turn(int rfd)
{
    char c = 0;
    if (read(rfd, &c, 1) != 1) {
        printf("forkcow: FAILED: %d: the other side went away\n", getpid());
        exit(1);
    }
    return c;
}

int main(int argc, char **argv)
{
    long heap_pages = argc > 1 ? atol(argv[1]) : 256;
    uint64_t stack_pages[STACK_PAGES * WORDS];
    uint64_t *heap = malloc(heap_pages * PG);
    if (heap_pages <= 0 || heap == NULL) {
        fprintf(stderr, "usage: forkcow [HEAP_PAGES]\n");
        return 2;
    }
    struct region r[] = {
        {"heap", heap, heap_pages},
        {"data", data_pages, DATA_PAGES},
        {"bss", bss_pages, BSS_PAGES},
        {"stack", stack_pages, STACK_PAGES},
    };
    int n = sizeof(r) / sizeof(r[0]);
    long total = heap_pages + DATA_PAGES + BSS_PAGES + STACK_PAGES;
    int to_child[2], to_parent[2];
    xpipe(to_child);
    xpipe(to_parent);
    setvbuf(stdout, NULL, _IONBF, 0);

    write_all(r, n, PARENT_BEFORE);
    pid_t pid = fork();
    if (pid < 0) {
        perror("forkcow: fork");
        return 1;
    }
    if (pid == 0) {
        int bad = check_all(r, n, PARENT_BEFORE, "child");
        write_all(r, n, CHILD);
        bad |= check_all(r, n, CHILD, "child");
        write(to_parent[1], "c", 1);
        turn(to_child[0]);
        bad |= check_all(r, n, CHILD, "child, after the parent wrote");
        _exit(bad);
    }
    turn(to_parent[0]);
    int bad = check_all(r, n, PARENT_BEFORE, "parent, after the child wrote");
    write_all(r, n, PARENT_AFTER);
    bad |= check_all(r, n, PARENT_AFTER, "parent");
    write(to_child[1], "p", 1);
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("forkcow: waitpid");
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("forkcow: FAILED: child %d: wait status %#x\n", pid, status);
        bad = 1;
    }
    bad |= check_all(r, n, PARENT_AFTER, "parent, after the child exited");
    if (bad)
        return 1;
    printf("forkcow: parent %d and child %d each saw their own data in %ld pages\n",
           getpid(), pid, total);
    return 0;
}
