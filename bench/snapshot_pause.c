/* snapshot_pause.c - a big heap for bench/snapshot_pause.sh: N blocks (sizes
 * 16..176 bytes, mean ~96 + malloc overhead), each pointing to the next, all
 * listed in one global array block; then waits until the file "go" exists. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void **g_all;

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    g_all = malloc((size_t)n * sizeof *g_all);
    void **prev = NULL;
    unsigned long long bytes = 0;
    for (long i = 0; i < n; i++) {
        size_t sz = 16 + (size_t)(i % 11) * 16;
        void **b = malloc(sz);
        b[0] = prev;
        b[1] = NULL;
        g_all[i] = b;
        prev = b;
        bytes += sz;
    }
    printf("ready %ld blocks %llu bytes\n", n, bytes + (unsigned long long)n * sizeof *g_all);
    fflush(stdout);
    while (access("go", F_OK) != 0)
        usleep(20000);
    return prev ? 0 : 1;
}
