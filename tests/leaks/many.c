/*
 * many.c -- 1,000 blocks from one call site: ONE group of 1,000 blocks.
 *
 * EXPECT: direct 1,000 blocks, 32,000 bytes, from leak_many at @many
 * Total: 1 leak, 32,000 bytes in 1,000 blocks.  The blocks are zeroed, so
 * none can make another look reachable.
 */
#include "leaktest.h"

static void leak_many(void)
{
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(32); /* LEAK: many */
        memset(p, 0, 32);
    }
}

int main(void)
{
    lt_init();
    leak_many();
    lt_scrub_stack();
    return 0;
}
