/*
 * Per-thread fixed buffers recycled in epochs: bump allocation with epoch
 * turnover, frees, slot ownership, thread exit and fork.  The inlined
 * fast paths over the same state are the dispatch layer's (alloc.h).
 *
 * Address space: one reservation, cut into equal slots (one per thread
 * that allocates), each cut into equal epochs.  Ownership of any pointer
 * is a subtract and a compare; slot and epoch indices are shifts.
 *
 * Slots: a thread takes a slot on its first allocation and gives it back
 * at exit (pthread key destructor).  A given-back slot may still hold live
 * objects; the next thread adopts it as it is: epochs that are empty get
 * reused, pinned ones wait for their last free (which arrives as a remote
 * free).  So threads created and joined in sequence keep reusing the same
 * memory.  Slots are taken LIFO so the warmest memory is reused first.
 */
#include "epoch.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "options.h"
#include "platform.h"

__thread struct fb_tls fb_t __attribute__((tls_model("initial-exec")));
struct fb_geom fb_g;
uintptr_t fb_map_bias;

/* The dispatch's gates (fb_epoch_set_gates), and the layers' hooks. */
static int gate_malloc, gate_free;
static struct fb_epoch_hooks hooks;

#define FB_NO_EPOCH UINT32_MAX
/* Survivors an epoch may hold and still be reused around them (holes). */
#define FB_EPOCH_SPARSE 4u
#define FB_EPOCH_MOVES 4
/* Scans between two looks at every warm epoch (warm_scan). */
#define FB_EPOCH_RECHECK 16u

/* Epoch flags.  USED: objects were allocated since the last reset (for the
 * statistics).  DIRTY: the granule map may hold live-looking bytes of
 * objects that were never returned (a fork() that cut another thread's
 * malloc short); the next reset clears the map.  HOLES: the epoch is being
 * reused around its survivors (holes_enter, below), not reset. */
enum { FB_EP_USED = 1, FB_EP_DIRTY = 2, FB_EP_HOLES = 4 };

enum { FB_SLOT_UNUSED = 0, FB_SLOT_OWNED, FB_SLOT_FREE };

/* The slot table entry.  Followed by the live counters (owner only), one
 * per 4 KiB of the slot (FB_LIVE_SHIFT, epoch.h), then three arrays of
 * fb_g.epochs words: rfree (atomic, other threads), flags (FB_EP_*), and
 * with lifetime routing on, the sampled epoch's recorded objects (up to
 * FB_ROUTE_LIST words). */
struct fb_slot {
    uint32_t state;
    uint32_t next_free;      /* free stack link: index + 1, 0 = end */
    uint32_t cur;            /* current epoch, FB_NO_EPOCH if none */
    uint32_t warm;           /* epochs [0, warm) were ever used (warm_scan);
                              * 0 in a fresh slot's zeroed table */
    struct fb_stats_block stats;
};

static pthread_mutex_t fb_slot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t fb_free_top;                 /* index + 1 of the stack top */
static _Atomic uint32_t fb_slots_used;       /* slots [0, used) committed */
static uint32_t fb_dummy_live;

static inline struct fb_slot *slot_at(uint32_t idx)
{
    return (struct fb_slot *)(fb_g.slots + (size_t)idx * fb_g.slot_stride);
}
static inline uint32_t *slot_live(struct fb_slot *s)
{
    return (uint32_t *)(s + 1);
}
/* Live counters of slot s: per epoch e, the words [e << live_shift,
 * (e + 1) << live_shift).  Only their sum means anything: malloc counts
 * into the epoch's first, a free into the one of the object's 4 KiB
 * (alloc.h: a constant shift, no load of the epoch size). */
static unsigned live_shift;          /* log2(live counters per epoch) */
static inline uint32_t *epoch_live(struct fb_slot *s, uint32_t e)
{
    return slot_live(s) + ((size_t)e << live_shift);
}
static inline _Atomic uint32_t *slot_rfree(struct fb_slot *s)
{
    return (_Atomic uint32_t *)(slot_live(s) + ((size_t)fb_g.epochs << live_shift));
}
static inline uint32_t *slot_flags(struct fb_slot *s)
{
    return (uint32_t *)slot_rfree(s) + fb_g.epochs;
}
static inline uint32_t *slot_sites(struct fb_slot *s)
{
    return (uint32_t *)slot_rfree(s) + 2 * (size_t)fb_g.epochs;
}

/* Objects of epoch e still live (an upper bound while other threads'
 * frees are in flight). */
static inline uint32_t epoch_count(struct fb_slot *s, uint32_t e)
{
    const uint32_t *l = epoch_live(s, e);
    uint32_t live = 0;
    for (uint32_t i = 0; i < (1u << live_shift); i++)
        live += l[i];               /* mod 2^32, as the counts themselves */
    return live - atomic_load_explicit(&slot_rfree(s)[e], memory_order_acquire);
}

/* e's bit in the per-thread epoch masks (fb_tls.sparse, .seen, .pinned);
 * none for e >= 64. */
static inline uint64_t epoch_bit(uint32_t e)
{
    return e < 64 ? (uint64_t)1 << e : 0;
}

static inline int epoch_empty(struct fb_slot *s, uint32_t e)
{
    return epoch_count(s, e) == 0;
}

/* ---------------------------------------------------------------------- */
/* Initialisation                                                          */

static unsigned log2_exact(uint64_t v)
{
    return (unsigned)__builtin_ctzll(v);
}

int fb_epoch_init(const struct fb_epoch_hooks *h)
{
    if (h)
        hooks = *h;
    fb_g.big_above = FB_ALIGN - 1;   /* until the buffers exist, if ever */
    if (fb_opt.buffer_size == 0)
        return 0;                    /* fast path off by request */
    size_t slot_size = fb_opt.buffer_size;
    size_t epoch_size = fb_opt.epoch_size;
    uint32_t epochs = (uint32_t)(slot_size / epoch_size);
    live_shift = log2_exact(epoch_size >> FB_LIVE_SHIFT);
    size_t stride = sizeof(struct fb_slot) +
                    sizeof(uint32_t) * (((size_t)epochs << live_shift) + 2 * (size_t)epochs);
    if (fb_route_on)
        stride += sizeof(uint32_t) * FB_ROUTE_LIST;
    stride = (stride + 63) & ~(size_t)63;   /* a slot per cache line set */

    /* Under RLIMIT_AS (ulimit -v) the reservation counts against the
     * program's budget, committed or not: the buffers, their granule map
     * (1/16) and the slot table then take at most 2.5% of what is left,
     * and there may be as few as one slot (other threads use jemalloc).
     * The target is that the program keeps 95% of what jemalloc alone
     * would give it; half of that margin is jemalloc's: it maps in
     * growing steps, so a budget a little smaller can cost it a whole
     * step (5% measured 89% of jemalloc's calloc total under 100 MB).
     * Without a limit: the configured region, and at least a handful of
     * slots.  Either way, halve on failure (strict overcommit,
     * a full address space); below the minimum the fast path is off and
     * everything goes to jemalloc. */
    size_t region_max = fb_opt.region_size, region_min = 4 * slot_size;
    size_t as_left = fb_plat_as_left();
    if (as_left != SIZE_MAX) {
        size_t per_slot = slot_size + (slot_size >> FB_GRANULE_SHIFT) + stride;
        size_t fit = as_left / 40 / per_slot * slot_size;
        while (region_max > fit && region_max >= slot_size)
            region_max /= 2;
        region_min = slot_size;
    }
    for (size_t region = region_max; region >= region_min && region;
         region /= 2) {
        size_t nslots = region / slot_size;
        if (nslots > UINT32_MAX - 1)
            continue;
        void *data = fb_plat_reserve(region, slot_size);
        if (!data)
            continue;
        void *map = fb_plat_reserve(region >> FB_GRANULE_SHIFT,
                                    fb_plat_page_size());
        void *slots = fb_plat_reserve(nslots * stride, fb_plat_page_size());
        if (!map || !slots) {
            fb_plat_release(data, region);
            if (map)
                fb_plat_release(map, region >> FB_GRANULE_SHIFT);
            if (slots)
                fb_plat_release(slots, nslots * stride);
            continue;
        }
        fb_g.base = (uintptr_t)data;
        fb_g.map = map;
        fb_g.slots = slots;
        fb_g.slot_stride = stride;
        fb_g.slot_size = slot_size;
        fb_g.epoch_size = epoch_size;
        fb_g.nslots = (uint32_t)nslots;
        fb_g.epochs = epochs;
        fb_g.slot_shift = log2_exact(slot_size);
        fb_g.epoch_shift = log2_exact(epoch_size);
        fb_g.max_small = (fb_opt.max_small + 15) & ~(uintptr_t)15;
        fb_g.big_above = fb_g.max_small;
        fb_map_bias = (uintptr_t)map - (fb_g.base >> FB_GRANULE_SHIFT);
        fb_g.size = region;          /* last: publishes the region */
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Epochs                                                                  */

/*
 * Makes epoch e current.  Resetting is O(1): when an epoch is empty, every
 * object start in its map holds FB_FREED and every other byte 0.  Those
 * stale FB_FREED bytes need no clearing: malloc overwrites a start byte,
 * and inside a new object a stale one still makes a free of that interior
 * pointer fail (it reads as "already freed").  Only live-looking bytes
 * would be harmful, and only a fork() can leave those (FB_EP_DIRTY).
 */
static void sample_judge(struct fb_tls *t, int all_died);

static void epoch_reset(struct fb_tls *t, uint32_t e)
{
    struct fb_slot *s = t->slot;
    if (t->sample_state != FB_SAMPLE_IDLE && t->sample_e == e)
        sample_judge(t, 1);          /* every object of it died */
    uintptr_t start = t->slot_base + ((uintptr_t)e << fb_g.epoch_shift);
    uint32_t flags = slot_flags(s)[e];
    if (flags & FB_EP_DIRTY)
        memset(&t->slot_map[(start - t->slot_base) >> FB_GRANULE_SHIFT], 0,
               fb_g.epoch_size >> FB_GRANULE_SHIFT);
    if (flags & FB_EP_USED)
        s->stats.epochs_reset++;
    memset(epoch_live(s, e), 0, sizeof(uint32_t) << live_shift);
    atomic_store_explicit(&slot_rfree(s)[e], 0, memory_order_relaxed);
    slot_flags(s)[e] = 0;
    t->seen &= ~epoch_bit(e);        /* a new generation of objects */
    t->pinned &= ~epoch_bit(e);
    s->cur = e;
    t->bump = start;
    t->limit = start + fb_g.epoch_size;
    t->cur_live = epoch_live(s, e);
}

/* Leaves the current epoch, noting whether it was used. */
static void epoch_leave(struct fb_tls *t)
{
    struct fb_slot *s = t->slot;
    if (s->cur != FB_NO_EPOCH) {
        uintptr_t start = t->slot_base + ((uintptr_t)s->cur << fb_g.epoch_shift);
        if (t->bump != start)
            slot_flags(s)[s->cur] |= FB_EP_USED;
        s->cur = FB_NO_EPOCH;
    }
    t->bump = 0;
    t->limit = 0;
    t->cur_live = &fb_dummy_live;
}

/* ---- lifetime sampling (see route.h) ---------------------------------- */

static uint8_t *epoch_map(struct fb_tls *t, uint32_t e)
{
    return t->slot_map + (((uintptr_t)e << fb_g.epoch_shift) >> FB_GRANULE_SHIFT);
}

/* Judges the sampled epoch and goes back to waiting for the next one. */
static void sample_judge(struct fb_tls *t, int all_died)
{
    int sparse = !all_died && epoch_count(t->slot, t->sample_e) <= FB_EPOCH_SPARSE;
    /* An epoch reused before its judgement was due (warm_scan cycles
     * through few epochs) is judged early; the next sample still waits
     * as long as it would have, so that the share of recorded epochs does
     * not grow. */
    unsigned left = t->sample_state == FB_SAMPLE_PENDING ? t->sample_wait : 0;
    int taught = fb_route_judge(t->sample_sites, t->sample_n, epoch_map(t, t->sample_e),
                                all_died, t->sample_probe, t->sample_full, sparse);
    t->sample_full = 0;
    t->sample_state = FB_SAMPLE_IDLE;
    t->sample_probe = 0;
    /* A thread that moved to a fresh slot (slot_move) records every
     * epoch until one teaches something, for up to 64: its first epochs
     * there may still be the start-up that pinned the old one. */
    if (t->sample_count < FB_ROUTE_EAGER && (taught || !t->moved || ++t->moved >= 64))
        t->sample_count++;
    left += FB_ROUTE_SAMPLE;
    t->sample_wait = t->sample_count < FB_ROUTE_EAGER ? 0 : (uint16_t)(left < 0xffff ? left : 0xffff);
}

static void set_gates(struct fb_tls *t);

/* Turnovers between leaving a sampled epoch and judging it: a quarter of
 * the buffer.  Objects that die sooner pin at most a quarter of the
 * epochs at a time and the buffer keeps serving; those that live longer
 * are what fills it.  The eager samples of a thread's start are judged
 * after two: a buffer pinned for good at start-up never recovers, and a
 * site wrongly called long costs only what it cost before routing. */
static unsigned judge_delay(const struct fb_tls *t)
{
    unsigned d = t->sample_count < FB_ROUTE_EAGER ? 2 : fb_g.epochs / 4;
    return d < 2 ? 2 : d > 0xffff ? 0xffff : d;
}

/* At every turnover of the thread's current epoch: end a recording
 * (judged now if the epoch emptied, else judge_delay() turnovers later),
 * count down to a judgement or to the next recording. */
static void sample_turnover(struct fb_tls *t, uint32_t leaving, int empty)
{
    switch (t->sample_state) {
    case FB_SAMPLE_RECORDING:
        if (leaving != t->sample_e)
            break;
        t->sample_probe <<= 1;       /* long sites leave again */
        t->sample_state = FB_SAMPLE_PENDING;
        set_gates(t);                /* the fast path serves again */
        if (empty)
            sample_judge(t, 1);
        else
            t->sample_wait = (uint16_t)judge_delay(t);
        break;
    case FB_SAMPLE_PENDING:
        if (--t->sample_wait == 0)
            sample_judge(t, 0);
        break;
    default:
        if (t->sample_wait)
            t->sample_wait--;
    }
}

/* The new current epoch becomes the sampled one when the wait is over:
 * every allocation in it goes through fb_epoch_alloc (the malloc gate
 * is shut), which tags its object starts with their sites. */
static void sample_maybe_start(struct fb_tls *t)
{
    if (t->sample_state != FB_SAMPLE_IDLE || t->sample_wait || !t->sample_sites ||
        t->slot->cur == FB_NO_EPOCH)
        return;
    t->sample_e = t->slot->cur;
    t->sample_n = 0;
    t->sample_state = FB_SAMPLE_RECORDING;
    t->sample_probe = (uint8_t)fb_route_probe_due();
    t->max_small = 0;
}

/* ---- holes: reusing a sparsely pinned epoch ---------------------------- */

/*
 * A few long-lived objects spread over many epochs (a computation that
 * keeps one result in 64: bignum, keepone) pin every epoch, and a whole
 * epoch is reset only once all its objects are freed.  Such an epoch is
 * instead reused around its survivors, as Immix (Blackburn and McKinley,
 * PLDI 2008) reuses partly free lines: bump through the free runs of its
 * granule map ("holes"), each hole's end the next survivor's start.
 *
 * Only an epoch with at most FB_EPOCH_SPARSE survivors: its holes are few
 * and large, so one pass over its map (1/16 of its size, sixteen bytes at
 * a time) pays for nearly a whole epoch of bump allocation.  A denser one
 * (random lifetimes: larson) would cost map scans for little room: when
 * epochs of up to 16 survivors were searched, larson took 34% more
 * instructions (and see holes_judge).
 * The map needs nothing new: a live object's start byte holds its size,
 * every other byte is 0 or a stale FB_FREED (epoch.h), and only the owner
 * writes live bytes, so a survivor freed by another thread meanwhile only
 * turns a byte free under the scan.  The epoch's counts stay as they are
 * (its survivors are still counted); it is empty, and reset, once they and
 * the new objects are all freed.
 */
/* The first live object start at or after granule g (map: the epoch's
 * bytes), or end: sixteen bytes at a time with SSE2 (a byte neither 0
 * nor FB_FREED), eight with a word's arithmetic elsewhere.  The loads may
 * race with other threads' frees, which only turn live bytes free: a byte
 * read live a moment too long is a survivor skipped, never an overlap. */
static inline int granule_live(const uint8_t *map, uint32_t g)
{
    unsigned v = __atomic_load_n(&map[g], __ATOMIC_RELAXED);
    return v - 1u < FB_MAX_GRANULES;
}

#if defined(__SSE2__)
#include <emmintrin.h>
static uint32_t hole_scan_live(const uint8_t *map, uint32_t g, uint32_t end)
{
    while (g < end && (g & 15)) {
        if (granule_live(map, g))
            return g;
        g++;
    }
    const __m128i zero = _mm_setzero_si128(), freed = _mm_set1_epi8((char)FB_FREED);
    for (; g + 16 <= end; g += 16) {
        __m128i v = _mm_load_si128((const __m128i *)(const void *)(map + g));
        __m128i dead = _mm_or_si128(_mm_cmpeq_epi8(v, zero), _mm_cmpeq_epi8(v, freed));
        unsigned live = (unsigned)_mm_movemask_epi8(dead) ^ 0xffffu;
        if (live)
            return g + (uint32_t)__builtin_ctz(live);
    }
    while (g < end && !granule_live(map, g))
        g++;
    return g;
}

/* Bytes not 0 in the epoch map [0, end) (end a multiple of 16, the map
 * 16-byte aligned).  Zero bytes are summed per lane (a compare's -1
 * subtracted), the lanes added by a sum of absolute differences every
 * 255 vectors: the x86-64 baseline has no popcount instruction (gcc's
 * is a call). */
static uint32_t map_count_set(const uint8_t *map, uint32_t end)
{
    const __m128i zero = _mm_setzero_si128();
    uint32_t n = 0, g = 0;
    while (g < end) {
        __m128i acc = zero;
        uint32_t k = 0;
        for (; g < end && k < 255; g += 16, k++) {
            __m128i v = _mm_load_si128((const __m128i *)(const void *)(map + g));
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, zero));
        }
        __m128i sum = _mm_sad_epu8(acc, zero);
        n += 16u * k - (uint32_t)(_mm_cvtsi128_si32(sum) + _mm_extract_epi16(sum, 4));
    }
    return n;
}
#else
/* High bit of each byte of w set iff that byte is 0 (exact: no carry
 * crosses a byte). */
static inline uint64_t zero_bytes(uint64_t w)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
    return ~(((w & lo7) + lo7) | w | lo7);
}

static uint32_t hole_scan_live(const uint8_t *map, uint32_t g, uint32_t end)
{
    const uint64_t high = 0x8080808080808080ULL;
    while (g < end && (g & 7)) {
        if (granule_live(map, g))
            return g;
        g++;
    }
    while (g + 8 <= end) {
        uint64_t w = __atomic_load_n((const uint64_t *)(const void *)(map + g), __ATOMIC_RELAXED);
        if ((zero_bytes(w) | zero_bytes(~w)) != high)
            break;                   /* a byte neither 0 nor FB_FREED */
        g += 8;
    }
    while (g < end && !granule_live(map, g))
        g++;
    return g;
}

static uint32_t map_count_set(const uint8_t *map, uint32_t end)
{
    uint32_t n = 0;
    for (uint32_t g = 0; g < end; g += 8) {
        uint64_t w = __atomic_load_n((const uint64_t *)(const void *)(map + g), __ATOMIC_RELAXED);
        /* the zero bytes' high bits, gathered in the top byte */
        n += 8u - (uint32_t)(((zero_bytes(w) >> 7) * 0x0101010101010101ULL) >> 56);
    }
    return n;
}
#endif

/* Moves the bump to the next hole of at least need bytes in the current
 * epoch e, at or after t->limit (a survivor's start, or the epoch's start
 * on entry); smaller ones stay unused until the epoch resets, so a request
 * never comes back for the same hole.  Returns 0 at the epoch's end.
 *
 * In an epoch to be counted (holes_enter), every hole passed has its map
 * cleared: the stale FB_FREED bytes of the dead objects that were there
 * become 0, so that holes_judge can count the objects the epoch served
 * (uncleared, a new start may fall on a stale byte, as when a program
 * repeats one layout).  Nobody else writes there: other threads only turn
 * live bytes freed, and a hole has none (only the owner makes a byte
 * live).  A free of a pointer into it reads "not an object", where it
 * read "already freed": refused either way. */
static int hole_next(struct fb_tls *t, uint32_t e, size_t need)
{
    uintptr_t start = t->slot_base + ((uintptr_t)e << fb_g.epoch_shift);
    uint8_t *map = epoch_map(t, e);
    uint32_t end = (uint32_t)(fb_g.epoch_size >> FB_GRANULE_SHIFT);
    uint32_t g = (uint32_t)((t->limit - start) >> FB_GRANULE_SHIFT);
    for (;;) {
        /* Past the survivors here: each start byte is its size, read once
         * (freed by another thread between two reads, it would read 255
         * and skip into the middle of the next object, whose inside looks
         * free). */
        while (g < end) {
            unsigned v = __atomic_load_n(&map[g], __ATOMIC_RELAXED);
            if (v - 1u >= FB_MAX_GRANULES)
                break;
            g += v;
        }
        if (g >= end)
            return 0;
        uint32_t h = hole_scan_live(map, g, end);
        if (t->hole_counted)
            memset(map + g, 0, h - g);
        if (((size_t)(h - g) << FB_GRANULE_SHIFT) >= need) {
            t->bump = start + ((uintptr_t)g << FB_GRANULE_SHIFT);
            t->limit = start + ((uintptr_t)h << FB_GRANULE_SHIFT);
            return 1;
        }
        g = h;
    }
}

/* Makes the sparse epoch e current, in its first hole.  Callers never
 * pass the sampled epoch while its judgement is pending: new objects in
 * its dead ones' granules would read as survivors. */
static int holes_enter(struct fb_tls *t, uint32_t e, uint32_t live, size_t need)
{
    struct fb_slot *s = t->slot;
    uintptr_t start = t->slot_base + ((uintptr_t)e << fb_g.epoch_shift);
    s->cur = e;
    t->cur_live = epoch_live(s, e);
    t->bump = t->limit = start;
    /* Counted (holes_judge) until four in a row paid, then one in eight:
     * the clearing and the count cost about a thousand instructions an
     * epoch (bignum: 0.7% more in all when every one was counted). */
    t->hole_counted = t->holes_paid < 4 || (s->stats.epochs_holes & 7) == 0;
    if (!hole_next(t, e, need)) {
        epoch_leave(t);              /* nothing allocated: not marked used */
        return 0;
    }
    slot_flags(s)[e] |= FB_EP_HOLES | FB_EP_USED;
    s->stats.epochs_holes++;
    t->hole_survivors = live;
    return 1;
}

/* May e be reused around its live survivors?  Not the sampled epoch while
 * its judgement is pending (holes_enter), nor one whose map fork() left
 * unreliable (FB_EP_DIRTY). */
static int sparse_ok(const struct fb_tls *t, struct fb_slot *s, uint32_t e, uint32_t live)
{
    return live <= FB_EPOCH_SPARSE && !(slot_flags(s)[e] & FB_EP_DIRTY) &&
           !(t->sample_state != FB_SAMPLE_IDLE && e == t->sample_e);
}

/*
 * A holes epoch has no hole left: did it pay?  Its scans (the counts of
 * every epoch, its map) cost a couple of thousand instructions; an object
 * the buffer serves instead of jemalloc saves about a hundred.  Where
 * large objects of random lifetimes leave only a few dozen places
 * between survivors (larson: 27 objects per epoch, 5% more instructions
 * in all), sparse epochs are left alone for a while, twice as long after
 * each miss; they then wait for their last free, as any pinned epoch.
 * The objects served are counted in the map (hole_next), not estimated
 * from the bytes served and the mean size of the requests that found a
 * hole too small: those are the larger ones by nature, so cc1's objects
 * were taken for twice their size, some of its holes epochs missed, and
 * the misses' waits left its sparse epochs alone for most of its run
 * (gencode 100: 6-11% of its requests from the buffers so, 20-46%
 * counted).
 */
#define FB_HOLES_PAY 64u
static void holes_judge(struct fb_tls *t, uint32_t e)
{
    if (!t->hole_counted)
        return;
    /* Every byte set in its map is now an object start: a survivor's
     * (those still live when hole_next passed them: at most the count on
     * entry) or a new object's. */
    uint32_t set = map_count_set(epoch_map(t, e), (uint32_t)(fb_g.epoch_size >> FB_GRANULE_SHIFT));
    uint32_t served = set > t->hole_survivors ? set - t->hole_survivors : 0;
    if (served >= FB_HOLES_PAY) {
        t->holes_wait = 0;
        t->holes_paid += t->holes_paid < 255;
        return;
    }
    t->holes_paid = 0;
    t->holes_wait = t->holes_wait ? (t->holes_wait < 1024 ? t->holes_wait * 2 : 1024) : 4;
    t->holes_skip = t->holes_wait;
    t->sparse = 0;
}

/*
 * The current epoch has no room: its next hole if it is being reused
 * around survivors; reuse it if it is empty (the hot cycle of a program
 * that frees what it allocates: no syscall, no metadata to rebuild), else
 * move to the next empty warm epoch of the slot, else to a cold one, else
 * to the sparsest one with at most FB_EPOCH_SPARSE survivors (holes,
 * above).  Returns 0 when every epoch is pinned by live objects.
 *
 * warm_scan: the epochs a slot has used are a prefix [0, warm), and the
 * next empty one is looked for only there, in turn from the current
 * one; a cold epoch (never used: its pages never touched) is taken only
 * when none of them is empty.  So a thread cycles through as much of its
 * buffer as its objects' lifetimes need, in memory its caches still
 * hold, instead of through the whole slot (1 MiB by default: more than
 * this machine's L2 of 512 KiB, so that every new object was a cache
 * miss, and all of it resident).  Where long-lived objects pin many warm
 * epochs, every cycle would pass them all (40 pinned ones at each of a
 * sliding window's turnovers); an epoch (below 64) found non-empty at
 * two looks in a row is instead passed without a look (fb_tls.pinned)
 * until every FB_EPOCH_RECHECK-th scan looks at them all again.  Once
 * every epoch is warm, scans look at all of them, as before, for the
 * holes' sake (the sparsest).
 */
static int slot_move(struct fb_tls *t);
static int may_move(const struct fb_tls *t);

/* need: the size of the request that found no room (0: none). */
static FB_NOINLINE int epoch_next(struct fb_tls *t, size_t need)
{
    struct fb_slot *s = t->slot;
    uint32_t cur = s->cur;
    if (cur != FB_NO_EPOCH) {
        if ((slot_flags(s)[cur] & FB_EP_HOLES) && t->limit) {
            if (hole_next(t, cur, need))
                return 1;
            holes_judge(t, cur);
        }
        uintptr_t start = t->slot_base + ((uintptr_t)cur << fb_g.epoch_shift);
        int empty = epoch_empty(s, cur);
        sample_turnover(t, cur, empty);
        if (empty) {
            if (t->bump != start)
                slot_flags(s)[cur] |= FB_EP_USED;
            epoch_reset(t, cur);
            sample_maybe_start(t);
            return 1;
        }
        epoch_leave(t);
    } else if (t->backoff) {
        /* Full buffer: do not rescan on every call. */
        fb_epoch_wait_tick(t);
        return 0;
    }
    /* Sparse epochs the last full scan found, before scanning again: a
     * buffer of random lifetimes (larson) finds one at most turnovers, and
     * a scan of every epoch's counts each time took as many instructions
     * as the holes saved.  Their counts only fall meanwhile (frees), so
     * they are still sparse, or empty, unless one was current since. */
    while (t->sparse && !t->holes_skip) {
        uint32_t e = (uint32_t)__builtin_ctzll(t->sparse);
        t->sparse &= t->sparse - 1;
        if (e == cur)
            continue;
        uint32_t live = epoch_count(s, e);
        if (live == 0) {
            epoch_reset(t, e);
            goto found;
        }
        if (sparse_ok(t, s, e, live) && holes_enter(t, e, live, need))
            goto found;              /* (re-checked: it may have been current since) */
    }
    /* The warm epochs [0, s->warm) in turn from the current one, then a
     * cold one (warm_scan).  The cur < warm test also covers NO_EPOCH.
     * While a cold epoch is left, it comes before any holes: the pinned
     * masks serve, and no sparse epoch is looked for. */
    uint32_t warm = s->warm, first = cur < warm ? cur + 1 : 0;
    int cold_left = warm < fb_g.epochs;
    if (cold_left && ++t->pinned_age >= FB_EPOCH_RECHECK) {
        t->pinned_age = 0;
        t->pinned = 0;               /* look at them all again */
    }
    uint32_t sparse = FB_NO_EPOCH, sparse_live = FB_EPOCH_SPARSE + 1;
    uint64_t found_sparse = 0;
    for (uint32_t i = 0, e = first; i < warm; i++, e++) {
        if (e >= warm)
            e = 0;                   /* first <= warm: wraps once */
        uint64_t bit = epoch_bit(e);
        if (e == cur || (cold_left && (t->pinned & bit)))
            continue;
        uint32_t live = epoch_count(s, e);
        if (live == 0) {
            epoch_reset(t, e);
            goto found;
        }
        if (cold_left) {
            if (t->seen & bit)
                t->pinned |= bit;    /* non-empty at two looks in a row */
            t->seen |= bit;
        } else if (sparse_ok(t, s, e, live)) {
            found_sparse |= bit;
            if (live < sparse_live) {
                sparse = e;
                sparse_live = live;
            }
        }
    }
    if (cold_left) {
        __atomic_store_n(&s->warm, warm + 1, __ATOMIC_RELAXED);   /* read by fb_epoch_warm_bytes */
        epoch_reset(t, warm);
        goto found;
    }
    if (sparse != FB_NO_EPOCH && t->holes_skip)
        t->holes_skip--;
    else if (sparse != FB_NO_EPOCH && holes_enter(t, sparse, sparse_live, need)) {
        t->sparse = found_sparse & ~epoch_bit(sparse);
        goto found;
    }
    /* Not rescanned for the next 256 small requests, twice as many after
     * each scan that finds nothing (up to 4096): in a buffer that stays
     * full (random lifetimes, larson) the scans would show in a profile. */
    if (t->backoff_next == 4096 && may_move(t) && slot_move(t))
        return epoch_next(t, need);  /* the fresh slot's first epoch */
    t->backoff_next = t->backoff_next ? (t->backoff_next < 4096 ? t->backoff_next * 2 : 4096)
                                      : 256;
    t->backoff = t->backoff_next;
    /* A quick thread spends the wait in the dispatch's first door, which
     * counts nothing: counted here, all of it (but the request that ends
     * it: it comes back here and is counted by fb_epoch_alloc). */
    if (t->quick)
        t->stats->buffer_full += t->backoff - 1;
    fb_epoch_je_gate(t);
    t->sample_full = 1;              /* the buffer is full: sites pin it */
    /* Shut the size gate until a scan finds room: the thread's small
     * requests leave the fast path at its first compare, for the
     * dispatch's first door, instead of after the site and room checks. */
    t->max_small = 0;
    return 0;
found:
    t->backoff = 0;
    t->backoff_next = 0;
    sample_maybe_start(t);
    set_gates(t);                    /* open again if a full buffer shut it */
    return 1;
}

void *fb_epoch_alloc(size_t sz, uint32_t key, uintptr_t ra)
{
    struct fb_tls *t = &fb_t;
    if (t->state != FB_T_ACTIVE)
        return NULL;
    for (;;) {
        uintptr_t p = t->bump, np = p + sz;
        if (np <= t->limit) {
            t->bump = np;
            uintptr_t g = (p - t->slot_base) >> FB_GRANULE_SHIFT;
            t->slot_map[g] = (uint8_t)(sz >> FB_GRANULE_SHIFT);
            (*t->cur_live)++;
            if (t->sample_state == FB_SAMPLE_RECORDING && t->sample_n < FB_ROUTE_LIST) {
                t->sample_sites[t->sample_n++] =
                    fb_route_entry(g & ((fb_g.epoch_size >> FB_GRANULE_SHIFT) - 1), key);
                if (!(key & FB_ROUTE_CTX))
                    fb_route_note(ra);
            }
            return (void *)p;
        }
        if (!epoch_next(t, sz)) {
            t->stats->buffer_full++;
            return NULL;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Threads                                                                 */

void fb_epoch_set_gates(int fast_malloc, int fast_free)
{
    gate_malloc = fast_malloc;
    gate_free = fast_free;
}

/* A shut gate is a zero limit: the fast path's own compare fails and no
 * flag is ever tested there. */
static void set_gates(struct fb_tls *t)
{
    int active = t->state == FB_T_ACTIVE;
    /* A sampled epoch is recorded by fb_epoch_alloc: the gate stays shut. */
    t->max_small = active && gate_malloc && t->sample_state != FB_SAMPLE_RECORDING
                       ? fb_g.max_small
                       : 0;
    t->slot_granules = active && gate_free ? fb_g.slot_size >> FB_GRANULE_SHIFT : 0;
    fb_epoch_je_gate(t);
}

/* Takes a slot: a given-back one if any (unless fresh_only), else a new
 * one, committed now.  Returns its index, UINT32_MAX if none; *fresh
 * tells which. */
static uint32_t slot_take(int fresh_only, int *fresh_out)
{
    uint32_t idx = UINT32_MAX;
    int fresh = 0;
    pthread_mutex_lock(&fb_slot_lock);
    if (fb_free_top && !fresh_only) {
        idx = fb_free_top - 1;
        fb_free_top = slot_at(idx)->next_free;
    } else {
        uint32_t used = atomic_load_explicit(&fb_slots_used, memory_order_relaxed);
        if (used < fb_g.nslots) {
            idx = used;
            fresh = 1;
        }
    }
    if (idx != UINT32_MAX && fresh) {
        /* Commit under the lock: fb_slots_used tells remote frees which
         * part of the map is readable. */
        uintptr_t data = fb_g.base + ((uintptr_t)idx << fb_g.slot_shift);
        uintptr_t map = (uintptr_t)fb_g.map + (((uintptr_t)idx << fb_g.slot_shift) >> FB_GRANULE_SHIFT);
        size_t page = fb_plat_page_size();
        size_t map_len = fb_g.slot_size >> FB_GRANULE_SHIFT;
        uintptr_t map_lo = map & ~(uintptr_t)(page - 1);
        uintptr_t map_hi = (map + map_len + page - 1) & ~(uintptr_t)(page - 1);
        uintptr_t tbl = (uintptr_t)slot_at(idx);
        uintptr_t tbl_lo = tbl & ~(uintptr_t)(page - 1);
        uintptr_t tbl_hi = (tbl + fb_g.slot_stride + page - 1) & ~(uintptr_t)(page - 1);
        if (fb_plat_commit((void *)data, fb_g.slot_size) != 0 ||
            fb_plat_commit((void *)map_lo, map_hi - map_lo) != 0 ||
            fb_plat_commit((void *)tbl_lo, tbl_hi - tbl_lo) != 0 ||
            (hooks.commit_slot && hooks.commit_slot(data, fb_g.slot_size) != 0)) {
            idx = UINT32_MAX;        /* strict overcommit said no */
        } else {
            atomic_store_explicit(&fb_slots_used, idx + 1, memory_order_release);
        }
    }
    if (idx != UINT32_MAX)
        slot_at(idx)->state = FB_SLOT_OWNED;
    pthread_mutex_unlock(&fb_slot_lock);
    if (idx != UINT32_MAX && fresh)
        slot_at(idx)->cur = FB_NO_EPOCH;   /* warm: 0 in the fresh table */
    if (idx == 0 && fresh)
        fb_route_prefault();         /* the fast path starts here */
    *fresh_out = fresh;
    return idx;
}

/* The calling thread's state for slot idx, with its lifetime sampling
 * started afresh (the first epochs are recorded back to back). */
static void slot_enter(struct fb_tls *t, uint32_t idx)
{
    struct fb_slot *s = slot_at(idx);
    t->slot = s;
    t->stats = &s->stats;
    t->slot_idx = idx;
    t->slot_base = fb_g.base + ((uintptr_t)idx << fb_g.slot_shift);
    t->slot_map = fb_g.map + ((t->slot_base - fb_g.base) >> FB_GRANULE_SHIFT);
    t->slot_live = slot_live(s);
    t->cur_live = &fb_dummy_live;
    t->bump = t->limit = 0;
    t->backoff = 0;
    t->backoff_next = 0;
    t->sparse = 0;                   /* the old slot's epochs */
    t->seen = t->pinned = 0;
    t->pinned_age = 0;
    t->sample_sites = fb_route_on ? slot_sites(s) : NULL;
    t->sample_state = FB_SAMPLE_IDLE;
    t->sample_probe = 0;
    t->sample_count = 0;
    t->sample_wait = 0;              /* the first epoch is sampled */
    t->state = FB_T_ACTIVE;
}

/* Takes a slot for this thread.  Called with t->busy set. */
int fb_epoch_thread_start(void)
{
    struct fb_tls *t = &fb_t;
    int fresh;
    uint32_t idx = fb_g.size ? slot_take(0, &fresh) : UINT32_MAX;
    if (idx == UINT32_MAX) {
        t->state = FB_T_NOSLOT;
        return 0;
    }
    slot_enter(t, idx);
    epoch_next(t, 0);
    set_gates(t);
    return 1;
}

/* Gives slot s (index idx) back.  bottom: behind every other given-back
 * slot, for one left pinned (fb_epoch_alloc), so that new threads take
 * the others first. */
static void slot_give_back(struct fb_slot *s, uint32_t idx, int bottom)
{
    pthread_mutex_lock(&fb_slot_lock);
    s->state = FB_SLOT_FREE;
    if (!bottom || !fb_free_top) {
        s->next_free = fb_free_top;
        fb_free_top = idx + 1;
    } else {
        struct fb_slot *last = slot_at(fb_free_top - 1);
        while (last->next_free)
            last = slot_at(last->next_free - 1);
        s->next_free = 0;
        last->next_free = idx + 1;
    }
    pthread_mutex_unlock(&fb_slot_lock);
}

/*
 * A thread whose buffer stays full moves to a fresh slot, once, and
 * again (up to FB_EPOCH_MOVES times) while routing keeps learning: each
 * move that taught something (a site or a wrapper's caller learned long)
 * may be followed by one more, as a long start-up (an interpreter's
 * imports) may pin the next slot too before its sites are known.  The
 * typical case is a program whose start-up fills the buffer with objects
 * it keeps to the end (a compiler's tables: cc1plus served 0.5% of its
 * small requests from the buffers): no epoch ever empties, so no epoch
 * is judged either, and lifetime routing never learns which sites to
 * send away.  In the fresh slot the first epochs are recorded again,
 * now with the program past its start-up; the pinned slot is given back
 * behind every other (its objects are still freed into it, as a
 * finished thread's are) and is reused once its epochs empty.  Costs at
 * most FB_EPOCH_MOVES slots of memory more per thread (1 MiB each by
 * default), the second and later only where routing learned, and only
 * to a thread whose buffer six scans in a row found full, after it sent
 * about 8,000 small requests to jemalloc because of it (the backoff
 * below: 256 + 512 + ... + 4096).
 * The second and later also only while the slots left pinned stay under
 * a tenth of the process's peak resident set: a small program (bignum,
 * 4 MiB) paid a quarter of its memory for a second move that served
 * nothing more (79.5% of its requests either way), where python3 with
 * PYTHONMALLOC=malloc (50 MiB) gets 24.8% of its requests served with
 * its moves and 0.9% without.
 * And a first move is a thread's own, but the slots it leaves are the
 * process's: where threads come and go (larson starts two per round), every
 * new thread adopted a pinned slot, found it full and moved to a fresh one,
 * and larson's peak RSS grew from 20.6 to 26.5 MiB (jemalloc 19.2) for the
 * same 9% of requests served.  So once a thread that moved finds its fresh
 * slot full again with nothing learned since (futile_at: what routing knew
 * then), first moves stop until routing learns something.
 */
static _Atomic uint64_t futile_at = UINT64_MAX;

static int may_move(const struct fb_tls *t)
{
    if (!t->moves) {
        uint64_t f = atomic_load_explicit(&futile_at, memory_order_relaxed);
        return f == UINT64_MAX || f != fb_route_progress();
    }
    if (fb_route_progress() == t->moved_progress) {
        /* Full again and nothing learned: that move served nothing. */
        if (atomic_load_explicit(&futile_at, memory_order_relaxed) != t->moved_progress)
            atomic_store_explicit(&futile_at, t->moved_progress, memory_order_relaxed);
        return 0;
    }
    return t->moves < FB_EPOCH_MOVES &&
           (size_t)(t->moves + 1) * fb_g.slot_size * 10 <= fb_plat_peak_rss();
}

static FB_COLD int slot_move(struct fb_tls *t)
{
    int fresh;
    uint32_t idx = slot_take(1, &fresh);
    if (idx == UINT32_MAX)
        return 0;
    struct fb_slot *old = t->slot;
    uint32_t old_idx = t->slot_idx;
    epoch_leave(t);
    if (t->sample_state != FB_SAMPLE_IDLE)
        sample_judge(t, 0);          /* survivors pinned the old slot */
    t->moved = 1;
    t->moves++;
    t->moved_progress = fb_route_progress();
    slot_enter(t, idx);
    slot_give_back(old, old_idx, 1);
    return 1;
}

void fb_epoch_thread_exit(void)
{
    struct fb_tls *t = &fb_t;
    if (t->state != FB_T_ACTIVE)
        return;
    epoch_leave(t);
    t->state = FB_T_DEAD;
    t->backoff = 0;                  /* before set_gates: no wait to count down */
    set_gates(t);
    struct fb_slot *s = t->slot;
    uint32_t idx = t->slot_idx;
    t->slot = NULL;
    t->stats = NULL;
    t->sample_state = FB_SAMPLE_IDLE;
    t->sample_probe = 0;
    /* From now on this thread's frees of its old objects are remote frees,
     * and its allocations go to jemalloc (glibc frees and allocates a
     * little after key destructors have run). */
    slot_give_back(s, idx, 0);
}

void fb_epoch_fork_prepare(void)
{
    pthread_mutex_lock(&fb_slot_lock);
}

void fb_epoch_fork_parent(void)
{
    pthread_mutex_unlock(&fb_slot_lock);
}

/* In the child only the forking thread exists: every other owned slot is
 * given back as if its thread had exited.  Their threads may have been
 * inside malloc, so their current epochs are marked for a full clear. */
void fb_epoch_fork_child(void)
{
    pthread_mutex_init(&fb_slot_lock, NULL);
    if (fb_g.size == 0)
        return;
    struct fb_tls *t = &fb_t;
    uint32_t used = atomic_load_explicit(&fb_slots_used, memory_order_relaxed);
    for (uint32_t idx = 0; idx < used; idx++) {
        struct fb_slot *s = slot_at(idx);
        if (s->state != FB_SLOT_OWNED)
            continue;
        if (t->state == FB_T_ACTIVE && idx == t->slot_idx)
            continue;
        if (s->cur != FB_NO_EPOCH) {
            slot_flags(s)[s->cur] |= FB_EP_USED | FB_EP_DIRTY;
            s->cur = FB_NO_EPOCH;
        }
        s->state = FB_SLOT_FREE;
        s->next_free = fb_free_top;
        fb_free_top = idx + 1;
    }
}

/* ---------------------------------------------------------------------- */
/* Frees and lookups                                                       */

/* Validates p as a live buffer object; returns its map byte's address or
 * NULL (reported) if p is not one.  Reading the map is safe only for
 * committed slots. */
static uint8_t *map_entry(const void *p)
{
    uintptr_t off = (uintptr_t)p - fb_g.base;
    if (off & (FB_ALIGN - 1))
        return NULL;
    uint32_t idx = (uint32_t)(off >> fb_g.slot_shift);
    if (idx >= atomic_load_explicit(&fb_slots_used, memory_order_acquire))
        return NULL;
    return &fb_g.map[off >> FB_GRANULE_SHIFT];
}

/* The slot and epoch a region pointer belongs to. */
static void epoch_of(const void *p, uint32_t *slot, uint32_t *epoch)
{
    uintptr_t off = (uintptr_t)p - fb_g.base;
    *slot = (uint32_t)(off >> fb_g.slot_shift);
    *epoch = (uint32_t)((off & (fb_g.slot_size - 1)) >> fb_g.epoch_shift);
}

enum fb_epoch_freed fb_epoch_free_block(void *ptr, size_t *usable)
{
    struct fb_tls *t = &fb_t;
    uint8_t *m = map_entry(ptr);
    if (!m)
        return FB_EF_INVALID;
    uint32_t idx, e;
    epoch_of(ptr, &idx, &e);
    if (t->state == FB_T_ACTIVE && idx == t->slot_idx) {
        /* Our own object, reaching here because the fast free's gate is
         * shut or because the fast check refused it (a bad free). */
        unsigned v = *m;
        if (v - 1u >= FB_MAX_GRANULES)
            return v == FB_FREED ? FB_EF_DOUBLE : FB_EF_INVALID;
        *m = FB_FREED;
        epoch_live(t->slot, e)[0]--;
        *usable = (size_t)v << FB_GRANULE_SHIFT;
        return FB_EF_OWN;
    }
    /* Another thread's object (or a slot given back): mark it freed with
     * a compare-and-swap on its own map byte, then count it remotely. */
    long u = fb_epoch_mark_freed(ptr);
    if (u <= 0)
        return u == 0 ? FB_EF_DOUBLE : FB_EF_INVALID;
    fb_epoch_release_marked(ptr);
    *usable = (size_t)u;
    return FB_EF_REMOTE;
}

/* For checking (check.c): marks the live buffer block p freed in the map
 * without counting it in its epoch yet.  Returns its usable size, 0 if p
 * was already freed (a stale mark), -1 if p is no block start. */
long fb_epoch_mark_freed(void *p)
{
    uint8_t *m = map_entry(p);
    if (!m)
        return -1;
    _Atomic uint8_t *am = (_Atomic uint8_t *)m;
    uint8_t v = atomic_load_explicit(am, memory_order_relaxed);
    do {
        if ((unsigned)v - 1u >= FB_MAX_GRANULES)
            return v == FB_FREED ? 0 : -1;
    } while (!atomic_compare_exchange_weak_explicit(
        am, &v, (uint8_t)FB_FREED, memory_order_relaxed, memory_order_relaxed));
    return (long)v << FB_GRANULE_SHIFT;
}

/* The deferred count of a block marked by fb_epoch_mark_freed: any thread
 * may do it, through the remote counter. */
void fb_epoch_release_marked(void *p)
{
    uint32_t idx, e;
    epoch_of(p, &idx, &e);
    atomic_fetch_add_explicit(&slot_rfree(slot_at(idx))[e], 1, memory_order_release);
}

/* The live buffer block containing p (p inside it, not at its start), or
 * NULL: the start is the nearest earlier live map entry that covers p. */
void *fb_epoch_block_containing(const void *p, size_t *usable)
{
    uintptr_t off = (uintptr_t)p - fb_g.base;
    if (off >= fb_g.size ||
        (off >> fb_g.slot_shift) >= atomic_load_explicit(&fb_slots_used, memory_order_acquire))
        return NULL;
    uintptr_t g = off >> FB_GRANULE_SHIFT;
    uintptr_t epoch_g = (off & ~(uintptr_t)(fb_g.epoch_size - 1)) >> FB_GRANULE_SHIFT;
    for (uintptr_t k = g; k + FB_MAX_GRANULES >= g && k >= epoch_g; k--) {
        unsigned v = fb_g.map[k];
        if (v - 1u < FB_MAX_GRANULES) {
            if (k + v > g) {
                *usable = (size_t)v << FB_GRANULE_SHIFT;
                return (void *)(fb_g.base + (k << FB_GRANULE_SHIFT));
            }
            return NULL;
        }
        if (k == 0)
            break;
    }
    return NULL;
}

size_t fb_epoch_usable(const void *p)
{
    uint8_t *m = map_entry(p);
    if (!m)
        return 0;
    unsigned v = atomic_load_explicit((_Atomic uint8_t *)m, memory_order_relaxed);
    return v - 1u < FB_MAX_GRANULES ? (size_t)v << FB_GRANULE_SHIFT : 0;
}

int fb_epoch_is_freed(const void *p)
{
    uint8_t *m = map_entry(p);
    return m && *m == FB_FREED;
}

/*
 * In place: a shrink moves the block's end down (the granules after it
 * stay unused until the epoch resets), so its usable size stays within a
 * granule of the request, as for any new block.  Growth is only for the
 * last object of the current epoch, and only if p lies in that epoch: a
 * block that ends exactly where an epoch starts (the bump pointer at the
 * start of a fresh epoch) belongs to the epoch before, and growing it
 * would put bytes in an epoch that does not count it, to be handed out
 * again when that epoch resets.
 */
int fb_epoch_resize(void *p, size_t usable, size_t n)
{
    struct fb_tls *t = &fb_t;
    size_t sz = (n + 15) & ~(size_t)15;
    uint8_t *m = &fb_g.map[((uintptr_t)p - fb_g.base) >> FB_GRANULE_SHIFT];
    if (n <= usable) {
        if (sz < usable)
            *m = (uint8_t)(sz >> FB_GRANULE_SHIFT);
        return 1;
    }
    uintptr_t a = (uintptr_t)p;
    /* a in the current epoch (whose last byte is limit - 1: the limit is
     * the epoch's end, or a survivor's start in it), ending at the bump. */
    if (t->state == FB_T_ACTIVE && t->limit && a + usable == t->bump &&
        a < t->limit && ((a ^ (t->limit - 1)) >> fb_g.epoch_shift) == 0 &&
        n <= fb_g.max_small && a + sz <= t->limit) {
        t->bump = a + sz;
        *m = (uint8_t)(sz >> FB_GRANULE_SHIFT);
        return 1;
    }
    return 0;
}

uint32_t fb_epoch_slots_used(void)
{
    return atomic_load_explicit(&fb_slots_used, memory_order_acquire);
}

uint64_t fb_epoch_warm_bytes(void)
{
    uint64_t epochs = 0;
    uint32_t used = fb_g.size ? atomic_load_explicit(&fb_slots_used, memory_order_acquire) : 0;
    for (uint32_t idx = 0; idx < used; idx++)
        epochs += __atomic_load_n(&slot_at(idx)->warm, __ATOMIC_RELAXED);
    return epochs * fb_g.epoch_size;
}

uint64_t fb_epoch_count_pinned(void)
{
    uint64_t pinned = 0;
    if (fb_g.size == 0)
        return 0;
    uint32_t used = atomic_load_explicit(&fb_slots_used, memory_order_acquire);
    for (uint32_t idx = 0; idx < used; idx++) {
        struct fb_slot *s = slot_at(idx);
        for (uint32_t e = 0; e < fb_g.epochs; e++)
            if (!epoch_empty(s, e))
                pinned++;
    }
    return pinned;
}

/* Sums the per-slot statistics blocks into out (racy reads of other
 * threads' counters: a snapshot, not a transaction). */
void fb_epoch_sum_stats(struct fb_stats_block *out)
{
    if (fb_g.size == 0)
        return;
    uint32_t used = atomic_load_explicit(&fb_slots_used, memory_order_acquire);
    for (uint32_t idx = 0; idx < used; idx++) {
        const struct fb_stats_block *b = &slot_at(idx)->stats;
        const uint64_t *src = (const uint64_t *)b;
        uint64_t *dst = (uint64_t *)out;
        for (size_t i = 0; i < sizeof *b / sizeof(uint64_t); i++)
            dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}
