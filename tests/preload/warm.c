/*
 * A buffer cycles through the memory its objects' lifetimes need, not
 * through all of it (src/epoch.c, warm_scan): a sliding window of 64 live
 * objects of 16..256 bytes, through 40 MB of requests, keeps about two
 * epochs busy, and the buffers used to walk their whole slot (1 MiB) and
 * its map, every new object in memory the caches had long lost.
 *
 * Checked: every object keeps its byte pattern until freed, in the main
 * thread, a second thread and a forked child, also after long-lived
 * objects pinned most of the buffer first (one kept per 16 KiB, as a
 * program's start-up leaves them).  With FB_EXPECT_WARM=1 (the modes where
 * the buffers serve these requests): the churn leaves the process's
 * anonymous resident memory less than LIMIT_KIB larger than after its
 * first 1,000 requests, in each of them.
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

enum { WINDOW = 64, BYTES = 40 << 20, PINS = 40, LIMIT_KIB = 160 };

/* Anonymous resident memory of the process (heap, buffers, stacks; not
 * the libraries' pages), in KiB; 0 if unknown. */
static long resident_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

struct result {
    long bad;                /* corrupted blocks; -1: NULL */
    long grew_kib;           /* resident growth over the churn */
};

/* Pins first (pin != 0): one long-lived block per 16 KiB of temporaries,
 * PINS times, kept to the end.  Then the window: each request replaces
 * the oldest block. */
static struct result run(uint64_t seed, int pin)
{
    struct result r = {0, 0};
    struct pattern_blk pins[PINS], win[WINDOW];
    memset(pins, 0, sizeof pins);
    memset(win, 0, sizeof win);
    for (int k = 0; pin && k < PINS; k++) {
        pins[k].n = 32;
        pins[k].seed = (unsigned)pattern_next(&seed);
        if (!(pins[k].p = malloc(pins[k].n))) {
            r.bad = -1;
            return r;
        }
        fill(pins[k].p, pins[k].n, pins[k].seed);
        for (size_t used = 0; used < 16384; used += 128) {
            void *t = malloc(128);
            if (!t) {
                r.bad = -1;
                return r;
            }
            memset(t, 0x5a, 128);
            free(t);
        }
    }
    long before = 0;
    size_t total = 0;
    for (unsigned long i = 0; total < BYTES; i++) {
        if (i == 1000)
            before = resident_kib();
        struct pattern_blk *b = &win[i % WINDOW];
        if (b->p) {
            r.bad += !same(b->p, b->n, b->seed);
            free(b->p);
        }
        b->n = 16 + pattern_next(&seed) % 241;
        b->seed = (unsigned)pattern_next(&seed);
        if (!(b->p = malloc(b->n))) {
            r.bad = -1;
            return r;
        }
        fill(b->p, b->n, b->seed);
        total += b->n;
    }
    r.grew_kib = resident_kib() - before;
    for (int j = 0; j < WINDOW; j++) {
        r.bad += !same(win[j].p, win[j].n, win[j].seed);
        free(win[j].p);
    }
    for (int k = 0; k < PINS; k++)
        if (pins[k].p) {
            r.bad += !same(pins[k].p, pins[k].n, pins[k].seed);
            free(pins[k].p);
        }
    return r;
}

static void *thread_main(void *arg)
{
    static struct result r;
    r = run((uint64_t)(uintptr_t)arg, 1);
    return &r;
}

static int judge(const char *who, struct result r, int expect)
{
    if (r.bad) {
        printf("FAIL %s: %ld blocks lost their bytes (or NULL: -1)\n", who, r.bad);
        return 1;
    }
    if (expect && r.grew_kib >= LIMIT_KIB) {
        printf("FAIL %s: anonymous resident memory grew by %ld KiB over %d MB of requests with %d "
               "live (at most %d expected)\n", who, r.grew_kib, BYTES >> 20, WINDOW, LIMIT_KIB);
        return 1;
    }
    printf("ok   %s: every block kept its bytes, anonymous resident memory grew by %ld KiB\n", who,
           r.grew_kib);
    return 0;
}

int main(void)
{
    const char *e = getenv("FB_EXPECT_WARM");
    int expect = e && *e == '1';
    int fails = judge("main thread", run(88172645463325252ULL, 0), expect);
    if (expect) {
        int (*get)(struct fbmalloc_stats *) =
            (int (*)(struct fbmalloc_stats *))dlsym(RTLD_DEFAULT, "fbmalloc_stats_get");
        struct fbmalloc_stats st;
        memset(&st, 0, sizeof st);   /* a library without the field leaves it 0 */
        if (!get || get(&st) != 0 || st.buffer_bytes == 0 || st.buffer_bytes > (128 << 10)) {
            printf("FAIL the statistics say %lu bytes of the buffers were used (1 to 128 KiB "
                   "expected)\n", (unsigned long)st.buffer_bytes);
            fails++;
        } else {
            printf("ok   the statistics say %lu KiB of the buffers were used\n",
                   (unsigned long)(st.buffer_bytes >> 10));
        }
    }
    fails += judge("main thread, after pins", run(2463534242ULL, 1), expect);

    pthread_t th;
    void *tr;
    if (pthread_create(&th, NULL, thread_main, (void *)(uintptr_t)0x9e3779b97f4a7c15ULL) != 0 ||
        pthread_join(th, &tr) != 0) {
        printf("FAIL pthread_create\n");
        return 1;
    }
    fails += judge("second thread, after pins", *(struct result *)tr, expect);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = judge("forked child", run(362436069ULL, 0), expect);
        fflush(stdout);
        _exit(bad ? 3 : 0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL the forked child (status %#x)\n", st);
        return 1;
    }
    return fails ? 1 : 0;
}
