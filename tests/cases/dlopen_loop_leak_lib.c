/* helper library for dlopen_loop_leak.c */
#include <stdlib.h>

static void *lib_kept;

void lib_round(void)
{
    void *tmp = malloc(500);
    free(tmp);
    lib_kept = malloc(111);
}
