/*
 * larson: threads replacing random objects in a shared array.
 *
 * Models the Larson & Krishnan server benchmark ("larson" in
 * mimalloc-bench and in Hoard's suite): a pool of live blocks of random
 * sizes in which worker threads repeatedly pick a random slot, free the
 * block there and put a new one in.  Blocks are freed by whichever thread
 * picks their slot, so most frees are remote, and the threads are
 * re-created every round (as larson's workers hand their state to a fresh
 * thread), so thread-exit and thread-start paths are exercised too.
 *
 * usage: larson [OPS_PER_THREAD_PER_ROUND=1000000] [ROUNDS=4] [THREADS=2]
 *               [SLOTS=10000] [MIN=8] [MAX=1000]
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic(char *) *slots;
static long nslots, ops;
static size_t min_size, max_size;

/* Objects describe themselves: the size in the first and the last word. */
static char *make(uint64_t *rng)
{
    size_t n = bench_range(rng, min_size, max_size);
    char *p = bench_malloc(n);
    bench_tag(p, n, (uint64_t)n);
    return p;
}

static void destroy(char *p)
{
    uint64_t n;
    memcpy(&n, p, sizeof n);
    if (n < min_size || n > max_size) {
        fprintf(stderr, "larson: object %p corrupted (size word %llu)\n",
                (void *)p, (unsigned long long)n);
        exit(3);
    }
    bench_check(p, (size_t)n, n, "larson");
    free(p);
}

static void *worker(void *arg)
{
    uint64_t rng = 0xABCDEF12345ULL ^ ((uint64_t)(uintptr_t)arg * 0x9E37);
    for (long i = 0; i < ops; i++) {
        long k = (long)(bench_rand(&rng) % (uint64_t)nslots);
        char *old = atomic_exchange_explicit(&slots[k], make(&rng),
                                             memory_order_acq_rel);
        destroy(old);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    ops = bench_arg(argc, argv, 1, 1000000);
    long rounds = bench_arg(argc, argv, 2, 4);
    long threads = bench_arg(argc, argv, 3, 2);
    nslots = bench_arg(argc, argv, 4, 10000);
    min_size = (size_t)bench_arg(argc, argv, 5, 8);
    max_size = (size_t)bench_arg(argc, argv, 6, 1000);
    if (nslots < 1 || min_size < 8 || max_size < min_size) {
        fprintf(stderr, "larson: need SLOTS >= 1 and 8 <= MIN <= MAX\n");
        return 2;
    }

    uint64_t rng = 7;
    slots = bench_malloc((size_t)nslots * sizeof *slots);
    for (long k = 0; k < nslots; k++)
        atomic_init(&slots[k], make(&rng));

    pthread_t *tid = bench_malloc((size_t)threads * sizeof *tid);
    for (long r = 0; r < rounds; r++) {
        for (long t = 0; t < threads; t++)
            if (pthread_create(&tid[t], NULL, worker,
                               (void *)(uintptr_t)(r * threads + t)) != 0)
                return 5;
        for (long t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    }
    for (long k = 0; k < nslots; k++)
        destroy(atomic_load(&slots[k]));
    free(slots);
    free(tid);
    printf("larson: %ld rounds x %ld threads x %ld replacements over %ld "
           "slots of %zu..%zu bytes\n", rounds, threads, ops, nslots,
           min_size, max_size);
    return 0;
}
