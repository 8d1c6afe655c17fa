/*
 * memsleuth - export.c: `memsleuth report --format=collapsed|pprof|xml`, the
 * formats other tools read, and the per-pc symbol cache they (and html.c)
 * share.
 *
 * collapsed: one line per site, `frame;frame;...;frame VALUE`, outermost frame
 *   first (flamegraph.pl, speedscope, inferno).  Frames are function names
 *   (inlined frames expanded), else module+0xoffset, else 0xpc; ';' becomes
 *   '_' and control characters a space.  VALUE is --collapsed-value: peak
 *   (default: the site's live bytes at the process's peak), leaked (bytes of
 *   its unsuppressed definitely/indirectly/possibly lost LEAK records), allocs
 *   (allocation calls), allocated (bytes allocated), inuse (bytes live at the
 *   end).  Sites whose value is 0 are left out.  With several traces each line
 *   starts with a frame naming the process, `exe[pid]`.
 *
 * xml: valgrind's --xml=yes output (protocol version 4) holding one <error>
 *   per loss record of the trace's LEAK records: a site and a kind, ordered
 *   by bytes as valgrind does.  One trace only (valgrind writes one file per
 *   process).  The stack starts at the allocation's caller (valgrind's first
 *   frame is the allocation function itself) and frames give ip, obj, fn,
 *   file and line (no dir: traces keep base names).
 *
 * pprof: see pprof.c.
 */
#include "export.h"

#include <stdlib.h>
#include <string.h>

#include "symbolize.h"

/* ------------------------------------------------------------------ */
/* the per-pc cache                                                    */
/* ------------------------------------------------------------------ */

int ms_pcache_init(struct ms_pcache *c, const struct ms_model *m)
{
    memset(c, 0, sizeof *c);
    c->sym = ms_an_sym_new(m);
    c->cap = 1024;
    c->key = calloc(c->cap, sizeof *c->key);
    c->val = calloc(c->cap, sizeof *c->val);
    if (!c->key || !c->val) {
        ms_pcache_free(c);
        return -1;
    }
    return 0;
}

void ms_pcache_free(struct ms_pcache *c)
{
    for (size_t i = 0; i < c->n; i++)
        ms_an_stack_release(&c->st[i]);
    free(c->st);
    free(c->pc);
    free(c->key);
    free(c->val);
    ms_sym_free(c->sym);
    memset(c, 0, sizeof *c);
}

static size_t hash_pc(uint64_t pc, size_t cap)
{
    pc ^= pc >> 33;
    pc *= 0xff51afd7ed558ccdull;
    pc ^= pc >> 33;
    return (size_t)pc & (cap - 1);
}

static int pcache_grow(struct ms_pcache *c)
{
    size_t nc = c->cap * 2;
    uint64_t *nk = calloc(nc, sizeof *nk);
    uint32_t *nv = calloc(nc, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->key[i])
            continue;
        size_t h = hash_pc(c->key[i], nc);
        while (nk[h])
            h = (h + 1) & (nc - 1);
        nk[h] = c->key[i];
        nv[h] = c->val[i];
    }
    free(c->key);
    free(c->val);
    c->key = nk;
    c->val = nv;
    c->cap = nc;
    return 0;
}

size_t ms_pcache_get(struct ms_pcache *c, uint64_t pc)
{
    uint64_t k = pc ? pc : 1; /* (pc 0 is stored as 1: 0 marks empty slots; pc 1 resolves alike) */
    size_t h = hash_pc(k, c->cap);
    while (c->key[h]) {
        if (c->key[h] == k && c->pc[c->val[h]] == pc)
            return c->val[h];
        h = (h + 1) & (c->cap - 1);
    }
    if ((c->n + 1) * 10 > c->cap * 7 && pcache_grow(c) == 0)
        return ms_pcache_get(c, pc);
    if ((c->n + 1) * 10 > c->cap * 7 || c->n >= UINT32_MAX)
        return SIZE_MAX;
    if (c->n == c->capn) {
        size_t nc = c->capn ? c->capn * 2 : 256;
        uint64_t *np = realloc(c->pc, nc * sizeof *np);
        if (!np)
            return SIZE_MAX;
        c->pc = np;
        struct ms_an_stack *ns = realloc(c->st, nc * sizeof *ns);
        if (!ns)
            return SIZE_MAX;
        c->st = ns;
        c->capn = nc;
    }
    if (ms_an_resolve(c->sym, &pc, 1, &c->st[c->n]) < 0)
        return SIZE_MAX;
    c->pc[c->n] = pc;
    c->key[h] = k;
    c->val[h] = (uint32_t)c->n;
    return c->n++;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

void ms_export_frame_name(const struct ms_an_frame *f, char *buf, size_t n)
{
    if (f->function)
        snprintf(buf, n, "%s", f->function);
    else if (f->module)
        snprintf(buf, n, "%s+0x%llx", base_name(f->module), (unsigned long long)f->offset);
    else
        snprintf(buf, n, "0x%llx", (unsigned long long)f->pc);
    for (unsigned char *p = (unsigned char *)buf; *p; p++)
        if (*p == ';')
            *p = '_';
        else if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

/* ------------------------------------------------------------------ */
/* collapsed                                                           */
/* ------------------------------------------------------------------ */

static uint64_t collapsed_value(const struct ms_site *s, const char *what)
{
    if (!strcmp(what, "leaked"))
        return ms_site_leak_bytes(s, 7, 0);
    if (!strcmp(what, "allocs"))
        return s->allocs;
    if (!strcmp(what, "allocated"))
        return s->alloc_bytes;
    if (!strcmp(what, "inuse"))
        return s->live_bytes;
    return s->peak_bytes;
}

/* one line per site with a value; -1 out of memory */
static int collapsed_trace(FILE *o, const struct ms_model *m, const char *what, int prefix)
{
    struct ms_pcache c;
    if (ms_pcache_init(&c, m) < 0)
        return -1;
    char root[300] = "";
    if (prefix) {
        snprintf(root, sizeof root, "%s[%llu];", m->exe && *m->exe ? base_name(m->exe) : "?",
                 (unsigned long long)m->pid);
        for (unsigned char *p = (unsigned char *)root; p[1]; p++)
            if (*p == ';')
                *p = '_';
            else if (*p < 0x20 || *p == 0x7f)
                *p = ' ';
    }
    int rc = 0;
    for (size_t i = 0; i < m->nsites && !rc; i++) {
        const struct ms_site *s = &m->sites[i];
        uint64_t v = collapsed_value(s, what);
        if (!v)
            continue;
        fputs(root, o);
        if (!s->npcs)
            fputs("(unknown stack)", o);
        int first = 1;
        for (size_t k = s->npcs; k-- > 0;) {
            size_t e = ms_pcache_get(&c, m->pcs[s->pcs_off + k]);
            if (e == SIZE_MAX) {
                rc = -1;
                break;
            }
            const struct ms_an_stack *st = &c.st[e];
            for (size_t j = st->n; j-- > 0;) {
                char name[1100];
                ms_export_frame_name(&st->f[j], name, sizeof name);
                fprintf(o, "%s%s", first ? "" : ";", name);
                first = 0;
            }
        }
        fprintf(o, " %llu\n", (unsigned long long)v);
    }
    ms_pcache_free(&c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* valgrind XML                                                        */
/* ------------------------------------------------------------------ */

/* valid UTF-8 sequence length at s (n bytes left), 0 if invalid */
static size_t u8len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
        return 0;
    return len;
}

/* XML character data: & < > " ' escaped, characters XML 1.0 does not allow
   (control characters, bad UTF-8) -> '?' / U+FFFD */
static void xml_str(FILE *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c == '&')
            fputs("&amp;", o);
        else if (c == '<')
            fputs("&lt;", o);
        else if (c == '>')
            fputs("&gt;", o);
        else if (c == '"')
            fputs("&quot;", o);
        else if (c == '\'')
            fputs("&apos;", o);
        else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            fputc('?', o);
        else if (c < 0x80)
            fputc((int)c, o);
        else {
            size_t l = u8len(p + i, n - i);
            if (l) {
                fwrite(p + i, 1, l, o);
                i += l;
            } else {
                fputs("\xef\xbf\xbd", o);
                i++;
            }
            continue;
        }
        i++;
    }
}

static void xml_elem(FILE *o, const char *indent, const char *tag, const char *s)
{
    fprintf(o, "%s<%s>", indent, tag);
    xml_str(o, s);
    fprintf(o, "</%s>\n", tag);
}

struct lrec {
    size_t site;
    int kind;
    uint64_t bytes, blocks, total;
};

static int lrec_cmp(const void *x, const void *y)
{
    const struct lrec *a = x, *b = y;
    if (a->total != b->total)
        return a->total < b->total ? -1 : 1;
    if (a->blocks != b->blocks)
        return a->blocks < b->blocks ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind > b->kind ? -1 : 1; /* reachable first, definite last, at equal sizes */
    return a->site < b->site ? -1 : a->site > b->site;
}

/* "DD:HH:MM:SS.mmm " as valgrind prints elapsed time */
static void xml_time(FILE *o, uint64_t ns)
{
    uint64_t ms = ns / 1000000;
    fprintf(o, "%02llu:%02llu:%02llu:%02llu.%03llu ", (unsigned long long)(ms / 86400000),
            (unsigned long long)(ms / 3600000 % 24), (unsigned long long)(ms / 60000 % 60),
            (unsigned long long)(ms / 1000 % 60), (unsigned long long)(ms % 1000));
}

static int xml_trace(FILE *o, const struct ms_model *m, const char *trace)
{
    static const char *const kind_xml[4] = { "Leak_DefinitelyLost", "Leak_IndirectlyLost",
                                             "Leak_PossiblyLost", "Leak_StillReachable" };
    static const char *const kind_text[4] = { "definitely lost", "indirectly lost",
                                              "possibly lost", "still reachable" };
    size_t nrec = 0;
    /* the kinds the run's report printed (--show-leak-kinds), as valgrind's
     * XML holds only those; the trace holds every kind */
    const unsigned kinds = m->leak_shown_kinds;
    for (size_t i = 0; i < m->nsites; i++)
        for (int k = 0; k < 4; k++)
            nrec += (kinds >> k & 1) && (m->sites[i].leak_blocks[k][0] || m->sites[i].leak_bytes[k][0]);
    struct lrec *r = calloc(nrec ? nrec : 1, sizeof *r);
    struct ms_pcache c;
    if (!r || ms_pcache_init(&c, m) < 0) {
        free(r);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->nsites; i++)
        for (int k = 0; k < 4; k++) {
            const struct ms_site *s = &m->sites[i];
            if (!(kinds >> k & 1) || (!s->leak_blocks[k][0] && !s->leak_bytes[k][0]))
                continue;
            r[n] = (struct lrec){ i, k, s->leak_bytes[k][0], s->leak_blocks[k][0],
                                  s->leak_bytes[k][0] + (k == 0 ? s->leak_indirect_bytes : 0) };
            n++;
        }
    qsort(r, n, sizeof *r, lrec_cmp);

    fputs("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n<protocolversion>4</protocolversion>\n"
          "<protocoltool>memcheck</protocoltool>\n\n<preamble>\n",
          o);
    fprintf(o, "  <line>memsleuth %s, a memory leak detector (memcheck-compatible XML)</line>\n",
            MS_AN_VERSION);
    fputs("  <line>Converted by memsleuth report from the trace ", o);
    xml_str(o, trace);
    fputs("</line>\n  <line>Command:", o);
    for (size_t i = 0; i < m->argc; i++) {
        fputc(' ', o);
        xml_str(o, m->argv[i]);
    }
    fprintf(o, "</line>\n</preamble>\n\n<pid>%llu</pid>\n<ppid>%llu</ppid>\n"
               "<tool>memcheck</tool>\n\n",
            (unsigned long long)m->pid, (unsigned long long)m->ppid);
    fputs("<args>\n  <vargv>\n    <exe>memsleuth</exe>\n    <arg>report</arg>\n"
          "    <arg>--format=xml</arg>\n",
          o);
    xml_elem(o, "    ", "arg", trace);
    fputs("  </vargv>\n  <argv>\n", o);
    xml_elem(o, "    ", "exe", m->exe ? m->exe : (m->argc ? m->argv[0] : ""));
    for (size_t i = 1; i < m->argc; i++)
        xml_elem(o, "    ", "arg", m->argv[i]);
    fputs("  </argv>\n</args>\n\n<status>\n  <state>RUNNING</state>\n  <time>", o);
    xml_time(o, 0);
    fputs("</time>\n</status>\n\n\n<status>\n  <state>FINISHED</state>\n  <time>", o);
    xml_time(o, m->t_end);
    fputs("</time>\n</status>\n\n", o);

    int rc = 0;
    for (size_t j = 0; j < n && !rc; j++) {
        const struct ms_site *s = &m->sites[r[j].site];
        fprintf(o, "<error>\n  <unique>0x%zx</unique>\n  <tid>1</tid>\n  <kind>%s</kind>\n"
                   "  <xwhat>\n    <text>",
                j, kind_xml[r[j].kind]);
        if (r[j].kind == 0 && s->leak_indirect_bytes)
            fprintf(o, "%llu (%llu direct, %llu indirect) bytes", (unsigned long long)r[j].total,
                    (unsigned long long)r[j].bytes, (unsigned long long)s->leak_indirect_bytes);
        else
            fprintf(o, "%llu bytes", (unsigned long long)r[j].bytes);
        fprintf(o, " in %llu blocks are %s in loss record %zu of %zu</text>\n"
                   "    <leakedbytes>%llu</leakedbytes>\n    <leakedblocks>%llu</leakedblocks>\n"
                   "  </xwhat>\n  <stack>\n",
                (unsigned long long)r[j].blocks, kind_text[r[j].kind], j + 1, n,
                (unsigned long long)r[j].total, (unsigned long long)r[j].blocks);
        for (size_t k = 0; k < s->npcs; k++) {
            uint64_t pc = m->pcs[s->pcs_off + k];
            size_t e = ms_pcache_get(&c, pc);
            if (e == SIZE_MAX) {
                rc = -1;
                break;
            }
            const struct ms_an_stack *st = &c.st[e];
            for (size_t q = 0; q < st->n; q++) {
                const struct ms_an_frame *f = &st->f[q];
                fprintf(o, "    <frame>\n      <ip>0x%llX</ip>\n", (unsigned long long)pc);
                if (f->module)
                    xml_elem(o, "      ", "obj", f->module);
                if (f->function)
                    xml_elem(o, "      ", "fn", f->function);
                if (f->file) {
                    xml_elem(o, "      ", "file", f->file);
                    if (f->line)
                        fprintf(o, "      <line>%d</line>\n", f->line);
                }
                fputs("    </frame>\n", o);
            }
        }
        fputs("  </stack>\n</error>\n\n", o);
    }
    fputs("<errorcounts>\n</errorcounts>\n\n<suppcounts>\n", o);
    uint64_t sb = 0, sk = 0;
    for (int k = 0; k < 4; k++) {
        sb += m->leak_bytes[k][1];
        sk += m->leak_blocks[k][1];
    }
    if (sk)
        fprintf(o, "  <pair>\n    <count>%llu</count>\n    <name>memsleuth suppressions "
                   "(%llu bytes)</name>\n  </pair>\n",
                (unsigned long long)sk, (unsigned long long)sb);
    fputs("</suppcounts>\n\n</valgrindoutput>\n\n", o);
    free(r);
    ms_pcache_free(&c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the command                                                         */
/* ------------------------------------------------------------------ */

int ms_export_main(const struct ms_an_opts *opt)
{
    const char *fmt = opt->format;
    size_t n = (size_t)opt->nfiles;
    if (!strcmp(fmt, "xml") && n != 1) {
        fprintf(stderr, "memsleuth report: --format=xml takes one trace (valgrind writes one "
                        "file per process): %zu given\n", n);
        return MS_AN_EXIT_USAGE;
    }
    struct ms_model **ms = calloc(n, sizeof *ms);
    if (!ms) {
        fprintf(stderr, "memsleuth report: out of memory\n");
        return MS_AN_EXIT_INPUT;
    }
    int bad = 0, rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char err[1024], msg[512];
        enum ms_trace_status st;
        ms[i] = ms_model_load(opt->files[i], &st, msg, sizeof msg, err, sizeof err);
        if (!ms[i]) {
            fprintf(stderr, "memsleuth: %s\n", err);
            rc = MS_AN_EXIT_INPUT;
            break;
        }
        bad |= ms_an_trace_status(opt->files[i], st, msg);
        if (ms[i]->nomem) {
            fprintf(stderr, "memsleuth report: out of memory\n");
            rc = MS_AN_EXIT_INPUT;
        }
    }
    if (!rc) {
        FILE *o = ms_an_open_out(opt);
        if (!o) {
            rc = MS_AN_EXIT_OUTPUT;
        } else {
            int w = 0;
            if (!strcmp(fmt, "collapsed")) {
                for (size_t i = 0; i < n && !w; i++)
                    w = collapsed_trace(o, ms[i], opt->collapsed_value, n > 1);
            } else if (!strcmp(fmt, "xml")) {
                w = xml_trace(o, ms[0], opt->files[0]);
            } else {
                w = ms_pprof_write(o, ms, (const char *const *)opt->files, n);
            }
            if (w < 0)
                fprintf(stderr, "memsleuth report: out of memory\n");
            rc = ms_an_close_out(o, opt);
            if (!rc && w < 0)
                rc = MS_AN_EXIT_OUTPUT;
        }
    }
    for (size_t i = 0; i < n; i++)
        ms_model_free(ms[i]);
    free(ms);
    return rc ? rc : bad ? MS_AN_EXIT_INPUT : 0;
}
