/*
 * sighandler.c -- a signal handler's blocks (fbmalloc's handler pool) are
 * not in the report, but what they point to is reachable: a block held
 * only by a pointer stored in a handler's block is no leak.
 *
 * Expected report (FBMALLOC_LEAKS=1):
 * EXPECT: direct 1 block, 64 bytes, from leak_outside at @outside
 * The 200-byte block is reachable through the handler's block (kept in a
 * global); the handler's own blocks, kept or lost, are not reported
 * (README: a leak report does not see blocks allocated in handlers).
 */
#include <signal.h>

#include "leaktest.h"

static void **handler_block;          /* allocated by the handler */
static void *volatile handed;         /* the main code's block, for it */

static void handler(int sig)
{
    (void)sig;
    handler_block = malloc(32);
    handler_block[0] = handed;
    handler_block[1] = NULL;
    void *lost = malloc(48);          /* lost: invisible to the report */
    memset(lost, 0, 48);
}

static LT_NOINLINE void give(void)
{
    handed = malloc(200); /* LEAK: reachable */
    memset((void *)handed, 'r', 200);
    raise(SIGUSR1);
    handed = NULL;                    /* now only in the handler's block */
}

static LT_NOINLINE void leak_outside(void)
{
    char *p = malloc(64); /* LEAK: outside */
    memset(p, 'o', 64);
}

int main(void)
{
    lt_init();
    signal(SIGUSR1, handler);
    give();
    leak_outside();
    lt_scrub_stack();
    return 0;
}
