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

FB_INLINE size_t fb_je_size(size_t n)
{
    return n < FB_ALIGN ? FB_ALIGN : n;
}

/* No size check: jemalloc's malloc itself refuses, with ENOMEM, anything
 * above its largest size class (far below FB_MAX_REQUEST). */
FB_INLINE void *fb_je_malloc(size_t n)
{
    return fb_jemalloc_malloc(fb_je_size(n));
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
    return fb_jemalloc_mallocx(n ? n : 1,
                               MALLOCX_LG_ALIGN(__builtin_ctzl(align)));
}

FB_INLINE void *fb_je_realloc(void *p, size_t n)
{
    if (fb_unlikely(n > FB_MAX_REQUEST))
        return NULL;
    return fb_jemalloc_realloc(p, fb_je_size(n));
}

FB_INLINE void fb_je_free(void *p)
{
    fb_jemalloc_free(p);
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
