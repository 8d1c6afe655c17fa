/* stale.c - a block reuses memory that held a pointer, and never writes
 * the bytes where the pointer was: the pointer is stale, the block it names
 * (4000 bytes) is lost.  valgrind knows those bytes are undefined; a
 * non-instrumenting checker needs --malloc-fill to clear them. */
#include <stdlib.h>

static void *volatile sink;
void *g_kept;

int main(void)
{
    void **a = malloc(256);
    void *lost = malloc(4000);
    a[20] = lost;
    free(a);
    void **b = malloc(256);    /* glibc hands back the same chunk */
    b[0] = 0;                  /* only the first word is written */
    g_kept = b;
    sink = lost;
    sink = 0;
    lost = 0;
    return 0;
}
