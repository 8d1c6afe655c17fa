//@ tag: threads
//@ desc: a SIGALRM handler (every 100 us) allocates and frees while the main thread runs inside the agent's own bookkeeping (an invalid-free loop: stack capture and error recording, no glibc allocator call, so interrupting it is legal); the handler's last 97-byte block is kept in a global (reachable), a 98-byte block in main is dropped
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
    /* glibc's malloc is not async-signal-safe: a handler may only allocate
     * when it did not interrupt glibc's allocator.  free() of a pointer that
     * was never allocated runs only the agent's code (it is reported and
     * not passed on), so this loop keeps the thread inside the agent. */
    char local[16];
    void *volatile never_allocated = local;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, 100 }, { 0, 100 } };
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < 500)
        free(never_allocated);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    sink = malloc(98);
    sink = 0;
    return 0;
}
