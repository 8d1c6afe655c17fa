//@ tag: process
//@ desc: posix_spawn of this program with "child" and an explicit empty environment (the agent must still follow it); the child leaks 71 bytes, the parent 72
//@ intent: definitely=72/1 records=1
//@ intent.child: definitely=71/1 records=1
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void *volatile sink;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        sink = malloc(71);
        sink = 0;
        return 0;
    }
    char *args[] = { argv[0], "child", 0 };
    char *env[] = { 0 };
    pid_t pid;
    if (posix_spawn(&pid, argv[0], 0, 0, args, env) != 0)
        return 2;
    int st;
    waitpid(pid, &st, 0);
    sink = malloc(72);
    sink = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
