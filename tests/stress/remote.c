/*
 * stress-remote: producer/consumer pairs. The producer allocates small
 * objects (8..512 B) and passes them through a bounded lock-free queue; the
 * consumer checks and frees them, so every free is a remote free. A few
 * million objects go through. The producer's epochs only become reusable
 * through remote frees: RSS must stay bounded (at most 16 MiB above the
 * value at 10% progress), epochs_reset must grow, and (with per-call
 * counters) most objects must have come from the fast path and been freed
 * remotely, i.e. the buffers were recycled, not abandoned to jemalloc.
 *
 * usage: stress-remote [PAIRS] [OBJECTS_PER_PAIR]
 */
#include "stress.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>

#define QSIZE 1024 /* power of two; ~260 KiB in flight per pair: fits the default
                      * 1 MiB buffer (the fast-path check assumes that) */
#define MAXPAIRS 16
#define MAX_GROWTH_KIB (16 * 1024)

struct item {
    void *p;
    size_t size;
};

struct pair {
    pthread_t prod, cons;
    int id;
    unsigned long count;
    /* single producer, single consumer */
    unsigned long head __attribute__((aligned(64))); /* written by producer */
    unsigned long tail __attribute__((aligned(64))); /* written by consumer */
    struct item q[QSIZE] __attribute__((aligned(64)));
    unsigned long consumed __attribute__((aligned(64)));
};

static struct pair pairs[MAXPAIRS];

static void *producer(void *arg)
{
    struct pair *pr = (struct pair *)arg;
    uint64_t rng = rng_seed((uint64_t)pr->id * 977 + 3);
    unsigned long i;
    for (i = 0; i < pr->count; i++) {
        size_t size = 8 + (size_t)(rng_next(&rng) % 505);
        void *p = malloc(size);
        if (!p)
            fail("producer %d: malloc(%zu) returned NULL", pr->id, size);
        pattern_fill(p, size, obj_seed(p, size));
        while (i - __atomic_load_n(&pr->tail, __ATOMIC_ACQUIRE) >= QSIZE)
            sched_yield();
        pr->q[i % QSIZE].p = p;
        pr->q[i % QSIZE].size = size;
        __atomic_store_n(&pr->head, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *pr = (struct pair *)arg;
    unsigned long i;
    for (i = 0; i < pr->count; i++) {
        struct item it;
        while (__atomic_load_n(&pr->head, __ATOMIC_ACQUIRE) <= i)
            sched_yield();
        it = pr->q[i % QSIZE];
        __atomic_store_n(&pr->tail, i + 1, __ATOMIC_RELEASE);
        pattern_check("consumer: before remote free", it.p, it.size, it.size,
                      obj_seed(it.p, it.size));
        free(it.p);
        __atomic_store_n(&pr->consumed, i + 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int npairs = argc > 1 ? atoi(argv[1]) : 2, i;
    unsigned long per = argc > 2 ? strtoul(argv[2], NULL, 10) : 3000000;
    unsigned long total, done;
    struct fbmalloc_stats st0, st1;
    int have_stats, counting = 0;
    long rss_early = -1, rss_peak = 0, rss_end;
    double t0 = now_sec();

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (npairs < 1 || npairs > MAXPAIRS || per < 1000)
        fail("usage: %s [PAIRS(1..%d)] [OBJECTS_PER_PAIR >= 1000]", argv[0], MAXPAIRS);
    total = per * (unsigned long)npairs;
    have_stats = stats_get(&st0);
    if (have_stats)
        counting = stats_counting(&st0);
    printf("stress-remote: %d producer/consumer pairs, %lu objects each\n", npairs, per);

    for (i = 0; i < npairs; i++) {
        pairs[i].id = i;
        pairs[i].count = per;
        if (pthread_create(&pairs[i].cons, NULL, consumer, &pairs[i]) ||
            pthread_create(&pairs[i].prod, NULL, producer, &pairs[i]))
            fail("pthread_create");
    }
    /* Sample RSS while they run. */
    do {
        struct timespec ts = {0, 20 * 1000 * 1000};
        long r;
        nanosleep(&ts, NULL);
        done = 0;
        for (i = 0; i < npairs; i++)
            done += __atomic_load_n(&pairs[i].consumed, __ATOMIC_RELAXED);
        r = rss_kib();
        if (rss_early < 0 && done >= total / 10) {
            rss_early = r;
            printf("at %lu%% (%lu objects): VmRSS %ld KiB\n", done * 100 / total, done, r);
        }
        if (rss_early >= 0 && r > rss_peak)
            rss_peak = r;
    } while (done < total);
    for (i = 0; i < npairs; i++) {
        pthread_join(pairs[i].prod, NULL);
        pthread_join(pairs[i].cons, NULL);
    }
    rss_end = rss_kib();
    if (rss_early < 0)
        rss_early = rss_end;
    printf("%lu objects allocated by producers, checked and freed by consumers in %.1f s\n",
           total, now_sec() - t0);
    printf("VmRSS at 10%%: %ld KiB, peak sample after: %ld KiB, end: %ld KiB (limit +%d KiB)\n",
           rss_early, rss_peak, rss_end, MAX_GROWTH_KIB);
    if (rss_peak - rss_early > MAX_GROWTH_KIB || rss_end - rss_early > MAX_GROWTH_KIB)
        fail("RSS grew from %ld KiB to %ld KiB (peak) / %ld KiB (end), more than %d KiB: "
             "memory freed remotely is not recycled", rss_early, rss_peak, rss_end,
             MAX_GROWTH_KIB);

    if (have_stats) {
        uint64_t fast, remote, resets;
        stats_get(&st1);
        stats_print("stats", &st1);
        resets = st1.epochs_reset - st0.epochs_reset;
        if (resets == 0)
            fail("epochs_reset did not grow: no epoch was recycled after %lu remote frees",
                 total);
        if (st1.bad_frees != st0.bad_frees)
            fail("bad_frees went from %" PRIu64 " to %" PRIu64, st0.bad_frees, st1.bad_frees);
        printf("checked: epochs_reset +%" PRIu64 " > 0, bad_frees == 0\n", resets);
        if (counting) {
            fast = st1.fast_mallocs - st0.fast_mallocs;
            remote = st1.remote_frees - st0.remote_frees;
            if (fast < total / 2)
                fail("only %" PRIu64 " of %lu small allocations used the fast path "
                     "(buffer_full +%" PRIu64 "): epochs freed by other threads are not "
                     "reused", fast, total, st1.buffer_full - st0.buffer_full);
            if (remote < total / 2)
                fail("remote_frees grew by %" PRIu64 " only, but %lu objects were freed "
                     "by a thread other than their allocator", remote, total);
            printf("checked: fast_mallocs +%" PRIu64 " and remote_frees +%" PRIu64
                   " >= half of %lu objects (buffer_full +%" PRIu64 ")\n", fast, remote,
                   total, st1.buffer_full - st0.buffer_full);
        }
    }
    printf("PASS stress-remote in %.1f s\n", now_sec() - t0);
    return 0;
}
