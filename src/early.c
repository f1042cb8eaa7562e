/*
 * The early arena (early.h): bump allocation with a header per block, a
 * start bit per 16 bytes, and a free list per size class.
 *
 * Every change (an allocation, a free, an in-place resize) is made under
 * a try-lock that is never waited for: a caller that finds it held gives
 * up (an allocation returns NULL, and the backend serves it from
 * jemalloc; a resize says "not in place"; a freed block is not reused).  So no thread ever waits here: not a
 * signal handler that interrupted the holder, not the child of a fork()
 * taken while another thread held it (there the arena serves nothing new
 * and jemalloc takes over), with no fork handler to run.  Two threads
 * meet here only at a process's start, and then jemalloc serves the one
 * that lost.  The start bits are read without the lock (backend.h's
 * checks): a bit is set before its block is handed out, never cleared (a
 * reused block starts where it did).
 */
#include "early.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

FB_BIG_BSS FB_HIDDEN unsigned char fb_early_mem[FB_EARLY_SIZE] __attribute__((aligned(4096)));
FB_HIDDEN unsigned char fb_early_open = 1;
FB_HIDDEN size_t fb_early_span = FB_EARLY_SIZE;

#define EARLY_BITS (FB_EARLY_SIZE / 16)
/* Bit k: a block starts at fb_early_mem + 16 k. */
FB_BIG_BSS static uint64_t starts[EARLY_BITS / 64];

/* Below each block (16 bytes, so the block stays 16-aligned). */
struct hdr {
    uint64_t size;               /* usable bytes, a multiple of 16 */
    void *next;                  /* on a free list: the next block */
};

/* Size classes up to 64 KiB, as jemalloc's: 16 to 128 by 16, then four
 * per doubling.  A freed block goes on the list of the largest class
 * its size holds, and a request takes from the list of the smallest
 * class that holds it: blocks are reused by requests of their own size
 * only, as jemalloc reuses its slabs' (so a stray pointer to a freed
 * block meets a block of the same size, if any), and the one freed
 * longest ago first (the lists are shared by every thread: a block freed
 * comes back as late as it can). */
#define NCLASS 44
#define CLASS_MAX ((size_t)65536)
static void *lists[NCLASS];      /* under the lock: the oldest free block */
static void *tails[NCLASS];      /* the newest */

static size_t class_size(unsigned c)
{
    if (c < 8)
        return (size_t)(c + 1) * 16;
    unsigned lg = 7 + (c - 8) / 4, k = (c - 8) % 4;
    return ((size_t)1 << lg) + (size_t)(k + 1) * ((size_t)1 << (lg - 2));
}

/* The smallest class of at least sz (16 <= sz <= CLASS_MAX, a multiple
 * of 16). */
static unsigned class_up(size_t sz)
{
    if (sz <= 128)
        return (unsigned)(sz / 16 - 1);
    unsigned lg = 63 - (unsigned)__builtin_clzl(sz - 1);
    return 8 + (lg - 7) * 4 + (unsigned)((sz - 1 - ((size_t)1 << lg)) >> (lg - 2));
}

/* The largest class of at most sz (sz >= 16). */
static unsigned class_down(size_t sz)
{
    if (sz >= CLASS_MAX)
        return NCLASS - 1;
    unsigned c = class_up(sz);
    return class_size(c) > sz ? c - 1 : c;
}

/* At most this many blocks: a process that keeps freeing and reusing
 * blocks here (never outgrowing the arena) goes to jemalloc all the same.
 * A pair here costs about 170 instructions more than jemalloc's (the
 * lock, and free's slow path: no shadow bit), so a process that makes
 * more requests than this pays at most 350,000 instructions for having
 * tried (jemalloc's start-up costs 130,000 and 60 page faults); cc1
 * compiling a small file makes about 900, python3 -c pass 1,500. */
#define EARLY_MAX_BLOCKS 2048u

static int lock;
static size_t top, last;         /* under the lock; last: the last block's offset */
static size_t blocks;            /* handed out, under the lock */
static size_t freed;             /* bytes on the free lists, under the lock */
static size_t freed_lost;        /* bytes freed while the lock was held (atomic) */

static int try_lock(void)
{
    return !__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE);
}

static void unlock(void)
{
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

static struct hdr *hdr_of(const void *p)
{
    return (struct hdr *)(void *)((unsigned char *)(uintptr_t)p - sizeof(struct hdr));
}

void *fb_early_alloc(size_t align, size_t n, int zero)
{
    if (n > FB_EARLY_SIZE || align > FB_EARLY_SIZE)
        return NULL;
    size_t sz = n ? (n + 15) & ~(size_t)15 : 16;
    unsigned c = sz <= CLASS_MAX ? class_up(sz) : NCLASS;
    if (c < NCLASS)
        sz = class_size(c);
    if (!try_lock())
        return NULL;
    if (++blocks > EARLY_MAX_BLOCKS) {
        blocks = EARLY_MAX_BLOCKS;
        unlock();
        return NULL;
    }
    unsigned char *p;
    if (c < NCLASS && align <= 16 && lists[c]) {
        /* A freed block of this size: its start bit is still set. */
        p = lists[c];
        lists[c] = hdr_of(p)->next;
        if (!lists[c])
            tails[c] = NULL;
        freed -= hdr_of(p)->size;
        unlock();
        if (zero)
            memset(p, 0, hdr_of(p)->size);
        else
            *(uint64_t *)(void *)p = 0;   /* the freed mark */
        return p;
    }
    /* Aligned as an address: the arena itself is only page-aligned. */
    uintptr_t base = (uintptr_t)fb_early_mem;
    size_t blk = ((base + top + sizeof(struct hdr) + align - 1) & ~(uintptr_t)(align - 1)) - base;
    size_t end = blk + sz;
    if (end > FB_EARLY_SIZE) {
        unlock();
        return NULL;
    }
    hdr_of(fb_early_mem + blk)->size = sz;
    __atomic_fetch_or(&starts[blk / 16 / 64], (uint64_t)1 << (blk / 16 % 64), __ATOMIC_RELAXED);
    top = end;
    last = blk;
    unlock();
    return fb_early_mem + blk;      /* never used before: zero */
}

static int keep_freed;

void fb_early_keep_freed(void)
{
    __atomic_store_n(&keep_freed, 1, __ATOMIC_RELAXED);
}

void fb_early_free(void *p)
{
    struct hdr *h = hdr_of(p);
    /* Blocks larger than the classes, frees that meet another thread
     * here, and all of them when told so, are not reused. */
    if (h->size > CLASS_MAX || __atomic_load_n(&keep_freed, __ATOMIC_RELAXED) || !try_lock()) {
        __atomic_fetch_add(&freed_lost, h->size, __ATOMIC_RELAXED);
        return;
    }
    unsigned c = class_down(h->size);
    h->next = NULL;
    if (tails[c])
        hdr_of(tails[c])->next = p;
    else
        lists[c] = p;
    tails[c] = p;
    freed += h->size;
    unlock();
}

void fb_early_close(void)
{
    if (!try_lock())
        return;                      /* (a fork's child whose lock is stuck) */
    blocks = EARLY_MAX_BLOCKS;       /* nothing new from here on */
    int saved = errno;
    for (unsigned c = 0; c < NCLASS; c++) {
        for (unsigned char *p = lists[c]; p; p = hdr_of(p)->next) {
            /* Whole pages past the block's first 4 KiB, which keep the
             * freed marks (the backend's first word, FBMALLOC_CANARY's
             * header: zeroed, a double free of the block was reported as
             * an invalid pointer). */
            uintptr_t lo = ((uintptr_t)p + 4096 + 4095) & ~(uintptr_t)4095;
            uintptr_t hi = ((uintptr_t)p + hdr_of(p)->size) & ~(uintptr_t)4095;
            if (hi > lo)
                madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
        lists[c] = tails[c] = NULL;
    }
    errno = saved;
    __atomic_fetch_add(&freed_lost, freed, __ATOMIC_RELAXED);
    freed = 0;
    unlock();
}

int fb_early_resize(void *p, size_t n)
{
    struct hdr *h = hdr_of(p);
    size_t sz = n ? (n + 15) & ~(size_t)15 : 16;
    size_t off = (size_t)((unsigned char *)p - fb_early_mem);
    if (sz <= h->size)
        return 1;                    /* shrinking: the block keeps its size */
    if (n > FB_EARLY_SIZE || !try_lock())
        return 0;
    int ok = last == off && off + sz <= FB_EARLY_SIZE;
    if (ok) {
        top = off + sz;
        h->size = sz;
    }
    unlock();
    return ok;
}

void fb_early_unmap(void)
{
    try_lock();                      /* for good: nothing is carved again */
    blocks = EARLY_MAX_BLOCKS;
    __atomic_store_n(&fb_early_span, 0, __ATOMIC_RELEASE);
    int saved = errno;
    munmap(fb_early_mem, FB_EARLY_SIZE);
    errno = saved;
}

size_t fb_early_usable(const void *p)
{
    return (size_t)hdr_of(p)->size;
}

int fb_early_is_start(uintptr_t a)
{
    size_t k = (a - (uintptr_t)fb_early_mem) / 16;
    /* The first 16 bytes are the first header: never a start, and no
     * header lies below them to read. */
    return k && ((__atomic_load_n(&starts[k / 64], __ATOMIC_ACQUIRE) >> (k % 64)) & 1);
}

size_t fb_early_used(void)
{
    return __atomic_load_n(&top, __ATOMIC_RELAXED) - __atomic_load_n(&freed, __ATOMIC_RELAXED) -
           __atomic_load_n(&freed_lost, __ATOMIC_RELAXED);
}
