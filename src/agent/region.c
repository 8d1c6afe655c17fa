/* region.c - the agent's own memory.
 *
 * All agent bookkeeping lives in one range of address space reserved at
 * start-up (PROT_NONE, MAP_NORESERVE: it costs nothing until used).  Pages
 * are committed by bumping a pointer.  Because the range is one interval,
 * the root scan skips it with a single comparison, and no table the agent
 * keeps can ever make a program block look reachable.
 *
 * ms_rmalloc() is a small size-class heap on top, used only while the
 * report runs: the symbolizer (libdw) and friends call malloc, and those
 * calls are routed here instead of to the program's allocator, whose locks a
 * stopped thread might hold.
 */
#include "agent.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

static uintptr_t reg_lo, reg_hi;
static _Atomic uintptr_t reg_next;
#define PAGE 4096UL

int ms_region_init(void)
{
    static const size_t sizes[] = { 1UL << 36, 1UL << 33, 1UL << 31, 1UL << 29 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = mmap(NULL, sizes[i], PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED) {
            reg_lo = (uintptr_t)p;
            reg_hi = reg_lo + sizes[i];
            atomic_store(&reg_next, reg_lo);
            return 0;
        }
    }
    return -1;
}

void *ms_region_alloc(size_t size)
{
    size = (size + PAGE - 1) & ~(PAGE - 1);
    if (!reg_lo || size == 0)
        return NULL;
    uintptr_t at = atomic_fetch_add(&reg_next, size);
    if (at + size > reg_hi || at + size < at)
        return NULL;
    void *p = mmap((void *)at, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void ms_region_release(void *p, size_t size)
{
    size = (size + PAGE - 1) & ~(PAGE - 1);
    if (p && size)
        mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
}

int ms_region_contains(uintptr_t a)
{
    return a >= reg_lo && a < reg_hi;
}

void ms_region_bounds(uintptr_t *lo, uintptr_t *hi)
{
    *lo = reg_lo;
    *hi = reg_hi;
}

/* ---- report-time heap: power-of-two classes from 32 B to 1 MiB ------- */
#define NCLASS 16
struct rhdr {
    uint64_t size;  /* usable size of this chunk */
    uint64_t cls;   /* class index, or NCLASS for a direct mapping */
};
static void *freelist[NCLASS];
static char *bump, *bump_end;
static atomic_flag rlock = ATOMIC_FLAG_INIT;

static void rlock_take(void)
{
    while (atomic_flag_test_and_set_explicit(&rlock, memory_order_acquire))
        ;
}
static void rlock_drop(void)
{
    atomic_flag_clear_explicit(&rlock, memory_order_release);
}

/* fork: the agent's thread may be inside ms_rmalloc (a snapshot's report,
 * zstd) when another thread forks; the child would inherit the lock taken
 * and spin in its first ms_rmalloc (its own writer thread's creation:
 * glibc's allocations for it are the agent's).  Held across fork. */
void ms_region_fork_prepare(void)
{
    rlock_take();
}

void ms_region_fork_done(void)
{
    rlock_drop();
}

void *ms_rmalloc(size_t n)
{
    if (n > (1UL << 20)) {
        struct rhdr *h = ms_region_alloc(n + sizeof *h);
        if (!h)
            return NULL;
        h->size = (n + sizeof *h + PAGE - 1) / PAGE * PAGE - sizeof *h;
        h->cls = NCLASS;
        return h + 1;
    }
    unsigned c = 0;
    while ((32UL << c) < n)
        c++;
    size_t csize = 32UL << c;
    rlock_take();
    void *p = freelist[c];
    if (p) {
        freelist[c] = *(void **)p;
        rlock_drop();
        return p;
    }
    size_t need = csize + sizeof(struct rhdr);
    if (!bump || (size_t)(bump_end - bump) < need) {
        size_t chunk = need > (4UL << 20) ? need : (4UL << 20);
        bump = ms_region_alloc(chunk);
        if (!bump) {
            rlock_drop();
            return NULL;
        }
        bump_end = bump + chunk;
    }
    struct rhdr *h = (struct rhdr *)bump;
    bump += need;
    rlock_drop();
    h->size = csize;
    h->cls = c;
    return h + 1;
}

void *ms_rmemalign(size_t align, size_t n)
{
    if (align <= 16)
        return ms_rmalloc(n);
    /* over-allocate from the class heap and never return it to a list: rare */
    char *p = ms_rmalloc(n + align + sizeof(struct rhdr));
    if (!p)
        return NULL;
    uintptr_t a = ((uintptr_t)p + sizeof(struct rhdr) + align - 1) & ~(uintptr_t)(align - 1);
    struct rhdr *h = (struct rhdr *)a - 1;
    h->size = n;
    h->cls = NCLASS + 1; /* not recyclable */
    return (void *)a;
}

size_t ms_rsize(const void *p)
{
    return ((const struct rhdr *)p - 1)->size;
}

void ms_rfree(void *p)
{
    if (!p)
        return;
    struct rhdr *h = (struct rhdr *)p - 1;
    if (h->cls == NCLASS) {
        ms_region_release(h, h->size + sizeof *h);
        return;
    }
    if (h->cls > NCLASS)
        return;
    rlock_take();
    *(void **)p = freelist[h->cls];
    freelist[h->cls] = p;
    rlock_drop();
}
