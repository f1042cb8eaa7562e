/*
 * Allocation tracking for leak reports: call stacks and per-object sites.
 *
 * Off unless FBMALLOC_LEAKS is set; then the fast-path gates are closed
 * (as for statistics) and every allocation is recorded by the slow paths,
 * so with tracking off the fast path pays nothing.
 *
 * A call site is a deduplicated stack of return addresses ("site id",
 * 1-based; 0 = untracked), with the module each frame belonged to when it
 * was captured (so a library dlclose()d before the report is still named).
 *
 * Each live object knows its site and requested size:
 *  - buffer objects: a 32-bit word per granule, parallel to the granule
 *    map (site id and the slack between usable and requested size);
 *  - jemalloc objects: a sharded hash table keyed by address.
 * All tracking memory comes from mmap, never from malloc.
 */
#ifndef FB_TRACK_H
#define FB_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

extern FB_HIDDEN int fb_track_on;

/*
 * With leak reports on, every block gets at least one byte more than asked
 * (fb_track_pad), so no block ends exactly where the next one starts.
 * Blocks otherwise sit back to back (buffer granules, jemalloc's slab
 * regions), and the end of a [begin, end) range -- std::vector's end and
 * capacity pointers, any C pair -- would be exactly the next block's start
 * and keep it alive: a leak right after a full 400-byte vector buffer was
 * "still reachable", a direct leak after a leaked object's vector
 * "indirect".  valgrind leaves redzones between blocks and LeakSanitizer's
 * allocator chunk headers and size classes, so the end pointer hits no
 * block there; with the padding it falls inside its own block (an
 * interior pointer to it) or in freed space.  No heuristic on the
 * pointer's neighbours can tell an end pointer from an array of pointers
 * to consecutive blocks; a gap can.  The request recorded stays the
 * program's; usable sizes grow by at most a granule.
 */
extern FB_HIDDEN size_t fb_track_gap;
static inline size_t fb_track_pad(size_t n)
{
    return n < (size_t)PTRDIFF_MAX ? n + fb_track_gap : n;
}

#define FB_TRACK_MAX_DEPTH 64

struct fb_track_module {
    const char *path;        /* ELF file ("" never: main program resolved) */
    uintptr_t bias;          /* load bias: module-relative = ip - bias */
};

struct fb_track_site {
    uint64_t hash;
    uint32_t next;           /* hash chain */
    uint32_t depth;
    uintptr_t *frames;       /* return addresses, outermost last */
    uint32_t *modules;       /* module index per frame (0: unknown) */
};

/* Start-up (after options and geometry).  Tracking is on for leak reports,
 * checks and canaries, and for the allocation log (for_trace: its call
 * sites).  Returns 0 if it is off. */
int fb_track_init(int for_trace);
/* Called when a thread takes slot idx: commits its part of the site map. */
int fb_track_commit_slot(uintptr_t slot_base, size_t slot_size);
void fb_track_thread_exit(void);

/* Record a new object: buffer object p (usable bytes in the map) or a
 * jemalloc object.  request: the size the program asked for; ra: the
 * program's call site if known (0 if not): part of the capture cache's
 * key, so that call sites sharing a stack depth do not share a set.
 * Returns the call-site id (0 if not captured). */
uint32_t fb_track_buffer(void *p, size_t request, uintptr_t ra);
uint32_t fb_track_big(void *p, size_t request, uintptr_t ra);
/* A jemalloc object is freed / moved by rallocx. */
void fb_track_big_free(void *p);

/* Lookups for the leak scan. */
uint32_t fb_track_buffer_site(const void *p, size_t usable, size_t *request);
/* Checking: remove a tracked jemalloc block (its size and site), find
 * the block an interior pointer falls in, capture the current stack. */
int fb_track_big_take(uintptr_t a, size_t *size, uint32_t *site);
/* Is a a tracked block start (its size and site, either may be NULL)? */
int fb_track_big_lookup(uintptr_t a, size_t *size, uint32_t *site);
uintptr_t fb_track_big_containing(uintptr_t a, size_t *size, uint32_t *site);
uint32_t fb_track_capture(void);

/* The same, lock-free: only while every other thread is stopped. */
int fb_track_big_present_stopped(uintptr_t a);
/* Calls fn for every tracked jemalloc object. */
void fb_track_big_each(void (*fn)(void *ctx, uintptr_t addr, size_t size,
                                  uint32_t site),
                       void *ctx);

const struct fb_track_site *fb_track_site(uint32_t id);
const struct fb_track_module *fb_track_module(uint32_t id);
uint32_t fb_track_site_count(void);

/* fork: hold / release every tracking lock. */
void fb_track_fork_prepare(void);
void fb_track_fork_parent(void);
void fb_track_fork_child(void);

/* Our own library's code range: frames inside it are not recorded. */
int fb_track_is_own(uintptr_t ip);

#endif
