/*
 * The exported malloc family.  This file only dispatches, to the dispatch
 * layer (alloc.h) and, for the control and public interfaces, to the
 * modules that answer them.  Semantics follow glibc 2.36:
 *
 *  - every result is 16-byte aligned; malloc(0) is a unique pointer;
 *  - calloc/reallocarray overflow and requests above PTRDIFF_MAX give
 *    NULL with errno = ENOMEM;
 *  - realloc(p, 0) frees p and returns NULL; a failed realloc keeps p;
 *  - posix_memalign checks alignment (power of two, multiple of
 *    sizeof(void *)) and leaves *memptr untouched on error; aligned_alloc
 *    and memalign round an odd alignment up, as glibc 2.36 does;
 *  - free and malloc_usable_size preserve errno.
 *
 * jemalloc exports no pvalloc, cfree or __libc_* names, so a program (or
 * glibc itself) calling those would otherwise reach glibc's allocator and
 * hand its blocks to ours: we provide every one of them.
 */
#include <errno.h>
#include <setjmp.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "backend.h"
#include "fb.h"
#include "fbmalloc.h"
#include "leak.h"
#include "platform.h"
#include "stats.h"

#define FB_ALIAS(name) \
    __attribute__((alias(#name), copy(name), visibility("default")))

/* The program's call site, for lifetime routing (route.h). */
#define FB_CALLER ((uintptr_t)__builtin_return_address(0))

FB_EXPORT void *malloc(size_t n)
{
    return fb_alloc_malloc_tail(n);
}

FB_EXPORT void free(void *p)
{
    fb_alloc_free(p);
}

FB_EXPORT void *calloc(size_t count, size_t size)
{
    size_t n;
    if (fb_unlikely(__builtin_mul_overflow(count, size, &n))) {
        errno = ENOMEM;
        return NULL;
    }
    return fb_alloc_calloc(n, FB_CALLER);
}

FB_EXPORT void *realloc(void *p, size_t n)
{
    return fb_alloc_realloc(p, n, FB_CALLER);
}

FB_EXPORT void *reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (fb_unlikely(__builtin_mul_overflow(count, size, &n))) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

/* glibc 2.36's memalign/aligned_alloc: an alignment that is not a power
 * of two is rounded up to the next one; absurd ones fail with EINVAL. */
static void *memalign_glibc(size_t align, size_t n)
{
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align & (align - 1))
        align = (size_t)1 << (64 - __builtin_clzl(align));
    return fb_alloc_aligned(align, n);
}

FB_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (align % sizeof(void *) != 0 || (align & (align - 1)) || align == 0)
        return EINVAL;
    int saved = errno;
    void *p = fb_alloc_aligned(align, n);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

FB_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    return memalign_glibc(align, n);
}

FB_EXPORT void *memalign(size_t align, size_t n)
{
    return memalign_glibc(align, n);
}

FB_EXPORT void *valloc(size_t n)
{
    return fb_alloc_aligned(fb_plat_page_size(), n);
}

FB_EXPORT void *pvalloc(size_t n)
{
    size_t page = fb_plat_page_size();
    size_t rounded = (n + page - 1) & ~(page - 1);
    if (rounded < n) {
        errno = ENOMEM;
        return NULL;
    }
    return fb_alloc_aligned(page, rounded ? rounded : page);
}

FB_EXPORT size_t malloc_usable_size(void *p)
{
    return fb_alloc_usable(p);
}

FB_EXPORT void cfree(void *p)
{
    fb_alloc_free(p);
}

/* glibc's internal names, reached by some programs and by glibc itself. */
FB_EXPORT void *__libc_malloc(size_t n) FB_ALIAS(malloc);
FB_EXPORT void __libc_free(void *p) FB_ALIAS(free);
FB_EXPORT void *__libc_calloc(size_t c, size_t n) FB_ALIAS(calloc);
FB_EXPORT void *__libc_realloc(void *p, size_t n) FB_ALIAS(realloc);
FB_EXPORT void *__libc_memalign(size_t a, size_t n) FB_ALIAS(memalign);
FB_EXPORT void *__libc_valloc(size_t n) FB_ALIAS(valloc);
FB_EXPORT void *__libc_pvalloc(size_t n) FB_ALIAS(pvalloc);
FB_EXPORT int __posix_memalign(void **o, size_t a, size_t n) FB_ALIAS(posix_memalign);

/* ---- C++ operator new and delete, every form ----
 *
 * libstdc++'s operators would reach our malloc anyway, but Debian's
 * libjemalloc.so.2 (a dependency of ours) exports its own operator new:
 * in a C program that later dlopens C++ code, those would win the symbol
 * lookup and bypass us.  Defining them here settles it, and saves a hop.
 * On failure: the new_handler loop, then std::bad_alloc (cxx.c).
 */
void *fb_cxx_new_fail(size_t n, size_t align, int nothrow);

#define FB_NEW(name, ...)                                                    \
    FB_EXPORT void *name(size_t n, ##__VA_ARGS__)
#define FB_UNUSED(x) (void)(x)

FB_NEW(_Znwm)
{
    void *p = fb_alloc_malloc(n, FB_CALLER);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, 0, 0);
}
FB_NEW(_Znam)
{
    void *p = fb_alloc_malloc(n, FB_CALLER);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, 0, 0);
}
FB_NEW(_ZnwmRKSt9nothrow_t, const void *tag)
{
    FB_UNUSED(tag);
    void *p = fb_alloc_malloc(n, FB_CALLER);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, 0, 1);
}
FB_NEW(_ZnamRKSt9nothrow_t, const void *tag)
{
    FB_UNUSED(tag);
    void *p = fb_alloc_malloc(n, FB_CALLER);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, 0, 1);
}
FB_NEW(_ZnwmSt11align_val_t, size_t al)
{
    void *p = fb_alloc_aligned(al, n);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, al, 0);
}
FB_NEW(_ZnamSt11align_val_t, size_t al)
{
    void *p = fb_alloc_aligned(al, n);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, al, 0);
}
FB_NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, size_t al, const void *tag)
{
    FB_UNUSED(tag);
    void *p = fb_alloc_aligned(al, n);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, al, 1);
}
FB_NEW(_ZnamSt11align_val_tRKSt9nothrow_t, size_t al, const void *tag)
{
    FB_UNUSED(tag);
    void *p = fb_alloc_aligned(al, n);
    return fb_likely(p != NULL) ? p : fb_cxx_new_fail(n, al, 1);
}

/* Every delete is a free: the size and alignment hints are not needed to
 * find a block, and trusting a wrong size hint could corrupt jemalloc. */
FB_EXPORT void _ZdlPv(void *p) FB_ALIAS(free);
FB_EXPORT void _ZdaPv(void *p) FB_ALIAS(free);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define FB_DELETE(name, ...)                                                 \
    FB_EXPORT void name(void *p, __VA_ARGS__) { fb_alloc_free(p); }
FB_DELETE(_ZdlPvm, size_t n)
FB_DELETE(_ZdaPvm, size_t n)
FB_DELETE(_ZdlPvRKSt9nothrow_t, const void *tag)
FB_DELETE(_ZdaPvRKSt9nothrow_t, const void *tag)
FB_DELETE(_ZdlPvSt11align_val_t, size_t al)
FB_DELETE(_ZdaPvSt11align_val_t, size_t al)
FB_DELETE(_ZdlPvmSt11align_val_t, size_t n, size_t al)
FB_DELETE(_ZdaPvmSt11align_val_t, size_t n, size_t al)
FB_DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, size_t al, const void *tag)
FB_DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, size_t al, const void *tag)
#pragma GCC diagnostic pop

/* ---- harmless answers for glibc's malloc control interface ---- */

FB_EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    return fb_je_trim();
}

FB_EXPORT int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;                        /* "success": nothing to tune */
}

static void fill_mallinfo(size_t *arena, size_t *hblkhd, size_t *uord,
                          size_t *ford)
{
    struct fb_je_info ji;
    fb_je_info(&ji);
    *arena = ji.mapped;
    *hblkhd = 0;
    *uord = ji.allocated;
    *ford = ji.active > ji.allocated ? ji.active - ji.allocated : 0;
}

FB_EXPORT struct mallinfo2 mallinfo2(void)
{
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    fill_mallinfo(&mi.arena, &mi.hblkhd, &mi.uordblks, &mi.fordblks);
    return mi;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
FB_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo mi;
    size_t arena, hblkhd, uord, ford;
    memset(&mi, 0, sizeof mi);
    fill_mallinfo(&arena, &hblkhd, &uord, &ford);
    mi.arena = (int)arena;
    mi.hblkhd = (int)hblkhd;
    mi.uordblks = (int)uord;
    mi.fordblks = (int)ford;
    return mi;
}
#pragma GCC diagnostic pop

FB_EXPORT void malloc_stats(void)
{
    fb_stats_write(2, 0);
}

FB_EXPORT int malloc_info(int options, FILE *fp)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    struct fbmalloc_stats st;
    fb_stats_collect(&st);
    fprintf(fp,
            "<malloc version=\"fbmalloc-%s\">\n"
            "<total type=\"buffers\" count=\"%lu\" size=\"%lu\"/>\n"
            "<total type=\"jemalloc\" count=\"%lu\" size=\"%lu\"/>\n"
            "<system type=\"current\" size=\"%lu\"/>\n"
            "</malloc>\n",
            FB_VERSION, (unsigned long)st.fast_mallocs,
            (unsigned long)st.fast_bytes, (unsigned long)st.backend_mallocs,
            (unsigned long)st.backend_bytes, (unsigned long)st.live_bytes);
    return 0;
}

/* ---- public API (include/fbmalloc.h) ---- */

FB_EXPORT const char *fbmalloc_version(void)
{
    return FB_VERSION;
}

FB_EXPORT int fbmalloc_stats_get(struct fbmalloc_stats *st)
{
    if (!st)
        return -1;
    fb_stats_collect(st);
    return 0;
}

FB_EXPORT int fbmalloc_stats_print(int fd)
{
    return fb_stats_write(fd, 0);
}

FB_EXPORT int fbmalloc_scope_begin(void)
{
    return fb_leak_scope_begin();
}

FB_EXPORT long fbmalloc_scope_end(void)
{
    return fb_leak_scope_end();
}

FB_EXPORT int fbmalloc_snapshot(int fd)
{
    return fb_leak_snapshot(fd < 0 ? -1 : fd);
}

FB_EXPORT FB_NOINLINE long fbmalloc_leak_check(void)
{
    /* Capture the caller's registers before our code reuses them, and its
     * stack pointer (just above our return address). */
    struct fb_leak_caller caller;
    memset(&caller, 0, sizeof caller);   /* setjmp leaves parts unwritten */
    setjmp(caller.regs);
    caller.sp = (uintptr_t)__builtin_frame_address(0) + 2 * sizeof(void *);
    return fb_leak_check(0, &caller);
}
