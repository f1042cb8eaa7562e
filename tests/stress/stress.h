/*
 * Helpers shared by the stress tests (C and C++).
 *
 * The tests never link libfbmalloc: they run under LD_PRELOAD and find
 * fbmalloc_stats_get() with dlsym(RTLD_DEFAULT, ...). If it is missing the
 * library was not loaded and the test fails, unless STRESS_ALLOW_NO_FBMALLOC
 * is set (useful to try a test against glibc or plain jemalloc: the memory
 * checks still run, the statistics checks are skipped).
 *
 * Every object is filled with a pattern derived from its address and size
 * (pattern_fill / pattern_check): two live objects that overlap, or a block
 * handed out twice, overwrite each other's pattern and the check fails.
 */
#ifndef STRESS_H
#define STRESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fbmalloc.h"

#define STRESS_GOLD 0x9E3779B97F4A7C15ull

/* Prints "FAIL: <test>: ..." on stderr and exits 1. Uses _exit so that a
 * broken heap cannot turn a clear failure into a crash in exit handlers. */
static inline void fail(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static inline void fail(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fflush(stdout);
    dprintf(2, "FAIL: %s\n", buf);
    _exit(1);
}

static inline uint64_t mix64(uint64_t x)
{
    x += STRESS_GOLD;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* xorshift64*: per-thread random numbers, no locks, no allocation. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t rng_seed(uint64_t salt)
{
    uint64_t s = mix64(salt ^ (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    return s ? s : 1;
}

/* Random request size, heavily biased to small: about 90% in 1..1024 (half
 * of them in 1..128), 9% in 1 KiB..64 KiB, 1% in 64 KiB..1 MiB. */
static inline size_t rand_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    unsigned pick = (unsigned)(r % 1000);
    r = rng_next(rng);
    if (pick < 450)
        return 1 + (size_t)(r % 128);
    if (pick < 900)
        return 1 + (size_t)(r % 1024);
    if (pick < 990)
        return 1025 + (size_t)(r % (64 * 1024 - 1024));
    return 64 * 1024 + (size_t)(r % (1024 * 1024 - 64 * 1024 + 1));
}

/* The seed of an object's pattern: its address and its requested size. */
static inline uint64_t obj_seed(const void *p, size_t size)
{
    return mix64((uint64_t)(uintptr_t)p ^ ((uint64_t)size << 40) ^ (uint64_t)size);
}

/* Byte i of the pattern is byte (i % 8) (little endian) of the 64-bit word
 * seed + (i / 8) * GOLD. Words are accessed with memcpy, so any alignment
 * works; with an 8-aligned pointer these compile to plain loads/stores. */
static inline void pattern_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *c = (unsigned char *)p;
    size_t words = n / 8, k;
    uint64_t w = seed;
    for (k = 0; k < words; k++, w += STRESS_GOLD)
        memcpy(c + 8 * k, &w, 8);
    if (n % 8)
        memcpy(c + 8 * words, &w, n % 8);
}

/* Returns (size_t)-1 if p[0..n) holds the pattern, else the first bad offset. */
static inline size_t pattern_find_bad(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *c = (const unsigned char *)p;
    size_t words = n / 8, k, i;
    uint64_t w = seed, v;
    for (k = 0; k < words; k++, w += STRESS_GOLD) {
        memcpy(&v, c + 8 * k, 8);
        if (v != w)
            goto bad;
    }
    if (n % 8 && memcmp(c + 8 * words, &w, n % 8) != 0)
        goto bad;
    return (size_t)-1;
bad:
    for (i = 8 * k; i < n; i++) {
        uint64_t word = seed + (i / 8) * STRESS_GOLD;
        if (c[i] != (unsigned char)(word >> (8 * (i % 8))))
            return i;
    }
    return (size_t)-1;
}

/* Fails with a full description if p[0..n) does not hold its pattern. */
static inline void pattern_check(const char *what, const void *p, size_t size,
                                 size_t n, uint64_t seed)
{
    size_t bad = pattern_find_bad(p, n, seed);
    if (bad != (size_t)-1) {
        uint64_t word = seed + (bad / 8) * STRESS_GOLD;
        fail("%s: object %p (request %zu B, checked %zu B) corrupted at offset %zu "
             "(%p): byte 0x%02x, expected 0x%02x -- overlapping live objects, a block "
             "handed out twice, or lost content",
             what, p, size, n, bad, (const void *)((const char *)p + bad),
             ((const unsigned char *)p)[bad], (unsigned)(unsigned char)(word >> (8 * (bad % 8))));
    }
}

/* Resident set size in KiB, read without allocating (no stdio). */
static inline long rss_kib(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n, total = 0;
    char *s;
    if (fd < 0)
        fail("open /proc/self/status");
    while (total < (ssize_t)sizeof buf - 1 &&
           (n = read(fd, buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    buf[total] = 0;
    s = strstr(buf, "VmRSS:");
    if (!s)
        fail("no VmRSS in /proc/self/status");
    return strtol(s + 6, NULL, 10);
}

static inline double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef int (*stress_stats_fn)(struct fbmalloc_stats *);

static inline stress_stats_fn stress_stats_lookup(void)
{
    return (stress_stats_fn)dlsym(RTLD_DEFAULT, "fbmalloc_stats_get");
}

/* Returns 1 and fills *st if fbmalloc is loaded. Fails if it is not, unless
 * STRESS_ALLOW_NO_FBMALLOC is set (then returns 0: skip the stats checks). */
static inline int stats_get(struct fbmalloc_stats *st)
{
    stress_stats_fn get = stress_stats_lookup();
    memset(st, 0, sizeof *st);
    if (!get) {
        if (getenv("STRESS_ALLOW_NO_FBMALLOC"))
            return 0;
        fail("fbmalloc_stats_get not found with dlsym(RTLD_DEFAULT): libfbmalloc.so is "
             "not loaded. Run with LD_PRELOAD=/path/to/build/libfbmalloc.so "
             "(or set STRESS_ALLOW_NO_FBMALLOC=1 to run without the stats checks)");
    }
    if (get(st) != 0)
        fail("fbmalloc_stats_get returned non-zero");
    return 1;
}

/* With FBMALLOC_STATS set, the per-call counters must be running. Returns
 * st->counting (whether the per-call counters can be asserted on). */
static inline int stats_counting(const struct fbmalloc_stats *st)
{
    const char *env = getenv("FBMALLOC_STATS");
    if (env && *env && strcmp(env, "0") != 0 && !st->counting)
        fail("FBMALLOC_STATS=%s is set but fbmalloc_stats.counting is 0", env);
    if (!st->counting)
        printf("note: per-call counters are off (set FBMALLOC_STATS=json "
               "FBMALLOC_OUTPUT=/dev/null to check them)\n");
    return st->counting;
}

static inline void stats_print(const char *label, const struct fbmalloc_stats *st)
{
    printf("%s: fast_mallocs=%" PRIu64 " fast_frees=%" PRIu64 " backend_mallocs=%" PRIu64
           " backend_frees=%" PRIu64 " remote_frees=%" PRIu64 " epochs_reset=%" PRIu64
           " epochs_pinned=%" PRIu64 " buffer_full=%" PRIu64 " threads=%" PRIu64
           " bad_frees=%" PRIu64 " live_bytes=%" PRIu64 " counting=%d\n",
           label, st->fast_mallocs, st->fast_frees, st->backend_mallocs, st->backend_frees,
           st->remote_frees, st->epochs_reset, st->epochs_pinned, st->buffer_full,
           st->threads, st->bad_frees, st->live_bytes, st->counting);
}

#endif /* STRESS_H */
