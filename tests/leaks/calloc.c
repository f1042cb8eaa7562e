/*
 * calloc.c -- leaks from calloc and reallocarray.
 *
 * EXPECT: direct 1 block, 120 bytes, from leak_calloc at @calloc
 * EXPECT: direct 2 blocks, 80 bytes, from leak_reallocarray at @reallocarray
 * Total: 2 leaks, 200 bytes in 3 blocks.  calloc blocks are zeroed, so
 * they hold no pointer that could make another block look reachable.
 */
#include "leaktest.h"

static void leak_calloc(void)
{
    int *p = calloc(10, 12); /* LEAK: calloc */
    p[0] = 1;
}

static void leak_reallocarray(void)
{
    for (int i = 0; i < 2; i++) {
        long *p = reallocarray(NULL, 5, 8); /* LEAK: reallocarray */
        memset(p, 0, 40);
    }
}

int main(void)
{
    lt_init();
    leak_calloc();
    leak_reallocarray();
    int *q = calloc(100, 4);
    free(q);
    lt_scrub_stack();
    return 0;
}
