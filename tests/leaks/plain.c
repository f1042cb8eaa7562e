/*
 * plain.c -- plain malloc leaks, plus blocks that are freed (not leaks).
 *
 * Expected report (FBMALLOC_LEAKS=1):
 * EXPECT: direct 1 block, 100 bytes, from leak_one at @one
 * EXPECT: direct 3 blocks, 120 bytes, from leak_three at @three
 * Total: 2 leaks, 220 bytes in 4 blocks.  The 50-byte blocks of
 * free_some() are freed and must not appear.
 */
#include "leaktest.h"

static void leak_one(void)
{
    char *p = malloc(100); /* LEAK: one */
    memset(p, 'a', 100);
}

static void leak_three(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = malloc(40); /* LEAK: three */
        memset(p, 'b', 40);
    }
}

static void free_some(void)
{
    for (int i = 0; i < 10; i++) {
        char *p = malloc(50);
        memset(p, 'c', 50);
        free(p);
    }
}

int main(void)
{
    lt_init();
    leak_one();
    leak_three();
    free_some();
    lt_scrub_stack();
    return 0;
}
