/*
 * inlined.c -- built with -O2: a leak allocated in a function inlined
 * into another, itself inlined into a third.  Each inlined function must
 * be a frame of its own, with its own file:line, as addr2line -i prints
 * them: #0 make_inner at the malloc line, #1 make_middle at the line that
 * calls make_inner, #2 leak_outer at the line that calls make_middle (all
 * three at the same module offset), then main.
 *
 * EXPECT: direct 1 block, 40 bytes, from make_inner at @inner
 */
#include "leaktest.h"

static inline __attribute__((always_inline)) char *make_inner(size_t n)
{
    char *p = malloc(n); /* LEAK: inner */
    return p;
}

static inline __attribute__((always_inline)) char *make_middle(size_t n)
{
    char *p = make_inner(n); /* LEAK: middle */
    if (p)
        memset(p, 'i', n);
    return p;
}

static LT_NOINLINE void leak_outer(void)
{
    char *volatile p = make_middle(40); /* LEAK: outer */
    (void)p;
}

int main(void)
{
    lt_init();
    leak_outer();
    lt_scrub_stack();
    return 0;
}
