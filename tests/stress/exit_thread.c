/*
 * stress-exit-thread: a thread calls exit(0) while other threads are busy
 * allocating and freeing (also cross-thread, and while short-lived threads
 * are being created and torn down). exit() runs the atexit handlers and
 * destructors (fbmalloc's statistics report among them) concurrently with
 * those threads: the process must still exit with status 0, promptly.
 *
 * Each scenario runs in a forked child (the parent has no threads); the
 * parent checks the status. Finally the test process itself ends the same
 * way: a worker thread calls exit(0) while the others allocate.
 *
 * usage: stress-exit-thread [ROUNDS]
 */
#include "stress.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define NSLOTS 1024
#define NWORKERS 3
#define TIMEOUT 30.0

static void *slot_p[NSLOTS];
static size_t slot_size[NSLOTS];   /* only touched by the thread that set BUSY */
#define BUSY ((void *)1)
static volatile unsigned long progress;

static void *allocator_thread(void *arg)
{
    uint64_t rng = rng_seed((uint64_t)(uintptr_t)arg * 104729 + 11);
    for (;;) {
        unsigned i = (unsigned)(rng_next(&rng) % NSLOTS);
        size_t size = rand_size(&rng);
        void *p = malloc(size), *old;
        if (!p)
            fail("malloc(%zu) returned NULL", size);
        pattern_fill(p, size, obj_seed(p, size));
        /* take the slot (BUSY while we hold it), swap in the new object */
        while ((old = __atomic_exchange_n(&slot_p[i], BUSY, __ATOMIC_ACQ_REL)) == BUSY)
            sched_yield();
        if (old) {
            pattern_check("before free", old, slot_size[i], slot_size[i],
                          obj_seed(old, slot_size[i]));
            free(old);
        }
        slot_size[i] = size;
        __atomic_store_n(&slot_p[i], p, __ATOMIC_RELEASE);
        progress++;
    }
    return NULL;
}

static void *short_thread(void *arg)
{
    void *p = malloc(100 + (size_t)(uintptr_t)arg % 400);
    if (!p)
        fail("malloc returned NULL");
    memset(p, 0x5a, 100);
    free(p);
    return malloc(64); /* freed by the creator: remote free after death */
}

static void *churn_thread(void *arg)
{
    uintptr_t n = 0;
    (void)arg;
    for (;;) {
        pthread_t t;
        void *res;
        if (pthread_create(&t, NULL, short_thread, (void *)n++) != 0)
            continue;
        pthread_join(t, &res);
        free(res);
    }
    return NULL;
}

static void *exit_thread(void *arg)
{
    struct timespec ts = {0, 5 * 1000 * 1000 + (long)(uintptr_t)arg * 1000 * 1000};
    nanosleep(&ts, NULL);
    while (progress < 1000)
        sched_yield();
    exit(0);
}

static void start_threads(int with_churn)
{
    pthread_t t;
    uintptr_t k;
    for (k = 0; k < NWORKERS; k++)
        if (pthread_create(&t, NULL, allocator_thread, (void *)k) != 0)
            fail("pthread_create");
    if (with_churn && pthread_create(&t, NULL, churn_thread, NULL) != 0)
        fail("pthread_create");
}

/* variant 0: a worker thread exits, main blocked in join
 * variant 1: main thread returns/exits while workers run
 * variant 2: a worker thread exits while threads are created and torn down */
static void scenario(int variant, int round)
{
    pthread_t t;
    start_threads(variant == 2);
    if (variant == 1) {
        struct timespec ts = {0, 5 * 1000 * 1000 + (round % 5) * 1000 * 1000};
        nanosleep(&ts, NULL);
        while (progress < 1000)
            sched_yield();
        exit(0);
    }
    if (pthread_create(&t, NULL, exit_thread, (void *)(uintptr_t)(round % 5)) != 0)
        fail("pthread_create");
    pthread_join(t, NULL);
    fail("exit(0) in a thread returned");
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 30, r;
    static const char *names[3] = {"worker thread calls exit(0)",
                                   "main thread calls exit(0)",
                                   "worker calls exit(0) during thread churn"};
    double t0 = now_sec();
    struct fbmalloc_stats st;

    setvbuf(stdout, NULL, _IOLBF, 0);
    stats_get(&st); /* fails clearly if fbmalloc is not loaded */
    printf("stress-exit-thread: %d rounds, each a child process where exit(0) races with "
           "%d allocating threads\n", rounds, NWORKERS);
    for (r = 0; r < rounds; r++) {
        int variant = r % 3, status = 0;
        double start;
        pid_t pid = fork();
        if (pid < 0)
            fail("fork: %s", strerror(errno));
        if (pid == 0)
            scenario(variant, r);
        start = now_sec();
        for (;;) {
            struct timespec ts = {0, 1000 * 1000};
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
            if (w < 0)
                fail("waitpid: %s", strerror(errno));
            if (now_sec() - start > TIMEOUT) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fail("round %d (%s): process did not finish exiting within %.0f s "
                     "(deadlock in exit handlers?)", r, names[variant], TIMEOUT);
            }
            nanosleep(&ts, NULL);
        }
        if (WIFSIGNALED(status))
            fail("round %d (%s): killed by signal %d (%s)", r, names[variant],
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("round %d (%s): exit status %d, expected 0", r, names[variant],
                 WEXITSTATUS(status));
    }
    printf("checked: %d child processes exited with status 0 (%s / %s / %s)\n", rounds,
           names[0], names[1], names[2]);
    printf("PASS stress-exit-thread in %.1f s (now exiting this process the same way; "
           "a non-zero status from here on is a failure)\n", now_sec() - t0);
    scenario(0, 0);
    return 1;
}
