/*
 * The signal-handler pool and the per-thread handler frames (sigpool.h).
 *
 * Region: FB_SIGPOOL_CLASSES spans of 1 MiB (class c holds blocks of
 * 16 << c bytes), then one state byte per block.  Committed in one go
 * with MAP_NORESERVE semantics: untouched pages cost nothing.
 *
 * Per class: a free stack whose head is one 64-bit word, (tag << 32) |
 * (index + 1), the next link kept in the free block's first word; the tag
 * grows on every change so that a pop that read a stale next link fails
 * its compare-and-swap (the classic ABA guard, e.g. Treiber's stack in
 * IBM RJ 5118, 1986).  Fresh blocks come from a fetch_add on the class's
 * count.  The state byte (never used, live, free), changed by
 * compare-and-swap on free, keeps a double free from pushing a block
 * twice (which would hand it out twice).
 */
#include "sigpool.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "platform.h"

uintptr_t fb_sigpool_base = (uintptr_t)0 - FB_SIGPOOL_DATA;
__thread struct fb_sigpool_tls fb_sigpool_t __attribute__((tls_model("initial-exec"))) = {
    .catch_len = FB_SIGPOOL_DATA,
};

enum { ST_UNUSED = 0, ST_LIVE = 1, ST_FREE = 2 };
enum { POOL_NONE = 0, POOL_BUSY, POOL_READY, POOL_FAILED };

struct pool_class {
    _Atomic uint64_t head;           /* (tag << 32) | (index + 1), 0: empty */
    _Atomic uint64_t fresh;          /* blocks handed out fresh so far */
    char pad[48];                    /* one cache line per class */
};

static struct pool_class classes[FB_SIGPOOL_CLASSES];
static _Atomic uint8_t *states;      /* per block, class after class */
static _Atomic int pool_state;

static inline uint32_t class_cap(unsigned c)
{
    return (uint32_t)(((uintptr_t)1 << FB_SIGPOOL_SPAN_SHIFT) >> (4 + c));
}

/* Offset of class c's state bytes: the capacities of the classes before. */
static inline size_t class_states(unsigned c)
{
    size_t off = 0;
    for (unsigned k = 0; k < c; k++)
        off += class_cap(k);
    return off;
}

static inline unsigned class_of(size_t n)
{
    if (n <= 16)
        return 0;
    return (unsigned)(64 - __builtin_clzl(n - 1)) - 4;
}

static inline uintptr_t block_at(unsigned c, uint32_t idx)
{
    return fb_sigpool_base + ((uintptr_t)c << FB_SIGPOOL_SPAN_SHIFT) +
           ((uintptr_t)idx << (4 + c));
}

int fb_sigpool_reserve(void)
{
    int s = atomic_load_explicit(&pool_state, memory_order_acquire);
    if (s != POOL_NONE)
        return s == POOL_FAILED ? -1 : 0;
    if (!atomic_compare_exchange_strong(&pool_state, &s, POOL_BUSY))
        return 0;                    /* another thread or handler is at it */
    size_t nstates = class_states(FB_SIGPOOL_CLASSES);
    size_t size = FB_SIGPOOL_DATA + ((nstates + 4095) & ~(size_t)4095);
    char *p = fb_plat_reserve(size, fb_plat_page_size());
    if (!p || fb_plat_commit(p, size) != 0) {
        if (p)
            fb_plat_release(p, size);
        atomic_store_explicit(&pool_state, POOL_FAILED, memory_order_release);
        return -1;
    }
    states = (_Atomic uint8_t *)(p + FB_SIGPOOL_DATA);
    /* Published last: until then no pointer is a pool pointer. */
    __atomic_store_n(&fb_sigpool_base, (uintptr_t)p, __ATOMIC_RELEASE);
    atomic_store_explicit(&pool_state, POOL_READY, memory_order_release);
    return 0;
}

void *fb_sigpool_alloc(size_t n)
{
    if (n > FB_SIGPOOL_MAX ||
        atomic_load_explicit(&pool_state, memory_order_acquire) != POOL_READY)
        return NULL;
    unsigned c = class_of(n);
    struct pool_class *k = &classes[c];
    uint64_t h = atomic_load_explicit(&k->head, memory_order_acquire);
    uint32_t idx;
    for (;;) {
        uint32_t top = (uint32_t)h;
        if (!top) {
            uint64_t f = atomic_fetch_add_explicit(&k->fresh, 1, memory_order_relaxed);
            if (f >= class_cap(c)) {
                atomic_fetch_sub_explicit(&k->fresh, 1, memory_order_relaxed);
                return NULL;
            }
            idx = (uint32_t)f;
            break;
        }
        idx = top - 1;
        /* The link may be stale (another pop took the block and the
         * program wrote over it): then the tag has moved and the CAS
         * fails.  The memory stays mapped, so reading it is safe. */
        uint32_t next = atomic_load_explicit((_Atomic uint32_t *)block_at(c, idx),
                                             memory_order_relaxed);
        uint64_t nh = (((h >> 32) + 1) << 32) | next;
        if (atomic_compare_exchange_weak_explicit(&k->head, &h, nh, memory_order_acquire,
                                                  memory_order_acquire))
            break;
    }
    atomic_store_explicit(&states[class_states(c) + idx], ST_LIVE, memory_order_relaxed);
    return (void *)block_at(c, idx);
}

/* p's class and index if a block starts at p; 0 if not. */
static int locate(const void *p, unsigned *c, uint32_t *idx)
{
    uintptr_t off = (uintptr_t)p - fb_sigpool_base;
    if (off >= FB_SIGPOOL_DATA ||
        atomic_load_explicit(&pool_state, memory_order_acquire) != POOL_READY)
        return 0;
    *c = (unsigned)(off >> FB_SIGPOOL_SPAN_SHIFT);
    uintptr_t in = off & (((uintptr_t)1 << FB_SIGPOOL_SPAN_SHIFT) - 1);
    if (in & (((uintptr_t)16 << *c) - 1))
        return 0;
    *idx = (uint32_t)(in >> (4 + *c));
    return *idx < atomic_load_explicit(&classes[*c].fresh, memory_order_relaxed);
}

int fb_sigpool_free(void *p)
{
    unsigned c;
    uint32_t idx;
    if (!locate(p, &c, &idx))
        return 2;
    uint8_t live = ST_LIVE;
    if (!atomic_compare_exchange_strong_explicit(&states[class_states(c) + idx], &live,
                                                 ST_FREE, memory_order_relaxed,
                                                 memory_order_relaxed))
        return live == ST_FREE ? 1 : 2;
    struct pool_class *k = &classes[c];
    uint64_t h = atomic_load_explicit(&k->head, memory_order_relaxed);
    do {
        atomic_store_explicit((_Atomic uint32_t *)p, (uint32_t)h, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(
        &k->head, &h, (((h >> 32) + 1) << 32) | (idx + 1), memory_order_release,
        memory_order_relaxed));
    return 0;
}

size_t fb_sigpool_usable(const void *p)
{
    unsigned c;
    uint32_t idx;
    if (!locate(p, &c, &idx) ||
        atomic_load_explicit(&states[class_states(c) + idx], memory_order_relaxed) != ST_LIVE)
        return 0;
    return (size_t)16 << c;
}

void fb_sigpool_each_live(void (*fn)(uintptr_t lo, uintptr_t hi))
{
    if (atomic_load_explicit(&pool_state, memory_order_acquire) != POOL_READY)
        return;
    for (unsigned c = 0; c < FB_SIGPOOL_CLASSES; c++) {
        uint64_t n = atomic_load_explicit(&classes[c].fresh, memory_order_relaxed);
        size_t first = class_states(c);
        for (uint32_t i = 0; i < n && i < class_cap(c); i++)
            if (atomic_load_explicit(&states[first + i], memory_order_relaxed) == ST_LIVE)
                fn(block_at(c, i), block_at(c, i) + ((uintptr_t)16 << c));
    }
}

/* ---------------------------------------------------------------------- */
/* Handler frames                                                          */

static void save(struct fb_sigpool_saved *s, const struct fb_tls *t)
{
    s->bump = t->bump;
    s->limit = t->limit;
    s->slot_granules = t->slot_granules;
    s->catch_len = fb_sigpool_t.catch_len;
    s->je_open = t->je_open;
    s->stats = t->stats;
    s->state = t->state;
    s->quick = t->quick;
}

/* Field by field, with compiler barriers around: a nested handler may
 * arrive between any two stores and saves, shuts and restores what it
 * finds; what it finds is always either our value or the one we are
 * replacing, each of them valid on its own (see sigpool.h). */
static void restore(struct fb_tls *t, const struct fb_sigpool_saved *s)
{
    atomic_signal_fence(memory_order_seq_cst);
    t->bump = s->bump;
    t->limit = s->limit;
    t->slot_granules = s->slot_granules;
    fb_sigpool_t.catch_len = s->catch_len;
    t->je_open = s->je_open;
    t->stats = s->stats;
    t->state = s->state;
    t->quick = s->quick;
    atomic_signal_fence(memory_order_seq_cst);
}

static void shut(struct fb_tls *t)
{
    atomic_signal_fence(memory_order_seq_cst);
    t->limit = 0;                    /* first: the bump refuses from here */
    t->je_open = 0;                  /* and the first door sends nothing */
    t->slot_granules = 0;
    fb_sigpool_t.catch_len = UINTPTR_MAX;   /* every free to the handler path */
    t->quick = 0;
    t->stats = NULL;
    if (t->state == FB_T_ACTIVE)
        t->state = FB_T_NOSLOT;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Frames [0, depth) still live for code whose stack pointer is sp:
 * returns the new depth (the innermost live frame + 1). */
static uint32_t live_depth(struct fb_sigpool_tls *s, uintptr_t sp)
{
    uint32_t d = s->depth;
    if (d > FB_SIGPOOL_FRAMES)
        return d;                    /* unrecorded nesting: assume live */
    uint8_t on_alt = s->alt_hi && sp - s->alt_lo < s->alt_hi - s->alt_lo;
    while (d > 0) {
        uintptr_t fr = s->f[d - 1].frame;
        if (s->f[d - 1].on_alt == on_alt && sp < fr &&
            *(volatile uintptr_t *)fr == s->f[d - 1].cookie)
            break;
        d--;
    }
    return d;
}

/* Leaving the outermost handler (or repairing after a siglongjmp): if it
 * deferred frees, the quick entry stays shut until the generic malloc
 * has freed them. */
static void outermost_left(struct fb_sigpool_tls *s, struct fb_tls *t)
{
    if (atomic_load_explicit(&s->deferred, memory_order_relaxed) && !s->pending) {
        s->quick_after = t->quick;
        t->quick = 0;
        t->je_open = 0;
        atomic_signal_fence(memory_order_seq_cst);
        s->pending = 1;
    }
}

/* No live frame: the gates the outermost handler found go back. */
static FB_COLD void repair(struct fb_sigpool_tls *s)
{
    restore(&fb_t, &s->outer);
    atomic_signal_fence(memory_order_seq_cst);
    s->depth = 0;
    outermost_left(s, &fb_t);
}

void fb_sigpool_defer(void *p)
{
    struct fb_sigpool_tls *s = &fb_sigpool_t;
    void *h = atomic_load_explicit(&s->deferred, memory_order_relaxed);
    do
        ((void **)p)[1] = h;
    while (!atomic_compare_exchange_weak_explicit(&s->deferred, &h, p, memory_order_relaxed,
                                                  memory_order_relaxed));
}

void *fb_sigpool_take_deferred(void)
{
    struct fb_sigpool_tls *s = &fb_sigpool_t;
    void *list = atomic_exchange_explicit(&s->deferred, NULL, memory_order_relaxed);
    fb_t.quick = s->quick_after;
    fb_epoch_je_gate(&fb_t);
    atomic_signal_fence(memory_order_seq_cst);
    s->pending = 0;
    return list;
}

void fb_sigpool_enter(struct fb_sigpool_frame *f, uintptr_t isp, uintptr_t alt_lo,
                      uintptr_t alt_hi)
{
    struct fb_sigpool_tls *s = &fb_sigpool_t;
    struct fb_tls *t = &fb_t;
    uint32_t d = s->depth;
    if (d) {
        /* The interrupted code, not this wrapper, tells: a nested signal
         * may have switched to the alternate stack. */
        d = live_depth(s, isp);
        if (d == 0)
            repair(s);
    }
    s->alt_lo = alt_lo;
    s->alt_hi = alt_hi;
    f->index = d;
    f->cookie = ((uintptr_t)f * 0x9E3779B97F4A7C15ull) ^ ++s->serial;
    save(&f->saved, t);
    if (d < FB_SIGPOOL_FRAMES) {
        s->f[d].frame = (uintptr_t)f;
        s->f[d].cookie = f->cookie;
        s->f[d].on_alt = alt_hi && (uintptr_t)f - alt_lo < alt_hi - alt_lo;
    }
    if (d == 0)
        s->outer = f->saved;
    atomic_signal_fence(memory_order_seq_cst);
    s->depth = d + 1;                /* published once the records are */
    shut(t);
}

void fb_sigpool_leave(struct fb_sigpool_frame *f)
{
    restore(&fb_t, &f->saved);
    fb_sigpool_t.depth = f->index;
    if (f->index == 0)
        outermost_left(&fb_sigpool_t, &fb_t);
}

int fb_sigpool_inside(void)
{
    struct fb_sigpool_tls *s = &fb_sigpool_t;
    uint32_t d = live_depth(s, (uintptr_t)__builtin_frame_address(0));
    if (d == 0) {
        repair(s);
        return 0;
    }
    s->depth = d;
    return 1;
}

int fb_sigpool_serves(size_t n)
{
    return n <= FB_SIGPOOL_MAX &&
           atomic_load_explicit(&pool_state, memory_order_acquire) == POOL_READY;
}

void *fb_sigpool_malloc(size_t n)
{
    void *p = fb_sigpool_alloc(n);
    if (!p)
        errno = ENOMEM;
    return p;
}
