/* errors.c - invalid frees: a stack address, a double free, realloc of a
 * pointer that was never allocated.  Under memsleuth the bad calls are
 * reported and not passed on, so the program survives. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

int main(void)
{
    char local[64];
    sink = local;
    free((void *)sink);                 /* never allocated */
    char *p = malloc(40);
    sink = p;
    free(p);
    free((void *)sink);                 /* double free */
    void *q = realloc(local + 8, 100);  /* realloc of a non-heap pointer */
    sink = q;
    printf("errors: survived\n");
    return 0;
}
