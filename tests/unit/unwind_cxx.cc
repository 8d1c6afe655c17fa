// Helper library of tests/unit/test_unwind.c: C++ exception handling in the
// call chain.  Built with g++ -O2 -shared -fPIC.  uwcxx_run(mode, leaf, ctx)
// calls the leaf (the test's capture-and-compare)
//   0: in a catch block, after a throw from 5 frames down
//   1: in the destructor of a local object, while the exception unwinds
//      through its frame (called from the frame's landing pad)
//   2: in the destructor of the exception object, at the end of the catch
//      block (called from inside libstdc++'s __cxa_end_catch)
//   3: in a std::sort comparator (template code inlined at -O2)
#include <algorithm>
#include <stdexcept>
#include <vector>

typedef void (*uw_leaf_fn)(void *ctx);

namespace {

uw_leaf_fn g_leaf;
void *g_ctx;
volatile int g_sink;

struct Err : std::runtime_error {
    bool call_in_dtor;
    explicit Err(bool c) : std::runtime_error("uw"), call_in_dtor(c) {}
    Err(const Err &) = default;
    ~Err() override
    {
        if (call_in_dtor)
            g_leaf(g_ctx);
    }
};

struct Guard {
    bool active;
    ~Guard()
    {
        if (active)
            g_leaf(g_ctx);
    }
};

__attribute__((noinline)) int thrower(int depth, int mode)
{
    if (depth == 0)
        throw Err(mode == 2);
    Guard g{mode == 1 && depth == 2};
    int r = thrower(depth - 1, mode);
    g_sink = r;
    return r + depth;
}

__attribute__((noinline)) int catcher(int mode)
{
    try {
        return thrower(5, mode);
    } catch (const Err &e) {
        if (mode == 0)
            g_leaf(g_ctx);
        return g_sink + 1;
    }
}

int sort_calls;
__attribute__((noinline)) bool less_than(int a, int b)
{
    if (sort_calls++ == 10)
        g_leaf(g_ctx);
    return a < b;
}

__attribute__((noinline)) int sorter()
{
    std::vector<int> v;
    for (int i = 0; i < 100; i++)
        v.push_back((i * 7919) % 100);
    sort_calls = 0;
    std::sort(v.begin(), v.end(), less_than);
    return v[3];
}

} // namespace

extern "C" __attribute__((visibility("default"))) int uwcxx_run(int mode, uw_leaf_fn leaf, void *ctx)
{
    g_leaf = leaf;
    g_ctx = ctx;
    int r = mode == 3 ? sorter() : catcher(mode);
    return r + 1;
}
