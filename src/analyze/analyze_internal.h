/*
 * memsleuth - analyze_internal.h: what report.c, diff.c and out.c share:
 * symbolized stacks, number/time formats, JSON strings, sparklines, and the
 * option parsing common to `report` and `diff`.
 */
#ifndef MS_ANALYZE_INTERNAL_H
#define MS_ANALYZE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

#define MS_AN_VERSION "0.1.0"

/* exit statuses */
#define MS_AN_EXIT_OK     0
#define MS_AN_EXIT_OUTPUT 1   /* the output could not be written */
#define MS_AN_EXIT_USAGE  2
#define MS_AN_EXIT_INPUT  3   /* a trace could not be read, or is corrupt */

struct ms_sym;

/* --format=dump: a quoted string with \" \\ and \xNN for control and
   non-ASCII bytes: one line, stable whatever the bytes */
void ms_an_dump_str(FILE *o, struct ms_trace_str s);

/* One source frame of a symbolized stack (strings owned, NULL if unknown). */
struct ms_an_frame {
    uint64_t pc;              /* the return address as in the trace */
    char *function;           /* demangled, without a "@GLIBC_2.2.5" version */
    char *file;               /* base name */
    char *module;             /* path of the module */
    int line;                 /* 0 if unknown */
    uint64_t offset;          /* pc - 1 - bias in the module, 0 if no module */
    int inlined;              /* an inlined call inside the next frame */
};

struct ms_an_stack {
    struct ms_an_frame *f;
    size_t n;
};

/* A symbolizer loaded with the modules of a trace (MODULE records), or
   NULL if out of memory (stacks then show addresses only). */
struct ms_sym *ms_an_sym_new(const struct ms_model *m);

/* Symbolize the pcs of a site (pc - 1 for each return address), inlined
   frames expanded, innermost first.  Returns 0, or -1 out of memory. */
int ms_an_resolve(struct ms_sym *sym, const uint64_t *pcs, size_t n, struct ms_an_stack *out);
void ms_an_stack_release(struct ms_an_stack *st);

/* The frame that best names a site: the first frame outside the system's
   shared libraries with a source file:line, else the first outside them,
   else the first with a file:line, else the first.  NULL for an empty stack. */
const struct ms_an_frame *ms_an_own_frame(const struct ms_an_stack *st);

/* "function (file:line)", "function (in libfoo.so)", "0x1234 (in libfoo.so)"... */
void ms_an_frame_label(const struct ms_an_frame *f, char *buf, size_t n);
/* the label of ms_an_own_frame, "(unknown stack)" for an empty stack */
void ms_an_site_label(const struct ms_an_stack *st, char *buf, size_t n);
/* The distinguishing frame of each site of m (indexed like m->sites): the return
   address (a value of the site's pcs) of its first frame, from the allocation end,
   in the program's own code (outside the system's shared libraries; all frames
   for a site that has none) at which its chain of such frames differs from every
   other site's: two sites that reach malloc through the same xmalloc wrapper are
   named by their callers.  0 for a site without pcs; a site whose own frames
   equal another's keeps its first.  malloc'd, NULL if out of memory. */
uint64_t *ms_an_label_pcs(const struct ms_model *m);
/* the first frame of st that symbolizes label_pc (its innermost inlined one),
   else ms_an_own_frame */
const struct ms_an_frame *ms_an_label_frame(const struct ms_an_stack *st, uint64_t label_pc);
/* the label of ms_an_label_frame */
void ms_an_site_label_at(const struct ms_an_stack *st, uint64_t label_pc, char *buf, size_t n);
/* a key that identifies a site across runs (no absolute addresses);
   malloc'd, NULL if out of memory */
char *ms_an_site_key(const struct ms_an_stack *st);

/* text */
char *ms_an_bytes(char *buf, size_t n, uint64_t v);  /* "512 B", "1.5 KiB" */
char *ms_an_time(char *buf, size_t n, uint64_t ns);  /* "12.345 s", "3.2 ms" */
char *ms_an_count(char *buf, size_t n, uint64_t v);  /* "1,234,567" */
void ms_an_sparkline(FILE *o, const uint64_t *v, int n); /* one char per value: " ▁▂▃▄▅▆▇█" */
void ms_an_fit(char *s, size_t width); /* cut to width columns (UTF-8), ending with "..." */
/* control characters (a newline in an argument...) -> ' ' or '?', in place, so
   that text output keeps one item per line */
char *ms_an_clean(char *s);
void ms_an_text_stack(FILE *o, const char *indent, const struct ms_an_stack *st);
/* print text (cleaned) after first, wrapped at spaces to width columns, the
   following lines after next */
void ms_an_wrap(FILE *o, const char *first, const char *next, const char *text, int width);

/* JSON */
void ms_an_json_str(FILE *o, const char *s);          /* null for NULL; bad UTF-8 -> U+FFFD */
void ms_an_json_strn(FILE *o, const char *s, size_t n);
void ms_an_json_double(FILE *o, double v);            /* finite, else 0 */
void ms_an_json_frames(FILE *o, const struct ms_an_stack *st);

/* Options shared by report and diff. */
struct ms_an_opts {
    const char *cmd;          /* "report" or "diff" */
    const char *format;       /* "text" (default), "json", "dump", "html", "pprof",
                                 "collapsed", "xml" */
    const char *collapsed_value; /* --collapsed-value: peak (default), leaked, allocs,
                                    allocated, inuse */
    const char *out;          /* -o FILE, NULL = stdout */
    int stacks;               /* --stacks / -v: full stacks in text */
    int top;                  /* --top=N entries per list (default 10) */
    int top_set;              /* --top was given */
    int have_scale;           /* diff --scale N:M */
    uint64_t scale_a, scale_b;
    char **files;             /* the TRACE arguments */
    int nfiles;
};

/* Parse argv (argv[0] = the command).  Returns 0, or an exit status
   (MS_AN_EXIT_USAGE after a one-line message, or -1 for --help, printed). */
int ms_an_parse_opts(int argc, char **argv, struct ms_an_opts *o, const char *usage);

/* Open the output (-o FILE or stdout); NULL after a message. */
FILE *ms_an_open_out(const struct ms_an_opts *o);
/* Close it; returns MS_AN_EXIT_OUTPUT after a message if writing failed. */
int ms_an_close_out(FILE *f, const struct ms_an_opts *o);

/* Print the end-of-reading message of a trace: a warning for a cut, an
   error otherwise.  Returns 1 if it was an error. */
int ms_an_trace_status(const char *path, enum ms_trace_status st, const char *msg);

#endif /* MS_ANALYZE_INTERNAL_H */
