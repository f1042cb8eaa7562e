/*
 * thread.c -- a leak in a second thread (created, leaks, exits, joined).
 *
 * EXPECT: direct 1 block, 64 bytes, from worker_leak at @thread
 * Total: 1 leak, 64 bytes in 1 block.  Nothing else may be reported: in
 * particular not what glibc allocates per thread (the thread's DTV, calloc
 * from ld.so, lives on in the cached stack of the finished thread).
 */
#include <pthread.h>

#include "leaktest.h"

static void worker_leak(void)
{
    char *p = malloc(64); /* LEAK: thread */
    memset(p, 'x', 64);
}

static void *worker(void *arg)
{
    (void)arg;
    worker_leak();
    lt_scrub_stack();
    return NULL;
}

int main(void)
{
    lt_init();
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    lt_scrub_stack();
    return 0;
}
