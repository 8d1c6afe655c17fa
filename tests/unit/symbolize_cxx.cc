// Helper for test_symbolize.c (memsleuth unit test of src/common/symbolize.c).
// Built as a shared library: g++ -shared -fPIC -O0 -g -> libsymcxx.so.
// ns::thing(int) (mangled _ZN2ns5thingEi) uses operator new, so the
// library depends on libstdc++.so.6.  ms_cxx_capture() records its return
// address (inside ns::thing) and ms_cxx_line the line of that call.

extern "C" {
volatile unsigned long ms_cxx_captured;
int ms_cxx_line;

__attribute__((noinline)) void ms_cxx_capture(void)
{
    ms_cxx_captured = (unsigned long)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}
}

namespace ns {

int thing(int x)
{
    int *p = new int(x);
    ms_cxx_capture(); ms_cxx_line = __LINE__;
    int r = *p + 1;
    delete p;
    return r;
}

} // namespace ns
