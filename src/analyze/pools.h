/*
 * memsleuth - pools.h: the allocators of libmemsleuth_pool in a trace (the
 * POOL_* records, types 20..27 of docs/trace-format.md), for the "Pools"
 * section of `memsleuth report` (text and JSON; the HTML page reads the
 * JSON).
 *
 * Use:
 *     struct ms_pools *pl = ms_pools_new();
 *     ms_trace_set_pool_tap(ms_pools_tap, pl);   // around ms_model_load
 *     m = ms_model_load(...);
 *     ms_trace_set_pool_tap(NULL, NULL);
 *     ms_pools_finish(pl, m);                    // after the model is finished
 *     ms_pools_text(o, pl, top); / ms_pools_json(o, pl);
 *     ms_pools_free(pl);
 *
 * The replay: the pool records are one stream in program order (the agent
 * appends them under one lock), so they are applied in file order; their
 * times never decrease.  An allocator ("pool") is a node of a tree; its own
 * bytes are the requested sizes of its live blocks; its subtree bytes add
 * those of every pool below it.  POOL_DESTROY removes the pool and every
 * block it still owned.  Blocks and pools the trace never created (a forked
 * child's inherited pools, lost events) get a placeholder node, "unknown".
 *
 * Definitions (also in the JSON "definitions" of the section):
 *  - pool bytes: the sum of all pools' own bytes; peak: its maximum, first
 *    reached at peak_time_ns; the tree at peak is the tree at that moment
 *    (exact: each node saves its state the first time it changes after a new
 *    peak, as model.c does for sites);
 *  - memory over time: 64 samples of a pool's subtree bytes (and of the total)
 *    on the grid model.c uses (128 cells doubling), from 0 to samples_end_ns =
 *    the later of the process's samples_end_ns and the last pool record; the
 *    same times as the process's memory_over_time when no pool record comes
 *    after its last ALLOC/FREE.  The first MS_POOLS_SERIES_CAP pools alive at
 *    once get a series (a pool created when all are taken has none);
 *  - sites: the file:line given to the library (POOL_SITE), merged by file
 *    name and line; per site the allocations (a realloc counts), their bytes,
 *    the frees, and what is live at the end;
 *  - leaks: a pool never destroyed is reported once, at its creation site,
 *    with its whole subtree (bytes, blocks, pools): only pools with no parent
 *    are listed (every live pool is inside one), grouped by creation site
 *    and name.  The state is "never freed" when the trace ends with END,
 *    "live at exec" when the image exec'd, "live at end of trace" when it was
 *    killed.
 */
#ifndef MS_POOLS_H
#define MS_POOLS_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "trace_read.h"

#define MS_POOLS_SERIES_CAP 4096   /* series held at once (128 u64 each) */
#define MS_POOLS_JSON_NODES 10000  /* pools listed per tree in JSON */

/* one allocator */
struct ms_pools_node {
    uint64_t addr;            /* the pool's address in the program */
    uint64_t id;              /* 1, 2, ... in creation order (placeholders too) */
    int64_t parent;           /* node index, -1 for a root */
    int64_t first_child, next_sib, prev_sib;
    uint32_t site;            /* creation site (index in sites, 0 = unknown) */
    uint32_t destroy_site;
    char *name;               /* or NULL */
    uint64_t t_new, t_destroy;
    int live;                 /* not destroyed */
    int unknown;              /* placeholder: the trace never created it */
    int inherited;            /* created before a fork, in the parent: a forked
                                 child's trace names it (POOL_NEW inherited=1) */
    uint64_t bytes, blocks;   /* own live blocks */
    uint64_t sub_bytes, sub_blocks; /* it and everything below it */
    uint64_t max_sub_bytes;
    uint64_t allocs, alloc_bytes, frees;
    uint64_t claims;          /* adoptions of the pool minus releases */
    int64_t first_blk;        /* its blocks (index in the block slab), -1 none */
    int32_t series;           /* index in series, -1 none */
    /* the tree at the peak */
    uint64_t epoch, c_epoch;  /* last saved epoch; epoch when created */
    uint64_t pk_bytes, pk_blocks;
    int64_t pk_parent;
    int64_t next_free;        /* free list / graveyard link */
    int in_grave;
};

/* one file:line (merged by file name and line) */
struct ms_pools_site {
    char *file;
    uint64_t line;
    uint64_t allocs, alloc_bytes, frees, reallocs;
    uint64_t live_bytes, live_blocks;  /* now; at the end: at the end */
    uint64_t pools;                     /* pools created here */
};

/* a leak verdict: the never-destroyed roots of one creation site and name */
struct ms_pools_leak {
    uint32_t site;
    const char *name;
    uint64_t allocators;      /* roots never destroyed */
    uint64_t bytes, blocks;   /* their subtrees */
    uint64_t pools;           /* pools in their subtrees (the roots included) */
    uint64_t first_id;        /* id of the first such root */
    int unknown;              /* placeholders: created before the trace (a forked
                                 child's inherited pools, if the agent did not name them) */
    int inherited;            /* inherited at fork (named by the agent) */
};

/* a flattened tree (at the end or at the peak), pre-order, children by
   subtree bytes (largest first) */
struct ms_pools_flat {
    size_t node;              /* index in nodes */
    int64_t parent_pos;       /* position of the parent in this list, -1 */
    unsigned depth;
    uint64_t bytes, blocks, sub_bytes, sub_blocks, sub_pools, children;
};

struct ms_pools_blk;
struct ms_pools_kv;

struct ms_pools {
    /* records */
    uint64_t records, events;
    uint64_t last_t;
    /* nodes */
    struct ms_pools_node *nodes;
    size_t nnodes, capnodes;
    int64_t free_nodes, grave;
    uint64_t next_id;
    struct ms_pools_kv *pmap; /* open addressing: addr -> node index (live pools) */
    size_t pmap_cap, pmap_n;
    /* blocks */
    struct ms_pools_blk *blk;
    size_t nblk, capblk;
    int64_t free_blk;
    struct ms_pools_kv *bmap; /* open addressing: addr -> slab index (live blocks) */
    size_t bmap_cap, bmap_n;
    /* sites */
    struct ms_pools_site *sites; /* [0] = unknown */
    size_t nsites, capsites;
    uint32_t *site_of_id;     /* POOL_SITE id -> site index */
    size_t nids;
    uint32_t *site_hash;      /* (file, line) -> site index + 1 */
    size_t site_hash_cap;
    /* totals */
    uint64_t created, destroyed, unknown_pools;
    uint64_t inherited_pools; /* named by POOL_NEW inherited=1 (not in created) */
    uint64_t allocs, alloc_bytes, frees, reallocs, moves, pool_moves, adopts, releases;
    uint64_t bytes, blocks;   /* all pools' own, now */
    uint64_t peak_bytes, peak_blocks, peak_t, epoch;
    uint64_t anomalies;       /* records about unknown blocks, cycles... */
    int nomem;
    /* series: [0] = the total */
    uint64_t w;
    uint64_t (*ser)[128];
    uint32_t *ser_filled;
    int32_t *ser_free;        /* stack of free series */
    size_t nser_free, nser;
    /* results (ms_pools_finish) */
    int finished;
    const char *end_state;    /* "never freed" / "live at exec" / "live at end of trace" */
    uint64_t t_samples;
    uint64_t sample_t[MS_MODEL_SAMPLES];
    uint64_t sample_bytes[MS_MODEL_SAMPLES];
    uint32_t sample_cell[MS_MODEL_SAMPLES];
    uint64_t live_pools;
    struct ms_pools_flat *end_tree, *peak_tree;
    size_t nend, npeak;
    struct ms_pools_leak *leaks;
    size_t nleaks;
    size_t *site_order;       /* sites by allocations, largest first (unknown left out) */
    size_t nsite_order;
};

struct ms_pools *ms_pools_new(void);
void ms_pools_free(struct ms_pools *pl);

/* the tap (trace_read.h): feeds one pool record; always consumes it */
int ms_pools_tap(const struct ms_trace_rec *rec, void *arg);

/* After the model m is finished: samples, trees, sites, leaks. */
void ms_pools_finish(struct ms_pools *pl, const struct ms_model *m);

/* 1 if the trace held pool records (the section is printed) */
int ms_pools_any(const struct ms_pools *pl);

/* The 64 samples of a node's subtree bytes; 0 (zeros) if it has no series. */
int ms_pools_node_samples(const struct ms_pools *pl, size_t node, uint64_t *out);

/* The "Pools" text section (top: entries per list) and the JSON value of
   "pools" (an object, or null when pl is NULL or holds no pool record). */
void ms_pools_text(FILE *o, const struct ms_pools *pl, int top);
void ms_pools_json(FILE *o, const struct ms_pools *pl);

/* --format=dump: the line of a pool record; 0 if rec is no pool record */
int ms_pools_dump_rec(FILE *o, const struct ms_trace_rec *rec);

#endif /* MS_POOLS_H */
