/* noenv.c PROG - clears its environment (clearenv), then forks and execs
 * PROG with the (empty) environ, and once more with execve and an explicit
 * empty environment; prints the children's statuses, drops 66 bytes and
 * exits 8. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static void *volatile sink;

static int run(const char *prog, int explicit_env)
{
    char *args[] = { (char *)prog, NULL };
    char *none[] = { NULL };
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        if (explicit_env)
            execve(prog, args, none);
        else
            execv(prog, args);
        _exit(127);
    }
    int st;
    if (waitpid(p, &st, 0) != p)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (clearenv() != 0)
        return 1;
    printf("environment cleared: %s\n", environ && environ[0] ? "no" : "yes");
    fflush(stdout);
    int a = run(argv[1], 0);
    printf("execv child: %d\n", a);
    fflush(stdout);
    int b = run(argv[1], 1);
    printf("execve child: %d\n", b);
    sink = malloc(66);
    sink = 0;
    return 8;
}
