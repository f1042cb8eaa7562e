/*
 * request: per-request allocations that all die together (arena pattern).
 *
 * Models a server handling requests: each "request" makes a few hundred
 * small allocations of mixed sizes (parsed fields, strings, small
 * structures, one response buffer grown with realloc), and everything is
 * freed when the request ends.  This is the batch-allocate/batch-free shape
 * of mimalloc-bench's "rptest" (rpmalloc's benchmark) and "mstress", and the
 * case a per-thread bump allocator recycled in epochs is designed for.
 * THREADS threads run independent request loops.
 *
 * usage: request [REQUESTS_PER_THREAD=40000] [THREADS=2] [MAX_ALLOCS=500]
 */
#include "bench.h"

#include <pthread.h>

static long requests;
static long max_allocs;

struct obj {
    char *p;
    size_t size;
};

/* Mostly tiny, some medium, a few of a page or more. */
static size_t request_size(uint64_t *rng)
{
    uint64_t r = bench_rand(rng) % 100;
    if (r < 55)
        return bench_range(rng, 16, 64);
    if (r < 90)
        return bench_range(rng, 65, 512);
    if (r < 99)
        return bench_range(rng, 513, 4096);
    return bench_range(rng, 4097, 32768);
}

static void *worker(void *arg)
{
    uint64_t rng = 0x1234567ULL + (uint64_t)(uintptr_t)arg * 7919;
    struct obj *objs = bench_malloc((size_t)max_allocs * sizeof *objs);
    uint64_t total = 0;

    for (long r = 0; r < requests; r++) {
        long n = (long)bench_range(&rng, (size_t)max_allocs / 5,
                                   (size_t)max_allocs);
        size_t cap = 64, len = 0;
        char *response = bench_malloc(cap);

        for (long i = 0; i < n; i++) {
            size_t sz = request_size(&rng);
            char *p = bench_malloc(sz);
            memset(p, (int)i, sz < 256 ? sz : 256);
            bench_tag(p, sz, (uint64_t)(r * 1000 + i));
            objs[i].p = p;
            objs[i].size = sz;
            /* Append a few bytes to the response now and then. */
            if ((i & 7) == 0) {
                if (len + 48 > cap) {
                    cap *= 2;
                    response = realloc(response, cap);
                    if (response == NULL)
                        exit(4);
                }
                memset(response + len, 'x', 48);
                len += 48;
            }
        }
        bench_keep(response);
        for (long i = 0; i < n; i++) {
            bench_check(objs[i].p, objs[i].size, (uint64_t)(r * 1000 + i),
                        "request");
            free(objs[i].p);
        }
        free(response);
        total += (uint64_t)n + 1;
    }
    free(objs);
    return (void *)(uintptr_t)total;
}

int main(int argc, char **argv)
{
    requests = bench_arg(argc, argv, 1, 40000);
    long threads = bench_arg(argc, argv, 2, 2);
    max_allocs = bench_arg(argc, argv, 3, 500);
    if (max_allocs < 5 || max_allocs > 1000000) {
        fprintf(stderr, "request: MAX_ALLOCS must be in 5..1000000\n");
        return 2;
    }

    pthread_t *tid = bench_malloc((size_t)threads * sizeof *tid);
    for (long t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)t) != 0)
            return 5;
    uint64_t total = 0;
    for (long t = 0; t < threads; t++) {
        void *ret;
        pthread_join(tid[t], &ret);
        total += (uint64_t)(uintptr_t)ret;
    }
    free(tid);
    printf("request: %ld threads x %ld requests, %llu allocations\n",
           threads, requests, (unsigned long long)total);
    return 0;
}
