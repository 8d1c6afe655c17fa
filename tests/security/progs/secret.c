/* secret.c - reads a secret line from stdin and keeps copies of it in the
 * heap: a leaked block, a block reachable from a global, a freed block, a
 * realloc'd block, a calloc'd block; prints only "secret: ready" and, with
 * an argument, sleeps 1.5 s before exiting (time for live snapshots).  The secret must appear in no file memsleuth writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *g_reachable;
static void *volatile sink;

int main(int argc, char **argv)
{
    char s[256];
    if (!fgets(s, sizeof s, stdin))
        return 2;
    s[strcspn(s, "\n")] = 0;
    size_t n = strlen(s) + 1;
    char *lost = malloc(n + 40);
    strcpy(lost, s);
    sink = lost;
    sink = 0;                     /* definitely lost, holding the secret */
    g_reachable = malloc(n);
    memcpy(g_reachable, s, n);    /* still reachable */
    char *fr = malloc(n);
    memcpy(fr, s, n);
    free(fr);                     /* freed */
    char *r = malloc(8);
    r = realloc(r, n + 4000);
    memcpy(r, s, n);              /* realloc'd, then lost */
    sink = r;
    sink = 0;
    char *c = calloc(4, n);
    memcpy(c + n, s, n);          /* indirectly lost below */
    char **holder = malloc(2 * sizeof *holder);
    holder[0] = c;
    holder[1] = NULL;
    sink = holder;
    sink = 0;
    memset(s, 0, sizeof s);
    printf("secret: ready\n");
    fflush(stdout);
    /* a plain sleep: a live snapshot's stop (ptrace) does not cut it short */
    struct timespec d = { argc > 1 ? 1 : 0, argc > 1 ? 500000000 : 100000000 };
    nanosleep(&d, NULL);
    return 5;
}
