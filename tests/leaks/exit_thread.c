/*
 * exit_thread.c -- clean: exit() is called from a non-main thread while
 * main waits in pthread_join holding a block in a local.  The report must
 * appear EXACTLY once, and show no leak (main's block is reachable from
 * main's stack; the exiting thread's block from its own stack).
 *
 * EXPECT: no leaks
 */
#include <pthread.h>
#include <unistd.h>

#include "leaktest.h"

static void *exiter(void *arg)
{
    (void)arg;
    char *volatile mine = malloc(200);
    memset(mine, 0, 200);
    usleep(50 * 1000);
    exit(0);
}

int main(void)
{
    lt_init();
    char *volatile held = malloc(300);
    memset(held, 0, 300);
    pthread_t t;
    if (pthread_create(&t, NULL, exiter, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    return 1;   /* not reached */
}
