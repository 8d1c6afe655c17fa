/*
 * memsleuth - pools.c: the replay of the POOL_* records (libmemsleuth_pool's
 * allocators, docs/trace-format.md types 20..27) and the "Pools" section of
 * `memsleuth report`.  See pools.h for the definitions.
 */
#include "pools.h"

#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"

#define GRID MS_MODEL_GRID

struct ms_pools_kv {
    uint64_t k, v; /* k == 0: empty (no pool or block lives at address 0) */
};

struct ms_pools_blk {
    uint64_t addr, size;
    int64_t node;        /* owner */
    int64_t prev, next;  /* in the owner's list; next: free list */
    uint32_t site;
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static int nomem(struct ms_pools *pl)
{
    pl->nomem = 1;
    return -1;
}

static struct ms_pools_kv *kv_find(struct ms_pools_kv *t, size_t cap, uint64_t k)
{
    if (!cap || !k)
        return NULL;
    for (size_t i = ms_an_hash64(k) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (t[i].k == k)
            return &t[i];
        if (!t[i].k)
            return NULL;
    }
}

static int kv_put(struct ms_pools_kv **t, size_t *cap, size_t *n, uint64_t k, uint64_t v)
{
    if ((*n + 1) * 10 > *cap * 7) {
        size_t nc = *cap ? *cap * 2 : 1024;
        struct ms_pools_kv *nt = calloc(nc, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < *cap; i++)
            if ((*t)[i].k) {
                size_t j = ms_an_hash64((*t)[i].k) & (nc - 1);
                while (nt[j].k)
                    j = (j + 1) & (nc - 1);
                nt[j] = (*t)[i];
            }
        free(*t);
        *t = nt;
        *cap = nc;
    }
    size_t i = ms_an_hash64(k) & (*cap - 1);
    while ((*t)[i].k && (*t)[i].k != k)
        i = (i + 1) & (*cap - 1);
    if (!(*t)[i].k)
        (*n)++;
    (*t)[i].k = k;
    (*t)[i].v = v;
    return 0;
}

/* backward-shift deletion */
static void kv_del(struct ms_pools_kv *t, size_t cap, size_t *n, struct ms_pools_kv *e)
{
    size_t i = (size_t)(e - t);
    (*n)--;
    for (size_t j = (i + 1) & (cap - 1); t[j].k; j = (j + 1) & (cap - 1)) {
        size_t h = ms_an_hash64(t[j].k) & (cap - 1);
        /* can the entry at j move to the hole at i? (h not cyclically in (i, j]) */
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            t[i] = t[j];
            i = j;
        }
    }
    t[i].k = 0;
    t[i].v = 0;
}

/* ------------------------------------------------------------------ */
/* series                                                              */
/* ------------------------------------------------------------------ */

static void fill_to(struct ms_pools *pl, int32_t s, uint64_t j, uint64_t v)
{
    if (j > GRID)
        j = GRID;
    for (uint64_t c = pl->ser_filled[s] + 1; c <= j; c++)
        pl->ser[s][c - 1] = v;
    if (j > pl->ser_filled[s])
        pl->ser_filled[s] = (uint32_t)j;
}

static void fill_before(struct ms_pools *pl, int32_t s, uint64_t t, uint64_t v)
{
    if (s >= 0 && t)
        fill_to(pl, s, (t - 1) / pl->w, v);
}

static void grid_cover(struct ms_pools *pl, uint64_t t)
{
    while (pl->w <= UINT64_MAX / (2 * GRID) && t > pl->w * GRID) {
        for (size_t i = 0; i < pl->nser; i++) {
            uint32_t nf = pl->ser_filled[i] / 2;
            for (uint32_t c = 0; c < nf; c++)
                pl->ser[i][c] = pl->ser[i][2 * c + 1];
            pl->ser_filled[i] = nf;
        }
        pl->w *= 2;
    }
}

static int32_t series_new(struct ms_pools *pl, uint64_t t)
{
    int32_t s;
    if (pl->nser_free) {
        s = pl->ser_free[--pl->nser_free];
    } else {
        if (pl->nser >= MS_POOLS_SERIES_CAP + 1)
            return -1;
        uint64_t(*ns)[GRID] = realloc(pl->ser, (pl->nser + 1) * sizeof *ns);
        if (!ns)
            return -1;
        pl->ser = ns;
        uint32_t *nf = realloc(pl->ser_filled, (pl->nser + 1) * sizeof *nf);
        if (!nf)
            return -1;
        pl->ser_filled = nf;
        int32_t *fr = realloc(pl->ser_free, (pl->nser + 1) * sizeof *fr);
        if (!fr)
            return -1;
        pl->ser_free = fr;
        s = (int32_t)pl->nser++;
    }
    memset(pl->ser[s], 0, sizeof pl->ser[s]);
    pl->ser_filled[s] = 0;
    fill_before(pl, s, t, 0);
    return s;
}

/* ------------------------------------------------------------------ */
/* sites                                                               */
/* ------------------------------------------------------------------ */

static uint64_t str_hash(const char *p, size_t n, uint64_t line)
{
    uint64_t h = 1469598103934665603ull ^ line;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return ms_an_hash64(h);
}

static int feed_site(struct ms_pools *pl, const struct ms_trace_rec *rec)
{
    uint64_t id = rec->u.pool.id, line = rec->u.pool.line;
    struct ms_trace_str f = rec->u.pool.str;
    if (!id || id > (1u << 24)) {
        pl->anomalies++;
        return 0;
    }
    /* the site with this file name and line, or a new one */
    if ((pl->nsites + 1) * 2 > pl->site_hash_cap) {
        size_t nc = pl->site_hash_cap ? pl->site_hash_cap * 2 : 256;
        uint32_t *nh = calloc(nc, sizeof *nh);
        if (!nh)
            return nomem(pl);
        for (size_t i = 1; i < pl->nsites; i++) {
            const struct ms_pools_site *s = &pl->sites[i];
            size_t j = str_hash(s->file, strlen(s->file), s->line) & (nc - 1);
            while (nh[j])
                j = (j + 1) & (nc - 1);
            nh[j] = (uint32_t)i + 1;
        }
        free(pl->site_hash);
        pl->site_hash = nh;
        pl->site_hash_cap = nc;
    }
    size_t j = str_hash(f.p, f.len, line) & (pl->site_hash_cap - 1);
    uint32_t si = 0;
    while (pl->site_hash[j]) {
        const struct ms_pools_site *s = &pl->sites[pl->site_hash[j] - 1];
        if (s->line == line && strlen(s->file) == f.len && !memcmp(s->file, f.p, f.len)) {
            si = pl->site_hash[j] - 1;
            break;
        }
        j = (j + 1) & (pl->site_hash_cap - 1);
    }
    if (!si) {
        if (ms_an_grow((void **)&pl->sites, &pl->capsites, pl->nsites + 1, sizeof *pl->sites) < 0)
            return nomem(pl);
        struct ms_pools_site *s = &pl->sites[pl->nsites];
        memset(s, 0, sizeof *s);
        s->file = malloc(f.len + 1);
        if (!s->file)
            return nomem(pl);
        memcpy(s->file, f.p, f.len);
        s->file[f.len] = 0;
        ms_an_clean(s->file);
        s->line = line;
        si = (uint32_t)pl->nsites++;
        pl->site_hash[j] = si + 1;
    }
    if (id >= pl->nids) {
        size_t nn = pl->nids ? pl->nids : 64;
        while (nn <= id)
            nn *= 2;
        uint32_t *ns = realloc(pl->site_of_id, nn * sizeof *ns);
        if (!ns)
            return nomem(pl);
        memset(ns + pl->nids, 0, (nn - pl->nids) * sizeof *ns);
        pl->site_of_id = ns;
        pl->nids = nn;
    }
    pl->site_of_id[id] = si;
    return 0;
}

static uint32_t site_of(const struct ms_pools *pl, uint64_t id)
{
    return id && id < pl->nids ? pl->site_of_id[id] : 0;
}

/* ------------------------------------------------------------------ */
/* nodes                                                               */
/* ------------------------------------------------------------------ */

static struct ms_pools_node *N(struct ms_pools *pl, int64_t i)
{
    return &pl->nodes[i];
}

/* before a change of node i's bytes, parent or life: keep its state at the
   last peak */
static void touch(struct ms_pools *pl, int64_t i)
{
    struct ms_pools_node *n = N(pl, i);
    if (n->epoch != pl->epoch) {
        n->pk_bytes = n->bytes;
        n->pk_blocks = n->blocks;
        n->pk_parent = n->parent;
        n->epoch = pl->epoch;
    }
}

static void node_release(struct ms_pools *pl, int64_t i)
{
    struct ms_pools_node *n = N(pl, i);
    free(n->name);
    n->name = NULL;
    n->in_grave = 0;
    n->next_free = pl->free_nodes;
    pl->free_nodes = i;
}

/* a new peak: the destroyed pools kept for the old one can go */
static void new_peak(struct ms_pools *pl, uint64_t t)
{
    pl->peak_bytes = pl->bytes;
    pl->peak_blocks = pl->blocks;
    pl->peak_t = t;
    pl->epoch++;
    while (pl->grave >= 0) {
        int64_t g = pl->grave;
        pl->grave = N(pl, g)->next_free;
        node_release(pl, g);
    }
}

/* add (or take away) bytes and blocks in node i's own blocks at time t */
static void add_bytes(struct ms_pools *pl, int64_t i, int64_t db, int64_t dk, uint64_t t)
{
    grid_cover(pl, t);
    fill_before(pl, 0, t, pl->bytes);
    touch(pl, i);
    N(pl, i)->bytes += (uint64_t)db;
    N(pl, i)->blocks += (uint64_t)dk;
    for (int64_t a = i, guard = 0; a >= 0 && guard < 1000000; a = N(pl, a)->parent, guard++) {
        struct ms_pools_node *n = N(pl, a);
        fill_before(pl, n->series, t, n->sub_bytes);
        n->sub_bytes += (uint64_t)db;
        n->sub_blocks += (uint64_t)dk;
        if (n->sub_bytes > n->max_sub_bytes)
            n->max_sub_bytes = n->sub_bytes;
    }
    pl->bytes += (uint64_t)db;
    pl->blocks += (uint64_t)dk;
    if (pl->bytes > pl->peak_bytes)
        new_peak(pl, t);
}

/* take subtree i out of its parent (its bytes leave the ancestors) */
static void detach(struct ms_pools *pl, int64_t i, uint64_t t)
{
    struct ms_pools_node *n = N(pl, i);
    int64_t p = n->parent;
    if (p < 0)
        return;
    touch(pl, i);
    grid_cover(pl, t);
    for (int64_t a = p, guard = 0; a >= 0 && guard < 1000000; a = N(pl, a)->parent, guard++) {
        struct ms_pools_node *x = N(pl, a);
        fill_before(pl, x->series, t, x->sub_bytes);
        x->sub_bytes -= n->sub_bytes;
        x->sub_blocks -= n->sub_blocks;
    }
    if (n->prev_sib >= 0)
        N(pl, n->prev_sib)->next_sib = n->next_sib;
    else
        N(pl, p)->first_child = n->next_sib;
    if (n->next_sib >= 0)
        N(pl, n->next_sib)->prev_sib = n->prev_sib;
    n->prev_sib = n->next_sib = -1;
    n->parent = -1;
}

/* put root i under p (-1: stays a root) */
static void attach(struct ms_pools *pl, int64_t i, int64_t p, uint64_t t)
{
    if (p < 0)
        return;
    struct ms_pools_node *n = N(pl, i);
    touch(pl, i);
    grid_cover(pl, t);
    n->parent = p;
    n->prev_sib = -1;
    n->next_sib = N(pl, p)->first_child;
    if (n->next_sib >= 0)
        N(pl, n->next_sib)->prev_sib = i;
    N(pl, p)->first_child = i;
    for (int64_t a = p, guard = 0; a >= 0 && guard < 1000000; a = N(pl, a)->parent, guard++) {
        struct ms_pools_node *x = N(pl, a);
        fill_before(pl, x->series, t, x->sub_bytes);
        x->sub_bytes += n->sub_bytes;
        x->sub_blocks += n->sub_blocks;
        if (x->sub_bytes > x->max_sub_bytes)
            x->max_sub_bytes = x->sub_bytes;
    }
}

static int64_t node_new(struct ms_pools *pl, uint64_t addr, uint32_t site, uint64_t t, int unknown)
{
    int64_t i;
    if (pl->free_nodes >= 0) {
        i = pl->free_nodes;
        pl->free_nodes = N(pl, i)->next_free;
    } else {
        if (ms_an_grow((void **)&pl->nodes, &pl->capnodes, pl->nnodes + 1, sizeof *pl->nodes) < 0)
            return nomem(pl);
        i = (int64_t)pl->nnodes++;
    }
    if (kv_put(&pl->pmap, &pl->pmap_cap, &pl->pmap_n, addr, (uint64_t)i) < 0)
        return nomem(pl);
    struct ms_pools_node *n = N(pl, i);
    memset(n, 0, sizeof *n);
    n->addr = addr;
    n->id = ++pl->next_id;
    n->parent = n->first_child = n->next_sib = n->prev_sib = -1;
    n->first_blk = -1;
    n->next_free = -1;
    n->pk_parent = -1;
    n->site = site;
    n->t_new = t;
    n->live = 1;
    n->unknown = unknown;
    n->epoch = n->c_epoch = pl->epoch;
    grid_cover(pl, t);
    n->series = series_new(pl, t);
    if (unknown)
        pl->unknown_pools++;
    else
        pl->created++;
    if (site)
        pl->sites[site].pools++;
    return i;
}

/* the live node of pool address addr; a placeholder if the trace never
   created it (inherited at fork, lost events) */
static int64_t pool_get(struct ms_pools *pl, uint64_t addr, uint64_t t)
{
    if (!addr)
        return -1;
    struct ms_pools_kv *e = kv_find(pl->pmap, pl->pmap_cap, addr);
    if (e)
        return (int64_t)e->v;
    return node_new(pl, addr, 0, t, 1);
}

/* ------------------------------------------------------------------ */
/* blocks                                                              */
/* ------------------------------------------------------------------ */

static void blk_unlink(struct ms_pools *pl, int64_t b)
{
    struct ms_pools_blk *x = &pl->blk[b];
    if (x->prev >= 0)
        pl->blk[x->prev].next = x->next;
    else
        N(pl, x->node)->first_blk = x->next;
    if (x->next >= 0)
        pl->blk[x->next].prev = x->prev;
    x->prev = x->next = -1;
}

static void blk_link(struct ms_pools *pl, int64_t b, int64_t node)
{
    struct ms_pools_blk *x = &pl->blk[b];
    x->node = node;
    x->prev = -1;
    x->next = N(pl, node)->first_blk;
    if (x->next >= 0)
        pl->blk[x->next].prev = b;
    N(pl, node)->first_blk = b;
}

/* block b dies (freed alone, resized away or with its pool): out of the maps
   and its site's live figures; no byte accounting of its pool */
static void blk_drop(struct ms_pools *pl, int64_t b, int unlink)
{
    struct ms_pools_blk *x = &pl->blk[b];
    struct ms_pools_kv *e = kv_find(pl->bmap, pl->bmap_cap, x->addr);
    if (e && (int64_t)e->v == b)
        kv_del(pl->bmap, pl->bmap_cap, &pl->bmap_n, e);
    struct ms_pools_site *s = &pl->sites[x->site];
    s->live_bytes -= s->live_bytes >= x->size ? x->size : s->live_bytes;
    s->live_blocks -= s->live_blocks ? 1 : 0;
    if (unlink)
        blk_unlink(pl, b);
    x->addr = 0;
    x->next = pl->free_blk;
    pl->free_blk = b;
}

/* free block b alone at t (its pool's bytes go down) */
static void blk_free(struct ms_pools *pl, int64_t b, uint64_t t)
{
    struct ms_pools_blk *x = &pl->blk[b];
    int64_t node = x->node;
    uint64_t size = x->size;
    blk_drop(pl, b, 1);
    add_bytes(pl, node, -(int64_t)size, -1, t);
}

static int64_t blk_find(struct ms_pools *pl, uint64_t addr)
{
    struct ms_pools_kv *e = kv_find(pl->bmap, pl->bmap_cap, addr);
    return e ? (int64_t)e->v : -1;
}

static int blk_new(struct ms_pools *pl, int64_t node, uint64_t addr, uint64_t size, uint32_t site, uint64_t t)
{
    int64_t b;
    if (pl->free_blk >= 0) {
        b = pl->free_blk;
        pl->free_blk = pl->blk[b].next;
    } else {
        if (ms_an_grow((void **)&pl->blk, &pl->capblk, pl->nblk + 1, sizeof *pl->blk) < 0)
            return nomem(pl);
        b = (int64_t)pl->nblk++;
    }
    if (kv_put(&pl->bmap, &pl->bmap_cap, &pl->bmap_n, addr, (uint64_t)b) < 0)
        return nomem(pl);
    struct ms_pools_blk *x = &pl->blk[b];
    x->addr = addr;
    x->size = size;
    x->site = site;
    blk_link(pl, b, node);
    struct ms_pools_site *s = &pl->sites[site];
    s->allocs++;
    s->alloc_bytes += size;
    s->live_bytes += size;
    s->live_blocks++;
    struct ms_pools_node *n = N(pl, node);
    n->allocs++;
    n->alloc_bytes += size;
    pl->allocs++;
    pl->alloc_bytes += size;
    add_bytes(pl, node, (int64_t)size, 1, t);
    return 0;
}

/* ------------------------------------------------------------------ */
/* records                                                             */
/* ------------------------------------------------------------------ */

static void destroy(struct ms_pools *pl, int64_t i, uint64_t t, uint32_t site)
{
    struct ms_pools_node *n = N(pl, i);
    /* children left (events lost): they become roots */
    while (n->first_child >= 0) {
        pl->anomalies++;
        detach(pl, n->first_child, t);
        n = N(pl, i);
    }
    uint64_t bytes = n->bytes, blocks = n->blocks;
    for (int64_t b = n->first_blk, nx; b >= 0; b = nx) {
        nx = pl->blk[b].next;
        pl->sites[pl->blk[b].site].frees++;
        blk_drop(pl, b, 0);
    }
    n = N(pl, i);
    n->first_blk = -1;
    if (bytes || blocks)
        add_bytes(pl, i, -(int64_t)bytes, -(int64_t)blocks, t);
    detach(pl, i, t);
    touch(pl, i);
    n = N(pl, i);
    n->live = 0;
    n->t_destroy = t;
    n->destroy_site = site;
    struct ms_pools_kv *e = kv_find(pl->pmap, pl->pmap_cap, n->addr);
    if (e && (int64_t)e->v == i)
        kv_del(pl->pmap, pl->pmap_cap, &pl->pmap_n, e);
    if (n->series >= 0) {
        pl->ser_free[pl->nser_free++] = n->series;
        n->series = -1;
    }
    pl->destroyed++;
    if (n->c_epoch < pl->epoch) { /* it existed at the current peak: keep it for that tree */
        n->in_grave = 1;
        n->next_free = pl->grave;
        pl->grave = i;
    } else {
        node_release(pl, i);
    }
}

static int is_below(struct ms_pools *pl, int64_t x, int64_t top)
{
    for (int guard = 0; x >= 0 && guard < 1000000; x = N(pl, x)->parent, guard++)
        if (x == top)
            return 1;
    return 0;
}

static int feed(struct ms_pools *pl, const struct ms_trace_rec *rec)
{
    const uint64_t t = rec->t;
    if (rec->has_time && t > pl->last_t)
        pl->last_t = t;
    if (rec->type != MS_REC_POOL_SITE)
        pl->events++;
    switch (rec->type) {
    case MS_REC_POOL_SITE:
        return feed_site(pl, rec);
    case MS_REC_POOL_NEW: {
        if (!rec->u.pool.pool) {
            pl->anomalies++;
            return 0;
        }
        struct ms_pools_kv *e = kv_find(pl->pmap, pl->pmap_cap, rec->u.pool.pool);
        if (e) { /* its POOL_DESTROY went missing */
            pl->anomalies++;
            destroy(pl, (int64_t)e->v, t, 0);
        }
        int64_t parent = rec->u.pool.parent ? pool_get(pl, rec->u.pool.parent, t) : -1;
        if (pl->nomem)
            return -1;
        uint32_t site = site_of(pl, rec->u.pool.site);
        int64_t i = node_new(pl, rec->u.pool.pool, site, t, 0);
        if (i < 0)
            return -1;
        if (rec->u.pool.inherited) { /* a forked child's: created in the parent */
            N(pl, i)->inherited = 1;
            pl->created--;
            pl->inherited_pools++;
            if (site)
                pl->sites[site].pools--;
        }
        attach(pl, i, parent, t);
        return 0;
    }
    case MS_REC_POOL_NAME: {
        int64_t i = pool_get(pl, rec->u.pool.pool, t);
        if (i < 0)
            return pl->nomem ? -1 : 0;
        struct ms_pools_node *n = N(pl, i);
        free(n->name);
        n->name = NULL;
        if (rec->u.pool.str.len) {
            n->name = malloc(rec->u.pool.str.len + 1);
            if (!n->name)
                return nomem(pl);
            memcpy(n->name, rec->u.pool.str.p, rec->u.pool.str.len);
            n->name[rec->u.pool.str.len] = 0;
            ms_an_clean(n->name);
        }
        return 0;
    }
    case MS_REC_POOL_DESTROY: {
        struct ms_pools_kv *e = kv_find(pl->pmap, pl->pmap_cap, rec->u.pool.pool);
        if (!e) {
            pl->anomalies++;
            return 0;
        }
        destroy(pl, (int64_t)e->v, t, site_of(pl, rec->u.pool.site));
        return 0;
    }
    case MS_REC_POOL_ALLOC: {
        int64_t i = pool_get(pl, rec->u.pool.pool, t);
        if (i < 0 || !rec->u.pool.addr)
            return pl->nomem ? -1 : (pl->anomalies++, 0);
        uint32_t site = site_of(pl, rec->u.pool.site);
        if (rec->u.pool.old_addr) {
            int64_t ob = blk_find(pl, rec->u.pool.old_addr);
            pl->reallocs++;
            pl->sites[site].reallocs++;
            if (ob >= 0) {
                int64_t on = pl->blk[ob].node;
                uint64_t osz = pl->blk[ob].size;
                blk_drop(pl, ob, 1);
                add_bytes(pl, on, -(int64_t)osz, -1, t);
            } else {
                pl->anomalies++;
            }
        }
        int64_t b = blk_find(pl, rec->u.pool.addr);
        if (b >= 0) { /* a FREE that raced with this reuse of the address comes later */
            pl->anomalies++;
            blk_free(pl, b, t);
        }
        return blk_new(pl, i, rec->u.pool.addr, rec->u.pool.size, site, t);
    }
    case MS_REC_POOL_FREE: {
        int64_t b = blk_find(pl, rec->u.pool.addr);
        struct ms_pools_kv *e = kv_find(pl->pmap, pl->pmap_cap, rec->u.pool.pool);
        if (b < 0 || (e && pl->blk[b].node != (int64_t)e->v)) {
            pl->anomalies++;
            return 0;
        }
        pl->frees++;
        N(pl, pl->blk[b].node)->frees++;
        pl->sites[pl->blk[b].site].frees++;
        blk_free(pl, b, t);
        return 0;
    }
    case MS_REC_POOL_MOVE: {
        int64_t to = rec->u.pool.to ? pool_get(pl, rec->u.pool.to, t) : -1;
        if (pl->nomem)
            return -1;
        if (rec->u.pool.what == 0) { /* a block */
            int64_t b = blk_find(pl, rec->u.pool.obj);
            if (b < 0 || to < 0) {
                pl->anomalies++;
                return 0;
            }
            pl->moves++;
            int64_t from = pl->blk[b].node;
            if (from == to)
                return 0;
            uint64_t size = pl->blk[b].size;
            blk_unlink(pl, b);
            add_bytes(pl, from, -(int64_t)size, -1, t);
            blk_link(pl, b, to);
            add_bytes(pl, to, (int64_t)size, 1, t);
            return 0;
        }
        int64_t i = pool_get(pl, rec->u.pool.obj, t);
        if (i < 0)
            return pl->nomem ? -1 : 0;
        pl->pool_moves++;
        if (to >= 0 && is_below(pl, to, i)) {
            pl->anomalies++;
            return 0;
        }
        detach(pl, i, t);
        attach(pl, i, to, t);
        return 0;
    }
    case MS_REC_POOL_CLAIM: {
        uint64_t what = rec->u.pool.what;
        if (what & 2)
            pl->releases++;
        else
            pl->adopts++;
        if (what & 1) {
            struct ms_pools_kv *e = kv_find(pl->pmap, pl->pmap_cap, rec->u.pool.obj);
            if (e) {
                struct ms_pools_node *n = N(pl, (int64_t)e->v);
                if (what & 2)
                    n->claims -= n->claims ? 1 : 0;
                else
                    n->claims++;
            }
        }
        return 0;
    }
    default:
        return 0;
    }
}

int ms_pools_tap(const struct ms_trace_rec *rec, void *arg)
{
    struct ms_pools *pl = arg;
    pl->records++;
    if (!pl->nomem && !pl->finished)
        feed(pl, rec);
    return 1;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

struct ms_pools *ms_pools_new(void)
{
    struct ms_pools *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->free_nodes = pl->grave = pl->free_blk = -1;
    pl->w = 1;
    pl->sites = calloc(16, sizeof *pl->sites);
    pl->capsites = 16;
    pl->nsites = 1; /* [0]: unknown site */
    pl->sites[0].file = strdup("?");
    if (!pl->sites || !pl->sites[0].file || series_new(pl, 0) != 0) {
        ms_pools_free(pl);
        return NULL;
    }
    return pl;
}

void ms_pools_free(struct ms_pools *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < pl->nnodes; i++)
        free(pl->nodes[i].name);
    free(pl->nodes);
    free(pl->pmap);
    free(pl->blk);
    free(pl->bmap);
    for (size_t i = 0; pl->sites && i < pl->nsites; i++)
        free(pl->sites[i].file);
    free(pl->sites);
    free(pl->site_of_id);
    free(pl->site_hash);
    free(pl->ser);
    free(pl->ser_filled);
    free(pl->ser_free);
    free(pl->end_tree);
    free(pl->peak_tree);
    free(pl->leaks);
    free(pl->site_order);
    free(pl);
}

int ms_pools_any(const struct ms_pools *pl)
{
    return pl && pl->records > 0;
}

int ms_pools_node_samples(const struct ms_pools *pl, size_t node, uint64_t *out)
{
    int32_t s = node < pl->nnodes ? pl->nodes[node].series : -1;
    if (s < 0 || !pl->finished) {
        memset(out, 0, MS_MODEL_SAMPLES * sizeof *out);
        return 0;
    }
    for (int i = 0; i < MS_MODEL_SAMPLES; i++)
        out[i] = pl->ser[s][pl->sample_cell[i] - 1];
    return 1;
}

/* ------------------------------------------------------------------ */
/* finish: trees, leaks, sites                                         */
/* ------------------------------------------------------------------ */

/* Flatten the tree of the nodes with in[i] set, parent par[i], own bytes
   own[i] / blocks ownk[i]: pre-order, children by subtree bytes. */
static const uint64_t *sort_sub;
static const struct ms_pools_node *sort_nodes;
static int child_cmp(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    if (sort_sub[a] != sort_sub[b])
        return sort_sub[a] > sort_sub[b] ? -1 : 1;
    return sort_nodes[a].id < sort_nodes[b].id ? -1 : sort_nodes[a].id > sort_nodes[b].id;
}

static int flatten(struct ms_pools *pl, const unsigned char *in, const int64_t *par, const uint64_t *own,
                   const uint64_t *ownk, struct ms_pools_flat **out, size_t *nout)
{
    size_t n = pl->nnodes;
    int ret = -1;
    size_t *cnt = calloc(n + 1, sizeof *cnt), *kids = calloc(n + 1, sizeof *kids);
    size_t *order = calloc(n + 1, sizeof *order), *stack = calloc(n + 1, sizeof *stack);
    uint64_t *sub = calloc(n + 1, sizeof *sub), *subk = calloc(n + 1, sizeof *subk);
    uint64_t *subp = calloc(n + 1, sizeof *subp);
    unsigned *depth = calloc(n + 1, sizeof *depth);
    struct ms_pools_flat *fl = calloc(n + 1, sizeof *fl);
    int64_t *pos = calloc(n + 1, sizeof *pos);
    if (!cnt || !kids || !order || !stack || !sub || !subk || !subp || !depth || !fl || !pos)
        goto done;
    /* children in CSR: cnt[p] = first index in kids (roots under n) */
    size_t *deg = calloc(n + 2, sizeof *deg);
    if (!deg)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (in[i]) {
            int64_t p = par[i];
            deg[(p >= 0 && in[p]) ? (size_t)p : n]++;
        }
    size_t acc = 0;
    for (size_t i = 0; i <= n; i++) {
        cnt[i] = acc;
        acc += deg[i];
        deg[i] = cnt[i];
    }
    for (size_t i = 0; i < n; i++)
        if (in[i]) {
            int64_t p = par[i];
            kids[deg[(p >= 0 && in[p]) ? (size_t)p : n]++] = i;
        }
    free(deg);
#define KBEG(p) cnt[p]
#define KEND(p) ((p) < n ? cnt[(p) + 1] : acc)
    /* pre-order from the roots (unsorted), then sums in reverse */
    size_t no = 0, sp = 0;
    for (size_t k = KBEG(n); k < KEND(n); k++)
        stack[sp++] = kids[k];
    while (sp) {
        size_t x = stack[--sp];
        order[no++] = x;
        for (size_t k = KBEG(x); k < KEND(x) && sp < n + 1; k++)
            stack[sp++] = kids[k];
    }
    for (size_t k = no; k-- > 0;) {
        size_t x = order[k];
        sub[x] += own[x];
        subk[x] += ownk[x];
        subp[x] += 1;
        int64_t p = par[x];
        if (p >= 0 && in[p]) {
            sub[p] += sub[x];
            subk[p] += subk[x];
            subp[p] += subp[x];
        }
    }
    /* sort each child list, then the pre-order again */
    sort_sub = sub;
    sort_nodes = pl->nodes;
    for (size_t p = 0; p <= n; p++)
        if (KEND(p) > KBEG(p) + 1)
            qsort(kids + KBEG(p), KEND(p) - KBEG(p), sizeof *kids, child_cmp);
    no = sp = 0;
    for (size_t k = KEND(n); k-- > KBEG(n);)
        stack[sp++] = kids[k];
    while (sp) {
        size_t x = stack[--sp];
        int64_t p = par[x];
        int inp = p >= 0 && in[p];
        depth[x] = inp ? depth[p] + 1 : 0;
        pos[x] = (int64_t)no;
        struct ms_pools_flat *f = &fl[no++];
        f->node = x;
        f->parent_pos = inp ? pos[p] : -1;
        f->depth = depth[x];
        f->bytes = own[x];
        f->blocks = ownk[x];
        f->sub_bytes = sub[x];
        f->sub_blocks = subk[x];
        f->sub_pools = subp[x];
        f->children = KEND(x) - KBEG(x);
        for (size_t k = KEND(x); k-- > KBEG(x) && sp < n + 1;)
            stack[sp++] = kids[k];
    }
#undef KBEG
#undef KEND
    *out = fl;
    *nout = no;
    fl = NULL;
    ret = 0;
done:
    free(cnt);
    free(kids);
    free(order);
    free(stack);
    free(sub);
    free(subk);
    free(subp);
    free(depth);
    free(fl);
    free(pos);
    return ret == 0 ? 0 : nomem(pl);
}

static const struct ms_pools *cmp_pl;
static int site_cmp(const void *x, const void *y)
{
    const struct ms_pools_site *a = &cmp_pl->sites[*(const size_t *)x], *b = &cmp_pl->sites[*(const size_t *)y];
    if (a->allocs != b->allocs)
        return a->allocs > b->allocs ? -1 : 1;
    if (a->alloc_bytes != b->alloc_bytes)
        return a->alloc_bytes > b->alloc_bytes ? -1 : 1;
    int c = strcmp(a->file, b->file);
    return c ? c : a->line < b->line ? -1 : a->line > b->line;
}

static int leak_cmp(const void *x, const void *y)
{
    const struct ms_pools_leak *a = x, *b = y;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return a->first_id < b->first_id ? -1 : a->first_id > b->first_id;
}

void ms_pools_finish(struct ms_pools *pl, const struct ms_model *m)
{
    if (!pl || pl->finished)
        return;
    pl->finished = 1;
    /* samples */
    uint64_t T = m ? m->t_samples : 0;
    if (pl->last_t > T)
        T = pl->last_t;
    pl->t_samples = T;
    grid_cover(pl, T);
    uint64_t n = T ? (T - 1) / pl->w + 1 : 1;
    if (n > GRID)
        n = GRID;
    fill_to(pl, 0, n, pl->bytes);
    for (size_t i = 0; i < pl->nnodes; i++)
        if (pl->nodes[i].live && pl->nodes[i].series >= 0)
            fill_to(pl, pl->nodes[i].series, n, pl->nodes[i].sub_bytes);
    for (int i = 0; i < MS_MODEL_SAMPLES; i++) {
        uint64_t c = ((uint64_t)(i + 1) * n + MS_MODEL_SAMPLES - 1) / MS_MODEL_SAMPLES;
        if (c < 1)
            c = 1;
        pl->sample_cell[i] = (uint32_t)c;
        uint64_t ct = c * pl->w;
        pl->sample_t[i] = ct < T ? ct : T;
        pl->sample_bytes[i] = pl->ser[0][c - 1];
    }
    pl->end_state = !m                 ? "never freed"
                    : m->have_end      ? "never freed"
                    : m->ended_by_exec ? "live at exec"
                                       : "live at end of trace";
    if (pl->nomem)
        return;
    size_t nn = pl->nnodes;
    unsigned char *in = calloc(nn + 1, 1);
    int64_t *par = calloc(nn + 1, sizeof *par);
    uint64_t *own = calloc(nn + 1, sizeof *own), *ownk = calloc(nn + 1, sizeof *ownk);
    if (!in || !par || !own || !ownk) {
        nomem(pl);
        goto out;
    }
    /* the tree at the end */
    for (size_t i = 0; i < nn; i++) {
        const struct ms_pools_node *x = &pl->nodes[i];
        in[i] = (unsigned char)(x->live != 0);
        par[i] = x->parent;
        own[i] = x->bytes;
        ownk[i] = x->blocks;
        pl->live_pools += x->live != 0;
    }
    if (flatten(pl, in, par, own, ownk, &pl->end_tree, &pl->nend) < 0)
        goto out;
    /* the tree at the peak: pools created before it, live then */
    if (pl->epoch) {
        for (size_t i = 0; i < nn; i++) {
            struct ms_pools_node *x = &pl->nodes[i];
            int exists = (x->live || x->in_grave) && x->c_epoch < pl->epoch;
            in[i] = (unsigned char)exists;
            if (!exists)
                continue;
            if (x->epoch != pl->epoch) {
                x->pk_bytes = x->bytes;
                x->pk_blocks = x->blocks;
                x->pk_parent = x->parent;
                x->epoch = pl->epoch;
            }
            par[i] = x->pk_parent;
            own[i] = x->pk_bytes;
            ownk[i] = x->pk_blocks;
        }
        if (flatten(pl, in, par, own, ownk, &pl->peak_tree, &pl->npeak) < 0)
            goto out;
    }
    /* leaks: the roots at the end, by creation site and name */
    for (size_t k = 0; k < pl->nend; k++) {
        const struct ms_pools_flat *f = &pl->end_tree[k];
        if (f->depth)
            continue;
        const struct ms_pools_node *x = &pl->nodes[f->node];
        size_t g;
        for (g = 0; g < pl->nleaks; g++) {
            const struct ms_pools_leak *l = &pl->leaks[g];
            if (l->site == x->site && l->unknown == x->unknown && l->inherited == x->inherited &&
                ((!l->name && !x->name) || (l->name && x->name && !strcmp(l->name, x->name))))
                break;
        }
        if (g == pl->nleaks) {
            struct ms_pools_leak *nl = realloc(pl->leaks, (pl->nleaks + 1) * sizeof *nl);
            if (!nl) {
                nomem(pl);
                goto out;
            }
            pl->leaks = nl;
            memset(&nl[g], 0, sizeof nl[g]);
            nl[g].site = x->site;
            nl[g].name = x->name;
            nl[g].first_id = x->id;
            nl[g].unknown = x->unknown;
            nl[g].inherited = x->inherited;
            pl->nleaks++;
        }
        struct ms_pools_leak *l = &pl->leaks[g];
        l->allocators++;
        l->bytes += f->sub_bytes;
        l->blocks += f->sub_blocks;
        l->pools += f->sub_pools;
        if (x->id < l->first_id)
            l->first_id = x->id;
    }
    if (pl->nleaks > 1)
        qsort(pl->leaks, pl->nleaks, sizeof *pl->leaks, leak_cmp);
    /* sites, most allocations first */
    pl->site_order = malloc(pl->nsites * sizeof *pl->site_order);
    if (!pl->site_order) {
        nomem(pl);
        goto out;
    }
    for (size_t i = 1; i < pl->nsites; i++)
        if (pl->sites[i].allocs || pl->sites[i].pools)
            pl->site_order[pl->nsite_order++] = i;
    cmp_pl = pl;
    if (pl->nsite_order > 1)
        qsort(pl->site_order, pl->nsite_order, sizeof *pl->site_order, site_cmp);
out:
    free(in);
    free(par);
    free(own);
    free(ownk);
}

/* ------------------------------------------------------------------ */
/* text                                                                */
/* ------------------------------------------------------------------ */

static const char *pl_s(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* file:line for the text: the file's base name (JSON has the whole string) */
static const char *base_name(const char *f)
{
    const char *b = strrchr(f, '/');
    return b && b[1] ? b + 1 : f;
}

static void site_text(const struct ms_pools *pl, uint32_t site, char *buf, size_t n)
{
    if (!site)
        snprintf(buf, n, "?");
    else
        snprintf(buf, n, "%s:%llu", base_name(pl->sites[site].file), (unsigned long long)pl->sites[site].line);
}

static void node_label(const struct ms_pools *pl, const struct ms_pools_node *x, char *buf, size_t n)
{
    char s[600];
    site_text(pl, x->site, s, sizeof s);
    if (x->unknown)
        snprintf(buf, n, "#%llu (created before the trace)", (unsigned long long)x->id);
    else
        snprintf(buf, n, "#%llu %s%s%s%s", (unsigned long long)x->id, x->name ? x->name : "",
                 x->name ? " " : "", s, x->inherited ? " (inherited)" : "");
}

/* 16 columns from 64 samples: the highest of each 4 */
static void spark16(FILE *o, const uint64_t *v)
{
    uint64_t w[16];
    for (int i = 0; i < 16; i++) {
        w[i] = 0;
        for (int k = 0; k < 4; k++)
            if (v[4 * i + k] > w[i])
                w[i] = v[4 * i + k];
    }
    ms_an_sparkline(o, w, 16);
}

/* the tree: one line per pool; siblings of one site and name after the
   first are folded into one "+ N more" line */
static void tree_text(FILE *o, const struct ms_pools *pl, const struct ms_pools_flat *fl, size_t nf, int curves,
                      size_t max_lines)
{
    char a[64], b[64], lab[800], line[1200];
    size_t lines = 0;
    if (curves)
        fprintf(o, "    %-42s %-17s %-14s %s\n", "allocator (name, created at)", "subtree B/blocks", "own",
                "subtree over time");
    else
        fprintf(o, "    %-42s %-17s %s\n", "allocator (name, created at)", "subtree B/blocks", "own");
    for (size_t k = 0; k < nf; k++) {
        const struct ms_pools_flat *f = &fl[k];
        const struct ms_pools_node *x = &pl->nodes[f->node];
        /* fold: a later sibling with the same site and name as an earlier one */
        if (k > 0) {
            int folded = 0;
            for (size_t j = k; j-- > 0;) {
                if (fl[j].depth < f->depth)
                    break;
                if (fl[j].depth == f->depth && fl[j].parent_pos == f->parent_pos) {
                    const struct ms_pools_node *y = &pl->nodes[fl[j].node];
                    if (y->site == x->site && !y->unknown && !x->unknown &&
                        ((!y->name && !x->name) || (y->name && x->name && !strcmp(y->name, x->name)))) {
                        folded = 1;
                        break;
                    }
                }
            }
            if (folded) /* counted in the "+ N more" line of the first of its kind */
                continue;
        }
        if (lines >= max_lines) {
            fprintf(o, "    ... (%zu more allocators; --format=json lists them)\n", nf - k);
            return;
        }
        lines++;
        /* siblings folded into this one */
        uint64_t more = 0, mb = 0, mk = 0;
        for (size_t j = k + 1; j < nf && fl[j].depth >= f->depth; j++) {
            if (fl[j].depth != f->depth || fl[j].parent_pos != f->parent_pos)
                continue;
            const struct ms_pools_node *y = &pl->nodes[fl[j].node];
            if (y->site == x->site && !y->unknown && !x->unknown &&
                ((!y->name && !x->name) || (y->name && x->name && !strcmp(y->name, x->name)))) {
                more++;
                mb += fl[j].sub_bytes;
                mk += fl[j].sub_blocks;
            }
        }
        node_label(pl, x, lab, sizeof lab);
        snprintf(line, sizeof line, "%*s%s", (int)(2 * (f->depth > 10 ? 10 : f->depth)), "", lab);
        ms_an_fit(line, 42);
        char sb[64], ob[64];
        snprintf(sb, sizeof sb, "%s/%s", ms_an_bytes(a, sizeof a, f->sub_bytes), ms_an_count(b, sizeof b, f->sub_blocks));
        snprintf(ob, sizeof ob, "%s/%s", ms_an_bytes(a, sizeof a, f->bytes), ms_an_count(b, sizeof b, f->blocks));
        if (curves)
            fprintf(o, "    %-42s %-17s %-14s", line, sb, ob);
        else
            fprintf(o, "    %-42s %-17s %s", line, sb, ob);
        if (curves) {
            uint64_t v[MS_MODEL_SAMPLES];
            if (ms_pools_node_samples(pl, f->node, v)) {
                fputs(" |", o);
                spark16(o, v);
                fputc('|', o);
            }
        }
        fputc('\n', o);
        if (more) {
            snprintf(line, sizeof line, "%*s+ %llu more like it", (int)(2 * (f->depth > 10 ? 10 : f->depth)), "",
                     (unsigned long long)more);
            snprintf(sb, sizeof sb, "%s/%s", ms_an_bytes(a, sizeof a, mb), ms_an_count(b, sizeof b, mk));
            fprintf(o, "    %-42s %-17s\n", line, sb);
            lines++;
        }
    }
}

void ms_pools_text(FILE *o, const struct ms_pools *pl, int top)
{
    if (!ms_pools_any(pl))
        return;
    char a[64], b[64], c[64], d[64], s[700], line[1400];
    if (top < 1)
        top = 10;
    fprintf(o, "  Pools (libmemsleuth_pool)\n");
    fprintf(o, "    allocators %s created, %s destroyed, %s live at the end", ms_an_count(a, sizeof a, pl->created),
            ms_an_count(b, sizeof b, pl->destroyed), ms_an_count(c, sizeof c, pl->live_pools));
    if (pl->unknown_pools)
        fprintf(o, " (%s created before the trace)", ms_an_count(d, sizeof d, pl->unknown_pools));
    if (pl->inherited_pools)
        fprintf(o, " (%s inherited at fork)", ms_an_count(d, sizeof d, pl->inherited_pools));
    fputc('\n', o);
    fprintf(o, "    blocks     %s allocations (%s), %s reallocs, %s frees alone", ms_an_count(a, sizeof a, pl->allocs),
            ms_an_bytes(b, sizeof b, pl->alloc_bytes), ms_an_count(c, sizeof c, pl->reallocs),
            ms_an_count(d, sizeof d, pl->frees));
    if (pl->moves || pl->pool_moves)
        fprintf(o, ", %llu moved, %llu pools moved", (unsigned long long)pl->moves, (unsigned long long)pl->pool_moves);
    if (pl->adopts)
        fprintf(o, ", %llu adopted", (unsigned long long)pl->adopts);
    fputc('\n', o);
    fprintf(o, "    peak       %s in %s block%s at %s; at the end %s in %s block%s\n",
            ms_an_bytes(a, sizeof a, pl->peak_bytes), ms_an_count(b, sizeof b, pl->peak_blocks), pl_s(pl->peak_blocks),
            ms_an_time(c, sizeof c, pl->peak_t), ms_an_bytes(d, sizeof d, pl->bytes),
            ms_an_count(s, sizeof s, pl->blocks), pl_s(pl->blocks));
    fprintf(o, "    memory     |");
    ms_an_sparkline(o, pl->sample_bytes, MS_MODEL_SAMPLES);
    uint64_t mx = 0;
    for (int k = 0; k < MS_MODEL_SAMPLES; k++)
        if (pl->sample_bytes[k] > mx)
            mx = pl->sample_bytes[k];
    fprintf(o, "| max %s\n", ms_an_bytes(a, sizeof a, mx));
    if (pl->nomem)
        fprintf(o, "    (out of memory while reading the pool records: figures are partial)\n");
    if (pl->anomalies)
        fprintf(o, "    (%llu pool records did not match the replay: lost events?)\n", (unsigned long long)pl->anomalies);
    /* leaks */
    if (pl->nleaks) {
        fprintf(o, "  Pool leaks: allocators %s (each with its whole subtree)\n", pl->end_state);
        for (size_t k = 0; k < pl->nleaks && k < (size_t)top; k++) {
            const struct ms_pools_leak *l = &pl->leaks[k];
            site_text(pl, l->site, s, sizeof s);
            if (l->unknown)
                snprintf(s, sizeof s, "?, before the trace (inherited at fork?)");
            else if (l->inherited && strlen(s) < sizeof s - 40)
                strcat(s, " (inherited at fork)");
            snprintf(line, sizeof line, "    %s%s%s created at %s: %s in %s block%s, %s allocator%s",
                     l->allocators > 1 ? ms_an_count(d, sizeof d, l->allocators) : "",
                     l->allocators > 1 ? " x " : "", l->name ? l->name : "allocator", s,
                     ms_an_bytes(a, sizeof a, l->bytes), ms_an_count(b, sizeof b, l->blocks), pl_s(l->blocks),
                     ms_an_count(c, sizeof c, l->pools), pl_s(l->pools));
            ms_an_fit(line, 100);
            fprintf(o, "%s\n", line);
        }
        if (pl->nleaks > (size_t)top)
            fprintf(o, "    ... %zu more\n", pl->nleaks - (size_t)top);
    }
    /* trees */
    if (pl->nend) {
        fprintf(o, "  Pool tree at the end\n");
        tree_text(o, pl, pl->end_tree, pl->nend, 1, (size_t)top * 3);
    }
    if (pl->npeak) {
        fprintf(o, "  Pool tree at the peak (%s)\n", ms_an_time(a, sizeof a, pl->peak_t));
        tree_text(o, pl, pl->peak_tree, pl->npeak, 0, (size_t)top * 3);
    }
    /* sites */
    size_t nalloc_sites = 0;
    for (size_t k = 0; k < pl->nsite_order; k++)
        nalloc_sites += pl->sites[pl->site_order[k]].allocs != 0;
    if (nalloc_sites) { /* (creation-only sites are in the trees) */
        fprintf(o, "  Pool allocation sites (most allocations first)\n");
        fprintf(o, "    %12s %11s %11s %11s  %s\n", "allocations", "bytes", "live bytes", "allocators", "site");
        for (size_t k = 0; k < nalloc_sites && k < (size_t)top; k++) {
            const struct ms_pools_site *si = &pl->sites[pl->site_order[k]];
            snprintf(s, sizeof s, "%s:%llu", base_name(si->file), (unsigned long long)si->line);
            ms_an_fit(s, 48);
            fprintf(o, "    %12s %11s %11s %11s  %s\n", ms_an_count(a, sizeof a, si->allocs),
                    ms_an_bytes(b, sizeof b, si->alloc_bytes), ms_an_bytes(c, sizeof c, si->live_bytes),
                    ms_an_count(d, sizeof d, si->pools), s);
        }
        if (nalloc_sites > (size_t)top)
            fprintf(o, "    ... %zu more sites\n", nalloc_sites - (size_t)top);
    }
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

static void json_site_ref(FILE *o, const struct ms_pools *pl, uint32_t site)
{
    if (!site) {
        fputs("\"file\": null, \"line\": null", o);
        return;
    }
    fputs("\"file\": ", o);
    ms_an_json_str(o, pl->sites[site].file);
    fprintf(o, ", \"line\": %llu", (unsigned long long)pl->sites[site].line);
}

static void json_tree(FILE *o, const struct ms_pools *pl, const struct ms_pools_flat *fl, size_t nf, int end)
{
    fputc('[', o);
    for (size_t k = 0; k < nf && k < MS_POOLS_JSON_NODES; k++) {
        const struct ms_pools_flat *f = &fl[k];
        const struct ms_pools_node *x = &pl->nodes[f->node];
        fprintf(o, "%s{\"id\": %llu, \"address\": \"0x%llx\", \"parent\": ", k ? ",\n      " : "\n      ",
                (unsigned long long)x->id, (unsigned long long)x->addr);
        if (f->parent_pos >= 0)
            fprintf(o, "%llu", (unsigned long long)pl->nodes[fl[f->parent_pos].node].id);
        else
            fputs("null", o);
        fprintf(o, ", \"depth\": %u, \"name\": ", f->depth);
        ms_an_json_str(o, x->name);
        fputs(", ", o);
        json_site_ref(o, pl, x->site);
        fprintf(o, ", \"unknown_origin\": %s, \"inherited\": %s, \"created_ns\": %llu, \"bytes\": %llu, "
                   "\"blocks\": %llu, \"subtree_bytes\": %llu, \"subtree_blocks\": %llu, \"subtree_allocators\": %llu, "
                   "\"children\": %llu",
                x->unknown ? "true" : "false", x->inherited ? "true" : "false", (unsigned long long)x->t_new, (unsigned long long)f->bytes,
                (unsigned long long)f->blocks, (unsigned long long)f->sub_bytes, (unsigned long long)f->sub_blocks,
                (unsigned long long)f->sub_pools, (unsigned long long)f->children);
        if (end) {
            fprintf(o, ", \"adopters\": %llu, \"allocations\": %llu, \"allocated_bytes\": %llu, \"frees\": %llu, "
                       "\"max_subtree_bytes\": %llu, \"samples\": ",
                    (unsigned long long)x->claims, (unsigned long long)x->allocs,
                    (unsigned long long)x->alloc_bytes, (unsigned long long)x->frees,
                    (unsigned long long)x->max_sub_bytes);
            uint64_t v[MS_MODEL_SAMPLES];
            if (ms_pools_node_samples(pl, f->node, v)) {
                fputc('[', o);
                for (int i = 0; i < MS_MODEL_SAMPLES; i++)
                    fprintf(o, "%s%llu", i ? ", " : "", (unsigned long long)v[i]);
                fputc(']', o);
            } else {
                fputs("null", o);
            }
        }
        fputc('}', o);
    }
    fputc(']', o);
}

static const char pools_definitions[] =
    "{\"bytes\": \"requested bytes of an allocator's own live blocks; subtree_*: it and every "
    "allocator below it\", "
    "\"peak_bytes\": \"the maximum of all allocators' bytes (records applied in file order: one "
    "stream in program order), first reached at peak_time_ns; tree_at_peak is the tree then\", "
    "\"memory_over_time\": \"64 samples of the total (and, in tree_at_end, of each allocator's "
    "subtree_bytes), same grid as the process's memory_over_time, from 0 to samples_end_ns\", "
    "\"sites\": \"file:line of the calls (merged by file name and line), most allocations first; "
    "a realloc counts as an allocation; frees: blocks of the site freed alone or with their "
    "allocator\", "
    "\"leaks\": \"allocators never destroyed, reported once each at their creation site with "
    "their whole subtree (only those without a parent: every live allocator is inside one), "
    "grouped by creation site and name\", "
    "\"inherited\": \"created before a fork, in the parent: a forked child's trace names the pools it "
    "inherited (their creation site, name and tree; their blocks from before the fork are not in "
    "the child's trace); allocators_inherited counts them, allocators_created does not\"}";

void ms_pools_json(FILE *o, const struct ms_pools *pl)
{
    if (!ms_pools_any(pl)) {
        fputs("null", o);
        return;
    }
    fprintf(o, "{\"definitions\": %s,\n     \"records\": %llu, \"incomplete\": %s, \"unmatched_records\": %llu, "
               "\"allocators_created\": %llu, \"allocators_destroyed\": %llu, \"allocators_live\": %llu, "
               "\"allocators_unknown_origin\": %llu, \"allocators_inherited\": %llu, \"allocations\": %llu, "
               "\"allocated_bytes\": %llu, "
               "\"reallocs\": %llu, \"frees\": %llu, \"blocks_moved\": %llu, \"allocators_moved\": %llu, "
               "\"adoptions\": %llu, \"releases\": %llu, \"peak_bytes\": %llu, \"peak_blocks\": %llu, "
               "\"peak_time_ns\": %llu, \"end_bytes\": %llu, \"end_blocks\": %llu, \"end_state\": ",
            pools_definitions, (unsigned long long)pl->records, pl->nomem ? "true" : "false",
            (unsigned long long)pl->anomalies, (unsigned long long)pl->created, (unsigned long long)pl->destroyed,
            (unsigned long long)pl->live_pools, (unsigned long long)pl->unknown_pools,
            (unsigned long long)pl->inherited_pools, (unsigned long long)pl->allocs,
            (unsigned long long)pl->alloc_bytes, (unsigned long long)pl->reallocs,
            (unsigned long long)pl->frees, (unsigned long long)pl->moves, (unsigned long long)pl->pool_moves,
            (unsigned long long)pl->adopts, (unsigned long long)pl->releases, (unsigned long long)pl->peak_bytes,
            (unsigned long long)pl->peak_blocks, (unsigned long long)pl->peak_t, (unsigned long long)pl->bytes,
            (unsigned long long)pl->blocks);
    ms_an_json_str(o, pl->end_state);
    fprintf(o, ", \"samples_end_ns\": %llu, \"memory_over_time\": {\"time_ns\": [", (unsigned long long)pl->t_samples);
    for (int k = 0; k < MS_MODEL_SAMPLES; k++)
        fprintf(o, "%s%llu", k ? ", " : "", (unsigned long long)pl->sample_t[k]);
    fprintf(o, "], \"bytes\": [");
    for (int k = 0; k < MS_MODEL_SAMPLES; k++)
        fprintf(o, "%s%llu", k ? ", " : "", (unsigned long long)pl->sample_bytes[k]);
    fprintf(o, "]},\n     \"leaks\": [");
    for (size_t k = 0; k < pl->nleaks; k++) {
        const struct ms_pools_leak *l = &pl->leaks[k];
        fprintf(o, "%s{\"state\": ", k ? ", " : "");
        ms_an_json_str(o, pl->end_state);
        fprintf(o, ", \"name\": ");
        ms_an_json_str(o, l->name);
        fputs(", ", o);
        json_site_ref(o, pl, l->site);
        fprintf(o, ", \"unknown_origin\": %s, \"inherited\": %s, \"allocators\": %llu, \"first_id\": %llu, "
                   "\"bytes\": %llu, \"blocks\": %llu, \"subtree_allocators\": %llu}",
                l->unknown ? "true" : "false", l->inherited ? "true" : "false", (unsigned long long)l->allocators, (unsigned long long)l->first_id,
                (unsigned long long)l->bytes, (unsigned long long)l->blocks, (unsigned long long)l->pools);
    }
    fprintf(o, "],\n     \"sites\": [");
    for (size_t k = 0; k < pl->nsite_order; k++) {
        const struct ms_pools_site *si = &pl->sites[pl->site_order[k]];
        fprintf(o, "%s{\"file\": ", k ? ", " : "");
        ms_an_json_str(o, si->file);
        fprintf(o, ", \"line\": %llu, \"allocations\": %llu, \"allocated_bytes\": %llu, \"reallocs\": %llu, "
                   "\"frees\": %llu, \"live_bytes\": %llu, \"live_blocks\": %llu, \"allocators_created\": %llu}",
                (unsigned long long)si->line, (unsigned long long)si->allocs, (unsigned long long)si->alloc_bytes,
                (unsigned long long)si->reallocs, (unsigned long long)si->frees, (unsigned long long)si->live_bytes,
                (unsigned long long)si->live_blocks, (unsigned long long)si->pools);
    }
    fprintf(o, "],\n     \"tree_at_end_truncated\": %s, \"tree_at_end\": ", pl->nend > MS_POOLS_JSON_NODES ? "true" : "false");
    json_tree(o, pl, pl->end_tree, pl->nend, 1);
    fprintf(o, ",\n     \"tree_at_peak_truncated\": %s, \"tree_at_peak\": ", pl->npeak > MS_POOLS_JSON_NODES ? "true" : "false");
    json_tree(o, pl, pl->peak_tree, pl->npeak, 0);
    fputc('}', o);
}

/* ------------------------------------------------------------------ */
/* dump                                                                */
/* ------------------------------------------------------------------ */

int ms_pools_dump_rec(FILE *o, const struct ms_trace_rec *r)
{
    if (r->type < MS_REC_POOL_SITE || r->type > MS_REC_POOL_CLAIM)
        return 0;
    static const char *const claim[] = { "adopt_block", "adopt_pool", "release_block", "release_pool" };
    const __typeof__(r->u.pool) *p = &r->u.pool;
    fputs(ms_trace_rec_name(r->type), o);
    if (r->has_time)
        fprintf(o, " t=%llu", (unsigned long long)r->t);
    switch (r->type) {
    case MS_REC_POOL_SITE:
        fprintf(o, " id=%llu line=%llu file=", (unsigned long long)p->id, (unsigned long long)p->line);
        ms_an_dump_str(o, p->str);
        break;
    case MS_REC_POOL_NEW:
        fprintf(o, " pool=0x%llx parent=0x%llx site=%llu", (unsigned long long)p->pool,
                (unsigned long long)p->parent, (unsigned long long)p->site);
        if (p->inherited)
            fputs(" inherited=1", o);
        break;
    case MS_REC_POOL_NAME:
        fprintf(o, " pool=0x%llx name=", (unsigned long long)p->pool);
        ms_an_dump_str(o, p->str);
        break;
    case MS_REC_POOL_DESTROY:
        fprintf(o, " pool=0x%llx site=%llu", (unsigned long long)p->pool, (unsigned long long)p->site);
        break;
    case MS_REC_POOL_ALLOC:
        fprintf(o, " pool=0x%llx addr=0x%llx size=%llu site=%llu old_addr=0x%llx", (unsigned long long)p->pool,
                (unsigned long long)p->addr, (unsigned long long)p->size, (unsigned long long)p->site,
                (unsigned long long)p->old_addr);
        break;
    case MS_REC_POOL_FREE:
        fprintf(o, " pool=0x%llx addr=0x%llx site=%llu", (unsigned long long)p->pool, (unsigned long long)p->addr,
                (unsigned long long)p->site);
        break;
    case MS_REC_POOL_MOVE:
        fprintf(o, " what=%s obj=0x%llx to=0x%llx from=0x%llx site=%llu", p->what ? "pool" : "block",
                (unsigned long long)p->obj, (unsigned long long)p->to, (unsigned long long)p->from,
                (unsigned long long)p->site);
        break;
    case MS_REC_POOL_CLAIM:
        fprintf(o, " what=");
        if (p->what < 4)
            fputs(claim[p->what], o);
        else
            fprintf(o, "%llu", (unsigned long long)p->what);
        fprintf(o, " obj=0x%llx holder=0x%llx site=%llu", (unsigned long long)p->obj, (unsigned long long)p->to,
                (unsigned long long)p->site);
        break;
    default:
        break;
    }
    fputc('\n', o);
    return 1;
}
