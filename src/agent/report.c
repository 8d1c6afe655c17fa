/* report.c - loss records, the text report (valgrind's layout, so scripts
 * that parse valgrind keep working) and the JSON report (DESIGN.md schema).
 *
 * Runs on the reporting thread with the world stopped; its malloc calls
 * (libdw inside the symbolizer) are served from the agent's region.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "../common/safe_open.h"
#include "../common/supp.h"
#include "../common/symbolize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MS_VERSION "0.1.0"

/* ---- free errors, recorded by the hooks ---------------------------------- */
struct err_ctx {
    int kind;
    uint32_t at_stack, alloc_stack, free_stack;
    uintptr_t addr;
    int have_block, alloc_fn;
    uint64_t size;
    const char *dealloc_fn;
    uint64_t count;
};
#define MAX_ERR_CTX 4096
static struct err_ctx *errs;
static int nerrs;
static uint64_t err_totals[2];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

void ms_error_record(int kind, uint32_t at_stack, uintptr_t addr, int have_block, uint64_t size,
                     uint32_t alloc_stack, uint32_t free_stack, int alloc_fn, const char *dealloc_fn)
{
    pthread_mutex_lock(&err_lock);
    err_totals[kind]++;
    if (!errs)
        errs = ms_region_alloc(MAX_ERR_CTX * sizeof *errs);
    if (errs) {
        int i;
        for (i = 0; i < nerrs; i++)
            if (errs[i].kind == kind && errs[i].at_stack == at_stack &&
                errs[i].alloc_stack == alloc_stack)
                break;
        if (i < nerrs) {
            errs[i].count++;
        } else if (nerrs < MAX_ERR_CTX) {
            struct err_ctx *e = &errs[nerrs++];
            e->kind = kind;
            e->at_stack = at_stack;
            e->alloc_stack = alloc_stack;
            e->free_stack = free_stack;
            e->addr = addr;
            e->have_block = have_block;
            e->size = size;
            e->alloc_fn = alloc_fn;
            e->dealloc_fn = dealloc_fn;
            e->count = 1;
        }
    }
    pthread_mutex_unlock(&err_lock);
}

void ms_errors_reset(void)
{
    pthread_mutex_init(&err_lock, NULL);
    nerrs = 0;
    err_totals[0] = err_totals[1] = 0;
}

/* ---- output helpers ------------------------------------------------------ */
void ms_out_flush(struct ms_out *o)
{
    size_t off = 0;
    while (off < o->len && !o->failed) {
        ssize_t w = write(o->fd, o->buf + off, o->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->failed = 1;
            o->err = w < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)w;
    }
    o->len = 0;
}

void ms_out_write(struct ms_out *o, const char *s, size_t n)
{
    while (n) {
        size_t room = sizeof o->buf - o->len;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
        if (o->len == sizeof o->buf)
            ms_out_flush(o);
    }
}

void ms_out_printf(struct ms_out *o, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ms_out_write(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void ms_out_json_str(struct ms_out *o, const char *s)
{
    ms_out_write(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            ms_out_write(o, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            ms_out_write(o, esc, 6);
        } else {
            ms_out_write(o, (const char *)p, 1);
        }
    }
    ms_out_write(o, "\"", 1);
}

char *ms_fmt_commas(char *buf, uint64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = 0;
    return buf;
}

void ms_expand_path(char *out, size_t cap, const char *pat)
{
    size_t j = 0;
    for (const char *p = pat; *p && j + 1 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            j += (size_t)snprintf(out + j, cap - j, "%d", (int)ms_pid);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            out[j++] = '%';
            p++;
        } else {
            out[j++] = *p;
        }
        if (j >= cap)
            j = cap - 1;
    }
    out[j] = 0;
}

/* ---- modules and symbols ------------------------------------------------- */
struct ms_modrec {
    char path[512];
    uintptr_t bias, lo, hi;
};
extern struct ms_modrec *ms_mod_history MS_HIDDEN;
extern int ms_mod_history_n MS_HIDDEN;

static int elf_bias(const char *path, uintptr_t map_lo, uint64_t map_off, uintptr_t *bias)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char eh[64];
    int ok = -1;
    if (pread(fd, eh, sizeof eh, 0) == (ssize_t)sizeof eh && !memcmp(eh, "\177ELF", 4) && eh[4] == 2) {
        uint16_t type;
        uint64_t phoff;
        uint16_t phentsize, phnum;
        memcpy(&type, eh + 16, 2);
        memcpy(&phoff, eh + 32, 8);
        memcpy(&phentsize, eh + 54, 2);
        memcpy(&phnum, eh + 56, 2);
        if (type == 2) { /* ET_EXEC */
            *bias = 0;
            ok = 0;
        } else {
            for (int i = 0; i < phnum && i < 64; i++) {
                unsigned char ph[56];
                if (pread(fd, ph, sizeof ph, (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof ph)
                    break;
                uint32_t pt;
                uint64_t off, vaddr;
                memcpy(&pt, ph, 4);
                memcpy(&off, ph + 8, 8);
                memcpy(&vaddr, ph + 16, 8);
                if (pt != 1) /* PT_LOAD */
                    continue;
                /* the mapping at file offset map_off holds this segment */
                if ((off & ~4095ULL) == map_off) {
                    *bias = map_lo - (vaddr & ~4095ULL);
                    ok = 0;
                    break;
                }
            }
        }
    }
    close(fd);
    return ok;
}

static struct ms_sym *build_symbolizer(void)
{
    struct ms_sym *sym = ms_sym_new();
    if (!sym)
        return NULL;
    for (int i = 0; i < ms_mod_history_n; i++)
        ms_sym_add_module(sym, ms_mod_history[i].path, ms_mod_history[i].bias,
                          ms_mod_history[i].lo, ms_mod_history[i].hi);
    int fd = open("/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sym;
    static char text[1 << 20];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof text - 1 && (got = read(fd, text + n, sizeof text - 1 - n)) > 0)
        n += (size_t)got;
    close(fd);
    text[n] = 0;
    char cur[512] = "";
    uintptr_t cur_lo = 0, cur_hi = 0, cur_bias = 0;
    int have_bias = 0;
    for (char *line = text; line && *line;) {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = 0;
        unsigned long lo, hi, off;
        char perms[8], path[512];
        path[0] = 0;
        int f = sscanf(line, "%lx-%lx %7s %lx %*s %*s %511[^\n]", &lo, &hi, perms, &off, path);
        if (f >= 4 && path[0] == '/') {
            if (strcmp(path, cur) != 0) {
                if (cur[0] && have_bias)
                    ms_sym_add_module(sym, cur, cur_bias, cur_lo, cur_hi);
                snprintf(cur, sizeof cur, "%s", path);
                cur_lo = lo;
                have_bias = 0;
            }
            cur_hi = hi;
            if (!have_bias && elf_bias(path, lo, off, &cur_bias) == 0)
                have_bias = 1;
        }
        line = eol ? eol + 1 : NULL;
    }
    if (cur[0] && have_bias)
        ms_sym_add_module(sym, cur, cur_bias, cur_lo, cur_hi);
    return sym;
}

/* glibc's dynamic thread vector of a live thread is pointed to one word
 * past its start (dtv[-1] holds its length): an interior pointer that is
 * glibc's design, not a leak.  valgrind's default.supp plays this role. */
static const char default_supp[] =
    "{\n   memsleuth-glibc-dtv\n   Memcheck:Leak\n   match-leak-kinds: possible\n"
    "   ...\n   fun:allocate_dtv\n}\n"
    "{\n   memsleuth-glibc-dtv-resize\n   Memcheck:Leak\n   match-leak-kinds: possible\n"
    "   ...\n   fun:_dl_resize_dtv\n}\n";

/* ---- loss records -------------------------------------------------------- */
struct rec {
    int kind;
    uint32_t stack;
    int fn;
    uint64_t bytes, blocks, ind_bytes;
    uint64_t heur_bytes[4], heur_blocks[4];
    int suppressed;
};

static const char *kind_words[] = { "definitely lost", "indirectly lost", "possibly lost", "still reachable" };
static const char *kind_json[] = { "definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable" };

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    uint64_t tx = x->bytes + x->ind_bytes, ty = y->bytes + y->ind_bytes;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    if (x->blocks != y->blocks)
        return x->blocks < y->blocks ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    return x->fn < y->fn ? -1 : x->fn > y->fn;
}

/* group blocks into loss records by (kind, stack, allocation function),
 * sorted as valgrind does */
/* skip_raw: blocks of libmemsleuth_pool's own memory (poolstate.c) are left
 * out, counted in raw_bytes and raw_blocks: the pool verdicts stand for them */
static struct rec *group(const struct ms_leak_result *res, size_t *nrec_out, int skip_raw, uint64_t *raw_bytes,
                         uint64_t *raw_blocks)
{
    size_t nb = res->nblocks, nrec = 0;
    size_t hcap = 64;
    while (hcap < nb * 2 + 64)
        hcap *= 2;
    uint32_t *hidx = ms_region_alloc(hcap * sizeof *hidx);
    struct rec *recs = ms_region_alloc((nb + 1) * sizeof *recs);
    if (!hidx || !recs)
        return NULL;
    for (size_t i = 0; i < nb; i++) {
        const struct ms_block *b = &res->blocks[i];
        if (skip_raw && ms_ps_is_raw(b->addr)) {
            *raw_bytes += b->size;
            (*raw_blocks)++;
            continue;
        }
        int kind = b->state;
        /* the allocation function is part of the stack, as valgrind's first
         * frame: malloc and calloc blocks never share a record (with
         * --num-callers=1 their stacks are the same, empty) */
        uint64_t h = ((uint64_t)b->stack * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)kind * 0x51ed27ULL ^
                     (uint64_t)b->fn * 0x2545f491ULL;
        size_t s = (h >> 20) & (hcap - 1);
        while (hidx[s]) {
            struct rec *r = &recs[hidx[s] - 1];
            if (r->kind == kind && r->stack == b->stack && r->fn == b->fn)
                break;
            s = (s + 1) & (hcap - 1);
        }
        if (!hidx[s]) {
            recs[nrec].kind = kind;
            recs[nrec].stack = b->stack;
            recs[nrec].fn = b->fn;
            hidx[s] = (uint32_t)++nrec;
        }
        struct rec *r = &recs[hidx[s] - 1];
        r->bytes += b->size;
        r->blocks++;
        if (kind == MS_DEFINITE)
            r->ind_bytes += res->indirect_bytes[i];
        if (kind == MS_REACHABLE && b->heur) {
            r->heur_bytes[b->heur] += b->size;
            r->heur_blocks[b->heur]++;
        }
    }
    ms_region_release(hidx, hcap * sizeof *hidx);
    qsort(recs, nrec, sizeof *recs, rec_cmp);
    *nrec_out = nrec;
    return recs;
}

/* frames of one stack, symbolized and with inlined frames expanded */
#define MAXF 512
struct frames {
    int n;
    uintptr_t pc[MAXF];
    struct ms_sym_frame f[MAXF];
};

static void resolve_stack(struct ms_sym *sym, uint32_t stack, struct frames *out)
{
    const uintptr_t *pcs;
    int n = ms_stack_get(stack, &pcs);
    out->n = 0;
    for (int i = 0; i < n && out->n < MAXF; i++) {
        struct ms_sym_frame tmp[16];
        int k = 0;
        if (sym)
            k = ms_sym_resolve(sym, pcs[i] - 1, tmp, 16);
        if (k <= 0) {
            memset(&tmp[0], 0, sizeof tmp[0]);
            k = 1;
        }
        for (int j = 0; j < k && out->n < MAXF; j++) {
            out->pc[out->n] = pcs[i];
            out->f[out->n++] = tmp[j];
        }
    }
}

/* "__libc_start_main@@GLIBC_2.34": the symbol version is not part of the name */
static int fn_len(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s ? (int)(at - s) : (int)strlen(s);
}

/* pc is a return address (every frame the hooks capture is a caller): as
 * valgrind, the address printed is the one symbolized, pc - 1, inside the
 * call instruction */
/* valgrind's names for the code that calls main (--show-below-main=no,
 * its default: m_debuginfo's get_fnname_kind) */
static int below_main(const char *fn)
{
    int n = fn_len(fn);
    static const char *const names[] = { "__libc_start_main", "__libc_start_call_main", "generic_start_main" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int k = (int)strlen(names[i]);
        if (!strncmp(fn, names[i], (size_t)k) && (n == k || fn[k] == '.'))
            return 1;
    }
    return 0;
}

static void print_frame(struct ms_out *o, const char *pfx, int first, uintptr_t pc,
                        const struct ms_sym_frame *f)
{
    const char *w = first ? "at" : "by";
    ms_out_printf(o, "%s    %s 0x%lX: ", pfx, w, (unsigned long)(pc ? pc - 1 : 0));
    if (f->function && below_main(f->function))
        ms_out_printf(o, "(below main)");
    else if (f->function)
        ms_out_printf(o, "%.*s", fn_len(f->function), f->function);
    else if (f->module)
        ms_out_printf(o, "??? [%s+0x%lx]", f->module, f->module_offset);
    else
        ms_out_printf(o, "???");
    if (f->file && f->line)
        ms_out_printf(o, " (%s:%d)\n", f->file, f->line);
    else if (f->module)
        ms_out_printf(o, " (in %s)\n", f->module);
    else
        ms_out_printf(o, "\n");
}

/* the agent's own allocation functions, for the address of the "at" line
 * (valgrind's is an instruction of its replacement function) */
extern void *_Znwm(size_t), *_Znam(size_t), *_ZnwmRKSt9nothrow_t(size_t, const void *),
    *_ZnamRKSt9nothrow_t(size_t, const void *), *_ZnwmSt11align_val_t(size_t, size_t),
    *_ZnamSt11align_val_t(size_t, size_t);
extern void _ZdlPv(void *), _ZdaPv(void *), _ZdlPvm(void *, size_t), _ZdaPvm(void *, size_t);
static const struct {
    const char *name;
    const void *fn;
} hook_fns[] = {
    { "malloc", (const void *)malloc },
    { "calloc", (const void *)calloc },
    { "realloc", (const void *)realloc },
    { "reallocarray", (const void *)reallocarray },
    { "posix_memalign", (const void *)posix_memalign },
    { "aligned_alloc", (const void *)aligned_alloc },
    { "memalign", (const void *)memalign },
    { "valloc", (const void *)valloc },
    { "pvalloc", (const void *)pvalloc },
    { "free", (const void *)free },
    { "operator new(unsigned long)", (const void *)_Znwm },
    { "operator new[](unsigned long)", (const void *)_Znam },
    { "operator new(unsigned long, std::nothrow_t const&)", (const void *)_ZnwmRKSt9nothrow_t },
    { "operator new[](unsigned long, std::nothrow_t const&)", (const void *)_ZnamRKSt9nothrow_t },
    { "operator new(unsigned long, std::align_val_t)", (const void *)_ZnwmSt11align_val_t },
    { "operator new[](unsigned long, std::align_val_t)", (const void *)_ZnamSt11align_val_t },
    { "operator delete(void*)", (const void *)_ZdlPv },
    { "operator delete[](void*)", (const void *)_ZdaPv },
    { "operator delete(void*, unsigned long)", (const void *)_ZdlPvm },
    { "operator delete[](void*, unsigned long)", (const void *)_ZdaPvm },
};

/* where the function of that name starts in the agent; the start of the
 * agent for another name, or if the name resolves elsewhere (a library
 * preloaded before the agent) */
static uintptr_t hook_addr(const char *name)
{
    for (size_t i = 0; i < sizeof hook_fns / sizeof hook_fns[0]; i++)
        if (!strcmp(hook_fns[i].name, name)) {
            uintptr_t a = (uintptr_t)hook_fns[i].fn;
            return a - ms_self_lo < ms_self_hi - ms_self_lo ? a : ms_self_lo;
        }
    return ms_self_lo;
}

static void print_alloc_fn(struct ms_out *o, const char *pfx, const char *name)
{
    ms_out_printf(o, "%s    at 0x%lX: %s (in %s)\n", pfx, (unsigned long)hook_addr(name), name, ms_self_path);
}

/* as valgrind prints a stack: up to main, or to the first frame below it
 * (printed "(below main)") when main has no name */
static void print_frames(struct ms_out *o, const char *pfx, const struct frames *fr, int first)
{
    for (int i = 0; i < fr->n; i++) {
        print_frame(o, pfx, first && i == 0, fr->pc[i], &fr->f[i]);
        const char *fn = fr->f[i].function;
        if (fn && ((fn_len(fn) == 4 && !strncmp(fn, "main", 4)) || below_main(fn)))
            break;
    }
}

static void json_frames(struct ms_out *o, const struct frames *fr)
{
    ms_out_write(o, "[", 1);
    for (int i = 0; i < fr->n; i++) {
        const struct ms_sym_frame *f = &fr->f[i];
        ms_out_printf(o, "%s{\"address\": \"0x%lx\", \"function\": ", i ? ", " : "", (unsigned long)fr->pc[i]);
        if (f->function) {
            char name[1024];
            snprintf(name, sizeof name, "%.*s", fn_len(f->function), f->function);
            ms_out_json_str(o, name);
        } else {
            ms_out_write(o, "null", 4);
        }
        ms_out_write(o, ", \"file\": ", 10);
        if (f->file)
            ms_out_json_str(o, f->file);
        else
            ms_out_write(o, "null", 4);
        ms_out_printf(o, ", \"line\": %d, \"module\": ", f->line);
        if (f->module)
            ms_out_json_str(o, f->module);
        else
            ms_out_write(o, "null", 4);
        ms_out_printf(o, ", \"offset\": \"0x%lx\"%s}", f->module_offset, f->inlined ? ", \"inlined\": true" : "");
    }
    ms_out_write(o, "]", 1);
}

/* suppression frames: the allocation function first, as valgrind has it */
static const char *const fn_mangled[] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc", "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
};

static int supp_frames(const struct frames *fr, int fn, struct ms_supp_frame *sf, int cap)
{
    int n = 0;
    if (fn >= 0 && fn < MS_FN__COUNT) {
        sf[n].fn = ms_alloc_fn_names[fn];
        sf[n].fn_mangled = fn_mangled[fn];
        sf[n].obj = ms_self_path;
        sf[n].file = NULL;
        sf[n].line = 0;
        n++;
    }
    for (int i = 0; i < fr->n && n < cap; i++, n++) {
        sf[n].fn = fr->f[i].function;
        sf[n].fn_mangled = fr->f[i].mangled;
        sf[n].obj = fr->f[i].module;
        sf[n].file = fr->f[i].file;
        sf[n].line = fr->f[i].line;
    }
    return n;
}

static int open_out(const char *pattern, int append, char *path, size_t cap)
{
    ms_expand_path(path, cap, pattern);
    /* 0600, never through a planted symlink, never into another user's file:
     * a shared directory such as /tmp must not let one user clobber another's
     * (src/common/safe_open.h) */
    int fd = ms_open_private(path, append);
    if (fd < 0) {
        ms_warn("cannot write '%s': %s; the report goes to stderr", path, ms_open_private_why(fd, errno));
        return -1;
    }
    return fd;
}

/* ---- descriptors ----------------------------------------------------------- */
struct fdinfo {
    int fd;
    char path[256];
    uint32_t stack;
};

int ms_fd_internal(int fd) MS_HIDDEN;
static int list_fds(struct fdinfo *out, int cap, int skip1, int skip2)
{
    int dfd = open("/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    int n = 0;
    char buf[4096];
    for (;;) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            int fd = atoi(d->d_name);
            if (fd == dfd || fd == skip1 || fd == skip2 || n >= cap || ms_fd_internal(fd))
                continue;
            char lp[64];
            snprintf(lp, sizeof lp, "/proc/thread-self/fd/%d", fd);
            ssize_t k = readlink(lp, out[n].path, sizeof out[n].path - 1);
            out[n].path[k > 0 ? k : 0] = 0;
            out[n].fd = fd;
            out[n].stack = ms_fd_site(fd);
            n++;
        }
    }
    close(dfd);
    /* highest first, as valgrind lists them */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1].fd < out[j].fd; j--) {
            struct fdinfo t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}
extern const char *ms_fd_fn_name(int fd) MS_HIDDEN;
extern int ms_fd_internal(int fd) MS_HIDDEN;

/* ---- the report ------------------------------------------------------------ */
int ms_report(const struct ms_leak_result *res, int how, int status)
{
    (void)how;
    char pfx[32];
    snprintf(pfx, sizeof pfx, "==%d==", (int)ms_pid);

    struct ms_out *o = ms_region_alloc(sizeof *o);
    struct ms_out *j = ms_region_alloc(sizeof *j);
    struct frames *fr = ms_region_alloc(sizeof *fr);
    if (!o || !j || !fr)
        return 0;
    o->fd = 2;
    snprintf(o->name, sizeof o->name, "stderr");
    if (ms_opt.log_file[0]) {
        int fd = open_out(ms_opt.log_file, 1, o->name, sizeof o->name);
        if (fd >= 0)
            o->fd = fd;
        else
            snprintf(o->name, sizeof o->name, "stderr");
    }
    j->fd = -1;
    if (ms_opt.json_file[0])
        j->fd = open_out(ms_opt.json_file, 0, j->name, sizeof j->name);

    /* descriptors first: the symbolizer opens files of its own */
    struct fdinfo *fds = NULL;
    int nfds = 0;
    if (ms_opt.track_fds) {
        fds = ms_region_alloc(4096 * sizeof *fds);
        if (fds)
            nfds = list_fds(fds, 4096, o->fd > 2 ? o->fd : -1, j->fd);
    }
    struct ms_sym *sym = build_symbolizer();

    /* suppressions: ours (like valgrind's default.supp), then the user's */
    struct ms_supp_set *supp = ms_supp_set_new();
    if (supp) {
        char err[512];
        if (ms_supp_load_buffer(supp, "<memsleuth default suppressions>", default_supp, strlen(default_supp),
                                err, sizeof err) < 0)
            ms_warn("%s", err);
    }
    if (supp && ms_opt.supp_files[0]) {
        char list[sizeof ms_opt.supp_files];
        memcpy(list, ms_opt.supp_files, sizeof list);
        for (char *s = list, *nl; s && *s; s = nl) {
            nl = strchr(s, '\n');
            if (nl)
                *nl++ = 0;
            char err[512];
            if (ms_supp_load_file(supp, s, err, sizeof err) < 0)
                ms_warn("%s", err);
        }
    }

    /* libmemsleuth_pool handed its events to the agent: its own heap blocks
     * leave the loss records, and each pool tree never destroyed gets one
     * verdict instead (at its root's creation site, with its subtree) */
    int pools = 0, pools_busy = 0;
    uint64_t raw_bytes = 0, raw_blocks = 0;
    struct ms_ps_leak *pleaks = NULL;
    size_t npleaks = 0;
    if (ms_trace_pools_seen()) {
        if (ms_trace_pool_trylock() == 0)
            pools = 1;
        else
            pools_busy = 1;
    }
    size_t nb = res->nblocks, nrec = 0;
    struct rec *recs = group(res, &nrec, pools, &raw_bytes, &raw_blocks);
    if (pools) {
        npleaks = ms_ps_leaks(&pleaks);
        ms_trace_pool_unlock();
    }
    uint64_t pl_bytes = 0, pl_blocks = 0, pl_allocs = 0;
    for (size_t i = 0; i < npleaks; i++) {
        pl_bytes += pleaks[i].bytes;
        pl_blocks += pleaks[i].blocks;
        pl_allocs += pleaks[i].allocators;
    }
    uint64_t sum_bytes[4] = { 0 }, sum_blocks[4] = { 0 };
    double est_bytes[4] = { 0 }, est_blocks[4] = { 0 }; /* --sample-rate: the whole heap's */
    uint64_t heur_bytes[4] = { 0 }, heur_blocks[4] = { 0 };
    if (!recs)
        return 0;

    /* suppress, and total up */
    uint64_t supp_bytes = 0, supp_blocks = 0;
    struct ms_supp_frame *sf = ms_region_alloc((MAXF + 1) * sizeof *sf);
    size_t nshown_total = 0;
    for (size_t i = 0; i < nrec; i++) {
        struct rec *r = &recs[i];
        if (supp && sf) {
            resolve_stack(sym, r->stack, fr);
            int nsf = supp_frames(fr, r->fn, sf, MAXF + 1);
            struct ms_supp_entry *e = ms_supp_match_leak(supp, (enum ms_leak_kind)r->kind, sf, nsf);
            if (e) {
                r->suppressed = 1;
                ms_supp_count(e, r->bytes, r->blocks);
                supp_bytes += r->bytes;
                supp_blocks += r->blocks;
                continue;
            }
        }
        sum_bytes[r->kind] += r->bytes;
        sum_blocks[r->kind] += r->blocks;
        if (ms_opt.sample_rate && r->blocks) {
            /* a recorded block of s bytes stands for 1 / (1 - exp(-s/rate))
             * blocks like it (the record's mean size stands for s) */
            double mean = (double)r->bytes / (double)r->blocks;
            double w = 1.0 / -__builtin_expm1(-mean / (double)ms_opt.sample_rate);
            est_bytes[r->kind] += w * (double)r->bytes;
            est_blocks[r->kind] += w * (double)r->blocks;
        }
        for (int k = 1; k < 4; k++) {
            heur_bytes[k] += r->heur_bytes[k];
            heur_blocks[k] += r->heur_blocks[k];
        }
        nshown_total++;
    }

    /* the verdicts go into the trace too: every kind (the analyzer finds
     * reachable growth with them), each saying whether this report showed it */
    extern void ms_trace_leak(int kind, uint32_t stack, uint64_t bytes, uint64_t blocks, uint64_t ind,
                              int suppressed, int shown) MS_HIDDEN;
    for (size_t i = 0; i < nrec; i++)
        if (ms_opt.leak_check)
            ms_trace_leak(recs[i].kind, recs[i].stack, recs[i].bytes, recs[i].blocks, recs[i].ind_bytes,
                          recs[i].suppressed, (ms_opt.show_kinds & (1u << recs[i].kind)) != 0);

    uint64_t allocs, frees, abytes;
    ms_table_totals(&allocs, &frees, &abytes);
    frees += res->freed_at_exit; /* as valgrind's count, after __libc_freeres */
    char c1[32], c2[32], c3[32], c4[32], c5[32], c6[32];
    uint64_t inuse_b = 0, inuse_n = nb;
    for (size_t i = 0; i < nb; i++)
        inuse_b += res->blocks[i].size;

    /* free errors first, as valgrind prints them when they happen */
    for (int i = 0; i < nerrs; i++) {
        struct err_ctx *e = &errs[i];
        if (e->kind == MS_ERR_MISMATCHED_FREE)
            ms_out_printf(o, "%s Mismatched free() / delete / delete []\n", pfx);
        else
            ms_out_printf(o, "%s Invalid free() / delete / delete[] / realloc()\n", pfx);
        print_alloc_fn(o, pfx, e->dealloc_fn ? e->dealloc_fn : "free");
        resolve_stack(sym, e->at_stack, fr);
        print_frames(o, pfx, fr, 0);
        if (e->have_block) {
            if (e->kind == MS_ERR_MISMATCHED_FREE) {
                ms_out_printf(o, "%s  Address 0x%lx is 0 bytes inside a block of size %s alloc'd\n", pfx,
                              (unsigned long)e->addr, ms_fmt_commas(c1, e->size));
            } else {
                ms_out_printf(o, "%s  Address 0x%lx is 0 bytes inside a block of size %s free'd\n", pfx,
                              (unsigned long)e->addr, ms_fmt_commas(c1, e->size));
                if (e->free_stack) {
                    print_alloc_fn(o, pfx, "free");
                    resolve_stack(sym, e->free_stack, fr);
                    print_frames(o, pfx, fr, 0);
                } else {
                    ms_out_printf(o, "%s    (where it was freed: rerun with --keep-stacktraces=alloc-and-free)\n", pfx);
                }
                ms_out_printf(o, "%s  Block was alloc'd at\n", pfx);
            }
            if (e->alloc_fn >= 0 && e->alloc_fn < MS_FN__COUNT)
                print_alloc_fn(o, pfx, ms_alloc_fn_names[e->alloc_fn]);
            resolve_stack(sym, e->alloc_stack, fr);
            print_frames(o, pfx, fr, e->alloc_fn < 0);
        } else {
            ms_out_printf(o, "%s  Address 0x%lx is not the start of a block the program allocated\n", pfx,
                          (unsigned long)e->addr);
        }
        if (e->count > 1)
            ms_out_printf(o, "%s  (this error happened %llu times)\n", pfx, (unsigned long long)e->count);
        ms_out_printf(o, "%s \n", pfx);
    }

    /* descriptors */
    if (ms_opt.track_fds) {
        int nstd = 0;
        for (int i = 0; i < nfds; i++)
            nstd += fds[i].fd <= 2;
        ms_out_printf(o, "%s FILE DESCRIPTORS: %d open (%d std) at exit.\n", pfx, nfds, nstd);
        for (int i = 0; i < nfds; i++) {
            ms_out_printf(o, "%s Open file descriptor %d: %s\n", pfx, fds[i].fd, fds[i].path);
            if (fds[i].stack) {
                print_alloc_fn(o, pfx, ms_fd_fn_name(fds[i].fd));
                resolve_stack(sym, fds[i].stack, fr);
                print_frames(o, pfx, fr, 0);
            } else {
                ms_out_printf(o, "%s    <inherited from parent>\n", pfx);
            }
            ms_out_printf(o, "%s \n", pfx);
        }
    }

    ms_out_printf(o, "%s \n%s HEAP SUMMARY:\n", pfx, pfx);
    ms_out_printf(o, "%s     in use at exit: %s bytes in %s blocks\n", pfx, ms_fmt_commas(c1, inuse_b),
                  ms_fmt_commas(c2, inuse_n));
    ms_out_printf(o, "%s   total heap usage: %s allocs, %s frees, %s bytes allocated\n", pfx,
                  ms_fmt_commas(c1, allocs), ms_fmt_commas(c2, frees), ms_fmt_commas(c3, abytes));
    ms_out_printf(o, "%s \n", pfx);

    int leak_errors = 0;
    if (ms_opt.leak_check == 2) {
        size_t num = 0;
        for (size_t i = 0; i < nrec; i++) {
            struct rec *r = &recs[i];
            if (r->suppressed)
                continue;
            num++;
            if (ms_opt.error_kinds & (1u << r->kind))
                leak_errors++;
            if (!(ms_opt.show_kinds & (1u << r->kind)))
                continue;
            if (r->kind == MS_DEFINITE && r->ind_bytes)
                ms_out_printf(o, "%s %s (%s direct, %s indirect) bytes in %s blocks are %s in loss record %zu of %zu\n",
                              pfx, ms_fmt_commas(c1, r->bytes + r->ind_bytes), ms_fmt_commas(c2, r->bytes),
                              ms_fmt_commas(c3, r->ind_bytes), ms_fmt_commas(c4, r->blocks),
                              kind_words[r->kind], num, nshown_total);
            else
                ms_out_printf(o, "%s %s bytes in %s blocks are %s in loss record %zu of %zu\n", pfx,
                              ms_fmt_commas(c1, r->bytes), ms_fmt_commas(c2, r->blocks), kind_words[r->kind], num,
                              nshown_total);
            print_alloc_fn(o, pfx, r->fn < MS_FN__COUNT ? ms_alloc_fn_names[r->fn] : "malloc");
            resolve_stack(sym, r->stack, fr);
            print_frames(o, pfx, fr, 0);
            if (!fr->n && ms_opt.num_callers > 1) /* 1: the allocation function's line alone, as valgrind */
                ms_out_printf(o, "%s    (stack unknown: allocated while the agent was busy)\n", pfx);
            ms_out_printf(o, "%s \n", pfx);
            if (ms_opt.gen_suppressions && sf) {
                char sbuf[16384];
                int nsf = supp_frames(fr, r->fn, sf, MAXF + 1);
                int k = ms_supp_format_leak(sbuf, sizeof sbuf, (enum ms_leak_kind)r->kind, sf, nsf);
                if (k > 0)
                    ms_out_write(o, sbuf, (size_t)k < sizeof sbuf ? (size_t)k : sizeof sbuf - 1);
            }
        }
        for (size_t i = 0; i < npleaks; i++) {
            const struct ms_ps_leak *l = &pleaks[i];
            ms_out_printf(o, "%s %s bytes in %s blocks are in pool tree %s%s%s (%s allocator%s), never destroyed, "
                             "pool record %zu of %zu\n",
                          pfx, ms_fmt_commas(c1, l->bytes), ms_fmt_commas(c2, l->blocks), l->named ? "\"" : "",
                          l->named ? l->name : "(unnamed)", l->named ? "\"" : "", ms_fmt_commas(c3, l->allocators),
                          l->allocators == 1 ? "" : "s", i + 1, npleaks);
            ms_out_printf(o, "%s    created at %s:%d\n%s \n", pfx, l->file ? l->file : "?", l->line, pfx);
        }
    } else {
        for (size_t i = 0; i < nrec; i++)
            if (!recs[i].suppressed && (ms_opt.error_kinds & (1u << recs[i].kind)))
                leak_errors++;
    }
    if (ms_opt.leak_check >= 1 && inuse_n == 0) {
        ms_out_printf(o, "%s All heap blocks were freed -- no leaks are possible\n%s \n", pfx, pfx);
    } else if (ms_opt.leak_check >= 1) {
        ms_out_printf(o, "%s LEAK SUMMARY:\n", pfx);
        ms_out_printf(o, "%s    definitely lost: %s bytes in %s blocks\n", pfx, ms_fmt_commas(c1, sum_bytes[0]),
                      ms_fmt_commas(c2, sum_blocks[0]));
        ms_out_printf(o, "%s    indirectly lost: %s bytes in %s blocks\n", pfx, ms_fmt_commas(c1, sum_bytes[1]),
                      ms_fmt_commas(c2, sum_blocks[1]));
        ms_out_printf(o, "%s      possibly lost: %s bytes in %s blocks\n", pfx, ms_fmt_commas(c1, sum_bytes[2]),
                      ms_fmt_commas(c2, sum_blocks[2]));
        ms_out_printf(o, "%s    still reachable: %s bytes in %s blocks\n", pfx, ms_fmt_commas(c1, sum_bytes[3]),
                      ms_fmt_commas(c2, sum_blocks[3]));
        if (heur_blocks[1] + heur_blocks[2] + heur_blocks[3]) {
            static const char *hn[] = { "", "stdstring", "length64", "newarray" };
            ms_out_printf(o, "%s                       of which reachable via heuristic:\n", pfx);
            for (int k = 1; k < 4; k++)
                if (heur_blocks[k])
                    ms_out_printf(o, "%s                         %-19s: %s bytes in %s blocks\n", pfx, hn[k],
                                  ms_fmt_commas(c1, heur_bytes[k]), ms_fmt_commas(c2, heur_blocks[k]));
        }
        ms_out_printf(o, "%s         suppressed: %s bytes in %s blocks\n", pfx, ms_fmt_commas(c1, supp_bytes),
                      ms_fmt_commas(c2, supp_blocks));
        if (pools)
            ms_out_printf(o, "%s      in pool trees never destroyed: %s bytes in %s blocks, %s tree%s (%s allocator%s)\n"
                             "%s        (the pool library's own %s bytes in %s heap blocks are not in the kinds above)\n",
                          pfx, ms_fmt_commas(c1, pl_bytes), ms_fmt_commas(c2, pl_blocks),
                          ms_fmt_commas(c3, (uint64_t)npleaks), npleaks == 1 ? "" : "s", ms_fmt_commas(c4, pl_allocs),
                          pl_allocs == 1 ? "" : "s", pfx, ms_fmt_commas(c5, raw_bytes), ms_fmt_commas(c6, raw_blocks));
        else if (pools_busy)
            ms_out_printf(o, "%s      (pool verdicts left out: the pool library was busy at exit)\n", pfx);
        if (ms_opt.sample_rate) {
            static const char *kn[] = { "definitely lost", "indirectly lost", "  possibly lost", "still reachable" };
            ms_out_printf(o, "%s Sampled run (--sample-rate=%llu): the figures above count the blocks that were\n"
                             "%s recorded, about one per %llu bytes allocated, chosen at random; a block of s\n"
                             "%s bytes was recorded with probability 1-exp(-s/%llu).  The whole heap, estimated:\n",
                          pfx, ms_opt.sample_rate, pfx, ms_opt.sample_rate, pfx, ms_opt.sample_rate);
            for (int k = 0; k < 4; k++)
                ms_out_printf(o, "%s    %s: ~%s bytes in ~%s blocks\n", pfx, kn[k],
                              ms_fmt_commas(c1, (uint64_t)(est_bytes[k] + 0.5)),
                              ms_fmt_commas(c2, (uint64_t)(est_blocks[k] + 0.5)));
            ms_out_printf(o, "%s Verdicts are statistical: the heap's other blocks count as roots, so a lost block\n"
                             "%s that an unrecorded one points to is called reachable.\n",
                          pfx, pfx);
        }
        if (ms_opt.leak_check == 1)
            ms_out_printf(o, "%s Rerun with --leak-check=full to see details of leaked memory\n", pfx);
        else if (!(ms_opt.show_kinds & (1u << MS_REACHABLE)) && sum_blocks[3])
            ms_out_printf(o, "%s Reachable blocks (those to which a pointer was found) are not shown.\n"
                             "%s To see them, rerun with: --leak-check=full --show-leak-kinds=all\n",
                          pfx, pfx);
        ms_out_printf(o, "%s \n", pfx);
    }
    if (supp && ms_opt.supp_files[0]) {
        unsigned long cnt, sb, sbl;
        for (struct ms_supp_entry *e = ms_supp_next_used(supp, NULL, &cnt, &sb, &sbl); e;
             e = ms_supp_next_used(supp, e, &cnt, &sb, &sbl))
            ms_out_printf(o, "%s used_suppression: %lu %s (%lu bytes in %lu blocks)\n", pfx, cnt,
                          ms_supp_entry_name(e), sb, sbl);
    }
    uint64_t ferr = err_totals[0] + err_totals[1];
    ms_out_printf(o, "%s ERROR SUMMARY: %llu errors from %d contexts (suppressed: 0 from 0)\n", pfx,
                  (unsigned long long)(ferr + (uint64_t)leak_errors), nerrs + leak_errors);
    ms_out_flush(o);
    if (o->fd > 2)
        close(o->fd);
    if (o->failed && o->fd != 2)
        ms_warn("cannot write the report to '%s': %s", o->name, strerror(o->err));

    /* JSON */
    if (j->fd >= 0) {
        char exe[1024];
        ssize_t k = readlink("/proc/thread-self/exe", exe, sizeof exe - 1);
        exe[k > 0 ? k : 0] = 0;
        ms_out_printf(j, "{\"tool\": \"memsleuth\", \"version\": \"%s\", \"pid\": %d, \"ppid\": %d, \"exe\": ",
                      MS_VERSION, (int)ms_pid, (int)ms_ppid);
        ms_out_json_str(j, exe);
        ms_out_printf(j, ",\n \"exit_status\": %d,%s\n \"summary\": {", status,
                      how == MS_EXIT_SIGNAL ? " \"killed_by_signal\": true," : "");
        for (int kk = 0; kk < 4; kk++)
            ms_out_printf(j, "\"%s\": {\"bytes\": %llu, \"blocks\": %llu}, ", kind_json[kk],
                          (unsigned long long)sum_bytes[kk], (unsigned long long)sum_blocks[kk]);
        ms_out_printf(j, "\"suppressed\": {\"bytes\": %llu, \"blocks\": %llu}},\n",
                      (unsigned long long)supp_bytes, (unsigned long long)supp_blocks);
        if (ms_opt.sample_rate) {
            ms_out_printf(j, " \"sampling\": {\"rate_bytes\": %llu, \"estimated\": {", ms_opt.sample_rate);
            for (int kk = 0; kk < 4; kk++)
                ms_out_printf(j, "%s\"%s\": {\"bytes\": %.0f, \"blocks\": %.0f}", kk ? ", " : "", kind_json[kk],
                              est_bytes[kk], est_blocks[kk]);
            ms_out_printf(j, "}},\n");
        }
        ms_out_printf(j, " \"heap\": {\"in_use_bytes\": %llu, \"in_use_blocks\": %llu, \"allocs\": %llu, "
                         "\"frees\": %llu, \"bytes_allocated\": %llu},\n",
                      (unsigned long long)inuse_b, (unsigned long long)inuse_n, (unsigned long long)allocs,
                      (unsigned long long)frees, (unsigned long long)abytes);
        ms_out_write(j, " \"records\": [", 13);
        int first = 1;
        for (size_t i = 0; i < nrec; i++) {
            struct rec *r = &recs[i];
            if (r->suppressed || !(ms_opt.show_kinds & (1u << r->kind)))
                continue;
            resolve_stack(sym, r->stack, fr);
            ms_out_printf(j, "%s\n  {\"kind\": \"%s\", \"bytes\": %llu, \"blocks\": %llu, \"indirect_bytes\": %llu, "
                             "\"allocator\": ",
                          first ? "" : ",", kind_json[r->kind], (unsigned long long)r->bytes,
                          (unsigned long long)r->blocks, (unsigned long long)r->ind_bytes);
            ms_out_json_str(j, r->fn < MS_FN__COUNT ? ms_alloc_fn_names[r->fn] : "malloc");
            ms_out_write(j, ", \"stack\": ", 11);
            json_frames(j, fr);
            ms_out_write(j, "}", 1);
            first = 0;
        }
        ms_out_write(j, "],\n \"fds\": [", 12);
        for (int i = 0; i < nfds; i++) {
            ms_out_printf(j, "%s{\"fd\": %d, \"path\": ", i ? ", " : "", fds[i].fd);
            ms_out_json_str(j, fds[i].path);
            ms_out_write(j, ", \"stack\": ", 11);
            if (fds[i].stack)
                resolve_stack(sym, fds[i].stack, fr);
            else
                fr->n = 0;
            json_frames(j, fr);
            ms_out_write(j, "}", 1);
        }
        if (pools) {
            ms_out_printf(j, "],\n \"pool_library_heap\": {\"bytes\": %llu, \"blocks\": %llu},\n \"pool_trees\": [",
                          (unsigned long long)raw_bytes, (unsigned long long)raw_blocks);
            for (size_t i = 0; i < npleaks; i++) {
                const struct ms_ps_leak *l = &pleaks[i];
                ms_out_printf(j, "%s{\"state\": \"never destroyed\", \"name\": ", i ? ", " : "");
                if (l->named)
                    ms_out_json_str(j, l->name);
                else
                    ms_out_write(j, "null", 4);
                ms_out_write(j, ", \"file\": ", 10);
                ms_out_json_str(j, l->file ? l->file : "");
                ms_out_printf(j, ", \"line\": %d, \"bytes\": %llu, \"blocks\": %llu, \"allocators\": %llu, "
                                 "\"own_bytes\": %llu, \"own_blocks\": %llu}",
                              l->line, (unsigned long long)l->bytes, (unsigned long long)l->blocks,
                              (unsigned long long)l->allocators, (unsigned long long)l->own_bytes,
                              (unsigned long long)l->own_blocks);
            }
        }
        ms_out_printf(j, "],\n \"errors\": {\"invalid_free\": %llu, \"mismatched_free\": %llu}}\n",
                      (unsigned long long)err_totals[MS_ERR_INVALID_FREE],
                      (unsigned long long)err_totals[MS_ERR_MISMATCHED_FREE]);
        ms_out_flush(j);
        close(j->fd);
        if (j->failed)
            ms_warn("cannot write the JSON report to '%s': %s", j->name, strerror(j->err));
    }
    if (sym)
        ms_sym_free(sym);
    if (supp)
        ms_supp_set_free(supp);
    return leak_errors > 0 || ferr > 0;
}

/* ---- a live snapshot: a short summary, and the verdicts into the trace ------- */
void ms_snapshot_report(const struct ms_leak_result *res, struct ms_out *o, int id, int trigger,
                        uint64_t pause_ns, uint64_t scanned)
{
    static const char *trig[] = { "exit", "signal", "interval", "command", "peak" };
    char pfx[32], c1[32], c2[32], c3[32];
    snprintf(pfx, sizeof pfx, "==%d==", (int)ms_pid);
    size_t nrec = 0;
    uint64_t raw_b = 0, raw_n = 0;
    struct rec *recs = group(res, &nrec, 0, &raw_b, &raw_n);
    if (!recs)
        return;
    uint64_t sb[4] = { 0 }, sk[4] = { 0 };
    ms_trace_snapshot(id, trigger, pause_ns);
    for (size_t i = 0; i < nrec; i++) {
        sb[recs[i].kind] += recs[i].bytes;
        sk[recs[i].kind] += recs[i].blocks;
        ms_trace_snap_leak(recs[i].kind, recs[i].stack, recs[i].bytes, recs[i].blocks);
    }
    if (o->fd < 0) { /* quiet (a peak snapshot): the trace only */
        ms_region_release(recs, (res->nblocks + 1) * sizeof *recs);
        return;
    }
    ms_out_printf(o, "%s SNAPSHOT %d (%s): %s bytes in %s blocks live; threads paused %.2f ms (%s bytes of heap scanned)\n",
                  pfx, id, trig[trigger >= 0 && trigger <= 4 ? trigger : 0], ms_fmt_commas(c1, sb[0] + sb[1] + sb[2] + sb[3]),
                  ms_fmt_commas(c2, (uint64_t)res->nblocks), (double)pause_ns / 1e6,
                  ms_fmt_commas(c3, scanned));
    for (int k = 0; k < 4; k++)
        ms_out_printf(o, "%s    %15s: %s bytes in %s blocks\n", pfx, kind_words[k], ms_fmt_commas(c1, sb[k]),
                      ms_fmt_commas(c2, sk[k]));
    struct ms_sym *sym = build_symbolizer();
    struct frames *fr = ms_region_alloc(sizeof *fr);
    int shown = 0;
    /* the largest records that are not still reachable, then reachable ones */
    for (int pass = 0; pass < 2 && fr; pass++)
        for (size_t i = nrec; i-- > 0 && shown < 10;) {
            struct rec *r = &recs[i];
            if ((pass == 0) != (r->kind != MS_REACHABLE))
                continue;
            if (!(ms_opt.show_kinds & (1u << r->kind)) && r->kind != MS_REACHABLE)
                continue;
            ms_out_printf(o, "%s  %s bytes in %s blocks are %s\n", pfx, ms_fmt_commas(c1, r->bytes),
                          ms_fmt_commas(c2, r->blocks), kind_words[r->kind]);
            resolve_stack(sym, r->stack, fr);
            if (fr->n > 4)
                fr->n = 4;
            print_frames(o, pfx, fr, 0);
            shown++;
        }
    ms_out_flush(o);
    if (fr)
        ms_region_release(fr, sizeof *fr);
    if (sym)
        ms_sym_free(sym);
    ms_region_release(recs, (res->nblocks + 1) * sizeof *recs);
}
