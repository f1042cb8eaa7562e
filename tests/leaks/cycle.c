/*
 * cycle.c -- two blocks pointing at each other and at nothing else: no
 * root reaches them, so both are leaked.  Neither is "pointed to by
 * nothing", so the split between direct and indirect is left to the
 * implementation (LeakSanitizer calls both indirect, valgrind one of each);
 * each must be reported as a leak of one kind or the other.
 *
 * EXPECT: leak 1 block, 32 bytes, from make_cycle at @cycle-a
 * EXPECT: leak 1 block, 40 bytes, from make_cycle at @cycle-b
 * Total: 72 bytes in 2 blocks.
 */
#include <stdint.h>

#include "leaktest.h"

struct a { void *other; uint64_t pad[3]; };
struct b { void *other; uint64_t pad[4]; };

static void make_cycle(void)
{
    struct a *x = malloc(sizeof *x); /* LEAK: cycle-a */
    struct b *y = malloc(sizeof *y); /* LEAK: cycle-b */
    memset(x, 0, sizeof *x);
    memset(y, 0, sizeof *y);
    x->other = y;
    y->other = x;
}

int main(void)
{
    lt_init();
    make_cycle();
    lt_scrub_stack();
    return 0;
}
