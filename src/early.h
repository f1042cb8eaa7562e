/*
 * The early arena: the blocks the backend hands out before jemalloc has
 * started, so that a short process never pays for jemalloc's start-up.
 *
 * Most processes a shell or a build starts (the gcc driver, as, make,
 * bash, cc1 on a small file) send jemalloc a few dozen to a thousand
 * requests in all (stdio buffers, locale data, getdelim lines, hash
 * tables and obstacks above the buffers' size gate), while jemalloc's
 * first call costs about 130,000 instructions and 60 page faults (its
 * arenas, bins, base allocator and thread cache).  This arena serves
 * those requests in a zeroed array of our own .lbss (no system call, no
 * page touched before use) until the first request that does not fit
 * (or one past its block limit, early.c), after which jemalloc serves
 * every new request for good (backend.c closes it); the arena's blocks
 * stay valid until freed.
 *
 * Every block has a 16-byte header below it (its size, and a free-list
 * link) and a start bit (where blocks begin, as jemalloc's start bits
 * do: backend.h).  Sizes are rounded up to jemalloc's size classes, and
 * a freed block is reused only by a request of its own class (as
 * jemalloc reuses its slabs: a stray pointer to a freed block meets a
 * block of the same size, if any); it keeps the freed mark the backend
 * writes into its first word until then.  Only the last block grows in
 * place (a line buffer grown by realloc).  When jemalloc takes over,
 * the free blocks' whole pages go back to the kernel (fb_early_close).
 *
 * This module knows nothing of jemalloc; backend.h decides which blocks
 * come here and checks, as for jemalloc's, that a pointer freed is a live
 * block's start.
 */
#ifndef FB_EARLY_H
#define FB_EARLY_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

/* 4 MiB: enough for every process of a small build but the linker
 * (gcc's driver and as ask for 0.2-0.4 MiB in all, make 0.5, cc1
 * compiling a small file keeps at most 2.2 MiB live of the 4.4 it asks
 * for): cc -c of a one-line file took 2,045 page faults with 512 KiB
 * and no reuse (cc1 started jemalloc), 1,967 so (mimalloc 1,960); only
 * the pages used are ever touched, and under an address-space limit it
 * is all given back (backend.c). */
#define FB_EARLY_SIZE ((size_t)4 << 20)

extern FB_HIDDEN unsigned char fb_early_mem[FB_EARLY_SIZE];
/* 1 while the arena serves new requests; 0 for good once one did not
 * fit and jemalloc has started (backend.c).  Read without ordering: a
 * thread that still reads 1 sends a request to the arena, which serves
 * it if it can (a block as valid as any) or sends it on to jemalloc. */
extern FB_HIDDEN unsigned char fb_early_open;

FB_INLINE int fb_early_on(void)
{
    /* A plain read (one cmpb on jemalloc's malloc path; a relaxed atomic
     * load of a byte costs a movzbl and a test): the byte changes once,
     * and either value read is correct (above). */
    return fb_early_open != 0;
}

/* FB_EARLY_SIZE, or 0 once the arena was given back (fb_early_unmap):
 * then the kernel may place other mappings (jemalloc's) there. */
extern FB_HIDDEN size_t fb_early_span;

/* Is p inside the arena? (Not: is it a block there.) */
FB_INLINE int fb_early_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)fb_early_mem < fb_early_span;
}

/* A block of n bytes (rounded up to its size class; 0 counts as 16),
 * aligned to align (a power of two, at least 16), its first word 0 (the
 * freed mark of a reused block), all of it 0 if zero; NULL if it does
 * not fit, the arena has handed out its most blocks or is closed, or
 * another thread is in the arena. */
void *fb_early_alloc(size_t align, size_t n, int zero);
/* Frees p, a live block of the arena (the caller checked and marked it):
 * onto its class's free list (not a block above 64 KiB). */
void fb_early_free(void *p);
/* Freed blocks are not reused from now on (init.c: under FBMALLOC_CHECK
 * or FBMALLOC_CANARY, every double free and use of a freed block is then
 * caught, as long as the arena serves). */
void fb_early_keep_freed(void);
/* Gives the whole arena back to the kernel, before any block is in it
 * (under an address-space limit, where it would count against the
 * program's budget: backend.c); fb_early_owns is false from then on. */
void fb_early_unmap(void);
/* No block is handed out from now on (backend.c: jemalloc has started),
 * and the free blocks' whole pages past their first 4 KiB (which keep
 * the freed marks) are given back to the kernel.  The arena's live
 * blocks stay valid. */
void fb_early_close(void);
/* Grows or shrinks p, a live block, to n bytes where it is: 1 if it could
 * (n fits its size, or it is the last block and there is room). */
int fb_early_resize(void *p, size_t n);
/* The usable size of p, a live block. */
size_t fb_early_usable(const void *p);
/* Does a block start at a (inside the arena, 16-byte aligned)?  Live or
 * freed: the caller tells them apart (backend.h's freed mark). */
int fb_early_is_start(uintptr_t a);
/* Bytes of the arena's live blocks (with some headers). */
size_t fb_early_used(void);

#endif
