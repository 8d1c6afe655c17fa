/*
 * memsleuth - symbolize.c: code address -> source frames, via elfutils.
 *
 * Design:
 *  - Each registered module gets its own Dwfl session, created lazily at
 *    the first pc that lands in it.  Per-module sessions make overlapping
 *    ranges (a library mapped where a dlclose'd one used to be) harmless:
 *    the module table is searched newest first and only the winning
 *    module's session is queried.
 *  - dwfl_report_elf(..., bias, add_p_vaddr = true): with add_p_vaddr the
 *    `base` argument IS the load bias (runtime = base + p_vaddr) for ET_DYN
 *    (PIE executables and shared objects); for ET_EXEC elfutils forces the
 *    bias to 0 whatever is passed.  (With add_p_vaddr = false, `base` would
 *    be the address of the first PT_LOAD segment instead.)
 *  - Symbol names come from our own sorted index of the module's symbol
 *    table (built once per module from dwfl_module_getsym_info), because
 *    dwfl_module_addrinfo scans the whole table on every call (libc with
 *    debug symbols: ~0.2 ms per lookup).  Lookup semantics follow
 *    libdwfl's: closest sized symbol containing pc, else a sizeless label
 *    in the same code section with no sized symbol ending in between.
 *  - Source lines: dwfl_module_getsrc (line table row at pc); inline chain:
 *    dwarf_getscopes at pc, then dwarf_getscopes_die on the innermost scope
 *    to walk the concrete DW_TAG_inlined_subroutine nesting, each level's
 *    DW_AT_call_file/DW_AT_call_line giving the caller's position.
 *  - Separate debug info: build-id directories, then .gnu_debuglink; never
 *    dwfl_standard_find_debuginfo unless debuginfod is allowed, because in
 *    libdw 0.188 it dlopen()s libdebuginfod + libcurl into the process.
 *  - Results are cached per pc in an open-addressing hash table; all strings
 *    live in an interned string pool released by ms_sym_free.
 *
 * Build: gcc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -O2 -c
 *        src/common/symbolize.c ; link with -ldw -lelf -ldl.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT, RTLD_NOLOAD */
#endif
#include "symbolize.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* String pool                                                         */
/* ------------------------------------------------------------------ */

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, cap;
    char data[];
};

#define POOL_CHUNK_SIZE 16384u

struct strset {
    const char **slots; /* interned strings, NULL = empty */
    size_t cap;         /* power of two */
    size_t count;
};

/* ------------------------------------------------------------------ */
/* Module table and pc cache                                           */
/* ------------------------------------------------------------------ */

/* One code symbol of a module, for binary search (libdwfl's own
   dwfl_module_addrinfo scans the whole symbol table on every call). */
struct sym_ent {
    GElf_Addr addr;         /* runtime address */
    GElf_Xword size;
    const char *name;       /* owned by libelf, valid while the Dwfl lives */
    int rank;               /* tie-break: higher is preferred */
    int index;              /* symbol table index (lower preferred) */
};

struct sec_range {
    GElf_Addr lo, hi;       /* runtime range of a code section */
};

struct ms_mod {
    const char *path;       /* interned */
    unsigned long bias, lo, hi;
    const unsigned char *build_id; /* expected build-id (pool), or NULL */
    size_t build_id_len;
    int state;              /* 0 = not opened yet, 1 = usable, -1 = failed */
    Dwfl *dwfl;
    Dwfl_Module *mod;
    struct sym_ent *syms;   /* sorted by (addr, size != 0, rank, -index) */
    GElf_Addr *maxend;      /* maxend[i]: max end of syms[0 .. i-1] */
    size_t nsyms;
    struct sec_range *secs; /* sorted, non-overlapping */
    size_t nsecs;
    int syms_state;         /* 0 = not built, 1 = built (maybe empty) */
};

struct cache_entry {
    unsigned long pc;
    struct ms_sym_frame *frames; /* NULL = empty slot */
    int n;
};

struct ms_sym {
    struct ms_mod *mods;
    size_t nmods, capmods;

    struct cache_entry *cache;
    size_t cache_cap;   /* power of two or 0 */
    size_t cache_count;

    struct pool_chunk *chunks;
    struct strset strs;

    Dwfl_Callbacks callbacks;
    char *debuginfo_path;   /* pointed to by callbacks.debuginfo_path */
    int allow_debuginfod;
};

/* ------------------------------------------------------------------ */
/* String pool implementation                                          */
/* ------------------------------------------------------------------ */

static uint64_t hash_str(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static char *pool_alloc(struct ms_sym *s, size_t n)
{
    struct pool_chunk *c = s->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > POOL_CHUNK_SIZE ? n : POOL_CHUNK_SIZE;
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        if (n > POOL_CHUNK_SIZE && s->chunks != NULL) {
            /* Big one-off: keep the current partially filled chunk first. */
            c->next = s->chunks->next;
            s->chunks->next = c;
        } else {
            c->next = s->chunks;
            s->chunks = c;
        }
    }
    char *r = c->data + c->used;
    c->used += n;
    return r;
}

static int strset_grow(struct strset *set)
{
    size_t ncap = set->cap ? set->cap * 2 : 256;
    const char **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < set->cap; i++) {
        const char *str = set->slots[i];
        if (str == NULL)
            continue;
        size_t j = (size_t)hash_str(str, strlen(str)) & (ncap - 1);
        while (ns[j] != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = str;
    }
    free(set->slots);
    set->slots = ns;
    set->cap = ncap;
    return 0;
}

/* Intern the first `len` bytes of `p`.  Returns NULL if p is NULL or on OOM. */
static const char *intern_n(struct ms_sym *s, const char *p, size_t len)
{
    if (p == NULL)
        return NULL;
    struct strset *set = &s->strs;
    if ((set->count + 1) * 2 > set->cap && strset_grow(set) != 0)
        return NULL;
    size_t j = (size_t)hash_str(p, len) & (set->cap - 1);
    while (set->slots[j] != NULL) {
        const char *q = set->slots[j];
        if (strncmp(q, p, len) == 0 && q[len] == '\0')
            return q;
        j = (j + 1) & (set->cap - 1);
    }
    char *copy = pool_alloc(s, len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, p, len);
    copy[len] = '\0';
    set->slots[j] = copy;
    set->count++;
    return copy;
}

static const char *intern(struct ms_sym *s, const char *p)
{
    return p ? intern_n(s, p, strlen(p)) : NULL;
}

/* ------------------------------------------------------------------ */
/* Demangling through a dynamically found __cxa_demangle               */
/* ------------------------------------------------------------------ */

typedef char *(*cxa_demangle_fn)(const char *, char *, size_t *, int *);

/* Pinned demangler: the object defining it is held open by a dlopen
   reference of ours, so it cannot be unloaded under us. Never released. */
static cxa_demangle_fn g_demangle;

static cxa_demangle_fn fn_from_ptr(void *p)
{
    cxa_demangle_fn f;
    memcpy(&f, &p, sizeof f);
    return f;
}

/* Returns a demangler usable right now, or NULL.  Retried on every call
   while not found (libstdc++ may be dlopen'ed later). */
static cxa_demangle_fn get_demangler(void)
{
    if (g_demangle != NULL)
        return g_demangle;

    void *sym = dlsym(RTLD_DEFAULT, "__cxa_demangle");
    if (sym != NULL) {
        Dl_info info;
        if (dladdr(sym, &info) != 0 && info.dli_fname != NULL &&
            info.dli_fname[0] != '\0') {
            void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
            if (h != NULL) {
                g_demangle = fn_from_ptr(sym);
                return g_demangle;
            }
        }
        /* Could not pin it (e.g. defined by the main program, which is
           never unloaded anyway): use it now, look it up again next time. */
        return fn_from_ptr(sym);
    }

    /* libstdc++ loaded only as a dependency of an RTLD_LOCAL dlopen is not
       in the global scope. RTLD_NOLOAD never loads it; if it is there, our
       handle pins it. */
    void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        return NULL;
    sym = dlsym(h, "__cxa_demangle");
    if (sym == NULL) {
        dlclose(h);
        return NULL;
    }
    g_demangle = fn_from_ptr(sym);
    return g_demangle;
}

/* Demangled (interned) form of `name`, or the interned name itself when it
   is not a C++ mangled name or cannot be demangled. */
static const char *demangled(struct ms_sym *s, const char *name)
{
    if (name == NULL)
        return NULL;
    if (name[0] == '_' && name[1] == 'Z') {
        cxa_demangle_fn dm = get_demangler();
        if (dm != NULL) {
            int status = -1;
            char *d = dm(name, NULL, NULL, &status);
            if (d != NULL && status == 0) {
                const char *r = intern(s, d);
                free(d);
                if (r != NULL)
                    return r;
            } else {
                free(d);
            }
        }
    }
    return intern(s, name);
}

/* Display form of a symbol table name: without an ELF symbol version
   suffix ("shm_open@GLIBC_2.2.5", "memcpy@@GLIBC_2.14"), demangled. */
static const char *symbol_display_name(struct ms_sym *s, const char *raw)
{
    const char *at = strchr(raw, '@');
    if (at == NULL || at == raw)
        return demangled(s, raw);
    const char *base = intern_n(s, raw, (size_t)(at - raw));
    return base != NULL ? demangled(s, base) : NULL;
}

/* ------------------------------------------------------------------ */
/* elfutils callbacks                                                  */
/* ------------------------------------------------------------------ */

/* libdw 0.188's dwfl_standard_find_debuginfo() ends with a debuginfod
   query, and reaching it dlopen()s libdebuginfod (which pulls in libcurl,
   gnutls and ~25 more libraries, running their constructors) even when
   $DEBUGINFOD_URLS is unset.  That must not happen inside the traced
   process, so unless debuginfod is explicitly allowed we use our own
   lookup: by build-id (dwfl_build_id_find_debuginfo, which only searches
   the .build-id directories), then by .gnu_debuglink name along the
   debuginfo path, like elfutils does. */

static const char k_default_debuginfo_path[] = ":.debug:/usr/lib/debug";

static uint32_t g_crc_table[256];
static bool g_crc_ready;

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    if (!g_crc_ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            g_crc_table[i] = c;
        }
        g_crc_ready = true;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = g_crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* CRC-32 of the whole file (the .gnu_debuglink checksum). */
static bool file_crc32(int fd, uint32_t *out)
{
    unsigned char *buf = malloc(65536);
    if (buf == NULL)
        return false;
    uint32_t crc = 0;
    off_t off = 0;
    bool ok = true;
    for (;;) {
        ssize_t k = pread(fd, buf, 65536, off);
        if (k < 0) {
            ok = false;
            break;
        }
        if (k == 0)
            break;
        crc = crc32_update(crc, buf, (size_t)k);
        off += k;
    }
    free(buf);
    *out = crc;
    return ok;
}

/* Is the opened candidate the debug file of `mod`?  Same build-id when the
   module has one, else (if asked) the .gnu_debuglink CRC. */
static bool debug_candidate_ok(Dwfl_Module *mod, int fd, bool check_crc,
                               GElf_Word crc)
{
    const unsigned char *mbits = NULL;
    GElf_Addr vaddr = 0;
    int mlen = dwfl_module_build_id(mod, &mbits, &vaddr);
    if (mlen > 0) {
        Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (e == NULL)
            return false;
        const void *cbits = NULL;
        ssize_t clen = dwelf_elf_gnu_build_id(e, &cbits);
        bool ok = clen == mlen && memcmp(cbits, mbits, (size_t)mlen) == 0;
        elf_end(e);
        return ok;
    }
    if (!check_crc)
        return true;
    uint32_t c;
    return file_crc32(fd, &c) && c == (uint32_t)crc;
}

/* Try "<dir>/<name>"; on success return its fd and the malloc'ed path. */
static int try_debug_candidate(Dwfl_Module *mod, const char *dir,
                               size_t dirlen, const char *name,
                               const char *main_file, bool check_crc,
                               GElf_Word crc, char **path_out)
{
    size_t nl = strlen(name);
    char *cand = malloc(dirlen + 1 + nl + 1);
    if (cand == NULL)
        return -1;
    memcpy(cand, dir, dirlen);
    cand[dirlen] = '/';
    memcpy(cand + dirlen + 1, name, nl + 1);
    if (main_file != NULL && strcmp(cand, main_file) == 0) {
        free(cand);
        return -1;
    }
    int fd = open(cand, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            debug_candidate_ok(mod, fd, check_crc, crc)) {
            *path_out = cand;
            return fd;
        }
        close(fd);
    }
    free(cand);
    return -1;
}

/* .gnu_debuglink search along the debuginfo path, for one spelling of the
   main file's name.  Path elements: "" = the file's directory, relative =
   a subdirectory of it, absolute = that root + the file's directory; a
   leading '+' / '-' turns the CRC check on / off. */
static int find_by_debuglink(Dwfl_Module *mod, const char *debuginfo_path,
                             const char *file, const char *link,
                             GElf_Word crc, char **path_out)
{
    const char *slash = strrchr(file, '/');
    const char *fdir = slash ? file : ".";
    size_t fdirlen = slash ? (size_t)(slash - file) : 1;
    const char *p = debuginfo_path;
    bool defcheck = true;
    if (*p == '+' || *p == '-')
        defcheck = *p++ == '+';
    for (;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool check = defcheck;
        const char *e = p;
        size_t elen = len;
        if (elen > 0 && (*e == '+' || *e == '-')) {
            check = *e == '+';
            e++;
            elen--;
        }
        char *dir = malloc(elen + fdirlen + 2);
        if (dir == NULL)
            return -1;
        size_t dl;
        if (elen == 0) {
            memcpy(dir, fdir, fdirlen);
            dl = fdirlen;
        } else if (e[0] == '/') {
            memcpy(dir, e, elen);
            dl = elen;
            if (fdir[0] == '/') {
                memcpy(dir + dl, fdir, fdirlen);
                dl += fdirlen;
            }
        } else {
            memcpy(dir, fdir, fdirlen);
            dir[fdirlen] = '/';
            memcpy(dir + fdirlen + 1, e, elen);
            dl = fdirlen + 1 + elen;
        }
        int fd = try_debug_candidate(mod, dir, dl, link, file, check, crc,
                                     path_out);
        free(dir);
        if (fd >= 0)
            return fd;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return -1;
}

static int cb_find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
                       Dwarf_Addr base, char **file_name, Elf **elfp)
{
    /* Modules are always reported with their file, so libdwfl does not ask
       for it; the build-id search may end in a debuginfod query. */
    struct ms_sym *s = userdata ? (struct ms_sym *)*userdata : NULL;
    if (s == NULL || !s->allow_debuginfod)
        return -1;
    return dwfl_build_id_find_elf(mod, userdata, modname, base, file_name,
                                  elfp);
}

static int cb_find_debuginfo(Dwfl_Module *mod, void **userdata,
                             const char *modname, Dwarf_Addr base,
                             const char *file_name, const char *debuglink_file,
                             GElf_Word debuglink_crc,
                             char **debuginfo_file_name)
{
    struct ms_sym *s = userdata ? (struct ms_sym *)*userdata : NULL;
    if (s != NULL && s->allow_debuginfod)
        return dwfl_standard_find_debuginfo(mod, userdata, modname, base,
                                            file_name, debuglink_file,
                                            debuglink_crc,
                                            debuginfo_file_name);

    /* 1. /usr/lib/debug/.build-id/xx/yyyy.debug (also dwz alt files). */
    int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base,
                                          file_name, debuglink_file,
                                          debuglink_crc, debuginfo_file_name);
    if (fd >= 0 || file_name == NULL)
        return fd;

    /* 2. By name (not for dwz alt files: only the main module's lookup
       comes with a debuglink). */
    const char *dpath = (s != NULL && s->debuginfo_path != NULL)
                            ? s->debuginfo_path
                            : k_default_debuginfo_path;
    char *local = NULL;
    const char *link = debuglink_file;
    if (link == NULL) {
        /* elfutils also tries "<basename>.debug" */
        const char *b = strrchr(file_name, '/');
        b = b ? b + 1 : file_name;
        size_t bl = strlen(b);
        local = malloc(bl + sizeof ".debug");
        if (local == NULL)
            return -1;
        memcpy(local, b, bl);
        memcpy(local + bl, ".debug", sizeof ".debug");
        link = local;
    }
    char *found = NULL;
    fd = find_by_debuglink(mod, dpath, file_name, link, debuglink_crc,
                           &found);
    if (fd < 0) {
        char *canon = realpath(file_name, NULL);
        if (canon != NULL && strcmp(canon, file_name) != 0)
            fd = find_by_debuglink(mod, dpath, canon, link, debuglink_crc,
                                   &found);
        free(canon);
    }
    free(local);
    if (fd >= 0)
        *debuginfo_file_name = found;
    return fd;
}

/* ------------------------------------------------------------------ */
/* Public: lifetime and configuration                                  */
/* ------------------------------------------------------------------ */

struct ms_sym *ms_sym_new(void)
{
    struct ms_sym *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    elf_version(EV_CURRENT);
    s->callbacks.find_elf = cb_find_elf;
    s->callbacks.find_debuginfo = cb_find_debuginfo;
    s->callbacks.section_address = dwfl_offline_section_address;
    s->callbacks.debuginfo_path = &s->debuginfo_path;
    return s;
}

static void cache_clear(struct ms_sym *s)
{
    for (size_t i = 0; i < s->cache_cap; i++)
        free(s->cache[i].frames);
    free(s->cache);
    s->cache = NULL;
    s->cache_cap = 0;
    s->cache_count = 0;
}

void ms_sym_free(struct ms_sym *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nmods; i++) {
        if (s->mods[i].dwfl != NULL)
            dwfl_end(s->mods[i].dwfl);
        free(s->mods[i].syms);
        free(s->mods[i].maxend);
        free(s->mods[i].secs);
    }
    free(s->mods);
    cache_clear(s);
    free(s->strs.slots);
    struct pool_chunk *c = s->chunks;
    while (c != NULL) {
        struct pool_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(s->debuginfo_path);
    free(s);
}

int ms_sym_set_debuginfo_path(struct ms_sym *s, const char *path)
{
    if (s == NULL)
        return -1;
    char *copy = NULL;
    if (path != NULL) {
        copy = strdup(path);
        if (copy == NULL)
            return -1;
    }
    free(s->debuginfo_path);
    s->debuginfo_path = copy;
    return 0;
}

void ms_sym_set_debuginfod(struct ms_sym *s, int enable)
{
    if (s != NULL)
        s->allow_debuginfod = enable != 0;
}

int ms_sym_add_module_build_id(struct ms_sym *s, const char *path,
                               unsigned long bias, unsigned long lo,
                               unsigned long hi, const void *build_id,
                               size_t build_id_len)
{
    if (s == NULL || path == NULL || hi <= lo ||
        (build_id == NULL && build_id_len != 0))
        return -1;
    if (s->nmods == s->capmods) {
        size_t ncap = s->capmods ? s->capmods * 2 : 16;
        struct ms_mod *nm = realloc(s->mods, ncap * sizeof *nm);
        if (nm == NULL)
            return -1;
        s->mods = nm;
        s->capmods = ncap;
    }
    const char *p = intern(s, path);
    if (p == NULL)
        return -1;
    unsigned char *id = NULL;
    if (build_id_len != 0) {
        id = (unsigned char *)pool_alloc(s, build_id_len);
        if (id == NULL)
            return -1;
        memcpy(id, build_id, build_id_len);
    }
    struct ms_mod *m = &s->mods[s->nmods++];
    memset(m, 0, sizeof *m);
    m->path = p;
    m->bias = bias;
    m->lo = lo;
    m->hi = hi;
    m->build_id = id;
    m->build_id_len = build_id_len;
    /* A new module may shadow pcs already resolved: drop the cache. */
    if (s->cache_count != 0)
        cache_clear(s);
    return 0;
}

int ms_sym_add_module(struct ms_sym *s, const char *path, unsigned long bias,
                      unsigned long lo, unsigned long hi)
{
    return ms_sym_add_module_build_id(s, path, bias, lo, hi, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Module lookup and opening                                           */
/* ------------------------------------------------------------------ */

static struct ms_mod *find_module(struct ms_sym *s, unsigned long pc)
{
    for (size_t i = s->nmods; i-- > 0;) {
        struct ms_mod *m = &s->mods[i];
        if (pc >= m->lo && pc < m->hi)
            return m;
    }
    return NULL;
}

/* Report `file` as the ELF image of module `m` in a new Dwfl session.
   With an expected build-id, a file with another (or no) build-id is
   refused.  Returns the module, or NULL. */
static Dwfl_Module *report_file(struct ms_sym *s, struct ms_mod *m,
                                const char *file, Dwfl **dwflp)
{
    /* Only regular files: opening a FIFO or a device could block. */
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    Dwfl *d = dwfl_begin(&s->callbacks);
    if (d == NULL)
        return NULL;
    dwfl_report_begin(d);
    /* add_p_vaddr = true: `base` is the load bias (ignored for ET_EXEC). */
    Dwfl_Module *mod = dwfl_report_elf(d, m->path, file, -1,
                                       (GElf_Addr)m->bias, true);
    if (mod == NULL || dwfl_report_end(d, NULL, NULL) != 0) {
        dwfl_end(d);
        return NULL;
    }
    if (m->build_id_len != 0) {
        const unsigned char *bits = NULL;
        GElf_Addr vaddr = 0;
        int n = dwfl_module_build_id(mod, &bits, &vaddr);
        if (n <= 0 || (size_t)n != m->build_id_len ||
            memcmp(bits, m->build_id, m->build_id_len) != 0) {
            dwfl_end(d);
            return NULL;
        }
    }
    void **ud = NULL;
    if (dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL) !=
            NULL && ud != NULL)
        *ud = s;
    *dwflp = d;
    return mod;
}

/* Module file missing or of another build: with a known build-id, use the
   separate debug file "<root>/.build-id/xx/yyyy.debug" (it keeps program
   headers, symbol table and DWARF) for each absolute root of the
   debuginfo path. */
static Dwfl_Module *report_by_build_id(struct ms_sym *s, struct ms_mod *m,
                                       Dwfl **dwflp)
{
    if (m->build_id_len < 2)
        return NULL;
    const char *p = s->debuginfo_path ? s->debuginfo_path
                                      : k_default_debuginfo_path;
    if (*p == '+' || *p == '-')
        p++;
    size_t hexlen = m->build_id_len * 2;
    for (;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *e = p;
        if (len > 0 && (*e == '+' || *e == '-')) {
            e++;
            len--;
        }
        if (len > 0 && e[0] == '/') {
            /* root + "/.build-id/" + xx + "/" + rest + ".debug" */
            char *f = malloc(len + 11 + hexlen + 1 + 6 + 1);
            if (f == NULL)
                return NULL;
            memcpy(f, e, len);
            size_t o = len;
            memcpy(f + o, "/.build-id/", 11);
            o += 11;
            static const char hex[] = "0123456789abcdef";
            for (size_t i = 0; i < m->build_id_len; i++) {
                f[o++] = hex[m->build_id[i] >> 4];
                f[o++] = hex[m->build_id[i] & 15];
                if (i == 0)
                    f[o++] = '/';
            }
            memcpy(f + o, ".debug", 7);
            Dwfl_Module *mod = report_file(s, m, f, dwflp);
            free(f);
            if (mod != NULL)
                return mod;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return NULL;
}

static bool open_module(struct ms_sym *s, struct ms_mod *m)
{
    if (m->state != 0)
        return m->state > 0;
    m->state = -1;
    Dwfl *d = NULL;
    Dwfl_Module *mod = report_file(s, m, m->path, &d);
    if (mod == NULL)
        mod = report_by_build_id(s, m, &d);
    if (mod == NULL)
        return false;
    m->dwfl = d;
    m->mod = mod;
    m->state = 1;
    return true;
}

/* ------------------------------------------------------------------ */
/* Symbol table index                                                  */
/* ------------------------------------------------------------------ */

/* Preference among aliases at one address (higher wins): real functions
   over untyped labels, then fewer leading underscores ("getpid" over
   "__getpid", "_dl_find_object" over "__GI__dl_find_object"), then binding
   GLOBAL > WEAK > LOCAL.  Remaining ties go to the lower symbol table
   index. */
static int sym_rank(const char *name, int type, int bind)
{
    int us = 0;
    while (name[us] == '_' && us < 9)
        us++;
    int b = bind == STB_GLOBAL ? 3 : bind == STB_WEAK ? 2
          : bind == STB_LOCAL ? 1 : 0;
    return (type == STT_NOTYPE ? 0 : 1000) + (9 - us) * 10 + b;
}

static int sym_cmp(const void *a, const void *b)
{
    const struct sym_ent *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    int xs = x->size != 0, ys = y->size != 0;
    if (xs != ys)
        return xs - ys;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    /* lower index = preferred = sorted last */
    return x->index > y->index ? -1 : x->index < y->index ? 1 : 0;
}

static int sec_cmp(const void *a, const void *b)
{
    const struct sec_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* Code sections of the main file, as runtime ranges: a sizeless symbol
   (assembly label) only covers addresses of its own code section. */
static void build_sections(struct ms_mod *m)
{
    Dwarf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(m->mod, &bias);
    size_t nsec = 0;
    if (elf == NULL || elf_getshdrnum(elf, &nsec) != 0 || nsec == 0)
        return;
    struct sec_range *v = malloc(nsec * sizeof *v);
    if (v == NULL)
        return;
    size_t k = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL && k < nsec) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL || !(sh.sh_flags & SHF_ALLOC) ||
            !(sh.sh_flags & SHF_EXECINSTR) || sh.sh_size == 0)
            continue;
        v[k].lo = sh.sh_addr + bias;
        v[k].hi = v[k].lo + sh.sh_size;
        k++;
    }
    if (k == 0) {
        free(v);
        return;
    }
    qsort(v, k, sizeof *v, sec_cmp);
    m->secs = v;
    m->nsecs = k;
}

/* Index + 1 of the section containing addr, 0 if none. */
static size_t section_of(const struct ms_mod *m, GElf_Addr addr)
{
    size_t lo = 0, hi = m->nsecs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->secs[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || addr >= m->secs[lo - 1].hi)
        return 0;
    return lo;
}

/* Collect the code symbols of .symtab (main or debug file), the
   minidebuginfo symtab and/or .dynsym, as libdwfl merges them. */
static void build_symidx(struct ms_mod *m)
{
    m->syms_state = 1;
    build_sections(m);
    int n = dwfl_module_getsymtab(m->mod);
    if (n <= 1)
        return;
    struct sym_ent *v = malloc((size_t)n * sizeof *v);
    if (v == NULL)
        return;
    size_t k = 0;
    for (int i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr addr = 0;
        GElf_Word shndx = SHN_UNDEF;
        const char *name = dwfl_module_getsym_info(m->mod, i, &sym, &addr,
                                                   &shndx, NULL, NULL);
        if (name == NULL || name[0] == '\0' || name[0] == '$')
            continue;
        if (shndx == SHN_UNDEF || shndx == SHN_ABS || shndx == SHN_COMMON)
            continue;
        int type = GELF_ST_TYPE(sym.st_info);
        if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE)
            continue;
        v[k].addr = addr;
        v[k].size = sym.st_size;
        v[k].name = name;
        v[k].rank = sym_rank(name, type, GELF_ST_BIND(sym.st_info));
        v[k].index = i;
        k++;
    }
    if (k == 0) {
        free(v);
        return;
    }
    qsort(v, k, sizeof *v, sym_cmp);
    /* maxend[i] = highest end address of the symbols sorted before i. */
    GElf_Addr *maxend = malloc(k * sizeof *maxend);
    if (maxend == NULL) {
        free(v);
        return;
    }
    GElf_Addr me = 0;
    for (size_t i = 0; i < k; i++) {
        maxend[i] = me;
        if (v[i].addr + v[i].size > me)
            me = v[i].addr + v[i].size;
    }
    m->syms = v;
    m->maxend = maxend;
    m->nsyms = k;
}

/* Symbol containing `addr`, like libdwfl's dwfl_module_addrsym: the
   closest-starting sized symbol whose range covers addr; failing that, the
   nearest sizeless label at or below addr, if it is in the same section
   and no sized symbol ends between it and addr.  NULL if none. */
static const char *symidx_lookup(struct ms_mod *m, GElf_Addr addr)
{
    if (m->syms_state == 0)
        build_symidx(m);
    if (m->nsyms == 0)
        return NULL;
    /* Last entry with entry.addr <= addr. */
    size_t lo = 0, hi = m->nsyms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->syms[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    size_t idx = lo - 1;
    /* Walk down (bounded) for a sized symbol covering addr; the sorted
       order puts the preferred alias last in a group of equal addresses,
       so the first covering symbol met is the closest-starting, preferred
       one. */
    for (size_t j = idx + 1, steps = 0; j-- > 0 && steps < 256; steps++) {
        const struct sym_ent *e = &m->syms[j];
        if (e->size != 0 && addr - e->addr < e->size)
            return e->name;
        if (m->maxend[j] <= addr)
            break; /* nothing sorted before j reaches addr */
    }
    /* Sizeless fallback: the nearest symbols at or below addr must be
       sizeless labels (sized ones sort last in their group, and a sized
       symbol there ends before addr and excludes the labels). */
    if (m->syms[idx].size != 0)
        return NULL;
    const struct sym_ent *e = &m->syms[idx];
    size_t g = idx; /* first of its equal-address group */
    while (g > 0 && m->syms[g - 1].addr == e->addr)
        g--;
    if (m->maxend[g] > e->addr)
        return NULL; /* inside a sized symbol that ends before addr */
    size_t sec = section_of(m, e->addr);
    if (sec == 0 || sec != section_of(m, addr))
        return NULL;
    return e->name;
}

/* ------------------------------------------------------------------ */
/* DWARF helpers                                                       */
/* ------------------------------------------------------------------ */

static const char *die_string(Dwarf_Die *die, unsigned int at)
{
    Dwarf_Attribute a;
    return dwarf_formstring(dwarf_attr_integrate(die, at, &a));
}

static const char *die_linkage_name(Dwarf_Die *die)
{
    const char *n = die_string(die, DW_AT_linkage_name);
    if (n == NULL)
        n = die_string(die, DW_AT_MIPS_linkage_name);
    return n;
}

/* Fill function/mangled of `f` from a subprogram / inlined_subroutine DIE
   (following DW_AT_abstract_origin / DW_AT_specification). */
static void frame_names_from_die(struct ms_sym *s, Dwarf_Die *die,
                                 struct ms_sym_frame *f)
{
    const char *link = die_linkage_name(die);
    const char *name = die_string(die, DW_AT_name);
    if (link != NULL) {
        f->mangled = intern(s, link);
        f->function = demangled(s, link);
    } else if (name != NULL) {
        f->mangled = intern(s, name);
        f->function = f->mangled;
    }
}

/* Set file/dir_file of `f` from a source path as found in DWARF; a relative
   path is joined with the CU's DW_AT_comp_dir when known. */
static void frame_set_file(struct ms_sym *s, struct ms_sym_frame *f,
                           const char *path, Dwarf_Die *cudie)
{
    f->file = NULL;
    f->dir_file = NULL;
    if (path == NULL || path[0] == '\0')
        return;
    const char *slash = strrchr(path, '/');
    f->file = intern(s, slash ? slash + 1 : path);
    if (path[0] == '/') {
        f->dir_file = intern(s, path);
        return;
    }
    const char *comp = NULL;
    if (cudie != NULL) {
        Dwarf_Attribute a;
        comp = dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &a));
    }
    if (comp == NULL || comp[0] == '\0')
        return;
    size_t lc = strlen(comp), lp = strlen(path);
    char *buf = malloc(lc + 1 + lp + 1);
    if (buf == NULL)
        return;
    memcpy(buf, comp, lc);
    size_t o = lc;
    if (lc > 0 && comp[lc - 1] != '/')
        buf[o++] = '/';
    memcpy(buf + o, path, lp + 1);
    f->dir_file = intern(s, buf);
    free(buf);
}

/* DW_AT_call_file / DW_AT_call_line of an inlined_subroutine DIE. */
static void call_site(Dwarf_Die *die, const char **filep, int *linep,
                      Dwarf_Die *cudie_out, bool *have_cu)
{
    *filep = NULL;
    *linep = 0;
    *have_cu = false;
    Dwarf_Attribute a;
    Dwarf_Word v;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) == 0 &&
        v <= (Dwarf_Word)INT32_MAX)
        *linep = (int)v;
    if (dwarf_diecu(die, cudie_out, NULL, NULL) == NULL)
        return;
    *have_cu = true;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &v) != 0)
        return;
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(cudie_out, &files, &nfiles) != 0 || v >= nfiles)
        return;
    *filep = dwarf_filesrc(files, (size_t)v, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Resolution                                                          */
/* ------------------------------------------------------------------ */

/* Resolve `pc` into `fr` (MS_SYM_MAX_FRAMES entries). Returns >= 1. */
static int resolve_uncached(struct ms_sym *s, unsigned long pc,
                            struct ms_sym_frame *fr)
{
    struct ms_sym_frame base;
    memset(&base, 0, sizeof base);

    struct ms_mod *m = find_module(s, pc);
    if (m == NULL) {
        fr[0] = base;
        return 1;
    }
    base.module = m->path;
    base.module_offset = pc - m->bias;
    if (!open_module(s, m)) {
        fr[0] = base;
        return 1;
    }
    Dwfl_Module *mod = m->mod;
    Dwarf_Addr addr = (Dwarf_Addr)pc;

    /* Symbol table (.symtab from the file or its debug file, else
       .dynsym). */
    const char *symname = symidx_lookup(m, addr);

    /* Line table row for pc: location in the innermost (inlined) function. */
    const char *cur_file = NULL;
    int cur_line = 0;
    Dwarf_Die cur_cu_mem;
    Dwarf_Die *cur_cu = NULL;
    Dwfl_Line *ln = dwfl_module_getsrc(mod, addr);
    if (ln != NULL) {
        int lineno = 0;
        cur_file = dwfl_lineinfo(ln, NULL, &lineno, NULL, NULL, NULL);
        cur_line = lineno > 0 ? lineno : 0;
        Dwarf_Die *lcu = dwfl_linecu(ln);
        if (lcu != NULL) {
            cur_cu_mem = *lcu;
            cur_cu = &cur_cu_mem;
        }
    }

    /* Scopes at pc: inlined_subroutine chain up to the subprogram. */
    Dwarf_Addr dwbias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, addr, &dwbias);
    Dwarf_Die *scopes = NULL;
    int nscopes = 0;
    if (cudie != NULL) {
        nscopes = dwarf_getscopes(cudie, addr - dwbias, &scopes);
        if (nscopes < 0)
            nscopes = 0;
    }

    /* dwarf_getscopes continues past the innermost inlined instance with
       the scopes of its *abstract* definition (useful for variable lookup,
       not here).  When pc is in an inlined instance, take the concrete
       nesting of the innermost scope instead, as eu-addr2line -i does. */
    Dwarf_Die *chain = NULL;
    int nchain = 0;
    for (int i = 0; i < nscopes; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_subprogram)
            break;
        if (tag == DW_TAG_inlined_subroutine) {
            nchain = dwarf_getscopes_die(&scopes[0], &chain);
            if (nchain <= 0) {
                free(chain);
                chain = NULL;
                nchain = 0;
            }
            break;
        }
    }
    Dwarf_Die *sc = nchain > 0 ? chain : scopes;
    int nsc = nchain > 0 ? nchain : nscopes;

    int nf = 0;
    Dwarf_Die *subprog = NULL;
    for (int i = 0; i < nsc; i++) {
        int tag = dwarf_tag(&sc[i]);
        if (tag == DW_TAG_subprogram) {
            subprog = &sc[i];
            break;
        }
        if (tag != DW_TAG_inlined_subroutine)
            continue;
        if (nf < MS_SYM_MAX_FRAMES - 1) {
            struct ms_sym_frame *f = &fr[nf++];
            *f = base;
            f->inlined = 1;
            frame_names_from_die(s, &sc[i], f);
            frame_set_file(s, f, cur_file, cur_cu);
            f->line = cur_line;
        }
        /* The caller's location is this inline instance's call site. */
        bool have_cu = false;
        call_site(&sc[i], &cur_file, &cur_line, &cur_cu_mem, &have_cu);
        cur_cu = have_cu ? &cur_cu_mem : NULL;
    }

    /* The real (out-of-line) function.  `mangled`: the raw symbol table
       name (what valgrind-style suppressions match), else the DWARF
       linkage name.  `function`: the symbol table name (demangled, without
       an "@VERSION" suffix) like valgrind shows it, except for compiler
       clones ("foo.constprop.0", "foo.cold"), where the DWARF name of the
       source function is shown instead. */
    struct ms_sym_frame *f = &fr[nf++];
    *f = base;
    if (subprog != NULL)
        frame_names_from_die(s, subprog, f);
    if (symname != NULL) {
        f->mangled = intern(s, symname);
        size_t baselen = strcspn(symname, "@");
        bool clone = memchr(symname, '.', baselen) != NULL;
        if (f->function == NULL || !clone)
            f->function = symbol_display_name(s, symname);
    }
    frame_set_file(s, f, cur_file, cur_cu);
    f->line = cur_line;

    free(chain);
    free(scopes);
    return nf;
}

static struct cache_entry *cache_lookup(struct ms_sym *s, unsigned long pc)
{
    if (s->cache_cap == 0)
        return NULL;
    size_t mask = s->cache_cap - 1;
    size_t j = (size_t)((pc * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (s->cache[j].frames != NULL) {
        if (s->cache[j].pc == pc)
            return &s->cache[j];
        j = (j + 1) & mask;
    }
    return NULL;
}

static int cache_grow(struct ms_sym *s)
{
    size_t ncap = s->cache_cap ? s->cache_cap * 2 : 1024;
    struct cache_entry *nc = calloc(ncap, sizeof *nc);
    if (nc == NULL)
        return -1;
    for (size_t i = 0; i < s->cache_cap; i++) {
        struct cache_entry *e = &s->cache[i];
        if (e->frames == NULL)
            continue;
        size_t j = (size_t)((e->pc * 0x9E3779B97F4A7C15ull) >> 17) & (ncap - 1);
        while (nc[j].frames != NULL)
            j = (j + 1) & (ncap - 1);
        nc[j] = *e;
    }
    free(s->cache);
    s->cache = nc;
    s->cache_cap = ncap;
    return 0;
}

static struct cache_entry *cache_insert(struct ms_sym *s, unsigned long pc,
                                        const struct ms_sym_frame *fr, int n)
{
    if ((s->cache_count + 1) * 2 > s->cache_cap && cache_grow(s) != 0)
        return NULL;
    struct ms_sym_frame *copy = malloc((size_t)n * sizeof *copy);
    if (copy == NULL)
        return NULL;
    memcpy(copy, fr, (size_t)n * sizeof *copy);
    size_t mask = s->cache_cap - 1;
    size_t j = (size_t)((pc * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (s->cache[j].frames != NULL)
        j = (j + 1) & mask;
    s->cache[j].pc = pc;
    s->cache[j].frames = copy;
    s->cache[j].n = n;
    s->cache_count++;
    return &s->cache[j];
}

int ms_sym_resolve(struct ms_sym *s, unsigned long pc,
                   struct ms_sym_frame *out, int max)
{
    if (s == NULL || out == NULL || max < 1)
        return 0;
    const struct ms_sym_frame *src;
    int n;
    struct ms_sym_frame tmp[MS_SYM_MAX_FRAMES];
    struct cache_entry *e = cache_lookup(s, pc);
    if (e != NULL) {
        src = e->frames;
        n = e->n;
    } else {
        n = resolve_uncached(s, pc, tmp);
        e = cache_insert(s, pc, tmp, n); /* on OOM: answer uncached */
        src = e != NULL ? e->frames : tmp;
    }
    if (n > max)
        n = max;
    memcpy(out, src, (size_t)n * sizeof *out);
    return n;
}

/* ------------------------------------------------------------------ */
/* Data symbols (the heap graph's roots)                               */
/* ------------------------------------------------------------------ */

static const char *section_name(Elf *elf, size_t shndx)
{
    size_t shstr;
    Elf_Scn *scn = elf ? elf_getscn(elf, shndx) : NULL;
    GElf_Shdr sh;
    if (scn == NULL || gelf_getshdr(scn, &sh) == NULL || elf_getshdrstrndx(elf, &shstr) != 0)
        return NULL;
    return elf_strptr(elf, shstr, sh.sh_name);
}

/* tls: look for STT_TLS symbols by their offset in the module's TLS block */
static int data_lookup(struct ms_sym *s, struct ms_mod *m, unsigned long addr, int tls,
                       struct ms_sym_data *out)
{
    memset(out, 0, sizeof *out);
    out->module = m->path;
    if (!open_module(s, m))
        return 1;
    int n = dwfl_module_getsymtab(m->mod);
    const char *best = NULL;
    GElf_Addr best_start = 0;
    GElf_Xword best_size = 0;
    GElf_Word best_shndx = 0;
    Elf *best_elf = NULL;
    for (int i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr a = 0;
        GElf_Word shndx = SHN_UNDEF;
        Elf *elf = NULL;
        Dwarf_Addr bias = 0;
        const char *name = dwfl_module_getsym_info(m->mod, i, &sym, &a, &shndx, &elf, &bias);
        if (name == NULL || name[0] == '\0' || shndx == SHN_UNDEF || sym.st_size == 0)
            continue;
        int type = GELF_ST_TYPE(sym.st_info);
        if (tls ? type != STT_TLS : (type != STT_OBJECT && type != STT_NOTYPE && type != STT_COMMON))
            continue;
        GElf_Addr start = tls ? sym.st_value : a;
        if (addr < start || addr - start >= sym.st_size)
            continue;
        /* the innermost (smallest) covering symbol; a global over a local alias */
        if (best == NULL || sym.st_size < best_size ||
            (sym.st_size == best_size && GELF_ST_BIND(sym.st_info) == STB_GLOBAL)) {
            best = name;
            best_start = start;
            best_size = sym.st_size;
            best_shndx = shndx;
            best_elf = elf;
        }
    }
    if (best != NULL) {
        out->name = intern(s, demangled(s, best));
        out->start = best_start;
        out->size = best_size;
        out->section = best_elf ? section_name(best_elf, best_shndx) : NULL;
        if (out->section)
            out->section = intern(s, out->section);
        return 1;
    }
    if (tls)
        return 1;
    /* no symbol: at least the section */
    Dwarf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(m->mod, &bias);
    Elf_Scn *scn = NULL;
    size_t shstr;
    if (elf == NULL || elf_getshdrstrndx(elf, &shstr) != 0)
        return 1;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL || !(sh.sh_flags & SHF_ALLOC) || (sh.sh_flags & SHF_TLS))
            continue;
        if (addr >= sh.sh_addr + bias && addr - (sh.sh_addr + bias) < sh.sh_size) {
            const char *sn = elf_strptr(elf, shstr, sh.sh_name);
            out->section = sn ? intern(s, sn) : NULL;
            out->start = sh.sh_addr + bias;
            out->size = sh.sh_size;
            break;
        }
    }
    return 1;
}

int ms_sym_data(struct ms_sym *s, unsigned long addr, struct ms_sym_data *out)
{
    memset(out, 0, sizeof *out);
    struct ms_mod *m = s ? find_module(s, addr) : NULL;
    if (m == NULL)
        return 0;
    return data_lookup(s, m, addr, 0, out);
}

int ms_sym_tls(struct ms_sym *s, unsigned long module_addr, unsigned long offset,
               struct ms_sym_data *out)
{
    memset(out, 0, sizeof *out);
    struct ms_mod *m = s ? find_module(s, module_addr) : NULL;
    if (m == NULL)
        return 0;
    return data_lookup(s, m, offset, 1, out);
}
