/*
 * big: large allocations, 64 KiB to 8 MiB.
 *
 * Models mimalloc-bench's "malloc-large" (a few live blocks of several MiB
 * allocated, touched and freed in a loop): sizes are log-uniform between MIN
 * and MAX, LIVE blocks are alive at a time (FIFO), and every page of a new
 * block is written once, as a program filling a buffer would.  What is
 * measured is mostly the allocator's policy for returning memory to the
 * kernel (mmap/munmap per block and page faults, or reuse).  In fbmalloc
 * these sizes all go to jemalloc.
 *
 * usage: big [ALLOCS=10000] [LIVE=4] [MIN=65536] [MAX=8388608]
 */
#include "bench.h"

#include <math.h>

struct slot {
    char *p;
    size_t size;
};

int main(int argc, char **argv)
{
    long allocs = bench_arg(argc, argv, 1, 10000);
    long live = bench_arg(argc, argv, 2, 4);
    size_t min = (size_t)bench_arg(argc, argv, 3, 65536);
    size_t max = (size_t)bench_arg(argc, argv, 4, 8388608);
    if (live < 1 || min < 16 || max < min) {
        fprintf(stderr, "big: need LIVE >= 1 and 16 <= MIN <= MAX\n");
        return 2;
    }

    struct slot *ring = calloc((size_t)live, sizeof *ring);
    if (ring == NULL)
        return 4;
    uint64_t rng = 99;
    double lmin = log((double)min), lmax = log((double)max);
    size_t total_mib = 0, bytes = 0;

    for (long i = 0; i < allocs; i++) {
        struct slot *s = &ring[i % live];
        if (s->p != NULL) {
            bench_check(s->p, s->size, s->size, "big");
            free(s->p);
        }
        double u = (double)(bench_rand(&rng) >> 11) / 9007199254740992.0;
        size_t n = (size_t)exp(lmin + u * (lmax - lmin));
        if (n < min)
            n = min;
        char *p = bench_malloc(n);
        for (size_t off = 0; off < n; off += 4096)
            p[off] = (char)off;
        bench_tag(p, n, n);
        s->p = p;
        s->size = n;
        bytes += n;
        if (bytes >= (1u << 20)) {
            total_mib += bytes >> 20;
            bytes &= (1u << 20) - 1;
        }
    }
    for (long i = 0; i < live; i++) {
        if (ring[i].p != NULL) {
            bench_check(ring[i].p, ring[i].size, ring[i].size, "big");
            free(ring[i].p);
        }
    }
    free(ring);
    printf("big: %ld allocations of %zu..%zu bytes, %ld live, %zu MiB in "
           "total\n", allocs, min, max, live, total_mib);
    return 0;
}
