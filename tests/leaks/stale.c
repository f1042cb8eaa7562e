/*
 * stale.c -- pointers left in FREED memory are not roots: a block whose
 * only pointer was stored in a block that has since been freed is a
 * direct leak, even though the freed memory still holds the pointer (an
 * allocator that recycles memory lazily keeps such stale words around).
 * Same for a pointer left in the old copy of a block moved by realloc.
 *
 * EXPECT: direct 1 block, 48 bytes, from via_freed at @via-freed
 * EXPECT: direct 1 block, 56 bytes, from via_moved at @via-moved
 * EXPECT: direct 1 block, 2,000 bytes, from via_moved at @moved-holder
 * Total: 3 leaks, 2,104 bytes in 3 blocks.  via_moved's holder is a
 * 16-byte block grown to 2,000 bytes (beyond any small-object limit, so
 * it moves); the new copy's pointer is then cleared and the holder
 * itself leaked, so the only remaining copy of the pointer to the 56-byte
 * block is in the freed old copy.
 */
#include <stdint.h>

#include "leaktest.h"

static void via_freed(void)
{
    void **holder = malloc(64);
    memset(holder, 0, 64);
    holder[0] = malloc(48); /* LEAK: via-freed */
    memset(holder[0], 0, 48);
    free(holder);
}

static void via_moved(void)
{
    void **holder = malloc(16);
    memset(holder, 0, 16);
    holder[1] = malloc(56); /* LEAK: via-moved */
    memset(holder[1], 0, 56);
    holder = realloc(holder, 2000); /* LEAK: moved-holder */
    holder[1] = NULL;
}

int main(void)
{
    lt_init();
    via_freed();
    via_moved();
    lt_scrub_stack();
    return 0;
}
