/* agent.h - internals shared by the files of the memsleuth agent.
 *
 * The agent is libmemsleuth_agent.so, loaded with LD_PRELOAD by `memsleuth
 * run`.  Reading order: region.c (the agent's own memory), table.c (live
 * blocks and interned stacks), hooks.c (the interposed allocation
 * functions), fdtrack.c, stw.c (threads: registry, stop-the-world),
 * leakcheck.c (roots, marking, verdicts), report.c (loss records, text and
 * JSON), agent.c (options, start-up, exit paths, fork and exec).
 *
 * Two rules hold everywhere:
 *  - every byte the agent keeps lives in one reserved region (region.c), so
 *    the root scan can leave it out with one range check, and nothing the
 *    agent keeps makes a program block look reachable;
 *  - code that runs inside an allocation hook never calls malloc and never
 *    blocks on anything the program could hold.
 */
#ifndef MS_AGENT_H
#define MS_AGENT_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../common/options.h"

#define MS_HIDDEN __attribute__((visibility("hidden")))
#define MS_LIKELY(x) __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MS_MAX_FRAMES 256

/* ---- options (agent.c) ---------------------------------------------- */
enum ms_kind { MS_DEFINITE = 0, MS_INDIRECT = 1, MS_POSSIBLE = 2, MS_REACHABLE = 3 };

extern struct ms_options ms_opt MS_HIDDEN;

/* ---- region.c: the agent's own memory -------------------------------- */
int ms_region_init(void) MS_HIDDEN;
void *ms_region_alloc(size_t size) MS_HIDDEN;          /* page granular, zeroed */
void ms_region_release(void *p, size_t size) MS_HIDDEN; /* returns pages */
int ms_region_contains(uintptr_t a) MS_HIDDEN;
void ms_region_bounds(uintptr_t *lo, uintptr_t *hi) MS_HIDDEN;
void ms_region_fork_prepare(void) MS_HIDDEN; /* the report heap's lock, held across fork */
void ms_region_fork_done(void) MS_HIDDEN;    /* in the parent and in the child */
/* small-object heap used while reporting (libdw, libunwind, qsort call
 * malloc then: they get memory from the region, never from the program's
 * allocator, whose locks a stopped thread may hold) */
void *ms_rmalloc(size_t n) MS_HIDDEN;
void *ms_rmemalign(size_t align, size_t n) MS_HIDDEN;
void ms_rfree(void *p) MS_HIDDEN;
size_t ms_rsize(const void *p) MS_HIDDEN;

/* ---- table.c: live blocks, stacks, freed history --------------------- */
enum ms_alloc_kind { MS_AK_MALLOC = 0, MS_AK_NEW = 1, MS_AK_NEW_ARRAY = 2 };
extern const char *const ms_alloc_fn_names[]; /* by enum ms_alloc_fn */
enum ms_alloc_fn {
    MS_FN_MALLOC, MS_FN_CALLOC, MS_FN_REALLOC, MS_FN_REALLOCARRAY,
    MS_FN_POSIX_MEMALIGN, MS_FN_ALIGNED_ALLOC, MS_FN_MEMALIGN, MS_FN_VALLOC,
    MS_FN_PVALLOC, MS_FN_NEW, MS_FN_NEW_ARRAY, MS_FN_NEW_NOTHROW,
    MS_FN_NEW_ARRAY_NOTHROW, MS_FN_NEW_ALIGNED, MS_FN_NEW_ARRAY_ALIGNED,
    MS_FN__COUNT
};
struct ms_block {
    uintptr_t addr;
    uint64_t size;
    uint32_t stack;          /* interned stack id; 0 = unknown */
    uint8_t kind;            /* enum ms_alloc_kind */
    uint8_t fn;              /* enum ms_alloc_fn */
    uint8_t state;           /* leakcheck.c scratch */
    uint8_t heur;            /* reached through a valgrind heuristic */
};
int ms_table_init(void) MS_HIDDEN;
void ms_table_insert(uintptr_t addr, uint64_t size, uint32_t stack, int kind, int fn) MS_HIDDEN;
/* removes and returns 1 with *out filled, or 0 when addr is not live */
int ms_table_release(uintptr_t addr, struct ms_block *out) MS_HIDDEN;
int ms_table_lookup(uintptr_t addr, struct ms_block *out) MS_HIDDEN;
void ms_table_set_kind(uintptr_t addr, int kind, int fn) MS_HIDDEN;
size_t ms_table_count(void) MS_HIDDEN;
/* copies every live block into out (capacity cap); returns the count */
size_t ms_table_snapshot(struct ms_block *out, size_t cap) MS_HIDDEN;
void ms_table_totals(uint64_t *allocs, uint64_t *frees, uint64_t *bytes) MS_HIDDEN;
void ms_table_lock_all(void) MS_HIDDEN;
void ms_table_unlock_all(void) MS_HIDDEN;
void ms_table_reinit_locks(void) MS_HIDDEN;

uint32_t ms_stack_intern(const uintptr_t *pcs, int n) MS_HIDDEN;
int ms_stack_get(uint32_t id, const uintptr_t **pcs) MS_HIDDEN; /* returns n */

/* a bounded memory of recently freed blocks, for double-free reports */
void ms_freed_remember(uintptr_t addr, uint64_t size, uint32_t alloc_stack, uint32_t free_stack) MS_HIDDEN;
int ms_freed_lookup(uintptr_t addr, uint64_t *size, uint32_t *alloc_stack, uint32_t *free_stack) MS_HIDDEN;

/* ---- hooks.c --------------------------------------------------------- */
struct ms_real {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
};
extern struct ms_real ms_real MS_HIDDEN;
extern int ms_glibc_malloc MS_HIDDEN; /* the real allocator is glibc's */
void ms_hooks_resolve(void) MS_HIDDEN;
/* capture the caller's stack (agent frames dropped) and intern it */
uint32_t ms_capture_stack(void) MS_HIDDEN;

/* per-thread state; initial-exec TLS so reaching it never allocates */
struct ms_tstate {
    int busy;                /* inside a hook's critical section */
    int park_pending;        /* stop-the-world asked while busy */
    int in_report;           /* this thread runs the report */
    int in_unwind;           /* inside the unwinder: a nested handler must not re-enter it */
    int scrub_due;           /* --sample-rate: this hook call recorded (the scrub is due) */
    /* allocations deferred by re-entrancy: a ring written by signal
     * handlers (tail) and drained by the interrupted hook (head); the
     * deferred allocations' stacks have a ring of their own, in the same
     * order (a preempted thread can take many handlers before it drains) */
    unsigned pend_head, pend_tail, pcs_head, pcs_tail;
    unsigned long pend_lost; /* the ring was full: said at exit */
    unsigned long pend_nostack; /* recorded without a stack (its ring was full): said at exit */
    struct {
        uintptr_t addr;
        uint64_t size;
        int op, kind, npcs, slot; /* slot: the next stack of the stacks' ring is this entry's */
    } pending[128];
    uintptr_t pend_pcs[16][40]; /* stacks of deferred allocations, interned later */
    pid_t trace_tid;         /* this thread's tid once the trace has its THREAD record */
    /* a blocking call with a relative timeout that the kernel ends with
     * EINTR on any stop (epoll_wait, sigtimedwait): noted by its wrapper
     * (hooks.c) so that the ptrace stop restarts it with the time left */
    long wait_nr;            /* its system call number; 0: none */
    long wait_arg0;          /* its first argument */
    uint64_t wait_deadline;  /* CLOCK_MONOTONIC, ns */
    struct timespec wait_ts; /* sigtimedwait's timeout, passed from here: the tracer rewrites it */
};
extern __thread struct ms_tstate ms_ts MS_HIDDEN;
void ms_leave_busy(void) MS_HIDDEN;
void ms_hooks_late_init(void) MS_HIDDEN;      /* after the loader is done: ranges for stack filtering */
unsigned long ms_hooks_lost_deferred(unsigned long *nostack) MS_HIDDEN; /* handler operations the full ring dropped; allocations recorded without their stack */
extern int ms_verify_unwind MS_HIDDEN; /* MEMSLEUTH_VERIFY_UNWIND=1: compare every stack with libunwind's */

/* ---- errors recorded by the hooks (report.c prints them) -------------- */
enum ms_err_kind { MS_ERR_INVALID_FREE = 0, MS_ERR_MISMATCHED_FREE = 1 };
void ms_error_record(int kind, uint32_t at_stack, uintptr_t addr, int have_block,
                     uint64_t size, uint32_t alloc_stack, uint32_t free_stack,
                     int alloc_fn, const char *dealloc_fn) MS_HIDDEN;
void ms_errors_reset(void) MS_HIDDEN;

/* ---- fdtrack.c ------------------------------------------------------- */
void ms_fd_opened(int fd) MS_HIDDEN;
void ms_fd_closed(int fd) MS_HIDDEN;
uint32_t ms_fd_site(int fd) MS_HIDDEN; /* stack id, 0 = unknown/inherited */

/* ---- stw.c: threads ---------------------------------------------------- */
struct ms_thread_regs {
    pid_t tid;
    uintptr_t sp;
    uintptr_t regs[24];
    int nregs;
    int ok;
    uintptr_t tp;            /* thread pointer (%fs base): its static TLS is below */
};
void ms_threads_note_self(uintptr_t stack_marker) MS_HIDDEN;
void ms_threads_note_exit(void) MS_HIDDEN;
void ms_threads_note_main(void) MS_HIDDEN;
/* the tid of a live thread started through pthread_create, or of the main thread; 0 */
pid_t ms_threads_tid_of(pthread_t t) MS_HIDDEN;
void ms_threads_after_fork_child(void) MS_HIDDEN;
/* marker addresses of threads that have exited (their stacks may stay
 * mapped in glibc's cache: dead memory, not roots) */
size_t ms_threads_dead_markers(uintptr_t *out, size_t cap) MS_HIDDEN;
/* stop every other thread; fills regs (cap entries); returns the count */
int ms_stop_world(struct ms_thread_regs *out, int cap) MS_HIDDEN;
void ms_start_world(void) MS_HIDDEN;
void ms_park_self(void) MS_HIDDEN;
void ms_stw_after_fork_child(void) MS_HIDDEN;
void ms_stw_wait_idle(void) MS_HIDDEN; /* before an exec: no stop in progress */
extern int ms_stop_signal MS_HIDDEN;
int ms_stw_handle_signal(int sig, siginfo_t *si, void *uc) MS_HIDDEN;

/* ---- leakcheck.c -------------------------------------------------------- */
struct ms_leak_result {
    struct ms_block *blocks;   /* sorted by address, state = enum ms_kind */
    size_t nblocks;
    uint64_t *indirect_bytes;  /* per block: bytes of its clique (definite) */
    uint64_t *indirect_blocks;
    size_t freed_at_exit;      /* exited threads' TLS blocks glibc's freeres would free (leakcheck.c) */
};
struct ms_scan_self {
    uintptr_t sp;              /* lowest live address of this thread's stack */
    uintptr_t regs[24];
    int nregs;
};
int ms_leak_check(const struct ms_scan_self *self, struct ms_leak_result *res) MS_HIDDEN;
/* the exit check takes the exited threads' cached TLS blocks out, as
 * __libc_freeres would have freed them (set by run_report: not on a fatal
 * signal, not with --run-libc-freeres=no) */
extern int ms_leak_freeres MS_HIDDEN;
/* the thread descriptor's size (glibc's struct pthread), measured by the
 * writer thread at its start (ms_tcb_measure); 2304 until then */
void ms_tcb_measure(void) MS_HIDDEN;
size_t ms_tcb_size(void) MS_HIDDEN;
void ms_leak_release(void) MS_HIDDEN;
/* fault-tolerant reads while scanning */
extern volatile int ms_scan_guard MS_HIDDEN;
void ms_scan_fault(void) MS_HIDDEN;

/* ---- report.c ---------------------------------------------------------- */
enum ms_exit_how { MS_EXIT_NORMAL, MS_EXIT_UNDERSCORE, MS_EXIT_SIGNAL };
/* returns 1 when leaks of the error kinds (or free errors) were found */
int ms_report(const struct ms_leak_result *res, int how, int status) MS_HIDDEN;

struct ms_out;
/* ---- control.c, snapshots ---------------------------------------------------- */
void ms_control_start(void) MS_HIDDEN;
void ms_control_stop(void) MS_HIDDEN;
void ms_control_after_fork_child(void) MS_HIDDEN;
void ms_control_poll(int ms) MS_HIDDEN;
/* trigger: 1 signal, 2 interval, 3 command, 4 peak (quiet: the trace only);
 * pools: print the pool trees */
int ms_snapshot(int trigger, int pools, int reply_fd) MS_HIDDEN;
/* the writer thread, every 10 ms: a peak snapshot when the live heap has
 * grown enough (--snapshot-peak) */
void ms_snapshot_peak_poll(void) MS_HIDDEN;
void ms_table_live(uint64_t *bytes, uint64_t *blocks) MS_HIDDEN;
void ms_snapshot_report(const struct ms_leak_result *res, struct ms_out *o, int id, int trigger,
                        uint64_t pause_ns, uint64_t scanned) MS_HIDDEN;
extern volatile int ms_snapshot_requested MS_HIDDEN;
extern int ms_snapshot_interval_ms MS_HIDDEN;
void ms_trace_snapshot(int id, int trigger, uint64_t pause_ns) MS_HIDDEN;
void ms_trace_snap_leak(int kind, uint32_t stack, uint64_t bytes, uint64_t blocks) MS_HIDDEN;

/* ---- poolstate.c: libmemsleuth_pool's allocators as the agent saw them ------ */
#define MS_PS_NAME_MAX 64
struct ms_ps_pool {
    uintptr_t addr, parent;     /* 0: empty slot / a root */
    const char *file;           /* creation site (a copy) */
    int line, named;
    uint64_t seq;               /* creation order */
    uint64_t bytes, blocks;     /* its own live blocks */
    uint64_t scratch;
    char name[MS_PS_NAME_MAX];  /* cut at MS_PS_NAME_MAX - 1 bytes */
};
struct ms_ps_leak {             /* a pool tree never destroyed, at its root */
    uintptr_t pool;
    uint64_t seq;
    const char *file;
    int line, named;
    char name[MS_PS_NAME_MAX];
    uint64_t bytes, blocks, allocators; /* the whole subtree */
    uint64_t own_bytes, own_blocks;
};
/* all under trace_write.c's pool lock (ms_trace_pool_lock/trylock) */
void ms_ps_event(int kind, const void *pool, const void *other, const void *old_owner, const void *ptr,
                 size_t size, size_t old_size, const char *file, int line) MS_HIDDEN;
int ms_ps_is_raw(uintptr_t addr) MS_HIDDEN;
size_t ms_ps_raw_count(void) MS_HIDDEN;
int ms_ps_walk(void (*fn)(const struct ms_ps_pool *, int depth, void *), void *arg) MS_HIDDEN;
size_t ms_ps_leaks(struct ms_ps_leak **out) MS_HIDDEN; /* largest first; region memory */
void ms_trace_pool_lock(void) MS_HIDDEN;
int ms_trace_pool_trylock(void) MS_HIDDEN;   /* 0: locked */
void ms_trace_pool_unlock(void) MS_HIDDEN;
int ms_trace_pools_seen(void) MS_HIDDEN;     /* the library handed events to the agent */

/* ---- trace_write.c: the trace (docs/trace-format.md) ------------------------ */
void ms_trace_start(void) MS_HIDDEN;
void ms_trace_fork(pid_t child) MS_HIDDEN;
void ms_trace_exec(const char *path) MS_HIDDEN;
void ms_trace_after_fork_child(void) MS_HIDDEN;
void ms_trace_leak(int kind, uint32_t stack, uint64_t bytes, uint64_t blocks, uint64_t ind,
                   int suppressed, int shown) MS_HIDDEN;
void ms_trace_end(int how, int status) MS_HIDDEN;
pid_t ms_trace_writer_tid(void) MS_HIDDEN;
/* the agent's own thread stacks, [lo, hi) (0, 0: none): no roots of the leak check */
void ms_trace_writer_stack(uintptr_t *lo, uintptr_t *hi) MS_HIDDEN;
void ms_stw_tracer_stack(uintptr_t *lo, uintptr_t *hi) MS_HIDDEN;
/* the calling thread's tid for its ALLOC records; the first call of a thread writes its
   THREAD record (tid, name); never call it with a table shard lock held */
pid_t ms_trace_thread_begin(void) MS_HIDDEN;
static inline pid_t ms_trace_thread(void)
{
    return ms_ts.trace_tid > 0 ? ms_ts.trace_tid : ms_trace_thread_begin();
}
/* a THREAD record with the calling thread's current name (pthread_setname_np, thread
   exit), if the thread has one already */
void ms_trace_thread_named(void) MS_HIDDEN;
/* a THREAD record for another thread, renamed by the caller (pthread_setname_np) */
void ms_trace_thread_renamed(pid_t tid, const char *name) MS_HIDDEN;
void ms_trace_thread_after_fork_child(void) MS_HIDDEN;

/* ---- util ---------------------------------------------------------------- */
struct ms_out {
    int fd;
    char buf[8192];
    size_t len;
    int failed;
    int err;                 /* errno of the first failed write */
    char name[1200];         /* where it goes, for the one-line error */
};
void ms_out_flush(struct ms_out *o) MS_HIDDEN;
void ms_out_write(struct ms_out *o, const char *s, size_t n) MS_HIDDEN;
void ms_out_printf(struct ms_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3))) MS_HIDDEN;
void ms_out_json_str(struct ms_out *o, const char *s) MS_HIDDEN;
/* one line on stderr, prefixed "memsleuth: " */
void ms_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2))) MS_HIDDEN;
char *ms_fmt_commas(char *buf, uint64_t v) MS_HIDDEN; /* buf >= 32 */
void ms_expand_path(char *out, size_t cap, const char *pattern) MS_HIDDEN;

extern pid_t ms_pid MS_HIDDEN;       /* this process (refreshed after fork) */
extern pid_t ms_ppid MS_HIDDEN;
extern int ms_active MS_HIDDEN;      /* tracking on */
extern uintptr_t ms_self_lo MS_HIDDEN, ms_self_hi MS_HIDDEN; /* agent text */
extern char ms_self_path[512] MS_HIDDEN;
void ms_init(void) MS_HIDDEN;

/* ---- graph.c: the heap graph of a scan (GRAPH records, docs/trace-format.md) --
 * ms_leak_check records it when ms_graph.want is set: the edges of every block
 * (each block's memory is scanned exactly once for them) and every root edge
 * with its group (registers, a thread's stack, a TLS area, a mapping).  All of
 * it lives in the region; it is encoded and written after the world restarts. */
enum { MS_RG_REGS = 0, MS_RG_STACK = 1, MS_RG_TLS = 2, MS_RG_MEM = 3 };
struct ms_root_group {
    int kind;
    pid_t tid;                 /* REGS, STACK, TLS */
    uintptr_t lo, hi;          /* STACK: [sp, end of the mapping); TLS, MEM: the range */
    uintptr_t pc;              /* the thread's pc register (0 unknown) */
    uintptr_t mod;             /* TLS: the module's lowest address */
};
struct ms_root_edge {
    uintptr_t addr;            /* where the pointer is (REGS: the register number) */
    uintptr_t pc;              /* STACK: return address of the frame holding it (0 unknown) */
    uint32_t code;             /* block index << 1 | interior pointer */
    uint32_t grp;
};
struct ms_tls_mod { intptr_t off; uintptr_t size, mod; }; /* [tp + off, tp + off + size) */
struct ms_graph {
    int want, failed;
    uint64_t *eoff;            /* per block: first edge in elog, UINT64_MAX = not scanned */
    uint32_t *ecnt;
    size_t cap_blk;
    uint64_t *elog;            /* (block index << 1 | interior) << 32 | offset of the pointer in
                                  the source block (UINT32_MAX: 4 GiB or more) */
    size_t elen, ecap;
    struct ms_root_edge *re;
    size_t nre, cap_re;
    struct ms_root_group *grp;
    size_t ngrp, cap_grp;
    struct ms_tls_mod tls[64];
    int ntls;
};
extern struct ms_graph ms_graph MS_HIDDEN;
/* before stopping the world; with_tls: find the modules' static TLS
 * (dl_iterate_phdr: the loader's lock; not from a fatal signal's handler) */
void ms_graph_prepare(int with_tls) MS_HIDDEN;
/* after the world restarted: encode and write the graph of res; snap_id 0 = exit check */
void ms_graph_emit(const struct ms_leak_result *res, int snap_id) MS_HIDDEN;
void ms_graph_release(void) MS_HIDDEN;
/* trace_write.c for graph.c */
int ms_trace_is_on(void) MS_HIDDEN;
uint64_t ms_trace_now(void) MS_HIDDEN;
void ms_trace_raw_begin(void) MS_HIDDEN;  /* flush, then hold the file for raw chunks */
void ms_trace_raw_chunk(const uint8_t *data, uint32_t len) MS_HIDDEN;
void ms_trace_raw_end(void) MS_HIDDEN;

#if defined(__x86_64__)
/* A system call made directly, six arguments in registers; returns -errno
 * and leaves errno alone (the stop-the-world tracer, which has no TLS of
 * its own, and the agent's syscall()). */
static inline long ms_rsys(long n, long a, long b, long c, long d, long e, long f)
{
    long r;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}
#endif

#endif
