/* leaks.c - known leaks of every kind, for the text-layout checks:
 *   definitely lost: 12,345 bytes (big_leak) and a tree root of 200 bytes
 *   that owns 4 children of 200 (indirectly lost: 800 bytes in 4 blocks);
 *   possibly lost: 300 bytes held only by an interior pointer;
 *   still reachable: 500 bytes held by a global.  Exits with status 7. */
#include <stdio.h>
#include <stdlib.h>

struct node { struct node *kid[4]; char pad[168]; };

static void *volatile sink;
char *g_interior;
void *g_kept;

__attribute__((noinline)) static struct node *mk_node(void)
{
    return calloc(1, sizeof(struct node));
}

__attribute__((noinline)) static void make_tree(void)
{
    struct node *root = mk_node();
    for (int i = 0; i < 4; i++)
        root->kid[i] = mk_node();
    sink = root;
    sink = 0;
}

__attribute__((noinline)) static void big_leak(void)
{
    sink = malloc(12345);
    sink = 0;
}

int main(void)
{
    big_leak();
    make_tree();
    char *p = malloc(300);
    g_interior = p + 10;
    p = 0;
    g_kept = malloc(500);
    printf("leaks: done\n");
    return 7;
}
