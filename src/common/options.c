/* options.c - see options.h */
#include "options.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ms_options_init(struct ms_options *o)
{
    memset(o, 0, sizeof *o);
    o->leak_check = 2;
    o->show_kinds = (1u << 0) | (1u << 2);
    o->error_kinds = (1u << 0) | (1u << 2);
    o->num_callers = 64;
    o->freeres = 1;
    o->malloc_fill = -1;
    o->free_fill = -1;
    o->snapshot_peak_pct = 150;
    o->snapshot_peak_min = 64ull << 20;
    o->graph = 1;
    strcpy(o->trace_file, "memsleuth.%n.%p.trace");
}

int ms_options_kinds(const char *s, unsigned *out)
{
    static const char *names[] = { "definite", "indirect", "possible", "reachable" };
    if (!strcmp(s, "all")) {
        *out = 15;
        return 0;
    }
    if (!strcmp(s, "none")) {
        *out = 0;
        return 0;
    }
    unsigned k = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strlen(names[i]) == n && !strncmp(p, names[i], n)) {
                k |= 1u << i;
                found = 1;
            }
        if (!found)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    *out = k;
    return 0;
}

static int yesno(const char *v, int *out)
{
    if (!strcmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "no")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int copy(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap || !*v)
        return -1;
    strcpy(dst, v);
    return 0;
}

int ms_options_parse(struct ms_options *o, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) || !eq) {
        if (!strcmp(arg, "--gen-suppressions")) {
            o->gen_suppressions = 1;
            return 1;
        }
        return 0;
    }
    size_t nl = (size_t)(eq - arg);
    const char *v = eq + 1;
    int bad = 0;
#define IS(name) (nl == strlen(name) && !strncmp(arg, name, nl))
    if (IS("--leak-check")) {
        if (!strcmp(v, "no"))
            o->leak_check = 0;
        else if (!strcmp(v, "summary"))
            o->leak_check = 1;
        else if (!strcmp(v, "full") || !strcmp(v, "yes"))
            o->leak_check = 2;
        else
            bad = 1;
    } else if (IS("--show-leak-kinds") || IS("--errors-for-leak-kinds")) {
        unsigned k;
        bad = ms_options_kinds(v, &k) < 0;
        if (!bad && IS("--show-leak-kinds"))
            o->show_kinds = k;
        else if (!bad)
            o->error_kinds = k;
    } else if (IS("--error-exitcode")) {
        char *end;
        long n = strtol(v, &end, 10);
        bad = !*v || *end || n < 0 || n > 255;
        if (!bad)
            o->error_exitcode = (int)n;
    } else if (IS("--track-fds")) {
        bad = yesno(v, &o->track_fds) < 0;
    } else if (IS("--num-callers")) {
        char *end;
        long n = strtol(v, &end, 10);
        bad = !*v || *end || n < 1 || n > 250;
        if (!bad)
            o->num_callers = (int)n;
    } else if (IS("--gen-suppressions")) {
        if (!strcmp(v, "all") || !strcmp(v, "yes"))
            o->gen_suppressions = 1;
        else if (!strcmp(v, "no"))
            o->gen_suppressions = 0;
        else
            bad = 1;
    } else if (IS("--run-libc-freeres") || IS("--run-cxx-freeres")) {
        bad = yesno(v, &o->freeres) < 0;
    } else if (IS("--malloc-fill") || IS("--free-fill")) {
        char *end;
        long b = strtol(v, &end, 16);
        bad = !*v || *end || b < 0 || b > 255;
        if (bad)
            ;
        else if (IS("--malloc-fill"))
            o->malloc_fill = (int)b;
        else
            o->free_fill = (int)b;
    } else if (IS("--keep-stacktraces")) {
        if (!strcmp(v, "alloc"))
            o->keep_free_stacks = 0;
        else if (!strcmp(v, "alloc-and-free"))
            o->keep_free_stacks = 1;
        else
            bad = 1;
    } else if (IS("--sample-rate")) {
        /* BYTES, or with a K, M or G suffix (powers of 1024); 0: no sampling */
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        unsigned long long mul = 1;
        if (*end == 'K' || *end == 'k')
            mul = 1ull << 10, end++;
        else if (*end == 'M' || *end == 'm')
            mul = 1ull << 20, end++;
        else if (*end == 'G' || *end == 'g')
            mul = 1ull << 30, end++;
        bad = !*v || *v == '-' || *end || n > (1ull << 40) / mul;
        if (!bad)
            o->sample_rate = n * mul;
    } else if (IS("--snapshot-signal")) {
        static const struct { const char *n; int s; } sigs[] = {
            { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "HUP", SIGHUP }, { "URG", SIGURG },
            { "WINCH", SIGWINCH }, { "PWR", SIGPWR }, { "PROF", SIGPROF }, { "VTALRM", SIGVTALRM } };
        const char *n = !strncmp(v, "SIG", 3) ? v + 3 : v;
        int sig = 0;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            if (!strcmp(n, sigs[i].n))
                sig = sigs[i].s;
        if (!sig) {
            char *end;
            long k = strtol(v, &end, 10);
            if (*v && !*end && k > 0 && k < 64 && k != SIGKILL && k != SIGSTOP && k != SIGSEGV && k != SIGBUS)
                sig = (int)k;
        }
        bad = sig == 0;
        if (!bad)
            o->snapshot_signal = sig;
    } else if (IS("--snapshot-interval")) {
        char *end;
        double secs = strtod(v, &end);
        bad = !*v || *end || !(secs > 0.0009 && secs < 86400.0 * 365);
        if (!bad)
            o->snapshot_interval_ms = (int)(secs * 1000.0 + 0.5);
    } else if (IS("--snapshot-peak")) {
        char *end;
        double f = strtod(v, &end);
        if (!strcmp(v, "no"))
            o->snapshot_peak_pct = 0;
        else if (*v && !*end && f >= 1.01 && f <= 100.0)
            o->snapshot_peak_pct = (int)(f * 100.0 + 0.5);
        else
            bad = 1;
    } else if (IS("--snapshot-peak-min")) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        unsigned sh = 0;
        if (*end == 'K' || *end == 'k')
            sh = 10, end++;
        else if (*end == 'M' || *end == 'm')
            sh = 20, end++;
        else if (*end == 'G' || *end == 'g')
            sh = 30, end++;
        bad = *v < '0' || *v > '9' || *end || n == 0 || n > (1ull << 50) >> sh;
        if (!bad)
            o->snapshot_peak_min = n << sh;
    } else if (IS("--graph")) {
        bad = yesno(v, &o->graph) < 0;
    } else if (IS("--trace")) {
        if (!strcmp(v, "no"))
            o->trace_file[0] = 0;
        else
            bad = copy(o->trace_file, sizeof o->trace_file, v);
    } else if (IS("--log-file")) {
        bad = copy(o->log_file, sizeof o->log_file, v);
    } else if (IS("--json")) {
        bad = copy(o->json_file, sizeof o->json_file, v);
    } else if (IS("--suppressions")) {
        size_t have = strlen(o->supp_files);
        if (!*v || have + strlen(v) + 2 > sizeof o->supp_files) {
            bad = 1;
        } else {
            if (have)
                o->supp_files[have++] = '\n';
            strcpy(o->supp_files + have, v);
        }
    } else {
        return 0;
    }
#undef IS
    if (bad) {
        /* one line, whatever the value holds: control bytes become '?' */
        char shown[64];
        size_t k = 0;
        for (const char *c = v; *c && k < sizeof shown - 4; c++)
            shown[k++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
        if (strlen(v) > k)
            shown[k++] = '.', shown[k++] = '.', shown[k++] = '.';
        shown[k] = 0;
        snprintf(err, errlen, "bad value '%s' for option %.*s", shown, (int)nl, arg);
        for (char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = '?';
        return -1;
    }
    return 1;
}
