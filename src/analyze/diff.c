/*
 * memsleuth - diff.c: `memsleuth diff [--format=text|json] [--scale N:M] A B`
 *
 * Per-site change between two traces.  Stack ids and addresses differ from
 * run to run (ids are assigned in order of first use, ASLR moves modules), so
 * sites are matched by their symbolized stacks: for each frame (inlined ones
 * included) "function@file:line", else "function@module", else
 * "module+offset" (ms_an_site_key).  Sites of one trace with the same key are
 * added together.
 *
 * The figure compared is the site's retained memory: its highest live bytes
 * during the run (max_live_bytes; max_live_blocks for blocks), which counts a
 * leak, a still reachable cache and memory freed only at exit alike.
 * Changes: appeared (only in B), disappeared (only in A), grew, shrank,
 * unchanged (same retained bytes; the allocation count may still differ).
 *
 * --scale N:M says A ran N iterations and B ran M: per_iteration_X =
 * (X_B - X_A) / (M - N), the cost of one more iteration, the fixed costs
 * (start-up, caches filled once) cancelling.
 */
#include "analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "symbolize.h"

static const char usage[] =
    "usage: memsleuth diff [--format=text|json] [--scale N:M] [-o FILE] [--stacks|-v] [--top=N] A B\n"
    "\n"
    "Per-site change between two traces A and B: what appeared, what grew, what shrank, what\n"
    "disappeared, comparing each site's highest live bytes.  Sites are matched by their\n"
    "symbolized stacks.\n"
    "\n"
    "  --scale N:M       A ran N iterations, B ran M: also per-iteration figures,\n"
    "                    (B - A) / (M - N)\n"
    "  --format=text     for a terminal (default); json: {\"sites\": [...]}\n"
    "  -o FILE           write there instead of standard output\n"
    "  --stacks, -v      full stacks in the text output\n"
    "  --top=N           entries per section of the text output [10]\n";

struct dsite {
    char *key;
    struct ms_site s;         /* figures (summed over the sites with this key) */
    struct ms_an_stack st;    /* symbolized stack of the first such site */
};

struct side {
    const char *path;
    struct ms_model *m;       /* shrunk after the sites are taken */
    enum ms_trace_status status;
    char msg[512];
    struct dsite *v;
    size_t n;
};

enum change { C_APPEARED, C_GREW, C_SHRANK, C_DISAPPEARED, C_SAME };
static const char *const change_names[] = { "appeared", "grew", "shrank", "disappeared",
                                            "unchanged" };

struct pair {
    const struct dsite *a, *b; /* either may be NULL */
    enum change c;
    double delta_bytes, delta_blocks, delta_allocs;
    double it_bytes, it_blocks, it_allocs; /* per iteration (with --scale) */
};

static int key_cmp(const void *x, const void *y)
{
    return strcmp(((const struct dsite *)x)->key, ((const struct dsite *)y)->key);
}

static void add_site(struct ms_site *d, const struct ms_site *s)
{
    d->allocs += s->allocs;
    d->alloc_bytes += s->alloc_bytes;
    d->temps += s->temps;
    d->temp_bytes += s->temp_bytes;
    d->inherited_blocks += s->inherited_blocks;
    d->inherited_bytes += s->inherited_bytes;
    d->live_bytes += s->live_bytes;
    d->live_blocks += s->live_blocks;
    d->max_bytes += s->max_bytes;
    d->max_blocks += s->max_blocks;
    d->peak_bytes += s->peak_bytes;
    d->peak_blocks += s->peak_blocks;
    for (int k = 0; k < 4; k++)
        for (int x = 0; x < 2; x++) {
            d->leak_bytes[k][x] += s->leak_bytes[k][x];
            d->leak_blocks[k][x] += s->leak_blocks[k][x];
        }
    d->leak_indirect_bytes += s->leak_indirect_bytes;
    d->fn_mask |= s->fn_mask;
}

static void side_release(struct side *sd)
{
    for (size_t i = 0; i < sd->n; i++) {
        free(sd->v[i].key);
        ms_an_stack_release(&sd->v[i].st);
    }
    free(sd->v);
    ms_model_free(sd->m);
}

/* load a trace and key its sites; returns 0, or an exit status */
static int load_side(struct side *sd)
{
    char err[1024];
    sd->m = ms_model_load(sd->path, &sd->status, sd->msg, sizeof sd->msg, err, sizeof err);
    if (!sd->m) {
        fprintf(stderr, "memsleuth: %s\n", err);
        return MS_AN_EXIT_INPUT;
    }
    struct ms_model *m = sd->m;
    struct ms_sym *sym = ms_an_sym_new(m);
    sd->v = calloc(m->nsites ? m->nsites : 1, sizeof *sd->v);
    if (!sd->v)
        goto nomem;
    for (size_t i = 0; i < m->nsites; i++) {
        const struct ms_site *s = &m->sites[i];
        if (!s->allocs && !s->max_bytes && !s->max_blocks && !ms_site_leak_blocks(s, 15, 2))
            continue; /* a stack nothing used */
        struct dsite *d = &sd->v[sd->n];
        if (ms_an_resolve(sym, s->npcs ? m->pcs + s->pcs_off : NULL, s->npcs, &d->st) < 0)
            goto nomem;
        sd->n++;
        d->s = *s;
        if (!(d->key = ms_an_site_key(&d->st)))
            goto nomem;
    }
    ms_sym_free(sym);
    sym = NULL;
    qsort(sd->v, sd->n, sizeof *sd->v, key_cmp);
    /* merge equal keys */
    size_t w = 0;
    for (size_t i = 0; i < sd->n; i++) {
        if (w && !strcmp(sd->v[w - 1].key, sd->v[i].key)) {
            add_site(&sd->v[w - 1].s, &sd->v[i].s);
            free(sd->v[i].key);
            ms_an_stack_release(&sd->v[i].st);
            continue;
        }
        sd->v[w++] = sd->v[i];
    }
    sd->n = w;
    ms_model_shrink(m);
    return 0;
nomem:
    ms_sym_free(sym);
    fprintf(stderr, "memsleuth diff: out of memory reading '%s'\n", sd->path);
    return MS_AN_EXIT_INPUT;
}

static const struct ms_an_opts *g_opt;

static double pair_key(const struct pair *p)
{
    return g_opt->have_scale ? p->it_bytes : p->delta_bytes;
}

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *a = x, *b = y;
    int ga = a->c == C_SAME ? 2 : (a->c == C_SHRANK || a->c == C_DISAPPEARED) ? 1 : 0;
    int gb = b->c == C_SAME ? 2 : (b->c == C_SHRANK || b->c == C_DISAPPEARED) ? 1 : 0;
    if (ga != gb)
        return ga < gb ? -1 : 1;
    double ka = fabs(pair_key(a)), kb = fabs(pair_key(b));
    if (ka != kb)
        return ka > kb ? -1 : 1;
    double aa = fabs(a->delta_allocs), ab = fabs(b->delta_allocs);
    if (aa != ab)
        return aa > ab ? -1 : 1;
    const struct dsite *sa = a->b ? a->b : a->a, *sb = b->b ? b->b : b->a;
    return strcmp(sa->key, sb->key);
}

static void json_fig(FILE *o, const struct dsite *d)
{
    if (!d) {
        fputs("null", o);
        return;
    }
    const struct ms_site *s = &d->s;
    fprintf(o, "{\"allocations\": %llu, \"allocated_bytes\": %llu, \"max_live_bytes\": %llu, "
               "\"max_live_blocks\": %llu, \"peak_bytes\": %llu, \"exit_live_bytes\": %llu, "
               "\"exit_live_blocks\": %llu, \"leaked_bytes\": %llu, \"leaked_blocks\": %llu, "
               "\"temporary\": %llu}",
            (unsigned long long)s->allocs, (unsigned long long)s->alloc_bytes,
            (unsigned long long)s->max_bytes, (unsigned long long)s->max_blocks,
            (unsigned long long)s->peak_bytes, (unsigned long long)s->live_bytes,
            (unsigned long long)s->live_blocks, (unsigned long long)ms_site_leak_bytes(s, 7, 0),
            (unsigned long long)ms_site_leak_blocks(s, 7, 0), (unsigned long long)s->temps);
}

static void json_side(FILE *o, const char *name, const struct side *sd, int have_scale,
                      uint64_t iters)
{
    const struct ms_model *m = sd->m;
    fprintf(o, "\"%s\": {\"trace\": ", name);
    ms_an_json_str(o, sd->path);
    fprintf(o, ", \"pid\": %llu, \"exe\": ", (unsigned long long)m->pid);
    ms_an_json_str(o, m->have_process ? m->exe : NULL);
    fprintf(o, ", \"peak_bytes\": %llu, \"allocations\": %llu, \"allocated_bytes\": %llu, "
               "\"run_time_ns\": %llu, \"sites\": %zu",
            (unsigned long long)m->peak_bytes, (unsigned long long)m->allocs,
            (unsigned long long)m->alloc_bytes, (unsigned long long)m->t_end, sd->n);
    if (have_scale)
        fprintf(o, ", \"iterations\": %llu", (unsigned long long)iters);
    fputc('}', o);
}

/* "+48 B", "-1.50 KiB", "+0 B" for a signed, possibly fractional, byte figure */
static char *sbytes(char *buf, size_t n, double v)
{
    char b[24];
    double a = fabs(v);
    if (a < 1024 && a != floor(a))
        snprintf(b, sizeof b, "%.1f B", a);
    else
        ms_an_bytes(b, sizeof b, (uint64_t)llround(a));
    snprintf(buf, n, "%s%s", v < 0 ? "-" : "+", b);
    return buf;
}

static void text_section(FILE *o, const struct pair *pv, size_t np, enum change c,
                         const struct ms_an_opts *opt)
{
    size_t cnt = 0;
    for (size_t i = 0; i < np; i++)
        cnt += pv[i].c == c;
    if (!cnt)
        return;
    static const char *const titles[] = { "Appeared (only in B)", "Grew", "Shrank",
                                          "Disappeared (only in A)", "" };
    fprintf(o, "\n  %s: %zu site%s\n", titles[c], cnt, cnt == 1 ? "" : "s");
    if (opt->have_scale)
        fprintf(o, "  %4s  %10s  %10s %10s %10s %10s  %s\n", "#", "A bytes", "B bytes", "change",
                "per iter", "blocks/it", "site");
    else
        fprintf(o, "  %4s  %10s  %10s %10s %10s %10s  %s\n", "#", "A bytes", "B bytes", "change",
                "A blocks", "B blocks", "site");
    size_t k = 0;
    for (size_t i = 0; i < np && k < (size_t)opt->top; i++) {
        const struct pair *p = &pv[i];
        if (p->c != c)
            continue;
        k++;
        char a[32], b[32], d[32], e[32], f[32], lab[2048];
        const struct dsite *ds = p->b ? p->b : p->a;
        ms_an_bytes(a, sizeof a, p->a ? p->a->s.max_bytes : 0);
        ms_an_bytes(b, sizeof b, p->b ? p->b->s.max_bytes : 0);
        sbytes(d, sizeof d, p->delta_bytes);
        if (opt->have_scale) {
            sbytes(e, sizeof e, p->it_bytes);
            snprintf(f, sizeof f, "%+.2f", p->it_blocks);
        } else {
            ms_an_count(e, sizeof e, p->a ? p->a->s.max_blocks : 0);
            ms_an_count(f, sizeof f, p->b ? p->b->s.max_blocks : 0);
        }
        ms_an_site_label(&ds->st, lab, sizeof lab);
        ms_an_fit(lab, 36);
        fprintf(o, "  %4zu  %10s  %10s %10s %10s %10s  %s\n", k, a, b, d, e, f, lab);
        if (opt->stacks)
            ms_an_text_stack(o, "         ", &ds->st);
    }
    if (cnt > k)
        fprintf(o, "     ... %zu more (--top=N, or --format=json for all)\n", cnt - k);
}

int ms_diff_main(int argc, char **argv)
{
    struct ms_an_opts opt = { .cmd = "diff" };
    int rc = ms_an_parse_opts(argc, argv, &opt, usage);
    if (rc) {
        free(opt.files);
        return rc < 0 ? 0 : rc;
    }
    g_opt = &opt;
    struct side sa = { .path = opt.files[0] }, sb = { .path = opt.files[1] };
    struct pair *pv = NULL;
    size_t np = 0;
    int bad = 0;
    if ((rc = load_side(&sa)) != 0)
        goto out;
    bad |= ms_an_trace_status(sa.path, sa.status, sa.msg);
    if ((rc = load_side(&sb)) != 0)
        goto out;
    bad |= ms_an_trace_status(sb.path, sb.status, sb.msg);

    pv = calloc(sa.n + sb.n + 1, sizeof *pv);
    if (!pv) {
        fprintf(stderr, "memsleuth diff: out of memory\n");
        rc = MS_AN_EXIT_INPUT;
        goto out;
    }
    double span = opt.have_scale ? (double)opt.scale_b - (double)opt.scale_a : 1;
    for (size_t i = 0, j = 0; i < sa.n || j < sb.n;) {
        int c = i == sa.n ? 1 : j == sb.n ? -1 : strcmp(sa.v[i].key, sb.v[j].key);
        struct pair *p = &pv[np++];
        p->a = c <= 0 ? &sa.v[i++] : NULL;
        p->b = c >= 0 ? &sb.v[j++] : NULL;
        double ab = p->a ? (double)p->a->s.max_bytes : 0, bb = p->b ? (double)p->b->s.max_bytes : 0;
        double ak = p->a ? (double)p->a->s.max_blocks : 0, bk = p->b ? (double)p->b->s.max_blocks : 0;
        double aa = p->a ? (double)p->a->s.allocs : 0, ba = p->b ? (double)p->b->s.allocs : 0;
        p->delta_bytes = bb - ab;
        p->delta_blocks = bk - ak;
        p->delta_allocs = ba - aa;
        p->it_bytes = p->delta_bytes / span;
        p->it_blocks = p->delta_blocks / span;
        p->it_allocs = p->delta_allocs / span;
        if (!p->a)
            p->c = C_APPEARED;
        else if (!p->b)
            p->c = C_DISAPPEARED;
        else
            p->c = bb > ab ? C_GREW : bb < ab ? C_SHRANK : C_SAME;
    }
    qsort(pv, np, sizeof *pv, pair_cmp);

    FILE *o = ms_an_open_out(&opt);
    if (!o) {
        rc = MS_AN_EXIT_OUTPUT;
        goto out;
    }
    if (!strcmp(opt.format, "json")) {
        fprintf(o, "{\"tool\": \"memsleuth\", \"version\": \"%s\", \"compared\": \"max_live_bytes\", ",
                MS_AN_VERSION);
        json_side(o, "a", &sa, opt.have_scale, opt.scale_a);
        fputs(", ", o);
        json_side(o, "b", &sb, opt.have_scale, opt.scale_b);
        if (opt.have_scale) {
            fprintf(o, ", \"scale\": {\"a\": %llu, \"b\": %llu}, \"per_iteration_peak_bytes\": ",
                    (unsigned long long)opt.scale_a, (unsigned long long)opt.scale_b);
            ms_an_json_double(o, ((double)sb.m->peak_bytes - (double)sa.m->peak_bytes) / span);
        } else {
            fprintf(o, ", \"scale\": null");
        }
        fprintf(o, ",\n \"sites\": [");
        for (size_t i = 0; i < np; i++) {
            const struct pair *p = &pv[i];
            fprintf(o, "%s{\"change\": \"%s\", \"a\": ", i ? ",\n  " : "\n  ", change_names[p->c]);
            json_fig(o, p->a);
            fprintf(o, ", \"b\": ");
            json_fig(o, p->b);
            fprintf(o, ", \"delta_bytes\": ");
            ms_an_json_double(o, p->delta_bytes);
            fprintf(o, ", \"delta_blocks\": ");
            ms_an_json_double(o, p->delta_blocks);
            fprintf(o, ", \"delta_allocations\": ");
            ms_an_json_double(o, p->delta_allocs);
            if (opt.have_scale) {
                fprintf(o, ", \"per_iteration_bytes\": ");
                ms_an_json_double(o, p->it_bytes);
                fprintf(o, ", \"per_iteration_blocks\": ");
                ms_an_json_double(o, p->it_blocks);
                fprintf(o, ", \"per_iteration_allocations\": ");
                ms_an_json_double(o, p->it_allocs);
            }
            fprintf(o, ", \"stack\": ");
            ms_an_json_frames(o, p->b ? &p->b->st : &p->a->st);
            fputc('}', o);
        }
        fprintf(o, "]}\n");
    } else {
        char x[32], y[32], z[32];
        fprintf(o, "memsleuth diff: sites compared by their highest live bytes\n");
        const struct side *sides[2] = { &sa, &sb };
        for (int s = 0; s < 2; s++) {
            const struct ms_model *m = sides[s]->m;
            char line[2200];
            snprintf(line, sizeof line, "  %c  %s: pid %llu %s, peak %s, %s calls, run %s", "AB"[s],
                     sides[s]->path, (unsigned long long)m->pid,
                     m->exe && *m->exe ? m->exe : "?", ms_an_bytes(x, sizeof x, m->peak_bytes),
                     ms_an_count(y, sizeof y, m->allocs), ms_an_time(z, sizeof z, m->t_end));
            ms_an_fit(line, 99);
            fprintf(o, "%s\n", line);
        }
        if (opt.have_scale)
            fprintf(o, "  per iteration = (B - A) / (%llu - %llu): fixed costs cancel; peak %s per "
                       "iteration\n",
                    (unsigned long long)opt.scale_b, (unsigned long long)opt.scale_a,
                    sbytes(x, sizeof x,
                           ((double)sb.m->peak_bytes - (double)sa.m->peak_bytes) / span));
        size_t changed = 0;
        for (size_t i = 0; i < np; i++)
            changed += pv[i].c != C_SAME;
        if (!changed)
            fprintf(o, "\n  no site changed its highest live bytes\n");
        for (int c = C_APPEARED; c <= C_DISAPPEARED; c++)
            text_section(o, pv, np, (enum change)c, &opt);
    }
    rc = ms_an_close_out(o, &opt);
out:
    free(pv);
    if (sa.m)
        side_release(&sa);
    if (sb.m)
        side_release(&sb);
    free(opt.files);
    return rc ? rc : bad ? MS_AN_EXIT_INPUT : 0;
}
