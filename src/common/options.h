/* options.h - the options of `memsleuth run`, parsed the same way by the
 * launcher (which validates them and says what is wrong) and by the agent
 * (which receives them in MEMSLEUTH_OPTIONS, one option per field, fields
 * separated by MS_OPT_SEP). */
#ifndef MS_OPTIONS_H
#define MS_OPTIONS_H

#include <stddef.h>

#define MS_OPT_SEP '\x1f'

struct ms_options {
    int leak_check;          /* 0 no, 1 summary, 2 full */
    unsigned show_kinds;     /* bit (1 << kind): 0 definite 1 indirect 2 possible 3 reachable */
    unsigned error_kinds;    /* kinds that count as errors (--error-exitcode) */
    int error_exitcode;      /* 0: exit status is the program's */
    int track_fds;
    int num_callers;
    int gen_suppressions;
    int freeres;             /* let glibc/libstdc++ free their buffers before the scan */
    int malloc_fill;         /* -1 off, else the byte new blocks are filled with (valgrind's --malloc-fill) */
    int free_fill;           /* -1 off, else the byte freed blocks are filled with */
    int keep_free_stacks;    /* --keep-stacktraces=alloc-and-free: remember where blocks were freed */
    unsigned long long sample_rate; /* --sample-rate=BYTES: record one allocation per ~BYTES allocated (Poisson); 0 every one */
    char log_file[1024];     /* "" = stderr; %p = pid */
    char json_file[1024];    /* "" = none; %p = pid */
    char supp_files[4096];   /* '\n'-separated paths */
    int snapshot_signal;     /* 0 none; a live snapshot when this signal arrives */
    int snapshot_interval_ms; /* 0 none; a live snapshot every so often */
    int snapshot_peak_pct;   /* 0 off; else a snapshot when the live heap reaches this percent
                                of the largest heap a peak snapshot held (--snapshot-peak) */
    unsigned long long snapshot_peak_min; /* no peak snapshot below this many live bytes */
    int graph;               /* record the heap graph at each check (--graph=yes|no) */
    char trace_file[1024];   /* trace path pattern (%p pid, %n program name); "" = no trace */
};

/* Fill with the defaults (DESIGN.md: leak-check=full, show definite and
 * possible, num-callers 64). */
void ms_options_init(struct ms_options *o);

/* Parse one "--name=value" option.  Returns 1 if it was a run option and was
 * applied, 0 if the name is not a run option, -1 if the value is bad (err
 * gets a one-line message and the options are left as they were). */
int ms_options_parse(struct ms_options *o, const char *arg, char *err, size_t errlen);

/* Parse a kinds list: "definite,possible", "all", "none". -1 when bad. */
int ms_options_kinds(const char *s, unsigned *out);

#endif
