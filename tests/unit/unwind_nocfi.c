/* Helper of tests/unit/test_unwind.c compiled WITHOUT unwind information
 * (-fno-asynchronous-unwind-tables -fno-unwind-tables), at -O2
 * -fomit-frame-pointer or -O0 like the other helpers: its pcs are in a
 * loaded module but no FDE covers them.  The table marks such pcs "no
 * info" and libunwind finishes the stack (it guesses through RBP), so the
 * result stays what unw_backtrace gives. */
typedef void (*uw_leaf_fn)(void *ctx);

static volatile int sink;

__attribute__((noinline)) int uw_nocfi(int depth, uw_leaf_fn leaf, void *ctx)
{
    if (depth == 0) {
        leaf(ctx);
        return sink;
    }
    int r = uw_nocfi(depth - 1, leaf, ctx);
    sink = r;
    return r + 1;
}
