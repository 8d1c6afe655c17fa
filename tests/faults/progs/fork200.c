/* fork200.c - 200 children, each leaks (100 + i) bytes and exits; the parent
 * waits for all of them and leaks 7 bytes */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

int main(void)
{
    for (int i = 0; i < 200; i++) {
        pid_t p = fork();
        if (p < 0)
            return 1;
        if (p == 0) {
            sink = malloc(100 + (size_t)i);
            sink = 0;
            exit(0);
        }
    }
    int st, bad = 0;
    for (int i = 0; i < 200; i++)
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    sink = malloc(7);
    sink = 0;
    printf("children ok: %d\n", 200 - bad);
    return bad != 0;
}
