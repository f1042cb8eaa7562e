/*
 * Lifetime routing under LD_PRELOAD: a program that keeps one long-lived
 * object per K temporaries, each kind from its own call site.
 *
 *   lifetime mixed N K       one thread
 *   lifetime threads N K     two threads, each the same
 *   lifetime fork N K        half, fork, the child does the other half
 *   lifetime phase N K       site P first allocates objects kept to the
 *                            end, then (second phase) only temporaries
 *   lifetime startup N K     start-up first fills more than the buffer
 *                            with objects kept to the end (a compiler's
 *                            tables), then as mixed
 *   lifetime wrapper N K     as mixed, every object through one wrapper
 *                            (xmalloc): one call site of malloc for all
 *   lifetime wrapper-threads N K   the same in two threads
 *
 * Prints a checksum of the data (the same under any allocator) and, if
 * fbmalloc is loaded, one line of its statistics read in-process:
 *   stats short=S fast=F routed=R long=L learned=A forgotten=G
 *         mispredicted=M phase2_fast=P
 * short: temporaries allocated (what a perfect predictor keeps in the
 * buffers); fast: requests served by the buffers (with FBMALLOC_STATS).
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

static long n_iter, k_temps;

/* An allocation wrapper, as xmalloc: every object it makes has its one
 * call site of malloc (the check after the call keeps it a call). */
static int via_wrapper;
static __attribute__((noinline)) char *xmalloc_like(size_t n)
{
    char *p = malloc(n);
    if (!p) {
        fputs("lifetime: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* Each kind of object from one call site: noinline keeps them apart. */
static __attribute__((noinline)) char *make_temp(size_t n)
{
    return via_wrapper ? xmalloc_like(n) : malloc(n);
}
static __attribute__((noinline)) char *make_kept(size_t n)
{
    return via_wrapper ? xmalloc_like(n) : malloc(n);
}
static __attribute__((noinline)) char *make_phased(size_t n)
{
    return malloc(n);
}

static uint64_t mix(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* One long-lived object per k temporaries; returns a checksum. */
static uint64_t work(long n, char **kept, char *(*keep_fn)(size_t), uint64_t seed)
{
    uint64_t sum = 0, s = seed;
    for (long i = 0; i < n; i++) {
        for (long t = 0; t < k_temps; t++) {
            size_t len = 16 + mix(&s) % 240;
            char *p = make_temp(len);
            memset(p, (int)(t & 0xff), len);
            sum += (unsigned char)p[len / 2];
            free(p);
        }
        size_t len = 16 + mix(&s) % 100;
        char *q = keep_fn(len);
        memset(q, (int)(i & 0xff), len);
        if (kept)
            kept[i] = q;
        else
            free(q);            /* phase 2: the same site, now short-lived */
        sum += len;
    }
    return sum;
}

static int (*stats_get)(struct fbmalloc_stats *);

static void print_stats(long shorts, uint64_t phase2_fast)
{
    struct fbmalloc_stats st;
    if (!stats_get || stats_get(&st) != 0)
        return;
    printf("stats short=%ld fast=%lu routed=%lu long=%lu learned=%lu forgotten=%lu "
           "mispredicted=%lu phase2_fast=%lu\n",
           shorts, (unsigned long)st.fast_mallocs, (unsigned long)st.routed_long,
           (unsigned long)st.sites_long, (unsigned long)st.sites_learned,
           (unsigned long)st.sites_forgotten, (unsigned long)st.mispredicted,
           (unsigned long)phase2_fast);
}

struct job {
    long n;
    uint64_t seed, sum;
};

static void *thread_main(void *arg)
{
    struct job *j = arg;
    char **kept = calloc((size_t)j->n, sizeof *kept);
    j->sum = work(j->n, kept, make_kept, j->seed);
    for (long i = 0; i < j->n; i++)
        free(kept[i]);
    free(kept);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *mode = argv[1];
    n_iter = atol(argv[2]);
    k_temps = atol(argv[3]);
    stats_get = (int (*)(struct fbmalloc_stats *))dlsym(RTLD_DEFAULT, "fbmalloc_stats_get");
    char **kept = calloc((size_t)n_iter, sizeof *kept);
    uint64_t sum = 0, phase2_fast = 0;
    long shorts = n_iter * k_temps;

    if (!strncmp(mode, "wrapper", 7)) {
        via_wrapper = 1;
        mode = mode[7] ? mode + 8 : "mixed";
    }
    if (!strcmp(mode, "mixed")) {
        sum = work(n_iter, kept, make_kept, 1);
    } else if (!strcmp(mode, "threads")) {
        struct job j[2] = {{n_iter, 1, 0}, {n_iter, 2, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, thread_main, &j[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        sum = j[0].sum + j[1].sum;
        shorts *= 2;
    } else if (!strcmp(mode, "fork")) {
        sum = work(n_iter / 2, kept, make_kept, 1);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            return 3;
        sum += work(n_iter - n_iter / 2, kept + n_iter / 2, make_kept, 2);
        if (pid == 0) {
            printf("child %lu\n", (unsigned long)sum);
            print_stats(shorts, 0);
            for (long i = 0; i < n_iter; i++)
                free(kept[i]);
            free(kept);
            return 0;
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 4;
    } else if (!strcmp(mode, "startup")) {
        enum { TABLES = 20000 };      /* about 1.9 MB, above the 1 MiB buffer */
        char **tables = calloc(TABLES, sizeof *tables);
        for (long i = 0; i < TABLES; i++) {
            tables[i] = make_phased(64 + (size_t)(i % 64));
            memset(tables[i], (int)(i & 0xff), 64);
            sum += (unsigned char)tables[i][i % 64];
        }
        sum += work(n_iter, kept, make_kept, 1);
        for (long i = 0; i < TABLES; i++)
            free(tables[i]);
        free(tables);
    } else if (!strcmp(mode, "phase")) {
        sum = work(n_iter, kept, make_phased, 1);
        struct fbmalloc_stats before, after;
        int have = stats_get && stats_get(&before) == 0;
        sum += work(n_iter, NULL, make_phased, 2);
        if (have && stats_get(&after) == 0)
            phase2_fast = after.fast_mallocs - before.fast_mallocs;
        shorts *= 2;
    } else {
        return 2;
    }
    printf("checksum %lu\n", (unsigned long)sum);
    print_stats(shorts, phase2_fast);
    for (long i = 0; i < n_iter; i++)
        free(kept[i]);
    free(kept);
    return 0;
}
