/*
 * The early arena (early.h): bump allocation with a header per block and
 * a start bit per 16 bytes; memory is never reused.
 *
 * Every change (an allocation, an in-place resize) is made under a
 * try-lock that is never waited for: a caller that finds it held gives up
 * (an allocation returns NULL, and the backend serves it from jemalloc; a
 * resize says "not in place").  So no thread ever waits here: not a
 * signal handler that interrupted the holder, not the child of a fork()
 * taken while another thread held it (there the arena serves nothing new
 * and jemalloc takes over), with no fork handler to run.  Two threads
 * meet here only at a process's start, and then jemalloc serves the one
 * that lost.  The start bits are read without the lock (backend.h's
 * checks): a bit is set before its block is handed out, never cleared.
 */
#include "early.h"

FB_BIG_BSS FB_HIDDEN unsigned char fb_early_mem[FB_EARLY_SIZE] __attribute__((aligned(4096)));
FB_HIDDEN unsigned char fb_early_open = 1;

#define EARLY_BITS (FB_EARLY_SIZE / 16)
/* Bit k: a block starts at fb_early_mem + 16 k. */
FB_BIG_BSS static uint64_t starts[EARLY_BITS / 64];

/* Below each block (16 bytes, so the block stays 16-aligned). */
struct hdr {
    uint64_t size;               /* usable bytes, a multiple of 16 */
    uint64_t unused;
};

static int lock;
static size_t top, last;         /* under the lock; last: the last block's offset */
static size_t freed;             /* bytes of freed blocks (statistics) */

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

void *fb_early_alloc(size_t align, size_t n)
{
    if (n > FB_EARLY_SIZE || align > FB_EARLY_SIZE)
        return NULL;
    size_t sz = n ? (n + 15) & ~(size_t)15 : 16;
    if (!try_lock())
        return NULL;
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
    return fb_early_mem + blk;
}

void fb_early_free(void *p)
{
    __atomic_fetch_add(&freed, fb_early_usable(p), __ATOMIC_RELAXED);
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
    return __atomic_load_n(&top, __ATOMIC_RELAXED) - __atomic_load_n(&freed, __ATOMIC_RELAXED);
}
