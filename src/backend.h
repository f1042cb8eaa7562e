/*
 * The fallback allocator: jemalloc, linked directly.
 *
 * Our library exports malloc/free/..., so those names resolve to us, not
 * to jemalloc.  jemalloc's non-standard entry points (mallocx, dallocx,
 * ...) do not clash, but cost about 90 instructions each where its own
 * malloc and free fast paths (thread cache) cost about 35 (callgrind,
 * malloc+free of 2000 bytes: 292 vs 100 per pair).  So at start-up we find
 * jemalloc's real malloc, free, calloc and realloc in its dynamic symbol
 * table (backend.c, no dlsym: that may allocate and clobbers dlerror());
 * until then, or if that fails, the x-functions serve.
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
#include <stdint.h>
#include <jemalloc/jemalloc.h>

#include "fb.h"

/* Larger than any object can be: glibc refuses above PTRDIFF_MAX. */
#define FB_MAX_REQUEST ((size_t)PTRDIFF_MAX)

struct fb_je_fns {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
};
extern FB_HIDDEN struct fb_je_fns fb_je;

/* Finds jemalloc's own entry points (once, at initialisation). */
void fb_je_resolve(void);

FB_INLINE size_t fb_je_size(size_t n)
{
    return n < FB_ALIGN ? FB_ALIGN : n;
}

FB_INLINE void *fb_je_malloc(size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (fb_likely(fb_je.malloc != NULL))
        return fb_je.malloc(fb_je_size(n));
    return mallocx(fb_je_size(n), 0);
}

FB_INLINE void *fb_je_calloc(size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (fb_likely(fb_je.calloc != NULL))
        return fb_je.calloc(1, fb_je_size(n));
    return mallocx(fb_je_size(n), MALLOCX_ZERO);
}

/* align: a power of two. */
FB_INLINE void *fb_je_memalign(size_t align, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (align <= FB_ALIGN)
        return fb_je_malloc(n);
    return mallocx(n ? n : 1, MALLOCX_LG_ALIGN(__builtin_ctzl(align)));
}

FB_INLINE void *fb_je_realloc(void *p, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (fb_likely(fb_je.realloc != NULL))
        return fb_je.realloc(p, fb_je_size(n));
    return rallocx(p, fb_je_size(n), 0);
}

FB_INLINE void fb_je_free(void *p)
{
    if (fb_likely(fb_je.free != NULL))
        fb_je.free(p);
    else
        dallocx(p, 0);
}

FB_INLINE size_t fb_je_usable(const void *p)
{
    return sallocx(p, 0);
}

/* jemalloc statistics for mallinfo and the report: 0 when unknown. */
struct fb_je_info {
    size_t allocated, active, resident, mapped;
};
void fb_je_info(struct fb_je_info *out);
/* Returns memory jemalloc holds unused to the OS; 1 if it could. */
int fb_je_trim(void);

#endif
