/*
 * keepone: one long-lived object per N temporaries (models mimalloc-bench's
 * "alloc-test" and sh6bench, where a small share of each batch is kept to
 * the end while the rest is freed at once).
 *
 * Each iteration allocates N temporaries of 16..256 bytes (each written,
 * checked and freed) and one object of 16..128 bytes appended to a list
 * that lives until exit.
 *
 * usage: keepone [ITERATIONS=1000000] [N=16]
 */
#include "bench.h"

struct kept {
    struct kept *next;
    uint64_t tag;
};

/* Each kind from its own call site, as in a real program (noipa: GCC
 * would otherwise fold the two identical functions into one, and one
 * wrapper is one call site). */
static __attribute__((noipa)) void *temp_alloc(size_t n)
{
    return bench_malloc(n);
}
static __attribute__((noipa)) struct kept *kept_alloc(size_t n)
{
    return bench_malloc(n);
}

int main(int argc, char **argv)
{
    long iters = bench_arg(argc, argv, 1, 1000000);
    long n = bench_arg(argc, argv, 2, 16);
    uint64_t seed = 11;
    struct kept *list = NULL;
    long kept = 0;
    for (long i = 0; i < iters; i++) {
        for (long t = 0; t < n; t++) {
            size_t len = bench_range(&seed, 16, 256);
            char *p = temp_alloc(len);
            bench_tag(p, len, (uint64_t)t);
            bench_keep(p);
            bench_check(p, len, (uint64_t)t, "keepone");
            free(p);
        }
        size_t len = bench_range(&seed, 16, 128);
        struct kept *k = kept_alloc(len);
        k->next = list;
        k->tag = (uint64_t)i;
        list = k;
        kept++;
    }
    long freed = 0;
    for (long i = iters - 1; list; i--) {
        struct kept *k = list;
        list = k->next;
        if (k->tag != (uint64_t)i) {
            fprintf(stderr, "keepone: object %ld overwritten\n", i);
            return 3;
        }
        free(k);
        freed++;
    }
    printf("keepone: %ld iterations x %ld temporaries, %ld kept and freed\n", iters, n, freed);
    return 0;
}
