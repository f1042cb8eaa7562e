/*
 * The leak check's block table and marking (used by leakroots, leakreport
 * and leak): every tracked live block sorted by address, the conservative
 * mark from a root range, and the classification of what no root reaches
 * into direct and indirect leaks.  Knows nothing of where roots are
 * (leakroots.c) or how a report is written (leakreport.c).  Also the
 * growable arrays on mmap that every leak module keeps its lists in.
 *
 * One check at a time: the callers hold leak.c's check lock.
 */
#ifndef FB_LEAKSCAN_H
#define FB_LEAKSCAN_H

#include <stddef.h>
#include <stdint.h>

/* A growable array on mmap (never malloc: a check may run inside it). */
struct fb_leakscan_vec {
    char *p;
    size_t n, cap, elem;
};

/* A new last element (uninitialised), or NULL when mmap fails. */
void *fb_leakscan_vec_push(struct fb_leakscan_vec *v);
void fb_leakscan_vec_free(struct fb_leakscan_vec *v);

/* A block's state, from unseen to its verdict.  GONE: freed while the
 * check looked; LIVE: listed without a reachability scan (snapshots,
 * scopes). */
enum {
    FB_LEAKSCAN_UNSEEN = 0,
    FB_LEAKSCAN_REACHABLE,
    FB_LEAKSCAN_DIRECT,
    FB_LEAKSCAN_INDIRECT,
    FB_LEAKSCAN_GONE,
    FB_LEAKSCAN_LIVE,
};

struct fb_leakscan_block {
    uintptr_t addr;
    uint64_t usable, request;   /* request: the program's size */
    uint32_t site;
    uint8_t state;
};

/* The blocks of the current check (struct fb_leakscan_block). */
extern struct fb_leakscan_vec fb_leakscan_blocks;

static inline struct fb_leakscan_block *fb_leakscan_blk(size_t i)
{
    return (struct fb_leakscan_block *)fb_leakscan_blocks.p + i;
}

/* Fills the table with every tracked live block (buffer objects from the
 * granule map, jemalloc objects from the tracking table), state UNSEEN. */
void fb_leakscan_collect(void);
/* Sorts the table by address, which fb_leakscan_find and the marks need. */
void fb_leakscan_sort(void);
/* The index of the block containing address w, or -1. */
long fb_leakscan_find(uintptr_t w);

/* Marks reachable every block a word of [lo, hi) points into (interior
 * pointers count), queueing each for fb_leakscan_drain.  [lo, hi) must be
 * readable. */
void fb_leakscan_mark(uintptr_t lo, uintptr_t hi);
/* Marks reachable everything reachable from the queued blocks. */
void fb_leakscan_drain(void);
/* Blocks the dynamic linker allocated are its own bookkeeping, referenced
 * from memory that is no root of ours: reachable, as LeakSanitizer treats
 * them.  Takes no lock (other threads may be stopped). */
void fb_leakscan_mark_linker_blocks(void);
int fb_leakscan_from_dynamic_linker(uint32_t site);

/* After the roots: each unmarked block in address order becomes a direct
 * leak, and what it reaches indirect. */
void fb_leakscan_classify(void);
/* Leaks freed since they were collected become GONE.  stopped: other
 * threads are stopped (one may hold a tracking lock: read without it). */
void fb_leakscan_drop_freed(int stopped);
/* Is b still a live block of the size collected?  stopped: as above. */
int fb_leakscan_still_live(const struct fb_leakscan_block *b, int stopped);

/* Frees the table and the mark queue. */
void fb_leakscan_free(void);

#endif
