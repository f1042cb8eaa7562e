/*
 * Signal handlers that allocate (issue 13, item 8): every thread gets its
 * own timer signal every 20-50 us; the handler allocates, frees, reallocs
 * and callocs small blocks while the interrupted thread does the same in a
 * loop, and blocks cross between the two both ways (the thread frees what
 * a handler allocated, a handler frees what the thread allocated).  Every
 * block describes itself (word 0: its request size) and is filled with a
 * pattern derived from its address and size, checked before every free:
 * a block handed out twice, to a handler and to the code it interrupted,
 * is overwritten by one of them and caught here.
 *
 *   stress-signals [threads]      STRESS_SIG_SECONDS (default 2) per run,
 *                                 STRESS_SIG_RUNS (default 1) runs,
 *                                 STRESS_SIG_CROSS=0: see below
 *
 * Without fbmalloc's signal pool this fails within a fraction of a second:
 * the handler's malloc takes the bump pointer the interrupted malloc has
 * loaded and not yet stored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "stress.h"

#define SLOTS 4096
#define HSLOTS 64
#define SIG SIGALRM

static double seconds = 2;
/* STRESS_SIG_CROSS=0: handlers free only blocks allocated in handlers
 * (what README says is safe under FBMALLOC_CHECK and FBMALLOC_CANARY). */
static int cross = 1;
static _Atomic unsigned long total_handled, total_handler_ops, total_crossed;

/* Block i/o: word 0 holds the request size (n >= 16), the rest the
 * pattern seeded by address and size. */
static void *blk_new(size_t n, int zeroed)
{
    if (n < 16)
        n = 16;
    unsigned char *p = zeroed ? calloc(1, n) : malloc(n);
    if (!p)
        fail("%s(%zu) returned NULL (errno %d)", zeroed ? "calloc" : "malloc", n, errno);
    if ((uintptr_t)p & 15)
        fail("%p: not 16-byte aligned", (void *)p);
    if (zeroed)
        for (size_t i = 0; i < n; i++)
            if (p[i])
                fail("calloc(%zu) = %p: byte %zu is 0x%02x", n, (void *)p, i, p[i]);
    memcpy(p, &n, 8);
    pattern_fill(p + 8, n - 8, obj_seed(p, n));
    return p;
}

/* usable: also check malloc_usable_size (README: not for a handler on a
 * block allocated outside handlers). */
static size_t blk_check_u(const char *what, void *p, int usable)
{
    size_t n;
    memcpy(&n, p, 8);
    if (n < 16 || n > (1u << 20))
        fail("%s: block %p has a bad size word %zu: overwritten", what, p, n);
    pattern_check(what, (unsigned char *)p + 8, n, n - 8, obj_seed(p, n));
    if (usable && malloc_usable_size(p) < n)
        fail("%s: malloc_usable_size(%p) = %zu < %zu", what, p, malloc_usable_size(p), n);
    return n;
}

static size_t blk_check(const char *what, void *p)
{
    return blk_check_u(what, p, 1);
}

static void blk_free(const char *what, void *p)
{
    blk_check(what, p);
    free(p);
}

/* realloc to m bytes: the old contents must survive; rewritten for m. */
static void *blk_realloc(const char *what, void *p, size_t m)
{
    size_t n = blk_check(what, p);
    if (m < 16)
        m = 16;
    unsigned char *q = realloc(p, m);
    if (!q)
        fail("%s: realloc(%zu) returned NULL", what, m);
    size_t keep = (n < m ? n : m) - 8;
    uint64_t seed = obj_seed(p, n);
    pattern_check(what, q + 8, n, keep, seed);
    memcpy(q, &m, 8);
    pattern_fill(q + 8, m - 8, obj_seed(q, m));
    return q;
}

struct thr {
    int idx;
    timer_t timer;
    uint64_t rng, hrng;
    void *slots[SLOTS];
    void *hslots[HSLOTS];                /* the handler's own, only it touches */
    _Atomic(void *) to_handler, to_main; /* blocks crossing over */
    unsigned long handled, hops, crossed;
};

static __thread struct thr *me;

/* Small sizes: the buffers' and the pool's range (up to 4096 bytes, what
 * README says a handler may ask for), now and then the largest. */
static size_t small_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 64 == 0)
        return 16 + (size_t)(r >> 8) % 4081;
    return 16 + (size_t)(r >> 8) % 496;
}

static void arm(struct thr *t, uint64_t *rng)
{
    struct itimerspec its = {0};
    its.it_value.tv_nsec = 20000 + (long)(rng_next(rng) % 30001);
    timer_settime(t->timer, 0, &its, NULL);
}

static void handler(int sig)
{
    (void)sig;
    int saved = errno;
    struct thr *t = me;
    if (!t)
        return;
    uint64_t *rng = &t->hrng;
    unsigned ops = 1 + (unsigned)(rng_next(rng) % 4);
    for (unsigned k = 0; k < ops; k++) {
        unsigned i = (unsigned)(rng_next(rng) % HSLOTS);
        unsigned what = (unsigned)(rng_next(rng) % 8);
        if (!t->hslots[i])
            t->hslots[i] = blk_new(small_size(rng), what == 0);
        else if (what == 1)
            t->hslots[i] = blk_realloc("handler realloc", t->hslots[i], small_size(rng));
        else {
            blk_free("handler free", t->hslots[i]);
            t->hslots[i] = NULL;
        }
        t->hops++;
    }
    void *x = atomic_exchange(&t->to_handler, NULL);
    if (x) {
        blk_check_u("handler free of the thread's block", x, 0);
        free(x);
        t->crossed++;
    }
    if (!atomic_load(&t->to_main))
        atomic_store(&t->to_main, blk_new(small_size(rng), 0));
    t->handled++;
    arm(t, rng);
    errno = saved;
}

static void *run(void *arg)
{
    struct thr *t = arg;
    me = t;
    t->rng = rng_seed(0x5167 + (uint64_t)t->idx);
    t->hrng = rng_seed(0x8a11 + (uint64_t)t->idx);
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIG;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &t->timer) != 0)
        fail("timer_create: %s", strerror(errno));
    arm(t, &t->rng);
    double end = now_sec() + seconds;
    unsigned long iter = 0;
    while ((iter & 1023) || now_sec() < end) {
        unsigned i = (unsigned)(rng_next(&t->rng) % SLOTS);
        if (!t->slots[i]) {
            t->slots[i] = blk_new(small_size(&t->rng), (iter & 7) == 0);
        } else if ((iter & 15) == 1) {
            t->slots[i] = blk_realloc("thread realloc", t->slots[i], small_size(&t->rng));
        } else {
            blk_free("thread free", t->slots[i]);
            t->slots[i] = NULL;
        }
        void *x = atomic_exchange(&t->to_main, NULL);
        if (x) {
            blk_free("thread free of a handler's block", x);
            t->crossed++;
        }
        if (cross && !atomic_load(&t->to_handler))
            atomic_store(&t->to_handler, blk_new(small_size(&t->rng), 0));
        iter++;
    }
    /* Stop the timer, then nothing runs behind our back. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIG);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    timer_delete(t->timer);
    for (unsigned i = 0; i < SLOTS; i++)
        if (t->slots[i])
            blk_free("thread final free", t->slots[i]);
    for (unsigned i = 0; i < HSLOTS; i++)
        if (t->hslots[i])
            blk_free("final free of a handler's block", t->hslots[i]);
    void *x = atomic_exchange(&t->to_main, NULL);
    if (x)
        blk_free("final free", x);
    x = atomic_exchange(&t->to_handler, NULL);
    if (x)
        blk_free("final free", x);
    pthread_sigmask(SIG_SETMASK, &old, NULL);   /* the next run's timer */
    atomic_fetch_add(&total_handled, t->handled);
    atomic_fetch_add(&total_handler_ops, t->hops);
    atomic_fetch_add(&total_crossed, t->crossed);
    me = NULL;
    return NULL;
}

/* A handler that deadlocks (in an allocator's lock) must fail, not hang. */
static void *watchdog(void *arg)
{
    double limit = *(double *)arg;
    struct timespec ts = {(time_t)limit, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    /* write(2) only: the program's locks may be the ones stuck. */
    static const char msg[] = "FAIL: stress-signals: no end in time: a handler "
                              "deadlocked (inside the allocator?)\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 1;
    const char *s = getenv("STRESS_SIG_SECONDS");
    const char *r = getenv("STRESS_SIG_RUNS");
    int runs = r ? atoi(r) : 1;
    const char *c = getenv("STRESS_SIG_CROSS");
    if (s)
        seconds = atof(s);
    if (c)
        cross = atoi(c);
    if (nthreads < 1 || nthreads > 16 || runs < 1 || seconds <= 0)
        fail("usage: stress-signals [threads 1..16]");
    if (!stress_stats_lookup() && !getenv("STRESS_ALLOW_NO_FBMALLOC"))
        fail("libfbmalloc.so is not loaded (LD_PRELOAD)");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIG, &sa, NULL) != 0)
        fail("sigaction: %s", strerror(errno));
    static double limit;
    limit = seconds * runs * 2 + 15;
    pthread_t wd;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);   /* the watchdog takes no signal */
    if (pthread_create(&wd, NULL, watchdog, &limit) != 0)
        fail("pthread_create");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int run_i = 0; run_i < runs; run_i++) {
        atomic_store(&total_handled, 0);
        atomic_store(&total_handler_ops, 0);
        atomic_store(&total_crossed, 0);
        struct thr *ts = calloc((size_t)nthreads, sizeof *ts);
        pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
        if (!ts || !tids)
            fail("calloc");
        double t0 = now_sec();
        for (int i = 0; i < nthreads; i++) {
            ts[i].idx = i;
            if (i == 0)
                continue;
            if (pthread_create(&tids[i], NULL, run, &ts[i]) != 0)
                fail("pthread_create");
        }
        run(&ts[0]);
        for (int i = 1; i < nthreads; i++)
            pthread_join(tids[i], NULL);
        double dt = now_sec() - t0;
        unsigned long h = atomic_load(&total_handled);
        printf("run %d: %d thread(s), %.1f s: %lu handler runs (%.0f/s per thread), "
               "%lu handler operations, %lu blocks crossed: every block intact\n",
               run_i + 1, nthreads, dt, h, (double)h / dt / nthreads,
               atomic_load(&total_handler_ops), atomic_load(&total_crossed));
        /* A handler that never ran tests nothing.  The timer asks for
         * 20,000-50,000 runs a second; a loaded 2-core machine gives far
         * fewer, never below a few hundred. */
        if ((double)h < 200.0 * seconds * nthreads)
            fail("only %lu handler runs in %.1f s", h, dt);
        free(ts);
        free(tids);
    }
    return 0;
}
