/*
 * end_pointer.c -- one-past-the-end pointers must not keep the next block
 * alive.  A global [begin, end) pair covers a 400-byte block (400 is a
 * multiple of the 16-byte granule, so the block ends exactly where the
 * next one starts); the 32-byte block allocated right after it leaks.
 * The same inside a leaked object: a leaked range header whose end
 * pointer equals the start of another leaked block leaves that block a
 * direct leak, not an indirect one.  Each next block must be the one
 * allocated right after (within a granule of the end pointer: at it, had
 * fbmalloc no gap between blocks); otherwise the program exits 2, as the
 * test would prove nothing.
 *
 * EXPECT: direct 1 block, 32 bytes, from leak_after at @after
 * EXPECT: direct 1 block, 16 bytes, from leak_range at @range
 * EXPECT: indirect 1 block, 400 bytes, from leak_range at @rangebuf
 * EXPECT: direct 1 block, 48 bytes, from leak_range at @next
 * EXPECT(all): reachable 1 block, 400 bytes, from keep_range at @kept
 * EXPECT(all): direct 1 block, 32 bytes, from leak_after at @after
 * EXPECT(all): direct 1 block, 16 bytes, from leak_range at @range
 * EXPECT(all): indirect 1 block, 400 bytes, from leak_range at @rangebuf
 * EXPECT(all): direct 1 block, 48 bytes, from leak_range at @next
 */
#include "leaktest.h"

struct range {
    char *begin, *end;
};

static struct range kept;

/* next starts where a block ending at end would be followed. */
static int consecutive(const char *end, const char *next)
{
    return next >= end && next - end <= 16;
}

static LT_NOINLINE char *keep_range(void)
{
    kept.begin = malloc(400); /* LEAK: kept */
    memset(kept.begin, 1, 400);
    kept.end = kept.begin + 400;
    return kept.end;
}

static LT_NOINLINE int leak_after(char *end)
{
    char *p = malloc(32); /* LEAK: after */
    memset(p, 2, 32);
    return consecutive(end, p);
}

static LT_NOINLINE int leak_range(void)
{
    struct range *r = malloc(sizeof *r); /* LEAK: range */
    r->begin = malloc(400); /* LEAK: rangebuf */
    memset(r->begin, 3, 400);
    r->end = r->begin + 400;
    char *next = malloc(48); /* LEAK: next */
    memset(next, 4, 48);
    return consecutive(r->end, next);
}

int main(void)
{
    lt_init();
    char *end = keep_range();
    int adjacent = leak_after(end);
    end = NULL;
    adjacent &= leak_range();
    lt_scrub_stack();
    if (!adjacent) {
        fprintf(stderr, "end_pointer: blocks not adjacent: nothing tested\n");
        return 2;
    }
    return 0;
}
