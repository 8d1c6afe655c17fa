/* clean.c - frees everything it allocates */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *a = malloc(100), *b = calloc(10, 10), *c = strdup("x");
    a = realloc(a, 1000);
    free(a);
    free(b);
    free(c);
    printf("clean: done\n");
    return 0;
}
