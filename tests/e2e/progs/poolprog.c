/* poolprog.c - a program built on libmemsleuth_pool for tests/e2e/run_pools.sh:
 * a tree whose figures the test knows exactly.  The lines marked L_xxx are
 * looked up by the test (grep -n), so keep the markers.
 *
 *   app (destroyed at the end)
 *     config: 4 x 50 bytes, one freed alone
 *     request x 3: 5 x 100 bytes each, each destroyed
 *     one block of 10 bytes, stolen by session
 *   session (never destroyed: the leak, reported once with its subtree)
 *     cache: grows by 64 x 64 bytes over ~200 ms
 *     buffers: one block of 2000 bytes, realloc'd to 3000
 * Peak: 7306 bytes in 70 blocks (right after the realloc); end: session's
 * subtree, 7106 bytes in 66 blocks, 3 allocators.
 * Prints "sum N" (a checksum of the contents) so a run without memsleuth
 * can be compared with one under it. */
#include <memsleuth/pool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void nap(long us)
{
    struct timespec d = { 0, us * 1000 };
    nanosleep(&d, NULL);
}

int main(void)
{
    unsigned long sum = 0;
    struct ms_pool *app = ms_pool_new_root(0); /* L_APP */
    ms_pool_set_name(app, "app");
    struct ms_pool *cfg = ms_pool_new_child(app); /* L_CFG */
    ms_pool_set_name(cfg, "config");
    char *first = NULL;
    for (int i = 0; i < 4; i++) {
        char *p = ms_pool_alloc(cfg, 50); /* L_CFG_ALLOC */
        memset(p, i + 1, 50);
        if (!first)
            first = p;
    }
    for (int r = 0; r < 3; r++) {
        struct ms_pool *req = ms_pool_new_child(app); /* L_REQ */
        ms_pool_set_name(req, "request");
        for (int i = 0; i < 5; i++) {
            unsigned char *p = ms_pool_alloc(req, 100); /* L_REQ_ALLOC */
            memset(p, r, 100);
            sum += p[99];
        }
        ms_pool_destroy(req);
    }
    unsigned char *x = ms_pool_alloc(app, 10); /* L_X */
    memset(x, 7, 10);
    struct ms_pool *sess = ms_pool_new_root(0); /* L_SESS */
    ms_pool_set_name(sess, "session");
    if (ms_pool_steal(sess, x) != 0)
        return 1;
    struct ms_pool *cache = ms_pool_new_child(sess); /* L_CACHE */
    ms_pool_set_name(cache, "cache");
    for (int i = 0; i < 64; i++) {
        unsigned char *p = ms_pool_alloc(cache, 64); /* L_CACHE_ALLOC */
        memset(p, i, 64);
        sum += p[63];
        nap(3000);
    }
    struct ms_pool *bufs = ms_pool_new_child(sess); /* L_BUFS */
    ms_pool_set_name(bufs, "buffers");
    unsigned char *b = ms_pool_alloc(bufs, 2000); /* L_BUF_ALLOC */
    memset(b, 3, 2000);
    b = ms_pool_realloc(bufs, b, 3000); /* L_BUF_REALLOC */
    if (!b)
        return 1;
    sum += b[1999] + x[9];
    ms_pool_free(first); /* L_FREE */
    ms_pool_destroy(app); /* L_DESTROY */
    printf("sum %lu\n", sum);
    return 0; /* session is never destroyed */
}
