/*
 * window: a sliding window (FIFO) of W live short-lived objects.
 *
 * Models the fixed-working-set loop of glibc's benchtests/bench-malloc-thread
 * (mimalloc-bench "glibc-thread"), which keeps an array of live blocks and
 * replaces them one at a time, here with first-in-first-out lifetimes: every
 * object lives exactly W steps.  W=64 fits in a few cache lines of metadata
 * and one page run per size class; W=1000 spreads over many pages.  Each
 * step is one malloc+free pair.  Sizes are random in MIN..MAX.
 *
 * usage: window [W=64] [STEPS=20000000] [MIN=16] [MAX=256]
 */
#include "bench.h"

struct slot {
    char *p;
    size_t size;
    uint64_t tag;
};

int main(int argc, char **argv)
{
    long w = bench_arg(argc, argv, 1, 64);
    long steps = bench_arg(argc, argv, 2, 20000000);
    size_t min = (size_t)bench_arg(argc, argv, 3, 16);
    size_t max = (size_t)bench_arg(argc, argv, 4, 256);
    if (w < 1 || min < 16 || max < min) {
        fprintf(stderr, "window: need W >= 1 and 16 <= MIN <= MAX\n");
        return 2;
    }

    /* The ring itself comes from calloc too, before the measured loop. */
    struct slot *ring = calloc((size_t)w, sizeof *ring);
    if (ring == NULL)
        return 4;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    uint64_t sum = 0;

    for (long i = 0; i < w; i++) {
        size_t n = bench_range(&rng, min, max);
        ring[i].p = bench_malloc(n);
        ring[i].size = n;
        ring[i].tag = (uint64_t)i;
        bench_tag(ring[i].p, n, (uint64_t)i);
    }

    long j = 0;
    for (long i = 0; i < steps; i++) {
        struct slot *s = &ring[j];
        bench_check(s->p, s->size, s->tag, "window");
        free(s->p);
        size_t n = bench_range(&rng, min, max);
        s->p = bench_malloc(n);
        s->size = n;
        s->tag = (uint64_t)(i + w);
        bench_tag(s->p, n, s->tag);
        sum += (uintptr_t)s->p & 0xfff;
        if (++j == w)
            j = 0;
    }

    for (long i = 0; i < w; i++) {
        bench_check(ring[i].p, ring[i].size, ring[i].tag, "window");
        free(ring[i].p);
    }
    free(ring);
    printf("window: %ld live, %ld steps of %zu..%zu bytes, offset sum %llu\n",
           w, steps, min, max, (unsigned long long)sum);
    return 0;
}
