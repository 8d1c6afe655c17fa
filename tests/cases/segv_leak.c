//@ tag: process
//@ desc: a segfault (null write) with one global block (4041) and one dropped block (4042): the report is produced, the program dies of SIGSEGV (status 139)
//@ intent: reachable=4041/1 definitely=4042/1 records=2 exit=139
#include <stdlib.h>

void *g_kept;
static void *volatile sink;
int *volatile g_null;

int main(void)
{
    g_kept = malloc(4041);
    sink = malloc(4042);
    sink = 0;
    *g_null = 1;
    return 0;
}
