/*
 * stress-churn: create and join 100,000 threads one after another. Each
 * allocates and frees a few small objects and leaves two live objects that
 * the main thread frees later (remote frees after the owner died, while the
 * dead thread's slot may already be reused). RSS after the first 1,000
 * threads and at the end must differ by at most 16 MiB: exited threads'
 * buffers must be reused, not leaked. fbmalloc's thread counter must have
 * counted every thread.
 *
 * usage: stress-churn [NTHREADS]
 */
#include "stress.h"

#include <malloc.h>
#include <pthread.h>

#define LEFT 2            /* objects each thread leaves behind */
#define RING 64           /* threads whose leftovers stay live at once */
#define EARLY 1000        /* RSS reference point */
#define MAX_GROWTH_KIB (16 * 1024)

struct job {
    unsigned long n;
    void *left[LEFT];
    size_t left_size[LEFT];
};

static void *thread_main(void *arg)
{
    struct job *j = (struct job *)arg;
    uint64_t rng = mix64(j->n + 1) | 1;
    void *p[8];
    size_t sz[8];
    int i;
    for (i = 0; i < 8; i++) {
        sz[i] = 1 + (size_t)(rng_next(&rng) % 512);
        p[i] = malloc(sz[i]);
        if (!p[i])
            fail("thread %lu: malloc(%zu) returned NULL", j->n, sz[i]);
        pattern_fill(p[i], sz[i], obj_seed(p[i], sz[i]));
    }
    /* free six, in mixed order; leave p[1] and p[6] to the main thread */
    for (i = 0; i < 6; i++) {
        static const int order[6] = {7, 0, 5, 2, 4, 3};
        int k = order[i];
        pattern_check("thread: before free", p[k], sz[k], sz[k], obj_seed(p[k], sz[k]));
        free(p[k]);
    }
    j->left[0] = p[1];
    j->left_size[0] = sz[1];
    j->left[1] = p[6];
    j->left_size[1] = sz[6];
    return NULL;
}

static void free_leftovers(struct job *j)
{
    int i;
    for (i = 0; i < LEFT; i++)
        if (j->left[i]) {
            pattern_check("main: leftover of a dead thread before free", j->left[i],
                          j->left_size[i], j->left_size[i],
                          obj_seed(j->left[i], j->left_size[i]));
            free(j->left[i]);
            j->left[i] = NULL;
        }
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000, i;
    static struct job ring[RING];
    struct fbmalloc_stats st0, st_early, st1;
    int have_stats, k;
    long rss_early = 0, rss_end, rss_peak = 0;
    double t0 = now_sec(), t_early = 0;
    pthread_attr_t attr;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (n <= EARLY)
        fail("usage: %s [NTHREADS > %d]", argv[0], EARLY);
    have_stats = stats_get(&st0);
    memset(&st_early, 0, sizeof st_early);
    pthread_attr_init(&attr);
    printf("stress-churn: %lu threads created and joined in sequence\n", n);

    for (i = 0; i < n; i++) {
        struct job *j = &ring[i % RING];
        pthread_t t;
        int err;
        free_leftovers(j); /* objects of the thread that ran RING threads ago */
        j->n = i;
        err = pthread_create(&t, &attr, thread_main, j);
        if (err)
            fail("pthread_create #%lu: %s", i, strerror(err));
        pthread_join(t, NULL);
        if (i + 1 == EARLY) {
            rss_early = rss_kib();
            t_early = now_sec();
            if (have_stats)
                stats_get(&st_early);
            printf("after %d threads: VmRSS %ld KiB (%.2f s)\n", EARLY, rss_early,
                   t_early - t0);
        }
        if ((i + 1) % 10000 == 0) {
            long r = rss_kib();
            if (r > rss_peak)
                rss_peak = r;
            printf("after %lu threads: VmRSS %ld KiB (%.1f s)\n", i + 1, r, now_sec() - t0);
        }
    }
    rss_end = rss_kib();
    for (k = 0; k < RING; k++)
        free_leftovers(&ring[k]);
    pthread_attr_destroy(&attr);

    printf("threads %d..%lu took %.1f s (%.1f us per create+join)\n", EARLY, n,
           now_sec() - t_early, (now_sec() - t_early) * 1e6 / (double)(n - EARLY));
    printf("VmRSS after %d threads: %ld KiB, at the end: %ld KiB (peak sample %ld KiB), "
           "growth %ld KiB, limit %d KiB\n", EARLY, rss_early, rss_end, rss_peak,
           rss_end - rss_early, MAX_GROWTH_KIB);
    if (rss_end - rss_early > MAX_GROWTH_KIB)
        fail("RSS grew by %ld KiB between thread %d and thread %lu (limit %d KiB): the "
             "buffers of exited threads are not reused", rss_end - rss_early, EARLY, n,
             MAX_GROWTH_KIB);
    if (rss_peak - rss_early > MAX_GROWTH_KIB)
        fail("RSS peaked at %ld KiB, %ld KiB above the value after %d threads (limit %d KiB)",
             rss_peak, rss_peak - rss_early, EARLY, MAX_GROWTH_KIB);

    if (have_stats) {
        stats_get(&st1);
        stats_print("stats", &st1);
        if (st1.threads - st0.threads < n)
            fail("fbmalloc threads counter grew by %" PRIu64 " (from %" PRIu64 " to %" PRIu64
                 ") but %lu threads each allocated small objects", st1.threads - st0.threads,
                 st0.threads, st1.threads, n);
        if (st1.threads <= st_early.threads)
            fail("threads counter did not grow after thread %d", EARLY);
        if (st1.bad_frees != st0.bad_frees)
            fail("bad_frees went from %" PRIu64 " to %" PRIu64, st0.bad_frees, st1.bad_frees);
        printf("checked: threads counter +%" PRIu64 " >= %lu, bad_frees == 0\n",
               st1.threads - st0.threads, n);
        if (st1.counting) /* information only: how well reused slots serve new threads */
            printf("info: fast path served %" PRIu64 " of the %lu small allocations of the "
                   "threads (buffer_full +%" PRIu64 ")\n", st1.fast_mallocs - st0.fast_mallocs,
                   8 * n, st1.buffer_full - st0.buffer_full);
    }
    printf("checked: %lu threads each freed 6 objects and left 2 freed later by main "
           "(patterns intact), RSS growth %ld KiB <= %d KiB\n", n, rss_end - rss_early,
           MAX_GROWTH_KIB);
    printf("PASS stress-churn in %.1f s\n", now_sec() - t0);
    return 0;
}
