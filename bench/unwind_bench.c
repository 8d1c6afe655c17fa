/* bench/unwind_bench.c - ns per stack capture through a 15-frame chain.
 *
 * One source, three objects:
 *   -DCHAIN_ONLY                 the chain chain_nofp_1..15, built -O2 -fomit-frame-pointer
 *   -DCHAIN_ONLY -DCHAIN_FP      the same chain as chain_fp_1..15, built -O2 -fno-omit-frame-pointer
 *   (neither)                    the harness (main)
 *
 * Build (from the repository root; tests/unit/build_test_unwind.sh does this with BENCH=1):
 *   F="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror"
 *   gcc $F -O2 -fPIC -c src/agent/unwind.c -o unwind.o
 *   gcc $F -O2 -fomit-frame-pointer -DCHAIN_ONLY -c bench/unwind_bench.c -o chain_nofp.o
 *   gcc $F -O2 -fno-omit-frame-pointer -DCHAIN_ONLY -DCHAIN_FP -c bench/unwind_bench.c -o chain_fp.o
 *   gcc $F -O2 -Isrc/agent bench/unwind_bench.c chain_nofp.o chain_fp.o unwind.o -o unwind_bench \
 *       -lunwind -ldl -lpthread
 *   ./unwind_bench [runs]
 *
 * Methods, each capturing the whole stack (max 64 frames: the 15 chain
 * frames plus the harness, main and libc's start frames):
 *   ms_unwind_capture   on the -fomit-frame-pointer chain (tables built before timing),
 *                       twice: "same stack" (every capture starts at the same sp:
 *                       the per-thread memo of recent walks matches and only
 *                       re-reads the words the walk read), and "sp varies" (the
 *                       chain is entered at one of 3 stack depths in turn, more
 *                       than the memo's 2 ways: every capture walks the table,
 *                       with the per-thread rule cache warm), and "top 1-3 vary"
 *                       (1, 2 or 3 extra frames in turn between the chain and
 *                       the capture: the innermost frames differ, the outer
 *                       ones are shared, as between allocation sites under one
 *                       caller)
 *   unw_backtrace       libunwind 1.6, same chain (its per-thread cache warm)
 *   glibc backtrace()   libc.so.6's, looked up with dlsym (libunwind.so also exports a
 *                       weak "backtrace" that a plain call would bind to)
 *   frame-pointer walk  on the -fno-omit-frame-pointer chain (rbp chain, stack bounds checked)
 * and, for reference, ms_unwind_capture on the frame-pointer chain and the
 * chain alone (the capture function replaced by an empty one).  Every figure
 * is the median over rounds of (time of N captures through the chain) / N;
 * each round runs every method once (~20 ms each), pinned to one CPU.
 */
#include <stdint.h>

typedef int (*capfn)(void **buf, int max);

#ifdef CHAIN_ONLY

#ifdef CHAIN_FP
#define N(k) chain_fp_##k
#else
#define N(k) chain_nofp_##k
#endif

static volatile int sink;

/* each level does a little work and uses the result after the call: no
 * tail calls, no inlining */
#define LEVEL(k, next)                                                                                       \
    __attribute__((noinline)) int N(k)(capfn fn, void **buf, int max)                                        \
    {                                                                                                        \
        int r = next(fn, buf, max);                                                                          \
        sink = r;                                                                                            \
        return r + k;                                                                                        \
    }

__attribute__((noinline)) static int N(leaf)(capfn fn, void **buf, int max)
{
    int r = fn(buf, max);
    sink = r;
    return r;
}
LEVEL(15, N(leaf))
LEVEL(14, N(15))
LEVEL(13, N(14))
LEVEL(12, N(13))
LEVEL(11, N(12))
LEVEL(10, N(11))
LEVEL(9, N(10))
LEVEL(8, N(9))
LEVEL(7, N(8))
LEVEL(6, N(7))
LEVEL(5, N(6))
LEVEL(4, N(5))
LEVEL(3, N(4))
LEVEL(2, N(3))
LEVEL(1, N(2))

#else /* the harness */

#include "unwind.h"

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int chain_nofp_1(capfn fn, void **buf, int max);
int chain_fp_1(capfn fn, void **buf, int max);

static uintptr_t stack_lo, stack_hi;

/* a frame-pointer walk: the return address above each saved rbp */
__attribute__((noinline)) static int fp_walk(void **buf, int max)
{
    uintptr_t *fp = __builtin_frame_address(0);
    int n = 0;
    while (n < max) {
        if ((uintptr_t)fp < stack_lo || (uintptr_t)fp > stack_hi - 16)
            break;
        uintptr_t ra = fp[1];
        if (ra < 0x4000)
            break;
        buf[n++] = (void *)ra;
        uintptr_t *next = (uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

__attribute__((noinline)) static int nothing(void **buf, int max)
{
    (void)buf;
    return max;
}

static int fast_capture(void **buf, int max)
{
    return ms_unwind_capture((uintptr_t *)buf, max);
}

/* the chain returns fn's result plus 1+2+...+15 */
#define CHAIN_SUM 120

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct method {
    const char *name;
    int (*chain)(capfn, void **, int);
    capfn fn;
    int vary; /* 1: enter the chain at 3 different stack depths in turn;
               * 2: capture through 1, 2 or 3 extra frames in turn */
    int base; /* index of the chain-alone row to subtract */
    double ns;
    int frames;
};

/* enter the chain 16, 32 or 48 bytes deeper, in turn */
__attribute__((noinline)) static int call_at_depth(struct method *m, void **buf, long i)
{
    volatile char *p = __builtin_alloca(16 + 16 * (size_t)(i % 3));
    p[0] = 0;
    int r = m->chain(m->fn, buf, 64);
    return r + p[0];
}

/* 1, 2 or 3 frames between the chain's leaf and the capture */
static capfn g_inner;
static volatile int sink2;
__attribute__((noinline)) static int via1(void **b, int max)
{
    int r = g_inner(b, max);
    sink2 = r;
    return r;
}
__attribute__((noinline)) static int via2(void **b, int max)
{
    int r = via1(b, max);
    sink2 = r;
    return r;
}
__attribute__((noinline)) static int via3(void **b, int max)
{
    int r = via2(b, max);
    sink2 = r;
    return r;
}

static int call(struct method *m, void **buf, long i)
{
    if (m->vary == 2) {
        static const capfn via[3] = {via1, via2, via3};
        g_inner = m->fn;
        return m->chain(via[i % 3], buf, 64);
    }
    return m->vary ? call_at_depth(m, buf, i) : m->chain(m->fn, buf, 64);
}

/* time n captures of method m */
static double run_once(struct method *m, long n)
{
    void *buf[64];
    double a = now_ns();
    for (long i = 0; i < n; i++)
        call(m, buf, i);
    return (now_ns() - a) / (double)n;
}

/* every method once per round, rounds interleaved (a noisy, shared machine
 * drifts: the drift then affects all methods alike); median per method */
static void measure_all(struct method *ms, int nm, int runs)
{
    void *buf[64];
    long n[32];
    double res[32][64];
    if (runs > 64)
        runs = 64;
    for (int k = 0; k < nm; k++) {
        for (long i = 0; i < 1000; i++) /* warm up: tables, caches */
            call(&ms[k], buf, i);
        double per = run_once(&ms[k], 2000);
        n[k] = (long)(20e6 / (per > 1 ? per : 1)); /* ~20 ms per round */
        if (n[k] < 1000)
            n[k] = 1000;
    }
    for (int r = 0; r < runs; r++)
        for (int k = 0; k < nm; k++)
            res[k][r] = run_once(&ms[k], n[k]);
    for (int k = 0; k < nm; k++) {
        qsort(res[k], (size_t)runs, sizeof res[k][0], cmpd);
        ms[k].ns = res[k][runs / 2];
        ms[k].frames = ms[k].fn == nothing ? 0 : ms[k].chain(ms[k].fn, buf, 64) - CHAIN_SUM;
    }
}

/* both unwinders through ONE call instruction (gcc would duplicate the call
 * in an optimized two-iteration loop) */
__attribute__((noinline, optimize("O0"))) static void twin(capfn *fns, void ***bufs, int *ns)
{
    for (int w = 0; w < 2; w++)
        ns[w] = chain_nofp_1(fns[w], bufs[w], 64) - CHAIN_SUM;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 15;
    if (runs < 1)
        runs = 1;
    cpu_set_t one; /* one CPU: no migration in the middle of a round */
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    sched_setaffinity(0, sizeof one, &one);
    pthread_attr_t at;
    void *stk;
    size_t sz;
    pthread_getattr_np(pthread_self(), &at);
    pthread_attr_getstack(&at, &stk, &sz);
    pthread_attr_destroy(&at);
    stack_lo = (uintptr_t)stk;
    stack_hi = (uintptr_t)stk + sz;

    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    capfn glibc_bt = libc ? (capfn)dlsym(libc, "backtrace") : NULL;
    if (!glibc_bt) {
        fprintf(stderr, "no glibc backtrace\n");
        return 1;
    }

    /* the two unwinders agree through the chain */
    void *a[64], *b[64];
    void **bufs[2] = {a, b};
    capfn fns[2] = {fast_capture, unw_backtrace};
    int nn[2];
    twin(fns, bufs, nn);
    int same = nn[0] == nn[1];
    for (int i = 0; same && i < nn[0]; i++)
        same = a[i] == b[i];
    printf("# ms_unwind_capture and unw_backtrace through the chain: %d and %d frames, %s\n", nn[0], nn[1],
           same ? "identical" : "DIFFERENT");

    struct method ms[] = {
        {"chain alone (empty capture)", chain_nofp_1, nothing, 0, 0, 0, 0},
        {"chain alone, sp varies", chain_nofp_1, nothing, 1, 1, 0, 0},
        {"chain alone, top 1-3 vary", chain_nofp_1, nothing, 2, 2, 0, 0},
        {"ms_unwind_capture, same stack", chain_nofp_1, fast_capture, 0, 0, 0, 0},
        {"ms_unwind_capture, sp varies", chain_nofp_1, fast_capture, 1, 1, 0, 0},
        {"ms_unwind_capture, top 1-3 vary", chain_nofp_1, fast_capture, 2, 2, 0, 0},
        {"unw_backtrace (libunwind 1.6)", chain_nofp_1, unw_backtrace, 0, 0, 0, 0},
        {"unw_backtrace, sp varies", chain_nofp_1, unw_backtrace, 1, 1, 0, 0},
        {"unw_backtrace, top 1-3 vary", chain_nofp_1, unw_backtrace, 2, 2, 0, 0},
        {"glibc backtrace()", chain_nofp_1, glibc_bt, 0, 0, 0, 0},
        {"frame-pointer walk (fp build)", chain_fp_1, fp_walk, 0, 0, 0, 0},
        {"frame-pointer walk, sp varies", chain_fp_1, fp_walk, 1, 1, 0, 0},
        {"ms_unwind_capture (fp build)", chain_fp_1, fast_capture, 0, 0, 0, 0},
    };
    int nm = (int)(sizeof ms / sizeof ms[0]);
    measure_all(ms, nm, runs);
    printf("# ns per capture through a 15-frame chain, median of %d runs; \"net\" subtracts the chain alone\n",
           runs);
    printf("%-34s %10s %8s %7s\n", "method", "ns/capture", "net", "frames");
    for (int i = 0; i < nm; i++)
        printf("%-34s %10.1f %8.1f %7d\n", ms[i].name, ms[i].ns, ms[i].ns - ms[ms[i].base].ns, ms[i].frames);
    struct ms_unwind_stats st;
    ms_unwind_stats(&st);
    printf("# ms_unwind: %lu tables, %lu bytes, %lu fallback stacks\n", (unsigned long)st.tables_built,
           (unsigned long)st.table_bytes, (unsigned long)st.fallback_stacks);
    return same ? 0 : 1;
}

#endif
