/*
 * Helper for test_symbolize.c (memsleuth unit test of src/common/symbolize.c).
 * Compiled with -O2 -g so that ms_inline_helper() is inlined into
 * ms_inline_outer(); ms_inline_capture() records its return address, which
 * lies inside the inlined copy of ms_inline_helper().
 * ms_inline_lines[] records the source lines the symbolizer must report:
 *   [0] the call of ms_inline_capture() inside ms_inline_helper()
 *   [1] the call of ms_inline_helper() inside ms_inline_outer()
 * (each __LINE__ is on the same line as the call it describes).
 */
volatile unsigned long ms_inline_captured;
int ms_inline_lines[2];

void ms_inline_capture(void);
int ms_inline_outer(int x);

__attribute__((noinline, noclone)) void ms_inline_capture(void)
{
    ms_inline_captured = (unsigned long)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) int ms_inline_helper(int x)
{
    ms_inline_capture(); ms_inline_lines[0] = __LINE__;
    return x + 1;
}

int ms_inline_outer(int x)
{
    int r = ms_inline_helper(x); ms_inline_lines[1] = __LINE__;
    return r * 3;
}
