/*
 * Epoch bookkeeping (src/epoch.c) through the internal API, on a small
 * geometry: 64 KiB buffers of 16 epochs of 4 KiB.  Run twice by meson:
 * with the fast path, and with FBMALLOC_STATS (every call through the
 * counting slow path), which must behave the same.
 */
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "alloc.h"
#include "fbmalloc.h"
#include "stats.h"

#define EPOCH 4096
#define SLOT 65536

static struct fbmalloc_stats st;
static void snap(void) { fb_stats_collect(&st); }

static void *m(size_t n) { return fb_alloc_malloc(n, 0); }
static void f(void *p) { fb_alloc_free(p); }

static int owned(void *p) { return fb_epoch_owns(p); }
static size_t usable(void *p) { return fb_epoch_usable(p); }

static void test_sizes(void)
{
    void *a = m(1), *b = m(0), *c = m(17), *d = m(1024), *e = m(1025);
    CHECK(owned(a) && owned(b) && owned(c) && owned(d));
    CHECK(!owned(e));                         /* above MAX_SMALL: jemalloc */
    CHECK(((uintptr_t)a & 15) == 0 && ((uintptr_t)b & 15) == 0);
    CHECK(((uintptr_t)e & 15) == 0);
    CHECK(b != a);                            /* malloc(0) is unique */
    CHECK_EQ_U(usable(a), 16);
    CHECK_EQ_U(usable(b), 16);
    CHECK_EQ_U(usable(c), 32);
    CHECK_EQ_U(usable(d), 1024);
    CHECK_EQ_U((uintptr_t)b - (uintptr_t)a, 16); /* bump order */
    CHECK_EQ_U(fb_alloc_malloc((size_t)-1, 0), 0);  /* overflow: not served */
    f(a); f(b); f(c); f(d); f(e);
    CHECK_EQ_U(usable(a), 0);                 /* freed: no longer an object */
}

/* A short-lived object as programs' temporaries overlap: freed after
 * the next one was allocated.  Returns it. */
static void *churn(size_t n)
{
    void *p = m(n), *q = m(n);
    f(p);
    f(q);
    return p;
}

/* Objects that fill an epoch, all freed: the epoch is reset in place and
 * its first address comes back. */
static void test_reset_in_place(void)
{
    snap();
    uint64_t resets = st.epochs_reset;
    void *p, *o[EPOCH / 64];
    size_t nb = 0;
    /* Start on a fresh epoch boundary, keeping what leads up to it. */
    while (((uintptr_t)(p = m(64)) & (EPOCH - 1)) != 0)
        o[nb++] = p;
    while (nb)
        f(o[--nb]);
    o[0] = p;
    for (size_t i = 1; i < EPOCH / 64; i++)
        o[i] = m(64);
    CHECK_EQ_U((uintptr_t)o[EPOCH / 64 - 1] - (uintptr_t)p, EPOCH - 64);
    for (size_t i = 0; i < EPOCH / 64; i++)
        f(o[i]);
    void *again = m(128);
    CHECK(again == p);
    f(again);
    snap();
    CHECK(st.epochs_reset > resets);
}

/* A long-lived object pins its epoch; churn never overlaps it. */
static void test_pinning(void)
{
    unsigned char *keep = m(48);
    memset(keep, 0xAB, 48);
    for (int i = 0; i < 20 * EPOCH / 32; i++) {
        unsigned char *p = m(32), *q = m(32);
        CHECK(p + 32 <= keep || p >= keep + 48);
        CHECK(q + 32 <= keep || q >= keep + 48);
        memset(p, 0x11, 32);
        memset(q, 0x11, 32);
        f(p);
        f(q);
    }
    int intact = 1;
    for (int i = 0; i < 48; i++)
        intact &= keep[i] == 0xAB;
    CHECK(intact);
    snap();
    CHECK(st.epochs_pinned >= 1);
    f(keep);
}

static void test_bad_frees(void)
{
    snap();
    uint64_t bad = st.bad_frees;
    char *p = m(64);
    char *q = m(16);
    f(p);
    f(p);                                     /* double */
    f(q + 16);                                /* the bump address: never returned */
    f(q + 8);                                 /* misaligned interior */
    char *r = m(64);
    f(r + 16);                                /* aligned interior */
    snap();
    CHECK_EQ_U(st.bad_frees, bad + 4);
    CHECK_EQ_U(usable(r), 64);                /* r survived the bad free */
    f(r);
    f(q);
    /* The epoch's count was not corrupted: churn still recycles. */
    uint64_t resets = st.epochs_reset;
    for (int i = 0; i < 40 * EPOCH / 16; i++)
        churn(16);
    snap();
    CHECK(st.epochs_reset > resets);
}

static void test_realloc(void)
{
    char *p = m(32);
    memset(p, 7, 32);
    CHECK(fb_alloc_realloc(p, 100, 0) == p);     /* last object grows in place */
    CHECK_EQ_U(usable(p), 112);
    CHECK(fb_alloc_realloc(p, 50, 0) == p);      /* shrinks in place */
    CHECK_EQ_U(usable(p), 64);
    char *q = m(16);
    CHECK_EQ_U(q - p, 112);
    char *r = fb_alloc_realloc(p, 200, 0);       /* not last: moves */
    CHECK(r != p);
    CHECK(r[0] == 7 && r[31] == 7);
    CHECK_EQ_U(usable(p), 0);                 /* old one freed */
    char *big = fb_alloc_realloc(r, 5000, 0);    /* to jemalloc */
    CHECK(big && !owned(big) && big[0] == 7);
    f(q);
    free(NULL);
    /* jemalloc block: freed through the slow path. */
    fb_alloc_free(big);
}

static void *objs[EPOCH / 64];

static void *remote_free_all(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < EPOCH / 64; i++)
        f(objs[i]);
    return NULL;
}

/* Objects freed by another thread: the epoch empties and is reused. */
static void test_remote(void)
{
    /* Align to a fresh epoch. */
    void *p, *before[EPOCH / 64];
    size_t nb = 0;
    while (((uintptr_t)(p = m(64)) & (EPOCH - 1)) != 0)
        before[nb++] = p;
    while (nb)
        f(before[--nb]);                      /* none is the last: kept */
    objs[0] = p;
    for (size_t i = 1; i < EPOCH / 64; i++)
        objs[i] = m(64);
    CHECK_EQ_U((uintptr_t)objs[EPOCH / 64 - 1] - (uintptr_t)objs[0], EPOCH - 64);
    snap();
    uint64_t remote = st.remote_frees;
    pthread_t t;
    pthread_create(&t, NULL, remote_free_all, NULL);
    pthread_join(t, NULL);
    void *again = m(64);                      /* epoch full: reset in place */
    CHECK(again == objs[0]);
    f(again);
    snap();
    if (st.counting)
        CHECK_EQ_U(st.remote_frees, remote + EPOCH / 64);
}

static uintptr_t thread_slot;
static void *slot_of_thread(void *arg)
{
    (void)arg;
    void *p = m(32);
    thread_slot = (uintptr_t)p & ~(uintptr_t)(SLOT - 1);
    f(p);
    return NULL;
}

/* A thread that exits gives its slot back; the next thread gets it. */
static void test_slot_reuse(void)
{
    pthread_t t;
    snap();
    uint64_t threads = st.threads;
    pthread_create(&t, NULL, slot_of_thread, NULL);
    pthread_join(t, NULL);
    uintptr_t first = thread_slot;
    pthread_create(&t, NULL, slot_of_thread, NULL);
    pthread_join(t, NULL);
    CHECK(first != 0 && thread_slot == first);
    snap();
    CHECK_EQ_U(st.threads, threads + 2);
}

/* Every epoch pinned: small requests fall back to jemalloc, and come back
 * to the buffer once epochs empty again. */
static void test_buffer_full(void)
{
    static void *keep[2 * SLOT / EPOCH + 64];
    size_t n = 0;
    void *p;
    snap();
    uint64_t full = st.buffer_full;
    /* Pin every epoch with one object; churn the rest (each freed after
     * the next is allocated: churn()). */
    void *prev = NULL;
    while (n < sizeof keep / sizeof keep[0]) {
        p = m(512);
        if (prev)
            f(prev);
        prev = NULL;
        if (!owned(p)) {
            f(p);
            break;
        }
        if (((uintptr_t)p & (EPOCH - 1)) == 0)
            keep[n++] = p;
        else
            prev = p;
    }
    if (prev)
        f(prev);
    snap();
    CHECK(st.buffer_full > full);
    CHECK(n >= SLOT / EPOCH - 1);
    for (size_t i = 0; i < n; i++)
        f(keep[i]);
    int back = 0;
    for (int i = 0; i < 1000 && !back; i++) {
        p = m(64);
        back = owned(p);
        f(p);
    }
    CHECK(back);
}

int main(void)
{
    /* The geometry comes from the environment (tests/unit/meson.build):
     * options are read by our constructor, before main. */
    test_sizes();
    CHECK(fb_g.size != 0);
    CHECK_EQ_U(fb_g.slot_size, SLOT);
    CHECK_EQ_U(fb_g.epoch_size, EPOCH);
    test_reset_in_place();
    test_pinning();
    test_bad_frees();
    test_realloc();
    test_remote();
    test_slot_reuse();
    test_buffer_full();
    return check_done(fb_stats_on ? "epoch (counting)" : "epoch");
}
