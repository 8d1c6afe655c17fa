/*
 * memsleuth - pprof.c: `memsleuth report --format=pprof`: a gzip-compressed
 * profile.proto (github.com/google/pprof/proto/profile.proto), the encoding
 * written by hand, as a heap profile:
 *
 *   sample types  alloc_objects/count  alloc_space/bytes  (allocation calls and
 *                 bytes over the run), inuse_objects/count  inuse_space/bytes
 *                 (live at the end: at exit, or when the trace ends); the
 *                 default is inuse_space, as in Go's heap profiles; period 1
 *                 (every allocation recorded, nothing sampled)
 *   samples       one per site with a non-zero figure, location ids innermost
 *                 first, a numeric label "pid" (several traces make one profile)
 *   locations     one per distinct return address of a process: address pc - 1
 *                 (inside the call), the mapping holding it, and its lines,
 *                 inlined functions first and the real function last, as pprof
 *                 wants
 *   mappings      the MODULE records: lo..hi, file offset lo - bias, the path,
 *                 the build-id in hex; has_functions/filenames/line_numbers/
 *                 inline_frames set (the profile is already symbolized)
 *   functions     one per (name, file); the name is the demangled function,
 *                 else module+0xoffset, else 0xpc
 */
#include "export.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------------ */
/* a growing buffer and the protobuf wire format                       */
/* ------------------------------------------------------------------ */

struct buf {
    unsigned char *p;
    size_t n, cap;
    int nomem;
};

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->nomem)
        return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n)
            nc *= 2;
        unsigned char *np = realloc(b->p, nc);
        if (!np) {
            b->nomem = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void varint(struct buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (unsigned char)v;
    put(b, t, n);
}

static void key(struct buf *b, unsigned field, unsigned wire)
{
    varint(b, (uint64_t)field << 3 | wire);
}

/* field of wire type 0 (int64/uint64/bool); zero values are left out, as
   proto3 does */
static void f_int(struct buf *b, unsigned field, uint64_t v)
{
    if (!v)
        return;
    key(b, field, 0);
    varint(b, v);
}

/* field of wire type 2 with the bytes of a sub-buffer */
static void f_bytes(struct buf *b, unsigned field, const void *d, size_t n)
{
    key(b, field, 2);
    varint(b, n);
    put(b, d, n);
}

static void f_msg(struct buf *b, unsigned field, struct buf *sub)
{
    if (sub->nomem)
        b->nomem = 1;
    f_bytes(b, field, sub->p, sub->n);
    sub->n = 0;
}

/* ------------------------------------------------------------------ */
/* string table and functions                                          */
/* ------------------------------------------------------------------ */

struct strtab {
    char **s;
    size_t n, cap;
    uint32_t *h; /* open addressing: index + 1 */
    size_t hcap;
    int nomem;
};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int st_rehash(struct strtab *t)
{
    size_t nc = t->hcap ? t->hcap * 2 : 1024;
    uint32_t *nh = calloc(nc, sizeof *nh);
    if (!nh)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t h = (size_t)fnv(t->s[i], strlen(t->s[i])) & (nc - 1);
        while (nh[h])
            h = (h + 1) & (nc - 1);
        nh[h] = (uint32_t)i + 1;
    }
    free(t->h);
    t->h = nh;
    t->hcap = nc;
    return 0;
}

/* the index of s (added if new); 0 ("") when out of memory */
static uint64_t str_id(struct strtab *t, const char *s)
{
    if (!s || t->nomem)
        return 0;
    if ((t->n + 1) * 2 > t->hcap && st_rehash(t) < 0) {
        t->nomem = 1;
        return 0;
    }
    size_t h = (size_t)fnv(s, strlen(s)) & (t->hcap - 1);
    while (t->h[h]) {
        if (!strcmp(t->s[t->h[h] - 1], s))
            return t->h[h] - 1;
        h = (h + 1) & (t->hcap - 1);
    }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        char **ns = realloc(t->s, nc * sizeof *ns);
        if (!ns) {
            t->nomem = 1;
            return 0;
        }
        t->s = ns;
        t->cap = nc;
    }
    if (!(t->s[t->n] = strdup(s))) {
        t->nomem = 1;
        return 0;
    }
    t->h[h] = (uint32_t)t->n + 1;
    return t->n++;
}

/* functions keyed by (name id, file id) */
struct ftab {
    uint64_t *k; /* name << 32 | file, + 1; 0 = empty */
    uint32_t *id;
    size_t cap, n;
    int nomem;
};

static uint64_t fn_id(struct ftab *t, struct buf *out, uint64_t name, uint64_t file)
{
    if (t->nomem)
        return 0;
    if ((t->n + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        uint64_t *nk = calloc(nc, sizeof *nk);
        uint32_t *ni = calloc(nc, sizeof *ni);
        if (!nk || !ni) {
            free(nk);
            free(ni);
            t->nomem = 1;
            return 0;
        }
        for (size_t i = 0; i < t->cap; i++)
            if (t->k[i]) {
                size_t h = (size_t)fnv((const char *)&t->k[i], 8) & (nc - 1);
                while (nk[h])
                    h = (h + 1) & (nc - 1);
                nk[h] = t->k[i];
                ni[h] = t->id[i];
            }
        free(t->k);
        free(t->id);
        t->k = nk;
        t->id = ni;
        t->cap = nc;
    }
    uint64_t k = (name << 32 | file) + 1;
    size_t h = (size_t)fnv((const char *)&k, 8) & (t->cap - 1);
    while (t->k[h]) {
        if (t->k[h] == k)
            return t->id[h];
        h = (h + 1) & (t->cap - 1);
    }
    t->k[h] = k;
    t->id[h] = (uint32_t)++t->n;
    /* Function: 1 id, 2 name, 3 system_name, 4 filename */
    struct buf f = { 0 };
    f_int(&f, 1, t->n);
    f_int(&f, 2, name);
    f_int(&f, 3, name);
    f_int(&f, 4, file);
    f_msg(out, 5, &f);
    free(f.p);
    return t->n;
}

/* ------------------------------------------------------------------ */
/* the profile                                                         */
/* ------------------------------------------------------------------ */

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

/* a module to list: loaded (not an unload notice), with an address range */
static int usable_mod(const struct ms_model *m, size_t i)
{
    return !(m->mods[i].flags & 1) && m->mods[i].hi > m->mods[i].lo;
}

static int gzip_out(FILE *o, const unsigned char *d, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    unsigned char chunk[65536];
    z.next_in = (unsigned char *)d;
    int rc = 0;
    size_t left = n;
    int flush;
    do {
        uInt take = left > (1u << 30) ? (1u << 30) : (uInt)left;
        z.avail_in = take;
        left -= take;
        flush = left ? Z_NO_FLUSH : Z_FINISH;
        do {
            z.next_out = chunk;
            z.avail_out = sizeof chunk;
            int r = deflate(&z, flush);
            if (r == Z_STREAM_ERROR) {
                rc = -1;
                break;
            }
            fwrite(chunk, 1, sizeof chunk - z.avail_out, o);
        } while (z.avail_out == 0);
    } while (flush != Z_FINISH && rc == 0);
    deflateEnd(&z);
    return rc;
}

int ms_pprof_write(FILE *o, struct ms_model **ms, const char *const *traces, size_t n)
{
    struct buf prof = { 0 }, sub = { 0 }, sub2 = { 0 }, packed = { 0 };
    struct strtab st = { 0 };
    struct ftab ft = { 0 };
    uint64_t *locid = NULL;
    size_t loccap = 0;
    uint64_t next_loc = 1, next_map = 1;
    int rc = 0;
    str_id(&st, "");

    /* sample types (ValueType: 1 type, 2 unit) */
    static const char *const types[4][2] = { { "alloc_objects", "count" },
                                             { "alloc_space", "bytes" },
                                             { "inuse_objects", "count" },
                                             { "inuse_space", "bytes" } };
    for (int i = 0; i < 4; i++) {
        f_int(&sub, 1, str_id(&st, types[i][0]));
        f_int(&sub, 2, str_id(&st, types[i][1]));
        f_msg(&prof, 1, &sub);
    }
    uint64_t pid_key = str_id(&st, "pid");
    uint64_t t0 = 0, dur = 0;

    for (size_t pi = 0; pi < n && !rc; pi++) {
        const struct ms_model *m = ms[pi];
        if (!t0 || (m->start_unix_ns && m->start_unix_ns < t0))
            t0 = m->start_unix_ns;
        if (m->t_end > dur)
            dur = m->t_end;
        /* mappings (Mapping: 1 id, 2 memory_start, 3 memory_limit, 4 file_offset,
           5 filename, 6 build_id, 7 has_functions, 8 has_filenames,
           9 has_line_numbers, 10 has_inline_frames) */
        uint64_t map0 = next_map;
        next_map += m->nmods;
        for (size_t i = 0; i < m->nmods; i++) {
            const struct ms_module *md = &m->mods[i];
            if (!usable_mod(m, i))
                continue;
            char bid[2 * 64 + 1] = "";
            for (size_t k = 0; k < md->build_id_len && k < 64; k++)
                snprintf(bid + 2 * k, 3, "%02x", md->build_id[k]);
            f_int(&sub, 1, map0 + i);
            f_int(&sub, 2, md->lo);
            f_int(&sub, 3, md->hi);
            f_int(&sub, 4, md->lo >= md->bias ? md->lo - md->bias : 0);
            f_int(&sub, 5, str_id(&st, md->path));
            f_int(&sub, 6, str_id(&st, bid));
            for (unsigned f = 7; f <= 10; f++)
                f_int(&sub, f, 1);
            f_msg(&prof, 3, &sub);
        }
        struct ms_pcache c;
        if (ms_pcache_init(&c, m) < 0) {
            rc = -1;
            break;
        }
        if (locid)
            memset(locid, 0, loccap * sizeof *locid); /* cache entries restart at 0 */
        for (size_t si = 0; si < m->nsites && !rc; si++) {
            const struct ms_site *s = &m->sites[si];
            if (!s->allocs && !s->alloc_bytes && !s->live_blocks && !s->live_bytes)
                continue;
            /* Sample: 1 location_id (packed), 2 value (packed), 3 label */
            packed.n = 0;
            for (size_t k = 0; k < s->npcs; k++) {
                uint64_t pc = m->pcs[s->pcs_off + k];
                size_t e = ms_pcache_get(&c, pc);
                if (e == SIZE_MAX) {
                    rc = -1;
                    break;
                }
                if (e >= loccap) {
                    size_t nc = loccap ? loccap * 2 : 1024;
                    while (nc <= e)
                        nc *= 2;
                    uint64_t *nl = realloc(locid, nc * sizeof *nl);
                    if (!nl) {
                        rc = -1;
                        break;
                    }
                    memset(nl + loccap, 0, (nc - loccap) * sizeof *nl);
                    locid = nl;
                    loccap = nc;
                }
                if (!locid[e]) {
                    locid[e] = next_loc++;
                    /* Location: 1 id, 2 mapping_id, 3 address, 4 line (Line: 1 function_id,
                       2 line) */
                    f_int(&sub, 1, locid[e]);
                    for (size_t q = 0; q < m->nmods; q++)
                        if (pc - 1 >= m->mods[q].lo && pc - 1 < m->mods[q].hi &&
                            usable_mod(m, q)) {
                            f_int(&sub, 2, map0 + q);
                            break;
                        }
                    f_int(&sub, 3, pc ? pc - 1 : 0);
                    const struct ms_an_stack *fs = &c.st[e];
                    for (size_t q = 0; q < fs->n; q++) {
                        char name[1100];
                        ms_export_frame_name(&fs->f[q], name, sizeof name);
                        uint64_t fid = fn_id(&ft, &prof, str_id(&st, name),
                                             fs->f[q].file ? str_id(&st, fs->f[q].file) : 0);
                        f_int(&sub2, 1, fid);
                        f_int(&sub2, 2, fs->f[q].line > 0 ? (uint64_t)fs->f[q].line : 0);
                        f_msg(&sub, 4, &sub2);
                    }
                    f_msg(&prof, 4, &sub);
                }
                varint(&packed, locid[e]);
            }
            if (rc)
                break;
            f_bytes(&sub, 1, packed.p, packed.n);
            packed.n = 0;
            varint(&packed, s->allocs);
            varint(&packed, s->alloc_bytes);
            varint(&packed, s->live_blocks);
            varint(&packed, s->live_bytes);
            f_bytes(&sub, 2, packed.p, packed.n);
            /* Label: 1 key, 3 num */
            f_int(&sub2, 1, pid_key);
            f_int(&sub2, 3, m->pid);
            f_msg(&sub, 3, &sub2);
            f_msg(&prof, 2, &sub);
        }
        ms_pcache_free(&c);
    }
    /* comments, then the string table (field 6) */
    uint64_t comments[8];
    size_t ncom = 0;
    for (size_t i = 0; i < n && ncom < 8; i++) {
        char line[600];
        snprintf(line, sizeof line, "memsleuth trace %s: pid %llu %s", base_name(traces[i]),
                 (unsigned long long)ms[i]->pid, ms[i]->exe ? ms[i]->exe : "?");
        comments[ncom++] = str_id(&st, line);
    }
    uint64_t space = str_id(&st, "space"), bytes = str_id(&st, "bytes");
    uint64_t deflt = str_id(&st, "inuse_space");
    if (!rc && !st.nomem && !ft.nomem) {
        for (size_t i = 0; i < st.n; i++)
            f_bytes(&prof, 6, st.s[i], strlen(st.s[i]));
        /* 9 time_nanos, 10 duration_nanos, 11 period_type, 12 period, 13 comment,
           14 default_sample_type */
        f_int(&prof, 9, t0);
        f_int(&prof, 10, dur);
        f_int(&sub, 1, space);
        f_int(&sub, 2, bytes);
        f_msg(&prof, 11, &sub);
        f_int(&prof, 12, 1);
        for (size_t i = 0; i < ncom; i++)
            f_int(&prof, 13, comments[i]);
        f_int(&prof, 14, deflt);
    }
    if (rc || st.nomem || ft.nomem || prof.nomem || sub.nomem || sub2.nomem || packed.nomem)
        rc = -1;
    else
        rc = gzip_out(o, prof.p, prof.n);
    for (size_t i = 0; i < st.n; i++)
        free(st.s[i]);
    free(st.s);
    free(st.h);
    free(ft.k);
    free(ft.id);
    free(locid);
    free(prof.p);
    free(sub.p);
    free(sub2.p);
    free(packed.p);
    return rc;
}
