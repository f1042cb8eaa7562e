/*
 * Per-thread fixed buffers recycled in epochs: the fast path.
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
 * per own free); rfree[e] is incremented atomically by other threads.  The
 * epoch is empty when live[e] == rfree[e] (mod 2^32).
 */
#ifndef FB_EPOCH_H
#define FB_EPOCH_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fb.h"

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
    /* -- fast path: free by the owner -- */
    uintptr_t slot_base;     /* start of the owned slot */
    uintptr_t slot_granules; /* gate: granules in the slot (0: not an owner) */
    uint8_t *slot_map;       /* granule map of the slot */
    uint32_t *slot_live;     /* live[] of the slot's epochs */
    /* -- slow paths -- */
    struct fb_slot *slot;
    uint32_t slot_idx;
    uint8_t state;           /* enum fb_thread_state */
    uint8_t busy;            /* inside our own slow code: no recursion */
    uint32_t backoff;        /* slow calls before rescanning a full buffer */
};

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
};
extern FB_HIDDEN struct fb_geom fb_g;

/* Hot copies of derived geometry, each one RIP-relative load away:
 * fb_map_bias + (p >> 4) is p's byte in the granule map (the map's base
 * minus base >> 4, so no subtraction on the fast path), and a slot-relative
 * granule index shifted right by fb_epoch_gshift is its epoch. */
extern FB_HIDDEN uintptr_t fb_map_bias;
extern FB_HIDDEN unsigned fb_epoch_gshift;

/* Slow paths (epoch.c). */
void *fb_epoch_malloc_slow(size_t n);
void fb_epoch_free_slow(void *p);

/*
 * malloc: bump in the current epoch.  One compare rejects sizes 0 and
 * above max_small (and overflow), one compare checks room.  The bump is
 * stored before the bookkeeping, so a signal handler that allocates after
 * that store gets different bytes.
 */
FB_INLINE void *fb_epoch_malloc(size_t n)
{
    struct fb_tls *t = &fb_t;
    size_t sz = (n + 15) & ~(size_t)15;
    if (fb_likely(sz - 1 < t->max_small)) {
        uintptr_t p = t->bump;
        uintptr_t np = p + sz;
        if (fb_likely(np <= t->limit)) {
            t->bump = np;
            *(uint8_t *)(fb_map_bias + (p >> FB_GRANULE_SHIFT)) =
                (uint8_t)(sz >> FB_GRANULE_SHIFT);
            (*t->cur_live)++;
            return (void *)p;
        }
    }
    return fb_epoch_malloc_slow(n);
}

/*
 * free by the owner thread.  Rotating the offset right by 4 turns a
 * misaligned pointer into a huge index, so one compare checks "inside my
 * slot" and "16-byte aligned" together.
 */
FB_INLINE void fb_epoch_free(void *ptr)
{
    struct fb_tls *t = &fb_t;
    uintptr_t off = (uintptr_t)ptr - t->slot_base;
    uintptr_t g = (off >> FB_GRANULE_SHIFT) | (off << (64 - FB_GRANULE_SHIFT));
    if (fb_likely(g < t->slot_granules)) {
        uint8_t *m = &t->slot_map[g];
        unsigned v = *m;
        if (fb_likely(v - 1u < FB_MAX_GRANULES)) {
            *m = FB_FREED;
            t->slot_live[g >> fb_epoch_gshift]--;
            return;
        }
    }
    fb_epoch_free_slow(ptr);
}

/* A free or realloc (op) of a jemalloc block already freed (is_double)
 * or of a pointer that is no jemalloc block: reported; returns NULL with
 * errno EINVAL. */
void *fb_epoch_big_bad(void *ptr, int is_double, const char *op);

/* Is p inside the buffer region (any thread's slot)? */
FB_INLINE int fb_epoch_owns(const void *p)
{
    return (uintptr_t)p - fb_g.base < fb_g.size;
}

/* The generic slow paths without the canary layer (canary.c). */
void *fb_epoch_malloc_raw(size_t n);
void fb_epoch_free_raw(void *ptr);

/* For FBMALLOC_CHECK (check.c): mark freed now, count later. */
long fb_epoch_mark_freed(void *p);
void fb_epoch_release_marked(void *p);
void *fb_epoch_block_containing(const void *p, size_t *usable);

/* Usable size of a live buffer object, 0 if p is not one. */
size_t fb_epoch_usable(const void *p);

/* Usable size of any block we returned, under any canary layer. */
size_t fb_epoch_usable_any(const void *p);

/* realloc of a buffer object p (n > 0).  Returns the new pointer or NULL
 * with errno set; on NULL, p is untouched. */
void *fb_epoch_realloc(void *p, size_t n);

/* Thread and process lifecycle (called from init.c). */
int fb_epoch_init(void);
void fb_epoch_thread_exit(void);
void fb_epoch_fork_prepare(void);
void fb_epoch_fork_parent(void);
void fb_epoch_fork_child(void);

/* Non-zero when statistics or leak tracking watch every call (then the
 * fast-path gates are closed and the hooks below run). */
extern FB_HIDDEN int fb_observe;

/* A jemalloc block was allocated (p, request n) or is about to be freed /
 * moved: statistics and tracking.  Call only when fb_observe is set. */
void fb_epoch_observe_big(void *p, size_t n);
void fb_epoch_observe_big_free(void *p);

/* What every jemalloc allocation returns: NULL with ENOMEM, or the block,
 * observed when someone watches. */
FB_INLINE void *fb_epoch_backend_result(void *p, size_t n)
{
    if (fb_unlikely(!p)) {
        errno = ENOMEM;
        return NULL;
    }
    if (fb_observe)
        fb_epoch_observe_big(p, n);
    return p;
}

/* The calling thread's statistics block (its slot's), or NULL. */
struct fb_stats_block *fb_epoch_stats_block(void);

/* Statistics helpers: epochs holding live objects now. */
uint64_t fb_epoch_count_pinned(void);

#endif
