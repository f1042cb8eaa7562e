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
 *
 * Wrappers.  One return address is not enough where a program allocates
 * through its own wrapper (xmalloc, PyMem_RawMalloc, zmalloc): every
 * object then has the wrapper's site, temporaries and tables alike.
 * Measured with scripts/fbmalloc-trace oracle --context on cc1 and
 * python3: keyed by one frame, a predictor could serve 12% and 6% of
 * their small requests from the buffers; by two, 73% and 31% (their
 * oracles: 78% and 40%; deeper keys add at most 6 points).  So a site
 * whose sampled epochs have both survivors and dead among its own
 * objects becomes a candidate: in recorded epochs (only there: the fast
 * path is unchanged) its objects are recorded by context key, the pair of
 * its site and one more return address, its caller's (read where the
 * wrapper's CFI rule says, found once per wrapper: alloc.c), and the
 * pairs are judged as sites are, with verdicts of their own
 * (fb_route_long2).  The first caller learned long makes the site
 * FB_ROUTE_WRAP: its requests leave the fast path for the routed door,
 * which routes each by its pair.  That costs about 40 instructions a
 * request, so a wrapper whose callers turn out not to differ (a trial,
 * fb_route_wrap_count) is a site again, for good.  One level only: a
 * pair that is mixed itself stays where its pinning says, as a site.
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
#define FB_ROUTE_MAX_GRANULES 32768u /* epochs up to 512 KiB are sampled */

/* fb_route_long's values.  Any but SHORT sends the fast path to the
 * routed door. */
enum { FB_ROUTE_SHORT = 0, FB_ROUTE_LONG = 1, FB_ROUTE_WRAP = 2 };

/* Per site: FB_ROUTE_*.  Read by the fast path. */
extern FB_HIDDEN uint8_t fb_route_long[FB_ROUTE_SITES];
/* Per context key (a wrapper's site and its caller): 1 long, 0 short. */
extern FB_HIDDEN uint8_t fb_route_long2[FB_ROUTE_SITES];
/* Per site: 1 if it may be a wrapper (its own objects both survive and
 * die): while the thread records an epoch, its objects are recorded by
 * context key (fb_route_parent says whose), and the first caller learned
 * long makes it a wrapper.  The fast path does not read it. */
extern FB_HIDDEN uint8_t fb_route_cand[FB_ROUTE_SITES];
extern FB_HIDDEN uint16_t fb_route_parent[FB_ROUTE_SITES];
extern FB_HIDDEN int fb_route_on;

FB_INLINE unsigned fb_route_site(uintptr_t ra)
{
    return (uint16_t)ra;
}

/* The last full return address seen at each site (recorded in sampled
 * epochs), so a profile can name the site's module and offset.  Only
 * with a profile to save (fb_route_keep_ra): the sites' keys spread them
 * over the whole table, so every site wrote a page of its own (a page
 * fault, and memory, in every process: /bin/ls wrote 16). */
extern FB_HIDDEN uintptr_t fb_route_ra[FB_ROUTE_SITES];
extern FB_HIDDEN int fb_route_keep_ra;

FB_INLINE void fb_route_note(uintptr_t ra)
{
    if (fb_route_keep_ra)
        fb_route_ra[fb_route_site(ra)] = ra;
}

/* A recorded object's key: a site (fb_route_site), or a context key with
 * FB_ROUTE_CTX set. */
#define FB_ROUTE_CTX 0x80000000u

FB_INLINE uint32_t fb_route_ctx_key(uintptr_t ra, uintptr_t caller)
{
    return FB_ROUTE_CTX | (uint16_t)(caller ^ ((ra >> 4) * 40503u));
}

/*
 * A wrapper site's entry: where its caller's return address is (the
 * wrapper's CFA offset at ra: its CFA is the exported entry's CFA plus
 * that, and the return address lies 8 below it; 0 if the wrapper's frame
 * does not say), packed with ra into one word, so that a reader never
 * sees one site's ra with another's offset; and the trial that decides
 * whether looking up the caller earns its cost (fb_route_wrap_count).
 */
struct fb_route_wrap {
    uint64_t id;                 /* ra << 16 | offset / 8; 0: empty */
    uint32_t seen, away;         /* requests, and those sent to jemalloc */
};
#define FB_ROUTE_WRAPS 1024u
extern FB_HIDDEN struct fb_route_wrap fb_route_wraps[FB_ROUTE_WRAPS];

/* The entry of the wrapper site at ra, or NULL if not known yet. */
FB_INLINE struct fb_route_wrap *fb_route_wrap_of(uintptr_t ra)
{
    struct fb_route_wrap *w = &fb_route_wraps[(ra >> 4) & (FB_ROUTE_WRAPS - 1)];
    uint64_t id = __atomic_load_n(&w->id, __ATOMIC_RELAXED);
    return id && (id >> 16) == (uint64_t)ra ? w : NULL;
}

FB_INLINE int32_t fb_route_wrap_off(const struct fb_route_wrap *w)
{
    return (int32_t)(__atomic_load_n(&w->id, __ATOMIC_RELAXED) & 0xffff) * 8;
}

/* Makes the entry of the wrapper site at ra; cfa_off: the wrapper's CFA
 * offset at ra (fb_cfi_rsp_offset), 0 if none: the site is then judged
 * as a site again, never a wrapper.  Returns the entry, NULL if none. */
struct fb_route_wrap *fb_route_wrap_learn(uintptr_t ra, int32_t cfa_off);

/*
 * Counts a wrapper's request (away: its caller sent it to jemalloc).
 * Looking up the caller costs about 40 instructions a request more than
 * the fast path; every FB_ROUTE_WRAP_TRIAL requests the wrapper is
 * reviewed: if its callers have not been told apart (under 1 in 64 of
 * its requests, or over 63 in 64, went to jemalloc), it is a site again,
 * short or long, and never a wrapper.
 */
#define FB_ROUTE_WRAP_TRIAL 262144u
void fb_route_wrap_review(uintptr_t ra, struct fb_route_wrap *w);

FB_INLINE void fb_route_wrap_count(uintptr_t ra, struct fb_route_wrap *w, int away)
{
    uint32_t seen = w->seen + 1;
    w->seen = seen;
    w->away += (uint32_t)away;
    if (fb_unlikely(seen >= FB_ROUTE_WRAP_TRIAL))
        fb_route_wrap_review(ra, w);
}

/* A verdict from a profile: the site of ra is long, with the history of
 * two pinned samples (so one probe that sees it die revises it). */
void fb_route_preset(uintptr_t ra);

/* Should a profile carry the site's verdict to the next run?  Only a long
 * site whose evidence would make it long afresh (it pinned more than half
 * of its sampled epochs), not one kept long by the hysteresis that keeps
 * a verdict until it pins under an eighth, and not a wrapper candidate.
 * A preset verdict is seldom looked at again (long sites are sampled only
 * in probes), so a weak one would cost the whole next run: gcc -O2's
 * xrealloc(NULL, n), 94% short-lived, learned long early and pinning 1 of
 * 4 sampled epochs at exit, preset long made the next run serve 47% of
 * cc1's requests from the buffers instead of 52%. */
int fb_route_persists(unsigned site);

/* Starts the module (FBMALLOC_LIFETIME): on 0 off, 1 by sites alone, 2
 * wrappers by their callers too; keep_ra: a profile will be saved
 * (FBMALLOC_PROFILE).  Returns on. */
int fb_route_init(int on, int keep_ra);

/* Maps the tables the fast path reads to the zero page at once: called
 * with the process's first buffer (epoch.c), when the fast path starts
 * reading them, not at start-up, which an option set brings forward to
 * the constructor (34 page faults in every /bin/true of a shell loop
 * under FBMALLOC_PROFILE, a process that never mallocs). */
void fb_route_prefault(void);

/* A recorded object: its granule in the epoch (below
 * FB_ROUTE_MAX_GRANULES) and its key (a site, or a context key). */
FB_INLINE uint32_t fb_route_entry(uintptr_t granule, uint32_t key)
{
    return (uint32_t)(granule << 16) | key;
}

FB_INLINE uint32_t fb_route_entry_granule(uint32_t e)
{
    return (e >> 16) & (FB_ROUTE_MAX_GRANULES - 1);
}

/* Judges a recorded epoch: list[0..n) its recorded objects, map the
 * epoch's granule-map bytes now (1..254 at an object's granule: still
 * live; anything else: freed).  all_died: the epoch was reset (every
 * object freed) before its judgement was due.  full: the thread's buffer
 * was full since its last judgement (every epoch pinned).  sparse: so few
 * objects of the epoch survive that the buffers reuse it around them
 * (epoch.c's holes): its survivors pinned nothing.  Returns 1 if
 * the epoch could teach something (it counted as pinned against others,
 * route.c), 0 if its survivors and its dead came from the same sites. */
int fb_route_judge(const uint32_t *list, size_t n, const uint8_t *map, int all_died,
                   int probe, int full, int sparse);

/* Should the next sampled epoch also let long sites in (a probe, judged
 * with probe set)? */
int fb_route_probe_due(void);

/* Grows whenever something is learned (a verdict, a wrapper). */
uint64_t fb_route_progress(void);

/* Moves whenever any verdict changes, revisions included (what a profile
 * saved at exit would say may have changed). */
uint64_t fb_route_changes(void);

/* Counters for the statistics. */
struct fb_route_counts {
    uint64_t epochs_judged, sites_long, learned, forgotten;
    uint64_t mispredicted;   /* objects of short sites that pinned an epoch */
    uint64_t wrappers;       /* sites routed by their caller too */
    uint64_t ctx_long;       /* context keys long now */
};
void fb_route_counts(struct fb_route_counts *out);

#endif
