/*
 * memsleuth - graph.h: the heap graph of a trace (GRAPH records 16-19, written
 * by the agent at every snapshot and at the exit check; docs/trace-format.md).
 *
 * ms_graph_analyze reads the trace once and, for the last complete graph:
 *  - names every root: a global by its symbol (module, section), a thread's
 *    stack by thread name and the function whose frame holds the pointer, a
 *    thread-local variable, a thread's registers, an anonymous mapping;
 *    pointers from one named root (several words of one global, several slots
 *    of one frame) make one root node;
 *  - builds the dominator tree (Lengauer-Tarjan, iterative, with path
 *    compression) of the graph virtual root -> roots -> blocks -> blocks; a
 *    root *retains* the blocks it dominates (they would be freed if it let go
 *    of them); blocks reachable from two roots are dominated by the virtual
 *    root only ("shared");
 *  - "why alive": the shortest chain of pointers (BFS) from a root to a block
 *    of a site (the top growth suspect, or --why=SITE: a stack id or a
 *    function name), and for the few sites with the most bytes in the graph;
 *  - between the first and the last complete graph of the trace (two
 *    snapshots, or a snapshot and the exit check): which roots grew.
 * The result is plain data (struct ms_graph_info) for the text and JSON
 * reports, and for the HTML report.
 *
 * Memory: ~80 bytes per block plus ~12 bytes per edge during the analysis.
 */
#ifndef MS_GRAPH_H
#define MS_GRAPH_H

#include <stdint.h>
#include <stdio.h>

enum ms_groot_kind {
    MS_GROOT_GLOBAL = 0,   /* a module's data: name = symbol (or section) */
    MS_GROOT_STACK = 1,    /* a thread's stack: thread + function of the frame */
    MS_GROOT_TLS = 2,      /* a thread-local variable */
    MS_GROOT_REGS = 3,     /* a thread's registers */
    MS_GROOT_MEMORY = 4,   /* a mapping in no module (anonymous) */
};
const char *ms_groot_kind_name(int kind); /* "global", "stack", "tls", "registers", "memory" */

struct ms_groot {
    int kind;
    char *name;               /* "g_registry", "thread 'worker' (tid 12)", ... */
    char *where;              /* "prog, .bss", "hold_cycle (prog.c:40)", ... ("" if none) */
    char *module;             /* module path (GLOBAL, TLS), else NULL */
    char *section;            /* GLOBAL: ".bss", ".data"..., else NULL */
    char *thread;             /* STACK, TLS, REGS: the thread's name, else NULL */
    uint64_t tid;
    char *function, *file;    /* STACK: the frame holding the pointer (NULL if unknown) */
    int line;
    uint64_t address;         /* the lowest address of a pointer of this root */
    uint64_t pointers;        /* pointers from it to blocks */
    uint64_t retained_bytes;  /* the blocks it dominates */
    uint64_t retained_blocks;
};

struct ms_gstep {             /* one block of a chain */
    uint64_t addr, size, stack_id;
    int interior;             /* reached by a pointer into it, not to its start */
    char *site;               /* "make_node (prog.c:12)" */
    char *holder;             /* steps after the first: the function of the previous block's site */
    int64_t offset;           /* steps after the first: where the pointer sits in the previous
                                 block (bytes from its start); -1 unknown (an older trace) */
};

struct ms_gchain {
    char *query;              /* the site asked about: "7", "make_node", "top growth suspect" */
    uint64_t stack_id;        /* the site of the block reached (0 if not found) */
    char *site;
    uint64_t site_blocks, site_bytes; /* blocks of the matching sites in the graph */
    int found;                /* 1: chain filled; 0: no block of the site, or none reachable */
    char *why_not;            /* when not found: why */
    long root;                /* index in roots, -1 if none */
    uint64_t root_addr;       /* address of the root's pointer (REGS: register number) */
    char *root_label;         /* "g_registry+8", "thread 'w' (tid 3) stack in f (x.c:3)" */
    struct ms_gstep *steps;   /* from the block the root points to, to the site's block */
    size_t nsteps;
};

struct ms_ggrowth {
    char *name, *where;
    int kind;
    uint64_t before_bytes, before_blocks, after_bytes, after_blocks;
    int64_t delta_bytes;
};

struct ms_gtnode {            /* a row of the dominator tree (roots, then what they retain) */
    long parent;              /* index in tree, -1 for a root */
    int is_root;
    char *label;              /* root: its name (where); block: its site */
    uint64_t addr, size, stack_id;    /* a block (0 for a root) */
    uint64_t retained_bytes, retained_blocks;
    uint64_t children;        /* children in the dominator tree */
    uint64_t more, more_bytes, more_blocks; /* children left out of the rows (fewest bytes) */
};

struct ms_gpoint {            /* one complete graph of the trace */
    uint64_t snapshot_id, time_ns, trigger; /* trigger: the SNAPSHOT's (0 = the exit check) */
};

struct ms_gseries {           /* one root's retained size in every graph (ms_gpoint order) */
    char *name, *where;
    int kind;
    uint64_t *bytes, *blocks;
};

struct ms_graph_info {
    size_t ngraphs;           /* complete graphs in the trace */
    size_t nincomplete;       /* graphs cut off or marked incomplete by the agent */
    uint64_t snapshot_id;     /* the graph analyzed: its snapshot, 0 = the exit check */
    uint64_t time_ns;
    uint64_t blocks, bytes, edges, root_edges;
    uint64_t unreachable_blocks, unreachable_bytes; /* reached from no root */
    uint64_t shared_blocks, shared_bytes;  /* dominated by no single root */
    struct ms_groot *roots;   /* by retained_bytes, largest first */
    size_t nroots;
    int have_why;
    struct ms_gchain why;
    /* why alive for the sites with the most bytes in the graph (other than why's
       site), those reachable from a root: at most MS_GRAPH_WHY_SITES */
    struct ms_gchain *why_sites;
    size_t nwhy_sites;
    int have_growth;          /* two graphs or more */
    uint64_t from_snapshot_id, from_time_ns;
    struct ms_ggrowth *growth; /* roots whose retained bytes changed, largest growth first */
    size_t ngrowth;
    struct ms_gtnode *tree;   /* the dominator tree of the last graph, pre-order, bounded */
    size_t ntree;
    struct ms_gpoint *points; /* the complete graphs (at most MS_GRAPH_MAX_POINTS) */
    size_t npoints;
    struct ms_gseries *series; /* the roots that retain the most in any graph */
    size_t nseries;
};
#define MS_GRAPH_MAX_POINTS 64
#define MS_GRAPH_WHY_SITES 5

/* Read the trace at path and analyze its last complete graph.  why: NULL, or
   a site (a stack id in decimal, or a function name); suspect_stack: the
   top growth suspect's stack id (0: none), used when why is NULL.  Returns
   NULL after a one-line message in err (unreadable trace, out of memory);
   a trace without GRAPH records gives an info with ngraphs == 0. */
struct ms_graph_info *ms_graph_analyze(const char *path, const char *why, uint64_t suspect_stack,
                                       char *err, size_t errlen);
void ms_graph_info_free(struct ms_graph_info *g);

/* The report sections: "Retained by root", "Why alive", "Roots that grew"
   (top: entries per list).  JSON: the value of "heap_graph" (null if no graph). */
void ms_graph_text(FILE *o, const struct ms_graph_info *g, int top);
void ms_graph_json(FILE *o, const struct ms_graph_info *g, int top);

/* --format=dump: a GRAPH, GRAPH_NODES, GRAPH_EDGES or GRAPH_ROOTS record (types
   16-19) as one line, edge codes decoded into node indices ("2i": interior);
   returns 0 for any other type. */
struct ms_trace_rec;
int ms_graph_dump_rec(FILE *o, const struct ms_trace_rec *r);

#endif /* MS_GRAPH_H */
