/* pooluser.c - a server-like program built on libmemsleuth_pool: a root
 * allocator, one child per "connection", blocks in each; it says "ready"
 * and waits, for `memsleuth snapshot --pools PID` */
#include <memsleuth/pool.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    struct ms_pool *root = ms_pool_new_root(0);
    ms_pool_set_name(root, "server");
    for (int c = 0; c < 3; c++) {
        struct ms_pool *conn = ms_pool_new_child(root);
        ms_pool_set_name(conn, "connection");
        for (int i = 0; i < 5; i++)
            ms_pool_alloc(conn, 100 + (size_t)i);
        ms_pool_strdup(conn, "hello");
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
