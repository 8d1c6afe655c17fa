/* pool_internal.h - libmemsleuth_pool's internals, shared by pool.c (memory,
 * blocks), pool_tree.c (pools, destructors, ownership, limits) and
 * pool_introspect.c (walks, printing, registry, checks).
 *
 * Layout.  A chunk is 8 KiB, 8 KiB aligned: [struct chunk (56)][blocks...];
 * chunks are carved from 256 KiB slabs (pool.c).  A pool's first chunk
 * holds the struct ms_pool right after the chunk header.  A small block is
 * [struct blk (8 bytes)][user bytes][debug: 8-byte tail canary], its
 * footprint rounded up to 16 so that every header is at 8 mod 16 and every
 * user pointer 16-aligned.  The header: the allocation site as a 24-bit id
 * (pool.c's site table, behind each pool's site cache), flags, the size (11
 * bits) and a 21-bit magic word.  The chunk of a small block is its address
 * rounded down.  A large block is one malloc: [struct lhdr (56)][struct blk
 * (8)][user][debug tail].  Blocks that need more (destructors, adopters, or
 * stolen into a pool other than their chunk's) get a separately allocated
 * struct ext, found through their chunk's ext map (small) or their lhdr.
 *
 * Owner of a block: ext ? ext->owner : large ? lhdr->owner : chunk->owner.
 *
 * The allocation fast path (pool.c, ms_pool_alloc_at) reads the pool's gate
 * word (magic and the PS_* bits as one word, compared with ms_g_gate, which
 * differs in debug mode or while events are wanted), the site cache, cur
 * and end; it writes the header, cur and one counter word (fastc).
 */
#ifndef MS_POOL_INTERNAL_H
#define MS_POOL_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memsleuth/pool.h"
#include "../common/pool_agent.h"

#define MS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MS_HIDDEN      __attribute__((visibility("hidden")))

/* ---- magic words */
#define POOL_LIVE 0x4d53504cu /* "MSPL" */
#define POOL_DEAD 0x44454144u /* "DEAD" */
/* a block's magic: the high 21 bits of blk.sm (the low 11 hold its size) */
#define BLK_MAGIC_MASK 0xfffff800u
#define BLK_SIZE_MASK  0x000007ffu
#define BLK_LIVE       0xb10c1800u
#define BLK_FREED      0xf7eeb000u

/* ---- block header: 8 bytes, right before the user bytes (which are
 * 16-byte aligned, so the header is at 8 mod 16).  The allocation site is
 * an interned id (see the site table below); the chunk is found by
 * alignment; the rare extension (destructors, adopters, foreign owner) by
 * the chunk's ext map (small) or the large block's prefix. */
struct ext;
struct blk {
    uint32_t sf; /* site id (low 24 bits) | flags << 24; freed: the freeing site */
    uint32_t sm; /* size (small: requested size; large: 0) | magic (high 21 bits) */
};
#define HDR         ((size_t)sizeof(struct blk))
#define BF_DEBUG    0x01u /* has the tail canary */
#define BF_FOREIGN  0x02u /* owned by a pool other than its chunk's */
#define BF_FREESITE 0x04u /* the site is where it was freed */
#define BF_FILLED   0x08u /* freed in debug mode: user bytes hold MS_POOL_FILL_FREED */
#define BF_LARGE    0x10u /* its own malloc, behind a struct lhdr */
#define BF_EXT      0x20u /* has a struct ext */
#define SITE_MASK   0xffffffu
#define TAIL        8u /* debug tail canary bytes */

static inline unsigned blk_flags(const struct blk *h)
{
    return h->sf >> 24;
}
static inline uint32_t blk_site(const struct blk *h)
{
    return h->sf & SITE_MASK;
}
static inline uint32_t blk_magic(const struct blk *h)
{
    return h->sm & BLK_MAGIC_MASK;
}
static inline void blk_set_flag(struct blk *h, unsigned f)
{
    h->sf |= (uint32_t)f << 24;
}
static inline void blk_clear_flag(struct blk *h, unsigned f)
{
    h->sf &= ~((uint32_t)f << 24);
}
/* footprint of a small block of n bytes (n <= SMALL_USER): header and user
 * bytes (and debug tail) rounded up to 16, so the next header stays at 8 mod 16 */
static inline size_t fp_small(size_t n, unsigned dbg)
{
    return (HDR + n + (dbg ? TAIL : 0) + 15) & ~(size_t)15;
}

#define SMALL_USER MS_POOL_SMALL_MAX
#define NCLASS     ((HDR + SMALL_USER + TAIL + 15) / 16 + 1)

/* ---- the site table (pool.c): (file, line) pairs interned to 24-bit ids;
 * id 0 is (NULL, 0).  Ids never change and entries never move, so reading
 * one needs no lock. */
struct msite {
    const char *file;
    int line;
};
#define SITE_BLK_BITS 12
#define SITE_NBLK     (1u << (24 - SITE_BLK_BITS))
extern struct msite *_Atomic ms_g_site_blk[SITE_NBLK] MS_HIDDEN;
MS_HIDDEN uint32_t ms_site_intern(const char *file, int line);
static inline const struct msite *site_get(uint32_t id)
{
    static const struct msite none = {NULL, 0};
    struct msite *b = atomic_load_explicit(&ms_g_site_blk[id >> SITE_BLK_BITS], memory_order_acquire);
    return b ? &b[id & ((1u << SITE_BLK_BITS) - 1)] : &none;
}
static inline const char *blk_file(const struct blk *h)
{
    return site_get(blk_site(h))->file;
}
static inline int blk_line(const struct blk *h)
{
    return site_get(blk_site(h))->line;
}

/* ---- chunks: 8 KiB each, 8 KiB aligned (a block's chunk is its address
 * rounded down); 56-byte header, so blocks start at 8 mod 16 */
#define CHUNK_SIZE 8192u
#define CHUNK_EMAP (CHUNK_SIZE / 16) /* ext map slots: one per 16 bytes */
struct chunk {
    struct chunk *next;   /* the pool's chunks, newest first */
    struct ms_pool *owner;/* NULL once orphaned (pool gone, foreign blocks live) */
    char *end;            /* end of the chunk */
    char *used;           /* end of the carved part (retired chunks) */
    char *start;          /* first block */
    struct ext **emap;    /* NULL, or the exts of its blocks by offset / 16 */
    _Atomic uint32_t refs; /* 1 for the owner + one per foreign block */
    uint32_t pad;
};
#define CHUNK_HDR ((size_t)sizeof(struct chunk))
_Static_assert(CHUNK_HDR % 16 == 8, "blocks must start at 8 mod 16");
static inline struct chunk *blk_chunk(const struct blk *h)
{
    return (struct chunk *)((uintptr_t)h & ~(uintptr_t)(CHUNK_SIZE - 1));
}
static inline size_t blk_slot(const struct blk *h)
{
    return ((uintptr_t)h & (CHUNK_SIZE - 1)) >> 4;
}

/* ---- large blocks: 56-byte prefix (so the user bytes are 16-aligned) */
struct lhdr {
    struct lhdr *prev, *next; /* the owner's large list */
    struct ms_pool *owner;
    size_t size;
    size_t alloc; /* bytes malloc'd */
    struct ext *ext;
    size_t pad;
};
#define LHDR ((size_t)sizeof(struct lhdr))
_Static_assert((LHDR + HDR) % 16 == 0, "large blocks' user bytes must be 16-aligned");
static inline int blk_large(const struct blk *h)
{
    return (blk_flags(h) & BF_LARGE) != 0;
}
static inline struct lhdr *blk_lhdr(const struct blk *h)
{
    return (struct lhdr *)((char *)h - LHDR);
}
static inline size_t blk_size(const struct blk *h)
{
    return blk_large(h) ? blk_lhdr(h)->size : (h->sm & BLK_SIZE_MASK);
}
static inline struct ext *blk_ext(const struct blk *h)
{
    if (MS_LIKELY(!(blk_flags(h) & BF_EXT)))
        return NULL;
    if (blk_large(h))
        return blk_lhdr(h)->ext;
    return blk_chunk(h)->emap[blk_slot(h)];
}

/* ---- block extension */
struct ms_pool_dtor;
struct ref;
struct ext {
    struct ext *prev, *next;     /* the owner's ext list */
    struct ms_pool *owner;
    struct blk *hdr;
    struct ms_pool_dtor *dtors;  /* newest first */
    struct ref *adopters;        /* oldest first */
    int freeing;                 /* its destructors are running */
};

/* ---- destructors */
struct ms_pool_dtor {
    struct ms_pool_dtor *prev, *next;
    ms_pool_destructor_fn fn;
    void *arg;
    struct ms_pool *pool; /* a pool's destructor, or */
    struct ext *ext;      /* a block's */
    const char *file;
    int line;
    int running;   /* 1 while fn runs, 2 if removed meanwhile */
    int linked;
};

/* ---- shared-ownership claims */
struct ref {
    struct ref *oprev, *onext; /* in the object's adopters list */
    struct ref *hprev, *hnext; /* in the holder's held list */
    struct ms_pool *holder;
    struct ms_pool *pool; /* the object: a pool, or */
    struct ext *ext;      /* a block */
    const char *file;
    int line;
};

/* ---- the pool */
#define PF_FREEING  0x1u /* being destroyed */
#define PF_REFUSED  0x2u /* during a destroy: something below refused */
#define PF_BUSY     0x4u /* during a destroy: an outer destroy is below */
#define PF_ROOT     0x8u /* registered root */
#define PF_QUAR     0x10u /* in the quarantine */
#define PF_STOLEN   0x20u /* a block of its chunks was stolen out once */
#define PF_EMAP     0x40u /* one of its chunks got an ext map */

/* the allocation fast path's gate: magic and `slow` read as one word */
#define PS_LIM  0x1u /* lim != NULL: every allocation is checked against a limit */
#define PS_FL   0x2u /* has free lists: allocations look there first */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define POOL_GATE ((uint64_t)POOL_LIVE << 32) /* live, slow == 0 */
#define BLK_WORD(sf, sm) ((uint64_t)(sf) << 32 | (sm))
#else
#define POOL_GATE ((uint64_t)POOL_LIVE) /* live, slow == 0 */
#define BLK_WORD(sf, sm) ((uint64_t)(sm) << 32 | (sf)) /* a struct blk as one store */
#endif

/* a pool's cache of interned sites (NSITEC entries, direct-mapped) */
#define NSITEC 8
struct site_cache {
    const char *file;
    uint32_t line;
    uint32_t id;
};
#define NCHUNKS_IN 8 /* chunk pointers kept in the pool (destroy reads no chunk header) */

struct ms_pool {
    /* the first three cache lines: what allocation and destroy touch */
    union {
        struct {
            uint32_t magic;
            uint32_t slow; /* PS_* */
        };
        uint64_t gate;
    };
    char *cur, *end;        /* bump pointer in the current chunk */
    uint64_t fastc;         /* the fast path's count since the last fold:
                               blocks << FASTC_SHIFT | bytes (see pool_fold) */
    size_t bytes, nblocks;  /* own live blocks (plus fastc's: pool_bytes) */
    uint32_t flags;
    struct chunk *chunk;    /* current chunk = head of the chunk list; the
                               last one (the first made) holds the pool */
    struct blk **fl;        /* free lists by footprint/16 (lazy) */
    struct ms_pool *lim;    /* nearest limited ancestor-or-self */
    size_t nchunks;
    /* tree */
    struct ms_pool *parent, *first_child, *prev, *next;
    struct ms_pool *pending; /* children still to destroy */
    struct ext *exts;
    struct lhdr *large;
    struct ms_pool_dtor *dtors;
    struct ref *adopters, *held;
    const char *free_file;
    int free_line, line;
    struct chunk *chunks[NCHUNKS_IN]; /* the first NCHUNKS_IN chunks, oldest first */
    size_t limit, used;     /* own limit, subtree use (limited pools) */
    ms_pool_limit_fn lhandler;
    void *larg;
    const char *name, *file;
    struct ms_pool *rprev, *rnext; /* registry / quarantine */
    size_t s_bytes, s_blocks, s_pools; /* walk scratch */
    struct site_cache sc[NSITEC]; /* allocation only */
};
#define POOL_SZ ((sizeof(struct ms_pool) + 15) & ~(size_t)15)

/* ---- process-wide state (pool.c) */
extern _Atomic int ms_g_slow MS_HIDDEN;   /* debug || hook || agent */
extern _Atomic uint64_t ms_g_gate MS_HIDDEN; /* POOL_GATE, or (slow mode) a value no pool has */
extern _Atomic int ms_g_emit MS_HIDDEN;   /* hook || agent: events wanted */
extern _Atomic(ms_pool_agent_event_fn) ms_g_agent MS_HIDDEN; /* memsleuth's agent (pool_agent.h) */
extern _Atomic int ms_g_debug MS_HIDDEN;
extern _Atomic(ms_pool_event_fn) ms_g_hook MS_HIDDEN;
extern void *_Atomic ms_g_hook_arg MS_HIDDEN;
extern _Atomic(ms_pool_limit_fn) ms_g_lhandler MS_HIDDEN;
extern void *_Atomic ms_g_larg MS_HIDDEN;
extern pthread_mutex_t ms_g_reg_lock MS_HIDDEN;
extern struct ms_pool *ms_g_roots MS_HIDDEN;      /* newest first */
extern struct ms_pool *ms_g_roots_tail MS_HIDDEN; /* oldest */
extern size_t ms_g_nroots MS_HIDDEN;

/* ---- pool.c */
MS_HIDDEN void ms_init_once(void);
MS_HIDDEN void *ms_raw_alloc(size_t n);
MS_HIDDEN void *ms_raw_calloc(size_t n);
MS_HIDDEN void *ms_raw_realloc(void *p, size_t old, size_t n);
MS_HIDDEN void ms_raw_free(void *p, size_t n);
MS_HIDDEN struct chunk *ms_chunk_get(void);
MS_HIDDEN uint32_t ms_site_miss(struct ms_pool *p, const char *file, int line);
MS_HIDDEN void ms_blk_set_ext(struct blk *h, struct ext *e);
MS_HIDDEN int ms_emap_reserve(struct blk *h);
MS_HIDDEN void ms_chunk_unref(struct chunk *c);
MS_HIDDEN void ms_report(int kind, const char *what, const void *ptr, size_t size, const char *file, int line,
                         const char *first_file, int first_line);
MS_HIDDEN int ms_bad_pool(const struct ms_pool *p, const char *file, int line);
MS_HIDDEN struct ms_pool *ms_blk_owner(const struct blk *h);
MS_HIDDEN struct blk *ms_live_blk(const void *ptr, const char *file, int line, int report);
MS_HIDDEN void ms_emit(int kind, struct ms_pool *pool, struct ms_pool *other, struct ms_pool *old_owner,
                       const void *ptr, const void *old_ptr, size_t size, const char *file, int line);
MS_HIDDEN void ms_emit_realloc(struct ms_pool *pool, const void *ptr, const void *old_ptr, size_t size,
                               size_t old_size, const char *file, int line);
MS_HIDDEN void ms_emit_name(struct ms_pool *pool, const char *name);
MS_HIDDEN void ms_blk_release(struct blk *h, struct ms_pool *owner, const char *file, int line);
MS_HIDDEN void ms_pool_release_memory(struct ms_pool *p, const char *file, int line);
MS_HIDDEN void ms_quarantine_evict(size_t limit);
MS_HIDDEN size_t ms_blk_footprint(const struct blk *h);
MS_HIDDEN size_t ms_pool_mem(const struct ms_pool *p);
MS_HIDDEN int ms_check_canary(const struct blk *h);
MS_HIDDEN struct ext *ms_ext_get(struct blk *h, struct ms_pool *owner);
MS_HIDDEN void ms_ext_maybe_drop(struct blk *h);
MS_HIDDEN void ms_ext_unlink(struct ext *e);
MS_HIDDEN void ms_ext_link(struct ext *e, struct ms_pool *p);
MS_HIDDEN void ms_large_unlink(struct lhdr *l);
MS_HIDDEN void ms_large_link(struct lhdr *l, struct ms_pool *p);

/* ---- pool_tree.c */
MS_HIDDEN int ms_limit_ok(struct ms_pool *p, size_t add, const char *file, int line);
MS_HIDDEN void ms_limit_add(struct ms_pool *p, size_t n);
MS_HIDDEN void ms_limit_sub(struct ms_pool *p, size_t n);
MS_HIDDEN int ms_run_dtors(struct ms_pool_dtor **head, void *obj);
MS_HIDDEN void ms_ref_free(struct ref *r);

/* ---- pool_introspect.c */
MS_HIDDEN size_t ms_subtree_bytes(struct ms_pool *p);
MS_HIDDEN void ms_fill_info(struct ms_pool *p, struct ms_pool_node_info *out);

static inline int pool_ok(const struct ms_pool *p)
{
    return MS_LIKELY(p != NULL) && MS_LIKELY(p->magic == POOL_LIVE);
}
static inline int slow_mode(void)
{
    return atomic_load_explicit(&ms_g_slow, memory_order_relaxed);
}
static inline int debug_mode(void)
{
    return atomic_load_explicit(&ms_g_debug, memory_order_relaxed);
}
static inline struct ms_pool *lim_next(const struct ms_pool *l)
{
    return l->parent ? l->parent->lim : NULL;
}
/* The allocation fast path counts into one word, fastc (one add instead of
 * two).  It is folded into bytes and nblocks whenever the current chunk
 * changes and when a free moves the bump pointer back, so it never holds
 * more than one chunk's blocks: no field overflows into the other. */
#define FASTC_SHIFT 40
#define FASTC_ONE   ((uint64_t)1 << FASTC_SHIFT)
static inline void pool_fold(struct ms_pool *p)
{
    p->bytes += p->fastc & (FASTC_ONE - 1);
    p->nblocks += p->fastc >> FASTC_SHIFT;
    p->fastc = 0;
}
static inline size_t pool_bytes(const struct ms_pool *p)
{
    return p->bytes + (size_t)(p->fastc & (FASTC_ONE - 1));
}
static inline size_t pool_blocks(const struct ms_pool *p)
{
    return p->nblocks + (size_t)(p->fastc >> FASTC_SHIFT);
}
/* Set p's nearest limited ancestor (and its gate bit). */
static inline void set_lim(struct ms_pool *p, struct ms_pool *l)
{
    p->lim = l;
    if (l)
        p->slow |= PS_LIM;
    else
        p->slow &= ~PS_LIM;
}
/* p's site cache entry for file:line (which may hold another site) */
static inline struct site_cache *site_slot_of(struct ms_pool *p, const char *file, int line)
{
    (void)file; /* by line alone: one instruction less on the fast path */
    return &p->sc[(unsigned)line & (NSITEC - 1)];
}
static inline int site_hit(const struct site_cache *e, const char *file, int line)
{
    return e->file == file && e->line == (uint32_t)line;
}
/* The site id of file:line, through p's cache. */
static inline uint32_t site_id(struct ms_pool *p, const char *file, int line)
{
    struct site_cache *e = site_slot_of(p, file, line);
    if (MS_LIKELY(site_hit(e, file, line)))
        return e->id;
    return ms_site_miss(p, file, line);
}

#endif
