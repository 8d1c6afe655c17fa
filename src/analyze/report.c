/*
 * memsleuth - report.c: `memsleuth report [--format=text|json|dump|html|pprof|collapsed|xml]
 * [-o FILE] TRACE...` (collapsed, pprof, xml: export.c, pprof.c; html: html.c, fed the JSON
 * report and, before each model is shrunk, ms_html_collect's flame trees)
 *
 * Each trace (one process image) is read in one streaming pass into a model
 * (model.c), then reduced to what is printed: the summary, the ranked lists
 * of sites with their symbolized stacks, the growth suspects with their
 * samples.  The model's big tables (live blocks, sites, symbolizer) are freed
 * before the next trace is read, so several traces cost one trace's memory
 * plus their (small) results.  Processes are then arranged in a tree (PROCESS
 * pid/ppid, FORK records, exec'd images of the same pid) and printed.
 *
 * --format=dump prints the records themselves, one line each, without a
 * model (see dump_rec for the line formats).
 */
#include "analyze.h"

#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "export.h"
#include "symbolize.h"
#include "pools.h"
#include "graph.h"

static const char usage[] =
    "usage: memsleuth report [--format=FORMAT] [-o FILE] [--stacks|-v] [--top=N] TRACE...\n"
    "\n"
    "Report on the traces that `memsleuth run` wrote (one per process): run time, allocation\n"
    "calls and rate, peak heap and when, peak RSS, leaks by kind at exit, temporary allocations;\n"
    "the top sites by peak contribution, leaked bytes, allocation count and temporary\n"
    "allocations; growth suspects (sites whose live bytes keep growing), each saying whether\n"
    "its memory is lost, reachable or freed at exit.  Several traces: each process with its\n"
    "memory over time, children under their parent.\n"
    "\n"
    "  --format=text     for a terminal (default)\n"
    "  --format=json     one object {\"processes\": [...]} (see docs)\n"
    "  --format=dump     the records as text, one per line\n"
    "  --format=html     one self-contained page (opens offline): summary, memory over time,\n"
    "                    flame graphs of peak and leaked bytes, sortable site tables, growth\n"
    "                    suspects, the process tree (--top defaults to 30 there)\n"
    "  --format=pprof    gzip'd profile.proto for `go tool pprof`: alloc_objects, alloc_space,\n"
    "                    inuse_objects, inuse_space (inuse = live at the end)\n"
    "  --format=collapsed  `frame;frame;... VALUE` lines, outermost first, for flamegraph.pl\n"
    "                    and speedscope; several traces: first frame exe[pid]\n"
    "  --collapsed-value=peak|leaked|allocs|allocated|inuse  the VALUE: live bytes at the\n"
    "                    peak [peak], lost bytes, calls, bytes allocated, bytes live at the end\n"
    "  --format=xml      valgrind --xml=yes leak records (protocol 4; one trace)\n"
    "  -o FILE           write there instead of standard output\n"
    "  --stacks, -v      full stacks in the text report\n"
    "  --top=N           entries per list [10]\n"
    "  --why=SITE        heap graph: the chain of pointers that keeps a block of SITE (a stack\n"
    "                    id, or a function name) alive [the top growth suspect]\n"
    "\n"
    "Exit status: 0, 1 output not written, 2 usage, 3 a trace unreadable or corrupt (what\n"
    "could be read is reported).\n";

enum { L_PEAK, L_LEAKED, L_ALLOCS, L_TEMP, L_GROWTH, NLISTS };
static const char *const list_json[NLISTS] = { "top_peak", "top_leaked", "top_allocations",
                                                "top_temporary", "growth_suspects" };

struct entry {
    struct ms_site s;                   /* the site's figures */
    uint64_t samples[MS_MODEL_SAMPLES]; /* growth suspects: the site's samples */
    size_t stack;                       /* index in proc.stacks */
    uint64_t label_pc;                  /* its distinguishing frame (ms_an_label_pcs) */
};

struct proc {
    struct ms_model *m;                 /* shrunk: facts, totals, process samples */
    char *trace;
    enum ms_trace_status status;
    char msg[512];
    size_t nsites;
    struct ms_an_stack *stacks;         /* symbolized stacks of the listed sites */
    size_t *stack_site;
    size_t nstacks;
    struct entry *list[NLISTS];
    size_t nlist[NLISTS];
    /* tree */
    long parent;                        /* index of the parent, -1 for a root */
    int is_exec;                        /* the parent is the image this one replaced */
    size_t *kids;
    size_t nkids;
    int visited;
    char *html;                         /* --format=html: ms_html_collect's part */
    struct ms_pools *pools;             /* libmemsleuth_pool's allocators (pools.c), or NULL */
    int pools_top;                      /* --top for the Pools section */
    struct ms_graph_info *graph;        /* graph.c: the heap graph (retained by root, why alive) */
    int graph_top;
    int threads_top;                    /* --top for the Threads section */
};

/* ------------------------------------------------------------------ */
/* ranking                                                             */
/* ------------------------------------------------------------------ */

static const struct ms_model *cmp_m;

static uint64_t lost_bytes(const struct ms_site *s)
{
    return ms_site_leak_bytes(s, 7, 0);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a > b ? -1 : a < b; /* descending */
}

static int tie(const struct ms_site *a, const struct ms_site *b)
{
    return a->stack_id < b->stack_id ? -1 : a->stack_id > b->stack_id;
}

#define SITE_A (&cmp_m->sites[*(const size_t *)x])
#define SITE_B (&cmp_m->sites[*(const size_t *)y])

/* the peak snapshot: of the snapshots --snapshot-peak took, the one that
 * held the most live bytes (all kinds); NULL when there is none */
static const struct ms_snapshot *peak_snapshot(const struct ms_model *m, uint64_t *live)
{
    const struct ms_snapshot *best = NULL;
    uint64_t bl = 0;
    for (size_t k = 0; k < m->nsnaps; k++) {
        const struct ms_snapshot *sn = &m->snaps[k];
        uint64_t l = sn->bytes[0] + sn->bytes[1] + sn->bytes[2] + sn->bytes[3];
        if (sn->trigger == 4 && (!best || l > bl))
            best = sn, bl = l;
    }
    *live = bl;
    return best;
}

static int by_peak(const void *x, const void *y)
{
    int c = cmp_u64(SITE_A->peak_bytes, SITE_B->peak_bytes);
    return c ? c : (c = cmp_u64(SITE_A->peak_blocks, SITE_B->peak_blocks)) ? c : tie(SITE_A, SITE_B);
}

static int by_leaked(const void *x, const void *y)
{
    int c = cmp_u64(lost_bytes(SITE_A), lost_bytes(SITE_B));
    return c ? c : (c = cmp_u64(ms_site_leak_blocks(SITE_A, 7, 0), ms_site_leak_blocks(SITE_B, 7, 0)))
                       ? c
                       : tie(SITE_A, SITE_B);
}

static int by_allocs(const void *x, const void *y)
{
    int c = cmp_u64(SITE_A->allocs, SITE_B->allocs);
    return c ? c : (c = cmp_u64(SITE_A->alloc_bytes, SITE_B->alloc_bytes)) ? c : tie(SITE_A, SITE_B);
}

static int by_temp(const void *x, const void *y)
{
    int c = cmp_u64(SITE_A->temps, SITE_B->temps);
    return c ? c : (c = cmp_u64(SITE_A->temp_bytes, SITE_B->temp_bytes)) ? c : tie(SITE_A, SITE_B);
}

static int by_score(const void *x, const void *y)
{
    if (SITE_A->score != SITE_B->score)
        return SITE_A->score > SITE_B->score ? -1 : 1;
    int c = cmp_u64(SITE_A->end_bytes, SITE_B->end_bytes);
    return c ? c : tie(SITE_A, SITE_B);
}

static int in_list(int l, const struct ms_site *s)
{
    switch (l) {
    case L_PEAK:
        return s->peak_bytes || s->peak_blocks;
    case L_LEAKED:
        return lost_bytes(s) || ms_site_leak_blocks(s, 7, 0);
    case L_ALLOCS:
        return s->allocs > 0;
    case L_TEMP:
        return s->temps > 0;
    default:
        return s->suspect;
    }
}

static int (*const list_cmp[NLISTS])(const void *, const void *) = { by_peak, by_leaked, by_allocs,
                                                                      by_temp, by_score };

/* the index of the symbolized stack of site si, symbolizing it if new;
   SIZE_MAX when out of memory */
static size_t stack_of(struct proc *p, const struct ms_model *m, struct ms_sym **sym, size_t si)
{
    for (size_t i = 0; i < p->nstacks; i++)
        if (p->stack_site[i] == si)
            return i;
    if (!*sym)
        *sym = ms_an_sym_new(m);
    struct ms_an_stack *ns = realloc(p->stacks, (p->nstacks + 1) * sizeof *ns);
    if (!ns)
        return SIZE_MAX;
    p->stacks = ns;
    size_t *nss = realloc(p->stack_site, (p->nstacks + 1) * sizeof *nss);
    if (!nss)
        return SIZE_MAX;
    p->stack_site = nss;
    const struct ms_site *s = &m->sites[si];
    if (ms_an_resolve(*sym, s->npcs ? m->pcs + s->pcs_off : NULL, s->npcs, &p->stacks[p->nstacks]) < 0)
        return SIZE_MAX;
    p->stack_site[p->nstacks] = si;
    return p->nstacks++;
}

/* reduce a finished model to its lists; returns 0 or -1 out of memory */
static int build_lists(struct proc *p, int top)
{
    struct ms_model *m = p->m;
    struct ms_sym *sym = NULL;
    int rc = 0;
    size_t *idx = malloc((m->nsites ? m->nsites : 1) * sizeof *idx);
    uint64_t *lab = ms_an_label_pcs(m);
    if (!idx || !lab) {
        free(idx);
        free(lab);
        return -1;
    }
    p->nsites = m->nsites;
    for (int l = 0; l < NLISTS && !rc; l++) {
        size_t n = 0;
        for (size_t i = 0; i < m->nsites; i++)
            if (in_list(l, &m->sites[i]))
                idx[n++] = i;
        cmp_m = m;
        qsort(idx, n, sizeof *idx, list_cmp[l]);
        if (n > (size_t)top)
            n = (size_t)top;
        p->list[l] = calloc(n ? n : 1, sizeof *p->list[l]);
        if (!p->list[l]) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < n; k++) {
            struct entry *e = &p->list[l][k];
            e->s = m->sites[idx[k]];
            ms_model_site_samples(m, idx[k], e->samples);
            e->stack = stack_of(p, m, &sym, idx[k]);
            e->label_pc = lab[idx[k]];
            if (e->stack == SIZE_MAX) {
                rc = -1;
                break;
            }
            p->nlist[l]++;
        }
    }
    free(idx);
    free(lab);
    ms_sym_free(sym);
    return rc;
}

static void proc_release(struct proc *p)
{
    ms_model_free(p->m);
    free(p->trace);
    for (size_t i = 0; i < p->nstacks; i++)
        ms_an_stack_release(&p->stacks[i]);
    free(p->stacks);
    free(p->stack_site);
    for (int l = 0; l < NLISTS; l++)
        free(p->list[l]);
    free(p->kids);
    free(p->html);
    ms_pools_free(p->pools);
    ms_graph_info_free(p->graph);
}

/* ------------------------------------------------------------------ */
/* the process tree                                                    */
/* ------------------------------------------------------------------ */

/* a strictly earlier image (by start time, then by argument order) */
static int earlier(const struct proc *ps, size_t a, size_t b)
{
    uint64_t sa = ps[a].m->start_unix_ns, sb = ps[b].m->start_unix_ns;
    return sa < sb || (sa == sb && a < b);
}

static int add_kid(struct proc *p, size_t k)
{
    size_t *nk = realloc(p->kids, (p->nkids + 1) * sizeof *nk);
    if (!nk)
        return -1;
    p->kids = nk;
    p->kids[p->nkids++] = k;
    return 0;
}

static struct proc *sort_ps;
static int kid_cmp(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return earlier(sort_ps, a, b) ? -1 : earlier(sort_ps, b, a) ? 1 : 0;
}

/* parent: the image of the same pid this one replaced by exec, else the
   latest image of pid == ppid that started before it */
static int build_tree(struct proc *ps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct ms_model *mi = ps[i].m;
        long best = -1;
        int exec = 0;
        for (size_t j = 0; j < n; j++) {
            const struct ms_model *mj = ps[j].m;
            if (j == i || !mj->have_process || !mi->have_process || !earlier(ps, j, i))
                continue;
            if (mj->pid == mi->pid) {
                if (best < 0 || !exec || earlier(ps, (size_t)best, j)) {
                    best = (long)j;
                    exec = 1;
                }
            } else if (!exec && mj->pid == mi->ppid) {
                if (best < 0 || earlier(ps, (size_t)best, j))
                    best = (long)j;
            }
        }
        ps[i].parent = best;
        ps[i].is_exec = exec;
        if (best >= 0 && add_kid(&ps[best], i) < 0)
            return -1;
    }
    sort_ps = ps;
    for (size_t i = 0; i < n; i++)
        if (ps[i].nkids > 1)
            qsort(ps[i].kids, ps[i].nkids, sizeof *ps[i].kids, kid_cmp);
    return 0;
}

/* depth-first order of the processes, roots by start time */
static size_t *tree_order(struct proc *ps, size_t n, int **depth)
{
    size_t *order = malloc((n + 1) * sizeof *order), no = 0;
    size_t *stack = malloc((n + 1) * sizeof *stack), ns = 0;
    size_t *roots = malloc((n + 1) * sizeof *roots), nr = 0;
    *depth = calloc(n + 1, sizeof **depth);
    if (!order || !stack || !roots || !*depth) {
        free(order);
        free(stack);
        free(roots);
        free(*depth);
        *depth = NULL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (ps[i].parent < 0)
            roots[nr++] = i;
    sort_ps = ps;
    qsort(roots, nr, sizeof *roots, kid_cmp);
    for (size_t r = 0; r < nr; r++) {
        stack[ns++] = roots[r];
        (*depth)[roots[r]] = 0;
        while (ns) {
            size_t i = stack[--ns];
            if (ps[i].visited)
                continue;
            ps[i].visited = 1;
            order[no++] = i;
            for (size_t k = ps[i].nkids; k-- > 0;) {
                size_t c = ps[i].kids[k];
                if (!ps[c].visited && ns < n) {
                    (*depth)[c] = (*depth)[i] + (ps[c].is_exec ? 0 : 1);
                    stack[ns++] = c;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) /* (a cycle cannot happen: parents start earlier) */
        if (!ps[i].visited)
            order[no++] = i;
    free(stack);
    free(roots);
    return order;
}

/* is this FORK child traced among the given processes? */
static long traced_child(const struct proc *ps, size_t n, size_t parent, uint64_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (ps[i].parent == (long)parent && !ps[i].is_exec && ps[i].m->pid == pid)
            return (long)i;
    return -1;
}

/* ------------------------------------------------------------------ */
/* text                                                                */
/* ------------------------------------------------------------------ */

static const char *pl(uint64_t n)
{
    return n == 1 ? "" : "s";
}

static const char *exe_name(const struct ms_model *m)
{
    const char *e = m->exe && *m->exe ? m->exe : "?";
    const char *s = strrchr(e, '/');
    return s && s[1] ? s + 1 : e;
}

static void how_text(const struct ms_model *m, char *buf, size_t n)
{
    if (m->ended_by_exec) {
        snprintf(buf, n, "exec %s", m->exec_path ? m->exec_path : "");
        return;
    }
    if (!m->have_end) {
        snprintf(buf, n, "no END record: killed or crashed");
        return;
    }
    switch (m->end_how) {
    case MS_END_EXIT:
        snprintf(buf, n, "exit(%llu)", (unsigned long long)m->end_status);
        break;
    case MS_END__EXIT:
        snprintf(buf, n, "_exit(%llu)", (unsigned long long)m->end_status);
        break;
    case MS_END_SIGNAL:
        snprintf(buf, n, "killed by signal %llu",
                 (unsigned long long)(m->end_status >= 128 ? m->end_status - 128 : m->end_status));
        break;
    default:
        snprintf(buf, n, "ended (how %llu)", (unsigned long long)m->end_how);
    }
}

/* blocks live at exit that no LEAK record accounts for (the agent writes only
   the kinds --show-leak-kinds asks for) */
static void unclassified(const struct ms_model *m, uint64_t *bytes, uint64_t *blocks)
{
    uint64_t cb = 0, ck = 0;
    for (int k = 0; k < 4; k++)
        for (int x = 0; x < 2; x++) {
            cb += m->leak_bytes[k][x];
            ck += m->leak_blocks[k][x];
        }
    *bytes = m->have_end && m->live_bytes > cb ? m->live_bytes - cb : 0;
    *blocks = m->have_end && m->live_blocks > ck ? m->live_blocks - ck : 0;
}

static void text_overview(FILE *o, struct proc *ps, size_t n, const size_t *order, const int *depth)
{
    fprintf(o, "Processes (%zu): memory over time = live heap bytes at 64 equal times of each run\n",
            n);
    for (size_t k = 0; k < n; k++) {
        const struct proc *p = &ps[order[k]];
        const struct ms_model *m = p->m;
        int d = depth[order[k]];
        if (d > 8)
            d = 8;
        char pk[32], rt[32], how[300], line[400];
        ms_an_bytes(pk, sizeof pk, m->peak_bytes);
        ms_an_time(rt, sizeof rt, m->t_end);
        how_text(m, how, sizeof how);
        snprintf(line, sizeof line, "%*s%llu %s%s  run %s  peak %s  %s", 2 + 2 * d, "",
                 (unsigned long long)m->pid, exe_name(m), p->is_exec ? " (exec)" : "", rt, pk, how);
        ms_an_fit(line, 100);
        fprintf(o, "%s\n", line);
        fprintf(o, "%*s|", 4 + 2 * d, "");
        ms_an_sparkline(o, m->sample_bytes, MS_MODEL_SAMPLES);
        fprintf(o, "|\n");
    }
    fputc('\n', o);
}

static void text_leak_line(FILE *o, const char *first, const char *name, uint64_t bytes,
                           uint64_t blocks, uint64_t extra_ind)
{
    char b[32], c[32], x[48] = "";
    if (extra_ind) {
        char ib[32];
        snprintf(x, sizeof x, " (+%s indirect)", ms_an_bytes(ib, sizeof ib, extra_ind));
    }
    fprintf(o, "  %-11s%-17s %s in %s block%s%s\n", first, name, ms_an_bytes(b, sizeof b, bytes),
            ms_an_count(c, sizeof c, blocks), pl(blocks), x);
}

static void text_notes(FILE *o, const struct proc *p)
{
    const struct ms_model *m = p->m;
    char a[32], b[32];
    const char *lead = "  notes      ";
    const char *next = "             ";
    char note[1200];
#define NOTE(...)                                         \
    do {                                                  \
        snprintf(note, sizeof note, __VA_ARGS__);         \
        ms_an_wrap(o, lead, next, note, 100);             \
        lead = next;                                      \
    } while (0)
    if (p->status != MS_TRACE_OK)
        NOTE("%s", p->msg);
    if (!m->have_end && !m->ended_by_exec)
        NOTE("no END record: the program was killed or crashed; %s in %s blocks were still "
             "allocated when the trace ends",
             ms_an_bytes(a, sizeof a, m->live_bytes), ms_an_count(b, sizeof b, m->live_blocks));
    if (!m->have_process)
        NOTE("no PROCESS record: pid and program unknown");
    if (m->lost_events)
        NOTE("%s events were lost by the agent (its buffers were full): figures are low",
             ms_an_count(a, sizeof a, m->lost_events));
    if (m->late)
        NOTE("%s events came more than 250 ms out of time order: peak and samples are "
             "approximate",
             ms_an_count(a, sizeof a, m->late));
    if (m->free_unknown)
        NOTE("%s frees of blocks the trace never allocated (ignored)",
             ms_an_count(a, sizeof a, m->free_unknown));
    if (m->alloc_over_live)
        NOTE("%s allocations of an address still live (a free went missing)",
             ms_an_count(a, sizeof a, m->alloc_over_live));
    if (m->series_refused)
        NOTE("growth is tracked for %d sites; %s more were not followed", MS_MODEL_SERIES_CAP,
             ms_an_count(a, sizeof a, m->series_refused));
    if (m->mods_dropped)
        NOTE("%s MODULE records beyond %d were ignored", ms_an_count(a, sizeof a, m->mods_dropped),
             MS_MODEL_MAX_MODULES);
#undef NOTE
}

static const char *kind_label(const struct ms_site *s)
{
    static const char *const names[] = { "definite", "indirect", "possible" };
    int best = -1;
    uint64_t bb = 0;
    for (int k = 0; k < 3; k++)
        if (s->leak_bytes[k][0] > bb || (best < 0 && s->leak_blocks[k][0])) {
            bb = s->leak_bytes[k][0];
            best = k;
        }
    int kinds = 0;
    for (int k = 0; k < 3; k++)
        kinds += s->leak_blocks[k][0] || s->leak_bytes[k][0];
    return kinds > 1 ? "mixed" : best >= 0 ? names[best] : "";
}

/* ------------------------------------------------------------------ */
/* threads: what each thread allocated (ALLOC's thread field)          */
/* ------------------------------------------------------------------ */

static const struct ms_model *thr_m;
static int thr_cmp(const void *x, const void *y)
{
    const struct ms_thread *a = &thr_m->thr[*(const size_t *)x], *b = &thr_m->thr[*(const size_t *)y];
    int c = cmp_u64(a->alloc_bytes, b->alloc_bytes);
    return c ? c : (c = cmp_u64(a->allocs, b->allocs)) ? c : a->tid < b->tid ? -1 : a->tid > b->tid;
}

/* the threads to show, most bytes allocated first (index 0, the unknown thread, only
   if it holds anything); NULL when the trace names no thread (*n = 0) or out of memory */
static size_t *threads_order(const struct ms_model *m, size_t *n)
{
    *n = 0;
    if (!m->have_alloc_tid || !m->nthr)
        return NULL;
    size_t *ix = malloc(m->nthr * sizeof *ix);
    if (!ix)
        return NULL;
    for (size_t i = 0; i < m->nthr; i++) {
        const struct ms_thread *t = &m->thr[i];
        if (i || t->allocs || t->live_blocks || t->max_bytes)
            ix[(*n)++] = i;
    }
    thr_m = m;
    qsort(ix, *n, sizeof *ix, thr_cmp);
    return ix;
}

static void text_threads(FILE *o, const struct proc *p)
{
    const struct ms_model *m = p->m;
    size_t n;
    size_t *ix = threads_order(m, &n);
    if (!ix)
        return;
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
    fprintf(o, "\n  Threads (%zu; each with the blocks it allocated, whoever freed them)\n", n);
    fprintf(o, "  %6s  %-9s %9s %9s %9s %9s %9s %9s %9s\n", "tid", "name", "calls",
            "allocated", "max live", "at", "at peak", "at end", "leaked");
    size_t shown = n > (size_t)p->threads_top ? (size_t)p->threads_top : n;
    for (size_t k = 0; k < shown; k++) {
        const struct ms_thread *t = &m->thr[ix[k]];
        char name[64];
        snprintf(name, sizeof name, "%s", t->tid ? (t->name ? t->name : "?") : "(unknown)");
        ms_an_clean(name);
        ms_an_fit(name, 9);
        fprintf(o, "  %6llu  %-9s %9s %9s %9s %9s %9s %9s %9s\n", (unsigned long long)t->tid,
                name, ms_an_count(a, sizeof a, t->allocs), ms_an_bytes(b, sizeof b, t->alloc_bytes),
                ms_an_bytes(c, sizeof c, t->max_bytes), ms_an_time(d, sizeof d, t->max_t),
                ms_an_bytes(e, sizeof e, t->peak_bytes), ms_an_bytes(f, sizeof f, t->live_bytes),
                ms_an_bytes(g, sizeof g, t->leak_bytes));
    }
    if (shown < n)
        fprintf(o, "  %8s  (%zu more threads; --top=N or --format=json)\n", "", n - shown);
    if (m->thr_leak_unattributed)
        fprintf(o, "  %8s  leaked from sites several threads allocated from: %s\n", "",
                ms_an_bytes(a, sizeof a, m->thr_leak_unattributed));
    if (m->threads_over_cap)
        fprintf(o, "  %8s  %llu allocations of threads past the first %d counted as unknown\n", "",
                (unsigned long long)m->threads_over_cap, MS_MODEL_MAX_THREADS - 1);
    free(ix);
}

static void json_threads(FILE *o, const struct proc *p)
{
    const struct ms_model *m = p->m;
    size_t n;
    size_t *ix = threads_order(m, &n);
    if (!ix) {
        fputs("null", o);
        return;
    }
    fprintf(o, "{\"leaked_bytes_unattributed\": %llu, \"allocations_past_thread_cap\": %llu, "
               "\"threads\": [",
            (unsigned long long)m->thr_leak_unattributed, (unsigned long long)m->threads_over_cap);
    for (size_t k = 0; k < n; k++) {
        const struct ms_thread *t = &m->thr[ix[k]];
        fprintf(o, "%s{\"tid\": %llu, \"name\": ", k ? ",\n     " : "\n     ",
                (unsigned long long)t->tid);
        ms_an_json_str(o, t->name);
        fprintf(o, ", \"allocations\": %llu, \"allocated_bytes\": %llu, \"frees\": %llu, "
                   "\"max_live_bytes\": %llu, \"max_live_blocks\": %llu, \"max_live_time_ns\": %llu, "
                   "\"peak_bytes\": %llu, \"peak_blocks\": %llu, \"end_live_bytes\": %llu, "
                   "\"end_live_blocks\": %llu, \"leaked_bytes\": %llu, \"leaked_blocks\": %llu}",
                (unsigned long long)t->allocs, (unsigned long long)t->alloc_bytes,
                (unsigned long long)t->frees, (unsigned long long)t->max_bytes,
                (unsigned long long)t->max_blocks, (unsigned long long)t->max_t,
                (unsigned long long)t->peak_bytes, (unsigned long long)t->peak_blocks,
                (unsigned long long)t->live_bytes, (unsigned long long)t->live_blocks,
                (unsigned long long)t->leak_bytes, (unsigned long long)t->leak_blocks);
    }
    fputs("]}", o);
    free(ix);
}

static void text_site_col(FILE *o, const struct proc *p, const struct entry *e, int width, int stacks)
{
    char lab[2048];
    ms_an_site_label_at(&p->stacks[e->stack], e->label_pc, lab, sizeof lab);
    ms_an_fit(lab, (size_t)width);
    fprintf(o, "%s\n", lab);
    if (stacks)
        ms_an_text_stack(o, "         ", &p->stacks[e->stack]);
}

static void text_lists(FILE *o, const struct proc *p, int stacks)
{
    const struct ms_model *m = p->m;
    char a[32], b[32], c[32], d[32];

    ms_an_time(a, sizeof a, m->peak_t);
    fprintf(o, "\n  Top sites by peak contribution (live bytes at the peak, %s)\n", a);
    if (!p->nlist[L_PEAK])
        fprintf(o, "     (none)\n");
    else
        fprintf(o, "  %4s  %10s %10s  %6s  %s\n", "#", "bytes", "blocks", "share", "site");
    for (size_t k = 0; k < p->nlist[L_PEAK]; k++) {
        const struct entry *e = &p->list[L_PEAK][k];
        double share = m->peak_bytes ? 100.0 * (double)e->s.peak_bytes / (double)m->peak_bytes : 0;
        fprintf(o, "  %4zu  %10s %10s  %5.1f%%  ", k + 1, ms_an_bytes(b, sizeof b, e->s.peak_bytes),
                ms_an_count(c, sizeof c, e->s.peak_blocks), share);
        text_site_col(o, p, e, 58, stacks);
    }

    fprintf(o, "\n  Top sites by leaked bytes (definitely, indirectly, possibly lost at exit)\n");
    if (!p->nlist[L_LEAKED])
        fprintf(o, "     (none)\n");
    else
        fprintf(o, "  %4s  %10s %10s  %-8s  %s\n", "#", "bytes", "blocks", "kind", "site");
    for (size_t k = 0; k < p->nlist[L_LEAKED]; k++) {
        const struct entry *e = &p->list[L_LEAKED][k];
        fprintf(o, "  %4zu  %10s %10s  %-8s  ", k + 1, ms_an_bytes(b, sizeof b, lost_bytes(&e->s)),
                ms_an_count(c, sizeof c, ms_site_leak_blocks(&e->s, 7, 0)), kind_label(&e->s));
        text_site_col(o, p, e, 58, stacks);
    }

    fprintf(o, "\n  Top sites by allocation count\n");
    if (!p->nlist[L_ALLOCS])
        fprintf(o, "     (none)\n");
    else
        fprintf(o, "  %4s  %10s %10s %10s  %s\n", "#", "calls", "allocated", "temporary", "site");
    for (size_t k = 0; k < p->nlist[L_ALLOCS]; k++) {
        const struct entry *e = &p->list[L_ALLOCS][k];
        fprintf(o, "  %4zu  %10s %10s %10s  ", k + 1, ms_an_count(b, sizeof b, e->s.allocs),
                ms_an_bytes(c, sizeof c, e->s.alloc_bytes), ms_an_count(d, sizeof d, e->s.temps));
        text_site_col(o, p, e, 57, stacks);
    }

    fprintf(o, "\n  Top sites by temporary allocations (freed within 1 ms of their allocation)\n");
    if (!p->nlist[L_TEMP])
        fprintf(o, "     (none)\n");
    else
        fprintf(o, "  %4s  %10s %10s %10s  %s\n", "#", "temporary", "of calls", "bytes", "site");
    for (size_t k = 0; k < p->nlist[L_TEMP]; k++) {
        const struct entry *e = &p->list[L_TEMP][k];
        fprintf(o, "  %4zu  %10s %9.1f%% %10s  ", k + 1, ms_an_count(b, sizeof b, e->s.temps),
                e->s.allocs ? 100.0 * (double)e->s.temps / (double)e->s.allocs : 0.0,
                ms_an_bytes(c, sizeof c, e->s.temp_bytes));
        text_site_col(o, p, e, 57, stacks);
    }

    fprintf(o, "\n  Growth suspects (site live bytes at 64 times; steady growers first)\n");
    if (!p->nlist[L_GROWTH])
        fprintf(o, "     (none)\n");
    else
        fprintf(o, "  %4s  %-66s %-13s %s\n", "#", "site", "state", "score");
    for (size_t k = 0; k < p->nlist[L_GROWTH]; k++) {
        const struct entry *e = &p->list[L_GROWTH][k];
        char lab[2048], line[2300];
        ms_an_site_label_at(&p->stacks[e->stack], e->label_pc, lab, sizeof lab);
        ms_an_fit(lab, 66);
        snprintf(line, sizeof line, "  %4zu. %-66s %-13s %.2f", k + 1, lab,
                 ms_state_name(e->s.state), e->s.score);
        fprintf(o, "%s\n", line);
        fprintf(o, "        |");
        ms_an_sparkline(o, e->samples, MS_MODEL_SAMPLES);
        fprintf(o, "|\n");
        double rate = e->s.slope_per_s;
        fprintf(o, "        end %s, %.0f%% of the heap; %s%s/s; grew in %d of 62 intervals, shrank in %d",
                ms_an_bytes(a, sizeof a, e->s.end_bytes), 100.0 * e->s.share, rate < 0 ? "-" : "+",
                ms_an_bytes(b, sizeof b, (uint64_t)(rate < 0 ? -rate : rate)), e->s.increases,
                e->s.decreases);
        fputc('\n', o);
        if (e->s.state == MS_STATE_LOST)
            fprintf(o, "        lost at exit: %s in %s block%s\n",
                    ms_an_bytes(c, sizeof c, ms_site_leak_bytes(&e->s, 7, 2)),
                    ms_an_count(d, sizeof d, ms_site_leak_blocks(&e->s, 7, 2)),
                    pl(ms_site_leak_blocks(&e->s, 7, 2)));
        else if (e->s.state == MS_STATE_REACHABLE)
            fprintf(o, "        still reachable at exit: %s in %s block%s\n",
                    ms_an_bytes(c, sizeof c, ms_site_leak_bytes(&e->s, 8, 2)),
                    ms_an_count(d, sizeof d, ms_site_leak_blocks(&e->s, 8, 2)),
                    pl(ms_site_leak_blocks(&e->s, 8, 2)));
        else if (e->s.state == MS_STATE_FREED_AT_EXIT)
            fprintf(o, "        freed at exit: %s live before the end, none at END, in no leak record\n",
                    ms_an_bytes(c, sizeof c, e->s.end_bytes));
        else if (e->s.state == MS_STATE_LIVE_AT_END)
            fprintf(o, "        live at the end of the trace: %s (no END record: killed?)\n",
                    ms_an_bytes(c, sizeof c, e->s.live_bytes));
        else if (e->s.state == MS_STATE_LIVE_AT_EXIT)
            fprintf(o, "        live at exit: %s (the trace holds no leak check)\n",
                    ms_an_bytes(c, sizeof c, e->s.live_bytes));
        if (stacks)
            ms_an_text_stack(o, "         ", &p->stacks[e->stack]);
    }
}

static void text_process(FILE *o, struct proc *ps, size_t n, size_t i, int stacks)
{
    const struct proc *p = &ps[i];
    const struct ms_model *m = p->m;
    char a[64], b[64], c[64], d[64], how[300], line[2200];

    snprintf(line, sizeof line, "== process %llu: %s ", (unsigned long long)m->pid,
             m->exe && *m->exe ? m->exe : "?");
    ms_an_fit(line, 98);
    size_t len = strlen(line);
    fputs(line, o);
    for (size_t k = len; k < 99; k++)
        fputc('=', o);
    fputc('\n', o);

    if (m->argc) {
        size_t off = 0;
        line[0] = 0;
        for (size_t k = 0; k < m->argc && off + 2 < sizeof line; k++)
            off += (size_t)snprintf(line + off, sizeof line - off, "%s%s", k ? " " : "", m->argv[k]);
        ms_an_fit(line, 87);
        fprintf(o, "  command    %s\n", line);
    }
    if (p->parent >= 0)
    {
        snprintf(line, sizeof line, "%llu (%s)%s", (unsigned long long)ps[p->parent].m->pid,
                 exe_name(ps[p->parent].m), p->is_exec ? ": this image replaced it (exec)" : "");
        ms_an_fit(line, 87);
        fprintf(o, "  parent     %s\n", line);
    }
    else if (m->have_process)
        fprintf(o, "  parent     %llu\n", (unsigned long long)m->ppid);
    snprintf(line, sizeof line, "%s (format %u, %u chunk%s)", p->trace, m->version, m->chunks,
             pl(m->chunks));
    ms_an_fit(line, 87);
    fprintf(o, "  trace      %s\n", line);
    how_text(m, how, sizeof how);
    snprintf(line, sizeof line, "%s, %s", ms_an_time(a, sizeof a, m->t_end), how);
    ms_an_fit(line, 87);
    fprintf(o, "  run time   %s\n", line);
    double secs = (double)m->t_end / 1e9;
    fprintf(o, "  allocs     %s calls (%s/s), %s allocated, %s frees\n",
            ms_an_count(a, sizeof a, m->allocs),
            ms_an_count(b, sizeof b, secs > 0 ? (uint64_t)((double)m->allocs / secs) : m->allocs),
            ms_an_bytes(c, sizeof c, m->alloc_bytes), ms_an_count(d, sizeof d, m->frees));
    if (m->sample_rate)
        fprintf(o, "  sampled    --sample-rate=%llu: the trace holds about one allocation per %llu bytes\n"
                   "             allocated, chosen at random; every figure below counts those only\n",
                (unsigned long long)m->sample_rate, (unsigned long long)m->sample_rate);
    fprintf(o, "  temporary  %s allocations freed within 1 ms (%.1f%% of calls), %s\n",
            ms_an_count(a, sizeof a, m->temps),
            m->allocs ? 100.0 * (double)m->temps / (double)m->allocs : 0.0,
            ms_an_bytes(b, sizeof b, m->temp_bytes));
    fprintf(o, "  peak heap  %s in %s block%s at %s\n", ms_an_bytes(a, sizeof a, m->peak_bytes),
            ms_an_count(b, sizeof b, m->peak_blocks), pl(m->peak_blocks),
            ms_an_time(c, sizeof c, m->peak_t));
    uint64_t psl;
    const struct ms_snapshot *pks = peak_snapshot(m, &psl);
    if (pks)
        fprintf(o, "  peak snap  snapshot %llu at %s (--snapshot-peak) holds %s, %.1f%% of the peak heap\n",
                (unsigned long long)pks->id, ms_an_time(a, sizeof a, pks->t), ms_an_bytes(b, sizeof b, psl),
                m->peak_bytes ? 100.0 * (double)psl / (double)m->peak_bytes : 0.0);
    if (m->samples)
        fprintf(o, "  peak RSS   %s at %s\n", ms_an_bytes(a, sizeof a, m->peak_rss),
                ms_an_time(b, sizeof b, m->peak_rss_t));
    else
        fprintf(o, "  peak RSS   unknown (no SAMPLE records)\n");
    if (m->inherited_blocks)
        fprintf(o, "  inherited  %s in %s block%s from the parent at fork\n",
                ms_an_bytes(a, sizeof a, m->inherited_bytes),
                ms_an_count(b, sizeof b, m->inherited_blocks), pl(m->inherited_blocks));
    if (m->have_leaks) {
        static const char *const names[] = { "definitely lost", "indirectly lost", "possibly lost",
                                             "still reachable" };
        uint64_t sb = 0, sk = 0;
        for (int k = 0; k < 4; k++) {
            text_leak_line(o, k ? "" : "at exit", names[k], m->leak_bytes[k][0],
                           m->leak_blocks[k][0], 0);
            sb += m->leak_bytes[k][1];
            sk += m->leak_blocks[k][1];
        }
        text_leak_line(o, "", "suppressed", sb, sk, 0);
        uint64_t ub, uk;
        unclassified(m, &ub, &uk);
        if (ub || uk)
            fprintf(o, "  %-11s%-17s %s in %s block%s (kinds --show-leak-kinds left out)\n", "",
                    "not in records", ms_an_bytes(a, sizeof a, ub), ms_an_count(b, sizeof b, uk),
                    pl(uk));
    } else if (m->ended_by_exec) {
        fprintf(o, "  at exec    %s in %s block%s live\n", ms_an_bytes(a, sizeof a, m->live_bytes),
                ms_an_count(b, sizeof b, m->live_blocks), pl(m->live_blocks));
    } else if (m->have_end) {
        fprintf(o, "  at exit    %s in %s block%s still allocated; no LEAK records (nothing of the "
                   "kinds shown, or no check)\n",
                ms_an_bytes(a, sizeof a, m->live_bytes), ms_an_count(b, sizeof b, m->live_blocks),
                pl(m->live_blocks));
    } else {
        fprintf(o, "  at end     %s in %s block%s still allocated when the trace ends\n",
                ms_an_bytes(a, sizeof a, m->live_bytes), ms_an_count(b, sizeof b, m->live_blocks),
                pl(m->live_blocks));
    }
    /* live reachability checks (memsleuth snapshot / --snapshot-*) */
    for (size_t k = m->nsnaps > 5 ? m->nsnaps - 5 : 0; k < m->nsnaps; k++) {
        const struct ms_snapshot *sn = &m->snaps[k];
        uint64_t lb = sn->bytes[0] + sn->bytes[1] + sn->bytes[2];
        uint64_t lk = sn->blocks[0] + sn->blocks[1] + sn->blocks[2];
        snprintf(line, sizeof line, "  %-11s%llu at %s (%s, pause %s): lost %s in %s block%s, "
                 "reachable %s",
                 k == (m->nsnaps > 5 ? m->nsnaps - 5 : 0) ? "snapshots" : "",
                 (unsigned long long)sn->id, ms_an_time(a, sizeof a, sn->t),
                 ms_trace_trigger_name(sn->trigger), ms_an_time(b, sizeof b, sn->pause_ns),
                 ms_an_bytes(c, sizeof c, lb), ms_an_count(d, sizeof d, lk), pl(lk),
                 ms_an_bytes(how, sizeof how, sn->bytes[3]));
        ms_an_fit(line, 100);
        fprintf(o, "%s\n", line);
    }
    if (m->snaps_total > m->nsnaps || m->nsnaps > 5)
        fprintf(o, "  %-11s(%llu in all; --format=json lists them)\n", "",
                (unsigned long long)m->snaps_total);
    /* children: traced ones and the FORK records */
    size_t shown = 0;
    line[0] = 0;
    size_t off = 0;
    for (size_t k = 0; k < p->nkids && off + 40 < sizeof line; k++) {
        const struct proc *c2 = &ps[p->kids[k]];
        off += (size_t)snprintf(line + off, sizeof line - off, "%s%llu%s", shown++ ? ", " : "",
                                (unsigned long long)c2->m->pid, c2->is_exec ? " (exec)" : "");
    }
    for (size_t k = 0; k < m->nforks && off + 40 < sizeof line; k++)
        if (traced_child(ps, n, i, m->forks[k].pid) < 0)
            off += (size_t)snprintf(line + off, sizeof line - off, "%s%llu (no trace)",
                                    shown++ ? ", " : "", (unsigned long long)m->forks[k].pid);
    if (shown || m->forks_total) {
        ms_an_fit(line, 87);
        fprintf(o, "  children   %s\n", shown ? line : "-");
    }
    fprintf(o, "  memory     |");
    ms_an_sparkline(o, m->sample_bytes, MS_MODEL_SAMPLES);
    uint64_t mx = 0;
    for (int k = 0; k < MS_MODEL_SAMPLES; k++)
        if (m->sample_bytes[k] > mx)
            mx = m->sample_bytes[k];
    fprintf(o, "| max %s\n", ms_an_bytes(a, sizeof a, mx));
    text_notes(o, p);
    text_lists(o, p, stacks);
    text_threads(o, p);
    ms_pools_text(o, p->pools, p->pools_top); /* pools.c: nothing without pool records */
    ms_graph_text(o, p->graph, p->graph_top);  /* graph.c: nothing without GRAPH records */
    fputc('\n', o);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

static void json_kb(FILE *o, const char *name, uint64_t bytes, uint64_t blocks)
{
    fprintf(o, "\"%s\": {\"bytes\": %llu, \"blocks\": %llu}", name, (unsigned long long)bytes,
            (unsigned long long)blocks);
}

static void json_site(FILE *o, const struct proc *p, const struct entry *e, int growth)
{
    const struct ms_site *s = &e->s;
    fprintf(o, "{\"stack_id\": %llu, \"allocations\": %llu, \"allocated_bytes\": %llu, "
               "\"temporary\": %llu, \"temporary_bytes\": %llu, \"peak_bytes\": %llu, "
               "\"peak_blocks\": %llu, \"max_live_bytes\": %llu, \"max_live_blocks\": %llu, "
               "\"exit_live_bytes\": %llu, \"exit_live_blocks\": %llu, \"inherited_bytes\": %llu, "
               "\"leaked_bytes\": %llu, \"leaked_blocks\": %llu, ",
            (unsigned long long)s->stack_id, (unsigned long long)s->allocs,
            (unsigned long long)s->alloc_bytes, (unsigned long long)s->temps,
            (unsigned long long)s->temp_bytes, (unsigned long long)s->peak_bytes,
            (unsigned long long)s->peak_blocks, (unsigned long long)s->max_bytes,
            (unsigned long long)s->max_blocks, (unsigned long long)s->live_bytes,
            (unsigned long long)s->live_blocks, (unsigned long long)s->inherited_bytes,
            (unsigned long long)ms_site_leak_bytes(s, 7, 0),
            (unsigned long long)ms_site_leak_blocks(s, 7, 0));
    fprintf(o, "\"leaks\": {");
    static const char *const kn[] = { "definitely_lost", "indirectly_lost", "possibly_lost",
                                      "still_reachable" };
    for (int k = 0; k < 4; k++) {
        json_kb(o, kn[k], s->leak_bytes[k][0], s->leak_blocks[k][0]);
        fputs(", ", o);
    }
    json_kb(o, "suppressed", ms_site_leak_bytes(s, 15, 1), ms_site_leak_blocks(s, 15, 1));
    fprintf(o, "}, \"indirect_bytes\": %llu, \"allocators\": [",
            (unsigned long long)s->leak_indirect_bytes);
    int first = 1;
    for (int f = 0; f < 32; f++)
        if (s->fn_mask & (1u << f)) {
            fprintf(o, "%s\"%s\"", first ? "" : ", ", ms_trace_fn_name((uint64_t)f));
            first = 0;
        }
    fprintf(o, "], \"state\": \"%s\"", ms_state_name(s->state));
    if (growth) {
        fprintf(o, ", \"score\": ");
        ms_an_json_double(o, s->score);
        fprintf(o, ", \"growth\": ");
        ms_an_json_double(o, s->growth);
        fprintf(o, ", \"steadiness\": ");
        ms_an_json_double(o, s->steadiness);
        fprintf(o, ", \"share\": ");
        ms_an_json_double(o, s->share);
        fprintf(o, ", \"slope_bytes_per_s\": ");
        ms_an_json_double(o, s->slope_per_s);
        fprintf(o, ", \"increases\": %d, \"decreases\": %d, \"end_bytes\": %llu, \"samples\": [",
                s->increases, s->decreases, (unsigned long long)s->end_bytes);
        for (int k = 0; k < MS_MODEL_SAMPLES; k++)
            fprintf(o, "%s%llu", k ? ", " : "", (unsigned long long)e->samples[k]);
        fputc(']', o);
    }
    const struct ms_an_stack *st = &p->stacks[e->stack];
    const struct ms_an_frame *lf = ms_an_label_frame(st, e->label_pc);
    fprintf(o, ", \"label_frame\": ");
    if (lf)
        fprintf(o, "%zu", (size_t)(lf - st->f));
    else
        fputs("null", o);
    fprintf(o, ", \"stack\": ");
    ms_an_json_frames(o, st);
    fputc('}', o);
}

static void json_process(FILE *o, struct proc *ps, size_t n, size_t i, const size_t *pos)
{
    const struct proc *p = &ps[i];
    const struct ms_model *m = p->m;
    fprintf(o, "{\"pid\": %llu, \"ppid\": %llu, \"exe\": ", (unsigned long long)m->pid,
            (unsigned long long)m->ppid);
    ms_an_json_str(o, m->have_process ? m->exe : NULL);
    fprintf(o, ", \"argv\": [");
    for (size_t k = 0; k < m->argc; k++) {
        fputs(k ? ", " : "", o);
        ms_an_json_str(o, m->argv[k]);
    }
    fprintf(o, "], \"cwd\": ");
    ms_an_json_str(o, m->have_process ? m->cwd : NULL);
    fprintf(o, ", \"trace\": ");
    ms_an_json_str(o, p->trace);
    fprintf(o, ", \"start_unix_ns\": %llu, \"parent_index\": ", (unsigned long long)m->start_unix_ns);
    if (p->parent >= 0)
        fprintf(o, "%zu", pos[p->parent]);
    else
        fputs("null", o);
    fprintf(o, ", \"exec_of_parent\": %s", p->is_exec ? "true" : "false");
    fprintf(o, ", \"children\": [");
    for (size_t k = 0; k < p->nkids; k++)
        fprintf(o, "%s%llu", k ? ", " : "", (unsigned long long)ps[p->kids[k]].m->pid);
    fprintf(o, "], \"forks\": [");
    for (size_t k = 0; k < m->nforks; k++)
        fprintf(o, "%s{\"pid\": %llu, \"time_ns\": %llu, \"traced\": %s}", k ? ", " : "",
                (unsigned long long)m->forks[k].pid, (unsigned long long)m->forks[k].t,
                traced_child(ps, n, i, m->forks[k].pid) >= 0 ? "true" : "false");
    fprintf(o, "], \"complete\": %s, \"end\": ",
            (m->have_end || m->ended_by_exec) && p->status == MS_TRACE_OK ? "true" : "false");
    if (m->have_end) {
        fprintf(o, "{\"how\": \"%s\", \"status\": %llu, \"time_ns\": %llu}",
                ms_trace_end_how_name(m->end_how), (unsigned long long)m->end_status,
                (unsigned long long)m->end_t);
        fprintf(o, ", \"exit_status\": %llu", (unsigned long long)m->end_status);
        fprintf(o, ", \"killed_by_signal\": %s", m->end_how == MS_END_SIGNAL ? "true" : "false");
    } else if (m->ended_by_exec) {
        fprintf(o, "{\"how\": \"exec\", \"path\": ");
        ms_an_json_str(o, m->exec_path);
        fprintf(o, ", \"time_ns\": %llu}, \"exit_status\": null, \"killed_by_signal\": false",
                (unsigned long long)m->exec_t);
    } else {
        fprintf(o, "null, \"exit_status\": null, \"killed_by_signal\": false");
    }
    fprintf(o, ", \"exec\": ");
    ms_an_json_str(o, m->ended_by_exec ? m->exec_path : NULL);
    fprintf(o, ", \"snapshots\": [");
    static const char *const skn[] = { "definitely_lost", "indirectly_lost", "possibly_lost",
                                       "still_reachable" };
    for (size_t k = 0; k < m->nsnaps; k++) {
        const struct ms_snapshot *sn = &m->snaps[k];
        fprintf(o, "%s{\"id\": %llu, \"time_ns\": %llu, \"trigger\": \"%s\", \"pause_ns\": %llu, "
                   "\"live_bytes\": %llu, \"live_blocks\": %llu, \"leaks\": {",
                k ? ", " : "", (unsigned long long)sn->id, (unsigned long long)sn->t,
                ms_trace_trigger_name(sn->trigger), (unsigned long long)sn->pause_ns,
                (unsigned long long)(sn->bytes[0] + sn->bytes[1] + sn->bytes[2] + sn->bytes[3]),
                (unsigned long long)(sn->blocks[0] + sn->blocks[1] + sn->blocks[2] + sn->blocks[3]));
        for (int kk = 0; kk < 4; kk++) {
            fputs(kk ? ", " : "", o);
            json_kb(o, skn[kk], sn->bytes[kk], sn->blocks[kk]);
        }
        fputs("}}", o);
    }
    fputc(']', o);
    uint64_t psl;
    const struct ms_snapshot *pks = peak_snapshot(m, &psl);
    fputs(", \"peak_snapshot\": ", o);
    if (pks) {
        fprintf(o, "{\"id\": %llu, \"time_ns\": %llu, \"live_bytes\": %llu, \"share_of_peak\": ",
                (unsigned long long)pks->id, (unsigned long long)pks->t, (unsigned long long)psl);
        ms_an_json_double(o, m->peak_bytes ? (double)psl / (double)m->peak_bytes : 0);
        fputc('}', o);
    } else {
        fputs("null", o);
    }
    fprintf(o, ", \"read\": {\"status\": \"%s\", \"message\": ",
            p->status == MS_TRACE_OK    ? "ok"
            : p->status == MS_TRACE_CUT ? "cut"
                                        : "error");
    ms_an_json_str(o, p->status == MS_TRACE_OK ? NULL : p->msg);
    fprintf(o, ", \"chunks\": %u, \"records\": %llu, \"unknown_records\": %llu}", m->chunks,
            (unsigned long long)m->records, (unsigned long long)m->unknown_records);
    double secs = (double)m->t_end / 1e9;
    fprintf(o, ", \"run_time_ns\": %llu, \"allocations\": %llu, \"allocated_bytes\": %llu, "
               "\"frees\": %llu, \"allocation_rate_per_s\": ",
            (unsigned long long)m->t_end, (unsigned long long)m->allocs,
            (unsigned long long)m->alloc_bytes, (unsigned long long)m->frees);
    ms_an_json_double(o, secs > 0 ? (double)m->allocs / secs : 0);
    fprintf(o, ", \"sample_rate_bytes\": %llu", (unsigned long long)m->sample_rate);
    fprintf(o, ", \"temporary\": {\"allocations\": %llu, \"bytes\": %llu, \"threshold_ns\": %llu}",
            (unsigned long long)m->temps, (unsigned long long)m->temp_bytes,
            (unsigned long long)MS_MODEL_TEMP_NS);
    fprintf(o, ", \"peak_bytes\": %llu, \"peak_blocks\": %llu, \"peak_time_ns\": %llu",
            (unsigned long long)m->peak_bytes, (unsigned long long)m->peak_blocks,
            (unsigned long long)m->peak_t);
    if (m->samples)
        fprintf(o, ", \"peak_rss_bytes\": %llu, \"peak_rss_time_ns\": %llu",
                (unsigned long long)m->peak_rss, (unsigned long long)m->peak_rss_t);
    else
        fprintf(o, ", \"peak_rss_bytes\": null, \"peak_rss_time_ns\": null");
    fprintf(o, ", \"exit_live_bytes\": %llu, \"exit_live_blocks\": %llu, \"end_bytes\": %llu",
            (unsigned long long)m->live_bytes, (unsigned long long)m->live_blocks,
            (unsigned long long)m->end_bytes);
    fprintf(o, ", ");
    json_kb(o, "inherited", m->inherited_bytes, m->inherited_blocks);
    fprintf(o, ", \"leak_check\": %s, \"leaks\": {", m->have_leaks ? "true" : "false");
    static const char *const kn[] = { "definitely_lost", "indirectly_lost", "possibly_lost",
                                      "still_reachable" };
    uint64_t sb = 0, sk = 0;
    for (int k = 0; k < 4; k++) {
        json_kb(o, kn[k], m->leak_bytes[k][0], m->leak_blocks[k][0]);
        fputs(", ", o);
        sb += m->leak_bytes[k][1];
        sk += m->leak_blocks[k][1];
    }
    json_kb(o, "suppressed", sb, sk);
    uint64_t ub, uk;
    unclassified(m, &ub, &uk);
    fputs(", ", o);
    json_kb(o, "not_in_records", ub, uk);
    fprintf(o, "}, \"lost_events\": %llu, \"late_events\": %llu, \"unmatched_frees\": %llu, "
               "\"threads\": %llu, \"sites\": %zu, \"growth_suspects_total\": %zu",
            (unsigned long long)m->lost_events, (unsigned long long)m->late,
            (unsigned long long)m->free_unknown, (unsigned long long)m->threads, p->nsites,
            m->nsuspects);
    fprintf(o, ", \"samples_end_ns\": %llu", (unsigned long long)m->t_samples);
    fprintf(o, ", \"memory_over_time\": {\"time_ns\": [");
    for (int k = 0; k < MS_MODEL_SAMPLES; k++)
        fprintf(o, "%s%llu", k ? ", " : "", (unsigned long long)m->sample_t[k]);
    fprintf(o, "], \"live_bytes\": [");
    for (int k = 0; k < MS_MODEL_SAMPLES; k++)
        fprintf(o, "%s%llu", k ? ", " : "", (unsigned long long)m->sample_bytes[k]);
    fprintf(o, "]}");
    for (int l = 0; l < NLISTS; l++) {
        fprintf(o, ",\n   \"%s\": [", list_json[l]);
        for (size_t k = 0; k < p->nlist[l]; k++) {
            fputs(k ? ",\n     " : "\n     ", o);
            json_site(o, p, &p->list[l][k], l == L_GROWTH);
        }
        fputc(']', o);
    }
    fputs(",\n   \"thread_breakdown\": ", o);
    json_threads(o, p);
    fputs(",\n   \"pools\": ", o); /* pools.c: null without pool records */
    ms_pools_json(o, p->pools);
    fputs(",\n   \"heap_graph\": ", o); /* graph.c: null without GRAPH records */
    ms_graph_json(o, p->graph, p->graph_top);
    fputc('}', o);
}

static const char json_definitions[] =
    "{\"site\": \"one stack of the trace (the allocation's call stack)\", "
    "\"temporary\": \"an allocation freed within 1 ms (1000000 ns) of its allocation\", "
    "\"peak_bytes\": \"the maximum of the process's live heap bytes (records merged in time "
    "order), first reached at peak_time_ns\", "
    "\"top_peak\": \"sites by their live bytes at the moment of the peak (peak_bytes of the "
    "site), exact, computed in the same pass\", "
    "\"top_leaked\": \"sites by bytes in definitely, indirectly and possibly lost LEAK records "
    "(unsuppressed)\", "
    "\"top_allocations\": \"sites by allocation calls\", "
    "\"top_temporary\": \"sites by temporary allocations\", "
    "\"memory_over_time\": \"live bytes at 64 times from 0 to samples_end_ns (the last ALLOC or "
    "FREE: the exit check after it is not part of the run); sample i is taken within one grid "
    "step (< 1/64 of the run) after (i+1)/64 of the run; the last one is the state at the end\", "
    "\"growth_suspects\": \"sites whose live bytes keep growing: over the 63 samples before the "
    "end, positive least-squares slope, at least 8 increases, at least 80% of the intervals not "
    "shrinking (steadiness), growth = slope x span / end_bytes >= 0.2, share = end_bytes / the "
    "process's end_bytes >= 1%, where end_bytes is the highest of the last 8 samples before the "
    "end; ranked by score = growth x steadiness x sqrt(share)\", "
    "\"state\": \"lost: a definitely/indirectly/possibly lost LEAK record on the stack; "
    "reachable: a still reachable LEAK record (none lost); freed_at_exit: a growth suspect live "
    "in the last samples before the end, in no LEAK record, nothing left at END; live_at_exit: "
    "still live at END without a leak check; live_at_end: no END record (killed) and still live; "
    "freed: freed before the end\"}";

static void json_report(FILE *o, struct proc *ps, size_t n, const size_t *order)
{
    fprintf(o, "{\"tool\": \"memsleuth\", \"version\": \"%s\", \"trace_format\": %d,\n "
               "\"definitions\": %s,\n \"processes\": [",
            MS_AN_VERSION, MS_TRACE_VERSION, json_definitions);
    size_t *pos = calloc(n, sizeof *pos);
    for (size_t k = 0; pos && k < n; k++)
        pos[order[k]] = k;
    for (size_t k = 0; pos && k < n; k++) {
        fputs(k ? ",\n  " : "\n  ", o);
        json_process(o, ps, n, order[k], pos);
    }
    if (!pos)
        fprintf(stderr, "memsleuth report: out of memory\n");
    free(pos);
    fprintf(o, "]}\n");
}

/* ------------------------------------------------------------------ */
/* dump                                                                */
/* ------------------------------------------------------------------ */

static void dump_rec(FILE *o, const struct ms_trace_rec *r)
{
    const char *name = ms_trace_rec_name(r->type);
    if (ms_pools_dump_rec(o, r)) /* pools.c: types 20..27 */
        return;
    if (ms_graph_dump_rec(o, r)) /* graph.c: types 16..19 */
        return;
    if (r->type == 0 || r->type > MS_REC_SNAP_LEAK) {
        fprintf(o, "UNKNOWN type=%llu len=%llu\n", (unsigned long long)r->type,
                (unsigned long long)r->len);
        return;
    }
    fputs(name, o);
    if (r->has_time)
        fprintf(o, " t=%llu", (unsigned long long)r->t);
    switch (r->type) {
    case MS_REC_PROCESS:
        fprintf(o, " pid=%llu ppid=%llu start_unix_ns=%llu exe=", (unsigned long long)r->u.process.pid,
                (unsigned long long)r->u.process.ppid, (unsigned long long)r->u.process.start_unix_ns);
        ms_an_dump_str(o, r->u.process.exe);
        fprintf(o, " argc=%llu argv=[", (unsigned long long)r->u.process.argc);
        for (size_t i = 0; i < r->u.process.argv_kept; i++) {
            fputs(i ? "," : "", o);
            ms_an_dump_str(o, r->u.process.argv[i]);
        }
        fprintf(o, "] cwd=");
        ms_an_dump_str(o, r->u.process.cwd);
        if (r->u.process.sample_rate)
            fprintf(o, " sample_rate=%llu", (unsigned long long)r->u.process.sample_rate);
        break;
    case MS_REC_MODULE:
        fprintf(o, " path=");
        ms_an_dump_str(o, r->u.module.path);
        fprintf(o, " build_id=");
        for (size_t i = 0; i < r->u.module.build_id.len; i++)
            fprintf(o, "%02x", (unsigned char)r->u.module.build_id.p[i]);
        if (!r->u.module.build_id.len)
            fputc('-', o);
        fprintf(o, " bias=0x%llx lo=0x%llx hi=0x%llx flags=%llu",
                (unsigned long long)r->u.module.bias, (unsigned long long)r->u.module.lo,
                (unsigned long long)r->u.module.hi, (unsigned long long)r->u.module.flags);
        break;
    case MS_REC_STACK:
        fprintf(o, " id=%llu n=%llu pcs=", (unsigned long long)r->u.stack.id,
                (unsigned long long)r->u.stack.n);
        for (size_t i = 0; i < r->u.stack.kept; i++)
            fprintf(o, "%s0x%llx", i ? "," : "", (unsigned long long)r->u.stack.pcs[i]);
        if (!r->u.stack.kept)
            fputc('-', o);
        break;
    case MS_REC_THREAD:
        fprintf(o, " tid=%llu name=", (unsigned long long)r->u.thread.tid);
        ms_an_dump_str(o, r->u.thread.name);
        break;
    case MS_REC_ALLOC:
        fprintf(o, " addr=0x%llx size=%llu stack=%llu fn=", (unsigned long long)r->u.alloc.addr,
                (unsigned long long)r->u.alloc.size, (unsigned long long)r->u.alloc.stack);
        if (r->u.alloc.fn < 15)
            fputs(ms_trace_fn_name(r->u.alloc.fn), o);
        else
            fprintf(o, "%llu", (unsigned long long)r->u.alloc.fn);
        if (r->inherited)
            fputs(" inherited=1", o);
        if (r->u.alloc.tid)
            fprintf(o, " tid=%llu", (unsigned long long)r->u.alloc.tid);
        break;
    case MS_REC_FREE:
        fprintf(o, " addr=0x%llx", (unsigned long long)r->u.free.addr);
        break;
    case MS_REC_SAMPLE:
        fprintf(o, " rss=%llu heap_live_bytes=%llu heap_live_blocks=%llu",
                (unsigned long long)r->u.sample.rss, (unsigned long long)r->u.sample.heap_live_bytes,
                (unsigned long long)r->u.sample.heap_live_blocks);
        break;
    case MS_REC_LEAK:
        fprintf(o, " kind=");
        if (r->u.leak.kind < 4)
            fputs(ms_trace_leak_kind_name(r->u.leak.kind), o);
        else
            fprintf(o, "%llu", (unsigned long long)r->u.leak.kind);
        fprintf(o, " stack=%llu bytes=%llu blocks=%llu indirect_bytes=%llu suppressed=%llu",
                (unsigned long long)r->u.leak.stack, (unsigned long long)r->u.leak.bytes,
                (unsigned long long)r->u.leak.blocks, (unsigned long long)r->u.leak.indirect_bytes,
                (unsigned long long)r->u.leak.suppressed);
        break;
    case MS_REC_END:
        fprintf(o, " how=");
        if (r->u.end.how < 3)
            fputs(ms_trace_end_how_name(r->u.end.how), o);
        else
            fprintf(o, "%llu", (unsigned long long)r->u.end.how);
        fprintf(o, " status=%llu", (unsigned long long)r->u.end.status);
        break;
    case MS_REC_FORK:
        fprintf(o, " child_pid=%llu", (unsigned long long)r->u.fork.child_pid);
        break;
    case MS_REC_EXEC:
        fprintf(o, " path=");
        ms_an_dump_str(o, r->u.exec.path);
        break;
    case MS_REC_LOST:
        fprintf(o, " count=%llu", (unsigned long long)r->u.lost.count);
        break;
    case MS_REC_INHERITED:
        fprintf(o, " count=%llu", (unsigned long long)r->u.inherited.count);
        break;
    case MS_REC_SNAPSHOT:
        fprintf(o, " id=%llu trigger=", (unsigned long long)r->u.snapshot.id);
        if (r->u.snapshot.trigger >= 1 && r->u.snapshot.trigger <= 4)
            fputs(ms_trace_trigger_name(r->u.snapshot.trigger), o);
        else
            fprintf(o, "%llu", (unsigned long long)r->u.snapshot.trigger);
        fprintf(o, " pause_ns=%llu", (unsigned long long)r->u.snapshot.pause_ns);
        break;
    case MS_REC_SNAP_LEAK:
        fprintf(o, " kind=");
        if (r->u.snap_leak.kind < 4)
            fputs(ms_trace_leak_kind_name(r->u.snap_leak.kind), o);
        else
            fprintf(o, "%llu", (unsigned long long)r->u.snap_leak.kind);
        fprintf(o, " stack=%llu bytes=%llu blocks=%llu", (unsigned long long)r->u.snap_leak.stack,
                (unsigned long long)r->u.snap_leak.bytes, (unsigned long long)r->u.snap_leak.blocks);
        break;
    default:
        break;
    }
    fputc('\n', o);
}

/* TRACE file=... version=1 / CHUNK n=.. offset=.. comp_len=.. raw_len=.. / one line per record */
static int dump_trace(FILE *o, const char *path, int *bad)
{
    char err[1024];
    struct ms_trace_reader *r = ms_trace_open(path, err, sizeof err);
    if (!r) {
        fprintf(stderr, "memsleuth: %s\n", err);
        return -1;
    }
    fprintf(o, "TRACE file=");
    ms_an_dump_str(o, (struct ms_trace_str){ path, strlen(path) });
    fprintf(o, " version=%u\n", ms_trace_version(r));
    struct ms_trace_rec rec;
    uint32_t chunk = 0;
    while (ms_trace_next(r, &rec) > 0) {
        if (rec.chunk != chunk) {
            uint64_t off;
            uint32_t cl, rl;
            ms_trace_chunk_info(r, &off, &cl, &rl);
            fprintf(o, "CHUNK n=%u offset=%llu comp_len=%u raw_len=%u\n", rec.chunk,
                    (unsigned long long)off, cl, rl);
            chunk = rec.chunk;
        }
        dump_rec(o, &rec);
    }
    *bad |= ms_an_trace_status(path, ms_trace_end(r), ms_trace_message(r));
    ms_trace_close(r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the command                                                         */
/* ------------------------------------------------------------------ */

int ms_report_main(int argc, char **argv)
{
    struct ms_an_opts opt = { .cmd = "report" };
    const char *why = NULL; /* --why=SITE (graph.c), taken out before the shared options */
    for (int k = 1; k < argc; k++)
        if (!strncmp(argv[k], "--why=", 6)) {
            why = argv[k] + 6;
            memmove(&argv[k], &argv[k + 1], (size_t)(argc - k) * sizeof *argv);
            argc--;
            k--;
        }
    int rc = ms_an_parse_opts(argc, argv, &opt, usage);
    if (rc) {
        free(opt.files);
        return rc < 0 ? 0 : rc;
    }
    int bad = 0;
    if (!strcmp(opt.format, "dump")) {
        FILE *o = ms_an_open_out(&opt);
        if (!o) {
            free(opt.files);
            return MS_AN_EXIT_OUTPUT;
        }
        int unreadable = 0;
        for (int i = 0; i < opt.nfiles; i++)
            if (dump_trace(o, opt.files[i], &bad) < 0)
                unreadable = 1;
        rc = ms_an_close_out(o, &opt);
        free(opt.files);
        return rc ? rc : (bad || unreadable) ? MS_AN_EXIT_INPUT : 0;
    }
    if (!strcmp(opt.format, "collapsed") || !strcmp(opt.format, "pprof") ||
        !strcmp(opt.format, "xml")) {
        rc = ms_export_main(&opt); /* export.c, pprof.c */
        free(opt.files);
        return rc;
    }
    int html = !strcmp(opt.format, "html");
    if (html && !opt.top_set)
        opt.top = 30;

    size_t n = (size_t)opt.nfiles;
    struct proc *ps = calloc(n, sizeof *ps);
    if (!ps) {
        fprintf(stderr, "memsleuth report: out of memory\n");
        free(opt.files);
        return MS_AN_EXIT_INPUT;
    }
    size_t loaded = 0;
    for (size_t i = 0; i < n; i++) {
        char err[1024];
        struct proc *p = &ps[i];
        p->pools = ms_pools_new(); /* pools.c takes the pool records while the model loads */
        p->pools_top = opt.top;
        ms_trace_set_pool_tap(p->pools ? ms_pools_tap : NULL, p->pools);
        p->m = ms_model_load(opt.files[i], &p->status, p->msg, sizeof p->msg, err, sizeof err);
        ms_trace_set_pool_tap(NULL, NULL);
        if (p->m) {
            ms_pools_finish(p->pools, p->m);
        } else {
            ms_pools_free(p->pools);
            p->pools = NULL;
        }
        if (!p->m) {
            fprintf(stderr, "memsleuth: %s\n", err);
            rc = MS_AN_EXIT_INPUT;
            break;
        }
        loaded++;
        p->trace = strdup(opt.files[i]);
        bad |= ms_an_trace_status(opt.files[i], p->status, p->msg);
        if (!p->trace || build_lists(p, opt.top) < 0 ||
            (html && !(p->html = ms_html_collect(p->m)))) {
            fprintf(stderr, "memsleuth report: out of memory\n");
            rc = MS_AN_EXIT_INPUT;
            break;
        }
        /* the heap graph: a pass of its own over the trace (graph.c) */
        p->graph_top = opt.top;
        p->threads_top = opt.top;
        p->graph = ms_graph_analyze(opt.files[i], why,
                                    p->nlist[L_GROWTH] ? p->list[L_GROWTH][0].s.stack_id : 0, err,
                                    sizeof err);
        if (!p->graph)
            fprintf(stderr, "memsleuth: warning: no heap graph: %s\n", err);
        ms_model_shrink(p->m); /* keep the results, drop the tables */
    }
    int *depth = NULL;
    size_t *order = NULL;
    if (!rc && (build_tree(ps, n) < 0 || !(order = tree_order(ps, n, &depth)))) {
        fprintf(stderr, "memsleuth report: out of memory\n");
        rc = MS_AN_EXIT_INPUT;
    }
    if (!rc) {
        FILE *o = ms_an_open_out(&opt);
        if (!o) {
            rc = MS_AN_EXIT_OUTPUT;
        } else {
            if (!strcmp(opt.format, "json")) {
                json_report(o, ps, n, order);
            } else if (html) {
                /* html.c: the page embeds the JSON report */
                char *js = NULL, **extra = calloc(n, sizeof *extra);
                size_t jl = 0;
                FILE *m = open_memstream(&js, &jl);
                if (m) {
                    json_report(m, ps, n, order);
                    if (fclose(m) != 0) {
                        free(js);
                        js = NULL;
                    }
                }
                for (size_t k = 0; extra && k < n; k++)
                    extra[k] = ps[order[k]].html;
                if (!js || !extra || ms_html_write(o, js, jl, extra, n) < 0)
                    fprintf(stderr, "memsleuth report: out of memory\n");
                free(js);
                free(extra);
            } else {
                fprintf(o, "memsleuth report: %zu process%s\n\n", n, n == 1 ? "" : "es");
                if (n > 1)
                    text_overview(o, ps, n, order, depth);
                for (size_t k = 0; k < n; k++)
                    text_process(o, ps, n, order[k], opt.stacks);
            }
            rc = ms_an_close_out(o, &opt);
        }
    }
    free(order);
    free(depth);
    for (size_t i = 0; i < loaded; i++)
        proc_release(&ps[i]);
    free(ps);
    free(opt.files);
    return rc ? rc : bad ? MS_AN_EXIT_INPUT : 0;
}
