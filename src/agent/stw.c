/* stw.c - threads: who is alive, and stopping them for a scan.
 *
 * Registry: every thread started through pthread_create notes the address
 * of a local variable (its "marker") when it starts, and marks itself dead
 * when it exits.  glibc keeps the stacks of exited threads mapped in a
 * cache; a mapping holding only dead markers is dead memory, not a root.
 *
 * Stop-the-world, first choice: ptrace, as LeakSanitizer does.  A tracer
 * task (clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_UNTRACED), exit signal 0,
 * a stack of its own, raw system calls only) seizes every other thread of
 * the process with PTRACE_SEIZE + PTRACE_INTERRUPT, reads its registers
 * into the slots, tells the scanning thread, waits for the word to resume
 * and detaches.  No signal handler runs in the program's threads, so the
 * kernel restarts the blocking calls they were in (nanosleep, poll, select,
 * read...) as if nothing had happened; the few calls the kernel ends with
 * EINTR on any stop (epoll_wait, sigtimedwait, semop...: signal(7)) are turned
 * back into a restart by the tracer, with the time left when the agent's
 * wrapper recorded the call's deadline (agent.c: wait_enter).
 *
 * Fallback (ptrace refused: the process is traced by gdb or strace,
 * seccomp, Yama scope 2/3, another uid): a real-time signal is sent to every
 * other thread.  Its handler records the thread's registers and stack
 * pointer from the signal context and waits on a futex until released.  A
 * handler interrupts sleeping calls (EINTR), so the agent says once that
 * snapshots may do so.
 *
 * Either way, a thread inside an allocation hook does not stop at once: it
 * sets park_pending (the tracer sets it through the thread's TLS and lets
 * the thread run) and parks itself when it leaves the hook, so a stopped
 * thread never holds an agent lock.
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
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

int ms_stop_signal;
extern pid_t ms_trace_writer_tid(void) MS_HIDDEN;

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
    ms_stw_after_fork_child();
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

/* the thread ids in one getdents64 buffer of a /proc/.../task directory,
 * appended to tids[n..cap); returns the new count.  No libc call: the
 * tracer task (raw syscalls only) uses it too */
static int add_tids(const char *buf, long got, pid_t *tids, int n, int cap)
{
    for (long off = 0; off < got;) {
        const struct dirent64 *d = (const struct dirent64 *)(buf + off);
        off += d->d_reclen;
        if (d->d_name[0] < '0' || d->d_name[0] > '9')
            continue;
        pid_t t = 0;
        for (const char *c = d->d_name; *c; c++)
            t = t * 10 + (*c - '0');
        if (n < cap)
            tids[n++] = t;
    }
    return n;
}

/* list thread ids with getdents64 (no malloc, no stdio) */
static int task_is_zombie(pid_t tgid, pid_t tid);

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
        n = add_tids(buf, got, tids, n, cap);
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

void ms_stw_after_fork_child(void);

static int stop_world_signal(struct ms_thread_regs *out, int cap)
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
            if (tids[i] == self || tids[i] == ms_trace_writer_tid() || contains(sent, nsent, tids[i]))
                continue; /* the trace writer touches only agent memory: it runs on */
            /* a main thread that ended with pthread_exit stays listed as a
             * zombie: it would never answer */
            if (tids[i] == ms_pid && task_is_zombie(ms_pid, tids[i]))
                continue;
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

/* ---- stop the world with ptrace --------------------------------------- */
#if defined(__x86_64__)
#define MS_HAVE_PTRACE_STW 1

/* The tracer shares our memory and, having no TLS of its own, the TLS of the
 * thread that cloned it: it must not touch errno (so no libc syscall
 * wrappers), take a lock or allocate.  Every call below is a raw system call
 * returning -errno. */
#define RSYS0(n) ms_rsys(n, 0, 0, 0, 0, 0, 0)
#define RSYS2(n, a, b) ms_rsys(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define RSYS3(n, a, b, c) ms_rsys(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RSYS4(n, a, b, c, d) ms_rsys(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#define ERESTARTNOHAND_ 514 /* the kernel's: restart the call unless a handler runs */
#define PT_MAX 8192
#define STOP_LIMIT_NS 2000000000ull   /* stopping: like the signal path, 2 s in all */
#define HOLD_LIMIT_NS 120000000000ull /* the scan: resume anyway after 2 min */

enum { TS_NONE, TS_SEIZED, TS_STOPPED, TS_GONE, TS_LEFT };
/* shared by the scanning thread and the tracer (same memory) */
static struct {
    _Atomic int go;      /* scanner -> tracer: 1 ptrace allowed (Yama), -1 give up */
    _Atomic int state;   /* tracer -> scanner: see ST_* */
    _Atomic int resume;  /* scanner -> tracer: detach all */
    pid_t tgid, scanner, writer;
    long tls_off;        /* &ms_ts minus the thread pointer: the same in every thread */
    int nparkers;        /* threads left running to park themselves (busy in a hook) */
    int nsigstops;       /* threads caught in a signal-delivery-stop (MEMSLEUTH_DEBUG) */
    int err, err_tid;    /* why ptrace failed */
    int test_fail;       /* MEMSLEUTH_TEST_NO_PTRACE: tests of the fallback */
    int n;
    pid_t tid[PT_MAX];
    unsigned char st[PT_MAX];
    int sig[PT_MAX];     /* caught in a signal-delivery-stop: delivered on detach */
} tc;
enum { ST_RUNNING, ST_STOPPED, ST_FAILED, ST_DONE, ST_TIMEDOUT };
static pid_t tracer_pid;
static void *tracer_stack;
#define TRACER_STACK (256 * 1024)
static int was_dumpable = 1, set_ptracer;

static uint64_t rnow(void)
{
    struct timespec t;
    RSYS2(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void rsleep_ns(long ns)
{
    struct timespec d = { 0, ns };
    RSYS2(SYS_nanosleep, &d, NULL);
}

static void rfutex_wait(_Atomic int *addr, int val, long ns)
{
    struct timespec d = { ns / 1000000000, ns % 1000000000 };
    ms_rsys(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, val, (long)&d, 0, 0);
}

static void rfutex_wake(_Atomic int *addr)
{
    RSYS3(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff);
}

static char *put_num(char *p, long v)
{
    char d[24];
    int n = 0;
    do
        d[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n)
        *p++ = d[--n];
    return p;
}

static char *put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

/* the threads of the traced process, from /proc/TGID/task (the tracer is a
 * process of its own: /proc/self would be itself) */
static int tracer_list(pid_t *tids, int cap)
{
    char path[64], *p = put_str(path, "/proc/");
    p = put_num(p, tc.tgid);
    p = put_str(p, "/task");
    *p = 0;
    long fd = RSYS4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    char buf[4096];
    int n = 0;
    for (;;) {
        long got = RSYS3(SYS_getdents64, fd, buf, sizeof buf);
        if (got <= 0)
            break;
        n = add_tids(buf, got, tids, n, cap);
    }
    RSYS2(SYS_close, fd, 0);
    return n;
}

/* a thread that has exited but is still listed (a main thread that called
 * pthread_exit stays a zombie while the others run): EPERM from
 * PTRACE_SEIZE, and nothing to stop */
static int task_is_zombie(pid_t tgid, pid_t tid)
{
    char path[80], *p = put_str(path, "/proc/");
    p = put_num(p, tgid);
    p = put_str(p, "/task/");
    p = put_num(p, tid);
    p = put_str(p, "/stat");
    *p = 0;
    long fd = RSYS4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* gone */
    char buf[512];
    long got = RSYS3(SYS_read, fd, buf, sizeof buf - 1);
    RSYS2(SYS_close, fd, 0);
    if (got <= 0)
        return 1;
    buf[got] = 0;
    char *rp = NULL; /* the state follows the last ')': the name may hold one */
    for (char *c = buf; *c; c++)
        if (*c == ')')
            rp = c;
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static long pt(long req, pid_t tid, long addr, long data)
{
    return RSYS4(SYS_ptrace, req, tid, addr, data);
}

/* the thread's agent state (its TLS), read and written through ptrace: a
 * bad thread pointer (a thread made with a raw clone) fails, never faults */
static int peek(pid_t tid, uintptr_t addr, long *out)
{
    return pt(PTRACE_PEEKDATA, tid, (long)addr, (long)out) == 0;
}

static int poke(pid_t tid, uintptr_t addr, long v)
{
    return pt(PTRACE_POKEDATA, tid, (long)addr, v) == 0;
}

/* wait (bounded) for the seized threads to report their stop */
static void tracer_wait_stops(int from, uint64_t deadline)
{
    for (int spins = 0;; spins++) {
        int pending = 0;
        for (int i = from; i < tc.n; i++) {
            if (tc.st[i] != TS_SEIZED)
                continue;
            int status = 0;
            long r = RSYS4(SYS_wait4, tc.tid[i], &status, __WALL | WNOHANG, NULL);
            if (r == 0) {
                pending++;
                continue;
            }
            if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status)) {
                tc.st[i] = TS_GONE; /* it exited meanwhile */
                continue;
            }
            if (WIFSTOPPED(status)) {
                tc.st[i] = TS_STOPPED;
                /* A signal came before our interrupt: the thread sits in a
                 * signal-delivery-stop.  It is stopped all the same; the
                 * signal is handed back when it is detached, so the program
                 * gets it once, as it would have. */
                if ((status >> 16) == 0) {
                    tc.sig[i] = WSTOPSIG(status);
                    tc.nsigstops++;
                }
            }
        }
        if (!pending || rnow() > deadline)
            return;
        if (spins > 20)
            rsleep_ns(spins > 200 ? 1000000 : 20000);
        else
            RSYS0(SYS_sched_yield);
    }
}

/* Restarts, made invisible.  While a thread is stopped its timeouts run on:
 *  - nanosleep, clock_nanosleep, poll, futex waits restart against their
 *    absolute end (ERESTART_RESTARTBLOCK): nothing to do;
 *  - select, pselect6, ppoll restart (ERESTARTNOHAND) with the time that
 *    was left when they were interrupted, which the kernel wrote into the
 *    caller's timeout: the time spent stopped is taken off it on resume,
 *    so the call ends when it would have;
 *  - epoll_wait, epoll_pwait, epoll_pwait2, sigtimedwait, semop, semtimedop
 *    end with EINTR on any stop, whatever ptrace does (signal(7)).  Turned
 *    back into a restart (ERESTARTNOHAND: restarted unless a handler of the
 *    program runs first, then EINTR, as natively), with the time left at
 *    resume, from the deadline the agent's wrapper noted (agent.c,
 *    wait_enter; libc's syscall() is one of the wrappers).  Such a call with
 *    a timeout made without a wrapper (a syscall instruction of the
 *    program's own) keeps its EINTR, as after a SIGSTOP/SIGCONT. */
enum { FIX_NONE, FIX_RESTART, FIX_EPOLL, FIX_SIGTIMEDWAIT, FIX_TIMESPEC, FIX_TIMEVAL, FIX_SOCK };
#define FIX_MAX 256
static struct fix {
    int idx, kind;
    uintptr_t addr;       /* the timeout to rewrite; FIX_SOCK: the socket */
    uint64_t at, deadline; /* FIX_SOCK: deadline is when the call began */
    uint64_t timeo;       /* FIX_SOCK: its SO_RCVTIMEO, ns */
    struct user_regs_struct regs;
} fixes[FIX_MAX];
static int nfixes;

/* A receive on a socket with SO_RCVTIMEO (signal(7): EINTR after any stop)
 * has nowhere to take a shorter timeout but the socket itself: for the
 * restarted call the socket's SO_RCVTIMEO is the time left, and the tracer
 * puts the program's value back once the thread sleeps in the call again
 * (the kernel reads the option once, when the call begins). */
static struct sock_restore {
    pid_t tid;
    int fd;
    struct timeval orig, set;
} restores[FIX_MAX];
static int nrestores;

static long rgetsockopt_tv(int fd, struct timeval *tv)
{
    unsigned int len = sizeof *tv;
    return ms_rsys(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, (long)&len, 0);
}

static long rsetsockopt_tv(int fd, const struct timeval *tv)
{
    return ms_rsys(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, sizeof *tv, 0);
}

static void tracer_note_restart(int idx, const struct user_regs_struct *r)
{
    if ((long)r->orig_rax < 0 || nfixes >= FIX_MAX)
        return;
    pid_t tid = tc.tid[idx];
    long nr = (long)r->orig_rax, ret = (long)r->rax;
    struct fix *f = &fixes[nfixes];
    f->idx = idx;
    f->kind = FIX_NONE;
    f->at = rnow();
    f->regs = *r;
    if (ret == -ERESTARTNOHAND_) {
        uintptr_t tsp = nr == SYS_select || nr == SYS_pselect6 ? r->r8 : nr == SYS_ppoll ? r->rdx : 0;
        if (tsp) {
            f->addr = tsp;
            f->kind = nr == SYS_select ? FIX_TIMEVAL : FIX_TIMESPEC;
        }
    } else if (ret == -EINTR) {
        uintptr_t ts = r->fs_base + (uintptr_t)tc.tls_off;
        long rec_nr = 0, rec_arg = 0, rec_dl = 0;
        int have_rec = r->fs_base && peek(tid, ts + offsetof(struct ms_tstate, wait_nr), &rec_nr) &&
                       peek(tid, ts + offsetof(struct ms_tstate, wait_arg0), &rec_arg) &&
                       peek(tid, ts + offsetof(struct ms_tstate, wait_deadline), &rec_dl) && rec_nr == nr;
        f->deadline = (uint64_t)rec_dl;
        switch (nr) {
        case SYS_epoll_wait:
        case SYS_epoll_pwait:
            if ((int)r->r10 < 0)
                f->kind = FIX_RESTART;
            else if (have_rec && rec_arg == (long)(int)r->rdi)
                f->kind = FIX_EPOLL;
            break;
        case SYS_rt_sigtimedwait:
            if (!r->rdx) {
                f->kind = FIX_RESTART;
            } else if (have_rec && r->rdx == ts + offsetof(struct ms_tstate, wait_ts)) {
                f->kind = FIX_SIGTIMEDWAIT; /* the wrapper passed its own copy of the timeout */
                f->addr = r->rdx;
            }
            break;
        case SYS_semop:
            f->kind = FIX_RESTART;
            break;
        case SYS_recvfrom:
        case SYS_recvmsg:
            if (have_rec && rec_arg == (long)(int)r->rdi) {
                struct timeval tv;
                if (rgetsockopt_tv((int)r->rdi, &tv) == 0 && (tv.tv_sec || tv.tv_usec)) {
                    f->kind = FIX_SOCK;
                    f->addr = (uintptr_t)(int)r->rdi;
                    f->timeo = (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull;
                }
            }
            break;
        case SYS_semtimedop:
        case SYS_epoll_pwait2:
            if (!r->r10) {
                f->kind = FIX_RESTART;
            } else if (have_rec && r->r10 == ts + offsetof(struct ms_tstate, wait_ts)) {
                f->kind = FIX_SIGTIMEDWAIT; /* the same: a copy of the timeout in the TLS */
                f->addr = r->r10;
            }
            break;
        default:
            break;
        }
    }
    if (f->kind != FIX_NONE)
        nfixes++;
}

/* just before the thread is detached: its timeout as it stands now */
static void tracer_apply_restart(int idx)
{
    for (int k = 0; k < nfixes; k++) {
        struct fix *f = &fixes[k];
        if (f->idx != idx)
            continue;
        pid_t tid = tc.tid[idx];
        uint64_t now = rnow();
        int64_t left = (int64_t)(f->deadline - now);
        if (left < 0)
            left = 0;
        long a = 0, b = 0;
        switch (f->kind) {
        case FIX_EPOLL:
            f->regs.r10 = (unsigned long)((left + 999999) / 1000000);
            /* fall through */
        case FIX_RESTART:
            f->regs.rax = (unsigned long)-ERESTARTNOHAND_;
            pt(PTRACE_SETREGS, tid, 0, (long)&f->regs);
            break;
        case FIX_SIGTIMEDWAIT:
            if (poke(tid, f->addr, left / 1000000000) && poke(tid, f->addr + 8, left % 1000000000)) {
                f->regs.rax = (unsigned long)-ERESTARTNOHAND_;
                pt(PTRACE_SETREGS, tid, 0, (long)&f->regs);
            }
            break;
        case FIX_SOCK:
            left = (int64_t)(f->deadline + f->timeo - now);
            if (left <= 0) {
                f->regs.rax = (unsigned long)-EAGAIN; /* its timeout passed while stopped: as natively */
                pt(PTRACE_SETREGS, tid, 0, (long)&f->regs);
            } else if (nrestores < FIX_MAX) {
                struct sock_restore *s = &restores[nrestores];
                struct timeval tv = { (time_t)(left / 1000000000), (suseconds_t)((left % 1000000000 + 999) / 1000) };
                if (tv.tv_usec >= 1000000) {
                    tv.tv_sec++;
                    tv.tv_usec = 0;
                }
                if (rgetsockopt_tv((int)f->addr, &s->orig) == 0 && rsetsockopt_tv((int)f->addr, &tv) == 0) {
                    if (rgetsockopt_tv((int)f->addr, &s->set) != 0)
                        s->set = tv; /* as the kernel keeps it (jiffies), if it can be read back */
                    s->tid = tid;
                    s->fd = (int)f->addr;
                    nrestores++;
                    f->regs.rax = (unsigned long)-ERESTARTNOHAND_;
                    pt(PTRACE_SETREGS, tid, 0, (long)&f->regs);
                }
            }
            break;
        case FIX_TIMESPEC:
        case FIX_TIMEVAL:
            if (peek(tid, f->addr, &a) && peek(tid, f->addr + 8, &b)) {
                int64_t unit = f->kind == FIX_TIMEVAL ? 1000 : 1; /* the second field in ns or us */
                int64_t t = (int64_t)a * 1000000000 + (int64_t)b * unit - (int64_t)(now - f->at);
                if (t < 0)
                    t = 0;
                poke(tid, f->addr, t / 1000000000);
                poke(tid, f->addr + 8, t % 1000000000 / unit);
            }
            break;
        default:
            break;
        }
        f->idx = -1;
    }
}

static void tracer_release(int i)
{
    tracer_apply_restart(i);
    pt(PTRACE_DETACH, tc.tid[i], 0, tc.sig[i]);
}

/* the state letter of a thread of the traced process ('?': unreadable) */
static char tracer_thread_state(pid_t tid)
{
    char path[80], *p = put_str(path, "/proc/");
    p = put_num(p, tc.tgid);
    p = put_str(p, "/task/");
    p = put_num(p, tid);
    p = put_str(p, "/stat");
    *p = 0;
    long fd = RSYS4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return '?';
    char buf[512];
    long got = RSYS3(SYS_read, fd, buf, sizeof buf - 1);
    RSYS2(SYS_close, fd, 0);
    if (got <= 0)
        return '?';
    buf[got] = 0;
    char *rp = NULL;
    for (char *c = buf; *c; c++)
        if (*c == ')')
            rp = c;
    return rp && rp[1] == ' ' ? rp[2] : '?';
}

/* the sockets' own timeouts back, once each restarted receive sleeps again
 * (or has ended: 50 ms at most); not if the program set another meanwhile */
static void tracer_restore_sockets(void)
{
    uint64_t t0 = rnow();
    for (int k = 0; k < nrestores; k++) {
        struct sock_restore *s = &restores[k];
        for (;;) {
            char c = tracer_thread_state(s->tid);
            if (c == 'S' || c == '?' || c == 'Z' || c == 'X' || rnow() - t0 > 50000000ull)
                break;
            rsleep_ns(100000);
        }
        struct timeval cur;
        if (rgetsockopt_tv(s->fd, &cur) == 0 && cur.tv_sec == s->set.tv_sec && cur.tv_usec == s->set.tv_usec)
            rsetsockopt_tv(s->fd, &s->orig);
    }
    nrestores = 0;
}

static void tracer_detach_all(void)
{
    tracer_wait_stops(0, 0); /* a late stop: detached properly below, its signal kept */
    for (int i = 0; i < tc.n; i++) {
        if (tc.st[i] == TS_STOPPED)
            tracer_release(i);
        /* a thread still on its way to the stop (TS_SEIZED) is detached by
         * the kernel when the tracer exits, its pending stop dropped */
        tc.st[i] = TS_LEFT;
    }
    tracer_restore_sockets();
}

static int tracer_known(pid_t t)
{
    for (int i = 0; i < tc.n; i++)
        if (tc.tid[i] == t)
            return 1;
    return 0;
}

static void tracer_finish(int state)
{
    atomic_store(&tc.state, state);
    rfutex_wake(&tc.state);
    RSYS2(SYS_exit, 0, 0);
}

static int tracer_main(void *arg)
{
    (void)arg;
    /* the scanning thread gone (the process killed, or an exec by another
     * thread): the kernel kills us, and detaches every thread we hold */
    RSYS2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    /* ps and pgrep tell it from the program by its name (its command line,
     * in the shared memory, is the program's) */
    RSYS2(SYS_prctl, PR_SET_NAME, "memsleuth-stop");
    if (RSYS0(SYS_getppid) != tc.tgid)
        tracer_finish(ST_FAILED);
    nfixes = 0;
    nrestores = 0;
    uint64_t t0 = rnow();
    while (atomic_load(&tc.go) == 0 && rnow() - t0 < STOP_LIMIT_NS)
        rfutex_wait(&tc.go, 0, 10000000);
    if (atomic_load(&tc.go) != 1)
        tracer_finish(ST_FAILED);
    uint64_t deadline = rnow() + STOP_LIMIT_NS;
    static pid_t tids[PT_MAX]; /* the tracer's own: one tracer at a time */
    for (int round = 0; round < 100; round++) {
        int n = tracer_list(tids, PT_MAX);
        if (n < 0) {
            tc.err = ENOENT;
            tracer_detach_all();
            tracer_finish(ST_FAILED);
        }
        int from = tc.n;
        for (int i = 0; i < n && tc.n < PT_MAX; i++) {
            pid_t t = tids[i];
            if (t == tc.scanner || t == tc.writer || tracer_known(t))
                continue;
            long r = tc.test_fail ? -EPERM : pt(PTRACE_SEIZE, t, 0, 0);
            if (r == -ESRCH)
                continue; /* exited */
            if (r < 0) {
                if (!tc.test_fail && task_is_zombie(tc.tgid, t))
                    continue;
                /* traced already (gdb, strace), seccomp, Yama, another uid */
                tc.err = (int)-r;
                tc.err_tid = t;
                tracer_wait_stops(0, deadline);
                tracer_detach_all();
                tracer_finish(ST_FAILED);
            }
            tc.tid[tc.n] = t;
            tc.sig[tc.n] = 0;
            tc.st[tc.n++] = TS_SEIZED;
            pt(PTRACE_INTERRUPT, t, 0, 0);
        }
        if (tc.n == from && round > 0)
            break; /* no new thread: every thread that can run is ours */
        tracer_wait_stops(from, deadline);
    }
    /* the registers, in the signal context's order (REG_R8...REG_CR2: the
     * pc at 16), as the leak check reads them */
    tc.nparkers = 0;
    nfixes = 0;
    for (int i = 0; i < tc.n; i++) {
        if (tc.st[i] != TS_STOPPED)
            continue;
        pid_t t = tc.tid[i];
        struct user_regs_struct r;
        if (pt(PTRACE_GETREGS, t, 0, (long)&r) != 0)
            continue;
        if (!tc.sig[i])
            tracer_note_restart(i, &r);
        /* inside a hook (its TLS says busy): it may hold an agent lock; let
         * it run to the end of the hook, where it parks itself.  A thread
         * running the agent's report code is left running, as before. */
        uintptr_t ts = r.fs_base + (uintptr_t)tc.tls_off;
        long w0 = 0, w1 = 0;
        if (r.fs_base && peek(t, ts + offsetof(struct ms_tstate, busy), &w0) &&
            peek(t, ts + offsetof(struct ms_tstate, in_report), &w1)) {
            int busy = (int)(w0 & 0xffffffff);
            if ((int)(w1 & 0xffffffff)) {
                tracer_release(i);
                tc.st[i] = TS_LEFT;
                continue;
            }
            if (busy && offsetof(struct ms_tstate, park_pending) == offsetof(struct ms_tstate, busy) + 4) {
                poke(t, ts + offsetof(struct ms_tstate, busy), (long)((unsigned long)w0 | (1ul << 32)));
                tc.nparkers++;
                tracer_release(i);
                tc.st[i] = TS_LEFT;
                continue;
            }
        }
        int k = atomic_fetch_add(&slot_next, 1);
        if (k >= slot_cap)
            continue;
        struct ms_thread_regs *o = &slots[k];
        o->tid = t;
        o->tp = r.fs_base;
        o->sp = r.rsp - 128; /* the red zone is live */
        const unsigned long g[] = { r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
                                    r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp,
                                    r.rip, r.eflags, r.cs, 0, 0, 0, 0 };
        o->nregs = 0;
        for (size_t j = 0; j < sizeof g / sizeof g[0]; j++)
            o->regs[o->nregs++] = g[j];
        o->ok = 1;
    }
    atomic_store(&tc.state, ST_STOPPED);
    rfutex_wake(&tc.state);
    /* the scan; resume anyway if it never ends (a lock held by a stopped
     * thread?): a program left stopped is worse than an inexact scan */
    uint64_t hold = rnow();
    while (!atomic_load(&tc.resume)) {
        if (rnow() - hold > HOLD_LIMIT_NS) {
            tracer_detach_all();
            tracer_finish(ST_TIMEDOUT);
        }
        rfutex_wait(&tc.resume, 0, 100000000);
    }
    tracer_detach_all();
    tracer_finish(ST_DONE);
    return 0;
}

static int yama_scope(void)
{
    static int scope = -2;
    if (scope == -2) {
        scope = -1;
        int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char c = 0;
            if (read(fd, &c, 1) == 1 && c >= '0' && c <= '9')
                scope = c - '0';
            close(fd);
        }
    }
    return scope;
}

static void undo_privs(void)
{
    if (set_ptracer)
        prctl(PR_SET_PTRACER, 0, 0, 0, 0);
    set_ptracer = 0;
    if (!was_dumpable)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    was_dumpable = 1;
}

static void tracer_reap(void)
{
    int status;
    while (syscall(SYS_wait4, tracer_pid, &status, __WALL, NULL) < 0 && errno == EINTR)
        ;
    tracer_pid = 0;
    undo_privs();
}

void ms_stw_tracer_stack(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)tracer_stack;
    *hi = tracer_stack ? (uintptr_t)tracer_stack + TRACER_STACK : 0;
}

/* 0: the world is stopped (the slots filled); -1: ptrace cannot be used
 * (everything undone; the caller falls back to the signal) */
static int stop_world_ptrace(struct ms_thread_regs *out, int cap)
{
    if (!tracer_stack) {
        void *m = mmap(NULL, TRACER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return -1;
        mprotect(m, 4096, PROT_NONE); /* a guard page */
        tracer_stack = m;
    }
    slots = out;
    slot_cap = cap;
    atomic_store(&slot_next, 0);
    atomic_store(&acks, 0);
    atomic_store(&released, 0);
    atomic_store(&tc.go, 0);
    atomic_store(&tc.state, ST_RUNNING);
    atomic_store(&tc.resume, 0);
    tc.tgid = ms_pid;
    tc.scanner = gettid_raw();
    tc.writer = ms_trace_writer_tid();
    tc.tls_off = (long)((uintptr_t)&ms_ts - (uintptr_t)__builtin_thread_pointer());
    tc.n = 0;
    tc.nparkers = 0;
    tc.nsigstops = 0;
    tc.err = tc.err_tid = 0;
    const char *tf = getenv("MEMSLEUTH_TEST_NO_PTRACE");
    tc.test_fail = tf && tf[0] == '1';
    /* a process that is not dumpable (setuid, or it said so) cannot be
     * attached to: dumpable for the time of the stop */
    was_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0;
    if (!was_dumpable)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    /* no signal may run on the tracer: it shares this thread's TLS (errno) */
    sigset_t all, old;
    sigfillset(&all);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(long));
    int pid = clone(tracer_main, (char *)tracer_stack + TRACER_STACK,
                    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, NULL);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(long));
    if (pid <= 0) {
        tc.err = errno;
        undo_privs();
        atomic_store(&released, 1);
        return -1;
    }
    tracer_pid = pid;
    /* Yama ptrace_scope 1: only an ancestor may trace, unless we name the
     * tracer (the tracer is our child, not our ancestor) */
    if (yama_scope() == 1 && prctl(PR_SET_PTRACER, pid, 0, 0, 0) == 0)
        set_ptracer = 1;
    atomic_store(&tc.go, 1);
    rfutex_wake(&tc.go);
    /* wait for the tracer's word; a tracer killed on its way (seccomp) says
     * nothing: its exit is the answer */
    for (int i = 0; i < 500 && atomic_load(&tc.state) == ST_RUNNING; i++) {
        rfutex_wait(&tc.state, ST_RUNNING, 10000000);
        int status;
        if (atomic_load(&tc.state) == ST_RUNNING &&
            syscall(SYS_wait4, tracer_pid, &status, __WALL | WNOHANG, NULL) == tracer_pid) {
            tracer_pid = 0; /* reaped */
            break;
        }
    }
    if (atomic_load(&tc.state) != ST_STOPPED) {
        if (tracer_pid > 0) {
            if (atomic_load(&tc.state) == ST_RUNNING)
                syscall(SYS_tgkill, tracer_pid, tracer_pid, SIGKILL); /* the kernel detaches all */
            tracer_reap();
        } else {
            undo_privs();
        }
        atomic_store(&released, 1);
        futex_wake_all(&released);
        return -1;
    }
    /* threads left to finish their hook park themselves (bounded, as the
     * signal path's wait) */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&acks) < tc.nparkers) {
        struct timespec now, d = { 0, 200000 };
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > 2000)
            break;
        nanosleep(&d, NULL);
    }
    return 0;
}
#endif

static int dbg;
static struct timespec stop_t0;
#ifdef MS_HAVE_PTRACE_STW
static int tracer_sigstops(void) { return tc.nsigstops; }
static int tracer_parkers(void) { return tc.nparkers; }
#else
static int tracer_sigstops(void) { return 0; }
static int tracer_parkers(void) { return 0; }
#endif

int ms_stop_world(struct ms_thread_regs *out, int cap)
{
    struct timespec a, b;
    dbg = getenv("MEMSLEUTH_DEBUG") != NULL;
    clock_gettime(CLOCK_MONOTONIC, &a);
    stop_t0 = a;
    int got = -1;
    const char *how = "ptrace";
#ifdef MS_HAVE_PTRACE_STW
    if (stop_world_ptrace(out, cap) == 0) {
        got = atomic_load(&slot_next);
        got = got < cap ? got : cap;
    } else {
        static int said;
        if (!said) {
            said = 1;
            char why[96] = "";
            if (tc.err_tid)
                snprintf(why, sizeof why, " (thread %d: %s)", tc.err_tid, strerror(tc.err));
            else if (tc.err)
                snprintf(why, sizeof why, " (%s)", strerror(tc.err));
            ms_warn("cannot stop the threads with ptrace%s; stopping them with a signal instead: snapshots "
                    "and the leak check may cut short the program's sleeping calls (EINTR)", why);
        }
    }
#endif
    if (got < 0) {
        how = "signal";
        got = stop_world_signal(out, cap);
    }
    if (dbg) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        ms_warn("debug: stopped %d threads with %s in %.3f ms (%d caught in a signal-delivery-stop, %d parked "
                "at the end of a hook)", got, how,
                (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6,
                got >= 0 && how[0] == 'p' ? tracer_sigstops() : 0, how[0] == 'p' ? tracer_parkers() : 0);
    }
    /* tests only: hold the world stopped, to send signals meanwhile */
    const char *hold = getenv("MEMSLEUTH_TEST_HOLD_MS");
    if (hold && atoi(hold) > 0) {
        struct timespec d = { atoi(hold) / 1000, (long)(atoi(hold) % 1000) * 1000000 };
        while (nanosleep(&d, &d) != 0 && errno == EINTR)
            ;
    }
    return got;
}

void ms_start_world(void)
{
    if (dbg) {
        struct timespec b;
        clock_gettime(CLOCK_MONOTONIC, &b);
        ms_warn("debug: resumed the threads after %.3f ms stopped",
                (double)(b.tv_sec - stop_t0.tv_sec) * 1e3 + (double)(b.tv_nsec - stop_t0.tv_nsec) / 1e6);
    }
    atomic_store(&released, 1);
    futex_wake_all(&released);
#ifdef MS_HAVE_PTRACE_STW
    if (tracer_pid > 0) {
        atomic_store(&tc.resume, 1);
        rfutex_wake(&tc.resume);
        tracer_reap();
        if (atomic_load(&tc.state) == ST_TIMEDOUT)
            ms_warn("the threads were resumed after %d s while the scan still ran: its verdicts may be inexact",
                    (int)(HOLD_LIMIT_NS / 1000000000ull));
    }
#endif
}

/* an exec while the world is stopped (by a thread not stopped yet) would
 * leave the tracer behind as a zombie of the new program: wait for the
 * stop to end first (bounded) */
void ms_stw_wait_idle(void)
{
    for (int i = 0; i < 2000 && !atomic_load(&released); i++) {
        struct timespec d = { 0, 1000000 };
        nanosleep(&d, NULL);
    }
}

/* the child of a fork made while the world was stopped (by a thread the
 * tracer had not reached yet): no tracer is ours, nothing is stopped */
void ms_stw_after_fork_child(void)
{
#ifdef MS_HAVE_PTRACE_STW
    tracer_pid = 0;
    set_ptracer = 0;
    was_dumpable = 1;
#endif
    atomic_store(&released, 1);
}
