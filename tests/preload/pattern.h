/* A byte pattern written into a block and checked later: what realloc
 * and the allocator's own bookkeeping must never change (preload tests). */
#ifndef FB_TEST_PATTERN_H
#define FB_TEST_PATTERN_H
#include <stddef.h>
#include <stdint.h>

/* A block and the seed of the pattern written into it. */
struct pattern_blk {
    unsigned char *p;
    size_t n;
    unsigned seed;
};

/* xorshift64: reproducible random numbers for the tests' sizes and
 * lifetimes (s must not start at 0). */
static inline uint64_t pattern_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static inline int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}
#endif
