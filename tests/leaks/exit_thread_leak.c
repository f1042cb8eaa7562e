/*
 * exit_thread_leak.c -- exit() called from a non-main thread while main
 * waits in pthread_join, with a real leak in each thread and a block each
 * still holds in a local.  The exiting thread must be scanned from its live
 * frames only (the caller of exit() and up), main from where it waits: the
 * leaks are direct, the held blocks reachable.  check_leaks.py runs it 20
 * times (thread timing and ASLR vary).
 *
 * EXPECT: direct 1 block, 300 bytes, from leak_in_main at @main
 * EXPECT: direct 1 block, 200 bytes, from leak_in_thread at @thread
 */
#include <pthread.h>
#include <unistd.h>

#include "leaktest.h"

static LT_NOINLINE void leak_in_thread(void)
{
    char *p = malloc(200); /* LEAK: thread */
    memset(p, 't', 200);
}

static LT_NOINLINE void leak_in_main(void)
{
    char *p = malloc(300); /* LEAK: main */
    memset(p, 'm', 300);
}

static void *exiter(void *arg)
{
    (void)arg;
    char *volatile mine = malloc(600);
    memset(mine, 0, 600);
    leak_in_thread();
    lt_scrub_stack();
    usleep(20 * 1000);
    exit(0);
}

int main(void)
{
    lt_init();
    char *volatile held = malloc(500);
    memset(held, 0, 500);
    leak_in_main();
    lt_scrub_stack();
    pthread_t t;
    if (pthread_create(&t, NULL, exiter, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    return 1;   /* not reached */
}
