/* leakcheck.c - valgrind memcheck's leak verdicts.
 *
 * With the other threads stopped:
 *  1. copy the live blocks and sort them by address;
 *  2. scan the roots: every readable and writable mapping of the process
 *     except the malloc heap itself ([heap] and glibc's arena heaps), the
 *     agent's region and data, dead thread stacks, and the dead part of
 *     live stacks (below each thread's stack pointer); plus every thread's
 *     registers.  Live blocks that sit inside a scanned mapping (glibc's
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
#include <setjmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { ST_UNREACHED = 0, ST_POSSIBLE = 1, ST_REACHABLE = 2, ST_INDIRECT = 3 };

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

static void reach(uintptr_t v, int prior_definite)
{
    long i = find_block(v);
    if (i < 0)
        return;
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

static void scan_words(uintptr_t lo, uintptr_t hi, int prior_definite)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
        uintptr_t v = *(const volatile uintptr_t *)a;
        if (v >= min_addr && v < max_end)
            reach(v, prior_definite);
    }
}

static void drain(void)
{
    while (msp) {
        uint32_t i = mstack[--msp];
        scan_words(B[i].addr, B[i].addr + B[i].size, B[i].state == ST_REACHABLE);
    }
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

static void scan_root_range(uintptr_t lo, uintptr_t hi)
{
    /* first block at or after lo */
    size_t k = 0, h = NB;
    while (k < h) {
        size_t m = (k + h) / 2;
        if (B[m].addr < lo)
            k = m + 1;
        else
            h = m;
    }
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

static int holds_block(uintptr_t lo, uintptr_t hi)
{
    size_t k = 0, h = NB;
    while (k < h) {
        size_t m = (k + h) / 2;
        if (B[m].addr < lo)
            k = m + 1;
        else
            h = m;
    }
    return k < NB && B[k].addr < hi;
}

/* ---- /proc/self/maps ---------------------------------------------------- */
struct map {
    uintptr_t lo, hi;
    char r, w, s;
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
    char *txt = read_file("/proc/self/maps", &len);
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
    drain();

    /* memory */
    struct map *maps = NULL;
    size_t nmaps = parse_maps(&maps);
    uintptr_t reg_lo, reg_hi;
    ms_region_bounds(&reg_lo, &reg_hi);
    static uintptr_t dead[16384];
    size_t ndead = ms_threads_dead_markers(dead, 16384);
    for (size_t i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (!m->r || !m->w || m->special || m->heap)
            continue;
        if (m->lo >= reg_lo && m->hi <= reg_hi)
            continue;
        if (is_arena_heap(m, maps, nmaps))
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
        if (self->sp >= lo && self->sp < hi)
            sp = self->sp;
        for (int t = 0; t < ms_stw_nregs; t++) {
            uintptr_t s = ms_stw_regs[t].sp;
            if (s >= lo && s < hi && (!sp || s < sp))
                sp = s;
        }
        if (sp) {
            lo = sp;
        } else {
            int is_dead = 0;
            for (size_t d = 0; d < ndead && !is_dead; d++)
                is_dead = dead[d] >= lo && dead[d] < hi;
            if (is_dead)
                continue;
        }
        /* the agent's own data and bss */
        if (ms_self_data_lo < hi && ms_self_data_hi > lo) {
            if (ms_self_data_lo > lo)
                scan_root_range(lo, ms_self_data_lo);
            if (ms_self_data_hi < hi)
                scan_root_range(ms_self_data_hi, hi);
            continue;
        }
        scan_root_range(lo, hi);
    }

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
            for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
                uintptr_t v = *(const uintptr_t *)a;
                long k = find_block(v);
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
