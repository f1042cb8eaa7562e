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
 * Double frees of jemalloc blocks (glibc's tcache "key", applied to
 * jemalloc): free writes a per-process secret into the block's first word
 * before handing it to jemalloc, and everything that takes a block from
 * jemalloc for the program clears it (fb_je_fresh; calloc zeroes it, and
 * realloc copies the old block's first word over it).  A free, or a
 * realloc, that finds the secret there is given a block freed and not
 * handed out since: a double free, refused before jemalloc could put the
 * block on its free lists twice and hand it out twice.  jemalloc writes
 * nothing into a freed region (its thread caches and slab bitmaps are
 * outside the blocks; junk filling is off in release builds), so the mark
 * lasts until the block is reused; a purged page reads as zeros (no
 * mark: not detected, never a false report).  The word is the block's
 * first: FBMALLOC_CANARY's freed mark, in its header's last word, stays.
 * Cost: a load, a compare and a store on free, a store on malloc.
 *
 * What this cannot see: a double free after the block was reused, and
 * (with fb_je_foreign below) interior pointers of jemalloc blocks, which
 * jemalloc's public interface has no cheap way to check (its size lookup,
 * sallocx, costs about 50 instructions: more than the free itself).
 */
extern FB_HIDDEN uint64_t fb_je_mark;

/* Chooses the secret (never 0, so zeroed memory is never "freed"). */
void fb_je_mark_init(void);

/*
 * Pointers that are never a jemalloc block, checked before one outside
 * the buffers reaches jemalloc (whose pointer lookup faults on addresses
 * it never mapped): misaligned ones, and every address outside the
 * memory jemalloc mapped.  jemalloc's mmap, munmap and sbrk calls are
 * renamed to ours (backend.c), which keep a map of its address space:
 * one byte per 64 KiB granule of the user address space (47 bits), in
 * leaves of 4 GiB (64 KiB) made on first use.  A root entry holds its
 * leaf's distance from the map's own leaf of zeros, so the zeroed root
 * means "no leaf" with no relocation at start-up, and the test is two
 * loads and a compare with no branch for a missing leaf (about 10
 * instructions, as many as the two range tests it replaced).  A granule
 * wholly inside a range jemalloc mapped reads FB_JE_FULL (almost every
 * block: jemalloc maps in steps of 2 MiB or more, and the ranges that
 * touch are merged); one that jemalloc's ranges only partly cover (their
 * two ends) reads FB_JE_EDGE and is decided by the exact list of ranges
 * (backend.c, cold: about 50 instructions).  With 2 MiB granules a
 * third of python3's jemalloc frees took that way.  Exact, so a hit is
 * never a false report: a global of the program or of a library, a
 * stack (any thread's), memory the program mapped itself, and addresses
 * jemalloc has unmapped again are all caught; a pointer inside a jemalloc
 * block (not its start) is not (FBMALLOC_CHECK catches it).
 */
#define FB_JE_GRAN_SHIFT 16
#define FB_JE_LEAF_SHIFT 32
#define FB_JE_LEAF_SIZE ((size_t)1 << (FB_JE_LEAF_SHIFT - FB_JE_GRAN_SHIFT))
#define FB_JE_ROOT_SIZE ((size_t)1 << (47 - FB_JE_LEAF_SHIFT))
enum { FB_JE_NONE = 0, FB_JE_EDGE = 1, FB_JE_FULL = 2 };
struct fb_je_space {
    uintptr_t _Atomic root[FB_JE_ROOT_SIZE];    /* leaf - zero; 0: none */
    uint8_t zero[FB_JE_LEAF_SIZE];              /* never written */
};
extern FB_HIDDEN struct fb_je_space fb_je_space;

/* The exact answer for a pointer fb_je_in_full refused (backend.c). */
int fb_je_foreign_slow(uintptr_t a);

/* 1 if p lies in a granule wholly inside jemalloc's memory and is aligned:
 * the common case, decided inline; else fb_je_foreign_slow decides. */
FB_INLINE int fb_je_in_full(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    /* Every block we hand out is 16-byte aligned (fb_je_size), so a
     * misaligned pointer is none: free(p + 8) of a jemalloc block, which
     * jemalloc would take for the block itself (glibc: "free(): invalid
     * pointer").  Above 2^47 lies no user memory (and no root entry). */
    if (fb_unlikely(a & (~(((uintptr_t)1 << 47) - 1) | (FB_ALIGN - 1))))
        return 0;
    /* The leaf index: bits 16..31, from the low 32 bits alone. */
    uintptr_t at = atomic_load_explicit(&fb_je_space.root[a >> FB_JE_LEAF_SHIFT],
                                        memory_order_relaxed) +
                   ((uint32_t)a >> FB_JE_GRAN_SHIFT);
    return fb_je_space.zero[at] == FB_JE_FULL;
}

FB_INLINE int fb_je_foreign(const void *p)
{
    return !fb_je_in_full(p) && fb_je_foreign_slow((uintptr_t)p);
}

/* Was p freed by us and not handed out since?  p: a jemalloc block (any
 * readable pointer of at least 8 bytes). */
FB_INLINE int fb_je_freed(const void *p)
{
    return *(const volatile uint64_t *)p == fb_je_mark;
}

/* Every block taken from jemalloc for the program passes through here. */
FB_INLINE void *fb_je_fresh(void *p)
{
    if (fb_likely(p != NULL))
        *(uint64_t *)p = 0;
    return p;
}

FB_INLINE size_t fb_je_size(size_t n)
{
    return n < FB_ALIGN ? FB_ALIGN : n;
}

/* No size check: jemalloc's malloc itself refuses, with ENOMEM, anything
 * above its largest size class (far below FB_MAX_REQUEST). */
FB_INLINE void *fb_je_malloc(size_t n)
{
    return fb_je_fresh(fb_jemalloc_malloc(fb_je_size(n)));
}

FB_INLINE void *fb_je_calloc(size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    return fb_jemalloc_calloc(1, fb_je_size(n));
}

/* align: a power of two. */
FB_INLINE void *fb_je_memalign(size_t align, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (align <= FB_ALIGN)
        return fb_je_malloc(n);
    return fb_je_fresh(fb_jemalloc_mallocx(n ? n : 1,
                                           MALLOCX_LG_ALIGN(__builtin_ctzl(align))));
}

FB_INLINE void *fb_je_realloc(void *p, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    return fb_jemalloc_realloc(p, fb_je_size(n));
}

/* The free itself, without the mark. */
FB_INLINE void fb_je_release(void *p)
{
    fb_jemalloc_free(p);
}

/* Before freeing p, a pointer known to lie in jemalloc's memory: 1 if p
 * was already freed: leave it alone.  Else marks it freed and returns 0. */
FB_INLINE int fb_je_take_inside(void *p)
{
    uint64_t mark = fb_je_mark;
    if (fb_unlikely(*(volatile uint64_t *)p == mark))
        return 1;
    *(uint64_t *)p = mark;
    return 0;
}

/* Before freeing p: 1 if p was already freed, 2 if it is no jemalloc
 * block at all (fb_je_foreign): leave it alone.  Else marks it freed and
 * returns 0. */
FB_INLINE int fb_je_take(void *p)
{
    if (fb_unlikely(fb_je_foreign(p)))
        return 2;
    return fb_je_take_inside(p);
}

/* Frees a live jemalloc block (callers check fb_je_freed first), leaving
 * the freed mark in it. */
FB_INLINE void fb_je_free(void *p)
{
    *(uint64_t *)p = fb_je_mark;
    fb_je_release(p);
}

FB_INLINE size_t fb_je_usable(const void *p)
{
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
