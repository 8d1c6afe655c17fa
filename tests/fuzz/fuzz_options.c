/* fuzz_options.c - libFuzzer target for the command-line option parser:
 * the input is split into arguments at NUL bytes and each is parsed; every
 * result must be 1, 0 or -1 with a terminated one-line message, and the
 * options must stay within their documented ranges. */
#include "../../src/common/options.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_options o;
    ms_options_init(&o);
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    for (size_t i = 0; i <= size;) {
        const char *arg = buf + i;
        size_t n = strlen(arg);
        char err[256];
        err[0] = 0;
        int r = ms_options_parse(&o, arg, err, sizeof err);
        if (r < -1 || r > 1)
            abort();
        if (r == -1 && (!err[0] || memchr(err, '\n', strlen(err))))
            abort();
        i += n + 1;
    }
    if (o.leak_check < 0 || o.leak_check > 2 || o.show_kinds > 15 || o.error_kinds > 15 ||
        o.num_callers < 1 || o.num_callers > 250 || o.error_exitcode < 0 || o.error_exitcode > 255 ||
        o.malloc_fill < -1 || o.malloc_fill > 255 || o.free_fill < -1 || o.free_fill > 255 ||
        strlen(o.log_file) >= sizeof o.log_file || strlen(o.supp_files) >= sizeof o.supp_files)
        abort();
    free(buf);
    return 0;
}
