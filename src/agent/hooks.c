/* hooks.c - the interposed allocation functions.
 *
 * Every entry point follows one pattern:
 *   1. before the real functions are known (dlsym itself allocates), serve
 *      from a static bootstrap buffer;
 *   2. on the reporting thread, serve from the agent's region (region.c);
 *   3. when tracking is off, pass straight through;
 *   4. when re-entered (a signal handler that allocates, interrupting this
 *      thread inside a hook), do the real call and defer the bookkeeping to
 *      the interrupted hook, which drains it before it returns;
 *   5. otherwise call the real function, then record or check the block.
 * errno is what the real function left; the agent's own work never shows.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "unwind.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

struct ms_real ms_real;
int ms_glibc_malloc;
__thread struct ms_tstate ms_ts __attribute__((tls_model("initial-exec")));

const char *const ms_alloc_fn_names[] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "operator new(unsigned long)",
    "operator new[](unsigned long)", "operator new(unsigned long, std::nothrow_t const&)",
    "operator new[](unsigned long, std::nothrow_t const&)",
    "operator new(unsigned long, std::align_val_t)",
    "operator new[](unsigned long, std::align_val_t)",
};

/* ---- bootstrap ---------------------------------------------------------- */
static char boot_buf[256 * 1024] __attribute__((aligned(64)));
static _Atomic size_t boot_used;
static int resolving;

static int in_boot(const void *p)
{
    return (const char *)p >= boot_buf && (const char *)p < boot_buf + sizeof boot_buf;
}

static void *boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    for (;;) {
        size_t old = atomic_load(&boot_used);
        size_t at = (old + 16 + align - 1) & ~(align - 1); /* 16 bytes for the size */
        if (at + n > sizeof boot_buf)
            return NULL;
        if (atomic_compare_exchange_weak(&boot_used, &old, at + n)) {
            ((size_t *)(boot_buf + at))[-1] = n;
            return boot_buf + at;
        }
    }
}

void ms_hooks_resolve(void)
{
    if (ms_real.malloc)
        return;
    resolving = 1;
    struct ms_real r;
    r.malloc = dlsym(RTLD_NEXT, "malloc");
    r.free = dlsym(RTLD_NEXT, "free");
    r.calloc = dlsym(RTLD_NEXT, "calloc");
    r.realloc = dlsym(RTLD_NEXT, "realloc");
    r.memalign = dlsym(RTLD_NEXT, "memalign");
    r.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    r.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    r.valloc = dlsym(RTLD_NEXT, "valloc");
    r.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    r.malloc_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    Dl_info di;
    ms_glibc_malloc = r.malloc && dladdr((void *)r.malloc, &di) && di.dli_fname &&
                      strstr(di.dli_fname, "/libc.so") != NULL;
    ms_real = r;
    resolving = 0;
}

static inline int ready(void)
{
    if (MS_UNLIKELY(!ms_real.malloc)) {
        if (resolving)
            return 0;
        ms_init();
        if (!ms_real.malloc)
            return 0;
    }
    return 1;
}

/* ---- stack capture ---------------------------------------------------- */
/* text of the libraries the agent itself calls into (libc: memcmp,
 * explicit_bzero, pthread_mutex_lock...; libunwind), found at start */
static uintptr_t callee_lo[2], callee_hi[2];

static int note_callee(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const uintptr_t *probe = data;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && probe[k] >= lo && probe[k] < hi) {
                callee_lo[k] = lo;
                callee_hi[k] = hi;
            }
        }
    return 0;
}

void ms_hooks_late_init(void)
{
    uintptr_t probe[2] = { (uintptr_t)(void *)&memcmp, (uintptr_t)(void *)&unw_backtrace };
    dl_iterate_phdr(note_callee, probe);
}

static int is_callee(uintptr_t pc)
{
    return (pc >= callee_lo[0] && pc < callee_hi[0]) || (pc >= callee_lo[1] && pc < callee_hi[1]);
}

/* pc is glibc's signal return trampoline (the return address of a signal
 * handler's frame); only libc's text is read, never across a page end */
static int is_restorer(uintptr_t pc)
{
    const size_t n = sizeof ms_restore_rt_code;
    if (!is_callee(pc) || (pc & 4095) > 4096 - n)
        return 0;
    return memcmp((const void *)pc, ms_restore_rt_code, n) == 0;
}

/* Keep the program's frames of a captured stack: drop the agent's own
 * frames (the hooks at the start, the thread-start and pthread_create
 * wrappers in the middle) and, where a signal interrupted the agent, the
 * library code the agent was running (memcmp, a mutex, libunwind): the
 * frames between a signal trampoline and an agent frame.  Returns the
 * number kept.  *lead: the number of leading frames dropped when the kept
 * ones are exactly the rest (the common case, none cut at max_keep), else
 * -1. */
static int program_frames(uintptr_t *pcs, int n, int max_keep, int *lead)
{
    *lead = -1;
    const uintptr_t lo = ms_self_lo, len = ms_self_hi - ms_self_lo;
    int keep = 0, i = 0;
    /* the common case: the hooks' frames, then none of ours */
    while (i < n && pcs[i] - lo < len)
        i++;
    int j0 = i;
    while (i < n && pcs[i] - lo >= len)
        i++;
    if (i == n) {
        keep = n - j0 < max_keep ? n - j0 : max_keep;
        if (keep == n - j0)
            *lead = j0;
        memmove(pcs, pcs + j0, (size_t)keep * sizeof *pcs);
        return keep;
    }
    for (i = 0; i < n && keep < max_keep; i++) {
        if (pcs[i] - lo >= len) {
            pcs[keep++] = pcs[i];
            continue;
        }
        int j = keep - 1;
        while (j >= 0 && !is_restorer(pcs[j]) && is_callee(pcs[j]))
            j--;
        if (j >= 0 && j < keep - 1 && is_restorer(pcs[j]))
            keep = j + 1;
    }
    return keep;
}

/* The pcs of a capture: per thread, not on the stack.  Every caller of
 * ms_capture_stack has marked the hooks busy, so a signal handler's
 * allocation is deferred and never comes back here while it runs.  On the
 * stack, this 2 KB buffer would put the unwinder's frames, which save the
 * caller's registers (the new block's address among them), 2.5 KB below
 * the program's frame, beyond the reach of the hook's final scrub. */
static __thread uintptr_t cap_pcs[MS_MAX_FRAMES] __attribute__((tls_model("initial-exec")));

uint32_t ms_capture_stack(void)
{
    uintptr_t *buf = cap_pcs;
    ms_ts.scrub_due = 1;
    int want = ms_opt.num_callers + 6;
    if (want > MS_MAX_FRAMES)
        want = MS_MAX_FRAMES;
    ms_ts.in_unwind = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    /* our own unwinder (unwind.h); the verification mode also runs
     * unw_backtrace and counts the stacks that differ */
    int n = MS_UNLIKELY(ms_verify_unwind) ? ms_unwind_capture_verify(buf, want) : ms_unwind_capture(buf, want);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ms_ts.in_unwind = 0;
    /* the stack ids of stacks seen before are kept by the unwinder: in
     * its stack-id cache, and with its template for an unchanged stack
     * (every caller of this function has marked the hooks busy: a signal
     * handler's capture cannot come between) */
    uint32_t kid = ms_unwind_kept_id();
    if (kid && MS_LIKELY(!ms_verify_unwind))
        return kid;
    int same;
    uint32_t *tag = ms_unwind_stack_tag(&same);
    if (tag && same && *tag)
        return *tag;
    /* --num-callers counts the allocation function's own line, as valgrind's */
    int lead;
    int keep = program_frames(buf, n, ms_opt.num_callers - 1, &lead);
    uint32_t id = keep > 0 ? ms_stack_intern(buf, keep) : 0;
    if (kid) { /* the verification mode: the cache's id must be this one */
        ms_unwind_verify_kept_id(kid == id);
        return id;
    }
    if (tag)
        *tag = id;
    if (id && lead > 0)
        ms_unwind_keep_id(id, lead);
    return id;
}

/* ---- re-entrancy: deferred bookkeeping -------------------------------- */
enum { OP_ALLOC = 1, OP_FREE = 2 };

#define NPEND (sizeof ms_ts.pending / sizeof ms_ts.pending[0])
#define NPCS (sizeof ms_ts.pend_pcs / sizeof ms_ts.pend_pcs[0])
#define PCS_MAX ((int)(sizeof ms_ts.pend_pcs[0] / sizeof ms_ts.pend_pcs[0][0]))
static _Atomic unsigned long pend_lost_total, pend_nostack_total;

/* Called from a signal handler that interrupted a hook of this thread.  The
 * queue is a ring: the handler only writes the entry at tail and then moves
 * tail; the drain only reads the entry at head and then moves head.  A
 * handler runs to its end before the code it interrupted goes on, so an
 * entry is never written and read at the same time.  Allocations take the
 * stacks' own ring (pcs_tail / pcs_head) in the same order. */
static void defer(int op, uintptr_t addr, uint64_t size, int kind)
{
    ms_ts.scrub_due = 1;
    unsigned t = ms_ts.pend_tail;
    if (t - ms_ts.pend_head >= NPEND) {
        ms_ts.pend_lost++; /* said at exit */
        return;
    }
    __typeof__(&ms_ts.pending[0]) e = &ms_ts.pending[t % NPEND];
    e->op = op;
    e->addr = addr;
    e->size = size;
    e->kind = kind;
    e->npcs = 0;
    e->slot = 0;
    unsigned pt = ms_ts.pcs_tail;
    if (op == OP_ALLOC && pt - ms_ts.pcs_head >= NPCS)
        ms_ts.pend_nostack++; /* said at exit */
    if (op == OP_ALLOC && pt - ms_ts.pcs_head < NPCS) {
        /* the unwinder is re-entrant: a capture nested in another one on
         * this thread leaves the per-thread caches alone */
        ms_unwind_nocache(1);
        e->npcs = ms_unwind_capture(ms_ts.pend_pcs[pt % NPCS], PCS_MAX);
        ms_unwind_nocache(0);
        e->slot = 1;
        ms_ts.pcs_tail = pt + 1;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ms_ts.pend_tail = t + 1;
}

static void drain_pending(void)
{
    if (MS_UNLIKELY(ms_ts.pend_lost)) {
        atomic_fetch_add(&pend_lost_total, ms_ts.pend_lost);
        ms_ts.pend_lost = 0;
    }
    if (MS_UNLIKELY(ms_ts.pend_nostack)) {
        atomic_fetch_add(&pend_nostack_total, ms_ts.pend_nostack);
        ms_ts.pend_nostack = 0;
    }
    while (ms_ts.pend_head != ms_ts.pend_tail) {
        unsigned h = ms_ts.pend_head;
        __typeof__(&ms_ts.pending[0]) e = &ms_ts.pending[h % NPEND];
        uintptr_t addr = e->addr;
        uint64_t size = e->size;
        int op = e->op, kind = e->kind;
        uint32_t st = 0;
        if (e->slot) {
            uintptr_t *pcs = ms_ts.pend_pcs[ms_ts.pcs_head % NPCS];
            int lead;
            int keep = program_frames(pcs, e->npcs, ms_opt.num_callers - 1, &lead);
            st = keep > 0 ? ms_stack_intern(pcs, keep) : 0;
            /* no stale copy may stay: this TLS is scanned as a root */
            memset(pcs, 0, sizeof ms_ts.pend_pcs[0]);
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            ms_ts.pcs_head++;
        }
        memset(e, 0, sizeof *e);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        ms_ts.pend_head = h + 1;
        if (op == OP_ALLOC)
            ms_table_insert(addr, size, st, kind, kind == MS_AK_MALLOC ? MS_FN_MALLOC : MS_FN_NEW);
        else
            ms_table_release(addr, NULL);
    }
}

unsigned long ms_hooks_lost_deferred(unsigned long *nostack)
{
    *nostack = atomic_load(&pend_nostack_total) + ms_ts.pend_nostack;
    return atomic_load(&pend_lost_total) + ms_ts.pend_lost;
}

void ms_leave_busy(void)
{
    for (;;) {
        drain_pending();
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        ms_ts.busy = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        /* a handler that came after the last check queued its work: take it */
        if (MS_LIKELY(ms_ts.pend_head == ms_ts.pend_tail))
            break;
        ms_ts.busy = 1;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    }
    if (ms_ts.park_pending) {
        ms_ts.park_pending = 0;
        ms_park_self();
    }
}

static inline void enter_busy(void)
{
    ms_ts.busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* ---- common paths -------------------------------------------------------- */
static void record(void *p, size_t size, int kind, int fn)
{
    int e = errno;
    enter_busy();
    uint32_t st = ms_capture_stack();
    ms_table_insert((uintptr_t)p, size, st, kind, fn);
    ms_leave_busy();
    errno = e;
}

/* mode of a hook call: 0 track, 1 pass through, 2 report heap, 3 deferred */
static inline int mode(void)
{
    if (MS_UNLIKELY(ms_ts.in_report))
        return 2;
    if (MS_UNLIKELY(!ms_active))
        return 1;
    if (MS_UNLIKELY(ms_ts.busy))
        return 3;
    return 0;
}

/* After an allocation returns, copies of the new pointer stay in the dead
 * stack below the caller (the red zone, scanned as live when a thread is
 * stopped or dies of a signal, and deeper: the prologues of the unwinder's
 * functions save the caller's registers, which hold it) and in scratch
 * registers: the hooks' own frames put them there, which valgrind's never
 * do.  A program frame that later covers that dead stack without writing
 * it (a large uninitialized local) keeps the copy live and makes a lost
 * block reachable (tests/cases/stale_stack_copy.c).  Overwrite both.  The
 * hooks' common paths reach SCRUB_BYTES below the caller (measured with
 * that case's method: scan the dead stack for the returned pointer right
 * after the call returns; tests/e2e/progs/stale_copies.c checks it); a
 * capture through libunwind or a table build reaches much further, and is
 * followed by a 16 KB clear. */
#define SCRUB_BYTES 1024
static __attribute__((noinline)) void scrub_deep(void)
{
    char buf[16384];
    explicit_bzero(buf, sizeof buf);
}

static __attribute__((noinline)) void scrub(void)
{
    char buf[SCRUB_BYTES];
    explicit_bzero(buf, sizeof buf);
    if (MS_UNLIKELY(ms_unwind_took_deep()))
        scrub_deep();
    __asm__ volatile("xor %%ecx, %%ecx\n\txor %%edx, %%edx\n\txor %%esi, %%esi\n\txor %%edi, %%edi\n\t"
                     "xor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\txor %%r11d, %%r11d"
                     ::: "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
}

/* with --sample-rate, a call that recorded nothing left copies of an
 * unrecorded block only (not a node of the scan): no scrub */
static inline void scrub_if_due(void)
{
    if (MS_LIKELY(!ms_opt.sample_rate) || ms_ts.scrub_due) {
        ms_ts.scrub_due = 0;
        scrub();
    }
}

#define SCRUBBED(expr)            \
    do {                          \
        void *r_ = (expr);        \
        scrub_if_due();           \
        return r_;                \
    } while (0)

/* ---- sampling (--sample-rate=BYTES) -------------------------------------
 * As tcmalloc's heap profiler: each thread counts down the bytes it
 * allocates; the allocation that takes the count below zero is recorded
 * and the next count is drawn from an exponential distribution of mean
 * BYTES, so that every byte has the same chance 1/BYTES of being the one
 * (a block of s bytes is recorded with probability 1 - exp(-s/BYTES)).
 * The blocks not recorded cost a subtraction here and, at free, one load:
 * a table of counters indexed by a hash of the address says "none of the
 * recorded blocks hashes here" for nearly every unrecorded address. */
#define SFILTER_BITS 18 /* 1 MiB of counters */
static _Atomic uint32_t *sfilter;
static _Atomic uint32_t sample_threads;
static __thread int64_t sample_left __attribute__((tls_model("initial-exec")));
static __thread uint64_t sample_rng __attribute__((tls_model("initial-exec")));

/* Nearby addresses share the counters' cache lines and pages: the index is
 * the address's 16-byte granule within its 4 MiB window, xor a hash of the
 * window (so that glibc's 64 MiB-aligned arenas do not all fall on the same
 * counters).  A hash of the whole address put every free on a random page
 * of the table: a cache and TLB miss each time, and on a VM about 20 us for
 * the first touch of each of its pages (zero pages, read). */
static inline size_t sfilter_idx(uintptr_t a)
{
    uint64_t w = ((uint64_t)(a >> (SFILTER_BITS + 4)) * 0x9e3779b97f4a7c15ull) >> (64 - SFILTER_BITS);
    return (size_t)(((a >> 4) ^ w) & ((1u << SFILTER_BITS) - 1));
}

/* the next gap, in bytes: -ln(u) * rate, u uniform in (0, 1] */
static __attribute__((noinline)) int64_t sample_gap(void)
{
    if (!sample_rng) /* threads in the order they first sample: runs repeat */
        sample_rng = 0x9e3779b97f4a7c15ull * (atomic_fetch_add(&sample_threads, 1) + 1) | 1;
    uint64_t x = sample_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sample_rng = x;
    double u = (double)((x >> 11) + 1) * (1.0 / 9007199254740992.0);
    double g = -__builtin_log(u) * (double)ms_opt.sample_rate;
    return g < 1.0 ? 1 : g > 9e18 ? (int64_t)9e18 : (int64_t)g;
}

/* 1: record this allocation of n bytes */
static inline int sample_take(size_t n)
{
    if (MS_LIKELY((sample_left -= (int64_t)n) > 0))
        return 0;
    if (!sfilter && !(sfilter = ms_region_alloc(sizeof(uint32_t) << SFILTER_BITS)))
        return 1;
    sample_left = sample_gap();
    return 1;
}

static inline void sample_mark(uintptr_t p)
{
    if (sfilter)
        atomic_fetch_add_explicit(&sfilter[sfilter_idx(p)], 1, memory_order_relaxed);
}

/* 0: p is surely not a recorded block */
static inline int sample_maybe(uintptr_t p)
{
    return sfilter && atomic_load_explicit(&sfilter[sfilter_idx(p)], memory_order_relaxed) != 0;
}

static inline void sample_unmark(uintptr_t p)
{
    if (sfilter)
        atomic_fetch_sub_explicit(&sfilter[sfilter_idx(p)], 1, memory_order_relaxed);
}

static __attribute__((noinline)) void *alloc_common(size_t n, size_t align, int kind, int fn, int zero, size_t nmemb)
{
    if (!ready()) {
        size_t total = zero ? nmemb * n : n;
        if (zero && n && total / n != nmemb)
            return NULL;
        return boot_alloc(total, align); /* bootstrap memory is zero */
    }
    void *p;
    int m = mode();
    if (m == 2) {
        size_t total = zero ? nmemb * n : n;
        p = align > 16 ? ms_rmemalign(align, total) : ms_rmalloc(total);
        if (p && zero)
            memset(p, 0, total);
        return p;
    }
    size_t size;
    if (zero) {
        p = ms_real.calloc(nmemb, n);
        size = nmemb * n;
    } else if (align) {
        if (fn == MS_FN_VALLOC)
            p = ms_real.valloc(n);
        else if (fn == MS_FN_PVALLOC)
            p = ms_real.pvalloc(n);
        else if (fn == MS_FN_ALIGNED_ALLOC)
            p = ms_real.aligned_alloc(align, n);
        else
            p = ms_real.memalign(align, n);
        size = n;
        if (fn == MS_FN_PVALLOC) {
            long pg = sysconf(_SC_PAGESIZE);
            size = n ? (n + (size_t)pg - 1) & ~((size_t)pg - 1) : (size_t)pg;
        }
    } else {
        p = ms_real.malloc(n);
        size = n;
    }
    if (!p)
        return NULL;
    if (MS_UNLIKELY(ms_opt.malloc_fill >= 0) && !zero)
        memset(p, ms_opt.malloc_fill, size);
    if (MS_UNLIKELY(ms_opt.sample_rate)) {
        if (!sample_take(size))
            return p;
        sample_mark((uintptr_t)p);
    }
    if (m == 0)
        record(p, size, kind, fn);
    else if (m == 3)
        defer(OP_ALLOC, (uintptr_t)p, size, kind);
    return p;
}

static int kind_ok(int block_kind, int dealloc_kind)
{
    return block_kind == dealloc_kind;
}

static const char *dealloc_name(int kind, const char *fn)
{
    if (fn)
        return fn;
    return kind == MS_AK_MALLOC ? "free" : kind == MS_AK_NEW ? "operator delete(void*)" : "operator delete[](void*)";
}

/* free, delete, delete[]: check, then release */
static void free_common(void *p, int kind, const char *fnname)
{
    if (!p || in_boot(p))
        return;
    if (ms_region_contains((uintptr_t)p)) {
        ms_rfree(p);
        return;
    }
    if (!ms_real.free) {
        ms_hooks_resolve();
        if (!ms_real.free)
            return;
    }
    int m = mode();
    if (m == 2)
        return; /* the reporting thread frees only what it got from the region */
    if (m == 1 || (MS_UNLIKELY(ms_opt.sample_rate) && !sample_maybe((uintptr_t)p))) {
        ms_real.free(p);
        return;
    }
    if (m == 3) {
        defer(OP_FREE, (uintptr_t)p, 0, kind);
        ms_real.free(p);
        return;
    }
    int e = errno;
    enter_busy();
    struct ms_block b;
    if (ms_table_release((uintptr_t)p, &b)) {
        if (MS_UNLIKELY(ms_opt.sample_rate))
            sample_unmark((uintptr_t)p);
        /* the stack of a free costs as much as an allocation's: only kept
         * when asked (valgrind's --keep-stacktraces) or for an error */
        int bad = !kind_ok(b.kind, kind);
        uint32_t st = bad || ms_opt.keep_free_stacks ? ms_capture_stack() : 0;
        if (bad)
            ms_error_record(MS_ERR_MISMATCHED_FREE, st, (uintptr_t)p, 1, b.size, b.stack, 0,
                            b.fn, dealloc_name(kind, fnname));
        if (st)
            ms_freed_remember((uintptr_t)p, b.size, b.stack, st);
        if (MS_UNLIKELY(ms_opt.free_fill >= 0))
            memset(p, ms_opt.free_fill, b.size);
        ms_real.free(p);
    } else if (ms_opt.sample_rate) {
        ms_real.free(p); /* a block that was not recorded (its hash is shared) */
    } else {
        /* never allocated, or already freed: report, keep it from the allocator */
        uint32_t st = ms_capture_stack();
        uint64_t size = 0;
        uint32_t ast = 0, fst = 0;
        int known = ms_freed_lookup((uintptr_t)p, &size, &ast, &fst);
        ms_error_record(MS_ERR_INVALID_FREE, st, (uintptr_t)p, known, size, ast, fst, -1,
                        dealloc_name(kind, fnname));
    }
    ms_leave_busy();
    errno = e;
}

/* ---- the C allocation API ------------------------------------------------ */
#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n)
{
    SCRUBBED(alloc_common(n, 0, MS_AK_MALLOC, MS_FN_MALLOC, 0, 1));
}

EXPORT void *calloc(size_t nmemb, size_t n)
{
    SCRUBBED(alloc_common(n, 0, MS_AK_MALLOC, MS_FN_CALLOC, 1, nmemb));
}

EXPORT void free(void *p)
{
    free_common(p, MS_AK_MALLOC, "free");
}

EXPORT void cfree(void *p)
{
    free_common(p, MS_AK_MALLOC, "free");
}

static __attribute__((noinline)) void *realloc_common(void *p, size_t n, int fn)
{
    if (!p)
        return alloc_common(n, 0, MS_AK_MALLOC, fn, 0, 1);
    if (in_boot(p) || ms_region_contains((uintptr_t)p)) {
        size_t old = in_boot(p) ? ((size_t *)p)[-1] : ms_rsize(p);
        void *q = alloc_common(n, 0, MS_AK_MALLOC, fn, 0, 1);
        if (q) {
            memcpy(q, p, old < n ? old : n);
            if (!in_boot(p))
                ms_rfree(p);
        }
        return q;
    }
    if (!ready())
        return NULL;
    int m = mode();
    if (m == 2)
        return NULL;
    if (m == 1)
        return ms_real.realloc(p, n);
    if (MS_UNLIKELY(ms_opt.sample_rate)) {
        /* a block that was not recorded: the new one is an allocation of
         * its own for the sampler; a recorded one stays recorded */
        int was = sample_maybe((uintptr_t)p);
        if (was && m == 0) {
            int e0 = errno;
            enter_busy();
            int found = ms_table_lookup((uintptr_t)p, NULL);
            ms_leave_busy();
            errno = e0;
            was = found;
        }
        if (!was) {
            void *q = ms_real.realloc(p, n);
            if (q && sample_take(n)) {
                sample_mark((uintptr_t)q);
                if (m == 0)
                    record(q, n, MS_AK_MALLOC, fn);
                else
                    defer(OP_ALLOC, (uintptr_t)q, n, MS_AK_MALLOC);
            }
            return q;
        }
    }
    if (m == 3) {
        void *q = ms_real.realloc(p, n);
        if ((q || n == 0) && MS_UNLIKELY(ms_opt.sample_rate))
            sample_unmark((uintptr_t)p);
        if (q && MS_UNLIKELY(ms_opt.sample_rate))
            sample_mark((uintptr_t)q);
        if (q || n == 0)
            defer(OP_FREE, (uintptr_t)p, 0, MS_AK_MALLOC);
        if (q)
            defer(OP_ALLOC, (uintptr_t)q, n, MS_AK_MALLOC);
        return q;
    }
    int e = errno;
    enter_busy();
    struct ms_block b;
    if (!ms_table_lookup((uintptr_t)p, &b)) {
        uint32_t st = ms_capture_stack();
        uint64_t size = 0;
        uint32_t ast = 0, fst = 0;
        int known = ms_freed_lookup((uintptr_t)p, &size, &ast, &fst);
        ms_error_record(MS_ERR_INVALID_FREE, st, (uintptr_t)p, known, size, ast, fst, -1, "realloc");
        ms_leave_busy();
        errno = e;
        return NULL;
    }
    void *q = ms_real.realloc(p, n);
    int e2 = errno;
    if (q && MS_UNLIKELY(ms_opt.malloc_fill >= 0) && n > b.size)
        memset((char *)q + b.size, ms_opt.malloc_fill, n - b.size);
    if (q || n == 0) {
        ms_table_release((uintptr_t)p, NULL);
        if (MS_UNLIKELY(ms_opt.sample_rate)) {
            sample_unmark((uintptr_t)p);
            if (q)
                sample_mark((uintptr_t)q);
        }
        if (q) {
            uint32_t st = ms_capture_stack();
            ms_table_insert((uintptr_t)q, n, st, MS_AK_MALLOC, fn);
        }
    }
    ms_leave_busy();
    errno = q ? e : e2;
    return q;
}

EXPORT void *realloc(void *p, size_t n)
{
    SCRUBBED(realloc_common(p, n, MS_FN_REALLOC));
}

EXPORT void *reallocarray(void *p, size_t nmemb, size_t n)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    SCRUBBED(realloc_common(p, total, MS_FN_REALLOCARRAY));
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    int e = errno;
    void *p = alloc_common(n, align, MS_AK_MALLOC, MS_FN_POSIX_MEMALIGN, 0, 1);
    if (!p) {
        errno = e;
        return ENOMEM;
    }
    *out = p;
    scrub_if_due();
    return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    SCRUBBED(alloc_common(n, align, MS_AK_MALLOC, MS_FN_ALIGNED_ALLOC, 0, 1));
}

EXPORT void *memalign(size_t align, size_t n)
{
    SCRUBBED(alloc_common(n, align ? align : 1, MS_AK_MALLOC, MS_FN_MEMALIGN, 0, 1));
}

EXPORT void *valloc(size_t n)
{
    SCRUBBED(alloc_common(n, 4096, MS_AK_MALLOC, MS_FN_VALLOC, 0, 1));
}

EXPORT void *pvalloc(size_t n)
{
    SCRUBBED(alloc_common(n, 4096, MS_AK_MALLOC, MS_FN_PVALLOC, 0, 1));
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (in_boot(p))
        return ((size_t *)p)[-1];
    if (ms_region_contains((uintptr_t)p))
        return ms_rsize(p);
    if (!ready() || !ms_real.malloc_usable_size)
        return 0;
    return ms_real.malloc_usable_size(p);
}

/* ---- C++ operators (mangled names: this file is C) ------------------------ */
static void *(*next_new)(size_t);
static void *(*next_new_array)(size_t);

static void *new_fail(size_t n, int array)
{
    /* out of memory: let libstdc++ run the new_handler and throw; its own
     * malloc call comes back through our malloc, so retag the block */
    void *(**slot)(size_t) = array ? &next_new_array : &next_new;
    if (!*slot)
        *slot = dlsym(RTLD_NEXT, array ? "_Znam" : "_Znwm");
    if (!*slot)
        abort();
    void *p = (*slot)(n);
    if (p && ms_active)
        ms_table_set_kind((uintptr_t)p, array ? MS_AK_NEW_ARRAY : MS_AK_NEW,
                          array ? MS_FN_NEW_ARRAY : MS_FN_NEW);
    return p;
}

EXPORT void *_Znwm(size_t n)
{
    void *p = alloc_common(n, 0, MS_AK_NEW, MS_FN_NEW, 0, 1);
    SCRUBBED(p ? p : new_fail(n, 0));
}
EXPORT void *_Znam(size_t n)
{
    void *p = alloc_common(n, 0, MS_AK_NEW_ARRAY, MS_FN_NEW_ARRAY, 0, 1);
    SCRUBBED(p ? p : new_fail(n, 1));
}
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{
    (void)nt;
    SCRUBBED(alloc_common(n, 0, MS_AK_NEW, MS_FN_NEW_NOTHROW, 0, 1));
}
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt)
{
    (void)nt;
    SCRUBBED(alloc_common(n, 0, MS_AK_NEW_ARRAY, MS_FN_NEW_ARRAY_NOTHROW, 0, 1));
}
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al)
{
    void *p = alloc_common(n, al, MS_AK_NEW, MS_FN_NEW_ALIGNED, 0, 1);
    SCRUBBED(p ? p : new_fail(n, 0));
}
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al)
{
    void *p = alloc_common(n, al, MS_AK_NEW_ARRAY, MS_FN_NEW_ARRAY_ALIGNED, 0, 1);
    SCRUBBED(p ? p : new_fail(n, 1));
}
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{
    (void)nt;
    SCRUBBED(alloc_common(n, al, MS_AK_NEW, MS_FN_NEW_ALIGNED, 0, 1));
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{
    (void)nt;
    SCRUBBED(alloc_common(n, al, MS_AK_NEW_ARRAY, MS_FN_NEW_ARRAY_ALIGNED, 0, 1));
}

#define DEL(name, kind, label, ...)                                       \
    EXPORT void name(void *p, ##__VA_ARGS__) { free_common(p, kind, label); }
#define S __attribute__((unused)) size_t
#define NT __attribute__((unused)) const void *
DEL(_ZdlPv, MS_AK_NEW, "operator delete(void*)")
DEL(_ZdaPv, MS_AK_NEW_ARRAY, "operator delete[](void*)")
DEL(_ZdlPvm, MS_AK_NEW, "operator delete(void*, unsigned long)", S a)
DEL(_ZdaPvm, MS_AK_NEW_ARRAY, "operator delete[](void*, unsigned long)", S a)
DEL(_ZdlPvRKSt9nothrow_t, MS_AK_NEW, "operator delete(void*, std::nothrow_t const&)", NT a)
DEL(_ZdaPvRKSt9nothrow_t, MS_AK_NEW_ARRAY, "operator delete[](void*, std::nothrow_t const&)", NT a)
DEL(_ZdlPvSt11align_val_t, MS_AK_NEW, "operator delete(void*, std::align_val_t)", S a)
DEL(_ZdaPvSt11align_val_t, MS_AK_NEW_ARRAY, "operator delete[](void*, std::align_val_t)", S a)
DEL(_ZdlPvmSt11align_val_t, MS_AK_NEW, "operator delete(void*, unsigned long, std::align_val_t)", S a, S b)
DEL(_ZdaPvmSt11align_val_t, MS_AK_NEW_ARRAY, "operator delete[](void*, unsigned long, std::align_val_t)", S a, S b)
DEL(_ZdlPvSt11align_val_tRKSt9nothrow_t, MS_AK_NEW, "operator delete(void*, std::align_val_t, std::nothrow_t const&)", S a, NT b)
DEL(_ZdaPvSt11align_val_tRKSt9nothrow_t, MS_AK_NEW_ARRAY, "operator delete[](void*, std::align_val_t, std::nothrow_t const&)", S a, NT b)
