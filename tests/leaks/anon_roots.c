/*
 * anon_roots.c -- the program's own anonymous mappings are roots (issue 11
 * item 4: pymalloc's arenas, gcc's GC heap), but only the program's: a
 * block whose only pointer lies in an mmap'd anonymous region is still
 * reachable, and what it points to too; leaks stay leaks next to a large
 * anonymous region that holds no pointer, whether they live in the
 * buffers (small) or in jemalloc (big: jemalloc's own memory, whose
 * metadata points at every extent, must never be scanned); and the cached
 * stack of a finished thread is no root (its dead frames still hold the
 * pointer it lost).
 *
 * EXPECT: direct 1 block, 200 bytes, from leak_small at @anon-small
 * EXPECT: direct 1 block, 200,000 bytes, from leak_big at @anon-big
 * EXPECT: direct 1 block, 72 bytes, from stale_leak at @stale-stack
 * EXPECT(all): direct 1 block, 200 bytes, from leak_small at @anon-small
 * EXPECT(all): direct 1 block, 200,000 bytes, from leak_big at @anon-big
 * EXPECT(all): direct 1 block, 72 bytes, from stale_leak at @stale-stack
 * EXPECT(all): reachable 1 block, 304 bytes, from hold at @anon-held
 * EXPECT(all): reachable 1 block, 40 bytes, from hold at @anon-chain
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "leaktest.h"

struct held { void *next; char pad[296]; };

static void *anon_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        exit(2);
    return p;
}

static void leak_small(void)
{
    char *p = malloc(200); /* LEAK: anon-small */
    memset(p, 's', 200);
}

static void leak_big(void)
{
    char *p = malloc(200000); /* LEAK: anon-big */
    memset(p, 'b', 200000);
}

/* The only pointer to the 304-byte block goes into the mmap'd region. */
static void hold(void **slot)
{
    struct held *h = malloc(sizeof *h); /* LEAK: anon-held */
    memset(h, 0, sizeof *h);
    h->next = malloc(40); /* LEAK: anon-chain */
    memset(h->next, 'c', 40);
    *slot = h;
}

/* Returns with its only pointer to the block left in its dead frame. */
static LT_NOINLINE void stale_leak(void)
{
    volatile char *p = malloc(72); /* LEAK: stale-stack */
    memset((char *)p, 't', 72);
}

static void *worker(void *arg)
{
    (void)arg;
    stale_leak();
    return NULL;
}

int main(void)
{
    lt_init();
    _Static_assert(sizeof(struct held) == 304, "held size");
    /* 1 MiB of anonymous memory, every page touched, no pointer in it. */
    unsigned char *plain = anon_map(1 << 20);
    memset(plain, 0xa5, 1 << 20);
    void **region = anon_map(64 * 1024);
    hold(&region[100]);
    leak_small();
    leak_big();
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    lt_scrub_stack();
    return plain[12345] == 0xa5 && region[100] ? 0 : 1;
}
