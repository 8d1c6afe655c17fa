/* churn.c - 300000 allocations of varied sizes through 1000 slots (a trace
 * far bigger than 64 KiB), then 3 blocks of 1111 bytes dropped; prints a
 * checksum of the sizes it chose, exits 5. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;
static void *slot[1000];

static __attribute__((noinline)) void *pick(unsigned x)
{
    return malloc(8 + x % 3000);
}

int main(void)
{
    unsigned x = 12345, sum = 0;
    for (int i = 0; i < 300000; i++) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 1000;
        free(slot[k]);
        slot[k] = pick(x >> 4);
        if (!slot[k])
            return 1;
        memset(slot[k], 1, 8);
        sum += x % 3000;
    }
    for (int i = 0; i < 1000; i++) {
        free(slot[i]);
        slot[i] = NULL; /* no stale pointer to a freed (later reused) block */
    }
    for (int i = 0; i < 3; i++)
        sink = malloc(1111);
    sink = 0;
    printf("churn: %u\n", sum);
    return 5;
}
