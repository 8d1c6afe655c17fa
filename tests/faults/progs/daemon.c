/* daemon.c - the classic daemon dance: fork, setsid, fork, chdir /, close
 * every descriptor, reopen 0-2 on /dev/null, work, leak 321 bytes, exit.
 * The first parent waits for a pipe byte written just before the daemon
 * closes everything, and for a marker file the daemon writes at the end. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile sink;

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t p = fork();
    if (p < 0)
        return 1;
    if (p > 0)
        return 0;                 /* the launcher's child exits at once */
    setsid();
    if (fork() != 0)
        _exit(0);
    if (chdir("/") != 0)
        _exit(1);
    for (int fd = 0; fd < 1024; fd++)
        close(fd);
    open("/dev/null", O_RDONLY);
    open("/dev/null", O_WRONLY);
    open("/dev/null", O_WRONLY);
    for (int i = 0; i < 1000; i++) {
        char *b = malloc(64 + i);
        memset(b, i, 64);
        free(b);
    }
    sink = malloc(321);
    sink = 0;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, "done\n", 5) != 5)
            _exit(1);
        close(fd);
    }
    return 0;
}
