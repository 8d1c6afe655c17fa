/* own_alloc.c - a program that brings its own allocator (malloc, free,
 * calloc, realloc defined in the executable, which wins over any
 * preloaded library): it must keep working unchanged under memsleuth. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char arena[1 << 20];
static size_t used;
static unsigned long nmalloc;

void *malloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (used + n + 16 > sizeof arena)
        return NULL;
    char *p = arena + used + 16;
    ((size_t *)p)[-1] = n;
    used += n + 16;
    nmalloc++;
    return p;
}

void free(void *p)
{
    (void)p;
}

void *calloc(size_t a, size_t b)
{
    void *p = malloc(a * b);
    if (p)
        memset(p, 0, a * b);
    return p;
}

void *realloc(void *p, size_t n)
{
    void *q = malloc(n);
    if (q && p) {
        size_t old = ((size_t *)p)[-1];
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

int main(void)
{
    char *s = malloc(100);
    strcpy(s, "own allocator");
    s = realloc(s, 200);
    char *z = calloc(10, 10);
    free(z);
    printf("%s: %s\n", s, nmalloc >= 3 ? "used" : "bypassed");
    return 0;
}
