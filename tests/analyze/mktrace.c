/*
 * mktrace.c - writes memsleuth traces (format version 1, docs/trace-format.md)
 * for the analyzer's tests, independently of the agent's writer, and the
 * figures the analyzer must find in them (computed here by a plain replay in
 * time order).
 *
 *   mktrace normal OUT EXPECT   a server: a steadily growing site lost at exit,
 *                               temporary allocations, a growing site freed at
 *                               shutdown, a constant reachable block, leaks of
 *                               every kind (one suppressed), a burst making the
 *                               peak, churn, a realloc, an inlined frame, an
 *                               unknown record type and a record with an
 *                               appended field; forks 1001 (traced) and 1002
 *   mktrace child OUT EXPECT    1001, forked by `normal` at 3 s: inherited blocks,
 *                               a growing site still reachable at exit, LOST
 *   mktrace iter N OUT EXPECT   N iterations leaking 48 bytes each (for diff --scale)
 *   mktrace big NEVENTS OUT [LIVE [NS]]  NEVENTS events, a live set of LIVE blocks
 *                               (1000), one event every NS ns (1000)
 *   mktrace exec A B C          4000 /opt/fixture/launcher execs /opt/fixture/worker (B,
 *                               same pid), which forks 4001 (C)
 *   mktrace v2 OUT | badvarint OUT | absurd OUT | garbage OUT | killed OUT EXPECT
 *
 * Records of different addresses go to NSH "shard" streams flushed as
 * separate chunks every 100 ms of trace time, as the agent does, so chunks
 * overlap in time by up to 100 ms; per address, order is kept.
 * MKTRACE_LAG=MS flushes shard 0 only every MS ms (a writer fallen behind).
 *
 * The stacks are real return addresses inside this program's site functions
 * (each records its own __LINE__), and the MODULE record describes this
 * program, so the analyzer's symbolizer resolves them to mktrace.c:LINE.
 * Build with -O0 -g.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define NSH 4
#define MS 1000000ull
#define US 1000ull
#define SEC 1000000000ull

/* ------------------------------------------------------------------ */
/* encoding                                                            */
/* ------------------------------------------------------------------ */

struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n)
            nc *= 2;
        b->p = realloc(b->p, nc);
        if (!b->p) {
            perror("mktrace");
            exit(1);
        }
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    put(b, x, 4);
}

static void put_varint(struct buf *b, uint64_t v)
{
    unsigned char x[10];
    int n = 0;
    do {
        x[n] = v & 0x7f;
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    put(b, x, (size_t)n);
}

static void put_svarint(struct buf *b, int64_t v)
{
    put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_str(struct buf *b, const char *s)
{
    put_varint(b, strlen(s));
    put(b, s, strlen(s));
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* a stream of records with its delta state (one chunk's worth) */
struct stream {
    struct buf b;
    uint64_t t, a;
};

static struct buf rec; /* the payload of the record being built */

static void rec_dt(struct stream *s, uint64_t t)
{
    if (t < s->t) {
        fprintf(stderr, "mktrace: time going back in a stream (%llu < %llu)\n",
                (unsigned long long)t, (unsigned long long)s->t);
        exit(1);
    }
    put_varint(&rec, t - s->t);
    s->t = t;
}

static void rec_addr(struct stream *s, uint64_t a)
{
    put_svarint(&rec, (int64_t)(a - s->a));
    s->a = a;
}

static void rec_end(struct stream *s, uint64_t type)
{
    put_varint(&s->b, type);
    put_varint(&s->b, rec.n);
    put(&s->b, rec.p, rec.n);
    rec.n = 0;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */
/* ------------------------------------------------------------------ */

static FILE *out;
static uint64_t out_off;
static struct stream hdr, meta, sh[NSH];
static uint64_t chunk_offs[100000];
static size_t nchunks;
static uint64_t next_flush = 100 * MS;
static int level = 3;

static void wr(const void *p, size_t n)
{
    if (fwrite(p, 1, n, out) != n) {
        perror("mktrace: write");
        exit(1);
    }
    out_off += n;
}

/* MKTRACE_SEED=FILE: also write the records as a seed for fuzz_trace's
   "framed" mode (first byte 0x03, header payload, then "CHNK" + raw records
   of each chunk).  Kept only when asked for: it holds every record
   uncompressed, so for `big` it grew with the trace (8.9 GB for 1e9 events). */
static struct buf seed;
static int want_seed;

static void write_header(uint32_t version)
{
    struct buf h = { 0 };
    if (want_seed) {
        put(&seed, "\x03", 1);
        put(&seed, hdr.b.p, hdr.b.n);
    }
    put(&h, "MSLTRACE", 8);
    put_u32(&h, version);
    put_u32(&h, (uint32_t)hdr.b.n);
    wr(h.p, h.n);
    wr(hdr.b.p, hdr.b.n);
    free(h.p);
}

static void flush_stream(struct stream *s)
{
    if (!s->b.n)
        return;
    size_t cap = ZSTD_compressBound(s->b.n);
    unsigned char *c = malloc(cap);
    size_t cn = ZSTD_compress(c, cap, s->b.p, s->b.n, level);
    if (!c || ZSTD_isError(cn)) {
        fprintf(stderr, "mktrace: zstd failed\n");
        exit(1);
    }
    struct buf h = { 0 };
    put_u32(&h, 0x4b43534du);
    put_u32(&h, (uint32_t)cn);
    put_u32(&h, (uint32_t)s->b.n);
    put_u32(&h, fnv1a(c, cn));
    if (want_seed) {
        put(&seed, "CHNK", 4);
        put(&seed, s->b.p, s->b.n);
    }
    if (nchunks < sizeof chunk_offs / sizeof chunk_offs[0])
        chunk_offs[nchunks] = out_off;
    nchunks++;
    wr(h.p, h.n);
    wr(c, cn);
    free(h.p);
    free(c);
    s->b.n = 0;
    s->t = s->a = 0; /* the delta state restarts with each chunk */
}

static void flush_all(void)
{
    flush_stream(&meta);
    for (int i = 0; i < NSH; i++)
        flush_stream(&sh[i]);
}

/* MKTRACE_LAG=MS: shard 0 is flushed only every MS ms of trace time (a writer
   that fell behind), so its records come that late */
static uint64_t lag_ns, next_lag_flush;

/* before writing a record of time t: flush every 100 ms of trace time */
static void clock_to(uint64_t t)
{
    if (t >= next_flush) {
        if (!lag_ns) {
            flush_all();
        } else {
            flush_stream(&meta);
            for (int i = 1; i < NSH; i++)
                flush_stream(&sh[i]);
            if (t >= next_lag_flush) {
                flush_stream(&sh[0]);
                while (next_lag_flush <= t)
                    next_lag_flush += lag_ns;
            }
        }
        while (next_flush <= t)
            next_flush += 100 * MS;
    }
}

static int shard_of(uint64_t addr)
{
    return (int)((addr * 0x9E3779B97F4A7C15ull) >> 62) % NSH;
}

/* ------------------------------------------------------------------ */
/* records                                                             */
/* ------------------------------------------------------------------ */

static void r_process(uint64_t pid, uint64_t ppid, uint64_t start, const char *exe, int argc,
                      const char *const *argv, const char *cwd)
{
    put_varint(&rec, pid);
    put_varint(&rec, ppid);
    put_varint(&rec, start);
    put_str(&rec, exe);
    put_varint(&rec, (uint64_t)argc);
    for (int i = 0; i < argc; i++)
        put_str(&rec, argv[i]);
    put_str(&rec, cwd);
    rec_end(&hdr, 1);
}

/* this program as a MODULE record (path, build-id, bias, span) */
static char self_path[4096];
struct self_info {
    uint64_t bias, lo, hi;
    unsigned char id[64];
    size_t idlen;
    int done;
};
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct self_info *si = data;
    if (si->done)
        return 0;
    si->done = 1; /* the first object is the program */
    si->bias = info->dlpi_addr;
    si->lo = UINT64_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (lo < si->lo)
                si->lo = lo;
            if (hi > si->hi)
                si->hi = hi;
        } else if (ph->p_type == PT_NOTE) {
            const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
            const unsigned char *e = p + ph->p_memsz;
            while (p + 12 <= e) {
                uint32_t nsz, dsz, type;
                memcpy(&nsz, p, 4);
                memcpy(&dsz, p + 4, 4);
                memcpy(&type, p + 8, 4);
                const unsigned char *name = p + 12, *desc = name + ((nsz + 3) & ~3u);
                if (type == NT_GNU_BUILD_ID && nsz == 4 && !memcmp(name, "GNU", 4) &&
                    dsz <= sizeof si->id) {
                    memcpy(si->id, desc, dsz);
                    si->idlen = dsz;
                }
                p = desc + ((dsz + 3) & ~3u);
            }
        }
    }
    return 0;
}

static void r_module_self(struct stream *s, uint64_t t)
{
    struct self_info si = { 0 };
    dl_iterate_phdr(phdr_cb, &si);
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    self_path[n > 0 ? n : 0] = 0;
    rec_dt(s, t);
    put_str(&rec, self_path);
    put_varint(&rec, si.idlen);
    put(&rec, si.id, si.idlen);
    put_varint(&rec, si.bias);
    put_varint(&rec, si.lo);
    put_varint(&rec, si.hi);
    put_varint(&rec, 0);
    rec_end(s, 2);
}

static void r_stack(struct stream *s, uint64_t id, const uint64_t *pcs, int n)
{
    put_varint(&rec, id);
    put_varint(&rec, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        if (i == 0)
            put_varint(&rec, pcs[0]);
        else
            put_svarint(&rec, (int64_t)(pcs[i] - pcs[i - 1]));
    }
    rec_end(s, 3);
}

static void r_thread(struct stream *s, uint64_t t, uint64_t tid, const char *name)
{
    rec_dt(s, t);
    put_varint(&rec, tid);
    put_str(&rec, name);
    rec_end(s, 4);
}

static int extra_field_once; /* append a field to one ALLOC: readers must skip it */

static void r_alloc(struct stream *s, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack,
                    uint64_t fn)
{
    rec_dt(s, t);
    rec_addr(s, addr);
    put_varint(&rec, size);
    put_varint(&rec, stack);
    put_varint(&rec, fn);
    if (extra_field_once) {
        extra_field_once = 0;
        put_varint(&rec, 12345); /* a field of a future version */
        put_str(&rec, "future");
    }
    rec_end(s, 5);
}

static void r_free(struct stream *s, uint64_t t, uint64_t addr)
{
    rec_dt(s, t);
    rec_addr(s, addr);
    rec_end(s, 6);
}

static void r_sample(struct stream *s, uint64_t t, uint64_t rss, uint64_t bytes, uint64_t blocks)
{
    rec_dt(s, t);
    put_varint(&rec, rss);
    put_varint(&rec, bytes);
    put_varint(&rec, blocks);
    rec_end(s, 7);
}

static void r_leak(struct stream *s, int kind, uint64_t stack, uint64_t bytes, uint64_t blocks,
                   uint64_t ind, int supp)
{
    put_varint(&rec, (uint64_t)kind);
    put_varint(&rec, stack);
    put_varint(&rec, bytes);
    put_varint(&rec, blocks);
    put_varint(&rec, ind);
    put_varint(&rec, (uint64_t)supp);
    rec_end(s, 8);
}

static void r_end(struct stream *s, uint64_t t, int how, int status)
{
    rec_dt(s, t);
    put_varint(&rec, (uint64_t)how);
    put_varint(&rec, (uint64_t)status);
    rec_end(s, 9);
}

static void r_fork(struct stream *s, uint64_t t, uint64_t pid)
{
    rec_dt(s, t);
    put_varint(&rec, pid);
    rec_end(s, 10);
}

static void r_lost(struct stream *s, uint64_t t, uint64_t count)
{
    rec_dt(s, t);
    put_varint(&rec, count);
    rec_end(s, 13);
}

static void r_unknown(struct stream *s, uint64_t type)
{
    put(&rec, "\x01\x02\x03", 3);
    rec_end(s, type);
}

/* ------------------------------------------------------------------ */
/* stacks: return addresses in the site functions                      */
/* ------------------------------------------------------------------ */

#define NOINLINE __attribute__((noinline))

static NOINLINE uint64_t here(void)
{
    return (uint64_t)__builtin_return_address(0);
}

/* each site function fills pcs[0] (a return address in itself, on the line
   it reports) and pcs[1] (its return address in make_stacks) */
#define SITE(name)                                                                          \
    static NOINLINE void name(uint64_t *pcs, int *line)                                     \
    {                                                                                       \
        pcs[0] = here(); *line = __LINE__;                                                  \
        pcs[1] = (uint64_t)__builtin_return_address(0);                                     \
    }
SITE(grow_cache)
SITE(temp_buffer)
SITE(session_table)
SITE(load_config)
SITE(make_children)
SITE(maybe_leak)
SITE(hidden_leak)
SITE(churn_buffer)
SITE(burst_alloc)
SITE(resize_array)
SITE(worker_queue)
SITE(leak_per_iter)
SITE(temp_per_iter)
SITE(startup_table)
SITE(warmup_cache)
SITE(big_site)

/* an inlined frame: inl_helper is inlined into inl_site */
static inline __attribute__((always_inline)) uint64_t inl_helper(int *line)
{
    uint64_t pc = here(); *line = __LINE__;
    return pc;
}
static NOINLINE void inl_site(uint64_t *pcs, int *line)
{
    pcs[0] = inl_helper(line);
    pcs[1] = (uint64_t)__builtin_return_address(0);
}

struct site_def {
    const char *name;
    void (*fn)(uint64_t *, int *);
};
static const struct site_def site_defs[] = {
    { "?", NULL },
    { "grow_cache", grow_cache },       /* 1 */
    { "temp_buffer", temp_buffer },     /* 2 */
    { "session_table", session_table }, /* 3 */
    { "load_config", load_config },     /* 4 */
    { "make_children", make_children }, /* 5: indirectly lost */
    { "maybe_leak", maybe_leak },       /* 6: possibly lost */
    { "hidden_leak", hidden_leak },     /* 7: suppressed */
    { "churn_buffer", churn_buffer },   /* 8 */
    { "burst_alloc", burst_alloc },     /* 9 */
    { "inl_site", inl_site },           /* 10 */
    { "resize_array", resize_array },   /* 11 */
    { "worker_queue", worker_queue },   /* 12 */
    { "leak_per_iter", leak_per_iter }, /* 13 */
    { "temp_per_iter", temp_per_iter }, /* 14 */
    { "startup_table", startup_table }, /* 15 */
    { "warmup_cache", warmup_cache },   /* 16 */
    { "big_site", big_site },           /* 17 */
};
#define NSITES ((int)(sizeof site_defs / sizeof site_defs[0]))
static uint64_t site_pcs[NSITES][2];
static int site_line[NSITES];

static NOINLINE void make_stacks(void)
{
    for (int i = 1; i < NSITES; i++)
        site_defs[i].fn(site_pcs[i], &site_line[i]);
}

static void r_stacks(struct stream *s, const int *ids, int n)
{
    for (int i = 0; i < n; i++)
        r_stack(s, (uint64_t)ids[i], site_pcs[ids[i]], 2);
}

/* ------------------------------------------------------------------ */
/* the timeline: events in time order, then a replay for the expectations */
/* ------------------------------------------------------------------ */

struct ev {
    uint64_t t, addr, size;
    int stack, fn, is_free, inherited;
    size_t seq;
};
static struct ev *evs;
static size_t nev, capev;

static void ev_add(uint64_t t, int is_free, uint64_t addr, uint64_t size, int stack, int fn)
{
    if (nev == capev) {
        capev = capev ? capev * 2 : 1024;
        evs = realloc(evs, capev * sizeof *evs);
    }
    evs[nev] = (struct ev){ t, addr, size, stack, fn, is_free, 0, nev };
    nev++;
}
#define ALLOC(t, a, sz, st) ev_add(t, 0, a, sz, st, 0)
#define FREE(t, a) ev_add(t, 1, a, 0, 0, 0)

static int ev_cmp(const void *x, const void *y)
{
    const struct ev *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* the exact replay (time order) */
struct live {
    uint64_t addr, size, t;
    int stack, inherited;
};
static struct live *lv;
static size_t nlv, caplv;
static uint64_t site_live[NSITES], site_at_peak[NSITES], site_max[NSITES];
static uint64_t x_allocs, x_bytes, x_temps, x_frees, x_live, x_peak, x_peak_t, x_peak_blocks,
    x_blocks;

static void replay(void)
{
    for (size_t i = 0; i < nev; i++) {
        const struct ev *e = &evs[i];
        if (!e->is_free) {
            if (nlv == caplv) {
                caplv = caplv ? caplv * 2 : 1024;
                lv = realloc(lv, caplv * sizeof *lv);
            }
            lv[nlv++] = (struct live){ e->addr, e->size, e->t, e->stack, e->inherited };
            if (!e->inherited) {
                x_allocs++;
                x_bytes += e->size;
            }
            site_live[e->stack] += e->size;
            if (site_live[e->stack] > site_max[e->stack])
                site_max[e->stack] = site_live[e->stack];
            x_live += e->size;
            x_blocks++;
            if (x_live > x_peak) {
                x_peak = x_live;
                x_peak_t = e->t;
                x_peak_blocks = x_blocks;
                memcpy(site_at_peak, site_live, sizeof site_live);
            }
        } else {
            size_t k;
            for (k = 0; k < nlv && lv[k].addr != e->addr; k++)
                ;
            if (k == nlv) {
                fprintf(stderr, "mktrace: free of unknown %llx\n", (unsigned long long)e->addr);
                exit(1);
            }
            x_frees++;
            if (!lv[k].inherited && e->t - lv[k].t <= 1 * MS)
                x_temps++;
            site_live[lv[k].stack] -= lv[k].size;
            x_live -= lv[k].size;
            x_blocks--;
            lv[k] = lv[--nlv];
        }
    }
}

/* write the timeline's events into the shard streams */
static void emit_events(void)
{
    for (size_t i = 0; i < nev; i++) {
        const struct ev *e = &evs[i];
        clock_to(e->t);
        struct stream *s = &sh[shard_of(e->addr)];
        if (e->is_free)
            r_free(s, e->t, e->addr);
        else
            r_alloc(s, e->t, e->addr, e->size, (uint64_t)e->stack, (uint64_t)e->fn);
    }
}

static void write_expect(const char *path, const char *extra)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "allocations %llu\nallocated_bytes %llu\ntemporary %llu\nfrees %llu\n",
            (unsigned long long)x_allocs, (unsigned long long)x_bytes,
            (unsigned long long)x_temps, (unsigned long long)x_frees);
    fprintf(f, "peak_bytes %llu\npeak_time_ns %llu\npeak_blocks %llu\nexit_live_bytes %llu\n",
            (unsigned long long)x_peak, (unsigned long long)x_peak_t,
            (unsigned long long)x_peak_blocks, (unsigned long long)x_live);
    /* top_peak: sites by live bytes at the peak */
    int order[NSITES], n = 0;
    for (int i = 1; i < NSITES; i++)
        if (site_at_peak[i])
            order[n++] = i;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (site_at_peak[order[j]] > site_at_peak[order[i]]) {
                int x = order[i];
                order[i] = order[j];
                order[j] = x;
            }
    fprintf(f, "top_peak");
    for (int i = 0; i < n; i++)
        fprintf(f, " %s:%llu", site_defs[order[i]].name, (unsigned long long)site_at_peak[order[i]]);
    fprintf(f, "\n");
    for (int i = 1; i < NSITES; i++)
        fprintf(f, "line %s %d\nmax_live %s %llu\n", site_defs[i].name, site_line[i],
                site_defs[i].name, (unsigned long long)site_max[i]);
    fprintf(f, "chunks %zu\nchunk_offsets", nchunks);
    for (size_t i = 0; i < nchunks && i < sizeof chunk_offs / sizeof chunk_offs[0]; i++)
        fprintf(f, " %llu", (unsigned long long)chunk_offs[i]);
    fprintf(f, "\nfile_size %llu\n%s", (unsigned long long)out_off, extra ? extra : "");
    fclose(f);
}

static void open_out(const char *path)
{
    out = fopen(path, "wb");
    if (!out) {
        perror(path);
        exit(1);
    }
}

static void close_out(void)
{
    if (fclose(out) != 0) {
        perror("mktrace: close");
        exit(1);
    }
    const char *sp = getenv("MKTRACE_SEED");
    if (sp && *sp) {
        FILE *f = fopen(sp, "wb");
        if (!f || fwrite(seed.p, 1, seed.n, f) != seed.n || fclose(f) != 0) {
            perror(sp);
            exit(1);
        }
    }
}

/* ------------------------------------------------------------------ */
/* scenarios                                                           */
/* ------------------------------------------------------------------ */

#define START_NS 1700000000000000000ull
#define A(x) (0x5500000000ull + (uint64_t)(x) * 0x40)

static void scenario_normal(const char *path, const char *expect, int killed)
{
    const char *argv[] = { "server", "--port", "8080" };
    r_process(1000, 1, START_NS, "/opt/fixture/server", 3, argv, "/srv");
    r_module_self(&hdr, 0);
    open_out(path);
    write_header(1);
    int ids[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
    r_stacks(&meta, ids, 11);
    r_thread(&meta, 0, 1000, "main");

    uint64_t next = 1;
    ALLOC(1 * MS, A(next++), 50000, 4); /* load_config: reachable, constant */
    uint64_t sess[100];
    for (int k = 0; k < 100; k++) {
        uint64_t base = (uint64_t)k * 100 * MS;
        for (int i = 0; i < 10; i++) { /* temp_buffer: freed after 100 us */
            uint64_t t = base + 10 * MS + (uint64_t)i * 200 * US;
            ALLOC(t, A(900000), 256, 2);
            FREE(t + 100 * US, A(900000));
        }
        ALLOC(base + 30 * MS, A(900001), 4096, 8); /* churn: lives 50 ms */
        FREE(base + 80 * MS, A(900001));
        ALLOC(base + 50 * MS, A(next++), 1000, 1); /* grow_cache: never freed */
        sess[k] = A(next++);
        ALLOC(base + 70 * MS, sess[k], 500, 3); /* session_table: freed at shutdown */
    }
    if (!killed)
        for (int k = 0; k < 100; k++)
            FREE(9990 * MS + (uint64_t)k * 10 * US, sess[k]);
    for (int i = 0; i < 10; i++)
        ALLOC(1000 * MS + (uint64_t)i * US, A(next++), 64, 5); /* indirectly lost */
    ALLOC(2000 * MS + 5 * US, A(next++), 128, 6);              /* possibly lost */
    ALLOC(2500 * MS, A(next++), 32, 7);                        /* suppressed */
    ALLOC(5005 * MS, A(next++), 200000, 9);                    /* burst: the peak */
    FREE(5505 * MS, A(next - 1));
    ALLOC(3003 * MS, A(next++), 2048, 10); /* inlined frame */
    FREE(3503 * MS, A(next - 1));
    ALLOC(4002 * MS, A(700000), 100, 11); /* realloc: FREE old + ALLOC fn 2 */
    FREE(4102 * MS, A(700000));
    ev_add(4102 * MS + 1, 0, A(700001), 200, 11, 2);
    FREE(4202 * MS, A(700001));
    qsort(evs, nev, sizeof *evs, ev_cmp);
    replay();

    extra_field_once = 1;
    uint64_t end_t = killed ? 6200 * MS : 10000 * MS;
    /* samples, forks: in the meta stream, interleaved by time */
    size_t ei = 0;
    uint64_t peak_rss = 0;
    for (uint64_t ts = 99 * MS; ts <= end_t; ts += 100 * MS) {
        for (; ei < nev && evs[ei].t <= ts; ei++) {
            const struct ev *e = &evs[ei];
            clock_to(e->t);
            struct stream *s = &sh[shard_of(e->addr)];
            if (e->is_free)
                r_free(s, e->t, e->addr);
            else
                r_alloc(s, e->t, e->addr, e->size, (uint64_t)e->stack, (uint64_t)e->fn);
        }
        uint64_t rss = 8 * 1024 * 1024 + ts / MS * 1024;
        r_sample(&meta, ts, rss, 0, 0);
        if (rss > peak_rss)
            peak_rss = rss;
        if (ts == 2999 * MS)
            r_fork(&meta, 3000 * MS - 1, 1001);
        if (ts == 5999 * MS)
            r_fork(&meta, 6000 * MS - 1, 1002);
        if (ts == 4999 * MS)
            r_unknown(&meta, 99); /* a record type of the future */
        if (ts == 5099 * MS) { /* a live reachability check (memsleuth snapshot) */
            rec_dt(&meta, 5099 * MS + 1);
            put_varint(&rec, 1);
            put_varint(&rec, 1);
            put_varint(&rec, 1500000);
            rec_end(&meta, 14);
            uint64_t sl[][4] = { { 0, 1, 51000, 51 }, { 3, 4, 50000, 1 } };
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 4; j++)
                    put_varint(&rec, sl[i][j]);
                rec_end(&meta, 15);
            }
        }
    }
    if (killed) {
        /* flush what the agent flushed; the rest died with the process */
        flush_all();
        close_out();
        write_expect(expect, "killed 1\n");
        return;
    }
    for (; ei < nev; ei++) {
        const struct ev *e = &evs[ei];
        clock_to(e->t);
        struct stream *s = &sh[shard_of(e->addr)];
        if (e->is_free)
            r_free(s, e->t, e->addr);
        else
            r_alloc(s, e->t, e->addr, e->size, (uint64_t)e->stack, (uint64_t)e->fn);
    }
    flush_all();
    r_sample(&meta, end_t - 1 * MS, 9 * 1024 * 1024, x_live, 0);
    r_leak(&meta, 0, 1, 100000, 100, 640, 0);
    r_leak(&meta, 1, 5, 640, 10, 0, 0);
    r_leak(&meta, 2, 6, 128, 1, 0, 0);
    r_leak(&meta, 3, 4, 50000, 1, 0, 0);
    r_leak(&meta, 0, 7, 32, 1, 0, 1);
    r_end(&meta, end_t, 0, 0);
    flush_all();
    close_out();
    char extra[64];
    snprintf(extra, sizeof extra, "peak_rss %llu\n", (unsigned long long)peak_rss);
    write_expect(expect, extra);
}

static void scenario_child(const char *path, const char *expect)
{
    const char *argv[] = { "server", "--port", "8080" };
    r_process(1001, 1000, START_NS + 3 * SEC, "/opt/fixture/server", 3, argv, "/srv");
    r_module_self(&hdr, 0);
    open_out(path);
    write_header(1);
    int ids[] = { 1, 4, 12 };
    r_stacks(&meta, ids, 3);
    /* the blocks of the parent at fork: grow_cache 30 x 1000 (parent addresses
       A(2), A(4), ...), load_config 50000 at A(1): INHERITED (count), then as
       many ALLOC records with fn | 64, in the shard streams, as the agent does */
    rec_dt(&meta, 0);
    put_varint(&rec, 31);
    rec_end(&meta, 12);
    ev_add(0, 0, A(1), 50000, 4, 0);
    evs[nev - 1].inherited = 1;
    for (int k = 0; k < 30; k++) {
        ev_add(0, 0, A(2 + 2 * k), 1000, 1, 0);
        evs[nev - 1].inherited = 1;
    }
    for (size_t i = 0; i < nev; i++)
        r_alloc(&sh[shard_of(evs[i].addr)], 0, evs[i].addr, evs[i].size, (uint64_t)evs[i].stack,
                64);
    size_t ninh = nev;
    for (int k = 0; k < 100; k++)
        ALLOC(10 * MS + (uint64_t)k * 20 * MS, A(800000 + k), 300, 12);
    FREE(1000 * MS + 3, A(1));
    qsort(evs + ninh, nev - ninh, sizeof *evs, ev_cmp);
    replay();
    /* emit the child's own events */
    for (size_t i = ninh; i < nev; i++) {
        const struct ev *e = &evs[i];
        clock_to(e->t);
        struct stream *s = &sh[shard_of(e->addr)];
        if (e->is_free)
            r_free(s, e->t, e->addr);
        else
            r_alloc(s, e->t, e->addr, e->size, (uint64_t)e->stack, 0);
    }
    flush_all();
    r_lost(&meta, 1999 * MS, 5);
    r_sample(&meta, 1999 * MS + 1, 4 * 1024 * 1024, x_live, 0);
    r_leak(&meta, 3, 12, 30000, 100, 0, 0);
    r_leak(&meta, 3, 1, 30000, 30, 0, 0);
    r_end(&meta, 2000 * MS, 0, 0);
    flush_all();
    close_out();
    write_expect(expect, NULL);
}

static void scenario_iter(long n, const char *path, const char *expect)
{
    char a1[32];
    snprintf(a1, sizeof a1, "%ld", n);
    const char *argv[] = { "bench", a1 };
    r_process(2000 + (uint64_t)n, 1, START_NS, "/opt/fixture/bench", 2, argv, "/tmp");
    r_module_self(&hdr, 0);
    open_out(path);
    write_header(1);
    int ids[] = { 13, 14, 15, 16 };
    r_stacks(&meta, ids, 4);
    uint64_t T = (uint64_t)(n + 2) * MS;
    ALLOC(10 * US, A(1), 4096, 15);
    for (int i = 0; i < 10; i++)
        ALLOC(20 * US + (uint64_t)i * US, A(10 + i), 1000, 16);
    for (long i = 0; i < n; i++) {
        uint64_t t = MS + (uint64_t)i * MS;
        ALLOC(t, A(1000 + i), 48, 13);
        ALLOC(t + 100 * US, A(100), 100, 14);
        FREE(t + 110 * US, A(100));
    }
    for (int i = 0; i < 10; i++)
        FREE(T - 100 * US + (uint64_t)i * US, A(10 + i));
    qsort(evs, nev, sizeof *evs, ev_cmp);
    replay();
    emit_events();
    flush_all();
    r_leak(&meta, 0, 13, 48 * (uint64_t)n, (uint64_t)n, 0, 0);
    r_leak(&meta, 3, 15, 4096, 1, 0, 0);
    r_end(&meta, T, 0, 0);
    flush_all();
    close_out();
    write_expect(expect, NULL);
}

static void scenario_big(uint64_t nevents, const char *path, uint64_t LIVE, uint64_t step_ns)
{
    const char *argv[] = { "big" };
    r_process(3000, 1, START_NS, "/opt/fixture/big", 1, argv, "/tmp");
    r_module_self(&hdr, 0);
    open_out(path);
    write_header(1);
    level = 1;
    /* 100 sites: the same function, different callers (synthetic pcs) */
    for (int i = 1; i <= 100; i++) {
        uint64_t pcs[3] = { site_pcs[17][0], site_pcs[17][1], 0x401000 + (uint64_t)i * 16 };
        r_stack(&meta, (uint64_t)i, pcs, 3);
    }
    uint64_t t = 0, ev = 0, allocs = 0;
    uint64_t POOL = 4 * LIVE;
    for (uint64_t s = 0; ev < nevents; s++) {
        uint64_t slot = s % LIVE;
        if (s >= LIVE) {
            uint64_t old = s - LIVE;
            t += step_ns;
            clock_to(t);
            uint64_t a = A(old % POOL);
            r_free(&sh[shard_of(a)], t, a);
            ev++;
        }
        (void)slot;
        t += step_ns;
        clock_to(t);
        uint64_t a = A(s % POOL);
        r_alloc(&sh[shard_of(a)], t, a, 16 + (s % 97) * 8, 1 + s % 100, 0);
        ev++;
        allocs++;
    }
    flush_all();
    r_end(&meta, t + 1, 0, 0);
    flush_all();
    close_out();
    printf("allocations %llu events %llu run_ns %llu\n", (unsigned long long)allocs,
           (unsigned long long)ev, (unsigned long long)t + 1);
}

/* a small process image: one block, maybe a fork, maybe an exec at the end */
static void r_exec(struct stream *s, uint64_t t, const char *path)
{
    rec_dt(s, t);
    put_str(&rec, path);
    rec_end(s, 11);
}

static void scenario_small(const char *path, uint64_t pid, uint64_t ppid, uint64_t start,
                           const char *exe, uint64_t fork_pid, const char *exec_path)
{
    const char *argv[] = { exe };
    hdr.b.n = meta.b.n = seed.n = 0; /* a new file */
    hdr.t = hdr.a = meta.t = meta.a = 0;
    out_off = 0;
    next_flush = 100 * MS;
    r_process(pid, ppid, START_NS + start, exe, 1, argv, "/");
    r_module_self(&hdr, 0);
    open_out(path);
    write_header(1);
    int ids[] = { 1 };
    r_stacks(&meta, ids, 1);
    r_alloc(&meta, 1 * MS, A(pid), 64, 1, 0);
    if (fork_pid)
        r_fork(&meta, 2 * MS, fork_pid);
    if (exec_path) {
        /* a successful exec: EXEC is the image's last record */
        r_exec(&meta, 5 * MS, exec_path);
    } else {
        /* an exec that failed: the image goes on */
        r_exec(&meta, 3 * MS, "/nonexistent/prog");
        r_sample(&meta, 4 * MS, 1 << 20, 64, 1);
        r_leak(&meta, 3, 1, 64, 1, 0, 0);
        r_end(&meta, 10 * MS, 0, 0);
    }
    flush_all();
    close_out();
}

static void scenario_bad(const char *kind, const char *path)
{
    const char *argv[] = { "x" };
    open_out(path);
    if (!strcmp(kind, "v2")) {
        r_process(1, 0, START_NS, "/x", 1, argv, "/");
        write_header(2);
    } else if (!strcmp(kind, "badvarint")) {
        r_process(7, 1, START_NS, "/x", 1, argv, "/");
        /* a PROCESS record whose pid is an 11-byte varint */
        put(&rec, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
        rec_end(&hdr, 1);
        write_header(1);
    } else if (!strcmp(kind, "absurd")) {
        r_process(8, 1, START_NS, "/x", 1, argv, "/");
        write_header(1);
        struct buf h = { 0 };
        put_u32(&h, 0x4b43534du);
        put_u32(&h, 100);
        put_u32(&h, 0x7fffffffu);
        put_u32(&h, 0);
        put(&h, "0123456789", 10);
        wr(h.p, h.n);
        free(h.p);
    } else if (!strcmp(kind, "garbage")) {
        uint64_t x = 88172645463325252ull;
        for (int i = 0; i < 4096; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            unsigned char c = (unsigned char)x;
            wr(&c, 1);
        }
    } else {
        fprintf(stderr, "mktrace: unknown kind '%s'\n", kind);
        exit(2);
    }
    close_out();
}

int main(int argc, char **argv)
{
    make_stacks();
    want_seed = getenv("MKTRACE_SEED") && *getenv("MKTRACE_SEED");
    if (getenv("MKTRACE_LAG"))
        next_lag_flush = lag_ns = strtoull(getenv("MKTRACE_LAG"), NULL, 10) * MS;
    if (argc == 4 && !strcmp(argv[1], "normal"))
        scenario_normal(argv[2], argv[3], 0);
    else if (argc == 4 && !strcmp(argv[1], "killed"))
        scenario_normal(argv[2], argv[3], 1);
    else if (argc == 4 && !strcmp(argv[1], "child"))
        scenario_child(argv[2], argv[3]);
    else if (argc == 5 && !strcmp(argv[1], "iter"))
        scenario_iter(atol(argv[2]), argv[3], argv[4]);
    else if (argc >= 4 && argc <= 6 && !strcmp(argv[1], "big"))
        scenario_big(strtoull(argv[2], NULL, 10), argv[3],
                     argc > 4 ? strtoull(argv[4], NULL, 10) : 1000,
                     argc > 5 ? strtoull(argv[5], NULL, 10) : 1000);
    else if (argc == 5 && !strcmp(argv[1], "exec")) {
        /* launcher 4000 execs worker (same pid), which forks 4001 */
        scenario_small(argv[2], 4000, 1, 0, "/opt/fixture/launcher", 0, "/opt/fixture/worker");
        nchunks = 0;
        scenario_small(argv[3], 4000, 1, 5 * MS, "/opt/fixture/worker", 4001, NULL);
        scenario_small(argv[4], 4001, 4000, 7 * MS, "/opt/fixture/worker", 0, NULL);
    } else if (argc == 3)
        scenario_bad(argv[1], argv[2]);
    else {
        fprintf(stderr, "usage: mktrace normal|killed|child OUT EXPECT | iter N OUT EXPECT | "
                        "big NEVENTS OUT [LIVE [NS]] | exec A B C | v2|badvarint|absurd|garbage OUT\n");
        return 2;
    }
    return 0;
}
