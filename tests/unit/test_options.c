/* test_options.c - unit test of src/common/options.c (TAP-style output) */
#include "../../src/common/options.h"

#include <stdio.h>
#include <string.h>

static int passed, failed;

static void check(int cond, const char *what)
{
    if (cond)
        passed++;
    else
        failed++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", passed + failed, what);
}

int main(void)
{
    struct ms_options o;
    char err[256];
    ms_options_init(&o);
    check(o.leak_check == 2 && o.show_kinds == 5 && o.error_kinds == 5 && o.num_callers == 64,
          "defaults: full, definite+possible, 64 callers");
    check(ms_options_parse(&o, "--leak-check=summary", err, sizeof err) == 1 && o.leak_check == 1, "leak-check=summary");
    check(ms_options_parse(&o, "--leak-check=no", err, sizeof err) == 1 && o.leak_check == 0, "leak-check=no");
    check(ms_options_parse(&o, "--leak-check=maybe", err, sizeof err) == -1 && strstr(err, "maybe"),
          "bad leak-check value names the value");
    check(ms_options_parse(&o, "--show-leak-kinds=all", err, sizeof err) == 1 && o.show_kinds == 15, "kinds all");
    check(ms_options_parse(&o, "--show-leak-kinds=definite,reachable", err, sizeof err) == 1 && o.show_kinds == 9,
          "kinds list");
    check(ms_options_parse(&o, "--show-leak-kinds=definite,bogus", err, sizeof err) == -1, "bad kind refused");
    check(ms_options_parse(&o, "--show-leak-kinds=none", err, sizeof err) == 1 && o.show_kinds == 0, "kinds none");
    check(ms_options_parse(&o, "--errors-for-leak-kinds=definite", err, sizeof err) == 1 && o.error_kinds == 1,
          "errors-for-leak-kinds");
    check(ms_options_parse(&o, "--error-exitcode=42", err, sizeof err) == 1 && o.error_exitcode == 42, "error-exitcode");
    check(ms_options_parse(&o, "--error-exitcode=300", err, sizeof err) == -1, "error-exitcode range");
    check(ms_options_parse(&o, "--error-exitcode=x", err, sizeof err) == -1, "error-exitcode not a number");
    check(ms_options_parse(&o, "--track-fds=yes", err, sizeof err) == 1 && o.track_fds == 1, "track-fds");
    check(ms_options_parse(&o, "--track-fds=maybe", err, sizeof err) == -1, "track-fds bad");
    check(ms_options_parse(&o, "--num-callers=12", err, sizeof err) == 1 && o.num_callers == 12, "num-callers");
    check(ms_options_parse(&o, "--num-callers=0", err, sizeof err) == -1, "num-callers range");
    check(ms_options_parse(&o, "--num-callers=500", err, sizeof err) == -1 && o.num_callers == 12,
          "a refused value leaves the option as it was (found by fuzz_options)");
    check(ms_options_parse(&o, "--log-file=/tmp/x.%p", err, sizeof err) == 1 && !strcmp(o.log_file, "/tmp/x.%p"),
          "log-file");
    check(ms_options_parse(&o, "--json=", err, sizeof err) == -1, "empty json path refused");
    check(ms_options_parse(&o, "--suppressions=a.supp", err, sizeof err) == 1 &&
              ms_options_parse(&o, "--suppressions=b.supp", err, sizeof err) == 1 &&
              !strcmp(o.supp_files, "a.supp\nb.supp"),
          "suppressions accumulate");
    check(ms_options_parse(&o, "--gen-suppressions=all", err, sizeof err) == 1 && o.gen_suppressions, "gen-suppressions");
    check(ms_options_parse(&o, "--malloc-fill=ab", err, sizeof err) == 1 && o.malloc_fill == 0xab, "malloc-fill hex");
    check(ms_options_parse(&o, "--free-fill=0", err, sizeof err) == 1 && o.free_fill == 0, "free-fill 0");
    check(ms_options_parse(&o, "--malloc-fill=1ff", err, sizeof err) == -1, "malloc-fill over a byte refused");
    check(ms_options_parse(&o, "--keep-stacktraces=alloc-and-free", err, sizeof err) == 1 && o.keep_free_stacks == 1,
          "keep-stacktraces");
    check(ms_options_parse(&o, "--keep-stacktraces=none", err, sizeof err) == -1, "keep-stacktraces bad");
    check(ms_options_parse(&o, "--frobnicate=1", err, sizeof err) == 0, "unknown option is not ours");
    check(ms_options_parse(&o, "prog", err, sizeof err) == 0, "a program name is not an option");
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "--json=", 7);
    check(ms_options_parse(&o, big, err, sizeof err) == -1, "over-long path refused");
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
