/* own_allocs.c - exactly 3 allocations and 1 free, no stdio (run_agent_e2e.sh): the
 * trace must hold these and nothing the agent allocates for itself at exit (it read
 * /proc/self/status with fopen and looked up __libc_freeres with dlsym there, which
 * showed up as sites of the program: __fopen_internal, _IO_file_doallocate,
 * _dlerror_run). */
#include <stdlib.h>
#include <unistd.h>

static void *keep;

int main(void)
{
    keep = malloc(100);
    void *p = malloc(200);
    free(p);
    p = malloc(300); /* lost */
    p = NULL;
    if (write(1, "done\n", 5) != 5)
        return 1;
    return 0;
}
