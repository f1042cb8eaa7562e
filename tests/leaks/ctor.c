/*
 * ctor.c -- a leak from a constructor that runs before main (called by
 * libc's init code, not from main).
 *
 * EXPECT: direct 1 block, 61 bytes, from early_leak at @ctor
 * EXPECT: direct 1 block, 62 bytes, from leak_in_main at @in-main
 * Total: 2 leaks, 123 bytes in 2 blocks.
 */
#include "leaktest.h"

__attribute__((constructor)) static void early_leak(void)
{
    char *p = malloc(61); /* LEAK: ctor */
    memset(p, 0, 61);
    lt_scrub_stack();
}

static void leak_in_main(void)
{
    char *p = malloc(62); /* LEAK: in-main */
    memset(p, 0, 62);
}

int main(void)
{
    lt_init();
    leak_in_main();
    lt_scrub_stack();
    return 0;
}
