//@ tag: process
//@ desc: the parent forks; the child execs this program again with "stage2", which leaks 61 bytes; the parent waits, then leaks 62: the child's report has only the exec'd image's 61 bytes
//@ intent: definitely=62/1 records=1
//@ intent.child: definitely=61/1 records=1
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "stage2") == 0) {
        sink = malloc(61);
        sink = 0;
        return 0;
    }
    sink = malloc(5000);      /* freed below: the child's copy vanishes at exec */
    void *keep = (void *)sink;
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = { argv[0], "stage2", 0 };
        execv(argv[0], args);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    free(keep);
    sink = malloc(62);
    sink = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
