/*
 * memsleuth - trace_read.h: the reader of the memsleuth trace, version 1
 * (docs/trace-format.md is the normative description; this is its only parser).
 *
 * A trace is a header ("MSLTRACE", version, an uncompressed payload of
 * records) followed by zstd chunks of records.  The reader hands the records
 * out one at a time, decoded: times and addresses are absolute (the per-chunk
 * delta state is applied), strings and pc arrays point into the reader's
 * buffers.  It never prints anything; what went wrong is a one-line message
 * the caller prints.
 *
 * What the reader accepts and refuses:
 *  - open: a missing file, a directory, an empty file, a wrong magic, a
 *    version 0 or newer than MS_TRACE_VERSION ("trace version 2 is newer
 *    than this memsleuth reads (1)"), a header payload longer than the file
 *    or than MS_TRACE_MAX_PAYLOAD: ms_trace_open fails (nothing is read).
 *  - afterwards, the records are read up to the first problem:
 *      * the file ends inside a chunk header or inside a chunk's data: the
 *        end is MS_TRACE_CUT (the program was killed while writing: a normal
 *        way for a trace to end; the caller warns and reports what it read);
 *      * a chunk whose magic, lengths (raw_len > MS_TRACE_MAX_RAW, comp_len
 *        > ZSTD_compressBound(raw_len) or 0), FNV-1a check or zstd data is
 *        wrong, or a record that runs past its chunk, a field that runs past
 *        its record, a varint longer than 10 bytes: the end is
 *        MS_TRACE_CORRUPT (the caller reports what was read and fails).
 *    Unknown record types are skipped by their length; bytes after the known
 *    fields of a known record are skipped.
 *  - Memory: at most one header payload or one chunk (compressed and raw) at
 *    a time, each bounded by MS_TRACE_MAX_RAW (64 MiB) plus the zstd bound;
 *    buffers grow only as bytes actually arrive from the file, so a lying
 *    length in a short file costs nothing.
 *
 * Example:
 *     char err[512];
 *     struct ms_trace_reader *r = ms_trace_open(path, err, sizeof err);
 *     if (!r) { fprintf(stderr, "memsleuth: %s\n", err); return 3; }
 *     struct ms_trace_rec rec;
 *     while (ms_trace_next(r, &rec) > 0)
 *         if (rec.type == MS_REC_ALLOC) use(rec.t, rec.u.alloc.addr, ...);
 *     if (ms_trace_end(r) != MS_TRACE_OK) fprintf(stderr, "%s\n", ms_trace_message(r));
 *     ms_trace_close(r);
 *
 * Not thread-safe: one reader per thread.  Uses malloc and libzstd.
 */
#ifndef MS_TRACE_READ_H
#define MS_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS_TRACE_VERSION     1            /* the newest version this reader reads */
#define MS_TRACE_MAGIC       "MSLTRACE"   /* 8 bytes, no terminator in the file */
#define MS_TRACE_CHUNK_MAGIC 0x4b43534du  /* "MSCK" as a little-endian u32 */
#define MS_TRACE_MAX_RAW     (64u << 20)  /* largest raw_len accepted */
#define MS_TRACE_MAX_PAYLOAD (64u << 20)  /* largest header payload accepted */
#define MS_TRACE_MAX_PCS     65536        /* frames kept per STACK record (the
                                             innermost; the rest are skipped) */
#define MS_TRACE_MAX_ARGV    4096         /* argv strings kept per PROCESS record */

/* Record types (docs/trace-format.md, "Records"). */
enum ms_rec_type {
    MS_REC_PROCESS = 1,
    MS_REC_MODULE = 2,
    MS_REC_STACK = 3,
    MS_REC_THREAD = 4,
    MS_REC_ALLOC = 5,
    MS_REC_FREE = 6,
    MS_REC_SAMPLE = 7,
    MS_REC_LEAK = 8,
    MS_REC_END = 9,
    MS_REC_FORK = 10,
    MS_REC_EXEC = 11,
    MS_REC_INHERITED = 12,
    MS_REC_LOST = 13,
    MS_REC_SNAPSHOT = 14,
    MS_REC_SNAP_LEAK = 15,
    /* libmemsleuth_pool's events (src/analyze/pools.c reads them): one stream in
       program order, absolute times, no delta state */
    MS_REC_POOL_SITE = 20,
    MS_REC_POOL_NEW = 21,
    MS_REC_POOL_NAME = 22,
    MS_REC_POOL_DESTROY = 23,
    MS_REC_POOL_ALLOC = 24,
    MS_REC_POOL_FREE = 25,
    MS_REC_POOL_MOVE = 26,
    MS_REC_POOL_CLAIM = 27,
};

/* ALLOC fn bit: a block a forked child inherited from its parent */
#define MS_FN_INHERITED 64

/* LEAK kinds and END causes, as in the format. */
enum ms_leak_kind { MS_LEAK_DEFINITE = 0, MS_LEAK_INDIRECT = 1, MS_LEAK_POSSIBLE = 2, MS_LEAK_REACHABLE = 3 };
enum ms_end_how { MS_END_EXIT = 0, MS_END__EXIT = 1, MS_END_SIGNAL = 2 };

/* A string or byte string inside the reader's buffer (not terminated). */
struct ms_trace_str {
    const char *p;
    size_t len;
};

/* One decoded record.  Pointers (strings, argv, pcs) are valid until the
   next ms_trace_next or ms_trace_close. */
struct ms_trace_rec {
    uint64_t type;        /* enum ms_rec_type, or any other value (unknown: no fields) */
    uint64_t len;         /* payload length in bytes */
    uint32_t chunk;       /* 0: header payload; 1, 2, ...: chunk number */
    int has_time;         /* 1 if the record carries dt (t is then meaningful) */
    uint64_t t;           /* absolute time, ns since the process started (delta applied) */
    struct ms_trace_str raw; /* the payload as written (graph.c parses GRAPH records 16-19) */
    int inherited;        /* ALLOC whose fn has MS_FN_INHERITED: a block the forked
                             child inherited from its parent (u.alloc.fn has the bit
                             cleared) */
    union {
        struct {
            uint64_t pid, ppid, start_unix_ns, argc; /* argc as written */
            struct ms_trace_str exe, cwd;
            const struct ms_trace_str *argv;        /* min(argc, MS_TRACE_MAX_ARGV) kept */
            size_t argv_kept;
            uint64_t sample_rate; /* --sample-rate (appended field; 0: every allocation) */
        } process;
        struct {
            struct ms_trace_str path, build_id;
            uint64_t bias, lo, hi, flags;           /* flags & 1: unloaded at this time */
        } module;
        struct {
            uint64_t id, n;                         /* n as written */
            const uint64_t *pcs;                    /* min(n, MS_TRACE_MAX_PCS) kept */
            size_t kept;
        } stack;
        struct {
            uint64_t tid;
            struct ms_trace_str name;
        } thread;
        struct {
            uint64_t addr, size, stack, fn;
            uint64_t tid;                           /* the allocating thread (appended field;
                                                       0: absent or unknown) */
        } alloc;
        struct {
            uint64_t addr;
        } free;
        struct {
            uint64_t rss, heap_live_bytes, heap_live_blocks;
        } sample;
        struct {
            uint64_t kind, stack, bytes, blocks, indirect_bytes, suppressed;
            uint64_t shown; /* the text report printed this kind (appended field; 1 if absent) */
        } leak;
        struct {
            uint64_t how, status;
        } end;
        struct {
            uint64_t child_pid;
        } fork;
        struct {
            struct ms_trace_str path;
        } exec;
        struct {
            uint64_t count;
        } lost;
        struct {
            uint64_t count;                         /* inherited blocks that follow */
        } inherited;
        struct {
            uint64_t id, trigger, pause_ns;         /* trigger: 1 signal, 2 interval, 3 command, 4 peak */
        } snapshot;
        struct {
            uint64_t kind, stack, bytes, blocks;
        } snap_leak;
        struct {                                    /* MS_REC_POOL_* (types 20..27) */
            uint64_t id, line;                      /* POOL_SITE: id (1-based), line */
            struct ms_trace_str str;                /* POOL_SITE: file; POOL_NAME: name */
            uint64_t pool;                          /* NEW NAME DESTROY ALLOC FREE: the pool */
            uint64_t parent;                        /* NEW: parent pool, 0 for a root */
            uint64_t inherited;                     /* NEW: 1 if created before a fork, in the
                                                       parent (appended field; absent: 0) */
            uint64_t addr, size, old_addr;          /* ALLOC (old_addr != 0: a realloc of it),
                                                       FREE (addr) */
            uint64_t what;                          /* MOVE: 0 block, 1 pool; CLAIM: 0 adopt
                                                       block, 1 adopt pool, 2 release block,
                                                       3 release pool */
            uint64_t obj, to, from;                 /* MOVE: obj moved from -> to (0: root);
                                                       CLAIM: obj, holder in to */
            uint64_t site;                          /* POOL_SITE id of the call, 0 unknown */
        } pool;
    } u;
};

/* How reading ended (ms_trace_end). */
enum ms_trace_status {
    MS_TRACE_OK = 0,      /* still reading, or read to the end of the file */
    MS_TRACE_CUT = 1,     /* the file ends inside a chunk: the rest is missing */
    MS_TRACE_CORRUPT = 2, /* bad data; what came before it was read */
    MS_TRACE_NOMEM = 3,   /* out of memory */
    MS_TRACE_IOERR = 4,   /* a read error */
};

struct ms_trace_reader;

/* Open `path` and read its header.  Returns NULL with a one-line message in
   err (e.g. "cannot read trace 'x': trace version 2 is newer than this
   memsleuth reads (1)") when the file cannot be read as a trace. */
struct ms_trace_reader *ms_trace_open(const char *path, char *err, size_t errlen);

/* Open an in-memory trace (the bytes are used in place and must outlive
   the reader); `name` is used in messages. */
struct ms_trace_reader *ms_trace_open_mem(const void *data, size_t len, const char *name,
                                          char *err, size_t errlen);

/* Next record: 1 and *rec filled, or 0 at the end (see ms_trace_end). */
int ms_trace_next(struct ms_trace_reader *r, struct ms_trace_rec *rec);

/* After ms_trace_next returned 0: how it ended, and the one-line message
   for anything but MS_TRACE_OK (e.g. "trace cut off after 4 chunks: the
   program probably died; reading what is there"), or "" . */
enum ms_trace_status ms_trace_end(const struct ms_trace_reader *r);
const char *ms_trace_message(const struct ms_trace_reader *r);

/* Facts about the file. */
uint32_t ms_trace_version(const struct ms_trace_reader *r);
uint32_t ms_trace_chunks(const struct ms_trace_reader *r);     /* chunks fully read so far */
uint64_t ms_trace_offset(const struct ms_trace_reader *r);     /* file offset of the current chunk */
const char *ms_trace_path(const struct ms_trace_reader *r);

/* Chunk information for the dump: the header of the chunk the last record
   came from (0s for the header payload). */
void ms_trace_chunk_info(const struct ms_trace_reader *r, uint64_t *offset, uint32_t *comp_len,
                         uint32_t *raw_len);

/* For fuzzing only: skip the FNV-1a check of chunks (so mutated chunks get
   to the decoder). */
void ms_trace_set_ignore_check(struct ms_trace_reader *r, int ignore);

/* Release everything; NULL is accepted. */
void ms_trace_close(struct ms_trace_reader *r);

/* A tap for the pool records (types 20..27): while set (per thread), every
   pool record ms_trace_next decodes is handed to fn first; if fn returns
   non-zero the record is consumed (ms_trace_next goes on to the next one).
   `memsleuth report` sets it around ms_model_load (src/analyze/pools.c), so
   the model never sees pool records.  fn NULL removes it. */
typedef int (*ms_trace_tap_fn)(const struct ms_trace_rec *rec, void *arg);
void ms_trace_set_pool_tap(ms_trace_tap_fn fn, void *arg);

/* Names for the dump and the reports; "?" when out of range. */
const char *ms_trace_rec_name(uint64_t type);
const char *ms_trace_fn_name(uint64_t fn);        /* "malloc", "operator new", ... */
const char *ms_trace_leak_kind_name(uint64_t kind); /* "definite", ... */
const char *ms_trace_end_how_name(uint64_t how);  /* "exit", "_exit", "signal" */
const char *ms_trace_trigger_name(uint64_t trigger); /* "signal", "interval", "command", "peak" */

/* FNV-1a 32 of n bytes (the chunk check). */
uint32_t ms_trace_fnv1a(const void *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MS_TRACE_READ_H */
