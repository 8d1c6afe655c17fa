/* pool.c - libmemsleuth_pool: process-wide state (settings, fault injection,
 * the site table, chunk slabs and cache, debug quarantine, error reports,
 * events) and the blocks (alloc, free, realloc, strings).  See
 * pool_internal.h for the layout. */
#include "pool_internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif


/* ---------------------------------------------------------------- settings */
_Atomic int ms_g_slow;
_Atomic uint64_t ms_g_gate = POOL_GATE;
_Atomic int ms_g_emit;
_Atomic int ms_g_debug;
_Atomic(ms_pool_agent_event_fn) ms_g_agent;
_Atomic(ms_pool_event_fn) ms_g_hook;
void *_Atomic ms_g_hook_arg;
_Atomic(ms_pool_limit_fn) ms_g_lhandler;
void *_Atomic ms_g_larg;
static _Atomic(ms_pool_error_fn) g_err;
static void *_Atomic g_err_arg;

pthread_mutex_t ms_g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
struct ms_pool *ms_g_roots, *ms_g_roots_tail;
size_t ms_g_nroots;

/* Chunks come from slabs: SLAB_CHUNKS chunks in one underlying allocation
 * aligned to its size (a chunk finds its slab by rounding down, so that
 * giving chunks back reads no chunk header: no cache misses on them), with
 * the slab's record after its last chunk.  (One malloc per chunk with 8 KiB
 * alignment would leave an 8 KiB hole in the heap before each chunk, and
 * glibc touches those: twice the resident memory.)  A slab's free chunks
 * are a bit mask, and so are its "cold" free chunks, whose pages are not
 * (or no longer) resident: never used yet, or given back with madvise.
 * Slabs with free chunks are on a list, most recently used first.  The
 * cache is the warm free chunks (cached_bytes), under a spin lock (held for
 * a few instructions); past its limit, slabs whose chunks are all free go
 * back to malloc, then warm chunks are made cold. */
#define SLAB_CHUNKS 32
#define SLAB_BYTES  ((size_t)CHUNK_SIZE * SLAB_CHUNKS)
#define SLAB_ALL    0xffffffffu
struct slab {
    struct slab *prev, *next; /* the list of slabs with free chunks */
    uint32_t freemask;        /* bit i: chunk i is free */
    uint32_t coldmask;        /* bit i: chunk i is free and not resident */
    uint32_t listed;
};
#define SLAB_ALLOC (SLAB_BYTES + sizeof(struct slab))
static atomic_flag g_cache_spin = ATOMIC_FLAG_INIT;
static struct slab *g_partial; /* slabs with free chunks */
static size_t g_cache_bytes, g_cache_limit = (size_t)64 << 20;

static inline char *slab_base(const void *c)
{
    return (char *)((uintptr_t)c & ~(uintptr_t)(SLAB_BYTES - 1));
}
static inline struct slab *slab_of(const void *c)
{
    return (struct slab *)(slab_base(c) + SLAB_BYTES);
}
static inline char *slab_mem(struct slab *s) /* its first chunk */
{
    return (char *)s - SLAB_BYTES;
}

static void cache_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&g_cache_spin, memory_order_acquire))
        sched_yield();
}

static void cache_unlock(void)
{
    atomic_flag_clear_explicit(&g_cache_spin, memory_order_release);
}
static pthread_mutex_t g_quar_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ms_pool *g_quar_head, *g_quar_tail; /* oldest first, via rnext */
static size_t g_quar_bytes, g_quar_limit = (size_t)64 << 20;

static _Atomic size_t g_raw_live, g_raw_bytes, g_raw_total;

static _Atomic int g_fail_armed;
static long g_fail_n = -1;
static int g_fail_persist;
static unsigned long g_fail_hits;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------ the site table */
/* Blocks record their allocation site as a 24-bit id: (file pointer, line)
 * pairs interned here, under a lock, behind each pool's small cache (the
 * allocation fast path only compares two words).  Memory from mmap, never
 * given back: sites live as long as the program's string literals, and the
 * table stays out of the program's heap (no leak report for it). */
struct msite *_Atomic ms_g_site_blk[SITE_NBLK];
static pthread_mutex_t g_site_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t g_nsites = 1; /* next id; 0 is (NULL, 0) */
static uint32_t *g_site_ht;   /* open addressing: ids, 0 = empty */
static size_t g_site_hcap;

static void *site_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t site_slot(const char *file, int line, size_t cap)
{
    uint64_t k = (uint64_t)(uintptr_t)file * 0x9e3779b97f4a7c15ull ^ (uint64_t)(unsigned)line * 0xc2b2ae3d27d4eb4full;
    return (size_t)(k >> 24) & (cap - 1);
}

static int site_grow(void)
{
    size_t ncap = g_site_hcap ? g_site_hcap * 2 : 4096;
    uint32_t *nt = site_map(ncap * sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < g_site_hcap; i++) {
        uint32_t id = g_site_ht[i];
        if (!id)
            continue;
        const struct msite *e = site_get(id);
        size_t j = site_slot(e->file, e->line, ncap);
        while (nt[j])
            j = (j + 1) & (ncap - 1);
        nt[j] = id;
    }
    if (g_site_ht)
        munmap(g_site_ht, g_site_hcap * sizeof *g_site_ht);
    g_site_ht = nt;
    g_site_hcap = ncap;
    return 0;
}

/* The id of file:line; 0 ("?") if the table cannot grow. */
uint32_t ms_site_intern(const char *file, int line)
{
    if (!file && !line)
        return 0;
    uint32_t id = 0;
    pthread_mutex_lock(&g_site_lock);
    if ((size_t)(g_nsites + 1) * 2 > g_site_hcap && site_grow() < 0)
        goto out;
    size_t j = site_slot(file, line, g_site_hcap);
    while ((id = g_site_ht[j]) != 0) {
        const struct msite *e = site_get(id);
        if (e->file == file && e->line == line)
            goto out;
        j = (j + 1) & (g_site_hcap - 1);
    }
    id = 0;
    if (g_nsites > SITE_MASK)
        goto out;
    struct msite *b = atomic_load_explicit(&ms_g_site_blk[g_nsites >> SITE_BLK_BITS], memory_order_relaxed);
    if (!b) {
        b = site_map(sizeof *b << SITE_BLK_BITS);
        if (!b)
            goto out;
        atomic_store_explicit(&ms_g_site_blk[g_nsites >> SITE_BLK_BITS], b, memory_order_release);
    }
    id = g_nsites++;
    b[id & ((1u << SITE_BLK_BITS) - 1)] = (struct msite){file, line};
    g_site_ht[j] = id;
out:
    pthread_mutex_unlock(&g_site_lock);
    return id;
}

/* site_id's miss: intern, and remember in p's cache. */
__attribute__((noinline)) uint32_t ms_site_miss(struct ms_pool *p, const char *file, int line)
{
    uint32_t id = ms_site_intern(file, line);
    struct site_cache *e = site_slot_of(p, file, line);
    e->file = file;
    e->line = (uint32_t)line;
    e->id = id;
    return id;
}

static void update_slow(void)
{
    int e = atomic_load(&ms_g_hook) != NULL || atomic_load(&ms_g_agent) != NULL;
    atomic_store(&ms_g_emit, e);
    int slow = e || atomic_load(&ms_g_debug);
    atomic_store(&ms_g_slow, slow);
    atomic_store(&ms_g_gate, slow ? ~(uint64_t)0 : POOL_GATE);
}

/* Under `memsleuth run` the agent exports a table of hooks (see
 * src/common/pool_agent.h): the events then go into its trace.  Looked up
 * once, at the first use of the library. */
static void find_agent(void)
{
    const char *off = getenv("MEMSLEUTH_POOL_NO_AGENT");
    if (off && *off && strcmp(off, "0") != 0)
        return;
    const struct ms_pool_agent_hooks *h = dlsym(RTLD_DEFAULT, MS_POOL_AGENT_SYMBOL);
    if (!h || h->version != MS_POOL_AGENT_VERSION || h->size < sizeof *h || !h->event || !h->enabled ||
        !h->enabled())
        return;
    atomic_store(&ms_g_agent, h->event);
}

static size_t parse_size(const char *s, size_t dflt)
{
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return dflt;
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    default: break;
    }
    return (size_t)v;
}

static void read_env(void)
{
    const char *d = getenv("MEMSLEUTH_POOL_DEBUG");
    if (d && *d && strcmp(d, "0") != 0)
        atomic_store(&ms_g_debug, 1);
    find_agent();
    cache_lock();
    g_cache_limit = parse_size(getenv("MEMSLEUTH_POOL_CACHE"), g_cache_limit);
    cache_unlock();
    pthread_mutex_lock(&g_quar_lock);
    g_quar_limit = parse_size(getenv("MEMSLEUTH_POOL_QUARANTINE"), g_quar_limit);
    pthread_mutex_unlock(&g_quar_lock);
    update_slow();
}

void ms_init_once(void)
{
    pthread_once(&g_once, read_env);
}

int ms_pool_set_debug(int on)
{
    ms_init_once();
    int old = atomic_exchange(&ms_g_debug, on ? 1 : 0);
    update_slow();
    return old;
}

int ms_pool_debug(void)
{
    ms_init_once();
    return atomic_load(&ms_g_debug);
}

void ms_pool_set_event_hook(ms_pool_event_fn fn, void *arg)
{
    atomic_store(&ms_g_hook_arg, arg);
    atomic_store(&ms_g_hook, fn);
    update_slow();
}

void ms_pool_set_error_handler(ms_pool_error_fn fn, void *arg)
{
    atomic_store(&g_err_arg, arg);
    atomic_store(&g_err, fn);
}

void ms_pool_set_fail_after(long n, int persistent)
{
    g_fail_n = n;
    g_fail_persist = persistent;
    g_fail_hits = 0;
    atomic_store(&g_fail_armed, n >= 0);
}

unsigned long ms_pool_fail_hits(void)
{
    return g_fail_hits;
}

/* One underlying allocation is about to happen: should it fail? */
static int fail_now(void)
{
    if (MS_LIKELY(!atomic_load_explicit(&g_fail_armed, memory_order_relaxed)))
        return 0;
    if (g_fail_n > 0) {
        g_fail_n--;
        return 0;
    }
    g_fail_hits++;
    if (!g_fail_persist)
        atomic_store(&g_fail_armed, 0);
    return 1;
}

/* ------------------------------------------------------ raw memory */
/* Tell the agent (if any) about the library's own heap memory. */
static inline void raw_note(int kind, const void *p, size_t n)
{
    ms_pool_agent_event_fn ag = atomic_load_explicit(&ms_g_agent, memory_order_relaxed);
    if (MS_UNLIKELY(ag != NULL))
        ag(kind, NULL, NULL, NULL, p, NULL, n, NULL, 0, 0);
}

static void raw_count(size_t n)
{
    atomic_fetch_add_explicit(&g_raw_live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_raw_bytes, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_raw_total, 1, memory_order_relaxed);
}

static void raw_uncount(size_t n)
{
    atomic_fetch_sub_explicit(&g_raw_live, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&g_raw_bytes, n, memory_order_relaxed);
}

void *ms_raw_alloc(size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(n);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    raw_count(n);
    raw_note(MS_POOL_AGENT_EV_RAW, p, n);
    return p;
}

void *ms_raw_calloc(size_t n)
{
    void *p = ms_raw_alloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *ms_raw_realloc(void *p, size_t old, size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    raw_note(MS_POOL_AGENT_EV_RAW_FREE, p, old); /* before: p is gone after */
    void *q = realloc(p, n);
    if (!q) {
        raw_note(MS_POOL_AGENT_EV_RAW, p, old); /* still there */
        errno = ENOMEM;
        return NULL;
    }
    raw_note(MS_POOL_AGENT_EV_RAW, q, n);
    atomic_fetch_sub_explicit(&g_raw_bytes, old, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_raw_bytes, n, memory_order_relaxed);
    return q;
}

void ms_raw_free(void *p, size_t n)
{
    if (!p)
        return;
    raw_uncount(n);
    raw_note(MS_POOL_AGENT_EV_RAW_FREE, p, n);
    free(p);
}

/* ------------------------------------------------------ chunk cache */
static void slab_list(struct slab *s)
{
    s->prev = NULL;
    s->next = g_partial;
    if (g_partial)
        g_partial->prev = s;
    g_partial = s;
    s->listed = 1;
}

static void slab_unlist(struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        g_partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->listed = 0;
}

/* A free chunk of the first listed slab, a warm one if it has one (cache
 * lock held), or NULL. */
static struct chunk *slab_take(void)
{
    struct slab *s = g_partial;
    if (!s)
        return NULL;
    uint32_t warm = s->freemask & ~s->coldmask;
    unsigned i = (unsigned)__builtin_ctz(warm ? warm : s->freemask);
    s->freemask &= ~(1u << i);
    if (warm)
        g_cache_bytes -= CHUNK_SIZE;
    else
        s->coldmask &= ~(1u << i);
    if (!s->freemask)
        slab_unlist(s);
    return (struct chunk *)(slab_mem(s) + (size_t)i * CHUNK_SIZE);
}

static void slab_free(struct slab *s)
{
    void *m = slab_mem(s);
    raw_uncount(SLAB_ALLOC);
    raw_note(MS_POOL_AGENT_EV_RAW_FREE, m, SLAB_ALLOC);
    free(m);
}

/* While the cache is over its limit (cache lock held): unlist the slabs
 * all of whose chunks are free (chained by next for slabs_free), then make
 * warm chunks cold (their pages go back to the kernel). */
static struct slab *slabs_over_limit(void)
{
    struct slab *out = NULL;
    for (struct slab *s = g_partial, *next; s && g_cache_bytes > g_cache_limit; s = next) {
        next = s->next;
        if (s->freemask != SLAB_ALL)
            continue;
        slab_unlist(s);
        g_cache_bytes -= (size_t)__builtin_popcount(s->freemask & ~s->coldmask) * CHUNK_SIZE;
        s->next = out;
        out = s;
    }
    for (struct slab *s = g_partial; s && g_cache_bytes > g_cache_limit; s = s->next) {
        uint32_t warm = s->freemask & ~s->coldmask;
        while (warm && g_cache_bytes > g_cache_limit) {
            unsigned i = (unsigned)__builtin_ctz(warm);
            warm &= warm - 1;
            char *c = slab_mem(s) + (size_t)i * CHUNK_SIZE;
            UNPOISON(c, CHUNK_SIZE);
            madvise(c, CHUNK_SIZE, MADV_DONTNEED);
            POISON(c, CHUNK_SIZE);
            s->coldmask |= 1u << i;
            g_cache_bytes -= CHUNK_SIZE;
        }
    }
    return out;
}

static void slabs_free(struct slab *s)
{
    for (struct slab *next; s; s = next) {
        next = s->next;
        slab_free(s);
    }
}

/* A chunk: CHUNK_SIZE bytes aligned to CHUNK_SIZE, so that a block finds
 * its chunk by rounding its address down. */
struct chunk *ms_chunk_get(void)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    cache_lock();
    struct chunk *c = slab_take();
    cache_unlock();
    if (c) {
        UNPOISON((char *)c, CHUNK_SIZE);
    } else {
        void *m;
        if (posix_memalign(&m, SLAB_BYTES, SLAB_ALLOC) != 0) {
            errno = ENOMEM;
            return NULL;
        }
        raw_count(SLAB_ALLOC);
        raw_note(MS_POOL_AGENT_EV_RAW, m, SLAB_ALLOC);
        struct slab *s = slab_of(m);
        s->freemask = SLAB_ALL & ~1u; /* chunk 0 is ours */
        s->coldmask = s->freemask;    /* the others not touched yet */
        c = m;
        cache_lock();
        slab_list(s);
        cache_unlock();
    }
    c->next = NULL;
    c->owner = NULL;
    c->end = (char *)c + CHUNK_SIZE;
    c->used = NULL;
    c->start = (char *)c + CHUNK_HDR;
    c->emap = NULL;
    atomic_store_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* Give back n chunks nobody references; emap: they may have ext maps (else
 * their headers are not read: no cache misses on them). */
static void chunks_put(struct chunk **v, size_t n, int emap)
{
    if (emap)
        for (size_t i = 0; i < n; i++)
            if (v[i]->emap) {
                ms_raw_free(v[i]->emap, CHUNK_EMAP * sizeof *v[i]->emap);
                v[i]->emap = NULL;
            }
    for (size_t i = 0; i < n; i++)
        POISON((char *)v[i], CHUNK_SIZE);
    cache_lock();
    for (size_t i = 0; i < n; i++) {
        struct slab *s = slab_of(v[i]);
        s->freemask |= 1u << (((uintptr_t)v[i] & (SLAB_BYTES - 1)) / CHUNK_SIZE); /* warm */
        g_cache_bytes += CHUNK_SIZE;
        if (!s->listed)
            slab_list(s);
    }
    struct slab *tofree = g_cache_bytes > g_cache_limit ? slabs_over_limit() : NULL;
    cache_unlock();
    slabs_free(tofree);
}

void ms_chunk_unref(struct chunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        chunks_put(&c, 1, 1);
}

void ms_pool_set_cache_limit(size_t bytes)
{
    ms_init_once();
    cache_lock();
    g_cache_limit = bytes;
    struct slab *tofree = slabs_over_limit();
    cache_unlock();
    slabs_free(tofree);
}

/* ------------------------------------------------------ errors, events */
static void default_error(const struct ms_pool_error *e)
{
    const char *first = "freed";
    if (e->kind == MS_POOL_ERR_DEAD_POOL)
        first = "destroyed";
    else if (e->kind == MS_POOL_ERR_CANARY)
        first = "allocated";
    fprintf(stderr, "memsleuth pool: %s: %p", e->what, e->ptr);
    if (e->size)
        fprintf(stderr, " (%zu bytes)", e->size);
    fprintf(stderr, " at %s:%d", e->file ? e->file : "?", e->line);
    if (e->first_file)
        fprintf(stderr, "; %s at %s:%d", first, e->first_file, e->first_line);
    fputc('\n', stderr);
    fflush(stderr);
}

void ms_report(int kind, const char *what, const void *ptr, size_t size, const char *file, int line,
               const char *first_file, int first_line)
{
    struct ms_pool_error e = {kind, what, ptr, size, file, line, first_file, first_line};
    ms_pool_error_fn fn = atomic_load(&g_err);
    if (fn) {
        fn(&e, atomic_load(&g_err_arg));
        return;
    }
    default_error(&e);
    abort();
}

int ms_bad_pool(const struct ms_pool *p, const char *file, int line)
{
    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (p->magic == POOL_DEAD)
        ms_report(MS_POOL_ERR_DEAD_POOL, "use of a destroyed pool", p, 0, file, line, p->free_file,
                  p->free_line);
    else
        ms_report(MS_POOL_ERR_BAD_POINTER, "not a pool", p, 0, file, line, NULL, 0);
    errno = EINVAL;
    return -1;
}

void ms_emit(int kind, struct ms_pool *pool, struct ms_pool *other, struct ms_pool *old_owner, const void *ptr,
             const void *old_ptr, size_t size, const char *file, int line)
{
    ms_pool_agent_event_fn ag = atomic_load_explicit(&ms_g_agent, memory_order_relaxed);
    if (ag)
        ag(kind, pool, other, old_owner, ptr, old_ptr, size, file, line, 0);
    ms_pool_event_fn fn = atomic_load_explicit(&ms_g_hook, memory_order_relaxed);
    if (!fn)
        return;
    struct ms_pool_event ev = {kind, pool, other, old_owner, ptr, old_ptr, size, file, line};
    fn(&ev, atomic_load_explicit(&ms_g_hook_arg, memory_order_relaxed));
}

void ms_emit_name(struct ms_pool *pool, const char *name)
{
    ms_pool_agent_event_fn ag = atomic_load_explicit(&ms_g_agent, memory_order_relaxed);
    if (ag)
        ag(MS_POOL_AGENT_EV_NAME, pool, NULL, NULL, name, NULL, 0, NULL, 0, 0);
}

/* a realloc: the agent also gets the old size (its per-pool byte counts) */
void ms_emit_realloc(struct ms_pool *pool, const void *ptr, const void *old_ptr, size_t size, size_t old_size,
                     const char *file, int line)
{
    ms_pool_agent_event_fn ag = atomic_load_explicit(&ms_g_agent, memory_order_relaxed);
    if (ag)
        ag(MS_POOL_EV_REALLOC, pool, NULL, NULL, ptr, old_ptr, size, file, line, old_size);
    ms_pool_event_fn fn = atomic_load_explicit(&ms_g_hook, memory_order_relaxed);
    if (!fn)
        return;
    struct ms_pool_event ev = {MS_POOL_EV_REALLOC, pool, NULL, NULL, ptr, old_ptr, size, file, line};
    fn(&ev, atomic_load_explicit(&ms_g_hook_arg, memory_order_relaxed));
}

#define EMIT(...)                                                                                        \
    do {                                                                                                 \
        if (MS_UNLIKELY(atomic_load_explicit(&ms_g_emit, memory_order_relaxed)))                         \
            ms_emit(__VA_ARGS__);                                                                        \
    } while (0)

/* ------------------------------------------------------ blocks: helpers */
struct ms_pool *ms_blk_owner(const struct blk *h)
{
    if (blk_flags(h) & BF_EXT)
        return blk_ext(h)->owner;
    if (blk_large(h))
        return blk_lhdr(h)->owner;
    return blk_chunk(h)->owner;
}

size_t ms_blk_footprint(const struct blk *h)
{
    return fp_small(h->sm & BLK_SIZE_MASK, blk_flags(h) & BF_DEBUG);
}

/* The header of live block ptr, or NULL (errno EINVAL; reported if report). */
struct blk *ms_live_blk(const void *ptr, const char *file, int line, int report)
{
    if (ptr == NULL) {
        errno = EINVAL;
        return NULL;
    }
    struct blk *h = (struct blk *)ptr - 1;
    if (MS_LIKELY(blk_magic(h) == BLK_LIVE))
        return h;
    errno = EINVAL;
    if (!report)
        return NULL;
    if (blk_magic(h) == BLK_FREED) {
        int fs = blk_flags(h) & BF_FREESITE;
        ms_report(MS_POOL_ERR_DOUBLE_FREE, report == 2 ? "double free" : "use of a freed block", ptr,
                  blk_size(h), file, line, fs ? blk_file(h) : NULL, fs ? blk_line(h) : 0);
    } else {
        ms_report(debug_mode() ? MS_POOL_ERR_CANARY : MS_POOL_ERR_BAD_POINTER,
                  debug_mode() ? "not a block, or its front canary was overwritten" : "not a block", ptr, 0,
                  file, line, NULL, 0);
    }
    errno = EINVAL;
    return NULL;
}

int ms_check_canary(const struct blk *h)
{
    if (!(blk_flags(h) & BF_DEBUG))
        return 1;
    const unsigned char *t = (const unsigned char *)(h + 1) + blk_size(h);
    for (unsigned i = 0; i < TAIL; i++)
        if (t[i] != MS_POOL_FILL_TAIL)
            return 0;
    return 1;
}

static void report_canary(const struct blk *h, const char *file, int line)
{
    ms_report(MS_POOL_ERR_CANARY, "canary after the block overwritten (buffer overflow)", h + 1, blk_size(h),
              file, line, blk_file(h), blk_line(h));
}

/* Mark h (owned by p) freed at file:line (debug mode: check its canary,
 * fill it).  Its ext must be gone. */
static void mark_freed(struct blk *h, struct ms_pool *p, const char *file, int line, int dbg)
{
    unsigned fl = blk_flags(h) & (BF_DEBUG | BF_FOREIGN | BF_LARGE);
    if (dbg) {
        if (!ms_check_canary(h))
            report_canary(h, file, line);
        memset(h + 1, MS_POOL_FILL_FREED, blk_size(h));
        fl |= BF_FILLED;
    }
    h->sf = site_id(p, file, line) | (uint32_t)(fl | BF_FREESITE) << 24;
    h->sm = (h->sm & BLK_SIZE_MASK) | BLK_FREED;
}

/* ------------------------------------------------------ ext */
void ms_ext_link(struct ext *e, struct ms_pool *p)
{
    e->owner = p;
    e->prev = NULL;
    e->next = p->exts;
    if (p->exts)
        p->exts->prev = e;
    p->exts = e;
}

void ms_ext_unlink(struct ext *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else if (e->owner && e->owner->exts == e)
        e->owner->exts = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

/* A small block's chunk gets its ext map (a slot per 16 bytes), if it has
 * none yet: before ms_blk_set_ext.  -1 (errno ENOMEM) if out of memory. */
int ms_emap_reserve(struct blk *h)
{
    if (blk_large(h))
        return 0;
    struct chunk *c = blk_chunk(h);
    if (c->emap)
        return 0;
    c->emap = ms_raw_calloc(CHUNK_EMAP * sizeof *c->emap);
    if (!c->emap) {
        errno = ENOMEM;
        return -1;
    }
    if (c->owner)
        c->owner->flags |= PF_EMAP;
    return 0;
}

/* Attach e to h (NULL: detach); a small block's ext map is reserved. */
void ms_blk_set_ext(struct blk *h, struct ext *e)
{
    if (blk_large(h))
        blk_lhdr(h)->ext = e;
    else
        blk_chunk(h)->emap[blk_slot(h)] = e;
    if (e)
        blk_set_flag(h, BF_EXT);
    else
        blk_clear_flag(h, BF_EXT);
}

struct ext *ms_ext_get(struct blk *h, struct ms_pool *owner)
{
    struct ext *e = blk_ext(h);
    if (e)
        return e;
    if (ms_emap_reserve(h) < 0)
        return NULL;
    e = ms_raw_calloc(sizeof *e);
    if (!e)
        return NULL;
    e->hdr = h;
    ms_ext_link(e, owner);
    ms_blk_set_ext(h, e);
    return e;
}

void ms_ext_maybe_drop(struct blk *h)
{
    struct ext *e = blk_ext(h);
    if (e && !e->dtors && !e->adopters && !e->freeing && !(blk_flags(h) & BF_FOREIGN)) {
        ms_ext_unlink(e);
        ms_raw_free(e, sizeof *e);
        ms_blk_set_ext(h, NULL);
    }
}

/* ------------------------------------------------------ carving */
static struct blk *carve_new_chunk(struct ms_pool *p, size_t fp)
{
    struct chunk *c = ms_chunk_get();
    if (!c)
        return NULL;
    pool_fold(p);
    p->chunk->used = p->cur;
    c->owner = p;
    c->next = p->chunk;
    p->chunk = c;
    if (p->nchunks < NCHUNKS_IN)
        p->chunks[p->nchunks] = c;
    p->nchunks++;
    p->cur = c->start + fp;
    p->end = c->end;
    return (struct blk *)c->start;
}

/* A freed small block's free-list link: its first user bytes. */
static inline struct blk **fl_link(struct blk *h)
{
    return (struct blk **)(void *)(h + 1);
}

/* A small block of footprint fp in p (header not set). */
static struct blk *carve(struct ms_pool *p, size_t fp)
{
    struct blk *h;
    if (p->fl && (h = p->fl[fp >> 4]) != NULL) {
        UNPOISON(h + 1, fp - HDR);
        p->fl[fp >> 4] = *fl_link(h);
        return h;
    }
    char *c = p->cur;
    if ((size_t)(p->end - c) < fp)
        return carve_new_chunk(p, fp);
    p->cur = c + fp;
    h = (struct blk *)c;
    UNPOISON(h, fp);
    return h;
}

static struct blk *large_alloc(struct ms_pool *p, size_t n, unsigned dbg)
{
    if (n > SIZE_MAX - LHDR - HDR - TAIL - 16) {
        errno = ENOMEM;
        return NULL;
    }
    size_t tot = LHDR + HDR + n + (dbg ? TAIL : 0);
    struct lhdr *l = ms_raw_alloc(tot);
    if (!l)
        return NULL;
    l->owner = p;
    l->size = n;
    l->alloc = tot;
    l->ext = NULL;
    l->prev = NULL;
    l->next = p->large;
    if (p->large)
        p->large->prev = l;
    p->large = l;
    return (struct blk *)(l + 1);
}

void ms_large_unlink(struct lhdr *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else if (l->owner->large == l)
        l->owner->large = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

void ms_large_link(struct lhdr *l, struct ms_pool *p)
{
    l->owner = p;
    l->prev = NULL;
    l->next = p->large;
    if (p->large)
        p->large->prev = l;
    p->large = l;
}

/* A new block of n bytes in p with header set: no limit check, no
 * accounting, no event.  NULL with errno ENOMEM. */
static struct blk *new_block(struct ms_pool *p, size_t n, const char *file, int line, int zero)
{
    unsigned dbg = debug_mode() ? BF_DEBUG : 0;
    int large = n > SMALL_USER;
    struct blk *h = large ? large_alloc(p, n, dbg) : carve(p, fp_small(n, dbg));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->sf = site_id(p, file, line) | (uint32_t)(dbg | (large ? BF_LARGE : 0)) << 24;
    h->sm = (large ? 0 : (uint32_t)n) | BLK_LIVE;
    if (dbg) {
        memset(h + 1, zero ? 0 : MS_POOL_FILL_NEW, n);
        memset((char *)(h + 1) + n, MS_POOL_FILL_TAIL, TAIL);
    } else if (zero) {
        memset(h + 1, 0, n);
    }
    return h;
}

static void *alloc_slow(struct ms_pool *p, size_t n, const char *file, int line, int zero)
{
    if (!pool_ok(p)) {
        ms_bad_pool(p, file, line);
        return NULL;
    }
    if (p->lim && !ms_limit_ok(p, n, file, line)) {
        errno = ENOMEM;
        return NULL;
    }
    struct blk *h = new_block(p, n, file, line, zero);
    if (!h)
        return NULL;
    p->bytes += n;
    p->nblocks++;
    if (p->lim)
        ms_limit_add(p, n);
    EMIT(MS_POOL_EV_ALLOC, p, NULL, NULL, h + 1, NULL, n, file, line);
    return h + 1;
}

/* ------------------------------------------------------ allocation API */
/* The fast path: a live pool with no limit above it and no free lists (its
 * gate word; ms_g_gate differs from it in debug mode or while events are
 * wanted), a small block, the site in the
 * pool's site cache, room in the current chunk.  It writes one 8-byte
 * header (site id, size, magic) and bumps; anything else is alloc_slow's
 * (a tail call: the fast path calls nothing, so it saves no registers). */
void *ms_pool_alloc_at(struct ms_pool *p, size_t n, const char *file, int line)
{
    if (MS_UNLIKELY(p == NULL) || MS_UNLIKELY(p->gate != atomic_load_explicit(&ms_g_gate, memory_order_relaxed)) ||
        MS_UNLIKELY(n > SMALL_USER))
        return alloc_slow(p, n, file, line, 0);
    size_t fp = fp_small(n, 0);
    char *c = p->cur;
    const struct site_cache *sc = site_slot_of(p, file, line);
    if (MS_UNLIKELY(((size_t)(p->end - c) < fp) | !site_hit(sc, file, line)))
        return alloc_slow(p, n, file, line, 0);
    p->cur = c + fp;
    UNPOISON(c, fp);
    uint64_t w = BLK_WORD(sc->id, (uint32_t)n | BLK_LIVE);
    memcpy(c, &w, sizeof w);
    p->fastc += FASTC_ONE + n;
    return c + HDR;
}

void *ms_pool_zalloc_at(struct ms_pool *p, size_t n, const char *file, int line)
{
    if (MS_UNLIKELY(p == NULL) || MS_UNLIKELY(p->gate != atomic_load_explicit(&ms_g_gate, memory_order_relaxed)))
        return alloc_slow(p, n, file, line, 1);
    void *r = ms_pool_alloc_at(p, n, file, line);
    if (r)
        memset(r, 0, n);
    return r;
}

void *ms_pool_calloc_at(struct ms_pool *p, size_t nmemb, size_t size, const char *file, int line)
{
    if (size && nmemb > SIZE_MAX / size) {
        errno = EOVERFLOW;
        return NULL;
    }
    return ms_pool_zalloc_at(p, nmemb * size, file, line);
}

void *ms_pool_memdup_at(struct ms_pool *p, const void *src, size_t n, const char *file, int line)
{
    if (!src && n) {
        errno = EINVAL;
        return NULL;
    }
    void *r = ms_pool_alloc_at(p, n, file, line);
    if (r && n)
        memcpy(r, src, n);
    return r;
}

char *ms_pool_strdup_at(struct ms_pool *p, const char *s, const char *file, int line)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    return ms_pool_memdup_at(p, s, strlen(s) + 1, file, line);
}

char *ms_pool_strndup_at(struct ms_pool *p, const char *s, size_t n, const char *file, int line)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    size_t len = strnlen(s, n);
    char *r = ms_pool_alloc_at(p, len + 1, file, line);
    if (r) {
        memcpy(r, s, len);
        r[len] = '\0';
    }
    return r;
}

char *ms_pool_vasprintf_at(struct ms_pool *p, const char *file, int line, const char *fmt, va_list ap)
{
    if (!pool_ok(p)) {
        ms_bad_pool(p, file, line);
        return NULL;
    }
    if (!fmt) {
        errno = EINVAL;
        return NULL;
    }
    char buf[256];
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    if (len < 0) {
        va_end(ap2);
        errno = errno == EOVERFLOW ? EOVERFLOW : EINVAL;
        return NULL;
    }
    char *s = ms_pool_alloc_at(p, (size_t)len + 1, file, line);
    if (s) {
        if ((size_t)len < sizeof buf)
            memcpy(s, buf, (size_t)len + 1);
        else
            vsnprintf(s, (size_t)len + 1, fmt, ap2);
    }
    va_end(ap2);
    return s;
}

char *ms_pool_asprintf_at(struct ms_pool *p, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ms_pool_vasprintf_at(p, file, line, fmt, ap);
    va_end(ap);
    return s;
}

/* ------------------------------------------------------ freeing */
/* Give the memory of small block h (owned by p, its chunk's pool) back to p:
 * debug mode keeps it; else the bump pointer or a free list takes it. */
/* Put freed small block h (footprint fp) of p back: the bump pointer or
 * a free list takes it. */
static inline void small_reuse(struct ms_pool *p, struct blk *h, size_t fp)
{
    if ((char *)h + fp == p->cur) {
        p->cur = (char *)h;
        pool_fold(p); /* the bump pointer may pass here again: see pool_fold */
        POISON(h + 1, fp - HDR);
        return;
    }
    if (MS_UNLIKELY(!p->fl)) {
        p->fl = ms_raw_calloc(NCLASS * sizeof *p->fl);
        if (!p->fl)
            return; /* not reused; goes back with the pool */
        p->slow |= PS_FL; /* allocations look at the free lists first */
    }
    *fl_link(h) = p->fl[fp >> 4];
    p->fl[fp >> 4] = h;
    POISON(h + 1, fp - HDR);
}

static void small_release(struct ms_pool *p, struct blk *h, const char *file, int line)
{
    size_t fp = ms_blk_footprint(h);
    int dbg = debug_mode();
    mark_freed(h, p, file, line, dbg);
    if (dbg)
        return;
    small_reuse(p, h, fp);
}

/* The memory of block h owned by owner goes (no accounting, no event, no
 * destructors; h's ext must already be dealt with). */
static void blk_free_mem(struct blk *h, struct ms_pool *owner, const char *file, int line)
{
    if (blk_large(h)) {
        struct lhdr *l = blk_lhdr(h);
        if (debug_mode()) {
            mark_freed(h, owner, file, line, 1); /* kept in the owner's list until it goes */
            return;
        }
        ms_large_unlink(l);
        ms_raw_free(l, l->alloc);
    } else if (blk_flags(h) & BF_FOREIGN) {
        mark_freed(h, owner, file, line, debug_mode());
        ms_chunk_unref(blk_chunk(h));
    } else {
        small_release(owner, h, file, line);
    }
}

/* Block h of owner dies now (its destructors have run). */
void ms_blk_release(struct blk *h, struct ms_pool *owner, const char *file, int line)
{
    size_t n = blk_size(h);
    owner->bytes -= n;
    owner->nblocks--;
    if (owner->lim)
        ms_limit_sub(owner, n);
    struct ext *e = blk_ext(h);
    if (e) {
        ms_ext_unlink(e);
        ms_raw_free(e, sizeof *e);
        ms_blk_set_ext(h, NULL);
    }
    blk_free_mem(h, owner, file, line);
}

static int free_slow(struct blk *h, const char *file, int line)
{
    if ((blk_flags(h) & BF_DEBUG) && !ms_check_canary(h)) {
        report_canary(h, file, line);
        errno = EINVAL;
        return -1;
    }
    struct ext *e = blk_ext(h);
    if (e) {
        if (e->freeing)
            return 0;
        if (e->adopters) {
            errno = EBUSY;
            return -1;
        }
        if (e->dtors) {
            e->freeing = 1;
            int r = ms_run_dtors(&e->dtors, h + 1);
            e->freeing = 0;
            if (r) {
                errno = ECANCELED;
                return -1;
            }
        }
    }
    struct ms_pool *owner = ms_blk_owner(h);
    void *ptr = h + 1;
    size_t n = blk_size(h);
    ms_blk_release(h, owner, file, line);
    EMIT(MS_POOL_EV_FREE, owner, NULL, NULL, ptr, NULL, n, file, line);
    return 0;
}

int ms_pool_free_at(void *ptr, const char *file, int line)
{
    if (!ptr)
        return 0;
    struct blk *h = (struct blk *)ptr - 1;
    uint32_t sm = h->sm;
    if (MS_UNLIKELY((sm & BLK_MAGIC_MASK) != BLK_LIVE))
        return ms_live_blk(ptr, file, line, 2) ? 0 : -1;
    /* any flag (ext, large, debug, foreign) or mode: the general path */
    if (MS_UNLIKELY(((h->sf >> 24) != 0) | slow_mode()))
        return free_slow(h, file, line);
    struct ms_pool *p = blk_chunk(h)->owner;
    if (MS_UNLIKELY(p->lim != NULL))
        return free_slow(h, file, line);
    const struct site_cache *sc = site_slot_of(p, file, line);
    if (MS_UNLIKELY(!site_hit(sc, file, line)))
        return free_slow(h, file, line);
    size_t n = sm & BLK_SIZE_MASK;
    p->bytes -= n;
    p->nblocks--;
    h->sf = sc->id | (uint32_t)BF_FREESITE << 24;
    h->sm = (uint32_t)n | BLK_FREED;
    small_reuse(p, h, fp_small(n, 0));
    return 0;
}

struct ms_pool *ms_pool_owner(const void *ptr)
{
    struct blk *h = ms_live_blk(ptr, NULL, 0, 0);
    return h ? ms_blk_owner(h) : NULL;
}

size_t ms_pool_size(const void *ptr)
{
    struct blk *h = ms_live_blk(ptr, NULL, 0, 0);
    return h ? blk_size(h) : 0;
}

/* ------------------------------------------------------ realloc */
static void resize_in_place(struct blk *h, struct ms_pool *owner, size_t old, size_t n, const char *file,
                            int line)
{
    unsigned dbg = blk_flags(h) & BF_DEBUG;
    if (dbg && n > old)
        memset((char *)(h + 1) + old, MS_POOL_FILL_NEW, n - old);
    if (blk_large(h))
        blk_lhdr(h)->size = n;
    else
        h->sm = (uint32_t)n | BLK_LIVE;
    h->sf = site_id(owner, file, line) | (uint32_t)blk_flags(h) << 24;
    if (dbg)
        memset((char *)(h + 1) + n, MS_POOL_FILL_TAIL, TAIL);
}

void *ms_pool_realloc_at(struct ms_pool *p, void *ptr, size_t n, const char *file, int line)
{
    if (!ptr)
        return ms_pool_alloc_at(p, n, file, line);
    struct blk *h = ms_live_blk(ptr, file, line, 1);
    if (!h)
        return NULL;
    struct ms_pool *owner = ms_blk_owner(h);
    if (p && p != owner) {
        if (!pool_ok(p))
            ms_bad_pool(p, file, line);
        errno = EINVAL;
        return NULL;
    }
    if (n == 0) {
        errno = 0;
        ms_pool_free_at(ptr, file, line);
        return NULL;
    }
    struct ext *he = blk_ext(h);
    if (he && he->freeing) {
        errno = EBUSY;
        return NULL;
    }
    if (!ms_check_canary(h)) {
        report_canary(h, file, line);
        errno = EINVAL;
        return NULL;
    }
    size_t old = blk_size(h);
    if (n > old && owner->lim && !ms_limit_ok(owner, n - old, file, line)) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned fl = blk_flags(h);
    struct blk *nh = NULL;
    if (!blk_large(h) && n <= SMALL_USER) {
        size_t ofp = fp_small(old, fl & BF_DEBUG), nfp = fp_small(n, fl & BF_DEBUG);
        if (nfp == ofp) {
            nh = h;
        } else if (!(fl & BF_FOREIGN) && (char *)h + ofp == owner->cur &&
                   (size_t)(owner->end - (char *)h) >= nfp) {
            owner->cur = (char *)h + nfp;
            UNPOISON(h + 1, nfp - HDR);
            nh = h;
        }
    } else if (blk_large(h) && n > SMALL_USER && n <= SIZE_MAX - LHDR - HDR - TAIL - 16) {
        struct lhdr *l = blk_lhdr(h);
        size_t tot = LHDR + HDR + n + ((fl & BF_DEBUG) ? TAIL : 0);
        struct lhdr *prev = l->prev, *next = l->next;
        size_t oldalloc = l->alloc;
        struct lhdr *nl = ms_raw_realloc(l, oldalloc, tot);
        if (!nl)
            return NULL;
        nl->alloc = tot;
        if (prev)
            prev->next = nl;
        else
            owner->large = nl;
        if (next)
            next->prev = nl;
        nh = (struct blk *)(nl + 1);
        if (nl->ext)
            nl->ext->hdr = nh;
    }
    if (nh) {
        resize_in_place(nh, owner, old, n, file, line);
    } else {
        nh = new_block(owner, n, file, line, 0);
        if (!nh)
            return NULL;
        if (he && ms_emap_reserve(nh) < 0) { /* the ext cannot follow: undo */
            blk_free_mem(nh, owner, file, line);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(nh + 1, h + 1, old < n ? old : n);
        if (he) {
            ms_blk_set_ext(h, NULL);
            he->hdr = nh;
            ms_blk_set_ext(nh, he);
            ms_ext_maybe_drop(nh); /* the new block is the owner's own */
        }
        blk_free_mem(h, owner, file, line);
    }
    if (n > old) {
        owner->bytes += n - old;
        if (owner->lim)
            ms_limit_add(owner, n - old);
    } else {
        owner->bytes -= old - n;
        if (owner->lim)
            ms_limit_sub(owner, old - n);
    }
    if (MS_UNLIKELY(atomic_load_explicit(&ms_g_emit, memory_order_relaxed)))
        ms_emit_realloc(owner, nh + 1, ptr, n, old, file, line);
    return nh + 1;
}

/* ------------------------------------------------------ pool memory */
static size_t pool_mem(const struct ms_pool *p)
{
    size_t m = p->nchunks * CHUNK_SIZE;
    for (const struct lhdr *l = p->large; l; l = l->next)
        m += l->alloc;
    return m;
}

size_t ms_pool_mem(const struct ms_pool *p)
{
    return pool_mem(p);
}

/* Free everything p's memory holds: large blocks, free lists, chunks (the
 * first of which holds p). */
static void final_release(struct ms_pool *p)
{
    ms_raw_free(p->fl, NCLASS * sizeof *p->fl);
    p->fl = NULL;
    for (struct lhdr *l = p->large, *next; l; l = next) {
        next = l->next;
        ms_raw_free(l, l->alloc);
    }
    p->large = NULL;
    /* p lives in its first chunk: read all of p before giving that back */
    struct chunk *v[64];
    size_t n = 0;
    int stolen = (p->flags & PF_STOLEN) != 0, emap = (p->flags & PF_EMAP) != 0;
    if (p->nchunks <= NCHUNKS_IN && !stolen) { /* no chunk header to read */
        n = p->nchunks;
        memcpy(v, p->chunks, n * sizeof *v);
        chunks_put(v, n, emap);
        return;
    }
    struct chunk *c = p->chunk;
    while (c) {
        struct chunk *next = c->next;
        if (!stolen || atomic_load_explicit(&c->refs, memory_order_acquire) == 1) {
            v[n++] = c;
            if (n == 64) {
                chunks_put(v, n, emap);
                n = 0;
            }
        } else {
            c->owner = NULL; /* orphan: foreign blocks keep it */
            ms_chunk_unref(c);
        }
        c = next;
    }
    if (n)
        chunks_put(v, n, emap);
}

/* Debug mode: every block p still holds dies at file:line. */
static void mark_all_freed(struct ms_pool *p, const char *file, int line)
{
    for (struct chunk *c = p->chunk; c; c = c->next) {
        char *s = c->start, *e = c == p->chunk ? p->cur : c->used;
        while (s < e) {
            struct blk *h = (struct blk *)s;
            if (blk_magic(h) != BLK_LIVE && blk_magic(h) != BLK_FREED) {
                ms_report(MS_POOL_ERR_CORRUPT, "block header overwritten", h + 1, 0, file, line, NULL, 0);
                break;
            }
            size_t fp = ms_blk_footprint(h);
            if (blk_magic(h) == BLK_LIVE && !(blk_flags(h) & BF_FOREIGN))
                mark_freed(h, p, file, line, 1);
            s += fp;
        }
    }
    for (struct lhdr *l = p->large; l; l = l->next) {
        struct blk *h = (struct blk *)(l + 1);
        if (blk_magic(h) == BLK_LIVE)
            mark_freed(h, p, file, line, 1);
    }
}

void ms_quarantine_evict(size_t limit)
{
    for (;;) {
        pthread_mutex_lock(&g_quar_lock);
        struct ms_pool *p = NULL;
        if (g_quar_bytes > limit && g_quar_head) {
            p = g_quar_head;
            g_quar_head = p->rnext;
            if (!g_quar_head)
                g_quar_tail = NULL;
            g_quar_bytes -= p->s_bytes;
        }
        pthread_mutex_unlock(&g_quar_lock);
        if (!p)
            return;
        final_release(p);
    }
}

/* p (destroyed: destructors ran, unlinked) gives its memory back, or, in
 * debug mode, goes to the quarantine. */
void ms_pool_release_memory(struct ms_pool *p, const char *file, int line)
{
    p->magic = POOL_DEAD;
    p->free_file = file;
    p->free_line = line;
    if (debug_mode()) {
        mark_all_freed(p, file, line);
        p->flags |= PF_QUAR;
        p->s_bytes = pool_mem(p);
        p->rnext = NULL;
        pthread_mutex_lock(&g_quar_lock);
        if (g_quar_tail)
            g_quar_tail->rnext = p;
        else
            g_quar_head = p;
        g_quar_tail = p;
        g_quar_bytes += p->s_bytes;
        size_t lim = g_quar_limit;
        pthread_mutex_unlock(&g_quar_lock);
        ms_quarantine_evict(lim);
        return;
    }
    final_release(p);
}

void ms_pool_set_quarantine_limit(size_t bytes)
{
    ms_init_once();
    pthread_mutex_lock(&g_quar_lock);
    g_quar_limit = bytes;
    pthread_mutex_unlock(&g_quar_lock);
    ms_quarantine_evict(bytes);
}

void ms_pool_trim(void)
{
    ms_quarantine_evict(0);
    cache_lock();
    size_t keep = g_cache_limit;
    cache_unlock();
    ms_pool_set_cache_limit(0);
    cache_lock();
    g_cache_limit = keep;
    cache_unlock();
}

void ms_pool_get_stats(struct ms_pool_stats *out)
{
    if (!out)
        return;
    out->raw_live = atomic_load(&g_raw_live);
    out->raw_bytes = atomic_load(&g_raw_bytes);
    out->raw_total = atomic_load(&g_raw_total);
    cache_lock();
    out->cached_bytes = g_cache_bytes;
    cache_unlock();
    pthread_mutex_lock(&g_quar_lock);
    out->quarantine_bytes = g_quar_bytes;
    pthread_mutex_unlock(&g_quar_lock);
    pthread_mutex_lock(&ms_g_reg_lock);
    out->roots = ms_g_nroots;
    pthread_mutex_unlock(&ms_g_reg_lock);
}

/* fork: a thread of the parent may hold one of the library's locks at the
 * moment another one forks; the child, where only the forking thread lives,
 * would wait for it forever.  The forking thread takes them all first (the
 * registry's before the leaves: a registry walk's callback may allocate, and
 * the quarantine, site and cache locks take no other lock), so they are in a
 * known state on both sides, and gives them back in both. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&ms_g_reg_lock);
    pthread_mutex_lock(&g_quar_lock);
    pthread_mutex_lock(&g_site_lock);
    cache_lock();
}

static void fork_release(void)
{
    cache_unlock();
    pthread_mutex_unlock(&g_site_lock);
    pthread_mutex_unlock(&g_quar_lock);
    pthread_mutex_unlock(&ms_g_reg_lock);
}

/* at load, before any lock is taken (also when linked statically) */
__attribute__((constructor)) static void ms_pool_init_fork(void)
{
    pthread_atfork(fork_prepare, fork_release, fork_release);
}

/* At exit (or unload), give the cache and the quarantine back, so that
 * leak checkers see nothing left by the library itself. */
__attribute__((destructor)) static void ms_pool_fini(void)
{
    ms_pool_trim();
}
