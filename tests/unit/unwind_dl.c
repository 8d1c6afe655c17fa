/* Helper library of tests/unit/test_unwind.c, dlopen'd and dlclose'd in a
 * loop while other threads unwind.  Built -O2 -fomit-frame-pointer -shared.
 * uwdl_entry calls the leaf through a short chain inside this library, so
 * the capture in the leaf must walk this library's table. */
typedef void (*uw_leaf_fn)(void *ctx);

static volatile int sink;

__attribute__((noinline)) static int inner(int d, uw_leaf_fn leaf, void *ctx)
{
    if (d == 0) {
        leaf(ctx);
        return sink;
    }
    int r = inner(d - 1, leaf, ctx);
    sink = r; /* keeps gcc from turning the recursion into a loop */
    return r + d;
}

__attribute__((visibility("default"))) int uwdl_entry(uw_leaf_fn leaf, void *ctx)
{
    int r = inner(3, leaf, ctx);
    return r + 1;
}
