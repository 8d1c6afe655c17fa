/* mainexit - main ends with pthread_exit while its threads run on.
 * glibc ends the process with exit(0) when the last thread is done; the
 * agent's own thread must not keep it alive.  Main leaks 17 bytes, each of
 * three workers 40; the output goes through stdio, which only exit flushes.
 * With an argument GO, the last worker to have allocated creates GO.ready,
 * then all wait for the file GO before they finish (a snapshot is taken
 * meanwhile, while main is a zombie).
 *   usage: mainexit [GOFILE] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *gofile;
static void *kept[3];
static int allocated;

static void *worker(void *arg)
{
    long i = (long)arg;
    usleep(50000 * (useconds_t)(i + 1));
    void *p = malloc(40);
    memset(p, (int)i, 40);
    kept[i] = malloc(24); /* reachable from a global */
    p = NULL;
    if (gofile && __atomic_add_fetch(&allocated, 1, __ATOMIC_SEQ_CST) == 3) {
        char ready[4096];
        snprintf(ready, sizeof ready, "%s.ready", gofile);
        FILE *f = fopen(ready, "w");
        if (f)
            fclose(f);
    }
    if (gofile)
        while (access(gofile, F_OK) != 0)
            usleep(10000);
    printf("worker %ld done\n", i);
    return NULL;
}

int main(int argc, char **argv)
{
    gofile = argc > 1 ? argv[1] : NULL;
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    char *p = malloc(17);
    strcpy(p, "main");
    printf("%s ends\n", p);
    p = NULL;
    pthread_exit(NULL);
}
