/* threads_named.c - named threads allocating known amounts (run_agent_e2e.sh: the
 * report's per-thread figures, exactly).  Each allocating thread runs alone (the next
 * starts after the previous one is joined).
 *   main   "boss" (pthread_setname_np before anything else)
 *   alpha  "alpha" (worker): 1 x 77 B through common_leak (leaked; beta leaks one from
 *          the same stack: that site is not attributable to one thread), then
 *          100 x 1000 B that main frees 60 of after the join, the other 40 leaked
 *   beta   "beta" (worker): 1 x 77 B common_leak, 50 x 2000 B freed by beta itself
 *   gamma  10 x 300 B kept in a global (still reachable), then renames itself with
 *          prctl(PR_SET_NAME, "gamma-late") after allocating (no pthread call)
 * `threads_named renamed`: threads renamed by another thread, in a process that is then
 * killed (no exit-time names): main starts "delta", which allocates 5 x 500 B and waits;
 * main renames it "delta-renamed" and delta renames main "boss-renamed"; main prints
 * "renamed" and both sleep until killed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *keep_alpha[100];
static void *keep_gamma[10];
static void *volatile sink;

__attribute__((noinline)) static void common_leak(void)
{
    sink = malloc(77);
    memset(sink, 1, 77);
    sink = NULL;
}

/* alpha and beta run this same function: common_leak's stack is the same for both */
static void *worker(void *arg)
{
    const char *name = arg;
    pthread_setname_np(pthread_self(), name);
    common_leak();
    if (!strcmp(name, "alpha")) {
        for (int i = 0; i < 100; i++)
            keep_alpha[i] = malloc(1000);
    } else {
        void *b[50];
        for (int i = 0; i < 50; i++)
            b[i] = malloc(2000);
        for (int i = 0; i < 50; i++)
            free(b[i]);
    }
    return NULL;
}

static void *gamma_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        keep_gamma[i] = malloc(300);
    prctl(PR_SET_NAME, "gamma-late");
    return NULL;
}

static void run(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0) {
        fputs("thread failed\n", stderr);
        exit(1);
    }
}

static pthread_t main_thread;
static void *keep_delta[5];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;

static void set_stage(int s)
{
    pthread_mutex_lock(&mu);
    stage = s;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_stage(int s)
{
    pthread_mutex_lock(&mu);
    while (stage < s)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void *delta_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        keep_delta[i] = malloc(500);
    set_stage(1);
    wait_stage(2); /* main has renamed this thread */
    pthread_setname_np(main_thread, "boss-renamed");
    set_stage(3);
    for (;;)
        pause();
    return NULL;
}

static int renamed(void)
{
    main_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, delta_fn, NULL) != 0)
        return 1;
    wait_stage(1);
    pthread_setname_np(t, "delta-renamed");
    set_stage(2);
    wait_stage(3);
    puts("renamed");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "renamed"))
        return renamed();
    pthread_setname_np(pthread_self(), "boss");
    run(worker, "alpha");
    for (int i = 0; i < 60; i++) { /* alpha's blocks, freed by main */
        free(keep_alpha[i]);
        keep_alpha[i] = NULL;
    }
    for (int i = 60; i < 100; i++) /* the other 40 are lost */
        keep_alpha[i] = NULL;
    run(worker, "beta");
    run(gamma_fn, NULL);
    puts("threads done");
    return 0;
}
