/* killme.c - keeps 50 blocks of 100 bytes from keep_before_kill(), churns
 * 20,000 malloc/free pairs, says "ready", then sleeps until killed (SIGKILL:
 * no handler runs, the trace ends at the writer thread's last flush) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *g_keep[50];

__attribute__((noinline)) static void keep_before_kill(void)
{
    for (int i = 0; i < 50; i++)
        g_keep[i] = malloc(100);
}

int main(void)
{
    keep_before_kill();
    for (int i = 0; i < 20000; i++)
        free(malloc(16 + (size_t)(i % 64)));
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
