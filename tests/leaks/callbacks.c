/*
 * callbacks.c -- leaks in user code called back FROM libc: a qsort
 * comparator and a signal handler.  The stack must unwind from the user
 * function through libc's frames (qsort's internals; the signal
 * trampoline __restore_rt) back to main.
 *
 * EXPECT: direct 1 block, 71 bytes, from compare_and_leak at @qsort-callback via=main
 * EXPECT: direct 1 block, 72 bytes, from on_signal at @signal-handler via=main
 * Total: 2 leaks, 143 bytes in 2 blocks.
 */
#include <signal.h>

#include "leaktest.h"

static int leaked_once;

static int compare_and_leak(const void *a, const void *b)
{
    if (!leaked_once) {
        leaked_once = 1;
        char *p = malloc(71); /* LEAK: qsort-callback */
        memset(p, 0, 71);
    }
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void on_signal(int sig)
{
    (void)sig;
    char *p = malloc(72); /* LEAK: signal-handler */
    memset(p, 0, 72);
}

int main(void)
{
    lt_init();
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    qsort(v, 64, sizeof v[0], compare_and_leak);
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    lt_scrub_stack();
    return 0;
}
