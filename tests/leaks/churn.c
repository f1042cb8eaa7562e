/*
 * churn.c -- clean: two threads doing heavy malloc/free churn (random
 * sizes, a window of live blocks, blocks handed to the other thread and
 * freed there), everything freed before exit.
 *
 * EXPECT: no leaks
 * No group (leaked or still reachable) may come from churn_thread.
 */
#include <pthread.h>
#include <stdint.h>

#include "leaktest.h"

#define ROUNDS 100000
#define WINDOW 64
#define HANDOFF 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *handoff[HANDOFF];

static void *churn_thread(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    void *window[WINDOW] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t size = 1 + (size_t)(seed % 2000);
        unsigned slot = (unsigned)(seed >> 20) % WINDOW;
        free(window[slot]);
        window[slot] = malloc(size);
        memset(window[slot], 0, size < 16 ? size : 16);
        if ((seed >> 40) % 8 == 0) {
            /* Swap a block with the shared array: the other thread frees
             * what we leave there. */
            unsigned h = (unsigned)(seed >> 48) % HANDOFF;
            pthread_mutex_lock(&lock);
            void *tmp = handoff[h];
            handoff[h] = window[slot];
            window[slot] = tmp;
            pthread_mutex_unlock(&lock);
        }
    }
    for (int i = 0; i < WINDOW; i++)
        free(window[i]);
    return NULL;
}

int main(void)
{
    lt_init();
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, churn_thread, (void *)(uintptr_t)(i + 1)))
            return 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < HANDOFF; i++) {
        free(handoff[i]);
        handoff[i] = NULL;
    }
    lt_scrub_stack();
    return 0;
}
