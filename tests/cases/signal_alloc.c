//@ tag: threads
//@ desc: a SIGALRM handler (setitimer, every 1 ms) allocates and frees while main is inside malloc/free in a tight loop; one 97-byte block leaked from the handler's last run is kept in a global (reachable), one 98-byte block in main dropped
//@ intent: reachable=97/1 definitely=98/1 records=2
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void *volatile sink;
void *volatile g_from_handler;
static volatile int ticks;

static void on_alarm(int sig)
{
    (void)sig;
    void *p = malloc(50 + ticks % 100);
    free(p);
    void *q = malloc(97);
    void *old = g_from_handler;
    g_from_handler = q;
    free(old);
    ticks++;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < 300) {
        void *p = malloc(64);
        free(p);
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    sink = malloc(98);
    sink = 0;
    return 0;
}
