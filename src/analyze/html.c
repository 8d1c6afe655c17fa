/*
 * memsleuth - html.c: `memsleuth report --format=html`: one self-contained
 * page (inline CSS and JavaScript, no external URL: it opens offline).
 *
 * The page is html_page.html (the template; html_page.h is made from it by
 * scripts/gen_html_page.py) with, in a <script type="application/json">:
 *
 *   {"report": the --format=json report (processes in tree order),
 *    "extra": [per process: {"names": [...], "files": [...],
 *              "nodes": [parent, name, file, peak_bytes, leaked_bytes, ...]
 *                       (node 0 is the root; a node's figures are the sums
 *                       over the sites whose stack passes through it),
 *              "flame_sites": sites in the trees, "other_sites": sites left out,
 *              "series": [{"label", "samples": [64]}] the sites with the most
 *                       live bytes over the run, for the stacked chart}]}
 *
 * Every string of the program (function, file, exe, argv, cwd, thread and
 * trace names) reaches the page only there, JSON-escaped, with '<', '>' and
 * '&' written as \u003c \u003e \u0026 so that no "</script>" or "<!--" can
 * end or change the script element; the script puts them in the page with
 * textContent / createTextNode only (never innerHTML).  The title, the one
 * string written into the HTML itself, is HTML-escaped here.
 *
 * Flame graphs: the sites with peak or leaked bytes (when there are more than
 * MS_HTML_FLAME_SITES, the MS_HTML_FLAME_SITES / 2 largest by each, the rest
 * summed in "(other sites)"), frames merged by name from the outermost.
 */
#include "export.h"

#include <stdlib.h>
#include <string.h>

#include "html_page.h"

#define MS_HTML_FLAME_SITES 10000
#define MS_HTML_SERIES 8

struct names {
    char **s;
    size_t n, cap;
    uint32_t *h;
    size_t hcap;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* index of s, added if new; UINT32_MAX out of memory */
static uint32_t name_id(struct names *t, const char *s)
{
    if ((t->n + 1) * 2 > t->hcap) {
        size_t nc = t->hcap ? t->hcap * 2 : 1024;
        uint32_t *nh = calloc(nc, sizeof *nh);
        if (!nh)
            return UINT32_MAX;
        for (size_t i = 0; i < t->n; i++) {
            size_t h = (size_t)fnv(t->s[i]) & (nc - 1);
            while (nh[h])
                h = (h + 1) & (nc - 1);
            nh[h] = (uint32_t)i + 1;
        }
        free(t->h);
        t->h = nh;
        t->hcap = nc;
    }
    size_t h = (size_t)fnv(s) & (t->hcap - 1);
    while (t->h[h]) {
        if (!strcmp(t->s[t->h[h] - 1], s))
            return t->h[h] - 1;
        h = (h + 1) & (t->hcap - 1);
    }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        char **ns = realloc(t->s, nc * sizeof *ns);
        if (!ns)
            return UINT32_MAX;
        t->s = ns;
        t->cap = nc;
    }
    if (!(t->s[t->n] = strdup(s)))
        return UINT32_MAX;
    t->h[h] = (uint32_t)t->n + 1;
    return (uint32_t)t->n++;
}

static void names_free(struct names *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    free(t->h);
}

struct node {
    uint32_t parent, name, file;
    uint64_t peak, leaked;
};

struct tree {
    struct node *v;
    size_t n, cap;
    uint64_t *hk;  /* (parent << 32 | name) + 1, 0 = empty */
    uint32_t *hv;
    size_t hcap;
};

static size_t hash64(uint64_t k, size_t cap)
{
    return (size_t)ms_an_hash64(k) & (cap - 1);
}

/* the child of parent named name (made if new); UINT32_MAX out of memory */
static uint32_t child(struct tree *t, uint32_t parent, uint32_t name, uint32_t file)
{
    if ((t->n + 1) * 2 > t->hcap) {
        size_t nc = t->hcap ? t->hcap * 2 : 4096;
        uint64_t *nk = calloc(nc, sizeof *nk);
        uint32_t *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return UINT32_MAX;
        }
        for (size_t i = 0; i < t->hcap; i++)
            if (t->hk[i]) {
                size_t h = hash64(t->hk[i], nc);
                while (nk[h])
                    h = (h + 1) & (nc - 1);
                nk[h] = t->hk[i];
                nv[h] = t->hv[i];
            }
        free(t->hk);
        free(t->hv);
        t->hk = nk;
        t->hv = nv;
        t->hcap = nc;
    }
    uint64_t k = ((uint64_t)parent << 32 | name) + 1;
    size_t h = hash64(k, t->hcap);
    while (t->hk[h]) {
        if (t->hk[h] == k)
            return t->hv[h];
        h = (h + 1) & (t->hcap - 1);
    }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        struct node *nv = realloc(t->v, nc * sizeof *nv);
        if (!nv)
            return UINT32_MAX;
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n] = (struct node){ parent, name, file, 0, 0 };
    t->hk[h] = k;
    t->hv[h] = (uint32_t)t->n;
    return (uint32_t)t->n++;
}

static const struct ms_model *sort_m;
static int by_peak_desc(const void *x, const void *y)
{
    uint64_t a = sort_m->sites[*(const size_t *)x].peak_bytes;
    uint64_t b = sort_m->sites[*(const size_t *)y].peak_bytes;
    return a > b ? -1 : a < b;
}
static int by_leak_desc(const void *x, const void *y)
{
    uint64_t a = ms_site_leak_bytes(&sort_m->sites[*(const size_t *)x], 7, 0);
    uint64_t b = ms_site_leak_bytes(&sort_m->sites[*(const size_t *)y], 7, 0);
    return a > b ? -1 : a < b;
}

/* all frames of a site from the cache (innermost first), shallow copies;
   -1 out of memory */
static int site_frames(struct ms_pcache *c, const struct ms_model *m, const struct ms_site *s,
                       struct ms_an_stack *out)
{
    size_t cap = 0;
    out->f = NULL;
    out->n = 0;
    for (size_t k = 0; k < s->npcs; k++) {
        size_t e = ms_pcache_get(c, m->pcs[s->pcs_off + k]);
        if (e == SIZE_MAX)
            return -1;
        for (size_t j = 0; j < c->st[e].n; j++) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 32;
                struct ms_an_frame *nf = realloc(out->f, cap * sizeof *nf);
                if (!nf)
                    return -1;
                out->f = nf;
            }
            out->f[out->n++] = c->st[e].f[j];
        }
    }
    return 0;
}

char *ms_html_collect(const struct ms_model *m)
{
    struct ms_pcache c;
    if (ms_pcache_init(&c, m) < 0)
        return NULL;
    struct names nm = { 0 }, fl = { 0 };
    struct tree t = { 0 };
    struct ms_an_stack fr = { 0 };
    char *json = NULL;
    size_t jlen = 0;
    FILE *o = NULL;
    int ok = 0;
    size_t ncand = 0, nin = 0;
    uint64_t *labels = NULL;
    size_t *idx = malloc((m->nsites ? m->nsites : 1) * sizeof *idx);
    unsigned char *take = calloc(m->nsites ? m->nsites : 1, 1);
    if (!idx || !take || name_id(&nm, "all") == UINT32_MAX ||
        name_id(&nm, "(other sites)") == UINT32_MAX ||
        name_id(&fl, "") == UINT32_MAX || child(&t, UINT32_MAX, 0, 0) != 0)
        goto out;

    /* the sites in the flame graphs */
    for (size_t i = 0; i < m->nsites; i++)
        if (m->sites[i].peak_bytes || ms_site_leak_bytes(&m->sites[i], 7, 0))
            idx[ncand++] = i;
    if (ncand > MS_HTML_FLAME_SITES) {
        sort_m = m;
        qsort(idx, ncand, sizeof *idx, by_peak_desc);
        for (size_t k = 0; k < MS_HTML_FLAME_SITES / 2; k++)
            take[idx[k]] = 1;
        qsort(idx, ncand, sizeof *idx, by_leak_desc);
        for (size_t k = 0; k < MS_HTML_FLAME_SITES / 2; k++)
            take[idx[k]] = 1;
    } else {
        for (size_t k = 0; k < ncand; k++)
            take[idx[k]] = 1;
    }
    uint32_t other = UINT32_MAX;
    for (size_t k = 0; k < ncand; k++) {
        const struct ms_site *s = &m->sites[idx[k]];
        uint64_t pk = s->peak_bytes, lk = ms_site_leak_bytes(s, 7, 0);
        t.v[0].peak += pk;
        t.v[0].leaked += lk;
        if (!take[idx[k]]) {
            if (other == UINT32_MAX && (other = child(&t, 0, 1, 0)) == UINT32_MAX)
                goto out;
            t.v[other].peak += pk;
            t.v[other].leaked += lk;
            continue;
        }
        nin++;
        if (site_frames(&c, m, s, &fr) < 0)
            goto out;
        uint32_t at = 0;
        if (!fr.n) {
            uint32_t u = name_id(&nm, "(unknown stack)");
            if (u == UINT32_MAX || (at = child(&t, 0, u, 0)) == UINT32_MAX)
                goto out;
            t.v[at].peak += pk;
            t.v[at].leaked += lk;
        }
        for (size_t j = fr.n; j-- > 0;) {
            char name[1100];
            ms_export_frame_name(&fr.f[j], name, sizeof name);
            char file[1100] = "";
            if (fr.f[j].file)
                snprintf(file, sizeof file, "%s:%d", fr.f[j].file, fr.f[j].line);
            else if (fr.f[j].module)
                snprintf(file, sizeof file, "%s", fr.f[j].module);
            uint32_t ni = name_id(&nm, name), fi = name_id(&fl, file);
            if (ni == UINT32_MAX || fi == UINT32_MAX || (at = child(&t, at, ni, fi)) == UINT32_MAX)
                goto out;
            t.v[at].peak += pk;
            t.v[at].leaked += lk;
        }
        free(fr.f);
        fr.f = NULL;
    }

    if (!(o = open_memstream(&json, &jlen)))
        goto out;
    fputs("{\"names\": [", o);
    for (size_t i = 0; i < nm.n; i++) {
        fputs(i ? ", " : "", o);
        ms_an_json_str(o, nm.s[i]);
    }
    fputs("],\n  \"files\": [", o);
    for (size_t i = 0; i < fl.n; i++) {
        fputs(i ? ", " : "", o);
        ms_an_json_str(o, fl.s[i]);
    }
    fputs("],\n  \"nodes\": [", o);
    for (size_t i = 0; i < t.n; i++)
        fprintf(o, "%s%ld,%u,%u,%llu,%llu", i ? "," : "", i ? (long)t.v[i].parent : -1L,
                t.v[i].name, t.v[i].file, (unsigned long long)t.v[i].peak,
                (unsigned long long)t.v[i].leaked);
    fprintf(o, "],\n  \"flame_sites\": %zu, \"other_sites\": %zu,\n  \"series\": [", nin,
            ncand - nin);

    /* the stacked chart: the sites with the most live bytes over the run */
    size_t best[MS_HTML_SERIES];
    uint64_t area[MS_HTML_SERIES];
    size_t nb = 0;
    for (size_t i = 0; i < m->nsites; i++) {
        if (m->sites[i].series < 0)
            continue;
        uint64_t v[MS_MODEL_SAMPLES], a = 0;
        ms_model_site_samples(m, i, v);
        for (int k = 0; k < MS_MODEL_SAMPLES; k++)
            a += v[k];
        if (!a)
            continue;
        size_t pos = nb;
        while (pos > 0 && area[pos - 1] < a)
            pos--;
        if (pos >= MS_HTML_SERIES)
            continue;
        size_t last = nb < MS_HTML_SERIES ? nb : MS_HTML_SERIES - 1;
        for (size_t q = last; q > pos; q--) {
            best[q] = best[q - 1];
            area[q] = area[q - 1];
        }
        best[pos] = i;
        area[pos] = a;
        if (nb < MS_HTML_SERIES)
            nb++;
    }
    /* their labels: the distinguishing frame, as in the tables (ms_an_label_pcs) */
    if (nb && !(labels = ms_an_label_pcs(m)))
        goto out;
    for (size_t k = 0; k < nb; k++) {
        uint64_t v[MS_MODEL_SAMPLES];
        ms_model_site_samples(m, best[k], v);
        if (site_frames(&c, m, &m->sites[best[k]], &fr) < 0)
            goto out;
        char lab[1400];
        ms_an_site_label_at(&fr, labels[best[k]], lab, sizeof lab);
        free(fr.f);
        fr.f = NULL;
        fprintf(o, "%s{\"stack_id\": %llu, \"label\": ", k ? ",\n    " : "\n    ",
                (unsigned long long)m->sites[best[k]].stack_id);
        ms_an_json_str(o, lab);
        fputs(", \"samples\": [", o);
        for (int q = 0; q < MS_MODEL_SAMPLES; q++)
            fprintf(o, "%s%llu", q ? "," : "", (unsigned long long)v[q]);
        fputs("]}", o);
    }
    fputs("]}", o);
    ok = 1;
out:
    if (o && fclose(o) != 0)
        ok = 0;
    if (!ok) {
        free(json);
        json = NULL;
    }
    free(fr.f);
    free(labels);
    free(idx);
    free(take);
    free(t.v);
    free(t.hk);
    free(t.hv);
    names_free(&nm);
    names_free(&fl);
    ms_pcache_free(&c);
    return json;
}

/* JSON text into a <script> element: '<', '>', '&' (only ever inside JSON
   strings) as \u003c \u003e \u0026 */
static void script_json(FILE *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '<')
            fputs("\\u003c", o);
        else if (ch == '>')
            fputs("\\u003e", o);
        else if (ch == '&')
            fputs("\\u0026", o);
        else
            fputc(ch, o);
    }
}

static void put_lines(FILE *o, const char *const *l)
{
    for (; *l; l++)
        fputs(*l, o);
}

static void html_text(FILE *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&#39;", o); break;
        default:
            if ((unsigned char)*s < 0x20)
                fputc(' ', o);
            else
                fputc(*s, o);
        }
    }
}

int ms_html_write(FILE *o, const char *report_json, size_t json_len, char *const *extra, size_t n)
{
    /* the title: the first process's program name (its JSON "exe" is not at
       hand here: the report says it; take it from the first "exe" key) */
    char title[200] = "memsleuth report";
    const char *e = strstr(report_json, "\"exe\": \"");
    if (e) {
        e += 8;
        size_t k = 0;
        char name[160];
        for (; *e && *e != '"' && k + 1 < sizeof name; e++) {
            if (*e == '\\') { /* an escape: keep the title plain */
                k = 0;
                break;
            }
            name[k++] = *e;
        }
        name[k] = 0;
        const char *b = strrchr(name, '/');
        b = b ? b + 1 : name;
        if (*b)
            snprintf(title, sizeof title, "memsleuth report: %s", b);
    }
    put_lines(o, ms_html_page[0]);
    html_text(o, title);
    put_lines(o, ms_html_page[1]);
    fputs("{\"report\": ", o);
    script_json(o, report_json, json_len);
    fputs(", \"extra\": [", o);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n" : "\n", o);
        if (extra[i])
            script_json(o, extra[i], strlen(extra[i]));
        else
            fputs("null", o);
    }
    fputs("]}", o);
    put_lines(o, ms_html_page[2]);
    return 0;
}
