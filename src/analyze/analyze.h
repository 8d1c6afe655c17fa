/*
 * memsleuth - analyze.h: the analyzer's entry points, called by the
 * `memsleuth` command (src/cli/memsleuth.c) with argv[0] = "report" or "diff".
 *
 *   memsleuth report [--format=text|json|dump|html|pprof|collapsed|xml] [-o FILE] [--stacks|-v]
 *                    [--top=N] [--collapsed-value=peak|leaked|allocs|allocated|inuse] TRACE...
 *   memsleuth diff [--format=text|json] [--scale N:M] [-o FILE] [--stacks|-v] [--top=N] A B
 *
 * Exit status: 0 done (a cut-off trace only warns), 1 the output could not be
 * written, 2 usage error, 3 a trace could not be read or is corrupt (what was
 * readable is still reported).
 */
#ifndef MS_ANALYZE_H
#define MS_ANALYZE_H

#ifdef __cplusplus
extern "C" {
#endif

int ms_report_main(int argc, char **argv);
int ms_diff_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* MS_ANALYZE_H */
