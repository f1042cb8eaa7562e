/*
 * The dispatch layer's generic paths: where a request that the inlined
 * fast paths (alloc.h) did not serve goes, and who watches it.
 *
 * Order of the layers on the way down, for malloc:
 *
 *   canary (FBMALLOC_CANARY)   wraps the block in guards, through the
 *        |                     fb_layer_below table below
 *   failure injection          may refuse the request (ENOMEM)
 *   buffers (epoch.c)          small requests of a thread that owns a slot
 *   jemalloc (backend.h)       everything else
 *   observers                  statistics, tracking, the log: every block
 *                              that is handed out, once
 *
 * and for free: canary (checks and unwraps), check (FBMALLOC_CHECK:
 * reports bad frees, quarantines good ones), the observers, then the
 * buffers or jemalloc.  Nothing below this file and init.c (which reads
 * the modes, fb_observe, and sets the buffers' two gates) knows which
 * modes are on.
 */
#include "alloc.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "backend.h"
#include "canary.h"
#include "cfi.h"
#include "check.h"
#include "fail.h"
#include "init.h"
#include "layer.h"
#include "leak.h"
#include "options.h"
#include "route.h"
#include "report.h"
#include "sigpool.h"
#include "stats.h"
#include "trace.h"
#include "track.h"

static void *malloc_raw(size_t n, uintptr_t ra, uintptr_t cfa);
static void *malloc_layer(size_t n);
static void free_raw(void *ptr);
static void *memalign_raw(size_t align, size_t n);
static size_t usable_raw(const void *p);

/* What the canary layer wraps: this file's paths without the canary. */
static const struct fb_layer_below below_canary = {
    malloc_layer, memalign_raw, free_raw, usable_raw,
};

/* A thread's first allocation: initialise the process if it can be,
 * then take a slot.  If initialisation cannot run yet (too early in
 * start-up, or another thread is at it) the thread stays NEW and is
 * served by jemalloc until a later call. */
static FB_COLD void thread_first(struct fb_tls *t)
{
    t->busy = 1;
    if (fb_init()) {
        if (fb_epoch_thread_start())
            fb_stats_event(&fb_stats_g.threads);
        else if (fb_g.size && fb_opt.verbose >= 2)
            fb_report_note("no buffer for a new thread: it uses jemalloc only");
        /* A call at thread exit; may allocate (t->busy is set). */
        fb_init_register_thread();
        t->quick = !fb_observe;
        fb_epoch_je_gate(t);
    }
    t->busy = 0;
}

/* ---------------------------------------------------------------------- */
/* Observers                                                               */

/* The calling thread's counters (its slot's), or NULL for the shared
 * atomic block. */
static struct fb_stats_block *my_stats(void)
{
    return fb_t.stats;
}

/* A new block, for everyone watching: statistics, call-site tracking (and
 * open leak-check scopes), the allocation log. */
static void observe_new(void *p, size_t n, int buffer, size_t usable, uintptr_t ra)
{
    if (fb_stats_on)
        fb_stats_malloc(my_stats(), n, usable, buffer ? FB_ST_FAST : FB_ST_BACKEND);
    uint32_t site = 0;
    if (fb_track_on) {
        site = buffer ? fb_track_buffer(p, n, ra) : fb_track_big(p, n, ra);
        fb_leak_scope_note(p);
    }
    if (fb_trace_on)
        fb_trace_event(FB_TR_MALLOC, p, n, site);
}

static void observe_big(void *p, size_t n, uintptr_t ra)
{
    observe_new(p, n, 0, fb_stats_on ? fb_je_usable(p) : 0, ra);
}

static void observe_big_free(void *p)
{
    if (fb_stats_on)
        fb_stats_free(my_stats(), fb_je_usable(p), FB_ST_BACKEND);
    if (fb_track_on)
        fb_track_big_free(p);
    if (fb_trace_on)
        fb_trace_event(FB_TR_FREE, p, 0, 0);
}

static void observe_buffer_free(void *p, size_t usable, enum fb_epoch_freed how)
{
    if (fb_stats_on)
        fb_stats_free(my_stats(), usable,
                      how == FB_EF_OWN ? FB_ST_FAST : FB_ST_REMOTE);
    if (fb_trace_on)
        fb_trace_event(FB_TR_FREE, p, 0, 0);
}

/* An in-place realloc: the block keeps its address, its request changes. */
static void observe_resize(void *p, size_t n)
{
    uint32_t site = fb_track_on ? fb_track_buffer(p, n, 0) : 0;
    if (fb_trace_on)
        fb_trace_event(FB_TR_REALLOC, p, n, site);
}

/* A bad free or realloc (op): a block freed before (is_double: the map's
 * mark, or jemalloc blocks' freed mark, backend.h), or a pointer that is
 * no block (the program's image, the main stack).  Reported, never passed
 * on (a second free would put a jemalloc block on its lists twice, and
 * jemalloc faults on pointers it never mapped).  NULL with errno EINVAL. */
static FB_COLD void *big_bad(void *ptr, int is_double, const char *op)
{
    fb_check_report(ptr, is_double, op);
    errno = EINVAL;
    return NULL;
}

/* What every jemalloc allocation returns: NULL with ENOMEM, or the block,
 * observed when someone watches. */
static inline void *backend_result(void *p, size_t n, uintptr_t ra)
{
    if (fb_unlikely(!p)) {
        errno = ENOMEM;
        return NULL;
    }
    if (fb_observe)
        observe_big(p, n, ra);
    return p;
}

/* ---------------------------------------------------------------------- */
/* malloc                                                                  */

static FB_NOINLINE void *malloc_generic(size_t n, uintptr_t ra, uintptr_t cfa);

/* Outside handlers again: the jemalloc blocks handlers on this thread
 * freed (sigpool.h), already marked freed. */
static FB_COLD void free_deferred(void)
{
    for (void *p = fb_sigpool_take_deferred(), *next; p; p = next) {
        next = ((void **)p)[1];
        if (fb_observe)
            observe_big_free(p);
        fb_je_release(p);
    }
}

/*
 * A wrapper site's context key (route.h): the wrapper's caller's return
 * address is read from the stack, where the wrapper's CFI rule (found
 * once per wrapper, fb_cfi_rsp_offset) says it is, from cfa: the
 * exported entry's CFA (the stack pointer of the call instruction at
 * ra).  0 when cfa is not known (an entry of ours called malloc's doors)
 * or the frame does not say (the site is then a site again).  *wp: the
 * wrapper's entry, for its trial.
 */
/* The context key of a request of wrapper w (at ra) from the caller
 * whose return address lies at the wrapper's CFA (the exported entry's,
 * cfa, plus the wrapper's offset) less 8. */
static inline uint32_t wrap_caller_key(uintptr_t ra, uintptr_t cfa,
                                       const struct fb_route_wrap *w)
{
    uintptr_t at = cfa + (uintptr_t)fb_route_wrap_off(w) - sizeof(uintptr_t);
    return fb_route_ctx_key(ra, *(const uintptr_t *)at);
}

static inline uint32_t wrap_key(uintptr_t ra, uintptr_t cfa, struct fb_route_wrap **wp)
{
    struct fb_route_wrap *w = fb_route_wrap_of(ra);
    if (fb_unlikely(!w)) {
        if (!cfa || !ra || !(w = fb_route_wrap_learn(ra, fb_cfi_rsp_offset(ra - 1))))
            return 0;
    }
    *wp = w;
    return cfa ? wrap_caller_key(ra, cfa, w) : 0;
}

/* A candidate wrapper's request in a recorded epoch: its context key,
 * whose parent is noted for the judgement; its site if there is none. */
static FB_NOINLINE uint32_t cand_key(uintptr_t ra, uintptr_t cfa, unsigned site)
{
    struct fb_route_wrap *w;
    uint32_t k = wrap_key(ra, cfa, &w);
    if (!k)
        return site;
    __atomic_store_n(&fb_route_parent[k & 0xffffu], (uint16_t)site, __ATOMIC_RELAXED);
    return k;
}

/* route_key's answer for a request that goes to jemalloc (no key is). */
#define FB_AWAY UINT32_MAX

/* The cold part of route_key: a site that is not plainly short. */
static FB_NOINLINE uint32_t route_key_slow(struct fb_tls *t, uintptr_t ra, uintptr_t cfa)
{
    unsigned site = fb_route_site(ra);
    uint8_t v = fb_route_long[site];
    uint32_t key = site;
    /* A candidate wrapper's callers are recorded (route.h). */
    if (fb_route_cand[site] && t->sample_state == FB_SAMPLE_RECORDING && v != FB_ROUTE_WRAP)
        key = cand_key(ra, cfa, site);
    if (v == FB_ROUTE_SHORT || t->state != FB_T_ACTIVE)
        return key;
    if (v == FB_ROUTE_WRAP) {
        /* No key: an entry without the CFA (calloc, realloc: recorded as
         * the site, which the judgement skips), or a wrapper whose caller
         * cannot be found (a site again from now on): to the buffer. */
        struct fb_route_wrap *w;
        uint32_t k = wrap_key(ra, cfa, &w);
        if (!k || !fb_route_long2[k & 0xffffu])
            return k ? k : key;
        key = k;
    }
    if (t->sample_probe & 1)
        return key;
    t->stats->routed_long++;
    return FB_AWAY;
}

/*
 * Where a small request from ra goes: FB_AWAY to jemalloc (a site
 * learned long-lived, or a wrapper's caller learned so), else to the
 * buffer, recorded with the key returned (its site, or its context
 * key).  Every key comes in while the thread records a probe epoch
 * (route.h).
 */
/* A site whose requests go to the buffer, recorded (if at all) as itself:
 * route_key's common case, decided inline. */
static inline int route_plain(const struct fb_tls *t, unsigned site)
{
    return fb_likely(!fb_route_long[site]) &&
           (fb_likely(t->sample_state != FB_SAMPLE_RECORDING) || !fb_route_cand[site]);
}

static inline uint32_t route_key(struct fb_tls *t, uintptr_t ra, uintptr_t cfa)
{
    unsigned site = fb_route_site(ra);
    if (route_plain(t, site))
        return site;
    return route_key_slow(t, ra, cfa);
}

/* A small request in a sampled epoch, with nobody watching: straight to
 * the buffer (which records its key), as malloc_raw would.  Apart from
 * the entry below, so that the entry saves no registers. */
static FB_NOINLINE void *record_alloc(size_t n, uintptr_t ra, uintptr_t cfa, uint32_t key)
{
    if (!fb_t.busy) {
        void *p = fb_epoch_alloc(n ? (n + 15) & ~(size_t)15 : FB_ALIGN, key, ra);
        if (p)
            return p;
    }
    return malloc_generic(n, ra, cfa);
}

/* A small block from the thread's buffer (it owns a slot): bumped as the
 * fast path would unless the epoch is being recorded, else by the epoch
 * layer, which records its key and turns epochs over.  NULL if every
 * epoch is pinned. */
static inline void *buffer_alloc(struct fb_tls *t, size_t sz, uint32_t key, uintptr_t ra)
{
    uintptr_t p = t->sample_state == FB_SAMPLE_RECORDING ? 0 : fb_alloc_bump(t, sz);
    return p ? (void *)p : fb_epoch_alloc(sz, key, ra);
}

/* jemalloc's small block for a quick thread, apart so that the doors
 * reach it by a jump and need no frame. */
static FB_NOINLINE void *je_small(size_t n)
{
    return fb_je_malloc(n);
}

/* A wrapper site's request, sent to the routed door by the fast path
 * (nobody watching, the thread not recording: its size gate is open): to
 * the buffer, bumped here as the fast path would, if the wrapper's caller
 * is short-lived; else to jemalloc.  routed_wrap is the common case (a
 * known wrapper, its caller found, the bump has room, no review due),
 * without a frame; routed_wrap_slow everything, as it was written first. */
static FB_NOINLINE void *routed_wrap_slow(size_t n, uintptr_t ra, uintptr_t cfa)
{
    struct fb_tls *t = &fb_t;
    struct fb_route_wrap *w = NULL;
    uint32_t key = wrap_key(ra, cfa, &w);
    int away = key && fb_route_long2[key & 0xffffu];
    if (w)
        fb_route_wrap_count(ra, w, away);
    if (away) {
        t->stats->routed_long++;
        return fb_je_malloc(n);
    }
    void *p = t->busy ? NULL
                      : buffer_alloc(t, (n + 15) & ~(size_t)15,
                                     key ? key : (uint32_t)fb_route_site(ra), ra);
    return p ? p : fb_je_malloc(n);
}

static FB_NOINLINE void *routed_wrap(size_t n, uintptr_t ra, uintptr_t cfa)
{
    struct fb_tls *t = &fb_t;
    struct fb_route_wrap *w = fb_route_wrap_of(ra);
    if (fb_likely(w != NULL) && fb_likely(cfa != 0) && fb_likely(!t->busy)) {
        uint32_t seen = w->seen + 1;
        if (fb_likely(seen < FB_ROUTE_WRAP_TRIAL)) {
            uint32_t key = wrap_caller_key(ra, cfa, w);
            int away = fb_route_long2[key & 0xffffu] != 0;
            w->seen = seen;          /* fb_route_wrap_count, its review not due */
            w->away += (uint32_t)away;
            if (away) {
                t->stats->routed_long++;
                return je_small(n);
            }
            uintptr_t p = fb_alloc_bump(t, (n + 15) & ~(size_t)15);
            if (fb_likely(p))
                return (void *)p;
        }
    }
    return routed_wrap_slow(n, ra, cfa);
}

/*
 * Entries from the fast path (alloc.h says which door is which).  Kept
 * tiny (no register saves) so that their common cases, a large request
 * or a long-lived site's small one from a thread past start-up with
 * nobody watching, are a call into jemalloc's own malloc (which sets
 * errno) and the store of fb_je_fresh.  Each door's body is written once
 * and compiled twice: with ra given, and as a _tail door that reads ra
 * from its own return address and the exported entry's CFA from its own
 * (the jump kept both).
 */
static FB_NOINLINE void *door_slow(size_t n, uintptr_t ra, uintptr_t cfa);

#define FB_MY_CALLER ((uintptr_t)__builtin_return_address(0))
#define FB_MY_CFA ((uintptr_t)__builtin_dwarf_cfa())

/* tail: a _tail door, whose fallback is a jump to the _tail slow door
 * (so that ra is read only there).  What goes to jemalloc at once (a
 * quick thread's large requests, and all of them while its buffer is
 * full) is decided by one addition: epoch.h's je_open. */
FB_INLINE void *door_big(size_t n, uintptr_t ra, const int tail)
{
    struct fb_tls *t = &fb_t;
    uintptr_t carry;
    if (fb_likely(__builtin_add_overflow(n, t->je_open, &carry))) {
        /* The door opens only while the early arena is closed, for good
         * (fb_epoch_je_gate): straight to jemalloc.  Outside a full
         * buffer's wait the door takes only n > fb_g.big_above >= 15:
         * no rounding for jemalloc. */
        if (fb_likely(n > fb_g.big_above))
            return fb_je_fresh(fb_jemalloc_malloc(n));
        /* A full buffer's wait: the door takes every n >= 1 only while
         * backoff > 0 (fb_epoch_je_gate runs whenever backoff changes).
         * Only small requests count it down, as before the door took
         * them all (fb_epoch_full_skip): counting large ones too ended
         * waits sooner, and the scans that followed moved bignum to a
         * second slot (+1 MiB of RSS).  The wait ends with a request
         * that rescans the buffer (door_slow). */
        if (fb_epoch_wait_tick(t))
            return fb_je_malloc_open(n);
    }
    return tail ? fb_alloc_malloc_slow_tail(n) : door_slow(n, ra, 0);
}

FB_INLINE void *door_routed(size_t n, uintptr_t ra, const int tail)
{
    struct fb_tls *t = &fb_t;
    /* The size gate passed, so t is an active slot owner (epoch.h). */
    if (fb_likely(t->quick) && !(t->sample_probe & 1)) {
        if (tail)
            ra = FB_MY_CALLER;
        if (fb_likely(fb_route_long[fb_route_site(ra)] != FB_ROUTE_WRAP)) {
            t->stats->routed_long++;
            return fb_je_malloc(n);
        }
        return routed_wrap(n, ra, tail ? FB_MY_CFA : 0);
    }
    return tail ? fb_alloc_malloc_slow_tail(n) : door_slow(n, ra, 0);
}

/*
 * With one observer the only mode on (fb_observe_one: leak tracking, or
 * the statistics), every request comes this way (the malloc gate is
 * shut), and was given to the generic path: about 130 instructions
 * before the observer's own work.  Here a small one is bumped as the fast
 * path would and shown to the observer; the rest (jemalloc's requests, a
 * handler, a snapshot due, a thread without a slot, our own requests)
 * goes the generic way, which does the same.
 */
static FB_NOINLINE void *malloc_observed(size_t n, uintptr_t ra, uintptr_t cfa)
{
    struct fb_tls *t = &fb_t;
    size_t padded = fb_track_pad(n);
    uint32_t key;
    if (fb_likely(!fb_sigpool_t.any && !fb_leak_snapshot_pending && !t->busy &&
                  t->state == FB_T_ACTIVE && padded <= fb_g.max_small)) {
        if ((key = route_key(t, ra, cfa)) != FB_AWAY) {
            size_t sz = padded ? (padded + 15) & ~(size_t)15 : FB_ALIGN;   /* malloc(0) */
            void *p = buffer_alloc(t, sz, key, ra);
            if (p) {
                if (fb_observe_one == FB_OBSERVE_TRACK) {
                    fb_track_buffer(p, n, ra);
                    fb_leak_scope_note(p);
                } else {
                    fb_stats_malloc(t->stats, n, sz, FB_ST_FAST);
                }
                return p;
            }
        }
        /* Learned long, or every epoch pinned: jemalloc's, as malloc_raw
         * would do, without going there (route_key and fb_epoch_alloc
         * counted the request, and the wait spent it, once already). */
        return backend_result(fb_je_malloc(padded), n, ra);
    }
    return malloc_generic(n, ra, cfa);
}

/* door_slow for a site not plainly short (route_key's cold part). */
static FB_NOINLINE void *door_slow_routed(size_t n, uintptr_t ra, uintptr_t cfa)
{
    uint32_t key = route_key_slow(&fb_t, ra, cfa);
    if (key == FB_AWAY)
        return je_small(n);
    if (fb_t.sample_state == FB_SAMPLE_RECORDING)
        return record_alloc(n, ra, cfa, key);
    return malloc_generic(n, ra, cfa);
}

static FB_NOINLINE void *door_slow(size_t n, uintptr_t ra, uintptr_t cfa)
{
    struct fb_tls *t = &fb_t;
    if (fb_likely(t->quick)) {
        /* A quick thread's door is shut only while the early arena was
         * open (fb_epoch_je_gate): open it once the arena has closed. */
        if (fb_unlikely(!t->je_open) && !fb_early_on())
            fb_epoch_je_gate(t);
        if (n > fb_g.max_small || fb_epoch_full_skip(t))
            return je_small(n);
        unsigned site = fb_route_site(ra);
        if (fb_unlikely(!route_plain(t, site)))
            return door_slow_routed(n, ra, cfa);
        if (t->sample_state == FB_SAMPLE_RECORDING)
            return record_alloc(n, ra, cfa, site);
    } else if (fb_observe_one) {
        return malloc_observed(n, ra, cfa);
    }
    return malloc_generic(n, ra, cfa);
}

void *fb_alloc_malloc_big(size_t n, uintptr_t ra) { return door_big(n, ra, 0); }
void *fb_alloc_malloc_routed(size_t n, uintptr_t ra) { return door_routed(n, ra, 0); }
void *fb_alloc_malloc_slow(size_t n, uintptr_t ra) { return door_slow(n, ra, 0); }
void *fb_alloc_malloc_big_tail(size_t n) { return door_big(n, 0, 1); }
void *fb_alloc_malloc_routed_tail(size_t n) { return door_routed(n, 0, 1); }
void *fb_alloc_malloc_slow_tail(size_t n) { return door_slow(n, FB_MY_CALLER, FB_MY_CFA); }

static FB_NOINLINE void *malloc_generic(size_t n, uintptr_t ra, uintptr_t cfa)
{
    /* Inside a signal handler (sigpool.h: its wrapper shut the fast path
     * and the quick entry, so every request comes here). */
    if (fb_unlikely(fb_sigpool_t.any)) {
        if (fb_sigpool_t.depth && fb_sigpool_inside() && fb_sigpool_serves(n))
            return fb_sigpool_malloc(n);
        if (fb_sigpool_t.pending)
            free_deferred();
    }
    if (fb_canary_on && !fb_t.busy)
        return fb_canary_alloc(&below_canary, FB_ALIGN, n, 0);
    return malloc_raw(n, ra, cfa);
}

/* The canary layer's inner blocks: no call site of the program's. */
static void *malloc_layer(size_t n)
{
    return malloc_raw(n, 0, 0);
}

/* The generic allocation, without the canary layer. */
static void *malloc_raw(size_t n, uintptr_t ra, uintptr_t cfa)
{
    struct fb_tls *t = &fb_t;
    if (fb_unlikely(fb_leak_snapshot_pending) && !t->busy)
        fb_leak_snapshot_pending_run();
    if (fb_fail_reject(n))
        return NULL;
    if (fb_unlikely(t->state == FB_T_NEW) && !t->busy)
        thread_first(t);
    size_t padded = fb_track_pad(n);       /* n, or n + 1: track.h */
    uint32_t key;
    if (t->state == FB_T_ACTIVE && padded <= fb_g.max_small && !t->busy &&
        (key = route_key(t, ra, cfa)) != FB_AWAY) {
        size_t sz = padded ? (padded + 15) & ~(size_t)15 : FB_ALIGN;
        void *p = buffer_alloc(t, sz, key, ra);
        if (p) {
            if (fb_observe)
                observe_new(p, n, 1, sz, ra);
            return p;
        }
    }
    return backend_result(fb_je_malloc(padded), n, ra);
}

/* A thread's first allocation may be an aligned one or a large calloc,
 * which do not pass malloc_raw: it must be set up (and, when tracking,
 * registered: otherwise the exit checks neither stop it nor scan its
 * stack, and its blocks look leaked) all the same. */
static inline void thread_seen(struct fb_tls *t)
{
    if (fb_unlikely(t->state == FB_T_NEW) && !t->busy)
        thread_first(t);
}

static void *memalign_raw(size_t align, size_t n)
{
    thread_seen(&fb_t);
    return backend_result(fb_je_memalign(align, fb_track_pad(n)), n, 0);
}

static size_t usable_raw(const void *p)
{
    return fb_epoch_owns(p) ? fb_epoch_usable(p) : fb_je_usable(p);
}

/* ---------------------------------------------------------------------- */
/* free                                                                    */

static FB_NOINLINE void free_generic(void *ptr);

/* A bad free of a jemalloc-side pointer (fb_je_take's verdict), out of
 * the entry below so that the entry needs no frame. */
static FB_NOINLINE FB_COLD void free_bad(void *ptr, int bad)
{
    int saved = errno;
    big_bad(ptr, bad == 1 && fb_je_was_freed(ptr), "free");
    errno = saved;
}

/* A pointer outside the granules wholly jemalloc's: an edge granule's
 * block, or no block at all (backend.h); apart, so that the entry below
 * needs no frame for the exact check. */
static FB_NOINLINE FB_COLD void free_outside(void *ptr)
{
    int bad = fb_je_take(ptr);
    if (fb_unlikely(bad))
        free_bad(ptr, bad);
    else
        fb_je_release(ptr);
}

/* A block of the signal-handler pool (sigpool.h), from any thread, in or
 * out of a handler: no debugging layer or observer ever saw it.  And,
 * inside a handler, every other free: buffer blocks go the generic way
 * (the handler's thread counts them as remote frees, with atomics);
 * jemalloc blocks are marked freed now and freed by jemalloc once the
 * thread is out of its handlers.  The debugging layers' blocks go
 * through those layers (not async-signal-safe: README). */
static FB_COLD void caught_free(void *ptr)
{
    int bad;
    if (fb_sigpool_owns(ptr))
        bad = fb_sigpool_free(ptr);
    else if (!ptr)
        return;
    else if (fb_epoch_owns(ptr) || fb_canary_on || fb_check_on) {
        free_generic(ptr);
        return;
    } else if (!(bad = fb_je_take(ptr))) {
        fb_sigpool_defer(ptr);
        return;
    }
    if (fb_unlikely(bad))
        free_bad(ptr, bad);
}

/* What free (alloc.h) does not finish itself: buffer blocks of other
 * threads (a producer's, freed by its consumer) and large ones, NULL,
 * jemalloc blocks outside the start shadow's window (all of them under
 * ulimit -v: backend.h), bad pointers, every free while a mode observes,
 * and inside signal handlers. */
void fb_alloc_free_other(void *ptr)
{
    if (fb_epoch_owns(ptr)) {
        free_generic(ptr);
        return;
    }
    if (fb_unlikely(fb_sigpool_catches(ptr))) {  /* sigpool.h */
        caught_free(ptr);
        return;
    }
    if (fb_likely(!fb_observe)) {
        if (fb_likely(ptr != NULL))
            free_outside(ptr);
        return;
    }
    free_generic(ptr);
}

FB_COLD void fb_alloc_free_twice(void *ptr)
{
    free_bad(ptr, 1);
}

static FB_NOINLINE void free_generic(void *ptr)
{
    if (fb_canary_on && ptr && !fb_t.busy) {
        fb_canary_free(&below_canary, ptr);
        return;
    }
    free_raw(ptr);
}

/* The generic free, without the canary layer. */
static void free_raw(void *ptr)
{
    if (!ptr)
        return;
    if (fb_check_on && !fb_t.busy) {
        fb_check_free(ptr);
        return;
    }
    if (!fb_epoch_owns(ptr)) {
        int saved = errno, foreign = fb_je_foreign(ptr);
        if (fb_unlikely(foreign || !fb_je_live(ptr))) {
            big_bad(ptr, !foreign && fb_je_was_freed(ptr), "free");
        } else {
            if (fb_observe)
                observe_big_free(ptr);
            fb_je_free(ptr);
        }
        errno = saved;
        return;
    }
    size_t usable = 0;
    enum fb_epoch_freed how = fb_epoch_free_block(ptr, &usable);
    if (how == FB_EF_DOUBLE || how == FB_EF_INVALID) {
        fb_check_report(ptr, how == FB_EF_DOUBLE, "free");
        return;
    }
    observe_buffer_free(ptr, usable, how);
}

/* ---------------------------------------------------------------------- */
/* The rest of the family                                                  */

void *fb_alloc_calloc(size_t n, uintptr_t ra)
{
    /* Buffer memory is recycled, so small blocks are cleared here; large
     * requests go to jemalloc, which knows when its pages are still zero.
     * In a signal handler (sigpool.h) the pool may serve above max_small. */
    if (n <= fb_g.max_small || fb_unlikely(fb_sigpool_t.depth)) {
        void *p = fb_alloc_malloc(n, ra);
        return p ? memset(p, 0, n) : NULL;
    }
    if (fb_unlikely(fb_canary_on) && !fb_t.busy)
        return fb_canary_alloc(&below_canary, FB_ALIGN, n, 1);
    if (fb_fail_reject(n))
        return NULL;
    thread_seen(&fb_t);
    return backend_result(fb_je_calloc(fb_track_pad(n)), n, ra);
}

/* realloc of a buffer object p (n > 0).  On NULL, p is untouched. */
static void *realloc_buffer(void *p, size_t n, uintptr_t ra)
{
    size_t usable = fb_epoch_usable(p);
    if (!usable)
        return big_bad(p, fb_epoch_is_freed(p), "realloc");
    if (fb_epoch_resize(p, usable, fb_track_pad(n))) {
        if (fb_stats_on)              /* its free will count the new size */
            fb_stats_resize(my_stats(), usable, fb_epoch_usable(p));
        if (fb_track_on || fb_trace_on)
            observe_resize(p, n);
        return p;
    }
    void *q = fb_alloc_malloc(n, ra);
    if (!q)
        return NULL;                 /* errno set; p untouched */
    memcpy(q, p, usable);
    fb_alloc_free(p);
    return q;
}

/* realloc of a pool block (sigpool.h), in or out of a handler, and
 * inside a handler of any block: in place while it fits, else moved to
 * wherever a malloc of the caller goes now (the pool, in a handler). */
static FB_COLD void *realloc_caught(void *p, size_t n, uintptr_t ra)
{
    size_t usable;
    if (!p)
        return fb_alloc_malloc(n, ra);
    if (fb_sigpool_owns(p))
        usable = fb_sigpool_usable(p);
    else if (fb_epoch_owns(p))
        usable = fb_epoch_usable(p);
    else if (fb_je_foreign(p) || !fb_je_live(p))
        return big_bad(p, !fb_je_foreign(p) && fb_je_was_freed(p), "realloc");
    else
        usable = fb_je_usable(p);
    if (!usable)
        return big_bad(p, 0, "realloc");
    if (n == 0) {
        fb_alloc_free(p);
        return NULL;
    }
    if (n <= usable)
        return p;
    void *q = fb_alloc_malloc(n, ra);
    if (q) {
        memcpy(q, p, usable);
        fb_alloc_free(p);
    }
    return q;
}

void *fb_alloc_realloc(void *p, size_t n, uintptr_t ra)
{
    if (fb_unlikely(fb_sigpool_catches(p)) &&
        (fb_sigpool_owns(p) || !(fb_canary_on || fb_check_on)))
        return realloc_caught(p, n, ra);
    if (fb_unlikely(fb_canary_on) && !fb_t.busy)
        return fb_canary_realloc(&below_canary, p, n);
    if (!p)
        return fb_alloc_malloc(n, ra);
    if (n == 0) {
        fb_alloc_free(p);            /* glibc: realloc(p, 0) frees */
        return NULL;
    }
    if (fb_epoch_owns(p))
        return realloc_buffer(p, n, ra);
    if (fb_unlikely(fb_je_foreign(p)))
        return big_bad(p, 0, "realloc");
    if (fb_unlikely(!fb_je_live(p)))
        return big_bad(p, fb_je_was_freed(p), "realloc");
    /* Our own reallocs (libdw's, while a report is written) are not the
     * program's: never checked. */
    if (fb_unlikely(fb_check_on) && !fb_t.busy && fb_check_realloc(p) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (fb_fail_reject(n))
        return NULL;
    /* jemalloc may move the block: account the old one as freed and the
     * result as a new allocation. */
    if (fb_observe)
        observe_big_free(p);
    void *q = fb_je_realloc(p, fb_track_pad(n));
    if (fb_unlikely(!q)) {
        if (fb_observe)                  /* still there, unchanged */
            observe_big(p, fb_je_usable(p), ra);
        errno = ENOMEM;
        return NULL;
    }
    if (fb_observe)
        observe_big(q, n, ra);
    return q;
}

void *fb_alloc_aligned(size_t align, size_t n)
{
    if (align <= FB_ALIGN)
        return fb_alloc_malloc(n, 0);
    if (fb_unlikely(fb_canary_on) && !fb_t.busy)
        return fb_canary_alloc(&below_canary, align, n, 0);
    if (fb_fail_reject(n))
        return NULL;
    return memalign_raw(align, n);
}

size_t fb_alloc_usable(const void *p)
{
    if (!p)
        return 0;
    if (fb_unlikely(fb_sigpool_owns(p)))
        return fb_sigpool_usable(p);
    if (fb_unlikely(fb_canary_on) && !fb_t.busy)
        return fb_canary_usable(&below_canary, p);
    return usable_raw(p);
}
