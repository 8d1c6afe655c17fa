/* trace_zstd_bench.c - what the trace writer's compression costs, on a real trace.
 *   build: cc -O2 -o trace_zstd_bench bench/trace_zstd_bench.c -lzstd
 *   usage: trace_zstd_bench TRACE MAXCHUNKS SPEC...
 * Decompresses up to MAXCHUNKS chunks of TRACE (docs/trace-format.md), then compresses
 * each chunk again as the agent does (one zstd frame per chunk, then FNV-1a over it) with
 * each SPEC = LEVEL[,HASHLOG[,MINMATCH[,TARGETLENGTH[,LIT]]]] (0 = the level's default;
 * LIT 1 forces Huffman literals, an experimental zstd parameter), best of REPS (env, 5)
 * passes in thread CPU time.  Prints raw and compressed bytes, ratio, ms, ns per raw byte,
 * and the FNV-1a share. */
#define _GNU_SOURCE
#define ZSTD_STATIC_LINKING_ONLY
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: trace_zstd_bench TRACE MAXCHUNKS SPEC...\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return perror(argv[1]), 1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)sz);
    if (!d || fread(d, 1, (size_t)sz, f) != (size_t)sz)
        return 1;
    fclose(f);
    uint32_t hl;
    memcpy(&hl, d + 12, 4);
    long off = 16 + (long)hl;
    int maxc = atoi(argv[2]), reps = getenv("REPS") ? atoi(getenv("REPS")) : 5, k = 0;
    uint8_t **raw = calloc((size_t)maxc, sizeof *raw);
    uint32_t *rl = calloc((size_t)maxc, sizeof *rl);
    while (off + 16 <= sz && k < maxc) {
        uint32_t h[4];
        memcpy(h, d + off, 16);
        if (h[0] != 0x4b43534du || off + 16 + (long)h[1] > sz)
            break;
        raw[k] = malloc(h[2] ? h[2] : 1);
        if (ZSTD_isError(ZSTD_decompress(raw[k], h[2], d + off + 16, h[1])))
            break;
        rl[k++] = h[2];
        off += 16 + (long)h[1];
    }
    long tot = 0;
    size_t maxr = 0;
    for (int i = 0; i < k; i++) {
        tot += rl[i];
        maxr = rl[i] > maxr ? rl[i] : maxr;
    }
    uint8_t *out = malloc(ZSTD_compressBound(maxr));
    ZSTD_CCtx *c = ZSTD_createCCtx();
    printf("%d chunks, %ld raw bytes\n", k, tot);
    for (int a = 3; a < argc; a++) {
        int lvl = 1, hlog = 0, mml = 0, tlen = 0, lit = 0;
        sscanf(argv[a], "%d,%d,%d,%d,%d", &lvl, &hlog, &mml, &tlen, &lit);
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, lvl);
        if (hlog)
            ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, hlog);
        if (mml)
            ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, mml);
        if (tlen)
            ZSTD_CCtx_setParameter(c, ZSTD_c_targetLength, tlen);
        if (lit)
            ZSTD_CCtx_setParameter(c, ZSTD_c_literalCompressionMode, ZSTD_ps_enable);
        double best = 1e30, best_fnv = 0;
        long cs = 0;
        for (int r = 0; r < reps; r++) {
            double t = cpu_now(), ft = 0;
            cs = 0;
            for (int i = 0; i < k; i++) {
                size_t n = ZSTD_compress2(c, out, ZSTD_compressBound(rl[i]), raw[i], rl[i]);
                if (ZSTD_isError(n))
                    return fprintf(stderr, "%s\n", ZSTD_getErrorName(n)), 1;
                cs += (long)n;
                double t2 = cpu_now();
                volatile uint32_t x = fnv1a(out, n);
                (void)x;
                ft += cpu_now() - t2;
            }
            double e = cpu_now() - t;
            if (e < best)
                best = e, best_fnv = ft;
        }
        printf("%-14s %ld -> %ld (x%.3f)  %.1f ms  %.2f ns/raw byte  (FNV-1a %.1f ms)\n", argv[a], tot, cs,
               (double)tot / (double)cs, best * 1e3, best * 1e9 / (double)tot, best_fnv * 1e3);
    }
    return 0;
}
