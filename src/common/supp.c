/*
 * memsleuth - supp.c
 *
 * Valgrind / LeakSanitizer suppression files.  See supp.h.
 *
 * Layout: all entries, patterns and strings of a set live in a chunked
 * arena; a vector of entry pointers keeps load order.  Loading records a
 * mark (arena position + number of entries) and rolls back to it on error,
 * so a failed load leaves the set unchanged.
 *
 * Input is split into lines by one of two readers (memory buffer or file
 * descriptor read in bounded pieces); each line goes through parse_line(), a
 * small state machine that follows valgrind's load_one_suppressions_file()
 * (m_errormgr.c) and memcheck's MC_(read_extra_suppression_info)().
 *
 * Matching uses the classic "remember the last star" greedy algorithm both
 * for globs within a name and for "..." within a stack (each pattern frame
 * consumes exactly one frame, so the same argument applies): worst case
 * O(pattern * subject), no recursion, no exponential blow-up.
 */
#include "supp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Arena                                                                    */
/* ------------------------------------------------------------------------ */

#define ARENA_CHUNK ((size_t)64 * 1024)

struct chunk {
    struct chunk *prev;
    size_t cap;   /* usable bytes after the header */
    size_t used;
};

#define CHUNK_HDR \
    ((sizeof(struct chunk) + _Alignof(max_align_t) - 1) & \
     ~(_Alignof(max_align_t) - 1))

struct arena {
    struct chunk *head;
};

struct arena_mark {
    struct chunk *head;
    size_t used;
};

static void *arena_alloc(struct arena *a, size_t size, size_t align)
{
    struct chunk *c = a->head;
    if (align == 0)
        align = 1;
    if (c) {
        size_t pos = (c->used + align - 1) & ~(align - 1);
        if (pos >= c->used && pos <= c->cap && c->cap - pos >= size) {
            c->used = pos + size;
            return (unsigned char *)c + CHUNK_HDR + pos;
        }
    }
    size_t cap = ARENA_CHUNK;
    if (size > SIZE_MAX - CHUNK_HDR - _Alignof(max_align_t))
        return NULL;
    if (size > cap)
        cap = size;
    c = malloc(CHUNK_HDR + cap);
    if (!c)
        return NULL;
    c->prev = a->head;
    c->cap = cap;
    c->used = size;
    a->head = c;
    /* the chunk data start is max_align_t aligned, offset 0 fits any align
       <= _Alignof(max_align_t) */
    return (unsigned char *)c + CHUNK_HDR;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = arena_alloc(a, n + 1, 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static struct arena_mark arena_mark(const struct arena *a)
{
    struct arena_mark m = { a->head, a->head ? a->head->used : 0 };
    return m;
}

static void arena_rollback(struct arena *a, struct arena_mark m)
{
    while (a->head && a->head != m.head) {
        struct chunk *p = a->head->prev;
        free(a->head);
        a->head = p;
    }
    if (a->head)
        a->head->used = m.used;
}

static void arena_free(struct arena *a)
{
    arena_rollback(a, (struct arena_mark){ NULL, 0 });
}

/* ------------------------------------------------------------------------ */
/* Data                                                                     */
/* ------------------------------------------------------------------------ */

enum fp_type { FP_FUN = 1, FP_OBJ, FP_SRC, FP_DOTS, FP_LSAN };

struct fpat {
    const char *s;          /* pattern (NUL-terminated; NULL for FP_DOTS) */
    size_t len;
    int line;               /* FP_SRC: required line, 0 = any */
    unsigned char type;     /* enum fp_type */
    unsigned char simple;   /* valgrind pattern without * ? \ */
    unsigned char a_start;  /* FP_LSAN: anchored with ^ */
    unsigned char a_end;    /* FP_LSAN: anchored with $ */
};

/* memcheck suppression kinds (MC_(is_recognised_suppression)) */
enum {
    KC_NONE = 0, KC_PARAM, KC_USER, KC_COREMEM, KC_ADDR1, KC_ADDR2, KC_ADDR4,
    KC_ADDR8, KC_ADDR16, KC_ADDR32, KC_JUMP, KC_FREE, KC_LEAK, KC_OVERLAP,
    KC_MEMPOOL, KC_COND, KC_VALUE1, KC_VALUE2, KC_VALUE4, KC_VALUE8,
    KC_VALUE16, KC_VALUE32, KC_FISHY, KC_REALLOCZERO, KC_BADALIGN, KC_BADSIZE,
    KC_SIZEMISMATCH, KC_ALIGNMISMATCH
};

static const struct {
    const char *name;
    int code;
} mc_kinds[] = {
    { "Param", KC_PARAM },       { "User", KC_USER },
    { "CoreMem", KC_COREMEM },   { "Addr1", KC_ADDR1 },
    { "Addr2", KC_ADDR2 },       { "Addr4", KC_ADDR4 },
    { "Addr8", KC_ADDR8 },       { "Addr16", KC_ADDR16 },
    { "Addr32", KC_ADDR32 },     { "Jump", KC_JUMP },
    { "Free", KC_FREE },         { "Leak", KC_LEAK },
    { "Overlap", KC_OVERLAP },   { "Mempool", KC_MEMPOOL },
    { "Cond", KC_COND },         { "Value0", KC_COND },
    { "Value1", KC_VALUE1 },     { "Value2", KC_VALUE2 },
    { "Value4", KC_VALUE4 },     { "Value8", KC_VALUE8 },
    { "Value16", KC_VALUE16 },   { "Value32", KC_VALUE32 },
    { "FishyValue", KC_FISHY },  { "ReallocZero", KC_REALLOCZERO },
    { "BadAlign", KC_BADALIGN }, { "BadSize", KC_BADSIZE },
    { "SizeMismatch", KC_SIZEMISMATCH },
    { "AlignMismatch", KC_ALIGNMISMATCH },
};

#define ALL_KINDS 0xfu

struct ms_supp_entry {
    const char *name;
    const char *file;
    const char *tools;      /* NULL for LSan */
    const char *kind;
    const char *extra;      /* Param / FishyValue extra line or NULL */
    struct fpat *frames;
    int nframes;
    int line;
    int kcode;              /* KC_* (KC_LEAK for LSan too) */
    unsigned kinds;         /* leak-kind mask */
    unsigned char lsan;
    size_t index;
    unsigned long count, bytes, blocks;
};

struct ms_supp_set {
    struct arena arena;
    struct ms_supp_entry **v;
    size_t n, cap;
    int num_callers;
};

/* ------------------------------------------------------------------------ */
/* Set                                                                      */
/* ------------------------------------------------------------------------ */

struct ms_supp_set *ms_supp_set_new(void)
{
    struct ms_supp_set *s = calloc(1, sizeof *s);
    return s;
}

void ms_supp_set_free(struct ms_supp_set *set)
{
    if (!set)
        return;
    arena_free(&set->arena);
    free(set->v);
    free(set);
}

int ms_supp_set_num_callers(struct ms_supp_set *set, int n)
{
    if (!set || n < 0)
        return -1;
    int old = set->num_callers;
    set->num_callers = n;
    return old;
}

size_t ms_supp_set_count(const struct ms_supp_set *set)
{
    return set ? set->n : 0;
}

static int set_push(struct ms_supp_set *set, struct ms_supp_entry *e)
{
    if (set->n == set->cap) {
        size_t nc = set->cap ? set->cap * 2 : 64;
        if (nc < set->cap || nc > SIZE_MAX / sizeof *set->v)
            return -1;
        struct ms_supp_entry **nv = realloc(set->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        set->v = nv;
        set->cap = nc;
    }
    e->index = set->n;
    set->v[set->n++] = e;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Small string helpers                                                     */
/* ------------------------------------------------------------------------ */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

static bool starts(const char *s, size_t n, const char *pfx)
{
    size_t k = strlen(pfx);
    return n >= k && memcmp(s, pfx, k) == 0;
}

static bool equals(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    return n == k && memcmp(s, w, k) == 0;
}

static bool is_location(const char *s, size_t n)
{
    return starts(s, n, "fun:") || starts(s, n, "obj:") ||
           starts(s, n, "src:") || equals(s, n, "...");
}

/* Write s[0..n) into out, quoted for a one-line message: at most `maxshow`
   input bytes, then "..."; bytes outside 0x20..0x7e as \xNN. */
static const char *quote(char *out, size_t outsz, const char *s, size_t n,
                         size_t maxshow)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t lim = n > maxshow ? maxshow : n;
    if (outsz == 0)
        return out;
    for (size_t i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (o + 1 >= outsz)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 4 >= outsz)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (n > lim && o + 3 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                   */
/* ------------------------------------------------------------------------ */

enum pstate {
    ST_OUT,     /* between entries */
    ST_NAME,    /* after '{' */
    ST_KIND,    /* after the name */
    ST_LEAKX,   /* after Memcheck:Leak: optional match-leak-kinds */
    ST_PARAMX,  /* after Memcheck:Param: required parameter line */
    ST_FISHYX,  /* after Memcheck:FishyValue: optional fn(arg) line */
    ST_FRAMES,  /* frame lines */
    ST_SKIP     /* entry for another tool: skip to '}' */
};

#define QMAX 256   /* room for a quoted excerpt: 60 * 4 + "..." + NUL */
#define QNAME 200  /* bytes of a file name shown in messages */

struct parser {
    struct ms_supp_set *set;
    const char *fname;      /* arena copy, stored in entries */
    const char *dname;      /* name as given, for messages */
    char *err;
    size_t errlen;
    int lineno;
    enum pstate st;

    /* entry under construction */
    int open_line;          /* line of '{' */
    int name_line;
    const char *name;
    size_t name_len;
    const char *tools;
    const char *kind;
    const char *extra;
    int kcode;
    unsigned kinds;
    struct fpat *fr;        /* scratch, MS_SUPP_MAX_FRAMES slots */
    int nfr;                /* stored frames */
    int nlines;             /* frame lines seen */
};

static int fail_at(struct parser *P, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *P, int line, const char *fmt, ...)
{
    if (P->err && P->errlen) {
        char msg[768];
        char qn[QMAX * 2];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        quote(qn, sizeof qn, P->dname, strlen(P->dname), QNAME);
        if (line > 0)
            snprintf(P->err, P->errlen,
                     "memsleuth: suppressions file '%s' line %d: %s", qn,
                     line, msg);
        else
            snprintf(P->err, P->errlen,
                     "memsleuth: suppressions file '%s': %s", qn, msg);
    }
    return -1;
}

#define FAIL(...) fail_at(P, P->lineno, __VA_ARGS__)
#define OOM() FAIL("out of memory")

static const char *q(char buf[QMAX], const char *s, size_t n)
{
    return quote(buf, QMAX, s, n, 60);
}

static char *pdup(struct parser *P, const char *s, size_t n)
{
    return arena_strndup(&P->set->arena, s, n);
}

/* Does a comma-separated tool list contain `name`? */
static bool tool_present(const char *tools, size_t n, const char *name)
{
    size_t k = strlen(name);
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && tools[j] != ',')
            j++;
        if (j - i == k && memcmp(tools + i, name, k) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static bool is_ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int kind_code(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof mc_kinds / sizeof mc_kinds[0]; i++)
        if (equals(s, n, mc_kinds[i].name))
            return mc_kinds[i].code;
    return KC_NONE;
}

static void entry_reset(struct parser *P)
{
    P->name = NULL;
    P->name_len = 0;
    P->tools = P->kind = P->extra = NULL;
    P->kcode = KC_NONE;
    P->kinds = ALL_KINDS;
    P->nfr = 0;
    P->nlines = 0;
}

static bool has_glob_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '*' || s[i] == '?' || s[i] == '\\')
            return true;
    return false;
}

/* "match-leak-kinds: definite,possible" (s/n: text after the colon) */
static int parse_leak_kinds(struct parser *P, const char *s, size_t n)
{
    char qb[QMAX];
    unsigned mask = 0;
    size_t i = 0;
    while (i < n && is_ws((unsigned char)s[i]))
        i++;
    if (i == n)
        return FAIL("empty 'match-leak-kinds:' line, expected e.g. "
                    "'match-leak-kinds: definite,possible'");
    s += i;
    n -= i;
    bool saw_set = false, saw_word = false;
    i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ws((unsigned char)s[a]))
            a++;
        while (b > a && is_ws((unsigned char)s[b - 1]))
            b--;
        const char *w = s + a;
        size_t wl = b - a;
        static const char *const kn[4] = { "definite", "indirect",
                                           "possible", "reachable" };
        int k;
        for (k = 0; k < 4; k++)
            if (equals(w, wl, kn[k]))
                break;
        if (k < 4) {
            mask |= 1u << k;
            saw_word = true;
        } else if (equals(w, wl, "all") || equals(w, wl, "none")) {
            if (saw_set || saw_word || i != 0 || j != n)
                return FAIL("'%s' must be alone in 'match-leak-kinds:'",
                            equals(w, wl, "all") ? "all" : "none");
            mask = equals(w, wl, "all") ? ALL_KINDS : 0;
            saw_set = true;
        } else if (wl == 0)
            return FAIL("empty leak kind in 'match-leak-kinds:' (expected "
                        "definite, indirect, possible, reachable, all or "
                        "none)");
        else
            return FAIL("unknown leak kind '%s' in 'match-leak-kinds:' "
                        "(expected definite, indirect, possible, reachable, "
                        "all or none)",
                        q(qb, w, wl));
        i = j + 1;
    }
    P->kinds = mask;
    return 0;
}

/* A frame line known to start with fun:/obj:/src: or to be "..." */
static int add_frame(struct parser *P, const char *s, size_t n)
{
    char qb[QMAX];
    struct fpat f;
    memset(&f, 0, sizeof f);
    if (equals(s, n, "...")) {
        f.type = FP_DOTS;
    } else {
        const char *p = s + 4;
        size_t pl = n - 4;
        if (s[0] == 'f')
            f.type = FP_FUN;
        else if (s[0] == 'o')
            f.type = FP_OBJ;
        else {
            f.type = FP_SRC;
            const char *c = memchr(p, ':', pl);   /* valgrind: first ':' */
            if (c) {
                const char *d = c + 1;
                size_t dl = (size_t)(p + pl - d);
                long v = 0;
                if (dl == 0)
                    return FAIL("missing line number after ':' in 'src:' "
                                "line (expected 'src:FILE' or "
                                "'src:FILE:LINE')");
                for (size_t k = 0; k < dl; k++) {
                    if (d[k] < '0' || d[k] > '9')
                        return FAIL("bad line number '%s' in 'src:' line "
                                    "(expected 'src:FILE' or "
                                    "'src:FILE:LINE')",
                                    q(qb, d, dl));
                    v = v * 10 + (d[k] - '0');
                    if (v > INT_MAX)
                        return FAIL("line number '%s' in 'src:' line is "
                                    "too large", q(qb, d, dl));
                }
                if (v == 0)
                    return FAIL("line number 0 in 'src:' line (lines "
                                "start at 1)");
                f.line = (int)v;
                pl = (size_t)(c - p);
            }
        }
        f.s = pdup(P, p, pl);
        if (!f.s)
            return OOM();
        f.len = pl;
        f.simple = !has_glob_chars(p, pl);
    }
    P->nlines++;
    if (P->nlines > MS_SUPP_MAX_FRAMES)
        return FAIL("too many frame lines in entry '%s' (the limit is %d)",
                    q(qb, P->name, P->name_len), MS_SUPP_MAX_FRAMES);
    if (P->set->num_callers > 0 && P->nfr >= P->set->num_callers)
        return 0;   /* valgrind ignores frames beyond --num-callers */
    P->fr[P->nfr++] = f;
    return 0;
}

static int finish_entry(struct parser *P)
{
    char qb[QMAX];
    if (P->nfr == 0)
        return FAIL("entry '%s' has no stack: expected at least one 'fun:', "
                    "'obj:' or 'src:' line before '}'",
                    q(qb, P->name, P->name_len));
    int i;
    for (i = 0; i < P->nfr; i++)
        if (P->fr[i].type != FP_DOTS)
            break;
    if (i == P->nfr)
        return FAIL("entry '%s' must contain at least one 'fun:', 'obj:' "
                    "or 'src:' line, not only '...'",
                    q(qb, P->name, P->name_len));

    struct arena *a = &P->set->arena;
    struct ms_supp_entry *e =
        arena_alloc(a, sizeof *e, _Alignof(struct ms_supp_entry));
    struct fpat *fr = arena_alloc(a, (size_t)P->nfr * sizeof *fr,
                                  _Alignof(struct fpat));
    if (!e || !fr)
        return OOM();
    memcpy(fr, P->fr, (size_t)P->nfr * sizeof *fr);
    memset(e, 0, sizeof *e);
    e->name = P->name;
    e->file = P->fname;
    e->tools = P->tools;
    e->kind = P->kind;
    e->extra = P->extra;
    e->frames = fr;
    e->nframes = P->nfr;
    e->line = P->name_line;
    e->kcode = P->kcode;
    e->kinds = P->kcode == KC_LEAK ? P->kinds : 0;
    e->lsan = 0;
    if (set_push(P->set, e) != 0)
        return OOM();
    return 0;
}

static int inside_brace_error(struct parser *P)
{
    char qb[QMAX];
    if (P->name)
        return FAIL("unexpected '{' inside entry '%s' started at line %d "
                    "(missing '}'?)",
                    q(qb, P->name, P->name_len), P->open_line);
    return FAIL("unexpected '{' inside the entry started at line %d "
                "(missing '}'?)", P->open_line);
}

/* LeakSanitizer-style "type:pattern" line outside an entry. */
static int lsan_line(struct parser *P, const char *s, size_t n)
{
    char qb[QMAX];
    const char *c = memchr(s, ':', n);
    size_t tl = c ? (size_t)(c - s) : 0;
    bool ok = c && tl > 0 && s[0] >= 'a' && s[0] <= 'z';
    for (size_t i = 0; ok && i < tl; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
             s[i] == '_' || s[i] == '-';
    if (!ok)
        return FAIL("expected '{', a '#' comment or a sanitizer line such "
                    "as 'leak:PATTERN', got '%s'", q(qb, s, n));
    if (equals(s, tl, "fun") || equals(s, tl, "obj") ||
        equals(s, tl, "src") || equals(s, tl, "match-leak-kinds"))
        return FAIL("'%.*s:' line outside a '{ ... }' entry", (int)tl, s);
    if (!equals(s, tl, "leak"))
        return 0;   /* other sanitizer suppression types: ignored */

    const char *p = c + 1;
    size_t pl = n - tl - 1;
    struct fpat f;
    memset(&f, 0, sizeof f);
    f.type = FP_LSAN;
    if (pl && p[0] == '^') {
        f.a_start = 1;
        p++;
        pl--;
    }
    if (pl && p[pl - 1] == '$') {
        f.a_end = 1;
        pl--;
    }
    f.s = pdup(P, p, pl);
    f.len = pl;
    struct arena *a = &P->set->arena;
    char *name = pdup(P, s, n);
    struct ms_supp_entry *e =
        arena_alloc(a, sizeof *e, _Alignof(struct ms_supp_entry));
    struct fpat *fr = arena_alloc(a, sizeof *fr, _Alignof(struct fpat));
    if (!f.s || !name || !e || !fr)
        return OOM();
    *fr = f;
    memset(e, 0, sizeof *e);
    e->name = name;
    e->file = P->fname;
    e->tools = NULL;
    e->kind = "leak";
    e->frames = fr;
    e->nframes = 1;
    e->line = P->lineno;
    e->kcode = KC_LEAK;
    e->kinds = ALL_KINDS;
    e->lsan = 1;
    if (set_push(P->set, e) != 0)
        return OOM();
    return 0;
}

static int parse_kind_line(struct parser *P, const char *s, size_t n)
{
    char qb[QMAX], qb2[QMAX];
    const char *c = memchr(s, ':', n);
    size_t tl = c ? (size_t)(c - s) : 0;

    if (is_location(s, n) || starts(s, n, "match-leak-kinds:")) {
        /* forgot the kind line (or the name) */
        const char *nc = memchr(P->name, ':', P->name_len);
        if (nc && tool_present(P->name, (size_t)(nc - P->name), "Memcheck") &&
            kind_code(nc + 1, P->name_len - (size_t)(nc + 1 - P->name)) !=
                KC_NONE)
            return FAIL("missing entry name: the line after '{' is the "
                        "name, here '%s'", q(qb, P->name, P->name_len));
        return FAIL("missing 'tool:kind' line (e.g. 'Memcheck:Leak') "
                    "after the name '%s', got '%s'",
                    q(qb, P->name, P->name_len), q(qb2, s, n));
    }
    bool ok = c != NULL && tl > 0 && tl + 1 < n;
    for (size_t i = 0; ok && i < tl; i++)
        ok = is_ident_char((unsigned char)s[i]) ||
             (s[i] == ',' && i > 0 && i + 1 < tl && s[i + 1] != ',');
    for (size_t i = tl + 1; ok && i < n; i++)
        ok = is_ident_char((unsigned char)s[i]);
    if (!ok)
        return FAIL("malformed 'tool1,tool2,...:kind' line (e.g. "
                    "'Memcheck:Leak'), got '%s'", q(qb, s, n));
    const char *k = c + 1;
    size_t kl = n - tl - 1;
    if (!tool_present(s, tl, "Memcheck")) {
        P->st = ST_SKIP;   /* another tool's entry: ignored, like valgrind */
        return 0;
    }
    int code = kind_code(k, kl);
    if (code == KC_NONE)
        return FAIL("unknown Memcheck suppression kind '%s' (expected Leak, "
                    "Free, Cond, Param, Addr1..Addr32, Value1..Value32, "
                    "Jump, Overlap, ...)", q(qb, k, kl));
    P->tools = pdup(P, s, tl);
    P->kind = pdup(P, k, kl);
    if (!P->tools || !P->kind)
        return OOM();
    P->kcode = code;
    P->kinds = ALL_KINDS;
    P->st = code == KC_LEAK    ? ST_LEAKX
            : code == KC_PARAM ? ST_PARAMX
            : code == KC_FISHY ? ST_FISHYX
                               : ST_FRAMES;
    return 0;
}

static int frame_line(struct parser *P, const char *s, size_t n)
{
    char qb[QMAX];
    if (equals(s, n, "}")) {
        int r = finish_entry(P);
        if (r == 0) {
            P->st = ST_OUT;
            entry_reset(P);
        }
        return r;
    }
    if (s[0] == '{')
        return inside_brace_error(P);
    if (is_location(s, n))
        return add_frame(P, s, n);
    if (starts(s, n, "match-leak-kinds:")) {
        if (P->kcode == KC_LEAK)
            return FAIL("'match-leak-kinds:' must directly follow the "
                        "'%s:Leak' line", P->tools);
        return FAIL("'match-leak-kinds:' is only allowed in 'Memcheck:Leak' "
                    "entries, this one is '%s:%s'", P->tools, P->kind);
    }
    return FAIL("expected 'fun:', 'obj:', 'src:' or '...', got '%s'",
                q(qb, s, n));
}

/* One raw input line (without '\n'). */
static int parse_line(struct parser *P, const char *s, size_t n)
{
    char qb[QMAX];
    if (P->lineno == INT_MAX)
        return FAIL("too many lines");
    P->lineno++;
    if (n > MS_SUPP_MAX_LINE)
        return FAIL("line too long (%zu bytes; the limit is %d)", n,
                    MS_SUPP_MAX_LINE);
    if (memchr(s, '\0', n))
        return FAIL("NUL byte in line (binary file?)");
    while (n && is_ws((unsigned char)s[0])) {
        s++;
        n--;
    }
    while (n && is_ws((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || s[0] == '#')
        return 0;

    switch (P->st) {
    case ST_OUT:
        if (s[0] == '{') {
            if (n != 1)
                return FAIL("'{' must be alone on its line, got '%s'",
                            q(qb, s, n));
            P->st = ST_NAME;
            P->open_line = P->lineno;
            entry_reset(P);
            return 0;
        }
        if (s[0] == '}')
            return FAIL("unexpected '}' outside an entry");
        if (equals(s, n, "..."))
            return FAIL("'...' line outside a '{ ... }' entry");
        return lsan_line(P, s, n);

    case ST_NAME:
        if (equals(s, n, "}"))
            return FAIL("unexpected '}': entry started at line %d has no "
                        "name and no 'tool:kind' line", P->open_line);
        if (s[0] == '{')
            return inside_brace_error(P);
        P->name = pdup(P, s, n);
        if (!P->name)
            return OOM();
        P->name_len = n;
        P->name_line = P->lineno;
        P->st = ST_KIND;
        return 0;

    case ST_KIND:
        if (equals(s, n, "}"))
            return FAIL("missing 'tool:kind' line (e.g. 'Memcheck:Leak') in "
                        "entry '%s'", q(qb, P->name, P->name_len));
        if (s[0] == '{')
            return inside_brace_error(P);
        return parse_kind_line(P, s, n);

    case ST_LEAKX:
        P->st = ST_FRAMES;
        if (starts(s, n, "match-leak-kinds:"))
            return parse_leak_kinds(P, s + 17, n - 17);
        return frame_line(P, s, n);

    case ST_PARAMX:
        if (s[0] == '{')
            return inside_brace_error(P);
        if (equals(s, n, "}") || is_location(s, n))
            return FAIL("missing system call parameter line (e.g. "
                        "'write(buf)') after 'Memcheck:Param' in entry '%s'",
                        q(qb, P->name, P->name_len));
        P->extra = pdup(P, s, n);
        if (!P->extra)
            return OOM();
        P->st = ST_FRAMES;
        return 0;

    case ST_FISHYX:
        P->st = ST_FRAMES;
        if (!equals(s, n, "}") && s[0] != '{' && !is_location(s, n) &&
            !starts(s, n, "match-leak-kinds:")) {
            const char *o = memchr(s, '(', n);
            if (!o || !memchr(o, ')', n - (size_t)(o - s)))
                return FAIL("malformed 'FishyValue' line, expected "
                            "'function(argument)', got '%s'", q(qb, s, n));
            P->extra = pdup(P, s, n);
            if (!P->extra)
                return OOM();
            return 0;
        }
        return frame_line(P, s, n);

    case ST_FRAMES:
        return frame_line(P, s, n);

    case ST_SKIP:
        if (equals(s, n, "}")) {
            P->st = ST_OUT;
            entry_reset(P);
            return 0;
        }
        if (s[0] == '{')
            return inside_brace_error(P);
        return 0;
    }
    return FAIL("internal error: bad parser state");
}

static int parse_eof(struct parser *P)
{
    char qb[QMAX];
    if (P->st == ST_OUT)
        return 0;
    if (P->name)
        return fail_at(P, P->open_line,
                       "unterminated entry '%s': missing '}' before end of "
                       "file", q(qb, P->name, P->name_len));
    return fail_at(P, P->open_line,
                   "unterminated entry: missing '}' before end of file");
}

static int feed_buffer(struct parser *P, const char *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        if (parse_line(P, buf + pos, end - pos) != 0)
            return -1;
        pos = end + 1;
    }
    return parse_eof(P);
}

static int feed_fd(struct parser *P, int fd)
{
    const size_t cap = (size_t)MS_SUPP_MAX_LINE + 1 + 64 * 1024;
    char *b = malloc(cap);
    size_t start = 0, end = 0, scanned = 0;
    bool eof = false;
    int r = -1;
    if (!b)
        return fail_at(P, 0, "out of memory");
    for (;;) {
        char *nl = memchr(b + scanned, '\n', end - scanned);
        if (nl) {
            size_t e = (size_t)(nl - b);
            if (parse_line(P, b + start, e - start) != 0)
                goto out;
            start = scanned = e + 1;
            continue;
        }
        scanned = end;
        if (eof) {
            if (end > start && parse_line(P, b + start, end - start) != 0)
                goto out;
            break;
        }
        if (end - start > (size_t)MS_SUPP_MAX_LINE) {
            /* report it as parse_line would */
            if (P->lineno < INT_MAX)
                P->lineno++;
            FAIL("line too long (more than %d bytes)", MS_SUPP_MAX_LINE);
            goto out;
        }
        if (start > 0) {
            memmove(b, b + start, end - start);
            end -= start;
            scanned -= start;
            start = 0;
        }
        ssize_t k = read(fd, b + end, cap - end);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            fail_at(P, 0, "read error: %s", strerror(errno));
            goto out;
        }
        if (k == 0)
            eof = true;
        else
            end += (size_t)k;
    }
    r = parse_eof(P);
out:
    free(b);
    return r;
}

static int load(struct ms_supp_set *set, const char *name, int fd,
                const char *buf, size_t len, char *err, size_t errlen)
{
    struct parser P;
    memset(&P, 0, sizeof P);
    P.set = set;
    P.dname = name;
    P.err = err;
    P.errlen = errlen;
    P.st = ST_OUT;
    entry_reset(&P);

    struct arena_mark mark = arena_mark(&set->arena);
    size_t n0 = set->n;
    int r = -1;

    P.fr = malloc(MS_SUPP_MAX_FRAMES * sizeof *P.fr);
    P.fname = arena_strndup(&set->arena, name, strlen(name));
    if (!P.fr || !P.fname)
        fail_at(&P, 0, "out of memory");
    else if (fd >= 0)
        r = feed_fd(&P, fd);
    else
        r = feed_buffer(&P, buf, len);
    free(P.fr);
    if (r != 0) {
        set->n = n0;
        arena_rollback(&set->arena, mark);
    }
    return r;
}

int ms_supp_load_buffer(struct ms_supp_set *set, const char *name,
                        const char *buf, size_t len, char *err, size_t errlen)
{
    if (!name)
        name = "<buffer>";
    if (!set || (!buf && len)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "memsleuth: suppressions file '%s': invalid argument",
                     name);
        return -1;
    }
    while (len && buf[len - 1] == '\0')
        len--;
    return load(set, name, -1, buf, len, err, errlen);
}

int ms_supp_load_file(struct ms_supp_set *set, const char *path, char *err,
                      size_t errlen)
{
    if (!set || !path) {
        if (err && errlen)
            snprintf(err, errlen,
                     "memsleuth: suppressions file '%s': invalid argument",
                     path ? path : "(null)");
        return -1;
    }
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        if (err && errlen) {
            char qn[QMAX * 2];
            quote(qn, sizeof qn, path, strlen(path), QNAME);
            snprintf(err, errlen,
                     "memsleuth: suppressions file '%s': cannot open: %s",
                     qn, strerror(e));
        }
        return -1;
    }
    int r = load(set, path, fd, NULL, 0, err, errlen);
    close(fd);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Matching                                                                 */
/* ------------------------------------------------------------------------ */

/* Glob match of pat[0..plen) against str[0..slen).
   vg:    valgrind syntax ('*', '?', '\' quoting), whole-string match.
   lsan:  '*' only; lead/trail add implicit '*' at start/end. */
static bool glob(const char *pat, size_t plen, const char *str, size_t slen,
                 bool vg, bool lead, bool trail)
{
    size_t p = 0, s = 0;
    size_t sp = SIZE_MAX, ss = 0;
    if (lead) {
        sp = 0;
        ss = 0;
    }
    for (;;) {
        if (p == plen) {
            if (trail || s == slen)
                return true;
        } else if (pat[p] == '*') {
            p++;
            sp = p;
            ss = s;
            continue;
        } else if (s < slen) {
            char c = pat[p];
            size_t adv = 1;
            bool any = false;
            if (vg && c == '?') {
                any = true;
            } else if (vg && c == '\\') {
                if (p + 1 >= plen)
                    return false;   /* trailing '\' never matches */
                c = pat[p + 1];
                adv = 2;
            }
            if (any || c == str[s]) {
                p += adv;
                s++;
                continue;
            }
        }
        if (sp == SIZE_MAX || ss >= slen)
            return false;
        p = sp;
        s = ++ss;
    }
}

static bool vg_pat(const struct fpat *f, const char *str)
{
    size_t sl = strlen(str);
    if (f->simple)
        return sl == f->len && memcmp(f->s, str, sl) == 0;
    return glob(f->s, f->len, str, sl, true, false, false);
}

static bool nonempty(const char *s)
{
    return s && s[0];
}

static bool vg_frame_match(const struct fpat *f, const struct ms_supp_frame *fr)
{
    switch (f->type) {
    case FP_FUN: {
        bool any = false;
        if (nonempty(fr->fn_mangled)) {
            any = true;
            if (vg_pat(f, fr->fn_mangled))
                return true;
        }
        if (nonempty(fr->fn)) {
            any = true;
            if (fr->fn != fr->fn_mangled && vg_pat(f, fr->fn))
                return true;
        }
        return !any && vg_pat(f, "???");
    }
    case FP_OBJ:
        return vg_pat(f, nonempty(fr->obj) ? fr->obj : "???");
    case FP_SRC: {
        if (!nonempty(fr->file))
            return false;
        if (f->line && fr->line != f->line)
            return false;
        if (vg_pat(f, fr->file))
            return true;
        const char *b = strrchr(fr->file, '/');
        return b && b[1] && vg_pat(f, b + 1);
    }
    default:
        return false;
    }
}

/* Prefix match of the entry's frames against the stack; "..." = star. */
static bool vg_stack_match(const struct fpat *P, int m,
                           const struct ms_supp_frame *S, int n)
{
    int p = 0, s = 0, sp = -1, ss = 0;
    for (;;) {
        if (p == m)
            return true;    /* the stack may be longer than the entry */
        if (P[p].type == FP_DOTS) {
            sp = ++p;
            ss = s;
            continue;
        }
        if (s < n && vg_frame_match(&P[p], &S[s])) {
            p++;
            s++;
            continue;
        }
        if (sp < 0 || ss >= n)
            return false;
        p = sp;
        s = ++ss;
    }
}

static bool lsan_str(const struct fpat *f, const char *str)
{
    if (!nonempty(str))
        return false;
    return glob(f->s, f->len, str, strlen(str), false, !f->a_start,
                !f->a_end);
}

static bool lsan_stack_match(const struct fpat *f,
                             const struct ms_supp_frame *S, int n)
{
    for (int i = 0; i < n; i++) {
        if (lsan_str(f, S[i].obj) || lsan_str(f, S[i].fn) ||
            lsan_str(f, S[i].fn_mangled) || lsan_str(f, S[i].file))
            return true;
    }
    return false;
}

struct ms_supp_entry *ms_supp_match_leak(struct ms_supp_set *set,
                                         enum ms_leak_kind kind,
                                         const struct ms_supp_frame *frames,
                                         int n)
{
    if (!set || !frames || n <= 0 || (unsigned)kind > MS_LEAK_REACHABLE)
        return NULL;
    unsigned bit = 1u << kind;
    for (size_t i = 0; i < set->n; i++) {
        struct ms_supp_entry *e = set->v[i];
        if (e->kcode != KC_LEAK || !(e->kinds & bit))
            continue;
        if (e->lsan ? lsan_stack_match(&e->frames[0], frames, n)
                    : vg_stack_match(e->frames, e->nframes, frames, n))
            return e;
    }
    return NULL;
}

struct ms_supp_entry *ms_supp_match_error_ex(struct ms_supp_set *set,
                                             const char *kind,
                                             const char *extra,
                                             const struct ms_supp_frame *frames,
                                             int n)
{
    if (!set || !kind || !frames || n <= 0)
        return NULL;
    const char *k = kind;
    const char *c = strchr(kind, ':');
    if (c) {
        if (!tool_present(kind, (size_t)(c - kind), "Memcheck"))
            return NULL;
        k = c + 1;
    }
    int code = kind_code(k, strlen(k));
    if (code == KC_NONE)
        return NULL;
    for (size_t i = 0; i < set->n; i++) {
        struct ms_supp_entry *e = set->v[i];
        if (e->lsan || e->kcode != code)
            continue;
        if (extra && (!e->extra || strcmp(extra, e->extra) != 0))
            continue;
        if (vg_stack_match(e->frames, e->nframes, frames, n))
            return e;
    }
    return NULL;
}

struct ms_supp_entry *ms_supp_match_error(struct ms_supp_set *set,
                                          const char *kind,
                                          const struct ms_supp_frame *frames,
                                          int n)
{
    return ms_supp_match_error_ex(set, kind, NULL, frames, n);
}

/* ------------------------------------------------------------------------ */
/* Entries and counters                                                     */
/* ------------------------------------------------------------------------ */

const char *ms_supp_entry_name(const struct ms_supp_entry *e)
{
    return e ? e->name : "";
}

const char *ms_supp_entry_kind(const struct ms_supp_entry *e)
{
    return e ? e->kind : "";
}

const char *ms_supp_entry_file(const struct ms_supp_entry *e)
{
    return e ? e->file : "";
}

int ms_supp_entry_line(const struct ms_supp_entry *e)
{
    return e ? e->line : 0;
}

int ms_supp_entry_is_lsan(const struct ms_supp_entry *e)
{
    return e ? e->lsan : 0;
}

unsigned ms_supp_entry_leak_kinds(const struct ms_supp_entry *e)
{
    return e ? e->kinds : 0;
}

static unsigned long sat_add(unsigned long a, unsigned long b)
{
    return a > ULONG_MAX - b ? ULONG_MAX : a + b;
}

void ms_supp_count(struct ms_supp_entry *e, unsigned long bytes,
                   unsigned long blocks)
{
    if (!e)
        return;
    e->count = sat_add(e->count, 1);
    e->bytes = sat_add(e->bytes, bytes);
    e->blocks = sat_add(e->blocks, blocks);
}

void ms_supp_entry_counts(const struct ms_supp_entry *e, unsigned long *count,
                          unsigned long *bytes, unsigned long *blocks)
{
    if (count)
        *count = e ? e->count : 0;
    if (bytes)
        *bytes = e ? e->bytes : 0;
    if (blocks)
        *blocks = e ? e->blocks : 0;
}

void ms_supp_reset_counts(struct ms_supp_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        set->v[i]->count = set->v[i]->bytes = set->v[i]->blocks = 0;
}

static bool owned(const struct ms_supp_set *set, const struct ms_supp_entry *e)
{
    return e->index < set->n && set->v[e->index] == e;
}

struct ms_supp_entry *ms_supp_next(struct ms_supp_set *set,
                                   struct ms_supp_entry *prev)
{
    if (!set)
        return NULL;
    size_t i = 0;
    if (prev) {
        if (!owned(set, prev))
            return NULL;
        i = prev->index + 1;
    }
    return i < set->n ? set->v[i] : NULL;
}

struct ms_supp_entry *ms_supp_next_used(struct ms_supp_set *set,
                                        struct ms_supp_entry *prev,
                                        unsigned long *count,
                                        unsigned long *bytes,
                                        unsigned long *blocks)
{
    if (!set)
        return NULL;
    size_t i = 0;
    if (prev) {
        if (!owned(set, prev))
            return NULL;
        i = prev->index + 1;
    }
    for (; i < set->n; i++) {
        struct ms_supp_entry *e = set->v[i];
        if (e->count > 0) {
            ms_supp_entry_counts(e, count, bytes, blocks);
            return e;
        }
    }
    return NULL;
}

const char *ms_supp_leak_kind_name(enum ms_leak_kind kind)
{
    switch (kind) {
    case MS_LEAK_DEFINITE: return "definite";
    case MS_LEAK_INDIRECT: return "indirect";
    case MS_LEAK_POSSIBLE: return "possible";
    case MS_LEAK_REACHABLE: return "reachable";
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Generating suppressions                                                  */
/* ------------------------------------------------------------------------ */

struct out {
    char *buf;
    size_t len;
    size_t pos;     /* full length so far (may exceed len) */
};

static void out_mem(struct out *o, const char *s, size_t n)
{
    if (o->pos < o->len) {
        size_t room = o->len - 1 - o->pos;   /* keep one byte for NUL */
        size_t k = n < room ? n : room;
        if (k)
            memcpy(o->buf + o->pos, s, k);
    }
    o->pos = o->pos > SIZE_MAX - n ? SIZE_MAX : o->pos + n;
}

static void out_str(struct out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_ch(struct out *o, char c)
{
    out_mem(o, &c, 1);
}

/* Write a name as a valgrind pattern matching exactly that name (or, when
   cut, every name starting with the written part). */
static void out_pattern(struct out *o, const char *s)
{
    /* leave room for "   fun:" and the '*' within one line */
    const size_t budget = (size_t)MS_SUPP_MAX_LINE - 16;
    size_t n = strlen(s);
    size_t t = n;   /* start of the trailing blank run */
    while (t > 0 && is_ws((unsigned char)s[t - 1]))
        t--;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c == '\\' ? 2 : 1;
        if (w + need > budget) {
            out_ch(o, '*');
            return;
        }
        if (c == '\\')
            out_mem(o, "\\\\", 2);
        else if (c < 0x20 || c == 0x7f || i >= t)
            out_ch(o, '?');
        else
            out_ch(o, (char)c);
        w += need;
    }
}

static void out_frames(struct out *o, const struct ms_supp_frame *frames,
                       int n)
{
    if (n > MS_SUPP_MAX_FRAMES)
        n = MS_SUPP_MAX_FRAMES;
    for (int i = 0; i < n; i++) {
        const struct ms_supp_frame *f = &frames[i];
        const char *name = nonempty(f->fn_mangled) ? f->fn_mangled
                           : nonempty(f->fn)       ? f->fn
                                                   : NULL;
        if (name) {
            out_str(o, "   fun:");
            out_pattern(o, name);
        } else if (nonempty(f->obj)) {
            out_str(o, "   obj:");
            out_pattern(o, f->obj);
        } else {
            out_str(o, "   obj:*");
        }
        out_ch(o, '\n');
    }
}

static int out_finish(struct out *o)
{
    if (o->len) {
        size_t z = o->pos < o->len ? o->pos : o->len - 1;
        o->buf[z] = '\0';
    }
    return o->pos > INT_MAX ? INT_MAX : (int)o->pos;
}

static int out_fail(char *buf, size_t len)
{
    if (buf && len)
        buf[0] = '\0';
    return -1;
}

int ms_supp_format_leak(char *buf, size_t len, enum ms_leak_kind kind,
                        const struct ms_supp_frame *frames, int n)
{
    if (!buf)
        len = 0;
    if (!frames || n <= 0)
        return out_fail(buf, len);
    struct out o = { buf, len, 0 };
    out_str(&o, "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n");
    const char *kn = ms_supp_leak_kind_name(kind);
    if (kn) {
        out_str(&o, "   match-leak-kinds: ");
        out_str(&o, kn);
        out_ch(&o, '\n');
    }
    out_frames(&o, frames, n);
    out_str(&o, "}\n");
    return out_finish(&o);
}

int ms_supp_format_error(char *buf, size_t len, const char *kind,
                         const char *extra,
                         const struct ms_supp_frame *frames, int n)
{
    if (!buf)
        len = 0;
    if (!frames || n <= 0 || !kind)
        return out_fail(buf, len);
    int code = kind_code(kind, strlen(kind));
    if (code == KC_NONE)
        return out_fail(buf, len);
    if ((code == KC_PARAM) != (extra != NULL) && code != KC_FISHY)
        return out_fail(buf, len);   /* Param needs it, others forbid it */
    if (extra) {
        size_t el = strlen(extra);
        if (el == 0 || el + 8 > MS_SUPP_MAX_LINE ||
            is_ws((unsigned char)extra[0]) ||
            is_ws((unsigned char)extra[el - 1]) || extra[0] == '#' ||
            extra[0] == '{' || extra[0] == '}' || is_location(extra, el) ||
            starts(extra, el, "match-leak-kinds:"))
            return out_fail(buf, len);
        for (size_t i = 0; i < el; i++)
            if ((unsigned char)extra[i] < 0x20 || extra[i] == 0x7f)
                return out_fail(buf, len);
        if (code == KC_FISHY) {
            const char *o = strchr(extra, '(');
            if (!o || !strchr(o, ')'))
                return out_fail(buf, len);
        }
    }
    struct out o = { buf, len, 0 };
    out_str(&o, "{\n   <insert_a_suppression_name_here>\n   Memcheck:");
    out_str(&o, kind);
    out_ch(&o, '\n');
    if (extra) {
        out_str(&o, "   ");
        out_str(&o, extra);
        out_ch(&o, '\n');
    }
    out_frames(&o, frames, n);
    out_str(&o, "}\n");
    return out_finish(&o);
}
