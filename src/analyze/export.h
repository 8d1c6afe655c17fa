/*
 * memsleuth - export.h: the report formats for other tools (export.c:
 * collapsed stacks, valgrind XML; pprof.c: pprof profile.proto; html.c:
 * one self-contained HTML page) and the per-pc symbol cache they share.
 */
#ifndef MS_EXPORT_H
#define MS_EXPORT_H

#include <stdint.h>
#include <stdio.h>

#include "analyze_internal.h"

/* Symbolized frames of each distinct pc of a trace, resolved once.
   Entry i holds the source frames of one pc, innermost (inlined) first. */
struct ms_pcache {
    struct ms_sym *sym;
    uint64_t *key;            /* open addressing: pc, 0 = empty */
    uint32_t *val;            /* entry index */
    size_t cap;
    uint64_t *pc;             /* per entry */
    struct ms_an_stack *st;   /* per entry */
    size_t n, capn;
};

/* 0, or -1 out of memory */
int ms_pcache_init(struct ms_pcache *c, const struct ms_model *m);
void ms_pcache_free(struct ms_pcache *c);
/* the entry of pc (symbolizing it if new); SIZE_MAX when out of memory */
size_t ms_pcache_get(struct ms_pcache *c, uint64_t pc);

/* A flame-graph name for a frame: the function, else module+0xoffset, else
   0xpc; ';' -> '_', control characters -> ' '.  Written to buf. */
void ms_export_frame_name(const struct ms_an_frame *f, char *buf, size_t n);

/* --format=collapsed|pprof|xml: loads the traces itself.  Returns the exit status. */
int ms_export_main(const struct ms_an_opts *opt);
/* pprof.c: write the gzip'd profile of the models to o; 0, or -1 (message printed) */
int ms_pprof_write(FILE *o, struct ms_model **ms, const char *const *traces, size_t n);

/* html.c: before the model is shrunk, what the page needs beyond the report
   JSON (flame graph trees of peak and leaked bytes, the top sites' samples),
   as a malloc'd JSON object; NULL when out of memory. */
char *ms_html_collect(const struct ms_model *m);
/* html.c: the page: report_json is the `--format=json` report (processes in
   tree order), extra[k] what ms_html_collect gave for processes[k].
   Returns 0, or -1 out of memory. */
int ms_html_write(FILE *o, const char *report_json, size_t json_len, char *const *extra,
                  size_t n);

#endif /* MS_EXPORT_H */
