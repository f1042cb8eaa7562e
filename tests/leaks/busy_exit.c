/*
 * busy_exit.c -- robustness: main returns (so the leak check runs) while
 * two threads are still allocating and freeing as fast as they can.  The
 * check must not crash, hang or corrupt anything, and must report exactly
 * once.  Each thread keeps a window of live blocks in a local array
 * (reachable from its stack).  A block between malloc's return and the
 * store of its address, or being freed, may be seen in flight, so the
 * driver tolerates a few leaked blocks from churn_forever only.
 *
 * EXPECT: no leaks
 */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "leaktest.h"

#define WINDOW 32

static volatile int started;

static void *churn_forever(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    void *volatile window[WINDOW] = {0};
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        unsigned slot = (unsigned)(seed >> 20) % WINDOW;
        free(window[slot]);
        window[slot] = malloc(1 + (size_t)(seed % 3000));
    }
    return NULL;
}

int main(void)
{
    lt_init();
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, churn_forever, (void *)(uintptr_t)(i + 1)))
            return 1;
    while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 2)
        usleep(1000);
    usleep(100 * 1000);
    return 0;
}
