/*
 * Statistics agree with themselves and with what the program did (issue
 * 13, item 10).  Run with FBMALLOC_STATS on, in any mode.  Every cycle
 * allocates, shrinks and grows in place (realloc), moves (realloc past
 * the buffer limit) and frees, in two threads; afterwards the live bytes
 * must be back where they started, and at every sample the peak must be
 * at least the live figure and the histogram must count every allocation.
 * A last phase keeps enough small blocks to fill the thread's buffer: each
 * request counted "buffer full" went to jemalloc, so there are no more of
 * them than jemalloc's allocations (a failed buffer allocation once ran
 * twice and was counted twice).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbmalloc.h"

static int (*get)(struct fbmalloc_stats *);
static volatile size_t n100 = 100, n40 = 40, n60 = 60, n3000 = 3000;

static int agree(const char *when)
{
    struct fbmalloc_stats st;
    get(&st);
    uint64_t h = 0;
    for (int i = 0; i < FBMALLOC_HIST_BUCKETS; i++)
        h += st.size_hist[i];
    if (st.peak_live_bytes < st.live_bytes || h != st.fast_mallocs + st.backend_mallocs ||
        st.remote_frees > st.fast_frees || st.fast_frees > st.fast_mallocs ||
        st.buffer_full > st.backend_mallocs) {
        printf("FAIL %s: live %lu peak %lu, hist %lu vs mallocs %lu+%lu, frees %lu "
               "(remote %lu), buffer full %lu\n", when, (unsigned long)st.live_bytes,
               (unsigned long)st.peak_live_bytes, (unsigned long)h,
               (unsigned long)st.fast_mallocs, (unsigned long)st.backend_mallocs,
               (unsigned long)st.fast_frees, (unsigned long)st.remote_frees,
               (unsigned long)st.buffer_full);
        return 1;
    }
    return 0;
}

static void *work(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        char *p = malloc(n100);
        p = realloc(p, n40);         /* shrink in place */
        p = realloc(p, n60);         /* grow in place (newest block) */
        char *q = malloc(n40);
        p = realloc(p, n3000);       /* moves to jemalloc */
        p = realloc(p, n40);
        free(q);
        free(p);
    }
    return NULL;
}

int main(void)
{
    get = (int (*)(struct fbmalloc_stats *))dlsym(RTLD_DEFAULT, "fbmalloc_stats_get");
    if (!get) {
        printf("SKIP not running under fbmalloc\n");
        return 77;
    }
    struct fbmalloc_stats st0, st1;
    get(&st0);
    if (!st0.counting) {
        printf("FAIL statistics are not counting (set FBMALLOC_STATS)\n");
        return 1;
    }
    int bad = agree("start");
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        pthread_create(&t, NULL, work, NULL);
        work(NULL);
        pthread_join(t, NULL);
        bad |= agree("after a round");
    }
    /* Fill the buffer: 200,000 live blocks of 64 B (12 MiB) outgrow it. */
    enum { KEEP = 200000 };
    static void *keep[KEEP];
    for (int i = 0; i < KEEP; i++)
        keep[i] = malloc(n40 + 24);
    struct fbmalloc_stats full;
    get(&full);
    bad |= agree("with the buffer full");
    if (full.buffer_full == 0) {
        printf("FAIL %d live blocks of 64 B never found the buffer full\n", KEEP);
        bad = 1;
    }
    for (int i = 0; i < KEEP; i++)
        free(keep[i]);
    get(&st1);
    long drift = (long)st1.live_bytes - (long)st0.live_bytes;
    /* A thread's stack cache or TLS may stay behind: a few KiB at most. */
    if (drift > 16384 || drift < -16384) {
        printf("FAIL live bytes drifted by %ld over 60,000 balanced cycles "
               "(%lu -> %lu)\n", drift, (unsigned long)st0.live_bytes,
               (unsigned long)st1.live_bytes);
        bad = 1;
    }
    if (!bad)
        printf("ok   statistics agree; live bytes back to within %ld of the start\n", drift);
    return bad;
}
