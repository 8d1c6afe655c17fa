/* fuzz_cli.c - libFuzzer target for the command line of `memsleuth report`
 * and `memsleuth diff` (ms_an_parse_opts in src/analyze/out.c).  The `run`
 * options go through ms_options_parse, fuzzed by fuzz_options.c.
 *
 * The input's first byte picks the command (even: report, odd: diff); the
 * rest is split into arguments at NUL bytes (at most 64).  Checked on every
 * input: the result is 0, -1 (--help) or 2 (usage); a usage error is exactly
 * one line on stderr, starting "memsleuth report: " / "memsleuth diff: ";
 * an accepted command line keeps its options in their documented ranges and
 * names one trace at least (report) or exactly two (diff); nothing is
 * written to stderr when it is accepted.  stderr/stdout are caught in memory
 * streams during the call only. */
#include "../../src/analyze/analyze_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is(const char *s, const char *a, const char *b, const char *c, const char *d,
              const char *e, const char *f, const char *g)
{
    const char *l[] = { a, b, c, d, e, f, g };
    for (int i = 0; i < 7; i++)
        if (l[i] && !strcmp(s, l[i]))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    int diff = data[0] & 1;
    char *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    char *argv[66];
    int argc = 0;
    argv[argc++] = diff ? "diff" : "report";
    for (size_t i = 0; i < size - 1 && argc < 65;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;

    struct ms_an_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = argv[0];
    char *errs = NULL, *outs = NULL;
    size_t nerr = 0, nout = 0;
    FILE *save_err = stderr, *save_out = stdout;
    FILE *me = open_memstream(&errs, &nerr), *mo = open_memstream(&outs, &nout);
    CHECK(me && mo);
    stderr = me;
    stdout = mo;
    int r = ms_an_parse_opts(argc, argv, &o, "usage text\n");
    stderr = save_err;
    stdout = save_out;
    fclose(me);
    fclose(mo);

    CHECK(r == 0 || r == -1 || r == MS_AN_EXIT_USAGE);
    if (r == MS_AN_EXIT_USAGE) {
        /* one line: "memsleuth CMD: ...\n", no other newline, nothing else */
        char pre[32];
        snprintf(pre, sizeof pre, "memsleuth %s: ", argv[0]);
        CHECK(nerr > strlen(pre) && !strncmp(errs, pre, strlen(pre)));
        CHECK(errs[nerr - 1] == '\n' && memchr(errs, '\n', nerr) == errs + nerr - 1);
        CHECK(strlen(errs) == nerr);
        CHECK(nout == 0);
    } else if (r == -1) {
        CHECK(!strcmp(outs, "usage text\n") && nerr == 0);
    } else {
        CHECK(nerr == 0 && nout == 0);
        CHECK(o.nfiles >= 1 && o.nfiles < argc && (!diff || o.nfiles == 2));
        for (int i = 0; i < o.nfiles; i++)
            CHECK(o.files[i] != NULL);
        CHECK(o.top >= 1 && o.top <= 100000);
        CHECK(is(o.format, "text", "json", diff ? NULL : "dump", diff ? NULL : "html",
                 diff ? NULL : "pprof", diff ? NULL : "collapsed", diff ? NULL : "xml"));
        CHECK(is(o.collapsed_value, "peak", "leaked", "allocs", "allocated", "inuse", NULL, NULL));
        CHECK(!o.out || o.out[0]);
        CHECK(!o.have_scale || (diff && o.scale_a && o.scale_b && o.scale_a != o.scale_b));
    }
    free(errs);
    free(outs);
    free(o.files);
    free(buf);
    return 0;
}
