/*
 * memsleuth - libFuzzer target for src/common/supp.c.
 *
 * The input is parsed as a suppression file from memory; then a few fixed
 * stacks and a stack made from the input bytes are matched, counters are
 * exercised, and a suppression generated with ms_supp_format_leak() for the
 * input-derived stack must load back and match that stack (round trip).
 * Any violated invariant calls __builtin_trap().
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Isrc/common tests/fuzz/fuzz_supp.c src/common/supp.c -o /tmp/fuzz_supp
 *   mkdir -p /tmp/fuzz_supp_corpus
 *   /tmp/fuzz_supp -max_total_time=60 /tmp/fuzz_supp_corpus tests/fuzz/corpus_supp
 */
#include "supp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const struct ms_supp_frame fixed1[] = {
    { "malloc", "malloc", "/usr/lib/x86_64-linux-gnu/libc.so.6", "malloc.c", 3287 },
    { "foo(int)", "_Z3fooi", "/usr/lib/libfoo.so.1", "/src/foo/foo.c", 12 },
    { NULL, NULL, NULL, NULL, 0 },
    { "main", NULL, "/usr/bin/prog", "main.c", 7 },
};
static const struct ms_supp_frame fixed2[] = {
    { "operator new(unsigned long)", "_Znwm", "/usr/lib/libstdc++.so.6", NULL, 0 },
    { "std::vector<int>::push_back(int const&)", "_ZNSt6vectorIiE9push_backERKi",
      "/usr/bin/prog", "stl_vector.h", 1198 },
    { "???", NULL, "???", NULL, 0 },
};

#define MAXP 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_supp_set *s = ms_supp_set_new();
    if (!s)
        return 0;
    char err[512];
    err[0] = '\0';
    if (size > 0 && data[0] == 'N')   /* sometimes limit entries to 2 frames */
        ms_supp_set_num_callers(s, 2);
    int r = ms_supp_load_buffer(s, "fuzz.supp", (const char *)data, size, err,
                                sizeof err);
    if (r != 0) {
        CHECK(r == -1);
        CHECK(strncmp(err, "memsleuth: suppressions file 'fuzz.supp'", 40) == 0);
        CHECK(strchr(err, '\n') == NULL);
        CHECK(ms_supp_set_count(s) == 0);
    }

    for (int k = 0; k < 4; k++) {
        struct ms_supp_entry *e =
            ms_supp_match_leak(s, (enum ms_leak_kind)k, fixed1, 4);
        if (e) {
            CHECK(ms_supp_entry_leak_kinds(e) & (1u << k));
            ms_supp_count(e, 16, 1);
        }
        e = ms_supp_match_leak(s, (enum ms_leak_kind)k, fixed2, 3);
        if (e)
            ms_supp_count(e, 8, 1);
    }
    (void)ms_supp_match_error(s, "Free", fixed1, 4);
    (void)ms_supp_match_error(s, "Memcheck:Param", fixed2, 3);
    (void)ms_supp_match_error_ex(s, "Param", "write(buf)", fixed2, 3);

    /* a stack made of the input: pieces split at NUL and '\n' */
    char *copy = malloc(size + 1);
    if (!copy) {
        ms_supp_set_free(s);
        return 0;
    }
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *piece[MAXP];
    int np = 0;
    piece[np++] = copy;
    for (size_t i = 0; i < size && np < MAXP; i++) {
        if (copy[i] == '\n' || copy[i] == '\0') {
            copy[i] = '\0';
            piece[np++] = copy + i + 1;
        }
    }
    struct ms_supp_frame st[8];
    int nf = np / 4 + 1;
    if (nf > 8)
        nf = 8;
    for (int j = 0; j < nf; j++) {
        st[j].fn = piece[(4 * j) % np];
        st[j].fn_mangled = (j & 1) ? piece[(4 * j + 1) % np] : NULL;
        st[j].obj = (j % 3) ? piece[(4 * j + 2) % np] : NULL;
        st[j].file = piece[(4 * j + 3) % np];
        st[j].line = j;
    }
    for (int k = 0; k < 4; k++) {
        struct ms_supp_entry *e =
            ms_supp_match_leak(s, (enum ms_leak_kind)k, st, nf);
        if (e)
            ms_supp_count(e, 1, 1);
    }
    unsigned long c, by, bl, total = 0;
    for (struct ms_supp_entry *e = ms_supp_next_used(s, NULL, &c, &by, &bl);
         e; e = ms_supp_next_used(s, e, &c, &by, &bl)) {
        CHECK(c > 0);
        CHECK(ms_supp_entry_name(e) != NULL);
        total += c;
    }
    CHECK(total <= 12);

    /* round trip of a generated suppression */
    enum ms_leak_kind kind = (enum ms_leak_kind)(size % 4);
    int len = ms_supp_format_leak(NULL, 0, kind, st, nf);
    CHECK(len > 0);
    char *gen = malloc((size_t)len + 1);
    if (gen) {
        CHECK(ms_supp_format_leak(gen, (size_t)len + 1, kind, st, nf) == len);
        CHECK(strlen(gen) == (size_t)len);
        struct ms_supp_set *g = ms_supp_set_new();
        if (g) {
            char gerr[512];
            gerr[0] = '\0';
            int gr = ms_supp_load_buffer(g, "gen", gen, (size_t)len, gerr,
                                         sizeof gerr);
            CHECK(gr == 0);
            CHECK(ms_supp_set_count(g) == 1);
            CHECK(ms_supp_match_leak(g, kind, st, nf) != NULL);
            CHECK(ms_supp_match_leak(g, (enum ms_leak_kind)((kind + 1) % 4),
                                     st, nf) == NULL);
            ms_supp_set_free(g);
        }
        free(gen);
    }
    free(copy);
    ms_supp_set_free(s);
    return 0;
}
