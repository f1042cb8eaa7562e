/*
 * Lifetime routing: the per-site verdicts and how they are learned; see
 * route.h.  Every update here is on a slow path (a judged epoch, one in
 * FB_ROUTE_SAMPLE); threads share the tables with relaxed atomics: a lost
 * increment only delays a verdict.
 */
#include "route.h"
#include "platform.h"

#include <stdatomic.h>
#include <string.h>

FB_BIG_BSS uint8_t fb_route_long[FB_ROUTE_SITES];
FB_BIG_BSS uint8_t fb_route_long2[FB_ROUTE_SITES];
FB_BIG_BSS uint8_t fb_route_cand[FB_ROUTE_SITES];
FB_BIG_BSS uint16_t fb_route_parent[FB_ROUTE_SITES];
FB_BIG_BSS uintptr_t fb_route_ra[FB_ROUTE_SITES];
FB_BIG_BSS struct fb_route_wrap fb_route_wraps[FB_ROUTE_WRAPS];
int fb_route_on, fb_route_keep_ra;

/* Per site, one word loaded and stored whole: sampled epochs it had
 * objects in (bits 0-7) and those it pinned, a survivor at judgement
 * (bits 8-15), halved together at FB_ROUTE_WINDOW; for a long site, how
 * many probes in a row saw every one of its objects die (16-23); sampled
 * epochs in which its own objects both survived and died (24-30); and
 * FB_ROUTE_NOWRAP (31). */
FB_BIG_BSS static uint32_t scores[FB_ROUTE_SITES];
#define FB_ROUTE_NOWRAP 0x80000000u   /* in scores: never a wrapper */
/* The same for context keys (bits 24-31 unused). */
FB_BIG_BSS static uint32_t scores2[FB_ROUTE_SITES];

#define FB_ROUTE_WINDOW 16

static _Atomic uint64_t judged, n_long, learned, forgotten, mispredicted;
static _Atomic uint64_t n_wrap, n_long2, n_cand;
/* Probes: a sampled epoch that lets long sites in, every probe_every-th
 * sample; doubles while probes confirm, up to FB_ROUTE_PROBE_MAX (so a
 * phase change is noticed within that many samples), back to 4 on a
 * revision. */
#define FB_ROUTE_PROBE_MAX 16u
static _Atomic uint32_t samples, probe_every = 4;

int fb_route_init(int on, int keep_ra)
{
    fb_route_on = on;
    fb_route_keep_ra = on && keep_ra;
    return on;
}

void fb_route_prefault(void)
{
    /* The fast path reads fb_route_long at every malloc call site's key
     * (and, in recorded epochs, fb_route_cand): scattered over their 16
     * pages each, all zero until a verdict, every page first read took a
     * page fault of its own (4 in sh -c exit, 16 to 21 in larger
     * programs).  One system call maps them all to the zero page. */
    fb_plat_prefault(fb_route_long, sizeof fb_route_long);
    if (fb_route_on)
        fb_plat_prefault(fb_route_cand, sizeof fb_route_cand);
}

int fb_route_probe_due(void)
{
    uint32_t s = atomic_fetch_add_explicit(&samples, 1, memory_order_relaxed);
    uint32_t every = atomic_load_explicit(&probe_every, memory_order_relaxed);
    return (atomic_load_explicit(&n_long, memory_order_relaxed) ||
            atomic_load_explicit(&n_long2, memory_order_relaxed)) && s % every == 0;
}

/* A verdict in table (fb_route_long, or fb_route_long2 for context keys)
 * at k: FB_ROUTE_SHORT or FB_ROUTE_LONG, counted in *n_in; a wrapper
 * stays one (its callers have verdicts of their own). */
static void set_verdict(uint8_t *table, _Atomic uint64_t *n_in, unsigned k, int is_long)
{
    uint8_t was = __atomic_load_n(&table[k], __ATOMIC_RELAXED);
    if (was == is_long || was == FB_ROUTE_WRAP)
        return;
    __atomic_store_n(&table[k], (uint8_t)is_long, __ATOMIC_RELAXED);
    if (is_long) {
        atomic_fetch_add_explicit(n_in, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&learned, 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(n_in, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&forgotten, 1, memory_order_relaxed);
        /* A revision: look again soon. */
        atomic_store_explicit(&probe_every, 4, memory_order_relaxed);
    }
}

static void verdict(unsigned site, int is_long)
{
    set_verdict(fb_route_long, &n_long, site, is_long);
}

static void verdict2(unsigned key, int is_long)
{
    set_verdict(fb_route_long2, &n_long2, key, is_long);
}

/* A site whose own objects both survive and die: route it by its caller. */
static void make_wrapper(unsigned site)
{
    uint8_t was = __atomic_load_n(&fb_route_long[site], __ATOMIC_RELAXED);
    if (was == FB_ROUTE_WRAP || !__atomic_compare_exchange_n(&fb_route_long[site], &was,
                                                             FB_ROUTE_WRAP, 0, __ATOMIC_RELAXED,
                                                             __ATOMIC_RELAXED))
        return;
    if (was == FB_ROUTE_LONG)
        atomic_fetch_sub_explicit(&n_long, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_wrap, 1, memory_order_relaxed);
}

/* The wrapper at site goes back to being a site (is_long: its verdict),
 * and is never made a wrapper again. */
static void unwrap(unsigned site, int is_long)
{
    __atomic_fetch_or(&scores[site], FB_ROUTE_NOWRAP, __ATOMIC_RELAXED);
    __atomic_store_n(&fb_route_cand[site], 0, __ATOMIC_RELAXED);
    /* Threads may review the same wrapper at once: one of them unwraps. */
    uint8_t wrap = FB_ROUTE_WRAP;
    if (!__atomic_compare_exchange_n(&fb_route_long[site], &wrap, FB_ROUTE_SHORT, 0,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    atomic_fetch_sub_explicit(&n_wrap, 1, memory_order_relaxed);
    if (is_long)
        verdict(site, 1);
}

struct fb_route_wrap *fb_route_wrap_learn(uintptr_t ra, int32_t cfa_off)
{
    /* A frame over 4 KiB around a call of malloc is rare, and reading
     * less far above the caller's stack pointer stays inside the stack
     * even if the entry outlived its code (a dlclose()d wrapper). */
    uint64_t v = cfa_off >= 8 && cfa_off <= 4096 ? (uint64_t)cfa_off / 8 : 0;
    if (!v) {
        unwrap(fb_route_site(ra), 0);    /* no caller to be found */
        return NULL;
    }
    struct fb_route_wrap *w = &fb_route_wraps[(ra >> 4) & (FB_ROUTE_WRAPS - 1)];
    w->seen = w->away = 0;
    __atomic_store_n(&w->id, (uint64_t)ra << 16 | v, __ATOMIC_RELAXED);
    return w;
}

void fb_route_wrap_review(uintptr_t ra, struct fb_route_wrap *w)
{
    uint32_t seen = w->seen, away = w->away;
    w->seen = w->away = 0;
    if (away * 64 < seen)
        unwrap(fb_route_site(ra), 0);
    else if (away * 64 > seen * 63)
        unwrap(fb_route_site(ra), 1);
}

int fb_route_judge(const uint32_t *list, size_t n, const uint8_t *map, int all_died,
                   int probe, int full, int sparse)
{
    /* Keys of this epoch (sites and context keys), each counted once:
     * survived or not.  A small open-addressed set on the stack: an
     * epoch's objects come from few keys; objects of keys beyond the
     * set's size are not counted. */
    enum { SET = 64 };
    uint32_t key[SET];                /* key + 1, 0 = empty */
    uint16_t objs[SET], alive[SET];
    memset(key, 0, sizeof key);
    int any_long_confirmed = 0, any_revised = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = (list[i] & (0xffffu | FB_ROUTE_CTX)) + 1;
        unsigned v = __atomic_load_n(&map[fb_route_entry_granule(list[i])], __ATOMIC_RELAXED);
        int live = !all_died && v - 1u < 254u;
        unsigned h = ((s ^ (s >> 16)) * 2654435761u) >> 26;     /* 6 bits */
        for (unsigned k = 0; k < SET; k++, h = (h + 1) & (SET - 1)) {
            if (key[h] == s) {
                objs[h]++;
                alive[h] += (uint16_t)live;
                break;
            }
            if (!key[h]) {
                key[h] = s;
                objs[h] = 1;
                alive[h] = (uint16_t)live;
                break;
            }
        }
    }
    /* Routing a key away only helps other keys: the epoch counts as
     * pinned against others when at least a quarter of its objects come
     * from keys none of whose objects survived (they would have let it
     * reset).  An epoch whose dead objects are its survivors' own
     * siblings (one site of random lifetimes, a wrapper used for
     * everything) teaches nothing about sending a key to jemalloc, which
     * would empty the buffer for nobody's gain; it says instead that the
     * site may be a wrapper, to be told apart by its callers. */
    unsigned total = 0, dead_clean = 0;
    for (unsigned h = 0; h < SET; h++) {
        total += key[h] ? objs[h] : 0;
        dead_clean += key[h] && !alive[h] ? objs[h] : 0;
    }
    /* A sparse epoch is reused around its survivors: nobody was kept
     * out, whatever their sites (bignum's results: one in 64 kept). */
    int against_others = !sparse && dead_clean * 4 >= total;
    for (unsigned h = 0; h < SET; h++) {
        if (!key[h])
            continue;
        int ctx = (key[h] - 1) & FB_ROUTE_CTX;
        unsigned site = (key[h] - 1) & 0xffffu;
        uint32_t *score = ctx ? &scores2[site] : &scores[site];
        int mixed = objs[h] >= 4 && alive[h] && alive[h] < objs[h];
        if (!ctx && fb_route_long[site] == FB_ROUTE_WRAP)
            continue;                /* recorded without its caller */
        if (!against_others)
            alive[h] = 0;
        /* Read for writing (lock xadd of 0): the first judgement of a key on
         * a page of scores takes one page fault, not a read fault (the
         * zero page) and then a write fault (cc1: 23 faults, now 12). */
        uint32_t sc = __atomic_fetch_add(score, 0u, __ATOMIC_RELAXED);
        uint32_t seen = (sc & 0xffu) + 1, pinned = ((sc >> 8) & 0xffu) + (alive[h] != 0);
        uint32_t dead_probes = (sc >> 16) & 0xffu;
        uint32_t nowrap = sc & FB_ROUTE_NOWRAP, mixes = ((sc >> 24) & 0x7fu) + (uint32_t)mixed;
        if (seen >= FB_ROUTE_WINDOW) {
            seen /= 2;
            pinned /= 2;
        }
        int was_long = ctx ? fb_route_long2[site] : fb_route_long[site] == FB_ROUTE_LONG;
        /* A long key whose objects (several) all die in three probes in a
         * row has changed phase: short again, its history forgotten.  One
         * such probe is not enough: a site that keeps one result in 64
         * often has none left in a given epoch.  Probes come sooner while
         * a key is on such a streak. */
        dead_probes = was_long && objs[h] >= 4 && !alive[h] ? dead_probes + 1 : 0;
        if (dead_probes >= 3) {
            seen = 1;
            pinned = 0;
            dead_probes = 0;
        } else if (dead_probes) {
            atomic_store_explicit(&probe_every, 4, memory_order_relaxed);
        }
        if (mixes > 0x7f)
            mixes = 0x7f;
        __atomic_store_n(score, seen | pinned << 8 | dead_probes << 16 |
                                    (ctx ? 0 : mixes << 24 | nowrap), __ATOMIC_RELAXED);
        /* Objects predicted short-lived that pinned the epoch. */
        if (!was_long && alive[h])
            atomic_fetch_add_explicit(&mispredicted, alive[h], memory_order_relaxed);
        /* A site (not a context key: one level only) whose own objects
         * both survived and died in two sampled epochs may be a wrapper:
         * its callers are recorded from now on. */
        if (!ctx && mixes >= 2 && !nowrap && fb_route_on > 1 && !fb_route_cand[site]) {
            __atomic_store_n(&fb_route_cand[site], 1, __ATOMIC_RELAXED);
            atomic_fetch_add_explicit(&n_cand, 1, memory_order_relaxed);
        }
        /* Long: it pinned more than half of its sampled epochs (two at
         * least), or at first sight every one of its objects (two at
         * least) survived: start-up is when a buffer gets pinned for good.
         * While the buffer fills up (full since the last judgement), a
         * quarter is enough: a site whose rare survivors live long (one
         * result kept per 64 temporaries) pins epochs faster than they
         * empty, however seldom.  Short again once it pins under an
         * eighth. */
        int is_long = was_long ? pinned * 8 >= seen
                               : (seen >= 2 && pinned * (full ? 4 : 2) > seen) ||
                                     (seen == 1 && objs[h] >= 2 && alive[h] == objs[h]);
        if (was_long && is_long)
            any_long_confirmed = 1;
        if (was_long && !is_long)
            any_revised = 1;
        if (ctx) {
            verdict2(site, is_long);
            /* A candidate one of whose callers is long: a wrapper. */
            unsigned parent = __atomic_load_n(&fb_route_parent[site], __ATOMIC_RELAXED);
            if (is_long && fb_route_cand[parent] &&
                !(__atomic_load_n(&scores[parent], __ATOMIC_RELAXED) & FB_ROUTE_NOWRAP))
                make_wrapper(parent);
        } else {
            verdict(site, is_long);
        }
    }
    atomic_fetch_add_explicit(&judged, 1, memory_order_relaxed);
    if (probe && any_long_confirmed && !any_revised) {
        uint32_t every = atomic_load_explicit(&probe_every, memory_order_relaxed);
        if (every < FB_ROUTE_PROBE_MAX)
            atomic_store_explicit(&probe_every, every * 2, memory_order_relaxed);
    }
    return against_others;
}

void fb_route_preset(uintptr_t ra)
{
    unsigned site = fb_route_site(ra);
    fb_route_ra[site] = ra;
    __atomic_store_n(&scores[site], 2u | 2u << 8, __ATOMIC_RELAXED);
    verdict(site, 1);
}

int fb_route_persists(unsigned site)
{
    uint32_t sc = __atomic_load_n(&scores[site], __ATOMIC_RELAXED);
    uint32_t seen = sc & 0xffu, pinned = (sc >> 8) & 0xffu;
    return __atomic_load_n(&fb_route_long[site], __ATOMIC_RELAXED) == FB_ROUTE_LONG &&
           !__atomic_load_n(&fb_route_cand[site], __ATOMIC_RELAXED) && pinned * 2 > seen;
}

uint64_t fb_route_progress(void)
{
    return atomic_load_explicit(&learned, memory_order_relaxed) +
           atomic_load_explicit(&n_wrap, memory_order_relaxed) +
           atomic_load_explicit(&n_cand, memory_order_relaxed);
}

uint64_t fb_route_changes(void)
{
    return fb_route_progress() + atomic_load_explicit(&forgotten, memory_order_relaxed);
}

void fb_route_counts(struct fb_route_counts *out)
{
    out->epochs_judged = atomic_load(&judged);
    out->sites_long = atomic_load(&n_long);
    out->learned = atomic_load(&learned);
    out->forgotten = atomic_load(&forgotten);
    out->mispredicted = atomic_load(&mispredicted);
    out->wrappers = atomic_load(&n_wrap);
    out->ctx_long = atomic_load(&n_long2);
}
