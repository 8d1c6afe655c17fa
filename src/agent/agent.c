/* agent.c - start-up, the exit paths, signals, threads, fork and exec.
 *
 * Start-up is in two steps.  ms_init() runs on the first allocation, which
 * may come before any constructor: it only resolves the real functions,
 * reserves the region and reads the options.  The constructor (late_init)
 * runs once libc is fully up: it registers the exit handler, the fork
 * handlers and the fatal-signal handlers.
 *
 * Exit paths, each ending in one leak check (valgrind semantics):
 *  - exit() or return from main: an on_exit handler registered in the
 *    constructor, i.e. before the program's own handlers and before ld.so's
 *    destructor pass, so it runs after all of them, with the exit status;
 *  - _exit()/_Exit(): interposed;
 *  - a fatal signal whose action the program left at default: our handler
 *    reports, then restores the default action and re-raises, so the
 *    process dies exactly as it would have.
 * The report runs on a stack of its own (region memory), with the other
 * threads stopped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "unwind.h"
#include "../common/elfkind.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/sem.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

struct ms_options ms_opt;
pid_t ms_pid, ms_ppid;
int ms_active;
int ms_verify_unwind MS_HIDDEN;
uintptr_t ms_self_lo, ms_self_hi;
uintptr_t ms_self_data_lo MS_HIDDEN, ms_self_data_hi MS_HIDDEN;
char ms_self_path[512];
int (*ms_real_sigaction)(int, const struct sigaction *, struct sigaction *) MS_HIDDEN;
struct ms_thread_regs *ms_stw_regs MS_HIDDEN;
int ms_stw_nregs MS_HIDDEN;

static char saved_preload[4096], saved_options[8192];
static int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
static int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
static void (*real__exit)(int) __attribute__((noreturn));
static uintptr_t exit_lo, exit_hi; /* libc's exit(), to find the caller's frame */
static _Atomic int reporting;

void ms_warn(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "memsleuth: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
}

/* ---- options --------------------------------------------------------------- */
static void read_options(void)
{
    ms_options_init(&ms_opt);
    const char *env = getenv("MEMSLEUTH_OPTIONS");
    const char *pre = getenv("LD_PRELOAD");
    if (pre)
        snprintf(saved_preload, sizeof saved_preload, "%s", pre);
    if (!env)
        return;
    snprintf(saved_options, sizeof saved_options, "%s", env);
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *s = buf, *e; s && *s; s = e) {
        e = strchr(s, MS_OPT_SEP);
        if (e)
            *e++ = 0;
        char err[256];
        ms_options_parse(&ms_opt, s, err, sizeof err);
    }
}

/* our own module: text range (to drop our frames from stacks) and writable
 * data (not a root), read from our ELF headers in memory */
static void find_self(void)
{
    Dl_info di;
    if (!dladdr((void *)find_self, &di) || !di.dli_fbase)
        return;
    snprintf(ms_self_path, sizeof ms_self_path, "%s", di.dli_fname ? di.dli_fname : "memsleuth");
    const ElfW(Ehdr) *eh = di.dli_fbase;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    uintptr_t bias = (uintptr_t)di.dli_fbase;
    uintptr_t tlo = UINTPTR_MAX, thi = 0, dlo = UINTPTR_MAX, dhi = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        uintptr_t lo = bias + ph[i].p_vaddr, hi = lo + ph[i].p_memsz;
        if (ph[i].p_flags & PF_X) {
            tlo = lo < tlo ? lo : tlo;
            thi = hi > thi ? hi : thi;
        }
        if (ph[i].p_flags & PF_W) {
            dlo = lo < dlo ? lo : dlo;
            dhi = hi > dhi ? hi : dhi;
        }
    }
    ms_self_lo = tlo;
    ms_self_hi = thi;
    ms_self_data_lo = dlo & ~(uintptr_t)4095;
    ms_self_data_hi = (dhi + 4095) & ~(uintptr_t)4095;
}

void ms_init(void)
{
    static _Atomic int state;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&state, &expect, 1))
        return;
    ms_hooks_resolve();
    ms_real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    real_sigprocmask = dlsym(RTLD_NEXT, "sigprocmask");
    real_pthread_sigmask = dlsym(RTLD_NEXT, "pthread_sigmask");
    real__exit = dlsym(RTLD_NEXT, "_exit");
    ms_pid = getpid();
    ms_ppid = getppid();
    read_options();
    const char *vu = getenv("MEMSLEUTH_VERIFY_UNWIND");
    ms_verify_unwind = vu && vu[0] && strcmp(vu, "0") != 0;
    find_self();
    if (ms_region_init() < 0 || ms_table_init() < 0) {
        ms_warn("cannot reserve memory for its bookkeeping; the program runs untraced");
        return;
    }
    ms_active = 1;
}

/* ---- the report ------------------------------------------------------------ */
struct report_req {
    int how, status;
    struct ms_scan_self self;
    int result;
};
static struct report_req req;
static ucontext_t report_uc, caller_uc;

/* one stop-the-world at a time: the exit check and a live snapshot */
static pthread_mutex_t world_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ms_thread_regs world_slots[1024];

static void report_body(void)
{
    pthread_mutex_lock(&world_lock);
    ms_graph_prepare(req.how != MS_EXIT_SIGNAL); /* a crash may be inside the loader */
    ms_stw_regs = world_slots;
    ms_stw_nregs = ms_stop_world(world_slots, 1024);
    struct ms_leak_result res;
    memset(&res, 0, sizeof res);
    int checked = ms_leak_check(&req.self, &res) == 0;
    if (checked)
        req.result = ms_report(&res, req.how, req.status);
    else
        ms_warn("the leak check could not run (out of memory for its tables)");
    ms_start_world();
    if (checked)
        ms_graph_emit(&res, 0); /* the heap graph into the trace */
    ms_graph_release();
    pthread_mutex_unlock(&world_lock);
}

/* ---- live snapshots (run on the agent's own thread) -------------------------- */
volatile int ms_snapshot_requested;
int ms_snapshot_interval_ms;

static void snapshot_signal_handler(int sig)
{
    (void)sig;
    ms_snapshot_requested = 1;
}

static uint64_t snap_live;       /* live bytes the last snapshot saw */

int ms_snapshot(int trigger, int pools, int reply_fd)
{
    static int id;
    if (!ms_active || atomic_load(&reporting)) {
        if (reply_fd >= 0)
            dprintf(reply_fd, "error: the process is exiting\n");
        return -1;
    }
    pthread_mutex_lock(&world_lock);
    if (!pools)
        ms_graph_prepare(1); /* the TLS layout (the loader's lock): before the stop */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ms_stw_regs = world_slots;
    ms_stw_nregs = ms_stop_world(world_slots, 1024);
    struct ms_out *o = ms_region_alloc(sizeof *o);
    if (!o) {
        ms_start_world();
        pthread_mutex_unlock(&world_lock);
        return -1;
    }
    if (pools) {
        /* the program's pool trees, printed by the pool library itself while
         * its threads are stopped */
        int (*dump)(FILE *, unsigned) = (int (*)(FILE *, unsigned))dlsym(RTLD_DEFAULT, "ms_pool_dump_all");
        if (!dump) {
            ms_start_world();
            pthread_mutex_unlock(&world_lock);
            if (reply_fd >= 0)
                dprintf(reply_fd, "error: this program does not use libmemsleuth_pool\n");
            ms_region_release(o, sizeof *o);
            return -1;
        }
        FILE *f = reply_fd >= 0 ? fdopen(dup(reply_fd), "w") : NULL;
        if (f) {
            if (dump(f, 0) != 0)
                fprintf(f, "error: the pool registry is busy\n");
            fclose(f);
        }
        ms_start_world();
        pthread_mutex_unlock(&world_lock);
        ms_region_release(o, sizeof *o);
        return 0;
    }
    struct ms_scan_self self;
    memset(&self, 0, sizeof self); /* this thread is the agent's: its stack is no root */
    struct ms_leak_result res;
    memset(&res, 0, sizeof res);
    int ok = ms_leak_check(&self, &res) == 0;
    /* the verdicts, the blocks and the graph are copies now: the program goes
     * on while they are symbolized and written (the stack index is append
     * only, the symbolizer reads the modules' files), so the pause reported
     * is the time the threads stood still */
    ms_start_world();
    clock_gettime(CLOCK_MONOTONIC, &b);
    uint64_t pause = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)(b.tv_nsec - a.tv_nsec);
    if (ok) {
        uint64_t scanned = 0;
        for (size_t i = 0; i < res.nblocks; i++)
            scanned += res.blocks[i].size;
        snap_live = scanned;
        o->fd = reply_fd;
        if (trigger == 4) { /* a peak: into the trace only, the program's output stays its own */
            o->fd = -1;
        } else if (reply_fd < 0) { /* a signal or the interval: the report's destination */
            o->fd = 2;
            if (ms_opt.log_file[0]) {
                char path[1200];
                ms_expand_path(path, sizeof path, ms_opt.log_file);
                int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0)
                    o->fd = fd;
            }
        }
        ms_snapshot_report(&res, o, ++id, trigger, pause, scanned);
        if (o->fd > 2 && o->fd != reply_fd)
            close(o->fd);
    }
    if (ok)
        ms_graph_emit(&res, id); /* the heap graph into the trace */
    ms_graph_release();
    ms_leak_release();
    pthread_mutex_unlock(&world_lock);
    ms_region_release(o, sizeof *o);
    return ok ? 0 : -1;
}

/* Peak snapshots (--snapshot-peak=FACTOR, --snapshot-peak-min=SIZE).  The true
 * peak is only known afterwards, so: the writer thread reads the live heap
 * total every 10 ms (the same figure as the trace's SAMPLE records; the
 * counters are kept by the table anyway, the hooks do nothing more) and
 * takes a quiet snapshot when it reaches FACTOR times the largest heap a
 * peak snapshot held so far (at least SIZE).  After the last one, no sample
 * reached FACTOR times its heap: the largest peak snapshot holds at least
 * 1/FACTOR of the highest heap the sampler saw.  A spike shorter than the
 * 10 ms between samples, or a heap that fell in the moment between the
 * sample and the stop, can escape; the report puts the peak snapshot next to
 * the exact peak replayed from the events, so the gap is never hidden.  The
 * thresholds grow geometrically: all peak snapshots together pause the
 * program about FACTOR/(FACTOR-1) times as long as the last one. */
void ms_snapshot_peak_poll(void)
{
    static uint64_t held; /* the largest heap a peak snapshot held */
    if (!ms_opt.snapshot_peak_pct || !ms_trace_is_on())
        return;
    uint64_t lb, lk;
    ms_table_live(&lb, &lk);
    uint64_t need = held / 100 * (uint64_t)ms_opt.snapshot_peak_pct +
                    held % 100 * (uint64_t)ms_opt.snapshot_peak_pct / 100;
    if (need < ms_opt.snapshot_peak_min)
        need = ms_opt.snapshot_peak_min;
    if (lb < need)
        return;
    snap_live = 0;
    if (ms_snapshot(4, 0, -1) != 0)
        snap_live = lb; /* could not check (out of memory, exiting): do not retry at once */
    if (snap_live > held)
        held = snap_live;
}

/* count threads: freeres is only safe when no other thread runs */
static int nthreads(void)
{
    /* raw reads into a buffer of our own: fopen's FILE and its buffer would be
     * recorded as allocations of the program (this runs at its exit) */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 2;
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = 0;
    int n = 2;
    const char *l = strstr(buf, "\nThreads:");
    if (l)
        n = atoi(l + 9);
    /* a main thread that ended with pthread_exit is a zombie, still counted
     * while the others run; it runs nothing */
    const char *st = strstr(buf, "\nState:");
    if (st && strncmp(st + 7, "\tZ", 2) == 0 && syscall(SYS_gettid) != getpid())
        n--;
    return n - (ms_trace_writer_tid() > 0); /* our writer thread does not count */
}

/* Returns 1 when errors of the error kinds were found.  `self` says from
 * where this thread's stack is live. */
static int run_report(int how, int status, const struct ms_scan_self *self)
{
    int expect = 0;
    if (!ms_active || !atomic_compare_exchange_strong(&reporting, &expect, 1))
        return 0;
    if (ms_opt.leak_check == 0 && !ms_opt.track_fds) {
        ms_trace_end(how, status);
        return 0;
    }
    if (how != MS_EXIT_SIGNAL && ms_opt.freeres && nthreads() == 1) {
        /* dlsym of a missing symbol mallocs its error message: the agent's, not
         * the program's (the freeres calls themselves are the program's frees) */
        ms_ts.in_report = 1;
        void (*fr)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "__libc_freeres");
        void (*cfr)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv");
        ms_ts.in_report = 0;
        if (cfr)
            cfr();
        if (fr)
            fr();
    }
    /* freeres could not run (other threads still run): the exit check leaves
     * out what it would have freed of the threads' stack cache */
    ms_leak_freeres = how != MS_EXIT_SIGNAL && ms_opt.freeres;
    ms_ts.in_report = 1;
    req.how = how;
    req.status = status;
    req.self = *self;
    req.result = 0;
    /* the report runs on a stack of its own: a thread stack may be small,
     * and a fatal signal may come from a stack overflow */
    const size_t ssz = 16UL << 20;
    void *stk = ms_region_alloc(ssz);
    if (stk && getcontext(&report_uc) == 0) {
        report_uc.uc_stack.ss_sp = stk;
        report_uc.uc_stack.ss_size = ssz;
        report_uc.uc_link = &caller_uc;
        makecontext(&report_uc, report_body, 0);
        swapcontext(&caller_uc, &report_uc);
    } else {
        report_body();
    }
    ms_ts.in_report = 0;
    unsigned long nostack, lost = ms_hooks_lost_deferred(&nostack);
    if (lost)
        ms_warn("%lu allocations or frees made by signal handlers could not be recorded (handlers ran back to back "
                "inside the agent); the figures above may be off by that many blocks%s", lost,
                nostack ? ", and more of their allocations have no stack ('stack unknown')" : "");
    else if (nostack)
        ms_warn("%lu allocations made by signal handlers could not be recorded with their stack (handlers ran back "
                "to back inside the agent): their loss records say 'stack unknown'", nostack);
    if (ms_verify_unwind) {
        struct ms_unwind_stats us;
        ms_unwind_stats(&us);
        ms_warn("unwind verification: %llu stacks compared with libunwind, %llu differ (%llu stack ids from the "
                "stack-id cache checked)",
                (unsigned long long)us.verify_checked, (unsigned long long)us.verify_mismatch,
                (unsigned long long)us.verify_kept);
    }
    ms_trace_end(how, status);
    ms_active = 0; /* from here on, pass everything through */
    return req.result;
}

/* this thread's live stack and callee-saved registers at the caller of the
 * exit function: unwind past the agent (and past libc's exit() when
 * lo < hi), so that the dead frames below are not roots */
static void boundary(struct ms_scan_self *s, uintptr_t lo, uintptr_t hi)
{
    unw_context_t ctx;
    unw_cursor_t cur;
    memset(s, 0, sizeof *s);
    s->sp = (uintptr_t)__builtin_frame_address(0);
    if (unw_getcontext(&ctx) || unw_init_local(&cur, &ctx))
        return;
    int found = 0;
    for (int i = 0; i < 64 && unw_step(&cur) > 0; i++) {
        unw_word_t ip;
        unw_get_reg(&cur, UNW_REG_IP, &ip);
        /* ip is a return address: the call is at ip - 1 (exit() ends with a
         * call to a noreturn function, so ip itself may lie past its end) */
        int in_target = lo < hi ? (ip - 1 >= lo && ip - 1 < hi) : !(ip - 1 >= ms_self_lo && ip - 1 < ms_self_hi);
        if (!in_target)
            continue;
        if (lo < hi && unw_step(&cur) <= 0)
            return;
        found = 1;
        break;
    }
    if (!found) {
        if (getenv("MEMSLEUTH_DEBUG"))
            ms_warn("debug: exit boundary not found; scanning from the current frame");
        return;
    }
    unw_word_t sp;
    unw_get_reg(&cur, UNW_REG_SP, &sp);
    s->sp = (uintptr_t)sp;
    if (getenv("MEMSLEUTH_DEBUG"))
        ms_warn("debug: exit boundary sp=%#lx", (unsigned long)sp);
    static const int regs[] = { UNW_X86_64_RBX, UNW_X86_64_RBP, UNW_X86_64_R12,
                                UNW_X86_64_R13, UNW_X86_64_R14, UNW_X86_64_R15 };
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        unw_word_t v;
        if (unw_get_reg(&cur, regs[i], &v) == 0)
            s->regs[s->nregs++] = (uintptr_t)v;
    }
}

static void exit_handler(int status, void *arg)
{
    (void)arg;
    struct ms_scan_self self;
    ms_ts.in_report = 1; /* the unwinder may allocate */
    boundary(&self, exit_lo, exit_hi);
    ms_ts.in_report = 0;
    int errors = run_report(MS_EXIT_NORMAL, status, &self);
    if (errors && ms_opt.error_exitcode) {
        fflush(NULL);
        real__exit(ms_opt.error_exitcode);
    }
}

static void underscore_exit(int status)
{
    struct ms_scan_self self;
    ms_ts.in_report = 1;
    boundary(&self, 0, 0);
    ms_ts.in_report = 0;
    int errors = run_report(MS_EXIT_UNDERSCORE, status, &self);
    if (!real__exit)
        syscall(SYS_exit_group, status);
    real__exit(errors && ms_opt.error_exitcode ? ms_opt.error_exitcode : status);
}

__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
    underscore_exit(status);
    __builtin_unreachable();
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
    underscore_exit(status);
    __builtin_unreachable();
}

/* ---- fatal signals ------------------------------------------------------------ */
static const int fatal_sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGABRT, SIGBUS, SIGFPE,
                                  SIGSEGV, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE,
                                  SIGXCPU, SIGXFSZ, SIGSYS };
#define NSIGS 65
static unsigned char we_own[NSIGS];            /* our handler is installed */
static struct sigaction prog_view[NSIGS];      /* what the program believes */

static int is_fatal(int sig)
{
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++)
        if (fatal_sigs[i] == sig)
            return 1;
    return 0;
}

static void die_by(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    ms_real_sigaction(sig, &dfl, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    real_sigprocmask(SIG_UNBLOCK, &s, NULL);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
    /* a synchronous fault that was not delivered again: return, and the
     * faulting instruction raises it once more, now at default */
}

static void fatal_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    if (ms_ts.in_report || atomic_load(&reporting)) {
        die_by(sig);
        return;
    }
    const ucontext_t *uc = ucv;
    struct ms_scan_self self;
    memset(&self, 0, sizeof self);
    self.sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP] - 128;
    for (int k = 0; k < NGREG && k < 24; k++)
        self.regs[self.nregs++] = (uintptr_t)uc->uc_mcontext.gregs[k];
    run_report(MS_EXIT_SIGNAL, 128 + sig, &self);
    die_by(sig);
}

static void install_fatal(int sig)
{
    if (sig == ms_opt.snapshot_signal)
        return;
    struct sigaction cur;
    if (ms_real_sigaction(sig, NULL, &cur) != 0)
        return;
    if (cur.sa_handler != SIG_DFL || (cur.sa_flags & SA_SIGINFO))
        return; /* ignored (nohup) or handled: leave it */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fatal_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    if (ms_real_sigaction(sig, &sa, NULL) == 0) {
        we_own[sig] = 1;
        prog_view[sig] = cur;
    }
}

__attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction *act,
                                                     struct sigaction *old)
{
    if (!ms_real_sigaction)
        ms_init();
    if (!ms_real_sigaction) {
        errno = ENOSYS;
        return -1;
    }
    if (sig > 0 && sig < NSIGS && is_fatal(sig) && we_own[sig]) {
        struct sigaction before = prog_view[sig];
        if (act && (act->sa_handler != SIG_DFL || (act->sa_flags & SA_SIGINFO))) {
            int r = ms_real_sigaction(sig, act, NULL);
            if (r != 0)
                return r;
            we_own[sig] = 0;
        } else if (act) {
            prog_view[sig] = *act;
        }
        if (old)
            *old = before;
        return 0;
    }
    int r = ms_real_sigaction(sig, act, old);
    if (r == 0 && act && sig > 0 && sig < NSIGS && is_fatal(sig) && act->sa_handler == SIG_DFL &&
        !(act->sa_flags & SA_SIGINFO) && ms_active)
        install_fatal(sig);
    return r;
}

__attribute__((visibility("default"))) sighandler_t signal(int sig, sighandler_t h)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

/* the stop signal must never be blocked, or stopping the world times out */
static const sigset_t *unblockable(int how, const sigset_t *set, sigset_t *tmp)
{
    if (!set || how == SIG_UNBLOCK || !ms_stop_signal || !sigismember(set, ms_stop_signal))
        return set;
    *tmp = *set;
    sigdelset(tmp, ms_stop_signal);
    return tmp;
}

__attribute__((visibility("default"))) int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (!real_sigprocmask)
        ms_init();
    sigset_t tmp;
    return real_sigprocmask(how, unblockable(how, set, &tmp), old);
}

__attribute__((visibility("default"))) int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    if (!real_pthread_sigmask)
        ms_init();
    sigset_t tmp;
    return real_pthread_sigmask(how, unblockable(how, set, &tmp), old);
}

/* ---- waits the kernel ends with EINTR on any stop -------------------------------- */
/* epoll_wait, sigtimedwait, semtimedop and a receive on a socket with
 * SO_RCVTIMEO return EINTR when their thread is stopped, even by ptrace
 * with no handler run (signal(7)).  The ptrace stop (stw.c) turns
 * that EINTR back into a restart; to restart with the time left, not the
 * whole timeout again, it reads the deadline noted here.  The calls
 * themselves are the real ones, with the same arguments (sigtimedwait gets
 * a copy of the timeout in our TLS, so that the tracer may rewrite it). */
struct wait_rec {
    long nr, arg0;
    uint64_t deadline;
};

static void wait_enter(struct wait_rec *save, long nr, long arg0, const struct timespec *rel)
{
    save->nr = ms_ts.wait_nr;
    save->arg0 = ms_ts.wait_arg0;
    save->deadline = ms_ts.wait_deadline;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms_ts.wait_nr = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ms_ts.wait_deadline = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec +
                          (uint64_t)rel->tv_sec * 1000000000ull + (uint64_t)rel->tv_nsec;
    ms_ts.wait_arg0 = arg0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ms_ts.wait_nr = nr;
}

static void wait_leave(const struct wait_rec *save)
{
    ms_ts.wait_nr = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ms_ts.wait_deadline = save->deadline;
    ms_ts.wait_arg0 = save->arg0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ms_ts.wait_nr = save->nr;
}

__attribute__((visibility("default"))) int epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout)
{
    static int (*real)(int, struct epoll_event *, int, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "epoll_wait");
    if (timeout <= 0 || !ms_active)
        return real(epfd, ev, n, timeout);
    struct wait_rec save;
    struct timespec rel = { timeout / 1000, (long)(timeout % 1000) * 1000000 };
    wait_enter(&save, SYS_epoll_wait, epfd, &rel);
    int r = real(epfd, ev, n, timeout);
    int e = errno;
    wait_leave(&save);
    errno = e;
    return r;
}

__attribute__((visibility("default"))) int epoll_pwait(int epfd, struct epoll_event *ev, int n, int timeout,
                                                       const sigset_t *mask)
{
    static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);
    if (!real)
        real = dlsym(RTLD_NEXT, "epoll_pwait");
    if (timeout <= 0 || !ms_active)
        return real(epfd, ev, n, timeout, mask);
    struct wait_rec save;
    struct timespec rel = { timeout / 1000, (long)(timeout % 1000) * 1000000 };
    wait_enter(&save, SYS_epoll_pwait, epfd, &rel);
    int r = real(epfd, ev, n, timeout, mask);
    int e = errno;
    wait_leave(&save);
    errno = e;
    return r;
}

__attribute__((visibility("default"))) int sigtimedwait(const sigset_t *set, siginfo_t *info,
                                                        const struct timespec *timeout)
{
    static int (*real)(const sigset_t *, siginfo_t *, const struct timespec *);
    if (!real)
        real = dlsym(RTLD_NEXT, "sigtimedwait");
    if (!timeout || !ms_active || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000 || timeout->tv_sec < 0)
        return real(set, info, timeout);
    struct wait_rec save;
    struct timespec saved_ts = ms_ts.wait_ts;
    wait_enter(&save, SYS_rt_sigtimedwait, (long)set, timeout);
    ms_ts.wait_ts = *timeout;
    int r = real(set, info, &ms_ts.wait_ts);
    int e = errno;
    wait_leave(&save);
    ms_ts.wait_ts = saved_ts;
    errno = e;
    return r;
}

/* epoll_pwait2 takes its timeout as a relative timespec the kernel never
 * writes back: as sigtimedwait, the real call gets a copy in our TLS that
 * the tracer may rewrite with the time left */
__attribute__((visibility("default"))) int epoll_pwait2(int epfd, struct epoll_event *ev, int n,
                                                        const struct timespec *timeout, const sigset_t *mask)
{
    static int (*real)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
    if (!real)
        real = dlsym(RTLD_NEXT, "epoll_pwait2");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (!timeout || !ms_active || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000 || timeout->tv_sec < 0 ||
        (!timeout->tv_sec && !timeout->tv_nsec))
        return real(epfd, ev, n, timeout, mask);
    struct wait_rec save;
    struct timespec saved_ts = ms_ts.wait_ts;
    wait_enter(&save, SYS_epoll_pwait2, epfd, timeout);
    ms_ts.wait_ts = *timeout;
    int r = real(epfd, ev, n, &ms_ts.wait_ts, mask);
    int e = errno;
    wait_leave(&save);
    ms_ts.wait_ts = saved_ts;
    errno = e;
    return r;
}

/* semtimedop: the same (a relative timeout, never written back) */
__attribute__((visibility("default"))) int semtimedop(int semid, struct sembuf *sops, size_t nsops,
                                                      const struct timespec *timeout)
{
    static int (*real)(int, struct sembuf *, size_t, const struct timespec *);
    if (!real)
        real = dlsym(RTLD_NEXT, "semtimedop");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (!timeout || !ms_active || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000 || timeout->tv_sec < 0)
        return real(semid, sops, nsops, timeout);
    struct wait_rec save;
    struct timespec saved_ts = ms_ts.wait_ts;
    wait_enter(&save, SYS_semtimedop, semid, timeout);
    ms_ts.wait_ts = *timeout;
    int r = real(semid, sops, nsops, &ms_ts.wait_ts);
    int e = errno;
    wait_leave(&save);
    ms_ts.wait_ts = saved_ts;
    errno = e;
    return r;
}

/* A blocking receive on a socket with SO_RCVTIMEO ends with EINTR on any
 * stop (the kernel's sock_intr_errno).  Its time left depends on the socket's
 * timeout, which the tracer reads itself (it shares the descriptor table):
 * the wrappers note only when the call began (a deadline of "now"). */
static const struct timespec no_time;

__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    static ssize_t (*real)(int, void *, size_t, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "recv");
    if (!ms_active || (flags & MSG_DONTWAIT))
        return real(fd, buf, n, flags);
    struct wait_rec save;
    wait_enter(&save, SYS_recvfrom, fd, &no_time);
    ssize_t r = real(fd, buf, n, flags);
    int e = errno;
    wait_leave(&save);
    errno = e;
    return r;
}

__attribute__((visibility("default"))) ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                                                        struct sockaddr *from, socklen_t *fromlen)
{
    static ssize_t (*real)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    if (!real)
        real = dlsym(RTLD_NEXT, "recvfrom");
    if (!ms_active || (flags & MSG_DONTWAIT))
        return real(fd, buf, n, flags, from, fromlen);
    struct wait_rec save;
    wait_enter(&save, SYS_recvfrom, fd, &no_time);
    ssize_t r = real(fd, buf, n, flags, from, fromlen);
    int e = errno;
    wait_leave(&save);
    errno = e;
    return r;
}

__attribute__((visibility("default"))) ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, struct msghdr *, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "recvmsg");
    if (!ms_active || (flags & MSG_DONTWAIT))
        return real(fd, msg, flags);
    struct wait_rec save;
    wait_enter(&save, SYS_recvmsg, fd, &no_time);
    ssize_t r = real(fd, msg, flags);
    int e = errno;
    wait_leave(&save);
    errno = e;
    return r;
}

#if defined(__x86_64__)
/* libc's syscall(): the same calls made by number (syscall(SYS_epoll_wait,
 * ...)) are noted as the wrappers above note theirs.  Everything else is
 * what glibc's syscall() does: the six arguments in registers, -errno to
 * errno.  (A syscall instruction of the program's own, not through libc,
 * is out of reach: it keeps its EINTR.) */
__attribute__((visibility("default"))) long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    long r;
    /* where the call's relative timeout is, and whether the kernel reads it
     * through a pointer (then the call gets our TLS copy) */
    const struct timespec *tsp = NULL;
    struct timespec rel;
    int noted = 0, by_ptr = 0;
    if (ms_active) {
        switch (nr) {
        case SYS_epoll_wait:
        case SYS_epoll_pwait:
            if ((int)d > 0) {
                rel.tv_sec = (int)d / 1000;
                rel.tv_nsec = (long)((int)d % 1000) * 1000000;
                tsp = &rel;
            }
            break;
        case SYS_rt_sigtimedwait:
            tsp = (const struct timespec *)c;
            by_ptr = 3;
            break;
        case SYS_epoll_pwait2:
        case SYS_semtimedop:
            tsp = (const struct timespec *)d;
            by_ptr = 4;
            break;
        case SYS_recvfrom:
        case SYS_recvmsg: /* SO_RCVTIMEO: see recv() */
            if (!((nr == SYS_recvfrom ? d : c) & MSG_DONTWAIT)) {
                rel = no_time;
                tsp = &rel;
            }
            break;
        default:
            break;
        }
        /* a bad pointer is the kernel's to refuse (EFAULT): read through
         * process_vm_readv, which fails instead of faulting */
        if (by_ptr && tsp) {
            struct iovec lo = { &rel, sizeof rel }, ro = { (void *)tsp, sizeof rel };
            if (ms_rsys(SYS_process_vm_readv, ms_rsys(SYS_getpid, 0, 0, 0, 0, 0, 0), (long)&lo, 1,
                             (long)&ro, 1, 0) != (long)sizeof rel ||
                rel.tv_nsec < 0 || rel.tv_nsec >= 1000000000 || rel.tv_sec < 0)
                tsp = NULL;
            else
                tsp = &rel;
        }
        noted = tsp != NULL;
    }
    if (!noted) {
        r = ms_rsys(nr, a, b, c, d, e, f);
    } else {
        struct wait_rec save;
        struct timespec saved_ts = ms_ts.wait_ts;
        wait_enter(&save, nr, a, tsp);
        if (by_ptr) {
            ms_ts.wait_ts = rel;
            if (by_ptr == 3)
                c = (long)&ms_ts.wait_ts;
            else
                d = (long)&ms_ts.wait_ts;
        }
        r = ms_rsys(nr, a, b, c, d, e, f);
        wait_leave(&save);
        ms_ts.wait_ts = saved_ts;
    }
    if ((unsigned long)r > -4096ul) {
        errno = (int)-r;
        return -1;
    }
    return r;
}
#endif

/* ---- threads -------------------------------------------------------------------- */
static pthread_key_t exit_key;
static int have_exit_key;

struct start {
    void *(*fn)(void *);
    void *arg;
};

static void thread_gone(void *v)
{
    (void)v;
    ms_trace_thread_named(); /* its name at the end (set after its first allocation?) */
    ms_threads_note_exit();
}

/* The thread's start: it ends in a tail call, so that no frame of the agent
 * stays below the thread function's (the unwinder's stack-id cache covers
 * only stacks whose program frames are all below the hooks' own).  Hence
 * the marker is the stack pointer's value, not the address of a local:
 * a local whose address escaped would keep this frame. */
static void *start_wrapper(void *p)
{
    struct start s = *(struct start *)p;
    ms_rfree(p);
    uintptr_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    ms_threads_note_self(sp);
    if (have_exit_key)
        pthread_setspecific(exit_key, (void *)1);
    return s.fn(s.arg);
}

__attribute__((visibility("default"))) int pthread_create(pthread_t *t, const pthread_attr_t *a,
                                                          void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real)
        real = dlsym(RTLD_NEXT, "pthread_create");
    if (!real)
        return EAGAIN;
    struct start *s = ms_active ? ms_rmalloc(sizeof *s) : NULL;
    if (!s)
        return real(t, a, fn, arg);
    s->fn = fn;
    s->arg = arg;
    int r = real(t, a, start_wrapper, s);
    if (r != 0)
        ms_rfree(s);
    return r;
}

/* a thread named after its first allocation: a THREAD record with the new name.
 * Renamed by another thread: the record is written now, for the target's tid, since
 * the target may never write one again (the main thread has no exit hook: ended
 * by pthread_exit, it kept its old name in the report) */
__attribute__((visibility("default"))) int pthread_setname_np(pthread_t t, const char *name)
{
    static int (*real)(pthread_t, const char *);
    if (!real)
        real = dlsym(RTLD_NEXT, "pthread_setname_np");
    if (!real)
        return ENOSYS;
    int r = real(t, name);
    if (r == 0 && ms_active) {
        if (pthread_equal(t, pthread_self()))
            ms_trace_thread_named();
        else
            ms_trace_thread_renamed(ms_threads_tid_of(t), name);
    }
    return r;
}

/* ---- fork and exec ------------------------------------------------------------- */
void ms_stacks_lock(void) MS_HIDDEN;
void ms_stacks_unlock(void) MS_HIDDEN;
static pid_t pid_before_fork;

static void fork_prepare(void)
{
    pid_before_fork = getpid();
    if (ms_active) {
        ms_trace_pool_lock(); /* the pool state is whole in the child */
        ms_stacks_lock();
        ms_table_lock_all();
    }
    ms_region_fork_prepare(); /* last: ms_rmalloc takes no other lock */
}

static void fork_parent(void)
{
    ms_region_fork_done();
    if (ms_active) {
        ms_table_unlock_all();
        ms_stacks_unlock();
        ms_trace_pool_unlock();
    }
}

static void fork_child(void)
{
    ms_region_fork_done();
    if (ms_active) {
        ms_table_unlock_all();
        ms_stacks_unlock();
    }
    ms_pid = getpid();
    ms_ppid = pid_before_fork;
    ms_threads_after_fork_child();
    ms_errors_reset();
    atomic_store(&reporting, 0);
    ms_trace_thread_after_fork_child();
    ms_trace_after_fork_child();
}

__attribute__((visibility("default"))) pid_t fork(void)
{
    static pid_t (*real)(void);
    if (!real)
        real = dlsym(RTLD_NEXT, "fork");
    pid_t p = real();
    if (p > 0)
        ms_trace_fork(p);
    return p;
}

__attribute__((visibility("default"))) pid_t vfork(void)
{
    /* the child of vfork shares our memory: run it as a fork (POSIX allows
     * it; valgrind does the same), so the agent's state stays consistent */
    return fork();
}

/* a copy of envp with LD_PRELOAD and MEMSLEUTH_OPTIONS as we were started */
static char **fix_env(char *const envp[], char **buf, size_t cap, char *pre, char *opt)
{
    size_t n = 0, i;
    int have_pre = 0, have_opt = 0;
    if (!saved_preload[0])
        return (char **)envp;
    for (i = 0; envp && envp[i]; i++) {
        if (!strncmp(envp[i], "LD_PRELOAD=", 11) && strstr(envp[i], ms_self_path))
            have_pre = 1;
        if (!strncmp(envp[i], "MEMSLEUTH_OPTIONS=", 18))
            have_opt = 1;
    }
    if (have_pre && (have_opt || !saved_options[0]))
        return (char **)envp;
    for (i = 0; envp && envp[i] && n + 3 < cap; i++) {
        if (!have_pre && !strncmp(envp[i], "LD_PRELOAD=", 11))
            continue;
        buf[n++] = envp[i];
    }
    if (!have_pre) {
        snprintf(pre, 4200, "LD_PRELOAD=%s", saved_preload);
        buf[n++] = pre;
    }
    if (!have_opt && saved_options[0]) {
        snprintf(opt, 8300, "MEMSLEUTH_OPTIONS=%s", saved_options);
        buf[n++] = opt;
    }
    buf[n] = NULL;
    return buf;
}

#define ENV_CAP 4096
#define WITH_ENV(envp, fixed)                       \
    char *envbuf_[ENV_CAP];                         \
    char pre_[4200], opt_[8300];                    \
    char **fixed = fix_env(envp, envbuf_, ENV_CAP, pre_, opt_)

/* A statically linked program the traced one starts is out of LD_PRELOAD's
 * reach: say so (as the launcher does for the program it starts), once per
 * program name, since it runs untraced.  FILE is searched in PATH when
 * SEARCH and it has no '/' (execvp, posix_spawnp).  No allocation: this may
 * run in a vfork child. */
static void say_if_static(const char *file, int search)
{
    if (!ms_active || !file || !file[0])
        return;
    static char said[4][256];
    static int nsaid;
    char full[4096];
    const char *path = file;
    if (search && !strchr(file, '/')) {
        const char *dirs = getenv("PATH");
        if (!dirs)
            dirs = "/bin:/usr/bin";
        path = NULL;
        for (const char *d = dirs; *d && !path;) {
            const char *e = strchr(d, ':');
            size_t dl = e ? (size_t)(e - d) : strlen(d);
            int k = snprintf(full, sizeof full, "%.*s%s%s", (int)dl, d, dl ? "/" : "", file);
            if (k > 0 && k < (int)sizeof full && access(full, X_OK) == 0)
                path = full;
            d += dl + (e != NULL);
        }
        if (!path)
            return;
    }
    if (!ms_elf_is_static(path))
        return;
    for (int i = 0; i < nsaid; i++)
        if (!strncmp(said[i], path, sizeof said[i] - 1))
            return;
    if (nsaid < 4)
        snprintf(said[nsaid++], sizeof said[0], "%s", path);
    ms_warn("'%s' is statically linked: it cannot be traced; running it untraced", path);
}

__attribute__((visibility("default"))) int execve(const char *path, char *const argv[], char *const envp[])
{
    static int (*real)(const char *, char *const[], char *const[]);
    if (!real)
        real = dlsym(RTLD_NEXT, "execve");
    if (ms_active)
        ms_stw_wait_idle();
    say_if_static(path, 0);
    ms_trace_exec(path);
    WITH_ENV(envp, env);
    return real(path, argv, env);
}

__attribute__((visibility("default"))) int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

__attribute__((visibility("default"))) int execvpe(const char *file, char *const argv[], char *const envp[])
{
    static int (*real)(const char *, char *const[], char *const[]);
    if (!real)
        real = dlsym(RTLD_NEXT, "execvpe");
    if (ms_active)
        ms_stw_wait_idle();
    say_if_static(file, 1);
    ms_trace_exec(file);
    WITH_ENV(envp, env);
    return real(file, argv, env);
}

__attribute__((visibility("default"))) int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

__attribute__((visibility("default"))) int fexecve(int fd, char *const argv[], char *const envp[])
{
    static int (*real)(int, char *const[], char *const[]);
    if (!real)
        real = dlsym(RTLD_NEXT, "fexecve");
    if (ms_active)
        ms_stw_wait_idle();
    ms_trace_exec("(fd)");
    WITH_ENV(envp, env);
    return real(fd, argv, env);
}

__attribute__((visibility("default"))) int posix_spawn(pid_t *pid, const char *path,
                                                       const posix_spawn_file_actions_t *fa,
                                                       const posix_spawnattr_t *at, char *const argv[],
                                                       char *const envp[])
{
    static int (*real)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                       const posix_spawnattr_t *, char *const[], char *const[]);
    if (!real)
        real = dlsym(RTLD_NEXT, "posix_spawn");
    say_if_static(path, 0);
    WITH_ENV(envp, env);
    return real(pid, path, fa, at, argv, env);
}

__attribute__((visibility("default"))) int posix_spawnp(pid_t *pid, const char *file,
                                                        const posix_spawn_file_actions_t *fa,
                                                        const posix_spawnattr_t *at, char *const argv[],
                                                        char *const envp[])
{
    static int (*real)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                       const posix_spawnattr_t *, char *const[], char *const[]);
    if (!real)
        real = dlsym(RTLD_NEXT, "posix_spawnp");
    say_if_static(file, 1);
    WITH_ENV(envp, env);
    return real(pid, file, fa, at, argv, env);
}

/* ---- dlclose: remember the modules, their code may be in a stack ---------------- */
struct ms_modrec {
    char path[512];
    uintptr_t bias, lo, hi;
};
struct ms_modrec *ms_mod_history MS_HIDDEN;
int ms_mod_history_n MS_HIDDEN;
#define MOD_HISTORY_CAP 2048

static int note_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (!info->dlpi_name || !info->dlpi_name[0])
        return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
        lo = a < lo ? a : lo;
        hi = a + info->dlpi_phdr[i].p_memsz > hi ? a + info->dlpi_phdr[i].p_memsz : hi;
    }
    for (int i = 0; i < ms_mod_history_n; i++)
        if (ms_mod_history[i].bias == info->dlpi_addr && !strcmp(ms_mod_history[i].path, info->dlpi_name))
            return 0;
    if (ms_mod_history_n < MOD_HISTORY_CAP) {
        struct ms_modrec *m = &ms_mod_history[ms_mod_history_n++];
        snprintf(m->path, sizeof m->path, "%s", info->dlpi_name);
        m->bias = info->dlpi_addr;
        m->lo = lo;
        m->hi = hi;
    }
    return 0;
}

__attribute__((visibility("default"))) int dlclose(void *h)
{
    static int (*real)(void *);
    if (!real)
        real = dlsym(RTLD_NEXT, "dlclose");
    if (ms_active) {
        if (!ms_mod_history)
            ms_mod_history = ms_region_alloc(MOD_HISTORY_CAP * sizeof *ms_mod_history);
        if (ms_mod_history)
            dl_iterate_phdr(note_module, NULL);
    }
    int r = real(h);
    /* the unwinder must not walk a library mapped later at the same
     * addresses with the old library's table */
    if (ms_active)
        ms_unwind_invalidate();
    return r;
}

/* ---- constructor ---------------------------------------------------------------- */
__attribute__((constructor)) static void late_init(void)
{
    ms_init();
    if (!ms_active)
        return;
    ms_stop_signal = SIGRTMAX - 2;
    /* run libunwind's one-time initialization now, not first inside a hook
     * where a signal handler could re-enter it */
    ms_hooks_late_init();
    ms_ts.busy = 1;
    (void)ms_capture_stack();
    ms_leave_busy();
    void *ex = dlsym(RTLD_NEXT, "exit");
    Dl_info di;
    const ElfW(Sym) *sym = NULL;
    if (ex && dladdr1(ex, &di, (void **)&sym, RTLD_DL_SYMENT) && sym) {
        exit_lo = (uintptr_t)ex;
        exit_hi = exit_lo + (sym->st_size ? sym->st_size : 64);
    }
    if (pthread_key_create(&exit_key, thread_gone) == 0)
        have_exit_key = 1;
    ms_threads_note_main();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++)
        install_fatal(fatal_sigs[i]);
    on_exit(exit_handler, NULL);
    ms_snapshot_interval_ms = ms_opt.snapshot_interval_ms;
    if (ms_opt.snapshot_signal) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = snapshot_signal_handler;
        sa.sa_flags = SA_RESTART;
        ms_real_sigaction(ms_opt.snapshot_signal, &sa, NULL);
        we_own[ms_opt.snapshot_signal] = 0; /* the program may take it over */
    }
    ms_trace_start();
}
