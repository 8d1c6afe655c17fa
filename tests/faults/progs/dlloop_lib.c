/* dlloop_lib.c - loaded and unloaded 1000 times by dlloop.c: each load
 * drops one 77-byte block in lib_leak_once */
#include <stdlib.h>
#include <string.h>

static void *kept;

__attribute__((noinline)) void lib_leak_once(void)
{
    void *tmp = malloc(300);
    free(tmp);
    kept = malloc(77);
    memset(kept, 7, 77);
}
