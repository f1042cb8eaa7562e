/*
 * Per-thread fixed buffers recycled in epochs: slow paths, slot
 * ownership, thread exit and fork.  The fast paths are in epoch.h.
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

#include "backend.h"
#include "canary.h"
#include "check.h"
#include "fail.h"
#include "leak.h"
#include "options.h"
#include "platform.h"
#include "report.h"
#include "stats.h"
#include "trace.h"
#include "track.h"

__thread struct fb_tls fb_t __attribute__((tls_model("initial-exec")));
struct fb_geom fb_g;
uintptr_t fb_map_bias;
unsigned fb_epoch_gshift;
int fb_observe;

#define FB_NO_EPOCH UINT32_MAX

/* Epoch flags.  USED: objects were allocated since the last reset (for the
 * statistics).  DIRTY: the granule map may hold live-looking bytes of
 * objects that were never returned (a fork() that cut another thread's
 * malloc short); the next reset clears the map. */
enum { FB_EP_USED = 1, FB_EP_DIRTY = 2 };

enum { FB_SLOT_UNUSED = 0, FB_SLOT_OWNED, FB_SLOT_FREE };

/* The slot table entry.  Followed by three arrays of fb_g.epochs words:
 * live (owner only), rfree (atomic, other threads), flags (FB_EP_*). */
struct fb_slot {
    uint32_t state;
    uint32_t next_free;      /* free stack link: index + 1, 0 = end */
    uint32_t cur;            /* current epoch, FB_NO_EPOCH if none */
    uint32_t pad;
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
static inline _Atomic uint32_t *slot_rfree(struct fb_slot *s)
{
    return (_Atomic uint32_t *)(slot_live(s) + fb_g.epochs);
}
static inline uint32_t *slot_flags(struct fb_slot *s)
{
    return slot_live(s) + 2 * (size_t)fb_g.epochs;
}

struct fb_stats_block *fb_epoch_stats_block(void)
{
    return fb_t.state == FB_T_ACTIVE ? &fb_t.slot->stats : NULL;
}

static inline int epoch_empty(struct fb_slot *s, uint32_t e)
{
    return slot_live(s)[e] ==
           atomic_load_explicit(&slot_rfree(s)[e], memory_order_acquire);
}

/* ---------------------------------------------------------------------- */
/* Initialisation                                                          */

static unsigned log2_exact(uint64_t v)
{
    return (unsigned)__builtin_ctzll(v);
}

int fb_epoch_init(void)
{
    if (fb_opt.buffer_size == 0)
        return 0;                    /* fast path off by request */
    size_t slot_size = fb_opt.buffer_size;
    size_t epoch_size = fb_opt.epoch_size;
    uint32_t epochs = (uint32_t)(slot_size / epoch_size);
    size_t stride = sizeof(struct fb_slot) + 3 * sizeof(uint32_t) * epochs;
    stride = (stride + 63) & ~(size_t)63;   /* a slot per cache line set */

    /* Try the configured region, halving on failure (ulimit -v, strict
     * overcommit) down to a handful of slots; below that the fast path is
     * off and everything goes to jemalloc. */
    for (size_t region = fb_opt.region_size; region >= 4 * slot_size;
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
        fb_map_bias = (uintptr_t)map - (fb_g.base >> FB_GRANULE_SHIFT);
        fb_epoch_gshift = fb_g.epoch_shift - FB_GRANULE_SHIFT;
        fb_g.size = region;          /* last: publishes the region */
        return 1;
    }
    if (fb_opt.verbose >= 1)
        fb_report_note("could not reserve address space for the buffers; "
                       "fast path off, everything goes to jemalloc");
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
static void epoch_reset(struct fb_tls *t, uint32_t e)
{
    struct fb_slot *s = t->slot;
    uintptr_t start = t->slot_base + ((uintptr_t)e << fb_g.epoch_shift);
    uint32_t flags = slot_flags(s)[e];
    if (flags & FB_EP_DIRTY)
        memset(&t->slot_map[(start - t->slot_base) >> FB_GRANULE_SHIFT], 0,
               fb_g.epoch_size >> FB_GRANULE_SHIFT);
    if (flags & FB_EP_USED)
        s->stats.epochs_reset++;
    slot_live(s)[e] = 0;
    atomic_store_explicit(&slot_rfree(s)[e], 0, memory_order_relaxed);
    slot_flags(s)[e] = 0;
    s->cur = e;
    t->bump = start;
    t->limit = start + fb_g.epoch_size;
    t->cur_live = &slot_live(s)[e];
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

/*
 * The current epoch has no room: reuse it if it is empty (the hot cycle of
 * a program that frees what it allocates: no syscall, no metadata to
 * rebuild), else move to the next empty epoch of the slot.  Returns
 * 0 when every epoch is pinned by live objects.
 */
static FB_NOINLINE int epoch_next(struct fb_tls *t)
{
    struct fb_slot *s = t->slot;
    uint32_t cur = s->cur;
    if (cur != FB_NO_EPOCH) {
        uintptr_t start = t->slot_base + ((uintptr_t)cur << fb_g.epoch_shift);
        if (epoch_empty(s, cur)) {
            if (t->bump != start)
                slot_flags(s)[cur] |= FB_EP_USED;
            epoch_reset(t, cur);
            return 1;
        }
        epoch_leave(t);
    } else if (t->backoff) {
        /* Full buffer: do not rescan on every call. */
        t->backoff--;
        return 0;
    }
    uint32_t first = cur == FB_NO_EPOCH ? 0 : cur + 1;
    for (uint32_t i = 0; i < fb_g.epochs; i++) {
        uint32_t e = (first + i) % fb_g.epochs;
        if (e != cur && epoch_empty(s, e)) {
            epoch_reset(t, e);
            t->backoff = 0;
            return 1;
        }
    }
    t->backoff = 256;
    return 0;
}

/* Bump allocation of sz bytes (a multiple of 16, <= max_small) with epoch
 * turnover.  NULL when the buffer is full. */
static void *bump_alloc(struct fb_tls *t, size_t sz)
{
    for (;;) {
        uintptr_t p = t->bump, np = p + sz;
        if (np <= t->limit) {
            t->bump = np;
            t->slot_map[(p - t->slot_base) >> FB_GRANULE_SHIFT] =
                (uint8_t)(sz >> FB_GRANULE_SHIFT);
            (*t->cur_live)++;
            return (void *)p;
        }
        if (!epoch_next(t))
            return NULL;
    }
}

/* ---------------------------------------------------------------------- */
/* Threads                                                                 */

static void set_gates(struct fb_tls *t)
{
    /* With statistics or tracking on, the malloc gate stays shut so every
     * allocation is seen by the slow path, which does the same work.  The
     * owner's free gate only needs shutting for statistics and the log:
     * tracking reads the granule map's "freed" mark, which the fast free
     * writes. */
    int active = t->state == FB_T_ACTIVE;
    t->max_small = active && !fb_observe ? fb_g.max_small : 0;
    t->slot_granules = active && !fb_stats_on && !fb_trace_on && !fb_check_on &&
                               !fb_canary_on
                           ? fb_g.slot_size >> FB_GRANULE_SHIFT
                           : 0;
}

/* Takes a slot for this thread: a given-back one if any, else a new one
 * (committed now).  Called with t->busy set. */
static void thread_start(struct fb_tls *t)
{
    extern int fb_init(void);
    if (!fb_init())
        return;                      /* too early or racing: stay NEW */
    if (fb_g.size == 0) {
        t->state = FB_T_NOSLOT;
        extern void fb_init_register_thread(void);
        fb_init_register_thread();
        return;
    }
    uint32_t idx = UINT32_MAX;
    int fresh = 0;
    pthread_mutex_lock(&fb_slot_lock);
    if (fb_free_top) {
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
            fb_track_commit_slot(data, fb_g.slot_size) != 0) {
            idx = UINT32_MAX;        /* strict overcommit said no */
        } else {
            atomic_store_explicit(&fb_slots_used, idx + 1, memory_order_release);
        }
    }
    if (idx != UINT32_MAX)
        slot_at(idx)->state = FB_SLOT_OWNED;
    pthread_mutex_unlock(&fb_slot_lock);

    extern void fb_init_register_thread(void);
    if (idx == UINT32_MAX) {
        t->state = FB_T_NOSLOT;
        if (fb_opt.verbose >= 2)
            fb_report_note("no buffer for a new thread: it uses jemalloc only");
        fb_init_register_thread();
        return;
    }
    struct fb_slot *s = slot_at(idx);
    if (fresh)
        s->cur = FB_NO_EPOCH;
    t->slot = s;
    t->slot_idx = idx;
    t->slot_base = fb_g.base + ((uintptr_t)idx << fb_g.slot_shift);
    t->slot_map = fb_g.map + ((t->slot_base - fb_g.base) >> FB_GRANULE_SHIFT);
    t->slot_live = slot_live(s);
    t->cur_live = &fb_dummy_live;
    t->bump = t->limit = 0;
    t->backoff = 0;
    t->state = FB_T_ACTIVE;
    fb_stats_event(&fb_stats_g.threads);
    epoch_next(t);
    set_gates(t);

    /* Ask for a call at thread exit (not for the main thread, which
     * never runs key destructors).  May allocate: t->busy is set. */
    fb_init_register_thread();
}

void fb_epoch_thread_exit(void)
{
    struct fb_tls *t = &fb_t;
    if (t->state != FB_T_ACTIVE)
        return;
    epoch_leave(t);
    t->state = FB_T_DEAD;
    set_gates(t);
    struct fb_slot *s = t->slot;
    uint32_t idx = t->slot_idx;
    t->slot = NULL;
    /* From now on this thread's frees of its old objects are remote frees,
     * and its allocations go to jemalloc (glibc frees and allocates a
     * little after key destructors have run). */
    pthread_mutex_lock(&fb_slot_lock);
    s->state = FB_SLOT_FREE;
    s->next_free = fb_free_top;
    fb_free_top = idx + 1;
    pthread_mutex_unlock(&fb_slot_lock);
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
/* Slow paths                                                              */

static FB_NOINLINE void *malloc_generic(size_t n);
static void observe_new(void *p, size_t n, int buffer, size_t usable);

/*
 * Entry from the fast path.  Kept tiny (no register saves) so that its
 * common case, a large request from a thread past start-up with nobody
 * watching, is a tail call into jemalloc's own malloc (which sets errno).
 */
void *fb_epoch_malloc_slow(size_t n)
{
    struct fb_tls *t = &fb_t;
    if (fb_likely(t->state != FB_T_NEW && !fb_observe && fb_je.malloc != NULL)) {
        if (n > fb_g.max_small)
            return fb_je_fresh(fb_je.malloc(fb_je_size(n)));
        /* Every epoch pinned, and not yet time to look again (see
         * epoch_next): a small request goes to jemalloc just as cheaply. */
        if (t->backoff && t->limit == 0) {
            t->backoff--;
            t->slot->stats.buffer_full++;
            return fb_je_fresh(fb_je.malloc(fb_je_size(n)));
        }
    }
    return malloc_generic(n);
}

static FB_NOINLINE void *malloc_generic(size_t n)
{
    if (fb_canary_on && !fb_t.busy)
        return fb_canary_alloc(FB_ALIGN, n, 0);
    return fb_epoch_malloc_raw(n);
}

/* The generic allocation, under any canary layer (canary.c calls it for
 * the block that carries the guards). */
void *fb_epoch_malloc_raw(size_t n)
{
    struct fb_tls *t = &fb_t;
    if (fb_unlikely(fb_leak_snapshot_pending) && !t->busy)
        fb_leak_snapshot_pending_run();
    if (fb_fail_reject(n))
        return NULL;
    if (fb_unlikely(t->state == FB_T_NEW) && !t->busy) {
        t->busy = 1;
        thread_start(t);
        t->busy = 0;
    }
    void *p = NULL;
    if (t->state == FB_T_ACTIVE && n <= fb_g.max_small && !t->busy) {
        size_t sz = n ? (n + 15) & ~(size_t)15 : FB_ALIGN;
        p = bump_alloc(t, sz);
        if (p) {
            if (fb_observe)
                observe_new(p, n, 1, sz);
            return p;
        }
        t->slot->stats.buffer_full++;
    }
    return fb_epoch_backend_result(fb_je_malloc(n), n);
}

/* A new block, for everyone watching: statistics, call-site tracking (and
 * open leak-check scopes), the allocation log. */
static void observe_new(void *p, size_t n, int buffer, size_t usable)
{
    if (fb_stats_on)
        fb_stats_malloc(buffer ? &fb_t.slot->stats : fb_epoch_stats_block(), n,
                        usable, buffer ? FB_ST_FAST : FB_ST_BACKEND);
    uint32_t site = 0;
    if (fb_track_on) {
        site = buffer ? fb_track_buffer(p, n) : fb_track_big(p, n);
        fb_leak_scope_note(p);
    }
    if (fb_trace_on)
        fb_trace_event(FB_TR_MALLOC, p, n, site);
}

void fb_epoch_observe_big(void *p, size_t n)
{
    observe_new(p, n, 0, fb_stats_on ? fb_je_usable(p) : 0);
}

void fb_epoch_observe_big_free(void *p)
{
    if (fb_stats_on)
        fb_stats_free(fb_epoch_stats_block(), fb_je_usable(p), FB_ST_BACKEND);
    if (fb_track_on)
        fb_track_big_free(p);
    if (fb_trace_on)
        fb_trace_event(FB_TR_FREE, p, 0, 0);
}

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

static FB_NOINLINE void free_generic(void *ptr);

/* Entry from the fast path, tiny for its common case: a jemalloc block
 * with nobody watching.  free keeps errno (glibc guarantees it; jemalloc's
 * rare slow paths may make system calls). */
void fb_epoch_free_slow(void *ptr)
{
    if (fb_likely(!fb_epoch_owns(ptr) && !fb_observe)) {
        if (ptr) {
            int bad = fb_je_take(ptr);
            if (fb_unlikely(bad)) {
                fb_epoch_big_bad(ptr, bad == 1, "free");
                return;
            }
            int *err = &errno, saved = *err;
            fb_je_release(ptr);
            *err = saved;
        }
        return;
    }
    free_generic(ptr);
}

/* A jemalloc block freed before (fb_je_freed), or a pointer that is no
 * jemalloc block (fb_je_foreign): reported, never passed on.  Returns
 * NULL with EINVAL for realloc. */
FB_COLD void *fb_epoch_big_bad(void *ptr, int is_double, const char *op)
{
    if (fb_check_on && !fb_t.busy)
        fb_check_report(ptr, is_double, op);
    else
        fb_report_bad_free(ptr, is_double ? FB_BAD_DOUBLE : FB_BAD_INVALID, op);
    errno = EINVAL;
    return NULL;
}

static FB_NOINLINE void free_generic(void *ptr)
{
    if (fb_canary_on && ptr && !fb_t.busy) {
        fb_canary_free(ptr);
        return;
    }
    fb_epoch_free_raw(ptr);
}

/* The generic free, under any canary layer. */
void fb_epoch_free_raw(void *ptr)
{
    struct fb_tls *t = &fb_t;
    if (!ptr)
        return;
    if (fb_check_on && !t->busy) {
        fb_check_free(ptr);
        return;
    }
    if (!fb_epoch_owns(ptr)) {
        int foreign = fb_je_foreign(ptr);
        if (fb_unlikely(foreign || fb_je_freed(ptr))) {
            int saved = errno;
            fb_epoch_big_bad(ptr, !foreign, "free");
            errno = saved;
            return;
        }
        if (fb_observe)
            fb_epoch_observe_big_free(ptr);
        int saved = errno;
        fb_je_free(ptr);
        errno = saved;
        return;
    }
    uint8_t *m = map_entry(ptr);
    if (!m) {
        fb_report_bad_free(ptr, FB_BAD_INVALID, "free");
        return;
    }
    uint32_t idx, e;
    epoch_of(ptr, &idx, &e);
    if (t->state == FB_T_ACTIVE && idx == t->slot_idx) {
        /* Our own object, reaching here because statistics are on or
         * because the fast check refused it (a bad free). */
        unsigned v = *m;
        if (v - 1u >= FB_MAX_GRANULES) {
            fb_report_bad_free(ptr, v == FB_FREED ? FB_BAD_DOUBLE : FB_BAD_INVALID,
                               "free");
            return;
        }
        *m = FB_FREED;
        t->slot_live[e]--;
        if (fb_stats_on)
            fb_stats_free(&t->slot->stats, (size_t)v << FB_GRANULE_SHIFT,
                          FB_ST_FAST);
        if (fb_trace_on)
            fb_trace_event(FB_TR_FREE, ptr, 0, 0);
        return;
    }
    /* Another thread's object (or a slot given back): mark it freed with
     * a compare-and-swap on its own map byte, then count it remotely. */
    long usable = fb_epoch_mark_freed(ptr);
    if (usable <= 0) {
        fb_report_bad_free(ptr, usable == 0 ? FB_BAD_DOUBLE : FB_BAD_INVALID, "free");
        return;
    }
    fb_epoch_release_marked(ptr);
    if (fb_stats_on)
        fb_stats_free(fb_epoch_stats_block(), (size_t)usable, FB_ST_REMOTE);
    if (fb_trace_on)
        fb_trace_event(FB_TR_FREE, ptr, 0, 0);
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

size_t fb_epoch_usable_any(const void *p)
{
    return fb_epoch_owns(p) ? fb_epoch_usable(p) : fb_je_usable(p);
}

void *fb_epoch_realloc(void *p, size_t n)
{
    struct fb_tls *t = &fb_t;
    size_t usable = fb_epoch_usable(p);
    if (!usable) {
        uint8_t *m = map_entry(p);
        int is_double = m && *m == FB_FREED;
        if (fb_check_on)
            fb_check_report(p, is_double, "realloc");
        else
            fb_report_bad_free(p, is_double ? FB_BAD_DOUBLE : FB_BAD_INVALID, "realloc");
        errno = EINVAL;
        return NULL;
    }
    if (n <= usable) {
        /* Shrink in place; the block's end moves down (the granules after
         * it stay unused until the epoch resets), so its usable size stays
         * within a granule of the request, as for any new block. */
        size_t sz = (n + 15) & ~(size_t)15;
        if (sz < usable) {
            fb_g.map[((uintptr_t)p - fb_g.base) >> FB_GRANULE_SHIFT] =
                (uint8_t)(sz >> FB_GRANULE_SHIFT);
            if (fb_stats_on)          /* its free will count sz */
                fb_stats_resize(fb_epoch_stats_block(), usable, sz);
        }
        uint32_t site = fb_track_on ? fb_track_buffer(p, n) : 0;
        if (fb_trace_on)
            fb_trace_event(FB_TR_REALLOC, p, n, site);
        return p;
    }
    /* The last object of our current epoch grows in place.  It must lie
     * in that epoch: a block ending exactly where the current epoch starts
     * (the last one of an earlier epoch, or of the slot before ours) also
     * ends at the bump pointer, but growing it would put bytes in an epoch
     * that does not count it, and that epoch's next reset would hand them
     * out again. */
    if ((uintptr_t)p + usable == t->bump && n <= fb_g.max_small &&
        t->state == FB_T_ACTIVE && (uintptr_t)p >= t->limit - fb_g.epoch_size) {
        size_t sz = (n + 15) & ~(size_t)15;
        if ((uintptr_t)p + sz <= t->limit) {
            t->bump = (uintptr_t)p + sz;
            t->slot_map[((uintptr_t)p - t->slot_base) >> FB_GRANULE_SHIFT] =
                (uint8_t)(sz >> FB_GRANULE_SHIFT);
            if (fb_stats_on)
                fb_stats_resize(&t->slot->stats, usable, sz);
            uint32_t site = fb_track_on ? fb_track_buffer(p, n) : 0;
            if (fb_trace_on)
                fb_trace_event(FB_TR_REALLOC, p, n, site);
            return p;
        }
    }
    void *q = fb_epoch_malloc(n);
    if (!q)
        return NULL;                 /* errno set; p untouched */
    memcpy(q, p, usable);
    fb_epoch_free(p);
    return q;
}

uint32_t fb_epoch_slots_used(void)
{
    return atomic_load_explicit(&fb_slots_used, memory_order_acquire);
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
