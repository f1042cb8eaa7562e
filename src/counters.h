/*
 * Counters kept per slot by the buffers' owner thread (plain stores, no
 * atomics: a global atomic here made every buffer-full fallback a
 * contended cache line) and summed by statistics (stats.c).  Plain data
 * at the bottom of the layers: the buffers (epoch.c) and the dispatch
 * (alloc.c) count into it without knowing the statistics module.
 */
#ifndef FB_COUNTERS_H
#define FB_COUNTERS_H

#include <stdint.h>

#include "fbmalloc.h"

struct fb_stats_block {
    uint64_t fast_mallocs, fast_bytes, fast_frees;
    uint64_t backend_mallocs, backend_bytes, backend_frees;
    uint64_t remote_frees;
    /* Always counted, by the slot's owner. */
    uint64_t epochs_reset, buffer_full, epochs_holes;
    uint64_t routed_long;    /* small requests sent to jemalloc by verdict */
    uint64_t hist[FBMALLOC_HIST_BUCKETS];
    /* Live bytes not yet added to the global count: flushed every 64 KiB
     * of change, so threads do not fight over one counter on every call
     * (the peak is then exact to 64 KiB per thread). */
    int64_t live_pending;
};

#endif
