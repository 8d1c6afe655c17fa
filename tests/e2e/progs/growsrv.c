/* growsrv.c - a "server" whose session list grows (still reachable), that drops a
 * 33-byte block every 10 rounds (definitely lost), while 3 threads allocate and
 * free hard: the target of live snapshots */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
struct sess { struct sess *next; char data[100]; };
struct sess *g_sessions;
static void *volatile sink;
static void *churn(void *a) { (void)a; for (;;) { void *p = malloc(64); free(p); } return 0; }
int main(void) {
  pthread_t t[3]; for (int k = 0; k < 3; k++) pthread_create(&t[k], 0, churn, 0);
  printf("ready\n"); fflush(stdout);
  for (int i = 0; ; i++) {
    struct sess *s = malloc(sizeof *s); s->next = g_sessions; g_sessions = s;
    if (i % 10 == 0) { sink = malloc(33); sink = 0; }
    usleep(1000);
  }
}
