/*
 * Per-thread fixed buffers recycled in epochs: slots, epochs, bump, the
 * granule map, ownership, thread and fork life cycle, and nothing else.
 * The inlined fast paths that bump and free here are the dispatch
 * layer's (alloc.h); which modes are on is not known here: the dispatch
 * opens or shuts this module's gates (fb_epoch_set_gates).
 *
 * Layout (all reserved once at start-up, see epoch.c):
 *
 *   data region   [base, base + nslots * slot_size)   user objects
 *   granule map   one byte per 16-byte granule of the data region
 *   slot table    per slot: state, and per epoch: live, rfree, fill
 *
 * A thread owns one slot (its fixed buffer), cut into epochs.  It bumps
 * through its current epoch; a free never makes room by itself, but an
 * epoch whose every object has been freed is reset as a whole and reused
 * (Zig's FixedBufferAllocator.reset(), done per epoch, automatically).
 *
 * The granule map replaces per-object headers.  For the granule where an
 * object starts it holds the object's size in granules (1..254); FB_FREED
 * once freed; 0 or a stale FB_FREED (from before the epoch's last reset)
 * everywhere else.  So a free checks in one byte load that
 * the pointer is a live object start (double and invalid frees are caught
 * before they can corrupt an epoch's count), malloc_usable_size is one
 * load and never changes while the object lives (programs that grow into
 * it, like redis, need that), and the owner's plain byte stores never
 * share a byte with another thread's compare-and-swap (a word-sized
 * bitmap would need atomics on the owner's path).  User data never holds
 * metadata, so an overflow cannot corrupt the allocator.
 *
 * Epoch counts: live[e] is written by the owner only (+1 per malloc, -1
 * per own free), kept as one counter per 4 KiB whose sum is the count
 * (FB_LIVE_SHIFT); rfree[e] is incremented atomically by other threads.
 * The epoch is empty when live[e] == rfree[e] (mod 2^32).
 */
#ifndef FB_EPOCH_H
#define FB_EPOCH_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "early.h"
#include "fb.h"
#include "route.h"

#define FB_FREED 255u
#define FB_MAX_GRANULES 254u   /* largest object: 254 * 16 = 4064 bytes */

/* Per-thread state.  The fast path reads only the first cache line.
 * "Not initialised", "no slot", "stats on" and "thread exited" are all
 * expressed by zero gates (max_small, slot_granules), so the fast path
 * never tests a flag. */
struct fb_tls {
    /* -- fast path: malloc -- */
    uintptr_t bump;          /* next free byte of the current epoch */
    uintptr_t limit;         /* end of the current epoch (0: none) */
    uintptr_t max_small;     /* gate: requests with 1 <= rounded size <= this */
    uint32_t *cur_live;      /* live counter of the current epoch */
    uintptr_t je_open;       /* the dispatch's first door: requests n with
                              * n + je_open >= 2^64 go to jemalloc at once
                              * (fb_epoch_je_gate) */
    /* -- fast path: free by the owner -- */
    uintptr_t slot_base;     /* start of the owned slot */
    uintptr_t slot_granules; /* gate: granules in the slot (0: not an owner) */
    uint8_t *slot_map;       /* granule map of the slot */
    uint32_t *slot_live;     /* live counters of the slot, one per 4 KiB */
    /* -- slow paths -- */
    struct fb_slot *slot;
    struct fb_stats_block *stats; /* the slot's counters (NULL: no slot) */
    uint32_t slot_idx;
    uint8_t state;           /* enum fb_thread_state */
    uint8_t busy;            /* inside our own slow code: no recursion */
    uint8_t quick;           /* past its first allocation, nobody watching:
                              * the generic path's entry may go straight
                              * to jemalloc (set by the dispatch) */
    uint32_t backoff;        /* slow calls before rescanning a full buffer */
    uint32_t backoff_next;   /* the next wait, doubled by each failed scan */
    /* -- lifetime sampling (route.h) -- */
    uint32_t *sample_sites;  /* the sampled epoch's objects (route.h) */
    uint32_t sample_n;       /* entries in sample_sites */
    uint32_t sample_e;       /* the sampled epoch */
    uint8_t sample_state;    /* FB_SAMPLE_* */
    uint8_t sample_probe;    /* 1: recording a probe (long sites come in
                              * too); 2: the pending sample was one */
    uint8_t sample_count;    /* epochs judged, up to FB_ROUTE_EAGER */
    uint8_t sample_full;     /* the buffer was full since the last judgement */
    uint16_t sample_wait;    /* turnovers until the next sample / judgement */
    uint8_t moved;           /* left a pinned slot for a fresh one (epoch.c) */
    uint8_t moves;           /* how many times (slot_move) */
    uint64_t moved_progress; /* fb_route_progress() at the last move */
    uint64_t sparse;         /* epochs (below 64) the last full scan found
                              * sparse: tried before scanning again */
    uint32_t hole_survivors; /* live objects of the holes epoch on entry */
    uint8_t hole_counted;    /* its objects will be counted (holes_judge) */
    uint8_t holes_paid;      /* holes epochs in a row that paid (up to 255) */
    uint16_t holes_skip;     /* full scans that leave sparse epochs alone */
    uint16_t holes_wait;     /* the next such wait, doubled by each miss */
    uint16_t pinned_age;     /* scans since pinned was cleared */
    uint64_t seen;           /* epochs (below 64) non-empty at the last look */
    uint64_t pinned;         /* ... and at the one before: not looked at
                              * (epoch.c, warm_scan) */
};

enum { FB_SAMPLE_IDLE = 0, FB_SAMPLE_RECORDING, FB_SAMPLE_PENDING };

enum fb_thread_state {
    FB_T_NEW = 0,            /* has not allocated yet */
    FB_T_ACTIVE,             /* owns a slot */
    FB_T_NOSLOT,             /* fast path off for this thread */
    FB_T_DEAD,               /* released its slot at thread exit */
};

extern __thread FB_HIDDEN struct fb_tls fb_t __attribute__((tls_model("initial-exec")));

/* Geometry, fixed at initialisation. */
struct fb_geom {
    uintptr_t base;          /* data region (aligned to slot_size) */
    uintptr_t size;          /* nslots * slot_size; 0 = fast path off */
    uint8_t *map;            /* granule map of the whole region */
    char *slots;             /* slot table, slot_stride bytes per slot */
    size_t slot_stride;
    size_t slot_size, epoch_size;
    uint32_t nslots, epochs;         /* epochs per slot */
    unsigned slot_shift, epoch_shift;
    uintptr_t max_small;
    /* Requests above this go to jemalloc as they are: max_small (at least
     * 16), or 15 without buffers, so jemalloc is never asked for less
     * than 16 bytes (it would align them to 8). */
    uintptr_t big_above;
};
extern FB_HIDDEN struct fb_geom fb_g;

/* A hot copy of derived geometry, one RIP-relative load away:
 * fb_map_bias + (p >> 4) is p's byte in the granule map (the map's base
 * minus base >> 4, so no subtraction on the fast path). */
extern FB_HIDDEN uintptr_t fb_map_bias;

/* The owner's live counters come one per 4 KiB of its slot (the smallest
 * epoch), so that a free finds its counter with a constant shift of its
 * slot-relative granule index; an epoch's live count is the sum of its
 * counters (epoch.c). */
#define FB_LIVE_SHIFT 12
#define FB_LIVE_GSHIFT (FB_LIVE_SHIFT - FB_GRANULE_SHIFT)

/* Is p inside the buffer region (any thread's slot)? */
FB_INLINE int fb_epoch_owns(const void *p)
{
    return (uintptr_t)p - fb_g.base < fb_g.size;
}

/* Start-up: reserves the region (0 if the fast path is off).  hooks: work
 * of the layers above that must happen at a fixed point here (NULL
 * members are skipped). */
struct fb_epoch_hooks {
    /* A slot is committed for the first time, before any other thread can
     * see it (tracking commits its parallel site map); non-zero refuses. */
    int (*commit_slot)(uintptr_t slot_base, size_t slot_size);
};
int fb_epoch_init(const struct fb_epoch_hooks *hooks);

/* Which fast paths may serve, decided by the dispatch from the modes on:
 * malloc (bump) and the owner's free.  Applies to threads that take a slot
 * from now on: call before any thread allocates. */
void fb_epoch_set_gates(int fast_malloc, int fast_free);

/* Takes a slot for the calling thread (state NEW -> ACTIVE, or NOSLOT when
 * the region is off or full).  Returns 1 if it owns a slot. */
int fb_epoch_thread_start(void);
void fb_epoch_thread_exit(void);
void fb_epoch_fork_prepare(void);
void fb_epoch_fork_parent(void);
void fb_epoch_fork_child(void);

/*
 * The dispatch's first door (alloc.c's door_big), reached by every request
 * the size gate refuses: one addition sends to jemalloc what needs nothing
 * else, the requests above
 *   - fb_g.big_above for a quick thread (alloc.c: nobody watching, not in
 *     a signal handler): those no buffer serves;
 *   - 0 for a quick thread while its buffer is full (backoff): every
 *     request, and the door counts the wait down itself;
 *   - nothing otherwise, and nothing while the early arena serves what
 *     would go to jemalloc (early.h): every request takes the generic way.
 * je_open holds that bound's complement, so that n is above it exactly
 * when n + je_open carries, and so that a thread's zeroed TLS (a thread
 * that has not allocated yet) keeps the door shut.  Recomputed wherever
 * quick or backoff changes; a signal handler's wrapper saves it, shuts
 * it (0) and restores it (sigpool.c).  When the early arena closes, the
 * threads' doors stay shut until their next request that goes the
 * generic way recomputes them (alloc.c's door_slow).
 */
FB_INLINE void fb_epoch_je_gate(struct fb_tls *t)
{
    t->je_open = !t->quick || fb_early_on() ? 0
                 : t->backoff                ? UINTPTR_MAX
                                             : ~fb_g.big_above;
}

/* One request of a full buffer's wait (backoff > 0), wherever it is
 * spent (the door, fb_epoch_full_skip, epoch_next): 1 while the wait goes
 * on; 0 for its last request, once the door is open again. */
FB_INLINE int fb_epoch_wait_tick(struct fb_tls *t)
{
    if (fb_likely(--t->backoff != 0))
        return 1;
    fb_epoch_je_gate(t);
    return 0;
}

/* Every epoch pinned, and not yet time to look again (see epoch_next): a
 * small request goes elsewhere just as cheaply as a large one.  backoff
 * is non-zero only between a scan that found every epoch pinned and the
 * next scan or slot change, when the thread has no current epoch (limit
 * 0) and its size gate is shut.  The wait is counted into the statistics
 * by the scan that sets it (epoch_next), not here. */
FB_INLINE int fb_epoch_full_skip(struct fb_tls *t)
{
    if (t->backoff) {
        fb_epoch_wait_tick(t);
        return 1;
    }
    return 0;
}


/* A block of sz bytes (a multiple of 16, at most max_small) from the
 * calling thread's buffer, turning epochs over; NULL when the thread owns
 * no slot or every epoch is pinned (counted as a full-buffer fallback).
 * key: what the object is recorded with when the epoch is sampled (its
 * site, or a context key: route.h); ra: the program's call site. */
void *fb_epoch_alloc(size_t sz, uint32_t key, uintptr_t ra);

/* Free of a buffer pointer p, by any thread. */
enum fb_epoch_freed {
    FB_EF_OWN,        /* the caller's own block, counted in its epoch */
    FB_EF_REMOTE,     /* another slot's block: marked, counted remotely */
    FB_EF_DOUBLE,     /* already freed: nothing changed */
    FB_EF_INVALID,    /* no block starts at p: nothing changed */
};
enum fb_epoch_freed fb_epoch_free_block(void *p, size_t *usable);

/* For FBMALLOC_CHECK (check.c): mark freed now, count later. */
long fb_epoch_mark_freed(void *p);
void fb_epoch_release_marked(void *p);
void *fb_epoch_block_containing(const void *p, size_t *usable);

/* Usable size of a live buffer object, 0 if p is not one; is_freed: p is
 * a block start already freed. */
size_t fb_epoch_usable(const void *p);
int fb_epoch_is_freed(const void *p);

/* realloc in place of the live buffer object p (usable bytes) to n bytes:
 * a shrink, or the growth of the last object of the caller's current
 * epoch.  Returns 1 if done; 0 if the block must move. */
int fb_epoch_resize(void *p, size_t usable, size_t n);

/* Statistics helpers: slots in use, the bytes of their epochs ever used
 * (warm_scan: the rest of a slot was never touched), epochs holding live
 * objects now, and the sum of every slot's counters. */
uint32_t fb_epoch_slots_used(void);
uint64_t fb_epoch_warm_bytes(void);
uint64_t fb_epoch_count_pinned(void);
void fb_epoch_sum_stats(struct fb_stats_block *out);

#endif
