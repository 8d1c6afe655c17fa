//@ tag: basic
//@ desc: two 64-byte blocks pointing at each other, the only pointer to the pair dropped: one definitely lost (64, with 64 indirect), one indirectly lost
//@ intent: definitely=64/1 indirectly=64/1 records=2
#include <stdlib.h>

struct pair { struct pair *other; char pad[56]; };
static void *volatile sink;

__attribute__((noinline)) static struct pair *mk(void)
{
    return calloc(1, sizeof(struct pair));
}

int main(void)
{
    struct pair *a = mk();
    struct pair *b = mk();
    a->other = b;
    b->other = a;
    sink = a;
    sink = 0;
    a = b = 0;
    return 0;
}
