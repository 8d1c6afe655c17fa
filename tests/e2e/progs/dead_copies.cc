/* dead_copies.cc - after each allocation call returns, look for copies of the
 * returned pointer in the dead stack below the caller (the memory the
 * allocator's frames used), and measure how deep those frames reached by
 * painting that stack first.  A copy there is what a later frame with an
 * uninitialized local keeps live, making a lost block reachable to a
 * conservative scan; memsleuth's hooks clear it (hooks.c, scrub).  Prints
 * one line per call: "NAME copies=C deepest=D dirty=R" (bytes below the
 * caller's sp: the deepest copy, the deepest word left neither painted nor
 * zero), for the last of 4 rounds (the first ones build the caches).  Under
 * memsleuth: no copy, and nothing written beyond what the scrub clears. */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <new>

enum { SPAN = 20000 };
static void *volatile keep;

/* fill the SPAN bytes below the caller with a pattern */
__attribute__((noinline)) static void paint(void)
{
    volatile uint64_t z[SPAN / 8];
    for (int i = 0; i < SPAN / 8; i++)
        z[i] = 0x5a5a5a5a5a5a5a5aull;
}

#define PAINT_CALL(name, expr)                                                                       \
    do {                                                                                             \
        paint();                                                                                     \
        void *p = (expr);                                                                            \
        keep = p;                                                                                    \
        uintptr_t sp;                                                                                \
        __asm__ volatile("mov %%rsp, %0" : "=r"(sp));                                                \
        int cnt = 0, deep = 0, dirty = 0;                                                            \
        for (uintptr_t a = sp - 8; a > sp - (SPAN - 2048); a -= 8) {                                 \
            uintptr_t v = *(volatile uintptr_t *)a;                                                  \
            if (v >= (uintptr_t)p && v < (uintptr_t)p + 64)                                          \
                cnt++, deep = (int)(sp - a);                                                         \
            if (v != 0x5a5a5a5a5a5a5a5aull && v != 0)                                                \
                dirty = (int)(sp - a);                                                               \
        }                                                                                            \
        if (round == 3)                                                                              \
            printf("%s copies=%d deepest=%d dirty=%d\n", name, cnt, deep, dirty);                    \
    } while (0)

int main()
{
    for (int round = 0; round < 4; round++) {
        void *q;
        PAINT_CALL("malloc", malloc(100));
        free(keep);
        PAINT_CALL("calloc", calloc(1, 100));
        free(keep);
        q = malloc(50);
        PAINT_CALL("realloc-grow", realloc(q, 5000));
        PAINT_CALL("realloc-shrink", realloc(keep, 40));
        free(keep);
        PAINT_CALL("memalign", memalign(64, 100));
        free(keep);
        PAINT_CALL("aligned_alloc", aligned_alloc(64, 128));
        free(keep);
        PAINT_CALL("posix_memalign", (posix_memalign(&q, 64, 100) == 0 ? q : nullptr));
        free(keep);
        PAINT_CALL("new", operator new(100));
        operator delete(keep);
        PAINT_CALL("new[]", new char[100]);
        delete[] (char *)keep;
    }
    return 0;
}
