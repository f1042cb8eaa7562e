/*
 * FBMALLOC_CANARY: guard bytes before and after every block (Zig's
 * validating allocator, for any binary).
 *
 * A block of n bytes becomes [front][header][n bytes][16-byte tail guard]:
 * the header (16 bytes, right before the program's pointer) holds n and a
 * magic value and is itself the front guard; an aligned block has a front
 * pad before it so the program's pointer keeps its alignment.  Guards are
 * checked at free, at realloc and, for every live block, at exit; an
 * overrun is reported with how many bytes past the end were written, the
 * block's size and its allocation stack (canaries turn call-site tracking
 * on).  malloc_usable_size returns n exactly: a program that grows into
 * it never touches a guard.
 */
#ifndef FB_CANARY_H
#define FB_CANARY_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

#include "layer.h"

extern FB_HIDDEN int fb_canary_on;

/* Reads the option; returns 1 if canaries are on. */
int fb_canary_init(void);
/* Each call wraps the allocator below it, which the caller names (alloc.c
 * passes its own paths without the canary layer).  align: a power of
 * two; zero: clear the program's bytes. */
void *fb_canary_alloc(const struct fb_layer_below *below, size_t align, size_t n, int zero);
void fb_canary_free(const struct fb_layer_below *below, void *p);
void *fb_canary_realloc(const struct fb_layer_below *below, void *p, size_t n);
size_t fb_canary_usable(const struct fb_layer_below *below, const void *p);
/* At exit, for every live tracked block (the walk is leak.c's, with the
 * other threads stopped): checks the guards of the block
 * whose inner block is [base, base + usable), site its allocation site,
 * and notes damage without locking or allocating; then, with the threads
 * running again, fb_canary_exit_report reports what was noted. */
void fb_canary_check_block(void *ctx, uintptr_t base, size_t usable, uint32_t site);
void fb_canary_exit_report(void);
/* For the leak report: the program's size of the guarded block starting
 * at base (usable bytes of the inner block), or 0 if it has no guards. */
size_t fb_canary_request(uintptr_t base);

#endif
