/*
 * pair: malloc immediately followed by free, in a tight loop.
 *
 * Models the simplest published allocator microbenchmark: glibc's
 * benchtests/bench-malloc-simple (mimalloc-bench's "glibc-simple") with a
 * working set of one block, i.e. the pure cost of the fast path of malloc
 * plus free.  Sizes cycle through MIN..MAX ascending in steps of STEP
 * (default 16, 32, ..., 256, 16, 32, ...): freeing a block and at once
 * asking for the next size class is the pattern where Debian's mimalloc 2.0
 * thrashes (it retires and re-initialises a page on every call).
 *
 * usage: pair [PAIRS=20000000] [MIN=16] [MAX=256] [STEP=16]
 */
#include "bench.h"

int main(int argc, char **argv)
{
    long pairs = bench_arg(argc, argv, 1, 20000000);
    size_t min = (size_t)bench_arg(argc, argv, 2, 16);
    size_t max = (size_t)bench_arg(argc, argv, 3, 256);
    size_t step = (size_t)bench_arg(argc, argv, 4, 16);
    if (min < 16 || max < min) {
        fprintf(stderr, "pair: need 16 <= MIN <= MAX\n");
        return 2;
    }

    size_t size = min;
    uint64_t sum = 0;
    for (long i = 0; i < pairs; i++) {
        char *p = bench_malloc(size);
        bench_tag(p, size, (uint64_t)i);
        bench_keep(p);
        bench_check(p, size, (uint64_t)i, "pair");
        sum += (uintptr_t)p & 0xfff;
        free(p);
        size += step;
        if (size > max)
            size = min;
    }
    printf("pair: %ld pairs of %zu..%zu bytes (step %zu), offset sum %llu\n",
           pairs, min, max, step, (unsigned long long)sum);
    return 0;
}
