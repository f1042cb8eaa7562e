/*
 * Internal definitions shared by every module.
 *
 * Naming: each module prefixes its internal symbols (fb_epoch_*, fb_opt_*,
 * fb_je_*, fb_stats_*, fb_fmt_*, fb_plat_*); everything is hidden by
 * -fvisibility=hidden and only FB_EXPORT functions leave the library.
 */
#ifndef FB_H
#define FB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define FB_EXPORT   __attribute__((visibility("default")))
/* -fvisibility=hidden covers definitions only: extern declarations of hot
 * globals need it spelled out, or every access goes through an extra load. */
#define FB_HIDDEN   __attribute__((visibility("hidden")))
#define FB_INLINE   static inline __attribute__((always_inline))
#define FB_NOINLINE __attribute__((noinline))
#define FB_COLD     __attribute__((noinline, cold))
/* Large zeroed tables that a process touches in a few places if at all
 * (per-site route tables, debugging modes' buffers): in .lbss, which the
 * linker puts after .bss, so that the small globals every process writes
 * at start-up share a few pages instead of one page each between the
 * tables (a page fault each at start, and a page more for every fork to
 * copy).  Code addresses them as any other global. */
#define FB_BIG_BSS  __attribute__((section(".lbss")))
#define fb_likely(x)   __builtin_expect(!!(x), 1)
#define fb_unlikely(x) __builtin_expect(!!(x), 0)

/* glibc's malloc guarantees 16-byte alignment on x86_64 even for tiny
 * requests; programs (and SSE code in libraries) rely on it. */
#define FB_ALIGN 16
#define FB_GRANULE_SHIFT 4

#endif
