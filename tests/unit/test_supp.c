/*
 * memsleuth - unit test for src/common/supp.c (suppression files).
 *
 * Output is TAP-like: "ok N - description" / "not ok N - description",
 * diagnostics on "# " lines, and a last line "N passed, M failed".
 * Exit status is 0 only if every check passed.
 *
 * Usage: test_supp [SCRATCH_DIR]   (temporary files go there; default: a
 * fresh mkdtemp directory under /tmp, removed at the end)
 */
#include "supp.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int n_pass, n_fail, n_test;

#ifdef MS_TEST_WRAP_MALLOC
/* Failure injection, linked with -Wl,--wrap=malloc,--wrap=calloc,
   --wrap=realloc: while fail_at > 0, the fail_at-th allocation fails. */
static long fail_at, n_calls;
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
static int inject(void)
{
    return fail_at > 0 && ++n_calls == fail_at;
}
void *__wrap_malloc(size_t n)
{
    return inject() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b)
{
    return inject() ? NULL : __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n)
{
    return inject() ? NULL : __real_realloc(p, n);
}
#endif

static int ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    n_test++;
    printf("%sok %d - ", cond ? "" : "not ", n_test);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (cond)
        n_pass++;
    else
        n_fail++;
    fflush(stdout);
    return cond;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- frame helpers ---------------------------------------------------- */

#define MAXF 64

struct stack {
    struct ms_supp_frame f[MAXF];
    int n;
};

/* Build a stack from "fn" strings; NULL ends.  Each fn is both fn and
   fn_mangled = NULL, obj = "/usr/bin/prog". */
static struct stack S(const char *first, ...)
{
    struct stack s;
    memset(&s, 0, sizeof s);
    va_list ap;
    va_start(ap, first);
    for (const char *p = first; p && s.n < MAXF; p = va_arg(ap, const char *)) {
        s.f[s.n].fn = p;
        s.f[s.n].obj = "/usr/bin/prog";
        s.n++;
    }
    va_end(ap);
    return s;
}

static struct ms_supp_set *load(const char *text)
{
    struct ms_supp_set *s = ms_supp_set_new();
    char err[512] = "";
    if (ms_supp_load_buffer(s, "t.supp", text, strlen(text), err, sizeof err)) {
        diag("unexpected load failure: %s", err);
        ms_supp_set_free(s);
        return NULL;
    }
    return s;
}

static const char *mname(struct ms_supp_set *set, enum ms_leak_kind k,
                         const struct stack *st)
{
    struct ms_supp_entry *e = ms_supp_match_leak(set, k, st->f, st->n);
    return e ? ms_supp_entry_name(e) : "(none)";
}

/* Does stack st match as a definite leak, and by entry `want` (NULL = no
   match expected)? */
static void expect(struct ms_supp_set *set, enum ms_leak_kind k,
                   const struct stack *st, const char *want, const char *desc)
{
    const char *got = mname(set, k, st);
    int good = want ? strcmp(got, want) == 0 : strcmp(got, "(none)") == 0;
    if (!ok(good, "%s", desc))
        diag("want %s, got %s", want ? want : "(none)", got);
}

/* Load must fail with message "memsleuth: suppressions file 'x.supp' line
   LINE: ..." containing `needle`; set must be unchanged. */
static void expect_err(const char *text, size_t len, int line,
                       const char *needle, const char *desc)
{
    struct ms_supp_set *s = ms_supp_set_new();
    char err[1024];
    char pre[128];
    memset(err, 'Z', sizeof err);
    err[sizeof err - 1] = 0;
    static const char base[] = "{\n b\n Memcheck:Leak\n fun:base\n}\n";
    int r0 = ms_supp_load_buffer(s, "base.supp", base, strlen(base), NULL, 0);
    int r = ms_supp_load_buffer(s, "x.supp", text, len, err, sizeof err);
    if (line > 0)
        snprintf(pre, sizeof pre, "memsleuth: suppressions file 'x.supp' "
                 "line %d: ", line);
    else
        snprintf(pre, sizeof pre, "memsleuth: suppressions file 'x.supp'");
    struct stack st = S("base", NULL);
    int good = r0 == 0 && r == -1 && strncmp(err, pre, strlen(pre)) == 0 &&
               strstr(err, needle) != NULL && strchr(err, '\n') == NULL &&
               ms_supp_set_count(s) == 1 &&
               ms_supp_match_leak(s, MS_LEAK_DEFINITE, st.f, st.n) != NULL;
    if (!ok(good, "error: %s", desc))
        diag("r=%d count=%zu err=[%s] want prefix [%s] and [%s]", r,
             ms_supp_set_count(s), err, pre, needle);
    ms_supp_set_free(s);
}

#define EXPECT_ERR(text, line, needle, desc) \
    expect_err(text, strlen(text), line, needle, desc)

/* ---- tests -------------------------------------------------------------- */

static void test_basic(void)
{
    const char *t =
        "# leading comment\n"
        "\n"
        "{\n"
        "   my_name\n"
        "   Memcheck:Leak\n"
        "   fun:malloc\n"
        "   fun:main\n"
        "}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "basic entry loads");
    if (!s)
        return;
    ok(ms_supp_set_count(s) == 1, "one entry");
    struct stack a = S("malloc", "main", "__libc_start_main", "_start", NULL);
    struct stack b = S("malloc", "foo", "main", NULL);
    struct stack c = S("malloc", NULL);
    expect(s, MS_LEAK_DEFINITE, &a, "my_name", "fun: prefix match, stack longer");
    expect(s, MS_LEAK_DEFINITE, &b, NULL, "fun: mismatch at frame 1");
    expect(s, MS_LEAK_DEFINITE, &c, NULL, "stack shorter than entry");
    struct ms_supp_entry *e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, a.f, a.n);
    ok(e && strcmp(ms_supp_entry_kind(e), "Leak") == 0, "entry kind Leak");
    ok(e && strcmp(ms_supp_entry_file(e), "t.supp") == 0, "entry file");
    ok(e && ms_supp_entry_line(e) == 4, "entry line is the name line");
    ok(e && !ms_supp_entry_is_lsan(e), "not lsan");
    ok(e && ms_supp_entry_leak_kinds(e) == 0xf, "no match-leak-kinds = all");
    ok(ms_supp_match_leak(s, MS_LEAK_DEFINITE, a.f, 0) == NULL &&
       ms_supp_match_leak(s, MS_LEAK_DEFINITE, NULL, 3) == NULL &&
       ms_supp_match_leak(NULL, MS_LEAK_DEFINITE, a.f, a.n) == NULL &&
       ms_supp_match_leak(s, (enum ms_leak_kind)7, a.f, a.n) == NULL,
       "bad arguments give NULL");
    ok(strcmp(ms_supp_entry_name(NULL), "") == 0 &&
       ms_supp_entry_line(NULL) == 0 && ms_supp_set_count(NULL) == 0,
       "NULL accessors");
    ms_supp_set_free(s);
    ms_supp_set_free(NULL);
}

static void test_frame_types(void)
{
    const char *t =
        "{\n obj_e\n Memcheck:Leak\n obj:/usr/lib/libfoo.so*\n}\n"
        "{\n unk_obj\n Memcheck:Leak\n fun:xmalloc\n obj:???\n}\n"
        "{\n unk_fun\n Memcheck:Leak\n fun:calloc\n fun:???\n}\n"
        "{\n src_any\n Memcheck:Leak\n fun:realloc\n src:bar.c\n}\n"
        "{\n src_line\n Memcheck:Leak\n fun:valloc\n src:bar.c:12\n}\n"
        "{\n src_path\n Memcheck:Leak\n fun:pvalloc\n src:/src/*/baz.c\n}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "frame-type entries load");
    if (!s)
        return;
    struct stack st;
    memset(&st, 0, sizeof st);
    st.n = 2;
    st.f[0].fn = "malloc";
    st.f[0].obj = "/usr/lib/libfoo.so.1";
    expect(s, MS_LEAK_DEFINITE, &st, "obj_e", "obj: glob on module path");
    st.f[0].obj = "/usr/lib/libbar.so.1";
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "obj: mismatch");

    memset(&st, 0, sizeof st);
    st.n = 2;
    st.f[0].fn = "xmalloc";
    st.f[1].fn = "main";
    expect(s, MS_LEAK_DEFINITE, &st, "unk_obj", "obj:??? matches frame without module");
    st.f[1].obj = "/bin/x";
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "obj:??? (3 chars) does not match /bin/x");

    memset(&st, 0, sizeof st);
    st.n = 2;
    st.f[0].fn = "calloc";
    expect(s, MS_LEAK_DEFINITE, &st, "unk_fun", "fun:??? matches frame without function");
    st.f[1].fn = "abc";
    expect(s, MS_LEAK_DEFINITE, &st, "unk_fun", "fun:??? also matches 3-char name (glob)");
    st.f[1].fn = "abcd";
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "fun:??? does not match 4-char name");

    memset(&st, 0, sizeof st);
    st.n = 2;
    st.f[0].fn = "realloc";
    st.f[1].fn = "f";
    st.f[1].file = "bar.c";
    st.f[1].line = 99;
    expect(s, MS_LEAK_DEFINITE, &st, "src_any", "src:FILE any line");
    st.f[1].file = "/home/u/proj/bar.c";
    expect(s, MS_LEAK_DEFINITE, &st, "src_any", "src:FILE matches base name of path");
    st.f[1].file = "/home/u/proj/foobar.c";
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "src:FILE base name must match whole");
    st.f[1].file = NULL;
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "src: never matches frame without file");

    st.f[0].fn = "valloc";
    st.f[1].file = "bar.c";
    st.f[1].line = 12;
    expect(s, MS_LEAK_DEFINITE, &st, "src_line", "src:FILE:LINE matching line");
    st.f[1].line = 13;
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "src:FILE:LINE other line");
    st.f[1].line = 0;
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "src:FILE:LINE unknown line");

    st.f[0].fn = "pvalloc";
    st.f[1].file = "/src/a/b/baz.c";
    expect(s, MS_LEAK_DEFINITE, &st, "src_path", "src: glob on full path");
    st.f[1].file = "baz.c";
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "src: path glob vs base name");
    ms_supp_set_free(s);
}

static void test_wildcards(void)
{
    const char *t =
        "{\n star\n Memcheck:Leak\n fun:ma*oc\n fun:*\n fun:x*\n}\n"
        "{\n qmark\n Memcheck:Leak\n fun:f?o\n}\n"
        "{\n escaped\n Memcheck:Leak\n fun:a\\*b\n}\n"
        "{\n escq\n Memcheck:Leak\n fun:q\\?\n}\n"
        "{\n trailing_bs\n Memcheck:Leak\n fun:z\\\n}\n"
        "{\n stars\n Memcheck:Leak\n fun:**a*a*a*a*a*a*a*a*a*a*b**\n}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "wildcard entries load");
    if (!s)
        return;
    struct stack a = S("malloc", "anything", "xyz", NULL);
    struct stack a2 = S("maoc", "", "x", NULL);
    struct stack a3 = S("malloc", "anything", "yx", NULL);
    struct stack a4 = S("mallocx", "anything", "x", NULL);
    expect(s, MS_LEAK_DEFINITE, &a, "star", "'*' in middle, alone, at end");
    expect(s, MS_LEAK_DEFINITE, &a2, "star", "'*' matches empty");
    expect(s, MS_LEAK_DEFINITE, &a3, NULL, "whole-string match (x* vs yx)");
    expect(s, MS_LEAK_DEFINITE, &a4, NULL, "whole-string match (ma*oc vs mallocx)");
    struct stack b = S("fXo", NULL), b2 = S("fo", NULL), b3 = S("fXXo", NULL);
    expect(s, MS_LEAK_DEFINITE, &b, "qmark", "'?' one char");
    expect(s, MS_LEAK_DEFINITE, &b2, NULL, "'?' not zero chars");
    expect(s, MS_LEAK_DEFINITE, &b3, NULL, "'?' not two chars");
    struct stack c = S("a*b", NULL), c2 = S("axb", NULL);
    expect(s, MS_LEAK_DEFINITE, &c, "escaped", "'\\*' matches literal '*'");
    expect(s, MS_LEAK_DEFINITE, &c2, NULL, "'\\*' is not a wildcard");
    struct stack d = S("q?", NULL), d2 = S("qx", NULL);
    expect(s, MS_LEAK_DEFINITE, &d, "escq", "'\\?' matches literal '?'");
    expect(s, MS_LEAK_DEFINITE, &d2, NULL, "'\\?' is not a wildcard");
    struct stack z = S("z\\", NULL), z2 = S("z", NULL);
    expect(s, MS_LEAK_DEFINITE, &z, NULL, "trailing backslash never matches (valgrind)");
    expect(s, MS_LEAK_DEFINITE, &z2, NULL, "trailing backslash never matches (2)");

    /* pathological glob: must be quick */
    static char big[200001];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    struct stack p = S(big, NULL);
    double t0 = now();
    const char *got = mname(s, MS_LEAK_DEFINITE, &p);
    double dt = now() - t0;
    ok(strcmp(got, "(none)") == 0 && dt < 20.0,
       "pathological glob on 200 kB name finishes (%.3f s)", dt);
    big[sizeof big - 2] = 'b';
    ok(strcmp(mname(s, MS_LEAK_DEFINITE, &p), "stars") == 0,
       "pathological glob matches when it should");
    ms_supp_set_free(s);
}

static void test_dots(void)
{
    const char *t =
        "{\n start\n Memcheck:Leak\n ...\n fun:target1\n}\n"
        "{\n middle\n Memcheck:Leak\n fun:malloc\n ...\n fun:target2\n fun:after2\n}\n"
        "{\n end\n Memcheck:Leak\n fun:calloc\n fun:target3\n ...\n}\n"
        "{\n multi\n Memcheck:Leak\n ...\n fun:m1\n ...\n ...\n fun:m2\n ...\n}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "'...' entries load");
    if (!s)
        return;
    struct stack a0 = S("target1", NULL);
    struct stack a1 = S("malloc", "x", "y", "target1", "z", NULL);
    expect(s, MS_LEAK_DEFINITE, &a0, "start", "'...' at start matches zero frames");
    expect(s, MS_LEAK_DEFINITE, &a1, "start", "'...' at start matches several frames");
    struct stack b0 = S("malloc", "target2", "after2", NULL);
    struct stack b1 = S("malloc", "a", "target2", "b", "target2", "after2", "main", NULL);
    struct stack b2 = S("malloc", "a", "target2", "b", NULL);
    expect(s, MS_LEAK_DEFINITE, &b0, "middle", "'...' in middle, zero frames");
    expect(s, MS_LEAK_DEFINITE, &b1, "middle", "'...' in middle needs backtracking");
    expect(s, MS_LEAK_DEFINITE, &b2, NULL, "'...' in middle, no match");
    struct stack c0 = S("calloc", "target3", NULL);
    struct stack c1 = S("calloc", "target3", "p", "q", NULL);
    struct stack c2 = S("calloc", "other", "target3", NULL);
    expect(s, MS_LEAK_DEFINITE, &c0, "end", "'...' at end, zero frames");
    expect(s, MS_LEAK_DEFINITE, &c1, "end", "'...' at end, more frames");
    expect(s, MS_LEAK_DEFINITE, &c2, NULL, "'...' at end, earlier mismatch");
    struct stack d0 = S("m1", "m2", NULL);
    struct stack d1 = S("q", "m2", "m1", "q", "q", "m2", NULL);
    struct stack d2 = S("m2", "m1", NULL);
    expect(s, MS_LEAK_DEFINITE, &d0, "multi", "several '...'");
    expect(s, MS_LEAK_DEFINITE, &d1, "multi", "several '...' with decoys");
    expect(s, MS_LEAK_DEFINITE, &d2, NULL, "several '...' order matters");
    ms_supp_set_free(s);

    /* worst case: 250 x ("...", "fun:a"), then fun:b; long stack of a */
    size_t cap = 8192;
    char *txt = malloc(cap);
    size_t o = (size_t)snprintf(txt, cap, "{\n w\n Memcheck:Leak\n");
    for (int i = 0; i < 249; i++)
        o += (size_t)snprintf(txt + o, cap - o, "...\nfun:a\n");
    o += (size_t)snprintf(txt + o, cap - o, "...\nfun:b\n}\n");
    s = ms_supp_set_new();
    char err[512] = "";
    int r = ms_supp_load_buffer(s, "w", txt, o, err, sizeof err);
    ok(r == 0, "500-frame-line entry loads");
    if (r)
        diag("%s", err);
    enum { NS = 2000 };
    struct ms_supp_frame *fr = calloc(NS, sizeof *fr);
    for (int i = 0; i < NS; i++)
        fr[i].fn = "a";
    double t0 = now();
    struct ms_supp_entry *e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, NS);
    fr[NS - 1].fn = "b";
    struct ms_supp_entry *e2 = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, NS);
    double dt = now() - t0;
    ok(e == NULL && e2 != NULL && dt < 20.0,
       "many '...' against 2000 frames is polynomial (%.3f s)", dt);
    free(fr);
    free(txt);
    ms_supp_set_free(s);
}

static void test_leak_kinds(void)
{
    const char *t =
        "{\n dp\n Memcheck:Leak\n match-leak-kinds: definite,possible\n fun:f1\n}\n"
        "{\n all\n Memcheck:Leak\n match-leak-kinds: all\n fun:f2\n}\n"
        "{\n none\n Memcheck:Leak\n match-leak-kinds: none\n fun:f3\n}\n"
        "{\n reach\n Memcheck:Leak\n match-leak-kinds:reachable\n fun:f4\n}\n"
        "{\n missing\n Memcheck:Leak\n fun:f5\n}\n"
        "{\n spaced\n Memcheck:Leak\n match-leak-kinds:  indirect , reachable \n fun:f6\n}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "match-leak-kinds entries load");
    if (!s)
        return;
    static const char *want[6][4] = {
        /* definite indirect possible reachable */
        { "dp", NULL, "dp", NULL },
        { "all", "all", "all", "all" },
        { NULL, NULL, NULL, NULL },
        { NULL, NULL, NULL, "reach" },
        { "missing", "missing", "missing", "missing" },
        { NULL, "spaced", NULL, "spaced" },
    };
    static const char *fns[6] = { "f1", "f2", "f3", "f4", "f5", "f6" };
    int good = 1;
    for (int i = 0; i < 6; i++) {
        struct stack st = S(fns[i], "main", NULL);
        for (int k = 0; k < 4; k++) {
            const char *got = mname(s, (enum ms_leak_kind)k, &st);
            const char *w = want[i][k] ? want[i][k] : "(none)";
            if (strcmp(got, w) != 0) {
                good = 0;
                diag("%s kind %d: want %s got %s", fns[i], k, w, got);
            }
        }
    }
    ok(good, "match-leak-kinds filtering (list, all, none, missing, spaces)");
    struct ms_supp_entry *e = NULL;
    unsigned masks[6];
    int i = 0;
    while ((e = ms_supp_next(s, e)) != NULL && i < 6)
        masks[i++] = ms_supp_entry_leak_kinds(e);
    ok(i == 6 && masks[0] == 5 && masks[1] == 15 && masks[2] == 0 &&
       masks[3] == 8 && masks[4] == 15 && masks[5] == 10,
       "ms_supp_entry_leak_kinds masks");
    ok(strcmp(ms_supp_leak_kind_name(MS_LEAK_DEFINITE), "definite") == 0 &&
       strcmp(ms_supp_leak_kind_name(MS_LEAK_REACHABLE), "reachable") == 0 &&
       ms_supp_leak_kind_name((enum ms_leak_kind)9) == NULL,
       "ms_supp_leak_kind_name");
    ms_supp_set_free(s);
}

static void test_mangled(void)
{
    const char *t =
        "{\n by_mangled\n Memcheck:Leak\n fun:_Znwm\n fun:_Z*foo*\n}\n"
        "{\n by_demangled\n Memcheck:Leak\n fun:operator new[](unsigned long)\n"
        " fun:bar::baz(int)\n}\n"
        "{\n demangled_glob\n Memcheck:Leak\n fun:operator new*\n fun:ns::*\n}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "mangled/demangled entries load");
    if (!s)
        return;
    struct stack st;
    memset(&st, 0, sizeof st);
    st.n = 2;
    st.f[0].fn = "operator new(unsigned long)";
    st.f[0].fn_mangled = "_Znwm";
    st.f[1].fn = "ns::foo(int)";
    st.f[1].fn_mangled = "_ZN2ns3fooEi";
    expect(s, MS_LEAK_DEFINITE, &st, "by_mangled", "fun: matches mangled name");
    st.f[1].fn_mangled = "_ZN2ns3barEi";
    st.f[1].fn = "ns::bar(int)";
    expect(s, MS_LEAK_DEFINITE, &st, "demangled_glob", "fun: glob matches demangled name");
    st.f[0].fn = "operator new[](unsigned long)";
    st.f[0].fn_mangled = "_Znam";
    st.f[1].fn = "bar::baz(int)";
    st.f[1].fn_mangled = "_ZN3bar3bazEi";
    expect(s, MS_LEAK_DEFINITE, &st, "by_demangled", "fun: matches demangled name with spaces/parens");
    st.f[0].fn = NULL;
    expect(s, MS_LEAK_DEFINITE, &st, NULL, "demangled name absent: only mangled tried");
    st.f[0].fn = "operator new[](unsigned long)";
    st.f[0].fn_mangled = NULL;
    expect(s, MS_LEAK_DEFINITE, &st, "by_demangled", "mangled absent: demangled tried");
    ms_supp_set_free(s);
}

static void test_tools_and_kinds(void)
{
    const char *t =
        "{\n tl\n Memcheck,Addrcheck:Leak\n fun:tl\n}\n"
        "{\n addr_only\n Addrcheck:Leak\n fun:ao\n}\n"
        "{\n helgrind\n Helgrind:Race\n this is { not } parsed\n anything:goes\n}\n"
        "{\n core\n core:PThread\n fun:x\n}\n"
        "{\n freeit\n Memcheck:Free\n fun:free\n fun:oops\n}\n"
        "{\n leak_oops\n Memcheck:Leak\n fun:free\n fun:oops\n}\n"
        "{\n cond\n Memcheck:Value0\n fun:c\n}\n"
        "{\n param\n Memcheck:Param\n write(buf)\n fun:write\n}\n"
        "{\n fishy\n Memcheck:FishyValue\n malloc(size)\n fun:malloc\n fun:fish\n}\n"
        "{\n fishy2\n Memcheck:FishyValue\n fun:malloc\n fun:fish2\n}\n"
        "{\n addr8\n Memcheck:Addr8\n obj:*\n}\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "tool lists and kinds load");
    if (!s)
        return;
    ok(ms_supp_set_count(s) == 8, "non-Memcheck entries skipped (count %zu)",
       ms_supp_set_count(s));
    struct stack a = S("tl", NULL), b = S("ao", NULL), x = S("x", NULL);
    expect(s, MS_LEAK_DEFINITE, &a, "tl", "Memcheck,Addrcheck:Leak applies");
    expect(s, MS_LEAK_DEFINITE, &b, NULL, "Addrcheck-only entry ignored");
    expect(s, MS_LEAK_DEFINITE, &x, NULL, "core entry ignored");
    struct stack f = S("free", "oops", "main", NULL);
    expect(s, MS_LEAK_DEFINITE, &f, "leak_oops", "Memcheck:Free never matches leaks");
    struct ms_supp_entry *e = ms_supp_match_error(s, "Free", f.f, f.n);
    ok(e && strcmp(ms_supp_entry_name(e), "freeit") == 0, "match_error Free");
    e = ms_supp_match_error(s, "Memcheck:Free", f.f, f.n);
    ok(e && strcmp(ms_supp_entry_name(e), "freeit") == 0, "match_error Memcheck:Free");
    ok(ms_supp_match_error(s, "Helgrind:Free", f.f, f.n) == NULL,
       "match_error other tool gives NULL");
    ok(ms_supp_match_error(s, "Bogus", f.f, f.n) == NULL &&
       ms_supp_match_error(s, NULL, f.f, f.n) == NULL,
       "match_error unknown/NULL kind gives NULL");
    e = ms_supp_match_error(s, "Leak", f.f, f.n);
    ok(e && strcmp(ms_supp_entry_name(e), "leak_oops") == 0, "match_error Leak");
    struct stack c = S("c", NULL);
    e = ms_supp_match_error(s, "Cond", c.f, c.n);
    ok(e && strcmp(ms_supp_entry_kind(e), "Value0") == 0, "Value0 is Cond");
    struct stack w = S("write", "main", NULL);
    ok(ms_supp_match_error(s, "Param", w.f, w.n) != NULL, "Param without extra compare");
    ok(ms_supp_match_error_ex(s, "Param", "write(buf)", w.f, w.n) != NULL,
       "Param with matching extra");
    ok(ms_supp_match_error_ex(s, "Param", "read(buf)", w.f, w.n) == NULL,
       "Param with other extra");
    struct stack fi = S("malloc", "fish", NULL), fi2 = S("malloc", "fish2", NULL);
    ok(ms_supp_match_error_ex(s, "FishyValue", "malloc(size)", fi.f, fi.n) != NULL,
       "FishyValue with extra line");
    ok(ms_supp_match_error(s, "FishyValue", fi2.f, fi2.n) != NULL &&
       ms_supp_match_error_ex(s, "FishyValue", "malloc(size)", fi2.f, fi2.n) == NULL,
       "FishyValue without extra line");
    struct stack a8;
    memset(&a8, 0, sizeof a8);
    a8.n = 1;
    ok(ms_supp_match_error(s, "Addr8", a8.f, a8.n) != NULL &&
       ms_supp_match_error(s, "Addr4", a8.f, a8.n) == NULL,
       "Addr8 vs Addr4; obj:* matches unknown object");
    ms_supp_set_free(s);
}

static void test_lsan(void)
{
    const char *t =
        "# LSan file\n"
        "leak:libfoo.so\n"
        "leak:^start_anchor\n"
        "leak:end_anchor$\n"
        "leak:^whole$\n"
        "leak:mid*dle\n"
        "leak:mangledname\n"
        "leak:^/src/lsan_file.c$\n"
        "called_from_lib:libbar.so\n"
        "race:ignored\n";
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "LSan file loads");
    if (!s)
        return;
    ok(ms_supp_set_count(s) == 7, "other sanitizer types dropped");
    struct ms_supp_frame fr[3];
    memset(fr, 0, sizeof fr);
    fr[0].fn = "malloc";
    fr[0].obj = "/lib/libasan.so";
    fr[1].fn = "g";
    fr[1].obj = "/opt/lib/libfoo.so.2";
    fr[2].fn = "main";
    struct ms_supp_entry *e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, 3);
    ok(e && strcmp(ms_supp_entry_name(e), "leak:libfoo.so") == 0 &&
       ms_supp_entry_is_lsan(e) && strcmp(ms_supp_entry_kind(e), "leak") == 0 &&
       ms_supp_entry_line(e) == 2,
       "LSan substring on module path");
    ok(ms_supp_match_leak(s, MS_LEAK_REACHABLE, fr, 3) == e &&
       ms_supp_match_leak(s, MS_LEAK_INDIRECT, fr, 3) == e,
       "LSan entries match every kind");
    ok(ms_supp_match_error(s, "Leak", fr, 3) == NULL, "LSan entries not used by match_error");
    fr[1].obj = "/opt/lib/libfoo.s";
    ok(ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, 3) == NULL, "LSan module no match");

    struct {
        const char *fn, *mangled, *obj, *file, *want;
    } cases[] = {
        { "start_anchor_x", NULL, NULL, NULL, "leak:^start_anchor" },
        { "x_start_anchor", NULL, NULL, NULL, NULL },
        { "x_end_anchor", NULL, NULL, NULL, "leak:end_anchor$" },
        { "end_anchor_x", NULL, NULL, NULL, NULL },
        { "end_anchor_end_anchor", NULL, NULL, NULL, "leak:end_anchor$" },
        { "whole", NULL, NULL, NULL, "leak:^whole$" },
        { "wholex", NULL, NULL, NULL, NULL },
        { "xwhole", NULL, NULL, NULL, NULL },
        { "a_middle_b", NULL, NULL, NULL, "leak:mid*dle" },
        { "a_mid_x_dle_b", NULL, NULL, NULL, "leak:mid*dle" },
        { "a_dle_mid_b", NULL, NULL, NULL, NULL },
        { "Demangled::name()", "_Z12mangledname", NULL, NULL, "leak:mangledname" },
        { "q", NULL, NULL, "/src/lsan_file.c", "leak:^/src/lsan_file.c$" },
        { "q", NULL, NULL, "/x/src/lsan_file.c", NULL },
        { "q", NULL, "/usr/lib/libfoo.so", NULL, "leak:libfoo.so" },
        { "q", NULL, NULL, "/x/libfoo.so.c", "leak:libfoo.so" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(fr, 0, sizeof fr);
        fr[0].fn = "malloc";
        fr[1].fn = cases[i].fn;
        fr[1].fn_mangled = cases[i].mangled;
        fr[1].obj = cases[i].obj;
        fr[1].file = cases[i].file;
        e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, 2);
        const char *got = e ? ms_supp_entry_name(e) : "(none)";
        const char *w = cases[i].want ? cases[i].want : "(none)";
        if (!ok(strcmp(got, w) == 0, "LSan rule: fn=%s mangled=%s obj=%s file=%s",
                cases[i].fn, cases[i].mangled ? cases[i].mangled : "-",
                cases[i].obj ? cases[i].obj : "-",
                cases[i].file ? cases[i].file : "-"))
            diag("want %s got %s", w, got);
    }
    ms_supp_set_free(s);

    s = load("leak:\n");
    memset(fr, 0, sizeof fr);
    fr[0].fn = "";
    ok(s && ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, 1) == NULL,
       "empty LSan pattern does not match empty/NULL names");
    fr[0].fn = "x";
    ok(s && ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, 1) != NULL,
       "empty LSan pattern matches any non-empty name");
    ms_supp_set_free(s);
    s = load("leak:*\nleak:^*$\n");
    ok(s && ms_supp_match_leak(s, MS_LEAK_DEFINITE, fr, 1) != NULL,
       "LSan '*' pattern");
    ms_supp_set_free(s);
}

static void test_mixed(void)
{
    const char *t =
        "# mixed file\r\n"
        "leak:first_lsan\r\n"
        "\r\n"
        "  {  \r\n"
        "\t vg_one\r\n"
        "   Memcheck:Leak\r\n"
        "   # a comment inside an entry\r\n"
        "   fun:malloc\r\n"
        "\r\n"
        "   fun:first_lsan\r\n"
        "  }\r\n"
        "   # indented comment\n"
        "leak:second_lsan\n"
        "{\n vg two  \n Memcheck:Leak\n fun:malloc\n fun:vg2\n}";   /* no final newline */
    struct ms_supp_set *s = load(t);
    ok(s != NULL, "mixed valgrind/LSan file with CRLF, comments, indentation loads");
    if (!s)
        return;
    ok(ms_supp_set_count(s) == 4, "4 entries");
    struct stack a = S("malloc", "first_lsan", NULL);
    expect(s, MS_LEAK_DEFINITE, &a, "leak:first_lsan", "first entry in load order wins");
    struct stack b = S("malloc", "vg2", NULL);
    expect(s, MS_LEAK_DEFINITE, &b, "vg two", "name keeps inner spaces, trailing stripped");
    struct stack c = S("malloc", "x", "second_lsan", NULL);
    expect(s, MS_LEAK_DEFINITE, &c, "leak:second_lsan", "LSan after valgrind entry");
    const char *names[4];
    int i = 0;
    for (struct ms_supp_entry *e = ms_supp_next(s, NULL); e && i < 4;
         e = ms_supp_next(s, e))
        names[i++] = ms_supp_entry_name(e);
    ok(i == 4 && !strcmp(names[0], "leak:first_lsan") &&
       !strcmp(names[1], "vg_one") && !strcmp(names[2], "leak:second_lsan") &&
       !strcmp(names[3], "vg two"),
       "ms_supp_next iterates in load order");

    /* accumulating across loads */
    char err[256];
    int r = ms_supp_load_buffer(s, "second.supp", "leak:more\n", 10, err, sizeof err);
    struct stack d = S("more", NULL);
    struct ms_supp_entry *e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, d.f, d.n);
    ok(r == 0 && ms_supp_set_count(s) == 5 && e &&
       strcmp(ms_supp_entry_file(e), "second.supp") == 0,
       "entries accumulate across loads, file name per entry");
    r = ms_supp_load_buffer(s, NULL, "leak:nameless\n", 14, err, sizeof err);
    struct stack d2 = S("nameless", NULL);
    e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, d2.f, d2.n);
    ok(r == 0 && e && strcmp(ms_supp_entry_file(e), "<buffer>") == 0,
       "NULL buffer name is <buffer>");
    ok(ms_supp_load_buffer(s, "empty", "", 0, err, sizeof err) == 0 &&
       ms_supp_load_buffer(s, "empty", NULL, 0, err, sizeof err) == 0 &&
       ms_supp_load_buffer(s, "c", "# only\n\n  \n", 11, err, sizeof err) == 0 &&
       ms_supp_set_count(s) == 6,
       "empty and comment-only input");
    const char lit[] = "leak:with_trailing_nul\n";
    ok(ms_supp_load_buffer(s, "lit", lit, sizeof lit, err, sizeof err) == 0,
       "trailing NUL of a string literal accepted");
    ms_supp_set_free(s);
}

static void test_num_callers(void)
{
    struct ms_supp_set *s = ms_supp_set_new();
    char err[256];
    ok(ms_supp_set_num_callers(s, 2) == 0 && ms_supp_set_num_callers(s, -1) == -1 &&
       ms_supp_set_num_callers(NULL, 3) == -1,
       "ms_supp_set_num_callers return values");
    const char *t = "{\n long\n Memcheck:Leak\n fun:malloc\n fun:f\n fun:g\n fun:h\n}\n";
    int r = ms_supp_load_buffer(s, "n", t, strlen(t), err, sizeof err);
    struct stack st = S("malloc", "f", NULL);
    expect(s, MS_LEAK_DEFINITE, &st, "long", "num_callers truncates long entries");
    ms_supp_set_num_callers(s, 0);
    const char *t2 = "{\n long2\n Memcheck:Leak\n fun:malloc\n fun:f\n fun:g2\n}\n";
    r |= ms_supp_load_buffer(s, "n", t2, strlen(t2), err, sizeof err);
    struct stack st2 = S("malloc", "f", "x", NULL);
    expect(s, MS_LEAK_DEFINITE, &st2, "long", "num_callers=0 loads full entries");
    ok(r == 0, "num_callers loads succeed");
    ms_supp_set_free(s);
}

static void test_errors(void)
{
    /* exact message from the spec */
    {
        const char *t = "# c\n{\n   n\n   Memcheck:Leak\n   fun:malloc\n\n   foo\n}\n";
        struct ms_supp_set *s = ms_supp_set_new();
        char err[512] = "";
        int r = ms_supp_load_buffer(s, "x.supp", t, strlen(t), err, sizeof err);
        if (!ok(r == -1 && strcmp(err, "memsleuth: suppressions file 'x.supp' line 7: "
                                       "expected 'fun:', 'obj:', 'src:' or '...', got 'foo'") == 0,
                "exact bad-frame-line message"))
            diag("got [%s]", err);
        ms_supp_set_free(s);
    }
    EXPECT_ERR("{\n n\n Memcheck:Leak\n fun:malloc\n", 1,
               "unterminated entry 'n': missing '}'", "unterminated entry");
    EXPECT_ERR("\n\n{\n", 3, "unterminated entry: missing '}'", "unterminated right after '{'");
    EXPECT_ERR("{\n n\n Helgrind:Race\n fun:x\n", 1, "unterminated entry 'n'",
               "unterminated skipped entry");
    EXPECT_ERR("{\n n\n fun:malloc\n}\n", 3, "missing 'tool:kind' line", "missing kind line (frame instead)");
    EXPECT_ERR("{\n n\n}\n", 3, "missing 'tool:kind' line", "missing kind line ('}')");
    EXPECT_ERR("{\n Memcheck:Leak\n fun:malloc\n}\n", 3, "missing entry name",
               "missing name (kind line taken as name)");
    EXPECT_ERR("{\n}\n", 2, "has no name", "'}' right after '{'");
    EXPECT_ERR("{\n n\n MemcheckLeak\n fun:a\n}\n", 3, "malformed 'tool1,tool2,...:kind' line",
               "tool:kind without colon");
    EXPECT_ERR("{\n n\n Memcheck:\n fun:a\n}\n", 3, "malformed", "empty kind");
    EXPECT_ERR("{\n n\n Memcheck,,X:Leak\n fun:a\n}\n", 3, "malformed", "empty tool in list");
    EXPECT_ERR("{\n n\n Mem check:Leak\n fun:a\n}\n", 3, "malformed", "space in tool");
    EXPECT_ERR("{\n n\n Memcheck:Lek\n fun:a\n}\n", 3, "unknown Memcheck suppression kind 'Lek'",
               "unknown memcheck kind");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n match-leak-kinds: definite,bogus\n fun:a\n}\n", 4,
               "unknown leak kind 'bogus'", "bad match-leak-kinds value");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n match-leak-kinds:\n fun:a\n}\n", 4,
               "empty 'match-leak-kinds:' line", "empty match-leak-kinds");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n match-leak-kinds: definite,,possible\n fun:a\n}\n", 4,
               "empty leak kind", "empty item in match-leak-kinds");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n match-leak-kinds: all,definite\n fun:a\n}\n", 4,
               "'all' must be alone", "'all' combined with others");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n fun:a\n match-leak-kinds: all\n}\n", 5,
               "must directly follow the 'Memcheck:Leak' line", "match-leak-kinds after frames");
    EXPECT_ERR("{\n n\n Memcheck:Free\n match-leak-kinds: all\n fun:a\n}\n", 4,
               "only allowed in 'Memcheck:Leak' entries", "match-leak-kinds in Free entry");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n}\n", 4, "entry 'n' has no stack", "no frame lines");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n match-leak-kinds: all\n}\n", 5, "has no stack",
               "no frame lines after match-leak-kinds");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n ...\n ...\n}\n", 6, "not only '...'", "only '...' lines");
    {
        size_t cap = 16 * 1024;
        char *t = malloc(cap);
        size_t o = (size_t)snprintf(t, cap, "{\n big\n Memcheck:Leak\n");
        for (int i = 0; i < 501; i++)
            o += (size_t)snprintf(t + o, cap - o, " fun:f%d\n", i);
        o += (size_t)snprintf(t + o, cap - o, "}\n");
        expect_err(t, o, 504, "too many frame lines in entry 'big' (the limit is 500)",
                   "501 frame lines");
        free(t);
    }
    EXPECT_ERR("{\n n\n Memcheck:Leak\n src:a.c:12x\n}\n", 4, "bad line number '12x'", "src: bad line");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n src:a.c:\n}\n", 4, "missing line number", "src: empty line");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n src:a.c:0\n}\n", 4, "line number 0", "src: line 0");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n src:a.c:99999999999\n}\n", 4, "too large",
               "src: line too large");
    EXPECT_ERR("{ n\n Memcheck:Leak\n fun:a\n}\n", 1, "'{' must be alone on its line", "junk after '{'");
    EXPECT_ERR("{\n n\n Memcheck:Leak\n fun:a\n{\n m\n Memcheck:Leak\n fun:b\n}\n", 5,
               "unexpected '{' inside entry 'n' started at line 1 (missing '}'?)",
               "'{' inside entry (missing '}')");
    EXPECT_ERR("{\n{\n", 2, "unexpected '{' inside the entry started at line 1",
               "'{' as name line");
    EXPECT_ERR("{\n n\n Helgrind:Race\n{\n", 4, "unexpected '{' inside entry 'n'",
               "'{' inside skipped entry");
    EXPECT_ERR("leak:a\n}\n", 2, "unexpected '}' outside an entry", "stray '}'");
    EXPECT_ERR("\nfun:malloc\n", 2, "'fun:' line outside a '{ ... }' entry", "fun: outside entry");
    EXPECT_ERR("obj:x\n", 1, "'obj:' line outside", "obj: outside entry");
    EXPECT_ERR("match-leak-kinds: all\n", 1, "'match-leak-kinds:' line outside",
               "match-leak-kinds outside entry");
    EXPECT_ERR("...\n", 1, "'...' line outside", "'...' outside entry");
    EXPECT_ERR("hello world\n", 1,
               "expected '{', a '#' comment or a sanitizer line such as 'leak:PATTERN', "
               "got 'hello world'", "garbage line outside");
    EXPECT_ERR("Memcheck:Leak\n", 1, "got 'Memcheck:Leak'", "kind line outside entry");
    EXPECT_ERR(":x\n", 1, "got ':x'", "empty sanitizer type");
    EXPECT_ERR("{\n n\n Memcheck:Param\n fun:write\n}\n", 4, "missing system call parameter line",
               "Param without parameter line");
    EXPECT_ERR("{\n n\n Memcheck:Param\n}\n", 4, "missing system call parameter line",
               "Param with nothing");
    EXPECT_ERR("{\n n\n Memcheck:FishyValue\n mallocsize\n fun:a\n}\n", 4,
               "malformed 'FishyValue' line", "FishyValue bad extra line");
    EXPECT_ERR("leak:ok\n\x01\x02\xff garbage\n", 2, "got '\\x01\\x02\\xff garbage'",
               "non-printable bytes escaped in message");
    {
        char t[400];
        memset(t, 'g', sizeof t);
        memcpy(t + sizeof t - 2, "\n", 2);
        expect_err(t, strlen(t), 1, "'gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg...'",
                   "long excerpt cut to 60 bytes");
    }
    {
        static const char t[] = "leak:a\nleak:b\0c\nleak:d\n";
        expect_err(t, sizeof t - 1, 2, "NUL byte in line", "NUL byte inside a line");
    }
    {
        size_t n = 1024 * 1024;
        char *t = malloc(n + 32);
        memcpy(t, "leak:ok\n", 8);
        memset(t + 8, 'x', n);
        memcpy(t + 8 + n, "\nleak:z\n", 8);
        expect_err(t, n + 16, 2, "line too long (1048576 bytes; the limit is 65536)",
                   "1 MB line");
        /* exactly the limit is fine */
        struct ms_supp_set *s = ms_supp_set_new();
        char err[256] = "";
        memcpy(t, "leak:", 5);
        memset(t + 5, 'y', MS_SUPP_MAX_LINE - 5);
        t[MS_SUPP_MAX_LINE] = '\n';
        int r = ms_supp_load_buffer(s, "lim", t, MS_SUPP_MAX_LINE + 1, err, sizeof err);
        ok(r == 0 && ms_supp_set_count(s) == 1, "line of exactly MS_SUPP_MAX_LINE bytes accepted");
        t[MS_SUPP_MAX_LINE] = 'y';
        t[MS_SUPP_MAX_LINE + 1] = '\n';
        r = ms_supp_load_buffer(s, "lim", t, MS_SUPP_MAX_LINE + 2, err, sizeof err);
        ok(r == -1 && strstr(err, "line too long") && ms_supp_set_count(s) == 1,
           "line of MS_SUPP_MAX_LINE + 1 bytes rejected");
        ms_supp_set_free(s);
        free(t);
    }

    /* err handling */
    {
        struct ms_supp_set *s = ms_supp_set_new();
        char small[16];
        memset(small, 'Q', sizeof small);
        int r = ms_supp_load_buffer(s, "x.supp", "bad\n", 4, small, sizeof small);
        ok(r == -1 && strlen(small) == sizeof small - 1 &&
           strncmp(small, "memsleuth: supp", 15) == 0,
           "small err buffer: truncated and NUL-terminated");
        char one[1] = { 'Q' };
        r = ms_supp_load_buffer(s, "x.supp", "bad\n", 4, one, 0);
        ok(r == -1 && one[0] == 'Q', "errlen 0 writes nothing");
        ok(ms_supp_load_buffer(s, "x.supp", "bad\n", 4, NULL, 0) == -1, "NULL err accepted");
        char err[256];
        ok(ms_supp_load_buffer(NULL, "x", "leak:a", 6, err, sizeof err) == -1 &&
           strstr(err, "invalid argument"),
           "NULL set rejected");
        ok(ms_supp_load_buffer(s, "x", NULL, 5, err, sizeof err) == -1,
           "NULL buffer with length rejected");
        ok(ms_supp_load_file(s, NULL, err, sizeof err) == -1, "NULL path rejected");
        ms_supp_set_free(s);
    }
    /* name quoting */
    {
        struct ms_supp_set *s = ms_supp_set_new();
        char err[256];
        int r = ms_supp_load_buffer(s, "we\nird", "bad\n", 4, err, sizeof err);
        ok(r == -1 && strncmp(err, "memsleuth: suppressions file 'we\\x0aird' line 1:", 48) == 0,
           "file name with newline escaped in message");
        ms_supp_set_free(s);
    }
}

static void test_rollback(void)
{
    struct ms_supp_set *s = load("{\n keep\n Memcheck:Leak\n fun:keep\n}\n");
    if (!ok(s != NULL, "rollback: initial load"))
        return;
    char err[256];
    const char *bad =
        "{\n gone1\n Memcheck:Leak\n fun:gone\n}\n"
        "leak:gone2\n"
        "{\n gone3\n Memcheck:Leak\n fun:x\n";     /* unterminated */
    int r = ms_supp_load_buffer(s, "bad", bad, strlen(bad), err, sizeof err);
    struct stack g = S("gone", NULL), k = S("keep", NULL);
    ok(r == -1 && ms_supp_set_count(s) == 1 &&
       ms_supp_match_leak(s, MS_LEAK_DEFINITE, g.f, g.n) == NULL &&
       ms_supp_match_leak(s, MS_LEAK_DEFINITE, k.f, k.n) != NULL,
       "failed load leaves the set unchanged");
    /* many failing loads do not grow memory unboundedly (checked by ASan
       leak detection) and the set still works afterwards */
    for (int i = 0; i < 200; i++)
        ms_supp_load_buffer(s, "bad", bad, strlen(bad), NULL, 0);
    r = ms_supp_load_buffer(s, "good", "leak:gone\n", 10, err, sizeof err);
    ok(r == 0 && ms_supp_set_count(s) == 2 &&
       ms_supp_match_leak(s, MS_LEAK_DEFINITE, g.f, g.n) != NULL,
       "set usable after failed loads");
    ms_supp_set_free(s);
}

static void test_counting(void)
{
    const char *t =
        "{\n a\n Memcheck:Leak\n fun:fa\n}\n"
        "{\n b\n Memcheck:Leak\n fun:fb\n}\n"
        "leak:fc\n"
        "{\n d\n Memcheck:Leak\n fun:fd\n}\n";
    struct ms_supp_set *s = load(t);
    if (!ok(s != NULL, "counting: load"))
        return;
    unsigned long c, by, bl;
    ok(ms_supp_next_used(s, NULL, &c, &by, &bl) == NULL, "nothing used initially");
    struct stack fa = S("fa", NULL), fc = S("fc", NULL), fd = S("fd", NULL);
    struct ms_supp_entry *ea = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fa.f, fa.n);
    struct ms_supp_entry *ec = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fc.f, fc.n);
    struct ms_supp_entry *ed = ms_supp_match_leak(s, MS_LEAK_DEFINITE, fd.f, fd.n);
    ok(ms_supp_next_used(s, NULL, NULL, NULL, NULL) == NULL, "matching alone does not count");
    ms_supp_count(ea, 100, 2);
    ms_supp_count(ea, 28, 1);
    ms_supp_count(ec, 7, 1);
    ms_supp_count(ed, 0, 0);
    ms_supp_count(NULL, 1, 1);
    struct ms_supp_entry *e = ms_supp_next_used(s, NULL, &c, &by, &bl);
    ok(e == ea && c == 2 && by == 128 && bl == 3, "first used entry a: 2 uses, 128 bytes, 3 blocks");
    e = ms_supp_next_used(s, e, &c, &by, &bl);
    ok(e == ec && c == 1 && by == 7 && bl == 1 &&
       strcmp(ms_supp_entry_name(e), "leak:fc") == 0,
       "next used entry skips unused b, is the LSan line");
    e = ms_supp_next_used(s, e, &c, &by, &bl);
    ok(e == ed && c == 1 && by == 0 && bl == 0, "entry counted with zero bytes is used");
    ok(ms_supp_next_used(s, e, &c, &by, &bl) == NULL, "end of used entries");
    ms_supp_count(ea, ULONG_MAX, ULONG_MAX);
    ms_supp_entry_counts(ea, &c, &by, &bl);
    ok(c == 3 && by == ULONG_MAX && bl == ULONG_MAX, "counters saturate");
    struct ms_supp_set *other = load("leak:x\n");
    ok(ms_supp_next_used(other, ea, &c, &by, &bl) == NULL &&
       ms_supp_next(other, ea) == NULL,
       "foreign entry as prev gives NULL");
    ms_supp_set_free(other);
    ms_supp_reset_counts(s);
    ok(ms_supp_next_used(s, NULL, &c, &by, &bl) == NULL, "reset_counts clears usage");
    ms_supp_entry_counts(NULL, &c, &by, &bl);
    ok(c == 0 && by == 0 && bl == 0, "counts of NULL entry are 0");
    ms_supp_set_free(s);
}

static int roundtrip(enum ms_leak_kind kind, const struct ms_supp_frame *f, int n,
                     const char *desc)
{
    char buf[1 << 17];
    int len = ms_supp_format_leak(buf, sizeof buf, kind, f, n);
    struct ms_supp_set *s = ms_supp_set_new();
    char err[512] = "";
    int r = len > 0 && (size_t)len < sizeof buf
                ? ms_supp_load_buffer(s, "gen", buf, (size_t)len, err, sizeof err)
                : -2;
    struct ms_supp_entry *e = ms_supp_match_leak(s, kind, f, n);
    int other_kind_ok = 1;
    for (int k = 0; k < 4; k++)
        if (k != (int)kind && ms_supp_match_leak(s, (enum ms_leak_kind)k, f, n))
            other_kind_ok = 0;
    int good = r == 0 && e != NULL && other_kind_ok &&
               strcmp(ms_supp_entry_name(e), "<insert_a_suppression_name_here>") == 0;
    if (!ok(good, "format_leak round trip: %s", desc))
        diag("len=%d r=%d err=%s text=%.300s", len, r, err, buf);
    ms_supp_set_free(s);
    return good;
}

static void test_format(void)
{
    struct ms_supp_frame f[4];
    memset(f, 0, sizeof f);
    f[0].fn = "malloc";
    f[0].obj = "/usr/lib/valgrind/vgpreload.so";
    f[1].fn = "main";
    f[1].fn_mangled = NULL;
    char buf[512];
    int n = ms_supp_format_leak(buf, sizeof buf, MS_LEAK_DEFINITE, f, 2);
    const char *want =
        "{\n"
        "   <insert_a_suppression_name_here>\n"
        "   Memcheck:Leak\n"
        "   match-leak-kinds: definite\n"
        "   fun:malloc\n"
        "   fun:main\n"
        "}\n";
    if (!ok(n == (int)strlen(want) && strcmp(buf, want) == 0, "format_leak exact text"))
        diag("got [%s]", buf);

    f[0].fn = "operator new(unsigned long)";
    f[0].fn_mangled = "_Znwm";
    f[1].fn = NULL;
    f[1].obj = "/usr/lib/libx.so.1";
    f[2].fn = "";
    f[2].fn_mangled = "";
    n = ms_supp_format_leak(buf, sizeof buf, MS_LEAK_POSSIBLE, f, 3);
    want = "{\n"
           "   <insert_a_suppression_name_here>\n"
           "   Memcheck:Leak\n"
           "   match-leak-kinds: possible\n"
           "   fun:_Znwm\n"
           "   obj:/usr/lib/libx.so.1\n"
           "   obj:*\n"
           "}\n";
    if (!ok(n == (int)strlen(want) && strcmp(buf, want) == 0,
            "format_leak: mangled preferred, obj: fallback, obj:* for unknown"))
        diag("got [%s]", buf);

    char small[10];
    int full = n;
    n = ms_supp_format_leak(small, sizeof small, MS_LEAK_POSSIBLE, f, 3);
    ok(n == full && strlen(small) == 9 && strncmp(small, want, 9) == 0,
       "format_leak snprintf semantics (truncated, NUL-terminated, full length)");
    ok(ms_supp_format_leak(NULL, 0, MS_LEAK_POSSIBLE, f, 3) == full,
       "format_leak with NULL buffer gives length");
    buf[0] = 'x';
    ok(ms_supp_format_leak(buf, sizeof buf, MS_LEAK_DEFINITE, f, 0) == -1 && buf[0] == 0 &&
       ms_supp_format_leak(buf, sizeof buf, MS_LEAK_DEFINITE, NULL, 2) == -1,
       "format_leak bad arguments");
    n = ms_supp_format_leak(buf, sizeof buf, (enum ms_leak_kind)9, f, 1);
    ok(n > 0 && strstr(buf, "match-leak-kinds") == NULL, "format_leak bad kind: no kinds line");

    /* round trips */
    roundtrip(MS_LEAK_DEFINITE, f, 3, "mangled + obj + unknown");
    memset(f, 0, sizeof f);
    f[0].fn = "calloc";
    f[1].fn = "ns::tmpl<char*, int>::fn(char const*) const";
    f[2].fn = "weird\\name*?with\tctl\nand trailing  ";
    f[3].obj = "/path with spaces/lib.so ";
    roundtrip(MS_LEAK_INDIRECT, f, 4, "demangled names with '*', '?', '\\', control chars, blanks");
    memset(f, 0, sizeof f);
    f[0].fn = "realloc";
    f[1].fn = " leading";
    f[2].fn = "#hash";
    f[3].fn = "}";
    roundtrip(MS_LEAK_REACHABLE, f, 4, "leading blank, '#', '}' names");
    {
        size_t L = 100000;
        char *longname = malloc(L + 1);
        memset(longname, 'n', L);
        longname[L] = 0;
        longname[5] = '\\';
        memset(f, 0, sizeof f);
        f[0].fn = "malloc";
        f[1].fn = longname;
        roundtrip(MS_LEAK_DEFINITE, f, 2, "100 kB name is cut with '*'");
        free(longname);
    }
    {
        enum { N = 600 };
        struct ms_supp_frame *ff = calloc(N, sizeof *ff);
        for (int i = 0; i < N; i++)
            ff[i].fn = (i % 2) ? "odd" : "even";
        roundtrip(MS_LEAK_DEFINITE, ff, N, "600 frames capped at 500");
        free(ff);
    }

    /* format_error */
    memset(f, 0, sizeof f);
    f[0].fn = "free";
    f[1].fn = "main";
    n = ms_supp_format_error(buf, sizeof buf, "Free", NULL, f, 2);
    want = "{\n   <insert_a_suppression_name_here>\n   Memcheck:Free\n   fun:free\n   fun:main\n}\n";
    ok(n == (int)strlen(want) && strcmp(buf, want) == 0, "format_error Free text");
    struct ms_supp_set *s = load(buf);
    ok(s && ms_supp_match_error(s, "Free", f, 2) != NULL &&
       ms_supp_match_leak(s, MS_LEAK_DEFINITE, f, 2) == NULL,
       "format_error Free round trip");
    ms_supp_set_free(s);
    f[0].fn = "write";
    n = ms_supp_format_error(buf, sizeof buf, "Param", "write(buf)", f, 2);
    s = n > 0 ? load(buf) : NULL;
    ok(s && ms_supp_match_error_ex(s, "Param", "write(buf)", f, 2) != NULL,
       "format_error Param round trip");
    ms_supp_set_free(s);
    ok(ms_supp_format_error(buf, sizeof buf, "Param", NULL, f, 2) == -1 &&
       ms_supp_format_error(buf, sizeof buf, "Free", "x(y)", f, 2) == -1 &&
       ms_supp_format_error(buf, sizeof buf, "Nope", NULL, f, 2) == -1 &&
       ms_supp_format_error(buf, sizeof buf, "Param", "fun:x", f, 2) == -1 &&
       ms_supp_format_error(buf, sizeof buf, "Param", "a\nb", f, 2) == -1 &&
       ms_supp_format_error(buf, sizeof buf, "FishyValue", "nope", f, 2) == -1 &&
       ms_supp_format_error(buf, sizeof buf, "FishyValue", "f(a)", f, 2) > 0,
       "format_error argument checks");
}

static void test_hostile(const char *dir)
{
    /* deterministic binary garbage: never crash, never hang */
    unsigned long long x = 0x9e3779b97f4a7c15ULL;
    char *buf = malloc(65536);
    int loaded = 0, failed = 0;
    double t0 = now();
    for (int it = 0; it < 300; it++) {
        size_t n = (size_t)(it * 211) % 65536;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* bias towards syntax characters so the parser goes deep */
            static const char alpha[] = "{}\n\n:*?.$^#\\ \tfun:obj:src:leak:Memcheck:Leak...x\0\xff";
            buf[i] = (x & 1) ? alpha[(x >> 8) % (sizeof alpha - 1)] : (char)(x >> 16);
        }
        struct ms_supp_set *s = ms_supp_set_new();
        char err[256];
        if (ms_supp_load_buffer(s, "garbage", buf, n, err, sizeof err) == 0)
            loaded++;
        else
            failed++;
        struct stack st = S("malloc", "x", "fun", "", NULL);
        ms_supp_match_leak(s, MS_LEAK_DEFINITE, st.f, st.n);
        ms_supp_set_free(s);
    }
    ok(loaded + failed == 300, "300 random binary inputs: no crash (%d loaded, %d rejected, %.2f s)",
       loaded, failed, now() - t0);

    /* structured garbage that parses: 100k entries */
    size_t cap = 100000 * 64;
    char *big = malloc(cap);
    size_t o = 0;
    for (int i = 0; i < 100000; i++)
        o += (size_t)snprintf(big + o, cap - o,
                              "{\n e%d\n Memcheck:Leak\n fun:malloc\n fun:f%d\n}\n", i, i);
    struct ms_supp_set *s = ms_supp_set_new();
    char err[256] = "";
    t0 = now();
    int r = ms_supp_load_buffer(s, "big", big, o, err, sizeof err);
    double tl = now() - t0;
    struct stack last = S("malloc", "f99999", NULL), none = S("malloc", "zz", NULL);
    t0 = now();
    struct ms_supp_entry *e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, last.f, last.n);
    struct ms_supp_entry *e2 = ms_supp_match_leak(s, MS_LEAK_DEFINITE, none.f, none.n);
    double tm = now() - t0;
    ok(r == 0 && ms_supp_set_count(s) == 100000 && e &&
       strcmp(ms_supp_entry_name(e), "e99999") == 0 && e2 == NULL,
       "100k entries load (%.3f s) and match (%.3f s)", tl, tm);
    ms_supp_set_free(s);

    /* the same 100k entries from a file */
    char path[4096];
    snprintf(path, sizeof path, "%s/big.supp", dir);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(big, 1, o, fp);
        fclose(fp);
    }
    s = ms_supp_set_new();
    r = ms_supp_load_file(s, path, err, sizeof err);
    e = ms_supp_match_leak(s, MS_LEAK_DEFINITE, last.f, last.n);
    ok(r == 0 && ms_supp_set_count(s) == 100000 && e &&
       strcmp(ms_supp_entry_file(e), path) == 0 && ms_supp_entry_line(e) == 599996,
       "100k entries load from a file");
    if (r)
        diag("%s", err);
    ms_supp_set_free(s);
    unlink(path);
    free(big);

    /* file with a 1 MB line, NUL bytes, unterminated entry */
    struct {
        const char *name;
        const char *pre;
        size_t fill;
        char fillc;
        const char *post;
        int line;
        const char *needle;
    } files[] = {
        { "long.supp", "leak:a\nleak:b\n", 1 << 20, 'L', "\n", 3, "line too long (more than 65536 bytes)" },
        { "longlast.supp", "leak:a\n", 1 << 20, 'L', "", 2, "line too long" },
        { "nul.supp", "leak:a\n{\n n\n", 3, '\0', "\n", 4, "NUL byte in line" },
        { "unterm.supp", "leak:a\n\n{\n n\n Memcheck:Leak\n fun:x\n", 0, 0, "", 3,
          "unterminated entry 'n'" },
        { "good.supp", "{\n n\n Memcheck:Leak\n fun:x\n}", 0, 0, "", 0, NULL },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        fp = fopen(path, "wb");
        if (!fp) {
            ok(0, "cannot create %s: %s", path, strerror(errno));
            continue;
        }
        fputs(files[i].pre, fp);
        for (size_t k = 0; k < files[i].fill; k++)
            fputc(files[i].fillc, fp);
        fputs(files[i].post, fp);
        fclose(fp);
        s = ms_supp_set_new();
        memset(err, 0, sizeof err);
        r = ms_supp_load_file(s, path, err, sizeof err);
        if (files[i].needle) {
            char pre[4200];
            snprintf(pre, sizeof pre, "memsleuth: suppressions file '%s' line %d: ", path,
                     files[i].line);
            if (!ok(r == -1 && strncmp(err, pre, strlen(pre)) == 0 &&
                    strstr(err, files[i].needle) && ms_supp_set_count(s) == 0,
                    "file error: %s", files[i].name))
                diag("err=[%s]", err);
        } else {
            ok(r == 0 && ms_supp_set_count(s) == 1, "file without final newline loads");
        }
        ms_supp_set_free(s);
        unlink(path);
    }

    s = ms_supp_set_new();
    snprintf(path, sizeof path, "%s/does-not-exist.supp", dir);
    r = ms_supp_load_file(s, path, err, sizeof err);
    char want[4200];
    snprintf(want, sizeof want, "memsleuth: suppressions file '%s': cannot open: %s", path,
             strerror(ENOENT));
    if (!ok(r == -1 && strcmp(err, want) == 0, "missing file message"))
        diag("err=[%s]", err);
    r = ms_supp_load_file(s, dir, err, sizeof err);
    if (!ok(r == -1 && strstr(err, "read error: ") && strstr(err, strerror(EISDIR)),
            "directory gives a read error"))
        diag("err=[%s]", err);
    if (access("/dev/zero", R_OK) == 0) {
        t0 = now();
        r = ms_supp_load_file(s, "/dev/zero", err, sizeof err);
        ok(r == -1 && strstr(err, "line 1: ") && now() - t0 < 10.0,
           "/dev/zero fails fast: %s", err);
    }
    ok(ms_supp_set_count(s) == 0, "set still empty");
    ms_supp_set_free(s);
    free(buf);
}

static void test_oom(const char *dir)
{
#ifdef MS_TEST_WRAP_MALLOC
    /* ~100 kB: several arena chunks and vector growths */
    size_t cap = 2000 * 80;
    char *txt = malloc(cap);
    size_t o = 0;
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(txt + o, cap - o,
                              (i % 3) ? "{\n e%d\n Memcheck:Leak\n fun:malloc\n fun:f%d\n}\n"
                                      : "leak:f%d_%d\n", i, i);
    char path[4096];
    snprintf(path, sizeof path, "%s/oom.supp", dir);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(txt, 1, o, fp);
        fclose(fp);
    }
    struct stack k = S("keep", NULL), last = S("malloc", "f1999", NULL);
    for (int mode = 0; mode < 2; mode++) {
        int bad = 0, oom_seen = 0, done = 0;
        long calls;
        for (calls = 1; calls < 10000 && !done; calls++) {
            struct ms_supp_set *s = ms_supp_set_new();
            char err[512] = "";
            ms_supp_load_buffer(s, "k", "leak:keep\n", 10, NULL, 0);
            n_calls = 0;
            fail_at = calls;
            int r = mode ? ms_supp_load_file(s, path, err, sizeof err)
                         : ms_supp_load_buffer(s, "oom", txt, o, err, sizeof err);
            fail_at = 0;
            if (r == 0) {
                done = 1;
                if (ms_supp_set_count(s) != 2001 ||
                    !ms_supp_match_leak(s, MS_LEAK_DEFINITE, last.f, last.n))
                    bad = 1;
            } else {
                oom_seen++;
                if (!strstr(err, "out of memory") || ms_supp_set_count(s) != 1 ||
                    !ms_supp_match_leak(s, MS_LEAK_DEFINITE, k.f, k.n)) {
                    bad = 1;
                    diag("after failing allocation %ld: %s", calls, err);
                }
            }
            ms_supp_set_free(s);
        }
        ok(!bad && done && oom_seen > 3,
           "%s: allocation failure at each of %d points reports out of memory and rolls back",
           mode ? "load_file" : "load_buffer", oom_seen);
    }
    n_calls = 0;
    fail_at = 1;
    struct ms_supp_set *s = ms_supp_set_new();
    fail_at = 0;
    ok(s == NULL, "ms_supp_set_new returns NULL when out of memory");
    unlink(path);
    free(txt);
#else
    (void)dir;
#endif
}

static void test_more_errors(void)
{
    EXPECT_ERR("{\n n\n{\n", 3, "unexpected '{' inside entry 'n'", "'{' instead of kind line");
    EXPECT_ERR("{\n n\n Memcheck:Param\n{\n", 4, "unexpected '{' inside entry 'n'",
               "'{' instead of Param line");
    EXPECT_ERR("{\n n\n Memcheck:FishyValue\n{\n", 4, "unexpected '{' inside entry 'n'",
               "'{' instead of FishyValue line");
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/ms-supp-unit-XXXXXX";
    const char *dir;
    int made = 0;
    if (argc > 1) {
        dir = argv[1];
        mkdir(dir, 0700);
    } else {
        dir = mkdtemp(tmpl);
        if (!dir) {
            perror("mkdtemp");
            return 2;
        }
        made = 1;
    }

    test_basic();
    test_frame_types();
    test_wildcards();
    test_dots();
    test_leak_kinds();
    test_mangled();
    test_tools_and_kinds();
    test_lsan();
    test_mixed();
    test_num_callers();
    test_errors();
    test_rollback();
    test_counting();
    test_format();
    test_hostile(dir);
    test_more_errors();
    test_oom(dir);

    if (made)
        rmdir(dir);
    printf("1..%d\n", n_test);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
