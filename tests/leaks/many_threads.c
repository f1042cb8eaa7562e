/*
 * many_threads.c -- clean: 100 threads, each blocked at exit holding a
 * block in a local variable (default 8 MiB stacks).  Every thread's
 * stack must be found and scanned: no leak, and the check must stay fast.
 *
 * EXPECT: no leaks
 * EXPECT(all): reachable 100 blocks, 6,400 bytes, from holder at @held
 */
#include <pthread.h>
#include <unistd.h>

#include "leaktest.h"

#define NTHREADS 100

static int ready_pipe[2];
static int block_pipe[2];

static void *holder(void *arg)
{
    (void)arg;
    char *volatile held = malloc(64); /* LEAK: held */
    memset(held, 0, 64);
    lt_scrub_stack();
    lt_park(ready_pipe[1], block_pipe[0]);   /* blocks until exit */
    return (void *)held;
}

int main(void)
{
    lt_init();
    if (pipe(ready_pipe) || pipe(block_pipe))
        return 1;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, holder, NULL))
            return 1;
    }
    for (int i = 0; i < NTHREADS; i++) {
        char c;
        if (read(ready_pipe[0], &c, 1) != 1)
            return 1;
    }
    lt_scrub_stack();
    return 0;
}
