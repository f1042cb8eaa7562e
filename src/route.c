/*
 * Lifetime routing: the per-site verdicts and how they are learned; see
 * route.h.  Every update here is on a slow path (a judged epoch, one in
 * FB_ROUTE_SAMPLE); threads share the tables with relaxed atomics: a lost
 * increment only delays a verdict.
 */
#include "route.h"

#include <stdatomic.h>
#include <string.h>

uint8_t fb_route_long[FB_ROUTE_SITES];
uintptr_t fb_route_ra[FB_ROUTE_SITES];
int fb_route_on;

/* Per site, one word loaded and stored whole: sampled epochs it had
 * objects in (bits 0-7) and those it pinned, a survivor at judgement
 * (bits 8-15), halved together at FB_ROUTE_WINDOW; and for a long site,
 * how many probes in a row saw every one of its objects die (16-23). */
static uint32_t scores[FB_ROUTE_SITES];

#define FB_ROUTE_WINDOW 16

static _Atomic uint64_t judged, n_long, learned, forgotten, mispredicted;
/* Probes: a sampled epoch that lets long sites in, every probe_every-th
 * sample; doubles while probes confirm, up to FB_ROUTE_PROBE_MAX (so a
 * phase change is noticed within that many samples), back to 4 on a
 * revision. */
#define FB_ROUTE_PROBE_MAX 16u
static _Atomic uint32_t samples, probe_every = 4;

int fb_route_init(int on)
{
    fb_route_on = on;
    return on;
}

int fb_route_probe_due(void)
{
    uint32_t s = atomic_fetch_add_explicit(&samples, 1, memory_order_relaxed);
    uint32_t every = atomic_load_explicit(&probe_every, memory_order_relaxed);
    return atomic_load_explicit(&n_long, memory_order_relaxed) && s % every == 0;
}

static void verdict(unsigned site, int is_long)
{
    uint8_t was = __atomic_load_n(&fb_route_long[site], __ATOMIC_RELAXED);
    if (was == is_long)
        return;
    __atomic_store_n(&fb_route_long[site], (uint8_t)is_long, __ATOMIC_RELAXED);
    if (is_long) {
        atomic_fetch_add_explicit(&n_long, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&learned, 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&n_long, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&forgotten, 1, memory_order_relaxed);
        /* A revision: look again soon. */
        atomic_store_explicit(&probe_every, 4, memory_order_relaxed);
    }
}

int fb_route_judge(const uint32_t *list, size_t n, const uint8_t *map, int all_died,
                   int probe, int full)
{
    /* Sites of this epoch, each counted once: survived or not.  A small
     * open-addressed set on the stack: an epoch's objects come from few
     * sites; objects of sites beyond the set's size are not counted. */
    enum { SET = 64 };
    uint32_t key[SET];                /* site + 1, 0 = empty */
    uint16_t objs[SET], alive[SET];
    memset(key, 0, sizeof key);
    int any_long_confirmed = 0, any_revised = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = (list[i] & 0xffffu) + 1;
        unsigned v = __atomic_load_n(&map[list[i] >> 16], __ATOMIC_RELAXED);
        int live = !all_died && v - 1u < 254u;
        unsigned h = (s * 2654435761u) >> 26;     /* 6 bits */
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
    /* Routing a site away only helps other sites: the epoch counts as
     * pinned against others when at least a quarter of its objects come
     * from sites none of whose objects survived (they would have let it
     * reset).  An epoch whose dead objects are its survivors' own
     * siblings (one site of random lifetimes, a wrapper used for
     * everything) teaches nothing: sending that site to jemalloc would
     * empty the buffer for nobody's gain. */
    unsigned total = 0, dead_clean = 0;
    for (unsigned h = 0; h < SET; h++) {
        total += key[h] ? objs[h] : 0;
        dead_clean += key[h] && !alive[h] ? objs[h] : 0;
    }
    int against_others = dead_clean * 4 >= total;
    for (unsigned h = 0; h < SET; h++) {
        if (!key[h])
            continue;
        if (!against_others)
            alive[h] = 0;
        unsigned site = key[h] - 1;
        uint32_t sc = __atomic_load_n(&scores[site], __ATOMIC_RELAXED);
        uint32_t seen = (sc & 0xffu) + 1, pinned = ((sc >> 8) & 0xffu) + (alive[h] != 0);
        uint32_t dead_probes = (sc >> 16) & 0xffu;
        if (seen >= FB_ROUTE_WINDOW) {
            seen /= 2;
            pinned /= 2;
        }
        int was_long = fb_route_long[site];
        /* A long site whose objects (several) all die in three probes in a
         * row has changed phase: short again, its history forgotten.  One
         * such probe is not enough: a site that keeps one result in 64
         * often has none left in a given epoch.  Probes come sooner while
         * a site is on such a streak. */
        dead_probes = was_long && objs[h] >= 4 && !alive[h] ? dead_probes + 1 : 0;
        if (dead_probes >= 3) {
            seen = 1;
            pinned = 0;
            dead_probes = 0;
        } else if (dead_probes) {
            atomic_store_explicit(&probe_every, 4, memory_order_relaxed);
        }
        __atomic_store_n(&scores[site], seen | pinned << 8 | dead_probes << 16,
                         __ATOMIC_RELAXED);
        /* Objects predicted short-lived that pinned the epoch. */
        if (!was_long && alive[h])
            atomic_fetch_add_explicit(&mispredicted, alive[h], memory_order_relaxed);
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
        verdict(site, is_long);
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

void fb_route_counts(struct fb_route_counts *out)
{
    out->epochs_judged = atomic_load(&judged);
    out->sites_long = atomic_load(&n_long);
    out->learned = atomic_load(&learned);
    out->forgotten = atomic_load(&forgotten);
    out->mispredicted = atomic_load(&mispredicted);
}
