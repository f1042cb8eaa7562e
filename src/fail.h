/*
 * Failure injection (Zig's FailingAllocator for any binary): make chosen
 * allocations return NULL with errno ENOMEM, to test how a program
 * handles out-of-memory.  FBMALLOC_FAIL_AFTER=N lets the first N
 * allocations succeed; FBMALLOC_FAIL_RATE=p fails each with probability
 * p, the same calls for the same FBMALLOC_FAIL_SEED; FBMALLOC_FAIL_MIN_SIZE
 * restricts both to larger requests.  With it on, every allocation goes
 * through the slow paths (the fast path never tests for it).
 */
#ifndef FB_FAIL_H
#define FB_FAIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "fb.h"

extern FB_HIDDEN int fb_fail_on;

/* Reads the options; returns 1 if injection is on. */
int fb_fail_init(void);
/* Should this allocation of n bytes fail?  Counts calls and failures. */
int fb_fail_now(size_t n);

/* The check at each allocation entry point: 1 (errno = ENOMEM) if this
 * request of n bytes is to fail; the caller returns NULL, leaving any
 * block it was given (realloc) valid, as on a real out-of-memory. */
FB_INLINE int fb_fail_reject(size_t n)
{
    if (fb_likely(!fb_fail_on) || !fb_fail_now(n))
        return 0;
    errno = ENOMEM;
    return 1;
}

#endif
