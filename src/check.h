/*
 * FBMALLOC_CHECK: bad frees with stacks (Zig's GeneralPurposeAllocator
 * double-free detection, for any binary).
 *
 * With checking on, call sites are captured as for leak reports and every
 * free goes through here.  Freed blocks wait in a bounded quarantine
 * before they are really released: a buffer block is marked freed in the
 * granule map at once, but its epoch does not count it as freed until it
 * leaves the quarantine (so the epoch cannot be reset and its memory
 * reused meanwhile); a jemalloc block is handed to jemalloc only then.
 * So within the quarantine window a double free always finds the first
 * free, and the report shows the bad call's stack, the first free's stack
 * and the allocation's.
 */
#ifndef FB_CHECK_H
#define FB_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

extern FB_HIDDEN int fb_check_on;

/* on_a_stack: the leak check's thread registry (exact stack bounds of
 * every live thread), used to classify a bad pointer. */
int fb_check_init(int (*on_a_stack)(uintptr_t a));
/* free() with checks: reports bad frees, quarantines good ones. */
void fb_check_free(void *ptr);
/* Before realloc of a jemalloc-path pointer: 0 if it is a live block,
 * -1 if it was reported as bad (the caller returns NULL, EINVAL). */
int fb_check_realloc(void *ptr);
/* A bad free or realloc found elsewhere (is_double: of a block freed
 * before): reported with stacks when checking is on, else in one line;
 * then the FBMALLOC_ON_BAD_FREE policy.  The one report of every layer. */
void fb_check_report(const void *ptr, int is_double, const char *op);

/* A second free (or realloc) of ptr, the program's pointer of a block
 * whose inner block (FBMALLOC_CANARY's) starts at block: reported with
 * the first free's and the allocation's stacks while the inner block is
 * quarantined; size: the program's size of the block. */
void fb_check_report_inner(const void *ptr, const void *block, uint64_t size,
                           const char *op);

/* fork: hold / release the quarantine lock (init.c's atfork handlers). */
void fb_check_fork_prepare(void);
void fb_check_fork_parent(void);
void fb_check_fork_child(void);

#endif
