/*
 * cxx_vector.cpp -- std::vector's end and capacity pointers equal the start
 * of the next block when the buffer is full and a multiple of 16 bytes:
 * they must not keep that block alive.  A global vector of 100 ints (400
 * bytes, reachable) is followed by a leaked 32-byte array; a leaked
 * object holding a full vector is followed by a leaked 48-byte array,
 * which is a direct leak, not an indirect one.  Each next block must be
 * the one allocated right after (within a granule of the end pointer: at
 * it, had fbmalloc no gap between blocks); otherwise the program exits 2,
 * as the test would prove nothing.
 *
 * EXPECT: direct 1 block, 32 bytes, from leak_after() at @after
 * EXPECT: direct 1 block, 24 bytes, from leak_holder() at @holder
 * EXPECT: indirect 1 block, 400 bytes, from leak_holder() at @holderbuf frame=any
 * EXPECT: direct 1 block, 48 bytes, from leak_holder() at @next
 * The global vector's buffer is freed by its destructor before the exit
 * check, but its words still point into it and at the 32-byte block.
 */
#include <cstdint>
#include <vector>

#include "leaktest.h"

static std::vector<int> kept;

/* next starts where a block ending at end would be followed. */
static int consecutive(uintptr_t end, uintptr_t next)
{
    return next >= end && next - end <= 16;
}

struct Holder {
    std::vector<int> v;
};

static LT_NOINLINE uintptr_t keep_vector()
{
    kept.reserve(100);
    kept.resize(100, 7);
    return (uintptr_t)(kept.data() + kept.capacity());
}

static uintptr_t kept_end;

static LT_NOINLINE int leak_after()
{
    uintptr_t end = kept_end;
    char *p = new char[32]; /* LEAK: after */
    memset(p, 2, 32);
    return consecutive(end, (uintptr_t)p);
}

static LT_NOINLINE int leak_holder()
{
    Holder *h = new Holder; /* LEAK: holder */
    h->v.reserve(100); /* LEAK: holderbuf */
    h->v.resize(100, 9);
    char *next = new char[48]; /* LEAK: next */
    memset(next, 4, 48);
    return consecutive((uintptr_t)(h->v.data() + h->v.capacity()), (uintptr_t)next);
}

int main()
{
    lt_init();
    kept_end = keep_vector();
    int adjacent = leak_after();
    kept_end = 0;
    adjacent &= leak_holder();
    lt_scrub_stack();
    if (!adjacent) {
        fprintf(stderr, "cxx_vector: blocks not adjacent: nothing tested\n");
        return 2;
    }
    return 0;
}
