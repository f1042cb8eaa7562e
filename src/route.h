/*
 * Lifetime routing: which call sites' small objects outlive their epoch.
 *
 * Size alone does not make an object short-lived: a few long-lived objects
 * among temporaries pin every epoch of a thread's buffer, and from then on
 * its small requests fall through to jemalloc.  So the buffers learn, per
 * call site (the return address of the exported entry: malloc, calloc,
 * operator new), whether its objects survive: a site learned "long" has
 * its small requests sent straight to jemalloc, by one byte the fast path
 * reads (fb_route_long), and the buffers keep serving the short-lived.
 * Barrett and Zorn (PLDI 1993) predicted short lives from the call site
 * with 42-99% accuracy; LLAMA (ASPLOS 2020) and TCMalloc's lifetime work
 * did it for large objects with whole stacks.  Here it is the small
 * objects, one return address, learned online.
 *
 * Learning (epoch.c calls in; this module knows no buffer state): a
 * thread's first FB_ROUTE_EAGER epochs are recorded back to back (a buffer
 * gets pinned for good at start-up, so verdicts must come early), then one
 * epoch in FB_ROUTE_SAMPLE, each object start
 * tagged with its site; once the thread has turned over a quarter of its
 * buffer's epochs more (objects that die sooner pin at most a quarter of
 * the buffer at a time: the buffer keeps serving), the recorded epoch is
 * judged: a site with a survivor pinned it.  A site that pins most of the sampled epochs it appears in
 * becomes long; the counts decay, so a site whose objects start dying
 * young in a later phase turns short again.  Long sites are not sampled
 * (their requests never reach the buffer), except in probe epochs, whose
 * interval doubles each time every probed site is confirmed long: a
 * misprediction costs one sampled epoch, never the buffer.
 *
 * The site key is the low 16 bits of the return address: distinct call
 * sites within 64 KiB of code never collide, and the table is one page
 * per 4096 sites, touched only where sites are.
 */
#ifndef FB_ROUTE_H
#define FB_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

#define FB_ROUTE_SITES 65536u
#define FB_ROUTE_SAMPLE 64u      /* then one epoch in 64 is recorded */
#define FB_ROUTE_EAGER 4u        /* after the first 4, back to back */
#define FB_ROUTE_LIST 4096u      /* objects recorded per sampled epoch */
#define FB_ROUTE_MAX_GRANULES 65536u /* epochs up to 1 MiB are sampled */

/* 1: the site's small objects go to jemalloc.  Read by the fast path. */
extern FB_HIDDEN uint8_t fb_route_long[FB_ROUTE_SITES];
extern FB_HIDDEN int fb_route_on;

FB_INLINE unsigned fb_route_site(uintptr_t ra)
{
    return (uint16_t)ra;
}

/* The last full return address seen at each site (recorded in sampled
 * epochs), so a profile can name the site's module and offset. */
extern FB_HIDDEN uintptr_t fb_route_ra[FB_ROUTE_SITES];

FB_INLINE void fb_route_note(uintptr_t ra)
{
    fb_route_ra[fb_route_site(ra)] = ra;
}

/* A verdict from a profile: the site of ra is long, with the history of
 * two pinned samples (so one probe that sees it die revises it). */
void fb_route_preset(uintptr_t ra);

/* Starts the module (FBMALLOC_LIFETIME); returns 1 if routing is on. */
int fb_route_init(int on);

/* A recorded object: its granule in the epoch and its site. */
FB_INLINE uint32_t fb_route_entry(uintptr_t granule, uintptr_t ra)
{
    return (uint32_t)(granule << 16) | fb_route_site(ra);
}

/* Judges a recorded epoch: list[0..n) its recorded objects, map the
 * epoch's granule-map bytes now (1..254 at an object's granule: still
 * live; anything else: freed).  all_died: the epoch was reset (every
 * object freed) before its judgement was due.  full: the thread's buffer
 * was full since its last judgement (every epoch pinned).  Returns 1 if
 * the epoch could teach something (it counted as pinned against others,
 * route.c), 0 if its survivors and its dead came from the same sites. */
int fb_route_judge(const uint32_t *list, size_t n, const uint8_t *map, int all_died,
                   int probe, int full);

/* Should the next sampled epoch also let long sites in (a probe, judged
 * with probe set)? */
int fb_route_probe_due(void);

/* Counters for the statistics. */
struct fb_route_counts {
    uint64_t epochs_judged, sites_long, learned, forgotten;
    uint64_t mispredicted;   /* objects of short sites that pinned an epoch */
};
void fb_route_counts(struct fb_route_counts *out);

#endif
