


#include <cstdlib>
#include <new>

static void *volatile sink;

int main()
{
    int *a = new int[10];
    sink = a;
    delete a;                                    // new[] released with delete
    int *m = static_cast<int *>(std::malloc(sizeof(int)));
    sink = m;
    delete m;                                    // malloc released with delete
    int *n = new int(5);
    sink = n;
    std::free(n);                                // new released with free
    sink = nullptr;
    return 0;
}
