/*
 * callbacks.c -- leaks in user code called back FROM libc: a qsort
 * comparator and a signal handler.  The stack must unwind from the user
 * function through libc's frames (qsort's internals; the signal
 * trampoline __restore_rt and fbmalloc's handler wrapper) back to main.
 * The handler's block is larger than fbmalloc's handler pool serves
 * (4096 bytes): small blocks allocated in handlers come from the pool and
 * are not in leak reports (README, "Signal handlers"); see sighandler.c.
 *
 * EXPECT: direct 1 block, 71 bytes, from compare_and_leak at @qsort-callback via=main
 * EXPECT: direct 1 block, 5,000 bytes, from on_signal at @signal-handler via=main
 * Total: 2 leaks, 5,071 bytes in 2 blocks.
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
    char *p = malloc(5000); /* LEAK: signal-handler */
    memset(p, 0, 5000);
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
