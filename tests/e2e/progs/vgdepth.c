/* vgdepth.c - the frame lines of a leak report against valgrind's
 * (tests/e2e/vglayout.py): a 100-byte block malloc'd four calls below main
 * and a 50-byte block calloc'd in main, both lost.  Built without PIE, so
 * that valgrind and memsleuth see the program at the same addresses. */
#include <stdlib.h>
#include <string.h>

void *volatile sink;

__attribute__((noinline)) void *f3(size_t n)
{
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}

__attribute__((noinline)) void *f2(size_t n)
{
    void *p = f3(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void *f1(size_t n)
{
    void *p = f2(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(void)
{
    sink = f1(100);
    sink = calloc(1, 50);
    sink = NULL;
    return 0;
}
