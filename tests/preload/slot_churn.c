/*
 * Threads that come and go, each filling its buffer with objects of random
 * lifetimes (larson's pattern: a shared table, a random entry replaced at
 * every step, its old object freed by whichever thread replaced it).  A
 * thread whose buffer stays full may move to a fresh one (src/epoch.c,
 * may_move); such a move serves nothing here (the fresh buffer fills the
 * same way) and must not be repeated by every new thread: once one was
 * futile, the buffers committed stop growing with the number of threads.
 *
 * Checked, with fbmalloc preloaded: every object keeps its bytes; the
 * buffers committed (fbmalloc_stats.buffers) stay within one per thread
 * alive at a time plus a few moves, whatever the number of rounds.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbmalloc.h"
#include "pattern.h"

enum { SLOTS = 20000, OPS = 300000, ROUNDS = 12, THREADS = 2 };

struct obj {
    unsigned seed;
    unsigned n;
    unsigned char bytes[];
};
static _Atomic(struct obj *) table[SLOTS];
static atomic_long bad;

static struct obj *make(uint64_t *rng)
{
    unsigned n = 8 + (unsigned)(pattern_next(rng) % 400);
    struct obj *o = malloc(sizeof *o + n);
    if (!o) {
        printf("FAIL malloc returned NULL\n");
        exit(1);
    }
    o->seed = (unsigned)pattern_next(rng);
    o->n = n;
    fill(o->bytes, n, o->seed);
    return o;
}

static void destroy(struct obj *o)
{
    if (!same(o->bytes, o->n, o->seed))
        atomic_fetch_add(&bad, 1);
    free(o);
}

static void *worker(void *arg)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL ^ (uintptr_t)arg;
    for (long i = 0; i < OPS; i++) {
        long k = (long)(pattern_next(&rng) % SLOTS);
        destroy(atomic_exchange(&table[k], make(&rng)));
    }
    return NULL;
}

int main(void)
{
    uint64_t rng = 12345;
    for (long k = 0; k < SLOTS; k++)
        atomic_init(&table[k], make(&rng));
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++)
            if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(r * THREADS + i + 1))) {
                printf("FAIL pthread_create\n");
                return 1;
            }
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
    }
    for (long k = 0; k < SLOTS; k++)
        destroy(atomic_load(&table[k]));
    if (bad) {
        printf("FAIL %ld objects lost their bytes\n", (long)bad);
        return 1;
    }
    int (*get)(struct fbmalloc_stats *) =
        (int (*)(struct fbmalloc_stats *))dlsym(RTLD_DEFAULT, "fbmalloc_stats_get");
    struct fbmalloc_stats s;
    memset(&s, 0, sizeof s);
    if (!get || get(&s) != 0) {
        printf("FAIL fbmalloc_stats_get not found: fbmalloc not preloaded?\n");
        return 1;
    }
    /* The main thread and THREADS workers at a time; a move or two. */
    uint64_t limit = 1 + THREADS + 3;
    if (s.buffers == 0 || s.buffers > limit) {
        printf("FAIL %lu buffers committed for %d rounds of %d threads (at most %lu)\n",
               (unsigned long)s.buffers, ROUNDS, THREADS, (unsigned long)limit);
        return 1;
    }
    printf("ok   %d rounds of %d threads of random lifetimes: every object kept its bytes, "
           "%lu buffers committed\n", ROUNDS, THREADS, (unsigned long)s.buffers);
    return 0;
}
