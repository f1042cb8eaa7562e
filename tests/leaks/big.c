/*
 * big.c -- one 100 MB block leaked (served by mmap in any allocator).
 *
 * EXPECT: direct 1 block, 104,857,600 bytes, from leak_big at @big
 * Total: 1 leak, 104,857,600 bytes in 1 block.  Only the first and last
 * pages are touched.
 */
#include "leaktest.h"

static void leak_big(void)
{
    char *p = malloc(100u << 20); /* LEAK: big */
    if (!p)
        exit(1);
    memset(p, 1, 4096);
    memset(p + (100u << 20) - 4096, 1, 4096);
}

int main(void)
{
    lt_init();
    leak_big();
    lt_scrub_stack();
    return 0;
}
