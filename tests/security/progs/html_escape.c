/* html_escape.c - copied by run_security.sh to "h<i>tml&esc.c": a file path and a function name (an assembler name: any
 * bytes but '"') that must come out of `memsleuth report --format=html` as
 * text, never as markup */
#include <stdlib.h>

__attribute__((noinline)) void *evil(size_t n) __asm__("\"<img src=x onerror=alert(7)>&amp;\"");
__attribute__((noinline)) void *evil(size_t n) { return malloc(n); }

static void *volatile sink;

int main(void)
{
    sink = evil(77);
    sink = 0;
    return 0;
}
