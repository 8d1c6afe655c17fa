//@ tag: process
//@ desc: a library is dlopen'ed, called and dlclose'd 40 times; each round it leaks 111 bytes (a static pointer of the unloaded library is no root): one record of 40 blocks whose stack is in the unloaded library
//@ intent: definitely=4440/40 records=1
#include <dlfcn.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argc;
    char path[4096];
    const char *slash = strrchr(argv[0], '/');
    size_t dir = slash ? (size_t)(slash - argv[0]) + 1 : 0;
    if (dir + 64 > sizeof path) return 1;
    memcpy(path, argv[0], dir);
    strcpy(path + dir, "libdlopen_loop_leak.so");
    for (int i = 0; i < 40; i++) {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) return 2;
        void (*f)(void) = (void (*)(void))dlsym(h, "lib_round");
        if (!f) return 3;
        f();
        dlclose(h);
    }
    return 0;
}
