/* leakcheck.c - valgrind memcheck's leak verdicts.
 *
 * With the other threads stopped:
 *  1. copy the live blocks and sort them by address;
 *  2. scan the roots: every readable and writable mapping of the process
 *     except the malloc heap itself ([heap] and glibc's arena heaps), the
 *     agent's region, data and own threads' stacks (its writer's, the
 *     stop-the-world tracer's), dead thread stacks, and the dead part of
 *     live stacks (below each thread's stack pointer), and the pages of
 *     private anonymous mappings never written (scan_touched); plus every
 *     thread's registers.  Live blocks that sit inside a scanned mapping (glibc's
 *     mmap'd chunks) are skipped there: they are scanned when reached;
 *  3. mark as valgrind does (mc_leakcheck.c): a pointer to a block's start
 *     from a root or from a reachable block makes it reachable; any other
 *     pointer into it (or a start pointer from a possibly-reached block)
 *     makes it possibly lost, unless one of valgrind's heuristics
 *     (stdstring, length64, newarray) explains the interior pointer;
 *  4. every block still unreached leads a clique: the unreached blocks it
 *     reaches are indirectly lost and their bytes are counted under it; the
 *     leaders are definitely lost.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { ST_UNREACHED = 0, ST_POSSIBLE = 1, ST_REACHABLE = 2, ST_INDIRECT = 3, ST_DROP = 4 /* freed at exit */ };

volatile int ms_scan_guard;
sigjmp_buf ms_scan_jmp MS_HIDDEN;
extern uintptr_t ms_self_data_lo MS_HIDDEN, ms_self_data_hi MS_HIDDEN;
extern int (*ms_real_sigaction)(int, const struct sigaction *, struct sigaction *) MS_HIDDEN;

static struct ms_block *B;
static size_t NB;
static uintptr_t min_addr, max_end;
static uint32_t *mstack;
static size_t msp;
static uint64_t *ind_bytes, *ind_blocks;
static size_t cap_B, cap_stack, cap_ind, cap_maps;
static struct map *maps_mem;

/* ---- the heap graph (agent.h, graph.c) ------------------------------------ *
 * While ms_graph.want: cur_src is the block being scanned (-1: a root range of
 * group cur_grp); each pointer found is logged.  A block's edges are logged
 * the first time it is scanned only (a possibly-reached block is scanned again
 * when it becomes reachable; its memory has not changed). */
struct ms_graph ms_graph;
static long cur_src = -1;
static uint32_t cur_grp;
static int rec_on;               /* log the words of the current scan */
static uintptr_t *xr;            /* executable mappings [lo, hi) pairs, sorted */
static size_t nxr, cap_xr;

static void graph_fail(void)
{
    ms_graph.failed = 1;
    rec_on = 0;
}

/* grow a region array (the world is stopped: no malloc) */
static int grow(void **p, size_t *cap, size_t elem, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4096;
    while (nc < need)
        nc *= 2;
    void *np = ms_region_alloc(nc * elem);
    if (!np)
        return -1;
    if (*p) {
        memcpy(np, *p, *cap * elem);
        ms_region_release(*p, *cap * elem);
    }
    *p = np;
    *cap = nc;
    return 0;
}

static int is_code(uintptr_t v)
{
    size_t lo = 0, hi = nxr;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (xr[2 * m] <= v)
            lo = m + 1;
        else
            hi = m;
    }
    return lo && v < xr[2 * (lo - 1) + 1];
}

/* the return address nearest below a stack slot: the call made by the frame
 * that holds the slot (bounded; 0 when none, the thread's pc is then the
 * better guess) */
static uintptr_t frame_pc(uintptr_t a, uintptr_t sp)
{
    for (int k = 0; k < 2048 && a >= sp + 8; k++) {
        a -= 8;
        uintptr_t w = *(const volatile uintptr_t *)a;
        if (is_code(w))
            return w;
    }
    return 0;
}

static int new_group(int kind, pid_t tid, uintptr_t lo, uintptr_t hi, uintptr_t pc, uintptr_t mod)
{
    if (!ms_graph.want)
        return 0;
    if (ms_graph.ngrp >= 65535 ||
        grow((void **)&ms_graph.grp, &ms_graph.cap_grp, sizeof *ms_graph.grp, ms_graph.ngrp + 1)) {
        graph_fail();
        ms_graph.want = 0;
        return 0;
    }
    struct ms_root_group *g = &ms_graph.grp[ms_graph.ngrp];
    g->kind = kind;
    g->tid = tid;
    g->lo = lo;
    g->hi = hi;
    g->pc = pc;
    g->mod = mod;
    return (int)ms_graph.ngrp++;
}

static void root_edge(uintptr_t addr, uint32_t code, uint32_t grp, uintptr_t pc)
{
    if (grow((void **)&ms_graph.re, &ms_graph.cap_re, sizeof *ms_graph.re, ms_graph.nre + 1)) {
        graph_fail();
        ms_graph.want = 0;
        return;
    }
    struct ms_root_edge *e = &ms_graph.re[ms_graph.nre++];
    e->addr = addr;
    e->pc = pc;
    e->code = code;
    e->grp = grp;
}

static void record(long i, uintptr_t v, uintptr_t a);

/* ---- sorting: LSD radix on 48-bit addresses ---------------------------- */
static void sort_blocks(struct ms_block *a, size_t n)
{
    if (n < 2)
        return;
    struct ms_block *tmp = ms_region_alloc(n * sizeof *tmp);
    if (!tmp) { /* fall back to insertion sort: slow but correct */
        for (size_t i = 1; i < n; i++) {
            struct ms_block x = a[i];
            size_t j = i;
            while (j && a[j - 1].addr > x.addr) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    static size_t count[65536];
    struct ms_block *src = a, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[(src[i].addr >> shift) & 0xffff]++;
        if (count[(src[0].addr >> shift) & 0xffff] == n)
            continue; /* all equal in this digit */
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].addr >> shift) & 0xffff]++] = src[i];
        struct ms_block *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
    ms_region_release(tmp, n * sizeof *tmp);
}

/* index of the block containing v, or -1 */
static long find_block(uintptr_t v)
{
    if (v < min_addr || v >= max_end)
        return -1;
    size_t lo = 0, hi = NB;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (B[mid].addr <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return -1;
    struct ms_block *b = &B[lo - 1];
    if (v == b->addr || v - b->addr < b->size)
        return (long)(lo - 1);
    return -1;
}

/* glibc's arena keeps pointers to free chunks; a free chunk's header may
 * sit in the last bytes of the live block before it (the prev_size field is
 * usable by that block).  Such a value is allocator metadata, not a pointer
 * into the block. */
static int is_next_chunk_header(const struct ms_block *b, uintptr_t v)
{
    if (!ms_glibc_malloc || v == b->addr)
        return 0;
    uint64_t csz = *(const uint64_t *)(b->addr - 8) & ~(uint64_t)7;
    return v == b->addr - 16 + csz;
}

static int heuristic(const struct ms_block *b, uintptr_t v)
{
    const uint64_t *w = (const uint64_t *)b->addr;
    if (b->size >= 24 && v == b->addr + 24) { /* stdstring: length capacity refcount chars */
        uint64_t cap = w[1];
        if (24 + cap + 1 == b->size && w[0] <= cap)
            return 1;
    }
    if (b->size >= 8 && v == b->addr + 8) {
        uint64_t x = w[0];
        if (x > 0 && b->size - 8 == x) /* length64 */
            return 2;
        if (x > 0 && (b->size - 8) % x == 0) /* newarray */
            return 3;
    }
    return 0;
}

static void push(uint32_t i)
{
    mstack[msp++] = i;
}

static void reach_at(long i, uintptr_t v, int prior_definite)
{
    struct ms_block *b = &B[i];
    if (b->state == ST_REACHABLE)
        return;
    int start = v == b->addr;
    if (!start && is_next_chunk_header(b, v))
        return;
    int via_reach = start;
    if (!start) {
        int h = heuristic(b, v);
        if (h) {
            via_reach = 1;
            b->heur = (uint8_t)h;
        }
    }
    if (via_reach && prior_definite) {
        b->state = ST_REACHABLE;
        push((uint32_t)i);
    } else if (b->state == ST_UNREACHED) {
        b->state = ST_POSSIBLE;
        push((uint32_t)i);
    }
}

static void reach(uintptr_t v, int prior_definite)
{
    long i = find_block(v);
    if (i >= 0)
        reach_at(i, v, prior_definite);
}

static void scan_words(uintptr_t lo, uintptr_t hi, int prior_definite)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
        uintptr_t v = *(const volatile uintptr_t *)a;
        if (v >= min_addr && v < max_end) {
            long i = find_block(v);
            if (i < 0)
                continue;
            if (MS_UNLIKELY(rec_on))
                record(i, v, a);
            reach_at(i, v, prior_definite);
        }
    }
}

static void record(long i, uintptr_t v, uintptr_t a)
{
    if (i < 0)
        return;
    int interior = v != B[i].addr;
    if (interior && is_next_chunk_header(&B[i], v))
        return;
    uint32_t code = (uint32_t)i << 1 | (uint32_t)interior;
    if (cur_src < 0) {
        const struct ms_root_group *g = &ms_graph.grp[cur_grp];
        root_edge(a, code, cur_grp, g->kind == MS_RG_STACK ? frame_pc(a, g->lo) : 0);
        return;
    }
    if (i == cur_src)
        return;
    if (MS_UNLIKELY(ms_graph.elen >= ms_graph.ecap) &&
        grow((void **)&ms_graph.elog, &ms_graph.ecap, sizeof *ms_graph.elog, ms_graph.elen + 1)) {
        graph_fail();
        return;
    }
    uintptr_t off = a - B[cur_src].addr;
    ms_graph.elog[ms_graph.elen++] = (uint64_t)code << 32 | (off < UINT32_MAX ? off : UINT32_MAX);
}

/* a block is about to be scanned: log its edges if it was never scanned */
static void graph_block_begin(uint32_t i)
{
    if (!ms_graph.want || ms_graph.eoff[i] != UINT64_MAX) {
        rec_on = 0;
        return;
    }
    cur_src = i;
    ms_graph.eoff[i] = ms_graph.elen;
    rec_on = !ms_graph.failed;
}

static void graph_block_end(uint32_t i)
{
    if (rec_on)
        ms_graph.ecnt[i] = (uint32_t)(ms_graph.elen - ms_graph.eoff[i]);
    else if (ms_graph.want && cur_src == (long)i && ms_graph.eoff[i] != UINT64_MAX)
        ms_graph.ecnt[i] = (uint32_t)(ms_graph.elen - ms_graph.eoff[i]); /* failed meanwhile: partial */
    rec_on = 0;
    cur_src = -1;
}

static void drain(void)
{
    long s_src = cur_src;
    int s_on = rec_on;
    while (msp) {
        uint32_t i = mstack[--msp];
        graph_block_begin(i);
        scan_words(B[i].addr, B[i].addr + B[i].size, B[i].state == ST_REACHABLE);
        graph_block_end(i);
    }
    cur_src = s_src;
    rec_on = s_on && !ms_graph.failed;
}

/* scan [lo, hi) as a root, skipping live blocks inside it and surviving a
 * fault (a mapping that shrank, a file mapping past its end) */
static void fault_handler(int sig)
{
    (void)sig;
    if (ms_scan_guard)
        siglongjmp(ms_scan_jmp, 1);
}

static __attribute__((noinline)) void guarded_scan(uintptr_t lo, uintptr_t hi)
{
    ms_scan_guard = 1;
    if (sigsetjmp(ms_scan_jmp, 1) == 0)
        scan_words(lo, hi, 1);
    ms_scan_guard = 0;
}

/* the index of the first block at or after a (NB: none) */
static size_t first_block_at(uintptr_t a)
{
    size_t k = 0, h = NB;
    while (k < h) {
        size_t m = (k + h) / 2;
        if (B[m].addr < a)
            k = m + 1;
        else
            h = m;
    }
    return k;
}

static void scan_root_range(uintptr_t lo, uintptr_t hi)
{
    size_t k = first_block_at(lo);
    /* a block that starts before lo may still cover it */
    if (k > 0 && B[k - 1].addr + B[k - 1].size > lo)
        lo = B[k - 1].addr + B[k - 1].size;
    uintptr_t cur = lo;
    while (cur < hi) {
        uintptr_t end = hi;
        if (k < NB && B[k].addr < hi)
            end = B[k].addr;
        if (end > cur) {
            guarded_scan(cur, end);
            drain();
        }
        if (k < NB && B[k].addr < hi) {
            uintptr_t bend = B[k].addr + (B[k].size ? B[k].size : 1);
            cur = bend > cur ? bend : cur;
            k++;
        } else {
            break;
        }
    }
}

/* ---- root ranges with their graph group ---------------------------------- */
struct tls_area { uintptr_t lo, hi, mod; pid_t tid; };
static struct tls_area *tls_areas;
static size_t ntls_areas, cap_tls_areas;

/* --sample-rate: the blocks that were not recorded hold pointers too (a
 * recorded node of a list whose other nodes were not), so the malloc heap
 * is a root, except the recorded blocks themselves (they are scanned when
 * reached).  Freed chunks in it may hold stale pointers: a sampled run can
 * call a lost block reachable, never the other way round. */
static void scan_root_ctx(uintptr_t lo, uintptr_t hi, int grp);
struct range;
static void scan_touched(uintptr_t lo, uintptr_t hi, int grp, const struct range *own, size_t n, int anon_private);
static void scan_heap_gaps(uintptr_t lo, uintptr_t hi)
{
    int grp = new_group(MS_RG_MEM, 0, lo, hi, 0, 0);
    size_t a = 0, b = NB; /* the first block at or above lo */
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (B[mid].addr < lo)
            a = mid + 1;
        else
            b = mid;
    }
    uintptr_t cur = lo;
    for (size_t k = a; k < NB && B[k].addr < hi; k++) {
        if (B[k].addr > cur)
            scan_touched(cur, B[k].addr, grp, NULL, 0, 1); /* the heap's top was never touched */
        uintptr_t end = B[k].addr + (B[k].size ? B[k].size : 1);
        if (end > cur)
            cur = end;
    }
    if (cur < hi)
        scan_touched(cur, hi, grp, NULL, 0, 1);
}

/* scan [lo, hi) as a root of group grp; the TLS areas inside it are scanned
 * as groups of their own */
static void scan_root_ctx(uintptr_t lo, uintptr_t hi, int grp)
{
    if (!ms_graph.want) {
        scan_root_range(lo, hi);
        return;
    }
    uintptr_t cur = lo;
    while (cur < hi) {
        /* the first TLS area that ends after cur and starts before hi */
        const struct tls_area *t = NULL;
        for (size_t k = 0; k < ntls_areas; k++) {
            const struct tls_area *c = &tls_areas[k];
            if (c->hi > cur && c->lo < hi && (!t || c->lo < t->lo))
                t = c;
        }
        uintptr_t end = t ? (t->lo > cur ? t->lo : cur) : hi;
        if (end > cur) {
            cur_grp = (uint32_t)grp;
            cur_src = -1;
            rec_on = ms_graph.want && !ms_graph.failed;
            scan_root_range(cur, end);
            rec_on = 0;
        }
        if (!t)
            break;
        uintptr_t te = t->hi < hi ? t->hi : hi;
        int g = new_group(MS_RG_TLS, t->tid, end, te, 0, t->mod);
        cur_grp = (uint32_t)g;
        cur_src = -1;
        rec_on = ms_graph.want && !ms_graph.failed;
        scan_root_range(end, te);
        rec_on = 0;
        cur = te;
    }
}

/* The size of the thread descriptor at the thread pointer (glibc's struct
 * pthread, TLS_TCB_SIZE).  glibc exports no such figure and the struct's size
 * changes between versions, so it is measured: a thread whose stack glibc
 * allocated has its descriptor at the top of that stack block, at (end -
 * TLS_TCB_SIZE) rounded down to the static TLS alignment (allocate_stack in
 * nptl/allocatestack.c), so end - tp is the descriptor's size (plus at most
 * the alignment's padding, which belongs to no one).  The end comes from
 * pthread_getattr_np; the agent's writer thread measures itself at its start.
 * 2304, the size with glibc 2.36 on x86-64, stays when it cannot be measured
 * or the figure is implausible. */
static size_t tcb_size = 2304;

size_t ms_tcb_size(void)
{
    return tcb_size;
}

void ms_tcb_measure(void)
{
    pthread_attr_t at;
    if (pthread_getattr_np(pthread_self(), &at) != 0)
        return;
    void *lo = NULL;
    size_t sz = 0;
    int ok = pthread_attr_getstack(&at, &lo, &sz) == 0;
    pthread_attr_destroy(&at);
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer(), end = (uintptr_t)lo + sz;
    if (ok && end > tp && end - tp >= 512 && end - tp <= 65536)
        tcb_size = end - tp;
}

static void add_tls_areas(pid_t tid, uintptr_t tp)
{
    if (!tp)
        return;
    /* the thread descriptor at the thread pointer (glibc's struct pthread,
     * ms_tcb_size bytes): its pointers (the DTV...) are no frame's; mod 0
     * names it */
    if (grow((void **)&tls_areas, &cap_tls_areas, sizeof *tls_areas, ntls_areas + 1))
        return;
    tls_areas[ntls_areas++] = (struct tls_area){ tp, tp + tcb_size, 0, tid };
    for (int m = 0; m < ms_graph.ntls; m++) {
        if (grow((void **)&tls_areas, &cap_tls_areas, sizeof *tls_areas, ntls_areas + 1))
            return;
        struct tls_area *a = &tls_areas[ntls_areas++];
        a->lo = tp + (uintptr_t)ms_graph.tls[m].off;
        a->hi = a->lo + ms_graph.tls[m].size;
        a->mod = ms_graph.tls[m].mod;
        a->tid = tid;
    }
}

static void reg_edges(pid_t tid, const uintptr_t *regs, int nregs, uintptr_t pc)
{
    if (!ms_graph.want)
        return;
    int g = -1;
    for (int i = 0; i < nregs && ms_graph.want; i++) {
        if (regs[i] < min_addr || regs[i] >= max_end)
            continue;
        long k = find_block(regs[i]);
        if (k < 0 || (regs[i] != B[k].addr && is_next_chunk_header(&B[k], regs[i])))
            continue;
        if (g < 0)
            g = new_group(MS_RG_REGS, tid, 0, 0, pc, 0);
        if (ms_graph.want)
            root_edge((uintptr_t)i, (uint32_t)k << 1 | (regs[i] != B[k].addr), (uint32_t)g, 0);
    }
}

static int holds_block(uintptr_t lo, uintptr_t hi)
{
    size_t k = first_block_at(lo);
    return k < NB && B[k].addr < hi;
}

/* ---- /proc/thread-self/maps ---------------------------------------------
 * thread-self, not self, throughout the agent: /proc/self is the main
 * thread's, and a main thread that ended with pthread_exit is a zombie
 * whose maps are empty and whose exe, cmdline and fd are gone, while the
 * report is made from the last thread */
struct map {
    uintptr_t lo, hi;
    char r, w, s, x;
    int anon;            /* no path */
    int special;         /* [heap], [vvar], [vsyscall], [vdso], /dev/... */
    int heap;
};

static char *read_file(const char *path, size_t *len)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = ms_region_alloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = ms_region_alloc(cap * 2);
            if (nb)
                memcpy(nb, buf, n);
            ms_region_release(buf, cap);
            buf = nb;
            cap *= 2;
            if (!buf)
                break;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    *len = n;
    return buf;
}

static uintptr_t hex(const char **p)
{
    uintptr_t v = 0;
    for (;;) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v * 16 + (uintptr_t)d;
        (*p)++;
    }
}

static size_t parse_maps(struct map **out)
{
    size_t len;
    char *txt = read_file("/proc/thread-self/maps", &len);
    if (!txt)
        return 0;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += txt[i] == '\n';
    struct map *m = ms_region_alloc((lines + 1) * sizeof *m);
    cap_maps = lines + 1;
    maps_mem = m;
    size_t n = 0;
    const char *p = txt, *end = txt + len;
    while (m && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        struct map mp;
        memset(&mp, 0, sizeof mp);
        mp.lo = hex(&p);
        if (*p == '-')
            p++;
        mp.hi = hex(&p);
        if (p + 5 < eol) {
            p++;
            mp.r = p[0] == 'r';
            mp.w = p[1] == 'w';
            mp.s = p[3] == 's';
            mp.x = p[2] == 'x';
        }
        /* skip offset, dev, inode to the path */
        int field = 0;
        while (p < eol && field < 4) {
            while (p < eol && *p != ' ')
                p++;
            while (p < eol && *p == ' ')
                p++;
            field++;
        }
        size_t plen = (size_t)(eol - p);
        mp.anon = plen == 0;
        if (plen) {
            if (*p == '[') {
                mp.heap = plen >= 6 && !memcmp(p, "[heap]", 6);
                mp.special = !(plen >= 7 && !memcmp(p, "[stack]", 7)) &&
                             !(plen >= 6 && !memcmp(p, "[anon:", 6));
            } else if (plen >= 5 && !memcmp(p, "/dev/", 5) && !(plen >= 9 && !memcmp(p, "/dev/zero", 9))) {
                mp.special = 1;
            }
            if (plen >= 6 && !memcmp(p, "[anon:", 6))
                mp.anon = 1;
        }
        m[n++] = mp;
        p = eol + 1;
    }
    ms_region_release(txt, len);
    *out = m;
    return n;
}

/* glibc's non-main arenas: heaps of HEAP_MAX_SIZE (64 MiB) alignment whose
 * header (heap_info) starts with a pointer to the arena (malloc_state),
 * itself inside such an aligned heap, and a `prev` link that is null or
 * aligned too. */
static int is_arena_heap(const struct map *m, const struct map *all, size_t n)
{
    const uintptr_t HMAX = 64UL << 20;
    if (!ms_glibc_malloc || !m->anon || (m->lo & (HMAX - 1)) || m->hi - m->lo < 4096)
        return 0;
    const uintptr_t *hi = (const uintptr_t *)m->lo;
    uintptr_t ar = hi[0], prev = hi[1], size = hi[2];
    if ((prev & (HMAX - 1)) || size == 0 || size > HMAX || (size & 4095))
        return 0;
    uintptr_t base = ar & ~(HMAX - 1);
    for (size_t i = 0; i < n; i++)
        if (all[i].lo == base && ar - base < 4096)
            return 1;
    return 0;
}

/* The exit check, as valgrind's: glibc keeps the stacks of exited threads
 * in a cache, each with its thread descriptor and the descriptor's DTV (a
 * calloc'd block, and the dynamic TLS blocks it lists).  valgrind runs
 * __libc_freeres at exit, which frees the cache: those blocks are gone
 * before its leak check.  memsleuth does not scan a dead stack (stale
 * pointers), so they were found unreferenced: "definitely lost" (1,344 bytes
 * in 4 blocks in e2e.stw).  They are taken out of the check instead, as
 * freed, and counted among the frees.  A dead stack is the one the scan
 * skips (a dead thread's marker in it, no stopped thread's stack pointer);
 * its descriptor is at its top, where tcb and self (words 0 and 2 of
 * glibc's tcbhead_t) both hold its own address; the DTV pointer (word 1)
 * points one 16-byte entry into the block, after the entry holding the
 * length; entry i's second word is the malloc'd block of module i's TLS. */
int ms_leak_freeres;

static int is_block_start(uintptr_t a, size_t *k)
{
    *k = first_block_at(a);
    return *k < NB && B[*k].addr == a;
}

static uintptr_t dead_tcb(uintptr_t lo, uintptr_t hi)
{
    uintptr_t first = hi - ms_tcb_size();
    for (uintptr_t p = first & ~(uintptr_t)7; p >= lo && first - p < 65536; p -= 8) {
        const uintptr_t *w = (const uintptr_t *)p;
        if (w[0] == p && w[2] == p)
            return p;
    }
    return 0;
}

static void drop_cached_thread_tls(const struct ms_scan_self *self, struct ms_leak_result *res)
{
    extern struct ms_thread_regs *ms_stw_regs MS_HIDDEN;
    extern int ms_stw_nregs MS_HIDDEN;
    static uintptr_t dm[16384];
    size_t ndm = ms_threads_dead_markers(dm, 16384);
    if (!ndm || !NB)
        return;
    struct map *maps = NULL;
    size_t nmaps = parse_maps(&maps);
    uintptr_t my_tp = (uintptr_t)__builtin_thread_pointer();
    size_t ndrop = 0;
    for (size_t i = 0; i < nmaps; i++) {
        const struct map *m = &maps[i];
        if (!m->r || !m->w || !m->anon || m->special || m->heap || m->hi - m->lo < 8192)
            continue;
        int live = self->sp >= m->lo && self->sp < m->hi, dead = 0;
        for (int t = 0; t < ms_stw_nregs && !live; t++)
            live = ms_stw_regs[t].sp >= m->lo && ms_stw_regs[t].sp < m->hi;
        for (size_t d = 0; d < ndm && !dead; d++)
            dead = dm[d] >= m->lo && dm[d] < m->hi;
        if (live || !dead)
            continue;
        uintptr_t tcb = dead_tcb(m->lo, m->hi);
        int used = !tcb || tcb == my_tp;
        for (int t = 0; t < ms_stw_nregs && !used; t++)
            used = ms_stw_regs[t].tp == tcb;
        if (used)
            continue;
        uintptr_t dtv = ((const uintptr_t *)tcb)[1];
        size_t k;
        if (dtv < 16 || !is_block_start(dtv - 16, &k) || B[k].state == ST_DROP)
            continue;
        /* the DTV's length (entry -1) bounds the entries read */
        size_t n = B[k].size / 16, len = *(const size_t *)(dtv - 16);
        B[k].state = ST_DROP;
        ndrop++;
        for (size_t e = 1; e <= len && e + 1 < n; e++) {
            uintptr_t tf = ((const uintptr_t *)dtv)[2 * e + 1];
            size_t j;
            if (tf && is_block_start(tf, &j) && B[j].state != ST_DROP) {
                B[j].state = ST_DROP;
                ndrop++;
            }
        }
    }
    ms_region_release(maps_mem, cap_maps * sizeof *maps_mem);
    maps_mem = NULL;
    if (!ndrop)
        return;
    size_t w = 0;
    for (size_t i = 0; i < NB; i++)
        if (B[i].state != ST_DROP)
            B[w++] = B[i];
    res->freed_at_exit = NB - w;
    NB = w;
}

struct range {
    uintptr_t lo, hi;
};

/* [lo, hi) lies within one of the agent's own ranges */
static int inside_own(uintptr_t lo, uintptr_t hi, const struct range *own, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (own[i].lo < own[i].hi && lo >= own[i].lo && hi <= own[i].hi)
            return 1;
    return 0;
}

/* scan [lo, hi) as a root without the agent's own ranges inside it (the
 * kernel may have merged one with a neighbouring mapping of the program) */
static void scan_root_minus(uintptr_t lo, uintptr_t hi, int grp, const struct range *own, size_t n)
{
    while (lo < hi) {
        uintptr_t cut_lo = hi, cut_hi = hi; /* the lowest own range that overlaps [lo, hi) */
        for (size_t i = 0; i < n; i++)
            if (own[i].lo < own[i].hi && own[i].hi > lo && own[i].lo < hi && own[i].lo < cut_lo) {
                cut_lo = own[i].lo > lo ? own[i].lo : lo;
                cut_hi = own[i].hi;
            }
        if (cut_lo > lo)
            scan_root_ctx(lo, cut_lo, grp);
        lo = cut_hi;
    }
}

/* A private anonymous mapping's pages that were never written hold zeros:
 * /proc/self/pagemap says which pages are neither present nor swapped out,
 * and those are not read.  Reading them cost a page fault each (the zero
 * page mapped in, about 20 us on a VM) -- a library's untouched .bss, a
 * program's large reservation touched here and there.  Without pagemap
 * (fd < 0) every page is read, as before. */
static int pagemap_fd = -1;

static void scan_touched(uintptr_t lo, uintptr_t hi, int grp, const struct range *own, size_t n, int anon_private)
{
    if (!anon_private || pagemap_fd < 0) {
        scan_root_minus(lo, hi, grp, own, n);
        return;
    }
    uint64_t ent[512];
    uintptr_t run = 0; /* start of the current run of touched pages, 0: none */
    for (uintptr_t pg = lo & ~(uintptr_t)4095; pg < hi;) {
        size_t want = (size_t)((hi - pg + 4095) / 4096);
        if (want > 512)
            want = 512;
        ssize_t got = pread(pagemap_fd, ent, want * 8, (off_t)(pg / 4096 * 8));
        if (got < (ssize_t)8) { /* cannot tell: read the rest */
            scan_root_minus(run ? run : pg > lo ? pg : lo, hi, grp, own, n);
            return;
        }
        size_t k = (size_t)got / 8;
        for (size_t i = 0; i < k; i++, pg += 4096) {
            int touched = (ent[i] >> 62) != 0; /* bit 63 present, bit 62 swapped */
            if (touched && !run)
                run = pg > lo ? pg : lo;
            if (!touched && run) {
                scan_root_minus(run, pg, grp, own, n);
                run = 0;
            }
        }
    }
    if (run)
        scan_root_minus(run, hi, grp, own, n);
}

int ms_leak_check(const struct ms_scan_self *self, struct ms_leak_result *res)
{
    /* the world is stopped by the caller; also take the other threads'
     * registers from the stop slots */
    extern struct ms_thread_regs *ms_stw_regs MS_HIDDEN;
    extern int ms_stw_nregs MS_HIDDEN;

    size_t cap = ms_table_count() + 1024;
    cap_B = cap;
    B = ms_region_alloc(cap * sizeof *B);
    if (!B)
        return -1;
    NB = ms_table_snapshot(B, cap);
    sort_blocks(B, NB);
    for (size_t i = 0; i < NB; i++)
        B[i].state = ST_UNREACHED, B[i].heur = 0;
    if (self->sp && ms_leak_freeres) /* the exit check (a snapshot runs on the agent's thread) */
        drop_cached_thread_tls(self, res);
    min_addr = NB ? B[0].addr : 1;
    max_end = 0;
    for (size_t i = 0; i < NB; i++) {
        uintptr_t e = B[i].addr + (B[i].size ? B[i].size : 1);
        if (e > max_end)
            max_end = e;
    }
    cap_stack = 2 * NB + 16;
    cap_ind = NB + 1;
    mstack = ms_region_alloc(cap_stack * sizeof *mstack);
    ind_bytes = ms_region_alloc(cap_ind * sizeof *ind_bytes);
    ind_blocks = ms_region_alloc(cap_ind * sizeof *ind_blocks);
    if (!mstack || !ind_bytes || !ind_blocks)
        return -1;
    msp = 0;

    /* the graph's tables */
    cur_src = -1;
    rec_on = 0;
    ntls_areas = 0;
    nxr = 0;
    ms_graph.elen = ms_graph.nre = ms_graph.ngrp = 0;
    ms_graph.failed = 0;
    if (ms_graph.want) {
        if (ms_graph.cap_blk < NB + 1) {
            if (ms_graph.eoff)
                ms_region_release(ms_graph.eoff, ms_graph.cap_blk * sizeof *ms_graph.eoff);
            if (ms_graph.ecnt)
                ms_region_release(ms_graph.ecnt, ms_graph.cap_blk * sizeof *ms_graph.ecnt);
            ms_graph.cap_blk = NB + 1;
            ms_graph.eoff = ms_region_alloc(ms_graph.cap_blk * sizeof *ms_graph.eoff);
            ms_graph.ecnt = ms_region_alloc(ms_graph.cap_blk * sizeof *ms_graph.ecnt);
        }
        if (!ms_graph.eoff || !ms_graph.ecnt) {
            ms_graph.cap_blk = 0;
            ms_graph.eoff = NULL;
            ms_graph.ecnt = NULL;
            ms_graph.want = 0;
            ms_graph.failed = 1;
        } else {
            memset(ms_graph.eoff, 0xff, NB * sizeof *ms_graph.eoff);
            memset(ms_graph.ecnt, 0, NB * sizeof *ms_graph.ecnt);
            grow((void **)&ms_graph.elog, &ms_graph.ecap, sizeof *ms_graph.elog, NB + 1024);
        }
    }

    struct sigaction fa, old_segv, old_bus;
    memset(&fa, 0, sizeof fa);
    fa.sa_handler = fault_handler;
    fa.sa_flags = SA_NODEFER;
    ms_real_sigaction(SIGSEGV, &fa, &old_segv);
    ms_real_sigaction(SIGBUS, &fa, &old_bus);

    /* registers */
    for (int i = 0; i < self->nregs; i++)
        if (self->regs[i] >= min_addr && self->regs[i] < max_end)
            reach(self->regs[i], 1);
    for (int t = 0; t < ms_stw_nregs; t++)
        for (int i = 0; i < ms_stw_regs[t].nregs; i++)
            if (ms_stw_regs[t].regs[i] >= min_addr && ms_stw_regs[t].regs[i] < max_end)
                reach(ms_stw_regs[t].regs[i], 1);
    pid_t self_tid = (pid_t)syscall(SYS_gettid);
    if (ms_graph.want) {
        if (self->sp) /* a program thread (the exit check); a snapshot runs on the agent's */
            reg_edges(self_tid, self->regs, self->nregs, 0);
        for (int t = 0; t < ms_stw_nregs; t++) {
            const struct ms_thread_regs *r = &ms_stw_regs[t];
            reg_edges(r->tid, r->regs, r->nregs, r->nregs > 16 ? r->regs[16] : 0);
        }
        if (self->sp)
            add_tls_areas(self_tid, (uintptr_t)__builtin_thread_pointer());
        for (int t = 0; t < ms_stw_nregs; t++)
            add_tls_areas(ms_stw_regs[t].tid, ms_stw_regs[t].tp);
    }
    drain();

    /* memory */
    struct map *maps = NULL;
    size_t nmaps = parse_maps(&maps);
    for (size_t i = 0; ms_graph.want && i < nmaps; i++) {
        if (!maps[i].x)
            continue;
        if (grow((void **)&xr, &cap_xr, 2 * sizeof *xr, nxr + 1))
            break;
        xr[2 * nxr] = maps[i].lo;
        xr[2 * nxr + 1] = maps[i].hi;
        nxr++;
    }
    uintptr_t reg_lo, reg_hi;
    ms_region_bounds(&reg_lo, &reg_hi);
    static uintptr_t dead[16384];
    size_t ndead = ms_threads_dead_markers(dead, 16384);
    /* the agent's own memory outside its region: its data and bss, its
     * writer thread's stack (own[1]), the stop-the-world tracer's stack;
     * sorted by address */
    struct range own[3];
    own[0].lo = ms_self_data_lo, own[0].hi = ms_self_data_hi;
    ms_trace_writer_stack(&own[1].lo, &own[1].hi);
    ms_stw_tracer_stack(&own[2].lo, &own[2].hi);
    size_t nown = 3;
    pagemap_fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    for (size_t i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (!m->r || !m->w || (m->special && !m->heap))
            continue;
        if (m->lo >= reg_lo && m->hi <= reg_hi)
            continue;
        if (m->heap || is_arena_heap(m, maps, nmaps)) {
            if (ms_opt.sample_rate)
                scan_heap_gaps(m->lo, m->hi);
            continue;
        }
        /* a snapshot runs on the agent's own thread: its stack (and TLS) holds
         * the addresses of the blocks it just scanned, and is no root (the
         * writer's own stack is one of the agent's ranges, cut out below) */
        uintptr_t here = (uintptr_t)__builtin_frame_address(0);
        if (!self->sp && here >= m->lo && here < m->hi && !(here >= own[1].lo && here < own[1].hi))
            continue;
        if (inside_own(m->lo, m->hi, own, nown))
            continue;
        /* Another allocator (jemalloc, tcmalloc, ...): we cannot tell its
         * heap from the program's own mappings, and its heap holds freed
         * regions with stale pointers.  An anonymous mapping holding live
         * blocks is its heap: not a root (its live blocks are scanned when
         * reached).  glibc's mmap'd chunks are handled exactly below, since
         * the kernel may merge them with a neighbouring program mapping. */
        if (!ms_glibc_malloc && m->anon && !(self->sp >= m->lo && self->sp < m->hi) &&
            holds_block(m->lo, m->hi))
            continue;
        uintptr_t lo = m->lo, hi = m->hi;
        /* live stacks: from the stack pointer up */
        uintptr_t sp = 0;
        pid_t sp_tid = 0;
        uintptr_t sp_pc = 0;
        if (self->sp >= lo && self->sp < hi)
            sp = self->sp, sp_tid = self_tid;
        for (int t = 0; t < ms_stw_nregs; t++) {
            uintptr_t s = ms_stw_regs[t].sp;
            if (s >= lo && s < hi && (!sp || s < sp)) {
                sp = s;
                sp_tid = ms_stw_regs[t].tid;
                sp_pc = ms_stw_regs[t].nregs > 16 ? ms_stw_regs[t].regs[16] : 0;
            }
        }
        int grp = 0;
        if (sp) {
            lo = sp;
            grp = new_group(MS_RG_STACK, sp_tid, sp, hi, sp_pc, 0);
        } else {
            int is_dead = 0;
            for (size_t d = 0; d < ndead && !is_dead; d++)
                is_dead = dead[d] >= lo && dead[d] < hi;
            if (is_dead)
                continue;
            grp = new_group(MS_RG_MEM, 0, lo, hi, 0, 0);
        }
        scan_touched(lo, hi, grp, own, nown, m->anon && !m->s);
    }
    if (pagemap_fd >= 0)
        close(pagemap_fd);
    pagemap_fd = -1;
    rec_on = 0;
    cur_src = -1;

    ms_real_sigaction(SIGSEGV, &old_segv, NULL);
    ms_real_sigaction(SIGBUS, &old_bus, NULL);

    /* cliques of the unreached */
    for (size_t i = 0; i < NB; i++) {
        if (B[i].state != ST_UNREACHED)
            continue;
        push((uint32_t)i);
        while (msp) {
            uint32_t j = mstack[--msp];
            uintptr_t lo = (B[j].addr + 7) & ~(uintptr_t)7, hi = B[j].addr + B[j].size;
            graph_block_begin(j);
            for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
                uintptr_t v = *(const uintptr_t *)a;
                long k = find_block(v);
                if (MS_UNLIKELY(rec_on))
                    record(k, v, a);
                if (k < 0 || (size_t)k == i || B[k].state != ST_UNREACHED)
                    continue;
                if (v != B[k].addr && is_next_chunk_header(&B[k], v))
                    continue;
                B[k].state = ST_INDIRECT;
                ind_bytes[i] += B[k].size + ind_bytes[k];
                ind_blocks[i] += 1 + ind_blocks[k];
                ind_bytes[k] = ind_blocks[k] = 0;
                push((uint32_t)k);
            }
            graph_block_end(j);
        }
    }

    for (size_t i = 0; i < NB; i++) {
        switch (B[i].state) {
        case ST_REACHABLE: B[i].state = MS_REACHABLE; break;
        case ST_POSSIBLE: B[i].state = MS_POSSIBLE; break;
        case ST_INDIRECT: B[i].state = MS_INDIRECT; break;
        default: B[i].state = MS_DEFINITE; break;
        }
    }
    res->blocks = B;
    res->nblocks = NB;
    res->indirect_bytes = ind_bytes;
    res->indirect_blocks = ind_blocks;
    return 0;
}

/* give the tables of one check back (a live snapshot runs it again later) */
void ms_leak_release(void)
{
    ms_region_release(B, cap_B * sizeof *B);
    ms_region_release(mstack, cap_stack * sizeof *mstack);
    ms_region_release(ind_bytes, cap_ind * sizeof *ind_bytes);
    ms_region_release(ind_blocks, cap_ind * sizeof *ind_blocks);
    if (maps_mem)
        ms_region_release(maps_mem, cap_maps * sizeof *maps_mem);
    B = NULL;
    mstack = NULL;
    ind_bytes = ind_blocks = NULL;
    maps_mem = NULL;
    NB = 0;
}
