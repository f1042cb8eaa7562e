/*
 * prodcons: one thread allocates, another frees (cross-thread free).
 *
 * Models mimalloc-bench's "xmalloc-test" (from Lever & Boreham's malloc
 * tests): producer threads allocate blocks and hand them over, consumer
 * threads free them, so every free is a remote free into another thread's
 * heap.  Here one producer and one consumer share a bounded single-producer
 * single-consumer ring of QUEUE slots; the producer waits (yields) when the
 * ring is full, the consumer when it is empty.
 *
 * usage: prodcons [OBJECTS=10000000] [QUEUE=1024] [MIN=16] [MAX=256]
 */
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

struct item {
    char *p;
    uint32_t size;
};

static struct item *ring;
static size_t qsize;                 /* power of two */
static long objects;
static size_t min_size, max_size;
/* Producer and consumer cursors on separate cache lines. */
static _Alignas(64) _Atomic size_t head;   /* next slot to fill */
static _Alignas(64) _Atomic size_t tail;   /* next slot to drain */
static _Alignas(64) long producer_waits;
static _Alignas(64) long consumer_waits;

static void *producer(void *arg)
{
    (void)arg;
    uint64_t rng = 0xC0FFEEULL;
    size_t h = 0;
    for (long i = 0; i < objects; i++) {
        size_t n = bench_range(&rng, min_size, max_size);
        char *p = bench_malloc(n);
        bench_tag(p, n, (uint64_t)i);
        while (h - atomic_load_explicit(&tail, memory_order_acquire) == qsize) {
            producer_waits++;
            sched_yield();
        }
        ring[h & (qsize - 1)] = (struct item){ p, (uint32_t)n };
        atomic_store_explicit(&head, ++h, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    size_t t = 0;
    for (long i = 0; i < objects; i++) {
        while (atomic_load_explicit(&head, memory_order_acquire) == t) {
            consumer_waits++;
            sched_yield();
        }
        struct item it = ring[t & (qsize - 1)];
        atomic_store_explicit(&tail, ++t, memory_order_release);
        bench_check(it.p, it.size, (uint64_t)i, "prodcons");
        free(it.p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    objects = bench_arg(argc, argv, 1, 10000000);
    long q = bench_arg(argc, argv, 2, 1024);
    min_size = (size_t)bench_arg(argc, argv, 3, 16);
    max_size = (size_t)bench_arg(argc, argv, 4, 256);
    if (min_size < 16 || max_size < min_size) {
        fprintf(stderr, "prodcons: need 16 <= MIN <= MAX\n");
        return 2;
    }
    for (qsize = 1; qsize < (size_t)q; qsize *= 2)
        ;
    ring = bench_malloc(qsize * sizeof *ring);

    pthread_t p, c;
    if (pthread_create(&c, NULL, consumer, NULL) != 0 ||
        pthread_create(&p, NULL, producer, NULL) != 0)
        return 5;
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    free(ring);
    printf("prodcons: %ld objects through a queue of %zu "
           "(producer waited %ld, consumer waited %ld times)\n",
           objects, qsize, producer_waits, consumer_waits);
    return 0;
}
