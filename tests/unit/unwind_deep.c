/* Helpers of tests/unit/test_unwind.c: call chains whose frames the unwinder
 * must walk.  tests/unit/build_test_unwind.sh compiles this file twice,
 * with -O2 -fomit-frame-pointer and with -O0, and links each into its own
 * test binary.  Every function takes the "leaf" to call at the bottom of the
 * chain (the test's capture-and-compare function).
 *
 * The recursion cycles through frame shapes: alloca (gcc then sets up RBP as
 * CFA even with -fomit-frame-pointer), a VLA, an over-aligned local (stack
 * realignment), an over-aligned local plus a VLA (gcc's DRAP: the CFA is the
 * expression [RBP-8]), a frame of 100000 bytes (CFA = RSP + 100016), and a
 * plain frame that keeps values in callee-saved registers across the call.
 */
#include <alloca.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*uw_leaf_fn)(void *ctx);

int uw_deep(int depth, uw_leaf_fn leaf, void *ctx);

static volatile int g_sink;

static void touch(volatile char *p, int n)
{
    for (int i = 0; i < n; i += 16)
        p[i] = (char)i;
}

/* each shape calls uw_deep and uses the result after the call (no tail call) */
__attribute__((noinline)) static int shape_alloca(int depth, uw_leaf_fn leaf, void *ctx)
{
    int n = 16 + (depth * 37) % 200;
    volatile char *p = alloca((size_t)n);
    touch(p, n);
    int r = uw_deep(depth - 1, leaf, ctx);
    return r + p[0];
}

__attribute__((noinline)) static int shape_vla(int depth, uw_leaf_fn leaf, void *ctx)
{
    int n = 24 + (depth * 53) % 300;
    volatile char p[n];
    touch(p, n);
    int r = uw_deep(depth - 1, leaf, ctx);
    return r + p[n - 1];
}

__attribute__((noinline)) static int shape_aligned(int depth, uw_leaf_fn leaf, void *ctx)
{
    _Alignas(64) volatile char p[100];
    touch(p, (int)sizeof p);
    int r = uw_deep(depth - 1, leaf, ctx);
    return r + p[3];
}

__attribute__((noinline)) static int shape_drap(int depth, uw_leaf_fn leaf, void *ctx)
{
    _Alignas(64) volatile char q[64];
    int n = 8 + depth % 50;
    volatile char p[n];
    touch(p, n);
    touch(q, (int)sizeof q);
    int r = uw_deep(depth - 1, leaf, ctx);
    return r + p[0] + q[1];
}

__attribute__((noinline)) static int shape_big(int depth, uw_leaf_fn leaf, void *ctx)
{
    volatile char p[100000];
    p[0] = (char)depth;
    p[99999] = 1;
    int r = uw_deep(depth - 1, leaf, ctx);
    return r + p[0] + p[99999];
}

__attribute__((noinline)) static int shape_regs(int depth, uw_leaf_fn leaf, void *ctx)
{
    /* values live across the call: callee-saved registers pushed */
    int a = g_sink + depth, b = a * 3, c = b ^ 5, d = c + a, e = d * 7;
    int r = uw_deep(depth - 1, leaf, ctx);
    return r + a + b + c + d + e;
}

__attribute__((noinline)) int uw_deep(int depth, uw_leaf_fn leaf, void *ctx)
{
    if (depth <= 0) {
        leaf(ctx);
        return g_sink;
    }
    int r;
    switch (depth % 6) {
    case 0: r = shape_alloca(depth, leaf, ctx); break;
    case 1: r = shape_vla(depth, leaf, ctx); break;
    case 2: r = shape_aligned(depth, leaf, ctx); break;
    case 3: r = shape_drap(depth, leaf, ctx); break;
    case 4: r = shape_big(depth, leaf, ctx); break;
    default: r = shape_regs(depth, leaf, ctx); break;
    }
    return r + 1;
}

/* ---- through libc: qsort and bsearch call back into this file ---- */

static uw_leaf_fn cmp_leaf;
static void *cmp_ctx;
static int cmp_calls;

static int cmp_int(const void *a, const void *b)
{
    if (cmp_calls++ == 3)
        cmp_leaf(cmp_ctx);
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) int uw_qsort(uw_leaf_fn leaf, void *ctx)
{
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 7919) % 64;
    cmp_leaf = leaf;
    cmp_ctx = ctx;
    cmp_calls = 0;
    qsort(v, 64, sizeof v[0], cmp_int);
    return v[5] + cmp_calls;
}

/* bsearch is an inline function in glibc's headers at -O2: call libc's */
static void *(*volatile libc_bsearch)(const void *, const void *, size_t, size_t,
                                      int (*)(const void *, const void *)) = bsearch;

__attribute__((noinline)) int uw_bsearch(uw_leaf_fn leaf, void *ctx)
{
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = i * 2;
    int key = 77;
    cmp_leaf = leaf;
    cmp_ctx = ctx;
    cmp_calls = 0;
    int *p = libc_bsearch(&key, v, 64, sizeof v[0], cmp_int);
    return (p ? *p : -1) + cmp_calls;
}

/* ---- a busy loop for the SIGALRM test ---- */

__attribute__((noinline)) static unsigned mix(unsigned x, const char *s)
{
    /* callee-saved registers, a libc call through the PLT */
    unsigned a = x * 2654435761u, b = a ^ (a >> 13), c = b + (unsigned)strlen(s);
    const char *q = memchr(s, 'q', strlen(s));
    return a + b + c + (q ? 1u : 0u);
}

__attribute__((noinline)) unsigned uw_busy(volatile int *stop)
{
    static const char *words[] = {"alpha", "bravo charlie", "delta echo foxtrot golf", "q", ""};
    unsigned h = 1;
    while (!*stop) {
        for (int i = 0; i < 5; i++)
            h = mix(h, words[i]);
        h += (unsigned)(h >> 7);
    }
    return h;
}

/* ---- a chain that raises a signal at its bottom ---- */

struct raise_ctx {
    int sig;
};

static void raise_leaf(void *ctx)
{
    raise(((struct raise_ctx *)ctx)->sig);
}

__attribute__((noinline)) int uw_raise(int sig, int depth)
{
    struct raise_ctx rc = {sig};
    return uw_deep(depth, raise_leaf, &rc);
}

/* ---- calling code that has no unwind info ---- */

__attribute__((noinline)) int uw_call_stub(void *stub, void (*cb)(void))
{
    /* the stub is `push %rbx; call *%rdi; pop %rbx; ret`: rdi = cb */
    void (*fn)(void (*)(void)) = (void (*)(void (*)(void)))stub;
    fn(cb);
    return g_sink;
}

/* ---- two callers with identical frames around one capture site: the
 * capture starts with the same pc, sp and rbp from both, only the words
 * above differ (the per-thread memo must notice) ---- */

__attribute__((noinline)) int uw_common(uw_leaf_fn leaf, void *ctx)
{
    leaf(ctx);
    return g_sink;
}

__attribute__((noinline)) int uw_caller_a(uw_leaf_fn leaf, void *ctx)
{
    int r = uw_common(leaf, ctx);
    return r + 1;
}

__attribute__((noinline)) int uw_caller_b(uw_leaf_fn leaf, void *ctx)
{
    int r = uw_common(leaf, ctx);
    return r + 2;
}
