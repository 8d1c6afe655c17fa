/* ring16.c - 16 threads, 8 producers and 8 consumers, pass blocks through a
 * bounded ring (condition variables): every block is allocated on one thread
 * and freed on another.  Each producer moves a fixed number of blocks; at the
 * end every thread drops one block of 100 + its index bytes.  Prints the
 * number of blocks moved and a checksum of their contents; exits 3. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAIRS 8
#define PER 100000
#define RING 256
static void *ring[RING];
static unsigned head, tail;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static void *volatile sink;
static unsigned long moved, total;

static void drop(long i)
{
    sink = malloc(100 + (size_t)i);
    sink = 0;
}

static void *producer(void *arg)
{
    long id = (long)arg;
    unsigned x = (unsigned)id * 2654435761u + 1;
    for (int i = 0; i < PER; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = 16 + (x >> 20) % 500;
        unsigned char *p = malloc(n);
        if (!p)
            abort();
        memset(p, 0, n);
        p[0] = (unsigned char)(x >> 24);
        p[1] = 1;
        pthread_mutex_lock(&lock);
        while (head - tail == RING)
            pthread_cond_wait(&not_full, &lock);
        ring[head++ % RING] = p;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    drop(id);
    return 0;
}

static void *consumer(void *arg)
{
    long id = (long)arg;
    unsigned long s = 0;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == tail && moved < (unsigned long)PAIRS * PER)
            pthread_cond_wait(&not_empty, &lock);
        if (head == tail) {
            pthread_mutex_unlock(&lock);
            break;
        }
        unsigned char *p = ring[tail % RING];
        ring[tail++ % RING] = NULL; /* no stale pointer to a freed (later reused) block */
        if (++moved == (unsigned long)PAIRS * PER)
            pthread_cond_broadcast(&not_empty);
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
        s += p[0] + p[1];
        free(p);
    }
    pthread_mutex_lock(&lock);
    total += s;
    pthread_mutex_unlock(&lock);
    drop(id);
    return 0;
}

int main(void)
{
    pthread_t t[2 * PAIRS];
    for (long i = 0; i < PAIRS; i++) {
        if (pthread_create(&t[i], 0, producer, (void *)i) != 0 ||
            pthread_create(&t[PAIRS + i], 0, consumer, (void *)(PAIRS + i)) != 0)
            return 1;
    }
    for (int i = 0; i < 2 * PAIRS; i++)
        pthread_join(t[i], 0);
    printf("ring16: moved %lu, checksum %lu\n", moved, total);
    return 3;
}
