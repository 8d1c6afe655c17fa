/* sigmalloc.c [PERIOD_US [SIGNALS]] - a SIGALRM every PERIOD_US (1000)
 * microseconds while the main thread runs a tight malloc/free loop, so most
 * signals land inside an allocation (inside the agent's hook when traced).
 * The handler allocates and frees two blocks and, on its first 64 calls,
 * drops a 48-byte block: 3,072 bytes in 64 blocks definitely lost.  Exits 4
 * after SIGNALS (1000) signals.
 *
 * glibc's allocator is not async-signal-safe; this stays legal in practice
 * because the main loop only ever hits its thread cache (one size, freed at
 * once, after a warm-up before the timer starts) and the handler's sizes are
 * other size classes, so the two never touch the same list or lock. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void *volatile sink;
static volatile sig_atomic_t ticks, dropped;

static void on_alarm(int sig)
{
    (void)sig;
    char *a = malloc(200);
    char *b = malloc(700);
    if (a && b) {
        a[0] = 1;
        b[0] = 2;
    }
    free(b);
    free(a);
    if (dropped < 64) {
        sink = malloc(48);
        dropped++;
    }
    ticks++;
}

int main(int argc, char **argv)
{
    long period = argc > 1 ? atol(argv[1]) : 1000, count = argc > 2 ? atol(argv[2]) : 1000;
    if (period < 1 || period > 999999 || count < 64)
        return 2;
    unsigned long sum = 0;
    for (int i = 0; i < 1000; i++) { /* warm-up: the thread cache holds the main size */
        char *p = malloc(24);
        p[0] = (char)i;
        sum += (unsigned char)p[0];
        free(p);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, period }, { 0, period } };
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < count) {
        char *p = malloc(24);
        p[0] = 1;
        sum += (unsigned char)p[0];
        free(p);
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    sink = 0;
    printf("sigmalloc: %d dropped, %s\n", (int)dropped, sum > 3000 ? "looped" : "short");
    return 4;
}
