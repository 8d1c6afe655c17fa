//@ tag: process
//@ desc: vfork then execv of this program with "child" (clearenv first: the agent must put itself back); the child leaks 81 bytes, the parent 82
//@ intent: definitely=82/1 records=1
//@ intent.child: definitely=81/1 records=1
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        sink = malloc(81);
        sink = 0;
        return 0;
    }
    char *args[] = { argv[0], "child", 0 };
    pid_t pid = vfork();
    if (pid == 0) {
        clearenv();
        execv(argv[0], args);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    sink = malloc(82);
    sink = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
