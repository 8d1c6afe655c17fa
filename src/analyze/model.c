/*
 * memsleuth - model.c: the replay of one trace; see model.h for what it
 * computes and the definitions.
 *
 * Two orders meet here:
 *  - file order, in which the format guarantees ALLOC and FREE of one
 *    address come in program order: the live map (addr -> size, site, time)
 *    is kept in file order, so matching a FREE to its ALLOC never depends on
 *    timestamps, and the per-site counters (allocations, temporaries) too;
 *  - time order, which the curves need (records of different shards may be
 *    up to ~100 ms out of order): each matched ALLOC/FREE becomes a small
 *    timed event (time, size, site) that goes through a reorder window.
 *    Records come in runs that are already in time order (a chunk is one
 *    shard's stream), so the window is a set of runs merged through a
 *    min-heap keyed by each run's first pending event: O(log runs) per
 *    event, not O(log events).  An event is applied once the newest time
 *    seen is MS_MODEL_REORDER_NS past it (or the window is full).
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS       65536   /* runs held at once (each at least one event) */
#define BLK_FIRST      16      /* events in a run's first block; each next block doubles */
#define BLK_MAX        1024    /* ... up to this (24 KiB) */
#define MAX_FREE_BLKS  64      /* full-size blocks kept for reuse */

/* A run's events live in a list of blocks freed as they are consumed, so
   the window costs the pending events (plus at most one partly filled and
   one partly consumed block per run), whatever the size of the runs. */
struct ms_tblock {
    struct ms_tblock *next;
    uint32_t n, head, cap;     /* events v[head..n) are pending */
    struct ms_tev v[];
};

struct ms_run {
    struct ms_tblock *first, *last;
    uint64_t last_t;           /* time of the last event appended */
    uint64_t seq;              /* creation order: ties in time go to the earlier run */
    struct ms_run *next_free;
};

static const char *const state_names[] = {
    "freed", "lost", "reachable", "freed_at_exit", "live_at_exit", "live_at_end", "live_at_exec",
};

const char *ms_state_name(enum ms_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

static char *dup_str(struct ms_trace_str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.p, s.len);
        p[s.len] = 0;
    }
    return p;
}

static int nomem(struct ms_model *m)
{
    m->nomem = 1;
    return -1;
}

int ms_an_grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * sz);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

uint64_t ms_an_hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ------------------------------------------------------------------ */
/* sites                                                               */
/* ------------------------------------------------------------------ */

static int site_map_grow(struct ms_model *m)
{
    size_t nc = m->site_map_cap ? m->site_map_cap * 2 : 1024;
    uint32_t *nm = calloc(nc, sizeof *nm);
    if (!nm)
        return -1;
    for (size_t i = 0; i < m->nsites; i++) {
        size_t h = ms_an_hash64(m->sites[i].stack_id) & (nc - 1);
        while (nm[h])
            h = (h + 1) & (nc - 1);
        nm[h] = (uint32_t)(i + 1);
    }
    free(m->site_map);
    m->site_map = nm;
    m->site_map_cap = nc;
    return 0;
}

/* the site of a stack id, created on first use; SIZE_MAX when out of memory */
static size_t get_site(struct ms_model *m, uint64_t id)
{
    if (m->site_map_cap) {
        size_t h = ms_an_hash64(id) & (m->site_map_cap - 1);
        while (m->site_map[h]) {
            size_t i = m->site_map[h] - 1;
            if (m->sites[i].stack_id == id)
                return i;
            h = (h + 1) & (m->site_map_cap - 1);
        }
    }
    if (m->nsites >= UINT32_MAX - 2)
        return SIZE_MAX;
    if ((m->nsites + 1) * 10 > m->site_map_cap * 7 && site_map_grow(m) < 0)
        return SIZE_MAX;
    if (ms_an_grow((void **)&m->sites, &m->capsites, m->nsites + 1, sizeof *m->sites) < 0)
        return SIZE_MAX;
    size_t i = m->nsites++;
    struct ms_site *s = &m->sites[i];
    memset(s, 0, sizeof *s);
    s->stack_id = id;
    s->series = -1;
    size_t h = ms_an_hash64(id) & (m->site_map_cap - 1);
    while (m->site_map[h])
        h = (h + 1) & (m->site_map_cap - 1);
    m->site_map[h] = (uint32_t)(i + 1);
    return i;
}

/* ------------------------------------------------------------------ */
/* live map (file order)                                               */
/* ------------------------------------------------------------------ */

static size_t blk_slot(const struct ms_model *m, uint64_t addr)
{
    return ms_an_hash64(addr) & (m->blk_cap - 1);
}

static int blk_grow(struct ms_model *m)
{
    size_t nc = m->blk_cap ? m->blk_cap * 2 : 1024;
    struct ms_block *nb = calloc(nc, sizeof *nb);
    if (!nb)
        return -1;
    for (size_t i = 0; i < m->blk_cap; i++) {
        if (!m->blk[i].addr)
            continue;
        size_t h = ms_an_hash64(m->blk[i].addr) & (nc - 1);
        while (nb[h].addr)
            h = (h + 1) & (nc - 1);
        nb[h] = m->blk[i];
    }
    free(m->blk);
    m->blk = nb;
    m->blk_cap = nc;
    return 0;
}

static struct ms_block *blk_find(struct ms_model *m, uint64_t addr)
{
    if (!m->blk_cap)
        return NULL;
    for (size_t h = blk_slot(m, addr);; h = (h + 1) & (m->blk_cap - 1)) {
        if (m->blk[h].addr == addr)
            return &m->blk[h];
        if (!m->blk[h].addr)
            return NULL;
    }
}

/* delete by backward shift (no tombstones: probe chains stay short) */
static void blk_delete(struct ms_model *m, struct ms_block *b)
{
    size_t mask = m->blk_cap - 1;
    size_t i = (size_t)(b - m->blk);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->blk[j].addr)
            break;
        size_t k = blk_slot(m, m->blk[j].addr);
        /* move j to i if its home k is not in (i, j] cyclically */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            m->blk[i] = m->blk[j];
            i = j;
        }
    }
    m->blk[i].addr = 0;
    m->blk_n--;
}

static struct ms_block *blk_insert(struct ms_model *m, uint64_t addr)
{
    if ((m->blk_n + 1) * 10 > m->blk_cap * 7 && blk_grow(m) < 0)
        return NULL;
    size_t h = blk_slot(m, addr);
    while (m->blk[h].addr)
        h = (h + 1) & (m->blk_cap - 1);
    m->blk[h].addr = addr;
    m->blk_n++;
    if (m->blk_n > m->blk_max)
        m->blk_max = m->blk_n;
    return &m->blk[h];
}

/* ------------------------------------------------------------------ */
/* series                                                              */
/* ------------------------------------------------------------------ */

/* cells 1..j known: fill cells filled+1..j with v */
static void fill_to(struct ms_series *s, uint64_t j, uint64_t v)
{
    if (j > MS_MODEL_GRID)
        j = MS_MODEL_GRID;
    for (uint64_t c = s->filled + 1; c <= j; c++)
        s->v[c - 1] = v;
    if (j > s->filled)
        s->filled = (uint32_t)j;
}

/* before a change at time t: the cells strictly before t hold the old value */
static void fill_before(const struct ms_model *m, struct ms_series *s, uint64_t t, uint64_t v)
{
    if (t)
        fill_to(s, (t - 1) / m->w, v);
}

/* make the grid cover time t: double the step (merge pairs of cells) */
static void grid_cover(struct ms_model *m, uint64_t t)
{
    while (m->w <= UINT64_MAX / (2 * MS_MODEL_GRID) && t > m->w * MS_MODEL_GRID) {
        for (size_t i = 0; i < m->nseries; i++) {
            struct ms_series *s = &m->series[i];
            uint32_t nf = s->filled / 2;
            for (uint32_t c = 0; c < nf; c++)
                s->v[c] = s->v[2 * c + 1]; /* new cell c+1 = old cell 2(c+1) */
            s->filled = nf;
        }
        m->w *= 2;
    }
}

static void new_series(struct ms_model *m, size_t site, uint64_t t)
{
    if (m->nseries >= MS_MODEL_SERIES_CAP + 1 ||
        ms_an_grow((void **)&m->series, &m->capseries, m->nseries + 1, sizeof *m->series) < 0) {
        m->series_refused++;
        m->sites[site].series = -2; /* refused: counted once */
        return;
    }
    struct ms_series *s = &m->series[m->nseries];
    memset(s, 0, sizeof *s);
    s->site = (uint32_t)site;
    fill_before(m, s, t, 0); /* before it reached the threshold: shown as 0 */
    m->sites[site].series = (int32_t)m->nseries++;
}

/* ------------------------------------------------------------------ */
/* time order: applying events                                         */
/* ------------------------------------------------------------------ */

/* the index of thread tid in m->thr (made if new; tid 0 and threads past the cap: 0);
   SIZE_MAX out of memory */
static size_t get_thread(struct ms_model *m, uint64_t tid)
{
    if (!m->nthr) {
        if (ms_an_grow((void **)&m->thr, &m->capthr, 1, sizeof *m->thr) < 0)
            return SIZE_MAX;
        memset(&m->thr[0], 0, sizeof m->thr[0]);
        m->nthr = 1;
    }
    if (!tid)
        return 0;
    if ((m->nthr + 1) * 2 > m->thr_map_cap) {
        size_t nc = m->thr_map_cap ? m->thr_map_cap * 2 : 64;
        uint32_t *nm = calloc(nc, sizeof *nm);
        if (!nm)
            return SIZE_MAX;
        for (size_t i = 1; i < m->nthr; i++) {
            size_t h = (size_t)ms_an_hash64(m->thr[i].tid) & (nc - 1);
            while (nm[h])
                h = (h + 1) & (nc - 1);
            nm[h] = (uint32_t)i + 1;
        }
        free(m->thr_map);
        m->thr_map = nm;
        m->thr_map_cap = nc;
    }
    size_t h = (size_t)ms_an_hash64(tid) & (m->thr_map_cap - 1);
    while (m->thr_map[h]) {
        if (m->thr[m->thr_map[h] - 1].tid == tid)
            return m->thr_map[h] - 1;
        h = (h + 1) & (m->thr_map_cap - 1);
    }
    if (m->nthr >= MS_MODEL_MAX_THREADS) {
        m->threads_over_cap++;
        return 0;
    }
    if (ms_an_grow((void **)&m->thr, &m->capthr, m->nthr + 1, sizeof *m->thr) < 0)
        return SIZE_MAX;
    memset(&m->thr[m->nthr], 0, sizeof m->thr[0]);
    m->thr[m->nthr].tid = tid;
    m->thr_map[h] = (uint32_t)m->nthr + 1;
    m->threads++;
    return m->nthr++;
}

static void apply(struct ms_model *m, const struct ms_tev *e)
{
    uint64_t t = e->t;
    if (m->applied_any && t < m->applied_t) {
        m->late++;
        t = m->applied_t;
    }
    m->applied_t = t;
    m->applied_any = 1;
    struct ms_site *s = &m->sites[e->site];
    grid_cover(m, t);
    if (s->series >= 0)
        fill_before(m, &m->series[s->series], t, s->live_bytes);
    fill_before(m, &m->series[0], t, m->live_bytes);
    if (s->epoch != m->epoch) {
        /* first change since the last peak: remember the value it had then */
        s->peak_bytes = s->live_bytes;
        s->peak_blocks = s->live_blocks;
        s->epoch = m->epoch;
    }
    struct ms_thread *th = &m->thr[e->thread];
    if (th->epoch != m->epoch) {
        th->peak_bytes = th->live_bytes;
        th->peak_blocks = th->live_blocks;
        th->epoch = m->epoch;
    }
    if (!e->is_free) {
        th->live_bytes += e->size;
        th->live_blocks++;
        if (th->live_bytes > th->max_bytes) {
            th->max_bytes = th->live_bytes;
            th->max_t = t;
        }
        if (th->live_blocks > th->max_blocks)
            th->max_blocks = th->live_blocks;
        s->live_bytes += e->size;
        s->live_blocks++;
        m->live_bytes += e->size;
        m->live_blocks++;
        if (s->live_bytes > s->max_bytes)
            s->max_bytes = s->live_bytes;
        if (s->live_blocks > s->max_blocks)
            s->max_blocks = s->live_blocks;
        if (m->live_bytes > m->peak_bytes) {
            m->peak_bytes = m->live_bytes;
            m->peak_blocks = m->live_blocks;
            m->peak_t = t;
            m->epoch++;
        }
        if (s->series == -1 &&
            (m->nseries <= MS_MODEL_SERIES_ALL || s->live_bytes >= MS_MODEL_SERIES_MIN))
            new_series(m, e->site, t);
    } else {
        th->live_bytes = th->live_bytes >= e->size ? th->live_bytes - e->size : 0;
        th->live_blocks -= th->live_blocks ? 1 : 0;
        s->live_bytes = s->live_bytes >= e->size ? s->live_bytes - e->size : 0;
        s->live_blocks -= s->live_blocks ? 1 : 0;
        m->live_bytes = m->live_bytes >= e->size ? m->live_bytes - e->size : 0;
        m->live_blocks -= m->live_blocks ? 1 : 0;
    }
}

static const struct ms_tev *run_head(const struct ms_run *r)
{
    return &r->first->v[r->first->head];
}

static int run_before(const struct ms_run *a, const struct ms_run *b)
{
    uint64_t ta = run_head(a)->t, tb = run_head(b)->t;
    return ta < tb || (ta == tb && a->seq < b->seq);
}

static void heap_down(struct ms_model *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->nheap && run_before(m->heap[l], m->heap[s]))
            s = l;
        if (r < m->nheap && run_before(m->heap[r], m->heap[s]))
            s = r;
        if (s == i)
            return;
        struct ms_run *x = m->heap[i];
        m->heap[i] = m->heap[s];
        m->heap[s] = x;
        i = s;
    }
}

static void heap_up(struct ms_model *m, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if (!run_before(m->heap[i], m->heap[p]))
            return;
        struct ms_run *x = m->heap[i];
        m->heap[i] = m->heap[p];
        m->heap[p] = x;
        i = p;
    }
}

static struct ms_tblock *blk_new(struct ms_model *m, uint32_t cap)
{
    if (cap == BLK_MAX && m->free_blks) {
        struct ms_tblock *b = m->free_blks;
        m->free_blks = b->next;
        m->nfree_blks--;
        b->next = NULL;
        b->n = b->head = 0;
        return b;
    }
    struct ms_tblock *b = malloc(sizeof *b + cap * sizeof b->v[0]);
    if (b) {
        b->next = NULL;
        b->n = b->head = 0;
        b->cap = cap;
    }
    return b;
}

static void blk_drop(struct ms_model *m, struct ms_tblock *b)
{
    if (b->cap == BLK_MAX && m->nfree_blks < MAX_FREE_BLKS) {
        b->next = m->free_blks;
        m->free_blks = b;
        m->nfree_blks++;
    } else {
        free(b);
    }
}

/* a run that has no pending event left */
static void run_drop(struct ms_model *m, struct ms_run *r)
{
    if (r == m->open_run)
        m->open_run = NULL;
    while (r->first) {
        struct ms_tblock *b = r->first;
        r->first = b->next;
        blk_drop(m, b);
    }
    r->last = NULL;
    r->next_free = m->free_runs;
    m->free_runs = r;
}

/* apply the earliest pending event */
static void pop_one(struct ms_model *m)
{
    struct ms_run *r = m->heap[0];
    struct ms_tblock *b = r->first;
    apply(m, &b->v[b->head++]);
    m->buffered--;
    if (b->head == b->n) {
        if (!b->next) { /* the run is empty */
            m->heap[0] = m->heap[--m->nheap];
            if (m->nheap)
                heap_down(m, 0);
            run_drop(m, r);
            return;
        }
        r->first = b->next;
        blk_drop(m, b);
    }
    heap_down(m, 0);
}

static void release(struct ms_model *m, int all)
{
    while (m->nheap) {
        uint64_t t = run_head(m->heap[0])->t;
        if (!all && m->buffered <= MS_MODEL_REORDER_CAP && m->nheap <= MAX_RUNS &&
            m->tmax - t <= MS_MODEL_REORDER_NS)
            break;
        pop_one(m);
    }
}

static int push_event(struct ms_model *m, uint64_t t, uint64_t size, size_t site, int is_free,
                      uint32_t thread)
{
    struct ms_run *r = m->open_run;
    struct ms_tev ev = { t, size, (uint32_t)site, (uint16_t)is_free, (uint16_t)thread };
    if (!r || t < r->last_t) {
        /* time went back: a new run (another shard's chunk) */
        if (ms_an_grow((void **)&m->heap, &m->capheap, m->nheap + 1, sizeof *m->heap) < 0)
            return nomem(m);
        r = m->free_runs;
        if (r) {
            m->free_runs = r->next_free;
        } else if (!(r = calloc(1, sizeof *r))) {
            return nomem(m);
        }
        if (!(r->first = r->last = blk_new(m, BLK_FIRST))) {
            r->next_free = m->free_runs;
            m->free_runs = r;
            return nomem(m);
        }
        r->seq = m->run_seq++;
        r->last->v[r->last->n++] = ev;
        r->last_t = t;
        m->heap[m->nheap++] = r;
        heap_up(m, m->nheap - 1);
        m->open_run = r;
    } else {
        struct ms_tblock *b = r->last;
        if (b->n == b->cap) {
            uint32_t cap = b->cap * 2 > BLK_MAX ? BLK_MAX : b->cap * 2;
            struct ms_tblock *nb = blk_new(m, cap);
            if (!nb)
                return nomem(m);
            b->next = nb;
            r->last = b = nb;
        }
        b->v[b->n++] = ev;
        r->last_t = t;
    }
    m->buffered++;
    if (m->buffered > m->buffered_max)
        m->buffered_max = m->buffered;
    if (t > m->tmax)
        m->tmax = t;
    release(m, 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* feeding records                                                     */
/* ------------------------------------------------------------------ */

struct ms_model *ms_model_new(void)
{
    struct ms_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->w = 1;
    m->series = calloc(1, sizeof *m->series); /* [0]: the process total */
    if (!m->series) {
        free(m);
        return NULL;
    }
    m->capseries = m->nseries = 1;
    m->series[0].site = UINT32_MAX;
    return m;
}

static void see_time(struct ms_model *m, const struct ms_trace_rec *rec)
{
    if (rec->has_time && rec->t > m->last_t && !(rec->type == MS_REC_ALLOC && rec->inherited))
        m->last_t = rec->t;
}

static int feed_alloc(struct ms_model *m, const struct ms_trace_rec *rec)
{
    uint64_t addr = rec->u.alloc.addr, size = rec->u.alloc.size;
    if (!addr) {
        m->addr_zero++;
        return 0;
    }
    size_t si = get_site(m, rec->u.alloc.stack);
    if (si == SIZE_MAX)
        return nomem(m);
    size_t ti = get_thread(m, rec->inherited ? 0 : rec->u.alloc.tid);
    if (ti == SIZE_MAX)
        return nomem(m);
    if (rec->u.alloc.tid)
        m->have_alloc_tid = 1;
    struct ms_site *s = &m->sites[si];
    uint64_t t = rec->inherited ? 0 : rec->t;
    if (!rec->inherited && t > m->last_event_t)
        m->last_event_t = t;
    if (rec->inherited) {
        s->inherited_blocks++;
        s->inherited_bytes += size;
        m->inherited_blocks++;
        m->inherited_bytes += size;
    } else {
        s->allocs++;
        s->alloc_bytes += size;
        m->allocs++;
        m->alloc_bytes += size;
        m->thr[ti].allocs++;
        m->thr[ti].alloc_bytes += size;
        if (!s->thread1)
            s->thread1 = (uint32_t)ti + 1;
        else if (s->thread1 != (uint32_t)ti + 1)
            s->thread1 = UINT32_MAX;
        if (rec->u.alloc.fn < 32)
            s->fn_mask |= 1u << rec->u.alloc.fn;
    }
    struct ms_block *b = blk_find(m, addr);
    if (b) {
        /* a FREE went missing (LOST events): the old block is gone */
        m->alloc_over_live++;
        if (push_event(m, t, b->size, b->site, 1, b->thread) < 0)
            return -1;
        b = blk_find(m, addr); /* (push_event does not touch the map) */
        blk_delete(m, b);
    }
    b = blk_insert(m, addr);
    if (!b)
        return nomem(m);
    b->size = size;
    b->t = t;
    b->site = (uint32_t)si;
    b->inherited = (uint16_t)rec->inherited;
    b->thread = (uint16_t)ti;
    return push_event(m, t, size, si, 0, (uint32_t)ti);
}

static int feed_free(struct ms_model *m, const struct ms_trace_rec *rec)
{
    uint64_t addr = rec->u.free.addr;
    if (!addr) {
        m->addr_zero++;
        return 0;
    }
    struct ms_block *b = blk_find(m, addr);
    if (!b) {
        m->free_unknown++;
        return 0;
    }
    m->frees++;
    uint64_t size = b->size, t = rec->t;
    uint32_t si = b->site, ti = b->thread;
    m->thr[ti].frees++;
    if (t > m->last_event_t)
        m->last_event_t = t;
    if (!b->inherited && t >= b->t && t - b->t <= MS_MODEL_TEMP_NS) {
        m->sites[si].temps++;
        m->sites[si].temp_bytes += size;
        m->temps++;
        m->temp_bytes += size;
    }
    blk_delete(m, b);
    return push_event(m, t, size, si, 1, ti);
}

static int feed_process(struct ms_model *m, const struct ms_trace_rec *rec)
{
    if (m->have_process)
        return 0; /* the first one describes the process */
    m->have_process = 1;
    m->pid = rec->u.process.pid;
    m->ppid = rec->u.process.ppid;
    m->start_unix_ns = rec->u.process.start_unix_ns;
    m->sample_rate = rec->u.process.sample_rate;
    m->exe = dup_str(rec->u.process.exe);
    m->cwd = dup_str(rec->u.process.cwd);
    size_t n = rec->u.process.argv_kept;
    m->argv = calloc(n + 1, sizeof *m->argv);
    if (!m->exe || !m->cwd || !m->argv)
        return nomem(m);
    for (size_t i = 0; i < n; i++)
        if (!(m->argv[i] = dup_str(rec->u.process.argv[i])))
            return nomem(m);
    m->argc = n;
    return 0;
}

static int feed_module(struct ms_model *m, const struct ms_trace_rec *rec)
{
    if (m->nmods >= MS_MODEL_MAX_MODULES) {
        m->mods_dropped++;
        return 0;
    }
    if (ms_an_grow((void **)&m->mods, &m->capmods, m->nmods + 1, sizeof *m->mods) < 0)
        return nomem(m);
    struct ms_module *md = &m->mods[m->nmods];
    memset(md, 0, sizeof *md);
    md->path = dup_str(rec->u.module.path);
    if (!md->path)
        return nomem(m);
    if (rec->u.module.build_id.len) {
        md->build_id = malloc(rec->u.module.build_id.len);
        if (!md->build_id) {
            free(md->path);
            return nomem(m);
        }
        memcpy(md->build_id, rec->u.module.build_id.p, rec->u.module.build_id.len);
        md->build_id_len = rec->u.module.build_id.len;
    }
    md->t = rec->t;
    md->bias = rec->u.module.bias;
    md->lo = rec->u.module.lo;
    md->hi = rec->u.module.hi;
    md->flags = rec->u.module.flags;
    m->nmods++;
    return 0;
}

static int feed_stack(struct ms_model *m, const struct ms_trace_rec *rec)
{
    size_t si = get_site(m, rec->u.stack.id);
    if (si == SIZE_MAX)
        return nomem(m);
    struct ms_site *s = &m->sites[si];
    if (s->has_stack) {
        m->dup_stacks++;
        return 0;
    }
    size_t n = rec->u.stack.kept;
    if (ms_an_grow((void **)&m->pcs, &m->cappcs, m->npcs + n, sizeof *m->pcs) < 0)
        return nomem(m);
    if (n)
        memcpy(m->pcs + m->npcs, rec->u.stack.pcs, n * sizeof *m->pcs);
    s->pcs_off = m->npcs;
    s->npcs = (uint32_t)n;
    s->has_stack = 1;
    m->npcs += n;
    return 0;
}

static int feed_leak(struct ms_model *m, const struct ms_trace_rec *rec)
{
    uint64_t k = rec->u.leak.kind;
    if (k > 3) {
        m->bad_kind++;
        return 0;
    }
    size_t si = get_site(m, rec->u.leak.stack);
    if (si == SIZE_MAX)
        return nomem(m);
    struct ms_site *s = &m->sites[si];
    int sup = rec->u.leak.suppressed ? 1 : 0;
    s->leak_bytes[k][sup] += rec->u.leak.bytes;
    s->leak_blocks[k][sup] += rec->u.leak.blocks;
    if (k == MS_LEAK_DEFINITE)
        s->leak_indirect_bytes += rec->u.leak.indirect_bytes;
    m->leak_bytes[k][sup] += rec->u.leak.bytes;
    m->leak_blocks[k][sup] += rec->u.leak.blocks;
    if (rec->u.leak.shown)
        m->leak_shown_kinds |= 1u << k;
    m->have_leaks = 1;
    return 0;
}

int ms_model_feed(struct ms_model *m, const struct ms_trace_rec *rec)
{
    if (m->nomem || m->finished)
        return -1;
    m->records++;
    if (rec->type < 16)
        m->rec_count[rec->type]++;
    see_time(m, rec);
    /* a record the agent writes only while the image runs, after the last EXEC:
       that exec failed */
    if (m->exec_pending && rec->has_time && rec->t > m->exec_t && rec->type != MS_REC_ALLOC &&
        rec->type != MS_REC_FREE)
        m->exec_pending = 0;
    switch (rec->type) {
    case MS_REC_PROCESS:
        return feed_process(m, rec);
    case MS_REC_MODULE:
        return feed_module(m, rec);
    case MS_REC_STACK:
        return feed_stack(m, rec);
    case MS_REC_THREAD: {
        size_t ti = get_thread(m, rec->u.thread.tid);
        if (ti == SIZE_MAX)
            return nomem(m);
        if (ti) { /* the last name wins (a thread may be renamed) */
            char *nm = dup_str(rec->u.thread.name);
            if (!nm)
                return nomem(m);
            free(m->thr[ti].name);
            m->thr[ti].name = nm;
        }
        return 0;
    }
    case MS_REC_ALLOC:
        return feed_alloc(m, rec);
    case MS_REC_FREE:
        return feed_free(m, rec);
    case MS_REC_SAMPLE:
        m->samples++;
        m->last_rss = rec->u.sample.rss;
        if (rec->u.sample.rss > m->peak_rss) {
            m->peak_rss = rec->u.sample.rss;
            m->peak_rss_t = rec->t;
        }
        return 0;
    case MS_REC_LEAK:
        return feed_leak(m, rec);
    case MS_REC_END:
        if (!m->have_end) {
            m->have_end = 1;
            m->end_t = rec->t;
            m->end_how = rec->u.end.how;
            m->end_status = rec->u.end.status;
        }
        return 0;
    case MS_REC_FORK:
        m->forks_total++;
        if (m->nforks < MS_MODEL_MAX_FORKS) {
            if (ms_an_grow((void **)&m->forks, &m->capforks, m->nforks + 1, sizeof *m->forks) < 0)
                return nomem(m);
            m->forks[m->nforks++] = (struct ms_fork){ rec->t, rec->u.fork.child_pid };
        }
        return 0;
    case MS_REC_EXEC:
        free(m->exec_path);
        m->exec_path = dup_str(rec->u.exec.path);
        m->exec_t = rec->t;
        m->exec_pending = 1;
        if (!m->exec_path)
            return nomem(m);
        return 0;
    case MS_REC_INHERITED:
        m->inherited_declared += rec->u.inherited.count;
        return 0;
    case MS_REC_SNAPSHOT:
        m->snaps_total++;
        if (m->nsnaps < MS_MODEL_MAX_SNAPSHOTS) {
            if (ms_an_grow((void **)&m->snaps, &m->capsnaps, m->nsnaps + 1, sizeof *m->snaps) < 0)
                return nomem(m);
            struct ms_snapshot *sn = &m->snaps[m->nsnaps++];
            memset(sn, 0, sizeof *sn);
            sn->t = rec->t;
            sn->id = rec->u.snapshot.id;
            sn->trigger = rec->u.snapshot.trigger;
            sn->pause_ns = rec->u.snapshot.pause_ns;
        }
        return 0;
    case MS_REC_SNAP_LEAK:
        /* a verdict of the last SNAPSHOT */
        if (m->nsnaps && m->snaps_total == m->nsnaps && rec->u.snap_leak.kind < 4) {
            struct ms_snapshot *sn = &m->snaps[m->nsnaps - 1];
            sn->bytes[rec->u.snap_leak.kind] += rec->u.snap_leak.bytes;
            sn->blocks[rec->u.snap_leak.kind] += rec->u.snap_leak.blocks;
        }
        return 0;
    case MS_REC_LOST:
        m->lost_records++;
        m->lost_events += rec->u.lost.count;
        return 0;
    default:
        m->unknown_records++;
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* the end: samples, growth                                            */
/* ------------------------------------------------------------------ */

uint64_t ms_site_leak_bytes(const struct ms_site *s, unsigned kind_mask, int supp)
{
    uint64_t v = 0;
    for (int k = 0; k < 4; k++)
        if (kind_mask & (1u << k))
            for (int x = 0; x < 2; x++)
                if (supp == 2 || supp == x)
                    v += s->leak_bytes[k][x];
    return v;
}

uint64_t ms_site_leak_blocks(const struct ms_site *s, unsigned kind_mask, int supp)
{
    uint64_t v = 0;
    for (int k = 0; k < 4; k++)
        if (kind_mask & (1u << k))
            for (int x = 0; x < 2; x++)
                if (supp == 2 || supp == x)
                    v += s->leak_blocks[k][x];
    return v;
}

int ms_model_site_samples(const struct ms_model *m, size_t site, uint64_t *out)
{
    const struct ms_site *s = &m->sites[site];
    if (s->series < 0) {
        memset(out, 0, MS_MODEL_SAMPLES * sizeof *out);
        return 0;
    }
    const struct ms_series *se = &m->series[s->series];
    for (int i = 0; i < MS_MODEL_SAMPLES; i++)
        out[i] = se->v[m->sample_cell[i] - 1];
    return 1;
}

static enum ms_state site_state(const struct ms_model *m, const struct ms_site *s)
{
    if (ms_site_leak_blocks(s, 7, 2) || ms_site_leak_bytes(s, 7, 2))
        return MS_STATE_LOST;
    if (ms_site_leak_blocks(s, 8, 2) || ms_site_leak_bytes(s, 8, 2))
        return MS_STATE_REACHABLE;
    if (s->live_bytes || s->live_blocks)
        return m->have_end ? MS_STATE_LIVE_AT_EXIT
               : m->ended_by_exec ? MS_STATE_LIVE_AT_EXEC
                                  : MS_STATE_LIVE_AT_END;
    if (s->suspect && s->end_bytes && (m->have_end || m->ended_by_exec))
        return MS_STATE_FREED_AT_EXIT;
    return MS_STATE_FREED;
}

/*
 * Growth of one site, from its 64 samples x[0..63] (x[63] is the state at
 * the end; the 63 before it are the run):
 *   increases / decreases: intervals among the 62 between x[0..62] where the
 *       value went up / down;
 *   steadiness = 1 - decreases / 62 (the fraction that did not shrink);
 *   slope: least squares of x[0..62] against the sample times, bytes/s;
 *   end bytes = the highest of x[55..62] (the last 1/8 of the run: memory
 *       released during a short shutdown still counts);
 *   growth = slope * (t[62] - t[0]) / end bytes, clamped to [0, 1]: how much
 *       of the end state the trend built (1: grew from nothing, steadily);
 *   share = end bytes / the process's end bytes (same definition on the
 *       process total);
 * a suspect has slope > 0, increases >= MS_GROWTH_MIN_INC, steadiness >=
 * MS_GROWTH_MIN_STEADY, growth >= MS_GROWTH_MIN_GROWTH and share >=
 * MS_GROWTH_MIN_SHARE; suspects rank by score = growth * steadiness *
 * sqrt(share).
 */
static void score_site(struct ms_model *m, struct ms_site *s)
{
    uint64_t x[MS_MODEL_SAMPLES];
    const int N = MS_MODEL_SAMPLES - 1; /* the run: samples before END */
    ms_model_site_samples(m, (size_t)(s - m->sites), x);
    int inc = 0, dec = 0;
    for (int i = 0; i + 1 < N; i++) {
        if (x[i + 1] > x[i])
            inc++;
        else if (x[i + 1] < x[i])
            dec++;
    }
    double tm = 0, xm = 0;
    for (int i = 0; i < N; i++) {
        tm += (double)m->sample_t[i] / 1e9;
        xm += (double)x[i];
    }
    tm /= N;
    xm /= N;
    double sxy = 0, sxx = 0;
    for (int i = 0; i < N; i++) {
        double dt = (double)m->sample_t[i] / 1e9 - tm;
        sxy += dt * ((double)x[i] - xm);
        sxx += dt * dt;
    }
    double slope = sxx > 0 ? sxy / sxx : 0;
    uint64_t e = 0;
    for (int i = N - MS_MODEL_END_SAMPLES; i < N; i++)
        if (x[i] > e)
            e = x[i];
    double span = (double)(m->sample_t[N - 1] - m->sample_t[0]) / 1e9;
    double growth = e ? slope * span / (double)e : 0;
    if (growth < 0)
        growth = 0;
    if (growth > 1)
        growth = 1;
    double steady = 1.0 - (double)dec / (N - 1);
    double share = m->end_bytes ? (double)e / (double)m->end_bytes : 0;
    if (share > 1)
        share = 1;
    s->increases = inc;
    s->decreases = dec;
    s->slope_per_s = slope;
    s->end_bytes = e;
    s->growth = growth;
    s->steadiness = steady;
    s->share = share;
    s->suspect = slope > 0 && inc >= MS_GROWTH_MIN_INC && steady >= MS_GROWTH_MIN_STEADY &&
                 growth >= MS_GROWTH_MIN_GROWTH && share >= MS_GROWTH_MIN_SHARE;
    s->score = s->suspect ? growth * steady * sqrt(share) : 0;
}

void ms_model_finish(struct ms_model *m)
{
    if (m->finished)
        return;
    release(m, 1);
    m->finished = 1;
    m->ended_by_exec = m->exec_pending && !m->have_end;
    uint64_t T = m->last_t;
    if (m->have_end && m->end_t > T)
        T = m->end_t;
    if (m->applied_any && m->applied_t > T)
        T = m->applied_t;
    m->t_end = T;
    /* the samples: up to the last event (the exit check after it is not the run) */
    if (m->last_event_t && m->last_event_t < T)
        T = m->last_event_t;
    m->t_samples = T;
    grid_cover(m, T);
    uint64_t n = T ? (T - 1) / m->w + 1 : 1;
    if (n > MS_MODEL_GRID)
        n = MS_MODEL_GRID;
    for (size_t i = 0; i < m->nseries; i++) {
        struct ms_series *se = &m->series[i];
        fill_to(se, n, se->site == UINT32_MAX ? m->live_bytes : m->sites[se->site].live_bytes);
    }
    for (int i = 0; i < MS_MODEL_SAMPLES; i++) {
        uint64_t c = ((uint64_t)(i + 1) * n + MS_MODEL_SAMPLES - 1) / MS_MODEL_SAMPLES;
        if (c < 1)
            c = 1;
        m->sample_cell[i] = (uint32_t)c;
        uint64_t ct = c * m->w;
        m->sample_t[i] = ct < T ? ct : T;
        m->sample_bytes[i] = m->series[0].v[c - 1];
    }
    m->end_bytes = 0;
    for (int i = MS_MODEL_SAMPLES - 1 - MS_MODEL_END_SAMPLES; i < MS_MODEL_SAMPLES - 1; i++)
        if (m->sample_bytes[i] > m->end_bytes)
            m->end_bytes = m->sample_bytes[i];
    m->nsuspects = 0;
    for (size_t i = 0; i < m->nsites; i++) {
        struct ms_site *s = &m->sites[i];
        if (s->epoch != m->epoch) {
            /* unchanged since the last peak */
            s->peak_bytes = s->live_bytes;
            s->peak_blocks = s->live_blocks;
            s->epoch = m->epoch;
        }
        if (s->series >= 0) {
            score_site(m, s);
            m->nsuspects += s->suspect;
        }
        s->state = site_state(m, s);
        uint64_t lb = ms_site_leak_bytes(s, 7, 0);
        if (lb) {
            if (s->thread1 && s->thread1 != UINT32_MAX) {
                m->thr[s->thread1 - 1].leak_bytes += lb;
                m->thr[s->thread1 - 1].leak_blocks += ms_site_leak_blocks(s, 7, 0);
            } else {
                m->thr_leak_unattributed += lb;
            }
        }
    }
    for (size_t i = 0; i < m->nthr; i++)
        if (m->thr[i].epoch != m->epoch) {
            m->thr[i].peak_bytes = m->thr[i].live_bytes;
            m->thr[i].peak_blocks = m->thr[i].live_blocks;
            m->thr[i].epoch = m->epoch;
        }
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

void ms_model_free(struct ms_model *m)
{
    if (!m)
        return;
    ms_model_shrink(m);
    free(m->exe);
    free(m->cwd);
    if (m->argv)
        for (size_t i = 0; m->argv[i]; i++)
            free(m->argv[i]);
    free(m->argv);
    free(m->exec_path);
    for (size_t i = 0; i < m->nthr; i++)
        free(m->thr[i].name);
    free(m->thr);
    free(m->forks);
    free(m->snaps);
    free(m);
}

void ms_model_shrink(struct ms_model *m)
{
    for (size_t i = 0; i < m->nmods; i++) {
        free(m->mods[i].path);
        free(m->mods[i].build_id);
    }
    free(m->mods);
    m->mods = NULL;
    m->nmods = m->capmods = 0;
    free(m->sites);
    m->sites = NULL;
    m->nsites = m->capsites = 0;
    free(m->site_map);
    m->site_map = NULL;
    m->site_map_cap = 0;
    free(m->thr_map); /* the threads stay (m->thr), their lookup goes */
    m->thr_map = NULL;
    m->thr_map_cap = 0;
    free(m->pcs);
    m->pcs = NULL;
    m->npcs = m->cappcs = 0;
    free(m->blk);
    m->blk = NULL;
    m->blk_cap = 0;
    for (size_t i = 0; i < m->nheap; i++)
        run_drop(m, m->heap[i]);
    free(m->heap);
    m->heap = NULL;
    m->nheap = m->capheap = 0;
    m->open_run = NULL;
    while (m->free_runs) {
        struct ms_run *r = m->free_runs;
        m->free_runs = r->next_free;
        free(r);
    }
    while (m->free_blks) {
        struct ms_tblock *b = m->free_blks;
        m->free_blks = b->next;
        free(b);
    }
    m->nfree_blks = 0;
    free(m->series);
    m->series = NULL;
    m->nseries = m->capseries = 0;
}

struct ms_model *ms_model_load(const char *path, enum ms_trace_status *status, char *msg,
                               size_t msglen, char *err, size_t errlen)
{
    struct ms_trace_reader *r = ms_trace_open(path, err, errlen);
    if (!r)
        return NULL;
    struct ms_model *m = ms_model_new();
    if (!m) {
        snprintf(err, errlen, "cannot read trace '%s': out of memory", path);
        ms_trace_close(r);
        return NULL;
    }
    /* ALLOC and FREE records wait in a short queue while their live-map slot is
     * prefetched: the map is probed at a random slot per event, and that cache miss
     * was most of the report's time (perf: ~60% in blk_find on 1e8 events).  Any
     * other record empties the queue first, so records are fed in file order.
     * (ALLOC and FREE hold no pointer into the reader's buffers.) */
    enum { AHEAD = 16 };
    struct ms_trace_rec rec, q[AHEAD];
    size_t qh = 0, qn = 0;
    int failed = 0;
    while (!failed && ms_trace_next(r, &rec) > 0) {
        if (rec.type == MS_REC_ALLOC || rec.type == MS_REC_FREE) {
            uint64_t a = rec.type == MS_REC_ALLOC ? rec.u.alloc.addr : rec.u.free.addr;
            if (m->blk_cap)
                __builtin_prefetch(&m->blk[blk_slot(m, a)]);
            if (qn == AHEAD) {
                failed = ms_model_feed(m, &q[qh]) < 0;
                qh = (qh + 1) % AHEAD;
                qn--;
            }
            q[(qh + qn) % AHEAD] = rec;
            qn++;
            continue;
        }
        for (; qn && !failed; qn--, qh = (qh + 1) % AHEAD)
            failed = ms_model_feed(m, &q[qh]) < 0;
        if (!failed)
            failed = ms_model_feed(m, &rec) < 0;
    }
    for (; qn && !failed; qn--, qh = (qh + 1) % AHEAD)
        failed = ms_model_feed(m, &q[qh]) < 0;
    *status = ms_trace_end(r);
    m->version = ms_trace_version(r);
    m->chunks = ms_trace_chunks(r);
    if (m->nomem && *status == MS_TRACE_OK)
        *status = MS_TRACE_NOMEM;
    if (msg) {
        if (m->nomem)
            snprintf(msg, msglen, "out of memory: the report covers what was read before");
        else
            snprintf(msg, msglen, "%s", ms_trace_message(r));
    }
    ms_trace_close(r);
    ms_model_finish(m);
    return m;
}
