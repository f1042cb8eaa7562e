/*
 * The leak check's block table, marking and classification, as valgrind's
 * memcheck and LeakSanitizer classify:
 *
 *  1. collect every tracked live block (buffer objects from the granule
 *     map, jemalloc objects from the tracking table), sorted by address;
 *  2. the roots (leakroots.c) hand over each root range; every aligned
 *     word in it that points into a block, interior pointers included,
 *     marks that block reachable, and so does everything reachable from a
 *     marked block (a work list, not recursion);
 *  3. the unmarked blocks leak.  In address order, each one not yet
 *     classified becomes a "direct" leader, and everything reachable from
 *     it "indirect" (a former leader reached this way is demoted), so a
 *     cycle or chain with no outside pointer has exactly one direct block,
 *     as in valgrind's "definitely lost" (clique leaders).
 *
 * Grouping and writing are leakreport.c's.  Every list is on mmap; the
 * marking takes no lock, so it may run while other threads are stopped
 * holding any.
 */
#define _GNU_SOURCE
#include "leakscan.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend.h"
#include "canary.h"
#include "epoch.h"
#include "fb.h"
#include "track.h"

/* ---------------------------------------------------------------------- */
/* Growable arrays on mmap                                                 */

void *fb_leakscan_vec_push(struct fb_leakscan_vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4096;
        void *p = v->p ? mremap(v->p, v->cap * v->elem, cap * v->elem, MREMAP_MAYMOVE)
                       : mmap(NULL, cap * v->elem, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        v->p = p;
        v->cap = cap;
    }
    return v->p + v->elem * v->n++;
}

void fb_leakscan_vec_free(struct fb_leakscan_vec *v)
{
    if (v->p)
        munmap(v->p, v->cap * v->elem);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* ---------------------------------------------------------------------- */
/* Blocks                                                                  */

struct fb_leakscan_vec fb_leakscan_blocks = {.elem = sizeof(struct fb_leakscan_block)};
static struct fb_leakscan_vec work = {.elem = sizeof(uint32_t)};
static uintptr_t blocks_lo, blocks_hi;

/* Which 64 KiB chunks hold a block, by chunk number modulo 2^16 (chunks
 * 4 GiB apart share a bit): most words a scan reads are no pointer into a
 * block, and the anonymous mappings of a program's own allocator (pymalloc
 * arenas, a GC heap) are full of pointers that lie between the buffers and
 * jemalloc's memory, inside [blocks_lo, blocks_hi), where each one cost a
 * binary search.  A clear bit rejects the word exactly. */
#define CHUNK_SHIFT 16
#define CHUNK_BITS 65536
FB_BIG_BSS static uint64_t chunk_map[CHUNK_BITS / 64];

static void map_chunks(void)
{
    memset(chunk_map, 0, sizeof chunk_map);
    for (size_t i = 0; i < fb_leakscan_blocks.n; i++) {
        const struct fb_leakscan_block *b = fb_leakscan_blk(i);
        uintptr_t c = b->addr >> CHUNK_SHIFT;
        uintptr_t last = (b->addr + b->usable - 1) >> CHUNK_SHIFT;
        if (last - c >= CHUNK_BITS) {
            memset(chunk_map, 0xff, sizeof chunk_map);
            return;
        }
        for (; c <= last; c++)
            chunk_map[(c % CHUNK_BITS) / 64] |= (uint64_t)1 << (c % 64);
    }
}

static void add_big(void *ctx, uintptr_t addr, size_t size, uint32_t site)
{
    (void)ctx;
    if (fb_canary_on) {
        size_t inner = fb_canary_request(addr);
        if (inner)
            size = inner;
    }
    struct fb_leakscan_block *b = fb_leakscan_vec_push(&fb_leakscan_blocks);
    if (b)
        *b = (struct fb_leakscan_block){addr, fb_je_usable((void *)addr), size, site, 0};
}

void fb_leakscan_collect(void)
{
    fb_leakscan_blocks.n = 0;
    if (fb_g.size) {
        uint32_t used = fb_epoch_slots_used();
        size_t granules = fb_g.slot_size >> FB_GRANULE_SHIFT;
        for (uint32_t s = 0; s < used; s++) {
            uintptr_t base = fb_g.base + ((uintptr_t)s << fb_g.slot_shift);
            const uint8_t *map = fb_g.map + ((base - fb_g.base) >> FB_GRANULE_SHIFT);
            for (size_t g = 0; g < granules;) {
                unsigned v = map[g];
                if (v - 1u >= FB_MAX_GRANULES) {
                    g++;
                    continue;
                }
                uintptr_t addr = base + (g << FB_GRANULE_SHIFT);
                size_t usable = (size_t)v << FB_GRANULE_SHIFT, request;
                uint32_t site = fb_track_buffer_site((void *)addr, usable, &request);
                if (fb_canary_on && site) {
                    size_t inner = fb_canary_request(addr);
                    if (inner)
                        request = inner;       /* the program's size */
                }
                struct fb_leakscan_block *b =
                    site ? fb_leakscan_vec_push(&fb_leakscan_blocks) : NULL;
                if (b)
                    *b = (struct fb_leakscan_block){addr, usable, request, site, 0};
                g += v;
            }
        }
    }
    fb_track_big_each(add_big, NULL);
}

static int by_addr(const void *x, const void *y)
{
    const struct fb_leakscan_block *a = x, *b = y;
    return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* Sorting runs with the recursion guard set and no thread stopped, so
 * qsort's temporary buffer may come from malloc (jemalloc, untracked). */
void fb_leakscan_sort(void)
{
    struct fb_leakscan_block *a = (struct fb_leakscan_block *)fb_leakscan_blocks.p;
    size_t n = fb_leakscan_blocks.n;
    qsort(a, n, sizeof *a, by_addr);
    blocks_lo = n ? a[0].addr : 1;
    blocks_hi = n ? a[n - 1].addr + a[n - 1].usable : 0;
    map_chunks();
}

/* In this file, inlined into the scan loop. */
static long find(uintptr_t w)
{
    if (w < blocks_lo || w >= blocks_hi)
        return -1;
    uintptr_t c = (w >> CHUNK_SHIFT) % CHUNK_BITS;
    if (!((chunk_map[c / 64] >> (c % 64)) & 1))
        return -1;
    size_t lo = 0, hi = fb_leakscan_blocks.n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (fb_leakscan_blk(mid)->addr <= w)
            lo = mid;
        else
            hi = mid;
    }
    struct fb_leakscan_block *b = fb_leakscan_blk(lo);
    return (w >= b->addr && w < b->addr + b->usable) ? (long)lo : -1;
}

/* Marks blocks pointed to from [lo, hi) with state to (only blocks whose
 * state is in the set "from"), queueing them for scanning. */
static void scan(uintptr_t lo, uintptr_t hi, uint8_t to, long self)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
        uintptr_t w = *(const uintptr_t *)p;
        long i = find(w);
        if (i < 0 || i == self)
            continue;
        struct fb_leakscan_block *b = fb_leakscan_blk((size_t)i);
        int take = to == FB_LEAKSCAN_REACHABLE
                       ? b->state != FB_LEAKSCAN_REACHABLE
                       : (b->state == FB_LEAKSCAN_UNSEEN || b->state == FB_LEAKSCAN_DIRECT);
        if (!take)
            continue;
        b->state = to;
        uint32_t *slot = fb_leakscan_vec_push(&work);
        if (slot)
            *slot = (uint32_t)i;
    }
}

static void drain(uint8_t to, long self)
{
    while (work.n) {
        uint32_t i = ((uint32_t *)work.p)[--work.n];
        struct fb_leakscan_block *b = fb_leakscan_blk(i);
        scan(b->addr, b->addr + b->usable, to, self);
    }
}

/* Blocks the dynamic linker allocated (DTVs and TLS blocks of threads
 * whose stacks glibc keeps cached after they exit, link maps) are its own
 * bookkeeping, referenced from memory we cannot see as roots: they count
 * as reachable, as LeakSanitizer treats them. */
int fb_leakscan_from_dynamic_linker(uint32_t site)
{
    const struct fb_track_site *s = fb_track_site(site);
    const struct fb_track_module *m = s && s->depth ? fb_track_module(s->modules[0]) : NULL;
    if (!m)
        return 0;
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld.so", 5) == 0;
}

void fb_leakscan_mark_linker_blocks(void)
{
    for (size_t i = 0; i < fb_leakscan_blocks.n; i++) {
        struct fb_leakscan_block *b = fb_leakscan_blk(i);
        if (b->state == FB_LEAKSCAN_REACHABLE || !fb_leakscan_from_dynamic_linker(b->site))
            continue;
        b->state = FB_LEAKSCAN_REACHABLE;
        scan(b->addr, b->addr + b->usable, FB_LEAKSCAN_REACHABLE, -1);
        drain(FB_LEAKSCAN_REACHABLE, -1);
    }
}

/* A candidate leak that was freed while we looked (between collecting the
 * blocks and stopping the threads) is not a leak. */
int fb_leakscan_still_live(const struct fb_leakscan_block *b, int stopped)
{
    if (fb_epoch_owns((void *)b->addr)) {
        unsigned v = fb_g.map[(b->addr - fb_g.base) >> FB_GRANULE_SHIFT];
        return v - 1u < FB_MAX_GRANULES && ((size_t)v << FB_GRANULE_SHIFT) == b->usable;
    }
    /* With threads parked (one may hold a shard lock) read without it;
     * otherwise take the lock (a running thread may grow the table). */
    return stopped ? fb_track_big_present_stopped(b->addr)
                   : fb_track_big_lookup(b->addr, NULL, NULL);
}

void fb_leakscan_classify(void)
{
    for (size_t i = 0; i < fb_leakscan_blocks.n; i++) {
        struct fb_leakscan_block *b = fb_leakscan_blk(i);
        if (b->state != FB_LEAKSCAN_UNSEEN)
            continue;
        b->state = FB_LEAKSCAN_DIRECT;
        scan(b->addr, b->addr + b->usable, FB_LEAKSCAN_INDIRECT, (long)i);
        drain(FB_LEAKSCAN_INDIRECT, (long)i);
    }
}

void fb_leakscan_drop_freed(int stopped)
{
    for (size_t i = 0; i < fb_leakscan_blocks.n; i++) {
        struct fb_leakscan_block *b = fb_leakscan_blk(i);
        if ((b->state == FB_LEAKSCAN_DIRECT || b->state == FB_LEAKSCAN_INDIRECT) &&
            !fb_leakscan_still_live(b, stopped))
            b->state = FB_LEAKSCAN_GONE;
    }
}

long fb_leakscan_find(uintptr_t w)
{
    return find(w);
}

void fb_leakscan_mark(uintptr_t lo, uintptr_t hi)
{
    scan(lo, hi, FB_LEAKSCAN_REACHABLE, -1);
}

void fb_leakscan_drain(void)
{
    drain(FB_LEAKSCAN_REACHABLE, -1);
}

void fb_leakscan_free(void)
{
    fb_leakscan_vec_free(&fb_leakscan_blocks);
    fb_leakscan_vec_free(&work);
}
