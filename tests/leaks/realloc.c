/*
 * realloc.c -- blocks grown (and shrunk) by realloc before being leaked:
 * the reported stack and size are those of the LAST realloc call.
 *
 * EXPECT: direct 1 block, 5,000 bytes, from grow at @grown
 * EXPECT: direct 1 block, 24 bytes, from shrink at @shrunk
 * EXPECT: direct 1 block, 77 bytes, from from_null at @from-null
 * EXPECT: direct 1 block, 191 bytes, from shrink_small at @shrunk-small
 * EXPECT: direct 1 block, 44 bytes, from grow_small at @grown-small
 * Total: 5 leaks, 5,336 bytes in 5 blocks.  No group may point at the
 * malloc or the first realloc of grow() (those blocks no longer exist).
 * shrink() starts above any small-object limit, shrink_small() and
 * grow_small() stay small (so an allocator may resize in place): the
 * size reported is still the one last requested.
 */
#include "leaktest.h"

static void grow(void)
{
    char *p = malloc(16);
    memset(p, 0, 16);
    p = realloc(p, 1000);
    memset(p, 0, 1000);
    p = realloc(p, 5000); /* LEAK: grown */
    memset(p, 0, 5000);
}

static void shrink(void)
{
    char *p = malloc(3000);
    memset(p, 0, 3000);
    p = realloc(p, 24); /* LEAK: shrunk */
    memset(p, 0, 24);
}

static void from_null(void)
{
    char *p = realloc(NULL, 77); /* LEAK: from-null */
    memset(p, 0, 77);
}

static void shrink_small(void)
{
    char *p = malloc(300);
    memset(p, 0, 300);
    p = realloc(p, 191); /* LEAK: shrunk-small */
    memset(p, 0, 191);
}

static void grow_small(void)
{
    char *p = malloc(40);
    memset(p, 0, 40);
    p = realloc(p, 44); /* LEAK: grown-small */
    memset(p, 0, 44);
}

int main(void)
{
    lt_init();
    grow();
    shrink();
    from_null();
    shrink_small();
    grow_small();
    lt_scrub_stack();
    return 0;
}
