/*
 * The leak check's report writers (used by leak.c): leakscan's blocks
 * grouped by call site and kind, largest first, then written as text,
 * JSON, folded stacks or (through pprof) a gzipped profile.proto, for a
 * leak report, a heap snapshot or a scope check.
 */
#ifndef FB_LEAKREPORT_H
#define FB_LEAKREPORT_H

#include <stdint.h>

#include "leakscan.h"

struct fb_leakreport_group {
    uint32_t site;
    uint8_t kind;             /* FB_LEAKSCAN_DIRECT, _INDIRECT, _REACHABLE, _LIVE */
    uint8_t suppressed;       /* set by the caller; not written */
    uint64_t bytes, blocks;
};

/* The groups (struct fb_leakreport_group) of the last build. */
extern struct fb_leakscan_vec fb_leakreport_groups;

static inline struct fb_leakreport_group *fb_leakreport_group(size_t i)
{
    return (struct fb_leakreport_group *)fb_leakreport_groups.p + i;
}

/* Groups leakscan's blocks (GONE ones left out) by (kind, site), largest
 * first.  Reorders the block table: addresses are no longer sorted. */
void fb_leakreport_build_groups(void);

/* The summary line's numbers, summed by the caller. */
struct fb_leakreport_totals {
    uint64_t groups, bytes, blocks;
    uint64_t direct_bytes, direct_blocks, indirect_bytes, indirect_blocks;
    uint64_t reach_bytes, reach_blocks, supp_bytes, supp_blocks;
};

enum fb_leakreport_mode { FB_LEAKREPORT_LEAKS, FB_LEAKREPORT_SNAPSHOT, FB_LEAKREPORT_SCOPE };

/* Writes the groups (reachable ones only for FBMALLOC_LEAKS=all or a
 * snapshot or scope; suppressed ones never) and the summary to fd, in
 * FBMALLOC_REPORT_FORMAT.  Needs fb_sym_open for the names. */
void fb_leakreport_write(int fd, const struct fb_leakreport_totals *t,
                         enum fb_leakreport_mode mode);

void fb_leakreport_free(void);

#endif
