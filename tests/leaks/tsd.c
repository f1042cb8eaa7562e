/*
 * tsd.c -- clean: blocks whose only pointer is a thread-specific value
 * (pthread_setspecific) are reachable while the thread lives: glibc keeps
 * the first 32 keys' values inside the thread's descriptor and later keys
 * in second-level arrays it calloc()s.  40 keys are used, in the main
 * thread and in a thread blocked at exit (none has a destructor that
 * would run: the values are alive at exit).
 *
 * EXPECT: no leaks
 * EXPECT(all): reachable 40 blocks, 1,280 bytes, from main_values at @tsd-main
 * EXPECT(all): reachable 40 blocks, 1,920 bytes, from thread_values at @tsd-thread
 */
#include <pthread.h>
#include <unistd.h>

#include "leaktest.h"

#define NKEYS 40

static pthread_key_t keys[NKEYS];
static int ready_pipe[2];
static int block_pipe[2];

static void main_values(void)
{
    for (int i = 0; i < NKEYS; i++) {
        void *p = malloc(32); /* LEAK: tsd-main */
        memset(p, 0, 32);
        pthread_setspecific(keys[i], p);
    }
}

static void thread_values(void)
{
    for (int i = 0; i < NKEYS; i++) {
        void *p = malloc(48); /* LEAK: tsd-thread */
        memset(p, 0, 48);
        pthread_setspecific(keys[i], p);
    }
}

static void *blocked_thread(void *arg)
{
    (void)arg;
    thread_values();
    lt_scrub_stack();
    lt_park(ready_pipe[1], block_pipe[0]);   /* blocks until exit */
    return NULL;
}

int main(void)
{
    lt_init();
    for (int i = 0; i < NKEYS; i++)
        if (pthread_key_create(&keys[i], NULL))
            return 1;
    if (pipe(ready_pipe) || pipe(block_pipe))
        return 1;
    main_values();
    pthread_t t;
    if (pthread_create(&t, NULL, blocked_thread, NULL))
        return 1;
    char c;
    if (read(ready_pipe[0], &c, 1) != 1)
        return 1;
    lt_scrub_stack();
    return 0;
}
