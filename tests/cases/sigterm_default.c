//@ tag: process
//@ desc: SIGTERM at its default action (as pkill sends it) with one global block (4031) and one dropped block (4032): the report is still produced, status 143
//@ intent: reachable=4031/1 definitely=4032/1 records=2 exit=143
#include <signal.h>
#include <stdlib.h>

void *g_kept;
static void *volatile sink;

int main(void)
{
    g_kept = malloc(4031);
    sink = malloc(4032);
    sink = 0;
    raise(SIGTERM);
    return 0;
}
