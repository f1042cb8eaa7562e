/*
 * The dispatch layer: the inlined fast paths, and the one generic path
 * that knows which modes are on.
 *
 *   interpose.c (exported names)
 *        |
 *   alloc.h  fb_alloc_malloc / fb_alloc_free: bump or mark in the calling
 *        |   thread's buffer (epoch.h's state), nothing else
 *   alloc.c  everything else: lazy initialisation, failure injection,
 *            canaries and checks (debugging layers), statistics, tracking
 *            and the log (observers), jemalloc (backend.h)
 *
 * It is the only module that calls the debugging layers and the
 * observers; they never call it back but through the fb_layer_below
 * table it passes them (layer.h).
 */
#ifndef FB_ALLOC_H
#define FB_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "epoch.h"
#include "fb.h"
#include "init.h"

/* Generic paths (alloc.c).  ra: the program's call site (the return
 * address of the exported entry), 0 where none is known.  The fast path
 * leaves by one of three doors, each a tail call, so that the two common
 * ways to jemalloc test nothing the fast path has already tested:
 *   _big     the size gate refused (n == 0, n > max_small, or the
 *            thread's gates are shut: not set up, sampling, watched, a
 *            full buffer);
 *   _routed  the size gate passed (so the thread owns a slot, its gates
 *            open) but the site is learned long-lived;
 *   _slow    the epoch has no room: everything else.
 * The _tail doors are for the exported malloc alone, whose fast path
 * then needs only the low 16 bits of its return address (one load): they
 * are reached by a jump, so their own return address is the program's
 * call site, and they read it themselves (tests/unit/check_tailcalls.py
 * checks that the compiler keeps them jumps). */
void *fb_alloc_malloc_big(size_t n, uintptr_t ra);
void *fb_alloc_malloc_routed(size_t n, uintptr_t ra);
void *fb_alloc_malloc_slow(size_t n, uintptr_t ra);
void *fb_alloc_malloc_big_tail(size_t n);
void *fb_alloc_malloc_routed_tail(size_t n);
void *fb_alloc_malloc_slow_tail(size_t n);
/* free's exits (fb_alloc_free): p is no block of the caller's buffer and
 * not a live jemalloc block the inline check could tell (_other), or a
 * jemalloc block freed before (_twice). */
void fb_alloc_free_other(void *p);
void fb_alloc_free_twice(void *p);

/*
 * The bump itself, for a thread that owns a slot: sz bytes (a multiple of
 * 16) from the current epoch, or 0 if it has no room.  The bump is stored
 * before the bookkeeping, so a signal handler that allocates after that
 * store gets different bytes.
 */
FB_INLINE uintptr_t fb_alloc_bump(struct fb_tls *t, size_t sz)
{
    uintptr_t p = t->bump;
    uintptr_t np = p + sz;
    if (fb_unlikely(np > t->limit))
        return 0;
    /* With room, p is a buffer address, never 0 (an epoch-less thread has
     * bump and limit 0): so the caller's test of 0 folds into the room
     * check above, and the fast path stays as it was. */
    if (p == 0)
        __builtin_unreachable();
    t->bump = np;
    *(uint8_t *)(fb_map_bias + (p >> FB_GRANULE_SHIFT)) = (uint8_t)(sz >> FB_GRANULE_SHIFT);
    (*t->cur_live)++;
    return p;
}

/*
 * malloc: bump in the current epoch.  One compare rejects sizes 0 and
 * above max_small (and overflow), one byte load sends a call site learned
 * long-lived (route.h) to the generic path, one compare checks room.
 * tail (a constant): called from the exported malloc, whose return
 * address is the call site (ra unused), leaving by the _tail doors.
 */
FB_INLINE void *fb_alloc_malloc_in(size_t n, uintptr_t ra, const int tail)
{
    struct fb_tls *t = &fb_t;
    size_t sz = (n + 15) & ~(size_t)15;
    if (fb_unlikely(sz - 1 >= t->max_small))
        return tail ? fb_alloc_malloc_big_tail(n) : fb_alloc_malloc_big(n, ra);
    uint16_t site = tail ? (uint16_t)(uintptr_t)__builtin_return_address(0)
                         : fb_route_site(ra);
    if (fb_unlikely(fb_route_long[site]))
        return tail ? fb_alloc_malloc_routed_tail(n) : fb_alloc_malloc_routed(n, ra);
    uintptr_t p = fb_alloc_bump(t, sz);
    if (fb_likely(p)) {
#if defined(__x86_64__)
        /* p in the return register from the start: gcc otherwise keeps it
         * elsewhere and copies it at the end (one instruction). */
        __asm__("" : "+a"(p));
#endif
        return (void *)p;
    }
    return tail ? fb_alloc_malloc_slow_tail(n) : fb_alloc_malloc_slow(n, ra);
}

/* From anywhere: ra is the call site to learn from. */
FB_INLINE void *fb_alloc_malloc(size_t n, uintptr_t ra)
{
    return fb_alloc_malloc_in(n, ra, 0);
}

/* Only as the whole body of the exported malloc (see the _tail doors). */
FB_INLINE void *fb_alloc_malloc_tail(size_t n)
{
    return fb_alloc_malloc_in(n, 0, 1);
}

/*
 * free by the owner thread.  Rotating the offset right by 4 turns a
 * misaligned pointer into a huge index, so one compare checks "inside my
 * slot" and "16-byte aligned" together.
 */
FB_INLINE void fb_alloc_free(void *ptr)
{
    struct fb_tls *t = &fb_t;
    uintptr_t off = (uintptr_t)ptr - t->slot_base;
    uintptr_t g = (off >> FB_GRANULE_SHIFT) | (off << (64 - FB_GRANULE_SHIFT));
    if (fb_likely(g < t->slot_granules)) {
        uint8_t *map = t->slot_map;
        /* A live object start of 1..128 granules (2 KiB: above
         * max_small's default) as one decrement and a sign test: 0
         * (no object starts here) and FB_FREED both turn negative.
         * Larger objects take the generic path. */
        if (fb_likely((int8_t)(map[g] - 1) >= 0)) {
            /* Keeps gcc from computing map + g once into a register:
             * two indexed accesses are one instruction less. */
            __asm__("" : "+r"(map));
            map[g] = FB_FREED;
            t->slot_live[g >> FB_LIVE_GSHIFT]--;
            return;
        }
    }
    /* A jemalloc block of a quick thread (nobody watching, not in a signal
     * handler: sigpool.c shuts quick there), checked and handed to
     * jemalloc's free as a tail call.  A set start bit is a jemalloc
     * block's and no buffer's (bits are set only on jemalloc's blocks and
     * cleared where jemalloc unmaps; the buffers and the signal pool are
     * our own mappings), so this test comes before the other buffers' and
     * the pool's (alloc.c's fb_alloc_free_other); so does NULL (no start
     * bit is ever set at 0).  free keeps errno, as glibc guarantees:
     * jemalloc's system calls keep it (backend.c). */
    if (fb_likely(t->quick)) {
        int r = fb_je_take_fast(ptr);
        if (fb_likely(r == 0)) {
            fb_je_release_fast(ptr);
            return;
        }
        if (fb_unlikely(r > 0)) {
            fb_alloc_free_twice(ptr);
            return;
        }
    }
    fb_alloc_free_other(ptr);
}

/* The rest of the family, with glibc's semantics (see interpose.c). */
void *fb_alloc_calloc(size_t n, uintptr_t ra);
void *fb_alloc_realloc(void *p, size_t n, uintptr_t ra);
/* align: a power of two. */
void *fb_alloc_aligned(size_t align, size_t n);
size_t fb_alloc_usable(const void *p);

#endif
