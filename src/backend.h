/*
 * The fallback allocator: jemalloc, linked directly and reached through
 * its non-standard entry points (mallocx, rallocx, dallocx, sdallocx,
 * sallocx), which do not clash with the standard names we export.
 *
 * Differences from glibc that we paper over here:
 *  - jemalloc gives 8-byte alignment to requests under 9 bytes; glibc
 *    gives 16, and programs rely on it;
 *  - mallocx(0) is undefined; size 0 becomes 1;
 *  - jemalloc does not set errno; callers set ENOMEM on NULL.
 */
#ifndef FB_BACKEND_H
#define FB_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <jemalloc/jemalloc.h>

#include "fb.h"

/* Larger than any object can be: glibc refuses above PTRDIFF_MAX. */
#define FB_MAX_REQUEST ((size_t)PTRDIFF_MAX)

FB_INLINE size_t fb_je_size(size_t n)
{
    return n < FB_ALIGN ? FB_ALIGN : n;
}

FB_INLINE void *fb_je_malloc(size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    return mallocx(fb_je_size(n), 0);
}

FB_INLINE void *fb_je_calloc(size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    return mallocx(fb_je_size(n), MALLOCX_ZERO);
}

/* align: a power of two. */
FB_INLINE void *fb_je_memalign(size_t align, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    if (align <= FB_ALIGN)
        return mallocx(fb_je_size(n), 0);
    return mallocx(n ? n : 1, MALLOCX_LG_ALIGN(__builtin_ctzl(align)));
}

FB_INLINE void *fb_je_realloc(void *p, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    return rallocx(p, fb_je_size(n), 0);
}

FB_INLINE void fb_je_free(void *p)
{
    dallocx(p, 0);
}

FB_INLINE void fb_je_free_sized(void *p, size_t n)
{
    sdallocx(p, fb_je_size(n), 0);
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
