/*
 * aligned.c -- every aligned allocation function is tracked: one leak
 * from each, and one freed block from each that must not be reported.
 *
 * EXPECT: direct 1 block, 100 bytes, from leak_posix_memalign at @posix_memalign
 * EXPECT: direct 1 block, 128 bytes, from leak_aligned_alloc at @aligned_alloc
 * EXPECT: direct 1 block, 200 bytes, from leak_memalign at @memalign
 * EXPECT: direct 1 block, 300 bytes, from leak_valloc at @valloc
 * EXPECT: direct 1 block, 400|4096 bytes, from leak_pvalloc at @pvalloc
 * Total: 5 leaks, 1,128 bytes in 5 blocks (pvalloc(400) rounds the request
 * up to a page: 400 or 4,096 are both accepted for it, so 1,128 or 4,824).
 */
#include <malloc.h>
#include <stdint.h>

#include "leaktest.h"

static void check_align(void *p, uintptr_t a)
{
    if (!p || ((uintptr_t)p & (a - 1)) != 0) {
        fprintf(stderr, "bad aligned block %p for alignment %lu\n", p,
                (unsigned long)a);
        exit(1);
    }
}

static void leak_posix_memalign(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, 100) != 0) /* LEAK: posix_memalign */
        exit(1);
    check_align(p, 64);
    memset(p, 0, 100);
}

static void leak_aligned_alloc(void)
{
    void *p = aligned_alloc(64, 128); /* LEAK: aligned_alloc */
    check_align(p, 64);
    memset(p, 0, 128);
}

static void leak_memalign(void)
{
    void *p = memalign(128, 200); /* LEAK: memalign */
    check_align(p, 128);
    memset(p, 0, 200);
}

static void leak_valloc(void)
{
    void *p = valloc(300); /* LEAK: valloc */
    check_align(p, 4096);
    memset(p, 0, 300);
}

static void leak_pvalloc(void)
{
    void *p = pvalloc(400); /* LEAK: pvalloc */
    check_align(p, 4096);
    memset(p, 0, 400);
}

static void free_each(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 32, 1000) != 0)
        exit(1);
    free(p);
    free(aligned_alloc(256, 512));
    free(memalign(64, 64));
    free(valloc(10));
    free(pvalloc(10));
}

int main(void)
{
    lt_init();
    leak_posix_memalign();
    leak_aligned_alloc();
    leak_memalign();
    leak_valloc();
    leak_pvalloc();
    free_each();
    lt_scrub_stack();
    return 0;
}
