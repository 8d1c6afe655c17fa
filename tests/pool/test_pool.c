/* test_pool.c - unit tests of libmemsleuth_pool (include/memsleuth/pool.h).
 *
 * Every public call, its failure paths, and allocation failures injected at
 * every step (ms_pool_set_fail_after, as SQLite's fault simulator does).
 * After each test: no registered root is left, and once the cache and the
 * quarantine are trimmed the library holds no memory (leak-free).
 *
 * Output: TAP ("ok N - name" / "not ok N - name"), then "N passed, M failed".
 * Exit status 0 only if all passed.  Usage: test_pool [NAME-SUBSTRING...]
 */
#define _GNU_SOURCE
#include <memsleuth/pool.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ harness */
static int t_failed, t_checks;
static int g_pass, g_fail, g_num;
static char *g_self;

#define CHECK(c)                                                                                         \
    do {                                                                                                 \
        t_checks++;                                                                                      \
        if (!(c)) {                                                                                      \
            printf("#   check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);                            \
            t_failed = 1;                                                                                \
        }                                                                                                \
    } while (0)
#define CHECK_EQ(a, b)                                                                                   \
    do {                                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                                              \
        t_checks++;                                                                                      \
        if (a_ != b_) {                                                                                  \
            printf("#   check failed: %s == %s (%lld != %lld) (%s:%d)\n", #a, #b, a_, b_, __FILE__,      \
                   __LINE__);                                                                            \
            t_failed = 1;                                                                                \
        }                                                                                                \
    } while (0)

/* the error handler used by the tests: records, returns */
static struct {
    int n, kind;
    char what[160];
    const void *ptr;
    const char *file, *first_file;
    int line, first_line;
} E;

static void rec_err(const struct ms_pool_error *e, void *arg)
{
    (void)arg;
    E.n++;
    E.kind = e->kind;
    snprintf(E.what, sizeof E.what, "%s", e->what);
    E.ptr = e->ptr;
    E.file = e->file;
    E.line = e->line;
    E.first_file = e->first_file;
    E.first_line = e->first_line;
}

static size_t raw_live(void)
{
    struct ms_pool_stats st;
    ms_pool_trim();
    ms_pool_get_stats(&st);
    return st.raw_live;
}

static int destroy_root_cb(struct ms_pool *r, void *arg)
{
    *(struct ms_pool **)arg = r;
    return 1;
}

static void destroy_all_roots(void)
{
    struct ms_pool *r;
    for (int i = 0; i < 10000; i++) {
        r = NULL;
        ms_pool_foreach_root(destroy_root_cb, &r);
        if (!r)
            break;
        if (ms_pool_destroy(r) != 0) {
            printf("#   could not destroy a left-over root\n");
            t_failed = 1;
            break;
        }
    }
}

static void reset_settings(void)
{
    ms_pool_set_fail_after(-1, 0);
    ms_pool_set_debug(0);
    ms_pool_set_event_hook(NULL, NULL);
    ms_pool_set_limit_handler(NULL, NULL, NULL);
    ms_pool_set_error_handler(rec_err, NULL);
    memset(&E, 0, sizeof E);
}

static int selected(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

static void run(const char *name, void (*fn)(void))
{
    t_failed = 0;
    t_checks = 0;
    reset_settings();
    fn();
    reset_settings();
    if (ms_pool_roots(NULL, 0) != 0) {
        printf("#   test left %zu roots\n", ms_pool_roots(NULL, 0));
        t_failed = 1;
        destroy_all_roots();
    }
    size_t live = raw_live();
    if (live != 0) {
        printf("#   library still holds %zu underlying allocations after trim (leak)\n", live);
        t_failed = 1;
    }
    g_num++;
    if (t_failed) {
        g_fail++;
        printf("not ok %d - %s\n", g_num, name);
    } else {
        g_pass++;
        printf("ok %d - %s (%d checks)\n", g_num, name, t_checks);
    }
    fflush(stdout);
}

/* Run fn in a child with stderr captured; returns the wait status. */
static int in_child(void (*fn)(void), char *buf, size_t cap)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        fn();
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(pfd[0], buf + n, cap - 1 - n)) > 0 && n < cap - 1)
        n += (size_t)r;
    buf[n] = '\0';
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

/* A hash of everything the walk shows of every registered tree, to tell
 * that a failed call changed nothing. */
static int dig_cb(const struct ms_pool_node_info *n, const struct ms_pool_block_info *b, void *arg)
{
    uint64_t *h = arg;
#define MIX(v) (*h = (*h ^ (uint64_t)(uintptr_t)(v)) * 1099511628211ull)
    if (!b) {
        MIX(n->pool);
        MIX(n->parent);
        MIX(n->bytes);
        MIX(n->blocks);
        MIX(n->children);
        MIX(n->limit);
        MIX(n->adopters);
        MIX(n->held);
        MIX(n->destructors);
        MIX(n->depth);
    } else {
        MIX(b->ptr);
        MIX(b->size);
        MIX(b->line);
        MIX(b->owner);
        MIX(b->adopters);
        MIX(b->destructors);
    }
#undef MIX
    return 0;
}

static int dig_root(struct ms_pool *r, void *arg)
{
    ms_pool_walk(r, MS_POOL_WALK_BLOCKS, dig_cb, arg);
    return 0;
}

static uint64_t digest_all(void)
{
    uint64_t h = 1469598103934665603ull ^ ms_pool_roots(NULL, 0);
    ms_pool_foreach_root(dig_root, &h);
    return h;
}

static size_t subtree_bytes(struct ms_pool *p)
{
    struct ms_pool_node_info ni;
    return ms_pool_info(p, &ni) == 0 ? ni.subtree_bytes : (size_t)-1;
}

static size_t own_bytes(struct ms_pool *p)
{
    struct ms_pool_node_info ni;
    return ms_pool_info(p, &ni) == 0 ? ni.bytes : (size_t)-1;
}

static size_t own_blocks(struct ms_pool *p)
{
    struct ms_pool_node_info ni;
    return ms_pool_info(p, &ni) == 0 ? ni.blocks : (size_t)-1;
}

/* destructor log */
static char LOG[2048];
static int log_dtor(void *obj, void *arg)
{
    (void)obj;
    strcat(LOG, (const char *)arg);
    strcat(LOG, " ");
    return 0;
}

static int refuse_dtor(void *obj, void *arg)
{
    (void)obj;
    strcat(LOG, (const char *)arg);
    strcat(LOG, "! ");
    return 1;
}

/* ------------------------------------------------------------ pools */
static void t_root(void)
{
    int line = __LINE__ + 1;
    struct ms_pool *r = ms_pool_new_root(0);
    CHECK(r != NULL);
    struct ms_pool_node_info ni;
    CHECK_EQ(ms_pool_info(r, &ni), 0);
    CHECK(strcmp(ni.file, __FILE__) == 0);
    CHECK_EQ(ni.line, line);
    CHECK(ni.parent == NULL);
    CHECK_EQ(ni.limit, 0);
    CHECK_EQ(ni.subtree_pools, 1);
    CHECK(ni.mem >= 4096);
    CHECK_EQ(ms_pool_roots(NULL, 0), 1);
    struct ms_pool *arr[4] = {0};
    CHECK_EQ(ms_pool_roots(arr, 4), 1);
    CHECK(arr[0] == r);
    struct ms_pool *r2 = ms_pool_new_root_at(1000, "elsewhere.c", 77);
    CHECK_EQ(ms_pool_info(r2, &ni), 0);
    CHECK(strcmp(ni.file, "elsewhere.c") == 0 && ni.line == 77 && ni.limit == 1000);
    CHECK_EQ(ms_pool_roots(arr, 1), 2); /* returns the total, copies max */
    CHECK(arr[0] == r);
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK_EQ(ms_pool_roots(arr, 4), 1);
    CHECK(arr[0] == r2);
    CHECK_EQ(ms_pool_destroy(r2), 0);
    CHECK_EQ(ms_pool_roots(NULL, 0), 0);
    /* invalid arguments */
    errno = 0;
    CHECK_EQ(ms_pool_destroy(NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK(ms_pool_parent(NULL) == NULL);
    CHECK(ms_pool_name(NULL) == NULL);
    CHECK_EQ(E.n, 0); /* NULL is not reported, just EINVAL */
}

static void t_children(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *b = ms_pool_new_child(r);
    struct ms_pool *c = ms_pool_new_child(a);
    CHECK(a && b && c);
    CHECK(ms_pool_parent(a) == r && ms_pool_parent(c) == a && ms_pool_parent(r) == NULL);
    CHECK_EQ(ms_pool_roots(NULL, 0), 1); /* children are not roots */
    ms_pool_set_name(a, "alpha");
    CHECK(strcmp(ms_pool_name(a), "alpha") == 0);
    CHECK(ms_pool_name(b) == NULL);
    ms_pool_set_name(a, NULL);
    CHECK(ms_pool_name(a) == NULL);
    struct ms_pool_node_info ni;
    ms_pool_info(r, &ni);
    CHECK_EQ(ni.children, 2);
    CHECK_EQ(ni.subtree_pools, 4);
    errno = 0;
    CHECK(ms_pool_new_child(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    /* destroying a child leaves the rest */
    CHECK_EQ(ms_pool_destroy(a), 0);
    ms_pool_info(r, &ni);
    CHECK_EQ(ni.subtree_pools, 2);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

/* ------------------------------------------------------------ blocks */
static void t_alloc(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    void *ptrs[400];
    size_t total = 0;
    for (int i = 0; i < 400; i++) {
        size_t n = (size_t)(i * 7) % 1500;
        ptrs[i] = ms_pool_alloc(a, n);
        CHECK(ptrs[i] != NULL);
        CHECK(((uintptr_t)ptrs[i] & 15) == 0);
        memset(ptrs[i], i & 0xff, n);
        CHECK_EQ(ms_pool_size(ptrs[i]), n);
        CHECK(ms_pool_owner(ptrs[i]) == a);
        total += n;
    }
    for (int i = 0; i < 400; i++) {
        size_t n = (size_t)(i * 7) % 1500;
        unsigned char *p = ptrs[i];
        int ok = 1;
        for (size_t j = 0; j < n; j++)
            ok &= p[j] == (unsigned char)(i & 0xff);
        CHECK(ok);
        for (int k = 0; k < i; k++)
            if (ptrs[k] == ptrs[i])
                CHECK(n == 0 && 0);
    }
    CHECK_EQ(own_bytes(a), total);
    CHECK_EQ(own_blocks(a), 400);
    CHECK_EQ(subtree_bytes(r), total);
    CHECK_EQ(own_bytes(r), 0);
    /* a large block */
    void *big = ms_pool_alloc(a, 1 << 20);
    CHECK(big && ((uintptr_t)big & 15) == 0);
    memset(big, 1, 1 << 20);
    CHECK_EQ(ms_pool_size(big), 1 << 20);
    CHECK(ms_pool_owner(big) == a);
    /* failures */
    errno = 0;
    CHECK(ms_pool_alloc(NULL, 10) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_alloc(r, SIZE_MAX - 8) == NULL && errno == ENOMEM);
    CHECK(ms_pool_owner(NULL) == NULL && ms_pool_size(NULL) == 0);
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

static void t_zalloc_calloc(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    /* dirty a block, free it, the next one of its class reuses it: zeroed? */
    unsigned char *d = ms_pool_alloc(r, 100);
    memset(d, 0xab, 100);
    void *keep = ms_pool_alloc(r, 8); /* so d is not the last block */
    CHECK_EQ(ms_pool_free(d), 0);
    unsigned char *z = ms_pool_zalloc(r, 100);
    CHECK(z == d); /* same size class: reused */
    int ok = 1;
    for (int i = 0; i < 100; i++)
        ok &= z[i] == 0;
    CHECK(ok);
    unsigned char *big = ms_pool_zalloc(r, 5000);
    ok = big != NULL;
    for (int i = 0; ok && i < 5000; i++)
        ok &= big[i] == 0;
    CHECK(ok);
    int *arr = ms_pool_calloc(r, 10, sizeof(int));
    CHECK(arr && arr[0] == 0 && arr[9] == 0);
    CHECK_EQ(ms_pool_size(arr), 10 * sizeof(int));
    struct pt {
        int x, y;
    } *pt = MS_POOL_NEW(r, struct pt);
    CHECK(pt && pt->x == 0 && ms_pool_size(pt) == sizeof *pt);
    struct pt *pts = MS_POOL_NEW_ARRAY(r, struct pt, 5);
    CHECK(pts && ms_pool_size(pts) == 5 * sizeof *pts);
    errno = 0;
    CHECK(ms_pool_calloc(r, SIZE_MAX / 2, 4) == NULL && errno == EOVERFLOW);
    errno = 0;
    CHECK(ms_pool_zalloc(NULL, 4) == NULL && errno == EINVAL);
    CHECK(ms_pool_calloc(r, 0, 4) != NULL);
    (void)keep;
    CHECK_EQ(ms_pool_check(r), 0);
    ms_pool_destroy(r);
}

static void t_strings(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    int line = __LINE__ + 1;
    char *s = ms_pool_strdup(r, "hello");
    CHECK(s && strcmp(s, "hello") == 0 && ms_pool_size(s) == 6);
    struct ms_pool_block_info bi;
    CHECK_EQ(ms_pool_block_info(s, &bi), 0);
    CHECK(strcmp(bi.file, __FILE__) == 0 && bi.line == line && bi.owner == r);
    char *n1 = ms_pool_strndup(r, "hello", 3);
    CHECK(n1 && strcmp(n1, "hel") == 0 && ms_pool_size(n1) == 4);
    char *n2 = ms_pool_strndup(r, "hi", 100);
    CHECK(n2 && strcmp(n2, "hi") == 0 && ms_pool_size(n2) == 3);
    char nonul[4] = {'a', 'b', 'c', 'd'};
    char *n3 = ms_pool_strndup(r, nonul, 4); /* reads no further than n */
    CHECK(n3 && strcmp(n3, "abcd") == 0);
    char *f = ms_pool_asprintf(r, "%d-%s-%c", 42, "x", 'y');
    CHECK(f && strcmp(f, "42-x-y") == 0);
    char longs[1000];
    memset(longs, 'q', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    char *lf = ms_pool_asprintf(r, "<%s>", longs);
    CHECK(lf && strlen(lf) == 1001 && lf[0] == '<' && lf[1000] == '>' && lf[500] == 'q');
    void *md = ms_pool_memdup(r, longs, 10);
    CHECK(md && memcmp(md, longs, 10) == 0);
    CHECK(ms_pool_memdup(r, NULL, 0) != NULL);
    errno = 0;
    CHECK(ms_pool_memdup(r, NULL, 3) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_strdup(r, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_strndup(r, NULL, 3) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_strdup(NULL, "x") == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_asprintf(NULL, "x") == NULL && errno == EINVAL);
    CHECK_EQ(ms_pool_check(r), 0);
    ms_pool_destroy(r);
}

static char *vfmt(struct ms_pool *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ms_pool_vasprintf(p, fmt, ap);
    va_end(ap);
    return s;
}

static void t_vasprintf(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    char *s = vfmt(r, "%s=%d", "v", 7);
    CHECK(s && strcmp(s, "v=7") == 0);
    errno = 0;
    CHECK(vfmt(r, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(vfmt(NULL, "x") == NULL && errno == EINVAL);
    ms_pool_destroy(r);
}

static void t_free(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    void *a = ms_pool_alloc(r, 40);
    void *b = ms_pool_alloc(r, 40);
    void *c = ms_pool_alloc(r, 40);
    CHECK_EQ(own_blocks(r), 3);
    CHECK_EQ(ms_pool_free(NULL), 0);
    CHECK_EQ(ms_pool_free(b), 0); /* middle: to a free list */
    CHECK_EQ(own_blocks(r), 2);
    CHECK_EQ(own_bytes(r), 80);
    void *b2 = ms_pool_alloc(r, 33); /* same 16-byte class: b again */
    CHECK(b2 == b);
    CHECK_EQ(ms_pool_free(c), 0); /* last: the bump pointer goes back */
    void *c2 = ms_pool_alloc(r, 100);
    CHECK(c2 == c);
    /* a large block */
    void *big = ms_pool_alloc(r, 100000);
    CHECK_EQ(ms_pool_free(big), 0);
    CHECK_EQ(own_blocks(r), 3);
    /* double free, outside debug mode: best effort, still both sites */
    int line1 = __LINE__ + 1;
    CHECK_EQ(ms_pool_free(a), 0);
    int line2 = __LINE__ + 1;
    CHECK_EQ(ms_pool_free(a), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(E.n, 1);
    CHECK_EQ(E.kind, MS_POOL_ERR_DOUBLE_FREE);
    CHECK(E.first_file && strcmp(E.first_file, __FILE__) == 0 && E.first_line == line1);
    CHECK(E.file && E.line == line2);
    CHECK(strstr(E.what, "double free") != NULL);
    /* not a block */
    static uint64_t junk[8];
    memset(&E, 0, sizeof E);
    CHECK_EQ(ms_pool_free(&junk[4]), -1);
    CHECK_EQ(E.kind, MS_POOL_ERR_BAD_POINTER);
    CHECK_EQ(ms_pool_check(r), 0);
    ms_pool_destroy(r);
}

static void t_realloc(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *o = ms_pool_new_child(r);
    /* NULL ptr: alloc */
    char *p = ms_pool_realloc(r, NULL, 10);
    CHECK(p && ms_pool_owner(p) == r);
    memcpy(p, "abcdefghi", 10);
    /* last block: grows in place */
    char *q = ms_pool_realloc(r, p, 200);
    CHECK(q == p && strcmp(q, "abcdefghi") == 0 && ms_pool_size(q) == 200);
    /* same class: in place */
    char *q2 = ms_pool_realloc(NULL, q, 195);
    CHECK(q2 == q);
    void *blocker = ms_pool_alloc(r, 16);
    /* not last, bigger class: moves, keeps contents, old freed */
    int line = __LINE__ + 1;
    char *m = ms_pool_realloc(r, q2, 500);
    CHECK(m && m != q2 && strcmp(m, "abcdefghi") == 0);
    struct ms_pool_block_info bi;
    ms_pool_block_info(m, &bi);
    CHECK(bi.line == line); /* the site follows realloc */
    CHECK(ms_pool_size(q2) == 0); /* the old one is freed */
    CHECK_EQ(own_bytes(r), 500 + 16);
    /* small -> large -> larger -> small */
    char *L = ms_pool_realloc(r, m, 10000);
    CHECK(L && strcmp(L, "abcdefghi") == 0);
    memset(L + 10, 'z', 9990);
    char *L2 = ms_pool_realloc(r, L, 300000);
    CHECK(L2 && strcmp(L2, "abcdefghi") == 0 && L2[9999] == 'z');
    char *S = ms_pool_realloc(r, L2, 20);
    CHECK(S && strncmp(S, "abcdefghi", 10) == 0 && ms_pool_size(S) == 20);
    CHECK_EQ(own_bytes(r), 20 + 16);
    /* shrink */
    char *S2 = ms_pool_realloc(r, S, 5);
    CHECK(S2 && memcmp(S2, "abcde", 5) == 0 && ms_pool_size(S2) == 5);
    /* wrong pool */
    errno = 0;
    CHECK(ms_pool_realloc(o, S2, 50) == NULL && errno == EINVAL);
    CHECK(ms_pool_size(S2) == 5);
    /* n == 0 frees */
    errno = 0;
    CHECK(ms_pool_realloc(r, S2, 0) == NULL && errno == 0);
    CHECK(ms_pool_size(S2) == 0);
    /* realloc keeps destructors and adopters, moving */
    char *d = ms_pool_alloc(o, 24);
    LOG[0] = 0;
    CHECK(ms_pool_add_block_destructor(d, log_dtor, "d") != NULL);
    CHECK_EQ(ms_pool_adopt(r, d), 0);
    ms_pool_alloc(o, 8);
    char *d2 = ms_pool_realloc(o, d, 700);
    CHECK(d2 && d2 != d);
    ms_pool_block_info(d2, &bi);
    CHECK(bi.adopters == 1 && bi.destructors == 1);
    char *d3 = ms_pool_realloc(o, d2, 70000);
    ms_pool_block_info(d3, &bi);
    CHECK(bi.adopters == 1 && bi.destructors == 1);
    CHECK_EQ(ms_pool_release(r, d3), 0);
    CHECK_EQ(ms_pool_free(d3), 0);
    CHECK(strcmp(LOG, "d ") == 0);
    /* freed pointer (a small one: a freed large block's memory is gone) */
    char *fr = ms_pool_alloc(r, 10);
    ms_pool_alloc(r, 10);
    ms_pool_free(fr);
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_realloc(r, fr, 5) == NULL);
    CHECK_EQ(E.kind, MS_POOL_ERR_DOUBLE_FREE);
    (void)blocker;
    CHECK_EQ(ms_pool_check(r), 0);
    ms_pool_destroy(r);
}

/* ------------------------------------------------------------ destructors */
static void t_dtor_order(void)
{
    LOG[0] = 0;
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *a1 = ms_pool_new_child(a);
    struct ms_pool *a2 = ms_pool_new_child(a);
    struct ms_pool *a2x = ms_pool_new_child(a2);
    struct ms_pool *b = ms_pool_new_child(r);
    ms_pool_add_destructor(r, log_dtor, "r1");
    ms_pool_add_destructor(r, log_dtor, "r2");
    ms_pool_add_destructor(a, log_dtor, "a");
    ms_pool_add_destructor(a1, log_dtor, "a1");
    ms_pool_add_destructor(a2, log_dtor, "a2");
    ms_pool_add_destructor(a2x, log_dtor, "a2x");
    ms_pool_add_destructor(b, log_dtor, "b");
    void *x = ms_pool_alloc(a, 10), *y = ms_pool_alloc(a, 5000);
    ms_pool_add_block_destructor(x, log_dtor, "x");
    ms_pool_add_block_destructor(y, log_dtor, "y");
    ms_pool_add_block_destructor(x, log_dtor, "x2");
    struct ms_pool_node_info ni;
    ms_pool_info(r, &ni);
    CHECK_EQ(ni.destructors, 2);
    CHECK_EQ(ms_pool_destroy(r), 0);
    /* children newest first, each subtree deepest first; then blocks
     * newest first (each block's destructors newest first); then own */
    CHECK(strcmp(LOG, "b a2x a2 a1 y x2 x a r2 r1 ") == 0);
    if (strcmp(LOG, "b a2x a2 a1 y x2 x a r2 r1 ") != 0)
        printf("#   order: %s\n", LOG);
}

static int g_count;
static int count_dtor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    g_count++;
    return 0;
}

static void t_dtor_remove(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    void *x = ms_pool_alloc(r, 10);
    g_count = 0;
    struct ms_pool_dtor *d1 = ms_pool_add_destructor(r, count_dtor, NULL);
    struct ms_pool_dtor *d2 = ms_pool_add_block_destructor(x, count_dtor, NULL);
    struct ms_pool_dtor *d3 = ms_pool_add_block_destructor(x, count_dtor, NULL);
    CHECK(d1 && d2 && d3);
    CHECK_EQ(ms_pool_remove_destructor(d1), 0);
    CHECK_EQ(ms_pool_remove_destructor(d2), 0);
    struct ms_pool_block_info bi;
    ms_pool_block_info(x, &bi);
    CHECK_EQ(bi.destructors, 1);
    CHECK_EQ(ms_pool_remove_destructor(d3), 0);
    ms_pool_block_info(x, &bi);
    CHECK_EQ(bi.destructors, 0);
    CHECK_EQ(ms_pool_remove_destructor(NULL), -1);
    CHECK_EQ(errno, EINVAL);
    /* bad arguments */
    errno = 0;
    CHECK(ms_pool_add_destructor(r, NULL, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_add_block_destructor(x, NULL, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_add_destructor(NULL, count_dtor, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(ms_pool_add_block_destructor(NULL, count_dtor, NULL) == NULL && errno == EINVAL);
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK_EQ(g_count, 0);
}

static void t_dtor_refuse_pool(void)
{
    LOG[0] = 0;
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *b = ms_pool_new_child(r);
    struct ms_pool *b1 = ms_pool_new_child(b);
    void *keep = ms_pool_alloc(b, 100);
    void *bd = ms_pool_alloc(b, 100);
    ms_pool_add_block_destructor(bd, log_dtor, "bd");
    ms_pool_add_destructor(a, log_dtor, "a");
    ms_pool_add_destructor(b, log_dtor, "b-old");
    struct ms_pool_dtor *no = ms_pool_add_destructor(b, refuse_dtor, "b");
    ms_pool_add_destructor(b, log_dtor, "b-new");
    ms_pool_add_destructor(b1, log_dtor, "b1");
    ms_pool_add_destructor(r, log_dtor, "r");
    errno = 0;
    CHECK_EQ(ms_pool_destroy(r), -1);
    CHECK_EQ(errno, ECANCELED);
    /* b refused: b-new ran, b refused, b-old did not run; r's did not run */
    CHECK(strcmp(LOG, "b1 bd b-new b! a ") == 0);
    if (strcmp(LOG, "b1 bd b-new b! a ") != 0)
        printf("#   got %s\n", LOG);
    struct ms_pool_node_info ni;
    ms_pool_info(r, &ni);
    CHECK_EQ(ni.subtree_pools, 2); /* r and b survive, a and b1 freed */
    CHECK_EQ(ni.destructors, 1);
    CHECK(ms_pool_parent(b) == r);
    CHECK(ms_pool_owner(keep) == b); /* plain blocks stay */
    CHECK(ms_pool_size(bd) == 0);    /* the one whose destructor agreed went */
    ms_pool_info(b, &ni);
    CHECK_EQ(ni.destructors, 2); /* b (refusing) and b-old */
    CHECK_EQ(ni.blocks, 1);
    CHECK_EQ(ms_pool_check(r), 0);
    /* again: refuses again, nothing more freed */
    LOG[0] = 0;
    CHECK_EQ(ms_pool_destroy(r), -1);
    CHECK(strcmp(LOG, "b! ") == 0);
    ms_pool_remove_destructor(no);
    LOG[0] = 0;
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK(strcmp(LOG, "b-old r ") == 0);
}

static int refuse_once(void *obj, void *arg)
{
    (void)obj;
    int *n = arg;
    return (*n)++ == 0;
}

static void t_dtor_refuse_block(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    void *x = ms_pool_alloc(r, 10);
    int n = 0;
    ms_pool_add_block_destructor(x, refuse_once, &n);
    errno = 0;
    CHECK_EQ(ms_pool_free(x), -1);
    CHECK_EQ(errno, ECANCELED);
    CHECK_EQ(ms_pool_size(x), 10);
    CHECK_EQ(ms_pool_free(x), 0);
    CHECK_EQ(n, 2);
    /* a refusing block keeps its pool alive */
    void *y = ms_pool_alloc(r, 10);
    int m = 0;
    ms_pool_add_block_destructor(y, refuse_once, &m);
    CHECK_EQ(ms_pool_destroy(r), -1);
    CHECK_EQ(errno, ECANCELED);
    CHECK_EQ(ms_pool_size(y), 10);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

/* destructors that do things */
static struct ms_pool *G_sib, *G_rescue;
static void *G_blk;
static int destroy_sib_dtor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    CHECK_EQ(ms_pool_destroy(G_sib), 0);
    return 0;
}
static int move_sib_dtor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    CHECK_EQ(ms_pool_move(G_rescue, G_sib), 0);
    return 0;
}
static int rescue_blk_dtor(void *obj, void *arg)
{
    (void)arg;
    struct ms_pool *p = obj;
    CHECK_EQ(ms_pool_steal(G_rescue, G_blk), 0);
    CHECK(ms_pool_new_child(p) == NULL && errno == EBUSY);
    CHECK(ms_pool_add_destructor(p, count_dtor, NULL) == NULL && errno == EBUSY);
    void *t = ms_pool_alloc(p, 50); /* allocating while dying is fine */
    CHECK(t != NULL);
    void *t2 = ms_pool_alloc(p, 50000);
    CHECK(t2 != NULL);
    CHECK_EQ(ms_pool_destroy(p), 0); /* again: nothing */
    CHECK_EQ(ms_pool_steal(p, ms_pool_alloc(G_rescue, 4)), -1);
    CHECK_EQ(errno, EBUSY);
    return 0;
}
static int free_self_dtor(void *obj, void *arg)
{
    (void)arg;
    CHECK_EQ(ms_pool_free(obj), 0); /* inside its own destructor: no-op */
    CHECK(ms_pool_realloc(NULL, obj, 100) == NULL && errno == EBUSY);
    CHECK(ms_pool_add_block_destructor(obj, count_dtor, NULL) == NULL && errno == EBUSY);
    return 0;
}
static int remove_self_dtor(void *obj, void *arg)
{
    (void)obj;
    ms_pool_remove_destructor(*(struct ms_pool_dtor **)arg);
    return 1; /* refusal made void by the removal */
}

static void t_dtor_reentrancy(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    G_rescue = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    G_sib = ms_pool_new_child(r); /* older sibling: destroyed after a */
    ms_pool_new_child(G_sib);
    a = ms_pool_new_child(r);
    ms_pool_add_destructor(a, destroy_sib_dtor, NULL);
    CHECK_EQ(ms_pool_destroy(r), 0);

    r = ms_pool_new_root(0);
    G_sib = ms_pool_new_child(r);
    void *sb = ms_pool_alloc(G_sib, 10);
    a = ms_pool_new_child(r);
    ms_pool_add_destructor(a, move_sib_dtor, NULL);
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK(ms_pool_parent(G_sib) == G_rescue && ms_pool_owner(sb) == G_sib);

    r = ms_pool_new_root(0);
    G_blk = ms_pool_alloc(r, 33);
    strcpy(G_blk, "saved");
    ms_pool_add_destructor(r, rescue_blk_dtor, NULL);
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK(strcmp(G_blk, "saved") == 0 && ms_pool_owner(G_blk) == G_rescue);
    CHECK_EQ(ms_pool_check(G_rescue), 0);

    r = ms_pool_new_root(0);
    void *x = ms_pool_alloc(r, 8);
    ms_pool_add_block_destructor(x, free_self_dtor, NULL);
    CHECK_EQ(ms_pool_free(x), 0);
    struct ms_pool_dtor *d = NULL;
    d = ms_pool_add_destructor(r, remove_self_dtor, &d);
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK_EQ(ms_pool_destroy(G_rescue), 0);
}

static struct ms_pool *G_outer;
static int destroy_outer_dtor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    errno = 0;
    CHECK_EQ(ms_pool_destroy(G_outer), -1); /* a pool below it is being destroyed */
    CHECK_EQ(errno, EBUSY);
    return 0;
}

static void t_dtor_destroy_ancestor(void)
{
    G_outer = ms_pool_new_root(0);
    struct ms_pool *mid = ms_pool_new_child(G_outer);
    struct ms_pool *leaf = ms_pool_new_child(mid);
    ms_pool_add_destructor(leaf, destroy_outer_dtor, NULL);
    CHECK_EQ(ms_pool_destroy(leaf), 0);
    CHECK_EQ(ms_pool_check(G_outer), 0);
    CHECK(ms_pool_parent(mid) == G_outer);
    CHECK_EQ(ms_pool_destroy(G_outer), 0);
}

/* ------------------------------------------------------------ ownership */
static void t_steal(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *b = ms_pool_new_child(r);
    char *x = ms_pool_strdup(a, "xx");
    char *y = ms_pool_alloc(a, 20000); /* large */
    CHECK_EQ(ms_pool_steal(b, x), 0);
    CHECK(ms_pool_owner(x) == b);
    CHECK_EQ(ms_pool_steal(b, y), 0);
    CHECK(ms_pool_owner(y) == b);
    CHECK_EQ(own_bytes(a), 0);
    CHECK_EQ(own_blocks(b), 2);
    CHECK_EQ(own_bytes(b), 3 + 20000);
    CHECK_EQ(ms_pool_steal(b, x), 0); /* no-op */
    CHECK_EQ(ms_pool_check(r), 0);
    /* the old owner goes; the stolen block lives on in its chunk */
    CHECK_EQ(ms_pool_destroy(a), 0);
    CHECK(strcmp(x, "xx") == 0 && ms_pool_owner(x) == b);
    CHECK_EQ(ms_pool_check(r), 0);
    /* steal back home */
    struct ms_pool *c = ms_pool_new_child(r);
    char *z = ms_pool_strdup(c, "zz");
    CHECK_EQ(ms_pool_steal(b, z), 0);
    CHECK_EQ(ms_pool_steal(c, z), 0);
    CHECK(ms_pool_owner(z) == c);
    CHECK_EQ(ms_pool_free(z), 0);
    CHECK_EQ(ms_pool_check(r), 0);
    /* stolen block freed by its new owner */
    char *w = ms_pool_strdup(c, "ww");
    CHECK_EQ(ms_pool_steal(b, w), 0);
    CHECK_EQ(ms_pool_free(w), 0);
    CHECK_EQ(ms_pool_check(r), 0);
    /* errors */
    errno = 0;
    CHECK_EQ(ms_pool_steal(NULL, x), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(ms_pool_steal(b, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ms_pool_destroy(b), 0); /* frees x and y */
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

static void t_move(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *a1 = ms_pool_new_child(a);
    struct ms_pool *b = ms_pool_new_child(r);
    ms_pool_alloc(a1, 100);
    CHECK_EQ(ms_pool_move(b, a), 0);
    CHECK(ms_pool_parent(a) == b);
    CHECK_EQ(subtree_bytes(b), 100);
    CHECK_EQ(ms_pool_move(b, a), 0); /* no-op */
    errno = 0;
    CHECK_EQ(ms_pool_move(a1, a), -1); /* below itself */
    CHECK_EQ(errno, ELOOP);
    errno = 0;
    CHECK_EQ(ms_pool_move(a, a), -1);
    CHECK_EQ(errno, ELOOP);
    errno = 0;
    CHECK_EQ(ms_pool_move(a1, r), -1);
    CHECK_EQ(errno, ELOOP);
    /* out to a root and back */
    CHECK_EQ(ms_pool_move(NULL, a), 0);
    CHECK(ms_pool_parent(a) == NULL);
    CHECK_EQ(ms_pool_roots(NULL, 0), 2);
    CHECK_EQ(ms_pool_move(r, a), 0);
    CHECK_EQ(ms_pool_roots(NULL, 0), 1);
    /* a root under another root */
    struct ms_pool *r2 = ms_pool_new_root(0);
    CHECK_EQ(ms_pool_roots(NULL, 0), 2);
    CHECK_EQ(ms_pool_move(b, r2), 0);
    CHECK_EQ(ms_pool_roots(NULL, 0), 1);
    errno = 0;
    CHECK_EQ(ms_pool_move(r, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

static void t_adopt_block(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *h1 = ms_pool_new_child(r);
    struct ms_pool *h2 = ms_pool_new_child(r);
    char *x = ms_pool_strdup(a, "shared");
    LOG[0] = 0;
    ms_pool_add_block_destructor(x, log_dtor, "x");
    CHECK_EQ(ms_pool_adopt(h1, x), 0);
    CHECK_EQ(ms_pool_adopt(h2, x), 0);
    CHECK_EQ(ms_pool_adopt(h2, x), 0); /* twice */
    struct ms_pool_block_info bi;
    ms_pool_block_info(x, &bi);
    CHECK_EQ(bi.adopters, 3);
    errno = 0;
    CHECK_EQ(ms_pool_free(x), -1);
    CHECK_EQ(errno, EBUSY);
    /* the primary owner goes: x passes to the oldest claim (h1) */
    CHECK_EQ(ms_pool_destroy(a), 0);
    CHECK(strcmp(x, "shared") == 0 && ms_pool_owner(x) == h1);
    CHECK(LOG[0] == 0);
    ms_pool_block_info(x, &bi);
    CHECK_EQ(bi.adopters, 2);
    CHECK_EQ(own_bytes(h1), 7);
    /* h2 lets go once, then the holder h2 is destroyed: its claim goes */
    CHECK_EQ(ms_pool_release(h2, x), 0);
    CHECK_EQ(ms_pool_destroy(h2), 0);
    ms_pool_block_info(x, &bi);
    CHECK_EQ(bi.adopters, 0);
    /* a pool with no claim */
    errno = 0;
    CHECK_EQ(ms_pool_release(r, x), -1);
    CHECK_EQ(errno, EINVAL);
    /* primary release, no adopters: freed */
    CHECK_EQ(ms_pool_release(h1, x), 0);
    CHECK(strcmp(LOG, "x ") == 0);
    CHECK_EQ(own_blocks(h1), 0);
    /* primary release with an adopter: hand-over; NULL holder = primary */
    char *y = ms_pool_strdup(h1, "y");
    CHECK_EQ(ms_pool_adopt(r, y), 0);
    CHECK_EQ(ms_pool_release(NULL, y), 0);
    CHECK(ms_pool_owner(y) == r);
    CHECK_EQ(ms_pool_release(NULL, y), 0); /* freed */
    CHECK_EQ(ms_pool_size(y), 0);
    /* the adopter goes before the primary owner */
    char *z = ms_pool_strdup(h1, "z");
    struct ms_pool *h3 = ms_pool_new_child(r);
    CHECK_EQ(ms_pool_adopt(h3, z), 0);
    CHECK_EQ(ms_pool_destroy(h3), 0);
    CHECK(ms_pool_owner(z) == h1);
    ms_pool_block_info(z, &bi);
    CHECK_EQ(bi.adopters, 0);
    /* large block adopted */
    char *L = ms_pool_alloc(h1, 9000);
    CHECK_EQ(ms_pool_adopt(r, L), 0);
    CHECK_EQ(ms_pool_destroy(h1), 0);
    CHECK(ms_pool_owner(L) == r);
    /* errors */
    errno = 0;
    CHECK_EQ(ms_pool_adopt(NULL, L), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(ms_pool_adopt(r, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(ms_pool_release(r, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

static void t_adopt_pool(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *s = ms_pool_new_child(a);
    struct ms_pool *s1 = ms_pool_new_child(s);
    struct ms_pool *h = ms_pool_new_child(r);
    ms_pool_alloc(s1, 64);
    LOG[0] = 0;
    ms_pool_add_destructor(s, log_dtor, "s");
    CHECK_EQ(ms_pool_adopt_pool(h, s), 0);
    CHECK_EQ(ms_pool_adopt_pool(s1, s), -1); /* below itself */
    CHECK_EQ(errno, ELOOP);
    CHECK_EQ(ms_pool_adopt_pool(s, s), -1);
    CHECK_EQ(errno, ELOOP);
    errno = 0;
    CHECK_EQ(ms_pool_destroy(s), -1);
    CHECK_EQ(errno, EBUSY);
    struct ms_pool_node_info ni;
    ms_pool_info(s, &ni);
    CHECK_EQ(ni.adopters, 1);
    ms_pool_info(h, &ni);
    CHECK_EQ(ni.held, 1);
    /* primary parent goes: s passes to h */
    CHECK_EQ(ms_pool_destroy(a), 0);
    CHECK(ms_pool_parent(s) == h);
    CHECK(LOG[0] == 0);
    CHECK_EQ(subtree_bytes(h), 64);
    /* claims by a pool inside the subtree do not keep it */
    struct ms_pool *q = ms_pool_new_child(r);
    struct ms_pool *q1 = ms_pool_new_child(q);
    struct ms_pool *t = ms_pool_new_child(q);
    CHECK_EQ(ms_pool_adopt_pool(q1, t), 0);
    CHECK_EQ(ms_pool_destroy(q), 0);
    /* release by the adopter, then by the primary (NULL = primary) */
    struct ms_pool *u = ms_pool_new_child(r);
    CHECK_EQ(ms_pool_adopt_pool(h, u), 0);
    CHECK_EQ(ms_pool_release_pool(h, u), 0);
    CHECK_EQ(ms_pool_release_pool(r, u), 0); /* primary: destroyed */
    ms_pool_info(r, &ni);
    CHECK_EQ(ni.children, 1);
    errno = 0;
    CHECK_EQ(ms_pool_release_pool(r, s), -1); /* no claim */
    CHECK_EQ(errno, EINVAL);
    /* a shared root: primary release hands it over */
    struct ms_pool *r2 = ms_pool_new_root(0);
    CHECK_EQ(ms_pool_adopt_pool(h, r2), 0);
    CHECK_EQ(ms_pool_release_pool(NULL, r2), 0);
    CHECK(ms_pool_parent(r2) == h);
    CHECK_EQ(ms_pool_roots(NULL, 0), 1);
    /* errors */
    errno = 0;
    CHECK_EQ(ms_pool_adopt_pool(NULL, s), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(ms_pool_adopt_pool(h, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(ms_pool_release_pool(h, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_destroy(r), 0);
    CHECK(strcmp(LOG, "s ") == 0);
}

/* ------------------------------------------------------------ limits */
static int g_hits;
static struct ms_pool_limit_info g_li;
static void rec_limit(const struct ms_pool_limit_info *li, void *arg)
{
    g_hits++;
    g_li = *li;
    if (arg)
        (*(int *)arg)++;
}

static void t_limits(void)
{
    struct ms_pool *r = ms_pool_new_root(1000);
    struct ms_pool *a = ms_pool_new_child(r);
    struct ms_pool *b = ms_pool_new_child(a);
    g_hits = 0;
    ms_pool_set_limit_handler(NULL, rec_limit, NULL);
    void *x = ms_pool_alloc(b, 600);
    CHECK(x != NULL);
    uint64_t d0 = digest_all();
    errno = 0;
    int line = __LINE__ + 1;
    CHECK(ms_pool_alloc(b, 401) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(digest_all(), d0);
    CHECK_EQ(g_hits, 1);
    CHECK(g_li.limited == r && g_li.pool == b && g_li.limit == 1000 && g_li.used == 600 &&
          g_li.request == 401 && g_li.line == line);
    CHECK(ms_pool_alloc(b, 400) != NULL); /* exactly to the limit */
    CHECK(ms_pool_alloc(a, 1) == NULL && errno == ENOMEM);
    CHECK(ms_pool_zalloc(a, 1) == NULL && errno == ENOMEM);
    CHECK(ms_pool_strdup(a, "") == NULL && errno == ENOMEM);
    CHECK_EQ(ms_pool_free(x), 0);
    void *y = ms_pool_alloc(a, 300);
    CHECK(y != NULL);
    /* realloc growth is checked, shrinking is not */
    CHECK(ms_pool_realloc(a, y, 601) == NULL && errno == ENOMEM);
    CHECK_EQ(ms_pool_size(y), 300);
    y = ms_pool_realloc(a, y, 600);
    CHECK(y != NULL);
    y = ms_pool_realloc(a, y, 10);
    CHECK(y != NULL);
    CHECK_EQ(subtree_bytes(r), 410);
    /* a nested limit with its own handler */
    int own = 0;
    CHECK_EQ(ms_pool_set_limit(a, 500), 0);
    ms_pool_set_limit_handler(a, rec_limit, &own);
    CHECK(ms_pool_alloc(b, 91) == NULL);
    CHECK_EQ(own, 1);
    CHECK(g_li.limited == a);
    CHECK(ms_pool_alloc(b, 90) != NULL);
    struct ms_pool_node_info ni;
    ms_pool_info(a, &ni);
    CHECK_EQ(ni.limit, 500);
    /* moves and steals are checked against the new ancestors */
    struct ms_pool *r2 = ms_pool_new_root(0);
    void *big = ms_pool_alloc(r2, 200);
    CHECK_EQ(ms_pool_steal(b, big), -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK(ms_pool_owner(big) == r2);
    struct ms_pool *c = ms_pool_new_child(r2);
    ms_pool_alloc(c, 300);
    CHECK_EQ(ms_pool_move(b, c), -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK(ms_pool_parent(c) == r2);
    /* moving inside the same limited subtree is not double-counted */
    struct ms_pool *b2 = ms_pool_new_child(a);
    CHECK_EQ(ms_pool_move(b2, b), 0);
    CHECK_EQ(ms_pool_check(r), 0);
    /* lowering the limit below the use */
    CHECK_EQ(ms_pool_set_limit(a, 10), 0);
    CHECK(ms_pool_alloc(b, 0) == NULL);
    CHECK_EQ(ms_pool_set_limit(a, 0), 0); /* cleared: r's limit only */
    ms_pool_info(a, &ni);
    CHECK_EQ(ni.limit, 0);
    CHECK(ms_pool_alloc(b, 10) != NULL);
    CHECK_EQ(ms_pool_check(r), 0);
    /* moving a subtree out frees room; a limited pool moved in counts */
    CHECK_EQ(ms_pool_move(r2, b), 0);
    CHECK_EQ(subtree_bytes(r), 10);
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_check(r2), 0);
    CHECK_EQ(ms_pool_set_limit(NULL, 5), -1);
    CHECK_EQ(ms_pool_destroy(r2), 0);
    CHECK_EQ(ms_pool_destroy(r), 0);
}

static void limit_abort_child(void)
{
    struct ms_pool *r = ms_pool_new_root(100);
    ms_pool_set_name(r, "capped");
    ms_pool_set_limit_handler(r, ms_pool_limit_abort, NULL);
    ms_pool_alloc(r, 60);
    ms_pool_alloc(r, 60);
}

static void t_limit_abort(void)
{
    char buf[8192];
    int st = in_child(limit_abort_child, buf, sizeof buf);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(buf, "limit of 100 bytes") != NULL);
    CHECK(strstr(buf, "\"capped\"") != NULL);
    CHECK(strstr(buf, "60 B at") != NULL);
    CHECK(strstr(buf, "sites of pool") != NULL);
    CHECK(strstr(buf, __FILE__) != NULL);
}

/* ------------------------------------------------------------ introspection */
struct walk_rec {
    int pools, blocks, stop_at;
    char order[256];
    size_t bytes;
};

static int walk_cb(const struct ms_pool_node_info *n, const struct ms_pool_block_info *b, void *arg)
{
    struct walk_rec *w = arg;
    if (b) {
        w->blocks++;
        w->bytes += b->size;
        if (b->owner != n->pool)
            w->stop_at = -100;
    } else {
        w->pools++;
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%s/%u ", n->name ? n->name : "?", n->depth);
        strcat(w->order, tmp);
    }
    if (w->stop_at && w->pools + w->blocks == w->stop_at)
        return 42;
    return 0;
}

static void t_walk(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    ms_pool_set_name(r, "r");
    struct ms_pool *a = ms_pool_new_child(r);
    ms_pool_set_name(a, "a");
    struct ms_pool *a1 = ms_pool_new_child(a);
    ms_pool_set_name(a1, "a1");
    struct ms_pool *b = ms_pool_new_child(r);
    ms_pool_set_name(b, "b");
    ms_pool_alloc(a1, 10);
    ms_pool_alloc(a1, 20);
    ms_pool_alloc(b, 5000);
    void *f = ms_pool_alloc(b, 7);
    ms_pool_free(f);
    char *st = ms_pool_strdup(a, "s"); /* stolen: counted at its new owner */
    ms_pool_steal(b, st);
    struct walk_rec w = {0};
    CHECK_EQ(ms_pool_walk(r, 0, walk_cb, &w), 0);
    CHECK(strcmp(w.order, "r/0 b/1 a/1 a1/2 ") == 0);
    CHECK_EQ(w.pools, 4);
    CHECK_EQ(w.blocks, 0);
    memset(&w, 0, sizeof w);
    CHECK_EQ(ms_pool_walk(r, MS_POOL_WALK_BLOCKS, walk_cb, &w), 0);
    CHECK_EQ(w.blocks, 4);
    CHECK_EQ(w.bytes, 10 + 20 + 5000 + 2);
    CHECK(w.stop_at == 0);
    memset(&w, 0, sizeof w);
    w.stop_at = 3;
    CHECK_EQ(ms_pool_walk(r, MS_POOL_WALK_BLOCKS, walk_cb, &w), 42);
    struct ms_pool_node_info ni;
    ms_pool_info(r, &ni);
    CHECK_EQ(ni.subtree_bytes, 5032);
    CHECK_EQ(ni.subtree_blocks, 4);
    CHECK_EQ(ni.subtree_pools, 4);
    CHECK(ms_pool_walk(NULL, 0, walk_cb, &w) == -1 && errno == EINVAL);
    CHECK(ms_pool_walk(r, 0, NULL, &w) == -1 && errno == EINVAL);
    CHECK(ms_pool_info(NULL, &ni) == -1 && errno == EINVAL);
    CHECK(ms_pool_info(r, NULL) == -1 && errno == EINVAL);
    struct ms_pool_block_info bi;
    CHECK(ms_pool_block_info(NULL, &bi) == -1 && errno == EINVAL);
    CHECK(ms_pool_block_info(st, NULL) == -1 && errno == EINVAL);
    ms_pool_destroy(r);
}

static char *capture(int (*fn)(FILE *, struct ms_pool *, unsigned), struct ms_pool *p, unsigned flags,
                     int *rc)
{
    static char *buf; /* static: gcc 12's -Wdangling-pointer misreads open_memstream */
    static size_t len;
    buf = NULL;
    len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = fn(f, p, flags);
    fclose(f);
    char *r = buf;
    buf = NULL;
    return r;
}

static int print_sites_adapter(FILE *f, struct ms_pool *p, unsigned flags)
{
    (void)flags;
    return ms_pool_print_sites(f, p);
}

static int dump_all_adapter(FILE *f, struct ms_pool *p, unsigned flags)
{
    (void)p;
    return ms_pool_dump_all(f, flags);
}

static void t_print(void)
{
    struct ms_pool *r = ms_pool_new_root(4096);
    ms_pool_set_name(r, "top");
    struct ms_pool *a = ms_pool_new_child(r);
    int la = __LINE__ - 1;
    for (int i = 0; i < 3; i++)
        ms_pool_alloc(a, 100); /* one site: 3 blocks, 300 B */
    int l3 = __LINE__ - 1;
    ms_pool_alloc(a, 1000); /* one block, 1000 B: first */
    int l1 = __LINE__ - 1;
    for (int i = 0; i < 5; i++)
        ms_pool_alloc(r, 10); /* 5 blocks, 50 B: last */
    int l5 = __LINE__ - 1;
    int rc;
    char *s = capture(ms_pool_print, r, 0, &rc);
    CHECK_EQ(rc, 0);
    char want[256];
    snprintf(want, sizeof want, "pool %p \"top\" (%s:", (void *)r, __FILE__);
    CHECK(strstr(s, want) != NULL);
    CHECK(strstr(s, "own 50 B in 5 blocks; subtree 1350 B in 9 blocks, 2 pools; 1 children; limit 4096 B (1350 used)") !=
          NULL);
    snprintf(want, sizeof want, "  pool %p (%s:%d): own 1300 B in 4 blocks", (void *)a, __FILE__, la);
    CHECK(strstr(s, want) != NULL);
    CHECK(strstr(s, "- block") == NULL);
    free(s);
    s = capture(ms_pool_print, r, MS_POOL_PRINT_BLOCKS | MS_POOL_PRINT_SITES, &rc);
    CHECK_EQ(rc, 0);
    snprintf(want, sizeof want, ": 1000 B at %s:%d", __FILE__, l1);
    CHECK(strstr(s, want) != NULL);
    CHECK(strstr(s, "sites of pool") != NULL);
    free(s);
    s = capture(print_sites_adapter, r, 0, &rc);
    CHECK_EQ(rc, 3);
    char w1[128], w3[128], w5[128];
    snprintf(w1, sizeof w1, "%12d %9d  %s:%d\n", 1000, 1, __FILE__, l1);
    snprintf(w3, sizeof w3, "%12d %9d  %s:%d\n", 300, 3, __FILE__, l3);
    snprintf(w5, sizeof w5, "%12d %9d  %s:%d\n", 50, 5, __FILE__, l5);
    char *p1 = strstr(s, w1), *p3 = strstr(s, w3), *p5 = strstr(s, w5);
    CHECK(p1 && p3 && p5 && p1 < p3 && p3 < p5);
    CHECK(strstr(s, "1350 B in 9 blocks from 3 sites") != NULL);
    free(s);
    /* sites compare file names, not pointers */
    char fname[] = "copy-of-name.c";
    char fname2[] = "copy-of-name.c";
    ms_pool_alloc_at(a, 1, fname, 9);
    ms_pool_alloc_at(a, 1, fname2, 9);
    s = capture(print_sites_adapter, r, 0, &rc);
    CHECK(strstr(s, "           2         2  copy-of-name.c:9\n") != NULL);
    free(s);
    /* the whole registry */
    struct ms_pool *r2 = ms_pool_new_root(0);
    ms_pool_set_name(r2, "second");
    s = capture(dump_all_adapter, NULL, 0, &rc);
    CHECK_EQ(rc, 2);
    CHECK(strstr(s, "=== memsleuth pool dump: pid") != NULL && strstr(s, "2 root(s)") != NULL);
    CHECK(strstr(s, "\"top\"") && strstr(s, "\"second\"") && strstr(s, "=== end of memsleuth pool dump ==="));
    free(s);
    CHECK(ms_pool_dump_all(NULL, 0) == -1 && errno == EINVAL);
    CHECK(ms_pool_print(NULL, r, 0) == -1 && errno == EINVAL);
    CHECK(ms_pool_print(stdout, NULL, 0) == -1 && errno == EINVAL);
    CHECK(ms_pool_print_sites(NULL, r) == -1 && errno == EINVAL);
    CHECK(ms_pool_foreach_root(NULL, NULL) == -1 && errno == EINVAL);
    ms_pool_destroy(r2);
    ms_pool_destroy(r);
}

static _Atomic int HOLDING;
static int hold_cb(struct ms_pool *r, void *arg)
{
    (void)r;
    (void)arg;
    atomic_store(&HOLDING, 1);
    usleep(1500 * 1000); /* holds the registry lock */
    return 1;
}

static void *holder_thread(void *arg)
{
    (void)arg;
    ms_pool_foreach_root(hold_cb, NULL);
    return NULL;
}

static void t_dump_busy(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    pthread_t th;
    atomic_store(&HOLDING, 0);
    pthread_create(&th, NULL, holder_thread, NULL);
    while (!atomic_load(&HOLDING))
        usleep(1000);
    int rc;
    errno = 0;
    char *s = capture(dump_all_adapter, NULL, 0, &rc);
    CHECK_EQ(rc, -1);
    CHECK_EQ(errno, EBUSY);
    CHECK(strstr(s, "registry is busy") != NULL);
    free(s);
    pthread_join(th, NULL);
    s = capture(dump_all_adapter, NULL, 0, &rc);
    CHECK_EQ(rc, 1);
    free(s);
    ms_pool_destroy(r);
}

/* ------------------------------------------------------------ debug mode */
static void t_debug_fill_canary(void)
{
    ms_pool_set_debug(1);
    CHECK_EQ(ms_pool_debug(), 1);
    struct ms_pool *r = ms_pool_new_root(0);
    unsigned char *p = ms_pool_alloc(r, 20);
    CHECK(p[0] == MS_POOL_FILL_NEW && p[19] == MS_POOL_FILL_NEW);
    CHECK(p[20] == MS_POOL_FILL_TAIL && p[27] == MS_POOL_FILL_TAIL);
    unsigned char *z = ms_pool_zalloc(r, 20);
    CHECK(z[0] == 0 && z[19] == 0);
    /* overflow by one byte: found on free, with the allocation site */
    int la = __LINE__ + 1;
    unsigned char *o = ms_pool_alloc(r, 16);
    o[16] = 'X';
    CHECK_EQ(ms_pool_check(r), 1);
    CHECK_EQ(E.kind, MS_POOL_ERR_CANARY);
    memset(&E, 0, sizeof E);
    int lf = __LINE__ + 1;
    CHECK_EQ(ms_pool_free(o), -1);
    CHECK_EQ(E.kind, MS_POOL_ERR_CANARY);
    CHECK(E.first_line == la && E.line == lf);
    o[16] = MS_POOL_FILL_TAIL; /* repaired */
    CHECK_EQ(ms_pool_free(o), 0);
    /* a large block too */
    unsigned char *L = ms_pool_alloc(r, 3000);
    L[3000] = 0;
    memset(&E, 0, sizeof E);
    CHECK_EQ(ms_pool_free(L), -1);
    CHECK_EQ(E.kind, MS_POOL_ERR_CANARY);
    L[3000] = MS_POOL_FILL_TAIL;
    /* realloc checks too */
    L[3001] = 1;
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_realloc(r, L, 10) == NULL);
    CHECK_EQ(E.kind, MS_POOL_ERR_CANARY);
    L[3001] = MS_POOL_FILL_TAIL;
    CHECK(ms_pool_realloc(r, L, 4000) != NULL);
    /* underflow hits the magic word in front */
    unsigned char *u = ms_pool_alloc(r, 16);
    u[-1] ^= 0xff;
    memset(&E, 0, sizeof E);
    CHECK_EQ(ms_pool_free(u), -1);
    CHECK_EQ(E.kind, MS_POOL_ERR_CANARY);
    CHECK(ms_pool_check(r) >= 1);
    u[-1] ^= 0xff;
    /* freed: filled, kept, writes after free found */
    CHECK_EQ(ms_pool_free(p), 0);
    CHECK(p[0] == MS_POOL_FILL_FREED && p[19] == MS_POOL_FILL_FREED);
    void *again = ms_pool_alloc(r, 20);
    CHECK(again != p); /* not reused in debug mode */
    CHECK_EQ(ms_pool_check(r), 0);
    p[3] = 7;
    memset(&E, 0, sizeof E);
    CHECK_EQ(ms_pool_check(r), 1);
    CHECK_EQ(E.kind, MS_POOL_ERR_USE_AFTER_FREE);
    p[3] = MS_POOL_FILL_FREED;
    ms_pool_destroy(r);
}

static void t_debug_double_free(void)
{
    ms_pool_set_debug(1);
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    void *x = ms_pool_alloc(a, 10);
    ms_pool_alloc(a, 10);
    int l1 = __LINE__ + 1;
    CHECK_EQ(ms_pool_free(x), 0);
    ms_pool_alloc(a, 10); /* would reuse x outside debug mode */
    int l2 = __LINE__ + 1;
    CHECK_EQ(ms_pool_free(x), -1);
    CHECK_EQ(E.kind, MS_POOL_ERR_DOUBLE_FREE);
    CHECK(strcmp(E.first_file, __FILE__) == 0 && E.first_line == l1);
    CHECK(strcmp(E.file, __FILE__) == 0 && E.line == l2);
    /* a block whose pool was destroyed: freed by the destroy */
    void *y = ms_pool_alloc(a, 10);
    int l3 = __LINE__ + 1;
    CHECK_EQ(ms_pool_destroy(a), 0);
    memset(&E, 0, sizeof E);
    int l4 = __LINE__ + 1;
    CHECK_EQ(ms_pool_free(y), -1);
    CHECK(E.kind == MS_POOL_ERR_DOUBLE_FREE && E.first_line == l3 && E.line == l4);
    /* large block */
    void *L = ms_pool_alloc(r, 100000);
    int l5 = __LINE__ + 1;
    ms_pool_free(L);
    memset(&E, 0, sizeof E);
    CHECK_EQ(ms_pool_free(L), -1);
    CHECK(E.kind == MS_POOL_ERR_DOUBLE_FREE && E.first_line == l5);
    ms_pool_destroy(r);
}

static void t_debug_dead_pool(void)
{
    ms_pool_set_debug(1);
    struct ms_pool *r = ms_pool_new_root(0);
    struct ms_pool *a = ms_pool_new_child(r);
    int l1 = __LINE__ + 1;
    CHECK_EQ(ms_pool_destroy(a), 0);
    int l2 = __LINE__ + 1;
    CHECK(ms_pool_alloc(a, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(E.kind == MS_POOL_ERR_DEAD_POOL && E.first_line == l1 && E.line == l2 && E.ptr == a);
    CHECK(strcmp(E.first_file, __FILE__) == 0);
    memset(&E, 0, sizeof E);
    int l3 = __LINE__ + 1;
    CHECK_EQ(ms_pool_destroy(a), -1);
    CHECK(E.kind == MS_POOL_ERR_DEAD_POOL && E.first_line == l1 && E.line == l3);
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_new_child(a) == NULL && E.kind == MS_POOL_ERR_DEAD_POOL);
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_steal(a, ms_pool_alloc(r, 1)) == -1 && E.kind == MS_POOL_ERR_DEAD_POOL);
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_zalloc(a, 1) == NULL && E.kind == MS_POOL_ERR_DEAD_POOL);
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_strdup(a, "x") == NULL && E.kind == MS_POOL_ERR_DEAD_POOL);
    memset(&E, 0, sizeof E);
    CHECK(ms_pool_move(r, a) == -1 && E.kind == MS_POOL_ERR_DEAD_POOL);
    struct ms_pool_stats st;
    ms_pool_get_stats(&st);
    CHECK(st.quarantine_bytes >= 4096);
    /* the quarantine is bounded */
    ms_pool_set_quarantine_limit(10000);
    for (int i = 0; i < 20; i++) {
        struct ms_pool *t = ms_pool_new_child(r);
        ms_pool_alloc(t, 900);
        ms_pool_destroy(t);
    }
    ms_pool_get_stats(&st);
    CHECK(st.quarantine_bytes <= 10000);
    ms_pool_set_quarantine_limit((size_t)64 << 20);
    ms_pool_destroy(r);
}

static void dead_pool_child(void)
{
    ms_pool_set_error_handler(NULL, NULL);
    ms_pool_set_debug(1);
    struct ms_pool *r = ms_pool_new_root(0);
    ms_pool_destroy_at(r, "first.c", 11);
    ms_pool_alloc_at(r, 8, "second.c", 22);
}

static void double_free_child(void)
{
    ms_pool_set_error_handler(NULL, NULL);
    ms_pool_set_debug(1);
    struct ms_pool *r = ms_pool_new_root(0);
    void *x = ms_pool_alloc(r, 8);
    ms_pool_free_at(x, "one.c", 1);
    ms_pool_free_at(x, "two.c", 2);
}

static void t_debug_default_handler(void)
{
    char buf[4096];
    int st = in_child(dead_pool_child, buf, sizeof buf);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(buf, "use of a destroyed pool") && strstr(buf, "at second.c:22") &&
          strstr(buf, "destroyed at first.c:11"));
    st = in_child(double_free_child, buf, sizeof buf);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(buf, "double free") && strstr(buf, "at two.c:2") && strstr(buf, "freed at one.c:1"));
}

static void t_debug_env(void)
{
    /* a fresh process reads MEMSLEUTH_POOL_* when the first root is made */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("MEMSLEUTH_POOL_DEBUG", "1", 1);
        setenv("MEMSLEUTH_POOL_CACHE", "0", 1);
        setenv("MEMSLEUTH_POOL_QUARANTINE", "1M", 1);
        execl(g_self, g_self, "--env-child", (char *)NULL);
        _exit(3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int env_child(void)
{
    struct ms_pool *r = ms_pool_new_root(0);
    int bad = 0;
    if (ms_pool_debug() != 1)
        bad |= 1;
    unsigned char *p = ms_pool_alloc(r, 4);
    if (p[4] != MS_POOL_FILL_TAIL)
        bad |= 2;
    struct ms_pool *c = ms_pool_new_child(r);
    ms_pool_destroy(c);
    struct ms_pool_stats st;
    ms_pool_get_stats(&st);
    if (st.quarantine_bytes == 0)
        bad |= 4;
    ms_pool_set_debug(0);
    c = ms_pool_new_child(r);
    ms_pool_destroy(c);
    ms_pool_get_stats(&st);
    if (st.cached_bytes != 0) /* MEMSLEUTH_POOL_CACHE=0 */
        bad |= 8;
    ms_pool_destroy(r);
    return bad;
}

/* ------------------------------------------------------------ events */
static struct ms_pool_event EV[64];
static int NEV;
static void rec_event(const struct ms_pool_event *ev, void *arg)
{
    (void)arg;
    if (NEV < 64)
        EV[NEV++] = *ev;
}

static void t_events(void)
{
    ms_pool_set_event_hook(rec_event, NULL);
    NEV = 0;
    int l = __LINE__ + 1;
    struct ms_pool *r = ms_pool_new_root(0);
    CHECK(NEV == 1 && EV[0].kind == MS_POOL_EV_CREATE && EV[0].pool == r && EV[0].other == NULL &&
          EV[0].line == l && strcmp(EV[0].file, __FILE__) == 0);
    struct ms_pool *a = ms_pool_new_child(r);
    CHECK(NEV == 2 && EV[1].kind == MS_POOL_EV_CREATE && EV[1].pool == a && EV[1].other == r);
    l = __LINE__ + 1;
    void *x = ms_pool_alloc(a, 24);
    CHECK(NEV == 3 && EV[2].kind == MS_POOL_EV_ALLOC && EV[2].pool == a && EV[2].ptr == x && EV[2].size == 24 &&
          EV[2].line == l);
    void *y = ms_pool_realloc(a, x, 2000);
    CHECK(NEV == 4 && EV[3].kind == MS_POOL_EV_REALLOC && EV[3].ptr == y && EV[3].old_ptr == x &&
          EV[3].size == 2000);
    ms_pool_steal(r, y);
    CHECK(NEV == 5 && EV[4].kind == MS_POOL_EV_REPARENT && EV[4].ptr == y && EV[4].other == r &&
          EV[4].old_owner == a);
    ms_pool_adopt(a, y);
    CHECK(NEV == 6 && EV[5].kind == MS_POOL_EV_ADOPT && EV[5].ptr == y && EV[5].other == a);
    ms_pool_release(a, y);
    CHECK(NEV == 7 && EV[6].kind == MS_POOL_EV_RELEASE && EV[6].ptr == y && EV[6].other == a);
    l = __LINE__ + 1;
    ms_pool_free(y);
    CHECK(NEV == 8 && EV[7].kind == MS_POOL_EV_FREE && EV[7].ptr == y && EV[7].size == 2000 && EV[7].line == l);
    struct ms_pool *b = ms_pool_new_child(r);
    NEV = 0;
    ms_pool_move(a, b);
    CHECK(NEV == 1 && EV[0].kind == MS_POOL_EV_REPARENT && EV[0].pool == b && EV[0].ptr == NULL &&
          EV[0].other == a && EV[0].old_owner == r);
    ms_pool_adopt_pool(r, b);
    ms_pool_release_pool(r, b);
    CHECK(NEV == 3 && EV[1].kind == MS_POOL_EV_ADOPT && EV[1].pool == b && EV[2].kind == MS_POOL_EV_RELEASE);
    NEV = 0;
    ms_pool_destroy(r);
    CHECK(NEV == 3 && EV[0].kind == MS_POOL_EV_DESTROY && EV[0].pool == b && EV[1].pool == a &&
          EV[2].pool == r && EV[2].other == NULL);
    ms_pool_set_event_hook(NULL, NULL);
    NEV = 0;
    r = ms_pool_new_root(0);
    ms_pool_alloc(r, 1);
    ms_pool_destroy(r);
    CHECK_EQ(NEV, 0);
}

/* ------------------------------------------------------------ fault injection */
static uint64_t F_d0;
static FILE *F_null;
#define NFNAMES 48
static const char *F_names[NFNAMES];
static int F_fails[NFNAMES];

static void fault_note(const char *call)
{
    for (int i = 0; i < NFNAMES; i++) {
        if (F_names[i] == NULL || strcmp(F_names[i], call) == 0) {
            F_names[i] = call;
            F_fails[i]++;
            return;
        }
    }
}

static void step_begin(void)
{
    F_d0 = digest_all();
    errno = 0;
}

/* A call failed: it must say ENOMEM and have changed nothing. */
static int step_failed(const char *call)
{
    int e = errno;
    if (e != ENOMEM) {
        printf("#   %s failed with errno %d, not ENOMEM\n", call, e);
        return -1;
    }
    if (digest_all() != F_d0) {
        printf("#   %s failed but changed the tree\n", call);
        return -1;
    }
    if (ms_pool_check(NULL) != 0) {
        printf("#   %s failed and left the tree inconsistent\n", call);
        return -1;
    }
    fault_note(call);
    return 0;
}

#define TRY_P(var, expr, name)                                                                           \
    do {                                                                                                 \
        step_begin();                                                                                    \
        if (((var) = (expr)) == NULL)                                                                    \
            return step_failed(name);                                                                    \
    } while (0)
#define TRY_I(expr, name)                                                                                \
    do {                                                                                                 \
        step_begin();                                                                                    \
        if ((expr) != 0)                                                                                 \
            return step_failed(name);                                                                    \
    } while (0)

/* Uses every call that allocates; 1 if it got to the end, 0 if a call
 * failed cleanly, -1 if a failure was not clean. */
static int scenario(void)
{
    struct ms_pool *r, *a, *b, *c;
    char *s;
    void *p, *q, *L, *blocks[300];
    struct ms_pool_dtor *d;
    TRY_P(r, ms_pool_new_root(1 << 24), "new_root");
    TRY_P(a, ms_pool_new_child(r), "new_child");
    TRY_P(b, ms_pool_new_child(a), "new_child");
    for (int i = 0; i < 300; i++)
        TRY_P(blocks[i], ms_pool_alloc(b, (size_t)(i * 37) % 600 + 1), "alloc (new chunks)");
    TRY_P(L, ms_pool_alloc(a, 5000), "alloc large");
    TRY_P(p, ms_pool_zalloc(a, 5000), "zalloc large");
    TRY_P(p, ms_pool_zalloc(a, 50), "zalloc");
    TRY_P(p, ms_pool_calloc(a, 10, 300), "calloc");
    TRY_P(s, ms_pool_strdup(b, "hello"), "strdup");
    TRY_P(s, ms_pool_strndup(b, "hello world", 5), "strndup");
    TRY_P(s, ms_pool_asprintf(b, "%0900d", 7), "asprintf");
    TRY_P(s, vfmt(b, "%02000d", 7), "vasprintf large");
    TRY_P(p, ms_pool_memdup(b, "abc", 4), "memdup");
    /* the same calls again and again, so that each needs a new chunk once */
    char text[400];
    memset(text, 't', sizeof text - 1);
    text[sizeof text - 1] = 0;
    for (int i = 0; i < 150; i++) {
        TRY_P(s, ms_pool_strdup(a, text), "strdup");
        TRY_P(s, ms_pool_strndup(a, text, 300), "strndup");
        TRY_P(s, ms_pool_asprintf(a, "%s", text), "asprintf");
        TRY_P(s, vfmt(a, "%s", text), "vasprintf");
        TRY_P(p, ms_pool_memdup(a, text, 350), "memdup");
        TRY_P(p, ms_pool_zalloc(a, 320), "zalloc");
        TRY_P(p, ms_pool_calloc(a, 3, 110), "calloc");
        TRY_P(p, ms_pool_realloc(a, p, 700), "realloc (move)");
    }
    TRY_P(q, ms_pool_realloc(b, blocks[1], 900), "realloc (move)");
    TRY_P(q, ms_pool_realloc(b, q, 3000), "realloc small->large");
    TRY_P(q, ms_pool_realloc(b, q, 300000), "realloc large->large");
    TRY_P(q, ms_pool_realloc(b, q, 40), "realloc large->small");
    TRY_P(q, ms_pool_realloc(b, NULL, 40), "realloc NULL");
    TRY_P(d, ms_pool_add_destructor(a, count_dtor, NULL), "add_destructor");
    TRY_P(d, ms_pool_add_block_destructor(blocks[5], count_dtor, NULL), "add_block_destructor");
    TRY_P(d, ms_pool_add_block_destructor(blocks[5], count_dtor, NULL), "add_block_destructor");
    TRY_I(ms_pool_steal(a, blocks[6]), "steal");
    TRY_I(ms_pool_steal(r, L), "steal large");
    TRY_I(ms_pool_adopt(r, blocks[7]), "adopt");
    TRY_I(ms_pool_adopt(c = a, blocks[8]), "adopt");
    TRY_I(ms_pool_adopt_pool(r, b), "adopt_pool");
    TRY_P(c, ms_pool_new_child(r), "new_child");
    TRY_I(ms_pool_move(c, b), "move");
    for (int i = 10; i < 60; i += 2)
        TRY_I(ms_pool_free(blocks[i]), "free");
    for (int i = 10; i < 60; i += 2)
        TRY_P(blocks[i], ms_pool_alloc(b, (size_t)(i * 37) % 600 + 1), "alloc (reuse)");
    step_begin();
    if (ms_pool_print_sites(F_null, r) < 0)
        return step_failed("print_sites");
    step_begin();
    if (ms_pool_print(F_null, r, MS_POOL_PRINT_BLOCKS | MS_POOL_PRINT_SITES) < 0)
        return step_failed("print");
    TRY_I(ms_pool_release(r, blocks[7]), "release");
    TRY_I(ms_pool_release(NULL, blocks[8]), "release");
    TRY_I(ms_pool_release_pool(r, b), "release_pool");
    TRY_I(ms_pool_destroy(c), "destroy");
    TRY_I(ms_pool_destroy(r), "destroy");
    return 1;
}

static void fault_run(int persistent, int debug)
{
    memset(F_names, 0, sizeof F_names);
    memset(F_fails, 0, sizeof F_fails);
    F_null = fopen("/dev/null", "w");
    int points = 0, tolerated = 0, done = 0;
    long k;
    for (k = 0; k < 20000 && !done; k++) {
        ms_pool_set_debug(debug);
        ms_pool_set_fail_after(k, persistent);
        int r = scenario();
        unsigned long hits = ms_pool_fail_hits();
        ms_pool_set_fail_after(-1, 0);
        if (r < 0) {
            printf("#   unclean failure with the %ld-th underlying allocation failing\n", k + 1);
            t_failed = 1;
        }
        CHECK_EQ(ms_pool_check(NULL), 0);
        if (r == 0) {
            CHECK(hits > 0);
            points++;
        } else if (hits == 0) {
            done = 1;
        } else {
            tolerated++; /* the failure was absorbed (a free list not made) */
        }
        destroy_all_roots();
        size_t live = raw_live();
        if (live != 0) {
            printf("#   %zu underlying allocations leaked with the %ld-th failing\n", live, k + 1);
            t_failed = 1;
        }
        if (t_failed)
            break;
    }
    fclose(F_null);
    CHECK(done);
    printf("#   %s failures%s: %ld runs, %d failed cleanly at a call, %d absorbed, then it ran through\n",
           persistent ? "persistent" : "one-shot", debug ? ", debug mode" : "", k, points, tolerated);
    printf("#   calls that failed (times):");
    for (int i = 0; i < NFNAMES && F_names[i]; i++)
        printf(" %s(%d)", F_names[i], F_fails[i]);
    printf("\n");
}

static void t_fault_oneshot(void)
{
    fault_run(0, 0);
}
static void t_fault_persistent(void)
{
    fault_run(1, 0);
}
static void t_fault_oneshot_debug(void)
{
    fault_run(0, 1);
}

/* Per call: in a fresh tree, make the same call 300 times (so it needs new
 * chunks, ext records, claims...) with the k-th underlying allocation
 * failing, for k = 1, 2, ... until the 300 calls go through. */
static struct ms_pool *PC_r, *PC_o;
static void *PC_last;
static int pc_alloc(int i) { return (PC_last = ms_pool_alloc(PC_r, (size_t)(i % 9) * 100 + 1)) != NULL; }
static int pc_alloc_large(int i) { return (PC_last = ms_pool_alloc(PC_r, 2000 + (size_t)i)) != NULL; }
static int pc_zalloc(int i) { return (PC_last = ms_pool_zalloc(PC_r, (size_t)(i % 9) * 100 + 1)) != NULL; }
static int pc_calloc(int i) { return (PC_last = ms_pool_calloc(PC_r, 3, (size_t)(i % 7) * 50 + 1)) != NULL; }
static int pc_realloc(int i)
{
    void *q = ms_pool_realloc(PC_r, i % 50 ? PC_last : NULL, (size_t)(i % 50) * 150 + 1);
    if (q)
        PC_last = q;
    return q != NULL;
}
static int pc_memdup(int i) { static char b[900]; return ms_pool_memdup(PC_r, b, (size_t)i % 900) != NULL; }
static int pc_strdup(int i) { (void)i; return ms_pool_strdup(PC_r, "a string of some length, 40 bytes or so") != NULL; }
static int pc_strndup(int i) { (void)i; return ms_pool_strndup(PC_r, "a string of some length", 10) != NULL; }
static int pc_asprintf(int i) { return ms_pool_asprintf(PC_r, "%0*d", i * 3, i) != NULL; }
static int pc_vasprintf(int i) { return vfmt(PC_r, "%0*d", i * 3, i) != NULL; }
static int pc_new_child(int i) { (void)i; return ms_pool_new_child(PC_r) != NULL; }
static int pc_new_root(int i)
{
    (void)i;
    struct ms_pool *r = ms_pool_new_root(0);
    return r && ms_pool_move(PC_r, r) == 0;
}
static int pc_add_dtor(int i) { (void)i; return ms_pool_add_destructor(PC_r, count_dtor, NULL) != NULL; }
static int pc_add_bdtor(int i)
{
    (void)i;
    void *b = ms_pool_alloc(PC_r, 10);
    if (!b)
        return 0;
    step_begin();
    return ms_pool_add_block_destructor(b, count_dtor, NULL) != NULL;
}
static int pc_steal(int i)
{
    void *b = ms_pool_alloc(PC_o, (size_t)i % 40 + 1);
    if (!b)
        return 0;
    step_begin();
    return ms_pool_steal(PC_r, b) == 0;
}
static int pc_adopt(int i)
{
    void *b = ms_pool_alloc(PC_o, (size_t)i % 40 + 1);
    if (!b)
        return 0;
    step_begin();
    return ms_pool_adopt(PC_r, b) == 0;
}
static int pc_adopt_pool(int i)
{
    (void)i;
    struct ms_pool *c = ms_pool_new_child(PC_o);
    if (!c)
        return 0;
    step_begin();
    return ms_pool_adopt_pool(PC_r, c) == 0;
}
static int pc_free(int i)
{
    void *b = ms_pool_alloc(PC_r, (size_t)i % 40 + 1);
    if (!b)
        return 0;
    step_begin();
    if (!ms_pool_alloc(PC_r, 1))
        return 0;
    step_begin();
    return ms_pool_free(b) == 0; /* a free list may not be made: absorbed */
}

static void t_fault_per_call(void)
{
    static const struct {
        const char *name;
        int (*op)(int);
    } ops[] = {
        {"alloc", pc_alloc},       {"alloc large", pc_alloc_large}, {"zalloc", pc_zalloc},
        {"calloc", pc_calloc},     {"realloc", pc_realloc},         {"memdup", pc_memdup},
        {"strdup", pc_strdup},     {"strndup", pc_strndup},         {"asprintf", pc_asprintf},
        {"vasprintf", pc_vasprintf}, {"new_child", pc_new_child},   {"new_root", pc_new_root},
        {"add_destructor", pc_add_dtor}, {"add_block_destructor", pc_add_bdtor}, {"steal", pc_steal},
        {"adopt", pc_adopt},       {"adopt_pool", pc_adopt_pool},   {"free", pc_free},
    };
    printf("#   failure points per call (300 calls each; k-th underlying allocation fails):\n#  ");
    for (size_t o = 0; o < sizeof ops / sizeof ops[0] && !t_failed; o++) {
        int points = 0, done = 0;
        for (long k = 0; k < 5000 && !done && !t_failed; k++) {
            PC_r = ms_pool_new_root(0);
            PC_o = ms_pool_new_root(0);
            PC_last = NULL;
            ms_pool_set_fail_after(k, 0);
            int failed = 0;
            for (int i = 0; i < 300 && !failed; i++) {
                step_begin();
                if (!ops[o].op(i)) {
                    failed = 1;
                    if (step_failed(ops[o].name) < 0)
                        t_failed = 1;
                }
            }
            unsigned long hits = ms_pool_fail_hits();
            ms_pool_set_fail_after(-1, 0);
            CHECK_EQ(ms_pool_check(NULL), 0);
            if (failed)
                points++;
            else if (hits == 0)
                done = 1;
            destroy_all_roots();
            CHECK_EQ(raw_live(), 0);
        }
        CHECK(done);
        printf(" %s:%d", ops[o].name, points);
    }
    printf("\n");
}

/* the fault hook itself */
static void t_fault_hook(void)
{
    ms_pool_set_cache_limit(0);
    ms_pool_set_fail_after(0, 0);
    errno = 0;
    CHECK(ms_pool_new_root(0) == NULL && errno == ENOMEM);
    CHECK_EQ(ms_pool_fail_hits(), 1);
    struct ms_pool *r = ms_pool_new_root(0); /* one-shot: disarmed */
    CHECK(r != NULL);
    ms_pool_set_fail_after(1, 1);
    void *a = ms_pool_alloc(r, 100000); /* 1st: ok */
    CHECK(a != NULL);
    CHECK(ms_pool_alloc(r, 100000) == NULL && errno == ENOMEM);
    CHECK(ms_pool_alloc(r, 100000) == NULL && errno == ENOMEM);
    CHECK_EQ(ms_pool_fail_hits(), 2);
    CHECK(ms_pool_alloc(r, 10) != NULL); /* no underlying allocation needed */
    ms_pool_set_fail_after(-1, 0);
    CHECK(ms_pool_alloc(r, 100000) != NULL);
    ms_pool_destroy(r);
    ms_pool_set_cache_limit((size_t)64 << 20);
}

/* ------------------------------------------------------------ cache, stats */
/* The block layout (8-byte header: an interned site id, the size, a magic
 * word; the chunk found by alignment; extensions in a per-chunk map): many
 * sites on one pool, alternating, lines that share a slot of the pool's
 * site cache; the fast path's block counts through a long alloc/free churn
 * at the bump pointer; destructors on blocks of several chunks, kept across
 * steal and realloc; double free with both sites. */
static int layout_dtor(void *obj, void *arg)
{
    (void)obj;
    (*(int *)arg)++;
    return 0;
}

static void t_layout(void)
{
    static const char *const files[2] = {"layout_a.c", "layout_b.c"};
    enum { NB = 600 };
    static void *v[NB];
    struct ms_pool *r = ms_pool_new_root(0);
    size_t bytes = 0;
    for (int i = 0; i < NB; i++) {
        size_t n = 16 + (size_t)(i * 37) % 241;
        /* 12 lines, all equal modulo 8, each in two files */
        v[i] = ms_pool_alloc_at(r, n, files[i % 2], 1000 + (i / 2 % 12) * 8);
        CHECK(v[i] && ((uintptr_t)v[i] & 15) == 0);
        memset(v[i], 0x5a, n);
        bytes += n;
    }
    int bad = 0;
    for (int i = 0; i < NB; i++) {
        struct ms_pool_block_info bi;
        if (ms_pool_block_info(v[i], &bi) != 0 || bi.file != files[i % 2] || bi.line != 1000 + (i / 2 % 12) * 8 ||
            bi.size != 16 + (size_t)(i * 37) % 241 || bi.owner != r)
            bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(own_blocks(r), NB);
    CHECK_EQ(own_bytes(r), bytes);
    struct ms_pool_node_info ni;
    CHECK_EQ(ms_pool_info(r, &ni), 0);
    CHECK(ni.mem >= bytes + NB * 8); /* several chunks */
    /* more fast-path allocations and frees at the bump pointer than its
     * count word holds (2^24 blocks) */
    for (long i = 0; i < (1L << 24) + 10; i++)
        ms_pool_free(ms_pool_alloc(r, 100));
    CHECK_EQ(own_blocks(r), NB);
    CHECK_EQ(own_bytes(r), bytes);
    CHECK_EQ(ms_pool_check(r), 0);
    /* destructors on blocks of several chunks */
    int ran = 0;
    for (int i = 0; i < NB; i += 50)
        CHECK(ms_pool_add_block_destructor(v[i], layout_dtor, &ran) != NULL);
    struct ms_pool *o = ms_pool_new_root(0);
    CHECK_EQ(ms_pool_steal(o, v[100]), 0); /* out of its chunk's pool */
    CHECK(ms_pool_owner(v[100]) == o);
    CHECK_EQ(ms_pool_steal(o, v[101]), 0); /* one without an extension yet */
    CHECK(ms_pool_owner(v[101]) == o);
    CHECK_EQ(ms_pool_steal(r, v[100]), 0); /* back home */
    CHECK(ms_pool_owner(v[100]) == r);
    void *m = ms_pool_realloc(r, v[0], 1000); /* moves: the destructor follows */
    struct ms_pool_block_info bi;
    CHECK(m && m != v[0] && ms_pool_block_info(m, &bi) == 0 && bi.destructors == 1 && bi.size == 1000);
    CHECK_EQ(ms_pool_free(v[50]), 0);
    CHECK_EQ(ran, 1);
    int line = __LINE__ + 1;
    CHECK_EQ(ms_pool_free_at(v[3], "layout_free.c", line), 0);
    memset(&E, 0, sizeof E);
    CHECK_EQ(ms_pool_free(v[3]), -1);
    CHECK(E.kind == MS_POOL_ERR_DOUBLE_FREE && E.first_file && strcmp(E.first_file, "layout_free.c") == 0 &&
          E.first_line == line && E.file && strcmp(E.file, __FILE__) == 0);
    CHECK_EQ(own_blocks(r), NB - 3); /* v[101] stolen out, v[50] and v[3] freed */
    CHECK_EQ(ms_pool_check(r), 0);
    CHECK_EQ(ms_pool_check(o), 0);
    ms_pool_destroy(o);
    ms_pool_destroy(r);
    CHECK_EQ(ran, NB / 50);
}

static void t_cache(void)
{
    struct ms_pool_stats st;
    ms_pool_trim();
    ms_pool_get_stats(&st);
    CHECK_EQ(st.cached_bytes, 0);
    CHECK_EQ(st.roots, 0);
    struct ms_pool *r = ms_pool_new_root(0);
    for (int i = 0; i < 100; i++)
        ms_pool_alloc(r, 1000);
    ms_pool_get_stats(&st);
    CHECK(st.raw_live >= 1 && st.raw_bytes >= 100000 && st.roots == 1); /* chunks come in slabs */
    size_t total = st.raw_total;
    ms_pool_destroy(r);
    ms_pool_get_stats(&st);
    CHECK(st.cached_bytes >= 100000);
    r = ms_pool_new_root(0); /* from the cache: no new underlying allocation */
    for (int i = 0; i < 100; i++)
        ms_pool_alloc(r, 1000);
    ms_pool_get_stats(&st);
    CHECK_EQ(st.raw_total, total);
    ms_pool_destroy(r);
    ms_pool_set_cache_limit(0);
    ms_pool_get_stats(&st);
    CHECK_EQ(st.cached_bytes, 0);
    r = ms_pool_new_root(0);
    ms_pool_destroy(r);
    ms_pool_get_stats(&st);
    CHECK_EQ(st.cached_bytes, 0);
    ms_pool_set_cache_limit((size_t)64 << 20);
    ms_pool_get_stats(NULL);
}

/* ------------------------------------------------------------ threads */
static _Atomic int T_running;
static void *thr_fn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    struct ms_pool *r = ms_pool_new_root(0);
    int bad = 0;
    for (int it = 0; it < 300; it++) {
        struct ms_pool *c = ms_pool_new_child(r);
        void *ps[64];
        for (int i = 0; i < 64; i++) {
            size_t n = (size_t)rand_r(&seed) % 3000;
            ps[i] = ms_pool_alloc(c, n);
            if (!ps[i])
                bad = 1;
            else
                memset(ps[i], i, n);
        }
        for (int i = 0; i < 64; i += 3)
            ms_pool_free(ps[i]);
        if (it % 50 == 0 && ms_pool_check(r) != 0)
            bad = 1;
        if (ms_pool_destroy(c) != 0)
            bad = 1;
    }
    ms_pool_destroy(r);
    atomic_fetch_sub(&T_running, 1);
    return (void *)(uintptr_t)bad;
}

static int count_root(struct ms_pool *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
    return 0;
}

static void t_threads(void)
{
    pthread_t th[4];
    atomic_store(&T_running, 4);
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thr_fn, (void *)(uintptr_t)(i + 1));
    long reads = 0;
    while (atomic_load(&T_running) > 0) {
        struct ms_pool *arr[8];
        size_t n = ms_pool_roots(arr, 8);
        int m = 0;
        ms_pool_foreach_root(count_root, &m);
        struct ms_pool_stats st;
        ms_pool_get_stats(&st);
        CHECK(n <= 4 && m <= 4);
        reads++;
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CHECK(bad == NULL);
    }
    CHECK(reads > 0);
}

/* ------------------------------------------------------------ fork */
/* Other threads keep the registry, site table, cache and quarantine locks
 * busy while the main thread forks: every child must be able to use the
 * library (a lock held at the fork would hang it; alarm ends that). */
static _Atomic int F_stop;
static void *fork_busy(void *arg)
{
    int base = (int)(uintptr_t)arg, line = 0;
    while (!atomic_load(&F_stop)) {
        struct ms_pool *r = ms_pool_new_root(0);
        for (int i = 0; i < 32; i++) /* a new file:line each time: the site table grows */
            ms_pool_alloc_at(r, 100 + (size_t)i * 200, "fork_busy.c", base + line++);
        struct ms_pool_stats st;
        ms_pool_get_stats(&st);
        ms_pool_destroy(r);
    }
    return NULL;
}

static void t_fork_locks(void)
{
    int old = ms_pool_set_debug(1); /* destroyed pools go through the quarantine lock */
    pthread_t th[2];
    atomic_store(&F_stop, 0);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, fork_busy, (void *)(uintptr_t)(1 + i * 100000000));
    int ok = 0, hung = 0, other = 0;
    for (int k = 0; k < 100; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            struct ms_pool *r = ms_pool_new_root(0);
            void *p = ms_pool_alloc_at(r, 5000, "fork_child.c", 1000000 + k);
            struct ms_pool_stats st;
            ms_pool_get_stats(&st);
            int bad = !p || ms_pool_destroy(r) != 0;
            _exit(bad ? 3 : 0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
            other++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            hung++;
        else
            other++;
    }
    atomic_store(&F_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ms_pool_set_debug(old);
    ms_pool_trim();
    CHECK_EQ(hung, 0);
    CHECK_EQ(other, 0);
    CHECK_EQ(ok, 100);
}

/* ------------------------------------------------------------ random model */
#define MP 48
#define MB 3000
static struct {
    struct ms_pool *p;
    int parent, alive;
} mp[MP];
static struct {
    unsigned char *ptr;
    size_t size;
    int owner, alive;
    unsigned char fill;
} mb[MB];

static int m_desc(int x, int p)
{
    for (; x >= 0; x = mp[x].parent)
        if (x == p)
            return 1;
    return 0;
}

static int m_rand_pool(unsigned *seed)
{
    for (;;) {
        int i = rand_r(seed) % MP;
        if (mp[i].alive)
            return i;
    }
}

static int m_rand_block(unsigned *seed, int nb)
{
    for (int t = 0; t < 20 && nb > 0; t++) {
        int i = rand_r(seed) % nb;
        if (mb[i].alive)
            return i;
    }
    return -1;
}

static void m_verify(void)
{
    size_t own[MP] = {0};
    for (int i = 0; i < MB; i++) {
        if (!mb[i].alive)
            continue;
        own[mb[i].owner] += mb[i].size;
        int ok = ms_pool_owner(mb[i].ptr) == mp[mb[i].owner].p && ms_pool_size(mb[i].ptr) == mb[i].size;
        for (size_t j = 0; ok && j < mb[i].size; j++)
            ok = mb[i].ptr[j] == mb[i].fill;
        CHECK(ok);
        if (!ok)
            break;
    }
    for (int i = 0; i < MP; i++)
        if (mp[i].alive) {
            CHECK_EQ(own_bytes(mp[i].p), own[i]);
            CHECK(ms_pool_parent(mp[i].p) == (mp[i].parent < 0 ? NULL : mp[mp[i].parent].p));
        }
    CHECK_EQ(ms_pool_check(mp[0].p), 0);
}

static void model_run(int debug, unsigned seed)
{
    ms_pool_set_debug(debug);
    memset(mp, 0, sizeof mp);
    memset(mb, 0, sizeof mb);
    mp[0].p = ms_pool_new_root(0);
    mp[0].parent = -1;
    mp[0].alive = 1;
    int nb = 0;
    for (int op = 0; op < 6000 && !t_failed; op++) {
        int k = rand_r(&seed) % 100;
        if (k < 40 && nb < MB) { /* alloc */
            int p = m_rand_pool(&seed);
            size_t n = rand_r(&seed) % 10 == 0 ? (size_t)rand_r(&seed) % 20000 : (size_t)rand_r(&seed) % 300;
            int z = rand_r(&seed) % 4 == 0;
            unsigned char *ptr = z ? ms_pool_zalloc(mp[p].p, n) : ms_pool_alloc(mp[p].p, n);
            CHECK(ptr != NULL);
            unsigned char f = z ? 0 : (unsigned char)(rand_r(&seed) | 1);
            if (!z)
                memset(ptr, f, n);
            mb[nb].ptr = ptr;
            mb[nb].size = n;
            mb[nb].owner = p;
            mb[nb].alive = 1;
            mb[nb].fill = f;
            nb++;
        } else if (k < 55) { /* free */
            int b = m_rand_block(&seed, nb);
            if (b >= 0) {
                CHECK_EQ(ms_pool_free(mb[b].ptr), 0);
                mb[b].alive = 0;
            }
        } else if (k < 68) { /* realloc */
            int b = m_rand_block(&seed, nb);
            if (b >= 0) {
                size_t n = rand_r(&seed) % 8 == 0 ? (size_t)rand_r(&seed) % 20000 + 1 : (size_t)rand_r(&seed) % 400 + 1;
                unsigned char *q = ms_pool_realloc(NULL, mb[b].ptr, n);
                CHECK(q != NULL);
                if (n > mb[b].size)
                    memset(q + mb[b].size, mb[b].fill, n - mb[b].size);
                mb[b].ptr = q;
                mb[b].size = n;
            }
        } else if (k < 78) { /* steal */
            int b = m_rand_block(&seed, nb), p = m_rand_pool(&seed);
            if (b >= 0) {
                CHECK_EQ(ms_pool_steal(mp[p].p, mb[b].ptr), 0);
                mb[b].owner = p;
            }
        } else if (k < 86) { /* new child */
            for (int i = 1; i < MP; i++)
                if (!mp[i].alive) {
                    int p = m_rand_pool(&seed);
                    mp[i].p = ms_pool_new_child(mp[p].p);
                    CHECK(mp[i].p != NULL);
                    mp[i].parent = p;
                    mp[i].alive = 1;
                    break;
                }
        } else if (k < 93) { /* destroy a subtree */
            int p = m_rand_pool(&seed);
            if (p != 0) {
                CHECK_EQ(ms_pool_destroy(mp[p].p), 0);
                int dead[MP] = {0};
                for (int i = 0; i < MP; i++)
                    if (mp[i].alive && m_desc(i, p))
                        dead[i] = 1;
                for (int i = 0; i < MP; i++)
                    if (dead[i])
                        mp[i].alive = 0;
                for (int i = 0; i < nb; i++)
                    if (mb[i].alive && dead[mb[i].owner])
                        mb[i].alive = 0;
            }
        } else { /* move */
            int p = m_rand_pool(&seed), np = m_rand_pool(&seed);
            if (p != 0) {
                int rc = ms_pool_move(mp[np].p, mp[p].p);
                if (m_desc(np, p)) {
                    CHECK(rc == -1 && errno == ELOOP);
                } else {
                    CHECK_EQ(rc, 0);
                    mp[p].parent = np;
                }
            }
        }
        if (op % 300 == 0)
            m_verify();
    }
    m_verify();
    CHECK_EQ(ms_pool_destroy(mp[0].p), 0);
}

static void t_model(void)
{
    model_run(0, 12345);
    model_run(0, 777);
}

static void t_model_debug(void)
{
    model_run(1, 4242);
}

/* ------------------------------------------------------------ main */
int main(int argc, char **argv)
{
    g_self = argv[0];
    if (argc == 2 && strcmp(argv[1], "--env-child") == 0)
        return env_child();
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"root: create, registry, destroy", t_root},
        {"children, names, parent", t_children},
        {"alloc: sizes, alignment, large, accounting", t_alloc},
        {"zalloc, calloc, MS_POOL_NEW", t_zalloc_calloc},
        {"strdup, strndup, asprintf, memdup", t_strings},
        {"vasprintf", t_vasprintf},
        {"free: reuse, bump back, double free", t_free},
        {"realloc: in place, moves, large, keeps claims", t_realloc},
        {"destructors: order (children first, newest first)", t_dtor_order},
        {"destructors: remove", t_dtor_remove},
        {"destructors: a pool's refusal", t_dtor_refuse_pool},
        {"destructors: a block's refusal", t_dtor_refuse_block},
        {"destructors: re-entrant calls", t_dtor_reentrancy},
        {"destructors: destroying an ancestor", t_dtor_destroy_ancestor},
        {"steal", t_steal},
        {"move", t_move},
        {"adopt/release a block", t_adopt_block},
        {"adopt/release a pool", t_adopt_pool},
        {"limits and handlers", t_limits},
        {"limit handler ms_pool_limit_abort", t_limit_abort},
        {"walk, info", t_walk},
        {"layout: sites, counts, extensions", t_layout},
        {"print, sites, dump_all", t_print},
        {"dump_all gives up on a busy registry", t_dump_busy},
        {"debug: fill, canaries, write after free", t_debug_fill_canary},
        {"debug: double free, both sites", t_debug_double_free},
        {"debug: destroyed pool used, both sites; quarantine", t_debug_dead_pool},
        {"debug: default handler prints and aborts", t_debug_default_handler},
        {"debug: MEMSLEUTH_POOL_* environment", t_debug_env},
        {"event hook", t_events},
        {"fault hook", t_fault_hook},
        {"fault injection: each allocating call", t_fault_per_call},
        {"fault injection: every allocation, one-shot", t_fault_oneshot},
        {"fault injection: every allocation, persistent", t_fault_persistent},
        {"fault injection: every allocation, debug mode", t_fault_oneshot_debug},
        {"chunk cache, stats", t_cache},
        {"threads: one tree each, registry readers", t_threads},
        {"fork while other threads hold the library's locks", t_fork_locks},
        {"random operations against a model", t_model},
        {"random operations against a model, debug mode", t_model_debug},
    };
    size_t n = sizeof tests / sizeof tests[0];
    int count = 0;
    for (size_t i = 0; i < n; i++)
        count += selected(argc, argv, tests[i].name);
    printf("1..%d\n", count);
    for (size_t i = 0; i < n; i++)
        if (selected(argc, argv, tests[i].name))
            run(tests[i].name, tests[i].fn);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
