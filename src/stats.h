/*
 * Statistics.  Per-call counters are kept only when FBMALLOC_STATS is set
 * (fb_stats_on): then the fast-path gates are closed and every call goes
 * through the counting slow path, so the fast path itself never pays for
 * them.  Rare events (epoch resets, full buffers, threads, bad frees) are
 * always counted.
 *
 * Counters of a thread that owns a slot live in the slot (plain stores by
 * the owner, summed by the reader); threads without a slot count into a
 * shared block with atomic adds.
 */
#ifndef FB_STATS_H
#define FB_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "counters.h"
#include "fbmalloc.h"


struct fb_stats_global {
    _Atomic uint64_t threads, bad_frees, injected_failures;
    _Atomic int64_t live_bytes;
    _Atomic uint64_t peak_live_bytes;
};

extern int fb_stats_on;
extern struct fb_stats_global fb_stats_g;

enum fb_stats_kind { FB_ST_FAST, FB_ST_BACKEND, FB_ST_REMOTE };

/* b: the caller's slot block, or NULL for the shared atomic block. */
void fb_stats_malloc(struct fb_stats_block *b, size_t request, size_t usable,
                     enum fb_stats_kind kind);
void fb_stats_free(struct fb_stats_block *b, size_t usable,
                   enum fb_stats_kind kind);

/* A block resized in place (realloc): only the live bytes change. */
void fb_stats_resize(struct fb_stats_block *b, size_t old_usable,
                     size_t new_usable);

static inline void fb_stats_event(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void fb_stats_collect(struct fbmalloc_stats *st);
int fb_stats_write(int fd, int json);
/* At exit: writes the statistics if FBMALLOC_STATS asks for them. */
void fb_stats_at_exit(void);

#endif
