/*
 * memsleuth - out.c: symbolized stacks and output helpers shared by the
 * report and the diff (see analyze_internal.h).
 */
#include "analyze_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "safe_open.h"
#include "symbolize.h"

/* ------------------------------------------------------------------ */
/* symbolization                                                       */
/* ------------------------------------------------------------------ */

struct ms_sym *ms_an_sym_new(const struct ms_model *m)
{
    struct ms_sym *s = ms_sym_new();
    if (!s)
        return NULL;
    for (size_t i = 0; i < m->nmods; i++) {
        const struct ms_module *md = &m->mods[i];
        if (md->flags & 1) {
            /* an unload notice: the module was registered when it was loaded;
               registering it again would let it win over what was loaded
               there later */
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                seen = m->mods[j].bias == md->bias && m->mods[j].lo == md->lo &&
                       !strcmp(m->mods[j].path, md->path);
            if (seen)
                continue;
        }
        if (md->hi <= md->lo || !md->path[0])
            continue;
        if (md->build_id_len)
            ms_sym_add_module_build_id(s, md->path, (unsigned long)md->bias,
                                       (unsigned long)md->lo, (unsigned long)md->hi,
                                       md->build_id, md->build_id_len);
        else
            ms_sym_add_module(s, md->path, (unsigned long)md->bias, (unsigned long)md->lo,
                              (unsigned long)md->hi);
    }
    return s;
}

static char *dup_or_null(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* "__libc_start_main@@GLIBC_2.34": the symbol version is not part of the name */
static size_t fn_len(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s ? (size_t)(at - s) : strlen(s);
}

void ms_an_stack_release(struct ms_an_stack *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->f[i].function);
        free(st->f[i].file);
        free(st->f[i].module);
    }
    free(st->f);
    st->f = NULL;
    st->n = 0;
}

int ms_an_resolve(struct ms_sym *sym, const uint64_t *pcs, size_t n, struct ms_an_stack *out)
{
    size_t cap = 0;
    out->f = NULL;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        struct ms_sym_frame tmp[MS_SYM_MAX_FRAMES];
        int k = 0;
        if (sym && pcs[i])
            k = ms_sym_resolve(sym, (unsigned long)(pcs[i] - 1), tmp, MS_SYM_MAX_FRAMES);
        if (k <= 0) {
            memset(&tmp[0], 0, sizeof tmp[0]);
            k = 1;
        }
        for (int j = 0; j < k; j++) {
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct ms_an_frame *nf = realloc(out->f, nc * sizeof *nf);
                if (!nf)
                    goto nomem;
                out->f = nf;
                cap = nc;
            }
            struct ms_an_frame *f = &out->f[out->n];
            memset(f, 0, sizeof *f);
            out->n++;
            f->pc = pcs[i];
            f->line = tmp[j].line;
            f->offset = tmp[j].module_offset;
            f->inlined = tmp[j].inlined;
            if ((tmp[j].function &&
                 !(f->function = dup_or_null(tmp[j].function, fn_len(tmp[j].function)))) ||
                (tmp[j].file && !(f->file = dup_or_null(tmp[j].file, strlen(tmp[j].file)))) ||
                (tmp[j].module &&
                 !(f->module = dup_or_null(tmp[j].module, strlen(tmp[j].module)))))
                goto nomem;
        }
    }
    return 0;
nomem:
    ms_an_stack_release(out);
    return -1;
}

/* a shared library of the system (libc, libstdc++, the loader...): a lib*.so* or
   ld-*.so* under the system's library directories; the program itself is never
   one, wherever it lives (cc1 is under /usr/lib/gcc) */
static int system_module(const char *m)
{
    static const char *const dirs[] = { "/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/",
                                        "/usr/local/lib/" };
    if (!m)
        return 1;
    const char *b = strrchr(m, '/');
    b = b ? b + 1 : m;
    if (strstr(b, "libmemsleuth"))
        return 1;
    if ((strncmp(b, "lib", 3) && strncmp(b, "ld-", 3)) || !strstr(b, ".so"))
        return 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (!strncmp(m, dirs[i], strlen(dirs[i])))
            return 1;
    return 0;
}

const struct ms_an_frame *ms_an_own_frame(const struct ms_an_stack *st)
{
    if (!st->n)
        return NULL;
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < st->n; i++) {
            const struct ms_an_frame *f = &st->f[i];
            int own = !system_module(f->module), src = f->file && f->line;
            if ((pass == 0 && own && src) || (pass == 1 && own) || (pass == 2 && src))
                return f;
        }
    return &st->f[0];
}

/* ------------------------------------------------------------------ */
/* the distinguishing frame of each site                               */
/* ------------------------------------------------------------------ */

struct modrange {
    uint64_t lo, hi;
    int system;
};

static int modrange_cmp(const void *x, const void *y)
{
    const struct modrange *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* 1 if pc - 1 is in no module or in a system library */
static int pc_system(const struct modrange *r, size_t n, uint64_t pc)
{
    uint64_t a = pc - 1;
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the last range with lo <= a */
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k-- > 0;) { /* ranges may overlap (unloaded, reloaded) */
        if (a < r[k].hi)
            return r[k].system;
        if (lo - k > 8)
            break;
    }
    return 1;
}

/* one round of ms_an_label_pcs over the sites todo[0..nt): the candidates of a site are
   its pcs outside the system's libraries (own = 1) or all of them; level by level, a site
   is done at the first depth where no other site of the round shares its prefix of
   candidates (out[i] = that pc); sites done at a depth share no longer prefix with
   anyone, so only the others go on.  The sites left (their candidates run out while
   shared) stay in todo[0..return).  SIZE_MAX out of memory. */
static size_t label_round(const struct ms_model *m, const struct modrange *r, size_t nr,
                          int own, size_t *todo, size_t nt, uint64_t *out)
{
    size_t cap = 16;
    while (cap < 2 * (nt + 1))
        cap *= 2;
    uint64_t *tk = malloc(cap * sizeof *tk), *h = calloc(m->nsites ? m->nsites : 1, sizeof *h);
    uint32_t *tc = malloc(cap * sizeof *tc), *cur = calloc(m->nsites ? m->nsites : 1, sizeof *cur);
    size_t *left = malloc((nt ? nt : 1) * sizeof *left), nleft = 0;
    if (!tk || !h || !tc || !cur || !left) {
        nt = SIZE_MAX;
        goto done;
    }
    for (uint64_t depth = 0; nt; depth++) {
        memset(tk, 0, cap * sizeof *tk);
        size_t keep = 0;
        for (size_t q = 0; q < nt; q++) {
            size_t i = todo[q];
            const struct ms_site *s = &m->sites[i];
            const uint64_t *pcs = m->pcs + s->pcs_off;
            uint32_t c = cur[i];
            while (c < s->npcs && own && pc_system(r, nr, pcs[c]))
                c++;
            if (c >= s->npcs) { /* its candidates ran out, still shared */
                left[nleft++] = i;
                continue;
            }
            cur[i] = c + 1;
            h[i] = ms_an_hash64(h[i] ^ ms_an_hash64(pcs[c] + depth)) | 1;
            size_t j = (size_t)ms_an_hash64(h[i]) & (cap - 1);
            while (tk[j] && tk[j] != h[i])
                j = (j + 1) & (cap - 1);
            if (!tk[j]) {
                tk[j] = h[i];
                tc[j] = 0;
            }
            if (tc[j] < 2)
                tc[j]++;
            todo[keep++] = i;
        }
        nt = keep;
        keep = 0;
        for (size_t q = 0; q < nt; q++) {
            size_t i = todo[q];
            size_t j = (size_t)ms_an_hash64(h[i]) & (cap - 1);
            while (tk[j] != h[i])
                j = (j + 1) & (cap - 1);
            if (tc[j] == 1)
                out[i] = m->pcs[m->sites[i].pcs_off + cur[i] - 1];
            else
                todo[keep++] = i;
        }
        nt = keep;
    }
    memcpy(todo, left, nleft * sizeof *left);
    nt = nleft;
done:
    free(tk);
    free(h);
    free(tc);
    free(cur);
    free(left);
    return nt;
}

uint64_t *ms_an_label_pcs(const struct ms_model *m)
{
    size_t ns = m->nsites, nr = 0, nt = 0;
    uint64_t *out = calloc(ns ? ns : 1, sizeof *out);
    struct modrange *r = malloc((m->nmods ? m->nmods : 1) * sizeof *r);
    size_t *todo = malloc((ns ? ns : 1) * sizeof *todo);
    if (!out || !r || !todo)
        goto fail;
    for (size_t i = 0; i < m->nmods; i++)
        if (!(m->mods[i].flags & 1))
            r[nr++] = (struct modrange){ m->mods[i].lo, m->mods[i].hi,
                                         system_module(m->mods[i].path) };
    qsort(r, nr, sizeof *r, modrange_cmp);
    /* by default a site is named by its first own frame (else its first frame) */
    for (size_t i = 0; i < ns; i++) {
        const struct ms_site *s = &m->sites[i];
        const uint64_t *pcs = m->pcs + s->pcs_off;
        for (uint32_t k = 0; k < s->npcs && !out[i]; k++)
            if (!pc_system(r, nr, pcs[k]))
                out[i] = pcs[k];
        if (!out[i] && s->npcs)
            out[i] = pcs[0];
        if (s->npcs)
            todo[nt++] = i;
    }
    /* the own frames first; sites whose own frames all equal another's (or that have
       none) are then told apart by all their frames */
    if ((nt = label_round(m, r, nr, 1, todo, nt, out)) == SIZE_MAX ||
        label_round(m, r, nr, 0, todo, nt, out) == SIZE_MAX)
        goto fail;
    free(r);
    free(todo);
    return out;
fail:
    free(out);
    free(r);
    free(todo);
    return NULL;
}

const struct ms_an_frame *ms_an_label_frame(const struct ms_an_stack *st, uint64_t label_pc)
{
    if (label_pc)
        for (size_t i = 0; i < st->n; i++)
            if (st->f[i].pc == label_pc)
                return &st->f[i];
    return ms_an_own_frame(st);
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

void ms_an_frame_label(const struct ms_an_frame *f, char *buf, size_t n)
{
    char fn[64];
    const char *name = f->function;
    if (!name) {
        snprintf(fn, sizeof fn, "0x%llx", (unsigned long long)f->pc);
        name = fn;
    }
    if (f->file && f->line)
        snprintf(buf, n, "%s (%s:%d)", name, f->file, f->line);
    else if (f->module)
        snprintf(buf, n, "%s (in %s)", name, base(f->module));
    else
        snprintf(buf, n, "%s", name);
    ms_an_clean(buf);
}

void ms_an_site_label(const struct ms_an_stack *st, char *buf, size_t n)
{
    ms_an_site_label_at(st, 0, buf, n);
}

void ms_an_site_label_at(const struct ms_an_stack *st, uint64_t label_pc, char *buf, size_t n)
{
    const struct ms_an_frame *f = ms_an_label_frame(st, label_pc);
    if (f)
        ms_an_frame_label(f, buf, n);
    else
        snprintf(buf, n, "(unknown stack)");
}

char *ms_an_site_key(const struct ms_an_stack *st)
{
    size_t cap = 64, len = 0;
    char *k = malloc(cap);
    if (!k)
        return NULL;
    k[0] = 0;
    for (size_t i = 0; i < st->n; i++) {
        const struct ms_an_frame *f = &st->f[i];
        char one[1200];
        if (f->function && f->file)
            snprintf(one, sizeof one, "%s@%s:%d\n", f->function, f->file, f->line);
        else if (f->function)
            snprintf(one, sizeof one, "%s@%s\n", f->function, f->module ? base(f->module) : "?");
        else if (f->module)
            snprintf(one, sizeof one, "%s+0x%llx\n", base(f->module),
                     (unsigned long long)f->offset);
        else
            snprintf(one, sizeof one, "?0x%llx\n", (unsigned long long)f->pc);
        size_t l = strlen(one);
        if (len + l + 1 > cap) {
            while (len + l + 1 > cap)
                cap *= 2;
            char *nk = realloc(k, cap);
            if (!nk) {
                free(k);
                return NULL;
            }
            k = nk;
        }
        memcpy(k + len, one, l + 1);
        len += l;
    }
    return k;
}

/* ------------------------------------------------------------------ */
/* text                                                                */
/* ------------------------------------------------------------------ */

char *ms_an_bytes(char *buf, size_t n, uint64_t v)
{
    static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (v < 1024) {
        snprintf(buf, n, "%llu B", (unsigned long long)v);
        return buf;
    }
    double d = (double)v / 1024;
    int u = 0;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    snprintf(buf, n, d < 10 ? "%.2f %s" : d < 100 ? "%.1f %s" : "%.0f %s", d, unit[u]);
    return buf;
}

char *ms_an_time(char *buf, size_t n, uint64_t ns)
{
    if (ns >= 1000000000ull)
        snprintf(buf, n, "%.3f s", (double)ns / 1e9);
    else if (ns >= 1000000)
        snprintf(buf, n, "%.1f ms", (double)ns / 1e6);
    else if (ns >= 1000)
        snprintf(buf, n, "%.1f us", (double)ns / 1e3);
    else
        snprintf(buf, n, "%llu ns", (unsigned long long)ns);
    return buf;
}

char *ms_an_count(char *buf, size_t n, uint64_t v)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    char out[48];
    int j = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = tmp[i];
    }
    out[j] = 0;
    snprintf(buf, n, "%s", out);
    return buf;
}

void ms_an_sparkline(FILE *o, const uint64_t *v, int n)
{
    static const char *const bars[] = { "\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588" };
    uint64_t max = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > max)
            max = v[i];
    for (int i = 0; i < n; i++) {
        if (!v[i] || !max) {
            fputc(' ', o);
            continue;
        }
        int lv = (int)((double)v[i] * 8 / (double)max);
        if (lv > 7)
            lv = 7;
        fputs(bars[lv], o);
    }
}

char *ms_an_clean(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : '?';
    return s;
}

/* columns of a UTF-8 string (every code point one column: good enough for
   names and paths) */
void ms_an_fit(char *s, size_t width)
{
    ms_an_clean(s);
    size_t cols = 0, i = 0, cut3 = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) == 0x80)
            continue;
        if (cols == (width >= 3 ? width - 3 : 0))
            cut3 = i;
        cols++;
        if (cols > width) {
            if (width >= 3) {
                memcpy(s + cut3, "...", 4);
            } else {
                s[cut3] = 0;
            }
            return;
        }
    }
}

/* display columns of the first n bytes of a UTF-8 string */
static size_t cols(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

void ms_an_wrap(FILE *o, const char *first, const char *next, const char *text, int width)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", text);
    ms_an_clean(buf);
    const char *p = buf, *pre = first;
    while (*p) {
        size_t room = (size_t)width > cols(pre, strlen(pre)) ? (size_t)width - cols(pre, strlen(pre)) : 20;
        size_t len = strlen(p);
        size_t cut = len;
        if (cols(p, len) > room) {
            /* the last space that keeps the line within room columns */
            size_t best = 0;
            for (size_t i = 0; i < len && cols(p, i) <= room; i++)
                if (p[i] == ' ')
                    best = i;
            cut = best ? best : len;
        }
        fprintf(o, "%s%.*s\n", pre, (int)cut, p);
        p += cut;
        while (*p == ' ')
            p++;
        pre = next;
    }
}

void ms_an_text_stack(FILE *o, const char *indent, const struct ms_an_stack *st)
{
    if (!st->n) {
        fprintf(o, "%s(no stack)\n", indent);
        return;
    }
    for (size_t i = 0; i < st->n; i++) {
        char lab[1400];
        ms_an_frame_label(&st->f[i], lab, sizeof lab);
        fprintf(o, "%s%s 0x%llx: %s%s\n", indent, i ? "by" : "at", (unsigned long long)st->f[i].pc,
                lab, st->f[i].inlined ? " [inlined]" : "");
    }
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* length of a valid UTF-8 sequence at s (n bytes left), 0 if invalid */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void ms_an_json_strn(FILE *o, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', o);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', o);
            fputc((int)c, o);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(o, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc((int)c, o);
            i++;
        } else {
            size_t l = utf8_len(p + i, n - i);
            if (l) {
                fwrite(p + i, 1, l, o);
                i += l;
            } else {
                fputs("\\ufffd", o);
                i++;
            }
        }
    }
    fputc('"', o);
}

void ms_an_json_str(FILE *o, const char *s)
{
    if (!s)
        fputs("null", o);
    else
        ms_an_json_strn(o, s, strlen(s));
}

void ms_an_json_double(FILE *o, double v)
{
    if (!isfinite(v))
        v = 0;
    fprintf(o, "%.6g", v);
}

void ms_an_json_frames(FILE *o, const struct ms_an_stack *st)
{
    fputc('[', o);
    for (size_t i = 0; i < st->n; i++) {
        const struct ms_an_frame *f = &st->f[i];
        fprintf(o, "%s{\"address\": \"0x%llx\", \"function\": ", i ? ", " : "",
                (unsigned long long)f->pc);
        ms_an_json_str(o, f->function);
        fputs(", \"file\": ", o);
        ms_an_json_str(o, f->file);
        fprintf(o, ", \"line\": %d, \"module\": ", f->line);
        ms_an_json_str(o, f->module);
        fprintf(o, ", \"offset\": \"0x%llx\"%s}", (unsigned long long)f->offset,
                f->inlined ? ", \"inlined\": true" : "");
    }
    fputc(']', o);
}

/* ------------------------------------------------------------------ */
/* options, output, messages                                           */
/* ------------------------------------------------------------------ */

static int usage_error(const struct ms_an_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct ms_an_opts *o, const char *fmt, ...)
{
    /* one line whatever the arguments hold: control bytes become '?', a
     * long message is cut with "..." */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, "memsleuth %s: %s (see 'memsleuth %s --help')\n", o->cmd, msg, o->cmd);
    return MS_AN_EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t *v)
{
    if (!*s || *s == '-' || *s == '+')
        return -1;
    char *e;
    errno = 0;
    unsigned long long x = strtoull(s, &e, 10);
    if (errno || *e)
        return -1;
    *v = x;
    return 0;
}

int ms_an_parse_opts(int argc, char **argv, struct ms_an_opts *o, const char *usage)
{
    int diff = !strcmp(o->cmd, "diff");
    o->format = "text";
    o->collapsed_value = "peak";
    o->top = 10;
    o->files = calloc((size_t)argc + 1, sizeof *o->files);
    if (!o->files) {
        fprintf(stderr, "memsleuth %s: out of memory\n", o->cmd);
        return MS_AN_EXIT_USAGE;
    }
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (only_files || a[0] != '-' || !a[1]) {
            o->files[o->nfiles++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            only_files = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strncmp(a, "--format=", 9) || !strcmp(a, "--format")) {
            val = a[8] ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val)
                return usage_error(o, "%s needs a value", a);
            if (!strcmp(val, "text") || !strcmp(val, "json") ||
                (!diff && (!strcmp(val, "dump") || !strcmp(val, "html") || !strcmp(val, "pprof") ||
                           !strcmp(val, "collapsed") || !strcmp(val, "xml"))))
                o->format = val;
            else
                return usage_error(o, "unknown format '%s'", val);
        } else if (!strcmp(a, "-o") || !strncmp(a, "--output=", 9) || !strcmp(a, "--output") ||
                   (a[1] == 'o' && a[2])) {
            if (!strncmp(a, "--output=", 9))
                val = a + 9;
            else if (a[1] == 'o' && a[2])
                val = a + 2;
            else
                val = i + 1 < argc ? argv[++i] : NULL;
            if (!val || !*val)
                return usage_error(o, "%s needs a file name", a);
            o->out = val;
        } else if (!diff && (!strncmp(a, "--collapsed-value=", 18) ||
                             !strcmp(a, "--collapsed-value"))) {
            val = a[17] ? a + 18 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val || (strcmp(val, "peak") && strcmp(val, "leaked") && strcmp(val, "allocs") &&
                         strcmp(val, "allocated") && strcmp(val, "inuse")))
                return usage_error(o, "--collapsed-value needs peak, leaked, allocs, allocated or "
                                      "inuse, not '%s'", val ? val : "");
            o->collapsed_value = val;
        } else if (!strcmp(a, "--stacks") || !strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->stacks = 1;
        } else if (!strncmp(a, "--top=", 6) || !strcmp(a, "--top")) {
            val = a[5] ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            uint64_t v;
            if (!val || parse_u64(val, &v) < 0 || v < 1 || v > 100000)
                return usage_error(o, "--top needs a number from 1 to 100000, not '%s'",
                                   val ? val : "");
            o->top = (int)v;
            o->top_set = 1;
        } else if (diff && (!strncmp(a, "--scale=", 8) || !strcmp(a, "--scale"))) {
            val = a[7] ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            const char *colon = val ? strchr(val, ':') : NULL;
            char nb[32];
            if (!colon || (size_t)(colon - val) >= sizeof nb)
                return usage_error(o, "--scale needs N:M (iterations of A and of B), not '%s'",
                                   val ? val : "");
            memcpy(nb, val, (size_t)(colon - val));
            nb[colon - val] = 0;
            if (parse_u64(nb, &o->scale_a) < 0 || parse_u64(colon + 1, &o->scale_b) < 0 ||
                !o->scale_a || !o->scale_b)
                return usage_error(o, "--scale needs N:M with N, M > 0, not '%s'", val);
            if (o->scale_a == o->scale_b)
                return usage_error(o, "--scale %s: N and M must differ (per iteration = (B - A) / (M - N))", val);
            o->have_scale = 1;
        } else {
            return usage_error(o, "unknown option '%s'", a);
        }
    }
    if (diff && o->nfiles != 2)
        return usage_error(o, "needs two traces, A and B (%s given)",
                           o->nfiles < 2 ? "fewer" : "more");
    if (!o->nfiles)
        return usage_error(o, "needs a trace");
    return 0;
}

FILE *ms_an_open_out(const struct ms_an_opts *o)
{
    if (!o->out || !strcmp(o->out, "-"))
        return stdout;
    /* 0600, never through a planted symlink, never into another user's file
     * (src/common/safe_open.h) */
    int fd = ms_open_private(o->out, 0);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "memsleuth %s: cannot write '%s': %s\n", o->cmd, o->out,
                ms_open_private_why(fd >= 0 ? MS_OPEN_ERRNO : fd, e));
    }
    return f;
}

int ms_an_close_out(FILE *f, const struct ms_an_opts *o)
{
    int bad = ferror(f);
    int e = errno;
    if (f == stdout) {
        if (fflush(f) != 0) {
            bad = 1;
            e = errno;
        }
    } else if (fclose(f) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        fprintf(stderr, "memsleuth %s: cannot write '%s': %s\n", o->cmd,
                o->out ? o->out : "(standard output)", e ? strerror(e) : "write error");
        return MS_AN_EXIT_OUTPUT;
    }
    return 0;
}

int ms_an_trace_status(const char *path, enum ms_trace_status st, const char *msg)
{
    if (st == MS_TRACE_OK)
        return 0;
    if (st == MS_TRACE_CUT) {
        fprintf(stderr, "memsleuth: warning: '%s': %s\n", path, msg);
        return 0;
    }
    fprintf(stderr, "memsleuth: error: '%s': %s\n", path, msg);
    return 1;
}

void ms_an_dump_str(FILE *o, struct ms_trace_str s)
{
    fputc('"', o);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(o, "\\x%02x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}
