/* growth_srv.c - a "server" for tests/analyze/run_agent_e2e.sh: per request a
 * temporary string (fmt_request), a cache node freed only at shutdown, a session
 * every 3rd request kept until exit (still reachable), a 48-byte block lost every
 * 10th; it forks a worker that serves a third as many requests and _exits.
 * Usage: growth_srv [REQUESTS] (300).  Build with -O0 -g: the tests name lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
struct node { struct node *next; char pad[200]; };
static struct node *cache;      /* grows, freed at shutdown */
static struct node *sessions;   /* grows, still reachable at exit */
static void *volatile sink;
static char *fmt_request(int i) { char *s = malloc(128); snprintf(s, 128, "req %d", i); return s; }
static void handle(int i) {
    char *r = fmt_request(i); free(r);             /* temporary */
    struct node *n = malloc(sizeof *n); n->next = cache; cache = n;                          /* CACHE */
    if (i % 3 == 0) { struct node *s = malloc(sizeof *s); s->next = sessions; sessions = s; } /* SESSION */
    if (i % 10 == 0) { sink = malloc(48); sink = 0; }                                         /* LOST */
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 300;
    pid_t c = fork();
    if (c == 0) { for (int i = 0; i < n / 3; i++) { handle(i); usleep(500); } _exit(0); }
    for (int i = 0; i < n; i++) { handle(i); usleep(1000); }
    waitpid(c, 0, 0);
    while (cache) { struct node *x = cache; cache = x->next; free(x); }
    return 0;
}
