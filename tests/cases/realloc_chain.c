//@ tag: basic
//@ desc: a buffer grown by realloc 20 times, then dropped: one definitely lost block of the final size, attributed to the last realloc's line; a strdup'ed string kept in a global is reachable
//@ intent: definitely=2048/1 reachable=6/1 records=2
#include <stdlib.h>
#include <string.h>

static void *volatile sink;
char *g_name;

int main(void)
{
    char *buf = 0;
    size_t n = 0;
    for (int i = 0; i < 20; i++) {
        n = (size_t)(i + 1) * 100;
        if (i == 19)
            n = 2048;
        buf = realloc(buf, n);
        buf[n - 1] = 0;
    }
    sink = buf;
    sink = 0;
    buf = 0;
    g_name = strdup("hello");
    return 0;
}
