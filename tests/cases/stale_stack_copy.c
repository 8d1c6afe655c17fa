//@ tag: basic
//@ desc: a 48-byte block lost right after malloc returns (the call site warmed up by 3 allocations of another size); the program then exits from inside a function whose 16 KB uninitialized local array covers the dead stack where the allocator's frames ran: a tool whose hooks leave copies of the returned pointer deep in the dead stack calls it reachable
//@ intent: definitely=48/1 records=1
#include <stdlib.h>

static void *volatile sink;

__attribute__((noinline)) static void alloc_one(size_t n)
{
    sink = malloc(n);
}

/* clears the first 512 bytes below the caller: a copy that any allocator's
 * own frames may leave just below the call is not the point */
__attribute__((noinline)) static void clear_near(void)
{
    volatile char z[512];
    for (int i = 0; i < (int)sizeof z; i++)
        z[i] = 0;
}

/* exits with 16 KB of uninitialized locals live on the stack */
__attribute__((noinline)) static void deep_exit(void)
{
    char buf[16384];
    __asm__ volatile("" : : "r"(buf) : "memory"); /* live, never written */
    exit(0);
}

int main(void)
{
    for (int i = 0; i < 3; i++) { /* the same call site, another size class */
        alloc_one(200);
        free(sink);
    }
    alloc_one(48);
    sink = 0;
    clear_near();
    deep_exit();
    return 1;
}
