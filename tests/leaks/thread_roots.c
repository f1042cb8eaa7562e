/*
 * thread_roots.c -- blocks whose only pointer is a local variable of
 * another thread that is still running at exit (one blocked in
 * pthread_cond_wait, one in sleep) are reachable from that thread's
 * stack, not leaks.  The chained block is reachable through the first.
 * But scanning a live thread must not make everything it ever touched
 * reachable: a third thread, also blocked at exit, lost its pointer to
 * a block in a function that has returned -- a direct leak.
 *
 * EXPECT: direct 1 block, 333 bytes, from lose_one at @live-thread-leak
 * EXPECT(all): reachable 1 block, 111 bytes, from cond_waiter at @cond-held
 * EXPECT(all): reachable 1 block, 16 bytes, from cond_waiter at @cond-chain
 * EXPECT(all): reachable 1 block, 222 bytes, from sleeper at @sleep-held
 * EXPECT(all): direct 1 block, 333 bytes, from lose_one at @live-thread-leak
 */
#include <pthread.h>
#include <unistd.h>

#include "leaktest.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static int ready;

static void announce(void)
{
    pthread_mutex_lock(&mu);
    ready++;
    pthread_cond_broadcast(&ready_cv);
    pthread_mutex_unlock(&mu);
}

static void *cond_waiter(void *arg)
{
    (void)arg;
    void **volatile held = malloc(111); /* LEAK: cond-held */
    memset((void *)held, 0, 111);
    held[0] = malloc(16); /* LEAK: cond-chain */
    memset(held[0], 0, 16);
    lt_scrub_stack();
    announce();
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&never, &mu);
    return NULL;
}

static void lose_one(void)
{
    char *p = malloc(333); /* LEAK: live-thread-leak */
    memset(p, 0, 333);
}

static void *loser(void *arg)
{
    (void)arg;
    lose_one();
    lt_scrub_stack();
    announce();
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&never, &mu);
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    char *volatile held = malloc(222); /* LEAK: sleep-held */
    memset(held, 0, 222);
    lt_scrub_stack();
    announce();
    for (;;)
        sleep(1000);
    return NULL;
}

int main(void)
{
    lt_init();
    pthread_t a, b, c;
    if (pthread_create(&a, NULL, cond_waiter, NULL)
        || pthread_create(&b, NULL, sleeper, NULL)
        || pthread_create(&c, NULL, loser, NULL))
        return 1;
    pthread_mutex_lock(&mu);
    while (ready < 3)
        pthread_cond_wait(&ready_cv, &mu);
    pthread_mutex_unlock(&mu);
    lt_scrub_stack();
    return 0;
}
