/* wrapper_sites.c - two allocation sites that reach malloc through the same
 * xmalloc wrapper (run_exports.sh: each site must be labelled by its caller,
 * read_config and add_session, not by xmalloc; also built stripped).
 * read_config keeps 40 blocks of 100 bytes, add_session 25 blocks of 1000
 * bytes; both are leaked at exit (the pointers are dropped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("out of memory\n", stderr);
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static void *volatile sink;

__attribute__((noinline)) static void read_config(void)
{
    for (int i = 0; i < 40; i++)
        sink = xmalloc(100);
}

__attribute__((noinline)) static void add_session(void)
{
    for (int i = 0; i < 25; i++)
        sink = xmalloc(1000);
}

int main(void)
{
    read_config();
    add_session();
    sink = NULL;
    return 0;
}
