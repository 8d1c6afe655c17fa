/* stw.c - threads: who is alive, and stopping them for a scan.
 *
 * Registry: every thread started through pthread_create notes the address
 * of a local variable (its "marker") when it starts, and marks itself dead
 * when it exits.  glibc keeps the stacks of exited threads mapped in a
 * cache; a mapping holding only dead markers is dead memory, not a root.
 *
 * Stop-the-world: a real-time signal is sent to every other thread of the
 * process (listed from /proc/self/task).  Its handler records the thread's
 * registers and stack pointer from the signal context and waits on a futex
 * until released.  A thread inside an allocation hook does not stop at
 * once: it sets park_pending and stops when it leaves the hook, so a
 * stopped thread never holds an agent lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

int ms_stop_signal;

struct treg {
    uintptr_t marker;
    pthread_t self; /* to find the tid of a thread renamed by another one */
    pid_t tid;
    int alive;
};
#define TREG_CAP 16384
static struct treg *treg;
static size_t treg_n, treg_ring;
static pthread_mutex_t treg_lock = PTHREAD_MUTEX_INITIALIZER;

static pid_t gettid_raw(void)
{
    return (pid_t)syscall(SYS_gettid);
}

void ms_threads_note_self(uintptr_t marker)
{
    pthread_mutex_lock(&treg_lock);
    if (!treg)
        treg = ms_region_alloc(TREG_CAP * sizeof *treg);
    if (treg) {
        pid_t tid = gettid_raw();
        size_t i;
        for (i = 0; i < treg_n; i++)
            if (!treg[i].alive && treg[i].marker == marker)
                break;
        if (i == treg_n) {
            if (treg_n < TREG_CAP) {
                treg_n++;
            } else { /* full: overwrite a dead entry */
                for (size_t k = 0; k < TREG_CAP; k++) {
                    i = (treg_ring + k) % TREG_CAP;
                    if (!treg[i].alive)
                        break;
                }
                treg_ring = (i + 1) % TREG_CAP;
            }
        }
        treg[i].marker = marker;
        treg[i].self = pthread_self();
        treg[i].tid = tid;
        treg[i].alive = 1;
    }
    pthread_mutex_unlock(&treg_lock);
}

void ms_threads_note_exit(void)
{
    pid_t tid = gettid_raw();
    pthread_mutex_lock(&treg_lock);
    for (size_t i = 0; i < treg_n; i++)
        if (treg[i].alive && treg[i].tid == tid)
            treg[i].alive = 0;
    pthread_mutex_unlock(&treg_lock);
}

/* the main thread is not in the registry (it does not start through pthread_create) */
static pthread_t main_self;
static pid_t main_tid;

void ms_threads_note_main(void)
{
    pid_t tid = gettid_raw();
    if (tid == getpid()) {
        main_self = pthread_self();
        main_tid = tid;
    }
}

pid_t ms_threads_tid_of(pthread_t t)
{
    pid_t tid = 0;
    if (main_tid && pthread_equal(t, main_self))
        return main_tid;
    pthread_mutex_lock(&treg_lock);
    for (size_t i = 0; i < treg_n; i++)
        if (treg[i].alive && pthread_equal(treg[i].self, t))
            tid = treg[i].tid;
    pthread_mutex_unlock(&treg_lock);
    return tid;
}

void ms_threads_after_fork_child(void)
{
    main_tid = 0;
    ms_threads_note_main(); /* the forking thread is the child's main thread */
    pthread_mutex_init(&treg_lock, NULL);
    for (size_t i = 0; i < treg_n; i++)
        treg[i].alive = 0;
}

size_t ms_threads_dead_markers(uintptr_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < treg_n && n < cap; i++)
        if (!treg[i].alive)
            out[n++] = treg[i].marker;
    return n;
}

/* ---- stop the world --------------------------------------------------- */
static struct ms_thread_regs *slots;
static int slot_cap;
static _Atomic int slot_next, acks;
static _Atomic int released = 1;

static void futex_wait(_Atomic int *addr, int val)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic int *addr)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void park(const ucontext_t *uc)
{
    if (atomic_load(&released))
        return;
    int i = atomic_fetch_add(&slot_next, 1);
    if (i < slot_cap) {
        struct ms_thread_regs *r = &slots[i];
        r->tid = gettid_raw();
        r->tp = (uintptr_t)__builtin_thread_pointer();
        if (uc) {
            const greg_t *g = uc->uc_mcontext.gregs;
            r->sp = (uintptr_t)g[REG_RSP] - 128; /* the red zone is live */
            r->nregs = 0;
            for (int k = 0; k < NGREG && k < 24; k++)
                r->regs[r->nregs++] = (uintptr_t)g[k];
        } else {
            /* called from a hook: spill callee-saved registers to this frame */
            __builtin_unwind_init();
            r->sp = (uintptr_t)__builtin_frame_address(0) - 256;
            r->nregs = 0;
        }
        r->ok = 1;
    }
    atomic_fetch_add(&acks, 1);
    while (!atomic_load(&released))
        futex_wait(&released, 0);
}

void ms_park_self(void)
{
    park(NULL);
}

static void stop_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    int e = errno;
    if (!ms_ts.in_report) {
        if (ms_ts.busy)
            ms_ts.park_pending = 1;
        else
            park(uc);
    }
    errno = e;
}

/* list thread ids with getdents64 (no malloc, no stdio) */
static int list_tids(pid_t *tids, int cap)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    int n = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            pid_t t = 0;
            for (const char *c = d->d_name; *c; c++)
                t = t * 10 + (*c - '0');
            if (n < cap)
                tids[n++] = t;
        }
    }
    close(fd);
    return n;
}

static int contains(const pid_t *v, int n, pid_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

int ms_stop_world(struct ms_thread_regs *out, int cap)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    extern int (*ms_real_sigaction)(int, const struct sigaction *, struct sigaction *) MS_HIDDEN;
    ms_real_sigaction(ms_stop_signal, &sa, NULL); /* the real one: our hook would hide it */
    slots = out;
    slot_cap = cap;
    atomic_store(&slot_next, 0);
    atomic_store(&acks, 0);
    atomic_store(&released, 0);

    pid_t self = gettid_raw();
    static pid_t sent[8192];
    int nsent = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < 50; round++) {
        pid_t tids[8192];
        int n = list_tids(tids, 8192);
        int fresh = 0;
        for (int i = 0; i < n; i++) {
            extern pid_t ms_trace_writer_tid(void) MS_HIDDEN;
            if (tids[i] == self || tids[i] == ms_trace_writer_tid() || contains(sent, nsent, tids[i]))
                continue; /* the trace writer touches only agent memory: it runs on */
            if (nsent < 8192 && syscall(SYS_tgkill, ms_pid, tids[i], ms_stop_signal) == 0) {
                sent[nsent++] = tids[i];
                fresh++;
            }
        }
        /* wait for the acknowledgements; a thread that exits meanwhile never
         * answers, so the wait is bounded (2 s in all) */
        for (;;) {
            if (atomic_load(&acks) >= nsent)
                break;
            struct timespec now, d = { 0, 1000000 };
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > 2000)
                break;
            nanosleep(&d, NULL);
        }
        if (!fresh && round > 0)
            break;
    }
    int got = atomic_load(&slot_next);
    return got < cap ? got : cap;
}

void ms_start_world(void)
{
    atomic_store(&released, 1);
    futex_wake_all(&released);
}
