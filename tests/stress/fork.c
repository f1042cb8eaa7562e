/*
 * stress-fork: worker threads keep allocating, checking and freeing objects
 * they hold in per-thread slot arrays; meanwhile the main thread fork()s
 * repeatedly. Each child (single-threaded, inheriting whatever state the
 * allocator was in, possibly in the middle of a malloc in another thread)
 * must be able to allocate and free, start a thread that allocates, and
 * free every object it inherited from all threads after checking its
 * pattern; then it exits 0. The parent checks the child's status and that
 * it did not hang (a lock held across fork).
 *
 * usage: stress-fork [NFORKS] [NTHREADS]
 */
#include "stress.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define NSLOTS 512
#define MAXTHREADS 16
#define CHILD_TIMEOUT 60.0

/* A slot is written only by its owner thread. size/usable change only while
 * p is NULL, and p is published with release after the object is filled, so
 * a forked child sees either NULL or a complete object. */
struct slot {
    void *p;
    size_t size;
    size_t usable;
};

struct worker {
    pthread_t tid;
    int id;
    unsigned long ops;
    struct slot slots[NSLOTS];
};

static struct worker workers[MAXTHREADS];
static int nthreads;
static int stop;

static size_t fork_size(uint64_t *rng)
{
    /* Mostly small, but keep some large objects in flight too. */
    size_t s = rand_size(rng);
    return s > 256 * 1024 ? s / 4 : s;
}

static void check_obj(const char *what, void *p, size_t size, size_t usable)
{
    size_t now = malloc_usable_size(p);
    if (now != usable)
        fail("%s: malloc_usable_size(%p) (request %zu) is %zu, was %zu", what, p, size,
             now, usable);
    pattern_check(what, p, size, usable, obj_seed(p, size));
}

static void *worker_main(void *arg)
{
    struct worker *w = (struct worker *)arg;
    uint64_t rng = rng_seed((uint64_t)w->id * 31337 + 5);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        struct slot *s = &w->slots[rng_next(&rng) % NSLOTS];
        void *old = __atomic_exchange_n(&s->p, NULL, __ATOMIC_ACQ_REL);
        void *p;
        size_t size, usable;
        if (old) {
            check_obj("worker: before free", old, s->size, s->usable);
            if (rng_next(&rng) % 8 == 0) {
                /* realloc instead of free + malloc */
                size = fork_size(&rng);
                p = realloc(old, size);
                if (!p)
                    fail("worker: realloc(%zu) returned NULL", size);
                goto fill;
            }
            free(old);
        }
        if (rng_next(&rng) % 4 == 0)
            continue; /* leave the slot empty for a while */
        size = fork_size(&rng);
        p = malloc(size);
        if (!p)
            fail("worker: malloc(%zu) returned NULL", size);
    fill:
        usable = malloc_usable_size(p);
        if (usable < size)
            fail("worker: malloc_usable_size %zu < request %zu", usable, size);
        pattern_fill(p, usable, obj_seed(p, size));
        s->size = size;
        s->usable = usable;
        __atomic_store_n(&s->p, p, __ATOMIC_RELEASE);
        w->ops++;
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    uint64_t rng = rng_seed((uint64_t)(uintptr_t)arg);
    void *keep[64];
    size_t ksize[64];
    int i;
    for (i = 0; i < 64; i++) {
        ksize[i] = 1 + (size_t)(rng_next(&rng) % 1024);
        keep[i] = malloc(ksize[i]);
        if (!keep[i])
            fail("child thread: malloc(%zu) returned NULL", ksize[i]);
        pattern_fill(keep[i], ksize[i], obj_seed(keep[i], ksize[i]));
    }
    for (i = 0; i < 64; i++) {
        pattern_check("child thread: before free", keep[i], ksize[i], ksize[i],
                      obj_seed(keep[i], ksize[i]));
        free(keep[i]);
    }
    return NULL;
}

/* Runs in the forked child: only this thread exists. */
static int child_main(int round)
{
    uint64_t rng = rng_seed((uint64_t)round * 1000003 + 17);
    unsigned long inherited = 0;
    struct fbmalloc_stats st0, st1;
    int have_stats = stats_get(&st0);
    pthread_t t;
    int i, k;
    void *keep[256];
    size_t ksize[256];

    /* 1. The child can allocate and free (small, large, calloc, realloc). */
    for (i = 0; i < 20000; i++) {
        size_t size = rand_size(&rng);
        void *p = (i % 5 == 0) ? calloc(1, size) : malloc(size);
        if (!p)
            fail("child %d: malloc(%zu) returned NULL", round, size);
        pattern_fill(p, size, obj_seed(p, size));
        if (i % 7 == 0) {
            void *q = realloc(p, size + 100);
            if (!q)
                fail("child %d: realloc returned NULL", round);
            pattern_check("child: after realloc", q, size, size, obj_seed(p, size));
            p = q;
            size += 100;
            pattern_fill(p, size, obj_seed(p, size));
        }
        pattern_check("child: before free", p, size, size, obj_seed(p, size));
        free(p);
    }
    for (i = 0; i < 256; i++) {
        ksize[i] = 1 + (size_t)(rng_next(&rng) % 2048);
        keep[i] = malloc(ksize[i]);
        if (!keep[i])
            fail("child %d: malloc returned NULL", round);
        pattern_fill(keep[i], ksize[i], obj_seed(keep[i], ksize[i]));
    }

    /* 2. Threads still work in the child. */
    if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)round) != 0)
        fail("child %d: pthread_create failed", round);
    pthread_join(t, NULL);

    /* 3. Free everything inherited from every (now gone) worker thread. */
    for (k = 0; k < nthreads; k++)
        for (i = 0; i < NSLOTS; i++) {
            struct slot *s = &workers[k].slots[i];
            void *p = __atomic_load_n(&s->p, __ATOMIC_ACQUIRE);
            if (!p)
                continue;
            check_obj("child: inherited object before free", p, s->size, s->usable);
            free(p);
            s->p = NULL;
            inherited++;
        }
    for (i = 0; i < 256; i++) {
        pattern_check("child: before free", keep[i], ksize[i], ksize[i],
                      obj_seed(keep[i], ksize[i]));
        free(keep[i]);
    }
    if (have_stats) {
        stats_get(&st1);
        if (st1.bad_frees != st0.bad_frees)
            fail("child %d: bad_frees went from %" PRIu64 " to %" PRIu64, round,
                 st0.bad_frees, st1.bad_frees);
    }
    printf("  fork %2d: child allocated/freed 20000 objects, ran a thread, freed %lu "
           "inherited objects\n", round, inherited);
    return 0;
}

int main(int argc, char **argv)
{
    int nforks = argc > 1 ? atoi(argv[1]) : 20;
    struct fbmalloc_stats st;
    int have_stats, i, round;
    unsigned long ops = 0;
    double t0 = now_sec();

    nthreads = argc > 2 ? atoi(argv[2]) : 4;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (nforks < 1 || nthreads < 1 || nthreads > MAXTHREADS)
        fail("usage: %s [NFORKS] [NTHREADS(1..%d)]", argv[0], MAXTHREADS);
    have_stats = stats_get(&st);
    printf("stress-fork: %d worker threads, %d forks while they run\n", nthreads, nforks);

    for (i = 0; i < nthreads; i++) {
        workers[i].id = i;
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]) != 0)
            fail("pthread_create");
    }
    for (round = 0; round < nforks; round++) {
        pid_t pid;
        int status = 0;
        double start;
        struct timespec ts = {0, 20 * 1000 * 1000 + (round % 5) * 7 * 1000 * 1000};
        nanosleep(&ts, NULL); /* let the workers churn */
        pid = fork();
        if (pid < 0)
            fail("fork: %s", strerror(errno));
        if (pid == 0) {
            fflush(stdout);
            exit(child_main(round));
        }
        start = now_sec();
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (r < 0)
                fail("waitpid: %s", strerror(errno));
            if (now_sec() - start > CHILD_TIMEOUT) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fail("fork %d: child still running after %.0f s: deadlock after fork "
                     "(a lock held by another thread at fork time?)", round, CHILD_TIMEOUT);
            }
            ts.tv_sec = 0;
            ts.tv_nsec = 1000 * 1000;
            nanosleep(&ts, NULL);
        }
        if (WIFSIGNALED(status))
            fail("fork %d: child killed by signal %d (%s)", round, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("fork %d: child exited with status %d", round, WEXITSTATUS(status));
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < nthreads; i++) {
        pthread_join(workers[i].tid, NULL);
        ops += workers[i].ops;
    }
    /* The parent frees what the workers left (remote frees of dead threads). */
    for (i = 0; i < nthreads; i++) {
        int k;
        for (k = 0; k < NSLOTS; k++) {
            struct slot *s = &workers[i].slots[k];
            if (s->p) {
                check_obj("parent: before free", s->p, s->size, s->usable);
                free(s->p);
                s->p = NULL;
            }
        }
    }
    if (have_stats) {
        struct fbmalloc_stats st1;
        stats_get(&st1);
        stats_print("parent stats", &st1);
        if (st1.bad_frees != st.bad_frees)
            fail("parent: bad_frees went from %" PRIu64 " to %" PRIu64, st.bad_frees,
                 st1.bad_frees);
    }
    printf("checked: %d children exited 0 (no hang, no crash), each freed all inherited "
           "objects with intact patterns; workers did %lu allocations meanwhile\n",
           nforks, ops);
    printf("PASS stress-fork in %.1f s\n", now_sec() - t0);
    return 0;
}
