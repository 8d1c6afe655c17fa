/* sleeper.c - allocates, says "ready", then sleeps until killed */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *g_keep;

int main(void)
{
    g_keep = malloc(1000);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
