/*
 * memsleuth - model.h: the replay of one trace (one process image).
 *
 * Feed it the records of one trace (ms_model_feed, in file order), then call
 * ms_model_finish; it then holds everything the report and diff print.
 *
 * Memory: proportional to the live blocks (a hash map addr -> size, site,
 * time: 32 bytes a slot at most 70% full) plus the distinct stacks (one
 * struct ms_site each, plus their pcs), plus bounded extras: the reorder
 * window (at most MS_MODEL_REORDER_CAP events), the growth series
 * (MS_MODEL_GRID u64 for each of the first MS_MODEL_SERIES_ALL sites, then
 * for sites that hold MS_MODEL_SERIES_MIN bytes, at most MS_MODEL_SERIES_CAP
 * sites), modules and forks (capped).  Never
 * proportional to the number of events.
 *
 * Definitions (also printed in the JSON "definitions" object):
 *  - site: one stack id of the trace (the stack of the allocation).
 *  - temporary: a block freed within MS_MODEL_TEMP_NS (1 ms) of its
 *    allocation (a block that realloc moves that soon counts too; blocks a
 *    forked child inherited never do).
 *  - live bytes over time: every ALLOC adds its size at its time, every FREE
 *    takes it away at its time.  ALLOC/FREE matching follows the file order
 *    (the format guarantees it per address); the curve follows the records'
 *    times: records are merged in time order through a reorder window of
 *    MS_MODEL_REORDER_NS (250 ms, the format allows ~100 ms of disorder);
 *    records later than that are applied when they come and counted as
 *    "late" (the peak is then approximate; the report says so).
 *  - peak heap: the maximum of the live bytes, and the time it was first
 *    reached.  Blocks inherited by a forked child (ALLOC with fn bit 64)
 *    count as live from time 0 and are not allocation calls.
 *  - the image ended by exec when its last EXEC record is followed by no
 *    record but ALLOC/FREE (the agent flushes its event buffers after it);
 *    an EXEC followed by anything else (a SAMPLE...) failed.
 *  - top_peak: each site's live bytes at the moment of the peak, computed in
 *    the same single pass, exactly: every site remembers its value at the
 *    last peak the first time it changes after that peak (an epoch counter
 *    bumped at each new peak), so nothing is copied when the peak moves.
 *  - samples: live bytes at 64 times spread over the run, from 0 to the
 *    last ALLOC/FREE record (the exit check that follows, which can take a
 *    while, is not part of the run).  The model keeps a grid of
 *    MS_MODEL_GRID (128) equal steps w that doubles (pairs of cells merge)
 *    whenever the run outgrows it, so at the end the run covers 65..128
 *    cells; sample i is the exact value at cell ceil((i+1)*n/64), i.e. at a
 *    time within one cell (< 1/64 of the run) after the nominal point
 *    (i+1)/64 of the run; the last sample is the state at the end.  The
 *    first MS_MODEL_SERIES_ALL sites get a series at their first allocation;
 *    later ones when their live bytes reach MS_MODEL_SERIES_MIN (1 KiB),
 *    their earlier samples reading 0.
 *  - growth suspect: see ms_model_finish in model.c (slope, non-shrinking
 *    intervals, share of the end state, minimum number of increases).
 */
#ifndef MS_MODEL_H
#define MS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "trace_read.h"

#define MS_MODEL_TEMP_NS      1000000ull      /* temporary: freed within 1 ms */
#define MS_MODEL_REORDER_NS   250000000ull    /* reorder window: 250 ms */
#define MS_MODEL_REORDER_CAP  (1u << 20)      /* events held at most in the window */
#define MS_MODEL_GRID         128             /* grid cells of the series */
#define MS_MODEL_SAMPLES      64              /* samples reported */
#define MS_MODEL_SERIES_ALL   4096            /* the first sites get a series at once */
#define MS_MODEL_SERIES_MIN   1024            /* later ones when their live bytes reach this */
#define MS_MODEL_SERIES_CAP   16384           /* series kept at most */
#define MS_MODEL_END_SAMPLES  8               /* end state: the highest of the last 8
                                                 samples before the end */
#define MS_MODEL_MAX_MODULES  100000
#define MS_MODEL_MAX_FORKS    100000
#define MS_MODEL_MAX_SNAPSHOTS 10000

/* Growth suspect thresholds (ms_model_finish). */
#define MS_GROWTH_MIN_INC        8     /* increases among the 62 intervals before END */
#define MS_GROWTH_MIN_STEADY     0.8   /* fraction of intervals that did not shrink */
#define MS_GROWTH_MIN_GROWTH     0.2   /* trend (slope x run) / end bytes */
#define MS_GROWTH_MIN_SHARE      0.01  /* share of the process's end bytes */

/* What became of a site's memory at the end (growth suspects). */
enum ms_state {
    MS_STATE_FREED = 0,       /* freed before the end (not a growth suspect freed at exit) */
    MS_STATE_LOST,            /* a LEAK record definite/indirect/possible on the stack */
    MS_STATE_REACHABLE,       /* a LEAK record reachable on the stack (and none lost) */
    MS_STATE_FREED_AT_EXIT,   /* a growth suspect live in the last samples before END, in no
                                 LEAK record, nothing left at END */
    MS_STATE_LIVE_AT_EXIT,    /* still live at END but no LEAK record says what it is
                                 (the trace holds no leak check) */
    MS_STATE_LIVE_AT_END,     /* no END record (killed): still live when the trace ends */
    MS_STATE_LIVE_AT_EXEC,    /* the image ended by exec with the block live */
};
const char *ms_state_name(enum ms_state s);

struct ms_site {
    uint64_t stack_id;        /* the trace's stack id (0 = unknown stack) */
    size_t pcs_off;           /* first pc in ms_model.pcs */
    uint32_t npcs;            /* pcs of the stack (0 until its STACK record) */
    uint32_t has_stack;       /* a STACK record defined it */
    uint32_t fn_mask;         /* allocation functions seen (1 << fn, fn < 32) */
    uint32_t thread1;         /* 1 + the thread index of all its ALLOCs; UINT32_MAX:
                                 several threads; 0: none yet */
    int32_t series;           /* index in ms_model.series, -1 if none */
    uint64_t allocs, alloc_bytes;       /* ALLOC records (not inherited ones) */
    uint64_t temps, temp_bytes;         /* temporary allocations */
    uint64_t inherited_blocks, inherited_bytes;
    uint64_t live_bytes, live_blocks;   /* now (in time order); at the end: at exit */
    uint64_t max_bytes, max_blocks;     /* the site's own highest live bytes / blocks */
    uint64_t peak_bytes, peak_blocks;   /* live at the moment of the process's peak */
    uint64_t epoch;                     /* peak epoch peak_* belong to */
    uint64_t leak_bytes[4][2], leak_blocks[4][2]; /* LEAK records: [kind][suppressed] */
    uint64_t leak_indirect_bytes;       /* indirect_bytes of its definite records */
    /* growth (ms_model_finish) */
    int suspect;              /* 1 if a growth suspect */
    enum ms_state state;
    double score, growth, steadiness, share, slope_per_s;
    int increases, decreases;
    uint64_t end_bytes;       /* highest of the last 8 samples before the end */
};

/* A series: grid cell j (1-based) holds the live bytes at time j * w. */
struct ms_series {
    uint32_t site;            /* site index, UINT32_MAX for the process total */
    uint32_t filled;          /* cells 1..filled are known */
    uint64_t v[MS_MODEL_GRID];
};

struct ms_module {
    char *path;
    unsigned char *build_id;
    size_t build_id_len;
    uint64_t t, bias, lo, hi, flags;
};

struct ms_fork {
    uint64_t t, pid;
};

/* a live reachability check (SNAPSHOT and the SNAP_LEAK records after it) */
struct ms_snapshot {
    uint64_t t, id, trigger, pause_ns;
    uint64_t bytes[4], blocks[4]; /* by kind */
};

/* one block of the live map */
struct ms_block {
    uint64_t addr;            /* 0 = empty slot */
    uint64_t size;
    uint64_t t;               /* allocation time */
    uint32_t site;
    uint16_t inherited;
    uint16_t thread;          /* index in ms_model.thr of the allocating thread */
};

/* one event waiting in the reorder window */
struct ms_tev {
    uint64_t t, size;
    uint32_t site;
    uint16_t is_free;
    uint16_t thread;
};

/* Threads: ALLOC records name their thread (an appended field; traces without it
   put every allocation on thread index 0, tid 0 = unknown).  A block belongs to the
   thread that allocated it, whoever frees it.  The first MS_MODEL_MAX_THREADS - 1
   distinct tids get an entry; later ones go to index 0 too. */
#define MS_MODEL_MAX_THREADS 65535
struct ms_thread {
    uint64_t tid;             /* 0: unknown */
    char *name;               /* its last THREAD record's name, NULL if none */
    uint64_t allocs, alloc_bytes;       /* ALLOC records (not inherited blocks) */
    uint64_t frees;                     /* frees of its blocks (by any thread) */
    uint64_t live_bytes, live_blocks;   /* its blocks live now (time order); at the end */
    uint64_t max_bytes, max_blocks, max_t; /* its highest live bytes, and when */
    uint64_t peak_bytes, peak_blocks;   /* live at the moment of the process's peak */
    uint64_t epoch;                     /* as ms_site.epoch */
    uint64_t leak_bytes, leak_blocks;   /* (finish) lost LEAK bytes of the sites only it
                                           allocated from */
};

struct ms_run;
struct ms_tblock;

struct ms_model {
    /* PROCESS */
    int have_process;
    uint64_t pid, ppid, start_unix_ns;
    uint64_t sample_rate;  /* the run's --sample-rate (0: every allocation is in the trace) */
    char *exe, *cwd;
    char **argv;
    size_t argc;
    /* MODULE */
    struct ms_module *mods;
    size_t nmods, capmods, mods_dropped;
    /* END, EXEC, FORK, THREAD, LOST, SAMPLE, SNAPSHOT */
    int have_end;
    uint64_t end_t, end_how, end_status;
    char *exec_path;          /* the last EXEC record */
    uint64_t exec_t;
    int exec_pending;         /* nothing but events after that EXEC (so far) */
    int ended_by_exec;        /* (ms_model_finish) the image was replaced by exec */
    uint64_t inherited_declared; /* INHERITED count */
    struct ms_snapshot *snaps;
    size_t nsnaps, capsnaps;
    uint64_t snaps_total;
    struct ms_fork *forks;
    size_t nforks, capforks;
    uint64_t forks_total;
    uint64_t threads;         /* distinct threads (tid != 0) in ALLOC and THREAD records */
    struct ms_thread *thr;    /* [0]: unknown thread; kept by ms_model_shrink */
    size_t nthr, capthr;
    uint32_t *thr_map;        /* open addressing: thread index + 1, 0 = empty */
    size_t thr_map_cap;
    uint64_t threads_over_cap; /* ALLOCs of threads beyond MS_MODEL_MAX_THREADS (index 0) */
    int have_alloc_tid;       /* some ALLOC named its thread */
    uint64_t thr_leak_unattributed; /* lost LEAK bytes of sites several threads allocated from */
    uint64_t lost_events, lost_records;
    uint64_t samples, peak_rss, peak_rss_t, last_rss;
    /* LEAK totals: [kind][suppressed] */
    int have_leaks;
    unsigned leak_shown_kinds; /* bit k: LEAK records of kind k the text report printed (--show-leak-kinds) */
    uint64_t leak_bytes[4][2], leak_blocks[4][2];
    /* records */
    uint32_t version, chunks; /* of the file (ms_model_load) */
    uint64_t records, rec_count[16], unknown_records;
    uint64_t last_t;          /* largest record time */
    uint64_t last_event_t;    /* largest ALLOC/FREE time (inherited blocks aside) */
    /* anomalies */
    uint64_t free_unknown;    /* FREE of an address not live */
    uint64_t alloc_over_live; /* ALLOC of an address already live (a FREE went missing) */
    uint64_t addr_zero;       /* ALLOC/FREE of address 0 (ignored) */
    uint64_t bad_kind;        /* LEAK of an unknown kind (ignored) */
    uint64_t dup_stacks;      /* STACK ids defined twice (the first wins) */
    uint64_t late;            /* events later than the reorder window */
    uint64_t inherited_blocks, inherited_bytes;
    /* sites */
    struct ms_site *sites;
    size_t nsites, capsites;
    uint32_t *site_map;       /* open addressing: site index + 1, 0 = empty */
    size_t site_map_cap;
    uint64_t *pcs;
    size_t npcs, cappcs;
    /* live blocks, in file order */
    struct ms_block *blk;
    size_t blk_cap, blk_n, blk_max;
    /* totals, file order */
    uint64_t allocs, alloc_bytes, frees, temps, temp_bytes;
    /* time order */
    uint64_t live_bytes, live_blocks;
    uint64_t peak_bytes, peak_blocks, peak_t;
    uint64_t epoch;
    uint64_t applied_t;       /* time of the last event applied */
    int applied_any;
    /* reorder window */
    struct ms_run **heap;     /* min-heap of runs by (head time, seq) */
    size_t nheap, capheap;
    struct ms_run *open_run;  /* run being appended */
    struct ms_run *free_runs; /* recycled runs */
    struct ms_tblock *free_blks; /* recycled full-size blocks of events */
    size_t nfree_blks;
    uint64_t run_seq;
    uint64_t buffered, buffered_max;
    uint64_t tmax;
    /* series */
    uint64_t w;               /* grid step, ns */
    struct ms_series *series; /* [0] = the process total */
    size_t nseries, capseries;
    uint64_t series_refused;  /* sites that would have got a series past the cap */
    int nomem;                /* an allocation failed: the model is incomplete */
    /* results (ms_model_finish) */
    int finished;
    uint64_t t_end;           /* end of the run: END time or last record time */
    uint64_t t_samples;       /* the samples span [0, t_samples]: the last ALLOC/FREE */
    uint64_t sample_t[MS_MODEL_SAMPLES];
    uint64_t sample_bytes[MS_MODEL_SAMPLES]; /* process live bytes */
    uint32_t sample_cell[MS_MODEL_SAMPLES];  /* grid cell of each sample */
    uint64_t end_bytes;       /* process: highest of the last 8 samples before the end */
    size_t nsuspects;
};

struct ms_model *ms_model_new(void);
void ms_model_free(struct ms_model *m);

/* Feed one record (in file order).  Returns 0, or -1 when out of memory
   (m->nomem is then set and later records are ignored). */
int ms_model_feed(struct ms_model *m, const struct ms_trace_rec *rec);

/* After the last record: empty the reorder window, take the samples, score
   the growth suspects. */
void ms_model_finish(struct ms_model *m);

/* The samples of a site (after finish): fills out[MS_MODEL_SAMPLES]; zeros
   when the site has no series.  Returns 1 if the site has a series. */
int ms_model_site_samples(const struct ms_model *m, size_t site, uint64_t *out);

/* Sum of LEAK bytes/blocks of a site over the kinds in kind_mask (bit k),
   unsuppressed (supp 0), suppressed (1) or both (2). */
uint64_t ms_site_leak_bytes(const struct ms_site *s, unsigned kind_mask, int supp);
uint64_t ms_site_leak_blocks(const struct ms_site *s, unsigned kind_mask, int supp);

/* After ms_model_finish, once the caller has taken what it needs from the
   sites: free the sites, stacks, live map, series and modules, keeping the
   process facts, the forks, the totals and the process samples.  The model
   then holds no sites (nsites == 0). */
void ms_model_shrink(struct ms_model *m);

/* Helpers the analyzer's tables share.  ms_an_grow: grow *p (elements of
   size sz, capacity *cap, doubling from 16) to hold at least need; 0, or -1
   out of memory (*p untouched).  ms_an_hash64: a 64-bit mixer (murmur3's
   finalizer) for open-addressing tables. */
int ms_an_grow(void **p, size_t *cap, size_t need, size_t sz);
uint64_t ms_an_hash64(uint64_t x);

/* Read a whole trace into a new model.  Returns the model (NULL only when
   the trace cannot be opened: err says why).  *status gets how reading ended
   and msg (if not NULL) its message.  The model is finished. */
struct ms_model *ms_model_load(const char *path, enum ms_trace_status *status, char *msg,
                               size_t msglen, char *err, size_t errlen);

#endif /* MS_MODEL_H */
