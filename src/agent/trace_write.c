/* trace_write.c - the agent's side of the trace (docs/trace-format.md).
 *
 * Events are appended to one buffer per table shard, under the shard's own
 * lock (table.c calls in here with it held): no extra lock on the hot path,
 * and for one address the ALLOC and FREE records keep program order.  A full
 * buffer goes to a lock-free queue; a writer thread wakes every 10 ms, takes
 * an RSS sample, and every 50 ms collects the full buffers and steals the
 * partly filled ones, then writes the stacks first and the events after,
 * each buffer as one zstd chunk.  A program killed by SIGKILL loses at most
 * the last 50 ms.  The writer's own mallocs (zstd) are served from the
 * agent's region; it blocks every signal, so the program's handlers never
 * run on it, and stop-the-world leaves it alone.
 *
 * The trace descriptor is kept at a high number and checked (device and
 * inode) before each write: a daemon that closes every descriptor, or
 * dup2()s over ours, must never receive trace bytes in its own files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define BUF_BYTES (64 * 1024)
#define BUF_SLACK 256 /* room for one record past the soft end */
#define NSHARD 64

struct evbuf {
    struct evbuf *next;   /* queue / free list link */
    uint64_t seq;         /* when it became a shard's current buffer: write order */
    uint32_t len;
    uint64_t t, a;        /* delta state (reset per chunk) */
    uint8_t data[BUF_BYTES + BUF_SLACK];
};

/* tracing: also read by table.c, which takes each event's counter reading
 * before its shard lock (ms_trace_stamp) */
int ms_trace_on MS_HIDDEN;
#define trace_on ms_trace_on
static int trace_fd = -1;
static dev_t trace_dev;
static ino_t trace_ino;
static char trace_path[1200];
static uint64_t t0_ns;
static struct evbuf *shard_buf[NSHARD];
static struct evbuf *stack_buf, *misc_buf;      /* misc: modules, samples, fork, end */
static _Atomic(struct evbuf *) full_events, full_stacks, free_bufs;
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t misc_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t writer_tid;
static volatile int writer_stop;
static unsigned long long mod_adds, mod_subs;
static _Atomic uint64_t lost_events;
static _Atomic uint64_t buf_seq;
static int failed_once;
/* glibc's count of live threads (GLIBC_PRIVATE, exported for libthread_db):
 * the thread that takes it to zero calls exit(0).  That is how a program
 * whose main thread ends with pthread_exit exits when its last thread
 * returns.  The writer is the agent's, not the program's: it takes itself
 * off the count, or such a program would never exit.  NULL: not found (the
 * writer then counts, as any thread). */
static unsigned int *nptl_nthreads;

pid_t ms_trace_writer_tid(void)
{
    return writer_tid;
}

/* ---- time and encoding --------------------------------------------------- */
static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - t0_ns;
}

/* Event times: the CPU's time-stamp counter scaled to nanoseconds of the
 * monotonic clock.  An rdtsc costs about a third of a clock_gettime through
 * the vDSO on these machines (12 against 33 ns), and every allocation and
 * free takes one.  The scale is measured by the agent's thread against
 * CLOCK_MONOTONIC over the whole run so far (about every 10 ms; the error
 * shrinks as the run gets longer); each new scale starts from the clock's
 * own reading, so the clock never jumps.  Until the first measurement, and
 * on CPUs without an invariant TSC, the monotonic clock is read directly.
 * Records keep times non-decreasing within a chunk (now_at). */
static struct {
    uint32_t seq; /* odd while the writer changes the rest */
    uint64_t tsc_base, ns_base, mult; /* ns = ns_base + (tsc - tsc_base) * mult >> 32 */
} clk;
static int clk_on;    /* the scale is set: read the TSC */
static int clk_usable = -1; /* invariant TSC (-1: not checked yet) */
static uint64_t clk_tsc0, clk_ns0; /* the first pair, where the scale is measured from */

static inline uint64_t now_ns(void)
{
    if (!__atomic_load_n(&clk_on, __ATOMIC_ACQUIRE))
        return mono_ns();
    for (;;) {
        uint32_t s = __atomic_load_n(&clk.seq, __ATOMIC_ACQUIRE);
        uint64_t tb = __atomic_load_n(&clk.tsc_base, __ATOMIC_RELAXED), nb = __atomic_load_n(&clk.ns_base, __ATOMIC_RELAXED),
                 m = __atomic_load_n(&clk.mult, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((s & 1) || __atomic_load_n(&clk.seq, __ATOMIC_RELAXED) != s)
            continue;
        int64_t d = (int64_t)(__builtin_ia32_rdtsc() - tb);
        if (d < 0) /* a CPU whose counter is a little behind */
            d = 0;
        return nb + (uint64_t)(((unsigned __int128)(uint64_t)d * m) >> 32);
    }
}

static inline uint64_t now_at(const struct evbuf *b)
{
    uint64_t t = now_ns();
    return t < b->t ? b->t : t;
}

/* now_at for a time-stamp counter reading taken a little earlier
 * (ms_trace_stamp: before the shard lock, so that the counter's latency
 * overlaps the lock and the table work instead of adding to them) */
static inline uint64_t now_at_tsc(const struct evbuf *b, uint64_t tsc)
{
    uint64_t t;
    if (!__atomic_load_n(&clk_on, __ATOMIC_ACQUIRE)) {
        t = mono_ns();
    } else {
        for (;;) {
            uint32_t s = __atomic_load_n(&clk.seq, __ATOMIC_ACQUIRE);
            uint64_t tb = __atomic_load_n(&clk.tsc_base, __ATOMIC_RELAXED),
                     nb = __atomic_load_n(&clk.ns_base, __ATOMIC_RELAXED), m = __atomic_load_n(&clk.mult, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if ((s & 1) || __atomic_load_n(&clk.seq, __ATOMIC_RELAXED) != s)
                continue;
            int64_t d = (int64_t)(tsc - tb);
            if (d < 0) /* read before a new scale was set, or a CPU a little behind */
                d = 0;
            t = nb + (uint64_t)(((unsigned __int128)(uint64_t)d * m) >> 32);
            break;
        }
    }
    return t < b->t ? b->t : t;
}

static int tsc_invariant(void)
{
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000000u), "c"(0));
    if (a < 0x80000007u)
        return 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000007u), "c"(0));
    return (d >> 8) & 1;
}

/* the agent's thread, about every 10 ms */
static void clock_calibrate(void)
{
    if (clk_usable < 0)
        clk_usable = tsc_invariant();
    if (!clk_usable)
        return;
    uint64_t ns = mono_ns(), tsc = __builtin_ia32_rdtsc();
    if (!clk_tsc0) {
        clk_tsc0 = tsc;
        clk_ns0 = ns;
        return;
    }
    if (ns - clk_ns0 < 10000000 || tsc <= clk_tsc0)
        return;
    uint64_t mult = (uint64_t)((((unsigned __int128)(ns - clk_ns0)) << 32) / (tsc - clk_tsc0));
    uint64_t base = clk_on ? now_ns() : ns;
    __atomic_store_n(&clk.seq, clk.seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&clk.tsc_base, tsc, __ATOMIC_RELAXED);
    __atomic_store_n(&clk.ns_base, base, __ATOMIC_RELAXED);
    __atomic_store_n(&clk.mult, mult, __ATOMIC_RELAXED);
    __atomic_store_n(&clk.seq, clk.seq + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&clk_on, 1, __ATOMIC_RELEASE);
}

static void clock_reset(void)
{
    __atomic_store_n(&clk_on, 0, __ATOMIC_RELEASE);
    clk_tsc0 = clk_ns0 = 0;
}

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *put_svarint(uint8_t *p, int64_t v)
{
    return put_varint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

/* a record: type, length (one or two bytes: payloads stay under 16 KiB), payload */
static inline uint8_t *rec_begin(uint8_t *p, unsigned type, uint8_t **lenpos)
{
    *p++ = (uint8_t)type;
    *lenpos = p;
    return p + 2;
}

static inline uint8_t *rec_end(uint8_t *p, uint8_t *lenpos)
{
    size_t n = (size_t)(p - (lenpos + 2));
    lenpos[0] = (uint8_t)(n | 0x80); /* two-byte varint, even when small */
    lenpos[1] = (uint8_t)(n >> 7);
    return p;
}

/* ALLOC and FREE: their payloads never reach 128 bytes (six varints of at
 * most 10 bytes), so the length takes one byte.  They are nearly every
 * record of a trace: a byte less each is about a tenth of the raw stream
 * the writer compresses (and 4% of the compressed one at level 1). */
static inline uint8_t *rec1_begin(uint8_t *p, unsigned type, uint8_t **lenpos)
{
    *p++ = (uint8_t)type;
    *lenpos = p;
    return p + 1;
}

static inline uint8_t *rec1_end(uint8_t *p, uint8_t *lenpos)
{
    *lenpos = (uint8_t)(p - (lenpos + 1));
    return p;
}

/* ---- buffers ------------------------------------------------------------- */
static struct evbuf *buf_get(void)
{
    struct evbuf *b = atomic_load(&free_bufs);
    while (b && !atomic_compare_exchange_weak(&free_bufs, &b, b->next))
        ;
    if (!b)
        b = ms_region_alloc(sizeof *b);
    if (b) {
        b->next = NULL;
        b->len = 0;
        b->t = b->a = 0;
    }
    return b;
}

static void buf_push(_Atomic(struct evbuf *) *q, struct evbuf *b)
{
    b->next = atomic_load(q);
    while (!atomic_compare_exchange_weak(q, &b->next, b))
        ;
}

static struct evbuf *queue_take(_Atomic(struct evbuf *) *q)
{
    /* oldest first: the stack is LIFO, reverse it */
    struct evbuf *l = atomic_exchange(q, NULL), *r = NULL;
    while (l) {
        struct evbuf *n = l->next;
        l->next = r;
        r = l;
        l = n;
    }
    return r;
}

/* room for one more record in *slot; swaps a full buffer out.  Returns NULL
 * when no memory is left (the event is counted as lost). */
static inline struct evbuf *room(struct evbuf **slot, _Atomic(struct evbuf *) *q)
{
    struct evbuf *b = *slot;
    if (MS_LIKELY(b && b->len < BUF_BYTES))
        return b;
    struct evbuf *nb = buf_get();
    if (!nb)
        return NULL;
    nb->seq = atomic_fetch_add(&buf_seq, 1);
    if (b)
        buf_push(q, b);
    *slot = nb;
    return nb;
}

/* ---- hot path: called by table.c with the shard lock held ---------------- */
void ms_trace_alloc(int shard, uintptr_t addr, uint64_t size, uint32_t stack, int fn, pid_t tid, uint64_t tsc)
{
    if (!trace_on)
        return;
    struct evbuf *b = room(&shard_buf[shard], &full_events);
    if (!b) {
        atomic_fetch_add(&lost_events, 1);
        return;
    }
    uint64_t t = tsc ? now_at_tsc(b, tsc) : now_at(b);
    uint8_t *lp, *p = rec1_begin(b->data + b->len, 5, &lp);
    p = put_varint(p, t - b->t);
    p = put_svarint(p, (int64_t)(addr - b->a));
    p = put_varint(p, size);
    p = put_varint(p, stack);
    p = put_varint(p, (uint64_t)fn);
    p = put_varint(p, (uint64_t)(tid > 0 ? tid : 0)); /* appended field: the thread */
    b->t = t;
    b->a = addr;
    b->len = (uint32_t)(rec1_end(p, lp) - b->data);
}

void ms_trace_free(int shard, uintptr_t addr, uint64_t tsc)
{
    if (!trace_on)
        return;
    struct evbuf *b = room(&shard_buf[shard], &full_events);
    if (!b) {
        atomic_fetch_add(&lost_events, 1);
        return;
    }
    uint64_t t = tsc ? now_at_tsc(b, tsc) : now_at(b);
    uint8_t *lp, *p = rec1_begin(b->data + b->len, 6, &lp);
    p = put_varint(p, t - b->t);
    p = put_svarint(p, (int64_t)(addr - b->a));
    b->t = t;
    b->a = addr;
    b->len = (uint32_t)(rec1_end(p, lp) - b->data);
}

/* called by table.c with the stack lock held, for each new stack */
void ms_trace_stack(uint32_t id, const uintptr_t *pcs, int n)
{
    if (!trace_on)
        return;
    struct evbuf *b = room(&stack_buf, &full_stacks);
    if (!b) {
        atomic_fetch_add(&lost_events, 1);
        return;
    }
    uint8_t *lp, *p = rec_begin(b->data + b->len, 3, &lp);
    p = put_varint(p, id);
    p = put_varint(p, (uint64_t)n);
    for (int i = 0; i < n; i++)
        p = i ? put_svarint(p, (int64_t)(pcs[i] - pcs[i - 1])) : put_varint(p, pcs[i]);
    b->len = (uint32_t)(rec_end(p, lp) - b->data);
}

/* ---- writing chunks ------------------------------------------------------ */
static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void fail(const char *what, int err)
{
    if (!failed_once) {
        failed_once = 1;
        ms_warn("the trace '%s' stops here: %s: %s", trace_path, what, strerror(err));
    }
    trace_on = 0;
}

/* is trace_fd still our file?  If the program closed it or put another
 * file on its number, reopen ours (append) on a fresh high number */
static int fd_ok(void)
{
    struct stat st;
    if (trace_fd >= 0 && fstat(trace_fd, &st) == 0 && st.st_dev == trace_dev && st.st_ino == trace_ino)
        return 1;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, trace_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fail("cannot reopen it", errno);
        trace_fd = -1;
        return 0;
    }
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (hi >= 0) {
        close(fd);
        fd = hi;
    }
    if (fstat(fd, &st) != 0 || st.st_ino != trace_ino || st.st_dev != trace_dev) {
        close(fd);
        fail("it was replaced", ESTALE);
        trace_fd = -1;
        return 0;
    }
    trace_fd = fd;
    return 1;
}

static int write_all(const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(trace_fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail("cannot write", w < 0 ? errno : ENOSPC);
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static ZSTD_CCtx *cctx;
static uint8_t *zout;
static size_t zout_cap;

/* zstd level 1 with a 4 KiB hash table (hashLog 10; level 1 takes 32 KiB
 * for a 64 KiB input): the table is cleared for every chunk, and it stays
 * in the first cache level.  On mt_churn's events (about 10 bytes a record,
 * mostly times and addresses that do not repeat) this costs about 20% less
 * time than plain level 1 and compresses about 3% less, which the one-byte
 * lengths of ALLOC and FREE make up for: the trace is as large as before,
 * its compression and check cost about 30% less (bench/RESULTS.md).  Only
 * stable parameters: the agent uses the system's libzstd. */
static ZSTD_CCtx *cctx_new(void)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (c && (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, 10)))) {
        ZSTD_freeCCtx(c);
        c = NULL;
    }
    return c;
}

static void write_chunk(const uint8_t *data, uint32_t len)
{
    if (!len || !trace_on || !fd_ok())
        return;
    if (!cctx)
        cctx = cctx_new();
    size_t bound = ZSTD_compressBound(len);
    if (zout_cap < bound + 16) {
        zout_cap = bound + 16 > 256 * 1024 ? bound + 16 : 256 * 1024;
        zout = ms_region_alloc(zout_cap);
    }
    if (!cctx || !zout) {
        fail("out of memory for compression", ENOMEM);
        return;
    }
    size_t c = ZSTD_compress2(cctx, zout + 16, zout_cap - 16, data, len);
    if (ZSTD_isError(c)) {
        fail("compression failed", EIO);
        return;
    }
    uint32_t hdr[4] = { 0x4b43534du, (uint32_t)c, len, fnv1a(zout + 16, c) };
    memcpy(zout, hdr, sizeof hdr);
    write_all(zout, c + 16);
}

static void write_buf_list(struct evbuf *l)
{
    while (l) {
        struct evbuf *n = l->next;
        write_chunk(l->data, l->len);
        l->len = 0;
        buf_push(&free_bufs, l);
        l = n;
    }
}

/* collect the events first, then the stacks, and write the stacks first:
 * every stack an event uses was recorded before the event */
/* order a list by seq (insertion sort: a flush holds a few dozen buffers) */
static struct evbuf *by_seq(struct evbuf *l)
{
    struct evbuf *sorted = NULL;
    while (l) {
        struct evbuf *n = l->next, **pp = &sorted;
        while (*pp && (*pp)->seq <= l->seq)
            pp = &(*pp)->next;
        l->next = *pp;
        *pp = l;
        l = n;
    }
    return sorted;
}

static void flush_locked(void);
static struct evbuf *pool_take(void);     /* pool events: see the end of this file */
static void pool_after_fork_child(void);
static void pool_write_inherited(void);

/* whichever thread flushes (the writer, an exiting or exec'ing thread, a
 * fork child), zstd's memory comes from the agent's region, never from the
 * program's heap */
static void flush(void)
{
    int was = ms_ts.in_report;
    ms_ts.in_report = 1;
    pthread_mutex_lock(&flush_lock);
    flush_locked();
    pthread_mutex_unlock(&flush_lock);
    ms_ts.in_report = was;
}

static void flush_locked(void)
{
    /* steal the shards' current buffers first, then take the queue: a
     * buffer queued for a shard is then either older than the stolen one or
     * newer, and sorting by seq writes each shard's events in order */
    struct evbuf *ev = NULL;
    extern void ms_table_lock_shard(int i) MS_HIDDEN;
    extern void ms_table_unlock_shard(int i) MS_HIDDEN;
    for (int i = 0; i < NSHARD; i++) {
        if (!shard_buf[i] || !shard_buf[i]->len)
            continue;
        struct evbuf *nb = buf_get();
        if (!nb)
            break;
        ms_table_lock_shard(i);
        struct evbuf *old = shard_buf[i];
        nb->seq = atomic_fetch_add(&buf_seq, 1);
        shard_buf[i] = nb;
        ms_table_unlock_shard(i);
        old->next = ev;
        ev = old;
    }
    struct evbuf *pb = pool_take();
    if (pb) {
        pb->next = ev;
        ev = pb;
    }
    struct evbuf *q = queue_take(&full_events);
    while (q) {
        struct evbuf *n = q->next;
        q->next = ev;
        ev = q;
        q = n;
    }
    ev = by_seq(ev);
    extern void ms_stacks_lock(void) MS_HIDDEN;
    extern void ms_stacks_unlock(void) MS_HIDDEN;
    struct evbuf *st = queue_take(&full_stacks);
    struct evbuf *nb = buf_get();
    if (nb) {
        ms_stacks_lock();
        struct evbuf *old = stack_buf;
        stack_buf = nb;
        ms_stacks_unlock();
        if (old) {
            struct evbuf **t2 = &st;
            while (*t2)
                t2 = &(*t2)->next;
            old->next = NULL;
            *t2 = old;
        }
    }
    pthread_mutex_lock(&misc_lock);
    struct evbuf *misc = misc_buf;
    misc_buf = NULL;
    pthread_mutex_unlock(&misc_lock);
    write_buf_list(st);
    if (misc) {
        misc->next = NULL;
        write_buf_list(misc);
    }
    write_buf_list(ev);
}

/* ---- misc records: modules, samples, fork, leaks, end --------------------- */
static struct evbuf *misc_room(void)
{
    if (misc_buf && misc_buf->len >= BUF_BYTES) {
        pthread_mutex_unlock(&misc_lock);
        flush();
        pthread_mutex_lock(&misc_lock);
    }
    if (!misc_buf)
        misc_buf = buf_get();
    return misc_buf;
}

static int note_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    char exe[1024];
    const char *path = info->dlpi_name;
    if (!path || !path[0]) {
        ssize_t k = readlink("/proc/thread-self/exe", exe, sizeof exe - 1);
        exe[k > 0 ? k : 0] = 0;
        path = exe;
    }
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    const uint8_t *bid = NULL;
    size_t bidlen = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            lo = a < lo ? a : lo;
            hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
        } else if (ph->p_type == PT_NOTE && !bid) {
            const uint8_t *n = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *e = n + ph->p_memsz;
            while (n + 12 <= e) {
                uint32_t nsz, dsz, type;
                memcpy(&nsz, n, 4);
                memcpy(&dsz, n + 4, 4);
                memcpy(&type, n + 8, 4);
                const uint8_t *name = n + 12, *desc = name + ((nsz + 3) & ~3u);
                if (desc + dsz > e)
                    break;
                if (type == NT_GNU_BUILD_ID && nsz == 4 && !memcmp(name, "GNU", 4) && dsz <= 64) {
                    bid = desc;
                    bidlen = dsz;
                    break;
                }
                n = desc + ((dsz + 3) & ~3u);
            }
        }
    }
    if (!hi || !strncmp(path, "linux-vdso", 10))
        return 0;
    struct evbuf *b = misc_room();
    if (!b)
        return 0;
    uint64_t t = now_at(b);
    uint8_t *lp, *p = rec_begin(b->data + b->len, 2, &lp);
    p = put_varint(p, t - b->t);
    p = put_str(p, path, 1024);
    p = put_varint(p, bidlen);
    memcpy(p, bid, bidlen);
    p += bidlen;
    p = put_varint(p, info->dlpi_addr);
    p = put_varint(p, lo);
    p = put_varint(p, hi);
    p = put_varint(p, 0);
    b->t = t;
    b->len = (uint32_t)(rec_end(p, lp) - b->data);
    return 0;
}

static int count_modules(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    unsigned long long *ad = data;
    ad[0] = info->dlpi_adds;
    ad[1] = info->dlpi_subs;
    return 1;
}

/* (re)write the module list when the loader's counters moved */
static void modules_if_changed(int force)
{
    unsigned long long ad[2] = { 0, 0 };
    dl_iterate_phdr(count_modules, ad);
    if (!force && ad[0] == mod_adds && ad[1] == mod_subs)
        return;
    mod_adds = ad[0];
    mod_subs = ad[1];
    pthread_mutex_lock(&misc_lock);
    dl_iterate_phdr(note_module, NULL);
    pthread_mutex_unlock(&misc_lock);
}

extern void ms_table_live(uint64_t *bytes, uint64_t *blocks) MS_HIDDEN;

static void sample(void)
{
    long pages = 0;
    char buf[128];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            char *sp = strchr(buf, ' ');
            pages = sp ? atol(sp + 1) : 0;
        }
    }
    uint64_t lb, lk;
    ms_table_live(&lb, &lk);
    pthread_mutex_lock(&misc_lock);
    struct evbuf *b = misc_room();
    if (b) {
        uint64_t t = now_at(b);
        uint8_t *lp, *p = rec_begin(b->data + b->len, 7, &lp);
        p = put_varint(p, t - b->t);
        p = put_varint(p, (uint64_t)pages * 4096);
        p = put_varint(p, lb);
        p = put_varint(p, lk);
        b->t = t;
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    uint64_t lost = atomic_exchange(&lost_events, 0);
    if (b && lost) {
        uint64_t t = now_at(b);
        uint8_t *lp, *p = rec_begin(b->data + b->len, 13, &lp);
        p = put_varint(p, t - b->t);
        p = put_varint(p, lost);
        b->t = t;
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&misc_lock);
}

static void misc_simple(unsigned type, uint64_t a, uint64_t b2, int two, const char *str)
{
    if (!trace_on)
        return;
    pthread_mutex_lock(&misc_lock);
    struct evbuf *b = misc_room();
    if (b) {
        uint64_t t = now_at(b);
        uint8_t *lp, *p = rec_begin(b->data + b->len, type, &lp);
        p = put_varint(p, t - b->t);
        if (str)
            p = put_str(p, str, 1024);
        else
            p = put_varint(p, a);
        if (two)
            p = put_varint(p, b2);
        b->t = t;
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&misc_lock);
}

/* ---- threads: THREAD records (tid, name) ------------------------------------ */
/* A THREAD record; wait: block on misc_lock (else only try it: the caller may be a
 * signal handler that interrupted this thread inside a misc record).  0 written. */
static int thread_record(pid_t tid, const char *name, int wait)
{
    if (!trace_on)
        return 0;
    if (wait)
        pthread_mutex_lock(&misc_lock);
    else if (pthread_mutex_trylock(&misc_lock) != 0)
        return -1;
    struct evbuf *b;
    if (wait) {
        b = misc_room();
    } else {
        if (!misc_buf)
            misc_buf = buf_get();
        b = misc_buf && misc_buf->len < BUF_BYTES ? misc_buf : NULL; /* no flush from here */
    }
    if (b) {
        uint64_t t = now_ns();
        uint8_t *lp, *p = rec_begin(b->data + b->len, 4, &lp);
        p = put_varint(p, t - b->t);
        p = put_varint(p, (uint64_t)tid);
        p = put_str(p, name, 64);
        b->t = t;
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&misc_lock);
    return b ? 0 : -1;
}

static void own_name(char name[17])
{
    memset(name, 0, 17);
    prctl(PR_GET_NAME, name);
}

pid_t ms_trace_thread_begin(void)
{
    pid_t tid = ms_ts.trace_tid < 0 ? -ms_ts.trace_tid : (pid_t)syscall(SYS_gettid);
    if (!trace_on) { /* no record (the name comes at its exit or at the end) */
        ms_ts.trace_tid = tid;
        return tid;
    }
    char name[17];
    own_name(name);
    ms_ts.trace_tid = thread_record(tid, name, 0) == 0 ? tid : -tid; /* < 0: try again */
    return tid;
}

void ms_trace_thread_named(void)
{
    if (!trace_on || ms_ts.trace_tid <= 0)
        return;
    char name[17];
    own_name(name);
    thread_record(ms_ts.trace_tid, name, 1);
}

void ms_trace_thread_renamed(pid_t tid, const char *name)
{
    if (trace_on && tid > 0)
        thread_record(tid, name, 1);
}

void ms_trace_thread_after_fork_child(void)
{
    ms_ts.trace_tid = 0;
}

/* at the end: the name of every thread still there (named after its first
 * allocation by prctl, or by another thread) from /proc/self/task, without malloc */
static void threads_at_end(void)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    pid_t writer = ms_trace_writer_tid();
    char dbuf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            unsigned short reclen;
            memcpy(&reclen, dbuf + off + 16, sizeof reclen);
            const char *dn = dbuf + off + 19;
            off += reclen;
            pid_t tid = (pid_t)atoi(dn);
            if (tid <= 0 || tid == writer)
                continue;
            char path[64], name[64];
            snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
            int cf = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
            if (cf < 0)
                continue;
            ssize_t k = read(cf, name, sizeof name - 1);
            close(cf);
            if (k <= 0)
                continue;
            name[k] = 0;
            if (name[k - 1] == '\n')
                name[k - 1] = 0;
            thread_record(tid, name, 1);
        }
    }
    close(fd);
}

void ms_trace_fork(pid_t child)
{
    misc_simple(10, (uint64_t)child, 0, 0, NULL);
}

/* before exec: the image's trace ends here (the new image writes its own) */
void ms_trace_exec(const char *path)
{
    if (!trace_on)
        return;
    misc_simple(11, 0, 0, 0, path ? path : "");
    flush();
}

void ms_trace_leak(int kind, uint32_t stack, uint64_t bytes, uint64_t blocks, uint64_t ind, int suppressed, int shown)
{
    if (!trace_on)
        return;
    pthread_mutex_lock(&misc_lock);
    struct evbuf *b = misc_room();
    if (b) {
        uint8_t *lp, *p = rec_begin(b->data + b->len, 8, &lp);
        p = put_varint(p, (uint64_t)kind);
        p = put_varint(p, stack);
        p = put_varint(p, bytes);
        p = put_varint(p, blocks);
        p = put_varint(p, ind);
        p = put_varint(p, (uint64_t)suppressed);
        p = put_varint(p, (uint64_t)(shown != 0));
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&misc_lock);
}

/* the last records, written from the exiting thread */
void ms_trace_end(int how, int status)
{
    ms_control_stop();
    if (!trace_on)
        return;
    sample();
    threads_at_end();
    misc_simple(9, (uint64_t)how, (uint64_t)status, 1, NULL);
    flush();
    trace_on = 0;
}

/* ---- the writer thread ------------------------------------------------------ */
/* The agent's own thread: trace samples and flushes, the control socket,
 * snapshots on a signal or an interval.  It runs whether or not there is a
 * trace. */
static void *writer(void *arg)
{
    (void)arg;
    ms_ts.in_report = 1; /* zstd's and the symbolizer's mallocs come from the region */
    ms_tcb_measure(); /* before the stop-the-world may need it: start_writer waits for the tid */
    __atomic_store_n(&writer_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    unsigned tick = 0;
    uint64_t next_snap = ms_snapshot_interval_ms ? now_ns() + (uint64_t)ms_snapshot_interval_ms * 1000000 : 0;
    while (!writer_stop && ms_active) {
        ms_control_poll(10);
        clock_calibrate();
        if (ms_snapshot_requested) {
            ms_snapshot_requested = 0;
            ms_snapshot(1, 0, -1);
        }
        if (next_snap && now_ns() >= next_snap) {
            ms_snapshot(2, 0, -1);
            next_snap = now_ns() + (uint64_t)ms_snapshot_interval_ms * 1000000;
        }
        ms_snapshot_peak_poll();
        if (!trace_on)
            continue;
        sample();
        if (++tick % 5 == 0) {
            if (tick % 50 == 0)
                modules_if_changed(0);
            flush();
        }
    }
    /* back on the count: glibc's end of this thread takes one off */
    if (nptl_nthreads)
        __atomic_fetch_add(nptl_nthreads, 1, __ATOMIC_ACQ_REL);
    return NULL;
}

void ms_trace_snapshot(int id, int trigger, uint64_t pause_ns)
{
    if (!trace_on)
        return;
    pthread_mutex_lock(&misc_lock);
    struct evbuf *b = misc_room();
    if (b) {
        uint64_t t = now_at(b);
        uint8_t *lp, *p = rec_begin(b->data + b->len, 14, &lp);
        p = put_varint(p, t - b->t);
        p = put_varint(p, (uint64_t)id);
        p = put_varint(p, (uint64_t)trigger);
        p = put_varint(p, pause_ns);
        b->t = t;
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&misc_lock);
}

void ms_trace_snap_leak(int kind, uint32_t stack, uint64_t bytes, uint64_t blocks)
{
    if (!trace_on)
        return;
    pthread_mutex_lock(&misc_lock);
    struct evbuf *b = misc_room();
    if (b) {
        uint8_t *lp, *p = rec_begin(b->data + b->len, 15, &lp);
        p = put_varint(p, (uint64_t)kind);
        p = put_varint(p, stack);
        p = put_varint(p, bytes);
        p = put_varint(p, blocks);
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&misc_lock);
}

/* The writer's stack is a mapping of the agent's own, made once (a forked
 * child's writer reuses it: the parent's writer does not run there), so
 * the leak check knows it and leaves it out of the roots
 * (ms_trace_writer_stack).  It is no root: the agent's thread holds no
 * pointer of the program's, only stale ones from its own snapshots.  With
 * glibc's stack, 8 MiB of it was scanned at every exit check -- mostly never
 * touched pages, each a page fault: about 30 ms of every run. */
#define WRITER_STACK (8u << 20)
static void *writer_stack;

void ms_trace_writer_stack(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)writer_stack;
    *hi = writer_stack ? (uintptr_t)writer_stack + WRITER_STACK : 0;
}

static void start_writer(void)
{
    static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    static int (*real_sigmask)(int, const sigset_t *, sigset_t *);
    if (!real_create)
        real_create = dlsym(RTLD_NEXT, "pthread_create");
    if (!real_sigmask)
        real_sigmask = dlsym(RTLD_NEXT, "pthread_sigmask");
    if (!real_create || !real_sigmask)
        return;
    if (!nptl_nthreads)
        nptl_nthreads = dlvsym(RTLD_DEFAULT, "__nptl_nthreads", "GLIBC_PRIVATE");
    sigset_t all, old;
    sigfillset(&all);
    real_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits it: no signal runs there */
    int was = ms_ts.in_report;
    ms_ts.in_report = 1; /* glibc's allocations for the new thread are the agent's */
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (!writer_stack) {
        void *m = mmap(NULL, WRITER_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m != MAP_FAILED) {
            mprotect(m, 4096, PROT_NONE); /* a guard page */
            writer_stack = m;
        }
    }
    if (writer_stack) /* else glibc's stack (scanned as a root, as before) */
        pthread_attr_setstack(&at, (char *)writer_stack + 4096, WRITER_STACK - 4096);
    if (real_create(&t, &at, writer, NULL) != 0) {
        ms_warn("cannot start the trace writer thread; the trace is written at exit only");
    } else {
        /* off glibc's count (see nptl_nthreads): pthread_create added it,
         * and it cannot have reached zero meanwhile, this thread counts */
        if (nptl_nthreads)
            __atomic_fetch_sub(nptl_nthreads, 1, __ATOMIC_ACQ_REL);
        /* stop-the-world must know the writer's tid (it blocks the stop signal) */
        for (int i = 0; i < 2000 && !__atomic_load_n(&writer_tid, __ATOMIC_ACQUIRE); i++) {
            struct timespec d = { 0, 100000 };
            nanosleep(&d, NULL);
        }
    }
    pthread_attr_destroy(&at);
    ms_ts.in_report = was;
    real_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- opening the file --------------------------------------------------------- */
static void expand(char *out, size_t cap, const char *pat)
{
    char exe[1024], *name = exe;
    ssize_t k = readlink("/proc/thread-self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    char *sl = strrchr(exe, '/');
    if (sl)
        name = sl + 1;
    size_t j = 0;
    for (const char *p = pat; *p && j + 1 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            j += (size_t)snprintf(out + j, cap - j, "%d", (int)ms_pid);
            p++;
        } else if (p[0] == '%' && p[1] == 'n') {
            j += (size_t)snprintf(out + j, cap - j, "%s", name);
            p++;
        } else {
            out[j++] = *p;
        }
        if (j >= cap)
            j = cap - 1;
    }
    out[j] = 0;
}

static uint8_t *header_payload(uint8_t *p)
{
    uint8_t *lp;
    char exe[1024], cwd[1024];
    ssize_t k = readlink("/proc/thread-self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    p = rec_begin(p, 1, &lp);
    p = put_varint(p, (uint64_t)ms_pid);
    p = put_varint(p, (uint64_t)ms_ppid);
    p = put_varint(p, (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec);
    p = put_str(p, exe, 1024);
    /* argv from /proc/self/cmdline, at most 64 arguments and 4 KiB */
    char cmd[4096];
    int n = 0;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : 0;
    if (fd >= 0)
        close(fd);
    if (got < 0)
        got = 0;
    cmd[got] = 0;
    for (ssize_t i = 0; i < got && n < 64; i += (ssize_t)strlen(cmd + i) + 1)
        n++;
    p = put_varint(p, (uint64_t)n);
    ssize_t off = 0;
    for (int i = 0; i < n; i++) {
        p = put_str(p, cmd + off, 1024);
        off += (ssize_t)strlen(cmd + off) + 1;
    }
    p = put_str(p, cwd, 1024);
    p = put_varint(p, ms_opt.sample_rate); /* appended 2026-12-05 */
    return rec_end(p, lp);
}

/* open a new file (never an existing one: an image that execs itself keeps
 * its pid and name, so add .1, .2, ...), write the header */
static int open_trace(void)
{
    char base[1200], rel[1100];
    /* an absolute path: a daemon that changes to / and closes every
     * descriptor has the trace reopened by its name (fd_ok) */
    expand(rel, sizeof rel, ms_opt.trace_file);
    char cwd[1024];
    if (rel[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(base, sizeof base, "%s/%s", strcmp(cwd, "/") ? cwd : "", rel);
    else
        snprintf(base, sizeof base, "%s", rel);
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        if (i)
            snprintf(trace_path, sizeof trace_path, "%s.%d", base, i);
        else
            snprintf(trace_path, sizeof trace_path, "%s", base);
        fd = (int)syscall(SYS_openat, AT_FDCWD, trace_path,
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        ms_warn("cannot create the trace '%s': %s; running without a trace", trace_path, strerror(errno));
        return -1;
    }
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (hi >= 0) {
        close(fd);
        fd = hi;
    }
    struct stat st;
    fstat(fd, &st);
    trace_dev = st.st_dev;
    trace_ino = st.st_ino;
    trace_fd = fd;
    extern void ms_fd_internal_set(int fd) MS_HIDDEN;
    ms_fd_internal_set(fd);
    static uint8_t hdr[8 + 8 + 8192];
    memcpy(hdr, "MSLTRACE", 8);
    uint8_t *end = header_payload(hdr + 16);
    uint32_t v = 1, len = (uint32_t)(end - (hdr + 16));
    memcpy(hdr + 8, &v, 4);
    memcpy(hdr + 12, &len, 4);
    trace_on = 1;
    if (write_all(hdr, (size_t)(end - hdr)) < 0)
        return -1;
    return 0;
}

void ms_trace_start(void)
{
    if (!ms_active)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    ms_control_start();
    if (ms_opt.trace_file[0] && open_trace() == 0)
        modules_if_changed(1);
    start_writer();
}

/* in a forked child: the parent's unwritten events are the parent's; start
 * a file of our own with the modules, every stack, and the inherited blocks */
void ms_trace_after_fork_child(void)
{
    int was_on = trace_on;
    trace_on = 0;
    pthread_mutex_init(&flush_lock, NULL);
    pthread_mutex_init(&misc_lock, NULL);
    atomic_store(&full_events, NULL);
    atomic_store(&full_stacks, NULL);
    for (int i = 0; i < NSHARD; i++)
        if (shard_buf[i])
            shard_buf[i]->len = 0, shard_buf[i]->t = shard_buf[i]->a = 0;
    if (stack_buf)
        stack_buf->len = 0;
    pool_after_fork_child();
    misc_buf = NULL;
    writer_tid = 0;
    failed_once = 0;
    if (trace_fd >= 0)
        close(trace_fd);
    trace_fd = -1;
    clock_reset();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    ms_control_after_fork_child();
    if (!was_on || open_trace() < 0) {
        start_writer();
        return;
    }
    mod_adds = mod_subs = 0;
    modules_if_changed(1);
    extern void ms_trace_dump_stacks(void) MS_HIDDEN;
    extern void ms_trace_dump_live(void) MS_HIDDEN;
    uint64_t lb, lk;
    ms_table_live(&lb, &lk);
    misc_simple(12, lk, 0, 0, NULL);
    ms_trace_dump_stacks();
    ms_trace_dump_live();
    pool_write_inherited();
    flush();
    start_writer();
}

/* ---- pool events (libmemsleuth_pool, src/common/pool_agent.h) -----------------
 * The pool library finds memsleuth_agent_pool_hooks with dlsym at its first
 * use and calls pool_event after each pool event.  The records (types 20-27,
 * docs/trace-format.md) form one stream of their own, appended under
 * pool_lock, so they are in program order whatever the thread; they carry
 * absolute times and never touch the chunk delta state.  File:line sites
 * are interned: a POOL_SITE record the first time a (file, line) is seen in
 * this trace, then its id. */
#include "../common/pool_agent.h"

enum { REC_POOL_SITE = 20, REC_POOL_NEW, REC_POOL_NAME, REC_POOL_DESTROY, REC_POOL_ALLOC,
       REC_POOL_FREE, REC_POOL_MOVE, REC_POOL_CLAIM };
#define POOL_STR_MAX 1024 /* file names; names are cut at 256 */

struct psite {
    uintptr_t file; /* the string's address (0: empty slot) */
    uint32_t line, id;
};
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct evbuf *pool_buf;
static struct psite *psites;
static size_t psite_cap, psite_n;
static uint32_t psite_next = 1;
static int pools_seen; /* the library handed events to the agent */

void ms_trace_pool_lock(void)
{
    pthread_mutex_lock(&pool_lock);
}

int ms_trace_pool_trylock(void)
{
    return pthread_mutex_trylock(&pool_lock);
}

void ms_trace_pool_unlock(void)
{
    pthread_mutex_unlock(&pool_lock);
}

int ms_trace_pools_seen(void)
{
    return pools_seen;
}

/* room for need more bytes in the pool stream (under pool_lock) */
static struct evbuf *pool_room(size_t need)
{
    struct evbuf *b = pool_buf;
    if (MS_LIKELY(b && b->len + need <= BUF_BYTES))
        return b;
    struct evbuf *nb = buf_get();
    if (!nb)
        return NULL;
    nb->seq = atomic_fetch_add(&buf_seq, 1);
    if (b)
        buf_push(&full_events, b);
    pool_buf = nb;
    return nb;
}

static inline size_t psite_slot(uintptr_t f, uint32_t line, size_t cap)
{
    uint64_t h = ((uint64_t)f ^ ((uint64_t)line << 40)) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static int psite_grow(void)
{
    size_t ncap = psite_cap ? psite_cap * 2 : 4096;
    struct psite *n = ms_region_alloc(ncap * sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < psite_cap; i++)
        if (psites[i].file) {
            size_t j = psite_slot(psites[i].file, psites[i].line, ncap);
            while (n[j].file)
                j = (j + 1) & (ncap - 1);
            n[j] = psites[i];
        }
    if (psites)
        ms_region_release(psites, psite_cap * sizeof *psites);
    psites = n;
    psite_cap = ncap;
    return 0;
}

/* the id of file:line, writing its POOL_SITE record the first time
 * (under pool_lock); 0 for no site or when out of memory */
static uint32_t pool_site(const char *file, int line)
{
    if (!file)
        return 0;
    uintptr_t f = (uintptr_t)file;
    uint32_t ln = (uint32_t)(line < 0 ? 0 : line);
    if (psite_n * 2 >= psite_cap && psite_grow() < 0)
        return 0;
    size_t j = psite_slot(f, ln, psite_cap);
    while (psites[j].file) {
        if (psites[j].file == f && psites[j].line == ln)
            return psites[j].id;
        j = (j + 1) & (psite_cap - 1);
    }
    struct evbuf *b = pool_room(16 + POOL_STR_MAX);
    if (!b)
        return 0;
    uint32_t id = psite_next++;
    uint8_t *lp, *p = rec_begin(b->data + b->len, REC_POOL_SITE, &lp);
    p = put_varint(p, id);
    p = put_varint(p, ln);
    p = put_str(p, file, POOL_STR_MAX);
    b->len = (uint32_t)(rec_end(p, lp) - b->data);
    psites[j].file = f;
    psites[j].line = ln;
    psites[j].id = id;
    psite_n++;
    return id;
}

static void pool_event(int kind, const void *pool, const void *other, const void *old_owner, const void *ptr,
                       const void *old_ptr, size_t size, const char *file, int line, size_t old_size)
{
    if (!trace_on || ms_ts.in_report)
        return;
    if (ms_ts.busy) { /* a signal handler interrupted a hook: the lock may be ours */
        atomic_fetch_add(&lost_events, 1);
        return;
    }
    int e = errno;
    ms_ts.busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    pthread_mutex_lock(&pool_lock);
    pools_seen = 1;
    ms_ps_event(kind, pool, other, old_owner, ptr, size, old_size, file, line);
    if (kind == MS_POOL_AGENT_EV_RAW || kind == MS_POOL_AGENT_EV_RAW_FREE) { /* no record: the agent's own */
        pthread_mutex_unlock(&pool_lock);
        ms_leave_busy();
        errno = e;
        return;
    }
    uint32_t site = kind == MS_POOL_AGENT_EV_NAME ? 0 : pool_site(file, line);
    struct evbuf *b = pool_room(64 + 256);
    if (!b) {
        atomic_fetch_add(&lost_events, 1);
    } else {
        uint8_t *lp, *p = NULL;
        uint64_t t = now_ns();
        switch (kind) {
        case 1: /* MS_POOL_EV_CREATE: other = parent */
            p = rec_begin(b->data + b->len, REC_POOL_NEW, &lp);
            p = put_varint(p, t);
            p = put_varint(p, (uintptr_t)pool);
            p = put_varint(p, (uintptr_t)other);
            p = put_varint(p, site);
            break;
        case 2: /* MS_POOL_EV_DESTROY */
            p = rec_begin(b->data + b->len, REC_POOL_DESTROY, &lp);
            p = put_varint(p, t);
            p = put_varint(p, (uintptr_t)pool);
            p = put_varint(p, site);
            break;
        case 3: /* MS_POOL_EV_ALLOC */
        case 5: /* MS_POOL_EV_REALLOC: old_ptr was resized to ptr */
            p = rec_begin(b->data + b->len, REC_POOL_ALLOC, &lp);
            p = put_varint(p, t);
            p = put_varint(p, (uintptr_t)pool);
            p = put_varint(p, (uintptr_t)ptr);
            p = put_varint(p, size);
            p = put_varint(p, site);
            p = put_varint(p, kind == 5 ? (uintptr_t)old_ptr : 0);
            break;
        case 4: /* MS_POOL_EV_FREE */
            p = rec_begin(b->data + b->len, REC_POOL_FREE, &lp);
            p = put_varint(p, t);
            p = put_varint(p, (uintptr_t)pool);
            p = put_varint(p, (uintptr_t)ptr);
            p = put_varint(p, site);
            break;
        case 6: /* MS_POOL_EV_REPARENT: ptr (block) or pool moved to other from old_owner */
            p = rec_begin(b->data + b->len, REC_POOL_MOVE, &lp);
            p = put_varint(p, t);
            p = put_varint(p, ptr ? 0 : 1);
            p = put_varint(p, ptr ? (uintptr_t)ptr : (uintptr_t)pool);
            p = put_varint(p, (uintptr_t)other);
            p = put_varint(p, (uintptr_t)old_owner);
            p = put_varint(p, site);
            break;
        case 7: /* MS_POOL_EV_ADOPT: other adopted ptr (or pool) */
        case 8: /* MS_POOL_EV_RELEASE: other dropped its claim */
            p = rec_begin(b->data + b->len, REC_POOL_CLAIM, &lp);
            p = put_varint(p, t);
            p = put_varint(p, (uint64_t)((kind == 8 ? 2 : 0) + (ptr ? 0 : 1)));
            p = put_varint(p, ptr ? (uintptr_t)ptr : (uintptr_t)pool);
            p = put_varint(p, (uintptr_t)other);
            p = put_varint(p, site);
            break;
        case MS_POOL_AGENT_EV_NAME:
            p = rec_begin(b->data + b->len, REC_POOL_NAME, &lp);
            p = put_varint(p, t);
            p = put_varint(p, (uintptr_t)pool);
            p = put_str(p, ptr ? (const char *)ptr : "", 256);
            break;
        default:
            break;
        }
        if (p)
            b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
    pthread_mutex_unlock(&pool_lock);
    ms_leave_busy();
    errno = e;
}

static int pool_enabled(void)
{
    return trace_on && ms_active;
}

__attribute__((visibility("default"))) const struct ms_pool_agent_hooks memsleuth_agent_pool_hooks = {
    MS_POOL_AGENT_VERSION, sizeof(struct ms_pool_agent_hooks), pool_enabled, pool_event,
};

/* flush: take the pool stream's current buffer (its seq orders it) */
static struct evbuf *pool_take(void)
{
    if (!pool_buf || !pool_buf->len)
        return NULL;
    struct evbuf *nb = buf_get();
    if (!nb)
        return NULL;
    pthread_mutex_lock(&pool_lock);
    struct evbuf *old = pool_buf;
    nb->seq = atomic_fetch_add(&buf_seq, 1);
    pool_buf = nb;
    pthread_mutex_unlock(&pool_lock);
    old->next = NULL;
    return old;
}

/* fork child: a new file, so the sites are written again */
static void pool_after_fork_child(void)
{
    pthread_mutex_init(&pool_lock, NULL);
    if (pool_buf)
        pool_buf->len = 0;
    if (psites)
        memset(psites, 0, psite_cap * sizeof *psites);
    psite_n = 0;
    psite_next = 1;
}

/* fork child, its trace just opened: the pools it inherited, parents first,
 * each as a POOL_NEW marked inherited (with its creation site and parent),
 * and its POOL_NAME, so that its records name them */
static void inherited_one(const struct ms_ps_pool *pp, int depth, void *arg)
{
    (void)depth;
    (void)arg;
    uint32_t site = pool_site(pp->file, pp->line);
    struct evbuf *b = pool_room(64 + 256);
    if (!b) {
        atomic_fetch_add(&lost_events, 1);
        return;
    }
    uint8_t *lp, *p = rec_begin(b->data + b->len, REC_POOL_NEW, &lp);
    p = put_varint(p, 0); /* t: before this process's first event */
    p = put_varint(p, pp->addr);
    p = put_varint(p, pp->parent);
    p = put_varint(p, site);
    p = put_varint(p, 1); /* inherited */
    b->len = (uint32_t)(rec_end(p, lp) - b->data);
    if (pp->named) {
        p = rec_begin(b->data + b->len, REC_POOL_NAME, &lp);
        p = put_varint(p, 0);
        p = put_varint(p, pp->addr);
        p = put_str(p, pp->name, 256);
        b->len = (uint32_t)(rec_end(p, lp) - b->data);
    }
}

static void pool_write_inherited(void)
{
    if (!pools_seen)
        return;
    pthread_mutex_lock(&pool_lock);
    if (ms_ps_walk(inherited_one, NULL) < 0)
        atomic_fetch_add(&lost_events, 1);
    pthread_mutex_unlock(&pool_lock);
}

/* ---- raw chunks for the heap graph (graph.c) -------------------------------- *
 * The GRAPH records of one scan are written as chunks of their own, one after
 * the other with nothing between them: the pending records (the stacks the
 * graph's blocks use, the SNAPSHOT record) are flushed first. */
int ms_trace_is_on(void)
{
    return trace_on;
}

uint64_t ms_trace_now(void)
{
    return now_ns();
}

void ms_trace_raw_begin(void)
{
    int was = ms_ts.in_report;
    ms_ts.in_report = 1;
    pthread_mutex_lock(&flush_lock);
    flush_locked();
    ms_ts.in_report = was;
}

void ms_trace_raw_chunk(const uint8_t *data, uint32_t len)
{
    int was = ms_ts.in_report;
    ms_ts.in_report = 1;
    write_chunk(data, len);
    ms_ts.in_report = was;
}

void ms_trace_raw_end(void)
{
    pthread_mutex_unlock(&flush_lock);
}
