/*
 * The early arena: the blocks the backend hands out before jemalloc has
 * started, so that a short process never pays for jemalloc's start-up.
 *
 * Most processes a shell or a build starts (the gcc driver, as, make's
 * shells) send jemalloc a few dozen requests in all (stdio buffers,
 * locale data, getdelim lines, hash tables above the buffers' size
 * gate), while jemalloc's first call costs about 130,000 instructions
 * and 60 page faults (its arenas, bins, base allocator and thread cache).
 * This arena serves those requests by bump allocation in a zeroed array
 * of our own .lbss (no system call, no page touched before use) until the
 * first request that does not fit, after which jemalloc serves every new
 * request for good (backend.c closes it); the arena's blocks stay valid
 * until freed.
 *
 * Every block has a 16-byte header below it (its size) and a start bit
 * (where blocks begin, as jemalloc's start bits do: backend.h).  Freed
 * blocks are never reused: a freed block keeps the freed mark the backend
 * writes into its first word, so every double free of one and every
 * realloc of one freed is caught (jemalloc's blocks only until they are
 * reused), and the memory that costs is bounded by the arena's size.
 * Only the last block grows in place (a line buffer grown by realloc).
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

/* 512 KiB: the gcc driver, as and make (the processes of a build that
 * started jemalloc without needing it) ask for 0.2-0.5 MiB in all, and
 * only the pages used are ever touched.  A process that outgrows it
 * touched pages for blocks jemalloc might have put in reused memory:
 * with 1 MiB cc1 took 1,708 page faults instead of 1,587 (512 KiB:
 * 1,589), and a file's gcc, cc1 and as together 2,189 (512 KiB: 2,064;
 * before the arena 2,201). */
#define FB_EARLY_SIZE ((size_t)512 << 10)

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

/* Is p inside the arena? (Not: is it a block there.) */
FB_INLINE int fb_early_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)fb_early_mem < FB_EARLY_SIZE;
}

/* A block of n bytes (rounded up to 16; 0 counts as 16), aligned to
 * align (a power of two, at least 16), all of it 0 (never used before);
 * NULL if it does not fit or another thread is in the arena. */
void *fb_early_alloc(size_t align, size_t n);
/* Frees p, a live block of the arena (the caller checked and marked it):
 * counted, never reused. */
void fb_early_free(void *p);
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
