/* analyze_main.c - a stand-in for `memsleuth report|diff` used by the tests
 * of src/analyze/ (the real command, src/cli/memsleuth.c, calls the same two
 * functions):  ms-analyze report ARGS...  |  ms-analyze diff ARGS... */
#include <stdio.h>
#include <string.h>

#include "analyze.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "report"))
        return ms_report_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "diff"))
        return ms_diff_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: %s report|diff ARGS...\n", argv[0]);
    return 2;
}
