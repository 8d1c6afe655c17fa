/*
 * memsleuth - trace_read.c: see trace_read.h.
 *
 * Why it is built this way:
 *  - One buffer for the compressed bytes and one for the raw records, reused
 *    chunk after chunk: the reader's memory is one chunk, whatever the size of
 *    the trace.  Buffers grow as bytes actually arrive (read_grow), so a
 *    corrupt length in a short file never allocates more than the file holds
 *    (plus a 1 MiB step); raw_len is checked against MS_TRACE_MAX_RAW and
 *    against the zstd frame's own content size before the raw buffer grows.
 *  - The check (FNV-1a 32 of the compressed bytes) is verified before zstd
 *    sees the data; ZSTD_decompressDCtx decompresses into exactly raw_len
 *    bytes and anything else is corruption.
 *  - A cut (the file ends inside a chunk) and corruption are told apart:
 *    the first is how a SIGKILLed program's trace ends, the second is damage.
 *  - Every field is read through a cursor that refuses to run past its
 *    record; a varint is at most 10 bytes and must fit 64 bits.
 */
#include "trace_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

struct ms_trace_reader {
    char *path;                  /* for messages */
    int fd;                      /* -1 when reading from memory */
    const unsigned char *mem;    /* in-memory trace (ms_trace_open_mem) */
    size_t mem_len, mem_pos;
    uint64_t pos;                /* file offset of the next byte to read */
    uint64_t size;               /* file size when known (regular file), else UINT64_MAX */
    uint32_t version;
    enum ms_trace_status status;
    int done;                    /* no more chunks: status says why */
    char msg[512];               /* message for status != OK */
    unsigned char *comp;         /* compressed bytes of the current chunk */
    size_t comp_cap;
    unsigned char *raw;          /* records of the header payload / current chunk */
    size_t raw_cap;
    const unsigned char *cur, *end; /* records not yet handed out */
    uint32_t chunk_no;           /* 0 = header payload, then 1, 2, ... */
    uint32_t chunks_done;        /* chunks read completely (header payload not counted) */
    uint64_t chunk_off;          /* offset of the current chunk's header */
    uint32_t chunk_comp, chunk_raw;
    uint64_t t, a;               /* delta state (reset per chunk) */
    int ignore_check;            /* fuzzing: accept chunks whose check fails */
    ZSTD_DCtx *dctx;
    struct ms_trace_str *argv;   /* decoded argv of the last PROCESS record */
    size_t argv_cap;
    uint64_t *pcs;               /* decoded pcs of the last STACK record */
    size_t pcs_cap;
};

/* ------------------------------------------------------------------ */
/* names                                                               */
/* ------------------------------------------------------------------ */

static const char *const rec_names[] = {
    "?", "PROCESS", "MODULE", "STACK", "THREAD", "ALLOC", "FREE", "SAMPLE",
    "LEAK", "END", "FORK", "EXEC", "INHERITED", "LOST", "SNAPSHOT", "SNAP_LEAK",
};

static const char *const pool_rec_names[] = {
    "POOL_SITE", "POOL_NEW", "POOL_NAME", "POOL_DESTROY", "POOL_ALLOC", "POOL_FREE", "POOL_MOVE", "POOL_CLAIM",
};

const char *ms_trace_rec_name(uint64_t type)
{
    if (type >= MS_REC_POOL_SITE && type <= MS_REC_POOL_CLAIM)
        return pool_rec_names[type - MS_REC_POOL_SITE];
    return type < sizeof rec_names / sizeof rec_names[0] ? rec_names[type] : "?";
}

static const char *const fn_names[] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "new", "new[]", "new_nothrow", "new[]_nothrow",
    "new_aligned", "new[]_aligned",
};

const char *ms_trace_fn_name(uint64_t fn)
{
    return fn < sizeof fn_names / sizeof fn_names[0] ? fn_names[fn] : "?";
}

static const char *const kind_names[] = { "definite", "indirect", "possible", "reachable" };

const char *ms_trace_leak_kind_name(uint64_t kind)
{
    return kind < 4 ? kind_names[kind] : "?";
}

static const char *const how_names[] = { "exit", "_exit", "signal" };

const char *ms_trace_end_how_name(uint64_t how)
{
    return how < 3 ? how_names[how] : "?";
}

static const char *const trigger_names[] = { "?", "signal", "interval", "command", "peak" };

const char *ms_trace_trigger_name(uint64_t trigger)
{
    return trigger < 5 ? trigger_names[trigger] : "?";
}

uint32_t ms_trace_fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* input                                                               */
/* ------------------------------------------------------------------ */

/* Read up to n bytes at the current position.  Returns the number read
   (less than n only at the end of the file) or -1 on a read error. */
static ssize_t read_some(struct ms_trace_reader *r, void *buf, size_t n)
{
    if (r->fd < 0) {
        size_t left = r->mem_len - r->mem_pos;
        if (n > left)
            n = left;
        if (n)
            memcpy(buf, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        r->pos += n;
        return (ssize_t)n;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(r->fd, (char *)buf + got, n - got);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    r->pos += got;
    return (ssize_t)got;
}

/* Read n bytes into *buf (capacity *cap), growing it only as the bytes come:
   at most 1 MiB (or the size read so far) ahead of what the file delivered.
   *got = bytes read.  Returns 0, or -1 (errno: ENOMEM or the read error). */
static int read_grow(struct ms_trace_reader *r, unsigned char **buf, size_t *cap, size_t n,
                     size_t *got)
{
    size_t pos = 0;
    *got = 0;
    while (pos < n) {
        size_t step = n - pos;
        size_t lim = pos > (1u << 20) ? pos : (1u << 20);
        if (step > lim)
            step = lim;
        if (pos + step > *cap) {
            size_t nc = *cap ? *cap : 4096;
            while (nc < pos + step)
                nc *= 2;
            if (nc > n && n >= pos + step)
                nc = n;
            unsigned char *nb = realloc(*buf, nc);
            if (!nb) {
                errno = ENOMEM;
                return -1;
            }
            *buf = nb;
            *cap = nc;
        }
        ssize_t k = read_some(r, *buf + pos, step);
        if (k < 0)
            return -1;
        pos += (size_t)k;
        if ((size_t)k < step)
            break;
    }
    *got = pos;
    return 0;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set_end(struct ms_trace_reader *r, enum ms_trace_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_end(struct ms_trace_reader *r, enum ms_trace_status st, const char *fmt, ...)
{
    r->done = 1;
    r->cur = r->end = NULL;
    if (r->status != MS_TRACE_OK)
        return; /* the first problem is the one reported */
    r->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

static void set_cut(struct ms_trace_reader *r)
{
    set_end(r, MS_TRACE_CUT,
            "trace cut off after %u chunks: the program probably died; reading what is there",
            r->chunks_done);
}

/* "reading the 3 chunks before it" */
static const char *before(const struct ms_trace_reader *r, char *buf, size_t n)
{
    if (r->chunks_done == 0)
        snprintf(buf, n, "only the header is read");
    else
        snprintf(buf, n, "reading the %u chunk%s before it", r->chunks_done,
                 r->chunks_done == 1 ? "" : "s");
    return buf;
}

/* Read the next chunk into r->raw.  Returns 1 when records are ready, 0 at
   the end (r->status says why). */
static int next_chunk(struct ms_trace_reader *r)
{
    unsigned char h[16];
    char b[64];
    uint64_t off = r->pos;
    ssize_t k = read_some(r, h, sizeof h);
    if (k < 0) {
        set_end(r, MS_TRACE_IOERR, "read error at offset %llu: %s", (unsigned long long)off,
                strerror(errno));
        return 0;
    }
    if (k == 0) {
        r->done = 1;
        return 0;
    }
    if (k < (ssize_t)sizeof h) {
        /* a chunk header that does not even have its magic is damage, not a cut */
        if (k >= 4 && le32(h) != MS_TRACE_CHUNK_MAGIC)
            goto bad_magic;
        set_cut(r);
        return 0;
    }
    if (le32(h) != MS_TRACE_CHUNK_MAGIC)
        goto bad_magic;
    uint32_t comp_len = le32(h + 4), raw_len = le32(h + 8), check = le32(h + 12);
    uint32_t no = r->chunks_done + 1;
    if (raw_len > MS_TRACE_MAX_RAW) {
        set_end(r, MS_TRACE_CORRUPT,
                "chunk %u at offset %llu is corrupt: raw length %u is larger than the limit %u; %s",
                no, (unsigned long long)off, raw_len, MS_TRACE_MAX_RAW, before(r, b, sizeof b));
        return 0;
    }
    if (comp_len == 0 || comp_len > ZSTD_compressBound(raw_len)) {
        set_end(r, MS_TRACE_CORRUPT,
                "chunk %u at offset %llu is corrupt: compressed length %u is impossible for "
                "raw length %u; %s",
                no, (unsigned long long)off, comp_len, raw_len, before(r, b, sizeof b));
        return 0;
    }
    if (r->size != UINT64_MAX && r->pos + comp_len > r->size) {
        set_cut(r);
        return 0;
    }
    size_t got;
    if (read_grow(r, &r->comp, &r->comp_cap, comp_len, &got) < 0) {
        if (errno == ENOMEM)
            set_end(r, MS_TRACE_NOMEM, "out of memory reading chunk %u", no);
        else
            set_end(r, MS_TRACE_IOERR, "read error in chunk %u at offset %llu: %s", no,
                    (unsigned long long)off, strerror(errno));
        return 0;
    }
    if (got < comp_len) {
        set_cut(r);
        return 0;
    }
    uint32_t sum = ms_trace_fnv1a(r->comp, comp_len);
    if (sum != check && !r->ignore_check) {
        set_end(r, MS_TRACE_CORRUPT,
                "chunk %u at offset %llu is corrupt (check 0x%08x, expected 0x%08x); %s", no,
                (unsigned long long)off, sum, check, before(r, b, sizeof b));
        return 0;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(r->comp, comp_len);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != raw_len)) {
        if (fcs == ZSTD_CONTENTSIZE_ERROR)
            set_end(r, MS_TRACE_CORRUPT,
                    "chunk %u at offset %llu is corrupt: not a zstd frame; %s", no,
                    (unsigned long long)off, before(r, b, sizeof b));
        else
            set_end(r, MS_TRACE_CORRUPT,
                    "chunk %u at offset %llu is corrupt: its zstd frame holds %llu bytes, not "
                    "%u; %s",
                    no, (unsigned long long)off, fcs, raw_len, before(r, b, sizeof b));
        return 0;
    }
    size_t need = raw_len ? raw_len : 1;
    if (need > r->raw_cap) {
        unsigned char *nb = realloc(r->raw, need);
        if (!nb) {
            set_end(r, MS_TRACE_NOMEM, "out of memory reading chunk %u", no);
            return 0;
        }
        r->raw = nb;
        r->raw_cap = need;
    }
    if (!r->dctx && !(r->dctx = ZSTD_createDCtx())) {
        set_end(r, MS_TRACE_NOMEM, "out of memory reading chunk %u", no);
        return 0;
    }
    size_t dn = ZSTD_decompressDCtx(r->dctx, r->raw, raw_len, r->comp, comp_len);
    if (ZSTD_isError(dn) || dn != raw_len) {
        set_end(r, MS_TRACE_CORRUPT, "chunk %u at offset %llu is corrupt: %s%s; %s", no,
                (unsigned long long)off, ZSTD_isError(dn) ? "zstd: " : "",
                ZSTD_isError(dn) ? ZSTD_getErrorName(dn) : "short zstd frame",
                before(r, b, sizeof b));
        return 0;
    }
    r->chunks_done = no;
    r->chunk_no = no;
    r->chunk_off = off;
    r->chunk_comp = comp_len;
    r->chunk_raw = raw_len;
    r->cur = r->raw;
    r->end = r->raw + raw_len;
    r->t = r->a = 0;
    return 1;

bad_magic:
    set_end(r, MS_TRACE_CORRUPT, "no chunk at offset %llu (bad magic 0x%08x); %s",
            (unsigned long long)off, k >= 4 ? le32(h) : 0u, before(r, b, sizeof b));
    return 0;
}

/* ------------------------------------------------------------------ */
/* records                                                             */
/* ------------------------------------------------------------------ */

/* A cursor over one record's payload: every read is bounded by e; a
   failed read sets bad and returns 0. */
struct cur {
    const unsigned char *p, *e;
    int bad;        /* 1: ran past the end, 2: varint too long */
};

static uint64_t get_varint(struct cur *c)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (c->p >= c->e) {
            c->bad = c->bad ? c->bad : 1;
            return 0;
        }
        unsigned b = *c->p++;
        if (i == 9 && b > 1) {
            c->bad = 2; /* 10th byte: only bit 63 may be left, and no continuation */
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            return v;
    }
    c->bad = 2;
    return 0;
}

static uint64_t get_svarint(struct cur *c)
{
    uint64_t z = get_varint(c);
    return (z >> 1) ^ (0 - (z & 1)); /* zigzag, as an unsigned two's complement value */
}

static struct ms_trace_str get_str(struct cur *c)
{
    struct ms_trace_str s = { "", 0 };
    uint64_t n = get_varint(c);
    if (c->bad)
        return s;
    if (n > (uint64_t)(c->e - c->p)) {
        c->bad = 1;
        return s;
    }
    s.p = (const char *)c->p;
    s.len = (size_t)n;
    c->p += n;
    return s;
}

static uint64_t get_dt(struct ms_trace_reader *r, struct cur *c, struct ms_trace_rec *rec)
{
    uint64_t dt = get_varint(c);
    r->t += dt;
    rec->t = r->t;
    rec->has_time = 1;
    return dt;
}

static uint64_t get_addr(struct ms_trace_reader *r, struct cur *c)
{
    r->a += get_svarint(c);
    return r->a;
}

/* "chunk 3 at offset 1234" or "the header payload", for messages */
static void where(const struct ms_trace_reader *r, char *w, size_t n)
{
    if (r->chunk_no)
        snprintf(w, n, "chunk %u at offset %llu", r->chunk_no, (unsigned long long)r->chunk_off);
    else
        snprintf(w, n, "the header payload");
}

/* The pool records (types 20..27): absolute times, no delta state. */
static void decode_pool(struct cur *c, struct ms_trace_rec *rec)
{
    if (rec->type != MS_REC_POOL_SITE) {
        rec->t = get_varint(c);
        rec->has_time = 1;
    }
    switch (rec->type) {
    case MS_REC_POOL_SITE:
        rec->u.pool.id = get_varint(c);
        rec->u.pool.line = get_varint(c);
        rec->u.pool.str = get_str(c);
        break;
    case MS_REC_POOL_NEW:
        rec->u.pool.pool = get_varint(c);
        rec->u.pool.parent = get_varint(c);
        rec->u.pool.site = get_varint(c);
        rec->u.pool.inherited = c->p < c->e ? get_varint(c) : 0;
        break;
    case MS_REC_POOL_NAME:
        rec->u.pool.pool = get_varint(c);
        rec->u.pool.str = get_str(c);
        break;
    case MS_REC_POOL_DESTROY:
        rec->u.pool.pool = get_varint(c);
        rec->u.pool.site = get_varint(c);
        break;
    case MS_REC_POOL_ALLOC:
        rec->u.pool.pool = get_varint(c);
        rec->u.pool.addr = get_varint(c);
        rec->u.pool.size = get_varint(c);
        rec->u.pool.site = get_varint(c);
        rec->u.pool.old_addr = get_varint(c);
        break;
    case MS_REC_POOL_FREE:
        rec->u.pool.pool = get_varint(c);
        rec->u.pool.addr = get_varint(c);
        rec->u.pool.site = get_varint(c);
        break;
    case MS_REC_POOL_MOVE:
        rec->u.pool.what = get_varint(c);
        rec->u.pool.obj = get_varint(c);
        rec->u.pool.to = get_varint(c);
        rec->u.pool.from = get_varint(c);
        rec->u.pool.site = get_varint(c);
        break;
    case MS_REC_POOL_CLAIM:
        rec->u.pool.what = get_varint(c);
        rec->u.pool.obj = get_varint(c);
        rec->u.pool.to = get_varint(c);
        rec->u.pool.site = get_varint(c);
        break;
    default:
        break;
    }
}

/* Decode the record at r->cur.  Returns 1, or 0 after set_end (corrupt). */
static int decode(struct ms_trace_reader *r, struct ms_trace_rec *rec)
{
    struct cur hc = { r->cur, r->end, 0 };
    const unsigned char *start = r->cur;
    uint64_t type = get_varint(&hc), len = hc.bad ? 0 : get_varint(&hc);
    char w[64];
    size_t at = (size_t)(start - r->raw), total = (size_t)(r->end - r->raw);
    if (hc.bad || len > (uint64_t)(r->end - hc.p)) {
        where(r, w, sizeof w);
        set_end(r, MS_TRACE_CORRUPT,
                "%s is corrupt: %s (record at byte %zu of %zu); reading what precedes it", w,
                hc.bad == 2 ? "a varint longer than 10 bytes"
                            : "a record runs past the end of its chunk",
                at, total);
        return 0;
    }
    struct cur c = { hc.p, hc.p + len, 0 };
    r->cur = hc.p + len;
    memset(rec, 0, sizeof *rec);
    rec->type = type;
    rec->len = len;
    rec->raw.p = (const char *)c.p;
    rec->raw.len = (size_t)len;
    rec->chunk = r->chunk_no;
    switch (type) {
    case MS_REC_PROCESS: {
        rec->u.process.pid = get_varint(&c);
        rec->u.process.ppid = get_varint(&c);
        rec->u.process.start_unix_ns = get_varint(&c);
        rec->u.process.exe = get_str(&c);
        uint64_t argc = get_varint(&c);
        rec->u.process.argc = argc;
        if (c.bad)
            break;
        if (argc > (uint64_t)(c.e - c.p)) { /* each string takes at least one byte */
            c.bad = 1;
            break;
        }
        size_t keep = argc > MS_TRACE_MAX_ARGV ? MS_TRACE_MAX_ARGV : (size_t)argc;
        if (keep > r->argv_cap) {
            struct ms_trace_str *na = realloc(r->argv, keep * sizeof *na);
            if (!na) {
                set_end(r, MS_TRACE_NOMEM, "out of memory");
                return 0;
            }
            r->argv = na;
            r->argv_cap = keep;
        }
        for (uint64_t i = 0; i < argc && !c.bad; i++) {
            struct ms_trace_str s = get_str(&c);
            if (i < keep)
                r->argv[i] = s;
        }
        rec->u.process.argv = r->argv;
        rec->u.process.argv_kept = keep;
        rec->u.process.cwd = get_str(&c);
        rec->u.process.sample_rate = c.p < c.e ? get_varint(&c) : 0;
        break;
    }
    case MS_REC_MODULE:
        get_dt(r, &c, rec);
        rec->u.module.path = get_str(&c);
        rec->u.module.build_id = get_str(&c);
        rec->u.module.bias = get_varint(&c);
        rec->u.module.lo = get_varint(&c);
        rec->u.module.hi = get_varint(&c);
        rec->u.module.flags = get_varint(&c);
        break;
    case MS_REC_STACK: {
        rec->u.stack.id = get_varint(&c);
        uint64_t n = get_varint(&c);
        rec->u.stack.n = n;
        if (c.bad)
            break;
        if (n > (uint64_t)(c.e - c.p)) { /* each pc takes at least one byte */
            c.bad = 1;
            break;
        }
        size_t keep = n > MS_TRACE_MAX_PCS ? MS_TRACE_MAX_PCS : (size_t)n;
        if (keep > r->pcs_cap) {
            uint64_t *np = realloc(r->pcs, keep * sizeof *np);
            if (!np) {
                set_end(r, MS_TRACE_NOMEM, "out of memory");
                return 0;
            }
            r->pcs = np;
            r->pcs_cap = keep;
        }
        uint64_t pc = 0;
        for (uint64_t i = 0; i < n && !c.bad; i++) {
            pc = i ? pc + get_svarint(&c) : get_varint(&c);
            if (i < keep)
                r->pcs[i] = pc;
        }
        rec->u.stack.pcs = r->pcs;
        rec->u.stack.kept = keep;
        break;
    }
    case MS_REC_THREAD:
        get_dt(r, &c, rec);
        rec->u.thread.tid = get_varint(&c);
        rec->u.thread.name = get_str(&c);
        break;
    case MS_REC_ALLOC:
        get_dt(r, &c, rec);
        rec->u.alloc.addr = get_addr(r, &c);
        rec->u.alloc.size = get_varint(&c);
        rec->u.alloc.stack = get_varint(&c);
        rec->u.alloc.fn = get_varint(&c);
        rec->u.alloc.tid = c.p < c.e ? get_varint(&c) : 0; /* appended 2026-12-05 */
        rec->inherited = (rec->u.alloc.fn & MS_FN_INHERITED) != 0;
        rec->u.alloc.fn &= ~(uint64_t)MS_FN_INHERITED;
        break;
    case MS_REC_FREE:
        get_dt(r, &c, rec);
        rec->u.free.addr = get_addr(r, &c);
        break;
    case MS_REC_SAMPLE:
        get_dt(r, &c, rec);
        rec->u.sample.rss = get_varint(&c);
        rec->u.sample.heap_live_bytes = get_varint(&c);
        rec->u.sample.heap_live_blocks = get_varint(&c);
        break;
    case MS_REC_LEAK:
        rec->u.leak.kind = get_varint(&c);
        rec->u.leak.stack = get_varint(&c);
        rec->u.leak.bytes = get_varint(&c);
        rec->u.leak.blocks = get_varint(&c);
        rec->u.leak.indirect_bytes = get_varint(&c);
        rec->u.leak.suppressed = get_varint(&c);
        rec->u.leak.shown = c.p < c.e ? get_varint(&c) : 1;
        break;
    case MS_REC_END:
        get_dt(r, &c, rec);
        rec->u.end.how = get_varint(&c);
        rec->u.end.status = get_varint(&c);
        break;
    case MS_REC_FORK:
        get_dt(r, &c, rec);
        rec->u.fork.child_pid = get_varint(&c);
        break;
    case MS_REC_EXEC:
        get_dt(r, &c, rec);
        rec->u.exec.path = get_str(&c);
        break;
    case MS_REC_INHERITED:
        get_dt(r, &c, rec);
        rec->u.inherited.count = get_varint(&c);
        break;
    case MS_REC_SNAPSHOT:
        get_dt(r, &c, rec);
        rec->u.snapshot.id = get_varint(&c);
        rec->u.snapshot.trigger = get_varint(&c);
        rec->u.snapshot.pause_ns = get_varint(&c);
        break;
    case MS_REC_SNAP_LEAK:
        rec->u.snap_leak.kind = get_varint(&c);
        rec->u.snap_leak.stack = get_varint(&c);
        rec->u.snap_leak.bytes = get_varint(&c);
        rec->u.snap_leak.blocks = get_varint(&c);
        break;
    case MS_REC_LOST:
        get_dt(r, &c, rec);
        rec->u.lost.count = get_varint(&c);
        break;
    case MS_REC_POOL_SITE:
    case MS_REC_POOL_NEW:
    case MS_REC_POOL_NAME:
    case MS_REC_POOL_DESTROY:
    case MS_REC_POOL_ALLOC:
    case MS_REC_POOL_FREE:
    case MS_REC_POOL_MOVE:
    case MS_REC_POOL_CLAIM:
        decode_pool(&c, rec);
        break;
    default:
        break; /* unknown: skipped by its length */
    }
    if (c.bad) {
        where(r, w, sizeof w);
        set_end(r, MS_TRACE_CORRUPT,
                "%s is corrupt: %s %s record (%llu bytes at byte %zu of %zu); reading what "
                "precedes it",
                w, c.bad == 2 ? "a varint longer than 10 bytes in a" : "a truncated",
                ms_trace_rec_name(type), (unsigned long long)len, at, total);
        return 0;
    }
    return 1;
}

static _Thread_local ms_trace_tap_fn pool_tap;
static _Thread_local void *pool_tap_arg;

void ms_trace_set_pool_tap(ms_trace_tap_fn fn, void *arg)
{
    pool_tap = fn;
    pool_tap_arg = arg;
}

int ms_trace_next(struct ms_trace_reader *r, struct ms_trace_rec *rec)
{
    if (!r)
        return 0;
    for (;;) {
        if (r->cur && r->cur < r->end) {
            if (!decode(r, rec))
                return 0;
            if (pool_tap && rec->type >= MS_REC_POOL_SITE && rec->type <= MS_REC_POOL_CLAIM &&
                pool_tap(rec, pool_tap_arg))
                continue;
            return 1;
        }
        if (r->done || !next_chunk(r))
            return 0;
    }
}

/* ------------------------------------------------------------------ */
/* open / close                                                        */
/* ------------------------------------------------------------------ */

static struct ms_trace_reader *open_common(struct ms_trace_reader *r, char *err, size_t errlen)
{
    unsigned char h[16];
    size_t got;
    const char *p = r->path;
    ssize_t k = read_some(r, h, 12);
    if (k < 0) {
        snprintf(err, errlen, "cannot read trace '%s': %s", p, strerror(errno));
        goto fail;
    }
    if (k == 0) {
        snprintf(err, errlen, "cannot read trace '%s': empty file (not a memsleuth trace)", p);
        goto fail;
    }
    if (memcmp(h, MS_TRACE_MAGIC, (size_t)k < 8 ? (size_t)k : 8) != 0) {
        snprintf(err, errlen, "cannot read trace '%s': not a memsleuth trace (bad magic)", p);
        goto fail;
    }
    if (k < 12) {
        snprintf(err, errlen, "cannot read trace '%s': truncated header (%zd bytes)", p, k);
        goto fail;
    }
    r->version = le32(h + 8);
    if (r->version > MS_TRACE_VERSION) {
        snprintf(err, errlen,
                 "cannot read trace '%s': trace version %u is newer than this memsleuth reads (%u)",
                 p, r->version, MS_TRACE_VERSION);
        goto fail;
    }
    if (r->version == 0) {
        snprintf(err, errlen, "cannot read trace '%s': trace version 0 is not a valid version", p);
        goto fail;
    }
    k = read_some(r, h + 12, 4);
    if (k < 4) {
        snprintf(err, errlen, "cannot read trace '%s': truncated header (%zd bytes)", p,
                 k < 0 ? (ssize_t)12 : 12 + k);
        goto fail;
    }
    uint32_t plen = le32(h + 12);
    if (plen > MS_TRACE_MAX_PAYLOAD) {
        snprintf(err, errlen,
                 "cannot read trace '%s': header payload of %u bytes is larger than the limit %u "
                 "(corrupt header)",
                 p, plen, MS_TRACE_MAX_PAYLOAD);
        goto fail;
    }
    if (r->size != UINT64_MAX && 16 + (uint64_t)plen > r->size) {
        snprintf(err, errlen,
                 "cannot read trace '%s': truncated header (payload of %u bytes, file of %llu)", p,
                 plen, (unsigned long long)r->size);
        goto fail;
    }
    if (read_grow(r, &r->raw, &r->raw_cap, plen, &got) < 0) {
        snprintf(err, errlen, "cannot read trace '%s': %s", p, strerror(errno));
        goto fail;
    }
    if (got < plen) {
        snprintf(err, errlen, "cannot read trace '%s': truncated header (payload of %u bytes)", p,
                 plen);
        goto fail;
    }
    r->cur = r->raw;
    r->end = r->raw ? r->raw + plen : NULL;
    r->chunk_no = 0;
    r->t = r->a = 0;
    return r;

fail:
    ms_trace_close(r);
    return NULL;
}

static struct ms_trace_reader *new_reader(const char *name, char *err, size_t errlen)
{
    struct ms_trace_reader *r = calloc(1, sizeof *r);
    if (r)
        r->path = strdup(name ? name : "?");
    if (!r || !r->path) {
        snprintf(err, errlen, "cannot read trace '%s': out of memory", name ? name : "?");
        free(r);
        return NULL;
    }
    r->fd = -1;
    r->size = UINT64_MAX;
    return r;
}

struct ms_trace_reader *ms_trace_open(const char *path, char *err, size_t errlen)
{
    struct ms_trace_reader *r = new_reader(path, err, errlen);
    if (!r)
        return NULL;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        snprintf(err, errlen, "cannot read trace '%s': %s", path, strerror(errno));
        ms_trace_close(r);
        return NULL;
    }
    struct stat st;
    if (fstat(r->fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "cannot read trace '%s': is a directory", path);
            ms_trace_close(r);
            return NULL;
        }
        if (S_ISREG(st.st_mode))
            r->size = (uint64_t)st.st_size;
    }
    return open_common(r, err, errlen);
}

struct ms_trace_reader *ms_trace_open_mem(const void *data, size_t len, const char *name,
                                          char *err, size_t errlen)
{
    struct ms_trace_reader *r = new_reader(name, err, errlen);
    if (!r)
        return NULL;
    r->mem = data;
    r->mem_len = data ? len : 0;
    r->size = r->mem_len;
    return open_common(r, err, errlen);
}

void ms_trace_close(struct ms_trace_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    free(r->comp);
    free(r->raw);
    free(r->argv);
    free(r->pcs);
    free(r->path);
    free(r);
}

enum ms_trace_status ms_trace_end(const struct ms_trace_reader *r)
{
    return r->status;
}

const char *ms_trace_message(const struct ms_trace_reader *r)
{
    return r->status == MS_TRACE_OK ? "" : r->msg;
}

uint32_t ms_trace_version(const struct ms_trace_reader *r)
{
    return r->version;
}

uint32_t ms_trace_chunks(const struct ms_trace_reader *r)
{
    return r->chunks_done;
}

uint64_t ms_trace_offset(const struct ms_trace_reader *r)
{
    return r->chunk_no ? r->chunk_off : 0;
}

const char *ms_trace_path(const struct ms_trace_reader *r)
{
    return r->path;
}

void ms_trace_chunk_info(const struct ms_trace_reader *r, uint64_t *offset, uint32_t *comp_len,
                         uint32_t *raw_len)
{
    *offset = r->chunk_no ? r->chunk_off : 0;
    *comp_len = r->chunk_no ? r->chunk_comp : 0;
    *raw_len = r->chunk_no ? r->chunk_raw : 0;
}

void ms_trace_set_ignore_check(struct ms_trace_reader *r, int ignore)
{
    r->ignore_check = ignore;
}
