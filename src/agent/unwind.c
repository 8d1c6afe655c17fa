/* unwind.c - table-driven stack capture (see unwind.h for the design).
 *
 * Layout of this file:
 *   1. tables: rule/row format and lookup
 *   2. table building: .eh_frame_hdr, CIE/FDE parsing, the CFA program
 *      (rows follow libunwind 1.6's reading of the CFI: which FDE covers a
 *      pc, the last one starting at or before it in .eh_frame_hdr's table;
 *      a return address looked up at pc - 1, the pc after a signal frame at
 *      pc; the state after an advance applies from the new location on)
 *   3. module list: ranges of executable PT_LOAD segments, seqlock, rescan,
 *      build lock
 *   4. per-thread state: stack bounds (raw read of /proc/self/maps), rule
 *      cache, memo of recent walks
 *   5. the walk, the libunwind fallback, the public entry points
 *
 * Nothing here calls malloc; memory comes from mmap.  Files are opened with
 * raw syscalls (the agent interposes open/openat).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "unwind.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "unwind.c is for x86-64"
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HIDDEN __attribute__((visibility("hidden")))
#define RELAXED __ATOMIC_RELAXED
#define ACQUIRE __ATOMIC_ACQUIRE
#define RELEASE __ATOMIC_RELEASE

/* ===================================================================== */
/* 1. tables                                                              */
/* ===================================================================== */

enum {
    K_FALLBACK = 0, /* libunwind finishes the stack */
    K_NOINFO = 1,   /* no FDE covers the pc: done as unw_backtrace does it (see walk) */
    K_END = 2,      /* return address undefined: outermost frame */
    K_SIGNAL = 3,   /* __restore_rt: registers from the ucontext at rsp */
    K_STD = 4,      /* CFA = RSP/RBP + off, RA = [CFA-8], RBP = [CFA+k] or same */
    K_ALIGNED = 5,  /* gcc's realigned frame: CFA = [RBP+off], RA = [CFA-8], RBP = [RBP] */
};
#define RF_CFA_RBP 1   /* CFA is based on RBP (else RSP) */
#define RF_RBP_SAVED 2 /* RBP saved at CFA + rbp_off (else unchanged) */

struct urule {
    int32_t cfa_off;
    int16_t rbp_off;
    uint8_t kind, flags;
};
_Static_assert(sizeof(struct urule) == 8, "rule is 8 bytes");

#define BLOCK_SHIFT 8 /* one lookup entry per 256 bytes of text */
#define TAB_MAGIC 0x6d73756eu

struct ident { /* which file a table was built from */
    uint64_t dev, ino, size, mtime_s, mtime_ns;
    uint64_t hdr_vaddr, layout, fde_count;
    uintptr_t anon_base; /* nameless objects (main program, vdso): tied to their base */
    int named;
};

struct utab {
    uint32_t magic, nrows, nrules, nblocks;
    uint32_t first_off; /* offset of row 0 = start of block 0 */
    uint32_t pad;
    const uint32_t *pcs;       /* nrows offsets from the module base, ascending */
    const uint16_t *ridx;      /* nrows rule indexes */
    const struct urule *rules; /* nrules; [0] fallback, [1] no info */
    const uint32_t *blocks;    /* nblocks: last row with pc <= first_off + (b << BLOCK_SHIFT) */
    size_t bytes;              /* of the whole mapping */
    struct ident id;
    struct utab *next_all; /* every table ever built (identity cache), under the build lock */
    char name[128];
};

static const struct urule R_FALLBACK = {0, 0, K_FALLBACK, 0};
static const struct urule R_NOINFO = {0, 0, K_NOINFO, 0};

/* a table with no rows: every pc has no info (used when building failed) */
static struct utab g_empty_tab = {.magic = TAB_MAGIC};

static inline const struct urule *tab_lookup(const struct utab *t, uint32_t off)
{
    uint32_t n = t->nrows;
    if (UNLIKELY(n == 0 || off < t->first_off))
        return &R_NOINFO;
    uint32_t b = (off - t->first_off) >> BLOCK_SHIFT, lo, hi;
    if (LIKELY(b + 1 < t->nblocks)) {
        lo = t->blocks[b];
        hi = t->blocks[b + 1];
    } else {
        lo = t->blocks[t->nblocks - 1];
        hi = n - 1;
    }
    /* last row in [lo, hi] with pc <= off (pcs[lo] <= off holds); no
     * branch on the data: a mispredicted branch per step costs more than
     * the whole step */
    const uint32_t *pcs = t->pcs;
    uint32_t len = hi - lo + 1;
    while (len > 1) {
        uint32_t half = len >> 1;
        lo = pcs[lo + half] <= off ? lo + half : lo;
        len -= half;
    }
    return &t->rules[t->ridx[lo]];
}

/* ===================================================================== */
/* 2. table building                                                      */
/* ===================================================================== */

static size_t page_size(void)
{
    static size_t ps;
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
    }
    return ps;
}

static size_t round_page(size_t n)
{
    size_t ps = page_size();
    return (n + ps - 1) & ~(ps - 1);
}

static void *map_mem(size_t n)
{
    void *p = mmap(NULL, round_page(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* growable array in mmap'd memory */
struct vec {
    void *p;
    size_t len, cap, esz;
};

static int vec_reserve(struct vec *v, size_t n)
{
    if (n <= v->cap)
        return 1;
    size_t ncap = v->cap ? v->cap : (16384 / v->esz);
    while (ncap < n)
        ncap *= 2;
    void *q;
    if (v->p) {
        q = mremap(v->p, round_page(v->cap * v->esz), round_page(ncap * v->esz), MREMAP_MAYMOVE);
        if (q == MAP_FAILED)
            return 0;
    } else if (!(q = map_mem(ncap * v->esz)))
        return 0;
    v->p = q;
    v->cap = ncap;
    return 1;
}

static void vec_free(struct vec *v)
{
    if (v->p)
        munmap(v->p, round_page(v->cap * v->esz));
    v->p = NULL;
    v->len = v->cap = 0;
}

/* bounded reader over module memory */
struct rd {
    const uint8_t *p, *end;
    int bad;
};

static inline uint8_t rd_u8(struct rd *r)
{
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

static uint64_t rd_fixed(struct rd *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = 1;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, (size_t)n);
    r->p += n;
    return v;
}

static uint64_t rd_uleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        uint8_t b = rd_u8(r);
        if (r->bad)
            return 0;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
    }
}

static int64_t rd_sleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = rd_u8(r);
        if (r->bad)
            return 0;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return (int64_t)v;
}

/* DW_EH_PE pointer encodings */
#define PE_OMIT 0xff
#define PE_PCREL 0x10
#define PE_DATAREL 0x30

/* read an encoded pointer; datarel is the base for DW_EH_PE_datarel (0: not
 * allowed); apply = 0 reads the value only (FDE pc_range) */
static uintptr_t rd_enc(struct rd *r, uint8_t enc, uintptr_t datarel, int apply)
{
    if (enc == PE_OMIT) {
        r->bad = 1;
        return 0;
    }
    uintptr_t field = (uintptr_t)r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = rd_fixed(r, 8); break;                          /* absptr */
    case 0x01: v = rd_uleb(r); break;                              /* uleb128 */
    case 0x02: v = rd_fixed(r, 2); break;                          /* udata2 */
    case 0x03: v = rd_fixed(r, 4); break;                          /* udata4 */
    case 0x04: v = rd_fixed(r, 8); break;                          /* udata8 */
    case 0x09: v = (uint64_t)rd_sleb(r); break;                    /* sleb128 */
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)rd_fixed(r, 2); break; /* sdata2 */
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)rd_fixed(r, 4); break; /* sdata4 */
    case 0x0c: v = rd_fixed(r, 8); break;                          /* sdata8 */
    default: r->bad = 1; return 0;
    }
    if (!apply)
        return (uintptr_t)v;
    switch (enc & 0x70) {
    case 0x00: break;
    case PE_PCREL: v += field; break;
    case PE_DATAREL:
        if (!datarel)
            r->bad = 1;
        v += datarel;
        break;
    default: r->bad = 1; break; /* textrel, funcrel, aligned: not on x86-64 */
    }
    if (enc & 0x80) /* indirect: only the personality uses it, and we skip that */
        r->bad = 1;
    return (uintptr_t)v;
}

/* the module's readable PT_LOAD segments: every read of module memory is
 * checked against them */
#define MAX_SEGS 16
struct segs {
    int n;
    uintptr_t lo[MAX_SEGS], hi[MAX_SEGS];
};

static uintptr_t seg_end(const struct segs *s, uintptr_t p)
{
    for (int i = 0; i < s->n; i++)
        if (p >= s->lo[i] && p < s->hi[i])
            return s->hi[i];
    return 0;
}

/* a reader over [p, p + n) if it lies inside one segment */
static int rd_init(struct rd *r, const struct segs *s, uintptr_t p, size_t n)
{
    uintptr_t e = seg_end(s, p);
    r->bad = 0;
    if (!e || n > e - p) {
        r->p = r->end = NULL;
        r->bad = 1;
        return 0;
    }
    r->p = (const uint8_t *)p;
    r->end = (const uint8_t *)(p + n);
    return 1;
}

/* a CIE/FDE record at p: its body [body, end) and the address of its id
 * field; 0 for the terminator or garbage */
static int record_at(const struct segs *s, uintptr_t p, uintptr_t *id_addr, uintptr_t *end)
{
    struct rd r;
    if (!rd_init(&r, s, p, 4))
        return 0;
    uint64_t len = rd_fixed(&r, 4);
    uintptr_t q = p + 4;
    if (len == 0)
        return 0;
    if (len == 0xffffffffu) {
        if (!rd_init(&r, s, q, 8))
            return 0;
        len = rd_fixed(&r, 8);
        q += 8;
    }
    uintptr_t e = seg_end(s, q);
    if (!e || len > e - q || len < 4)
        return 0;
    *id_addr = q;
    *end = q + len;
    return 1;
}

struct cie {
    uintptr_t addr;
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra;
    uint8_t fde_enc, has_z, signal, ok;
    const uint8_t *ins, *ins_end;
};

static int parse_cie(const struct segs *s, uintptr_t cie, struct cie *c)
{
    memset(c, 0, sizeof *c);
    c->addr = cie;
    uintptr_t id_addr, end;
    if (!record_at(s, cie, &id_addr, &end))
        return 0;
    struct rd r = {(const uint8_t *)id_addr, (const uint8_t *)end, 0};
    if (rd_fixed(&r, 4) != 0) /* CIE id in .eh_frame */
        return 0;
    uint8_t ver = rd_u8(&r);
    if (ver != 1 && ver != 3 && ver != 4)
        return 0;
    char aug[16];
    size_t al = 0;
    for (;;) {
        uint8_t ch = rd_u8(&r);
        if (r.bad || al + 1 >= sizeof aug)
            return 0;
        if (!ch)
            break;
        aug[al++] = (char)ch;
    }
    aug[al] = 0;
    if (ver == 4) {
        if (rd_u8(&r) != 8)
            return 0;
        rd_u8(&r);
    }
    c->code_align = rd_uleb(&r);
    c->data_align = rd_sleb(&r);
    c->ra = ver == 1 ? rd_u8(&r) : rd_uleb(&r);
    c->fde_enc = 0;
    if (aug[0] == 'z') {
        c->has_z = 1;
        uint64_t alen = rd_uleb(&r);
        if (r.bad || alen > (uint64_t)(r.end - r.p))
            return 0;
        const uint8_t *aend = r.p + alen;
        for (size_t i = 1; i < al && !r.bad; i++) {
            switch (aug[i]) {
            case 'R': c->fde_enc = rd_u8(&r); break;
            case 'L': rd_u8(&r); break;
            case 'P': {
                uint8_t pe = rd_u8(&r);
                rd_enc(&r, (uint8_t)(pe & 0x0f), 0, 0); /* skip the personality pointer */
                break;
            }
            case 'S': c->signal = 1; break;
            case 'B': case 'G': break;
            default: i = al; break; /* unknown: the length lets us skip the rest */
            }
        }
        r.p = aend;
    } else if (al) {
        return 0; /* "eh" and other pre-'z' augmentations */
    }
    if (r.bad || c->code_align == 0)
        return 0;
    c->ins = r.p;
    c->ins_end = r.end;
    c->ok = 1;
    return 1;
}

/* ---- the CFA program ---- */

enum { CFA_BAD = 0, CFA_REG, CFA_ALIGNED, CFA_PLT };
enum { RR_SAME = 0, RR_UNDEF, RR_OFFSET, RR_BAD, RR_EXPR_RBP0 };
enum { S_RBP = 0, S_RSP = 1, S_RA = 2 };

struct cstate {
    uint8_t cfa_how, cfa_reg;
    uint8_t plt_thr; /* CFA_PLT: CFA = RSP + 8 + 8 * ((pc & 15) >= plt_thr) */
    uint8_t how[3];
    int64_t cfa_off;      /* CFA_REG (kept under an expression, as libunwind keeps it) */
    int64_t aligned_off;  /* CFA_ALIGNED: CFA = [RBP + aligned_off] */
    int64_t off[3];
};

struct trow {
    uint32_t pc;
    struct urule r;
};

struct builder {
    uintptr_t base;
    const struct segs *segs;
    struct vec rows; /* struct trow, ascending pc */
    uintptr_t limit; /* rows at or past this pc are not emitted */
    int oom;
};

static struct urule classify(const struct cstate *s, int signal, int signal_ok)
{
    struct urule u = R_FALLBACK;
    if (signal) {
        if (signal_ok)
            u.kind = K_SIGNAL;
        return u;
    }
    if (s->how[S_RA] == RR_UNDEF) {
        u.kind = K_END;
        return u;
    }
    if (s->how[S_RA] != RR_OFFSET || s->off[S_RA] != -8)
        return u;
    if (s->how[S_RSP] != RR_SAME && s->how[S_RSP] != RR_UNDEF &&
        !(s->how[S_RSP] == RR_OFFSET && s->off[S_RSP] > -(1 << 14) && s->off[S_RSP] < (1 << 14)))
        return u;
    if (s->cfa_how == CFA_REG) {
        if (s->cfa_reg != 6 && s->cfa_reg != 7)
            return u;
        if (s->cfa_off <= -(1 << 28) || s->cfa_off >= (1 << 28))
            return u;
        if (s->how[S_RBP] == RR_OFFSET) {
            if (s->off[S_RBP] <= -(1 << 14) || s->off[S_RBP] >= (1 << 14) || s->off[S_RBP] == -1)
                return u;
            u.flags |= RF_RBP_SAVED;
            u.rbp_off = (int16_t)s->off[S_RBP];
        } else if (s->how[S_RBP] != RR_SAME && s->how[S_RBP] != RR_UNDEF) {
            return u;
        }
        if (s->cfa_reg == 6)
            u.flags |= RF_CFA_RBP;
        u.cfa_off = (int32_t)s->cfa_off;
        u.kind = K_STD;
        return u;
    }
    if (s->cfa_how == CFA_ALIGNED && s->how[S_RBP] == RR_EXPR_RBP0) {
        u.cfa_off = (int32_t)s->aligned_off;
        u.kind = K_ALIGNED;
        return u;
    }
    return u;
}

static void emit(struct builder *b, uintptr_t pc, struct urule r)
{
    if (pc >= b->limit || pc < b->base || pc - b->base > 0xffffffffu)
        return;
    struct trow *rows = b->rows.p;
    uint32_t off = (uint32_t)(pc - b->base);
    if (b->rows.len && rows[b->rows.len - 1].pc >= off) {
        if (rows[b->rows.len - 1].pc == off) {
            rows[b->rows.len - 1].r = r;
            return;
        }
        /* going backwards: cannot happen (FDEs are visited in order, each
         * limited to its successor's start; set_loc backwards is refused) */
        return;
    }
    if (!vec_reserve(&b->rows, b->rows.len + 1)) {
        b->oom = 1;
        return;
    }
    rows = b->rows.p;
    rows[b->rows.len].pc = off;
    rows[b->rows.len].r = r;
    b->rows.len++;
}

/* rows for the state s over [loc, end) */
static void emit_state(struct builder *b, uintptr_t loc, uintptr_t end, const struct cstate *s)
{
    if (s->cfa_how != CFA_PLT) {
        emit(b, loc, classify(s, 0, 0));
        return;
    }
    /* the PLT's expression, evaluated for each pc: 16-byte entries, the
     * stub has pushed 8 more bytes from offset plt_thr on (the load base is
     * page-aligned, so pc & 15 is known here) */
    struct cstate t = *s;
    t.cfa_how = CFA_REG;
    t.cfa_reg = 7;
    if (end > b->limit)
        end = b->limit;
    if (end <= loc)
        return;
    if (end - loc > (1u << 24)) /* garbage */
        end = loc + (1u << 24);
    while (loc < end) {
        uintptr_t slot = loc & ~(uintptr_t)15, o = loc - slot;
        uintptr_t next = o < s->plt_thr ? slot + s->plt_thr : slot + 16;
        t.cfa_off = o < s->plt_thr ? 8 : 16;
        emit(b, loc, classify(&t, 0, 0));
        loc = next;
        if (b->oom)
            return;
    }
}

static int track(uint64_t reg, uint64_t ra)
{
    if (reg == 6)
        return S_RBP;
    if (reg == 7)
        return S_RSP;
    if (reg == ra)
        return S_RA;
    return -1;
}

#define MAX_REMEMBER 16

/* Run the instructions [ins, end) from *loc; emits a row each time the
 * location advances.  Returns 1 when the program ended normally, 0 when it
 * hit something the rows cannot follow (the caller emits a fallback row at
 * *loc for the rest of the FDE), 2 when the location passed the limit. */
static int run_cfa(struct builder *b, const struct cie *c, const uint8_t *ins, const uint8_t *end,
                   int is_cie, uintptr_t *loc, struct cstate *s, const struct cstate *init)
{
    struct cstate stack[MAX_REMEMBER];
    int depth = 0;
    struct rd r = {ins, end, 0};
    while (r.p < r.end) {
        uint8_t op = rd_u8(&r);
        uint64_t reg, delta = 0;
        int adv = 0, t;
        switch (op >> 6) {
        case 1: /* DW_CFA_advance_loc */
            delta = op & 0x3f;
            adv = 1;
            break;
        case 2: /* DW_CFA_offset */
            reg = op & 0x3f;
            {
                int64_t o = (int64_t)rd_uleb(&r) * c->data_align;
                if ((t = track(reg, c->ra)) >= 0) {
                    s->how[t] = RR_OFFSET;
                    s->off[t] = o;
                }
            }
            break;
        case 3: /* DW_CFA_restore */
            reg = op & 0x3f;
            if (!init)
                return 0;
            if ((t = track(reg, c->ra)) >= 0) {
                s->how[t] = init->how[t];
                s->off[t] = init->off[t];
            }
            break;
        default:
            switch (op) {
            case 0x00: break; /* nop */
            case 0x01: {      /* set_loc */
                uintptr_t nl = rd_enc(&r, c->fde_enc, 0, 1);
                if (r.bad || nl < *loc)
                    return 0;
                delta = (nl - *loc) / c->code_align; /* re-multiplied below */
                if (delta * c->code_align != nl - *loc)
                    return 0;
                adv = 1;
                break;
            }
            case 0x02: delta = rd_fixed(&r, 1); adv = 1; break;
            case 0x03: delta = rd_fixed(&r, 2); adv = 1; break;
            case 0x04: delta = rd_fixed(&r, 4); adv = 1; break;
            case 0x05: /* offset_extended */
                reg = rd_uleb(&r);
                {
                    int64_t o = (int64_t)rd_uleb(&r) * c->data_align;
                    if ((t = track(reg, c->ra)) >= 0) {
                        s->how[t] = RR_OFFSET;
                        s->off[t] = o;
                    }
                }
                break;
            case 0x06: /* restore_extended */
                reg = rd_uleb(&r);
                if (!init)
                    return 0;
                if ((t = track(reg, c->ra)) >= 0) {
                    s->how[t] = init->how[t];
                    s->off[t] = init->off[t];
                }
                break;
            case 0x07: /* undefined */
                if ((t = track(rd_uleb(&r), c->ra)) >= 0)
                    s->how[t] = RR_UNDEF;
                break;
            case 0x08: /* same_value */
                if ((t = track(rd_uleb(&r), c->ra)) >= 0)
                    s->how[t] = RR_SAME;
                break;
            case 0x09: /* register */
                reg = rd_uleb(&r);
                rd_uleb(&r);
                if ((t = track(reg, c->ra)) >= 0)
                    s->how[t] = RR_BAD;
                break;
            case 0x0a: /* remember_state */
                if (depth >= MAX_REMEMBER)
                    return 0;
                stack[depth++] = *s;
                break;
            case 0x0b: /* restore_state */
                if (depth <= 0)
                    return 0;
                *s = stack[--depth];
                break;
            case 0x0c: /* def_cfa */
                s->cfa_reg = (uint8_t)(reg = rd_uleb(&r));
                s->cfa_off = (int64_t)rd_uleb(&r);
                s->cfa_how = reg <= 16 ? CFA_REG : CFA_BAD;
                break;
            case 0x0d: /* def_cfa_register */
                reg = rd_uleb(&r);
                s->cfa_reg = (uint8_t)reg;
                s->cfa_how = reg <= 16 ? CFA_REG : CFA_BAD;
                break;
            case 0x0e: /* def_cfa_offset (under an expression: only the kept offset) */
                s->cfa_off = (int64_t)rd_uleb(&r);
                break;
            case 0x0f: { /* def_cfa_expression */
                uint64_t n = rd_uleb(&r);
                if (r.bad || n > (uint64_t)(r.end - r.p))
                    return 0;
                /* gcc's realignment: DW_OP_breg6 k; DW_OP_deref, k in one
                 * byte (what libunwind's fast trace accepts) */
                static const uint8_t plt[11] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0, 0x2a, 0x33, 0x24, 0x22};
                if (n == 3 && r.p[0] == 0x76 && !(r.p[1] & 0x80) && r.p[2] == 0x06) {
                    s->cfa_how = CFA_ALIGNED;
                    s->aligned_off = (int8_t)(uint8_t)(r.p[1] & 0x40 ? r.p[1] | 0x80 : r.p[1]);
                } else if (n == 11 && !memcmp(r.p, plt, 6) && r.p[6] >= 0x31 && r.p[6] <= 0x3f &&
                           !memcmp(r.p + 7, plt + 7, 4)) {
                    /* DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and;
                     * DW_OP_litN; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus */
                    s->cfa_how = CFA_PLT;
                    s->plt_thr = (uint8_t)(r.p[6] - 0x30);
                } else {
                    s->cfa_how = CFA_BAD;
                }
                r.p += n;
                break;
            }
            case 0x10: { /* expression */
                reg = rd_uleb(&r);
                uint64_t n = rd_uleb(&r);
                if (r.bad || n > (uint64_t)(r.end - r.p))
                    return 0;
                if ((t = track(reg, c->ra)) >= 0)
                    s->how[t] = (t == S_RBP && n == 2 && r.p[0] == 0x76 && r.p[1] == 0) ? RR_EXPR_RBP0 : RR_BAD;
                r.p += n;
                break;
            }
            case 0x11: /* offset_extended_sf */
                reg = rd_uleb(&r);
                {
                    int64_t o = rd_sleb(&r) * c->data_align;
                    if ((t = track(reg, c->ra)) >= 0) {
                        s->how[t] = RR_OFFSET;
                        s->off[t] = o;
                    }
                }
                break;
            case 0x12: /* def_cfa_sf */
                s->cfa_reg = (uint8_t)(reg = rd_uleb(&r));
                s->cfa_off = rd_sleb(&r) * c->data_align;
                s->cfa_how = reg <= 16 ? CFA_REG : CFA_BAD;
                break;
            case 0x13: /* def_cfa_offset_sf */
                s->cfa_off = rd_sleb(&r) * c->data_align;
                break;
            case 0x14: /* val_offset */
            case 0x15: /* val_offset_sf */
                reg = rd_uleb(&r);
                if (op == 0x14)
                    rd_uleb(&r);
                else
                    rd_sleb(&r);
                if ((t = track(reg, c->ra)) >= 0)
                    s->how[t] = RR_BAD;
                break;
            case 0x16: { /* val_expression */
                reg = rd_uleb(&r);
                uint64_t n = rd_uleb(&r);
                if (r.bad || n > (uint64_t)(r.end - r.p))
                    return 0;
                if ((t = track(reg, c->ra)) >= 0)
                    s->how[t] = RR_BAD;
                r.p += n;
                break;
            }
            case 0x2e: /* GNU_args_size */
                rd_uleb(&r);
                break;
            case 0x2f: /* GNU_negative_offset_extended */
                reg = rd_uleb(&r);
                {
                    int64_t o = -(int64_t)rd_uleb(&r) * c->data_align;
                    if ((t = track(reg, c->ra)) >= 0) {
                        s->how[t] = RR_OFFSET;
                        s->off[t] = o;
                    }
                }
                break;
            default:
                return 0; /* window_save, MIPS, vendor opcodes */
            }
        }
        if (r.bad)
            return 0;
        if (adv) {
            if (is_cie)
                return 0;
            uintptr_t nl = *loc + delta * c->code_align;
            if (nl != *loc) {
                emit_state(b, *loc, nl, s);
                *loc = nl;
                if (nl >= b->limit)
                    return 2;
            }
        }
    }
    return 1;
}

const uint8_t ms_restore_rt_code[9] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};

/* rows of one FDE, whose pcs are limited to [hdr_start, next_start) */
static void do_fde(struct builder *b, uintptr_t fde, uintptr_t hdr_start, uintptr_t next_start,
                   struct cie *cache)
{
    uintptr_t id_addr, end;
    b->limit = next_start;
    if (!record_at(b->segs, fde, &id_addr, &end)) {
        emit(b, hdr_start, R_FALLBACK);
        return;
    }
    struct rd r = {(const uint8_t *)id_addr, (const uint8_t *)end, 0};
    uint32_t cie_delta = (uint32_t)rd_fixed(&r, 4);
    uintptr_t cie = id_addr - cie_delta;
    if (!cie_delta || (cache->addr != cie && !parse_cie(b->segs, cie, cache))) {
        cache->addr = 0;
        emit(b, hdr_start, R_FALLBACK);
        return;
    }
    if (!cache->ok || cache->ra > 16 || cache->ra == 6 || cache->ra == 7) {
        emit(b, hdr_start, R_FALLBACK);
        return;
    }
    uintptr_t start = rd_enc(&r, cache->fde_enc, 0, 1);
    uintptr_t range = rd_enc(&r, (uint8_t)(cache->fde_enc & 0x0f), 0, 0);
    if (cache->has_z) {
        uint64_t alen = rd_uleb(&r);
        if (alen > (uint64_t)(r.end - r.p))
            r.bad = 1;
        else
            r.p += alen;
    }
    if (r.bad || start != hdr_start) {
        emit(b, hdr_start, R_FALLBACK);
        return;
    }
    uintptr_t fend = start + range;
    if (fend < next_start)
        b->limit = fend;
    if (cache->signal) {
        int ok = 0;
        for (int k = 0; k <= 2 && !ok; k++) {
            struct rd cr;
            if (rd_init(&cr, b->segs, start + (uintptr_t)k, sizeof ms_restore_rt_code) &&
                !memcmp(cr.p, ms_restore_rt_code, sizeof ms_restore_rt_code))
                ok = 1;
        }
        emit(b, start, classify(NULL, 1, ok));
    } else {
        struct cstate init, s;
        memset(&init, 0, sizeof init);
        init.cfa_how = CFA_BAD;
        uintptr_t loc = start;
        int rc = run_cfa(b, cache, cache->ins, cache->ins_end, 1, &loc, &init, NULL);
        if (rc != 1) {
            emit(b, start, R_FALLBACK);
        } else {
            s = init;
            rc = run_cfa(b, cache, r.p, r.end, 0, &loc, &s, &init);
            if (rc == 1)
                emit_state(b, loc, b->limit, &s);
            else if (rc == 0)
                emit(b, loc, R_FALLBACK);
        }
    }
    b->limit = next_start;
    if (fend < next_start)
        emit(b, fend, R_NOINFO);
}

/* heap sort of (start, fde) pairs, for .eh_frame without a sorted table */
struct fdeent {
    uintptr_t start, fde;
};

static void sift(struct fdeent *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1].start > a[c].start)
            c++;
        if (a[c].start <= a[i].start)
            return;
        struct fdeent t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void sort_fdes(struct fdeent *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift(a, i, n);
    for (size_t i = n; i-- > 1;) {
        struct fdeent t = a[0];
        a[0] = a[i];
        a[i] = t;
        sift(a, 0, i);
    }
}

/* collect the FDEs of an .eh_frame without a usable search table */
static int scan_eh_frame(const struct segs *s, uintptr_t eh, struct vec *out)
{
    struct cie c;
    memset(&c, 0, sizeof c);
    uintptr_t p = eh, id_addr, end;
    while (record_at(s, p, &id_addr, &end)) {
        struct rd r = {(const uint8_t *)id_addr, (const uint8_t *)end, 0};
        uint32_t id = (uint32_t)rd_fixed(&r, 4);
        if (id) {
            uintptr_t cie = id_addr - id;
            if (c.addr == cie || parse_cie(s, cie, &c)) {
                uintptr_t start = rd_enc(&r, c.fde_enc, 0, 1);
                uintptr_t range = rd_enc(&r, (uint8_t)(c.fde_enc & 0x0f), 0, 0);
                if (!r.bad && range) {
                    if (!vec_reserve(out, out->len + 1))
                        return 0;
                    struct fdeent *e = (struct fdeent *)out->p + out->len++;
                    e->start = start;
                    e->fde = p;
                }
            } else {
                c.addr = 0;
            }
        }
        p = end;
    }
    sort_fdes(out->p, out->len);
    return 1;
}

static uint64_t hash64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

struct modinfo { /* one loaded object, as dl_iterate_phdr describes it */
    uintptr_t base;
    const char *name;
    const ElfW(Phdr) *phdr;
    int phnum;
};

static void ident_of(const struct modinfo *m, struct ident *id)
{
    memset(id, 0, sizeof *id);
    uint64_t h = 0;
    for (int i = 0; i < m->phnum; i++) {
        const ElfW(Phdr) *p = &m->phdr[i];
        if (p->p_type == PT_LOAD) {
            h = hash64(h, p->p_vaddr);
            h = hash64(h, p->p_memsz);
            h = hash64(h, p->p_offset);
            h = hash64(h, p->p_flags);
        } else if (p->p_type == PT_GNU_EH_FRAME) {
            id->hdr_vaddr = p->p_vaddr;
            const uint8_t *hdr = (const uint8_t *)(m->base + p->p_vaddr);
            /* version, encodings and the first words: cheap content check */
            if (p->p_memsz >= 12) {
                uint64_t w;
                memcpy(&w, hdr, 8);
                id->fde_count = w;
                memcpy(&w, hdr + 4, 8);
                id->fde_count = hash64(id->fde_count, w);
            }
        }
    }
    id->layout = h;
    struct stat st;
    if (m->name && m->name[0] == '/' &&
        syscall(SYS_newfstatat, AT_FDCWD, m->name, &st, 0) == 0) {
        id->named = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->size = (uint64_t)st.st_size;
        id->mtime_s = (uint64_t)st.st_mtim.tv_sec;
        id->mtime_ns = (uint64_t)st.st_mtim.tv_nsec;
    } else {
        id->anon_base = m->base;
    }
}

static int ident_eq(const struct ident *a, const struct ident *b)
{
    return a->named == b->named && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns && a->hdr_vaddr == b->hdr_vaddr &&
           a->layout == b->layout && a->fde_count == b->fde_count && a->anon_base == b->anon_base;
}

/* statistics (relaxed atomics; fast_frames is batched per thread) */
static uint64_t st_fast, st_fb_frames, st_fb_stacks, st_tables, st_bytes, st_vchecked, st_vmismatch, st_kc_checked;

/* Build the table of one object.  Called under the build lock, inside a
 * dl_iterate_phdr callback (the object cannot be unmapped meanwhile). */
static struct utab *build_table(const struct modinfo *m)
{
    struct segs sg;
    sg.n = 0;
    uintptr_t hdr = 0;
    size_t hdr_size = 0;
    for (int i = 0; i < m->phnum; i++) {
        const ElfW(Phdr) *p = &m->phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_R) && sg.n < MAX_SEGS && p->p_memsz) {
            sg.lo[sg.n] = m->base + p->p_vaddr;
            sg.hi[sg.n] = m->base + p->p_vaddr + p->p_memsz;
            sg.n++;
        } else if (p->p_type == PT_GNU_EH_FRAME) {
            hdr = m->base + p->p_vaddr;
            hdr_size = p->p_memsz;
        }
    }
    struct builder b;
    memset(&b, 0, sizeof b);
    b.base = m->base;
    b.segs = &sg;
    b.rows.esz = sizeof(struct trow);
    struct vec fdes = {NULL, 0, 0, sizeof(struct fdeent)};
    struct cie cache;
    memset(&cache, 0, sizeof cache);

    struct rd r;
    if (hdr && rd_init(&r, &sg, hdr, hdr_size < 4 ? 4 : hdr_size) && rd_u8(&r) == 1) {
        uint8_t eh_enc = rd_u8(&r), cnt_enc = rd_u8(&r), tab_enc = rd_u8(&r);
        uintptr_t eh = rd_enc(&r, eh_enc, hdr, 1);
        int have_table = 0;
        if (!r.bad && cnt_enc != PE_OMIT && tab_enc == 0x3b) {
            uintptr_t n = rd_enc(&r, cnt_enc, hdr, 1);
            struct rd tr;
            if (!r.bad && n && n < (1u << 26) && rd_init(&tr, &sg, (uintptr_t)r.p, n * 8)) {
                have_table = 1;
                const int32_t *t = (const int32_t *)r.p;
                for (uintptr_t i = 0; i < n && !b.oom; i++) {
                    uintptr_t start = hdr + (uintptr_t)(intptr_t)t[2 * i];
                    uintptr_t fde = hdr + (uintptr_t)(intptr_t)t[2 * i + 1];
                    uintptr_t next = i + 1 < n ? hdr + (uintptr_t)(intptr_t)t[2 * i + 2] : UINTPTR_MAX;
                    if (next < start) { /* unsorted table: libunwind's binary search is lost too */
                        b.limit = UINTPTR_MAX;
                        emit(&b, start, R_FALLBACK);
                        continue;
                    }
                    do_fde(&b, fde, start, next, &cache);
                }
            }
        }
        if (!have_table && !r.bad && eh && scan_eh_frame(&sg, eh, &fdes)) {
            struct fdeent *e = fdes.p;
            for (size_t i = 0; i < fdes.len && !b.oom; i++)
                do_fde(&b, e[i].fde, e[i].start, i + 1 < fdes.len ? e[i + 1].start : UINTPTR_MAX, &cache);
        }
    }
    vec_free(&fdes);
    if (b.oom) {
        vec_free(&b.rows);
        return NULL;
    }

    /* merge identical consecutive rules, build the rule dictionary */
    struct trow *rows = b.rows.p;
    size_t n = 0;
    for (size_t i = 0; i < b.rows.len; i++) {
        if (n && !memcmp(&rows[n - 1].r, &rows[i].r, sizeof rows[i].r))
            continue;
        rows[n++] = rows[i];
    }
    size_t hcap = 1024;
    while (hcap < 2 * n + 16)
        hcap *= 2;
    struct vec hv = {NULL, 0, 0, sizeof(uint32_t)};
    struct vec rv = {NULL, 0, 0, sizeof(struct urule)};
    if (!vec_reserve(&hv, hcap) || !vec_reserve(&rv, 64)) {
        vec_free(&hv);
        vec_free(&rv);
        vec_free(&b.rows);
        return NULL;
    }
    uint32_t *hslot = hv.p; /* rule index + 1, 0 = empty (mmap gives zeros) */
    struct urule *dict = rv.p;
    dict[0] = R_FALLBACK;
    dict[1] = R_NOINFO;
    rv.len = 2;
    uint16_t *tmp_idx = NULL;
    struct vec iv = {NULL, 0, 0, sizeof(uint16_t)};
    if (!vec_reserve(&iv, n + 1)) {
        vec_free(&hv);
        vec_free(&rv);
        vec_free(&b.rows);
        return NULL;
    }
    tmp_idx = iv.p;
    for (size_t i = 0; i < n; i++) {
        struct urule u = rows[i].r;
        uint16_t idx;
        if (u.kind == K_FALLBACK) {
            idx = 0;
        } else if (u.kind == K_NOINFO) {
            idx = 1;
        } else {
            uint64_t key;
            memcpy(&key, &u, 8);
            size_t h = (size_t)(hash64(0, key) & (hcap - 1));
            for (;;) {
                uint32_t v = hslot[h];
                if (!v) {
                    if (rv.len >= 65535 || !vec_reserve(&rv, rv.len + 1)) {
                        idx = 0;
                        break;
                    }
                    dict = rv.p;
                    dict[rv.len] = u;
                    hslot[h] = (uint32_t)rv.len + 1;
                    idx = (uint16_t)rv.len++;
                    break;
                }
                if (!memcmp(&dict[v - 1], &u, 8)) {
                    idx = (uint16_t)(v - 1);
                    break;
                }
                h = (h + 1) & (hcap - 1);
            }
        }
        tmp_idx[i] = idx;
    }
    /* indexes may have become equal after dictionary overflow: fine */
    uint32_t first = n ? rows[0].pc : 0;
    uint32_t nblocks = n ? ((rows[n - 1].pc - first) >> BLOCK_SHIFT) + 2 : 0;
    size_t off_pcs = (sizeof(struct utab) + 7) & ~(size_t)7;
    size_t off_idx = off_pcs + n * 4;
    size_t off_rules = (off_idx + n * 2 + 7) & ~(size_t)7;
    size_t off_blocks = off_rules + rv.len * sizeof(struct urule);
    size_t total = off_blocks + (size_t)nblocks * 4;
    uint8_t *mem = map_mem(total);
    struct utab *t = (struct utab *)mem;
    if (mem) {
        uint32_t *tp = (uint32_t *)(mem + off_pcs);
        uint16_t *ti = (uint16_t *)(mem + off_idx);
        struct urule *tr = (struct urule *)(mem + off_rules);
        uint32_t *tb = (uint32_t *)(mem + off_blocks);
        for (size_t i = 0; i < n; i++) {
            tp[i] = rows[i].pc;
            ti[i] = tmp_idx[i];
        }
        memcpy(tr, rv.p, rv.len * sizeof(struct urule));
        size_t k = 0;
        for (uint32_t bl = 0; bl < nblocks; bl++) {
            uint64_t at = (uint64_t)first + ((uint64_t)bl << BLOCK_SHIFT);
            while (k + 1 < n && tp[k + 1] <= at)
                k++;
            tb[bl] = (uint32_t)k;
        }
        t->magic = TAB_MAGIC;
        t->nrows = (uint32_t)n;
        t->nrules = (uint32_t)rv.len;
        t->nblocks = nblocks;
        t->first_off = first;
        t->pcs = tp;
        t->ridx = ti;
        t->rules = tr;
        t->blocks = tb;
        t->bytes = round_page(total);
        if (m->name) {
            size_t l = strlen(m->name);
            const char *src = l >= sizeof t->name ? m->name + l - (sizeof t->name - 1) : m->name;
            memcpy(t->name, src, strlen(src));
        }
        ident_of(m, &t->id);
        __atomic_fetch_add(&st_tables, 1, RELAXED);
        __atomic_fetch_add(&st_bytes, (uint64_t)t->bytes, RELAXED);
    }
    vec_free(&iv);
    vec_free(&hv);
    vec_free(&rv);
    vec_free(&b.rows);
    return t;
}

/* ===================================================================== */
/* 3. module list                                                         */
/* ===================================================================== */

/* Live arrays, read without a lock under g_seq (a seqlock: odd while the
 * single writer, holding the build lock, changes them).  Both live in one
 * fixed mmap'd region that is never unmapped, so a torn read only yields a
 * wrong (never a dangling) pointer, and the capture is redone. */
#define MAX_RANGES 4096
#define MAX_OBJS 2048

struct mrange { /* an executable PT_LOAD segment */
    uintptr_t lo, hi, base;
    struct utab *tab; /* NULL: not built yet */
};
struct mobj { /* a loaded object's whole extent (as _dl_find_object gives it) */
    uintptr_t map_lo, map_hi;
};

static uint64_t g_seq;
static uint32_t g_nr, g_no;
static struct mrange *g_r;
static struct mobj *g_o;
static struct utab *g_all; /* every table ever built (under the build lock) */

/* scratch for the rescan (under the build lock) */
static struct mrange *s_r;
static struct mobj *s_o;
static uint32_t s_nr, s_no;

/* build lock: 0 free, else (pid << 32) | tid of the owner */
static uint64_t g_lock;

static uint64_t self_id(void)
{
    return ((uint64_t)(uint32_t)syscall(SYS_getpid) << 32) | (uint32_t)syscall(SYS_gettid);
}

/* 1 acquired; 0 held by this very thread (a signal handler interrupted our
 * own build) or still held by another thread after a bounded wait */
static int build_lock(void)
{
    uint64_t me = self_id();
    for (int spin = 0; spin < 20000; spin++) {
        uint64_t cur = 0;
        if (__atomic_compare_exchange_n(&g_lock, &cur, me, 0, ACQUIRE, RELAXED))
            return 1;
        if (cur == me)
            return 0;
        if ((cur >> 32) != (me >> 32)) { /* left over by a thread of the parent before fork */
            if (__atomic_compare_exchange_n(&g_lock, &cur, me, 0, ACQUIRE, RELAXED))
                return 1;
            continue;
        }
        if (spin < 64)
            __builtin_ia32_pause();
        else
            syscall(SYS_sched_yield);
    }
    return 0;
}

static void build_unlock(void)
{
    __atomic_store_n(&g_lock, 0, RELEASE);
}

static struct utab *find_table(const struct ident *id)
{
    for (struct utab *t = g_all; t; t = t->next_all)
        if (ident_eq(&t->id, id))
            return t;
    return NULL;
}

static int alloc_arrays(void)
{
    if (g_r)
        return 1;
    size_t sz = MAX_RANGES * sizeof(struct mrange) + MAX_OBJS * sizeof(struct mobj);
    uint8_t *a = map_mem(sz), *b = map_mem(sz);
    if (!a || !b) {
        if (a)
            munmap(a, round_page(sz));
        if (b)
            munmap(b, round_page(sz));
        return 0;
    }
    s_r = (struct mrange *)b;
    s_o = (struct mobj *)(b + MAX_RANGES * sizeof(struct mrange));
    g_o = (struct mobj *)(a + MAX_RANGES * sizeof(struct mrange));
    __atomic_store_n(&g_r, (struct mrange *)a, RELEASE);
    return 1;
}

static int rescan_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    struct modinfo m = {info->dlpi_addr, info->dlpi_name, info->dlpi_phdr, info->dlpi_phnum};
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int nx = 0;
    for (int i = 0; i < m.phnum; i++) {
        const ElfW(Phdr) *p = &m.phdr[i];
        if (p->p_type != PT_LOAD || !p->p_memsz)
            continue;
        uintptr_t a = m.base + p->p_vaddr, e = a + p->p_memsz;
        if (a < lo)
            lo = a;
        if (e > hi)
            hi = e;
        if (p->p_flags & PF_X)
            nx++;
    }
    if (!hi || s_no >= MAX_OBJS)
        return 0;
    size_t ps = page_size();
    s_o[s_no].map_lo = lo & ~(ps - 1);
    s_o[s_no].map_hi = (hi + ps - 1) & ~(ps - 1);
    s_no++;
    if (!nx)
        return 0;
    struct ident id;
    ident_of(&m, &id);
    struct utab *t = find_table(&id);
    for (int i = 0; i < m.phnum && s_nr < MAX_RANGES; i++) {
        const ElfW(Phdr) *p = &m.phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_X) || !p->p_memsz)
            continue;
        s_r[s_nr].lo = m.base + p->p_vaddr;
        s_r[s_nr].hi = m.base + p->p_vaddr + p->p_memsz;
        s_r[s_nr].base = m.base;
        s_r[s_nr].tab = t;
        s_nr++;
    }
    return 0;
}

/* under the build lock */
static void rescan(void)
{
    if (!alloc_arrays())
        return;
    s_nr = s_no = 0;
    dl_iterate_phdr(rescan_cb, NULL);
    /* sort ranges by lo (insertion sort: a few dozen entries) */
    for (uint32_t i = 1; i < s_nr; i++) {
        struct mrange x = s_r[i];
        uint32_t j = i;
        while (j && s_r[j - 1].lo > x.lo) {
            s_r[j] = s_r[j - 1];
            j--;
        }
        s_r[j] = x;
    }
    /* publish (an odd g_seq here was left by a writer of the parent process
     * that fork() did not copy: start from the next even value) */
    uint64_t s = g_seq;
    s += s & 1;
    __atomic_store_n(&g_seq, s + 1, RELAXED);
    __atomic_thread_fence(RELEASE);
    for (uint32_t i = 0; i < s_nr; i++) {
        __atomic_store_n(&g_r[i].lo, s_r[i].lo, RELAXED);
        __atomic_store_n(&g_r[i].hi, s_r[i].hi, RELAXED);
        __atomic_store_n(&g_r[i].base, s_r[i].base, RELAXED);
        __atomic_store_n(&g_r[i].tab, s_r[i].tab, RELAXED);
    }
    for (uint32_t i = 0; i < s_no; i++) {
        __atomic_store_n(&g_o[i].map_lo, s_o[i].map_lo, RELAXED);
        __atomic_store_n(&g_o[i].map_hi, s_o[i].map_hi, RELAXED);
    }
    __atomic_store_n(&g_nr, s_nr, RELAXED);
    __atomic_store_n(&g_no, s_no, RELAXED);
    __atomic_store_n(&g_seq, s + 2, RELEASE);
}

struct build_arg {
    uintptr_t pc;
    int found;
};

static int build_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct build_arg *ba = arg;
    const ElfW(Phdr) *ph = info->dlpi_phdr;
    int hit = 0;
    for (int i = 0; i < info->dlpi_phnum && !hit; i++)
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X) &&
            ba->pc - (info->dlpi_addr + ph[i].p_vaddr) < ph[i].p_memsz)
            hit = 1;
    if (!hit)
        return 0;
    ba->found = 1;
    struct modinfo m = {info->dlpi_addr, info->dlpi_name, info->dlpi_phdr, info->dlpi_phnum};
    struct ident id;
    ident_of(&m, &id);
    struct utab *t = find_table(&id);
    if (!t) {
        t = build_table(&m);
        if (t) {
            t->next_all = g_all;
            g_all = t;
        } else {
            t = &g_empty_tab;
        }
    }
    /* fill every live range of this object (no seq change: NULL -> table
     * only refines what readers see) */
    uint32_t nr = g_nr;
    for (uint32_t i = 0; i < nr; i++) {
        if (g_r[i].base != info->dlpi_addr || g_r[i].tab)
            continue;
        for (int k = 0; k < info->dlpi_phnum; k++)
            if (ph[k].p_type == PT_LOAD && (ph[k].p_flags & PF_X) &&
                g_r[i].lo == info->dlpi_addr + ph[k].p_vaddr)
                __atomic_store_n(&g_r[i].tab, t, RELEASE);
    }
    return 1;
}

enum { NEED_TABLE = 1, NEED_RESCAN = 2 };

/* Signals are blocked while the build lock is held, as libunwind blocks
 * them around its own dl_iterate_phdr: a handler never runs in the middle
 * of this thread's build (nor of the loader's lock acquisition inside
 * dl_iterate_phdr, where a nested dl_iterate_phdr would deadlock).  A
 * synchronous signal cannot be blocked: build_lock() then sees its own
 * thread as the owner and the capture falls back. */
static int lock_and_block(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
    if (build_lock())
        return 1;
    pthread_sigmask(SIG_SETMASK, old, NULL);
    return 0;
}

static void unlock_and_unblock(const sigset_t *old)
{
    build_unlock();
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* g_seq stays odd: a writer is slow, or fork() copied a half-done rescan of
 * another thread into this process.  Once the build lock is ours, an odd
 * g_seq can only be the latter: rescan.  0 when the lock is this thread's
 * own (a signal handler interrupted the writer) */
static __attribute__((noinline, cold)) int repair_seq(void)
{
    sigset_t old;
    if (!lock_and_block(&old))
        return 0;
    if (__atomic_load_n(&g_seq, RELAXED) & 1)
        rescan();
    unlock_and_unblock(&old);
    return 1;
}

/* 1 when done (the capture is redone), 0 when the caller must fall back */
/* set by the walks that run far below the capture (libunwind's, a table
 * build): the hook then clears that much dead stack (ms_unwind_took_deep) */
static __thread int went_deep __attribute__((tls_model("initial-exec")));

int ms_unwind_took_deep(void)
{
    int d = went_deep;
    went_deep = 0;
    return d;
}

static int do_build(int what, uintptr_t pc)
{
    sigset_t old;
    went_deep = 1;
    if (!lock_and_block(&old))
        return 0;
    if (what == NEED_RESCAN || !g_r) {
        rescan();
    } else {
        struct build_arg ba = {pc, 0};
        dl_iterate_phdr(build_cb, &ba);
        if (!ba.found) /* unloaded meanwhile */
            rescan();
    }
    unlock_and_unblock(&old);
    return 1;
}

void ms_unwind_invalidate(void)
{
    sigset_t old;
    if (!lock_and_block(&old))
        return;
    rescan();
    unlock_and_unblock(&old);
}

/* ===================================================================== */
/* 4. per-thread stack bounds                                             */
/* ===================================================================== */

/* per-thread cache: lookup pc -> rule, direct-mapped; valid for one value
 * of the module list's sequence number (a hit costs one load and a compare
 * instead of a module search and a table search) */
#define PCC_BITS 8 /* sets */
#define PCC_WAYS 4 /* entries of a set: one cache line; the newest first */
#define PCC_IDX(pc) ((uint32_t)(((uint64_t)(pc) * 0x9e3779b97f4a7c15ull) >> (64 - PCC_BITS)))
struct pcc_ent {
    uintptr_t pc;
    struct urule r;
};
struct pcc_set {
    struct pcc_ent e[PCC_WAYS];
} __attribute__((aligned(64)));

/* the rule of look, or NULL */
static inline const struct urule *pcc_find(const struct pcc_set *pcc, uintptr_t look)
{
    const struct pcc_set *set = &pcc[PCC_IDX(look)];
    for (int i = 0; i < PCC_WAYS; i++)
        if (set->e[i].pc == look)
            return &set->e[i].r;
    return NULL;
}

static inline void pcc_put(struct pcc_set *pcc, uintptr_t look, const struct urule *u)
{
    struct pcc_set *set = &pcc[PCC_IDX(look)];
    for (int i = PCC_WAYS - 1; i > 0; i--)
        set->e[i] = set->e[i - 1];
    set->e[0].pc = look;
    set->e[0].r = *u;
}

/* per-thread memo of recent walks.  A walk is a function of its start
 * state (pc, sp, rbp, stack region), of the module list (g_seq) and of the
 * words it reads from the stack; a memo entry keeps all three and its
 * result.  A capture with the same start state re-reads those addresses
 * (independent loads, no dependency chain) and, if every word is unchanged,
 * its walk would be the same step by step: the result is reused.  The same
 * holds from any frame on: the entry also keeps each frame's state (sp,
 * rbp; pc is the result) and where its reads start, and a walk that reaches
 * a remembered frame's state (stacks that differ in their innermost frames
 * only) re-reads that suffix's words and copies the rest.  Only walks that
 * ended by themselves or at max, without a signal frame, a fallback or an
 * unknown pc, are kept. */
#define MEMO_WAYS 2
#define MEMO_FRAMES 40
#define MEMO_READS 56
/* the words a walk read (and rbp values) are kept XORed with this mask: this
 * TLS is scanned as a root by the leak check, and a heap pointer that the
 * memo kept from a dead stack frame would make a lost block reachable (the
 * mask makes any canonical address non-canonical) */
#define MEMO_MASK ((uintptr_t)0xa5c3e1f00f1e3c5aULL)
struct memo {
    uintptr_t pc0, sp0, bp0, hi;
    uint64_t seq1; /* g_seq + 1 when recorded; 0: empty */
    int n;         /* pcs */
    int ended;     /* the walk stopped before max: valid for any larger max */
    int nreads;
    uint32_t hits; /* whole-stack hits: the entry with fewest is replaced */
    uintptr_t pcs[MEMO_FRAMES];
    uintptr_t fsp[MEMO_FRAMES], fbp[MEMO_FRAMES]; /* frame j's sp and rbp */
    uint8_t fr[MEMO_FRAMES];                      /* frame j's first read */
    uint8_t sph[64];                              /* (sp >> 3) & 63 -> frame + 1 */
    uintptr_t raddr[MEMO_READS], rval[MEMO_READS];
};

/* per-thread templates of recent walks' shapes.  A walk from a given sp
 * mostly repeats the shape of the last walk from that sp: the same rules
 * frame after frame, hence the same CFAs, while the return addresses it
 * reads may differ (other callers of the same shape: a0/b0, the 256 paths
 * of the churn benchmark, an interpreter's loop).  A template keeps, per
 * frame, the CFA (the next frame's sp) and the rule that gave it.  A capture
 * from the same sp loads every frame's return address at once from the
 * remembered CFAs (independent loads: no chain of lookup, add and load per
 * frame) and then checks each one: the rule the cache gives for that return
 * address must be the remembered one (and an RBP-based CFA must come out
 * the same from the rbp in hand).  Where every check passes, the walk would
 * have taken the very same steps; at the first that fails, the ordinary
 * walk goes on from that frame's state.  Only stack addresses and rules
 * are kept, no word read from the stack (the leak check scans this TLS). */
#define TPL_FRAMES 64
#define TPL_SETS 8
#define KC_AGENT 6 /* agent frames a kept stack may start with */
#define KC_BITS 11 /* 2048 entries, 32 KB */
#define KC_WAYS 4
#define TPL_IDX(sp) ((((sp) >> 4) ^ ((sp) >> 10)) & (TPL_SETS - 1))
enum { TT_NONE = 0, TT_END = 1 };
struct tpl {
    uint64_t seq1; /* g_seq + 1 when recorded; 0: empty */
    uintptr_t hi;  /* the stack region's top */
    int n;         /* frames 0..n-1: a K_STD step each, sp[j + 1] its CFA */
    int term;      /* TT_END: frame n's rule is r[n], K_END (the walk stops there) */
    uintptr_t sp[TPL_FRAMES + 1];
    struct urule r[TPL_FRAMES + 1];
    /* the last stack captured through this template, and the caller's word
     * for it (ms_unwind_stack_tag) */
    uint32_t tag;
    int lastn, lastmax;
    uintptr_t lastpc[TPL_FRAMES];
    /* the stack-id cache (kcache): this version of the template (a number
     * of this thread, new whenever sp[] or r[] may have changed), and the
     * leading frames of the stacks kept for it (the agent's own frames,
     * not part of a stack id's frames: ms_unwind_keep_id) */
    uint64_t gen;
    int dirty;        /* a walk changed sp[], r[], n or term: a new version */
    int na;           /* > 0: stacks are kept for this version */
    int kcfa;         /* with na: a frame's CFA is RBP-based (kc_try checks RBP) */
    uintptr_t apc[KC_AGENT];
};

/* The stack-id cache: stacks whose template walk passed whole, each with
 * the id its caller kept for it (ms_unwind_keep_id), found by a hash of the
 * frames and the template's version.  A capture through a template that
 * has such stacks first reads every frame's return address at once at the
 * template's CFAs (and the RBP values its RBP-based CFAs check); if the
 * frames are exactly those of a kept stack (the agent frames compared with
 * the template's, the rest with the stack table's own copy of id's frames,
 * ms_stack_get), the template walk would take the very same steps: the
 * rule of each frame is a function of its pc alone (for this module list)
 * and each RBP-based CFA was checked again.  The id comes without a rule
 * lookup per frame, and without trimming, hashing and interning in the
 * caller.  Only hashes, ids and versions are kept here. */
struct kc_ent {
    uint64_t gen;
    uint32_t hash; /* a filter: a hit is compared in full */
    uint32_t id;   /* | KC_ID_TAG: the word (hash, id) is never a pointer of the
                    * program's (bit 63 set), so the leak check's scan of this
                    * TLS cannot take it for one */
};
#define KC_ID_TAG 0x80000000u

struct tstate {
    uintptr_t lo, hi;   /* the thread's stack mapping; hi == 0: unknown */
    uintptr_t nlo, nhi; /* the last mapping seen not to be the thread's stack */
    int is_main;      /* the main thread's [stack] grows: lo is refreshed */
    int depth;        /* captures in progress on this thread (signal nesting) */
    uint32_t fast_pending;
    uint64_t pcc_gen; /* g_seq + 1 the cache was filled under; 0: empty */
    uint32_t memo_next;
    uint32_t memo_misses; /* captures without a whole-stack memo hit */
    int32_t memo_credit;  /* recording pays while whole-stack hits come often */
    int32_t join_score;   /* joining pays while it saves more frames than it checks */
    uint32_t join_probe;
    uint8_t memo_init;
    uint8_t way[MEMO_WAYS]; /* the entries in use, indexes into memo[] */
    uint8_t stage;          /* the entry a walk is recorded into, swapped in when complete */
    struct pcc_set pcc[1 << PCC_BITS];
    struct memo memo[MEMO_WAYS + 1];
    struct tpl tpl[TPL_SETS];
    struct tpl *last; /* the template of this thread's last capture (ms_unwind_stack_tag) */
    int last_same;    /* that capture's stack was the template's last one */
    int nocache;      /* ms_unwind_nocache calls in effect */
    /* The stack-id cache.  The leak check scans this TLS as a root: every
     * word here is either a small count, an address of the agent's (code,
     * TLS) or a value with bit 63 set, never one a pointer of the program
     * could have. */
    uint64_t gen_next; /* template versions handed out, counting down from 2^64 */
    /* the last capture: its id from the stack-id cache (hit; | bit 63), or
     * what ms_unwind_keep_id needs to keep it (kt != NULL) */
    uint64_t kc_hit;
    int16_t kc_score; /* > 0: the cache is tried at every capture */
    uint16_t kc_probe;
    uint16_t kc_pad;
    uint16_t kc_tag; /* 0x8000: this word's bit 63 */
    struct tpl *kt;
    uint64_t kgen, khash; /* khash: bit 63 set (kc_hash) */
    int kn;
    uintptr_t kpc[KC_AGENT];
    struct kc_ent kc[1 << KC_BITS] __attribute__((aligned(64)));
};
static __thread struct tstate tls __attribute__((tls_model("initial-exec")));

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* One line of /proc/self/maps, [s, e): its range, if it contains addr, and
 * whether it is the main thread's [stack] */
static int maps_line(const char *s, const char *e, uintptr_t addr, uintptr_t *lo, uintptr_t *hi, int *is_stack)
{
    uintptr_t a = 0, b = 0;
    int d;
    while (s < e && (d = hexval(*s)) >= 0)
        a = a * 16 + (uintptr_t)d, s++;
    if (s >= e || *s != '-')
        return 0;
    s++;
    while (s < e && (d = hexval(*s)) >= 0)
        b = b * 16 + (uintptr_t)d, s++;
    if (addr < a || addr >= b)
        return 0;
    *lo = a;
    *hi = b;
    *is_stack = e - s >= 7 && !memcmp(e - 7, "[stack]", 7);
    return 1;
}

/* the mapping that contains addr (raw syscalls: no malloc, no interposed
 * open, async-signal-safe) */
static int maps_find(uintptr_t addr, uintptr_t *lo, uintptr_t *hi, int *is_stack)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[1024];
    size_t have = 0;
    int found = 0, skipping = 0;
    while (!found) {
        long r = syscall(SYS_read, fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < have && !found; i++) {
            if (buf[i] != '\n')
                continue;
            if (!skipping)
                found = maps_line(buf + start, buf + i, addr, lo, hi, is_stack);
            skipping = 0;
            start = i + 1;
        }
        if (found)
            break;
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf) { /* a line longer than the buffer: its start has the range */
            found = maps_line(buf, buf + have, addr, lo, hi, is_stack);
            *is_stack = 0;
            have = 0;
            skipping = 1;
        }
    }
    syscall(SYS_close, fd);
    return found;
}

/* Find this thread's stack from a stack pointer on it (the mapping holding
 * sp).  The main thread's is the [stack] mapping.  Another thread's is the
 * mapping that also holds the thread's descriptor: glibc keeps it at the top
 * of the thread's stack mapping, also for user-supplied stacks, with the
 * static TLS in between; the stack ends below the descriptor, which is then
 * the upper bound (another anonymous mapping just above may have been merged
 * into the same VMA).  The main thread's descriptor is in some anonymous
 * mapping that may be merged with anything (a sigaltstack mmap'd next to
 * it): that criterion is not used for it.  Anything else (a sigaltstack, a
 * coroutine's stack) is not cached. */
static __attribute__((noinline, cold)) int refresh_thread_stack(uintptr_t sp)
{
    uintptr_t lo, hi, self = (uintptr_t)pthread_self();
    int is_stack, is_main = syscall(SYS_gettid) == syscall(SYS_getpid);
    if (!maps_find(sp, &lo, &hi, &is_stack))
        return 0;
    int ok = is_main ? is_stack : (!is_stack && self >= lo && self < hi && sp < self);
    if (!ok) {
        tls.nlo = lo;
        tls.nhi = hi;
        return 0;
    }
    if (!is_main)
        hi = self;
    tls.lo = lo;
    tls.hi = hi;
    tls.is_main = is_main;
    return 1;
}

struct region {
    uintptr_t lo, hi;
    int alt; /* on the sigaltstack: the thread's stack is not entered yet */
};

/* the region of the starting sp; 0: a stack we do not know (coroutine...) */
static int start_region(uintptr_t sp, struct region *rg)
{
    if (LIKELY(sp >= tls.lo && sp < tls.hi)) {
        rg->lo = sp;
        rg->hi = tls.hi;
        rg->alt = 0;
        return 1;
    }
    /* unknown yet, or the main thread's stack has grown since */
    if ((tls.hi == 0 || (tls.is_main && sp < tls.lo && sp < tls.hi)) && !(sp >= tls.nlo && sp < tls.nhi)) {
        if (refresh_thread_stack(sp) && sp >= tls.lo && sp < tls.hi) {
            rg->lo = sp;
            rg->hi = tls.hi;
            rg->alt = 0;
            return 1;
        }
    }
    stack_t ss;
    if (syscall(SYS_sigaltstack, NULL, &ss) == 0 && !(ss.ss_flags & SS_DISABLE) &&
        sp >= (uintptr_t)ss.ss_sp && sp < (uintptr_t)ss.ss_sp + ss.ss_size) {
        rg->lo = sp;
        rg->hi = (uintptr_t)ss.ss_sp + ss.ss_size;
        rg->alt = 1;
        return 1;
    }
    return 0;
}

/* after a signal frame on the sigaltstack: the interrupted sp must be on
 * the thread's stack */
static __attribute__((noinline, cold)) int switch_region(uintptr_t nsp, struct region *rg)
{
    if (!rg->alt)
        return 0;
    if (!(nsp >= tls.lo && nsp < tls.hi))
        refresh_thread_stack(nsp);
    if (!(nsp >= tls.lo && nsp < tls.hi))
        return 0;
    rg->lo = nsp - 128 > tls.lo ? nsp - 128 : tls.lo; /* the red zone */
    rg->hi = tls.hi;
    rg->alt = 0;
    return 1;
}

/* ===================================================================== */
/* 5. the walk                                                            */
/* ===================================================================== */

enum { W_DONE = 0, W_FALLBACK, W_BUILD, W_RESCAN };

struct wout {
    int n, code;
    int joined; /* the walk ended by joining a remembered one, at frame joined - 1 */
    uintptr_t need;
};

static inline uintptr_t ld(uintptr_t a)
{
    uintptr_t v;
    memcpy(&v, (const void *)a, sizeof v);
    return v;
}

/* the reads of a walk being recorded for the memo (NULL: not recorded) */
struct rec {
    int n, ok;
    uintptr_t *addr, *val;
    struct memo *m;
};

/* memo entries a walk may join (valid for this g_seq and stack) */
struct cand {
    struct memo *m[MEMO_WAYS];
};

/* The walk is at frame n with state (pc, sp, bp; pc a return address) and
 * remembered walk m had this very state at its frame j: if every word m
 * read from there on is unchanged, m's frames j.. are ours n..  Returns the
 * new count, or 0.  A walk being recorded gets m's suffix appended, so that
 * it stays the record of a whole walk (recording is rare once the stacks of
 * a thread stop repeating whole, see capture_common). */
static __attribute__((noinline)) int memo_join(const struct memo *m, int j, uintptr_t *pcs, int n, int max,
                                               const struct region *rg, struct rec *rc)
{
    int total = n + (m->n - j);
    if (!m->ended && total < max) /* that walk stopped at its max, not ours */
        return 0;
    uintptr_t diff = 0;
    for (int r = m->fr[j]; r < m->nreads; r++) {
        uintptr_t a = m->raddr[r];
        if (a < rg->lo || a > rg->hi - 8)
            return 0;
        diff |= ld(a) ^ MEMO_MASK ^ m->rval[r];
    }
    if (diff)
        return 0;
    if (total > max)
        total = max;
    memcpy(pcs + n, m->pcs + j, (size_t)(total - n) * sizeof pcs[0]);
    if (rc && rc->ok) {
        int nr = m->nreads - m->fr[j], nf = m->n - j;
        if (rc->n + nr > MEMO_READS || n + nf > MEMO_FRAMES) {
            rc->ok = 0;
        } else {
            struct memo *d = rc->m;
            for (int t = 0; t < nf; t++) {
                d->fsp[n + t] = m->fsp[j + t];
                d->fbp[n + t] = m->fbp[j + t];
                d->fr[n + t] = (uint8_t)(rc->n + (m->fr[j + t] - m->fr[j]));
            }
            memcpy(d->raddr + rc->n, m->raddr + m->fr[j], (size_t)nr * sizeof d->raddr[0]);
            memcpy(d->rval + rc->n, m->rval + m->fr[j], (size_t)nr * sizeof d->rval[0]);
            rc->n += nr;
        }
    }
    return total;
}

static inline uintptr_t ldr(uintptr_t a, struct rec *rc)
{
    uintptr_t v = ld(a);
    if (rc) {
        if (LIKELY(rc->n < MEMO_READS)) {
            rc->addr[rc->n] = a;
            rc->val[rc->n] = v ^ MEMO_MASK;
            rc->n++;
        } else {
            rc->ok = 0;
        }
    }
    return v;
}

/* pc in no executable range we know: a new object (rescan) or none (end) */
static __attribute__((noinline)) int unknown_pc(uintptr_t look)
{
    struct dl_find_object fo;
    if (_dl_find_object((void *)look, &fo) != 0)
        return W_DONE;
    uint32_t no = __atomic_load_n(&g_no, RELAXED);
    struct mobj *o = __atomic_load_n(&g_r, RELAXED) ? g_o : NULL;
    for (uint32_t i = 0; o && i < no && i < MAX_OBJS; i++)
        if (__atomic_load_n(&o[i].map_lo, RELAXED) == (uintptr_t)fo.dlfo_map_start)
            return W_DONE; /* known object, not in its code: garbage */
    return W_RESCAN;
}

/* 1 if [a, a + n) lies in one executable range of the module list */
static __attribute__((noinline)) int in_code(const struct mrange *R, uint32_t nr, uintptr_t a, size_t n)
{
    for (uint32_t i = 0; i < nr; i++) {
        uintptr_t lo = __atomic_load_n(&R[i].lo, RELAXED), hi = __atomic_load_n(&R[i].hi, RELAXED);
        if (a >= lo && a < hi)
            return n <= hi - a;
    }
    return 0;
}

static inline uint64_t rule_bits(const struct urule *u)
{
    uint64_t v;
    memcpy(&v, u, sizeof v);
    return v;
}

/* Frames 0.. of template T from the start state (pc, sp0 == T->sp[0], bp; pc
 * a return address): the frames whose checks pass go to pcs.  Returns their
 * count; *done is set when that is the whole stack (as the walk would end
 * it), else (*opc, T->sp[count], *obp) is the state the walk goes on from. */
static inline int tpl_try(const struct tpl *T, uintptr_t *pcs, int max, uintptr_t pc, uintptr_t bp,
                          const struct pcc_set *pcc, uintptr_t *opc, uintptr_t *obp, int *done)
{
    int j = 0, n = T->n;
    uintptr_t cpc = pc, cbp = bp;
    *done = 0;
    for (;; j++) {
        if (UNLIKELY(j >= max)) {
            *done = 1;
            return max;
        }
        if (j == n)
            break;
        const struct urule *c = pcc_find(pcc, cpc - 1);
        if (!c || rule_bits(c) != rule_bits(&T->r[j]))
            break;
        const struct urule *u = &T->r[j];
        uintptr_t nsp = T->sp[j + 1];
        if ((u->flags & RF_CFA_RBP) && cbp + (uintptr_t)(intptr_t)u->cfa_off != nsp)
            break;
        pcs[j] = cpc;
        if (u->flags & RF_RBP_SAVED)
            cbp = ld(nsp + (uintptr_t)(intptr_t)u->rbp_off);
        cpc = ld(nsp - 8);
        if (UNLIKELY(cpc < 0x4000)) { /* the walk stops here too */
            *done = 1;
            return j + 1;
        }
    }
    if (j == n && T->term == TT_END) {
        const struct urule *c = pcc_find(pcc, cpc - 1);
        if (c && rule_bits(c) == rule_bits(&T->r[n])) {
            pcs[j] = cpc;
            *done = 1;
            return j + 1;
        }
    }
    *opc = cpc;
    *obp = cbp;
    return j;
}

static void walk(uintptr_t *pcs, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp, int is_ra, struct region rg,
          struct pcc_set *pcc, struct rec *rc, struct cand *cd, struct wout *w, int n0, struct tpl *tr)
{
    int n = n0;
    int tn = n0, tterm = TT_NONE; /* template being recorded: frames done, end */
    struct mrange *R = __atomic_load_n(&g_r, ACQUIRE);
    uint32_t nr = R ? __atomic_load_n(&g_nr, RELAXED) : 0;
    if (nr > MAX_RANGES)
        nr = MAX_RANGES;
    uintptr_t clo = 1, clen = 0, cbase = 0;
    const struct utab *ctab = NULL;
    w->code = W_DONE;
    w->joined = 0;
    for (;;) {
        if (cd && n > 0 && is_ra) {
            /* a remembered frame with this very state: found through the
             * entry's index by sp, then compared whole */
            for (int k = 0; k < MEMO_WAYS; k++) {
                struct memo *m = cd->m[k];
                if (!m)
                    continue;
                int j = m->sph[(sp >> 3) & 63] - 1;
                if (UNLIKELY(j >= 0 && m->fsp[j] == sp && m->pcs[j] == pc && m->fbp[j] == (bp ^ MEMO_MASK))) {
                    int t = memo_join(m, j, pcs, n, max, &rg, rc);
                    if (t) {
                        w->joined = n + 1;
                        n = t;
                        goto out;
                    }
                    cd->m[k] = NULL; /* changed: not again in this walk */
                }
            }
        }
        if (rc) {
            if (LIKELY(n < MEMO_FRAMES)) {
                rc->m->fsp[n] = sp;
                rc->m->fbp[n] = bp ^ MEMO_MASK;
                rc->m->fr[n] = (uint8_t)rc->n;
            } else {
                rc->ok = 0;
            }
        }
        pcs[n++] = pc;
        if (UNLIKELY(n >= max))
            break;
        uintptr_t look = pc - (uintptr_t)is_ra;
        const struct urule *u;
        if (LIKELY(pcc != NULL)) {
            u = pcc_find(pcc, look);
            if (LIKELY(u != NULL))
                goto have_rule;
        }
        if (UNLIKELY(look - clo >= clen)) {
            /* the last range with lo <= look (branch-free search) */
            uint32_t a = 0, len = nr;
            if (!len)
                goto unknown;
            while (len > 1) {
                uint32_t half = len >> 1;
                a = __atomic_load_n(&R[a + half].lo, RELAXED) <= look ? a + half : a;
                len -= half;
            }
            struct mrange *m = &R[a];
            if (look < __atomic_load_n(&m->lo, RELAXED) || look >= __atomic_load_n(&m->hi, RELAXED)) {
            unknown:
                if (rc)
                    rc->ok = 0; /* depends on the loader's state */
                w->code = unknown_pc(look);
                w->need = look;
                break;
            }
            clo = __atomic_load_n(&m->lo, RELAXED);
            clen = __atomic_load_n(&m->hi, RELAXED) - clo;
            cbase = __atomic_load_n(&m->base, RELAXED);
            ctab = __atomic_load_n(&m->tab, ACQUIRE);
            if (UNLIKELY(!ctab)) {
                clen = 0;
                w->code = W_BUILD;
                w->need = look;
                break;
            }
        }
        {
            uintptr_t off = look - cbase;
            u = LIKELY(off <= 0xffffffffu) ? tab_lookup(ctab, (uint32_t)off) : &R_NOINFO;
            if (pcc)
                pcc_put(pcc, look, u);
        }
    have_rule:;
        uintptr_t cfa;
        switch (u->kind) {
        case K_STD:
            cfa = ((u->flags & RF_CFA_RBP) ? bp : sp) + (uintptr_t)(intptr_t)u->cfa_off;
            if (UNLIKELY(cfa < sp + 8 || cfa > rg.hi))
                goto out;
            if (u->flags & RF_RBP_SAVED) {
                uintptr_t a = cfa + (uintptr_t)(intptr_t)u->rbp_off;
                if (UNLIKELY(a < rg.lo || a > rg.hi - 8))
                    goto out;
                bp = ldr(a, rc);
            }
            pc = ldr(cfa - 8, rc);
            sp = cfa;
            is_ra = 1;
            if (tr && tn == n - 1 && n <= TPL_FRAMES) {
                if (tr->sp[n] != sp || rule_bits(&tr->r[n - 1]) != rule_bits(u))
                    tr->dirty = 1;
                tr->r[n - 1] = *u;
                tr->sp[n] = sp;
                tn = n;
            }
            break;
        case K_ALIGNED: {
            uintptr_t a = bp + (uintptr_t)(intptr_t)u->cfa_off;
            if (a < rg.lo || a > rg.hi - 8 || bp < rg.lo || bp > rg.hi - 8)
                goto out;
            cfa = ldr(a, rc);
            if (cfa < sp + 8 || cfa > rg.hi)
                goto out;
            pc = ldr(cfa - 8, rc);
            bp = ldr(bp, rc);
            sp = cfa;
            is_ra = 1;
            break;
        }
        case K_NOINFO: {
            /* No FDE for a pc of a loaded module.  unw_backtrace (libunwind
             * 1.6's fast trace, through unw_step's frame-chain code) then
             * tests the code at pc for __restore_rt and for an old-style PLT
             * entry, else guesses a frame-pointer frame: CFA = RBP + 16,
             * RA = [RBP + 8], RBP = [RBP], refused (the stack ends) when RBP
             * is 0, below SP or more than 0x4000 above it.  (libunwind's
             * cursor API, unw_step, does not continue from such a frame the
             * same way: its next CFA is the old one + 16.) */
            uintptr_t w0, w1;
            if (!in_code(R, nr, pc, 16)) {
                w->code = W_FALLBACK;
                goto out;
            }
            w0 = ld(pc);
            w1 = ld(pc + 8);
            if (w0 == 0x0f0000000fc0c748ull && (w1 & 0xffffff) == 0x050f)
                goto sigframe;
            if ((w0 & 0xffff) == 0x25ff && ((w0 >> 48) & 0xff) == 0x68 && ((w1 >> 24) & 0xff) == 0xe9) {
                cfa = sp + 8; /* PLT entry: CFA = RSP + 8 */
                if (UNLIKELY(cfa > rg.hi))
                    goto out;
                pc = ldr(cfa - 8, rc);
                sp = cfa;
                is_ra = 1;
                break;
            }
            if (!bp || bp < sp || bp - sp > 0x4000 || bp > rg.hi - 16)
                goto out;
            cfa = bp + 16;
            pc = ldr(bp + 8, rc);
            bp = ldr(bp, rc);
            sp = cfa;
            is_ra = 1;
            break;
        }
        case K_SIGNAL:
        sigframe : {
            /* rt_sigframe: the ucontext is at the handler's return sp */
            uintptr_t uc = sp;
            if (uc > rg.hi - 0xb0)
                goto out;
            uintptr_t npc = ldr(uc + 0xa8, rc), nsp = ldr(uc + 0xa0, rc), nbp = ldr(uc + 0x78, rc);
            if (!(nsp > sp && nsp < rg.hi) && !switch_region(nsp, &rg))
                goto out;
            if (rc)
                rc->ok = 0; /* the region may change: not memoized */
            pc = npc;
            sp = nsp;
            bp = nbp;
            is_ra = 0;
            break;
        }
        case K_END:
            if (tr && tn == n - 1) {
                if (rule_bits(&tr->r[n - 1]) != rule_bits(u))
                    tr->dirty = 1;
                tr->r[n - 1] = *u;
                tterm = TT_END;
            }
            goto out;
        default: /* K_FALLBACK */
            w->code = W_FALLBACK;
            goto out;
        }
        if (UNLIKELY(pc < 0x4000))
            break;
    }
out:
    if (tr) {
        if (tr->n != tn || tr->term != tterm)
            tr->dirty = 1;
        tr->n = tn;
        tr->term = tterm;
    }
    w->n = n;
}

/* ---- the libunwind fallback ---- */

/* pcs[0 .. n-1] were found by the table walk (pcs[0] with sp0); finish the
 * stack with libunwind's cursor: find the frame (pcs[0], sp0) from a context
 * of this frame, step along pcs[1 .. n-1] (taking libunwind's pcs from the
 * first difference on) and on to the end or max.  The result is exactly
 * what unw_backtrace's cursor loop gives from the same place. */
static __attribute__((noinline)) int fallback_walk(uintptr_t *pcs, int n, int max, uintptr_t sp0)
{
    unw_context_t uc;
    unw_cursor_t c;
    went_deep = 1;
    __atomic_fetch_add(&st_fb_stacks, 1, RELAXED);
    if (unw_getcontext(&uc) != 0 || unw_init_local(&c, &uc) != 0)
        return n;
    unw_word_t ip = 0, sp = 0;
    int found = 0;
    for (int i = 0; i < 32; i++) {
        if (unw_step(&c) <= 0)
            break;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || unw_get_reg(&c, UNW_REG_SP, &sp) < 0)
            break;
        if (ip == pcs[0] && sp == sp0) {
            found = 1;
            break;
        }
    }
    if (!found)
        return n; /* libunwind cannot reach our caller: keep what we have */
    int j = 1, own = 0;
    for (; j < max; j++) {
        if (unw_step(&c) <= 0)
            break;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0)
            break;
        if (j < n && !own && ip == pcs[j])
            continue;
        own = 1;
        pcs[j] = ip;
    }
    int fast = n < j ? n : j;
    __atomic_fetch_add(&st_fb_frames, (uint64_t)(j - fast), RELAXED);
    return j;
}

static inline void count_fast(int n)
{
    uint32_t p = tls.fast_pending + (uint32_t)n;
    if (p >= 256) {
        __atomic_fetch_add(&st_fast, p, RELAXED);
        p = 0;
    }
    tls.fast_pending = p;
}

/* the stack table's frames of a stack id (table.c); absent (the unit
 * test's build of this file): nothing is kept, the cache stays empty */
extern int ms_stack_get(uint32_t id, const uintptr_t **pcs) __attribute__((weak, visibility("hidden")));

/* every hit is compared in full, so the hash only has to spread the stacks;
 * bit 63 set: kept in this TLS, never a pointer */
static inline uint64_t kc_hash(const uintptr_t *pcs, int n)
{
    return ms_hash_pcs(pcs, n) | (1ULL << 63);
}

/* KC_WAYS ways (one cache line): the entry kept last comes first */
static inline struct kc_ent *kc_set(uint64_t h, uint64_t gen)
{
    return &tls.kc[((h ^ gen * 0xc2b2ae3d27d4eb4fULL) >> (63 - KC_BITS)) & ((1u << KC_BITS) - KC_WAYS)];
}

/* The stack-id cache's lookup for template T (matched: same g_seq, sp and
 * stack region) from the start state (pc, bp): n frames into pcs and the
 * id kept for them, or 0 (nothing written that matters).  The reads are
 * those tpl_try would make along the whole template; the checks it makes
 * per frame hold because the frames are equal to those of a capture whose
 * template walk passed whole under this version of T (see struct kc_ent). */
static inline int kc_try(const struct tpl *T, uintptr_t *pcs, int max, uintptr_t pc, uintptr_t bp, uint32_t *id)
{
    int n = T->n, na = T->na;
    if (T->term != TT_END || n + 1 > max || n + 1 <= na)
        return 0;
    pcs[0] = pc;
    if (LIKELY(!T->kcfa)) { /* no RBP-based CFA: the saved RBPs play no part */
        for (int j = 1; j <= n; j++)
            pcs[j] = ld(T->sp[j] - 8);
    } else {
        uintptr_t cbp = bp, bad = 0;
        for (int j = 0; j < n; j++) {
            const struct urule *u = &T->r[j];
            uintptr_t nsp = T->sp[j + 1];
            if (u->flags & RF_CFA_RBP)
                bad |= (cbp + (uintptr_t)(intptr_t)u->cfa_off) ^ nsp;
            if (u->flags & RF_RBP_SAVED)
                cbp = ld(nsp + (uintptr_t)(intptr_t)u->rbp_off);
            pcs[j + 1] = ld(nsp - 8);
        }
        if (bad)
            return 0;
    }
    uint64_t h = kc_hash(pcs, n + 1);
    const struct kc_ent *set = kc_set(h, T->gen), *e = NULL;
    for (int w = 0; w < KC_WAYS; w++)
        if (set[w].hash == (uint32_t)h && set[w].gen == T->gen)
            e = &set[w];
    if (!e)
        return 0;
    const uintptr_t *kp;
    if (ms_stack_get(e->id & ~KC_ID_TAG, &kp) != n + 1 - na)
        return 0;
    uintptr_t d = 0;
    for (int i = 0; i < na; i++)
        d |= pcs[i] ^ T->apc[i];
    for (int i = na; i <= n; i++)
        d |= pcs[i] ^ kp[i - na];
    if (d)
        return 0;
    *id = e->id & ~KC_ID_TAG;
    return n + 1;
}

/* a template changed (or may have): the stacks kept for it are gone */
static inline void tpl_changed(struct tpl *T)
{
    T->dirty = 0;
    T->gen = --tls.gen_next; /* bit 63 set */
    T->na = 0;
}

uint32_t ms_unwind_kept_id(void)
{
    uint32_t id = (uint32_t)tls.kc_hit;
    tls.kc_hit = 0;
    return id;
}

void ms_unwind_keep_id(uint32_t id, int lead)
{
    struct tpl *T = tls.kt;
    tls.kt = NULL;
    if (!T || !id || id >= KC_ID_TAG || lead < 1 || lead > KC_AGENT || lead >= tls.kn || T->gen != tls.kgen ||
        !ms_stack_get)
        return;
    if (T->na != lead || memcmp(T->apc, tls.kpc, (size_t)lead * sizeof T->apc[0]) != 0) {
        /* other agent frames than the stacks kept so far: those go */
        if (T->na)
            tpl_changed(T);
        T->na = lead;
        memcpy(T->apc, tls.kpc, (size_t)lead * sizeof T->apc[0]);
        T->kcfa = 0;
        for (int j = 0; j < T->n; j++)
            T->kcfa |= T->r[j].flags & RF_CFA_RBP;
    }
    struct kc_ent *e = kc_set(tls.khash, T->gen);
    for (int w = KC_WAYS - 1; w > 0; w--)
        e[w] = e[w - 1];
    e->hash = (uint32_t)tls.khash;
    e->gen = T->gen;
    e->id = id | KC_ID_TAG;
}

static int capture_common(uintptr_t *pcs, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp, int is_ra)
{
    if (!pcs || max <= 0)
        return 0;
    struct region rg;
    if (UNLIKELY(!start_region(sp, &rg))) {
        pcs[0] = pc;
        return fallback_walk(pcs, 1, max, sp);
    }
    struct wout w = {0, 0, 0, 0};
    int k = -1;
    /* a capture in a signal handler that interrupted another capture of
     * this thread leaves the cache alone: an entry may be half written */
    int nested = tls.depth++ > 0;
    /* templates (and their tags) are left alone by nested captures and by
     * those of handlers the agent defers (ms_unwind_nocache): the hook they
     * interrupted may hold its template's tag between capture and use */
    int notpl = nested || tls.nocache;
    int kc_on = 0;           /* the stack-id cache was tried (or it may keep this stack) */
    struct tpl *used = NULL; /* the template this capture went through */
    int full = 0;            /* ... and it gave the whole stack */
    if (!notpl) {
        tls.last = NULL;
        tls.kc_hit = 0;
        tls.kt = NULL;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    for (int attempt = 0; attempt < 64 && k < 0; attempt++) {
        uint64_t s = __atomic_load_n(&g_seq, ACQUIRE);
        if (UNLIKELY(s & 1)) { /* the module list is being changed */
            if (attempt < 32)
                __builtin_ia32_pause();
            else if (!repair_seq())
                break;
            continue;
        }
        struct pcc_set *pcc = NULL;
        struct rec rec, *rc = NULL;
        struct memo *slot = NULL;
        struct cand cand, *cd = NULL;
        struct tpl *tr = NULL;
        int n0 = 0;
        uintptr_t wpc = pc, wsp = sp, wbp = bp;
        if (LIKELY(!nested)) {
            if (UNLIKELY(tls.pcc_gen != s + 1)) {
                memset(tls.pcc, 0, sizeof tls.pcc);
                tls.pcc_gen = s + 1;
            }
            pcc = tls.pcc;
            if (LIKELY(is_ra && !notpl)) {
                tr = &tls.tpl[TPL_IDX(sp)];
                if (tr->seq1 == s + 1 && tr->sp[0] == sp && tr->hi == rg.hi) {
                    uint32_t kid;
                    /* the cache pays while it hits one capture in three
                     * or more (a miss costs about a third of what a hit
                     * saves); else it is tried one capture in 16 */
                    kc_on = tls.kc_score > 0 || !(++tls.kc_probe & 15);
                    tls.kc_tag = 0x8000;
                    int kn = kc_on && tr->na ? kc_try(tr, pcs, max, pc, bp, &kid) : 0;
                    if (kc_on && tr->na)
                        tls.kc_score = (int16_t)(kn ? (tls.kc_score < 64 ? tls.kc_score + 2 : 64)
                                                    : (tls.kc_score > -64 ? tls.kc_score - 1 : -64));
                    if (kn) {
                        __atomic_thread_fence(ACQUIRE);
                        if (UNLIKELY(__atomic_load_n(&g_seq, RELAXED) != s))
                            continue;
                        count_fast(kn);
                        k = kn;
                        tls.kc_hit = kid | (1ULL << 63);
                        break;
                    }
                    int done;
                    n0 = tpl_try(tr, pcs, max, pc, bp, pcc, &wpc, &wbp, &done);
                    if (done) {
                        __atomic_thread_fence(ACQUIRE);
                        if (UNLIKELY(__atomic_load_n(&g_seq, RELAXED) != s))
                            continue;
                        count_fast(n0);
                        k = n0;
                        used = tr;
                        full = 1;
                        break;
                    }
                    wsp = tr->sp[n0];
                } else {
                    tr->seq1 = s + 1;
                    tr->hi = rg.hi;
                    tr->sp[0] = sp;
                    tr->n = 0;
                    tr->term = TT_NONE;
                    tpl_changed(tr);
                }
                if (n0 > 0) /* the memo's walks start at frame 0 */
                    goto no_record;
            }
            if (UNLIKELY(!tls.memo_init)) {
                for (int i = 0; i < MEMO_WAYS; i++)
                    tls.way[i] = (uint8_t)i;
                tls.stage = MEMO_WAYS;
                tls.memo_init = 1;
            }
            if (LIKELY(is_ra)) {
                for (int i = 0; i < MEMO_WAYS; i++) {
                    struct memo *m = &tls.memo[tls.way[i]];
                    if (m->seq1 != s + 1 || m->pc0 != pc || m->sp0 != sp || m->bp0 != (bp ^ MEMO_MASK) || m->hi != rg.hi ||
                        (!m->ended && max > m->n))
                        continue;
                    uintptr_t diff = 0;
                    for (int j = 0; j < m->nreads; j++)
                        diff |= ld(m->raddr[j]) ^ MEMO_MASK ^ m->rval[j];
                    if (diff)
                        continue;
                    int n = m->n < max ? m->n : max;
                    memcpy(pcs, m->pcs, (size_t)n * sizeof pcs[0]);
                    __atomic_thread_fence(ACQUIRE);
                    if (UNLIKELY(__atomic_load_n(&g_seq, RELAXED) != s))
                        break;
                    count_fast(n);
                    if (tls.memo_credit < 16)
                        tls.memo_credit++;
                    if (++m->hits >= 1024) /* age */
                        for (int q = 0; q <= MEMO_WAYS; q++)
                            tls.memo[q].hits >>= 1;
                    k = n;
                    break;
                }
                if (k >= 0)
                    break;
                /* a remembered walk may still share our outer frames */
                int nc = 0;
                for (int i = 0; i < MEMO_WAYS; i++) {
                    struct memo *m = &tls.memo[tls.way[i]];
                    cand.m[i] = m->seq1 == s + 1 && m->hi == rg.hi ? m : NULL;
                    nc += cand.m[i] != NULL;
                }
                /* the per-frame test costs about a third of a frame: try
                 * joins while they save more frames than they test, else
                 * one walk in 16 */
                if (nc && (tls.join_score > 0 || !(++tls.join_probe & 15)))
                    cd = &cand;
                /* recording costs ~15% of a walk, about as much as a walk when
                 * it joins a remembered one: it spends two credits, a
                 * whole-stack hit earns one; without credit, one walk in 8 */
                if (tls.memo_credit >= 2)
                    tls.memo_credit -= 2;
                else if (++tls.memo_misses & 7)
                    goto no_record;
                slot = &tls.memo[tls.stage];
                slot->seq1 = 0;
                rec.n = 0;
                rec.ok = 1;
                rec.addr = slot->raddr;
                rec.val = slot->rval;
                rec.m = slot;
                rc = &rec;
            }
        }
    no_record:
        walk(pcs, max, wpc, wsp, wbp, n0 ? 1 : is_ra, rg, pcc, rc, cd, &w, n0, tr);
        if (tr && tr->dirty) /* the walk recorded something else into the template */
            tpl_changed(tr);
        __atomic_thread_fence(ACQUIRE);
        if (UNLIKELY(__atomic_load_n(&g_seq, RELAXED) != s))
            continue;
        if (cd && w.code == W_DONE) {
            int tested = w.joined ? w.joined : w.n, saved = w.joined ? w.n - w.joined : 0;
            if (saved > tested)
                tls.join_score = tls.join_score < 32 ? tls.join_score + 2 : 32;
            else
                tls.join_score = tls.join_score > -32 ? tls.join_score - 1 : -32;
        }
        used = tr;
        switch (w.code) {
        case W_DONE:
            if (slot && rec.ok && w.n <= MEMO_FRAMES) {
                slot->pc0 = pc;
                slot->sp0 = sp;
                slot->bp0 = bp ^ MEMO_MASK;
                slot->hi = rg.hi;
                slot->n = w.n;
                slot->ended = w.n < max;
                slot->nreads = rec.n;
                memcpy(slot->pcs, pcs, (size_t)w.n * sizeof pcs[0]);
                memset(slot->sph, 0, sizeof slot->sph);
                for (int t = w.n - 1; t >= 0; t--) /* the innermost frame wins a slot */
                    slot->sph[(slot->fsp[t] >> 3) & 63] = (uint8_t)(t + 1);
                slot->seq1 = s + 1;
                slot->hits = 0;
                /* in place of the way with the fewest hits (ties: in turn);
                 * the entry it held is the next stage */
                uint32_t v = tls.memo_next++ % MEMO_WAYS;
                for (uint32_t q = 0; q < MEMO_WAYS; q++)
                    if (tls.memo[tls.way[q]].seq1 != s + 1 ||
                        tls.memo[tls.way[q]].hits < tls.memo[tls.way[v]].hits)
                        v = q;
                uint8_t old = tls.way[v];
                tls.way[v] = tls.stage;
                tls.stage = old;
            }
            count_fast(w.n);
            k = w.n;
            break;
        case W_FALLBACK:
            k = fallback_walk(pcs, w.n, max, sp);
            count_fast(k < w.n ? k : w.n);
            break;
        default: /* W_BUILD, W_RESCAN */
            if (!do_build(w.code == W_RESCAN ? NEED_RESCAN : NEED_TABLE, w.need)) {
                k = fallback_walk(pcs, w.n, max, sp);
                count_fast(k < w.n ? k : w.n);
            }
            break;
        }
    }
    if (k < 0) {
        pcs[0] = pc;
        k = fallback_walk(pcs, 1, max, sp);
        used = NULL;
    }
    if (used && k > 0 && k <= TPL_FRAMES) {
        int same = 0;
        if (full && k == used->lastn && max == used->lastmax) {
            uintptr_t d = 0;
            for (int j = 0; j < k; j++)
                d |= pcs[j] ^ used->lastpc[j];
            same = d == 0;
        }
        if (!same) {
            memcpy(used->lastpc, pcs, (size_t)k * sizeof pcs[0]);
            used->lastn = k;
            used->lastmax = max;
            used->tag = 0;
        }
        tls.last = used;
        tls.last_same = same;
        /* a stack the template walk gave whole: the caller may keep its id
         * (ms_unwind_keep_id) for the stack-id cache */
        if (kc_on && full && k == used->n + 1 && used->term == TT_END && ms_stack_get) {
            tls.kt = used;
            tls.kgen = used->gen;
            tls.khash = kc_hash(pcs, k);
            tls.kn = k;
            memcpy(tls.kpc, pcs, (size_t)(k < KC_AGENT ? k : KC_AGENT) * sizeof pcs[0]);
        }
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    tls.depth--;
    return k;
}

uint32_t *ms_unwind_stack_tag(int *same)
{
    struct tpl *t = tls.last;
    tls.last = NULL;
    *same = t ? tls.last_same : 0;
    return t ? &t->tag : NULL;
}

void ms_unwind_nocache(int on)
{
    /* a count: a handler that interrupts another one between its calls
     * leaves the outer one's setting as it found it */
    tls.nocache += on ? 1 : -1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Entry points: the caller's pc (our return address), sp (just above it)
 * and rbp (untouched at entry) are taken before any code of ours runs, then
 * the C implementation is entered by a tail jump, so that it has no frame
 * of its own in between.  Naked functions: C definitions (visibility as
 * any other function of the file) whose whole body is this asm; their CFI
 * is the CIE's (CFA = RSP + 8, return address at CFA - 8). */
HIDDEN __attribute__((used, noinline)) int ms_unwind__capture_impl(uintptr_t *pcs, int max, uintptr_t pc,
                                                                   uintptr_t sp, uintptr_t bp);
HIDDEN __attribute__((used, noinline)) int ms_unwind__verify_impl(uintptr_t *pcs, int max, uintptr_t pc,
                                                                  uintptr_t sp, uintptr_t bp);

__attribute__((naked)) int ms_unwind_capture(uintptr_t *pcs __attribute__((unused)),
                                             int max __attribute__((unused)))
{
    __asm__("movq (%rsp), %rdx\n\t"
            "leaq 8(%rsp), %rcx\n\t"
            "movq %rbp, %r8\n\t"
            "jmp ms_unwind__capture_impl\n\t");
}

__attribute__((naked)) int ms_unwind_capture_verify(uintptr_t *pcs __attribute__((unused)),
                                                    int max __attribute__((unused)))
{
    __asm__("movq (%rsp), %rdx\n\t"
            "leaq 8(%rsp), %rcx\n\t"
            "movq %rbp, %r8\n\t"
            "jmp ms_unwind__verify_impl\n\t");
}

int ms_unwind__capture_impl(uintptr_t *pcs, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp)
{
    return capture_common(pcs, max, pc, sp, bp, 1);
}

int ms_unwind_capture_from(uintptr_t *pcs, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp, int pc_is_ra)
{
    return capture_common(pcs, max, pc, sp, bp, pc_is_ra ? 1 : 0);
}

#define VERIFY_MAX 256
static uint64_t mm_lock;
static uintptr_t mm_fast[VERIFY_MAX], mm_ref[VERIFY_MAX];
static int mm_nfast, mm_nref, mm_have;

int ms_unwind__verify_impl(uintptr_t *pcs, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp)
{
    if (max > VERIFY_MAX)
        max = VERIFY_MAX;
    int n = capture_common(pcs, max, pc, sp, bp, 1);
    if (max <= 0 || !pcs)
        return n;
    void *ref[VERIFY_MAX + 1];
    /* ref[0] is the return address into this function, ref[1] our caller's */
    int m = unw_backtrace(ref, max + 1) - 1;
    if (m < 0)
        m = 0;
    int same = m == n;
    for (int i = 0; same && i < n; i++)
        same = pcs[i] == (uintptr_t)ref[i + 1];
    __atomic_fetch_add(&st_vchecked, 1, RELAXED);
    if (!same) {
        __atomic_fetch_add(&st_vmismatch, 1, RELAXED);
        uint64_t z = 0;
        if (__atomic_compare_exchange_n(&mm_lock, &z, 1, 0, ACQUIRE, RELAXED)) {
            for (int i = 0; i < n; i++)
                mm_fast[i] = pcs[i];
            for (int i = 0; i < m; i++)
                mm_ref[i] = (uintptr_t)ref[i + 1];
            mm_nfast = n;
            mm_nref = m;
            mm_have = 1;
            __atomic_store_n(&mm_lock, 0, RELEASE);
        }
    }
    return n;
}

int ms_unwind_last_mismatch(uintptr_t *fast, int *nfast, uintptr_t *ref, int *nref, int max)
{
    uint64_t z = 0;
    int have = 0;
    while (!__atomic_compare_exchange_n(&mm_lock, &z, 1, 0, ACQUIRE, RELAXED))
        z = 0;
    if (mm_have) {
        have = 1;
        int a = mm_nfast < max ? mm_nfast : max, b = mm_nref < max ? mm_nref : max;
        for (int i = 0; i < a; i++)
            fast[i] = mm_fast[i];
        for (int i = 0; i < b; i++)
            ref[i] = mm_ref[i];
        *nfast = mm_nfast;
        *nref = mm_nref;
    }
    __atomic_store_n(&mm_lock, 0, RELEASE);
    return have;
}

int ms_unwind_tables(struct ms_unwind_table_info *out, int max)
{
    sigset_t old;
    if (!lock_and_block(&old))
        return 0;
    int n = 0;
    for (struct utab *t = g_all; t; t = t->next_all, n++) {
        if (n >= max)
            continue;
        struct ms_unwind_table_info *o = &out[n];
        memset(o, 0, sizeof *o);
        memcpy(o->name, t->name, sizeof o->name);
        o->name[sizeof o->name - 1] = 0;
        o->rows = t->nrows;
        o->rules = t->nrules;
        for (uint32_t i = 0; i < t->nrows; i++)
            o->fallback_rows += t->rules[t->ridx[i]].kind <= K_NOINFO && t->ridx[i] == 0;
        o->bytes = t->bytes;
        for (uint32_t i = 0; i < g_nr; i++)
            if (g_r[i].tab == t)
                o->loaded = 1;
    }
    unlock_and_unblock(&old);
    return n;
}

void ms_unwind_stats(struct ms_unwind_stats *out)
{
    if (tls.fast_pending) {
        __atomic_fetch_add(&st_fast, tls.fast_pending, RELAXED);
        tls.fast_pending = 0;
    }
    out->fast_frames = __atomic_load_n(&st_fast, RELAXED);
    out->fallback_frames = __atomic_load_n(&st_fb_frames, RELAXED);
    out->fallback_stacks = __atomic_load_n(&st_fb_stacks, RELAXED);
    out->tables_built = __atomic_load_n(&st_tables, RELAXED);
    out->table_bytes = __atomic_load_n(&st_bytes, RELAXED);
    out->verify_checked = __atomic_load_n(&st_vchecked, RELAXED);
    out->verify_mismatch = __atomic_load_n(&st_vmismatch, RELAXED);
    out->verify_kept = __atomic_load_n(&st_kc_checked, RELAXED);
}

void ms_unwind_verify_kept_id(int same)
{
    __atomic_fetch_add(&st_kc_checked, 1, RELAXED);
    if (!same)
        __atomic_fetch_add(&st_vmismatch, 1, RELAXED);
}
