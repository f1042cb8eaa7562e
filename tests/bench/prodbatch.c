/*
 * prodbatch: a producer/consumer pipeline that hands over batches (models
 * mimalloc-bench's "xmalloc-test" with batched queues and server request
 * pipelines): the producer allocates a batch of BATCH objects of 16..256
 * bytes plus the batch record, queues it; the consumer checks and frees
 * the whole batch.  Every free of an object is a cross-thread free, and
 * each object lives until its batch is consumed (QUEUE batches in flight).
 *
 * usage: prodbatch [BATCHES=100000] [BATCH=64] [QUEUE=16]
 */
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

struct batch {
    long n;
    uint64_t tag;
    char *obj[];
};

static struct batch **ring;
static size_t qsize;
static long batches, batch_len;
static _Alignas(64) _Atomic size_t head;
static _Alignas(64) _Atomic size_t tail;

static void *consumer(void *arg)
{
    (void)arg;
    for (long i = 0; i < batches; i++) {
        size_t t = atomic_load_explicit(&tail, memory_order_relaxed);
        while (atomic_load_explicit(&head, memory_order_acquire) == t)
            sched_yield();
        struct batch *b = ring[t & (qsize - 1)];
        atomic_store_explicit(&tail, t + 1, memory_order_release);
        uint64_t s = b->tag;
        for (long k = 0; k < b->n; k++) {
            size_t len = 16 + (size_t)((s * 2654435761u + (uint64_t)k) % 241);
            bench_check(b->obj[k], len, s + (uint64_t)k, "prodbatch");
            free(b->obj[k]);
        }
        free(b);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    batches = bench_arg(argc, argv, 1, 100000);
    batch_len = bench_arg(argc, argv, 2, 64);
    long q = bench_arg(argc, argv, 3, 16);
    for (qsize = 1; (long)qsize < q; qsize <<= 1)
        ;
    ring = calloc(qsize, sizeof *ring);
    pthread_t th;
    pthread_create(&th, NULL, consumer, NULL);
    for (long i = 0; i < batches; i++) {
        struct batch *b = bench_malloc(sizeof *b + (size_t)batch_len * sizeof(char *));
        b->n = batch_len;
        b->tag = (uint64_t)i * 1000003u;
        for (long k = 0; k < batch_len; k++) {
            size_t len = 16 + (size_t)((b->tag * 2654435761u + (uint64_t)k) % 241);
            b->obj[k] = bench_malloc(len);
            bench_tag(b->obj[k], len, b->tag + (uint64_t)k);
        }
        size_t h = atomic_load_explicit(&head, memory_order_relaxed);
        while (h - atomic_load_explicit(&tail, memory_order_acquire) >= qsize)
            sched_yield();
        ring[h & (qsize - 1)] = b;
        atomic_store_explicit(&head, h + 1, memory_order_release);
    }
    pthread_join(th, NULL);
    free(ring);
    printf("prodbatch: %ld batches of %ld objects handed over\n", batches, batch_len);
    return 0;
}
