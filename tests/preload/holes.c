/*
 * Epochs reused around their survivors (src/epoch.c, holes): a computation
 * that keeps one result in 64 for a while (a table of 256, replaced in
 * turn) among short-lived temporaries, as a bignum factoriser does, one
 * temporary in twelve a large one (600-1000 bytes).  Every epoch then
 * holds a survivor or two; the buffers must bump around them and never
 * over them.  The large ones are the requests that find a hole too small:
 * when the objects a holes epoch served were estimated from their sizes,
 * every such epoch was judged not to pay and the buffers served 20%.
 *
 * Checked: every kept block and every temporary keeps its own byte pattern
 * until freed (an overlap with a survivor would overwrite one), blocks
 * grown in place by realloc keep theirs, the same in a second thread and
 * in a forked child.  With FB_EXPECT_HOLES=1 (the modes where the buffers
 * serve these requests): epochs were reused around survivors, and, with
 * FBMALLOC_STATS, the buffers served at least 90% of the requests.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fbmalloc.h"
#include "pattern.h"

enum { KEEP = 256, EVERY = 64, ROUNDS = 400000 };

/* Returns the number of corrupted blocks seen. */
static long run(uint64_t seed, long rounds)
{
    struct pattern_blk keep[KEEP];
    memset(keep, 0, sizeof keep);
    long bad = 0;
    unsigned k = 0;
    for (long i = 0; i < rounds; i++) {
        /* A few temporaries, freed in reverse, one of them grown. */
        struct pattern_blk tmp[3];
        for (int j = 0; j < 3; j++) {
            tmp[j].n = 16 + pattern_next(&seed) % 240;
            if (j == 1 && i % 4 == 0)
                tmp[j].n = 600 + pattern_next(&seed) % 400;   /* a large one now and then */
            tmp[j].seed = (unsigned)pattern_next(&seed);
            tmp[j].p = malloc(tmp[j].n);
            if (!tmp[j].p)
                return -1;
            fill(tmp[j].p, tmp[j].n, tmp[j].seed);
        }
        size_t grown = tmp[2].n + 16 + pattern_next(&seed) % 64;
        unsigned char *g = realloc(tmp[2].p, grown);
        if (!g)
            return -1;
        bad += !same(g, tmp[2].n, tmp[2].seed);
        tmp[2].p = g;
        tmp[2].n = grown;
        fill(g, grown, tmp[2].seed);
        /* Every 64th result is kept, replacing the oldest kept one. */
        int kept = -1;
        if (i % EVERY == 0) {
            struct pattern_blk *o = &keep[k % KEEP];
            if (o->p) {
                bad += !same(o->p, o->n, o->seed);
                free(o->p);
            }
            *o = tmp[0];
            kept = 0;
            k++;
        }
        for (int j = 2; j >= 0; j--) {
            if (j == kept)
                continue;
            bad += !same(tmp[j].p, tmp[j].n, tmp[j].seed);
            free(tmp[j].p);
        }
    }
    for (unsigned j = 0; j < KEEP; j++)
        if (keep[j].p) {
            bad += !same(keep[j].p, keep[j].n, keep[j].seed);
            free(keep[j].p);
        }
    return bad;
}

static void *thread_main(void *arg)
{
    return (void *)(intptr_t)run((uint64_t)(uintptr_t)arg, ROUNDS / 2);
}

int main(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, (void *)(uintptr_t)0x9e3779b97f4a7c15ULL) != 0) {
        printf("FAIL pthread_create\n");
        return 1;
    }
    long bad = run(88172645463325252ULL, ROUNDS);
    void *tbad;
    pthread_join(th, &tbad);
    if (bad || tbad) {
        printf("FAIL %ld blocks in the main thread and %ld in the other lost their bytes "
               "(or NULL: -1)\n", bad, (long)(intptr_t)tbad);
        return 1;
    }
    /* The parent's buffer, pinned by nothing now but reused around
     * survivors before: a child carries on in it. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(run(2463534242ULL, ROUNDS / 4) ? 3 : 0);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL the forked child's blocks (status %#x)\n", st);
        return 1;
    }

    const char *expect = getenv("FB_EXPECT_HOLES");
    if (expect && *expect == '1') {
        int (*get)(struct fbmalloc_stats *) =
            (int (*)(struct fbmalloc_stats *))dlsym(RTLD_DEFAULT, "fbmalloc_stats_get");
        struct fbmalloc_stats s;
        memset(&s, 0, sizeof s);     /* a library without the field leaves it 0 */
        if (!get || get(&s) != 0) {
            printf("FAIL fbmalloc_stats_get not found: fbmalloc not preloaded?\n");
            return 1;
        }
        if (s.epochs_holes == 0) {
            printf("FAIL no epoch was reused around its survivors (%lu reset)\n",
                   (unsigned long)s.epochs_reset);
            return 1;
        }
        if (s.counting) {
            uint64_t all = s.fast_mallocs + s.backend_mallocs;
            if (s.fast_mallocs * 10 < all * 9) {
                printf("FAIL the buffers served %lu of %lu requests (under 90%%)\n",
                       (unsigned long)s.fast_mallocs, (unsigned long)all);
                return 1;
            }
        }
        printf("ok   %lu epochs reused around survivors%s\n", (unsigned long)s.epochs_holes,
               s.counting ? ", the buffers served at least 90%" : "");
    }
    printf("ok   kept one result in %d among temporaries: every block kept its bytes, "
           "in two threads and a forked child\n", EVERY);
    return 0;
}
