/* poolstate.c - what the agent knows of libmemsleuth_pool's allocators, fed
 * with every pool event by trace_write.c (pool_event, under its pool_lock):
 *   - the live pools: parent, creation site (file copied), name (copied, cut
 *     at MS_PS_NAME_MAX - 1 bytes), own bytes and blocks;
 *   - the library's own heap blocks (chunks, large blocks, its records:
 *     MS_POOL_AGENT_EV_RAW / _RAW_FREE, src/common/pool_agent.h).
 * A forked child's trace names the pools it inherited from them
 * (trace_write.c), and the exit report (report.c) gives its verdicts in pool
 * terms: the library's blocks leave the malloc loss records, and each pool
 * tree never destroyed is reported once, at its root's creation site, with
 * its whole subtree.  Memory comes from the agent's region, never from the
 * program's heap. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "../common/pool_agent.h"

#include <string.h>

/* ---- open-addressing tables keyed by address (0: empty), linear probing,
 * deletion by backward shift */
static inline size_t slot_of(uintptr_t k, size_t cap)
{
    return (size_t)(((uint64_t)k * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static struct ms_ps_pool *pools;
static size_t pool_cap, pool_n;
static uint64_t pool_seq;

struct rawb {
    uintptr_t addr;
    uint64_t size;
};
static struct rawb *raws;
static size_t raw_cap, raw_n;

struct fcopy {
    uintptr_t f;
    const char *s;
};
static struct fcopy *files;
static size_t file_cap, file_n;
static char *arena;
static size_t arena_left;

static int pools_grow(void)
{
    size_t ncap = pool_cap ? pool_cap * 2 : 1024;
    struct ms_ps_pool *n = ms_region_alloc(ncap * sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < pool_cap; i++)
        if (pools[i].addr) {
            size_t j = slot_of(pools[i].addr, ncap);
            while (n[j].addr)
                j = (j + 1) & (ncap - 1);
            n[j] = pools[i];
        }
    if (pools)
        ms_region_release(pools, pool_cap * sizeof *pools);
    pools = n;
    pool_cap = ncap;
    return 0;
}

static struct ms_ps_pool *pool_find(uintptr_t a)
{
    if (!a || !pool_cap)
        return NULL;
    for (size_t j = slot_of(a, pool_cap);; j = (j + 1) & (pool_cap - 1)) {
        if (pools[j].addr == a)
            return &pools[j];
        if (!pools[j].addr)
            return NULL;
    }
}

static void pool_del(struct ms_ps_pool *e)
{
    size_t i = (size_t)(e - pools);
    pools[i].addr = 0;
    pool_n--;
    for (size_t j = (i + 1) & (pool_cap - 1); pools[j].addr; j = (j + 1) & (pool_cap - 1)) {
        size_t h = slot_of(pools[j].addr, pool_cap);
        /* can pools[j] move to the hole at i? (h not cyclically in (i, j]) */
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            pools[i] = pools[j];
            pools[j].addr = 0;
            i = j;
        }
    }
}

static int raws_grow(void)
{
    size_t ncap = raw_cap ? raw_cap * 2 : 4096;
    struct rawb *n = ms_region_alloc(ncap * sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < raw_cap; i++)
        if (raws[i].addr) {
            size_t j = slot_of(raws[i].addr, ncap);
            while (n[j].addr)
                j = (j + 1) & (ncap - 1);
            n[j] = raws[i];
        }
    if (raws)
        ms_region_release(raws, raw_cap * sizeof *raws);
    raws = n;
    raw_cap = ncap;
    return 0;
}

static void raw_del(uintptr_t a)
{
    if (!a || !raw_cap)
        return;
    size_t i = slot_of(a, raw_cap);
    while (raws[i].addr != a) {
        if (!raws[i].addr)
            return;
        i = (i + 1) & (raw_cap - 1);
    }
    raws[i].addr = 0;
    raw_n--;
    for (size_t j = (i + 1) & (raw_cap - 1); raws[j].addr; j = (j + 1) & (raw_cap - 1)) {
        size_t h = slot_of(raws[j].addr, raw_cap);
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            raws[i] = raws[j];
            raws[j].addr = 0;
            i = j;
        }
    }
}

static void raw_add(uintptr_t a, uint64_t size)
{
    if (!a)
        return;
    if ((raw_n + 1) * 2 > raw_cap && raws_grow() < 0)
        return;
    size_t j = slot_of(a, raw_cap);
    while (raws[j].addr && raws[j].addr != a)
        j = (j + 1) & (raw_cap - 1);
    if (!raws[j].addr)
        raw_n++;
    raws[j].addr = a;
    raws[j].size = size;
}

int ms_ps_is_raw(uintptr_t a)
{
    if (!a || !raw_cap)
        return 0;
    for (size_t j = slot_of(a, raw_cap);; j = (j + 1) & (raw_cap - 1)) {
        if (raws[j].addr == a)
            return 1;
        if (!raws[j].addr)
            return 0;
    }
}

size_t ms_ps_raw_count(void)
{
    return raw_n;
}

/* a copy of the file name string at f (the program's __FILE__; its module
 * may be unloaded before the report) */
static const char *file_copy(const char *f)
{
    if (!f)
        return NULL;
    if ((file_n + 1) * 2 > file_cap) {
        size_t ncap = file_cap ? file_cap * 2 : 256;
        struct fcopy *n = ms_region_alloc(ncap * sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < file_cap; i++)
            if (files[i].f) {
                size_t j = slot_of(files[i].f, ncap);
                while (n[j].f)
                    j = (j + 1) & (ncap - 1);
                n[j] = files[i];
            }
        if (files)
            ms_region_release(files, file_cap * sizeof *files);
        files = n;
        file_cap = ncap;
    }
    size_t j = slot_of((uintptr_t)f, file_cap);
    while (files[j].f) {
        if (files[j].f == (uintptr_t)f)
            return files[j].s;
        j = (j + 1) & (file_cap - 1);
    }
    size_t len = strnlen(f, 1023);
    if (arena_left < len + 1) {
        arena = ms_region_alloc(65536);
        if (!arena) {
            arena_left = 0;
            return NULL;
        }
        arena_left = 65536;
    }
    char *s = arena;
    memcpy(s, f, len);
    s[len] = 0;
    arena += len + 1;
    arena_left -= len + 1;
    files[j].f = (uintptr_t)f;
    files[j].s = s;
    file_n++;
    return s;
}

static void move_bytes(uintptr_t from, uintptr_t to, uint64_t size)
{
    struct ms_ps_pool *a = pool_find(from), *b = pool_find(to);
    if (a) {
        a->bytes -= size;
        a->blocks--;
    }
    if (b) {
        b->bytes += size;
        b->blocks++;
    }
}

void ms_ps_event(int kind, const void *pool, const void *other, const void *old_owner, const void *ptr,
                 size_t size, size_t old_size, const char *file, int line)
{
    uintptr_t p = (uintptr_t)pool;
    struct ms_ps_pool *e;
    switch (kind) {
    case MS_POOL_AGENT_EV_RAW:
        raw_add((uintptr_t)ptr, size);
        break;
    case MS_POOL_AGENT_EV_RAW_FREE:
        raw_del((uintptr_t)ptr);
        break;
    case 1: /* CREATE: other = parent */
        if ((e = pool_find(p)) != NULL) /* its DESTROY went missing */
            pool_del(e);
        if ((pool_n + 1) * 2 > pool_cap && pools_grow() < 0)
            break;
        {
            size_t j = slot_of(p, pool_cap);
            while (pools[j].addr)
                j = (j + 1) & (pool_cap - 1);
            e = &pools[j];
            memset(e, 0, sizeof *e);
            e->addr = p;
            e->parent = (uintptr_t)other;
            e->file = file_copy(file);
            e->line = line;
            e->seq = ++pool_seq;
            pool_n++;
        }
        break;
    case 2: /* DESTROY */
        if ((e = pool_find(p)) != NULL)
            pool_del(e);
        break;
    case 3: /* ALLOC */
        if ((e = pool_find(p)) != NULL) {
            e->bytes += size;
            e->blocks++;
        }
        break;
    case 5: /* REALLOC */
        if ((e = pool_find(p)) != NULL)
            e->bytes += size - old_size;
        break;
    case 4: /* FREE */
        if ((e = pool_find(p)) != NULL) {
            e->bytes -= size;
            e->blocks--;
        }
        break;
    case 6: /* REPARENT: a block (ptr) moved from old_owner to other, or pool
               moved under other (NULL: it became a root) */
        if (ptr)
            move_bytes((uintptr_t)old_owner, (uintptr_t)other, size);
        else if ((e = pool_find(p)) != NULL)
            e->parent = (uintptr_t)other;
        break;
    case MS_POOL_AGENT_EV_NAME:
        if ((e = pool_find(p)) != NULL) {
            e->named = ptr != NULL;
            e->name[0] = 0;
            if (ptr) {
                size_t len = strnlen((const char *)ptr, MS_PS_NAME_MAX - 1);
                memcpy(e->name, ptr, len);
                e->name[len] = 0;
            }
        }
        break;
    default: /* ADOPT, RELEASE: the bytes stay with the primary owner */
        break;
    }
}

/* ---- the live pools as a forest: parents before children */
struct forest {
    struct ms_ps_pool **v; /* by creation order */
    size_t n;
    int64_t *first, *next; /* children lists, by index in v */
    int64_t *roots;        /* index of a pool whose parent is not live */
    size_t nroots;
    size_t bytes;
};

/* Shell sort (no qsort: glibc's may call malloc, and this runs in a fork
 * child or with the world stopped) */
static void sort_by_seq(struct ms_ps_pool **v, size_t n)
{
    size_t gap = 1;
    while (gap < n / 3)
        gap = gap * 3 + 1;
    for (; gap > 0; gap /= 3)
        for (size_t i = gap; i < n; i++) {
            struct ms_ps_pool *t = v[i];
            size_t j = i;
            while (j >= gap && v[j - gap]->seq > t->seq) {
                v[j] = v[j - gap];
                j -= gap;
            }
            v[j] = t;
        }
}

static void forest_free(struct forest *f)
{
    if (f->v)
        ms_region_release(f->v, f->bytes);
    memset(f, 0, sizeof *f);
}

/* index in f->v of the live pool at addr (kept in its scratch field) */
static int64_t index_of(struct forest *f, uintptr_t addr)
{
    struct ms_ps_pool *e = pool_find(addr);
    return e ? (int64_t)e->scratch : -1;
}

static int forest_build(struct forest *f)
{
    memset(f, 0, sizeof *f);
    size_t n = pool_n;
    f->bytes = n * (sizeof *f->v + 3 * sizeof(int64_t)) + 64;
    f->v = ms_region_alloc(f->bytes);
    if (!f->v)
        return -1;
    f->first = (int64_t *)(void *)(f->v + n);
    f->next = f->first + n;
    f->roots = f->next + n;
    for (size_t i = 0; i < pool_cap; i++)
        if (pools[i].addr)
            f->v[f->n++] = &pools[i];
    sort_by_seq(f->v, f->n);
    for (size_t i = 0; i < f->n; i++) {
        f->v[i]->scratch = (uint64_t)i;
        f->first[i] = -1;
        f->next[i] = -1;
    }
    /* children in creation order: link from the last one */
    for (size_t k = f->n; k-- > 0;) {
        int64_t par = f->v[k]->parent ? index_of(f, f->v[k]->parent) : -1;
        if (par == (int64_t)k)
            par = -1;
        if (par >= 0) {
            f->next[k] = f->first[par];
            f->first[par] = (int64_t)k;
        }
    }
    for (size_t k = 0; k < f->n; k++) {
        int64_t par = f->v[k]->parent ? index_of(f, f->v[k]->parent) : -1;
        if (par < 0 || par == (int64_t)k)
            f->roots[f->nroots++] = (int64_t)k;
    }
    return 0;
}

/* visit the subtree of index r, parents first (iterative: trees may be
 * deep); a cycle (lost events) cannot loop: each node is visited once */
static void walk(struct forest *f, int64_t r, void (*fn)(const struct ms_ps_pool *, int depth, void *), void *arg,
                 uint8_t *seen)
{
    int64_t cur = r;
    int depth = 0;
    while (cur >= 0) {
        if (!seen[cur]) {
            seen[cur] = 1;
            fn(f->v[cur], depth, arg);
            if (f->first[cur] >= 0 && !seen[f->first[cur]]) {
                cur = f->first[cur];
                depth++;
                continue;
            }
        }
        /* next sibling, or up */
        while (cur >= 0) {
            if (cur == r) {
                cur = -1;
                break;
            }
            if (f->next[cur] >= 0 && !seen[f->next[cur]]) {
                cur = f->next[cur];
                break;
            }
            cur = index_of(f, f->v[cur]->parent);
            depth--;
        }
    }
}

int ms_ps_walk(void (*fn)(const struct ms_ps_pool *, int depth, void *), void *arg)
{
    struct forest f;
    if (!pool_n)
        return 0;
    if (forest_build(&f) < 0)
        return -1;
    uint8_t *seen = ms_region_alloc(f.n + 1);
    if (!seen) {
        forest_free(&f);
        return -1;
    }
    for (size_t i = 0; i < f.nroots; i++)
        walk(&f, f.roots[i], fn, arg, seen);
    /* pools on a cycle (never the case unless events were lost) */
    for (size_t i = 0; i < f.n; i++)
        if (!seen[i])
            walk(&f, (int64_t)i, fn, arg, seen);
    ms_region_release(seen, f.n + 1);
    forest_free(&f);
    return 0;
}

/* ---- leak verdicts in pool terms: one per tree never destroyed */
struct sum_arg {
    struct ms_ps_leak *l;
};

static void sum_one(const struct ms_ps_pool *p, int depth, void *arg)
{
    (void)depth;
    struct ms_ps_leak *l = ((struct sum_arg *)arg)->l;
    l->bytes += p->bytes;
    l->blocks += p->blocks;
    l->allocators++;
}

static int before(const struct ms_ps_leak *x, const struct ms_ps_leak *y)
{
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes;
    if (x->blocks != y->blocks)
        return x->blocks > y->blocks;
    return x->seq < y->seq;
}

size_t ms_ps_leaks(struct ms_ps_leak **out)
{
    *out = NULL;
    struct forest f;
    if (!pool_n || forest_build(&f) < 0)
        return 0;
    struct ms_ps_leak *v = ms_region_alloc((f.nroots + 1) * sizeof *v);
    uint8_t *seen = ms_region_alloc(f.n + 1);
    if (!v || !seen) {
        forest_free(&f);
        return 0;
    }
    for (size_t i = 0; i < f.nroots; i++) {
        const struct ms_ps_pool *p = f.v[f.roots[i]];
        struct ms_ps_leak *l = &v[i];
        l->pool = p->addr;
        l->seq = p->seq;
        l->file = p->file;
        l->line = p->line;
        memcpy(l->name, p->name, sizeof l->name);
        l->named = p->named;
        l->own_bytes = p->bytes;
        l->own_blocks = p->blocks;
        struct sum_arg a = { l };
        walk(&f, f.roots[i], sum_one, &a, seen);
    }
    ms_region_release(seen, f.n + 1);
    size_t n = f.nroots;
    forest_free(&f);
    for (size_t i = 1; i < n; i++) { /* largest first; few trees */
        struct ms_ps_leak t = v[i];
        size_t j = i;
        while (j > 0 && before(&t, &v[j - 1])) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = t;
    }
    *out = v;
    return n;
}
