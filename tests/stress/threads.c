/*
 * stress-threads: N threads share an array of objects; each operation puts a
 * new object into a random slot and frees the one it displaces, which
 * another thread usually allocated (remote free). Sizes are 1 B..1 MiB,
 * mostly under 1 KiB. Every object is filled over its whole usable size
 * with a pattern derived from its address and size, and checked before it
 * is freed or reallocated. Also exercised: calloc (zeroed), realloc (grow
 * and shrink, content kept), aligned allocation, and same-thread bursts.
 *
 * usage: stress-threads NTHREADS [TOTAL_OPS]
 */
#include "stress.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>

#define NSLOTS 4096

struct slot {
    pthread_mutex_t mu;
    void *p;
    size_t size;    /* requested */
    size_t usable;  /* malloc_usable_size at allocation */
};

static struct slot slots[NSLOTS];
static long ops_per_thread;

struct counts {
    unsigned long mallocs, callocs, reallocs, aligned, frees, bursts, checked_bytes;
};

struct worker {
    pthread_t tid;
    int id;
    struct counts c;
};

/* Records the usable size, checks it, and fills the whole usable size. */
static size_t prepare(const char *what, void *p, size_t size)
{
    size_t usable;
    if (!p)
        fail("%s(%zu) returned NULL", what, size);
    if ((uintptr_t)p % 16 != 0 && size >= 16)
        fail("%s(%zu) returned %p: not 16-byte aligned", what, size, p);
    usable = malloc_usable_size(p);
    if (usable < size)
        fail("%s(%zu) = %p: malloc_usable_size %zu < request", what, size, p, usable);
    pattern_fill(p, usable, obj_seed(p, size));
    return usable;
}

/* Checks an object taken out of a slot (whole usable size) and frees it. */
static void check_free(struct counts *c, void *p, size_t size, size_t usable)
{
    size_t now = malloc_usable_size(p);
    if (now != usable)
        fail("malloc_usable_size(%p) (request %zu) changed from %zu to %zu while live",
             p, size, usable, now);
    pattern_check("before free", p, size, usable, obj_seed(p, size));
    c->checked_bytes += usable;
    free(p);
    c->frees++;
}

/* Swaps (p, size, usable) into slot i; frees the object it displaces. */
static void put(struct counts *c, unsigned i, void *p, size_t size, size_t usable)
{
    struct slot *s = &slots[i];
    void *old;
    size_t osize, ousable;
    pthread_mutex_lock(&s->mu);
    old = s->p;
    osize = s->size;
    ousable = s->usable;
    s->p = p;
    s->size = size;
    s->usable = usable;
    pthread_mutex_unlock(&s->mu);
    if (old)
        check_free(c, old, osize, ousable);
}

static void op_malloc(struct counts *c, uint64_t *rng)
{
    size_t size = rand_size(rng);
    void *p = malloc(size);
    size_t usable = prepare("malloc", p, size);
    put(c, (unsigned)(rng_next(rng) % NSLOTS), p, size, usable);
    c->mallocs++;
}

static void op_calloc(struct counts *c, uint64_t *rng)
{
    size_t size = rand_size(rng), nmemb = 1, elem = size, k, usable;
    unsigned char *p;
    if (size % 8 == 0) {
        nmemb = size / 8;
        elem = 8;
    }
    p = (unsigned char *)calloc(nmemb, elem);
    if (!p)
        fail("calloc(%zu, %zu) returned NULL", nmemb, elem);
    for (k = 0; k < size; k++)
        if (p[k] != 0)
            fail("calloc(%zu, %zu) = %p: byte %zu is 0x%02x, not zero", nmemb, elem,
                 (void *)p, k, p[k]);
    usable = prepare("calloc", p, size);
    put(c, (unsigned)(rng_next(rng) % NSLOTS), p, size, usable);
    c->callocs++;
}

static void op_aligned(struct counts *c, uint64_t *rng)
{
    size_t align = (size_t)16 << (rng_next(rng) % 9); /* 16 .. 4096 */
    size_t size = rand_size(rng), usable;
    unsigned how = (unsigned)(rng_next(rng) % 3);
    void *p = NULL;
    const char *what;
    if (how == 0) {
        int err = posix_memalign(&p, align, size);
        what = "posix_memalign";
        if (err)
            fail("posix_memalign(%zu, %zu) = %d", align, size, err);
    } else if (how == 1) {
        what = "aligned_alloc";
        p = aligned_alloc(align, (size + align - 1) / align * align);
    } else {
        what = "memalign";
        p = memalign(align, size);
    }
    if (!p)
        fail("%s(align %zu, %zu) returned NULL", what, align, size);
    if ((uintptr_t)p % align)
        fail("%s(align %zu, %zu) = %p: misaligned", what, align, size, p);
    usable = prepare(what, p, size);
    put(c, (unsigned)(rng_next(rng) % NSLOTS), p, size, usable);
    c->aligned++;
}

/* Takes the object out of a slot, reallocates it (grow or shrink) and puts
 * it back. The old usable bytes that fit must be preserved. */
static void op_realloc(struct counts *c, uint64_t *rng)
{
    unsigned i = (unsigned)(rng_next(rng) % NSLOTS);
    struct slot *s = &slots[i];
    void *p, *q;
    size_t size, usable, nsize, keep, now;
    uint64_t oseed;
    unsigned how = (unsigned)(rng_next(rng) % 4);

    pthread_mutex_lock(&s->mu);
    p = s->p;
    size = s->size;
    usable = s->usable;
    s->p = NULL;
    pthread_mutex_unlock(&s->mu);
    if (!p) {
        op_malloc(c, rng);
        return;
    }
    now = malloc_usable_size(p);
    if (now != usable)
        fail("malloc_usable_size(%p) (request %zu) changed from %zu to %zu while live",
             p, size, usable, now);
    oseed = obj_seed(p, size);
    pattern_check("before realloc", p, size, usable, oseed);

    if (how == 0)
        nsize = size * 2 + 1;                        /* grow */
    else if (how == 1)
        nsize = size > 1 ? size / 2 : 1;             /* shrink */
    else if (how == 2)
        nsize = size + 1 + (size_t)(rng_next(rng) % 64); /* small growth, maybe in place */
    else
        nsize = rand_size(rng);
    if (nsize > 2 * 1024 * 1024)
        nsize = 2 * 1024 * 1024;

    q = realloc(p, nsize);
    if (!q)
        fail("realloc(%p, %zu) returned NULL", p, nsize);
    keep = usable < nsize ? usable : nsize;
    {
        size_t bad = pattern_find_bad(q, keep, oseed);
        if (bad != (size_t)-1)
            fail("realloc(%p [request %zu, usable %zu], %zu) = %p: content not preserved "
                 "at offset %zu of %zu (the old usable bytes must be copied)",
                 p, size, usable, nsize, q, bad, keep);
    }
    usable = prepare("realloc", q, nsize);
    c->reallocs++;
    put(c, i, q, nsize, usable);
}

static void op_free(struct counts *c, uint64_t *rng)
{
    put(c, (unsigned)(rng_next(rng) % NSLOTS), NULL, 0, 0);
}

/* Same-thread short-lived objects: allocate a few, check, free in LIFO or
 * FIFO order. */
static void op_burst(struct counts *c, uint64_t *rng)
{
    void *p[32];
    size_t sz[32], us[32];
    unsigned n = 1 + (unsigned)(rng_next(rng) % 32), k;
    int lifo = (int)(rng_next(rng) & 1);
    for (k = 0; k < n; k++) {
        sz[k] = 1 + (size_t)(rng_next(rng) % 512);
        p[k] = malloc(sz[k]);
        us[k] = prepare("malloc", p[k], sz[k]);
    }
    for (k = 0; k < n; k++) {
        unsigned j = lifo ? n - 1 - k : k;
        check_free(c, p[j], sz[j], us[j]);
    }
    c->mallocs += n;
    c->bursts++;
}

static void *worker_main(void *arg)
{
    struct worker *w = (struct worker *)arg;
    uint64_t rng = rng_seed((uint64_t)w->id * 7919 + 1);
    long i;
    for (i = 0; i < ops_per_thread; i++) {
        unsigned r = (unsigned)(rng_next(&rng) % 100);
        if (r < 55)
            op_malloc(&w->c, &rng);
        else if (r < 63)
            op_calloc(&w->c, &rng);
        else if (r < 67)
            op_aligned(&w->c, &rng);
        else if (r < 82)
            op_realloc(&w->c, &rng);
        else if (r < 90)
            op_free(&w->c, &rng);
        else
            op_burst(&w->c, &rng);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 4;
    long total_ops = argc > 2 ? atol(argv[2]) : 1200000;
    struct worker *w;
    struct counts sum = {0, 0, 0, 0, 0, 0, 0};
    struct fbmalloc_stats st0, st1;
    int have_stats, counting = 0, i;
    unsigned j;
    double t0 = now_sec();

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (nthreads < 1 || nthreads > 256 || total_ops < 1)
        fail("usage: %s NTHREADS(1..256) [TOTAL_OPS]", argv[0]);
    ops_per_thread = total_ops / nthreads;
    have_stats = stats_get(&st0);
    if (have_stats)
        counting = stats_counting(&st0);
    printf("stress-threads: %d threads, %ld ops each, %d shared slots\n", nthreads,
           ops_per_thread, NSLOTS);

    for (j = 0; j < NSLOTS; j++)
        pthread_mutex_init(&slots[j].mu, NULL);
    w = (struct worker *)calloc((size_t)nthreads, sizeof *w);
    if (!w)
        fail("calloc workers");
    for (i = 0; i < nthreads; i++) {
        w[i].id = i;
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            fail("pthread_create");
    }
    for (i = 0; i < nthreads; i++) {
        pthread_join(w[i].tid, NULL);
        sum.mallocs += w[i].c.mallocs;
        sum.callocs += w[i].c.callocs;
        sum.reallocs += w[i].c.reallocs;
        sum.aligned += w[i].c.aligned;
        sum.frees += w[i].c.frees;
        sum.bursts += w[i].c.bursts;
        sum.checked_bytes += w[i].c.checked_bytes;
    }
    /* The main thread frees what is left: remote frees of dead threads' objects. */
    for (j = 0; j < NSLOTS; j++)
        if (slots[j].p) {
            check_free(&sum, slots[j].p, slots[j].size, slots[j].usable);
            slots[j].p = NULL;
        }
    free(w);

    printf("checked: %lu malloc, %lu calloc (zeroed), %lu realloc (content kept), "
           "%lu aligned, %lu same-thread bursts, %lu frees, %.1f MiB of patterns verified; "
           "usable size >= request and fully writable\n",
           sum.mallocs, sum.callocs, sum.reallocs, sum.aligned, sum.bursts, sum.frees,
           (double)sum.checked_bytes / 1048576.0);

    if (have_stats) {
        stats_get(&st1);
        stats_print("stats", &st1);
        if (st1.bad_frees != st0.bad_frees)
            fail("bad_frees went from %" PRIu64 " to %" PRIu64 ": every free was valid",
                 st0.bad_frees, st1.bad_frees);
        if (counting) {
            if (st1.fast_mallocs <= st0.fast_mallocs)
                fail("fast_mallocs did not grow (%" PRIu64 "): no small request used the "
                     "per-thread buffers", st1.fast_mallocs);
            if (nthreads > 1 && st1.remote_frees <= st0.remote_frees)
                fail("remote_frees did not grow (%" PRIu64 ") although most frees were "
                     "cross-thread", st1.remote_frees);
            printf("checked: fast_mallocs +%" PRIu64 " > 0, remote_frees +%" PRIu64
                   " > 0, bad_frees == 0\n", st1.fast_mallocs - st0.fast_mallocs,
                   st1.remote_frees - st0.remote_frees);
        } else {
            printf("checked: bad_frees == 0\n");
        }
    }
    printf("PASS stress-threads (%d threads) in %.1f s\n", nthreads, now_sec() - t0);
    return 0;
}
