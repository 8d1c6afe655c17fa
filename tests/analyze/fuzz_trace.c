/*
 * fuzz_trace.c - libFuzzer target: arbitrary bytes through the trace reader,
 * the model, and (for well-framed inputs) the whole report and diff.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc/analyze -Isrc/common \
 *       tests/analyze/fuzz_trace.c src/analyze/{trace_read,model,out,report,diff}.c \
 *       src/common/symbolize.c -lzstd -ldw -lelf -ldl -lm
 *
 * The first byte chooses the mode:
 *   bit 0 = 0: the rest is a trace file as is (bit 1: skip the chunk checks,
 *              so that mutated chunks get to zstd and the record decoder);
 *   bit 0 = 1: the rest is records: split at each "CHNK", the first piece is
 *              the header payload and each next one becomes a zstd chunk with
 *              a valid check (the record decoder and the model get the
 *              mutations, not the framing); bit 1: then run `report` on it
 *              (bit 2: text, else json; bit 3: --format=dump; bit 4: `diff`
 *              of the trace with itself, --scale 1:2).
 * Each input stops after MAX_RECORDS records, so a 64 MiB zstd bomb of
 * ALLOC records cannot take the fuzzer's memory (the live map is, by design,
 * proportional to the live blocks the trace describes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "analyze.h"
#include "model.h"
#include "trace_read.h"

#define MAX_RECORDS 1000000

static void put(unsigned char **b, size_t *n, size_t *cap, const void *d, size_t len)
{
    if (*n + len > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < *n + len)
            nc *= 2;
        *b = realloc(*b, nc);
        if (!*b)
            abort();
        *cap = nc;
    }
    memcpy(*b + *n, d, len);
    *n += len;
}

static void put32(unsigned char **b, size_t *n, size_t *cap, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    put(b, n, cap, x, 4);
}

/* records split at "CHNK" -> a framed trace */
static unsigned char *frame(const uint8_t *d, size_t n, size_t *outn)
{
    unsigned char *b = NULL;
    size_t bn = 0, cap = 0;
    const uint8_t *end = d + n, *p = d;
    const uint8_t *cut = memmem(p, (size_t)(end - p), "CHNK", 4);
    size_t hl = (size_t)((cut ? cut : end) - p);
    put(&b, &bn, &cap, "MSLTRACE", 8);
    put32(&b, &bn, &cap, 1);
    put32(&b, &bn, &cap, (uint32_t)hl);
    put(&b, &bn, &cap, p, hl);
    while (cut) {
        p = cut + 4;
        cut = memmem(p, (size_t)(end - p), "CHNK", 4);
        size_t rl = (size_t)((cut ? cut : end) - p);
        size_t cb = ZSTD_compressBound(rl);
        unsigned char *c = malloc(cb ? cb : 1);
        if (!c)
            abort();
        size_t cn = ZSTD_compress(c, cb, p, rl, 1);
        if (ZSTD_isError(cn))
            abort();
        put32(&b, &bn, &cap, MS_TRACE_CHUNK_MAGIC);
        put32(&b, &bn, &cap, (uint32_t)cn);
        put32(&b, &bn, &cap, (uint32_t)rl);
        put32(&b, &bn, &cap, ms_trace_fnv1a(c, cn));
        put(&b, &bn, &cap, c, cn);
        free(c);
    }
    *outn = bn;
    return b;
}

static void read_model(const unsigned char *d, size_t n, int ignore_check)
{
    char err[512];
    struct ms_trace_reader *r = ms_trace_open_mem(d, n, "fuzz", err, sizeof err);
    if (!r)
        return;
    ms_trace_set_ignore_check(r, ignore_check);
    struct ms_model *m = ms_model_new();
    if (!m)
        abort();
    struct ms_trace_rec rec;
    size_t k = 0;
    while (k++ < MAX_RECORDS && ms_trace_next(r, &rec) > 0)
        if (ms_model_feed(m, &rec) < 0)
            break;
    (void)ms_trace_message(r);
    ms_trace_close(r);
    ms_model_finish(m);
    uint64_t s[MS_MODEL_SAMPLES];
    for (size_t i = 0; i < m->nsites; i++)
        ms_model_site_samples(m, i, s);
    ms_model_free(m);
}

static void run_cli(const unsigned char *d, size_t n, unsigned mode)
{
    int fd = memfd_create("fuzz-trace", MFD_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, d, n) != (ssize_t)n) {
        close(fd);
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (mode & 16) {
        char *argv[] = { "diff", "--scale", "1:2", "--format=json", "-o", "/dev/null", path, path,
                         NULL };
        ms_diff_main(8, argv);
    } else {
        char *argv[] = { "report", (mode & 8) ? "--format=dump" : (mode & 4) ? "--format=text" : "--format=json",
                         "--stacks", "-o", "/dev/null", path, NULL };
        ms_report_main(6, argv);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    unsigned mode = data[0];
    data++;
    size--;
    if (!(mode & 1)) {
        read_model(data, size, (mode & 2) != 0);
        return 0;
    }
    size_t fn;
    unsigned char *f = frame(data, size, &fn);
    read_model(f, fn, 0);
    if (mode & 2)
        run_cli(f, fn, mode);
    free(f);
    return 0;
}
