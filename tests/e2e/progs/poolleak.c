/* poolleak.c - for tests/e2e/run_pools.sh: the agent's exit report in pool
 * terms, and the pools a forked child inherits, named in its trace.
 * Two pool trees are never destroyed:
 *   "server" (created at L_SRV) with "conn" (L_CONN) and an unnamed request
 *   pool below it (L_REQ): 10 x 100 B in server, 20 x 50 B in conn, a block
 *   of 40 B stolen into conn from a pool destroyed since, a large block of
 *   3000 B and a block realloc'd from 10 to 200 B in the request pool (a
 *   block of 77 B freed alone): 5,240 B in 33 blocks, 3 allocators;
 *   an unnamed cache (L_CACHE): 5 x 16 B = 80 B in 5 blocks, 1 allocator;
 * a third tree is destroyed (not reported), and one plain malloc of 123 B
 * is lost (L_MALLOC: reported as before, definitely lost).  Then a forked
 * child allocates 64 B in the request pool and exits: its report has the
 * server tree at 5,304 B in 34 blocks, and its trace names the 4 pools it
 * inherited. */
#include <memsleuth/pool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

int main(void)
{
    struct ms_pool *srv = ms_pool_new_root(0); /* L_SRV */
    ms_pool_set_name(srv, "server");
    struct ms_pool *conn = ms_pool_new_child(srv); /* L_CONN */
    ms_pool_set_name(conn, "conn");
    struct ms_pool *req = ms_pool_new_child(conn); /* L_REQ */
    for (int i = 0; i < 10; i++)
        ((char *)ms_pool_alloc(srv, 100))[0] = 1;
    for (int i = 0; i < 20; i++)
        ((char *)ms_pool_alloc(conn, 50))[0] = 1;
    ((char *)ms_pool_alloc(req, 3000))[0] = 1;
    char *r = ms_pool_alloc(req, 10);
    r = ms_pool_realloc(req, r, 200);
    char *f = ms_pool_alloc(conn, 77);
    ms_pool_free(f);
    struct ms_pool *tmp = ms_pool_new_root(0);
    char *s = ms_pool_alloc(tmp, 40);
    if (ms_pool_steal(conn, s) != 0)
        return 1;
    ms_pool_destroy(tmp);
    struct ms_pool *cache = ms_pool_new_root(0); /* L_CACHE */
    for (int i = 0; i < 5; i++)
        ((char *)ms_pool_alloc(cache, 16))[0] = 1;
    struct ms_pool *gone = ms_pool_new_root(0);
    ms_pool_set_name(gone, "gone");
    ms_pool_alloc(gone, 500);
    ms_pool_destroy(gone);
    sink = malloc(123); /* L_MALLOC */
    sink = NULL;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        ((char *)ms_pool_alloc(req, 64))[0] = 1;
        exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child %d r %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, r[0] == r[0]);
    return 0;
}
