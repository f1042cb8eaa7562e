/*
 * oneleak: a process with exactly one leaked block, for the cost of the
 * exit report (issue 11: at most 5 ms for a process with one leak).
 *
 * Makes a few allocations (freed), leaks one 48-byte block from a helper
 * whose frame dies before the report, clears the dead stack below it, and
 * prints the CLOCK_MONOTONIC time in nanoseconds as the last thing main
 * does.  scripts/bench takes the time from that line to the moment the
 * process is reaped: the exit path, leak check and report included.
 *
 * usage: oneleak [0]   (0: free the block instead: no leak)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *volatile keep;

static __attribute__((noinline)) void leak_one(int leak)
{
    char *p = malloc(48);
    if (!p)
        exit(1);
    memset(p, 'x', 48);
    keep = p;
    if (!leak)
        free(p);
    keep = NULL;
}

/* Overwrites the dead frames below main's (leak_one's copies of p). */
static __attribute__((noinline)) void scrub(void)
{
    volatile char buf[16 * 1024];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

int main(int argc, char **argv)
{
    for (int i = 0; i < 16; i++) {
        void *q = malloc((size_t)16 << (i % 8));
        free(q);
    }
    leak_one(argc < 2 || atoi(argv[1]) != 0);
    scrub();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    fflush(stdout);
    return 0;
}
