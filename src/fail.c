/*
 * Failure injection; see fail.h.
 */
#include "fail.h"

#include <stdatomic.h>

#include "epoch.h"
#include "options.h"
#include "stats.h"

int fb_fail_on;
static _Atomic uint64_t fb_fail_calls;

int fb_fail_init(void)
{
    fb_fail_on = fb_opt.fail_after != UINT64_MAX || fb_opt.fail_rate != 0;
    return fb_fail_on;
}

/* splitmix64's finaliser: a well-mixed hash of (seed, call index), so the
 * same seed fails the same calls regardless of which thread makes them. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int fb_fail_now(size_t n)
{
    /* Our own allocations (symbolisation, libc under our guard) never
     * fail, nor do requests at or below the size limit. */
    if (fb_t.busy || n <= fb_opt.fail_min_size)
        return 0;
    uint64_t i = atomic_fetch_add_explicit(&fb_fail_calls, 1, memory_order_relaxed);
    int fail = i >= fb_opt.fail_after;
    if (!fail && fb_opt.fail_rate)
        fail = (mix(fb_opt.fail_seed ^ mix(i)) >> 32) < fb_opt.fail_rate;
    if (fail)
        fb_stats_event(&fb_stats_g.injected_failures);
    return fail;
}
