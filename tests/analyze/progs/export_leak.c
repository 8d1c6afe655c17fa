/* export_leak.c - the traced program of run_exports.sh: leaks of each kind at known
 * sites, a cache that grows and is freed at exit, temporaries, an inlined allocation.
 * Its argv (and the name it is run under) are chosen by the test to check escaping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct node {
    struct node *next;
    char pad[24];
};

static void *keep_inner;              /* points inside a block: possibly lost */
static void **cache;
static size_t ncache;

__attribute__((noinline)) static void *leak_block(size_t n)
{
    return malloc(n); /* LEAK_BLOCK */
}

__attribute__((noinline)) static void leak_list(void)
{
    struct node *a = malloc(sizeof *a); /* LEAK_LIST */
    a->next = malloc(sizeof *a);        /* LEAK_INDIRECT */
    a->next->next = NULL;
}

__attribute__((noinline)) static void leak_possible(void)
{
    char *p = malloc(200); /* LEAK_POSSIBLE */
    keep_inner = p + 8;
}

static inline __attribute__((always_inline)) void *inl_alloc(size_t n)
{
    return calloc(1, n); /* INL_ALLOC */
}

__attribute__((noinline)) static void grow_cache(void)
{
    cache = realloc(cache, (ncache + 1) * sizeof *cache);
    cache[ncache++] = inl_alloc(1000);
}

__attribute__((noinline)) static void temporaries(void)
{
    char *t = malloc(4096); /* TEMP */
    memset(t, 1, 4096);
    free(t);
}

int main(int argc, char **argv)
{
    struct timespec ts = { 0, 1000000 };
    for (int i = 0; i < 60; i++) {
        grow_cache();
        temporaries();
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 3; i++)
        leak_block(100);
    leak_list();
    leak_possible();
    for (size_t i = 0; i < ncache; i++)
        free(cache[i]);
    free(cache);
    printf("%d args\n", argc);
    (void)argv;
    return 0;
}
