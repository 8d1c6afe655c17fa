//@ tag: process
//@ desc: _exit(3) (no atexit handlers, no stdio flush) while main's local holds 4051 bytes and 4052 bytes were dropped: reachable and definitely lost, status 3
//@ intent: reachable=4051/1 definitely=4052/1 records=2 exit=3
#include <stdlib.h>
#include <unistd.h>

static void *volatile sink;

int main(void)
{
    void *volatile local = malloc(4051);
    sink = malloc(4052);
    sink = 0;
    (void)local;
    _exit(3);
}
