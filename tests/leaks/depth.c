/*
 * depth.c -- a leak 30 calls deep, for FBMALLOC_STACK_DEPTH: the reported
 * stack has exactly N frames (16 by default), the first being leak_deep.
 *
 * EXPECT: direct 1 block, 10 bytes, from leak_deep at @deep
 */
#include "leaktest.h"

static void leak_deep(void)
{
    char *p = malloc(10); /* LEAK: deep */
    memset(p, 0, 10);
}

static LT_NOINLINE void recurse(int n)
{
    if (n == 0)
        leak_deep();
    else
        recurse(n - 1);
}

int main(void)
{
    lt_init();
    recurse(30);
    lt_scrub_stack();
    return 0;
}
