/*
 * Helper for test_symbolize.c (memsleuth unit test of src/common/symbolize.c).
 * Compiled with -O2 -g so that ms_inline_helper() is inlined into
 * ms_inline_outer(); ms_inline_capture() records its return address, which
 * lies inside the inlined copy of ms_inline_helper().
 * ms_inline_lines[] records the source lines the symbolizer must report:
 *   [0] the call of ms_inline_capture() inside ms_inline_helper()
 *   [1] the call of ms_inline_helper() inside ms_inline_outer()
 * ms_inline_outer2() has a two-level inline chain:
 *   ms_inline_outer2 -> ms_inline_mid (inlined) -> ms_inline_leaf (inlined)
 *   -> ms_inline_capture2 (noinline), with
 *   [2] the call of ms_inline_capture2() inside ms_inline_leaf()
 *   [3] the call of ms_inline_leaf() inside ms_inline_mid()
 *   [4] the call of ms_inline_mid() inside ms_inline_outer2()
 * (each __LINE__ is on the same line as the call it describes).
 */
volatile unsigned long ms_inline_captured;
volatile unsigned long ms_inline_captured2;
int ms_inline_lines[5];

void ms_inline_capture(void);
int ms_inline_outer(int x);
void ms_inline_capture2(void);
int ms_inline_outer2(int x);

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

__attribute__((noinline, noclone)) void ms_inline_capture2(void)
{
    ms_inline_captured2 = (unsigned long)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) int ms_inline_leaf(int x)
{
    ms_inline_capture2(); ms_inline_lines[2] = __LINE__;
    return x * 5;
}

static inline __attribute__((always_inline)) int ms_inline_mid(int x)
{
    int y = ms_inline_leaf(x + 2); ms_inline_lines[3] = __LINE__;
    return y - 1;
}

int ms_inline_outer2(int x)
{
    int r = ms_inline_mid(x); ms_inline_lines[4] = __LINE__;
    return r + 7;
}
