/*
 * memsleuth - graph.c: the heap graph of a trace (see graph.h and
 * docs/trace-format.md, records 16 GRAPH, 17 GRAPH_NODES, 18 GRAPH_EDGES,
 * 19 GRAPH_ROOTS).
 *
 * One pass over the trace: MODULE records feed a symbolizer, STACK records a
 * table of stacks, the GRAPH records of one scan a graph under construction.
 * When a graph is complete (its counts match its GRAPH header) it becomes the
 * current one, and its roots' retained sizes are computed (for the growth
 * between the first and the last graph); at the end the current one is
 * analyzed in full (why alive).
 */
#include "graph.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "symbolize.h"
#include "trace_read.h"

enum { T_GRAPH = 16, T_NODES = 17, T_EDGES = 18, T_ROOTS = 19 };
enum { RG_REGS = 0, RG_STACK = 1, RG_TLS = 2, RG_MEM = 3 };
#define NONE UINT32_MAX

const char *ms_groot_kind_name(int kind)
{
    static const char *const n[] = { "global", "stack", "tls", "registers", "memory" };
    return kind >= 0 && kind < 5 ? n[kind] : "?";
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */
/* ------------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p ? p : "?";
}

struct cur {
    const unsigned char *p, *e;
    int bad;
};

static uint64_t get_varint(struct cur *c)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->e) {
            c->bad = 1;
            return 0;
        }
        unsigned b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = 1;
    return 0;
}

static int64_t get_svarint(struct cur *c)
{
    uint64_t z = get_varint(c);
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* ------------------------------------------------------------------ */
/* the graph as read                                                   */
/* ------------------------------------------------------------------ */

struct rgroup {
    int kind;
    uint64_t tid, lo, hi, pc, mod;
    char *tname;
};

struct redge {
    uint64_t addr, pc;
    uint32_t code, grp;
};

struct graph {
    uint64_t serial, snap, t, nblocks, nedges, nroots, ngroups, flags;
    uint64_t *addr, *size;
    uint32_t *stack;
    uint64_t *soff;           /* nn + 1 */
    size_t nn, cap_n, cap_off;
    uint32_t *succ;           /* target << 1 | interior */
    size_t ne, cap_e;
    uint32_t *eoffs;          /* per edge: offset of the pointer in its source block */
    size_t cap_o;
    int no_offsets;           /* a record without them (an older agent): offsets unknown */
    struct rgroup *g;
    size_t ng, cap_g;
    struct redge *re;
    size_t nre, cap_re;
    int bad;
};

static void graph_free(struct graph *g)
{
    if (!g)
        return;
    free(g->addr);
    free(g->size);
    free(g->stack);
    free(g->soff);
    free(g->succ);
    free(g->eoffs);
    for (size_t i = 0; i < g->ng; i++)
        free(g->g[i].tname);
    free(g->g);
    free(g->re);
    free(g);
}

static int graph_complete(const struct graph *g)
{
    return !g->bad && !(g->flags & 1) && g->nn == g->nblocks && g->ne == g->nedges &&
           g->nre == g->nroots;
}

/* the offsets appended to a NODES or EDGES record: one per edge it holds,
 * edges [from, g->ne) */
static void parse_offsets(struct graph *g, struct cur *c, size_t from)
{
    if (c->p >= c->e) {
        if (g->ne > from)
            g->no_offsets = 1;
        return;
    }
    if (ms_an_grow((void **)&g->eoffs, &g->cap_o, g->ne + 1, sizeof *g->eoffs)) {
        g->bad = 2;
        return;
    }
    for (size_t k = from; k < g->ne; k++) {
        uint64_t v = get_varint(c);
        g->eoffs[k] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    }
    if (c->bad)
        g->no_offsets = 1;
}

static void parse_nodes(struct graph *g, struct cur *c)
{
    size_t from = g->ne;
    uint64_t first = get_varint(c), count = get_varint(c);
    if (c->bad || first != g->nn || count > (uint64_t)(c->e - c->p)) {
        g->bad = 1;
        return;
    }
    uint64_t prev_addr = 0;
    for (uint64_t k = 0; k < count && !c->bad && !g->bad; k++) {
        size_t i = g->nn;
        if (ms_an_grow((void **)&g->addr, &g->cap_n, i + 1, sizeof *g->addr)) {
            g->bad = 2;
            return;
        }
        size_t cap = g->cap_n;
        uint64_t *ns = realloc(g->size, cap * sizeof *ns);
        if (ns)
            g->size = ns;
        uint32_t *nst = ns ? realloc(g->stack, cap * sizeof *nst) : NULL;
        if (nst)
            g->stack = nst;
        if (!ns || !nst || ms_an_grow((void **)&g->soff, &g->cap_off, i + 2, sizeof *g->soff)) {
            g->bad = 2;
            return;
        }
        prev_addr += get_varint(c);
        g->addr[i] = prev_addr;
        g->size[i] = get_varint(c);
        uint64_t st = get_varint(c);
        g->stack[i] = st > UINT32_MAX ? 0 : (uint32_t)st;
        uint64_t ne = get_varint(c);
        if (c->bad || ne > (uint64_t)(c->e - c->p) || i >= g->nblocks) {
            g->bad = 1;
            return;
        }
        g->soff[i] = g->ne;
        if (ms_an_grow((void **)&g->succ, &g->cap_e, g->ne + ne, sizeof *g->succ)) {
            g->bad = 2;
            return;
        }
        int64_t prev = (int64_t)i;
        for (uint64_t e = 0; e < ne; e++) {
            uint64_t code = get_varint(c);
            uint64_t z = code >> 1;
            int64_t d = prev + ((int64_t)(z >> 1) ^ -(int64_t)(z & 1));
            if (c->bad || d < 0 || (uint64_t)d >= g->nblocks) {
                g->bad = 1;
                return;
            }
            g->succ[g->ne++] = (uint32_t)d << 1 | (uint32_t)(code & 1);
            prev = d;
        }
        g->nn++;
        g->soff[g->nn] = g->ne;
    }
    if (!c->bad && !g->bad)
        parse_offsets(g, c, from);
}

static void parse_edges(struct graph *g, struct cur *c)
{
    uint64_t src = get_varint(c), n = get_varint(c);
    if (c->bad || !g->nn || src != g->nn - 1 || n > (uint64_t)(c->e - c->p) ||
        ms_an_grow((void **)&g->succ, &g->cap_e, g->ne + n, sizeof *g->succ)) {
        g->bad = 1;
        return;
    }
    int64_t prev = (int64_t)src;
    size_t from = g->ne;
    for (uint64_t e = 0; e < n; e++) {
        uint64_t code = get_varint(c);
        uint64_t z = code >> 1;
        int64_t d = prev + ((int64_t)(z >> 1) ^ -(int64_t)(z & 1));
        if (c->bad || d < 0 || (uint64_t)d >= g->nblocks) {
            g->bad = 1;
            return;
        }
        g->succ[g->ne++] = (uint32_t)d << 1 | (uint32_t)(code & 1);
        prev = d;
    }
    g->soff[g->nn] = g->ne;
    parse_offsets(g, c, from);
}

static void parse_roots(struct graph *g, struct cur *c)
{
    struct rgroup rg;
    memset(&rg, 0, sizeof rg);
    rg.kind = (int)get_varint(c);
    rg.tid = get_varint(c);
    uint64_t nl = get_varint(c);
    if (c->bad || nl > (uint64_t)(c->e - c->p)) {
        g->bad = 1;
        return;
    }
    const char *name = (const char *)c->p;
    c->p += nl;
    rg.lo = get_varint(c);
    rg.hi = get_varint(c);
    rg.pc = get_varint(c);
    rg.mod = get_varint(c);
    uint64_t n = get_varint(c);
    if (c->bad || n > (uint64_t)(c->e - c->p) ||
        ms_an_grow((void **)&g->g, &g->cap_g, g->ng + 1, sizeof *g->g) ||
        ms_an_grow((void **)&g->re, &g->cap_re, g->nre + n, sizeof *g->re)) {
        g->bad = 1;
        return;
    }
    rg.tname = strndup(name, nl);
    if (!rg.tname) {
        g->bad = 2;
        return;
    }
    uint32_t gi = (uint32_t)g->ng;
    g->g[g->ng++] = rg;
    uint64_t pa = rg.kind == RG_REGS ? 0 : rg.lo, ppc = 0;
    for (uint64_t k = 0; k < n; k++) {
        struct redge *e = &g->re[g->nre];
        pa += (uint64_t)get_svarint(c);
        e->addr = pa;
        uint64_t code = get_varint(c);
        if (rg.kind == RG_STACK)
            ppc += (uint64_t)get_svarint(c);
        e->pc = rg.kind == RG_STACK ? ppc : 0;
        if (c->bad || (code >> 1) >= g->nblocks) {
            g->bad = 1;
            return;
        }
        e->code = (uint32_t)code;
        e->grp = gi;
        g->nre++;
    }
}

/* ------------------------------------------------------------------ */
/* the reading context                                                 */
/* ------------------------------------------------------------------ */

struct ctx {
    struct ms_sym *sym;
    /* stacks by id */
    uint64_t *st_off;
    uint32_t *st_n;
    size_t st_cap;
    uint64_t *pcs;
    size_t npcs, cap_pcs;
    /* labels of stacks, cached */
    char **st_label;
    char **st_func;          /* the own frame's function */
    size_t lab_cap;
};

static const char *stack_label(struct ctx *x, uint64_t id, const char **func)
{
    static char unknown[] = "(unknown stack)";
    if (func)
        *func = NULL;
    if (id >= x->st_cap || !x->st_n[id])
        return unknown;
    if (id >= x->lab_cap) {
        size_t nc = x->st_cap;
        char **nl = realloc(x->st_label, nc * sizeof *nl);
        if (!nl)
            return unknown;
        x->st_label = nl;
        char **nf = realloc(x->st_func, nc * sizeof *nf);
        if (!nf)
            return unknown;
        x->st_func = nf;
        for (size_t i = x->lab_cap; i < nc; i++)
            x->st_label[i] = x->st_func[i] = NULL;
        x->lab_cap = nc;
    }
    if (!x->st_label[id]) {
        struct ms_an_stack st = { 0 };
        char buf[1024];
        if (ms_an_resolve(x->sym, x->pcs + x->st_off[id], x->st_n[id], &st) == 0) {
            ms_an_site_label(&st, buf, sizeof buf);
            const struct ms_an_frame *f = ms_an_own_frame(&st);
            x->st_func[id] = f && f->function ? strdup(f->function) : NULL;
            ms_an_stack_release(&st);
        } else {
            snprintf(buf, sizeof buf, "(stack %" PRIu64 ")", id);
        }
        x->st_label[id] = strdup(buf);
        if (!x->st_label[id])
            return unknown;
    }
    if (func)
        *func = x->st_func[id];
    return x->st_label[id];
}

/* does any frame of stack id name function fn? */
static int stack_has_function(struct ctx *x, uint64_t id, const char *fn)
{
    if (id >= x->st_cap || !x->st_n[id])
        return 0;
    struct ms_an_stack st = { 0 };
    int found = 0;
    if (ms_an_resolve(x->sym, x->pcs + x->st_off[id], x->st_n[id], &st) == 0) {
        for (size_t i = 0; i < st.n && !found; i++)
            found = st.f[i].function && !strcmp(st.f[i].function, fn);
        ms_an_stack_release(&st);
    }
    return found;
}

/* ------------------------------------------------------------------ */
/* naming the roots                                                    */
/* ------------------------------------------------------------------ */

struct rootset {
    struct ms_groot *r;
    size_t n, cap;
    /* hash of keys -> index */
    char **keys;
    uint32_t *slot;           /* index + 1, 0 empty */
    size_t hcap;
};

static uint64_t hash_s(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void rootset_free(struct rootset *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        struct ms_groot *r = &rs->r[i];
        free(r->name);
        free(r->where);
        free(r->module);
        free(r->section);
        free(r->thread);
        free(r->function);
        free(r->file);
        free(rs->keys[i]);
    }
    free(rs->r);
    free(rs->keys);
    free(rs->slot);
    memset(rs, 0, sizeof *rs);
}

/* the index of the root with this key; *fresh = 1 if it was created (the
 * caller fills it) */
static long root_of(struct rootset *rs, const char *key, int *fresh)
{
    *fresh = 0;
    if (rs->n * 2 + 2 > rs->hcap) {
        size_t nc = rs->hcap ? rs->hcap * 2 : 64;
        uint32_t *ns = calloc(nc, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < rs->n; i++) {
            size_t h = hash_s(rs->keys[i]) & (nc - 1);
            while (ns[h])
                h = (h + 1) & (nc - 1);
            ns[h] = (uint32_t)i + 1;
        }
        free(rs->slot);
        rs->slot = ns;
        rs->hcap = nc;
    }
    size_t h = hash_s(key) & (rs->hcap - 1);
    while (rs->slot[h]) {
        if (!strcmp(rs->keys[rs->slot[h] - 1], key))
            return rs->slot[h] - 1;
        h = (h + 1) & (rs->hcap - 1);
    }
    size_t cap = rs->cap;
    if (ms_an_grow((void **)&rs->r, &rs->cap, rs->n + 1, sizeof *rs->r))
        return -1;
    if (rs->cap != cap) {
        char **nk = realloc(rs->keys, rs->cap * sizeof *nk);
        if (!nk)
            return -1;
        rs->keys = nk;
    }
    rs->keys[rs->n] = strdup(key);
    if (!rs->keys[rs->n])
        return -1;
    memset(&rs->r[rs->n], 0, sizeof rs->r[rs->n]);
    rs->slot[h] = (uint32_t)rs->n + 1;
    *fresh = 1;
    return (long)rs->n++;
}

static char *thread_label(const struct rgroup *g)
{
    if (g->tname && g->tname[0])
        return fmt("thread '%s' (tid %" PRIu64 ")", g->tname, g->tid);
    return fmt("thread %" PRIu64, g->tid);
}

/* name the root of edge e; returns the root index or -1 (out of memory) */
static long name_root(struct ctx *x, struct rootset *rs, const struct graph *gr, const struct redge *e,
                      uint64_t *cache_lo, uint64_t *cache_hi,
                      long *cache_root)
{
    const struct rgroup *g = &gr->g[e->grp];
    char key[2048];
    int fresh = 0;
    long ri = -1;
    switch (g->kind) {
    case RG_REGS: {
        snprintf(key, sizeof key, "R|%" PRIu64, g->tid);
        ri = root_of(rs, key, &fresh);
        if (ri >= 0 && fresh) {
            rs->r[ri].kind = MS_GROOT_REGS;
            char *t = thread_label(g);
            rs->r[ri].name = fmt("registers of %s", t ? t : "?");
            free(t);
            rs->r[ri].where = strdup("");
            rs->r[ri].thread = xstrdup(g->tname);
            rs->r[ri].tid = g->tid;
        }
        break;
    }
    case RG_STACK: {
        uint64_t pc = e->pc ? e->pc - 1 : g->pc;
        struct ms_sym_frame fr[MS_SYM_MAX_FRAMES];
        int nf = pc && x->sym ? ms_sym_resolve(x->sym, pc, fr, MS_SYM_MAX_FRAMES) : 0;
        const struct ms_sym_frame *f = nf > 0 ? &fr[0] : NULL;
        const char *fn = f && f->function ? f->function : NULL;
        snprintf(key, sizeof key, "S|%" PRIu64 "|%s", g->tid, fn ? fn : "?");
        ri = root_of(rs, key, &fresh);
        if (ri >= 0 && fresh) {
            struct ms_groot *r = &rs->r[ri];
            r->kind = MS_GROOT_STACK;
            char *t = thread_label(g);
            r->name = fmt("stack of %s", t ? t : "?");
            free(t);
            if (fn && f->file)
                r->where = fmt("%s (%s:%d)", fn, f->file, f->line);
            else if (fn)
                r->where = fmt("%s (in %s)", fn, base_name(f->module));
            else
                r->where = strdup("");
            r->thread = xstrdup(g->tname);
            r->tid = g->tid;
            r->function = xstrdup(fn);
            r->file = f ? xstrdup(f->file) : NULL;
            r->line = f ? f->line : 0;
        }
        break;
    }
    case RG_TLS: {
        struct ms_sym_data d;
        int in = x->sym && g->mod ? ms_sym_tls(x->sym, g->mod, e->addr - g->lo, &d) : 0;
        if (!in)
            memset(&d, 0, sizeof d);
        snprintf(key, sizeof key, "T|%" PRIu64 "|%s|%s", g->tid, d.name ? d.name : "",
                 d.module ? d.module : "");
        ri = root_of(rs, key, &fresh);
        if (ri >= 0 && fresh) {
            struct ms_groot *r = &rs->r[ri];
            r->kind = MS_GROOT_TLS;
            char *t = thread_label(g);
            if (!g->mod) { /* the agent's area at the thread pointer */
                r->name = fmt("thread descriptor of %s", t ? t : "?");
                r->where = strdup("");
            } else {
                r->name = d.name ? strdup(d.name) : fmt("thread-local storage");
                r->where = fmt("TLS of %s, %s", t ? t : "?", d.module ? base_name(d.module) : "?");
            }
            free(t);
            r->module = xstrdup(d.module);
            r->thread = xstrdup(g->tname);
            r->tid = g->tid;
        }
        break;
    }
    default: {
        if (*cache_root >= 0 && e->addr >= *cache_lo && e->addr < *cache_hi)
            return *cache_root;
        struct ms_sym_data d;
        int in = x->sym ? ms_sym_data(x->sym, e->addr, &d) : 0;
        if (in) {
            if (d.name)
                snprintf(key, sizeof key, "G|%s|%s|%s", d.name, d.module ? d.module : "",
                         d.section ? d.section : "");
            else
                snprintf(key, sizeof key, "G||%s|%s", d.module ? d.module : "",
                         d.section ? d.section : "");
        } else {
            snprintf(key, sizeof key, "M|%" PRIx64 "|%" PRIx64, g->lo, g->hi);
        }
        ri = root_of(rs, key, &fresh);
        if (ri >= 0 && fresh) {
            struct ms_groot *r = &rs->r[ri];
            if (in) {
                r->kind = MS_GROOT_GLOBAL;
                if (d.name)
                    r->name = strdup(d.name);
                else if (d.section)
                    r->name = fmt("%s of %s", d.section, base_name(d.module));
                else
                    r->name = fmt("data of %s", base_name(d.module));
                r->where = d.section ? fmt("%s, %s", base_name(d.module), d.section)
                                     : strdup(base_name(d.module));
                r->module = xstrdup(d.module);
                r->section = xstrdup(d.section);
            } else {
                r->kind = MS_GROOT_MEMORY;
                r->name = fmt("anonymous mapping 0x%" PRIx64 "-0x%" PRIx64, g->lo, g->hi);
                r->where = strdup("");
            }
        }
        if (in && d.size) {
            *cache_lo = d.start;
            *cache_hi = d.start + d.size;
        } else {
            *cache_lo = g->lo;
            *cache_hi = in ? g->lo : g->hi; /* no symbol: no cache (per address lookups) */
        }
        *cache_root = ri;
        break;
    }
    }
    if (ri >= 0 && fresh)
        rs->r[ri].address = e->addr;
    if (ri >= 0 && e->addr < rs->r[ri].address && g->kind != RG_REGS)
        rs->r[ri].address = e->addr;
    return ri;
}

/* ------------------------------------------------------------------ */
/* dominators                                                          */
/* ------------------------------------------------------------------ */

/* The whole graph: nodes 0..NB-1 blocks, NB..NB+R-1 roots, NB+R the virtual
 * root.  Successors: blocks from g->succ, roots from rsucc (by root), the
 * virtual root every root. */
struct full {
    const struct graph *g;
    size_t NB, R, N;
    uint32_t *eroot;          /* root index of each root edge */
    uint64_t *roff;           /* R + 1: root edges by root */
    uint32_t *rsucc;          /* block << 1 | interior */
    uint64_t *rsrc;           /* the root edge's address, same order */
};

static void full_free(struct full *f)
{
    free(f->eroot);
    free(f->roff);
    free(f->rsucc);
    free(f->rsrc);
}

static int build_full(struct full *f, const struct graph *g, size_t R)
{
    f->g = g;
    f->NB = g->nn;
    f->R = R;
    f->N = f->NB + R + 1;
    f->roff = calloc(R + 1, sizeof *f->roff);
    f->rsucc = malloc((g->nre + 1) * sizeof *f->rsucc);
    f->rsrc = malloc((g->nre + 1) * sizeof *f->rsrc);
    if (!f->roff || !f->rsucc || !f->rsrc)
        return -1;
    for (size_t i = 0; i < g->nre; i++)
        f->roff[f->eroot[i] + 1]++;
    for (size_t r = 0; r < R; r++)
        f->roff[r + 1] += f->roff[r];
    uint64_t *pos = malloc((R + 1) * sizeof *pos);
    if (!pos)
        return -1;
    memcpy(pos, f->roff, (R + 1) * sizeof *pos);
    for (size_t i = 0; i < g->nre; i++) {
        uint64_t k = pos[f->eroot[i]]++;
        f->rsucc[k] = g->re[i].code;
        f->rsrc[k] = g->re[i].addr;
    }
    free(pos);
    return 0;
}

/* successors of v: [*b, *e) of the array returned (codes, or NULL for the
 * virtual root: the roots) */
static const uint32_t *succ_of(const struct full *f, size_t v, uint64_t *b, uint64_t *e)
{
    if (v < f->NB) {
        *b = f->g->soff[v];
        *e = f->g->soff[v + 1];
        return f->g->succ;
    }
    if (v < f->NB + f->R) {
        *b = f->roff[v - f->NB];
        *e = f->roff[v - f->NB + 1];
        return f->rsucc;
    }
    *b = 0;
    *e = f->R;
    return NULL;
}

static inline size_t target(const struct full *f, const uint32_t *a, uint64_t k)
{
    return a ? a[k] >> 1 : f->NB + k;
}

struct dom {
    uint32_t *dfnum;          /* per node: DFS number (1-based), 0 unreached */
    uint32_t *vertex;         /* per number: node */
    uint32_t *idom;           /* per number: number of the immediate dominator */
    uint32_t n;               /* nodes reached */
};

static void dom_free(struct dom *d)
{
    free(d->dfnum);
    free(d->vertex);
    free(d->idom);
}

/* Lengauer-Tarjan with path compression (the "simple" version), all loops
 * iterative.  Returns 0, -1 out of memory. */
static int dominators(const struct full *f, struct dom *d)
{
    size_t N = f->N;
    if (N >= UINT32_MAX - 1)
        return -1;
    int rc = -1;
    d->dfnum = calloc(N, sizeof *d->dfnum);
    d->vertex = malloc((N + 1) * sizeof *d->vertex);
    d->idom = calloc(N + 1, sizeof *d->idom);
    uint32_t *parent = malloc((N + 1) * sizeof *parent);
    uint32_t *semi = NULL, *label = NULL, *anc = NULL, *bhead = NULL, *bnext = NULL, *cstack = NULL;
    uint64_t *pcount = NULL;
    uint32_t *preds = NULL;
    struct sitem { uint32_t v, from; } *stk = NULL;
    size_t nstk = 0, cap_stk = 0;
    if (!d->dfnum || !d->vertex || !d->idom || !parent)
        goto out;
    /* DFS: a stack of (node, the number of the node it was reached from) */
    if (ms_an_grow((void **)&stk, &cap_stk, 1024, sizeof *stk))
        goto out;
    stk[nstk++] = (struct sitem){ (uint32_t)(N - 1), 0 };
    uint32_t n = 0;
    while (nstk) {
        struct sitem it = stk[--nstk];
        if (d->dfnum[it.v])
            continue;
        d->dfnum[it.v] = ++n;
        d->vertex[n] = it.v;
        parent[n] = it.from;
        uint64_t b, e;
        const uint32_t *a = succ_of(f, it.v, &b, &e);
        if (ms_an_grow((void **)&stk, &cap_stk, nstk + (e - b), sizeof *stk))
            goto out;
        /* pushed in reverse: the first successor is visited first */
        for (uint64_t k = e; k-- > b;) {
            size_t w = target(f, a, k);
            if (!d->dfnum[w])
                stk[nstk++] = (struct sitem){ (uint32_t)w, n };
        }
    }
    free(stk);
    stk = NULL;
    d->n = n;
    /* predecessors in DFS numbers, only between reached nodes */
    pcount = calloc((size_t)n + 2, sizeof *pcount);
    if (!pcount)
        goto out;
    for (uint32_t k = 1; k <= n; k++) {
        uint64_t b, e;
        const uint32_t *a = succ_of(f, d->vertex[k], &b, &e);
        for (uint64_t j = b; j < e; j++)
            pcount[d->dfnum[target(f, a, j)] + 1]++;
    }
    for (uint32_t k = 1; k <= n + 1; k++)
        pcount[k] += pcount[k - 1];
    preds = malloc((pcount[n + 1] + 1) * sizeof *preds);
    uint64_t *fill = malloc(((size_t)n + 2) * sizeof *fill);
    if (!preds || !fill) {
        free(fill);
        goto out;
    }
    memcpy(fill, pcount, ((size_t)n + 2) * sizeof *fill);
    for (uint32_t k = 1; k <= n; k++) {
        uint64_t b, e;
        const uint32_t *a = succ_of(f, d->vertex[k], &b, &e);
        for (uint64_t j = b; j < e; j++)
            preds[fill[d->dfnum[target(f, a, j)]]++] = k;
    }
    free(fill);
    semi = malloc(((size_t)n + 1) * sizeof *semi);
    label = malloc(((size_t)n + 1) * sizeof *label);
    anc = calloc((size_t)n + 1, sizeof *anc);
    bhead = calloc((size_t)n + 1, sizeof *bhead);
    bnext = malloc(((size_t)n + 1) * sizeof *bnext);
    cstack = malloc(((size_t)n + 1) * sizeof *cstack);
    if (!semi || !label || !anc || !bhead || !bnext || !cstack)
        goto out;
    for (uint32_t k = 0; k <= n; k++)
        semi[k] = label[k] = k;
    for (uint32_t w = n; w >= 2; w--) {
        for (uint64_t j = pcount[w]; j < pcount[w + 1]; j++) {
            uint32_t v = preds[j];
            /* eval(v): compress the path v -> ... (iteratively) */
            uint32_t u = v;
            if (anc[v]) {
                size_t sp = 0;
                uint32_t x = v;
                while (anc[anc[x]]) {
                    cstack[sp++] = x;
                    x = anc[x];
                }
                while (sp) {
                    uint32_t y = cstack[--sp];
                    if (semi[label[anc[y]]] < semi[label[y]])
                        label[y] = label[anc[y]];
                    anc[y] = anc[anc[y]];
                }
                u = label[v];
            }
            if (semi[u] < semi[w])
                semi[w] = semi[u];
        }
        bnext[w] = bhead[semi[w]];
        bhead[semi[w]] = w;
        uint32_t p = parent[w];
        anc[w] = p;
        for (uint32_t v = bhead[p]; v; v = bnext[v]) {
            uint32_t u = v;
            if (anc[v]) {
                size_t sp = 0;
                uint32_t x = v;
                while (anc[anc[x]]) {
                    cstack[sp++] = x;
                    x = anc[x];
                }
                while (sp) {
                    uint32_t y = cstack[--sp];
                    if (semi[label[anc[y]]] < semi[label[y]])
                        label[y] = label[anc[y]];
                    anc[y] = anc[anc[y]];
                }
                u = label[v];
            }
            d->idom[v] = semi[u] < semi[v] ? u : p;
        }
        bhead[p] = 0;
    }
    for (uint32_t w = 2; w <= n; w++)
        if (d->idom[w] != semi[w])
            d->idom[w] = d->idom[d->idom[w]];
    d->idom[1] = 0;
    rc = 0;
out:
    free(stk);
    free(parent);
    free(semi);
    free(label);
    free(anc);
    free(bhead);
    free(bnext);
    free(cstack);
    free(pcount);
    free(preds);
    return rc;
}

/* ------------------------------------------------------------------ */
/* analysis of one graph                                               */
/* ------------------------------------------------------------------ */

struct analysis {
    struct rootset rs;
    struct full f;
    struct dom d;
    uint64_t *rb, *rk;        /* per DFS number: retained bytes, blocks */
    uint64_t bytes, unreach_bytes, unreach_blocks, shared_bytes, shared_blocks;
};

static void analysis_free(struct analysis *a)
{
    rootset_free(&a->rs);
    full_free(&a->f);
    dom_free(&a->d);
    free(a->rb);
    free(a->rk);
    memset(a, 0, sizeof *a);
}

static int analyze(struct ctx *x, const struct graph *g, struct analysis *a)
{
    memset(a, 0, sizeof *a);
    a->f.eroot = malloc((g->nre + 1) * sizeof *a->f.eroot);
    if (!a->f.eroot)
        return -1;
    uint64_t clo = 0, chi = 0;
    long croot = -1;
    uint32_t last_grp = NONE;
    for (size_t i = 0; i < g->nre; i++) {
        if (g->re[i].grp != last_grp) {
            croot = -1;
            last_grp = g->re[i].grp;
        }
        long r = name_root(x, &a->rs, g, &g->re[i], &clo, &chi, &croot);
        if (r < 0)
            return -1;
        a->f.eroot[i] = (uint32_t)r;
        a->rs.r[r].pointers++;
    }
    if (build_full(&a->f, g, a->rs.n) < 0 || dominators(&a->f, &a->d) < 0)
        return -1;
    /* retained: sizes summed up the dominator tree (idom[k] < k) */
    uint32_t n = a->d.n;
    uint64_t *rb = calloc((size_t)n + 1, sizeof *rb), *rk = calloc((size_t)n + 1, sizeof *rk);
    if (!rb || !rk) {
        free(rb);
        free(rk);
        return -1;
    }
    for (uint32_t k = 1; k <= n; k++) {
        uint32_t v = a->d.vertex[k];
        if (v < a->f.NB) {
            rb[k] = g->size[v];
            rk[k] = 1;
        }
    }
    for (uint32_t k = n; k >= 2; k--) {
        uint32_t p = a->d.idom[k];
        rb[p] += rb[k];
        rk[p] += rk[k];
        if (p == 1) { /* dominated by no single root */
            uint32_t v = a->d.vertex[k];
            if (v < a->f.NB) {
                a->shared_bytes += rb[k];
                a->shared_blocks += rk[k];
            }
        }
    }
    for (size_t r = 0; r < a->rs.n; r++) {
        uint32_t k = a->d.dfnum[a->f.NB + r];
        a->rs.r[r].retained_bytes = k ? rb[k] : 0;
        a->rs.r[r].retained_blocks = k ? rk[k] : 0;
    }
    for (size_t v = 0; v < a->f.NB; v++) {
        a->bytes += g->size[v];
        if (!a->d.dfnum[v]) {
            a->unreach_bytes += g->size[v];
            a->unreach_blocks++;
        }
    }
    a->rb = rb;
    a->rk = rk;
    return 0;
}

static const struct ms_groot *sort_roots;
static int by_retained_idx(const void *x, const void *y)
{
    const struct ms_groot *a = &sort_roots[*(const size_t *)x], *b = &sort_roots[*(const size_t *)y];
    if (a->retained_bytes != b->retained_bytes)
        return a->retained_bytes > b->retained_bytes ? -1 : 1;
    if (a->pointers != b->pointers)
        return a->pointers > b->pointers ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* ------------------------------------------------------------------ */
/* why alive                                                           */
/* ------------------------------------------------------------------ */

static void chain_free(struct ms_gchain *ch)
{
    free(ch->query);
    free(ch->site);
    free(ch->why_not);
    free(ch->root_label);
    for (size_t i = 0; i < ch->nsteps; i++) {
        free(ch->steps[i].site);
        free(ch->steps[i].holder);
    }
    free(ch->steps);
    memset(ch, 0, sizeof *ch);
}

static void why_alive(struct ctx *x, const struct graph *g, struct analysis *a, const char *query,
                      uint64_t want_stack, struct ms_gchain *ch)
{
    ch->root = -1;
    size_t NB = a->f.NB, N = a->f.N;
    /* the sites asked about: a bitmap over stack ids */
    uint64_t maxid = 0;
    for (size_t v = 0; v < NB; v++)
        if (g->stack[v] > maxid)
            maxid = g->stack[v];
    uint8_t *want = calloc(maxid + 2, 1), *seen = calloc(maxid + 2, 1);
    uint32_t *par = malloc(N * sizeof *par), *q = malloc(N * sizeof *q);
    if (!want || !seen || !par || !q) {
        ch->why_not = strdup("out of memory");
        goto out;
    }
    char *end = NULL;
    unsigned long long num = query ? strtoull(query, &end, 10) : want_stack;
    if (!query || (end && *end == 0 && end != query)) {
        if (num <= maxid)
            want[num] = 1;
    } else {
        /* a function name: the sites whose own frame is it, else any frame */
        for (size_t v = 0; v < NB; v++)
            seen[g->stack[v]] = 1;
        int any = 0;
        for (uint64_t id = 0; id <= maxid; id++) {
            const char *fn;
            if (!seen[id])
                continue;
            stack_label(x, id, &fn);
            if (fn && !strcmp(fn, query))
                want[id] = 1, any = 1;
        }
        for (uint64_t id = 0; !any && id <= maxid; id++)
            if (seen[id] && stack_has_function(x, id, query))
                want[id] = 1;
    }
    for (size_t v = 0; v < NB; v++)
        if (want[g->stack[v]]) {
            ch->site_blocks++;
            ch->site_bytes += g->size[v];
        }
    if (!ch->site_blocks) {
        ch->why_not = strdup("no live block of this site in the graph");
        goto out;
    }
    /* BFS from the virtual root */
    for (size_t v = 0; v < N; v++)
        par[v] = NONE;
    size_t qh = 0, qt = 0;
    q[qt++] = (uint32_t)(N - 1);
    par[N - 1] = (uint32_t)(N - 1);
    long hit = -1;
    while (qh < qt && hit < 0) {
        uint32_t v = q[qh++];
        uint64_t b, e;
        const uint32_t *arr = succ_of(&a->f, v, &b, &e);
        for (uint64_t k = b; k < e; k++) {
            size_t w = target(&a->f, arr, k);
            if (par[w] != NONE)
                continue;
            par[w] = v;
            q[qt++] = (uint32_t)w;
            if (w < NB && want[g->stack[w]]) {
                hit = (long)w;
                break;
            }
        }
    }
    if (hit < 0) {
        ch->why_not = strdup("none of its blocks is reachable from a root (they are leaked)");
        goto out;
    }
    /* the chain, from the root down */
    size_t len = 0;
    for (size_t v = (size_t)hit; v < NB; v = par[v])
        len++;
    ch->steps = calloc(len, sizeof *ch->steps);
    uint32_t *path = malloc(len * sizeof *path);
    if (!ch->steps || !path) {
        free(path);
        ch->why_not = strdup("out of memory");
        goto out;
    }
    ch->nsteps = len;
    size_t v = (size_t)hit;
    for (size_t k = len; k-- > 0; v = par[v])
        path[k] = (uint32_t)v;
    size_t root = v - NB;
    for (size_t i = 0; i < len; i++) {
        struct ms_gstep *s = &ch->steps[i];
        size_t node = path[i], from = i ? path[i - 1] : NB + root;
        s->addr = g->addr[node];
        s->size = g->size[node];
        s->stack_id = g->stack[node];
        s->site = strdup(stack_label(x, g->stack[node], NULL));
        uint64_t b, e;
        const uint32_t *arr = succ_of(&a->f, from, &b, &e);
        s->offset = -1;
        for (uint64_t j = b; j < e; j++)
            if (target(&a->f, arr, j) == node) {
                s->interior = arr ? (int)(arr[j] & 1) : 0;
                if (i == 0)
                    ch->root_addr = a->f.rsrc[j];
                else if (!g->no_offsets && g->eoffs && j < g->ne)
                    s->offset = g->eoffs[j];
                break;
            }
        if (i > 0) { /* the block holding the pointer: its site's own function */
            const char *fn = NULL;
            stack_label(x, g->stack[from], &fn);
            s->holder = strdup(fn ? fn : stack_label(x, g->stack[from], NULL));
        }
    }
    free(path);
    ch->root = (long)root;
    ch->found = 1;
    ch->stack_id = g->stack[hit];
    ch->site = strdup(stack_label(x, g->stack[hit], NULL));
    const struct ms_groot *r = &a->rs.r[root];
    if (r->kind == MS_GROOT_GLOBAL && r->section && ch->root_addr >= r->address && r->name)
        ch->root_label = fmt("%s+%" PRIu64 " (%s)", r->name, ch->root_addr - r->address, r->where);
    else if (r->kind == MS_GROOT_REGS)
        ch->root_label = fmt("%s, register %" PRIu64, r->name, ch->root_addr);
    else if (r->where && r->where[0])
        ch->root_label = fmt("%s (%s)", r->name, r->where);
    else
        ch->root_label = strdup(r->name);
out:
    free(want);
    free(seen);
    free(par);
    free(q);
}

/* why alive for the sites with the most bytes in the graph: the
 * MS_GRAPH_WHY_SITES largest that a root reaches (at most twice as many
 * tried: each is one BFS over the graph) */
static int by_bytes_desc(const void *x, const void *y)
{
    const uint64_t *a = x, *b = y; /* {bytes, stack id} */
    if (a[0] != b[0])
        return a[0] > b[0] ? -1 : 1;
    return a[1] < b[1] ? -1 : a[1] > b[1];
}

static void why_top_sites(struct ctx *x, const struct graph *g, struct analysis *a, uint64_t skip_stack,
                          struct ms_graph_info *info)
{
    size_t NB = a->f.NB;
    uint64_t maxid = 0;
    for (size_t v = 0; v < NB; v++)
        if (g->stack[v] > maxid)
            maxid = g->stack[v];
    uint64_t *bytes = calloc(maxid + 1, sizeof *bytes);
    info->why_sites = calloc(MS_GRAPH_WHY_SITES, sizeof *info->why_sites);
    if (!bytes || !info->why_sites) {
        free(bytes);
        return;
    }
    size_t nsites = 0;
    for (size_t v = 0; v < NB; v++) {
        if (!bytes[g->stack[v]])
            nsites++;
        bytes[g->stack[v]] += g->size[v] ? g->size[v] : 1;
    }
    uint64_t (*order)[2] = malloc((nsites + 1) * sizeof *order);
    size_t n = 0;
    for (uint64_t id = 0; order && id <= maxid; id++)
        if (bytes[id] && id != skip_stack) {
            order[n][0] = bytes[id];
            order[n][1] = id;
            n++;
        }
    free(bytes);
    if (!order)
        return;
    qsort(order, n, sizeof *order, by_bytes_desc);
    for (size_t i = 0; i < n && i < 2 * MS_GRAPH_WHY_SITES && info->nwhy_sites < MS_GRAPH_WHY_SITES; i++) {
        struct ms_gchain *ch = &info->why_sites[info->nwhy_sites];
        memset(ch, 0, sizeof *ch);
        ch->query = fmt("%" PRIu64, order[i][1]);
        why_alive(x, g, a, NULL, order[i][1], ch);
        if (ch->found)
            info->nwhy_sites++;
        else
            chain_free(ch);
    }
    free(order);
}

/* ------------------------------------------------------------------ */
/* the dominator tree, as rows for the reports                         */
/* ------------------------------------------------------------------ */

#define TREE_ROWS 600         /* rows at most */
#define TREE_KIDS 8           /* children shown per row, the largest */
#define TREE_DEPTH 8          /* levels below a root */

static const uint64_t *sort_rb;
static int by_rb_desc(const void *x, const void *y)
{
    uint64_t a = sort_rb[*(const uint32_t *)x], b = sort_rb[*(const uint32_t *)y];
    return a != b ? (a > b ? -1 : 1) : (*(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1);
}

/* rows for the roots in info->roots order (perm: their index in a->rs) */
static int build_tree(struct ctx *x, const struct graph *g, const struct analysis *a,
                      struct ms_graph_info *info, const size_t *perm, int top)
{
    uint32_t n = a->d.n;
    uint32_t *cstart = calloc((size_t)n + 2, sizeof *cstart), *clist = malloc(((size_t)n + 1) * sizeof *clist);
    uint32_t *fill = calloc((size_t)n + 2, sizeof *fill), *tmp = malloc(((size_t)n + 1) * sizeof *tmp);
    info->tree = calloc(TREE_ROWS, sizeof *info->tree);
    struct { uint32_t k; long row; int depth; } *stk = malloc(TREE_ROWS * sizeof *stk);
    int rc = -1;
    if (!cstart || !clist || !fill || !tmp || !info->tree || !stk)
        goto out;
    for (uint32_t k = 2; k <= n; k++)
        cstart[a->d.idom[k] + 1]++;
    for (uint32_t k = 1; k <= n + 1 && k < n + 2; k++)
        cstart[k] += cstart[k - 1];
    for (uint32_t k = 2; k <= n; k++) {
        uint32_t p = a->d.idom[k];
        clist[cstart[p] + fill[p]++] = k;
    }
    sort_rb = a->rb;
    size_t NB = a->f.NB;
    for (size_t i = 0; i < info->nroots && (int)i < top && info->ntree < TREE_ROWS; i++) {
        const struct ms_groot *r = &info->roots[i];
        uint32_t kr = a->d.dfnum[NB + perm[i]];
        if (!kr || !r->retained_blocks)
            continue;
        size_t nst = 0;
        stk[nst].k = kr;
        stk[nst].row = -1;
        stk[nst++].depth = 0;
        while (nst && info->ntree < TREE_ROWS) {
            uint32_t k = stk[--nst].k;
            long parent = stk[nst].row;
            int depth = stk[nst].depth;
            struct ms_gtnode *t = &info->tree[info->ntree];
            t->parent = parent;
            size_t v = a->d.vertex[k];
            if (v >= NB) {
                t->is_root = 1;
                t->label = r->where && r->where[0] ? fmt("%s (%s)", r->name, r->where) : xstrdup(r->name);
            } else {
                t->addr = g->addr[v];
                t->size = g->size[v];
                t->stack_id = g->stack[v];
                t->label = xstrdup(stack_label(x, g->stack[v], NULL));
            }
            t->retained_bytes = a->rb[k];
            t->retained_blocks = a->rk[k];
            uint32_t nk = cstart[k + 1] - cstart[k];
            t->children = nk;
            long row = (long)info->ntree++;
            memcpy(tmp, clist + cstart[k], nk * sizeof *tmp);
            qsort(tmp, nk, sizeof *tmp, by_rb_desc);
            uint32_t show = depth < TREE_DEPTH ? (nk < TREE_KIDS ? nk : TREE_KIDS) : 0;
            if (show > TREE_ROWS - info->ntree - nst)
                show = (uint32_t)(TREE_ROWS - info->ntree - nst);
            for (uint32_t j = show; j < nk; j++) {
                t->more++;
                t->more_bytes += a->rb[tmp[j]];
                t->more_blocks += a->rk[tmp[j]];
            }
            for (uint32_t j = show; j-- > 0;) { /* pushed in reverse: the largest comes first */
                stk[nst].k = tmp[j];
                stk[nst].row = row;
                stk[nst++].depth = depth + 1;
            }
        }
    }
    rc = 0;
out:
    free(cstart);
    free(clist);
    free(fill);
    free(tmp);
    free(stk);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the pass                                                            */
/* ------------------------------------------------------------------ */

struct snaproots {             /* a graph's roots: the first's for the growth; every one's for the series */
    int have;
    uint64_t snap, t;
    char **keys;
    uint64_t *bytes, *blocks;
    size_t n;
    size_t top[10];           /* (series) the roots retaining the most here */
    size_t ntop;
    char *tname[10], *twhere[10];
    int tkind[10];
};

static void keep_first(struct snaproots *s, const struct graph *g, const struct analysis *a)
{
    s->have = 1;
    s->snap = g->snap;
    s->t = g->t;
    s->n = a->rs.n;
    s->keys = calloc(s->n + 1, sizeof *s->keys);
    s->bytes = calloc(s->n + 1, sizeof *s->bytes);
    s->blocks = calloc(s->n + 1, sizeof *s->blocks);
    if (!s->keys || !s->bytes || !s->blocks) {
        s->n = 0;
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        s->keys[i] = strdup(a->rs.keys[i]);
        s->bytes[i] = a->rs.r[i].retained_bytes;
        s->blocks[i] = a->rs.r[i].retained_blocks;
    }
    /* the 10 largest, for the series */
    for (size_t i = 0; i < s->n; i++) {
        if (!s->blocks[i])
            continue;
        size_t j = s->ntop < 10 ? s->ntop++ : 10;
        if (j == 10) {
            if (s->bytes[s->top[9]] >= s->bytes[i])
                continue;
            j = 9;
        }
        while (j && s->bytes[s->top[j - 1]] < s->bytes[i]) {
            s->top[j] = s->top[j - 1];
            j--;
        }
        s->top[j] = i;
    }
    for (size_t k = 0; k < s->ntop; k++) {
        const struct ms_groot *r = &a->rs.r[s->top[k]];
        s->tname[k] = xstrdup(r->name);
        s->twhere[k] = xstrdup(r->where);
        s->tkind[k] = r->kind;
    }
}

static void snaproots_free(struct snaproots *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->bytes);
    free(s->blocks);
    for (size_t k = 0; k < s->ntop; k++) {
        free(s->tname[k]);
        free(s->twhere[k]);
    }
    memset(s, 0, sizeof *s);
}

/* the series: the roots among every graph's 10 largest, their retained size in every graph */
static void build_series(struct ms_graph_info *info, struct snaproots *pts, size_t npts,
                         const uint64_t *trig)
{
    info->points = calloc(npts + 1, sizeof *info->points);
    info->series = calloc(10 * npts + 1, sizeof *info->series);
    if (!info->points || !info->series)
        return;
    for (size_t p = 0; p < npts; p++) {
        info->points[p].snapshot_id = pts[p].snap;
        info->points[p].time_ns = pts[p].t;
        info->points[p].trigger = trig[p];
    }
    info->npoints = npts;
    for (size_t p = 0; p < npts; p++)
        for (size_t k = 0; k < pts[p].ntop; k++) {
            const char *key = pts[p].keys[pts[p].top[k]];
            int dup = 0;
            for (size_t q = 0; q < p && !dup; q++)
                for (size_t j = 0; j < pts[q].ntop && !dup; j++)
                    dup = !strcmp(pts[q].keys[pts[q].top[j]], key);
            for (size_t j = 0; j < k && !dup; j++)
                dup = !strcmp(pts[p].keys[pts[p].top[j]], key);
            if (dup)
                continue;
            struct ms_gseries *se = &info->series[info->nseries];
            se->bytes = calloc(npts, sizeof *se->bytes);
            se->blocks = calloc(npts, sizeof *se->blocks);
            se->name = xstrdup(pts[p].tname[k]);
            se->where = xstrdup(pts[p].twhere[k]);
            se->kind = pts[p].tkind[k];
            info->nseries++;
            if (!se->bytes || !se->blocks)
                continue;
            for (size_t q = 0; q < npts; q++)
                for (size_t i = 0; i < pts[q].n; i++)
                    if (!strcmp(pts[q].keys[i], key)) {
                        se->bytes[q] = pts[q].bytes[i];
                        se->blocks[q] = pts[q].blocks[i];
                        break;
                    }
        }
}

static void ctx_free(struct ctx *x)
{
    ms_sym_free(x->sym);
    free(x->st_off);
    free(x->st_n);
    free(x->pcs);
    for (size_t i = 0; i < x->lab_cap && x->st_label && x->st_func; i++) {
        free(x->st_label[i]);
        free(x->st_func[i]);
    }
    free(x->st_label);
    free(x->st_func);
}

struct ms_graph_info *ms_graph_analyze(const char *path, const char *why, uint64_t suspect_stack,
                                       char *err, size_t errlen)
{
    struct ms_trace_reader *r = ms_trace_open(path, err, errlen);
    if (!r)
        return NULL;
    struct ms_graph_info *info = calloc(1, sizeof *info);
    struct ctx x;
    memset(&x, 0, sizeof x);
    x.sym = ms_sym_new();
    struct graph *cur = NULL, *last = NULL;
    struct snaproots first;
    memset(&first, 0, sizeof first);
    struct snaproots *pts = calloc(MS_GRAPH_MAX_POINTS, sizeof *pts);
    uint64_t ptrig[MS_GRAPH_MAX_POINTS];
    size_t npts = 0;
    uint64_t snap_trig[256][2]; /* SNAPSHOT id -> trigger (the last 256) */
    size_t nsnap_trig = 0;
    int oom = !info || !pts;
    size_t ncomplete = 0;
    struct ms_trace_rec rec;
    while (!oom && ms_trace_next(r, &rec) > 0) {
        switch (rec.type) {
        case MS_REC_MODULE:
            if (x.sym && !(rec.u.module.flags & 1) && rec.u.module.hi > rec.u.module.lo) {
                char *p = strndup(rec.u.module.path.p, rec.u.module.path.len);
                if (p)
                    ms_sym_add_module_build_id(x.sym, p, rec.u.module.bias, rec.u.module.lo,
                                               rec.u.module.hi, rec.u.module.build_id.p,
                                               rec.u.module.build_id.len);
                free(p);
            }
            break;
        case MS_REC_STACK: {
            uint64_t id = rec.u.stack.id;
            if (id > (1u << 30))
                break;
            size_t cap = x.st_cap;
            if (ms_an_grow((void **)&x.st_off, &x.st_cap, id + 1, sizeof *x.st_off)) {
                oom = 1;
                break;
            }
            uint32_t *nn = realloc(x.st_n, x.st_cap * sizeof *nn);
            if (!nn) {
                oom = 1;
                break;
            }
            x.st_n = nn;
            for (size_t i = cap; i < x.st_cap; i++)
                x.st_n[i] = 0, x.st_off[i] = 0;
            if (ms_an_grow((void **)&x.pcs, &x.cap_pcs, x.npcs + rec.u.stack.kept, sizeof *x.pcs)) {
                oom = 1;
                break;
            }
            memcpy(x.pcs + x.npcs, rec.u.stack.pcs, rec.u.stack.kept * sizeof *x.pcs);
            x.st_off[id] = x.npcs;
            x.st_n[id] = (uint32_t)rec.u.stack.kept;
            x.npcs += rec.u.stack.kept;
            break;
        }
        case T_GRAPH: {
            struct cur c = { (const unsigned char *)rec.raw.p,
                             (const unsigned char *)rec.raw.p + rec.raw.len, 0 };
            struct graph *ng = calloc(1, sizeof *ng);
            if (!ng) {
                oom = 1;
                break;
            }
            ng->t = get_varint(&c);
            ng->serial = get_varint(&c);
            ng->snap = get_varint(&c);
            ng->nblocks = get_varint(&c);
            ng->nedges = get_varint(&c);
            ng->nroots = get_varint(&c);
            ng->ngroups = get_varint(&c);
            ng->flags = get_varint(&c);
            ng->bad = c.bad || ng->nblocks >= UINT32_MAX / 2;
            ng->soff = calloc(1, sizeof *ng->soff);
            ng->cap_off = 1;
            if (!ng->soff) {
                free(ng);
                oom = 1;
                break;
            }
            if (cur) { /* the previous one ended */
                if (graph_complete(cur)) {
                    if (!first.have || npts < MS_GRAPH_MAX_POINTS) {
                        /* a later graph follows: the first's roots, for the growth; every
                         * graph's, for the series */
                        struct analysis a;
                        if (analyze(&x, cur, &a) == 0) {
                            if (!first.have)
                                keep_first(&first, cur, &a);
                            if (npts < MS_GRAPH_MAX_POINTS) {
                                ptrig[npts] = 0;
                                for (size_t q = 0; cur->snap && q < nsnap_trig && q < 256; q++)
                                    if (snap_trig[q][0] == cur->snap)
                                        ptrig[npts] = snap_trig[q][1];
                                keep_first(&pts[npts++], cur, &a);
                            }
                        }
                        analysis_free(&a);
                    }
                    graph_free(last);
                    last = cur;
                    ncomplete++;
                } else {
                    info->nincomplete++;
                    graph_free(cur);
                }
            }
            cur = ng;
            break;
        }
        case MS_REC_SNAPSHOT:
            snap_trig[nsnap_trig % 256][0] = rec.u.snapshot.id;
            snap_trig[nsnap_trig % 256][1] = rec.u.snapshot.trigger;
            nsnap_trig++;
            break;
        case T_NODES:
        case T_EDGES:
        case T_ROOTS: {
            struct cur c = { (const unsigned char *)rec.raw.p,
                             (const unsigned char *)rec.raw.p + rec.raw.len, 0 };
            uint64_t serial = get_varint(&c);
            if (!cur || c.bad || serial != cur->serial || cur->bad)
                break;
            if (rec.type == T_NODES)
                parse_nodes(cur, &c);
            else if (rec.type == T_EDGES)
                parse_edges(cur, &c);
            else
                parse_roots(cur, &c);
            if (cur->bad == 2)
                oom = 1;
            break;
        }
        default:
            break;
        }
    }
    if (cur) {
        if (graph_complete(cur)) {
            graph_free(last);
            last = cur;
            ncomplete++;
        } else {
            info->nincomplete++;
            graph_free(cur);
        }
    }
    ms_trace_close(r);
    if (oom) {
        snprintf(err, errlen, "'%s': out of memory reading the heap graph", path);
        goto fail;
    }
    /* count the complete graphs: the first one, plus the last if it is another */
    if (last) {
        struct analysis a;
        if (analyze(&x, last, &a) < 0) {
            analysis_free(&a);
            snprintf(err, errlen, "'%s': out of memory analyzing the heap graph", path);
            goto fail;
        }
        if (npts < MS_GRAPH_MAX_POINTS) { /* the last graph ends the series */
            ptrig[npts] = 0;
            for (size_t q = 0; last->snap && q < nsnap_trig && q < 256; q++)
                if (snap_trig[q][0] == last->snap)
                    ptrig[npts] = snap_trig[q][1];
            keep_first(&pts[npts++], last, &a);
        }
        build_series(info, pts, npts, ptrig);
        info->ngraphs = ncomplete;
        info->snapshot_id = last->snap;
        info->time_ns = last->t;
        info->blocks = last->nn;
        info->bytes = a.bytes;
        info->edges = last->ne;
        info->root_edges = last->nre;
        info->unreachable_blocks = a.unreach_blocks;
        info->unreachable_bytes = a.unreach_bytes;
        info->shared_blocks = a.shared_blocks;
        info->shared_bytes = a.shared_bytes;
        if (why || suspect_stack) {
            info->have_why = 1;
            info->why.query = why ? strdup(why) : fmt("%" PRIu64, suspect_stack);
            why_alive(&x, last, &a, why, suspect_stack, &info->why);
        }
        why_top_sites(&x, last, &a, info->have_why && info->why.found ? info->why.stack_id : 0, info);
        /* growth: the first graph's roots against these */
        if (first.have && info->ngraphs > 1) {
            info->have_growth = 1;
            info->from_snapshot_id = first.snap;
            info->from_time_ns = first.t;
            info->growth = calloc(a.rs.n + first.n + 1, sizeof *info->growth);
            uint8_t *matched = calloc(first.n + 1, 1);
            for (size_t i = 0; info->growth && matched && i < a.rs.n; i++) {
                const struct ms_groot *ro = &a.rs.r[i];
                uint64_t bb = 0, bk = 0;
                for (size_t j = 0; j < first.n; j++)
                    if (!strcmp(first.keys[j], a.rs.keys[i])) {
                        bb = first.bytes[j];
                        bk = first.blocks[j];
                        matched[j] = 1;
                        break;
                    }
                if (bb == ro->retained_bytes)
                    continue;
                struct ms_ggrowth *gr = &info->growth[info->ngrowth++];
                gr->name = xstrdup(ro->name);
                gr->where = xstrdup(ro->where);
                gr->kind = ro->kind;
                gr->before_bytes = bb;
                gr->before_blocks = bk;
                gr->after_bytes = ro->retained_bytes;
                gr->after_blocks = ro->retained_blocks;
                gr->delta_bytes = (int64_t)(ro->retained_bytes - bb);
            }
            free(matched);
            for (size_t i = 1; i < info->ngrowth; i++) { /* by growth, largest first */
                struct ms_ggrowth t = info->growth[i];
                size_t j = i;
                while (j && info->growth[j - 1].delta_bytes < t.delta_bytes) {
                    info->growth[j] = info->growth[j - 1];
                    j--;
                }
                info->growth[j] = t;
            }
        }
        /* hand the roots over, by retained size (the why chain's root follows) */
        info->roots = calloc(a.rs.n + 1, sizeof *info->roots);
        size_t *perm = malloc((a.rs.n + 1) * sizeof *perm);
        if (!info->roots || !perm) {
            free(perm);
            analysis_free(&a);
            snprintf(err, errlen, "'%s': out of memory analyzing the heap graph", path);
            goto fail;
        }
        for (size_t i = 0; i < a.rs.n; i++)
            perm[i] = i;
        sort_roots = a.rs.r;
        qsort(perm, a.rs.n, sizeof *perm, by_retained_idx);
        long why_root = info->have_why ? info->why.root : -1;
        for (size_t i = 0; i < a.rs.n; i++) {
            info->roots[i] = a.rs.r[perm[i]];
            if (why_root >= 0 && why_root == (long)perm[i])
                info->why.root = (long)i;
        }
        for (size_t k = 0; k < info->nwhy_sites; k++) /* (root indices before the sort) */
            for (size_t i = 0; i < a.rs.n; i++)
                if (info->why_sites[k].root == (long)perm[i]) {
                    info->why_sites[k].root = (long)i;
                    break;
                }
        info->nroots = a.rs.n;
        if (build_tree(&x, last, &a, info, perm, 50) < 0) {
            free(perm);
            analysis_free(&a);
            snprintf(err, errlen, "'%s': out of memory analyzing the heap graph", path);
            goto fail;
        }
        free(perm);
        free(a.rs.r);
        a.rs.r = NULL;
        for (size_t i = 0; i < a.rs.n; i++)
            free(a.rs.keys[i]);
        a.rs.n = 0;
        analysis_free(&a);
    }
    graph_free(last);
    snaproots_free(&first);
    for (size_t i = 0; pts && i < npts; i++)
        snaproots_free(&pts[i]);
    free(pts);
    ctx_free(&x);
    return info;
fail:
    graph_free(last);
    snaproots_free(&first);
    for (size_t i = 0; pts && i < npts; i++)
        snaproots_free(&pts[i]);
    free(pts);
    ctx_free(&x);
    ms_graph_info_free(info);
    return NULL;
}

void ms_graph_info_free(struct ms_graph_info *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nroots; i++) {
        struct ms_groot *r = &g->roots[i];
        free(r->name);
        free(r->where);
        free(r->module);
        free(r->section);
        free(r->thread);
        free(r->function);
        free(r->file);
    }
    free(g->roots);
    chain_free(&g->why);
    for (size_t i = 0; i < g->nwhy_sites; i++)
        chain_free(&g->why_sites[i]);
    free(g->why_sites);
    for (size_t i = 0; i < g->ngrowth; i++) {
        free(g->growth[i].name);
        free(g->growth[i].where);
    }
    free(g->growth);
    for (size_t i = 0; i < g->ntree; i++)
        free(g->tree[i].label);
    free(g->tree);
    free(g->points);
    for (size_t i = 0; i < g->nseries; i++) {
        free(g->series[i].name);
        free(g->series[i].where);
        free(g->series[i].bytes);
        free(g->series[i].blocks);
    }
    free(g->series);
    free(g);
}

/* ------------------------------------------------------------------ */
/* output                                                              */
/* ------------------------------------------------------------------ */

static const char *graph_name(char *buf, size_t n, uint64_t snap)
{
    if (snap)
        snprintf(buf, n, "snapshot %" PRIu64, snap);
    else
        snprintf(buf, n, "the exit check");
    return buf;
}

void ms_graph_text(FILE *o, const struct ms_graph_info *g, int top)
{
    if (!g || !g->ngraphs) {
        if (g && g->nincomplete)
            fprintf(o, "\n  Retained by root: the trace's heap graph is incomplete (cut off, or the "
                       "agent ran out of memory)\n");
        else if (g)
            fprintf(o, "\n  Retained by root: no heap graph in this trace (--graph=no, or no reachability "
                       "check ran)\n");
        return;
    }
    char b1[64], b2[64], b3[64], gn[64];
    fprintf(o, "\n  Retained by root (heap graph of %s at %s: %s blocks, %s, %s pointers)\n",
            graph_name(gn, sizeof gn, g->snapshot_id), ms_an_time(b1, sizeof b1, g->time_ns),
            ms_an_count(b2, sizeof b2, g->blocks), ms_an_bytes(b3, sizeof b3, g->bytes),
            ms_an_count(b3 + 32, 32, g->edges));
    int shown = 0;
    for (size_t i = 0; i < g->nroots && shown < top; i++) {
        const struct ms_groot *r = &g->roots[i];
        if (!r->retained_blocks)
            continue;
        double pct = g->bytes ? 100.0 * (double)r->retained_bytes / (double)g->bytes : 0;
        char line[2048];
        snprintf(line, sizeof line, "%s%s%s%s retains %s (%" PRIu64 " bytes) in %s block%s (%.1f%%)",
                 r->name, r->where[0] ? " (" : "", r->where, r->where[0] ? ")" : "",
                 ms_an_bytes(b1, sizeof b1, r->retained_bytes), r->retained_bytes,
                 ms_an_count(b2, sizeof b2, r->retained_blocks), r->retained_blocks == 1 ? "" : "s", pct);
        ms_an_wrap(o, "    ", "      ", line, 100);
        shown++;
    }
    if (!shown)
        fprintf(o, "    no root retains a block of its own\n");
    if (g->shared_blocks)
        fprintf(o, "    shared by several roots: %s (%" PRIu64 " bytes) in %s blocks\n",
                ms_an_bytes(b1, sizeof b1, g->shared_bytes), g->shared_bytes,
                ms_an_count(b2, sizeof b2, g->shared_blocks));
    if (g->unreachable_blocks)
        fprintf(o, "    reachable from no root (leaked): %s (%" PRIu64 " bytes) in %s blocks\n",
                ms_an_bytes(b1, sizeof b1, g->unreachable_bytes), g->unreachable_bytes,
                ms_an_count(b2, sizeof b2, g->unreachable_blocks));
    if (g->have_why) {
        const struct ms_gchain *w = &g->why;
        fprintf(o, "\n  Why alive: %s%s%s\n", w->site ? w->site : w->query,
                w->site ? "" : "", w->found ? "" : "");
        if (!w->found) {
            fprintf(o, "    site %s: %s\n", w->query, w->why_not ? w->why_not : "not found");
        } else {
            fprintf(o, "    %s blocks, %s of this site; the shortest chain of pointers from a root:\n",
                    ms_an_count(b1, sizeof b1, w->site_blocks), ms_an_bytes(b2, sizeof b2, w->site_bytes));
            fprintf(o, "    %s\n", w->root_label);
            for (size_t i = 0; i < w->nsteps; i++) {
                const struct ms_gstep *s = &w->steps[i];
                char via[300] = "";
                if (i > 0 && s->offset >= 0)
                    snprintf(via, sizeof via, ", held at %s+0x%" PRIx64, s->holder ? s->holder : "block",
                             (uint64_t)s->offset);
                fprintf(o, "      -> 0x%" PRIx64 " (%s) %s%s%s\n", s->addr, ms_an_bytes(b1, sizeof b1, s->size),
                        s->site, via, s->interior ? " [interior pointer]" : "");
            }
        }
    }
    if (g->have_growth) {
        char fn[64];
        fprintf(o, "\n  Roots that grew (%s at %s -> %s at %s)\n",
                graph_name(fn, sizeof fn, g->from_snapshot_id), ms_an_time(b1, sizeof b1, g->from_time_ns),
                graph_name(gn, sizeof gn, g->snapshot_id), ms_an_time(b2, sizeof b2, g->time_ns));
        int k = 0;
        for (size_t i = 0; i < g->ngrowth && k < top; i++) {
            const struct ms_ggrowth *r = &g->growth[i];
            if (r->delta_bytes <= 0)
                continue;
            char line[2048];
            snprintf(line, sizeof line, "%s%s%s%s: %s -> %s (+%" PRId64 " bytes, %" PRIu64 " -> %" PRIu64 " blocks)",
                     r->name, r->where[0] ? " (" : "", r->where, r->where[0] ? ")" : "",
                     ms_an_bytes(b1, sizeof b1, r->before_bytes), ms_an_bytes(b2, sizeof b2, r->after_bytes),
                     r->delta_bytes, r->before_blocks, r->after_blocks);
            ms_an_wrap(o, "    ", "      ", line, 100);
            k++;
        }
        if (!k)
            fprintf(o, "    none\n");
    }
}

static void json_root(FILE *o, const struct ms_groot *r, uint64_t total)
{
    fprintf(o, "{\"kind\": \"%s\", \"name\": ", ms_groot_kind_name(r->kind));
    ms_an_json_str(o, r->name);
    fputs(", \"where\": ", o);
    ms_an_json_str(o, r->where);
    fputs(", \"module\": ", o);
    ms_an_json_str(o, r->module);
    fputs(", \"section\": ", o);
    ms_an_json_str(o, r->section);
    fputs(", \"thread\": ", o);
    ms_an_json_str(o, r->thread);
    if (r->kind == MS_GROOT_STACK || r->kind == MS_GROOT_TLS || r->kind == MS_GROOT_REGS)
        fprintf(o, ", \"tid\": %" PRIu64, r->tid);
    else
        fputs(", \"tid\": null", o);
    fputs(", \"function\": ", o);
    ms_an_json_str(o, r->function);
    fputs(", \"file\": ", o);
    ms_an_json_str(o, r->file);
    fprintf(o, ", \"line\": %d, \"address\": \"0x%" PRIx64 "\", \"pointers\": %" PRIu64
               ", \"retained_bytes\": %" PRIu64 ", \"retained_blocks\": %" PRIu64 ", \"share\": ",
            r->line, r->address, r->pointers, r->retained_bytes, r->retained_blocks);
    ms_an_json_double(o, total ? (double)r->retained_bytes / (double)total : 0);
    fputc('}', o);
}

static void json_chain(FILE *o, const struct ms_graph_info *g, const struct ms_gchain *w)
{
    fputs("{\"query\": ", o);
    ms_an_json_str(o, w->query);
    fprintf(o, ", \"found\": %s, \"site_blocks\": %" PRIu64 ", \"site_bytes\": %" PRIu64
               ", \"stack_id\": %" PRIu64 ", \"site\": ",
            w->found ? "true" : "false", w->site_blocks, w->site_bytes, w->stack_id);
    ms_an_json_str(o, w->site);
    fputs(", \"why_not\": ", o);
    ms_an_json_str(o, w->why_not);
    fputs(", \"root\": ", o);
    if (w->found && w->root >= 0 && (size_t)w->root < g->nroots)
        json_root(o, &g->roots[w->root], g->bytes);
    else
        fputs("null", o);
    fputs(", \"root_label\": ", o);
    ms_an_json_str(o, w->root_label);
    fprintf(o, ", \"root_address\": \"0x%" PRIx64 "\", \"chain\": [", w->root_addr);
    for (size_t i = 0; i < w->nsteps; i++) {
        const struct ms_gstep *s = &w->steps[i];
        fprintf(o, "%s{\"address\": \"0x%" PRIx64 "\", \"size\": %" PRIu64 ", \"stack_id\": %" PRIu64
                   ", \"interior\": %s, \"site\": ",
                i ? ", " : "", s->addr, s->size, s->stack_id, s->interior ? "true" : "false");
        ms_an_json_str(o, s->site);
        fputs(", \"holder\": ", o);
        ms_an_json_str(o, i ? s->holder : NULL);
        if (i && s->offset >= 0)
            fprintf(o, ", \"offset\": %" PRId64, s->offset);
        else
            fputs(", \"offset\": null", o);
        fputc('}', o);
    }
    fputs("]}", o);
}

void ms_graph_json(FILE *o, const struct ms_graph_info *g, int top)
{
    if (!g || !g->ngraphs) {
        fputs("null", o);
        return;
    }
    fprintf(o, "{\"graphs\": %zu, \"incomplete_graphs\": %zu, \"snapshot_id\": %" PRIu64
               ", \"time_ns\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"edges\": %" PRIu64 ", \"root_edges\": %" PRIu64
               ", \"unreachable\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}"
               ", \"shared\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}, \"retained_by_root\": [",
            g->ngraphs, g->nincomplete, g->snapshot_id, g->time_ns, g->blocks, g->bytes, g->edges,
            g->root_edges, g->unreachable_bytes, g->unreachable_blocks, g->shared_bytes, g->shared_blocks);
    int k = 0;
    for (size_t i = 0; i < g->nroots && k < top; i++) {
        if (!g->roots[i].retained_blocks && i >= (size_t)top)
            continue;
        fputs(k ? ",\n     " : "\n     ", o);
        json_root(o, &g->roots[i], g->bytes);
        k++;
    }
    fputs("], \"why_alive\": ", o);
    if (!g->have_why)
        fputs("null", o);
    else
        json_chain(o, g, &g->why);
    fputs(", \"why_alive_sites\": [", o);
    for (size_t i = 0; i < g->nwhy_sites; i++) {
        fputs(i ? ",\n     " : "\n     ", o);
        json_chain(o, g, &g->why_sites[i]);
    }
    fputs("]", o);
    fputs(", \"root_growth\": ", o);
    if (!g->have_growth) {
        fputs("null", o);
    } else {
        fprintf(o, "{\"from_snapshot_id\": %" PRIu64 ", \"from_time_ns\": %" PRIu64
                   ", \"to_snapshot_id\": %" PRIu64 ", \"to_time_ns\": %" PRIu64 ", \"roots\": [",
                g->from_snapshot_id, g->from_time_ns, g->snapshot_id, g->time_ns);
        for (size_t i = 0; i < g->ngrowth && (int)i < top; i++) {
            const struct ms_ggrowth *r = &g->growth[i];
            fprintf(o, "%s{\"kind\": \"%s\", \"name\": ", i ? ", " : "", ms_groot_kind_name(r->kind));
            ms_an_json_str(o, r->name);
            fputs(", \"where\": ", o);
            ms_an_json_str(o, r->where);
            fprintf(o, ", \"before_bytes\": %" PRIu64 ", \"before_blocks\": %" PRIu64 ", \"after_bytes\": %" PRIu64
                       ", \"after_blocks\": %" PRIu64 ", \"delta_bytes\": %" PRId64 "}",
                    r->before_bytes, r->before_blocks, r->after_bytes, r->after_blocks, r->delta_bytes);
        }
        fputs("]}", o);
    }
    /* the dominator tree (pre-order rows) and the retained size per root over the graphs */
    fputs(", \"dominator_tree\": [", o);
    for (size_t i = 0; i < g->ntree; i++) {
        const struct ms_gtnode *t = &g->tree[i];
        fprintf(o, "%s{\"parent\": %ld, \"root\": %s, \"label\": ", i ? ",\n     " : "\n     ", t->parent,
                t->is_root ? "true" : "false");
        ms_an_json_str(o, t->label);
        if (t->is_root)
            fputs(", \"address\": null, \"size\": null, \"stack_id\": null", o);
        else
            fprintf(o, ", \"address\": \"0x%" PRIx64 "\", \"size\": %" PRIu64 ", \"stack_id\": %" PRIu64, t->addr,
                    t->size, t->stack_id);
        fprintf(o, ", \"retained_bytes\": %" PRIu64 ", \"retained_blocks\": %" PRIu64 ", \"children\": %" PRIu64
                   ", \"more\": {\"children\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}}",
                t->retained_bytes, t->retained_blocks, t->children, t->more, t->more_bytes, t->more_blocks);
    }
    fputs("], \"root_series\": {\"graphs\": [", o);
    for (size_t i = 0; i < g->npoints; i++)
        fprintf(o, "%s{\"snapshot_id\": %" PRIu64 ", \"time_ns\": %" PRIu64 ", \"trigger\": \"%s\"}", i ? ", " : "",
                g->points[i].snapshot_id, g->points[i].time_ns,
                g->points[i].snapshot_id ? ms_trace_trigger_name(g->points[i].trigger) : "exit");
    fputs("], \"roots\": [", o);
    for (size_t i = 0; i < g->nseries; i++) {
        const struct ms_gseries *se = &g->series[i];
        fprintf(o, "%s{\"kind\": \"%s\", \"name\": ", i ? ",\n     " : "\n     ", ms_groot_kind_name(se->kind));
        ms_an_json_str(o, se->name);
        fputs(", \"where\": ", o);
        ms_an_json_str(o, se->where);
        for (int w = 0; w < 2; w++) {
            fputs(w ? ", \"blocks\": [" : ", \"bytes\": [", o);
            for (size_t q = 0; q < g->npoints; q++)
                fprintf(o, "%s%" PRIu64, q ? ", " : "", se->bytes && se->blocks ? (w ? se->blocks : se->bytes)[q] : 0);
            fputc(']', o);
        }
        fputc('}', o);
    }
    fputs("]}", o);
    fputc('}', o);
}

/* ------------------------------------------------------------------ */
/* --format=dump: records 16-19 decoded                                */
/* ------------------------------------------------------------------ */

/* target node codes of an edge list: "1,2i" (i: interior), prev restarting at start */
static void dump_targets(FILE *o, struct cur *c, uint64_t n, int64_t prev)
{
    if (!n)
        fputc('-', o);
    for (uint64_t e = 0; e < n && !c->bad; e++) {
        uint64_t code = get_varint(c), z = code >> 1;
        prev += (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        if (!c->bad)
            fprintf(o, "%s%lld%s", e ? "," : "", (long long)prev, code & 1 ? "i" : "");
    }
}

int ms_graph_dump_rec(FILE *o, const struct ms_trace_rec *r)
{
    static const char *const kinds[] = { "regs", "stack", "tls", "memory" };
    if (r->type < T_GRAPH || r->type > T_ROOTS)
        return 0;
    struct cur c = { (const unsigned char *)r->raw.p, (const unsigned char *)r->raw.p + r->raw.len, 0 };
    switch (r->type) {
    case T_GRAPH: {
        uint64_t v[8];
        for (int k = 0; k < 8; k++)
            v[k] = get_varint(&c);
        fprintf(o, "GRAPH t=%llu serial=%llu snapshot=%llu nblocks=%llu nedges=%llu nroots=%llu "
                   "ngroups=%llu flags=%llu",
                (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
                (unsigned long long)v[3], (unsigned long long)v[4], (unsigned long long)v[5],
                (unsigned long long)v[6], (unsigned long long)v[7]);
        break;
    }
    case T_NODES: {
        uint64_t serial = get_varint(&c), first = get_varint(&c), count = get_varint(&c);
        fprintf(o, "GRAPH_NODES serial=%llu first=%llu count=%llu nodes=[",
                (unsigned long long)serial, (unsigned long long)first, (unsigned long long)count);
        uint64_t addr = 0;
        for (uint64_t k = 0; k < count && !c.bad; k++) {
            addr += get_varint(&c);
            uint64_t size = get_varint(&c), stack = get_varint(&c), n = get_varint(&c);
            if (c.bad)
                break;
            fprintf(o, "%s{i=%llu addr=0x%llx size=%llu stack=%llu n=%llu to=", k ? " " : "",
                    (unsigned long long)(first + k), (unsigned long long)addr,
                    (unsigned long long)size, (unsigned long long)stack, (unsigned long long)n);
            dump_targets(o, &c, n, (int64_t)(first + k));
            fputc('}', o);
        }
        fputc(']', o);
        break;
    }
    case T_EDGES: {
        uint64_t serial = get_varint(&c), src = get_varint(&c), n = get_varint(&c);
        fprintf(o, "GRAPH_EDGES serial=%llu src=%llu n=%llu to=", (unsigned long long)serial,
                (unsigned long long)src, (unsigned long long)n);
        if (!c.bad)
            dump_targets(o, &c, n, (int64_t)src);
        break;
    }
    default: { /* T_ROOTS */
        uint64_t serial = get_varint(&c), kind = get_varint(&c), tid = get_varint(&c);
        uint64_t nl = get_varint(&c);
        if (c.bad || nl > (uint64_t)(c.e - c.p)) {
            c.bad = 1;
            fprintf(o, "GRAPH_ROOTS serial=%llu", (unsigned long long)serial);
            break;
        }
        struct ms_trace_str name = { (const char *)c.p, (size_t)nl };
        c.p += nl;
        uint64_t lo = get_varint(&c), hi = get_varint(&c), pc = get_varint(&c);
        uint64_t mod = get_varint(&c), n = get_varint(&c);
        fprintf(o, "GRAPH_ROOTS serial=%llu kind=", (unsigned long long)serial);
        if (kind < 4)
            fputs(kinds[kind], o);
        else
            fprintf(o, "%llu", (unsigned long long)kind);
        fprintf(o, " tid=%llu thread=", (unsigned long long)tid);
        ms_an_dump_str(o, name);
        fprintf(o, " lo=0x%llx hi=0x%llx pc=0x%llx mod=0x%llx n=%llu roots=[",
                (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)pc,
                (unsigned long long)mod, (unsigned long long)n);
        uint64_t pa = kind == RG_REGS ? 0 : lo, ppc = 0;
        for (uint64_t k = 0; k < n && !c.bad; k++) {
            pa += (uint64_t)get_svarint(&c);
            uint64_t code = get_varint(&c);
            if (kind == RG_STACK)
                ppc += (uint64_t)get_svarint(&c);
            if (c.bad)
                break;
            if (kind == RG_REGS)
                fprintf(o, "%s{reg=%llu", k ? " " : "", (unsigned long long)pa);
            else
                fprintf(o, "%s{addr=0x%llx", k ? " " : "", (unsigned long long)pa);
            fprintf(o, " node=%llu%s", (unsigned long long)(code >> 1), code & 1 ? "i" : "");
            if (kind == RG_STACK)
                fprintf(o, " pc=0x%llx", (unsigned long long)ppc);
            fputc('}', o);
        }
        fputc(']', o);
        break;
    }
    }
    if (c.bad)
        fputs(" damaged=1", o);
    else if (c.p < c.e)
        fprintf(o, " extra_bytes=%llu", (unsigned long long)(c.e - c.p));
    fputc('\n', o);
    return 1;
}
