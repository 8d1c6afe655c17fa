/* seccomp_prog.c errno|kill - main forbids itself ptrace with a seccomp
 * filter (EPERM, or kill the process that tries), starts a thread, leaks 999
 * bytes and exits: the exit check runs on main, whose tracer inherits the
 * filter, so it must fall back to the signal (tests/stw/run_stw.sh). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

void *volatile sink;

static void *idle(void *a)
{
    (void)a;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned action = argc > 1 && !strcmp(argv[1], "kill") ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | EPERM;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = { sizeof f / sizeof f[0], f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p)) {
        perror("seccomp");
        return 2;
    }
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
    sink = malloc(999);
    sink = NULL;
    printf("seccomp %s ok\n", argc > 1 ? argv[1] : "errno");
    return 0;
}
