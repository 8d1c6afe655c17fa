/* sample_prog - allocations whose verdicts are known, for --sample-rate.
 *   2000 blocks of 1000 bytes definitely lost (their only pointer is
 *   overwritten in a register-held loop variable), a list of 100000 nodes
 *   of 48 bytes held by a global (still reachable), 200000 malloc/free pairs
 *   of 64 bytes, and realloc growth of a buffer that is freed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    char pad[40];
};
struct node *g_list;

static __attribute__((noinline)) void leak_one(int i)
{
    char *volatile p = malloc(1000);
    memset(p, i, 1000);
    p = NULL;
}

static __attribute__((noinline)) void build_list(void)
{
    for (int i = 0; i < 100000; i++) {
        struct node *n = malloc(sizeof *n);
        memset(n->pad, 'n', sizeof n->pad);
        n->next = g_list;
        g_list = n;
    }
}

int main(void)
{
    unsigned long sum = 0;
    for (int i = 0; i < 2000; i++)
        leak_one(i);
    build_list();
    for (int i = 0; i < 200000; i++) {
        char *volatile t = malloc(64);
        t[0] = (char)i;
        sum += (unsigned char)t[0];
        free(t);
    }
    char *buf = NULL;
    for (size_t n = 16; n < (1u << 20); n *= 2) {
        char *q = realloc(buf, n);
        if (!q)
            return 1;
        buf = q;
        buf[n - 1] = 1;
    }
    free(buf);
    printf("sample_prog sum=%lu\n", sum);
    return 0;
}
