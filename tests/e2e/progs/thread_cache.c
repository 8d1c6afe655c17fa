/* thread_cache.c - four threads still running at exit, four joined before
 * it: glibc keeps the joined threads' stacks in its cache, each with its
 * thread descriptor's DTV (a calloc'd block).  valgrind's __libc_freeres
 * frees that cache before its leak check; the agent cannot run freeres with
 * threads running, and must not call those blocks lost.  One real leak: 77
 * bytes in main. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

static void *run(void *a)
{
    (void)a;
    for (;;)
        pause();
    return NULL;
}

static void *quick(void *a)
{
    usleep(20000);
    return a;
}

int main(void)
{
    pthread_t t[4], q[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, run, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&q[i], NULL, quick, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(q[i], NULL);
    sink = malloc(77);
    sink = NULL;
    exit(0);
}
