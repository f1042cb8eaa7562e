/*
 * cache-scratch: passive false sharing.
 *
 * Models Hoard's "cache-scratch" benchmark (also in mimalloc-bench): the
 * main thread allocates one small object per worker and hands it over;
 * each worker frees it and then, many times, allocates an object of the
 * same size, writes to it repeatedly and frees it.  An allocator that hands
 * a worker memory on the cache line of the object freed there (which came
 * from the main thread's heap, next to the other workers' objects) makes
 * the workers fight over cache lines; a thread-local allocator does not.
 *
 * usage: cache_scratch [ITERATIONS=50000] [THREADS=2] [OBJSIZE=8]
 *                      [WRITES=2000]
 */
#include "bench.h"

#include <pthread.h>

static long iterations, writes;
static size_t objsize;

static void *worker(void *arg)
{
    char *first = arg;
    free(first);
    uint64_t sum = 0;
    for (long i = 0; i < iterations; i++) {
        volatile char *p = bench_malloc(objsize);
        for (long w = 0; w < writes; w++) {
            for (size_t b = 0; b < objsize; b++)
                p[b] = (char)(w + (long)b);
        }
        sum += (uint64_t)p[0];
        free((void *)p);
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
    iterations = bench_arg(argc, argv, 1, 50000);
    long threads = bench_arg(argc, argv, 2, 2);
    objsize = (size_t)bench_arg(argc, argv, 3, 8);
    writes = bench_arg(argc, argv, 4, 2000);
    if (objsize < 1) {
        fprintf(stderr, "cache_scratch: need OBJSIZE >= 1\n");
        return 2;
    }

    pthread_t *tid = bench_malloc((size_t)threads * sizeof *tid);
    /* Allocated back to back by this thread: neighbours on a cache line. */
    char **objs = bench_malloc((size_t)threads * sizeof *objs);
    for (long t = 0; t < threads; t++) {
        objs[t] = bench_malloc(objsize);
        memset(objs[t], 0, objsize);
    }
    for (long t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, worker, objs[t]) != 0)
            return 5;
    uint64_t sum = 0;
    for (long t = 0; t < threads; t++) {
        void *ret;
        pthread_join(tid[t], &ret);
        sum += (uint64_t)(uintptr_t)ret;
    }
    free(objs);
    free(tid);
    printf("cache_scratch: %ld threads x %ld objects of %zu bytes x %ld "
           "writes (sum %llu)\n", threads, iterations, objsize, writes,
           (unsigned long long)sum);
    return 0;
}
