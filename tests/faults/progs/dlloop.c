/* dlloop.c LIB - dlopen, call, dlclose LIB 1000 times while a second thread
 * allocates and frees (small blocks and mmap'd ones, so the library need not
 * load at the same address each time).  The library drops one 77-byte block
 * per load: 77,000 bytes in 1,000 blocks definitely lost, nothing else.
 * Prints the rounds done, exits 9. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int stop;

static void *churn(void *arg)
{
    (void)arg;
    unsigned x = 1;
    void *keep[64] = { 0 };
    while (!atomic_load(&stop)) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 64;
        free(keep[k]);
        keep[k] = malloc(x % 7 == 0 ? 200000 + (x >> 16) % 100000 : 16 + (x >> 16) % 400);
        if (keep[k])
            memset(keep[k], 1, 16);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pthread_t t;
    if (pthread_create(&t, 0, churn, 0) != 0)
        return 1;
    int rounds = 0;
    for (int i = 0; i < 1000; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h)
            break;
        void (*f)(void) = (void (*)(void))dlsym(h, "lib_leak_once");
        if (f) {
            f();
            rounds++;
        }
        dlclose(h);
    }
    atomic_store(&stop, 1);
    pthread_join(t, 0);
    printf("dlloop: %d rounds\n", rounds);
    return 9;
}
