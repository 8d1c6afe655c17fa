/* graph_prog.c - programs whose heap graph is known (tests/graph/run_graph.sh).
 *   graph_prog known   : a global registry retaining a linked chain (sizes 16 + 8*i,
 *                        i < 1000); a cycle of 3 blocks (100, 200, 300 B) held only by
 *                        a thread's stack ("holder", in hold_cycle); two globals g_a,
 *                        g_b (blocks of 1111 and 2222 B) sharing a subgraph (3333 B ->
 *                        4444 B); a block of 5555 B kept only by a __thread pointer;
 *                        g_table: 20000 pointers (160000 B) to blocks of 24 B; g_field: a
 *                        72-byte struct rec (build_field) whose field at 0x18 points to a
 *                        77-byte block (make_leaf).
 *   graph_prog grow    : the registry grows between two snapshots (memsleuth snapshot PID
 *                        after each "snap N" line; a line on stdin goes on)
 *   graph_prog stress N [STOP]: 4 threads allocate and free hard for N ms, or until the
 *                        file STOP exists; prints a checksum
 *   graph_prog peak    : the heap rises in steps of one block each, held 400 ms (10, 15, 25,
 *                        40 MiB live), falls to 10 MiB, and the program exits; nothing else
 *                        is live meanwhile (no stdio until the end)
 *   graph_prog agentsp : finds every other thread (under memsleuth: the agent's own
 *                        thread, blocked in a system call) and its stack pointer from
 *                        /proc/self/task/TID/syscall, leaves a pointer to a block of 4321
 *                        B 1 MiB below it (a stale pointer, as the agent's thread keeps from
 *                        its snapshots), prints "sp TID 0xSP 0xBLOCK", and exits: the block
 *                        is lost
 *   graph_prog sparse  : a 1 GiB private anonymous mapping of which one page is written, 512
 *                        MiB in: it holds the only pointer to a block of 7777 B; a block of
 *                        8888 B is lost
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct node {
    struct node *next;
    char pad[];
};

struct node *g_registry;
void *g_a, *g_b;
void **g_table; /* 20000 pointers in one block: its edges span several records */
__thread void *tls_ptr;
struct rec { /* a pointer at a known offset: 0x18 */
    char tag[0x18];
    void *leaf;
    char pad[40];
};
struct rec *g_field;
void *g_peak[64];
static volatile int holder_ready;

__attribute__((noinline)) static void build_registry(int from, int to)
{
    for (int i = from; i < to; i++) {
        struct node *n = malloc(16 + 8 * (size_t)i);
        memset(n, 0, 16 + 8 * (size_t)i);
        n->next = g_registry;
        g_registry = n;
    }
}

__attribute__((noinline)) static void build_shared(void)
{
    void **s = malloc(3333);
    memset(s, 0, 3333);
    s[0] = malloc(4444);
    memset(s[0], 0, 4444);
    void **a = malloc(1111), **b = malloc(2222);
    memset(a, 0, 1111);
    memset(b, 0, 2222);
    a[0] = s;
    b[3] = s;
    __asm__ volatile("" : : "r"(a), "r"(b), "r"(s) : "memory");
    g_a = a;
    g_b = b;
}

__attribute__((noinline)) static void build_table(void)
{
    g_table = malloc(20000 * sizeof *g_table);
    for (int i = 20000; i-- > 0;) { /* from the end: the first leaf allocated is in the last slot */
        g_table[i] = malloc(24);
        memset(g_table[i], 0, 24);
    }
}

__attribute__((noinline)) static void build_tls(void)
{
    tls_ptr = malloc(5555);
    memset(tls_ptr, 0, 5555);
}

/* clear the dead part of the stack below us (pointers left by the builders) */
__attribute__((noinline)) static void scrub(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof junk);
}

__attribute__((noinline)) static void **make_cycle(void)
{
    void **a = malloc(100), **b = malloc(200), **c = malloc(300);
    memset(a, 0, 100);
    memset(b, 0, 200);
    memset(c, 0, 300);
    a[0] = b;
    b[0] = c;
    c[0] = a;
    __asm__ volatile("" : : "r"(a), "r"(b), "r"(c) : "memory"); /* the stores stay */
    return a;
}

__attribute__((noinline)) static void hold_cycle(void)
{
    void **volatile head = make_cycle(); /* the only pointer: a slot of this frame */
    scrub();
    holder_ready = 1;
    for (;;) {
        struct timespec d = { 1, 0 };
        nanosleep(&d, NULL);
        if (!head)
            break;
    }
}

static void *holder(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "holder");
    hold_cycle();
    return NULL;
}

/* ---- stress ---- */
static volatile int stop;
static uint64_t sums[4];

static void *churn(void *arg)
{
    int id = (int)(intptr_t)arg;
    void *slots[512] = { 0 };
    uint64_t x = 88172645463325252ull + (uint64_t)id, sum = 0;
    for (uint64_t it = 0; !stop || it < 10000; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = x % 512;
        if (slots[k]) {
            sum += ((unsigned char *)slots[k])[0];
            free(slots[k]);
            slots[k] = NULL;
        } else {
            size_t sz = 1 + x % 2000;
            slots[k] = malloc(sz);
            ((unsigned char *)slots[k])[0] = (unsigned char)(sz & 0xff);
            ((unsigned char *)slots[k])[sz - 1] = 1;
        }
        if (stop && it >= 10000)
            break;
    }
    for (int k = 0; k < 512; k++)
        if (slots[k]) {
            sum += ((unsigned char *)slots[k])[0];
            free(slots[k]);
        }
    sums[id] = sum;
    return NULL;
}

/* a plain sleep: stopping the world for a snapshot (ptrace) does not cut it short */
static void hold_ms(int ms)
{
    struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&d, NULL);
}

__attribute__((noinline)) static void *make_leaf(void)
{
    return malloc(77);
}

__attribute__((noinline)) static void build_field(void)
{
    g_field = calloc(1, sizeof *g_field);
    g_field->leaf = make_leaf();
}

/* a block whose only pointer is at `at` (the address goes back as a number) */
__attribute__((noinline)) static uintptr_t plant(uintptr_t at)
{
    void *b = malloc(4321);
    memset(b, 0x5a, 4321);
    *(void *volatile *)(at & ~(uintptr_t)7) = b;
    uintptr_t r = (uintptr_t)b ^ 1; /* not the pointer itself, in case it stays in a register */
    b = NULL;
    scrub();
    return r ^ 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "known";
    if (!strcmp(mode, "known")) {
        build_registry(0, 1000);
        build_shared();
        build_table();
        build_tls();
        build_field();
        pthread_t t;
        pthread_create(&t, NULL, holder, NULL);
        while (!holder_ready)
            usleep(1000);
        usleep(20000);
        scrub();
        printf("known ready\n");
        fflush(stdout);
        exit(0); /* the holder still runs: its stack is a root of the exit check */
    }
    if (!strcmp(mode, "sparse")) {
        char *m = mmap(NULL, 1ul << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return 1;
        *(void *volatile *)(m + (512ul << 20) + 4096 + 64) = malloc(7777);
        void *volatile lost = malloc(8888);
        lost = NULL;
        scrub();
        printf("sparse ready\n");
        fflush(stdout);
        return 0;
    }
    if (!strcmp(mode, "agentsp")) {
        usleep(100000);
        pid_t self = (pid_t)syscall(SYS_gettid);
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int tid = atoi(e->d_name);
            if (tid <= 0 || tid == self)
                continue;
            for (int tries = 0; tries < 50; tries++) { /* "running": not in a system call yet */
                char path[64], buf[512];
                snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
                FILE *f = fopen(path, "r");
                if (!f)
                    break;
                size_t n = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[n] = 0;
                unsigned long long v[9];
                if (sscanf(buf, "%llu %llx %llx %llx %llx %llx %llx %llx %llx", &v[0], &v[1], &v[2], &v[3],
                           &v[4], &v[5], &v[6], &v[7], &v[8]) == 9) {
                    printf("sp %d %#llx %#lx\n", tid, v[7], plant((uintptr_t)v[7] - (1u << 20)));
                    break;
                }
                usleep(2000);
            }
        }
        if (d)
            closedir(d);
        fflush(stdout);
        return 0;
    }
    if (!strcmp(mode, "grow")) { /* a line on stdin after each "snap" line: snapshot taken */
        char line[64];
        build_registry(0, 100);
        scrub();
        printf("snap 1\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            return 1;
        build_registry(100, 600);
        scrub();
        printf("snap 2\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            return 1;
        printf("grow done\n");
        return 0;
    }
    if (!strcmp(mode, "peak")) { /* each step one block: the sampler sees 10, 15, 25, 40 MiB */
        static const size_t step[] = { 10u << 20, 5u << 20, 10u << 20, 15u << 20 };
        for (int l = 0; l < 4; l++) {
            g_peak[l] = malloc(step[l]);
            memset(g_peak[l], 1, step[l]);
            hold_ms(400);
        }
        for (int l = 3; l > 0; l--)
            free(g_peak[l]);
        hold_ms(300);
        printf("peak done\n");
        return 0;
    }
    if (!strcmp(mode, "stress")) {
        int ms = argc > 2 ? atoi(argv[2]) : 3000;
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i);
        printf("stress ready\n");
        fflush(stdout);
        const char *stopfile = argc > 3 ? argv[3] : NULL;
        for (int waited = 0; waited < ms && !(stopfile && access(stopfile, F_OK) == 0); waited += 50)
            hold_ms(50);
        stop = 1;
        uint64_t total = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            total += sums[i];
        }
        /* the same run without memsleuth gives the same numbers: each thread
         * runs a fixed sequence (its xorshift) for as long as it runs; check
         * what does not depend on the duration instead: every block's bytes
         * were intact when freed */
        printf("stress done %s\n", total > 0 ? "ok" : "empty");
        return 0;
    }
    return 2;
}
