/*
 * noleak_pool: the leak corpus's server with a pool allocator and no leak
 * (memleak, issue 16). Requests take objects from a pool carved out of
 * arenas that are malloc'd as the pool grows; freed objects go back on the
 * pool's free list (no free() per request), and at shutdown every arena is
 * freed. Nothing leaks, though the program calls malloc far less than it
 * allocates objects.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))
#define OBJ_SIZE 64
#define PER_ARENA 32
#define MAX_ARENAS 16

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

struct obj { struct obj *next; char data[OBJ_SIZE - sizeof(struct obj *)]; };

static struct obj *free_list;
static void *arenas[MAX_ARENAS];
static int narenas;

NOINLINE int pool_grow(void)
{
    if (narenas == MAX_ARENAS)
        return -1;
    struct obj *a = malloc(PER_ARENA * sizeof(struct obj));
    if (!a)
        return -1;
    arenas[narenas++] = a;
    for (int i = 0; i < PER_ARENA; i++) {
        a[i].next = free_list;
        free_list = &a[i];
    }
    return 0;
}

NOINLINE struct obj *pool_get(void)
{
    if (!free_list && pool_grow() < 0)
        return NULL;
    struct obj *o = free_list;
    free_list = o->next;
    return o;
}

static void pool_put(struct obj *o) { o->next = free_list; free_list = o; }

NOINLINE void pool_destroy(void)
{
    for (int i = 0; i < narenas; i++)
        free(arenas[i]);
    narenas = 0;
    free_list = NULL;
}

NOINLINE void handle(int i, struct obj **held)
{
    struct obj *o = pool_get();
    if (!o)
        return;
    memset(o->data, i, sizeof o->data);
    if (i % 3 == 0 && !held[i % 40])    /* some requests keep their object a while */
        held[i % 40] = o;
    else
        pool_put(o);
}

int main(void)
{
    struct obj *held[40] = { 0 };
    for (int i = 0; i < 500; i++)
        handle(i, held);
    for (int i = 0; i < 40; i++)
        if (held[i])
            pool_put(held[i]);
    pool_destroy();
    say("noleak_pool: done\n");
    return 0;
}
