/*
 * Unit test of src/agent/unwind.{h,c} (memsleuth).  TAP-style output
 * ("ok N - what" / "not ok N - what"), a final "N passed, M failed" line,
 * exit status 1 on any failure.  Built and run by
 * tests/unit/build_test_unwind.sh OUTDIR (twice: helpers compiled with
 * -O2 -fomit-frame-pointer, and with -O0).
 *
 * argv[1]: the directory holding libunwind_dl.so (dlopen'd in a loop).
 * UW_ONLY=group,group... runs only those groups: deep (recursion, first
 * frame, max, memo, libc qsort/bsearch), signal (raise, sigaltstack incl.
 * one inside the thread descriptor's mapping, SIGALRM on a busy loop),
 * cxx (exceptions), threads (8 threads x 100k captures with dlopen/dlclose),
 * stacks (user-supplied thread stack, makecontext coroutine), fork, jit
 * (code without unwind info, mmap'd and in the program), garbage (random
 * register states), nested (signals while tables are built), verify.
 *
 * How stacks are compared: twin_capture() calls ms_unwind_capture and the
 * reference unwinder (unw_backtrace, or in signal-nesting tests libunwind's
 * cursor loop) through ONE indirect call instruction (the function is
 * compiled at -O0 so that gcc cannot duplicate the loop body), so both see
 * the same stack and the same return address; the two arrays must be equal
 * element by element, including pcs[0] (the return address into
 * twin_capture: this proves that ms_unwind_capture's first frame is its
 * caller, exactly like unw_backtrace's).
 */
#include "unwind.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- the helpers (unwind_deep.c, compiled -O2 -fomit-frame-pointer or -O0) */
typedef void (*uw_leaf_fn)(void *ctx);
int uw_deep(int depth, uw_leaf_fn leaf, void *ctx);
int uw_qsort(uw_leaf_fn leaf, void *ctx);
int uw_bsearch(uw_leaf_fn leaf, void *ctx);
unsigned uw_busy(volatile int *stop);
int uw_raise(int sig, int depth);
int uw_call_stub(void *stub, void (*cb)(void));
int uw_caller_a(uw_leaf_fn leaf, void *ctx);
int uw_nocfi(int depth, uw_leaf_fn leaf, void *ctx); /* unwind_nocfi.c: no unwind info */
int uw_caller_b(uw_leaf_fn leaf, void *ctx);
int uwcxx_run(int mode, uw_leaf_fn leaf, void *ctx); /* libunwind_cxx.so */
void *main_addr_for_plt(void);                       /* an address in the test program */

/* ---------------------------------------------------------------- */
/* TAP                                                               */
/* ---------------------------------------------------------------- */

static int g_n, g_fail;

static int check(int cond, const char *fmt, ...)
{
    va_list ap;
    g_n++;
    printf("%s %d - ", cond ? "ok" : "not ok", g_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!cond)
        g_fail++;
    return cond;
}

/* ---------------------------------------------------------------- */
/* twin captures                                                     */
/* ---------------------------------------------------------------- */

#define MAXF 160
typedef int (*capfn)(void **, int);

struct twin {
    capfn fn[2];
    int max;
    int n[2];
    uintptr_t pcs[2][MAXF];
};

/* libunwind's cursor loop, exactly like unw_backtrace's slow path: the
 * context is taken here and the first step leaves this frame */
__attribute__((noinline)) int cursor_backtrace(void **buf, int max)
{
    unw_context_t uc;
    unw_cursor_t c;
    if (unw_getcontext(&uc) || unw_init_local(&c, &uc))
        return 0;
    int n = 0;
    while (n < max && unw_step(&c) > 0) {
        unw_word_t ip;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0)
            break;
        buf[n++] = (void *)ip;
    }
    return n;
}

static capfn fast_fn(void)
{
    return (capfn)(void (*)(void))ms_unwind_capture;
}

static void twin_init(struct twin *t, capfn ref, int max)
{
    memset(t, 0, sizeof *t);
    t->fn[0] = fast_fn();
    t->fn[1] = ref;
    t->max = max;
}

static volatile int g_two = 2;

/* one call instruction for both unwinders */
__attribute__((noinline, optimize("O0"))) void twin_capture(struct twin *t)
{
    int nw = g_two;
    for (int w = 0; w < nw; w++)
        t->n[w] = t->fn[w]((void **)t->pcs[w], t->max);
}

static int twin_equal(const struct twin *t)
{
    if (t->n[0] != t->n[1])
        return 0;
    for (int i = 0; i < t->n[0]; i++)
        if (t->pcs[0][i] != t->pcs[1][i])
            return 0;
    return 1;
}

static const char *sym(uintptr_t pc, char *buf, size_t len)
{
    Dl_info di;
    if (pc && dladdr((void *)(pc - 1), &di) && di.dli_fname) {
        const char *f = strrchr(di.dli_fname, '/');
        f = f ? f + 1 : di.dli_fname;
        if (di.dli_sname)
            snprintf(buf, len, "%s+0x%lx (%s)", di.dli_sname, (unsigned long)(pc - (uintptr_t)di.dli_saddr), f);
        else
            snprintf(buf, len, "%s+0x%lx", f, (unsigned long)(pc - (uintptr_t)di.dli_fbase));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

static void twin_dump(const struct twin *t)
{
    int m = t->n[0] > t->n[1] ? t->n[0] : t->n[1];
    printf("#   fast n=%d, reference n=%d\n", t->n[0], t->n[1]);
    for (int i = 0; i < m; i++) {
        char b[256];
        uintptr_t a = i < t->n[0] ? t->pcs[0][i] : 0, r = i < t->n[1] ? t->pcs[1][i] : 0;
        printf("#   %3d %c %#14lx %#14lx %s\n", i, a == r ? ' ' : '!', (unsigned long)a, (unsigned long)r,
               sym(r ? r : a, b, sizeof b));
    }
}

static int twin_check(const struct twin *t, const char *what)
{
    int ok = twin_equal(t);
    check(ok, "%s: fast == reference, %d frames", what, t->n[0]);
    if (!ok)
        twin_dump(t);
    return ok;
}

/* is pc inside function fn (by the dynamic symbol table: -rdynamic) */
static int pc_in(uintptr_t pc, void *fn)
{
    Dl_info di;
    return dladdr((void *)(pc - 1), &di) && di.dli_saddr == fn;
}

struct leafctx {
    struct twin t;
    int called;
    uintptr_t frame; /* leaf_twin's frame address */
};

__attribute__((noinline)) void leaf_twin(void *ctx)
{
    struct leafctx *c = ctx;
    c->frame = (uintptr_t)__builtin_frame_address(0);
    twin_capture(&c->t);
    c->called++;
    __asm__ volatile("" ::: "memory");
}

static struct ms_unwind_stats stats_now(void)
{
    struct ms_unwind_stats s;
    ms_unwind_stats(&s);
    return s;
}

/* ---------------------------------------------------------------- */
/* PLT detection for the signal test (which fallbacks are expected)  */
/* ---------------------------------------------------------------- */

static int pc_in_plt(uintptr_t pc)
{
    Dl_info di;
    if (!dladdr((void *)pc, &di) || !di.dli_fname)
        return 0;
    const char *path = di.dli_fname;
    Dl_info mi;
    if (dladdr((void *)main_addr_for_plt(), &mi) && mi.dli_fbase == di.dli_fbase)
        path = "/proc/self/exe";
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    struct stat st;
    int res = 0;
    if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(Elf64_Ehdr)) {
        uint8_t *f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f != MAP_FAILED) {
            const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
            const Elf64_Shdr *sh = (const Elf64_Shdr *)(f + eh->e_shoff);
            const char *names = (const char *)(f + sh[eh->e_shstrndx].sh_offset);
            uintptr_t bias = eh->e_type == ET_DYN ? (uintptr_t)di.dli_fbase : 0;
            for (int i = 0; i < eh->e_shnum; i++)
                if (!strncmp(names + sh[i].sh_name, ".plt", 4) && pc - bias >= sh[i].sh_addr &&
                    pc - bias < sh[i].sh_addr + sh[i].sh_size)
                    res = 1;
            munmap(f, (size_t)st.st_size);
        }
    }
    close(fd);
    return res;
}

/* ---------------------------------------------------------------- */
/* 1. deep recursion, 2. through libc                                */
/* ---------------------------------------------------------------- */

static void test_deep(void)
{
    struct leafctx c;
    twin_init(&c.t, unw_backtrace, MAXF);
    c.called = 0;
    uw_deep(40, leaf_twin, &c);
    twin_check(&c.t, "deep recursion (40 levels x 2 frames: alloca, VLA, realigned, DRAP, 100 KB, callee-saved)");
    check(c.called == 1 && c.t.n[0] >= 83, "deep recursion: the whole stack is there (%d frames >= 83)", c.t.n[0]);
    /* the first frame: the return address into the function that called
     * ms_unwind_capture, then the return address into that one's caller */
    check(c.t.n[0] >= 2 && pc_in(c.t.pcs[0][0], (void *)twin_capture) && pc_in(c.t.pcs[0][1], (void *)leaf_twin),
          "first frame: pcs[0] is in twin_capture (the caller of ms_unwind_capture), pcs[1] in leaf_twin; "
          "unw_backtrace from the same call instruction gives the same pcs[0]");

    /* max truncates exactly like unw_backtrace */
    int ok = 1;
    for (int max = 1; max <= 12; max++) {
        struct leafctx d;
        twin_init(&d.t, unw_backtrace, max);
        d.called = 0;
        uw_deep(8, leaf_twin, &d);
        if (!twin_equal(&d.t) || d.t.n[0] != max) {
            ok = 0;
            twin_dump(&d.t);
        }
    }
    check(ok, "max = 1..12: exactly max frames, equal to unw_backtrace(buf, max)");

    /* the same capture site and stack pointer under two different callers,
     * alternately, with varying max: repeated captures must not return a
     * remembered stack whose words have changed */
    ok = 1;
    int same_start = 1;
    uintptr_t first_sp_pc = 0;
    for (int i = 0; i < 400; i++) {
        struct leafctx d;
        twin_init(&d.t, unw_backtrace, i % 7 == 3 ? 3 : MAXF);
        d.called = 0;
        (i & 1 ? uw_caller_b : uw_caller_a)(leaf_twin, &d);
        if (!twin_equal(&d.t)) {
            if (ok)
                twin_dump(&d.t);
            ok = 0;
        }
        if (i == 0)
            first_sp_pc = d.frame;
        else if (d.frame != first_sp_pc)
            same_start = 0;
    }
    check(ok, "400 captures alternating between two callers of one capture site: each equals unw_backtrace");
    check(same_start, "... and the capture started at the same stack address from both callers");

    /* innermost frames vary (three call paths), the outer stack is the
     * same: walks join remembered ones part way */
    ok = 1;
    for (int i = 0; i < 600; i++) {
        struct leafctx d;
        twin_init(&d.t, unw_backtrace, i % 11 == 5 ? 9 : MAXF);
        d.called = 0;
        switch (i % 3) {
        case 0: uw_deep(3 + i % 4, leaf_twin, &d); break;
        case 1: uw_caller_a(leaf_twin, &d); break;
        default: uw_qsort(leaf_twin, &d); break;
        }
        if (!twin_equal(&d.t)) {
            if (ok)
                twin_dump(&d.t);
            ok = 0;
        }
    }
    check(ok, "600 captures whose innermost frames vary (3 call paths, 4 depths, 2 max) under one outer stack: "
              "each equals unw_backtrace");

    /* a second time: tables already built */
    twin_init(&c.t, unw_backtrace, MAXF);
    uw_deep(40, leaf_twin, &c);
    twin_check(&c.t, "deep recursion again (tables built)");
}

static void test_libc(void)
{
    struct leafctx c;
    twin_init(&c.t, unw_backtrace, MAXF);
    c.called = 0;
    uw_qsort(leaf_twin, &c);
    twin_check(&c.t, "qsort comparator (through libc's qsort)");
    twin_init(&c.t, unw_backtrace, MAXF);
    c.called = 0;
    uw_bsearch(leaf_twin, &c);
    twin_check(&c.t, "bsearch comparator (through libc's bsearch)");
}

/* ---------------------------------------------------------------- */
/* 3. signal handlers                                                */
/* ---------------------------------------------------------------- */

static struct twin g_sig_twin;
static __thread char g_tls_altstack[64 * 1024] __attribute__((aligned(16)));

static void usr_handler(int sig)
{
    (void)sig;
    twin_capture(&g_sig_twin);
}

static void test_raise(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = usr_handler;
    sigaction(SIGUSR1, &sa, NULL);
    twin_init(&g_sig_twin, unw_backtrace, MAXF);
    uw_raise(SIGUSR1, 10);
    twin_check(&g_sig_twin, "raise(SIGUSR1) 20 frames down, captured in the handler");
    check(g_sig_twin.n[0] >= 30, "raise: the stack goes on through the signal frame (%d frames)", g_sig_twin.n[0]);

    /* on a sigaltstack: the walk changes stacks at the signal frame */
    stack_t ss;
    ss.ss_size = 256 * 1024;
    ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    twin_init(&g_sig_twin, unw_backtrace, MAXF);
    uw_raise(SIGUSR2, 10);
    uintptr_t here = (uintptr_t)&ss;
    int on_alt = 0;
    twin_check(&g_sig_twin, "raise(SIGUSR2) with SA_ONSTACK: handler on a sigaltstack");
    check(g_sig_twin.n[0] >= 30, "sigaltstack: the stack goes on through the signal frame (%d frames)", g_sig_twin.n[0]);
    (void)here;
    (void)on_alt;
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    munmap(ss.ss_sp, ss.ss_size);

    /* the same, with the sigaltstack in this thread's static TLS: for the
     * main thread that is the mapping which also holds its descriptor, and
     * that mapping must not be taken for the thread's stack */
    ss.ss_sp = g_tls_altstack;
    ss.ss_size = sizeof g_tls_altstack;
    uintptr_t self = (uintptr_t)pthread_self(), tlo = 0, thi = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && self >= a && self < b)
            tlo = a, thi = b;
    }
    if (f)
        fclose(f);
    int same_map = (uintptr_t)ss.ss_sp >= tlo && (uintptr_t)ss.ss_sp < thi;
    {
        ss.ss_flags = 0;
        sigaltstack(&ss, NULL);
        twin_init(&g_sig_twin, unw_backtrace, MAXF);
        uw_raise(SIGUSR2, 10);
        twin_check(&g_sig_twin, same_map ? "sigaltstack in the mapping that holds the main thread's descriptor"
                                         : "sigaltstack in static TLS");
        ss.ss_flags = SS_DISABLE;
        sigaltstack(&ss, NULL);
        /* and the main thread's stack is still known afterwards */
        struct leafctx c;
        twin_init(&c.t, unw_backtrace, MAXF);
        struct ms_unwind_stats a = stats_now();
        uw_deep(5, leaf_twin, &c);
        struct ms_unwind_stats b = stats_now();
        check(twin_equal(&c.t) && a.fallback_stacks == b.fallback_stacks,
              "after that, captures on the main stack still use the tables");
    }
}

/* SIGALRM interrupting a busy loop: compare in the handler (integers only) */
#define MAX_FB_PCS 256
static volatile int g_stop;
static volatile int g_alrm_n, g_alrm_ok, g_alrm_bad, g_alrm_saved, g_alrm_in_busy;
static struct twin g_alrm_twin, g_alrm_bad_twin;
static uintptr_t g_fb_pcs[MAX_FB_PCS];
static volatile int g_fb_n;
static uintptr_t g_busy_lo, g_busy_hi;
static volatile int g_alrm_plt;
#define MAX_INT_PCS 4096
static uintptr_t g_int_pcs[MAX_INT_PCS];

static void alrm_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    struct ms_unwind_stats a, b;
    ms_unwind_stats(&a);
    twin_capture(&g_alrm_twin);
    ms_unwind_stats(&b);
    if (twin_equal(&g_alrm_twin)) {
        g_alrm_ok++;
    } else {
        g_alrm_bad++;
        if (!g_alrm_saved) {
            g_alrm_bad_twin = g_alrm_twin;
            g_alrm_saved = 1;
        }
    }
    for (int i = 0; i < g_alrm_twin.n[0]; i++)
        if (g_alrm_twin.pcs[0][i] >= g_busy_lo && g_alrm_twin.pcs[0][i] < g_busy_hi) {
            g_alrm_in_busy++;
            break;
        }
    if (g_alrm_n < MAX_INT_PCS)
        g_int_pcs[g_alrm_n] = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (b.fallback_stacks != a.fallback_stacks && g_fb_n < MAX_FB_PCS)
        g_fb_pcs[g_fb_n++] = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (++g_alrm_n >= 3000)
        g_stop = 1;
}

static void test_alarm(void)
{
    Dl_info di;
    if (dladdr((void *)uw_busy, &di) && di.dli_saddr)
        g_busy_lo = (uintptr_t)uw_busy, g_busy_hi = g_busy_lo + 4096;
    /* resolve the PLT entries of the busy loop before the timer starts */
    g_stop = 1;
    uw_busy(&g_stop);
    g_stop = 0;
    twin_init(&g_alrm_twin, unw_backtrace, MAXF);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = alrm_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct ms_unwind_stats s0 = stats_now();
    struct itimerval it = {{0, 300}, {0, 300}};
    setitimer(ITIMER_REAL, &it, NULL);
    time_t t0 = time(NULL);
    while (!g_stop && time(NULL) - t0 < 20) {
        uw_busy(&g_stop);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
    struct ms_unwind_stats s1 = stats_now();
    for (int i = 0; i < g_alrm_n && i < MAX_INT_PCS; i++)
        g_alrm_plt += pc_in_plt(g_int_pcs[i]);
    check(g_alrm_n >= 1000 && g_alrm_bad == 0,
          "SIGALRM every 300 us interrupting a busy loop: %d stacks captured in the handler, %d equal, %d differ",
          g_alrm_n, g_alrm_ok, g_alrm_bad);
    if (g_alrm_saved)
        twin_dump(&g_alrm_bad_twin);
    check(g_alrm_in_busy > g_alrm_n / 2, "SIGALRM: %d of the stacks go through the busy loop (%d)", g_alrm_in_busy,
          g_alrm_n);
    int plt = 0;
    for (int i = 0; i < g_fb_n; i++) {
        char b[256];
        int in_plt = pc_in_plt(g_fb_pcs[i]);
        plt += in_plt;
        printf("#   fallback with the interrupted pc %#lx %s%s\n", (unsigned long)g_fb_pcs[i],
               sym(g_fb_pcs[i] + 1, b, sizeof b), in_plt ? " (PLT)" : "");
    }
    check(s1.fallback_stacks == s0.fallback_stacks,
          "statistics: no SIGALRM stack needed libunwind (%lu fallback stacks, %lu frames; %d interrupted in a PLT "
          "stub; %d of all %d signals did, and were walked by the table): the PLT's expression CFA is evaluated into "
          "the table",
          (unsigned long)(s1.fallback_stacks - s0.fallback_stacks),
          (unsigned long)(s1.fallback_frames - s0.fallback_frames), plt, g_alrm_plt, g_alrm_n);
}

/* ---------------------------------------------------------------- */
/* 4. threads while dlopen/dlclose                                   */
/* ---------------------------------------------------------------- */

static volatile int g_threads_left;
static const char *g_dir;

struct thr_res {
    int bad, verified, captures;
    int min; /* frames a stack must have at least */
};

static void leaf_capture(void *ctx)
{
    struct thr_res *r = ctx;
    uintptr_t pcs[64];
    int n = ms_unwind_capture(pcs, 64);
    if (n < r->min)
        r->bad++;
    r->captures++;
}

static void leaf_verify(void *ctx)
{
    struct thr_res *r = ctx;
    uintptr_t pcs[64];
    int n = ms_unwind_capture_verify(pcs, 64);
    if (n < r->min)
        r->bad++;
    r->verified++;
}

static void *thr_main(void *arg)
{
    struct thr_res *r = arg;
    for (int i = 0; i < 100000; i++) {
        if (i % 1000 == 0) {
            uw_deep(4, leaf_verify, r);
        } else if (i % 10 == 0) {
            uw_deep(4, leaf_capture, r);
        } else {
            uintptr_t pcs[64];
            int n = ms_unwind_capture(pcs, 64);
            if (n < 2)
                r->bad++;
            r->captures++;
        }
    }
    __atomic_fetch_sub(&g_threads_left, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_threads(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/libunwind_dl.so", g_dir);
    struct ms_unwind_stats s0 = stats_now();
    pthread_t th[8];
    struct thr_res res[8];
    memset(res, 0, sizeof res);
    for (int i = 0; i < 8; i++)
        res[i].min = 12; /* leaf, 9 of uw_deep(4), thr_main, start_thread, clone3 */
    g_threads_left = 8;
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, thr_main, &res[i]);
    int loops = 0, dl_ok = 1, dl_fail = 0;
    while (__atomic_load_n(&g_threads_left, __ATOMIC_SEQ_CST) > 0 || loops < 20) {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            dl_fail++;
            printf("# dlopen: %s\n", dlerror());
            break;
        }
        int (*entry)(uw_leaf_fn, void *) = (int (*)(uw_leaf_fn, void *))dlsym(h, "uwdl_entry");
        struct leafctx c;
        twin_init(&c.t, unw_backtrace, MAXF);
        c.called = 0;
        entry(leaf_twin, &c);
        if (!twin_equal(&c.t) || c.called != 1) {
            if (dl_ok)
                twin_dump(&c.t);
            dl_ok = 0;
        }
        dlclose(h);
        ms_unwind_invalidate();
        loops++;
    }
    int bad = 0, ver = 0, caps = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        bad += res[i].bad;
        ver += res[i].verified;
        caps += res[i].captures;
    }
    struct ms_unwind_stats s1 = stats_now();
    check(!dl_fail && dl_ok && loops >= 20,
          "dlopen/capture inside the library/dlclose/invalidate %d times while 8 threads unwind: stacks through the "
          "library equal unw_backtrace's",
          loops);
    check(bad == 0 && caps + ver == 800000,
          "8 threads x 100000 captures (%d plain, %d verified): no crash, every stack complete", caps, ver);
    check(s1.verify_mismatch == s0.verify_mismatch && s1.verify_checked - s0.verify_checked == (uint64_t)ver,
          "threads: ms_unwind_capture_verify found %lu of %d stacks different from unw_backtrace",
          (unsigned long)(s1.verify_mismatch - s0.verify_mismatch), ver);
    check(s1.fallback_stacks == s0.fallback_stacks,
          "statistics: no libunwind fallback in the threads test (%lu fallback stacks)",
          (unsigned long)(s1.fallback_stacks - s0.fallback_stacks));
}

/* ---------------------------------------------------------------- */
/* 5. C++ exceptions                                                 */
/* ---------------------------------------------------------------- */

static void test_cxx(void)
{
    static const char *what[] = {
        "C++ (g++ -O2 .so): capture in a catch block",
        "C++: capture in a destructor run by a landing pad while an exception unwinds",
        "C++: capture in the exception's destructor, inside libstdc++'s __cxa_end_catch",
        "C++: capture in a std::sort comparator",
    };
    for (int mode = 0; mode < 4; mode++) {
        struct leafctx c;
        twin_init(&c.t, unw_backtrace, MAXF);
        c.called = 0;
        uwcxx_run(mode, leaf_twin, &c);
        if (c.called != 1)
            check(0, "%s: the leaf was called once (%d)", what[mode], c.called);
        else
            twin_check(&c.t, what[mode]);
    }
}

/* ---------------------------------------------------------------- */
/* stacks: a user-supplied thread stack, a coroutine stack           */
/* ---------------------------------------------------------------- */

static void *user_stack_thread(void *arg)
{
    struct leafctx *c = arg;
    struct ms_unwind_stats a = stats_now();
    uw_deep(12, leaf_twin, c);
    struct ms_unwind_stats b = stats_now();
    c->frame = b.fallback_stacks - a.fallback_stacks;
    return NULL;
}

static struct leafctx g_co_ctx;
static ucontext_t g_co_main, g_co_uc;

static void co_func(void)
{
    uw_deep(6, leaf_twin, &g_co_ctx);
}

static void test_stacks(void)
{
    /* a thread whose stack the program supplied: found through the
     * mapping that holds the thread's descriptor */
    size_t sz = 1 << 20;
    void *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstack(&at, stk, sz);
    struct leafctx c;
    twin_init(&c.t, unw_backtrace, MAXF);
    c.called = 0;
    pthread_t th;
    pthread_create(&th, &at, user_stack_thread, &c);
    pthread_join(th, NULL);
    pthread_attr_destroy(&at);
    twin_check(&c.t, "thread on a stack supplied with pthread_attr_setstack");
    check(c.called == 1 && c.frame == 0, "user-supplied thread stack: walked by the tables, no fallback (%lu)",
          (unsigned long)c.frame);
    munmap(stk, sz);

    /* a coroutine (makecontext) stack: neither the thread's stack nor its
     * sigaltstack, so the whole stack comes from libunwind */
    size_t csz = 256 * 1024;
    void *cst = mmap(NULL, csz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    getcontext(&g_co_uc);
    g_co_uc.uc_stack.ss_sp = cst;
    g_co_uc.uc_stack.ss_size = csz;
    g_co_uc.uc_link = &g_co_main;
    makecontext(&g_co_uc, co_func, 0);
    twin_init(&g_co_ctx.t, unw_backtrace, MAXF);
    g_co_ctx.called = 0;
    struct ms_unwind_stats a = stats_now();
    for (int i = 0; i < 3; i++) { /* the first time, and with the foreign mapping remembered */
        swapcontext(&g_co_main, &g_co_uc);
        makecontext(&g_co_uc, co_func, 0);
    }
    struct ms_unwind_stats b = stats_now();
    twin_check(&g_co_ctx.t, "coroutine (makecontext) stack");
    check(g_co_ctx.called == 3 && b.fallback_stacks - a.fallback_stacks == 3,
          "coroutine stack: not the thread's stack, libunwind walks it (%lu fallbacks)",
          (unsigned long)(b.fallback_stacks - a.fallback_stacks));
    munmap(cst, csz);
}

/* ---------------------------------------------------------------- */
/* fork while another thread rescans                                 */
/* ---------------------------------------------------------------- */

static volatile int g_rescan_stop;

static void *rescanner(void *arg)
{
    (void)arg;
    while (!g_rescan_stop)
        ms_unwind_invalidate();
    return NULL;
}

/* The same capture path twice through the same call instructions: in the
 * parent (checked against unw_backtrace there), then in a child forked
 * between the two.  libunwind cannot be the reference in the child: a
 * child forked while another thread is inside dl_iterate_phdr inherits the
 * loader's lock held (glibc's fork does not take it), and unw_backtrace
 * needs it. */
__attribute__((noinline, optimize("O0"))) static pid_t fork_pair(struct leafctx *ref, struct leafctx *child)
{
    for (int pass = 0; pass < 2; pass++) {
        struct leafctx *c = pass ? child : ref;
        if (pass) {
            pid_t p = fork();
            if (p != 0)
                return p;
        }
        uw_deep(6, leaf_twin, c);
    }
    return 0;
}

static void test_fork(void)
{
    /* tables built before (as the agent does at start): a child forked
     * while another thread is inside dl_iterate_phdr must not need one */
    struct leafctx w;
    twin_init(&w.t, unw_backtrace, MAXF);
    uw_deep(6, leaf_twin, &w);
    pthread_t th;
    g_rescan_stop = 0;
    pthread_create(&th, NULL, rescanner, NULL);
    int bad = 0, forks = 0, ref_bad = 0;
    struct timespec d = {0, 200000};
    for (int i = 0; i < 100; i++) {
        nanosleep(&d, NULL);
        struct leafctx ref, child;
        twin_init(&ref.t, unw_backtrace, MAXF);
        twin_init(&child.t, fast_fn(), MAXF);
        ref.called = child.called = 0;
        pid_t p = fork_pair(&ref, &child);
        if (p == 0) {
            /* the child: the build lock and the module list may have been
             * copied in the middle of the other thread's rescan */
            int same = child.called == 1 && child.t.n[0] == ref.t.n[0];
            for (int k = 0; same && k < ref.t.n[0]; k++)
                same = child.t.pcs[0][k] == ref.t.pcs[0][k];
            _exit(same ? 0 : 1);
        }
        if (!twin_equal(&ref.t))
            ref_bad++;
        if (p > 0) {
            int st = 0;
            forks++;
            if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
                bad++;
        }
    }
    g_rescan_stop = 1;
    pthread_join(th, NULL);
    check(forks == 100 && bad == 0 && ref_bad == 0,
          "fork() while another thread rescans the modules: %d children, %d whose stack differs from the parent's "
          "(%d parent stacks differ from unw_backtrace)",
          forks, bad, ref_bad);
}

/* ---------------------------------------------------------------- */
/* 7. code without unwind info                                       */
/* ---------------------------------------------------------------- */

static struct twin g_jit_twin;

__attribute__((noinline)) static void jit_cb(void)
{
    twin_capture(&g_jit_twin);
    __asm__ volatile("" ::: "memory"); /* not a tail call: keep this frame */
}

static void test_jit(void)
{
    static const uint8_t code[] = {0x53, 0xff, 0xd7, 0x5b, 0xc3}; /* push %rbx; call *%rdi; pop %rbx; ret */
    uint8_t *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(mem, code, sizeof code);
    mprotect(mem, 4096, PROT_READ | PROT_EXEC);
    twin_init(&g_jit_twin, unw_backtrace, MAXF);
    struct ms_unwind_stats s0 = stats_now();
    uw_call_stub(mem, jit_cb);
    struct ms_unwind_stats s1 = stats_now();
    const struct twin *t = &g_jit_twin;
    int k = -1;
    for (int i = 0; i < t->n[0]; i++)
        if (t->pcs[0][i] >= (uintptr_t)mem && t->pcs[0][i] < (uintptr_t)mem + 4096) {
            k = i;
            break;
        }
    int prefix = k >= 2 && t->n[1] > k;
    for (int i = 0; prefix && i <= k; i++)
        prefix = t->pcs[0][i] == t->pcs[1][i];
    check(k >= 2 && t->n[0] == k + 1,
          "code without unwind info (mmap'd stub): the stack ends cleanly at the unknown frame (%d frames, unknown "
          "at %d)",
          t->n[0], k);
    check(prefix, "code without unwind info: the frames up to the unknown one equal unw_backtrace's (which goes on "
                  "guessing: %d frames)",
          t->n[1]);
    check(s1.fallback_stacks == s0.fallback_stacks, "code without unwind info: no libunwind fallback");
    if (!prefix)
        twin_dump(t);
    munmap(mem, 4096);

    /* code without unwind info inside a loaded module: libunwind finishes */
    struct leafctx c;
    twin_init(&c.t, unw_backtrace, MAXF);
    c.called = 0;
    struct ms_unwind_stats a = stats_now();
    uw_nocfi(3, leaf_twin, &c);
    struct ms_unwind_stats b = stats_now();
    twin_check(&c.t, "a function of the program without unwind info (no FDE), walked like unw_backtrace does "
                     "(frame-pointer guess)");
    check(b.fallback_stacks == a.fallback_stacks, "no FDE: no libunwind fallback (%lu)",
          (unsigned long)(b.fallback_stacks - a.fallback_stacks));
    /* libunwind against itself at the same place */
    struct leafctx l;
    twin_init(&l.t, unw_backtrace, MAXF);
    l.t.fn[0] = cursor_backtrace;
    uw_nocfi(3, leaf_twin, &l);
    printf("# libunwind alone at the same place: its cursor loop (unw_step) vs unw_backtrace: %s\n",
           twin_equal(&l.t) ? "equal" : "DIFFERENT (libunwind's own inconsistency, see unwind.c K_NOINFO)");
    if (!twin_equal(&l.t))
        twin_dump(&l.t);
}

/* ---------------------------------------------------------------- */
/* 8. garbage register states                                        */
/* ---------------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_garbage(void)
{
    pthread_attr_t at;
    void *stk;
    size_t stsz;
    pthread_getattr_np(pthread_self(), &at);
    pthread_attr_getstack(&at, &stk, &stsz);
    pthread_attr_destroy(&at);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0), top = (uintptr_t)stk + stsz;
    uintptr_t anchors[4] = {(uintptr_t)printf, (uintptr_t)main_addr_for_plt(), (uintptr_t)uw_deep,
                            (uintptr_t)pthread_create};
    int bad = 0;
    struct ms_unwind_stats s0 = stats_now();
    for (int i = 0; i < 20000; i++) {
        uintptr_t pc, sp, bp;
        switch (xr() % 4) {
        case 0: pc = xr(); break;
        case 1: pc = xr() % 0x10000; break;
        default: pc = anchors[xr() % 4] + xr() % 0x20000 - 0x8000; break;
        }
        sp = here + (xr() % (top - here));
        if (xr() % 2)
            sp &= ~(uintptr_t)7;
        if (xr() % 8 == 0)
            sp = xr();
        bp = xr() % 2 ? here + (xr() % (top - here)) : xr();
        uintptr_t pcs[64];
        int n = ms_unwind_capture_from(pcs, 64, pc, sp, bp, (int)(xr() % 2));
        if (n < 1 || n > 64 || pcs[0] != pc)
            bad++;
    }
    struct ms_unwind_stats s1 = stats_now();
    check(bad == 0, "20000 garbage register states (random pc, sp on or off the stack, rbp): no crash, 1..max "
                    "frames (%lu fell back to libunwind)",
          (unsigned long)(s1.fallback_stacks - s0.fallback_stacks));
}

/* ---------------------------------------------------------------- */
/* 9. signals while tables are built (nested fallback)               */
/* ---------------------------------------------------------------- */

static struct twin g_nest_twin, g_nest_bad_twin;
static volatile int g_nest_n, g_nest_bad, g_nest_saved, g_nest_fb;

static volatile int g_nest_stop;

/* re-armed by the handler itself, so that the interrupted code always runs
 * for a while between two signals whatever the handler costs */
static void nest_arm(void)
{
    struct itimerval it = {{0, 0}, {0, 15 + (long)(g_nest_n * 7919 % 50)}};
    if (!g_nest_stop)
        setitimer(ITIMER_REAL, &it, NULL);
}

static void nest_handler(int sig)
{
    (void)sig;
    struct ms_unwind_stats a, b;
    ms_unwind_stats(&a);
    twin_capture(&g_nest_twin);
    ms_unwind_stats(&b);
    g_nest_n++;
    if (b.fallback_stacks != a.fallback_stacks)
        g_nest_fb++;
    if (!twin_equal(&g_nest_twin)) {
        g_nest_bad++;
        if (!g_nest_saved) {
            g_nest_bad_twin = g_nest_twin;
            g_nest_saved = 1;
        }
    }
    nest_arm();
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char buf[65536];
    ssize_t r;
    int ok = in >= 0 && out >= 0;
    while (ok && (r = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)r) == r;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok;
}

static void test_nested(void)
{
    char src[4096], dir[4096], path[4200];
    snprintf(src, sizeof src, "%s/libunwind_dl.so", g_dir);
    snprintf(dir, sizeof dir, "%s/nest", g_dir);
    mkdir(dir, 0755);
    twin_init(&g_nest_twin, cursor_backtrace, MAXF);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = nest_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct ms_unwind_stats s0 = stats_now();
    int copies = 60, built_ok = 1;
    for (int i = 0; i < copies; i++) {
        snprintf(path, sizeof path, "%s/libuwdl_%d.so", dir, i);
        if (!copy_file(src, path))
            built_ok = 0;
    }
    int dl_bad = 0;
    for (int i = 0; i < copies && built_ok; i++) {
        snprintf(path, sizeof path, "%s/libuwdl_%d.so", dir, i);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            built_ok = 0;
            break;
        }
        int (*entry)(uw_leaf_fn, void *) = (int (*)(uw_leaf_fn, void *))dlsym(h, "uwdl_entry");
        struct thr_res r = {0, 0, 0, 11}; /* leaf, 4 inner, uwdl_entry, test_nested, main, libc x2, _start */
        /* signals only while the first capture in this copy builds its
         * table: not while dlopen/dlclose hold the loader's lock, which
         * libunwind's unw_step (the reference) takes in dl_iterate_phdr */
        g_nest_stop = 0;
        nest_arm();
        for (int k = 0; k < 20; k++) {
            entry(leaf_capture, &r);
            if (k == 0)
                ms_unwind_invalidate(); /* module list rewritten under the readers */
        }
        g_nest_stop = 1;
        struct itimerval stop = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &stop, NULL);
        dl_bad += r.bad;
        dlclose(h);
        ms_unwind_invalidate();
        unlink(path);
    }
    signal(SIGALRM, SIG_DFL);
    rmdir(dir);
    struct ms_unwind_stats s1 = stats_now();
    if (!built_ok || dl_bad)
        printf("# nested: copies made and loaded: %d, short stacks in the library: %d\n", built_ok, dl_bad);
    check(built_ok && dl_bad == 0 && g_nest_bad == 0,
          "signals 15-65 us apart while %d new libraries get their tables (capture, rescan, capture x 19): %d handler "
          "stacks equal libunwind's cursor walk, %d differ (%d handler captures used libunwind)",
          copies, g_nest_n - g_nest_bad, g_nest_bad, g_nest_fb);
    if (g_nest_saved)
        twin_dump(&g_nest_bad_twin);
    printf("# tables built during the nested test: %lu\n", (unsigned long)(s1.tables_built - s0.tables_built));
}

/* ---------------------------------------------------------------- */

void *main_addr_for_plt(void)
{
    return (void *)main_addr_for_plt;
}

/* UW_ONLY=name,name... runs only those groups (for debugging) */
static int want(const char *name)
{
    const char *only = getenv("UW_ONLY");
    if (!only || !*only)
        return 1;
    size_t l = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += l)
        if ((p == only || p[-1] == ',') && (p[l] == 0 || p[l] == ','))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    g_dir = argc > 1 ? argv[1] : ".";
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct ms_unwind_stats s0 = stats_now();

    if (want("deep")) {
        test_deep();
        test_libc();
        struct ms_unwind_stats s1 = stats_now();
        check(s1.fallback_stacks == s0.fallback_stacks && s1.fallback_frames == s0.fallback_frames,
              "statistics: tests 1-2 (recursion, qsort, bsearch) needed no libunwind fallback (fast frames %lu)",
              (unsigned long)(s1.fast_frames - s0.fast_frames));
    }
    if (want("signal")) {
        struct ms_unwind_stats s1 = stats_now();
        test_raise();
        struct ms_unwind_stats s2 = stats_now();
        check(s2.fallback_stacks == s1.fallback_stacks,
              "statistics: signal frames (raise, sigaltstack) are walked natively, no libunwind fallback");
        test_alarm();
    }
    if (want("cxx")) {
        struct ms_unwind_stats s3 = stats_now();
        test_cxx();
        struct ms_unwind_stats s4 = stats_now();
        check(s4.fallback_stacks == s3.fallback_stacks,
              "statistics: C++ exception handling needed no libunwind fallback");
    }
    if (want("threads"))
        test_threads();
    if (want("stacks"))
        test_stacks();
    if (want("fork"))
        test_fork();
    if (want("jit"))
        test_jit();
    if (want("garbage"))
        test_garbage();
    if (want("nested"))
        test_nested();

    /* the verification mode itself */
    if (want("verify")) {
    struct ms_unwind_stats v0 = stats_now();
    struct thr_res r = {0, 0, 0, 7};
    for (int d = 4; d < 34; d++)
        uw_deep(d, leaf_verify, &r);
    uw_qsort(leaf_verify, &r);
    uwcxx_run(0, leaf_verify, &r);
    struct ms_unwind_stats v1 = stats_now();
    check(v1.verify_checked - v0.verify_checked == 32 && v1.verify_mismatch == v0.verify_mismatch && r.bad == 0,
          "ms_unwind_capture_verify: %lu stacks checked, %lu differ",
          (unsigned long)(v1.verify_checked - v0.verify_checked),
          (unsigned long)(v1.verify_mismatch - v0.verify_mismatch));
    uintptr_t f[8], rf[8];
    int nf, nr;
    if (ms_unwind_last_mismatch(f, &nf, rf, &nr, 8))
        printf("# last verify mismatch: fast n=%d, unw_backtrace n=%d\n", nf, nr);
    }

    struct ms_unwind_stats st = stats_now();
    printf("# totals: fast_frames %lu, fallback_frames %lu, fallback_stacks %lu, tables_built %lu, "
           "table_bytes %lu, verify_checked %lu, verify_mismatch %lu\n",
           (unsigned long)st.fast_frames, (unsigned long)st.fallback_frames, (unsigned long)st.fallback_stacks,
           (unsigned long)st.tables_built, (unsigned long)st.table_bytes, (unsigned long)st.verify_checked,
           (unsigned long)st.verify_mismatch);
    static struct ms_unwind_table_info ti[128];
    int nt = ms_unwind_tables(ti, 128), copies = 0;
    printf("# tables built: %d\n", nt);
    for (int i = 0; i < nt && i < 128; i++) {
        if (strstr(ti[i].name, "/nest/libuwdl_")) {
            copies++;
            continue;
        }
        printf("#   %-44s rows %6u  rules %4u  fallback rows %4u  bytes %7lu  %s\n",
               ti[i].name[0] ? ti[i].name : "(main program)", ti[i].rows, ti[i].rules, ti[i].fallback_rows,
               (unsigned long)ti[i].bytes, ti[i].loaded ? "loaded" : "unloaded, kept");
    }
    if (copies)
        printf("#   and %d copies of libunwind_dl.so from the nested test (unloaded, kept)\n", copies);
    printf("%d passed, %d failed\n", g_n - g_fail, g_fail);
    return g_fail ? 1 : 0;
}
