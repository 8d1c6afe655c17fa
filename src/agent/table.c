/* table.c - the live-block table, interned stacks, recently freed blocks.
 *
 * Live blocks: 64 shards chosen by the address (shard_index), each an
 * open-addressing table with linear probing and backward-shift deletion
 * (no tombstones), under its own lock (lock.h).  The shard also keeps the
 * allocation counters and a small direct-mapped memory of freed blocks
 * (for "already freed" reports: every removal writes it), so one lock
 * covers one operation.
 *
 * Stacks: an append-only pool of return addresses plus an index of ids,
 * both reserved at their maximum size (untouched pages cost nothing).
 * Lookups probe the index without a lock; a miss takes the lock, probes
 * again and appends.  A stack id is 1-based; 0 means "unknown".
 */
#include "agent.h"
#include "lock.h"
#include "unwind.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define NSHARD 64
#define FREED_SLOTS 1024

struct freed {
    uintptr_t addr;
    uint64_t size;
    uint32_t alloc_stack, free_stack;
};

struct shard {
    ms_lock_t lock;
    struct ms_block *slots;  /* cap entries, addr 0 = empty */
    size_t cap, count;
    uint64_t allocs, frees, bytes;
    uint64_t live_bytes, live_blocks;
    struct freed *freed;     /* FREED_SLOTS entries */
} __attribute__((aligned(64)));

static struct shard shards[NSHARD];

/* trace_write.c: events appended under the shard lock */
void ms_trace_alloc(int shard, uintptr_t addr, uint64_t size, uint32_t stack, int fn, pid_t tid, uint64_t tsc) MS_HIDDEN;
void ms_trace_free(int shard, uintptr_t addr, uint64_t tsc) MS_HIDDEN;
extern int ms_trace_on MS_HIDDEN;

/* an event's time-stamp counter reading, taken before the shard lock: the
 * counter's latency (tens of cycles) then overlaps the lock and the table
 * work; 0 (the event reads the clock itself) when not tracing */
static inline uint64_t ms_trace_stamp(void)
{
    return __atomic_load_n(&ms_trace_on, __ATOMIC_RELAXED) ? __builtin_ia32_rdtsc() | 1 : 0;
}
void ms_trace_stack(uint32_t id, const uintptr_t *pcs, int n) MS_HIDDEN;

void ms_table_lock_shard(int i) MS_HIDDEN;
void ms_table_unlock_shard(int i) MS_HIDDEN;
void ms_table_lock_shard(int i)
{
    ms_lock(&shards[i].lock);
}
void ms_table_unlock_shard(int i)
{
    ms_unlock(&shards[i].lock);
}

void ms_table_live(uint64_t *bytes, uint64_t *blocks) MS_HIDDEN;
void ms_table_live(uint64_t *bytes, uint64_t *blocks)
{
    *bytes = *blocks = 0;
    for (int i = 0; i < NSHARD; i++) {
        *bytes += shards[i].live_bytes;
        *blocks += shards[i].live_blocks;
    }
}

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

int ms_table_init(void)
{
    for (int i = 0; i < NSHARD; i++) {
        struct shard *s = &shards[i];
        ms_lock_init(&s->lock);
        s->cap = 64; /* grows by doubling; small heaps stay in the cache */
        s->slots = ms_region_alloc(s->cap * sizeof(struct ms_block));
        s->freed = ms_region_alloc(FREED_SLOTS * sizeof(struct freed));
        if (!s->slots || !s->freed)
            return -1;
    }
    return 0;
}

void ms_table_lock_all(void)
{
    for (int i = 0; i < NSHARD; i++)
        ms_lock(&shards[i].lock);
}

void ms_table_unlock_all(void)
{
    for (int i = 0; i < NSHARD; i++)
        ms_unlock(&shards[i].lock);
}

void ms_table_reinit_locks(void)
{
    for (int i = 0; i < NSHARD; i++)
        ms_lock_init(&shards[i].lock);
}

static void grow(struct shard *s)
{
    size_t ncap = s->cap * 2;
    struct ms_block *n = ms_region_alloc(ncap * sizeof *n);
    if (!n)
        return; /* stay at a higher load factor; still correct */
    for (size_t i = 0; i < s->cap; i++) {
        struct ms_block *b = &s->slots[i];
        if (!b->addr)
            continue;
        size_t j = (mix(b->addr) >> 6) & (ncap - 1);
        while (n[j].addr)
            j = (j + 1) & (ncap - 1);
        n[j] = *b;
    }
    ms_region_release(s->slots, s->cap * sizeof *n);
    s->slots = n;
    s->cap = ncap;
}

/* The shard of an address: 8 groups of 8.  The group comes from the
 * address's 64 MiB region: glibc gives each thread an arena of its own (64
 * MiB-aligned heaps), so threads that allocate and free their own blocks
 * mostly work in shards (locks, counters, slots and trace buffers) no other
 * thread writes, and no cache line goes back and forth between cores on
 * every call.  Within the group, the address's hash spreads the blocks. */
static inline int shard_index(uintptr_t addr, uint64_t h)
{
    unsigned g = (unsigned)(((uint64_t)(addr >> 26) * 0x9e3779b97f4a7c15ull) >> 61);
    return (int)(g << 3 | (h & 7));
}

static inline struct shard *shard_of(uintptr_t addr, uint64_t *h)
{
    *h = mix(addr);
    return &shards[shard_index(addr, *h)];
}

void ms_table_insert(uintptr_t addr, uint64_t size, uint32_t stack, int kind, int fn)
{
    pid_t tid = ms_trace_thread(); /* before the shard lock: its first call writes a record */
    uint64_t tsc = ms_trace_stamp();
    uint64_t h;
    struct shard *s = shard_of(addr, &h);
    ms_lock(&s->lock);
    if ((s->count + 1) * 10 > s->cap * 7)
        grow(s);
    size_t mask = s->cap - 1, j = (h >> 6) & mask;
    while (s->slots[j].addr && s->slots[j].addr != addr)
        j = (j + 1) & mask;
    if (!s->slots[j].addr) {
        s->count++;
    } else { /* the same address again: the old block was freed behind our back */
        s->live_bytes -= s->slots[j].size;
        s->live_blocks--;
    }
    struct ms_block *b = &s->slots[j];
    b->addr = addr;
    b->size = size;
    b->stack = stack;
    b->kind = (uint8_t)kind;
    b->fn = (uint8_t)fn;
    b->state = 0;
    b->heur = 0;
    s->allocs++;
    s->bytes += size;
    s->live_bytes += size;
    s->live_blocks++;
    /* a remembered free of this address stays: it is only looked at when
     * the address is not live, and every removal remembers anew */
    ms_trace_alloc(shard_index(addr, h), addr, size, stack, fn, tid, tsc);
    ms_unlock(&s->lock);
}

/* backward-shift deletion keeps probe chains intact without tombstones */
static void delete_at(struct shard *s, size_t j)
{
    size_t mask = s->cap - 1;
    size_t i = j;
    for (;;) {
        s->slots[i].addr = 0;
        size_t k = i;
        for (;;) {
            k = (k + 1) & mask;
            if (!s->slots[k].addr)
                goto done;
            size_t home = (mix(s->slots[k].addr) >> 6) & mask;
            /* can slot k move back to i?  yes unless home lies in (i, k] */
            if (i <= k ? (home <= i || home > k) : (home <= i && home > k))
                break;
        }
        s->slots[i] = s->slots[k];
        i = k;
    }
done:
    s->count--;
}

static long find(struct shard *s, uintptr_t addr, uint64_t h)
{
    size_t mask = s->cap - 1, j = (h >> 6) & mask;
    while (s->slots[j].addr) {
        if (s->slots[j].addr == addr)
            return (long)j;
        j = (j + 1) & mask;
    }
    return -1;
}

/* remove, and remember the block as freed (its free stack unknown yet) in
 * the same critical section */
int ms_table_release(uintptr_t addr, struct ms_block *out)
{
    uint64_t tsc = ms_trace_stamp();
    uint64_t h;
    struct shard *s = shard_of(addr, &h);
    ms_lock(&s->lock);
    long j = find(s, addr, h);
    if (j < 0) {
        ms_unlock(&s->lock);
        return 0;
    }
    if (out)
        *out = s->slots[j];
    struct freed *f = &s->freed[(h >> 20) & (FREED_SLOTS - 1)];
    f->addr = addr;
    f->size = s->slots[j].size;
    f->alloc_stack = s->slots[j].stack;
    f->free_stack = 0;
    s->frees++;
    s->live_bytes -= s->slots[j].size;
    s->live_blocks--;
    delete_at(s, (size_t)j);
    ms_trace_free(shard_index(addr, h), addr, tsc);
    ms_unlock(&s->lock);
    return 1;
}


int ms_table_lookup(uintptr_t addr, struct ms_block *out)
{
    uint64_t h;
    struct shard *s = shard_of(addr, &h);
    ms_lock(&s->lock);
    long j = find(s, addr, h);
    if (j >= 0 && out)
        *out = s->slots[j];
    ms_unlock(&s->lock);
    return j >= 0;
}

void ms_table_set_kind(uintptr_t addr, int kind, int fn)
{
    uint64_t h;
    struct shard *s = shard_of(addr, &h);
    ms_lock(&s->lock);
    long j = find(s, addr, h);
    if (j >= 0) {
        s->slots[j].kind = (uint8_t)kind;
        s->slots[j].fn = (uint8_t)fn;
    }
    ms_unlock(&s->lock);
}

size_t ms_table_count(void)
{
    size_t n = 0;
    for (int i = 0; i < NSHARD; i++)
        n += shards[i].count;
    return n;
}

/* Called with the world stopped: no lock is taken (a stopped thread is
 * never inside a critical section, see ms_leave_busy). */
size_t ms_table_snapshot(struct ms_block *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < NSHARD; i++) {
        struct shard *s = &shards[i];
        if (!s->count) /* its slots may be pages never touched: a fault each */
            continue;
        for (size_t j = 0; j < s->cap && n < cap; j++)
            if (s->slots[j].addr)
                out[n++] = s->slots[j];
    }
    return n;
}

void ms_table_totals(uint64_t *allocs, uint64_t *frees, uint64_t *bytes)
{
    *allocs = *frees = *bytes = 0;
    for (int i = 0; i < NSHARD; i++) {
        *allocs += shards[i].allocs;
        *frees += shards[i].frees;
        *bytes += shards[i].bytes;
    }
}

void ms_freed_remember(uintptr_t addr, uint64_t size, uint32_t alloc_stack, uint32_t free_stack)
{
    uint64_t h;
    struct shard *s = shard_of(addr, &h);
    ms_lock(&s->lock);
    struct freed *f = &s->freed[(h >> 20) & (FREED_SLOTS - 1)];
    f->addr = addr;
    f->size = size;
    f->alloc_stack = alloc_stack;
    f->free_stack = free_stack;
    ms_unlock(&s->lock);
}

int ms_freed_lookup(uintptr_t addr, uint64_t *size, uint32_t *alloc_stack, uint32_t *free_stack)
{
    uint64_t h;
    struct shard *s = shard_of(addr, &h);
    ms_lock(&s->lock);
    struct freed *f = &s->freed[(h >> 20) & (FREED_SLOTS - 1)];
    int hit = f->addr == addr;
    if (hit) {
        *size = f->size;
        *alloc_stack = f->alloc_stack;
        *free_stack = f->free_stack;
    }
    ms_unlock(&s->lock);
    return hit;
}


/* ---- interned stacks ------------------------------------------------- */
struct stack_rec {
    uint64_t hash;
    uint64_t off;   /* index into pool */
    uint32_t n;
    uint32_t pad;
};
static struct stack_rec *recs;      /* recs[id], id >= 1 */
static uintptr_t *pool;
static _Atomic uint32_t *idx;       /* open addressing, 0 = empty */
static size_t max_recs, pool_cap, idx_cap;
static _Atomic uint32_t nrecs;
static uint64_t pool_used;
static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;

static int stacks_init(void)
{
    uintptr_t lo, hi;
    ms_region_bounds(&lo, &hi);
    int big = hi - lo >= (1UL << 33);
    max_recs = big ? (8UL << 20) : (256UL << 10);
    idx_cap = max_recs * 2;
    pool_cap = max_recs * 24;
    recs = ms_region_alloc(max_recs * sizeof *recs);
    pool = ms_region_alloc(pool_cap * sizeof *pool);
    idx = ms_region_alloc(idx_cap * sizeof *idx);
    return recs && pool && idx ? 0 : -1;
}


static inline int same_pcs(const uintptr_t *a, const uintptr_t *b, int n)
{
    uintptr_t d = 0;
    for (int i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static uint32_t probe(uint64_t h, const uintptr_t *pcs, int n, size_t *slot)
{
    size_t mask = idx_cap - 1, j = h & mask;
    for (;;) {
        uint32_t id = atomic_load_explicit(&idx[j], memory_order_acquire);
        if (!id) {
            *slot = j;
            return 0;
        }
        struct stack_rec *r = &recs[id];
        if (r->hash == h && r->n == (uint32_t)n && same_pcs(&pool[r->off], pcs, n))
            return id;
        j = (j + 1) & mask;
    }
}

/* Per-thread memory of recent stacks: hash -> id, direct-mapped.  A hit
 * reads this small table and the stack's own record instead of the shared
 * index, whose slots lie far apart (one cache and TLB miss each).  Ids are
 * never reused, so an entry is checked against the record it names. */
#define ICACHE_BITS 10
struct icache_ent {
    uint64_t hash;
    uint32_t id, pad;
};
static __thread struct icache_ent icache[1 << ICACHE_BITS] __attribute__((tls_model("initial-exec")));

uint32_t ms_stack_intern(const uintptr_t *pcs, int n)
{
    if (!recs && stacks_init() < 0)
        return 0;
    uint64_t h = ms_hash_pcs(pcs, n);
    /* two ways: the entry hit last stays first */
    struct icache_ent *ce = &icache[(h >> (64 - ICACHE_BITS)) & ~(uint64_t)1];
    for (int w = 0; w < 2; w++) {
        if (ce[w].hash != h)
            continue;
        uint32_t cid = ce[w].id;
        struct stack_rec *r = &recs[cid];
        if (r->n == (uint32_t)n && same_pcs(&pool[r->off], pcs, n)) {
            if (w) {
                struct icache_ent t = ce[0];
                ce[0] = ce[1];
                ce[1] = t;
            }
            return cid;
        }
    }
    ce[1] = ce[0]; /* the new entry goes first, the older one second */
    size_t slot;
    uint32_t id = probe(h, pcs, n, &slot);
    if (id) {
        ce->hash = h;
        ce->id = id;
        return id;
    }
    pthread_mutex_lock(&stack_lock);
    id = probe(h, pcs, n, &slot);
    if (!id) {
        uint32_t next = atomic_load(&nrecs) + 1;
        if (next >= max_recs || pool_used + (uint64_t)n > pool_cap) {
            pthread_mutex_unlock(&stack_lock);
            return 0; /* full: the block gets an unknown stack */
        }
        recs[next].hash = h;
        recs[next].n = (uint32_t)n;
        recs[next].off = pool_used;
        memcpy(&pool[pool_used], pcs, n * sizeof *pcs);
        pool_used += (uint64_t)n;
        atomic_store(&nrecs, next);
        atomic_store_explicit(&idx[slot], next, memory_order_release);
        id = next;
        ms_trace_stack(id, pcs, n);
    }
    pthread_mutex_unlock(&stack_lock);
    if (id) {
        ce->hash = h;
        ce->id = id;
    }
    return id;
}

int ms_stack_get(uint32_t id, const uintptr_t **pcs)
{
    if (!id || id > atomic_load(&nrecs)) {
        *pcs = NULL;
        return 0;
    }
    *pcs = &pool[recs[id].off];
    return (int)recs[id].n;
}

void ms_stacks_lock(void) MS_HIDDEN;
void ms_stacks_unlock(void) MS_HIDDEN;
void ms_stacks_lock(void)
{
    pthread_mutex_lock(&stack_lock);
}
void ms_stacks_unlock(void)
{
    pthread_mutex_unlock(&stack_lock);
}

/* a forked child's trace starts with every stack and every live block */
void ms_trace_dump_stacks(void) MS_HIDDEN;
void ms_trace_dump_stacks(void)
{
    uint32_t n = atomic_load(&nrecs);
    for (uint32_t id = 1; id <= n; id++)
        ms_trace_stack(id, &pool[recs[id].off], (int)recs[id].n);
}

void ms_trace_dump_live(void) MS_HIDDEN;
void ms_trace_dump_live(void)
{
    for (int i = 0; i < NSHARD; i++) {
        struct shard *s = &shards[i];
        for (size_t j = 0; j < s->cap; j++)
            if (s->slots[j].addr)
                ms_trace_alloc(i, s->slots[j].addr, s->slots[j].size, s->slots[j].stack, s->slots[j].fn | 64, 0, 0);
    }
}
