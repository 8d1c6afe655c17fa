/* graph.c - the heap graph of a scan, into the trace (GRAPH records 16-19,
 * docs/trace-format.md).
 *
 * leakcheck.c records, while the world is stopped, the edges of every live
 * block and every root edge with its group (agent.h, struct ms_graph): plain
 * arrays in the region, nothing else.  Here, once the world runs again, the
 * edges of each block are sorted and deduplicated, the root edges grouped,
 * and everything is encoded (varints, index deltas) into records of at most
 * REC_MAX bytes, packed into chunks of about CHUNK_RAW bytes written one
 * after the other (ms_trace_raw_*).  No malloc: buffers come from the region.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REC_MAX (60 * 1024)        /* payload bytes per record at most */
#define CHUNK_RAW (1024 * 1024)    /* a chunk is written when it holds this much */
#define CHUNK_CAP (CHUNK_RAW + REC_MAX + 4096)

enum { T_GRAPH = 16, T_NODES = 17, T_EDGES = 18, T_ROOTS = 19 };

/* ---- before the stop: where the modules' static TLS sits ------------------- */
static int note_tls(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t tp = *(uintptr_t *)data;
    if (!info->dlpi_tls_data || ms_graph.ntls >= 64)
        return 0;
    uintptr_t tsz = 0, lo = UINTPTR_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS)
            tsz = ph->p_memsz;
        else if (ph->p_type == PT_LOAD && info->dlpi_addr + ph->p_vaddr < lo)
            lo = info->dlpi_addr + ph->p_vaddr;
    }
    intptr_t off = (intptr_t)((uintptr_t)info->dlpi_tls_data - tp);
    /* static TLS (x86-64: below the thread pointer, the same offset in every
     * thread); a dlopen'd module's dynamic TLS is a heap block */
    if (!tsz || off >= 0 || off < -(intptr_t)(16 << 20))
        return 0;
    struct ms_tls_mod *m = &ms_graph.tls[ms_graph.ntls++];
    m->off = off;
    m->size = tsz;
    m->mod = lo;
    return 0;
}

void ms_graph_prepare(int with_tls)
{
    ms_graph.want = 0;
    ms_graph.ntls = 0;
    if (!ms_trace_is_on() || !ms_opt.graph) /* --graph=no: verdicts only */
        return;
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    if (with_tls)
        dl_iterate_phdr(note_tls, &tp);
    ms_graph.want = 1;
}

/* ---- encoding ---------------------------------------------------------------- */
struct enc {
    uint8_t *buf;
    size_t len;
    uint8_t *rec;      /* start of the open record (its type byte), NULL if none */
};

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_svarint(uint8_t *p, int64_t v)
{
    return put_varint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void rec_close(struct enc *e)
{
    if (!e->rec)
        return;
    size_t n = e->len - (size_t)(e->rec + 4 - e->buf);
    uint8_t *lp = e->rec + 1; /* a three-byte varint length */
    lp[0] = (uint8_t)(n | 0x80);
    lp[1] = (uint8_t)((n >> 7) | 0x80);
    lp[2] = (uint8_t)(n >> 14);
    e->rec = NULL;
    if (e->len >= CHUNK_RAW) {
        ms_trace_raw_chunk(e->buf, (uint32_t)e->len);
        e->len = 0;
    }
}

static uint8_t *rec_open(struct enc *e, unsigned type)
{
    rec_close(e);
    e->rec = e->buf + e->len;
    e->rec[0] = (uint8_t)type;
    e->len += 4;
    return e->buf + e->len;
}

static size_t rec_used(const struct enc *e)
{
    return e->rec ? e->len - (size_t)(e->rec + 4 - e->buf) : 0;
}

/* in-place heap sorts (no malloc, no recursion) */
static void sift_u64(uint64_t *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[i] >= a[c])
            return;
        uint64_t t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void sort_u64(uint64_t *a, size_t n)
{
    if (n < 2)
        return;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint64_t x = a[i];
            size_t j = i;
            while (j && a[j - 1] > x) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    for (size_t i = n / 2; i-- > 0;)
        sift_u64(a, i, n);
    for (size_t k = n - 1; k > 0; k--) {
        uint64_t t = a[0];
        a[0] = a[k];
        a[k] = t;
        sift_u64(a, 0, k);
    }
}

static int re_less(const struct ms_root_edge *x, const struct ms_root_edge *y)
{
    return x->grp != y->grp ? x->grp < y->grp : x->addr < y->addr;
}

static void sift_re(struct ms_root_edge *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && re_less(&a[c], &a[c + 1]))
            c++;
        if (!re_less(&a[i], &a[c]))
            return;
        struct ms_root_edge t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void sort_re(struct ms_root_edge *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_re(a, i, n);
    for (size_t k = n; k-- > 1;) {
        struct ms_root_edge t = a[0];
        a[0] = a[k];
        a[k] = t;
        sift_re(a, 0, k);
    }
}

/* sort a block's edges and keep one per target (a start pointer wins: the
 * code of the start pointer sorts first; then the lowest offset); returns
 * the new count */
static uint32_t dedup(uint64_t *a, uint32_t n)
{
    sort_u64(a, n);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!k || (a[k - 1] >> 33) != (a[i] >> 33))
            a[k++] = a[i];
    return k;
}

static void thread_name(pid_t tid, char *out, size_t cap)
{
    char path[64];
    out[0] = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        n = 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == 0))
        n--;
    out[n] = 0;
}

static uint64_t serial;

void ms_graph_emit(const struct ms_leak_result *res, int snap_id)
{
    if (!ms_trace_is_on() || (!ms_graph.want && !ms_graph.failed))
        return;
    uint8_t *buf = ms_region_alloc(CHUNK_CAP);
    if (!buf)
        return;
    size_t NB = res->nblocks;
    uint8_t *offs = ms_region_alloc(REC_MAX); /* a record's edge offsets, appended at its end */
    int have_edges = offs && ms_graph.eoff && ms_graph.ecnt && ms_graph.cap_blk >= NB + 1;
    uint64_t nedges = 0;
    if (have_edges) {
        for (size_t i = 0; i < NB; i++) {
            if (ms_graph.eoff[i] == UINT64_MAX || !ms_graph.ecnt[i])
                continue;
            ms_graph.ecnt[i] = dedup(ms_graph.elog + ms_graph.eoff[i], ms_graph.ecnt[i]);
            nedges += ms_graph.ecnt[i];
        }
    }
    size_t nre = ms_graph.nre;
    sort_re(ms_graph.re, nre);
    uint64_t ngroups = 0;
    for (size_t i = 0; i < nre; i++)
        ngroups += !i || ms_graph.re[i].grp != ms_graph.re[i - 1].grp;

    struct enc e = { buf, 0, NULL };
    ms_trace_raw_begin();
    uint64_t ser = ++serial;
    uint8_t *p = rec_open(&e, T_GRAPH);
    p = put_varint(p, ms_trace_now());
    p = put_varint(p, ser);
    p = put_varint(p, (uint64_t)snap_id);
    p = put_varint(p, have_edges ? NB : 0);
    p = put_varint(p, nedges);
    p = put_varint(p, nre);
    p = put_varint(p, ngroups);
    p = put_varint(p, (uint64_t)(ms_graph.failed || !have_edges)); /* flags: 1 incomplete */
    e.len = (size_t)(p - e.buf);

    /* nodes and their edges; after a record's nodes (or edges), the offsets of
     * its edges' pointers inside their source block, in the same order (an
     * appended field: old readers skip it) */
    size_t offlen = 0;
#define PUT_OFFS()                                    \
    do {                                              \
        memcpy(p, offs, offlen);                      \
        p += offlen;                                  \
        offlen = 0;                                   \
        e.len = (size_t)(p - e.buf);                  \
    } while (0)
    for (size_t i = 0; have_edges && i < NB;) {
        p = rec_open(&e, T_NODES);
        p = put_varint(p, ser);
        p = put_varint(p, i);
        uint8_t *cntpos = p; /* count: a 5-byte varint filled in at the end */
        p += 5;
        e.len = (size_t)(p - e.buf);
        uint64_t prev_addr = 0, count = 0;
        while (i < NB && rec_used(&e) + offlen + 40 <= REC_MAX) {
            const struct ms_block *b = &res->blocks[i];
            uint32_t ne = ms_graph.eoff[i] == UINT64_MAX ? 0 : ms_graph.ecnt[i];
            const uint64_t *ed = ne ? ms_graph.elog + ms_graph.eoff[i] : NULL;
            size_t room = (REC_MAX - rec_used(&e) - offlen - 40) / 11;
            uint32_t here = ne < room ? ne : (uint32_t)room;
            p = put_varint(p, b->addr - prev_addr);
            p = put_varint(p, b->size);
            p = put_varint(p, b->stack);
            p = put_varint(p, here);
            int64_t prev = (int64_t)i;
            for (uint32_t k = 0; k < here; k++) {
                uint32_t code = (uint32_t)(ed[k] >> 32);
                int64_t d = (int64_t)(code >> 1);
                uint64_t z = ((uint64_t)(d - prev) << 1) ^ (uint64_t)((d - prev) >> 63);
                p = put_varint(p, z << 1 | (code & 1));
                offlen = (size_t)(put_varint(offs + offlen, (uint32_t)ed[k]) - offs);
                prev = d;
            }
            e.len = (size_t)(p - e.buf);
            prev_addr = b->addr;
            count++;
            /* the rest of a long edge list: GRAPH_EDGES records */
            for (uint32_t k = here; k < ne;) {
                if (cntpos) { /* close the NODES record: its count first */
                    uint8_t *cp = cntpos;
                    for (int j = 0; j < 4; j++)
                        *cp++ = (uint8_t)(((count >> (7 * j)) & 0x7f) | 0x80);
                    *cp = (uint8_t)(count >> 28);
                }
                PUT_OFFS();
                p = rec_open(&e, T_EDGES);
                p = put_varint(p, ser);
                p = put_varint(p, i);
                uint32_t m = ne - k < (REC_MAX - 32) / 11 ? ne - k : (REC_MAX - 32) / 11;
                p = put_varint(p, m);
                int64_t pv = (int64_t)i;
                for (uint32_t q = 0; q < m; q++, k++) {
                    uint32_t code = (uint32_t)(ed[k] >> 32);
                    int64_t d = (int64_t)(code >> 1);
                    uint64_t z = ((uint64_t)(d - pv) << 1) ^ (uint64_t)((d - pv) >> 63);
                    p = put_varint(p, z << 1 | (code & 1));
                    offlen = (size_t)(put_varint(offs + offlen, (uint32_t)ed[k]) - offs);
                    pv = d;
                }
                e.len = (size_t)(p - e.buf);
                PUT_OFFS();
                cntpos = NULL;
            }
            i++;
            if (!cntpos)
                break; /* the NODES record was closed by the EDGES records */
        }
        if (cntpos) {
            for (int j = 0; j < 4; j++)
                *cntpos++ = (uint8_t)(((count >> (7 * j)) & 0x7f) | 0x80);
            *cntpos = (uint8_t)(count >> 28);
            PUT_OFFS();
        }
    }
#undef PUT_OFFS
    if (offs)
        ms_region_release(offs, REC_MAX);

    /* root edges, one record (or more) per group */
    char name[64] = "";
    pid_t name_tid = -1;
    for (size_t i = 0; i < nre;) {
        uint32_t gi = ms_graph.re[i].grp;
        const struct ms_root_group *g = &ms_graph.grp[gi];
        if (g->tid && g->tid != name_tid) {
            thread_name(g->tid, name, sizeof name);
            name_tid = g->tid;
        }
        p = rec_open(&e, T_ROOTS);
        p = put_varint(p, ser);
        p = put_varint(p, (uint64_t)g->kind);
        p = put_varint(p, (uint64_t)g->tid);
        size_t nl = g->tid ? strlen(name) : 0;
        p = put_varint(p, nl);
        memcpy(p, name, nl);
        p += nl;
        p = put_varint(p, g->lo);
        p = put_varint(p, g->hi);
        p = put_varint(p, g->pc);
        p = put_varint(p, g->mod);
        size_t n = 0;
        while (i + n < nre && ms_graph.re[i + n].grp == gi && n < (REC_MAX - 200) / 26)
            n++;
        p = put_varint(p, n);
        uint64_t pa = g->kind == MS_RG_REGS ? 0 : g->lo, ppc = 0;
        for (size_t k = 0; k < n; k++) {
            const struct ms_root_edge *r = &ms_graph.re[i + k];
            p = put_svarint(p, (int64_t)(r->addr - pa));
            p = put_varint(p, r->code);
            if (g->kind == MS_RG_STACK)
                p = put_svarint(p, (int64_t)(r->pc - ppc));
            pa = r->addr;
            ppc = r->pc;
        }
        e.len = (size_t)(p - e.buf);
        i += n;
    }
    rec_close(&e);
    if (e.len)
        ms_trace_raw_chunk(e.buf, (uint32_t)e.len);
    ms_trace_raw_end();
    ms_region_release(buf, CHUNK_CAP);
}

/* give the tables' pages back (a big heap's tables are hundreds of MB) */
void ms_graph_release(void)
{
    ms_graph.want = 0;
    ms_graph.elen = ms_graph.nre = ms_graph.ngrp = 0;
    if (ms_graph.eoff)
        ms_region_release(ms_graph.eoff, ms_graph.cap_blk * sizeof *ms_graph.eoff);
    if (ms_graph.ecnt)
        ms_region_release(ms_graph.ecnt, ms_graph.cap_blk * sizeof *ms_graph.ecnt);
    if (ms_graph.elog)
        ms_region_release(ms_graph.elog, ms_graph.ecap * sizeof *ms_graph.elog);
    if (ms_graph.re)
        ms_region_release(ms_graph.re, ms_graph.cap_re * sizeof *ms_graph.re);
    if (ms_graph.grp)
        ms_region_release(ms_graph.grp, ms_graph.cap_grp * sizeof *ms_graph.grp);
    ms_graph.eoff = NULL;
    ms_graph.ecnt = NULL;
    ms_graph.elog = NULL;
    ms_graph.re = NULL;
    ms_graph.grp = NULL;
    ms_graph.cap_blk = ms_graph.ecap = ms_graph.cap_re = ms_graph.cap_grp = 0;
}
