/*
 * Allocation inside signal handlers: a lock-free pool of small blocks,
 * and the per-thread record of the handlers running on this thread.
 *
 * The inlined fast paths (alloc.h) bump a thread's buffer with a plain
 * load and store: a handler that allocates between the two on the same
 * thread would get the interrupted call's block.  Nothing is added there.
 * Instead the top layer (sigwrap.c) runs every handler the program
 * installs through a wrapper that calls fb_sigpool_enter / _leave around
 * it.  Entering shuts the thread's gates the way a thread without a slot
 * has them (limit 0: the bump refuses; slot_granules 0: its frees go the
 * generic way; state NOSLOT: those are counted as remote frees, with
 * atomics; quick 0: the generic entry reaches malloc_generic; stats NULL:
 * counters go to the shared atomic block), so no code under the handler
 * touches the interrupted thread's bump, epoch counts or counters with
 * plain stores.  Leaving puts back exactly what entering found, so the
 * interrupted code resumes as if nothing ran.  Nested handlers each save
 * and restore what they found, in their own frames.
 *
 * Inside a handler, the dispatch's generic malloc sends requests up to
 * FB_SIGPOOL_MAX here: a fixed region of per-size-class lock-free stacks
 * (Treiber stacks with an ABA tag) and atomic bumps for fresh blocks; no
 * lock, no system call.  A pool block is recognised by its address from
 * anywhere (any thread, in or out of a handler) and goes back to the pool.
 */
#ifndef FB_SIGPOOL_H
#define FB_SIGPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "epoch.h"
#include "fb.h"

/* Size classes 16, 32, ..., 4096 bytes (powers of two), each a span of
 * 1 MiB: at most 65,536 blocks of 16 bytes and 256 of 4 KiB live at once
 * per class.  Above that a handler's malloc returns NULL (ENOMEM). */
#define FB_SIGPOOL_CLASSES 9
#define FB_SIGPOOL_SPAN_SHIFT 20
#define FB_SIGPOOL_MAX ((size_t)16 << (FB_SIGPOOL_CLASSES - 1))
#define FB_SIGPOOL_DATA ((uintptr_t)FB_SIGPOOL_CLASSES << FB_SIGPOOL_SPAN_SHIFT)

/* Start of the pool's blocks.  Until the pool is reserved it is the top
 * FB_SIGPOOL_DATA bytes of the address space (kernel addresses, never a
 * user pointer), so fb_sigpool_owns is one subtract and one compare with
 * a constant and needs no "is it there" flag. */
extern FB_HIDDEN uintptr_t fb_sigpool_base;

FB_INLINE int fb_sigpool_owns(const void *p)
{
    return (uintptr_t)p - fb_sigpool_base < FB_SIGPOOL_DATA;
}

/* fb_sigpool_owns, or inside a signal handler any pointer at all (the
 * thread's catch_len is then everything): the free and realloc entries'
 * one check, which inside a handler sends every free to
 * alloc.c's handler path.  Same cost as fb_sigpool_owns. */
FB_INLINE int fb_sigpool_catches(const void *p);

/* Reserves the pool (once; later calls return at once).  Called by
 * sigwrap.c when the program installs its first handler, so that a
 * program without handlers never maps it.  Async-signal-safe (one
 * mmap and one mprotect, published by compare-and-swap).  0 on success. */
int fb_sigpool_reserve(void);

/* A block of at least n bytes (n <= FB_SIGPOOL_MAX), 16-byte aligned;
 * NULL when the pool is not there or the class is exhausted. */
void *fb_sigpool_alloc(size_t n);
/* Frees a block p that fb_sigpool_owns: 0 done, 1 already free (double
 * free), 2 no block starts at p.  Nothing changes on 1 or 2. */
int fb_sigpool_free(void *p);
/* The block's usable size, 0 if p is not a live pool block. */
size_t fb_sigpool_usable(const void *p);

/* Calls fn on every live pool block (the leak check scans them as roots:
 * a pointer kept only in a handler's block is no leak).  Racy against
 * handlers running meanwhile: a snapshot. */
void fb_sigpool_each_live(void (*fn)(uintptr_t lo, uintptr_t hi));

/* ---- the handlers running on this thread --------------------------------
 *
 * A frame lives in the wrapper's stack frame while the program's handler
 * runs.  siglongjmp out of a handler skips fb_sigpool_leave: the thread's
 * gates stay shut and its depth stale.  fb_sigpool_inside (the generic
 * malloc's one check, only when the depth is not 0) and the next
 * fb_sigpool_enter notice it: a frame is live only if the stack pointer
 * tested is on the same stack as the frame (the alternate signal stack
 * or not), below it, and the frame still holds its cookie.  A live frame
 * always passes (no false "stale": that would reopen the gates inside a
 * handler); a dead one fails unless the code that jumped out has since
 * gone deeper than the frame without overwriting the cookie, and then
 * the thread is served by the pool (correct, slower) until it returns
 * above that point.  When no frame is live the gates found by the
 * outermost handler are put back.
 */
struct fb_sigpool_saved {
    uintptr_t bump, limit, slot_granules, catch_len, je_open;
    struct fb_stats_block *stats;
    uint8_t state, quick;
};

struct fb_sigpool_frame {
    uintptr_t cookie;                /* first: the frame's address is its sp */
    struct fb_sigpool_saved saved;   /* what entering found */
    uint32_t index;                  /* depth before entering */
};

#define FB_SIGPOOL_FRAMES 16         /* nesting recorded for stale checks */

struct fb_sigpool_tls {
    union {
        struct {
            uint32_t depth;          /* handlers running (0: none) */
            uint32_t pending;        /* deferred frees wait (below) */
        };
        uint64_t any;                /* the generic malloc's one test */
    };
    uintptr_t catch_len;             /* see fb_sigpool_catches */
    void *_Atomic deferred;          /* jemalloc blocks a handler freed */
    uint8_t quick_after;             /* quick, once they are freed */
    uint32_t serial;                 /* cookie source */
    uintptr_t alt_lo, alt_hi;        /* the alternate signal stack, if any */
    struct {
        uintptr_t frame, cookie;
        uint8_t on_alt;
    } f[FB_SIGPOOL_FRAMES];
    struct fb_sigpool_saved outer;   /* the gates before the outermost */
};
extern __thread FB_HIDDEN struct fb_sigpool_tls fb_sigpool_t
    __attribute__((tls_model("initial-exec")));

FB_INLINE int fb_sigpool_catches(const void *p)
{
    return (uintptr_t)p - fb_sigpool_base < fb_sigpool_t.catch_len;
}

/* isp: the interrupted stack pointer (from the ucontext); alt_lo/alt_hi:
 * the thread's alternate signal stack (uc_stack), 0/0 if none. */
void fb_sigpool_enter(struct fb_sigpool_frame *f, uintptr_t isp, uintptr_t alt_lo,
                      uintptr_t alt_hi);
void fb_sigpool_leave(struct fb_sigpool_frame *f);

/* With fb_sigpool_t.depth non-zero: is the caller really inside a
 * handler?  If not (a siglongjmp left it), puts the thread's gates back
 * and returns 0. */
int fb_sigpool_inside(void);

/* A jemalloc block freed inside a handler (already marked freed, see
 * backend.h's fb_je_take): jemalloc is not async-signal-safe, so it is
 * kept on the thread's list and freed by the thread's next generic
 * malloc outside handlers (the outermost handler's exit shuts the quick
 * entry until then: pending).  Uses the block's second word. */
void fb_sigpool_defer(void *p);
/* Outside handlers, with pending set: the list to free (linked through
 * word 1), the quick entry given back. */
void *fb_sigpool_take_deferred(void);

/* Inside a handler: does the pool answer a request of n bytes?  Those
 * above FB_SIGPOOL_MAX (and every request if the pool could not be
 * reserved) take the usual generic path, observers included, to jemalloc
 * (the thread's gates are shut): not async-signal-safe, as in every
 * allocator. */
int fb_sigpool_serves(size_t n);
/* A pool block of n bytes (fb_sigpool_serves(n)), or NULL with ENOMEM
 * when its class is exhausted.  No debugging layer, no observer. */
void *fb_sigpool_malloc(size_t n);

#endif
