/* stopprog.c N SECONDS - N threads (half asleep in nanosleep, half allocating
 * and freeing) for SECONDS; bench/stw/run.sh stops them with snapshots. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;

static void *sleeper(void *a)
{
    (void)a;
    while (!stop) {
        struct timespec d = { 0, 50000000 };
        nanosleep(&d, NULL);
    }
    return NULL;
}

static void *churn(void *a)
{
    (void)a;
    unsigned long k = 0;
    while (!stop) {
        void *p = malloc(16 + k++ % 256);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 8;
    int secs = argc > 2 ? atoi(argv[2]) : 3;
    pthread_t t[64];
    for (int i = 0; i < n && i < 64; i++)
        pthread_create(&t[i], NULL, i % 2 ? churn : sleeper, NULL);
    /* by the clock: the signal fallback cuts sleeps short */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        struct timespec d = { 0, 20000000 };
        nanosleep(&d, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - t0.tv_sec < secs);
    stop = 1;
    for (int i = 0; i < n && i < 64; i++)
        pthread_join(t[i], NULL);
    return 0;
}
