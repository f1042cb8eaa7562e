/*
 * big.c -- one 100 MB block leaked (served by mmap in any allocator).
 *
 * EXPECT: direct 1 block, 104,857,600 bytes, from leak_big at @big
 * Total: 1 leak, 104,857,600 bytes in 1 block.  Only the first and last
 * pages are touched.  A block this large spans a lot of address space: a
 * scan that wrongly takes the allocator's own state as a root (say, the
 * backend's per-thread caches of recently used addresses, in TLS) finds a
 * word inside it now and then, depending on where ASLR put it.  So the
 * driver runs this program 30 times and every run must report the leak.
 */
#include "leaktest.h"

static void leak_big(void)
{
    char *p = malloc(100u << 20); /* LEAK: big */
    if (!p)
        exit(1);
    memset(p, 1, 4096);
    memset(p + (100u << 20) - 4096, 1, 4096);
}

int main(void)
{
    lt_init();
    leak_big();
    lt_scrub_stack();
    return 0;
}
