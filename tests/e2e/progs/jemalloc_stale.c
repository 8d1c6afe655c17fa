/* jemalloc_stale.c - linked with jemalloc: a freed block still holds the
 * only other copy of a pointer to a lost block.  Freed memory is no root:
 * 4000 bytes definitely lost, 3000 still reachable. */
#include <stdlib.h>

static void *volatile sink;
void *g_kept;

int main(void)
{
    void **tmp = malloc(64);
    void *lost = malloc(4000);
    tmp[0] = lost;
    tmp[1] = lost;
    free(tmp);
    sink = lost;
    sink = 0;
    lost = 0;
    g_kept = malloc(3000);
    return 0;
}
