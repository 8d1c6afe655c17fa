/* errno_keep.c - the allocation functions leave errno as the real ones do */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

int main(void)
{
    int bad = 0;
    errno = 1234;
    void *p = malloc(10);
    bad |= errno != 1234;
    p = realloc(p, 100);
    bad |= errno != 1234;
    void *q = calloc(3, 3);
    bad |= errno != 1234;
    free(q);
    free(p);
    bad |= errno != 1234;
    void *r;
    bad |= posix_memalign(&r, 64, 64) != 0 || errno != 1234;
    free(r);
    errno = 0;
    void *huge = malloc(SIZE_MAX / 2);   /* fails: ENOMEM from the real malloc */
    bad |= huge != NULL || errno != ENOMEM;
    printf("errno: %s\n", bad ? "CHANGED" : "kept");
    return bad;
}
