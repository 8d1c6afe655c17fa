/*
 * Unit test of src/common/symbolize.{h,c} (memsleuth).  TAP-style output
 * ("ok N - what" / "not ok N - what"), exit status 1 on any failure.
 *
 * Build (from the repository root; D = output directory; this is what
 * tests/unit/build_test_symbolize.sh does, for three variants):
 *
 *   gcc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -O2 \
 *       -c src/common/symbolize.c -o $D/symbolize.o
 *   gcc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g \
 *       -c tests/unit/symbolize_inline.c -o $D/symbolize_inline.o
 *   g++ -std=c++17 -Wall -Wextra -Werror -shared -fPIC -O0 -g \
 *       tests/unit/symbolize_cxx.cc -o $D/libsymcxx.so
 *   strip --strip-all -o $D/libsymcxx_stripped.so $D/libsymcxx.so
 *   mkdir -p $D/.debug
 *   objcopy --only-keep-debug $D/libsymcxx.so $D/.debug/libsymcxx_dl.so.debug
 *   objcopy --strip-debug --add-gnu-debuglink=$D/.debug/libsymcxx_dl.so.debug \
 *       $D/libsymcxx.so $D/libsymcxx_dl.so
 *   objcopy --only-keep-debug $D/libsymcxx.so $D/.debug/libsymcxx_bad.so.debug
 *   objcopy --strip-debug --add-gnu-debuglink=$D/.debug/libsymcxx_bad.so.debug \
 *       $D/libsymcxx.so $D/libsymcxx_bad.so
 *   objcopy --only-keep-debug $D/symbolize.o $D/.debug/libsymcxx_bad.so.debug
 *   gcc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -O0 -g -Isrc/common \
 *       tests/unit/test_symbolize.c $D/symbolize_inline.o $D/symbolize.o \
 *       -o $D/test_symbolize -ldw -lelf -ldl
 *   $D/test_symbolize $D
 *
 * Variants built by the script: default (PIE), -no-pie (ET_EXEC, bias 0)
 * and -gdwarf-4 (everything else as default).
 *
 * argv[1]: directory holding libsymcxx.so, libsymcxx_stripped.so,
 * libsymcxx_dl.so, libsymcxx_bad.so and .debug/ (default: the directory of
 * the test executable).
 *
 * The module list of this process is taken with dl_iterate_phdr here, in
 * the test: the symbolizer itself never looks at the process' mappings.
 */
#include "symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- */
/* TAP helpers                                                       */
/* ---------------------------------------------------------------- */

static int g_n, g_fail;

static void check(int cond, const char *fmt, ...)
{
    va_list ap;
    g_n++;
    if (!cond)
        g_fail++;
    printf("%s %d - ", cond ? "ok" : "not ok", g_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static int streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static const char *nz(const char *p)
{
    return p ? p : "(null)";
}

static void dump_frames(const char *what, unsigned long pc,
                        const struct ms_sym_frame *f, int n)
{
    printf("# %s: pc=%#lx, %d frame(s)\n", what, pc, n);
    for (int i = 0; i < n; i++)
        printf("#   [%d] %s (mangled %s) at %s:%d [%s] inlined=%d in %s+%#lx\n",
               i, nz(f[i].function), nz(f[i].mangled), nz(f[i].file),
               f[i].line, nz(f[i].dir_file), f[i].inlined, nz(f[i].module),
               f[i].module_offset);
}

/* ---------------------------------------------------------------- */
/* Module list of this process (test side only)                      */
/* ---------------------------------------------------------------- */

struct modinfo {
    char path[PATH_MAX];
    unsigned long bias, lo, hi;
    unsigned long xlo, xhi; /* first executable PT_LOAD segment */
    unsigned char build_id[64];
    size_t build_id_len;
};

struct modlist {
    struct modinfo m[256];
    int n;
};

static void note_build_id(struct modinfo *mi, const struct dl_phdr_info *info,
                          const ElfW(Phdr) *ph)
{
    const unsigned char *p =
        (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
    const unsigned char *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
        size_t namesz = (nh->n_namesz + 3u) & ~3u;
        size_t descsz = (nh->n_descsz + 3u) & ~3u;
        const unsigned char *name = p + sizeof *nh;
        const unsigned char *desc = name + namesz;
        if (desc + descsz > end)
            break;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
            memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= sizeof mi->build_id) {
            memcpy(mi->build_id, desc, nh->n_descsz);
            mi->build_id_len = nh->n_descsz;
            return;
        }
        p = desc + descsz;
    }
}

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct modlist *ml = data;
    if (ml->n >= (int)(sizeof ml->m / sizeof ml->m[0]))
        return 1;
    struct modinfo *mi = &ml->m[ml->n];
    memset(mi, 0, sizeof *mi);
    if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0') {
        if (ml->n != 0)
            return 0; /* only the first nameless entry is the executable */
        ssize_t k = readlink("/proc/self/exe", mi->path, sizeof mi->path - 1);
        if (k <= 0)
            return 0;
        mi->path[k] = '\0';
    } else {
        snprintf(mi->path, sizeof mi->path, "%s", info->dlpi_name);
    }
    unsigned long lo = ~0UL, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            unsigned long a = info->dlpi_addr + ph->p_vaddr;
            unsigned long b = a + ph->p_memsz;
            if (a < lo)
                lo = a;
            if (b > hi)
                hi = b;
            if ((ph->p_flags & PF_X) && mi->xhi == 0) {
                mi->xlo = a;
                mi->xhi = b;
            }
        } else if (ph->p_type == PT_NOTE && mi->build_id_len == 0) {
            note_build_id(mi, info, ph);
        }
    }
    if (hi <= lo)
        return 0;
    mi->bias = info->dlpi_addr;
    mi->lo = lo;
    mi->hi = hi;
    ml->n++;
    return 0;
}

static void collect(struct modlist *ml)
{
    ml->n = 0;
    dl_iterate_phdr(collect_cb, ml);
}

static const struct modinfo *find_mod(const struct modlist *ml,
                                      const char *substr)
{
    for (int i = 0; i < ml->n; i++)
        if (strstr(ml->m[i].path, substr) != NULL)
            return &ml->m[i];
    return NULL;
}

static const struct modinfo *mod_of(const struct modlist *ml, unsigned long pc)
{
    for (int i = 0; i < ml->n; i++)
        if (pc >= ml->m[i].lo && pc < ml->m[i].hi)
            return &ml->m[i];
    return NULL;
}

static struct ms_sym *sym_with(const struct modlist *ml)
{
    struct ms_sym *s = ms_sym_new();
    for (int i = 0; s != NULL && i < ml->n; i++)
        ms_sym_add_module(s, ml->m[i].path, ml->m[i].bias, ml->m[i].lo,
                          ml->m[i].hi);
    return s;
}

/* ---------------------------------------------------------------- */
/* Code whose addresses get resolved                                 */
/* ---------------------------------------------------------------- */

static volatile unsigned long g_captured;
static int g_call_line;

__attribute__((noinline)) static void capture_ra(void)
{
    g_captured = (unsigned long)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void test_caller(void);
__attribute__((noinline)) void test_caller(void)
{
    capture_ra(); g_call_line = __LINE__;
    __asm__ volatile("" ::: "memory");
}

/* symbolize_inline.c */
extern volatile unsigned long ms_inline_captured;
extern volatile unsigned long ms_inline_captured2;
extern int ms_inline_lines[5];
int ms_inline_outer(int x);
int ms_inline_outer2(int x);

/* ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    char dir[PATH_MAX];
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else {
        ssize_t k = readlink("/proc/self/exe", dir, sizeof dir - 1);
        dir[k > 0 ? k : 0] = '\0';
        char *sl = strrchr(dir, '/');
        if (sl != NULL)
            *sl = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }

    struct ms_sym_frame f[MS_SYM_MAX_FRAMES];
    static struct modlist ml;
    collect(&ml);
    check(ml.n >= 2, "dl_iterate_phdr found %d modules", ml.n);
    const struct modinfo *exe = &ml.m[0];
    printf("# executable %s bias %#lx [%#lx, %#lx)\n", exe->path, exe->bias,
           exe->lo, exe->hi);

    /* ---- (1) own function, file and line ---------------------------- */
    struct ms_sym *s = sym_with(&ml);
    check(s != NULL, "ms_sym_new + add_module for all modules");
    test_caller();
    unsigned long pc = g_captured - 1;
    int n = ms_sym_resolve(s, pc, f, MS_SYM_MAX_FRAMES);
    dump_frames("test_caller", pc, f, n);
    check(n == 1, "own code: one frame (got %d)", n);
    check(streq(f[0].function, "test_caller"), "own code: function test_caller (got %s)", nz(f[0].function));
    check(streq(f[0].mangled, "test_caller"), "own code: mangled test_caller (got %s)", nz(f[0].mangled));
    check(streq(f[0].file, "test_symbolize.c"), "own code: file test_symbolize.c (got %s)", nz(f[0].file));
    check(f[0].dir_file != NULL && f[0].dir_file[0] == '/' &&
          strstr(f[0].dir_file, "tests/unit/test_symbolize.c") != NULL,
          "own code: dir_file is the full path (got %s)", nz(f[0].dir_file));
    check(f[0].line == g_call_line, "own code: line %d (got %d)", g_call_line, f[0].line);
    check(streq(f[0].module, exe->path), "own code: module is the executable (got %s)", nz(f[0].module));
    check(f[0].module_offset == pc - exe->bias, "own code: module_offset = pc - bias (%#lx)", f[0].module_offset);
    check(f[0].inlined == 0, "own code: not inlined");
    {
        struct ms_sym_frame g[4];
        int n2 = ms_sym_resolve(s, pc, g, 4);
        check(n2 == 1 && g[0].function == f[0].function && g[0].file == f[0].file &&
              g[0].line == f[0].line, "cached second resolution returns the same strings");
    }
    /* The function's entry point. */
    n = ms_sym_resolve(s, (unsigned long)&test_caller, f, MS_SYM_MAX_FRAMES);
    check(n == 1 && streq(f[0].function, "test_caller") && f[0].line > 0 &&
          f[0].line < g_call_line, "entry of test_caller resolves (line %d)", f[0].line);

    /* ---- (2) inlined frames ----------------------------------------- */
    ms_inline_outer(5);
    pc = ms_inline_captured - 1;
    n = ms_sym_resolve(s, pc, f, MS_SYM_MAX_FRAMES);
    dump_frames("inline", pc, f, n);
    check(n == 2, "inline: two frames (got %d)", n);
    check(n >= 1 && streq(f[0].function, "ms_inline_helper") && f[0].inlined == 1,
          "inline: frame 0 is ms_inline_helper, inlined=1 (got %s, %d)", nz(f[0].function), f[0].inlined);
    check(n >= 1 && streq(f[0].file, "symbolize_inline.c") && f[0].line == ms_inline_lines[0],
          "inline: frame 0 at symbolize_inline.c:%d (got %s:%d)", ms_inline_lines[0], nz(f[0].file), f[0].line);
    check(n >= 2 && streq(f[1].function, "ms_inline_outer") && f[1].inlined == 0,
          "inline: frame 1 is ms_inline_outer, inlined=0 (got %s, %d)", nz(f[1].function), f[1].inlined);
    check(n >= 2 && streq(f[1].file, "symbolize_inline.c") && f[1].line == ms_inline_lines[1],
          "inline: frame 1 at the call line symbolize_inline.c:%d (got %s:%d)", ms_inline_lines[1], nz(f[1].file), f[1].line);
    check(n >= 2 && f[1].dir_file != NULL && strstr(f[1].dir_file, "tests/unit/symbolize_inline.c") != NULL,
          "inline: call-site dir_file (got %s)", nz(f[1].dir_file));
    check(n >= 2 && streq(f[0].module, exe->path) && streq(f[1].module, exe->path) &&
          f[0].module_offset == f[1].module_offset, "inline: module and offset on both frames");
    {
        struct ms_sym_frame g[1];
        int n1 = ms_sym_resolve(s, pc, g, 1);
        check(n1 == 1 && streq(g[0].function, "ms_inline_helper"), "inline: max=1 gives the innermost frame only");
    }

    /* Two-level inline chain. */
    ms_inline_outer2(3);
    pc = ms_inline_captured2 - 1;
    n = ms_sym_resolve(s, pc, f, MS_SYM_MAX_FRAMES);
    dump_frames("inline x2", pc, f, n);
    check(n == 3, "inline x2: three frames (got %d)", n);
    check(n == 3 && streq(f[0].function, "ms_inline_leaf") && f[0].inlined == 1 &&
          f[0].line == ms_inline_lines[2] && streq(f[0].file, "symbolize_inline.c"),
          "inline x2: [0] ms_inline_leaf at line %d, inlined", ms_inline_lines[2]);
    check(n == 3 && streq(f[1].function, "ms_inline_mid") && f[1].inlined == 1 &&
          f[1].line == ms_inline_lines[3] && streq(f[1].file, "symbolize_inline.c"),
          "inline x2: [1] ms_inline_mid at call line %d, inlined", ms_inline_lines[3]);
    check(n == 3 && streq(f[2].function, "ms_inline_outer2") && f[2].inlined == 0 &&
          f[2].line == ms_inline_lines[4] && streq(f[2].file, "symbolize_inline.c"),
          "inline x2: [2] ms_inline_outer2 at call line %d, not inlined", ms_inline_lines[4]);
    {
        struct ms_sym_frame g[2];
        int n2 = ms_sym_resolve(s, pc, g, 2);
        check(n2 == 2 && streq(g[0].function, "ms_inline_leaf") && streq(g[1].function, "ms_inline_mid"),
              "inline x2: max=2 gives the two innermost frames");
    }

    /* ---- libc: .dynsym/.symtab names, separate debuginfo by build-id --- */
    {
        void *lh = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        void *fn = lh ? dlsym(lh, "getpid") : NULL;
        const struct modinfo *libc = fn ? mod_of(&ml, (unsigned long)fn) : NULL;
        check(libc != NULL, "libc getpid found via dlsym (%p)", fn);
        if (libc != NULL) {
            pc = (unsigned long)fn + 1;
            n = ms_sym_resolve(s, pc, f, MS_SYM_MAX_FRAMES);
            dump_frames("libc getpid+1", pc, f, n);
            check(n >= 1 && f[n - 1].function != NULL && strstr(f[n - 1].function, "getpid") != NULL,
                  "libc: function name contains getpid (got %s)", nz(n >= 1 ? f[n - 1].function : NULL));
            check(n >= 1 && streq(f[n - 1].module, libc->path), "libc: module %s", libc->path);
            char dbg[PATH_MAX];
            int o = snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/");
            for (size_t i = 0; i < libc->build_id_len && o < (int)sizeof dbg - 8; i++)
                o += snprintf(dbg + o, sizeof dbg - o, i == 0 ? "%02x/" : "%02x", libc->build_id[i]);
            snprintf(dbg + o, sizeof dbg - o, ".debug");
            if (libc->build_id_len > 0 && access(dbg, R_OK) == 0)
                check(n >= 1 && f[0].file != NULL && f[0].line > 0,
                      "libc: separate debuginfo %s gives file:line (%s:%d)", dbg, nz(f[0].file), f[0].line);
            else
                printf("ok %d - # SKIP libc debuginfo not installed (%s)\n", ++g_n, dbg);
        }
        /* Build-id given: the file on disk must match it; a missing file is
           replaced by /usr/lib/debug/.build-id/xx/yyyy.debug. */
        if (libc != NULL && libc->build_id_len > 0) {
            struct ms_sym *sb = ms_sym_new();
            check(ms_sym_add_module_build_id(sb, libc->path, libc->bias, libc->lo, libc->hi,
                                             libc->build_id, libc->build_id_len) == 0,
                  "add_module_build_id for libc");
            pc = (unsigned long)fn + 1;
            n = ms_sym_resolve(sb, pc, f, MS_SYM_MAX_FRAMES);
            check(n >= 1 && f[n - 1].function != NULL && strstr(f[n - 1].function, "getpid") != NULL,
                  "build-id matches the file: libc resolves (%s)", nz(n >= 1 ? f[n - 1].function : NULL));
            ms_sym_free(sb);

            char dbg[PATH_MAX];
            int o = snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/");
            for (size_t i = 0; i < libc->build_id_len && o < (int)sizeof dbg - 8; i++)
                o += snprintf(dbg + o, sizeof dbg - o, i == 0 ? "%02x/" : "%02x", libc->build_id[i]);
            snprintf(dbg + o, sizeof dbg - o, ".debug");
            if (access(dbg, R_OK) == 0) {
                sb = ms_sym_new();
                ms_sym_add_module_build_id(sb, "/nonexistent/deleted/libc.so.6", libc->bias, libc->lo,
                                           libc->hi, libc->build_id, libc->build_id_len);
                n = ms_sym_resolve(sb, pc, f, MS_SYM_MAX_FRAMES);
                dump_frames("deleted libc via build-id", pc, f, n);
                check(n >= 1 && f[n - 1].function != NULL && strstr(f[n - 1].function, "getpid") != NULL &&
                      f[0].file != NULL && f[0].line > 0 && streq(f[0].module, "/nonexistent/deleted/libc.so.6"),
                      "missing file + build-id: resolved from the .build-id debug file");
                ms_sym_free(sb);
            } else {
                printf("ok %d - # SKIP libc debuginfo not installed\n", ++g_n);
            }
        }
        if (lh)
            dlclose(lh);
    }

    /* ---- (3) C++ shared library loaded with dlopen ------------------ */
    char sopath[PATH_MAX + 64], stripped[PATH_MAX + 64];
    snprintf(sopath, sizeof sopath, "%s/libsymcxx.so", dir);
    snprintf(stripped, sizeof stripped, "%s/libsymcxx_stripped.so", dir);
    void *h = dlopen(sopath, RTLD_NOW | RTLD_LOCAL);
    check(h != NULL, "dlopen %s (%s)", sopath, h ? "ok" : dlerror());
    if (h == NULL) {
        printf("1..%d\n", g_n);
        return 1;
    }
    int (*thing)(int);
    *(void **)&thing = dlsym(h, "_ZN2ns5thingEi");
    volatile unsigned long *cxx_captured = dlsym(h, "ms_cxx_captured");
    int *cxx_line = dlsym(h, "ms_cxx_line");
    check(thing && cxx_captured && cxx_line, "dlsym of the C++ library symbols");
    if (!(thing && cxx_captured && cxx_line)) {
        printf("1..%d\n", g_n);
        return 1;
    }
    check(thing(41) == 42, "ns::thing(41) == 42");
    unsigned long cxx_pc = *cxx_captured - 1;
    unsigned long thing_entry = (unsigned long)thing;
    static struct modlist ml2;
    collect(&ml2);
    const struct modinfo *cxxmod_p = find_mod(&ml2, "libsymcxx.so");
    check(cxxmod_p != NULL && cxx_pc >= cxxmod_p->lo && cxx_pc < cxxmod_p->hi,
          "libsymcxx.so is in the module list and contains the pc");
    if (cxxmod_p == NULL) {
        printf("1..%d\n", g_n);
        return 1;
    }
    struct modinfo cxxmod = *cxxmod_p;
    int have_stdcxx = 0;
    {
        void *sh = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
        if (sh != NULL) {
            have_stdcxx = 1;
            dlclose(sh);
        }
    }
    check(have_stdcxx, "libstdc++.so.6 got loaded by libsymcxx.so");

    struct ms_sym *s2 = sym_with(&ml2);
    n = ms_sym_resolve(s2, cxx_pc, f, MS_SYM_MAX_FRAMES);
    dump_frames("ns::thing", cxx_pc, f, n);
    check(n == 1, "C++: one frame (got %d)", n);
    check(streq(f[0].function, have_stdcxx ? "ns::thing(int)" : "_ZN2ns5thingEi"),
          "C++: function demangled ns::thing(int) (got %s)", nz(f[0].function));
    check(f[0].mangled != NULL && strncmp(f[0].mangled, "_Z", 2) == 0 &&
          streq(f[0].mangled, "_ZN2ns5thingEi"), "C++: mangled _ZN2ns5thingEi (got %s)", nz(f[0].mangled));
    check(streq(f[0].file, "symbolize_cxx.cc") && f[0].line == *cxx_line,
          "C++: at symbolize_cxx.cc:%d (got %s:%d)", *cxx_line, nz(f[0].file), f[0].line);
    check(streq(f[0].module, cxxmod.path) && f[0].module_offset == cxx_pc - cxxmod.bias,
          "C++: module %s + %#lx", nz(f[0].module), f[0].module_offset);
    n = ms_sym_resolve(s2, thing_entry, f, MS_SYM_MAX_FRAMES);
    check(n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi") && f[0].line > 0,
          "C++: entry point of ns::thing resolves (%s:%d)", nz(f[0].file), f[0].line);
    {
        /* operator new / libstdc++ itself: only .dynsym unless dbgsym is
           installed; the name must still come out. */
        void *sh = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
        void *nw = sh ? dlsym(sh, "_Znwm") : NULL;
        if (nw != NULL) {
            n = ms_sym_resolve(s2, (unsigned long)nw + 1, f, MS_SYM_MAX_FRAMES);
            dump_frames("operator new", (unsigned long)nw + 1, f, n);
            check(n >= 1 && streq(f[n - 1].mangled, "_Znwm") &&
                  streq(f[n - 1].function, "operator new(unsigned long)"),
                  "libstdc++ operator new: mangled _Znwm, function operator new(unsigned long) (got %s / %s)",
                  nz(f[n - 1].mangled), nz(f[n - 1].function));
        } else {
            printf("ok %d - # SKIP libstdc++ not found\n", ++g_n);
        }
        if (sh)
            dlclose(sh);
    }

    /* Stripped copy of the library (same layout): names from .dynsym only. */
    {
        struct ms_sym *ss = ms_sym_new();
        ms_sym_add_module(ss, stripped, cxxmod.bias, cxxmod.lo, cxxmod.hi);
        n = ms_sym_resolve(ss, cxx_pc, f, MS_SYM_MAX_FRAMES);
        dump_frames("stripped", cxx_pc, f, n);
        check(n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi") &&
              streq(f[0].function, "ns::thing(int)") && f[0].file == NULL && f[0].line == 0 &&
              streq(f[0].module, stripped),
              "stripped library: name from .dynsym, no file/line");
        ms_sym_free(ss);
    }

    /* A file on disk of another build than the one mapped: refused. */
    {
        static const unsigned char other_id[20] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
        struct ms_sym *sb = ms_sym_new();
        ms_sym_add_module_build_id(sb, cxxmod.path, cxxmod.bias, cxxmod.lo, cxxmod.hi,
                                   other_id, sizeof other_id);
        n = ms_sym_resolve(sb, cxx_pc, f, MS_SYM_MAX_FRAMES);
        check(n == 1 && streq(f[0].module, cxxmod.path) && f[0].function == NULL && f[0].file == NULL,
              "build-id mismatch: the file on disk is not used (function NULL)");
        ms_sym_free(sb);
        sb = ms_sym_new();
        ms_sym_add_module_build_id(sb, cxxmod.path, cxxmod.bias, cxxmod.lo, cxxmod.hi,
                                   cxxmod.build_id, cxxmod.build_id_len);
        n = ms_sym_resolve(sb, cxx_pc, f, MS_SYM_MAX_FRAMES);
        check(cxxmod.build_id_len > 0 && n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi") && f[0].line == *cxx_line,
              "build-id match: libsymcxx.so resolves");
        ms_sym_free(sb);
    }

    /* Debug info in a separate file found through .gnu_debuglink (same
       layout as libsymcxx.so, not installed under /usr/lib/debug). */
    {
        char dl[PATH_MAX + 64], bad[PATH_MAX + 64];
        snprintf(dl, sizeof dl, "%s/libsymcxx_dl.so", dir);
        snprintf(bad, sizeof bad, "%s/libsymcxx_bad.so", dir);
        struct ms_sym *sl = ms_sym_new();
        ms_sym_add_module(sl, dl, cxxmod.bias, cxxmod.lo, cxxmod.hi);
        n = ms_sym_resolve(sl, cxx_pc, f, MS_SYM_MAX_FRAMES);
        dump_frames("debuglink", cxx_pc, f, n);
        check(n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi") && streq(f[0].file, "symbolize_cxx.cc") &&
              f[0].line == *cxx_line, "debuglink: .debug/libsymcxx_dl.so.debug gives symbolize_cxx.cc:%d", *cxx_line);
        ms_sym_free(sl);
        sl = ms_sym_new();
        ms_sym_add_module(sl, bad, cxxmod.bias, cxxmod.lo, cxxmod.hi);
        n = ms_sym_resolve(sl, cxx_pc, f, MS_SYM_MAX_FRAMES);
        dump_frames("debuglink, wrong build-id", cxx_pc, f, n);
        check(n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi") && f[0].file == NULL && f[0].line == 0,
              "debuglink: a debug file with another build-id is rejected");
        ms_sym_free(sl);
    }

    /* ---- (4) after dlclose, through a new ms_sym -------------------- */
    int cxx_line_val = *cxx_line;
    check(dlclose(h) == 0, "dlclose libsymcxx.so");
    static struct modlist ml3;
    collect(&ml3);
    if (find_mod(&ml3, "libsymcxx.so") == NULL)
        printf("# libsymcxx.so is unmapped now\n");
    else
        printf("# note: libsymcxx.so still mapped after dlclose\n");
    {
        struct ms_sym *s3 = ms_sym_new();
        check(ms_sym_add_module(s3, cxxmod.path, cxxmod.bias, cxxmod.lo, cxxmod.hi) == 0,
              "add the unloaded module to a new ms_sym");
        n = ms_sym_resolve(s3, cxx_pc, f, MS_SYM_MAX_FRAMES);
        dump_frames("after dlclose", cxx_pc, f, n);
        check(n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi") &&
              (streq(f[0].function, "ns::thing(int)") || streq(f[0].function, "_ZN2ns5thingEi")),
              "after dlclose: name (got %s)", nz(f[0].function));
        printf("# after dlclose, function %s demangled\n",
               streq(f[0].function, "ns::thing(int)") ? "is" : "is NOT");
        check(n == 1 && streq(f[0].file, "symbolize_cxx.cc") && f[0].line == cxx_line_val,
              "after dlclose: file:line symbolize_cxx.cc:%d (got %s:%d)", cxx_line_val, nz(f[0].file), f[0].line);
        ms_sym_free(s3);
    }
    /* The old ms_sym (module opened before the dlclose) still answers. */
    n = ms_sym_resolve(s2, cxx_pc + 0, f, MS_SYM_MAX_FRAMES);
    check(n == 1 && streq(f[0].mangled, "_ZN2ns5thingEi"), "old ms_sym still resolves after dlclose");

    /* Overlapping modules: the later one wins. */
    {
        struct ms_sym *so = ms_sym_new();
        ms_sym_add_module(so, "/nonexistent/old-lib.so", cxxmod.bias - 0x1000, cxxmod.lo - 0x1000, cxxmod.hi + 0x1000);
        ms_sym_add_module(so, cxxmod.path, cxxmod.bias, cxxmod.lo, cxxmod.hi);
        n = ms_sym_resolve(so, cxx_pc, f, MS_SYM_MAX_FRAMES);
        check(n == 1 && streq(f[0].module, cxxmod.path) && streq(f[0].mangled, "_ZN2ns5thingEi"),
              "overlap: the module added later wins (%s)", nz(f[0].module));
        n = ms_sym_resolve(so, cxxmod.lo - 0x800, f, MS_SYM_MAX_FRAMES);
        check(n == 1 && streq(f[0].module, "/nonexistent/old-lib.so") && f[0].function == NULL &&
              f[0].module_offset == cxxmod.lo - 0x800 - (cxxmod.bias - 0x1000),
              "overlap: outside the newer range the older module answers");
        /* Adding a module later drops cached answers it shadows. */
        ms_sym_add_module(so, "/nonexistent/new-lib.so", cxxmod.bias, cxxmod.lo, cxxmod.hi);
        n = ms_sym_resolve(so, cxx_pc, f, MS_SYM_MAX_FRAMES);
        check(n == 1 && streq(f[0].module, "/nonexistent/new-lib.so") && f[0].function == NULL,
              "overlap: a module added after a resolution wins too (cache dropped)");
        ms_sym_free(so);
    }

    /* ---- (5) address in no module ----------------------------------- */
    {
        unsigned long bad[] = {0x10UL, 0UL, ~0UL, 0xdead0000UL};
        int all = 1;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (mod_of(&ml, bad[i]) != NULL)
                continue;
            memset(f, 0x5a, sizeof f);
            n = ms_sym_resolve(s, bad[i], f, MS_SYM_MAX_FRAMES);
            if (!(n == 1 && f[0].module == NULL && f[0].function == NULL && f[0].mangled == NULL &&
                  f[0].file == NULL && f[0].dir_file == NULL && f[0].line == 0 && f[0].inlined == 0))
                all = 0;
        }
        check(all, "pc in no module: one frame, module NULL, everything else empty");
    }

    /* ---- (6) module files that cannot be used ----------------------- */
    {
        char notelf[PATH_MAX + 64];
        snprintf(notelf, sizeof notelf, "%s/not_elf.so", dir);
        FILE *fp = fopen(notelf, "w");
        if (fp) {
            fputs("this is not an ELF file\n", fp);
            fclose(fp);
        }
        const char *paths[] = {"/nonexistent/dir/libnope.so", notelf, "/dev/null", "/", ""};
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            struct ms_sym *sx = ms_sym_new();
            unsigned long b = 0x7f0000000000UL + i * 0x100000UL;
            check(ms_sym_add_module(sx, paths[i], b, b, b + 0x10000) == 0, "add unusable module '%s'", paths[i]);
            n = ms_sym_resolve(sx, b + 0x123, f, MS_SYM_MAX_FRAMES);
            check(n == 1 && streq(f[0].module, paths[i]) && f[0].function == NULL &&
                  f[0].file == NULL && f[0].line == 0 && f[0].module_offset == 0x123,
                  "unusable module '%s': module set, function NULL, offset 0x123", paths[i]);
            ms_sym_free(sx);
        }
        unlink(notelf);
    }

    /* ---- API edge cases --------------------------------------------- */
    check(ms_sym_resolve(s, pc, f, 0) == 0 && ms_sym_resolve(s, pc, NULL, 4) == 0 &&
          ms_sym_resolve(NULL, pc, f, 4) == 0, "resolve with max 0 / NULL out / NULL s returns 0");
    check(ms_sym_add_module(s, "x", 0, 10, 10) == -1 && ms_sym_add_module(s, NULL, 0, 0, 10) == -1 &&
          ms_sym_add_module_build_id(s, "x", 0, 0, 10, NULL, 4) == -1,
          "add_module rejects hi <= lo, NULL path, NULL build-id with a length");
    ms_sym_free(NULL);

    /* ---- debuginfod stays off by default ---------------------------- */
    {
        /* A module without local debug info: elfutils would ask debuginfod
           (and create its cache directory) if $DEBUGINFOD_URLS were seen. */
        const struct modinfo *nodbg = NULL;
        for (int i = 1; i < ml2.n && nodbg == NULL; i++) {
            const struct modinfo *mi = &ml2.m[i];
            if (mi->build_id_len == 0 || mi->xhi == 0 || access(mi->path, R_OK) != 0)
                continue;
            char dbg[PATH_MAX];
            int o = snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/");
            for (size_t j = 0; j < mi->build_id_len && o < (int)sizeof dbg - 8; j++)
                o += snprintf(dbg + o, sizeof dbg - o, j == 0 ? "%02x/" : "%02x", mi->build_id[j]);
            snprintf(dbg + o, sizeof dbg - o, ".debug");
            if (access(dbg, F_OK) != 0)
                nodbg = mi;
        }
        if (nodbg != NULL) {
            char cache[PATH_MAX + 64], cmd[2 * PATH_MAX + 64];
            snprintf(cache, sizeof cache, "%s/debuginfod-cache", dir);
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
            if (system(cmd) != 0)
                printf("# could not clean %s\n", cache);
            setenv("DEBUGINFOD_URLS", "http://127.0.0.1:9", 1);
            setenv("DEBUGINFOD_CACHE_PATH", cache, 1);
            struct ms_sym *sd = ms_sym_new();
            ms_sym_add_module(sd, nodbg->path, nodbg->bias, nodbg->lo, nodbg->hi);
            n = ms_sym_resolve(sd, nodbg->xlo + (nodbg->xhi - nodbg->xlo) / 2, f, MS_SYM_MAX_FRAMES);
            const char *env = getenv("DEBUGINFOD_URLS");
            check(n >= 1 && streq(env, "http://127.0.0.1:9") && access(cache, F_OK) != 0,
                  "debuginfod not consulted by default for %s", nodbg->path);
            void *dh = dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_NOLOAD);
            check(dh == NULL, "libdebuginfod was not loaded into the process");
            if (dh != NULL)
                dlclose(dh);
            ms_sym_free(sd);
            sd = ms_sym_new();
            ms_sym_set_debuginfod(sd, 1);
            ms_sym_add_module(sd, nodbg->path, nodbg->bias, nodbg->lo, nodbg->hi);
            ms_sym_resolve(sd, nodbg->xlo + (nodbg->xhi - nodbg->xlo) / 2, f, MS_SYM_MAX_FRAMES);
            printf("# with ms_sym_set_debuginfod(1) the debuginfod cache %s created\n",
                   access(cache, F_OK) == 0 ? "was" : "was NOT (no libdebuginfod?)");
            ms_sym_free(sd);
            unsetenv("DEBUGINFOD_URLS");
            unsetenv("DEBUGINFOD_CACHE_PATH");
            if (system(cmd) != 0)
                printf("# could not clean %s\n", cache);
        } else {
            printf("ok %d - # SKIP no module without debug info\n", ++g_n);
        }
    }

    /* ---- performance: a few thousand distinct pcs ------------------- */
    {
        struct ms_sym *sp = sym_with(&ml2);
        ms_sym_set_debuginfo_path(sp, NULL);
        const struct modinfo *libc = find_mod(&ml2, "libc.so");
        struct timespec t0, t1;
        int count = 0, named = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int k = 0; k < 2; k++) {
            const struct modinfo *mm = k == 0 ? &ml2.m[0] : libc;
            if (mm == NULL)
                continue;
            unsigned long step = (mm->xhi - mm->xlo) / 2000;
            if (step == 0)
                step = 1;
            for (unsigned long a = mm->xlo; a < mm->xhi && count < 4000; a += step) {
                n = ms_sym_resolve(sp, a, f, MS_SYM_MAX_FRAMES);
                count++;
                if (n >= 1 && f[n - 1].function != NULL)
                    named++;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double first = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("# %d distinct pcs (%d with a function name) in %.3f s\n", count, named, first);
        /* timings are printed, never asserted (a shared machine is noisy) */
        check(count >= 2000 && named > count / 2, "many distinct pcs: %d resolved, %d named (%.3f s)", count, named, first);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int k = 0; k < 2; k++) {
            const struct modinfo *mm = k == 0 ? &ml2.m[0] : libc;
            if (mm == NULL)
                continue;
            unsigned long step = (mm->xhi - mm->xlo) / 2000;
            if (step == 0)
                step = 1;
            int c2 = 0;
            for (unsigned long a = mm->xlo; a < mm->xhi && c2 < 4000; a += step, c2++)
                ms_sym_resolve(sp, a, f, MS_SYM_MAX_FRAMES);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double second = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        /* the cache must make the second pass cheaper than the first: an order
         * of magnitude in practice, asserted only as "less" */
        check(second < first, "cached pass cheaper than the first: %.4f s < %.3f s", second, first);
        ms_sym_free(sp);
    }

    ms_sym_free(s2);
    ms_sym_free(s);
    printf("1..%d\n", g_n);
    if (g_fail)
        printf("# %d test(s) failed\n", g_fail);
    return g_fail ? 1 : 0;
}
