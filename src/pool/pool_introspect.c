/* pool_introspect.c - libmemsleuth_pool: walks, printing, per-site tables,
 * the root registry's readers, consistency checks, the ready limit
 * handler. */
#include "pool_internal.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define BF_FILLED 0x08u /* as in pool.c */

/* ------------------------------------------------------ traversal */
/* Next pool after x in pre-order within top's subtree, or NULL. */
static struct ms_pool *next_pre(struct ms_pool *x, struct ms_pool *top, unsigned *depth)
{
    if (x->first_child) {
        (*depth)++;
        return x->first_child;
    }
    while (x != top && !x->next) {
        x = x->parent;
        (*depth)--;
    }
    return x == top ? NULL : x->next;
}

/* Fill the s_* totals of every pool in top's subtree. */
static void totals(struct ms_pool *top)
{
    struct ms_pool *x = top;
    for (;;) {
        x->s_bytes = pool_bytes(x);
        x->s_blocks = pool_blocks(x);
        x->s_pools = 1;
        if (x->first_child) {
            x = x->first_child;
            continue;
        }
        for (;;) { /* leave x */
            if (x == top)
                return;
            struct ms_pool *par = x->parent;
            par->s_bytes += x->s_bytes;
            par->s_blocks += x->s_blocks;
            par->s_pools += x->s_pools;
            if (x->next) {
                x = x->next;
                break;
            }
            x = par;
        }
    }
}

size_t ms_subtree_bytes(struct ms_pool *p)
{
    size_t b = 0;
    unsigned d = 0;
    for (struct ms_pool *x = p; x; x = next_pre(x, p, &d))
        b += pool_bytes(x);
    return b;
}

static size_t count_dtors(const struct ms_pool_dtor *d)
{
    size_t n = 0;
    for (; d; d = d->next)
        n++;
    return n;
}

static size_t count_refs_o(const struct ref *r)
{
    size_t n = 0;
    for (; r; r = r->onext)
        n++;
    return n;
}

static size_t count_refs_h(const struct ref *r)
{
    size_t n = 0;
    for (; r; r = r->hnext)
        n++;
    return n;
}

/* x's info; the s_* totals must be fresh. */
void ms_fill_info(struct ms_pool *x, struct ms_pool_node_info *o)
{
    memset(o, 0, sizeof *o);
    o->pool = x;
    o->parent = x->parent;
    o->name = x->name;
    o->file = x->file;
    o->line = x->line;
    o->bytes = pool_bytes(x);
    o->blocks = pool_blocks(x);
    o->subtree_bytes = x->s_bytes;
    o->subtree_blocks = x->s_blocks;
    o->subtree_pools = x->s_pools;
    for (struct ms_pool *c = x->first_child; c; c = c->next)
        o->children++;
    o->limit = x->limit;
    o->adopters = count_refs_o(x->adopters);
    o->held = count_refs_h(x->held);
    o->destructors = count_dtors(x->dtors);
    o->mem = ms_pool_mem(x);
}

static void fill_block(struct ms_pool *p, struct blk *h, struct ms_pool_block_info *o)
{
    o->ptr = h + 1;
    o->size = blk_size(h);
    const struct msite *st = site_get(blk_site(h));
    struct ext *e = blk_ext(h);
    o->file = st->file;
    o->line = st->line;
    o->owner = p;
    o->adopters = e ? count_refs_o(e->adopters) : 0;
    o->destructors = e ? count_dtors(e->dtors) : 0;
}

typedef int (*blk_cb)(struct ms_pool *p, struct blk *h, void *arg);

/* Call cb for each live block p owns; stops at a damaged header (see
 * ms_pool_check). */
static int each_block(struct ms_pool *p, blk_cb cb, void *arg)
{
    int r;
    for (struct chunk *c = p->chunk; c; c = c->next) {
        char *s = c->start, *e = c == p->chunk ? p->cur : c->used;
        while (s < e) {
            struct blk *h = (struct blk *)s;
            if ((blk_magic(h) != BLK_LIVE && blk_magic(h) != BLK_FREED) || blk_large(h))
                break;
            size_t fp = ms_blk_footprint(h);
            if (fp > (size_t)(e - s))
                break;
            if (blk_magic(h) == BLK_LIVE && !(blk_flags(h) & BF_FOREIGN) && (r = cb(p, h, arg)) != 0)
                return r;
            s += fp;
        }
    }
    for (struct lhdr *l = p->large; l; l = l->next) {
        struct blk *h = (struct blk *)(l + 1);
        if (blk_magic(h) == BLK_LIVE && (r = cb(p, h, arg)) != 0)
            return r;
    }
    for (struct ext *x = p->exts; x; x = x->next)
        if ((blk_flags(x->hdr) & BF_FOREIGN) && blk_magic(x->hdr) == BLK_LIVE && (r = cb(p, x->hdr, arg)) != 0)
            return r;
    return 0;
}

/* ------------------------------------------------------ info, walk */
int ms_pool_info(struct ms_pool *p, struct ms_pool_node_info *out)
{
    if (!pool_ok(p) || !out)
        return ms_bad_pool(out ? p : NULL, NULL, 0);
    totals(p);
    ms_fill_info(p, out);
    return 0;
}

int ms_pool_block_info(const void *ptr, struct ms_pool_block_info *out)
{
    struct blk *h = ms_live_blk(ptr, NULL, 0, 0);
    if (!h || !out) {
        errno = EINVAL;
        return -1;
    }
    fill_block(ms_blk_owner(h), h, out);
    return 0;
}

struct walk_ctx {
    ms_pool_walk_fn fn;
    void *arg;
    struct ms_pool_node_info *ni;
};

static int walk_blk(struct ms_pool *p, struct blk *h, void *arg)
{
    struct walk_ctx *w = arg;
    struct ms_pool_block_info bi;
    fill_block(p, h, &bi);
    return w->fn(w->ni, &bi, w->arg);
}

int ms_pool_walk(struct ms_pool *p, unsigned flags, ms_pool_walk_fn fn, void *arg)
{
    if (!pool_ok(p) || !fn)
        return ms_bad_pool(fn ? p : NULL, NULL, 0);
    totals(p);
    unsigned depth = 0;
    for (struct ms_pool *x = p; x; x = next_pre(x, p, &depth)) {
        struct ms_pool_node_info ni;
        ms_fill_info(x, &ni);
        ni.depth = depth;
        int r = fn(&ni, NULL, arg);
        if (r)
            return r;
        if (flags & MS_POOL_WALK_BLOCKS) {
            struct walk_ctx w = {fn, arg, &ni};
            if ((r = each_block(x, walk_blk, &w)) != 0)
                return r;
        }
    }
    return 0;
}

/* ------------------------------------------------------ printing */
struct print_ctx {
    FILE *out;
    unsigned depth;
};

static int print_blk(struct ms_pool *p, struct blk *h, void *arg)
{
    struct print_ctx *pc = arg;
    struct ms_pool_block_info bi;
    fill_block(p, h, &bi);
    fprintf(pc->out, "%*s- block %p: %zu B at %s:%d", (int)pc->depth * 2 + 2, "", bi.ptr, bi.size,
            bi.file ? bi.file : "?", bi.line);
    if (bi.adopters)
        fprintf(pc->out, ", %zu adopters", bi.adopters);
    if (bi.destructors)
        fprintf(pc->out, ", %zu destructors", bi.destructors);
    fputc('\n', pc->out);
    return 0;
}

static void print_pool_line(FILE *out, struct ms_pool *x, unsigned depth)
{
    struct ms_pool_node_info ni;
    ms_fill_info(x, &ni);
    fprintf(out, "%*spool %p", (int)depth * 2, "", (void *)x);
    if (ni.name)
        fprintf(out, " \"%s\"", ni.name);
    fprintf(out, " (%s:%d): own %zu B in %zu blocks; subtree %zu B in %zu blocks, %zu pools; %zu children",
            ni.file ? ni.file : "?", ni.line, ni.bytes, ni.blocks, ni.subtree_bytes, ni.subtree_blocks,
            ni.subtree_pools, ni.children);
    if (ni.limit)
        fprintf(out, "; limit %zu B (%zu used)", ni.limit, x->used);
    if (ni.adopters)
        fprintf(out, "; %zu adopters", ni.adopters);
    if (ni.held)
        fprintf(out, "; holds %zu", ni.held);
    if (ni.destructors)
        fprintf(out, "; %zu destructors", ni.destructors);
    fputc('\n', out);
}

int ms_pool_print(FILE *out, struct ms_pool *p, unsigned flags)
{
    if (!out || !pool_ok(p))
        return ms_bad_pool(out ? p : NULL, NULL, 0);
    totals(p);
    unsigned depth = 0;
    for (struct ms_pool *x = p; x; x = next_pre(x, p, &depth)) {
        print_pool_line(out, x, depth);
        if (flags & MS_POOL_PRINT_BLOCKS) {
            struct print_ctx pc = {out, depth};
            each_block(x, print_blk, &pc);
        }
    }
    if ((flags & MS_POOL_PRINT_SITES) && ms_pool_print_sites(out, p) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------ sites */
struct site {
    const char *file;
    int line;
    size_t bytes, count;
};

struct site_tab {
    struct site *v;
    size_t cap, n;
    int failed;
};

static size_t site_hash(const char *file, int line)
{
    size_t h = 1469598103934665603ull;
    if (file)
        for (const unsigned char *s = (const unsigned char *)file; *s; s++)
            h = (h ^ *s) * 1099511628211ull;
    return (h ^ (size_t)(unsigned)line) * 1099511628211ull;
}

static int site_eq(const struct site *s, const char *file, int line)
{
    if (s->line != line)
        return 0;
    if (s->file == file)
        return 1;
    return s->file && file && strcmp(s->file, file) == 0;
}

static int site_grow(struct site_tab *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    struct site *nv = ms_raw_calloc(ncap * sizeof *nv);
    if (!nv)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->v[i].count)
            continue;
        size_t j = site_hash(t->v[i].file, t->v[i].line) & (ncap - 1);
        while (nv[j].count)
            j = (j + 1) & (ncap - 1);
        nv[j] = t->v[i];
    }
    ms_raw_free(t->v, t->cap * sizeof *t->v);
    t->v = nv;
    t->cap = ncap;
    return 0;
}

static int site_add(struct ms_pool *p, struct blk *h, void *arg)
{
    (void)p;
    struct site_tab *t = arg;
    if ((t->n + 1) * 2 > t->cap && site_grow(t) < 0) {
        t->failed = 1;
        return 1;
    }
    const struct msite *st = site_get(blk_site(h));
    const char *file = st->file;
    int line = st->line;
    size_t j = site_hash(file, line) & (t->cap - 1);
    while (t->v[j].count && !site_eq(&t->v[j], file, line))
        j = (j + 1) & (t->cap - 1);
    if (!t->v[j].count) {
        t->v[j].file = file;
        t->v[j].line = line;
        t->n++;
    }
    t->v[j].count++;
    t->v[j].bytes += blk_size(h);
    return 0;
}

static int site_cmp(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

int ms_pool_print_sites(FILE *out, struct ms_pool *p)
{
    if (!out || !pool_ok(p))
        return ms_bad_pool(out ? p : NULL, NULL, 0);
    struct site_tab t = {0};
    if (site_grow(&t) < 0)
        return -1;
    unsigned depth = 0;
    for (struct ms_pool *x = p; x && !t.failed; x = next_pre(x, p, &depth))
        each_block(x, site_add, &t);
    if (t.failed) {
        ms_raw_free(t.v, t.cap * sizeof *t.v);
        errno = ENOMEM;
        return -1;
    }
    size_t k = 0, bytes = 0, blocks = 0;
    for (size_t i = 0; i < t.cap; i++)
        if (t.v[i].count) {
            bytes += t.v[i].bytes;
            blocks += t.v[i].count;
            t.v[k++] = t.v[i];
        }
    qsort(t.v, k, sizeof *t.v, site_cmp);
    fprintf(out, "sites of pool %p: %zu B in %zu blocks from %zu sites\n", (void *)p, bytes, blocks, k);
    fprintf(out, "%12s %9s  %s\n", "bytes", "blocks", "site");
    for (size_t i = 0; i < k; i++)
        fprintf(out, "%12zu %9zu  %s:%d\n", t.v[i].bytes, t.v[i].count, t.v[i].file ? t.v[i].file : "?",
                t.v[i].line);
    ms_raw_free(t.v, t.cap * sizeof *t.v);
    return (int)(k > INT32_MAX ? INT32_MAX : k);
}

/* ------------------------------------------------------ registry */
size_t ms_pool_roots(struct ms_pool **out, size_t max)
{
    pthread_mutex_lock(&ms_g_reg_lock);
    size_t n = 0;
    for (struct ms_pool *r = ms_g_roots; r; r = r->rnext, n++)
        if (out && n < max)
            out[n] = r;
    pthread_mutex_unlock(&ms_g_reg_lock);
    return n;
}

int ms_pool_foreach_root(int (*fn)(struct ms_pool *root, void *arg), void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    int r = 0;
    pthread_mutex_lock(&ms_g_reg_lock);
    for (struct ms_pool *p = ms_g_roots; p && !r; p = p->rnext)
        r = fn(p, arg);
    pthread_mutex_unlock(&ms_g_reg_lock);
    return r;
}

int ms_pool_dump_all(FILE *out, unsigned flags)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    /* the caller may have stopped the other threads, one of which may hold
     * the lock: wait a second at most, never forever */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    if (pthread_mutex_timedlock(&ms_g_reg_lock, &until) != 0) {
        fprintf(out, "=== memsleuth pool dump: pid %ld: the pool registry is busy ===\n", (long)getpid());
        fflush(out);
        errno = EBUSY;
        return -1;
    }
    fprintf(out, "=== memsleuth pool dump: pid %ld, %zu root(s) ===\n", (long)getpid(), ms_g_nroots);
    int n = 0;
    for (struct ms_pool *p = ms_g_roots; p; p = p->rnext, n++) {
        fprintf(out, "--- root %d\n", n + 1);
        ms_pool_print(out, p, flags);
    }
    fprintf(out, "=== end of memsleuth pool dump ===\n");
    fflush(out);
    pthread_mutex_unlock(&ms_g_reg_lock);
    return n;
}

/* ------------------------------------------------------ checks */
struct check_ctx {
    int problems;
};

static void corrupt(struct check_ctx *cc, const char *what, const void *ptr)
{
    cc->problems++;
    ms_report(MS_POOL_ERR_CORRUPT, what, ptr, 0, "ms_pool_check", 0, NULL, 0);
}

/* One pool's chunks, blocks, lists and counts. */
static void check_pool(struct ms_pool *x, struct check_ctx *cc)
{
    size_t bytes = 0, blocks = 0;
    for (struct chunk *c = x->chunk; c; c = c->next) {
        if (c->owner != x) {
            corrupt(cc, "chunk owner damaged", c);
            break;
        }
        char *s = c->start, *e = c == x->chunk ? x->cur : c->used;
        if (!e || e < s || e > c->end) {
            corrupt(cc, "chunk bounds damaged", c);
            continue;
        }
        while (s < e) {
            struct blk *h = (struct blk *)s;
            if ((blk_magic(h) != BLK_LIVE && blk_magic(h) != BLK_FREED) || blk_large(h) ||
                ms_blk_footprint(h) > (size_t)(e - s)) {
                cc->problems++;
                ms_report(debug_mode() ? MS_POOL_ERR_CANARY : MS_POOL_ERR_CORRUPT,
                          "block header overwritten (underflow of this block or overflow of the one before)",
                          h + 1, 0, "ms_pool_check", 0, NULL, 0);
                break;
            }
            unsigned fl = blk_flags(h);
            if (blk_magic(h) == BLK_LIVE) {
                if (!ms_check_canary(h)) {
                    cc->problems++;
                    ms_report(MS_POOL_ERR_CANARY, "canary after the block overwritten (buffer overflow)", h + 1,
                              blk_size(h), "ms_pool_check", 0, blk_file(h), blk_line(h));
                }
                if (!(fl & BF_FOREIGN)) {
                    bytes += blk_size(h);
                    blocks++;
                }
            } else if (fl & BF_FILLED) {
                const unsigned char *u = (const unsigned char *)(h + 1);
                for (size_t i = 0; i < blk_size(h); i++)
                    if (u[i] != MS_POOL_FILL_FREED) {
                        cc->problems++;
                        ms_report(MS_POOL_ERR_USE_AFTER_FREE, "freed block written to", h + 1, blk_size(h),
                                  "ms_pool_check", 0, blk_file(h), blk_line(h));
                        break;
                    }
            }
            s += ms_blk_footprint(h);
        }
    }
    for (struct lhdr *l = x->large; l; l = l->next) {
        struct blk *h = (struct blk *)(l + 1);
        if (l->owner != x || (l->next && l->next->prev != l) || !blk_large(h)) {
            corrupt(cc, "large block list damaged", h + 1);
            break;
        }
        if (blk_magic(h) == BLK_LIVE) {
            if (!ms_check_canary(h)) {
                cc->problems++;
                ms_report(MS_POOL_ERR_CANARY, "canary after the block overwritten (buffer overflow)", h + 1,
                          l->size, "ms_pool_check", 0, blk_file(h), blk_line(h));
            }
            bytes += l->size;
            blocks++;
        } else if (blk_magic(h) != BLK_FREED) {
            corrupt(cc, "large block header overwritten", h + 1);
        }
    }
    for (struct ext *e = x->exts; e; e = e->next) {
        if (e->owner != x || blk_magic(e->hdr) != BLK_LIVE || blk_ext(e->hdr) != e || (e->next && e->next->prev != e)) {
            corrupt(cc, "block extension list damaged", e->hdr + 1);
            break;
        }
        if (blk_flags(e->hdr) & BF_FOREIGN) {
            if (!ms_check_canary(e->hdr)) {
                cc->problems++;
                ms_report(MS_POOL_ERR_CANARY, "canary after the block overwritten (buffer overflow)",
                          e->hdr + 1, blk_size(e->hdr), "ms_pool_check", 0, blk_file(e->hdr), blk_line(e->hdr));
            }
            bytes += blk_size(e->hdr);
            blocks++;
        }
    }
    if (bytes != pool_bytes(x) || blocks != pool_blocks(x))
        corrupt(cc, "pool byte or block count wrong", x);
    if (x->limit && x->used != x->s_bytes)
        corrupt(cc, "limit use wrong", x);
    struct ms_pool *want = x->limit ? x : (x->parent ? x->parent->lim : NULL);
    if (x->lim != want)
        corrupt(cc, "limit chain wrong", x);
    for (struct ms_pool *c = x->first_child; c; c = c->next)
        if (c->parent != x || (c->next && c->next->prev != c) || c->magic != POOL_LIVE) {
            corrupt(cc, "child list damaged", x);
            break;
        }
}

static int check_tree(struct ms_pool *p)
{
    struct check_ctx cc = {0};
    if (!pool_ok(p)) {
        corrupt(&cc, "not a live pool", p);
        return cc.problems;
    }
    totals(p);
    unsigned depth = 0;
    for (struct ms_pool *x = p; x; x = next_pre(x, p, &depth))
        check_pool(x, &cc);
    return cc.problems;
}

static int check_root(struct ms_pool *root, void *arg)
{
    *(int *)arg += check_tree(root);
    return 0;
}

int ms_pool_check(struct ms_pool *p)
{
    if (p)
        return check_tree(p);
    int n = 0;
    ms_pool_foreach_root(check_root, &n);
    return n;
}

/* ------------------------------------------------------ ready limit handler */
void ms_pool_limit_abort(const struct ms_pool_limit_info *info, void *arg)
{
    FILE *out = arg ? (FILE *)arg : stderr;
    struct ms_pool *l = info->limited;
    fprintf(out,
            "memsleuth pool: limit of %zu bytes of pool %p (%s:%d) exceeded: %zu bytes used, %zu more "
            "requested in pool %p at %s:%d\n",
            info->limit, (void *)l, l->file ? l->file : "?", l->line, info->used, info->request,
            (void *)info->pool, info->file ? info->file : "?", info->line);
    struct ms_pool *root = l;
    while (root->parent)
        root = root->parent;
    ms_pool_print(out, root, MS_POOL_PRINT_BLOCKS | MS_POOL_PRINT_SITES);
    fflush(out);
    abort();
}
