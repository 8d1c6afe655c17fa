//@ tag: threads
//@ desc: 16 threads allocate blocks and free each other's through a shared ring (100k operations each); each thread finally leaks one 91-byte block from one line: one record of 16 blocks, nothing else
//@ intent: definitely=1456/16 records=1
#include <pthread.h>
#include <stdlib.h>

#define T 16
#define RING 1024
static void *ring[RING];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *volatile sink;

static void *worker(void *arg)
{
    unsigned x = (unsigned)(long)arg * 2654435761u + 1;
    for (int i = 0; i < 100000; i++) {
        x = x * 1103515245u + 12345u;
        void *p = malloc(16 + (x >> 24) % 200);
        pthread_mutex_lock(&lock);
        unsigned k = (x >> 8) % RING;
        void *old = ring[k];
        ring[k] = p;
        pthread_mutex_unlock(&lock);
        free(old);
    }
    sink = malloc(91);
    return 0;
}

int main(void)
{
    pthread_t t[T];
    for (long i = 0; i < T; i++)
        if (pthread_create(&t[i], 0, worker, (void *)i) != 0)
            return 1;
    for (int i = 0; i < T; i++)
        pthread_join(t[i], 0);
    for (int i = 0; i < RING; i++)
        free(ring[i]);
    sink = 0;
    return 0;
}
