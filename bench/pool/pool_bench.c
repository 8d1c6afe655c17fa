/* pool_bench.c - libmemsleuth_pool against plain malloc/free, talloc and APR
 * pools.  Built and run by bench/pool/run.sh.
 *
 * Workload (the same sizes and tree shape for every allocator, from a fixed
 * seed): a root and A allocators (default 1000) in a random tree (each
 * allocator's parent is the root or an earlier allocator, chosen uniformly),
 * then M allocations (default 100) of 16..256 bytes into each allocator (the
 * first byte written), then the root is freed, which frees the whole tree.
 * A second workload frees blocks one by one: 10000 blocks of 16..256 bytes
 * in one allocator, freed in random order (APR has no single free).
 *
 * Reported per allocator, as the median of R runs (after 2 warm-up runs;
 * the allocators take turns within each run):
 *   create   ns per allocator created
 *   alloc    ns per allocation
 *   subtree  ns per freed allocator subtree: the time to free the root
 *            divided by A (each allocator with its M blocks)
 *   free1    ns per single free (second workload)
 *   total    ms for create + alloc + free of the first workload
 * File:line recording: talloc records __location__ (talloc_size and
 * talloc_new are macros that pass it), ms_pool records __FILE__/__LINE__;
 * malloc and APR record nothing.
 *
 * Usage: pool_bench [--allocators A] [--allocs M] [--runs R] [--apr-extra B]
 *                   [--only NAME] [--rotate]
 *   --apr-extra B  APR is asked for B bytes more per block (e.g. 36: about
 *                  ms_pool's footprint per block, 32-byte header and 16-byte
 *                  rounding, against APR's none and 8-byte rounding)
 *   --only NAME    run one allocator only (malloc, talloc, apr, ms_pool): no
 *                  other allocator's memory traffic between its runs; the
 *                  others print 0
 *   --rotate       the order of the allocators within a run rotates from run
 *                  to run (by default malloc, talloc, APR, ms_pool: each one
 *                  always follows the same other one)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <apr_general.h>
#include <apr_pools.h>
#include <memsleuth/pool.h>
#include <talloc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int A = 1000, M = 100, R = 11;
static size_t apr_extra;     /* --apr-extra */
static const char *only;     /* --only */
static int rotate;           /* --rotate */
static int *parent;          /* A entries: -1 = root */
static size_t *sizes;        /* A*M */
static int NS = 10000;       /* single-free workload */
static size_t *ssizes;
static int *sorder;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

struct res {
    double create, alloc, subtree, free1, total;
};

static volatile unsigned char sink;

/* ---------------------------------------------------------------- malloc */
struct mnode {
    void **ptrs;
    int n;
};

static void run_malloc(struct res *r)
{
    double t0 = now();
    struct mnode *root = malloc(sizeof *root);
    root->ptrs = NULL;
    root->n = 0;
    struct mnode **a = malloc(sizeof *a * (size_t)A);
    for (int i = 0; i < A; i++) {
        a[i] = malloc(sizeof **a);
        a[i]->ptrs = malloc(sizeof(void *) * (size_t)M);
        a[i]->n = 0;
    }
    double t1 = now();
    for (int i = 0; i < A; i++)
        for (int j = 0; j < M; j++) {
            unsigned char *p = malloc(sizes[i * M + j]);
            p[0] = 1;
            a[i]->ptrs[a[i]->n++] = p;
        }
    double t2 = now();
    /* children have larger indexes than their parents: free them first */
    for (int i = A - 1; i >= 0; i--) {
        for (int j = 0; j < a[i]->n; j++)
            free(a[i]->ptrs[j]);
        free(a[i]->ptrs);
        free(a[i]);
    }
    free(root);
    double t3 = now();
    free(a);
    void **v = malloc(sizeof(void *) * (size_t)NS);
    for (int i = 0; i < NS; i++)
        v[i] = malloc(ssizes[i]);
    double t4 = now();
    for (int i = 0; i < NS; i++)
        free(v[sorder[i]]);
    double t5 = now();
    free(v);
    r->create = (t1 - t0) / A;
    r->alloc = (t2 - t1) / ((double)A * M);
    r->subtree = (t3 - t2) / A;
    r->free1 = (t5 - t4) / NS;
    r->total = (t3 - t0) / 1e6;
}

/* ---------------------------------------------------------------- talloc */
static void run_talloc(struct res *r)
{
    void **a = malloc(sizeof *a * (size_t)A);
    double t0 = now();
    void *root = talloc_new(NULL);
    for (int i = 0; i < A; i++)
        a[i] = talloc_new(parent[i] < 0 ? root : a[parent[i]]);
    double t1 = now();
    for (int i = 0; i < A; i++)
        for (int j = 0; j < M; j++) {
            unsigned char *p = talloc_size(a[i], sizes[i * M + j]);
            p[0] = 1;
        }
    double t2 = now();
    talloc_free(root);
    double t3 = now();
    free(a);
    void *ctx = talloc_new(NULL);
    void **v = malloc(sizeof(void *) * (size_t)NS);
    for (int i = 0; i < NS; i++)
        v[i] = talloc_size(ctx, ssizes[i]);
    double t4 = now();
    for (int i = 0; i < NS; i++)
        talloc_free(v[sorder[i]]);
    double t5 = now();
    talloc_free(ctx);
    free(v);
    r->create = (t1 - t0) / A;
    r->alloc = (t2 - t1) / ((double)A * M);
    r->subtree = (t3 - t2) / A;
    r->free1 = (t5 - t4) / NS;
    r->total = (t3 - t0) / 1e6;
}

/* ---------------------------------------------------------------- APR */
static void run_apr(struct res *r)
{
    apr_pool_t **a = malloc(sizeof *a * (size_t)A);
    double t0 = now();
    apr_pool_t *root;
    apr_pool_create(&root, NULL);
    for (int i = 0; i < A; i++)
        apr_pool_create(&a[i], parent[i] < 0 ? root : a[parent[i]]);
    double t1 = now();
    for (int i = 0; i < A; i++)
        for (int j = 0; j < M; j++) {
            unsigned char *p = apr_palloc(a[i], sizes[i * M + j] + apr_extra);
            p[0] = 1;
        }
    double t2 = now();
    apr_pool_destroy(root);
    double t3 = now();
    free(a);
    r->create = (t1 - t0) / A;
    r->alloc = (t2 - t1) / ((double)A * M);
    r->subtree = (t3 - t2) / A;
    r->free1 = -1;
    r->total = (t3 - t0) / 1e6;
}

/* ---------------------------------------------------------------- ms_pool */
static void run_ms(struct res *r)
{
    struct ms_pool **a = malloc(sizeof *a * (size_t)A);
    double t0 = now();
    struct ms_pool *root = ms_pool_new_root(0);
    for (int i = 0; i < A; i++)
        a[i] = ms_pool_new_child(parent[i] < 0 ? root : a[parent[i]]);
    double t1 = now();
    for (int i = 0; i < A; i++)
        for (int j = 0; j < M; j++) {
            unsigned char *p = ms_pool_alloc(a[i], sizes[i * M + j]);
            p[0] = 1;
        }
    double t2 = now();
    ms_pool_destroy(root);
    double t3 = now();
    free(a);
    struct ms_pool *ctx = ms_pool_new_root(0);
    void **v = malloc(sizeof(void *) * (size_t)NS);
    for (int i = 0; i < NS; i++)
        v[i] = ms_pool_alloc(ctx, ssizes[i]);
    double t4 = now();
#if !defined(EXP_SMALLFP) /* experiments/layout-bound.patch: blocks without a header, no single free */
    for (int i = 0; i < NS; i++)
        ms_pool_free(v[sorder[i]]);
#endif
    double t5 = now();
    ms_pool_destroy(ctx);
    free(v);
    r->create = (t1 - t0) / A;
    r->alloc = (t2 - t1) / ((double)A * M);
    r->subtree = (t3 - t2) / A;
    r->free1 = (t5 - t4) / NS;
    r->total = (t3 - t0) / 1e6;
}

/* ---------------------------------------------------------------- main */
static int cmpd(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--rotate")) {
            rotate = 1;
            i--;
            continue;
        }
        if (i + 1 >= argc)
            break;
        if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
        else if (!strcmp(argv[i], "--allocators"))
            A = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--allocs"))
            M = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs"))
            R = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--apr-extra"))
            apr_extra = (size_t)atoi(argv[i + 1]);
    }
    if (A < 1 || M < 1 || R < 1) {
        fprintf(stderr, "usage: pool_bench [--allocators A] [--allocs M] [--runs R] [--apr-extra B] [--only NAME] "
                        "[--rotate]\n");
        return 2;
    }
    parent = malloc(sizeof *parent * (size_t)A);
    sizes = malloc(sizeof *sizes * (size_t)A * (size_t)M);
    for (int i = 0; i < A; i++)
        parent[i] = (int)(xr() % (uint64_t)(i + 1)) - 1;
    for (long i = 0; i < (long)A * M; i++)
        sizes[i] = 16 + xr() % 241;
    ssizes = malloc(sizeof *ssizes * (size_t)NS);
    sorder = malloc(sizeof *sorder * (size_t)NS);
    for (int i = 0; i < NS; i++) {
        ssizes[i] = 16 + xr() % 241;
        sorder[i] = i;
    }
    for (int i = NS - 1; i > 0; i--) {
        int j = (int)(xr() % (uint64_t)(i + 1)), t = sorder[i];
        sorder[i] = sorder[j];
        sorder[j] = t;
    }
    apr_initialize();

    enum { NI = 4 };
    static const char *names[NI] = {"malloc/free", "talloc", "APR pools", "ms_pool"};
    void (*fns[NI])(struct res *) = {run_malloc, run_talloc, run_apr, run_ms};
    double (*v)[5] = calloc((size_t)NI * (size_t)R, sizeof *v);
    static const char *keys[NI] = {"malloc", "talloc", "apr", "ms_pool"};
    if (only) {
        int k;
        for (k = 0; k < NI && strcmp(only, keys[k]); k++)
            ;
        if (k == NI) {
            fprintf(stderr, "pool_bench: --only takes malloc, talloc, apr or ms_pool, not '%s'\n", only);
            return 2;
        }
    }
    for (int run = -2; run < R; run++)
        for (int kk = 0; kk < NI; kk++) {
            int k = rotate ? (kk + run + 2) % NI : kk;
            struct res r;
            if (only && strcmp(only, keys[k]))
                continue;
            fns[k](&r);
            if (run >= 0) {
                double *row = v[k * R + run];
                row[0] = r.create;
                row[1] = r.alloc;
                row[2] = r.subtree;
                row[3] = r.free1;
                row[4] = r.total;
            }
        }
    printf("| allocator | ns/allocator created | ns/allocation | ns/freed subtree (1 allocator + %d blocks) "
           "| ns/single free | total ms (create+alloc+free) |\n",
           M);
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < NI; k++) {
        double col[5];
        for (int c = 0; c < 5; c++) {
            double *tmp = malloc(sizeof *tmp * (size_t)R);
            for (int run = 0; run < R; run++)
                tmp[run] = v[k * R + run][c];
            col[c] = median(tmp, R);
            free(tmp);
        }
        char f1[32];
        if (col[3] < 0)
            snprintf(f1, sizeof f1, "n/a");
        else
            snprintf(f1, sizeof f1, "%.1f", col[3]);
        printf("| %s | %.1f | %.2f | %.1f | %s | %.2f |\n", names[k], col[0], col[1], col[2], f1, col[4]);
    }
    printf("\n%d allocators x %d allocations of 16..256 bytes, random tree; medians of %d runs.\n", A, M, R);
    if (apr_extra)
        printf("APR was asked for %zu bytes more per block (--apr-extra).\n", apr_extra);
    apr_terminate();
    free(v);
    free(parent);
    free(sizes);
    free(ssizes);
    free(sorder);
    return 0;
}
