/*
 * blocked_threads.c -- 50 threads that block every signal (the thread-pool
 * idiom: signals go to one thread) and wait until exit, each holding a
 * block in a local, plus one real leak in main.  Such a thread cannot be
 * stopped with a signal, so its whole stack is scanned (a stale word may
 * hide a leak there, never invent one); what matters is that finding out
 * costs no timeout per thread: check_leaks.py times the exit (plainly
 * about 0.1 s; at 200 ms per thread it was 10 s) and bounds it generously.
 *
 * EXPECT: direct 1 block, 77 bytes, from leak_in_main at @main
 * EXPECT(all): reachable 50 blocks, 3,200 bytes, from blocked at @held
 * EXPECT(all): direct 1 block, 77 bytes, from leak_in_main at @main
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "leaktest.h"

#define NTHREADS 50

static int ready_pipe[2];
static int block_pipe[2];

static void *blocked(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    char *volatile held = malloc(64); /* LEAK: held */
    memset(held, 0, 64);
    lt_scrub_stack();
    lt_park(ready_pipe[1], block_pipe[0]);   /* blocks until exit */
    return (void *)held;
}

static LT_NOINLINE void leak_in_main(void)
{
    char *p = malloc(77); /* LEAK: main */
    memset(p, 'm', 77);
}

int main(void)
{
    lt_init();
    if (pipe(ready_pipe) || pipe(block_pipe))
        return 1;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, blocked, NULL))
            return 1;
    }
    for (int i = 0; i < NTHREADS; i++) {
        char c;
        if (read(ready_pipe[0], &c, 1) != 1)
            return 1;
    }
    leak_in_main();
    lt_scrub_stack();
    return 0;
}
