/* poolthreads.c - libmemsleuth_pool from 4 threads at once, then a fork, for
 * tests/e2e/run_pools.sh.  Each thread has its own tree: a root "worker"
 * that keeps one 16-byte block per iteration, and a child "job" per
 * iteration with 5 blocks of 32 bytes, destroyed at once.  Thread 0's root is
 * never destroyed.  Then a forked child allocates 100 bytes in that root (a
 * pool its trace never saw created) and exits.
 * Totals: 8004 allocators created, 8003 destroyed; 48000 allocations of
 * 1,408,000 bytes; at the end 32000 bytes in 2000 blocks, in the one leaked
 * root. */
#include <memsleuth/pool.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define NT 4
#define ITER 2000
static struct ms_pool *roots[NT];

static void *work(void *arg)
{
    long k = (long)arg;
    struct ms_pool *root = ms_pool_new_root(0);
    ms_pool_set_name(root, "worker");
    for (int i = 0; i < ITER; i++) {
        struct ms_pool *job = ms_pool_new_child(root);
        ms_pool_set_name(job, "job");
        for (int j = 0; j < 5; j++)
            ((char *)ms_pool_alloc(job, 32))[0] = (char)j;
        ((char *)ms_pool_alloc(root, 16))[0] = (char)i;
        ms_pool_destroy(job);
    }
    roots[k] = root;
    return NULL;
}

int main(void)
{
    pthread_t t[NT];
    for (long k = 0; k < NT; k++)
        pthread_create(&t[k], NULL, work, (void *)k);
    for (int k = 0; k < NT; k++)
        pthread_join(t[k], NULL);
    for (int k = 1; k < NT; k++)
        ms_pool_destroy(roots[k]);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        ((char *)ms_pool_alloc(roots[0], 100))[0] = 1;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("done %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
