/* spawner.c PROG - starts PROG twice, once with posix_spawn and once with
 * vfork + execv, waits for both, prints their exit statuses, drops 55 bytes
 * and exits 6. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static void *volatile sink;

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char *args[] = { argv[1], NULL };
    pid_t a;
    if (posix_spawn(&a, argv[1], NULL, NULL, args, environ) != 0)
        return 1;
    int st;
    if (waitpid(a, &st, 0) != a)
        return 1;
    printf("posix_spawn child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fflush(stdout);
    pid_t b = vfork();
    if (b < 0)
        return 1;
    if (b == 0) {
        execv(argv[1], args);
        _exit(127);
    }
    if (waitpid(b, &st, 0) != b)
        return 1;
    printf("vfork child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    sink = malloc(55);
    sink = 0;
    return 6;
}
