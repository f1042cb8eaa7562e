/*
 * The fallback allocator: jemalloc, linked statically into libfbmalloc.so.
 *
 * meson.build builds it from Debian's libjemalloc_pic.a with every public
 * name renamed to fb_jemalloc_<name> (src/tools/jemalloc-embed.sh) and
 * hidden at link time, so jemalloc's malloc never clashes with the malloc
 * we export and nothing of jemalloc leaves the library.  Calls below are
 * therefore plain direct calls into jemalloc's own fast paths (malloc and
 * free with its thread cache: about 35 instructions, where the
 * x-functions cost about 90); no lookup at start-up, and never a call back
 * up into our exported names.
 *
 * Differences from glibc that we paper over here:
 *  - jemalloc gives 8-byte alignment to requests under 9 bytes; glibc
 *    gives 16, and programs rely on it;
 *  - malloc(0) must be unique: size 0 becomes 16 (mallocx(0) is undefined);
 *  - the x-functions do not set errno; callers set ENOMEM on NULL.
 */
#ifndef FB_BACKEND_H
#define FB_BACKEND_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <jemalloc/jemalloc.h>

#include "early.h"
#include "fb.h"

/* Larger than any object can be: glibc refuses above PTRDIFF_MAX. */
#define FB_MAX_REQUEST ((size_t)PTRDIFF_MAX)

/* jemalloc's public entry points, renamed at build time (meson.build).
 * Hidden: the calls bind inside the library, with no PLT or GOT. */
FB_HIDDEN void *fb_jemalloc_malloc(size_t n);
FB_HIDDEN void *fb_jemalloc_calloc(size_t k, size_t n);
FB_HIDDEN void *fb_jemalloc_realloc(void *p, size_t n);
FB_HIDDEN void fb_jemalloc_free(void *p);
FB_HIDDEN void *fb_jemalloc_mallocx(size_t n, int flags);
FB_HIDDEN size_t fb_jemalloc_sallocx(const void *p, int flags);
FB_HIDDEN int fb_jemalloc_mallctl(const char *name, void *oldp,
                                  size_t *oldlenp, void *newp, size_t newlen);

/*
 * Pointers that are never a jemalloc block, checked before one outside
 * the buffers reaches jemalloc (whose pointer lookup faults on addresses
 * it never mapped): misaligned ones, and every address outside the
 * memory jemalloc mapped.  jemalloc's mmap, munmap and sbrk calls are
 * renamed to ours (backend.c), which keep a map of its address space:
 * one entry per 64 KiB granule of the user address space (47 bits), in
 * leaves of 4 GiB (512 KiB) made on first use.  A root entry holds its
 * leaf's distance from the map's own leaf of zeros, so the zeroed root
 * means "no leaf" with no relocation at start-up, and the lookup is two
 * loads with no branch for a missing leaf.  A granule wholly inside a
 * range jemalloc mapped is FB_JE_FULL (almost every block: jemalloc maps
 * in steps of 2 MiB or more, and the ranges that touch are merged); one
 * that jemalloc's ranges only partly cover (their two ends) is
 * FB_JE_EDGE and is decided by the exact list of ranges (backend.c,
 * cold: about 50 instructions).  With 2 MiB granules a third of
 * python3's jemalloc frees took that way.  Exact, so a hit is never a
 * false report: a global of the program or of a library, a stack (any
 * thread's), memory the program mapped itself, and addresses jemalloc
 * has unmapped again are all caught.
 *
 * Inside jemalloc's memory, which pointers can be blocks: a start bit
 * per 16 bytes, set once a block given to the program has started there.
 * Every block taken from jemalloc for the program sets its bit
 * (fb_je_fresh), and a free whose bit is clear is of a pointer malloc
 * never returned, an interior one included: refused before jemalloc frees
 * the block around it (the next malloc would overlap the block the
 * program still uses).  The bits are only set, never cleared by a free,
 * so that in the steady state (jemalloc reuses the same addresses) malloc
 * and free only read them: no atomic operation and no cache line written
 * by two threads (with a lock bts on malloc and a lock btr on free,
 * larson, two threads freeing each other's blocks, took 1.28x as long).
 * They are cleared where jemalloc gives pages back (munmap, and madvise
 * DONTNEED or FREE, which jemalloc applies only to memory without
 * blocks), so a stale bit lasts only while jemalloc reuses memory for
 * blocks of another size without purging it: an interior pointer that
 * was the start of an earlier block there is missed (never a false
 * report).  A bit is set with an atomic or (blocks of different threads
 * share a word), and only the first time.
 *
 * Where the bits are: in the start shadow (below) for a window of 4 TiB
 * around jemalloc's first mapping; elsewhere, and when there is no
 * shadow, in a start map per granule (512 bytes, made with the granule's
 * entry, which points to it), read on the slow path only.  A granule
 * whose start map could not be made (an address-space limit) has its
 * pointers checked by the secret below only.
 *
 * Double frees (glibc's tcache "key", applied to jemalloc): free writes
 * a per-process secret, fb_je_mark, into the block's first word before
 * handing it to jemalloc, and every block taken from jemalloc for the
 * program clears it (fb_je_fresh; calloc's is zero; realloc copies the
 * old block's first word).  A free, or a realloc, that finds the secret
 * is given a block freed and not handed out since: refused before
 * jemalloc could put it on its free lists twice and hand it out twice.
 * jemalloc writes nothing into a freed region (its thread caches and
 * slab bitmaps are outside the blocks; junk filling is off in release
 * builds), so the mark lasts until the block is reused; a purged page
 * reads as zeros (not detected, never a false report).  A double free
 * after the block was reused cannot be seen.  The word is the block's
 * first: FBMALLOC_CANARY's freed mark, in its header's last word, stays.
 *
 * The start shadow: where the kernel lets us, the start bits of a window
 * of 4 TiB of address space around jemalloc's first mapping lie in one
 * mapping (32 GiB of address space, MAP_NORESERVE), made at that first
 * mmap, before jemalloc has a block.  A bit is then a subtraction, a
 * rotation, a load and a test away, with no lookup, and free's common
 * case needs no granule entry either (a set bit is a jemalloc block's start: bits
 * are set only there, and cleared where jemalloc gives memory back).
 * Pages of it exist only where bits were set (1/128 of jemalloc's
 * memory, as the per-granule maps); a read anywhere else, a bad
 * pointer's, finds the kernel's zero page.  The window, not the whole
 * 2^47 bytes (a shadow of 1 TiB), because valgrind refuses mappings
 * above 32 GiB, and callgrind is how instructions are counted here.
 * Outside the window (a program mapping terabytes), under an address-
 * space or data limit (ulimit -v or -d: the shadow would take 32 GiB of
 * the program's budget), and where the kernel refuses the mapping
 * (overcommit_memory 2), the window is empty and the per-granule start
 * maps serve, on the slow path.
 *
 * Cost on a jemalloc pair, in the window: a bit test on malloc, and on
 * free a bit test beside the secret's load, compare and store.
 */
#define FB_JE_WINDOW_SHIFT 42
struct fb_je_shadow {
    uintptr_t lo;                /* the window's first byte */
    uintptr_t bits;              /* bits in the window; 0: no shadow */
    uint64_t *map;
};
extern FB_HIDDEN struct fb_je_shadow fb_je_sh;

/* a's bit in the shadow, or an index >= fb_je_sh.bits if a is not in the
 * window or is misaligned: rotating right by 4 sends the low bits to the
 * top, as the buffers' free does. */
FB_INLINE uintptr_t fb_je_shadow_index(uintptr_t a)
{
    uintptr_t o = a - fb_je_sh.lo;
    return (o >> 4) | (o << 60);
}

/* Bit i (below fb_je_sh.bits) of the shadow.  The word is loaded and
 * tested in a register: bt with a memory operand and a register index
 * is microcoded (one instruction for callgrind, several times the time
 * of these three: python3 with PYTHONMALLOC=malloc ran 11% slower). */
FB_INLINE int fb_je_shadow_test(uintptr_t i)
{
    uint64_t w = __atomic_load_n(&fb_je_sh.map[i >> 6], __ATOMIC_RELAXED);
    return (w >> (i & 63)) & 1;
}

/* Sets bit i (below fb_je_sh.bits), atomically: other threads set bits
 * of the same word.  Apart from its callers, which need only the test. */
void fb_je_shadow_set(uintptr_t i);

#define FB_JE_GRAN_SHIFT 16
#define FB_JE_LEAF_SHIFT 32
#define FB_JE_LEAF_SIZE ((size_t)1 << (FB_JE_LEAF_SHIFT - FB_JE_GRAN_SHIFT))
#define FB_JE_ROOT_SIZE ((size_t)1 << (47 - FB_JE_LEAF_SHIFT))
#define FB_JE_STARTS_BYTES ((size_t)1 << (FB_JE_GRAN_SHIFT - 4 - 3))
/* An entry: its start map's address (FB_JE_STARTS_BYTES-aligned; 0 for a
 * granule of the shadow's window, or with none) | state; 0 for a granule
 * jemalloc never mapped. */
enum { FB_JE_NONE = 0, FB_JE_EDGE = 1, FB_JE_FULL = 2, FB_JE_STATE = 3 };
struct fb_je_space {
    /* First, so that the leaf address is the root entry plus the
     * struct's own address (one instruction less on every lookup). */
    uint64_t zero[FB_JE_LEAF_SIZE];             /* never written */
    uintptr_t _Atomic root[FB_JE_ROOT_SIZE];    /* leaf - zero (bytes); 0: none */
};
extern FB_HIDDEN struct fb_je_space fb_je_space;

/* The secret (never 0, so zeroed memory is never "freed"). */
extern FB_HIDDEN uint64_t fb_je_mark;
void fb_je_mark_init(void);

/* The exact answer for a pointer fb_je_in_full refused (backend.c). */
int fb_je_foreign_slow(uintptr_t a);

/* The entry of a's granule (a below 2^47); 0 where jemalloc has none. */
FB_INLINE uint64_t fb_je_entry(uintptr_t a)
{
    /* The leaf's offset, plus bits 16..31 of a from its low 32 bits. */
    uintptr_t leaf = atomic_load_explicit(&fb_je_space.root[a >> FB_JE_LEAF_SHIFT],
                                          memory_order_relaxed);
    const char *e = (const char *)fb_je_space.zero + leaf +
                    ((uintptr_t)((uint32_t)a >> FB_JE_GRAN_SHIFT) << 3);
    return __atomic_load_n((const uint64_t *)e, __ATOMIC_RELAXED);
}

/* The start map of entry e (not 0). */
FB_INLINE uint64_t *fb_je_starts(uint64_t e)
{
    return (uint64_t *)(uintptr_t)(e & ~(uint64_t)(FB_JE_STARTS_BYTES - 1));
}

/* a's bit in its granule's start map. */
FB_INLINE uint64_t fb_je_start_index(uintptr_t a)
{
    return (uint32_t)(uint16_t)a >> 4;
}

/* Bit i (0..4095) of start map m; a plain load: the bits a reader
 * needs were set before the block reached it.  Tested in a register, as
 * the shadow's (fb_je_shadow_test). */
FB_INLINE int fb_je_start_test(const uint64_t *m, uint64_t i)
{
    return (__atomic_load_n(&m[i >> 6], __ATOMIC_RELAXED) >> (i & 63)) & 1;
}

/* Sets bit i of start map m (atomically: other threads set bits of the
 * same word), unless it is set already: the common case costs a read. */
FB_INLINE void fb_je_start_set(uint64_t *m, uint64_t i)
{
    if (fb_unlikely(!fb_je_start_test(m, i)))
        __atomic_fetch_or(&m[i >> 6], (uint64_t)1 << (i & 63), __ATOMIC_RELAXED);
}

/* 1 if p is aligned and lies in a granule wholly inside jemalloc's
 * memory: the common case, decided inline; else fb_je_foreign_slow
 * decides. */
FB_INLINE int fb_je_in_full(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    /* Every block we hand out is 16-byte aligned (fb_je_size), so a
     * misaligned pointer is none: free(p + 8) of a jemalloc block, which
     * jemalloc would take for the block itself (glibc: "free(): invalid
     * pointer").  Above 2^47 lies no user memory (and no root entry). */
    if (fb_unlikely(a & (~(((uintptr_t)1 << 47) - 1) | (FB_ALIGN - 1))))
        return 0;
    return (fb_je_entry(a) & FB_JE_STATE) == FB_JE_FULL;
}

FB_INLINE int fb_je_foreign(const void *p)
{
    return !fb_je_in_full(p) && fb_je_foreign_slow((uintptr_t)p);
}

/* Is the start bit of a (not fb_je_foreign) set?  From the shadow in its
 * window, else from the granule's start map; 1 where there is none (a
 * granule made under an address-space limit: nothing to tell).  The
 * early arena's blocks (early.h) have their bits there, never in the
 * shadow or a start map: asked only when those say no. */
FB_INLINE int fb_je_start_bit(uintptr_t a)
{
    uintptr_t i = fb_je_shadow_index(a);
    if (fb_likely(i < fb_je_sh.bits)) {
        if (fb_likely(fb_je_shadow_test(i)))
            return 1;
    } else {
        uint64_t e = fb_je_entry(a);
        if (e >= FB_JE_STARTS_BYTES ? fb_je_start_test(fb_je_starts(e), fb_je_start_index(a))
                                    : !fb_early_owns((const void *)a))
            return 1;
    }
    return fb_early_owns((const void *)a) && fb_early_is_start(a);
}

/* Can p be a block the program holds?  Its start bit is set and it
 * holds no secret.  p: not fb_je_foreign. */
FB_INLINE int fb_je_live(const void *p)
{
    return *(const volatile uint64_t *)p != fb_je_mark && fb_je_start_bit((uintptr_t)p);
}

/* For a report on a p that is not live: was it freed (the secret in its
 * first word), rather than never a block? */
FB_INLINE int fb_je_was_freed(const void *p)
{
    return *(const volatile uint64_t *)p == fb_je_mark;
}

/* Records that a block given to the program starts at p (not NULL). */
FB_INLINE void fb_je_started(void *p)
{
    uintptr_t a = (uintptr_t)p, i = fb_je_shadow_index(a);
    if (fb_likely(i < fb_je_sh.bits)) {
        if (fb_unlikely(!fb_je_shadow_test(i)))
            fb_je_shadow_set(i);
        return;
    }
    uint64_t e = fb_je_entry(a);
    if (fb_likely(e >= FB_JE_STARTS_BYTES))
        fb_je_start_set(fb_je_starts(e), fb_je_start_index(a));
}

/* Every block taken from jemalloc for the program passes through here. */
FB_INLINE void *fb_je_fresh(void *p)
{
    if (fb_likely(p != NULL)) {
        fb_je_started(p);
        *(uint64_t *)p = 0;
    }
    return p;
}

FB_INLINE size_t fb_je_size(size_t n)
{
    return n < FB_ALIGN ? FB_ALIGN : n;
}

/*
 * The early arena (early.h) serves every request that would go to
 * jemalloc until one does not fit (or its block limit is reached); then
 * jemalloc serves them all, for good (backend.c).  Its blocks are then told apart where one is freed,
 * resized or measured (fb_je_release, fb_je_realloc, fb_je_usable: an
 * address test), and are checked as jemalloc's are: their start bits
 * (fb_je_start_bit), the freed mark in their first word, cleared when
 * handed out.  They have no bit in the shadow, so fb_je_take_fast never
 * takes one (the free's slow path does).  align: a power of two, at
 * least FB_ALIGN; zero: calloc's.
 */
void *fb_je_early(size_t align, size_t n, int zero);
void *fb_je_early_realloc(void *p, size_t n);

/* No size check: jemalloc's malloc itself refuses, with ENOMEM, anything
 * above its largest size class (far below FB_MAX_REQUEST).  _open: once
 * the early arena is closed (for good). */
FB_INLINE void *fb_je_malloc_open(size_t n)
{
    return fb_je_fresh(fb_jemalloc_malloc(fb_je_size(n)));
}

FB_INLINE void *fb_je_malloc(size_t n)
{
    if (fb_unlikely(fb_early_on()))
        return fb_je_early(FB_ALIGN, n, 0);
    return fb_je_malloc_open(n);
}

FB_INLINE void *fb_je_calloc(size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (fb_unlikely(fb_early_on()))
        return fb_je_early(FB_ALIGN, n, 1);
    void *p = fb_jemalloc_calloc(1, fb_je_size(n));
    if (p)
        fb_je_started(p);            /* zeroed: no secret to clear */
    return p;
}

/* align: a power of two. */
FB_INLINE void *fb_je_memalign(size_t align, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (align <= FB_ALIGN)
        return fb_je_malloc(n);
    if (fb_unlikely(fb_early_on()))
        return fb_je_early(align, n, 0);
    return fb_je_fresh(fb_jemalloc_mallocx(n ? n : 1,
                                           MALLOCX_LG_ALIGN(__builtin_ctzl(align))));
}

/* p: a live block (callers checked); its first word, never the secret,
 * is copied to a moved block. */
FB_INLINE void *fb_je_realloc(void *p, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (fb_unlikely(fb_early_owns(p)))
        return fb_je_early_realloc(p, n);
    void *q = fb_jemalloc_realloc(p, fb_je_size(n));
    if (q)
        fb_je_started(q);
    return q;
}

/* The free itself, the block already taken (the secret in it). */
FB_INLINE void fb_je_release(void *p)
{
    if (fb_unlikely(fb_early_owns(p)))
        fb_early_free(p);
    else
        fb_jemalloc_free(p);
}

/* fb_je_release of a block fb_je_take_fast took: always jemalloc's (the
 * early arena's blocks have no bit in the shadow), so no address test. */
FB_INLINE void fb_je_release_fast(void *p)
{
    fb_jemalloc_free(p);
}

/* Before freeing p, a pointer known to lie in jemalloc's memory: 1 if
 * no live block starts at p (a double free or an interior pointer: leave
 * it alone).  Else takes it (leaves the secret) and returns 0. */
FB_INLINE int fb_je_take_inside(void *p)
{
    if (fb_unlikely(!fb_je_live(p)))
        return 1;
    *(uint64_t *)p = fb_je_mark;
    return 0;
}

/* Before freeing p: 2 if it is no jemalloc block at all (fb_je_foreign),
 * 1 if no live block starts there (fb_je_take_inside): leave it alone.
 * Else takes it and returns 0. */
FB_INLINE int fb_je_take(void *p)
{
    if (fb_unlikely(fb_je_foreign(p)))
        return 2;
    return fb_je_take_inside(p);
}

/* free's common case, decided inline: 0 if a live jemalloc block starts
 * at p (taken: free it), 1 if p was freed before (the secret), -1 if
 * this cannot tell here (outside the shadow's window, no block start, a
 * misaligned pointer: fb_je_take decides, on the slow path). */
FB_INLINE int fb_je_take_fast(void *p)
{
    uintptr_t i = fb_je_shadow_index((uintptr_t)p);
    if (fb_unlikely(i >= fb_je_sh.bits) || !fb_je_shadow_test(i))
        return -1;
    uint64_t mark = fb_je_mark;
    if (fb_unlikely(*(volatile uint64_t *)p == mark))
        return 1;
    *(uint64_t *)p = mark;
    return 0;
}

/* Frees a live jemalloc block (callers checked fb_je_live). */
FB_INLINE void fb_je_free(void *p)
{
    *(uint64_t *)p = fb_je_mark;
    fb_je_release(p);
}

FB_INLINE size_t fb_je_usable(const void *p)
{
    if (fb_unlikely(fb_early_owns(p)))
        return fb_early_usable(p);
    return fb_jemalloc_sallocx(p, 0);
}

/* jemalloc statistics for mallinfo and the report: 0 when unknown. */
struct fb_je_info {
    size_t allocated, active, resident, mapped;
};
void fb_je_info(struct fb_je_info *out);
/* jemalloc's fork handlers (backend.c): prepare after our own locks are
 * taken, parent and child before ours are released. */
void fb_je_fork_prepare(void);
void fb_je_fork_parent(void);
void fb_je_fork_child(void);

/* Returns memory jemalloc holds unused to the OS; 1 if it could. */
int fb_je_trim(void);

#endif
