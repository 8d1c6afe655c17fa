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
    {
        struct ms_options d;
        ms_options_init(&d);
        check(d.snapshot_peak_pct == 150 && d.snapshot_peak_min == 64ull << 20 && d.graph == 1,
              "defaults: peak snapshots at 1.5x from 64 MiB, graph on");
    }
    check(ms_options_parse(&o, "--snapshot-peak=2", err, sizeof err) == 1 && o.snapshot_peak_pct == 200, "snapshot-peak=2");
    check(ms_options_parse(&o, "--snapshot-peak=1.25", err, sizeof err) == 1 && o.snapshot_peak_pct == 125,
          "snapshot-peak=1.25");
    check(ms_options_parse(&o, "--snapshot-peak=no", err, sizeof err) == 1 && o.snapshot_peak_pct == 0, "snapshot-peak=no");
    check(ms_options_parse(&o, "--snapshot-peak=1", err, sizeof err) == -1 && o.snapshot_peak_pct == 0,
          "snapshot-peak=1 refused (a factor must be above 1)");
    check(ms_options_parse(&o, "--snapshot-peak=2x", err, sizeof err) == -1, "snapshot-peak=2x refused");
    check(ms_options_parse(&o, "--snapshot-peak-min=8M", err, sizeof err) == 1 && o.snapshot_peak_min == 8ull << 20,
          "snapshot-peak-min=8M");
    check(ms_options_parse(&o, "--snapshot-peak-min=4096", err, sizeof err) == 1 && o.snapshot_peak_min == 4096,
          "snapshot-peak-min=4096");
    check(ms_options_parse(&o, "--snapshot-peak-min=1G", err, sizeof err) == 1 && o.snapshot_peak_min == 1ull << 30,
          "snapshot-peak-min=1G");
    check(ms_options_parse(&o, "--snapshot-peak-min=0", err, sizeof err) == -1 &&
              ms_options_parse(&o, "--snapshot-peak-min=-5M", err, sizeof err) == -1 &&
              ms_options_parse(&o, "--snapshot-peak-min=5T", err, sizeof err) == -1 && o.snapshot_peak_min == 1ull << 30,
          "snapshot-peak-min: 0, negative, unknown unit refused");
    check(ms_options_parse(&o, "--graph=no", err, sizeof err) == 1 && o.graph == 0, "graph=no");
    check(ms_options_parse(&o, "--graph=yes", err, sizeof err) == 1 && o.graph == 1, "graph=yes");
    check(ms_options_parse(&o, "--graph=maybe", err, sizeof err) == -1, "graph=maybe refused");
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
